/* ltask.c -- tasks as Lua values: the coroutine of each and the step that
 * resumes it, the one wait protocol every blocking call goes through
 * (laloop_current, laloop_park, laloop_woken), await, sleep, and the Task
 * methods. The rules (queueing, cancellation) are the core's; this file
 * moves Lua values around them. */
#include <stdio.h>
#include <string.h>

#include "laloop.h"

static int task_main(lua_State *co);
static void push_name(lua_State *L, int idx);
static void task_step(al_handle_t *h);

/* ---- helpers ------------------------------------------------------------ */

/* Push the extras table of the task at idx (creating it if `create`), or
 * nil. */
int laloop_push_extras(lua_State *L, lstate *S, int idx, int create) {
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_getfield(L, -1, "extras");
  lua_remove(L, -2);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TNIL && create) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
  return lua_type(L, -1) == LUA_TTABLE;
}

static ltask *check_task(lua_State *L, int idx) {
  ltask *lt =
      (ltask *)laloop_tokind(L, laloop_state(L), idx, AL_KIND_TASK, sizeof *lt);
  if (!lt)
    luaL_typeerror(L, idx, "aloop Task");
  return lt;
}

/* ---- the wait protocol --------------------------------------------------- */

ltask *laloop_current(lua_State *L, const char *fname) {
  lstate *S = laloop_state(L);
  ltask *lt = S->sched.cur;
  if (!lt || lt->co != L)
    luaL_error(L, "aloop.%s called outside a task", fname);
  if (!lua_isyieldable(L))
    luaL_error(L,
               "aloop.%s cannot wait here (inside a metamethod or a C "
               "function that does not allow yielding)",
               fname);
  return lt;
}

int laloop_park(lua_State *L, lua_KContext ctx, lua_KFunction k) {
  return lua_yieldk(L, 0, ctx, k);
}

int laloop_raise_cancelled(lua_State *L, ltask *lt) {
  size_t len;
  const char *msg = al_future_msg(&lt->t.fut, &len);
  lt->cancel_now = 0;
  laloop_push_error_n(L, "CancelledError", msg, len);
  return lua_error(L);
}

/* laloop_woken after a park (the direct path, LUA_OK, is inline). */
int laloop_woken_slow(lua_State *L, lua_KContext ctx, lua_KFunction k,
                      laloop_forfeit forfeit, void *arg) {
  ltask *lt = laloop_state(L)->sched.cur;
  if (!lt || lt->co != L) { /* resumed by hand: stay parked */
    lua_pushnil(L);
    lua_pushliteral(L, "aloop: a task's coroutine is resumed by aloop only");
    return lua_yieldk(L, 2, ctx, k);
  }
  if (lt->cancel_now) {
    if (forfeit && forfeit(lt, arg)) {
      lt->cancel_now = 0;
      return AL_ECANCELED;
    }
    return laloop_raise_cancelled(L, lt);
  }
  return lt->t.wake_status;
}

/* ---- tasks -------------------------------------------------------------- */

ltask *laloop_new_task(lua_State *L, lstate *S, al_scope_t *scope, int fidx,
                       int nargs) {
  ltask *lt;
  lua_State *co;
  if (!scope)
    scope = S->sched.cur ? S->sched.cur->t.scope : S->sched.scope;
  fidx = lua_absindex(L, fidx);
  if (S->embed.shut)
    luaL_error(L, "aloop was shut down: no task can run any more");
  if (!scope)
    luaL_error(L, "no running event loop (call aloop.run first)");
  lt = lua_newuserdatauv(L, sizeof *lt, 1);
  memset(lt, 0, sizeof *lt);
  lt->ref = LUA_NOREF;
  laloop_push_class(L, S->mtref.task);
  lua_setmetatable(L, -2);
  co = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  lua_checkstack(L, nargs + 2);
  lua_pushcfunction(L, task_main);
  lua_pushvalue(L, -2); /* the task itself, as task_main's first argument */
  lua_pushvalue(L, fidx);
  {
    int i;
    for (i = 1; i <= nargs; i++)
      lua_pushvalue(L, fidx + i);
  }
  lua_xmove(L, co, nargs + 3);
  lt->co = co;
  if (S->sched.naming_script) {
    S->sched.naming_script = 0;
    lt->id = 0;
  } else {
    lt->id = ++S->sched.ntask;
  }
  lt->ref = laloop_anchor(L, S, -1);
  if (S->debug.on) { /* where it was created, for the report of its error */
    int ud = lua_gettop(L);
    laloop_push_extras(L, S, ud, 1);
    luaL_traceback(L, L, "task created at:", 1);
    lua_setfield(L, -2, "created");
    lua_settop(L, ud);
  }
  al_task_init(&lt->t, &S->loop, scope, task_step);
  return lt;
}

static int task_main_k(lua_State *co, int status, lua_KContext ctx) {
  ltask *lt = (ltask *)ctx;
  if (status == LUA_OK || status == LUA_YIELD) {
    lt->nres = lua_gettop(co) - 1;
    lt->has_error = 0;
    return lt->nres;
  }
  lt->has_error = 1;
  lt->nres = 0;
  return 1;
}

/* The body of every task coroutine: task, fn, args. */
static int task_main(lua_State *co) {
  ltask *lt = lua_touserdata(co, 1);
  lua_pushcfunction(co, laloop_traceback_msgh);
  lua_replace(co, 1); /* the task is anchored; the handler takes its slot */
  return task_main_k(
      co, lua_pcallk(co, lua_gettop(co) - 2, LUA_MULTRET, 1, (lua_KContext)lt,
                     task_main_k),
      (lua_KContext)lt);
}

/* Tasks are made without a finaliser, which would cost a fifth of a spawn
 * (every object with one is set apart, and lives through one more cycle of
 * the collector). A pending task is anchored, and once it has finished
 * (unlinked from everything in the core) there is nothing to undo, unless
 * it owns something: an error to report if nobody retrieves it, a cancel
 * message; such a task gets the finalising metatable as it finishes. The
 * pending ones left when the loop closes are undone by laloop_close_tasks. */
static void task_finished(lstate *S, ltask *lt, int state) {
  lua_State *L = S->sched.driver;
  if (state == AL_FAILED || lt->t.fut.cancel) {
    laloop_push_anchored(L, S, lt->ref);
    laloop_push_class(L, S->mtref.task_gc);
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
  }
  if (state == AL_FAILED && lt->detached) {
    /* Spawned by the host, which awaits nothing: tell it now. */
    int base = lua_gettop(L);
    lua_pushvalue(lt->co, 1);
    lua_xmove(lt->co, L, 1);
    laloop_push_anchored(L, S, lt->ref);
    laloop_push_traceback(L, -1);
    lt->t.fut.flags |= AL_F_RETRIEVED | AL_F_REPORTED;
    laloop_report(L, S, "Task failed", base + 1, base + 3);
    lua_settop(L, base);
  } else if (state == AL_FAILED) {
    /* Remember it until someone retrieves its error, or report it. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
    lua_getfield(L, -1, "failed");
    lua_rawgeti(L, -2, lt->ref);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 2);
  }
  laloop_unanchor(L, S, lt->ref);
  lt->ref = LUA_NOREF;
  al_task_finish(&lt->t, state);
}

/* Debug mode: a step that kept the loop for too long, with where the task
 * stopped (its await, or its end). */
static void report_slow_step(lstate *S, ltask *lt, double dt, int status) {
  lua_State *L = S->sched.driver;
  lua_Debug ar;
  int base = lua_gettop(L), level;
  const char *where = "its end";
  laloop_push_anchored(L, S, lt->ref);
  push_name(L, -1);
  if (status == LUA_YIELD) {
    for (level = 0; lua_getstack(lt->co, level, &ar); level++) {
      lua_getinfo(lt->co, "Sl", &ar);
      if (ar.currentline > 0) {
        where = lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
        break;
      }
    }
  }
  {
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", dt);
    lua_pushfstring(L, "Task '%s' ran %s s without yielding, until %s",
                    lua_tostring(L, base + 2), secs, where);
  }
  laloop_report(L, S, lua_tostring(L, -1), 0, 0);
  lua_settop(L, base);
}

static void task_step(al_handle_t *h) {
  ltask *lt = (ltask *)al_container_of(h, al_task_t, step);
  lstate *S = LALOOP_S(lt);
  lua_State *co = lt->co;
  int nres = 0, nargs = 0, status;
  if (!lt->t.started) {
    if (!al_task_start(&lt->t)) { /* cancelled before its first step */
      lua_settop(co, 0);
      task_finished(S, lt, AL_CANCELLED);
      return;
    }
    nargs = lua_gettop(co) - 1;
  } else {
    lt->cancel_now = al_task_resuming(&lt->t);
    if (lua_status(co) != LUA_YIELD) { /* coroutine.close by hand */
      lua_settop(co, 0);
      laloop_push_error(co, "RuntimeError",
                        "the task's coroutine was closed by hand "
                        "(coroutine.close)");
      lt->has_error = 1;
      lt->nres = 0;
      task_finished(S, lt, AL_FAILED);
      return;
    }
  }
  if (S->debug.on) {
    double t0 = al_time();
    S->sched.cur = lt;
    status = lua_resume(co, S->sched.driver, nargs, &nres);
    S->sched.cur = NULL;
    if (al_time() - t0 > S->debug.slow_step)
      report_slow_step(S, lt, al_time() - t0, status);
  } else {
    S->sched.cur = lt;
    status = lua_resume(co, S->sched.driver, nargs, &nres);
    S->sched.cur = NULL;
  }
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
    if (lt->t.wait == AL_WAIT_NONE && !al_handle_queued(&lt->t.step)) {
      /* A bare coroutine.yield() in a task: it yields to the loop like
       * sleep(0), but cannot be interrupted there. */
      al_task_requeue(&lt->t, lt->cancel_now);
      lt->cancel_now = 0;
    }
    return;
  }
  if (status != LUA_OK) {
    /* Only the message handler itself failing gets here (memory). */
    lua_settop(co, 1);
    lt->has_error = 1;
    lt->nres = 0;
  } else if (lt->has_error) {
    lua_settop(co, 1);
  }
  if (!lt->has_error)
    task_finished(S, lt, AL_DONE);
  else
    task_finished(S, lt,
                  laloop_is_kind(co, 1, "CancelledError") ? AL_CANCELLED
                                                           : AL_FAILED);
}

/* ---- awaiting ----------------------------------------------------------- */

static int await_k(lua_State *L, int status, lua_KContext ctx) {
  laloop_woken(L, status, ctx, await_k, NULL, NULL);
  return laloop_push_outcome(L, (int)ctx, 0);
}

int laloop_await(lua_State *L, int idx) {
  al_future_t *f = lua_touserdata(L, idx);
  ltask *lt;
  idx = lua_absindex(L, idx);
  if (f->state != AL_PENDING)
    return await_k(L, LUA_OK, (lua_KContext)idx);
  lt = laloop_current(L, "await");
  if (f == &lt->t.fut)
    return luaL_error(L, "a task cannot await itself");
  al_task_await(&lt->t, f);
  return laloop_park(L, (lua_KContext)idx, await_k);
}

/* sleep(delay [, value]) returns value, as asyncio's sleep(delay, result). */
static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  laloop_woken(L, status, ctx, sleep_k, NULL, NULL);
  if (ctx) { /* it was given a value */
    lua_settop(L, 2);
    return 1;
  }
  return 0;
}

static int l_sleep(lua_State *L) {
  double d = laloop_check_delay(L, 1);
  ltask *lt = laloop_current(L, "sleep");
  al_task_sleep(&lt->t, d);
  return laloop_park(L, lua_gettop(L) >= 2, sleep_k);
}

/* ---- Task methods ------------------------------------------------------- */

static int l_create_task(lua_State *L) {
  lstate *S = laloop_state(L);
  luaL_argexpected(L, laloop_is_callable(L, 1), 1, "function");
  laloop_new_task(L, S, NULL, 1, lua_gettop(L) - 1);
  return 1;
}

static int t_await(lua_State *L) {
  check_task(L, 1);
  lua_settop(L, 1);
  return laloop_await(L, 1);
}

static int t_cancel(lua_State *L) {
  ltask *lt = check_task(L, 1);
  size_t len = 0;
  const char *msg = luaL_optlstring(L, 2, NULL, &len);
  lua_pushboolean(L, al_task_cancel_n(&lt->t, msg, len));
  return 1;
}

static int t_uncancel(lua_State *L) {
  ltask *lt = check_task(L, 1);
  lua_pushinteger(L, al_task_uncancel(&lt->t));
  return 1;
}

static int t_cancelling(lua_State *L) {
  ltask *lt = check_task(L, 1);
  lua_pushinteger(L, lt->t.ncancels);
  return 1;
}

static void push_name(lua_State *L, int idx) {
  ltask *lt = lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  if (laloop_push_extras(L, LALOOP_S(lt), idx, 0))
    lua_getfield(L, -1, "name");
  else
    lua_pushnil(L);
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (lt->id == 0)
      lua_pushliteral(L, "main");
    else
      lua_pushfstring(L, "Task-%d", (int)lt->id);
  }
}

static int t_name(lua_State *L) {
  check_task(L, 1);
  push_name(L, 1);
  return 1;
}

static int t_set_name(lua_State *L) {
  check_task(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  luaL_tolstring(L, 2, NULL);
  laloop_push_extras(L, laloop_state(L), 1, 1);
  lua_insert(L, -2);
  lua_setfield(L, -2, "name");
  return 0;
}

void laloop_push_traceback(lua_State *L, int idx) {
  if (laloop_push_extras(L, LALOOP_S(lua_touserdata(L, idx)), idx, 0))
    lua_getfield(L, -1, "tb");
  else
    lua_pushnil(L);
  lua_remove(L, -2);
}

static int t_traceback(lua_State *L) {
  check_task(L, 1);
  laloop_push_traceback(L, 1);
  return 1;
}

static int t_tostring(lua_State *L) {
  al_future_t *f = (al_future_t *)check_task(L, 1);
  push_name(L, 1);
  lua_pushfstring(L, "<Task %s name='%s'>", laloop_state_name(f), lua_tostring(L, -1));
  return 1;
}

static int t_gc(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  ltask *lt = laloop_gc_self(L, S->mt.task_gc, "aloop Task");
  if (!lt || !lt->t.fut.loop)
    return 0;
  laloop_report_if_unretrieved(L, 1, &lt->t.fut, "Task exception was never retrieved");
  al_task_destroy(&lt->t);
  return 0;
}

void laloop_close_tasks(lua_State *L, lstate *S) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    ltask *lt = (ltask *)laloop_tokind(L, S, -1, AL_KIND_TASK, sizeof *lt);
    if (lt && lua_type(L, -2) == LUA_TNUMBER)
      al_task_destroy(&lt->t);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

void laloop_open_tasks(lua_State *L, int mod, int up) {
  static const luaL_Reg task_methods[] = {
      {"await", t_await},         {"cancel", t_cancel},
      {"uncancel", t_uncancel},   {"cancelling", t_cancelling},
      {"name", t_name},           {"get_name", t_name},
      {"set_name", t_set_name},   {"traceback", t_traceback},
      {NULL, NULL}};
  static const luaL_Reg task_metas[] = {{"__tostring", t_tostring},
                                        {NULL, NULL}};
  static const luaL_Reg fns[] = {{"sleep", l_sleep},
                                 {"create_task", l_create_task},
                                 {"spawn", l_create_task},
                                 {NULL, NULL}};
  lstate *S = lua_touserdata(L, up);
  S->mt.task = laloop_new_class(L, up, LALOOP_TASK_MT, task_methods, task_metas);
  luaL_getmetatable(L, LALOOP_TASK_MT);
  S->mtref.task = laloop_class_ref(L);
  /* the finalising Task: the same methods, plus __gc */
  S->mtref.task_gc = laloop_gc_twin(L, up, t_gc, &S->mt.task_gc);
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
