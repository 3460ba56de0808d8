/* lparts.c -- the parts of the module written in Lua (bindings/lua/aloop,
 * compiled in by the Makefile as laloop_lua_parts): the private helpers P
 * they get as their second argument, the private environment they run in,
 * and their loading (eager ones as the module opens, the others through
 * package.preload). */
#include <string.h>

#include <lualib.h>

#include "laloop.h"

/* ---- private helpers of the Lua parts ---------------------------------- */

/* The Lua parts get these as their second argument, so that each check
 * exists once, in C, and names the public function at the caller's line.
 * `level` counts as error()'s does, from the Lua function that asks: 1
 * (the default) blames its caller, 2 its caller's caller. */

static int where_level(lua_State *L, int idx) {
  return 1 + (int)luaL_optinteger(L, idx, 1);
}

static int raise_argerror(lua_State *L, int level, int argn, const char *fname,
                          const char *msg) {
  luaL_where(L, level);
  lua_pushfstring(L, "bad argument #%d to '%s' (%s)", argn, fname, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

static const char *type_name(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER &&
      lua_tonumber(L, idx) != lua_tonumber(L, idx))
    return "nan";
  return lua_isnone(L, idx) ? "no value" : luaL_typename(L, idx);
}

/* P.argerror(argn, fname, msg [, level]) */
static int p_argerror(lua_State *L) {
  int level = where_level(L, 4), argn = (int)luaL_checkinteger(L, 1);
  const char *fname = luaL_checkstring(L, 2), *msg = luaL_checkstring(L, 3);
  return raise_argerror(L, level, argn, fname, msg);
}

/* P.typeerror(value, argn, fname, expected [, level]) */
static int p_typeerror(lua_State *L) {
  int level = where_level(L, 5), argn = (int)luaL_checkinteger(L, 2);
  const char *fname = luaL_checkstring(L, 3);
  const char *expected = luaL_checkstring(L, 4);
  return raise_argerror(
      L, level, argn, fname,
      lua_pushfstring(L, "%s expected, got %s", expected, type_name(L, 1)));
}

/* P.check_delay(v, argn, fname [, allow_nil [, level]]) -> v: a number, not
 * NaN (or nil, when allowed). */
static int p_check_delay(lua_State *L) {
  if (lua_isnil(L, 1) && lua_toboolean(L, 4))
    return 0;
  if (lua_type(L, 1) != LUA_TNUMBER ||
      lua_tonumber(L, 1) != lua_tonumber(L, 1)) {
    int level = where_level(L, 5), argn = (int)luaL_checkinteger(L, 2);
    const char *fname = luaL_checkstring(L, 3);
    return raise_argerror(
        L, level, argn, fname,
        lua_pushfstring(L, "number expected, got %s", type_name(L, 1)));
  }
  lua_settop(L, 1);
  return 1;
}

static int p_is_future(lua_State *L) {
  lua_pushboolean(L, laloop_tofuture(L, 1) != NULL);
  return 1;
}

static int p_callable(lua_State *L) {
  lua_pushboolean(L, laloop_is_callable(L, 1));
  return 1;
}

/* P.need_task(fname [, level]) -> the running task, which may wait here;
 * raises "aloop.<fname> called outside a task" otherwise. */
static int p_need_task(lua_State *L) {
  lstate *S = laloop_state(L);
  const char *fname = luaL_checkstring(L, 1);
  const char *why = NULL;
  if (!S->sched.cur || S->sched.cur->co != L)
    why = "called outside a task";
  else if (!lua_isyieldable(L))
    why = "cannot wait here (inside a metamethod or a C function that does "
          "not allow yielding)";
  if (why) {
    luaL_where(L, where_level(L, 2));
    lua_pushfstring(L, "aloop.%s %s", fname, why);
    lua_concat(L, 2);
    return lua_error(L);
  }
  laloop_push_anchored(L, S, S->sched.cur->ref);
  return 1;
}

/* P.state(f) -> "pending", "finished", "failed" or "cancelled" (a task
 * that failed with nil has no error value to tell it by). */
static int p_state(lua_State *L) {
  al_future_t *f = laloop_tofuture(L, 1);
  if (!f)
    return luaL_typeerror(L, 1, "aloop Task or Future");
  lua_pushstring(L, laloop_state_name(f));
  return 1;
}

/* P.tostring(v): its text, never raising. */
static int p_tostring(lua_State *L) {
  luaL_checkany(L, 1);
  laloop_tostring(L, 1);
  return 1;
}

/* Loader of a Lua part (package.preload): upvalues module, helpers, chunk. */
static int load_part(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_call(L, 2, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  return 1;
}

/* The parts that complete the module itself run as it opens; the others
 * (aloop.http, later) wait in package.preload for their require. */
static int part_is_eager(const char *name) {
  return strcmp(name, "aloop.tasks") == 0 || strcmp(name, "aloop.sync") == 0 ||
         strcmp(name, "aloop.streams") == 0 ||
         strcmp(name, "aloop.threads") == 0 ||
         strcmp(name, "aloop.process") == 0;
}

/* The base library, opened into a fresh table: luaopen_base fills the
 * global table, so the registry's one is swapped for the call. */
static int open_base_into(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS); /* 2: the real one */
  lua_pushvalue(L, 1);
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushcfunction(L, luaopen_base);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) { /* out of memory only */
    lua_pushvalue(L, 2);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    return lua_error(L);
  }
  lua_pushvalue(L, 2);
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  return 0;
}

/* The environment of the Lua parts: the standard functions they use, as
 * the libraries made them, whatever the host opened (a bare state) and
 * whatever a script later does to its globals (replacing pairs, setting
 * string to nil). A library the host opened is shared (package.loaded);
 * one it did not open is opened here. */
static void push_parts_env(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_COLIBNAME, luaopen_coroutine},
                                  {LUA_DBLIBNAME, luaopen_debug},
                                  {LUA_IOLIBNAME, luaopen_io},
                                  {LUA_OSLIBNAME, luaopen_os},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},
                                  {NULL, NULL}};
  const luaL_Reg *lib;
  int env;
  lua_createtable(L, 0, 32);
  env = lua_gettop(L);
  lua_pushcfunction(L, open_base_into);
  lua_pushvalue(L, env);
  lua_call(L, 1, 0);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  for (lib = libs; lib->name; lib++) {
    if (lua_getfield(L, -1, lib->name) != LUA_TTABLE) {
      lua_pop(L, 1);
      luaL_requiref(L, lib->name, lib->func, 0); /* into package.loaded */
    }
    lua_setfield(L, env, lib->name);
  }
  lua_pop(L, 1);
  /* require as it is when aloop opens (aloop.http loads lua-cjson with
   * it); nil in a state without the package library */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushliteral(L, "require");
  lua_rawget(L, -2);
  lua_setfield(L, env, "require");
  lua_pop(L, 1);
}

void laloop_open_parts(lua_State *L, int mod, int up) {
  static const luaL_Reg helpers[] = {
      {"argerror", p_argerror},   {"typeerror", p_typeerror},
      {"check_delay", p_check_delay}, {"is_future", p_is_future},
      {"callable", p_callable},   {"need_task", p_need_task},
      {"state", p_state},         {"tostring", p_tostring},
      {NULL, NULL}};
  const laloop_part *p;
  int priv, preload, loaded, env;
  push_parts_env(L);
  env = lua_gettop(L);
  lua_createtable(L, 0, 8);
  priv = lua_gettop(L);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, helpers, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  preload = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  loaded = lua_gettop(L);
  for (p = laloop_lua_parts; p->name; p++) {
    lua_pushvalue(L, mod);
    lua_pushvalue(L, priv);
    if (luaL_loadbufferx(L, p->src, p->len, p->chunkname, "t") != LUA_OK)
      lua_error(L);
    lua_pushvalue(L, env);
    lua_setupvalue(L, -2, 1); /* its _ENV */
    lua_pushcclosure(L, load_part, 3);
    if (part_is_eager(p->name)) {
      lua_call(L, 0, 1);
      lua_setfield(L, loaded, p->name);
    } else {
      lua_setfield(L, preload, p->name);
    }
  }
  lua_settop(L, env - 1);
}
