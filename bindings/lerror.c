/* lerror.c -- error values raised by aloop itself (cancellation, timeout,
 * invalid state, queue empty/full): tables with a `kind` and a `message`
 * that print well and are recognised by aloop.is_<kind>. User errors never
 * pass through here: they travel unchanged. */
#include <string.h>

#include "laloop.h"

void laloop_push_error(lua_State *L, const char *kind, const char *msg) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (msg) {
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
  }
  luaL_setmetatable(L, LALOOP_ERROR_MT);
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

static int err_tostring(lua_State *L) {
  const char *kind, *msg;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  kind = luaL_optstring(L, 2, "Error");
  msg = lua_tostring(L, 3);
  if (msg && *msg)
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

/* aloop.error(kind [, message]) makes an error value of aloop's kind, for
 * the parts of aloop written in Lua. */
static int err_new(lua_State *L) {
  laloop_push_error(L, luaL_checkstring(L, 1), luaL_optstring(L, 2, NULL));
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
      {"error", err_new},
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
