/* lloop.c -- the loop object of aloop.get_running_loop(): its clock and
 * callbacks scheduled soon, later or at a time (asyncio's Handle and
 * TimerHandle), run from the scheduler, never inside libev; and the one
 * runner of queued Lua callbacks (these and done callbacks). */
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

/* Run a queued callback, dropping its anchor: the anchored userdata's user
 * value 1 is the function and user value 2 its one argument or, if
 * `packed`, the table of its arguments. An error is reported as `what`,
 * with the traceback of where it was raised. */
void laloop_run_callback(lstate *S, int *ref, int packed, const char *what) {
  lua_State *L = S->sched.driver;
  int base = lua_gettop(L), nargs = 1, status;
  laloop_push_anchored(L, S, *ref);
  laloop_unanchor(L, S, *ref);
  *ref = LUA_NOREF;
  lua_pushcfunction(L, laloop_callback_msgh);
  lua_getiuservalue(L, base + 1, 1);
  lua_getiuservalue(L, base + 1, 2);
  if (packed) {
    int i;
    nargs = (int)lua_rawlen(L, base + 4);
    if (!lua_checkstack(L, nargs + LUA_MINSTACK)) {
      /* Nothing may escape the scheduler: tell of it like a failure. */
      lua_settop(L, base);
      lua_pushliteral(L, "stack overflow (too many arguments for a callback)");
      laloop_report(L, S, what, base + 1, 0);
      lua_settop(L, base);
      return;
    }
    for (i = 1; i <= nargs; i++)
      lua_rawgeti(L, base + 4, i);
    lua_remove(L, base + 4);
  }
  status = lua_pcall(L, nargs, 0, base + 2);
  if (status != LUA_OK) {
    int err = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
    lua_getfield(L, -1, "cb_tb");
    lua_pushnil(L);
    lua_setfield(L, -3, "cb_tb");
    laloop_report(L, S, what, err, lua_gettop(L));
  }
  lua_settop(L, base);
}

static void call_run(al_handle_t *h) {
  lcall *c = al_container_of(h, lcall, h);
  laloop_run_callback(c->S, &c->ref, 1, "Exception in callback");
}

/* fn at fidx, its arguments after it up to the top; delay < 0: soon. */
static int schedule(lua_State *L, int fidx, double delay, const char *fname) {
  lstate *S = laloop_state(L);
  int top = lua_gettop(L), i;
  lcall *c;
  luaL_argexpected(L, laloop_is_callable(L, fidx), fidx, "function");
  if (S->embed.shut) /* the loop is closed: it would never run */
    return luaL_error(L, "%s: aloop was shut down", fname);
  c = lua_newuserdatauv(L, sizeof *c, 2);
  al_handle_init(&c->h, call_run);
  al_timer_init(&c->timer, &c->h);
  c->S = S;
  c->ref = LUA_NOREF;
  c->cancelled = 0;
  c->when = delay >= 0 ? al_time() + delay : al_time();
  lua_rawgetp(L, LUA_REGISTRYINDEX, S->mt.handle);
  lua_setmetatable(L, -2);
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

static int lo_call_soon(lua_State *L) {
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  return schedule(L, 2, -1, "call_soon");
}

static int lo_call_later(lua_State *L) {
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  return schedule(L, 3, laloop_check_delay(L, 2), "call_later");
}

static int lo_call_at(lua_State *L) {
  double when;
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  when = luaL_checknumber(L, 2);
  luaL_argcheck(L, when == when, 2, "not a number");
  when -= al_time();
  return schedule(L, 3, when > 0 ? when : 0, "call_at");
}

/* loop:create_task(fn, ...): aloop.create_task, as asyncio's loop has it. */
static int lo_create_task(lua_State *L) {
  lstate *S = luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  luaL_argexpected(L, laloop_is_callable(L, 2), 2, "function");
  laloop_new_task(L, S, NULL, 2, lua_gettop(L) - 2);
  return 1;
}

static int lo_time(lua_State *L) {
  luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  lua_pushnumber(L, al_time());
  return 1;
}

static int lo_is_running(lua_State *L) {
  lstate *S = luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  lua_pushboolean(L, S->sched.cur != NULL || al_loop_running(&S->loop));
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
                  (S->sched.cur || al_loop_running(&S->loop)) ? "running" : "idle");
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
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  lcall *c = laloop_gc_self(L, S->mt.handle, "aloop Handle");
  if (c) {
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
      {"create_task", lo_create_task},
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
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_setfield(L, -2, "__metatable"); /* as laloop_new_class's */
  lua_pop(L, 1);
  ((lstate *)lua_touserdata(L, up))->mt.handle =
      laloop_new_class(L, up, LALOOP_HANDLE_MT, handle_methods, handle_metas);
}
