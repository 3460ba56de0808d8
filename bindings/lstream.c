/* lstream.c -- Stream: the reads (pulled by the task through one
 * continuation, so a cancelled read leaves every byte in the buffer), the
 * writes (buffered in C, drained with back-pressure), closing, addresses,
 * and connecting a socket (aloop._net.connect). The asyncio-style
 * open_connection on top, with names and happy eyeballs, is in
 * aloop/streams.lua. */
#define _GNU_SOURCE /* memmem */
#include <string.h>
#include <sys/socket.h>

#include "lstream.h"

/* What a search for a separator asks the socket for each time. */
#define READ_HINT 16384

static lstream *check_stream(lua_State *L) {
  return luaL_checkudata(L, 1, LALOOP_STREAM_MT);
}

/* ---- life ------------------------------------------------------------------ */

/* The core says the write side went idle or the stream closed: let go of
 * the anchor that kept the stream alive while its watcher ran. */
static void notify_cb(al_handle_t *h) {
  lstream *s = al_container_of(h, lstream, notify);
  if (s->ref != LUA_NOREF && !ev_is_active(&s->st.io.ww)) {
    laloop_unanchor(s->S->L, s->S, s->ref);
    s->ref = LUA_NOREF;
  }
}

/* Anchor the stream at idx while the write watcher holds it. */
static void hold(lua_State *L, lstream *s, int idx) {
  if (s->ref == LUA_NOREF && ev_is_active(&s->st.io.ww))
    s->ref = laloop_anchor(L, s->S, idx);
}

lstream *laloop_stream_new(lua_State *L, lstate *S, int fd, size_t limit) {
  lstream *s = lua_newuserdatauv(L, sizeof *s, 1); /* 1: its TLS context */
  memset(s, 0, sizeof *s);
  s->ref = LUA_NOREF;
  s->S = S;
  s->limit = limit;
  al_stream_init(&s->st, &S->loop, fd);
  al_handle_init(&s->notify, notify_cb);
  s->st.notify = &s->notify;
  luaL_setmetatable(L, LALOOP_STREAM_MT);
  return s;
}

static int s_gc(lua_State *L) {
  lstream *s = lua_touserdata(L, 1);
  if (s->S->closed) {
    al_stream_destroy(&s->st, false);
  } else {
    al_loop_unpost(&s->S->loop, &s->notify);
    al_stream_destroy(&s->st, true);
  }
  return 0;
}

/* close(): idempotent; what was written is still sent, then the socket is
 * closed (wait_closed waits for that). */
static int s_close(lua_State *L) {
  lstream *s = check_stream(L);
  al_stream_close(&s->st);
  hold(L, s, 1);
  return 0;
}

/* abort(): close at once with a reset, dropping what was not sent. */
static int s_abort(lua_State *L) {
  lstream *s = check_stream(L);
  al_stream_reset(&s->st);
  return 0;
}

static int s_is_closing(lua_State *L) {
  lstream *s = check_stream(L);
  lua_pushboolean(L, (s->st.flags & (AL_S_CLOSED | AL_S_CLOSE_WANT)) != 0);
  return 1;
}

static int wait_closed_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  laloop_woken(L, status, ctx, wait_closed_k, NULL, NULL);
  return 0;
}

static int s_wait_closed(lua_State *L) {
  lstream *s = check_stream(L);
  ltask *lt;
  if (s->st.flags & AL_S_CLOSED)
    return 0;
  lt = laloop_current(L, "Stream:wait_closed");
  al_stream_wait_closed(&s->st, &lt->t);
  return laloop_park(L, 0, wait_closed_k);
}

/* ---- reads ------------------------------------------------------------------- */

enum { OP_READ, OP_READALL, OP_UNTIL, OP_LINE, OP_EXACTLY };
static const char *const op_names[] = {"Stream:read", "Stream:read",
                                       "Stream:readuntil", "Stream:readline",
                                       "Stream:readexactly"};

static void take(lua_State *L, lstream *s, size_t n) {
  lua_pushlstring(L, al_buf_head(&s->st.rbuf), n);
  al_buf_consume(&s->st.rbuf, n);
}

/* The end of stream came first: IncompleteReadError with what there was
 * (consumed) in .partial and, for readexactly, .expected. */
static int incomplete(lua_State *L, lstream *s, lua_Integer expected) {
  size_t n = s->st.rbuf.len;
  if (expected >= 0)
    lua_pushfstring(L, "%d bytes read on a total of %d expected bytes", (int)n,
                    (int)expected);
  else
    lua_pushfstring(L, "%d bytes read before the end of stream, separator "
                       "not found", (int)n);
  laloop_push_error(L, "IncompleteReadError", lua_tostring(L, -1));
  take(L, s, n);
  lua_setfield(L, -2, "partial");
  if (expected >= 0) {
    lua_pushinteger(L, expected);
    lua_setfield(L, -2, "expected");
  }
  return lua_error(L);
}

static int s_limit_error(lua_State *L, int found) {
  laloop_push_error(L, "LimitOverrunError",
                    found ? "separator is found, but chunk is longer than limit"
                          : "separator is not found, and chunk exceeds the limit");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "consumed");
  return lua_error(L);
}

/* Try to complete the read op from the buffer: pushes its result and
 * returns 1, or returns 0 with *want set to how much more to ask for. */
static int try_read(lua_State *L, lstream *s, int op, size_t *want) {
  al_buf_t *b = &s->st.rbuf;
  int eof = (s->st.flags & AL_S_EOF) != 0;
  switch (op) {
  case OP_READ: {
    size_t n = (size_t)lua_tointeger(L, 2);
    if (b->len > 0 || eof) {
      take(L, s, b->len < n ? b->len : n);
      return 1;
    }
    *want = n;
    return 0;
  }
  case OP_READALL:
    if (eof) {
      take(L, s, b->len);
      return 1;
    }
    *want = 256 * 1024;
    return 0;
  case OP_EXACTLY: {
    lua_Integer n = lua_tointeger(L, 2);
    if (b->len >= (size_t)n) {
      take(L, s, (size_t)n);
      return 1;
    }
    if (eof)
      return incomplete(L, s, n);
    *want = (size_t)n - b->len;
    return 0;
  }
  default: { /* OP_UNTIL, OP_LINE */
    size_t seplen;
    const char *sep = lua_tolstring(L, 2, &seplen);
    const char *hit = b->len >= seplen ? memmem(al_buf_head(b), b->len, sep, seplen)
                                       : NULL;
    if (hit) {
      size_t end = (size_t)(hit - al_buf_head(b)) + seplen;
      if (end - seplen > s->limit)
        return s_limit_error(L, 1);
      take(L, s, end);
      return 1;
    }
    if (b->len + 1 > s->limit + seplen)
      return s_limit_error(L, 0);
    if (eof) {
      if (op == OP_UNTIL)
        return incomplete(L, s, -1);
      take(L, s, b->len); /* readline: the last line, or "" */
      return 1;
    }
    *want = READ_HINT;
    return 0;
  }
  }
}

/* The one continuation of every read: stream at 1, its argument at 2. */
static int read_k(lua_State *L, int status, lua_KContext op) {
  lstream *s = lua_touserdata(L, 1);
  if (status != LUA_OK) {
    s->reader = NULL;
    laloop_woken(L, status, op, read_k, NULL, NULL); /* a cancel raises: bytes stay */
  }
  for (;;) {
    size_t want = 0;
    long r;
    ltask *lt;
    if (try_read(L, s, (int)op, &want))
      return 1;
    r = al_stream_fill(&s->st, want);
    if (r >= 0)
      continue;
    if (r != AL_EAGAIN)
      return laloop_stream_raise(L, s, r, op == OP_EXACTLY ? lua_tointeger(L, 2) : -1);
    lt = laloop_current(L, op_names[op]);
    s->reader = lt;
    al_io_wait(&s->st.io, &lt->t, EV_READ);
    return laloop_park(L, op, read_k);
  }
}

static int start_read(lua_State *L, lstream *s, int op) {
  if (s->reader)
    return laloop_error(L, "RuntimeError",
                        "read called while another task is already waiting "
                        "for incoming data on this stream");
  lua_settop(L, 2);
  return read_k(L, LUA_OK, op);
}

/* read([n]): up to n bytes as soon as any are there ("" at the end);
 * without n, or n = -1, everything up to the end of stream. */
static int s_read(lua_State *L) {
  lstream *s = check_stream(L);
  lua_Integer n = luaL_optinteger(L, 2, -1);
  luaL_argcheck(L, n >= -1, 2, "must be -1 or more");
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  return start_read(L, s, n < 0 ? OP_READALL : OP_READ);
}

static int s_readexactly(lua_State *L) {
  lstream *s = check_stream(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "must not be negative");
  return start_read(L, s, OP_EXACTLY);
}

static int s_readuntil(lua_State *L) {
  lstream *s = check_stream(L);
  size_t len;
  if (lua_isnoneornil(L, 2))
    lua_pushliteral(L, "\n");
  else
    lua_pushvalue(L, 2);
  lua_replace(L, 2);
  luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, len > 0, 2, "separator must not be empty");
  return start_read(L, s, OP_UNTIL);
}

static int s_readline(lua_State *L) {
  lstream *s = check_stream(L);
  lua_settop(L, 1);
  lua_pushliteral(L, "\n");
  return start_read(L, s, OP_LINE);
}

/* at_eof(): nothing buffered and the peer has closed (looked at now,
 * without waiting). */
static int s_at_eof(lua_State *L) {
  lstream *s = check_stream(L);
  if (s->st.rbuf.len == 0 && !(s->st.flags & AL_S_EOF) && !s->reader)
    al_stream_fill(&s->st, 0);
  lua_pushboolean(L, s->st.rbuf.len == 0 && (s->st.flags & AL_S_EOF));
  return 1;
}

/* ---- writes ------------------------------------------------------------------ */

static int s_write(lua_State *L) {
  lstream *s = check_stream(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int r = al_stream_write(&s->st, p, n);
  if (r != 0)
    return laloop_error(L, "RuntimeError",
                        s->st.flags & (AL_S_CLOSED | AL_S_CLOSE_WANT)
                            ? "write on a closed stream"
                            : "write after write_eof");
  hold(L, s, 1);
  return 0;
}

static int drain_k(lua_State *L, int status, lua_KContext ctx) {
  lstream *s = lua_touserdata(L, 1);
  ltask *lt;
  (void)ctx;
  laloop_woken(L, status, ctx, drain_k, NULL, NULL); /* cancelled: the bytes stay queued */
  if (s->st.werr)
    return laloop_stream_raise(L, s, s->st.werr, -1);
  if (!al_stream_must_drain(&s->st))
    return 0;
  lt = laloop_current(L, "Stream:drain");
  al_stream_drain_wait(&s->st, &lt->t);
  return laloop_park(L, 0, drain_k);
}

/* drain(): wait while the write buffer is above the high-water mark, until
 * it is at the low one; raises the error that lost the connection. */
static int s_drain(lua_State *L) {
  check_stream(L);
  lua_settop(L, 1);
  return drain_k(L, LUA_OK, 0);
}

static int s_write_eof(lua_State *L) {
  lstream *s = check_stream(L);
  int r = al_stream_write_eof(&s->st);
  if (r == AL_EPIPE)
    return laloop_error(L, "RuntimeError", "write_eof on a closed stream");
  if (r < 0)
    return laloop_oserror(L, r, "write_eof");
  return 0;
}

static int s_can_write_eof(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

static int s_write_buffer_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)al_stream_buffered(&check_stream(L)->st));
  return 1;
}

/* set_write_buffer_limits([high [, low]]): as asyncio's: high 64 KiB by
 * default, low a quarter of high. */
static int s_set_limits(lua_State *L) {
  lstream *s = check_stream(L);
  lua_Integer high, low;
  if (lua_isnoneornil(L, 2)) {
    low = luaL_optinteger(L, 3, 16 * 1024);
    high = lua_isnoneornil(L, 3) ? 64 * 1024 : 4 * low;
  } else {
    high = luaL_checkinteger(L, 2);
    low = luaL_optinteger(L, 3, high / 4);
  }
  luaL_argcheck(L, high >= 0, 2, "must not be negative");
  luaL_argcheck(L, low >= 0 && low <= high, 3,
                "must be between 0 and the high-water mark");
  al_stream_set_limits(&s->st, (size_t)high, (size_t)low);
  return 0;
}

/* ---- addresses --------------------------------------------------------------- */

int laloop_push_addr(lua_State *L, const al_addr_t *a) {
  char host[sizeof(struct sockaddr_storage)];
  int port;
  if (a->len == 0) {
    lua_pushnil(L);
    lua_pushnil(L);
    return 2;
  }
  port = al_addr_format(a, host, sizeof host);
  lua_pushstring(L, host);
  if (al_addr_family(a) == AF_UNIX)
    lua_pushnil(L);
  else
    lua_pushinteger(L, port);
  return 2;
}

static int s_sockname(lua_State *L) {
  return laloop_push_addr(L, &check_stream(L)->sock);
}

static int s_peername(lua_State *L) {
  return laloop_push_addr(L, &check_stream(L)->peer);
}

/* get_extra_info(name [, default]): "peername", "sockname" ({host, port}),
 * "socket" (the descriptor), as asyncio's transports; the TLS names in
 * ltls.c. */
static int s_extra_info(lua_State *L) {
  lstream *s = check_stream(L);
  static const char *const names[] = {"peername", "sockname", "socket", NULL};
  const char *name = luaL_checkstring(L, 2);
  int i;
  for (i = 0; names[i] && strcmp(names[i], name) != 0; i++)
    ;
  if (i == 2 && s->st.io.fd >= 0) {
    lua_pushinteger(L, s->st.io.fd);
    return 1;
  }
  if (i < 2) {
    const al_addr_t *a = i == 0 ? &s->peer : &s->sock;
    if (a->len > 0) {
      lua_createtable(L, 2, 0);
      laloop_push_addr(L, a);
      lua_rawseti(L, -3, 2);
      lua_rawseti(L, -2, 1);
      return 1;
    }
  }
  if (laloop_tls_extra(L, s, name))
    return 1;
  lua_settop(L, 3);
  return 1;
}

static int s_tostring(lua_State *L) {
  lstream *s = check_stream(L);
  if (s->st.flags & AL_S_CLOSED) {
    lua_pushliteral(L, "<aloop.Stream closed>");
  } else {
    laloop_push_addr(L, &s->peer);
    if (lua_isnil(L, -1))
      lua_pushfstring(L, "<aloop.Stream fd=%d %s>", s->st.io.fd,
                      luaL_optstring(L, -2, "?"));
    else
      lua_pushfstring(L, "<aloop.Stream fd=%d %s:%d>", s->st.io.fd,
                      lua_tostring(L, -2), (int)lua_tointeger(L, -1));
  }
  return 1;
}

/* _net.io_count(): the I/O watchers running now (for aloop._stats). */
static int n_io_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)al_io_active_count(&laloop_state(L)->loop));
  return 1;
}

/* _net.is_numeric(host) -> "inet" | "inet6" | nil */
static int n_is_numeric(lua_State *L) {
  al_addr_t a;
  if (al_addr_parse(&a, luaL_checkstring(L, 1), 0, AF_UNSPEC) != 0)
    return 0;
  lua_pushstring(L, al_addr_family(&a) == AF_INET ? "inet" : "inet6");
  return 1;
}

/* _net.report(what, err, traceback): through the loop's exception handler. */
static int n_report(lua_State *L) {
  lua_settop(L, 3);
  laloop_report(L, laloop_state(L), luaL_checkstring(L, 1), 2,
                lua_isnil(L, 3) ? 0 : 3);
  return 0;
}

void laloop_open_streams(lua_State *L, int mod, int up) {
  static const luaL_Reg methods[] = {
      {"read", s_read},
      {"readline", s_readline},
      {"readuntil", s_readuntil},
      {"readexactly", s_readexactly},
      {"at_eof", s_at_eof},
      {"write", s_write},
      {"drain", s_drain},
      {"write_eof", s_write_eof},
      {"can_write_eof", s_can_write_eof},
      {"get_write_buffer_size", s_write_buffer_size},
      {"set_write_buffer_limits", s_set_limits},
      {"close", s_close},
      {"abort", s_abort},
      {"is_closing", s_is_closing},
      {"wait_closed", s_wait_closed},
      {"sockname", s_sockname},
      {"peername", s_peername},
      {"get_extra_info", s_extra_info},
      {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__gc", s_gc},
                                   {"__close", s_close},
                                   {"__tostring", s_tostring},
                                   {NULL, NULL}};
  static const luaL_Reg net[] = {{"io_count", n_io_count},
                                 {"is_numeric", n_is_numeric},
                                 {"report", n_report},
                                 {NULL, NULL}};
  int idx;
  laloop_new_class(L, up, LALOOP_STREAM_MT, methods, metas);
  lua_newtable(L); /* aloop._net: the private side, for aloop/streams.lua */
  idx = lua_gettop(L);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, net, 1);
  luaL_getmetatable(L, LALOOP_STREAM_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, idx, "Stream");
  lua_pop(L, 1);
  laloop_open_servers(L, idx, up);
  laloop_open_tls(L, mod, idx, up);
  lua_setfield(L, mod, "_net");
}
