/* lhttp.c -- the C side of aloop.http (aloop._http, used by
 * aloop/http.lua): sessions on core/http.c's multi handles, requests whose
 * easy handles are set from a plain table, and the waits of a request
 * (its final headers, body bytes, room for upload bytes) on the one wait
 * protocol. A task cancelled in any of them aborts its transfer at once.
 * Failures raise error values carrying curl's code and message. */
#include <dlfcn.h>
#include <string.h>

#include "../core/al_http.h"
#include "laloop.h"

#define LHTTP_SESSION_MT "aloop.http.Session"
#define LHTTP_REQ_MT "aloop.http.Request"
#define BODY_LIMIT (1024 * 1024)  /* body bytes held before a pause */
#define UPLOAD_LIMIT (256 * 1024) /* upload bytes queued before feed waits */

typedef struct lsession {
  al_http_multi_t m;
} lsession;

/* User values: 1 the request body string (curl reads it in place),
 * 2 the session (kept alive while the request is). */
typedef struct lreq {
  al_http_req_t r;
} lreq;

void laloop_http_close(lstate *S) {
  if (S->http) {
    al_http_close(S->http);
    S->http = NULL;
  }
}

/* libcurl and the libraries it brings (OpenSSL, nghttp2, LDAP ...) stay
 * loaded once used: when lua5.4 closes its state it unloads aloop.so, and
 * with it they would go, leaving what their constructors allocated looking
 * leaked (and libcurl's global state is meant to live with the process). */
static void pin_libcurl(void) {
  void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  (void)h; /* never closed: that is the point */
}

static al_http_t *get_http(lstate *S) {
  if (!S->http) {
    pin_libcurl();
    S->http = al_http_new(&S->loop);
  }
  return S->http;
}

/* ---- errors ------------------------------------------------------------ */

static const char *kind_of(int code) {
  switch (code) {
  case CURLE_OPERATION_TIMEDOUT:
    return "TimeoutError";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return "DNSError";
  case CURLE_COULDNT_CONNECT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return "ConnectionError";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
    return "TLSError";
  case CURLE_TOO_MANY_REDIRECTS:
    return "TooManyRedirects";
  default:
    return "HTTPError";
  }
}

/* {kind, message = curl's message, curl_code, curl_error, url, and for a
 * failed connection the OS's code and errno}. */
static int raise_http_error(lua_State *L, lreq *q) {
  al_http_req_t *r = &q->r;
  const char *msg = r->errbuf[0] ? r->errbuf : al_http_strerror(r->result);
  char *url = NULL;
  laloop_push_error(L, kind_of(r->result), msg);
  lua_pushinteger(L, r->result);
  lua_setfield(L, -2, "curl_code");
  lua_pushstring(L, al_http_strerror(r->result));
  lua_setfield(L, -2, "curl_error");
  if (r->easy &&
      curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK &&
      url) {
    lua_pushstring(L, url);
    lua_setfield(L, -2, "url");
  }
  if (r->os_errno > 0 && r->os_errno < 4095) {
    lua_pushstring(L, al_err_name(-(int)r->os_errno));
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, r->os_errno);
    lua_setfield(L, -2, "errno");
  }
  return lua_error(L);
}

static int raise_closed(lua_State *L) {
  return laloop_error(L, "HTTPError", "the request or its session is closed");
}

/* ---- sessions ------------------------------------------------------------ */

static lsession *check_session(lua_State *L, int idx) {
  lsession *s = luaL_checkudata(L, idx, LHTTP_SESSION_MT);
  if (!s->m.open)
    raise_closed(L);
  return s;
}

static long opt_long(lua_State *L, int t, const char *k, long dflt) {
  long v = dflt;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    int isint;
    lua_Integer i = lua_tointegerx(L, -1, &isint);
    if (!isint || i < 0 || i > 1000000000)
      luaL_argerror(
          L, t, lua_pushfstring(L, "%s: a non-negative integer expected", k));
    v = (long)i;
  }
  lua_pop(L, 1);
  return v;
}

/* _http.session({max_total=, max_host=, cookies=}) */
static int h_session(lua_State *L) {
  al_http_multi_opts_t o;
  lsession *s;
  luaL_checktype(L, 1, LUA_TTABLE);
  o.max_total = opt_long(L, 1, "max_total", 0);
  o.max_host = opt_long(L, 1, "max_host", 0);
  lua_getfield(L, 1, "cookies");
  o.cookies = lua_toboolean(L, -1);
  lua_pop(L, 1);
  s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, LHTTP_SESSION_MT);
  if (al_http_multi_init(&s->m, get_http(laloop_state(L)), &o) != 0)
    return laloop_oserror(L, AL_ENOMEM, "curl_multi_init");
  return 1;
}

static int session_close(lua_State *L) {
  lsession *s = luaL_checkudata(L, 1, LHTTP_SESSION_MT);
  lstate *S = laloop_find_state(L);
  if (S)
    al_http_multi_close(&s->m, true);
  return 0;
}

static int session_gc(lua_State *L) {
  lsession *s = luaL_checkudata(L, 1, LHTTP_SESSION_MT);
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  if (S && !S->closed)
    al_http_multi_close(&s->m, true);
  return 0;
}

/* ---- starting a request ------------------------------------------------ */

static const char *opt_string(lua_State *L, int t, const char *k) {
  const char *s = NULL;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, t, lua_pushfstring(L, "%s: a string expected", k));
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the spec table keeps it alive */
  return s;
}

static long opt_ms(lua_State *L, int t, const char *k) {
  double v = 0;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0) || v > 1e9)
      luaL_argerror(L, t,
                    lua_pushfstring(L, "%s: a positive number expected", k));
  }
  lua_pop(L, 1);
  if (!(v > 0))
    return 0;
  return v * 1000.0 < 1.0 ? 1 : (long)(v * 1000.0 + 0.5);
}

static int opt_bool(lua_State *L, int t, const char *k, int dflt) {
  int v = dflt;
  if (lua_getfield(L, t, k) != LUA_TNIL)
    v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static struct curl_slist *opt_headers(lua_State *L, int t) {
  struct curl_slist *list = NULL;
  lua_Integer i, n;
  if (lua_getfield(L, t, "headers") == LUA_TTABLE) {
    n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      struct curl_slist *nl;
      lua_rawgeti(L, -1, i);
      nl = lua_type(L, -1) == LUA_TSTRING
               ? curl_slist_append(list, lua_tostring(L, -1))
               : NULL;
      lua_pop(L, 1);
      if (!nl) {
        curl_slist_free_all(list);
        luaL_argerror(L, t, "headers: a list of strings expected");
      }
      list = nl;
    }
  }
  lua_pop(L, 1);
  return list;
}

/* Set the easy handle from the spec table at t. */
static void set_options(lua_State *L, int t, int qidx, al_http_req_t *r) {
  CURL *e = r->easy;
  const char *method = opt_string(L, t, "method");
  const char *s;
  size_t blen;
  long v;
  curl_easy_setopt(e, CURLOPT_URL, opt_string(L, t, "url"));
  if (!method)
    method = "GET";
  if (lua_getfield(L, t, "body") == LUA_TSTRING) { /* uv 1 keeps it */
    const char *b = lua_tolstring(L, -1, &blen);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, qidx, 1);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, b);
  } else if (opt_bool(L, t, "stream", 0)) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    al_http_req_stream_upload(r);
  }
  lua_pop(L, 1);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  else if (strcmp(method, "POST") == 0)
    curl_easy_setopt(e, CURLOPT_POST, 1L);
  al_http_req_set_headers(r, opt_headers(L, t));
  if ((v = opt_ms(L, t, "timeout")) > 0)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, v);
  if ((v = opt_ms(L, t, "connect_timeout")) > 0)
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, v);
  if (opt_bool(L, t, "follow", 1)) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, opt_long(L, t, "max_redirects", 10));
  }
  if (!opt_bool(L, t, "verify", 1)) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if ((s = opt_string(L, t, "cafile")))
    curl_easy_setopt(e, CURLOPT_CAINFO, s);
  if ((s = opt_string(L, t, "user_agent")))
    curl_easy_setopt(e, CURLOPT_USERAGENT, s);
  if (opt_bool(L, t, "compress", 1))
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  if (lua_getfield(L, t, "http2") != LUA_TNIL && !lua_toboolean(L, -1)) {
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Concurrent requests to an HTTPS host wait for the first connection
     * to learn whether it multiplexes (HTTP/2) rather than each open its
     * own. Not for plain HTTP, where it would queue them on one HTTP/1.1
     * connection. */
    if (strncmp(opt_string(L, t, "url"), "https:", 6) == 0)
      curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  }
  lua_pop(L, 1);
}

/* _http.start(session, spec) -> request, its transfer under way. */
static int h_start(lua_State *L) {
  lsession *s = check_session(L, 1);
  lreq *q;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "url");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "url: a string expected");
  lua_pop(L, 1);
  lua_settop(L, 2);
  q = lua_newuserdatauv(L, sizeof *q, 2);
  memset(q, 0, sizeof *q);
  luaL_setmetatable(L, LHTTP_REQ_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 3, 2);
  if (al_http_req_init(&q->r, &s->m, BODY_LIMIT) != 0)
    return laloop_oserror(L, AL_ENOMEM, "curl_easy_init");
  set_options(L, 2, 3, &q->r);
  if (al_http_req_start(&q->r) != 0)
    return laloop_error(L, "HTTPError", "the request could not be started");
  return 1;
}

/* ---- the waits ------------------------------------------------------------ */

static lreq *check_req(lua_State *L) {
  return luaL_checkudata(L, 1, LHTTP_REQ_MT);
}

/* A cancelled wait aborts the transfer and frees it all at once. */
static int req_forfeit(ltask *lt, void *q) {
  (void)lt;
  al_http_req_close(&((lreq *)q)->r, false);
  return 0;
}

static int woken(lua_State *L, int status, lua_KContext ctx, lua_KFunction k) {
  lreq *q = (lreq *)ctx;
  if (laloop_woken(L, status, ctx, k, req_forfeit, q) == AL_WAKE_CLOSED ||
      !q->r.easy)
    return raise_closed(L);
  return 0;
}

static int park(lua_State *L, lreq *q, lua_KFunction k) {
  al_http_req_wait(&q->r, &laloop_current(L, "http request")->t);
  return laloop_park(L, (lua_KContext)q, k);
}

/* req:head() -> the header text ("\0url\r\n" before each block), the final
 * URL, the HTTP version (1.0, 1.1, 2), once the final response's headers
 * are in; raises when the transfer failed first. */
static int head_k(lua_State *L, int status, lua_KContext ctx) {
  lreq *q = (lreq *)ctx;
  char *url = NULL;
  long ver = 0;
  woken(L, status, ctx, head_k);
  if (q->r.done && q->r.result != CURLE_OK)
    return raise_http_error(L, q);
  if (!q->r.final)
    return park(L, q, head_k);
  lua_pushlstring(L, al_buf_head(&q->r.head), q->r.head.len);
  curl_easy_getinfo(q->r.easy, CURLINFO_EFFECTIVE_URL, &url);
  lua_pushstring(L, url);
  curl_easy_getinfo(q->r.easy, CURLINFO_HTTP_VERSION, &ver);
  lua_pushstring(L, ver == CURL_HTTP_VERSION_1_0   ? "1.0"
                    : ver == CURL_HTTP_VERSION_2_0 ? "2"
                    : ver == CURL_HTTP_VERSION_3   ? "3"
                                                   : "1.1");
  return 3;
}

static int req_head(lua_State *L) {
  lreq *q = check_req(L);
  lua_settop(L, 1);
  return head_k(L, LUA_OK, (lua_KContext)q);
}

/* req:read([n]) -> up to n body bytes (nil: all held), "" at the end;
 * raises when the transfer failed. Reading resumes a paused transfer. */
static int read_k(lua_State *L, int status, lua_KContext ctx) {
  lreq *q = (lreq *)ctx;
  al_http_req_t *r = &q->r;
  size_t n;
  woken(L, status, ctx, read_k);
  if (r->body.len > 0) {
    n = r->body.len;
    if (lua_type(L, 2) == LUA_TNUMBER && (size_t)lua_tointeger(L, 2) < n)
      n = (size_t)lua_tointeger(L, 2);
    lua_pushlstring(L, al_buf_head(&r->body), n);
    al_http_req_consume(r, n);
    return 1;
  }
  if (r->done) {
    if (r->result != CURLE_OK)
      return raise_http_error(L, q);
    lua_pushliteral(L, "");
    return 1;
  }
  return park(L, q, read_k);
}

static int req_read(lua_State *L) {
  lreq *q = check_req(L);
  lua_settop(L, 2);
  if (!lua_isnil(L, 2))
    luaL_argcheck(L, luaL_checkinteger(L, 2) > 0, 2,
                  "a positive size expected");
  if (!q->r.easy)
    return raise_closed(L);
  return read_k(L, LUA_OK, (lua_KContext)q);
}

/* req:feed(chunk | nil) -> false when the transfer is over already (the
 * server answered without waiting for the rest); nil is the end. Waits
 * while enough is queued. */
static int feed_k(lua_State *L, int status, lua_KContext ctx) {
  lreq *q = (lreq *)ctx;
  size_t n = 0;
  const char *p;
  woken(L, status, ctx, feed_k);
  if (q->r.done) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (al_http_req_upload_queued(&q->r) >= UPLOAD_LIMIT)
    return park(L, q, feed_k);
  p = lua_tolstring(L, 2, &n);
  al_http_req_feed(&q->r, p, n, p == NULL);
  lua_pushboolean(L, 1);
  return 1;
}

static int req_feed(lua_State *L) {
  lreq *q = check_req(L);
  lua_settop(L, 2);
  if (!lua_isnil(L, 2))
    luaL_checkstring(L, 2);
  if (!q->r.easy)
    return raise_closed(L);
  return feed_k(L, LUA_OK, (lua_KContext)q);
}

/* req:done() -> whether the transfer is over (its body all received). */
static int req_done(lua_State *L) {
  lreq *q = check_req(L);
  lua_pushboolean(L, q->r.done && q->r.body.len == 0);
  return 1;
}

static int req_close(lua_State *L) {
  lreq *q = check_req(L);
  if (laloop_find_state(L))
    al_http_req_close(&q->r, true);
  return 0;
}

static int req_gc(lua_State *L) {
  lreq *q = luaL_checkudata(L, 1, LHTTP_REQ_MT);
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  if (S && !S->closed)
    al_http_req_close(&q->r, true);
  return 0;
}

/* _http.stats() -> {sessions, requests, sockets, buffered}, for the specs. */
static int h_stats(lua_State *L) {
  lstate *S = laloop_state(L);
  al_http_stats_t st = {0, 0, 0, 0};
  if (S->http)
    al_http_get_stats(S->http, &st);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)st.sessions);
  lua_setfield(L, -2, "sessions");
  lua_pushinteger(L, (lua_Integer)st.requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)st.sockets);
  lua_setfield(L, -2, "sockets");
  lua_pushinteger(L, (lua_Integer)st.buffered);
  lua_setfield(L, -2, "buffered");
  return 1;
}

/* libcurl's version line, for the docs and the bench. */
static int h_version(lua_State *L) {
  lua_pushstring(L, curl_version());
  return 1;
}

void laloop_open_http(lua_State *L, int mod, int up) {
  static const luaL_Reg smethods[] = {{"close", session_close}, {NULL, NULL}};
  static const luaL_Reg smetas[] = {{"__gc", session_gc}, {NULL, NULL}};
  static const luaL_Reg rmethods[] = {{"head", req_head},   {"read", req_read},
                                      {"feed", req_feed},   {"done", req_done},
                                      {"close", req_close}, {NULL, NULL}};
  static const luaL_Reg rmetas[] = {{"__gc", req_gc}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"session", h_session},
                                 {"start", h_start},
                                 {"stats", h_stats},
                                 {"version", h_version},
                                 {NULL, NULL}};
  laloop_new_class(L, up, LHTTP_SESSION_MT, smethods, smetas);
  laloop_new_class(L, up, LHTTP_REQ_MT, rmethods, rmetas);
  lua_newtable(L); /* aloop._http: the private side, for aloop/http.lua */
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_setfield(L, mod, "_http");
}
