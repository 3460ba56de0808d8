/* lloop.c -- the loop object of aloop.get_running_loop(): its clock and
 * callbacks scheduled soon, later or at a time (asyncio's Handle and
 * TimerHandle), run from the scheduler, never inside libev. */
#include "laloop.h"

/* A scheduled callback. User values: 1 fn, 2 packed arguments. */
typedef struct lcall {
  al_handle_t h;
  al_timer_t timer;
  lstate *S;
  int ref;
  int cancelled;
  double when;
} lcall;

static void call_run(al_handle_t *h) {
  lcall *c = al_container_of(h, lcall, h);
  laloop_run_callback(c->S, &c->ref, 1, "Exception in callback");
}

/* fn at fidx, its arguments after it up to the top; delay < 0: soon. */
static int schedule(lua_State *L, int fidx, double delay) {
  lstate *S = laloop_state(L);
  int top = lua_gettop(L), i;
  lcall *c;
  if (lua_type(L, fidx) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, fidx, "__call") == LUA_TNIL)
      luaL_typeerror(L, fidx, "function");
    lua_pop(L, 1);
  }
  c = lua_newuserdatauv(L, sizeof *c, 2);
  al_handle_init(&c->h, call_run);
  al_timer_init(&c->timer, &c->h);
  c->S = S;
  c->ref = LUA_NOREF;
  c->cancelled = 0;
  c->when = delay >= 0 ? al_time() + delay : al_time();
  luaL_setmetatable(L, LALOOP_HANDLE_MT);
  lua_pushvalue(L, fidx);
  lua_setiuservalue(L, -2, 1);
  lua_createtable(L, top - fidx, 0);
  for (i = fidx + 1; i <= top; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i - fidx);
  }
  lua_setiuservalue(L, -2, 2);
  c->ref = laloop_anchor(L, S, -1);
  if (delay < 0)
    al_loop_post(&S->loop, &c->h);
  else
    al_timer_add(&S->loop, &c->timer, al_time() + delay);
  return 1;
}

static double check_delay(lua_State *L, int idx) {
  double d = luaL_checknumber(L, idx);
  luaL_argcheck(L, d == d, idx, "not a number");
  return d < 0 ? 0 : d;
}

static int lo_call_soon(lua_State *L) {
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  return schedule(L, 2, -1);
}

static int lo_call_later(lua_State *L) {
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  return schedule(L, 3, check_delay(L, 2));
}

static int lo_call_at(lua_State *L) {
  double when;
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  when = luaL_checknumber(L, 2);
  luaL_argcheck(L, when == when, 2, "not a number");
  return schedule(L, 3, when - al_time() > 0 ? when - al_time() : 0);
}

static int lo_time(lua_State *L) {
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  lua_pushnumber(L, al_time());
  return 1;
}

static int lo_is_running(lua_State *L) {
  lstate *S = luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  lua_pushboolean(L, S->cur != NULL || S->loop.depth > 0);
  return 1;
}

static int lo_set_exception_handler(lua_State *L) {
  lstate *S = luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  if (!lua_isnil(L, 2))
    luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "handler");
  return 0;
}

static int lo_tostring(lua_State *L) {
  lstate *S = luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  lua_pushfstring(L, "<aloop.Loop %s>",
                  (S->cur || S->loop.depth) ? "running" : "idle");
  return 1;
}

static int h_cancel(lua_State *L) {
  lcall *c = luaL_checkudata(L, 1, LALOOP_HANDLE_MT);
  int was = c->cancelled;
  c->cancelled = 1; /* as asyncio: also after it ran */
  if (was || c->ref == LUA_NOREF)
    return 0;
  al_timer_remove(&c->S->loop, &c->timer);
  al_loop_unpost(&c->S->loop, &c->h);
  laloop_unanchor(L, c->S, c->ref);
  c->ref = LUA_NOREF;
  return 0;
}

static int h_cancelled(lua_State *L) {
  lcall *c = luaL_checkudata(L, 1, LALOOP_HANDLE_MT);
  lua_pushboolean(L, c->cancelled);
  return 1;
}

static int h_when(lua_State *L) {
  lcall *c = luaL_checkudata(L, 1, LALOOP_HANDLE_MT);
  lua_pushnumber(L, c->when);
  return 1;
}

static int h_gc(lua_State *L) {
  lcall *c = lua_touserdata(L, 1);
  if (c->S && !c->S->closed) {
    al_timer_remove(&c->S->loop, &c->timer);
    al_loop_unpost(&c->S->loop, &c->h);
  }
  return 0;
}

void laloop_open_loop(lua_State *L, int mod, int up) {
  static const luaL_Reg loop_methods[] = {
      {"time", lo_time},
      {"call_soon", lo_call_soon},
      {"call_later", lo_call_later},
      {"call_at", lo_call_at},
      {"is_running", lo_is_running},
      {"set_exception_handler", lo_set_exception_handler},
      {NULL, NULL}};
  static const luaL_Reg handle_methods[] = {{"cancel", h_cancel},
                                            {"cancelled", h_cancelled},
                                            {"when", h_when},
                                            {NULL, NULL}};
  static const luaL_Reg handle_metas[] = {{"__gc", h_gc}, {NULL, NULL}};
  (void)mod;
  luaL_getmetatable(L, LALOOP_LOOP_MT);
  lua_pushcfunction(L, lo_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, loop_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  laloop_new_class(L, up, LALOOP_HANDLE_MT, handle_methods, handle_metas);
}
