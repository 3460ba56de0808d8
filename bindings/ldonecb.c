/* ldonecb.c -- done callbacks: Task and Future add_done_callback and
 * remove_done_callback, the callbacks' life while their future is pending
 * and their run, queued like call_soon, once it is done. */
#include "laloop.h"

/* A done callback: fn(future) is queued like call_soon when the future
 * completes, in the order callbacks were added. User values: 1 fn, 2 the
 * future.
 *
 * While its future is pending the callback lives as long as the future
 * does, and no longer: it sits in anchors.donecbs, keyed weakly by the
 * future (an ephemeron), so a future nobody can complete any more is
 * collected with its callbacks, as in asyncio. Completion (in C, where no
 * Lua may run) only queues it; it is found again by its address in
 * anchors.donecb_at when it runs. If the future and the callback become
 * garbage in between, the callback's finaliser anchors it: once queued, it
 * runs. */
typedef struct ldonecb {
  al_handle_t h;
  al_waiter_t w;
  lstate *S;
  int ref;
} ldonecb;

/* Push anchors[name] (name: "donecbs" or "donecb_at"). */
static void push_cb_table(lua_State *L, lstate *S, const char *name) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

static void donecb_run(al_handle_t *h) {
  ldonecb *cb = al_container_of(h, ldonecb, h);
  if (cb->ref == LUA_NOREF) { /* queued by its future's completion */
    lua_State *L = cb->S->sched.driver;
    push_cb_table(L, cb->S, "donecb_at");
    lua_rawgetp(L, -1, cb);
    cb->ref = laloop_anchor(L, cb->S, -1);
    lua_pop(L, 2);
  }
  laloop_run_callback(cb->S, &cb->ref, 0, "Exception in done callback");
}

static void donecb_waiter(al_waiter_t *w, al_future_t *f) {
  ldonecb *cb = al_container_of(w, ldonecb, w);
  al_loop_post(f->loop, &cb->h);
}

static int donecb_gc(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  ldonecb *cb = laloop_gc_self(L, S->mt.donecb, "aloop done callback");
  if (!cb)
    return 0;
  if (al_handle_queued(&cb->h)) { /* its future completed: it runs */
    if (cb->ref == LUA_NOREF)
      cb->ref = laloop_anchor(L, S, 1);
    return 0;
  }
  al_waiter_remove(&cb->w);
  return 0;
}

static int f_add_done_callback(lua_State *L) {
  al_future_t *f = laloop_check_future(L, 1);
  lstate *S = laloop_state(L);
  ldonecb *cb;
  luaL_argexpected(L, laloop_is_callable(L, 2), 2, "function");
  lua_settop(L, 2);
  cb = lua_newuserdatauv(L, sizeof *cb, 2);
  al_handle_init(&cb->h, donecb_run);
  al_waiter_init(&cb->w, donecb_waiter);
  cb->S = S;
  cb->ref = LUA_NOREF;
  lua_rawgetp(L, LUA_REGISTRYINDEX, S->mt.donecb);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 3, 2);
  if (f->state != AL_PENDING) {
    cb->ref = laloop_anchor(L, S, 3);
    al_loop_post(&S->loop, &cb->h);
    return 0;
  }
  push_cb_table(L, S, "donecb_at");
  lua_pushvalue(L, 3);
  lua_rawsetp(L, -2, cb);
  push_cb_table(L, S, "donecbs"); /* donecbs[future] = cb, or a list */
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
  } else {
    if (lua_type(L, -1) != LUA_TTABLE) { /* a second one: make a list */
      lua_createtable(L, 2, 0);
      lua_insert(L, -2);
      lua_rawseti(L, -2, 1);
      lua_pushvalue(L, 1);
      lua_pushvalue(L, -2);
      lua_rawset(L, -4);
    }
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  }
  al_future_add_waiter(f, &cb->w);
  return 0;
}

static int f_remove_done_callback(lua_State *L) {
  al_future_t *f = laloop_check_future(L, 1);
  lstate *S = laloop_state(L);
  al_waiter_t *w, *next;
  int removed = 0, at, cbs;
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  push_cb_table(L, S, "donecb_at");
  at = lua_gettop(L);
  for (w = al_wlist_first(&f->waiters); w; w = next) {
    next = w->link.next == &f->waiters.head
               ? NULL
               : al_container_of(w->link.next, al_waiter_t, link);
    if (w->cb == donecb_waiter) {
      ldonecb *cb = al_container_of(w, ldonecb, w);
      lua_rawgetp(L, at, cb);
      lua_getiuservalue(L, -1, 1);
      if (lua_rawequal(L, -1, 2)) {
        al_waiter_remove(w);
        lua_pushnil(L);
        lua_rawsetp(L, at, cb);
        removed++;
      }
      lua_pop(L, 2);
    }
  }
  if (removed > 0) { /* and from donecbs[future]: keep those still there */
    push_cb_table(L, S, "donecbs");
    cbs = lua_gettop(L);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, cbs) == LUA_TTABLE) {
      lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1), k = 0;
      lua_createtable(L, (int)n, 0);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_getiuservalue(L, -1, 1);
        if (lua_rawequal(L, -1, 2))
          lua_pop(L, 2);
        else {
          lua_pop(L, 1);
          lua_rawseti(L, -2, ++k);
        }
      }
    } else {
      lua_pushnil(L); /* the only one was removed */
    }
    lua_pushvalue(L, 1);
    lua_insert(L, -2);
    lua_rawset(L, cbs);
  }
  lua_pushinteger(L, removed);
  return 1;
}

/* ---- registration ------------------------------------------------------- */

void laloop_open_donecbs(lua_State *L, int up) {
  static const luaL_Reg methods[] = {
      {"add_done_callback", f_add_done_callback},
      {"remove_done_callback", f_remove_done_callback},
      {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__gc", donecb_gc}, {NULL, NULL}};
  static const luaL_Reg none[] = {{NULL, NULL}};
  lstate *S = lua_touserdata(L, up);
  S->mt.donecb = laloop_new_class(L, up, LALOOP_DONECB_MT, none, metas);
  laloop_add_shared_methods(L, up, methods);
}
