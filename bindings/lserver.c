/* lserver.c -- Listener: a listening socket (TCP over v4 or v6, or Unix)
 * whose accept() parks the calling task until a connection comes and
 * returns it as a Stream. When the process is out of descriptors (EMFILE,
 * ENFILE) or memory, accept() says so through the loop's exception handler
 * and sleeps a second on the core's timer heap before it tries again, as
 * asyncio does, instead of spinning on a socket that stays readable. The
 * Server of aloop.start_server, one accepting task per listener, is in
 * aloop/streams.lua. Also the other end: the connect primitive behind
 * open_connection. */
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lstream.h"

#define ACCEPT_RETRY_DELAY 1.0 /* seconds, as asyncio's */

typedef struct llistener {
  al_io_t io; /* first */
  lstate *S;
  al_addr_t addr;   /* as bound (the port chosen for port 0) */
  size_t limit;     /* of the streams it hands out */
  int unlink_path;  /* a Unix socket file this listener created */
} llistener;

static llistener *check_listener(lua_State *L) {
  return luaL_checkudata(L, 1, LALOOP_LISTENER_MT);
}

static void listener_close(llistener *l, int loop_alive) {
  if (l->io.fd < 0)
    return;
  if (loop_alive) {
    al_io_close(&l->io); /* wakes the acceptor: accept() returns nil */
  } else {
    close(l->io.fd);
    l->io.fd = -1;
  }
  if (l->unlink_path) {
    const struct sockaddr_un *un = (const void *)&l->addr.u.ss;
    unlink(un->sun_path);
    l->unlink_path = 0;
  }
}

static int l_gc(lua_State *L) {
  llistener *l = lua_touserdata(L, 1);
  listener_close(l, !l->S->closed);
  return 0;
}

static int l_close(lua_State *L) {
  listener_close(check_listener(L), 1);
  return 0;
}

static int l_sockname(lua_State *L) {
  return laloop_push_addr(L, &check_listener(L)->addr);
}

static int l_fileno(lua_State *L) {
  lua_pushinteger(L, check_listener(L)->io.fd);
  return 1;
}

static int out_of_resources(int err) {
  return err == AL_EMFILE || err == AL_ENFILE || err == AL_ENOBUFS ||
         err == AL_ENOMEM;
}

static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  llistener *l = lua_touserdata(L, 1);
  (void)ctx;
  laloop_woken(L, status, ctx, accept_k, NULL, NULL);
  for (;;) {
    int fd;
    ltask *lt;
    if (l->io.fd < 0) { /* closed */
      lua_pushnil(L);
      return 1;
    }
    fd = al_sock_accept(l->io.fd);
    if (fd >= 0) {
      lstream *s;
      lua_settop(L, 1);
      if (al_addr_family(&l->addr) != AF_UNIX)
        al_sock_nodelay(fd, true);
      s = laloop_stream_new(L, l->S, fd, l->limit);
      al_sock_name(fd, &s->sock, false);
      al_sock_name(fd, &s->peer, true);
      return 1;
    }
    lt = laloop_current(L, "Listener:accept");
    if (fd == AL_EAGAIN) {
      al_io_wait(&l->io, &lt->t, EV_READ);
      return laloop_park(L, 0, accept_k);
    }
    if (out_of_resources(fd)) {
      laloop_push_oserror(L, fd, "accept");
      laloop_report(L, l->S,
                    "socket.accept() out of system resource: accepting again "
                    "in a second",
                    -1, 0);
      lua_pop(L, 1);
      al_task_sleep(&lt->t, ACCEPT_RETRY_DELAY);
      return laloop_park(L, 0, accept_k);
    }
    return laloop_oserror(L, fd, "accept");
  }
}

/* accept(): the next connection as a Stream, waiting for it; nil once the
 * listener is closed. */
static int l_accept(lua_State *L) {
  check_listener(L);
  lua_settop(L, 1);
  return accept_k(L, LUA_OK, 0);
}

static llistener *new_listener(lua_State *L, int fd, size_t limit) {
  llistener *l = lua_newuserdatauv(L, sizeof *l, 0);
  memset(l, 0, sizeof *l);
  l->S = laloop_state(L);
  l->limit = limit;
  al_io_init(&l->io, &l->S->loop, fd);
  luaL_setmetatable(L, LALOOP_LISTENER_MT);
  al_sock_name(fd, &l->addr, false);
  return l;
}

/* _net.listen(host, port, backlog, reuse_port, v6only, limit): host numeric. */
static int n_listen(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  int backlog = (int)luaL_optinteger(L, 3, 100);
  unsigned flags = (lua_toboolean(L, 4) ? AL_L_REUSEPORT : 0) |
                   (lua_toboolean(L, 5) ? AL_L_V6ONLY : 0);
  size_t limit = (size_t)luaL_optinteger(L, 6, 64 * 1024);
  al_addr_t a;
  int fd = al_addr_parse(&a, host, (int)port, AF_UNSPEC);
  if (fd == 0)
    fd = al_sock_listen(&a, backlog, flags);
  if (fd < 0)
    return laloop_oserror(
        L, fd, lua_pushfstring(L, "listen on %s port %d", host, (int)port));
  new_listener(L, fd, limit);
  return 1;
}

/* _net.listen_unix(path, backlog, limit): a stale socket file at path is
 * removed first, as asyncio does; the file goes when the listener closes. */
static int n_listen_unix(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int backlog = (int)luaL_optinteger(L, 2, 100);
  size_t limit = (size_t)luaL_optinteger(L, 3, 64 * 1024);
  struct stat st;
  al_addr_t a;
  int fd = al_addr_unix(&a, path);
  llistener *l;
  if (fd == 0 && path[0] != '\0' && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
    unlink(path);
  if (fd == 0)
    fd = al_sock_listen(&a, backlog, 0);
  if (fd < 0)
    return laloop_oserror(L, fd, lua_pushfstring(L, "listen on %s", path));
  l = new_listener(L, fd, limit);
  l->addr = a;
  l->unlink_path = path[0] != '\0';
  return 1;
}

/* Read the stream's own and its peer's address (once it is connected). */
static void read_names(lstream *s) {
  al_sock_name(s->st.io.fd, &s->sock, false);
  al_sock_name(s->st.io.fd, &s->peer, true);
}

/* ---- connecting --------------------------------------------------------------- */

/* A connect cancelled: its socket goes at once, not at the next collection. */
static int connect_forfeit(ltask *lt, void *s) {
  (void)lt;
  al_stream_abort(&((lstream *)s)->st);
  return 0;
}

/* Stack: host, port, local_host, local_port, nodelay, limit, stream. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  lstream *s = lua_touserdata(L, (int)ctx);
  int err;
  laloop_woken(L, status, ctx, connect_k, connect_forfeit, s);
  err = s->st.io.fd < 0 ? AL_ECANCELED : al_sock_connected(s->st.io.fd);
  if (err == 0 && al_addr_family(&s->peer) != AF_UNIX && lua_toboolean(L, 5))
    err = al_sock_nodelay(s->st.io.fd, true);
  if (err != 0) {
    al_stream_abort(&s->st);
    if (lua_type(L, 2) == LUA_TNUMBER)
      laloop_push_oserror(L, err, lua_pushfstring(L, "connect to %s port %d",
                                                  lua_tostring(L, 1),
                                                  (int)lua_tointeger(L, 2)));
    else
      laloop_push_oserror(L, err, lua_pushfstring(L, "connect to %s",
                                                  lua_tostring(L, 1)));
    return lua_error(L);
  }
  read_names(s);
  lua_settop(L, (int)ctx);
  return 1;
}

/* _net.connect(host, port, local_host, local_port, nodelay, limit): host a
 * numeric address; or _net.connect(path, nil, nil, nil, false, limit) for a
 * Unix socket. Returns a connected stream. */
static int n_connect(lua_State *L) {
  lstate *S = laloop_state(L);
  const char *host = luaL_checkstring(L, 1);
  al_addr_t addr, local;
  int fd, r, idx;
  bool in_progress;
  lstream *s;
  lua_settop(L, 6);
  if (lua_isnil(L, 2))
    r = al_addr_unix(&addr, host);
  else
    r = al_addr_parse(&addr, host, (int)luaL_checkinteger(L, 2), AF_UNSPEC);
  if (r == 0 && !lua_isnil(L, 3))
    r = al_addr_parse(&local, lua_tostring(L, 3), (int)luaL_optinteger(L, 4, 0),
                      al_addr_family(&addr));
  if (r != 0)
    return laloop_oserror(L, r, "address");
  laloop_current(L, "open_connection");
  fd = al_sock_connect(&addr, lua_isnil(L, 3) ? NULL : &local, &in_progress);
  if (fd < 0) {
    laloop_push_oserror(L, fd, lua_pushfstring(L, "connect to %s", host));
    return lua_error(L);
  }
  s = laloop_stream_new(L, S, fd, (size_t)luaL_optinteger(L, 6, 64 * 1024));
  s->peer = addr;
  idx = lua_gettop(L);
  if (!in_progress)
    return connect_k(L, LUA_OK, idx);
  {
    ltask *lt = laloop_current(L, "open_connection");
    al_io_wait(&s->st.io, &lt->t, EV_WRITE);
    return laloop_park(L, idx, connect_k);
  }
}

void laloop_open_servers(lua_State *L, int net, int up) {
  static const luaL_Reg methods[] = {{"accept", l_accept},
                                     {"close", l_close},
                                     {"sockname", l_sockname},
                                     {"fileno", l_fileno},
                                     {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__gc", l_gc}, {"__close", l_close},
                                   {NULL, NULL}};
  static const luaL_Reg fns[] = {{"listen", n_listen},
                                 {"listen_unix", n_listen_unix},
                                 {"connect", n_connect},
                                 {NULL, NULL}};
  laloop_new_class(L, up, LALOOP_LISTENER_MT, methods, metas);
  lua_pushvalue(L, net);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
