/* lsync.c -- the wait queue as a Lua value (aloop._WaitQueue): the one
 * primitive in C under Lock, Semaphore, Event, Condition, Barrier and the
 * queues, which aloop/sync.lua builds on it. */
#include "laloop.h"

typedef struct lwaitq {
  al_waitq_t q;
  lstate *S;
} lwaitq;

static lwaitq *check_waitq(lua_State *L) {
  lwaitq *w = lua_touserdata(L, 1);
  const void *mt = NULL;
  if (w && lua_getmetatable(L, 1)) {
    mt = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
  if (!w || mt != laloop_state(L)->mt.waitq)
    luaL_typeerror(L, 1, "aloop wait queue");
  return w;
}

/* _WaitQueue(mode, permits): mode "keep" (permits), "pass" or "drop". */
static int wq_new(lua_State *L) {
  static const char *const modes[] = {"keep", "pass", "drop", NULL};
  int mode = luaL_checkoption(L, 1, "keep", modes);
  lua_Integer permits = luaL_optinteger(L, 2, 0);
  lwaitq *w = lua_newuserdatauv(L, sizeof *w, 0);
  luaL_argcheck(L, permits >= 0, 2, "permits must not be negative");
  al_waitq_init(&w->q, mode, (long)permits);
  w->S = laloop_state(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, w->S->mt.waitq);
  lua_setmetatable(L, -2);
  return 1;
}

/* A waiter cancelled after it was granted passes its grant on. */
static int wq_forfeit(ltask *lt, void *q) {
  al_waitq_resume(q, &lt->t, true);
  return 0;
}

static int wq_wait_k(lua_State *L, int status, lua_KContext ctx) {
  lwaitq *w = (lwaitq *)ctx;
  if (status != LUA_OK) {
    laloop_woken(L, status, ctx, wq_wait_k, wq_forfeit, &w->q);
    al_waitq_resume(&w->q, &w->S->sched.cur->t, false);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* q:wait([fname]): take a free permit at once, or wait in line for a grant;
 * errors name the primitive's method, fname ("Lock:acquire"). */
static int wq_wait(lua_State *L) {
  lwaitq *w = check_waitq(L);
  ltask *lt;
  if (al_waitq_try(&w->q))
    return wq_wait_k(L, LUA_OK, (lua_KContext)w);
  lt = w->S->sched.cur;
  if (!lt || lt->co != L) { /* named as the caller knows it, at its line */
    luaL_where(L, 2);
    lua_pushfstring(L, "aloop.%s called outside a task",
                    luaL_optstring(L, 2, "wait"));
    lua_concat(L, 2);
    return lua_error(L);
  }
  lt = laloop_current(L, luaL_optstring(L, 2, "wait"));
  al_waitq_park(&w->q, &lt->t);
  return laloop_park(L, (lua_KContext)w, wq_wait_k);
}

static int wq_try(lua_State *L) {
  lua_pushboolean(L, al_waitq_try(&check_waitq(L)->q));
  return 1;
}

/* q:grant([n]): wake up to n waiters (1), returns how many. */
static int wq_grant(lua_State *L) {
  lwaitq *w = check_waitq(L);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, n >= 0, 2, "must not be negative");
  lua_pushinteger(L, (lua_Integer)al_waitq_grant(&w->q, (size_t)n));
  return 1;
}

static int wq_permits(lua_State *L) {
  lua_pushinteger(L, check_waitq(L)->q.permits);
  return 1;
}

static int wq_waiting(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)al_waitq_count(&check_waitq(L)->q));
  return 1;
}

/* q:must_wait(available): whether a newcomer must queue, with `available`
 * free slots or items: when waiters are queued, or the woken ones (pending)
 * have claimed them all. The queues' fast path, in one call. */
static int wq_must_wait(lua_State *L) {
  lwaitq *w = check_waitq(L);
  lua_Integer avail = luaL_checkinteger(L, 2);
  lua_pushboolean(L, al_waitq_must_wait(&w->q, (long)avail));
  return 1;
}

static int wq_pending(lua_State *L) {
  lua_pushinteger(L, check_waitq(L)->q.pending);
  return 1;
}

static int wq_gc(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  lwaitq *w = laloop_gc_self(L, S->mt.waitq, "aloop wait queue");
  if (w)
    al_waitq_destroy(&w->q);
  return 0;
}

void laloop_open_sync(lua_State *L, int mod, int up) {
  static const luaL_Reg methods[] = {{"wait", wq_wait},       {"try", wq_try},
                                     {"grant", wq_grant},     {"permits", wq_permits},
                                     {"waiting", wq_waiting}, {"pending", wq_pending},
                                     {"must_wait", wq_must_wait},
                                     {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__gc", wq_gc}, {NULL, NULL}};
  ((lstate *)lua_touserdata(L, up))->mt.waitq =
      laloop_new_class(L, up, LALOOP_WAITQ_MT, methods, metas);
  lua_pushvalue(L, up);
  lua_pushcclosure(L, wq_new, 1);
  lua_setfield(L, mod, "_WaitQueue");
}
