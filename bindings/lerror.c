/* lerror.c -- errors: the values aloop raises itself (cancellation,
 * timeout, invalid state, queue empty/full, the OS's errors), tables with a
 * `kind` and a `message` that print well and are recognised by
 * aloop.is_<kind>; the message handlers that keep a traceback beside an
 * error; and the report of an error nobody retrieved. User errors never
 * pass through here: they travel unchanged. */
#include <stdio.h>
#include <string.h>

#include "laloop.h"

void laloop_push_error(lua_State *L, const char *kind, const char *msg) {
  laloop_push_error_n(L, kind, msg, msg ? strlen(msg) : 0);
}

void laloop_push_error_n(lua_State *L, const char *kind, const char *msg,
                         size_t len) {
  /* msg may belong to a task whose cancel message a finaliser replaces:
   * copy it before anything allocates (and so may run a finaliser). */
  if (msg)
    lua_pushlstring(L, msg, len);
  else
    lua_pushnil(L);
  lua_createtable(L, 0, 2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "message");
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  luaL_setmetatable(L, LALOOP_ERROR_MT);
}

void laloop_push_oserror(lua_State *L, int err, const char *what) {
  laloop_push_error(L, "OSError", what);
  lua_pushstring(L, al_err_name(err));
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, -err);
  lua_setfield(L, -2, "errno");
  lua_pushstring(L, al_strerror(err));
  lua_setfield(L, -2, "message");
  if (what) {
    lua_pushstring(L, what);
    lua_setfield(L, -2, "what");
  }
}

int laloop_oserror(lua_State *L, int err, const char *what) {
  laloop_push_oserror(L, err, what);
  return lua_error(L);
}

int laloop_error(lua_State *L, const char *kind, const char *msg) {
  laloop_push_error(L, kind, msg);
  return lua_error(L);
}

int laloop_is_kind(lua_State *L, int idx, const char *kind) {
  int yes = 0;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, LALOOP_ERROR_MT);
  if (lua_rawequal(L, -1, -2)) {
    const char *k;
    lua_getfield(L, idx, "kind");
    k = lua_tostring(L, -1);
    yes = k && strcmp(k, kind) == 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return yes;
}

/* "CancelledError: msg"; an OS error prints its code instead of its kind
 * ("ECONNREFUSED: connection refused"), with what failed after it. */
static int err_tostring(lua_State *L) {
  const char *kind, *msg, *code, *what;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "what");
  kind = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "Error";
  msg = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : NULL;
  code = lua_type(L, 4) == LUA_TSTRING ? lua_tostring(L, 4) : NULL;
  what = lua_type(L, 5) == LUA_TSTRING ? lua_tostring(L, 5) : NULL;
  if (code)
    kind = code;
  if (msg && *msg && what)
    lua_pushfstring(L, "%s: %s (%s)", kind, msg, what);
  else if (msg && *msg)
    lua_pushfstring(L, "%s: %s", kind, msg);
  else
    lua_pushstring(L, kind);
  return 1;
}

#define PREDICATE(fname, kind)                                                \
  static int fname(lua_State *L) {                                           \
    lua_pushboolean(L, laloop_is_kind(L, 1, kind));                           \
    return 1;                                                                 \
  }
PREDICATE(err_is_cancelled, "CancelledError")
PREDICATE(err_is_timeout, "TimeoutError")
PREDICATE(err_is_invalid_state, "InvalidStateError")
PREDICATE(err_is_queue_empty, "QueueEmpty")
PREDICATE(err_is_queue_full, "QueueFull")
PREDICATE(err_is_queue_shutdown, "QueueShutDown")
PREDICATE(err_is_interrupted, "KeyboardInterrupt")
PREDICATE(err_is_broken_barrier, "BrokenBarrierError")
PREDICATE(err_is_runtime_error, "RuntimeError")
PREDICATE(err_is_value_error, "ValueError")
PREDICATE(err_is_task_group_error, "TaskGroupError")
PREDICATE(err_is_os_error, "OSError")
PREDICATE(err_is_incomplete_read, "IncompleteReadError")
PREDICATE(err_is_limit_overrun, "LimitOverrunError")

/* An OS error about a connection: refused, reset, aborted, broken, timed
 * out, unreachable (the errors of connecting and of a connection lost). */
static int err_is_connection_error(lua_State *L) {
  static const int codes[] = {AL_ECONNREFUSED, AL_ECONNRESET, AL_ECONNABORTED,
                              AL_EPIPE, AL_ESHUTDOWN, AL_ETIMEDOUT,
                              AL_EHOSTUNREACH, AL_ENETUNREACH, AL_EHOSTDOWN,
                              AL_ENETDOWN, AL_ENOTCONN, AL_EADDRNOTAVAIL};
  int yes = 0;
  if (laloop_is_kind(L, 1, "OSError")) {
    lua_Integer e;
    size_t i;
    lua_getfield(L, 1, "errno");
    e = -lua_tointeger(L, -1);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
      yes |= codes[i] == e;
  }
  lua_pushboolean(L, yes);
  return 1;
}

PREDICATE(err_is_dns_error, "DNSError")

/* aloop.error(kind [, message]) makes an error value of aloop's kind, for
 * the parts of aloop written in Lua. */
static int err_new(lua_State *L) {
  laloop_push_error(L, luaL_checkstring(L, 1), luaL_optstring(L, 2, NULL));
  return 1;
}

/* ---- reports and message handlers ------------------------------------ */

static int tostring_p(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

const char *laloop_tostring(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  lua_pushcfunction(L, tostring_p);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(a %s value whose __tostring failed)",
                    luaL_typename(L, idx));
  }
  return lua_tostring(L, -1);
}

/* Tell of an error nobody will see otherwise: through the handler set with
 * loop:set_exception_handler(fn) if there is one (fn gets a context table
 * with message, exception, traceback), else on stderr. Never raises. */
void laloop_report(lua_State *L, lstate *S, const char *what, int err_idx,
                   int tb_idx) {
  int base = lua_gettop(L);
  err_idx = err_idx ? lua_absindex(L, err_idx) : 0;
  tb_idx = tb_idx ? lua_absindex(L, tb_idx) : 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  if (lua_getfield(L, -1, "handler") != LUA_TNIL) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, what);
    lua_setfield(L, -2, "message");
    if (err_idx) {
      lua_pushvalue(L, err_idx);
      lua_setfield(L, -2, "exception");
    }
    if (tb_idx) {
      lua_pushvalue(L, tb_idx);
      lua_setfield(L, -2, "traceback");
    }
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) {
      lua_settop(L, base);
      return;
    }
    fprintf(stderr, "aloop: exception handler failed: %s\n",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  }
  if (S->embed.err_fn) { /* the host's */
    const char *msg = err_idx ? laloop_tostring(L, err_idx) : NULL;
    const char *tb =
        tb_idx && lua_type(L, tb_idx) == LUA_TSTRING ? lua_tostring(L, tb_idx) : NULL;
    S->embed.err_fn(L, what, msg, tb, S->embed.err_ud);
    lua_settop(L, base);
    return;
  }
  if (tb_idx && lua_type(L, tb_idx) == LUA_TSTRING) {
    fprintf(stderr, "aloop: %s\n%s\n", what, lua_tostring(L, tb_idx));
  } else if (err_idx) {
    fprintf(stderr, "aloop: %s\n%s\n", what, laloop_tostring(L, err_idx));
  } else {
    fprintf(stderr, "aloop: %s\n", what);
  }
  fflush(stderr);
  lua_settop(L, base);
}

/* The message handler of a task body: the error passes unchanged, and the
 * traceback of where it was raised is kept beside it (extras.tb). An error
 * re-raised from an awaited task keeps that task's traceback. */
int laloop_traceback_msgh(lua_State *L) {
  lstate *S = laloop_find_state(L);
  ltask *lt = S ? S->sched.cur : NULL;
  if (!lt || lt->ref == LUA_NOREF || laloop_is_kind(L, 1, "CancelledError"))
    return 1;
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors); /* 2 */
  lua_getfield(L, 2, "last_err");                /* 3 */
  if (!lua_isnil(L, 1) && lua_rawequal(L, 1, 3)) {
    lua_getfield(L, 2, "last_tb"); /* 4 */
  } else {
    const char *msg = laloop_tostring(L, 1);
    luaL_traceback(L, L, msg, 1); /* 5 */
    lua_remove(L, 4);
    lua_pushvalue(L, 1);
    lua_setfield(L, 2, "last_err");
    lua_pushvalue(L, 4);
    lua_setfield(L, 2, "last_tb");
  }
  lua_rawgeti(L, 2, lt->ref); /* the task */
  laloop_push_extras(L, S, -1, 1);
  lua_pushvalue(L, 4);
  lua_setfield(L, -2, "tb");
  lua_settop(L, 1);
  return 1;
}

/* Message handler of callbacks (call_soon, done callbacks): the error
 * passes unchanged; its traceback, taken where it was raised, waits in
 * anchors.cb_tb for the report. */
int laloop_callback_msgh(lua_State *L) {
  lstate *S = laloop_find_state(L);
  if (!S)
    return 1;
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  luaL_traceback(L, L, laloop_tostring(L, 1), 1);
  lua_setfield(L, 2, "cb_tb");
  lua_settop(L, 1);
  return 1;
}

/* _oserror(errno [, what]): the OS error value for errno, as the I/O
 * functions raise it (for specs and for Lua parts). */
static int err_os_new(lua_State *L) {
  laloop_push_oserror(L, -(int)luaL_checkinteger(L, 1),
                      luaL_optstring(L, 2, NULL));
  return 1;
}

void laloop_open_errors(lua_State *L, int mod) {
  static const luaL_Reg fns[] = {
      {"is_cancelled", err_is_cancelled},
      {"is_timeout", err_is_timeout},
      {"is_invalid_state", err_is_invalid_state},
      {"is_queue_empty", err_is_queue_empty},
      {"is_queue_full", err_is_queue_full},
      {"is_queue_shutdown", err_is_queue_shutdown},
      {"is_interrupted", err_is_interrupted},
      {"is_broken_barrier", err_is_broken_barrier},
      {"is_runtime_error", err_is_runtime_error},
      {"is_value_error", err_is_value_error},
      {"is_task_group_error", err_is_task_group_error},
      {"is_os_error", err_is_os_error},
      {"is_incomplete_read", err_is_incomplete_read},
      {"is_limit_overrun", err_is_limit_overrun},
      {"is_connection_error", err_is_connection_error},
      {"is_dns_error", err_is_dns_error},
      {"error", err_new},
      {"_oserror", err_os_new},
      {NULL, NULL}};
  if (luaL_newmetatable(L, LALOOP_ERROR_MT)) {
    lua_pushcfunction(L, err_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "aloop.Error");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
