/* ldns.c -- aloop.getaddrinfo: a lookup on the loop's resolvers
 * (core/dns.c) that waits without blocking the loop, the DNSError it raises,
 * and aloop._dns_stats for the specs. */
#include <arpa/inet.h>
#include <string.h>

#include "../core/al_dns.h"
#include "laloop.h"

void laloop_dns_close(lstate *S) {
  if (S->dns) {
    al_dns_close(S->dns);
    S->dns = NULL;
  }
}

static al_dns_t *get_dns(lstate *S) {
  if (!S->dns)
    S->dns = al_dns_new(&S->loop);
  return S->dns;
}

/* A DNSError: code "ENOTFOUND", status 4, message "Domain name not found",
 * host; it prints as "ENOTFOUND: Domain name not found (host)". */
static void push_dns_error(lua_State *L, int status, const char *host) {
  laloop_push_error(L, "DNSError", al_dns_strerror(status));
  lua_pushstring(L, al_dns_status_name(status));
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, host);
  lua_setfield(L, -2, "host");
  lua_pushstring(L, host);
  lua_setfield(L, -2, "what");
}

/* {family = "inet", address = "127.0.0.1", port = 80} (an IPv6 address
 * with a zone also has scope_id). */
static void push_addr(lua_State *L, const al_sockaddr_t *a) {
  char buf[INET6_ADDRSTRLEN];
  int v6 = a->sa.sa_family == AF_INET6;
  const void *src =
      v6 ? (const void *)&a->in6.sin6_addr : (const void *)&a->in4.sin_addr;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, v6 ? "inet6" : "inet");
  lua_setfield(L, -2, "family");
  lua_pushstring(L, inet_ntop(v6 ? AF_INET6 : AF_INET, src, buf, sizeof buf));
  lua_setfield(L, -2, "address");
  lua_pushinteger(L, ntohs(v6 ? a->in6.sin6_port : a->in4.sin_port));
  lua_setfield(L, -2, "port");
  if (v6 && a->in6.sin6_scope_id) {
    lua_pushinteger(L, (lua_Integer)a->in6.sin6_scope_id);
    lua_setfield(L, -2, "scope_id");
  }
}

/* A cancelled lookup lets go of its request: the answer, if c-ares still
 * brings one, is dropped. */
static int gai_forfeit(ltask *lt, void *r) {
  (void)lt;
  al_dns_release(r);
  return 0;
}

/* Serves the lookup answered at once and the one the task parked on. The
 * host is at stack index 1. */
static int gai_k(lua_State *L, int status, lua_KContext ctx) {
  al_dns_req_t *r = (al_dns_req_t *)ctx;
  size_t i;
  laloop_woken(L, status, ctx, gai_k, gai_forfeit, r);
  if (r->status != 0) {
    push_dns_error(L, r->status, lua_tostring(L, 1));
    al_dns_release(r);
    return lua_error(L);
  }
  lua_createtable(L, (int)r->naddrs, 0);
  for (i = 0; i < r->naddrs; i++) {
    push_addr(L, &r->addrs[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  al_dns_release(r);
  return 1;
}

/* opts.nameservers: a list of "ip", "ip:port" or "[ip6]:port", joined
 * into c-ares' csv (left on the stack while it is used). */
static const char *check_servers(lua_State *L, int opts) {
  luaL_Buffer b;
  lua_Integer i, n;
  int list;
  if (lua_getfield(L, opts, "nameservers") == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  list = lua_gettop(L);
  if (lua_type(L, list) != LUA_TTABLE)
    luaL_argerror(L, opts, "nameservers: a non-empty list of strings expected");
  n = (lua_Integer)lua_rawlen(L, list);
  if (n == 0) /* not "the system's": that could send queries elsewhere */
    luaL_argerror(L, opts, "nameservers: a non-empty list of strings expected");
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    const char *s; /* the list keeps it alive once popped */
    lua_rawgeti(L, list, i);
    s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (!s || !*s || strchr(s, ','))
      luaL_argerror(L, opts,
                    "nameservers: a non-empty list of strings expected");
    lua_pop(L, 1);
    if (i > 1)
      luaL_addchar(&b, ',');
    luaL_addstring(&b, s);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* opts[field]: one of names (nil: the first), as its value in values. */
static int check_choice(lua_State *L, int opts, const char *field,
                        const char *const names[], const int values[]) {
  const char *s;
  int i = 0;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    while (names[i] && strcmp(s, names[i]) != 0)
      i++;
    if (!names[i])
      return luaL_argerror(L, opts,
                           lua_pushfstring(L, "%s: '%s' or '%s' expected",
                                           field, names[1], names[2]));
  }
  lua_pop(L, 1);
  return values[i];
}

/* getaddrinfo(host, port [, {family=, type=, nameservers=, timeout=}]):
 * a list of {family, address, port}; raises DNSError. */
static int l_getaddrinfo(lua_State *L) {
  static const char *const families[] = {"unspec", "inet", "inet6", NULL};
  static const int family_of[] = {AF_UNSPEC, AF_INET, AF_INET6};
  static const char *const types[] = {"any", "stream", "dgram", NULL};
  static const int type_of[] = {0, SOCK_STREAM, SOCK_DGRAM};
  lstate *S = laloop_state(L);
  al_dns_opts_t o = {AF_UNSPEC, 0, NULL, 0};
  const char *service = NULL;
  al_dns_req_t *r;
  ltask *lt;
  luaL_checkstring(L, 1);
  lua_settop(L, 3);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    int isint;
    lua_Integer port = lua_tointegerx(L, 2, &isint);
    luaL_argcheck(L, isint && port >= 0 && port <= 65535, 2,
                  "port: an integer from 0 to 65535 expected");
    service = lua_pushfstring(L, "%I", port);
    lua_replace(L, 2);
  } else if (!lua_isnil(L, 2)) {
    service = luaL_checkstring(L, 2);
  }
  if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    o.family = check_choice(L, 3, "family", families, family_of);
    o.socktype = check_choice(L, 3, "type", types, type_of);
    lua_getfield(L, 3, "timeout");
    if (!lua_isnil(L, -1)) {
      o.timeout = lua_tonumber(L, -1);
      luaL_argcheck(L, lua_type(L, -1) == LUA_TNUMBER && o.timeout > 0, 3,
                    "timeout: a positive number expected");
    }
    lua_pop(L, 1);
    o.servers = check_servers(L, 3);
  }
  lt = laloop_current(L, "getaddrinfo");
  r = al_dns_getaddrinfo(get_dns(S), lua_tostring(L, 1), service, &o);
  lua_settop(L, 1);
  if (r->done)
    return gai_k(L, LUA_OK, (lua_KContext)r);
  al_dns_park(r, &lt->t);
  return laloop_park(L, (lua_KContext)r, gai_k);
}

/* _dns_stats(): {channels, sockets, requests, inflight}, for the specs. */
static int l_dns_stats(lua_State *L) {
  lstate *S = laloop_state(L);
  al_dns_stats_t st = {0, 0, 0, 0};
  if (S->dns)
    al_dns_get_stats(S->dns, &st);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)st.channels);
  lua_setfield(L, -2, "channels");
  lua_pushinteger(L, (lua_Integer)st.sockets);
  lua_setfield(L, -2, "sockets");
  lua_pushinteger(L, (lua_Integer)st.requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)st.inflight);
  lua_setfield(L, -2, "inflight");
  return 1;
}

void laloop_open_dns(lua_State *L, int mod, int up) {
  static const luaL_Reg fns[] = {{"getaddrinfo", l_getaddrinfo},
                                 {"_dns_stats", l_dns_stats},
                                 {NULL, NULL}};
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
