/* lgather.c -- aloop.gather: one future over many children (the core's
 * al_gather), awaited at once by the calling task; its children are Tasks,
 * Futures or functions run as new tasks, given as arguments or as one
 * array (a million do not fit on the Lua stack). */
#include "laloop.h"

/* ---- gather ------------------------------------------------------------- */

static int gather_gc(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  al_gather_t *g = laloop_gc_self(L, S->mt.gather, "aloop gather");
  if (g)
    al_gather_destroy(g);
  return 0;
}

/* gather(a, b, ... [, opts]) or gather(list [, opts]) */
static int l_gather(lua_State *L) {
  lstate *S = laloop_state(L);
  int top = lua_gettop(L), list = 0, opts = 0, gi, ci;
  lua_Integer n, i;
  al_gather_t *g;
  int rex = 0;
  laloop_current(L, "gather");
  if (top >= 1 && lua_type(L, 1) == LUA_TTABLE && !lua_getmetatable(L, 1)) {
    list = 1;
    n = luaL_len(L, 1);
    if (top >= 2) {
      luaL_checktype(L, 2, LUA_TTABLE);
      opts = 2;
    }
  } else {
    n = top;
    if (top >= 1 && lua_type(L, top) == LUA_TTABLE &&
        !lua_getmetatable(L, top)) {
      opts = top;
      n = top - 1;
    }
  }
  if (opts) {
    lua_getfield(L, opts, "return_exceptions");
    rex = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  g = lua_newuserdatauv(L, al_gather_size((size_t)n), 2);
  al_gather_init(g, &S->loop, (size_t)n, rex);
  laloop_push_class(L, S->mtref.gather);
  lua_setmetatable(L, -2);
  gi = lua_gettop(L);
  lua_createtable(L, (int)n, 1); /* room for the results' "n" (lfuture.c) */
  ci = gi + 1;
  lua_pushvalue(L, ci);
  lua_setiuservalue(L, gi, 1);
  for (i = 1; i <= n; i++) {
    al_future_t *child;
    int item;
    if (list)
      lua_rawgeti(L, 1, i);
    else
      lua_pushvalue(L, (int)i);
    item = lua_gettop(L);
    child = laloop_tofuture(L, item);
    if (!child) {
      if (!laloop_is_callable(L, item)) {
        if (list)
          return luaL_argerror(
              L, 1,
              lua_pushfstring(L, "item %d: Task, Future or function expected, "
                                 "got %s",
                              (int)i, luaL_typename(L, item)));
        return luaL_typeerror(L, (int)i, "Task, Future or function");
      }
      laloop_new_task(L, S, NULL, item, 0);
      child = lua_touserdata(L, -1);
      lua_replace(L, item);
    }
    lua_rawseti(L, ci, i);
    al_gather_add(g, (size_t)(i - 1), child);
  }
  lua_settop(L, gi);
  return laloop_await(L, gi);
}

void laloop_open_gather(lua_State *L, int mod, int up) {
  static const luaL_Reg metas[] = {{"__gc", gather_gc}, {NULL, NULL}};
  static const luaL_Reg none[] = {{NULL, NULL}};
  static const luaL_Reg fns[] = {{"gather", l_gather}, {NULL, NULL}};
  lstate *S = lua_touserdata(L, up);
  S->mt.gather = laloop_new_class(L, up, LALOOP_GATHER_MT, none, metas);
  luaL_getmetatable(L, LALOOP_GATHER_MT);
  S->mtref.gather = laloop_class_ref(L);
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
