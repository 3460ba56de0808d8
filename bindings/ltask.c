/* ltask.c -- Task, Future and gather as Lua values: task coroutines and the
 * step that resumes them, awaiting through continuations, outcomes, done
 * callbacks. The rules (queueing, cancellation) are the core's; this file
 * moves Lua values around them. */
#include <stdio.h>
#include <string.h>

#include "laloop.h"

static int task_main(lua_State *co);
static void task_step(al_handle_t *h);
static void push_name(lua_State *L, int idx);
static void push_traceback(lua_State *L, int idx);
static int push_extras(lua_State *L, lstate *S, int idx, int create);

/* ---- helpers ------------------------------------------------------------ */

/* Metatables are told apart by address: no string lookups on hot paths. */
static const void *metatable_of(lua_State *L, int idx) {
  const void *mt = NULL;
  if (lua_getmetatable(L, idx)) {
    mt = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
  return mt;
}

al_future_t *laloop_tofuture(lua_State *L, int idx) {
  lstate *S = laloop_state(L);
  void *p = lua_touserdata(L, idx);
  const void *mt = p ? metatable_of(L, idx) : NULL;
  if (mt && (mt == S->mt_task || mt == S->mt_future || mt == S->mt_gather ||
             mt == S->mt_future_gc))
    return p;
  return NULL;
}

static void *check_class(lua_State *L, int idx, const void *mt,
                         const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (!p || metatable_of(L, idx) != mt)
    luaL_typeerror(L, idx, tname);
  return p;
}

/* Push the extras table of the task at idx (creating it if `create`), or
 * nil. */
static int push_extras(lua_State *L, lstate *S, int idx, int create) {
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

static int is_callable(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TFUNCTION)
    return 1;
  if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

static ltask *check_task(lua_State *L, int idx) {
  return check_class(L, idx, laloop_state(L)->mt_task, "aloop Task");
}

static al_future_t *check_future(lua_State *L, int idx) {
  al_future_t *f = laloop_tofuture(L, idx);
  if (!f)
    luaL_typeerror(L, idx, "aloop Task or Future");
  return f;
}

static const char *state_name(const al_future_t *f) {
  switch (f->state) {
  case AL_PENDING:
    return "pending";
  case AL_DONE:
    return "finished";
  case AL_FAILED:
    return "failed";
  default:
    return "cancelled";
  }
}

/* ---- tasks -------------------------------------------------------------- */

ltask *laloop_new_task(lua_State *L, lstate *S, al_scope_t *scope, int fidx,
                       int nargs) {
  ltask *lt;
  lua_State *co;
  if (!scope)
    scope = S->cur ? S->cur->t.scope : S->scope;
  fidx = lua_absindex(L, fidx);
  if (!scope)
    luaL_error(L, "no running event loop (call aloop.run first)");
  lt = lua_newuserdatauv(L, sizeof *lt, 1);
  memset(lt, 0, sizeof *lt);
  lt->ref = LUA_NOREF;
  lua_rawgetp(L, LUA_REGISTRYINDEX, S->mt_task);
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
  if (S->naming_script) {
    S->naming_script = 0;
    lt->id = 0;
  } else {
    lt->id = ++S->ntask;
  }
  lt->ref = laloop_anchor(L, S, -1);
  if (S->debug) { /* where it was created, for the report of its error */
    int ud = lua_gettop(L);
    push_extras(L, S, ud, 1);
    luaL_traceback(L, L, "task created at:", 1);
    lua_setfield(L, -2, "created");
    lua_settop(L, ud);
  }
  al_task_init(&lt->t, &S->loop, scope, task_step);
  return lt;
}

/* The message handler of a task body: the error passes unchanged, and the
 * traceback of where it was raised is kept beside it (extras.tb). An error
 * re-raised from an awaited task keeps that task's traceback. */
int laloop_traceback_msgh(lua_State *L) {
  lstate *S;
  ltask *lt;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &laloop_state_key);
  S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  lt = S ? S->cur : NULL;
  if (!lt || lt->ref == LUA_NOREF || laloop_is_kind(L, 1, "CancelledError"))
    return 1;
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors); /* 2 */
  lua_getfield(L, 2, "last_err");                /* 3 */
  if (!lua_isnil(L, 1) && lua_rawequal(L, 1, 3)) {
    lua_getfield(L, 2, "last_tb"); /* 4 */
  } else {
    const char *msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1); /* 5 */
    lua_remove(L, 4);
    lua_pushvalue(L, 1);
    lua_setfield(L, 2, "last_err");
    lua_pushvalue(L, 4);
    lua_setfield(L, 2, "last_tb");
  }
  lua_rawgeti(L, 2, lt->ref); /* the task */
  push_extras(L, S, -1, 1);
  lua_pushvalue(L, 4);
  lua_setfield(L, -2, "tb");
  lua_settop(L, 1);
  return 1;
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

static void task_finished(lstate *S, ltask *lt, int state) {
  lua_State *L = S->driver;
  if (state == AL_FAILED && lt->detached) {
    /* Spawned by the host, which awaits nothing: tell it now. */
    int base = lua_gettop(L);
    lua_pushvalue(lt->co, 1);
    lua_xmove(lt->co, L, 1);
    laloop_push_anchored(L, S, lt->ref);
    push_traceback(L, -1);
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
  lua_State *L = S->driver;
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
    if (lt->t.must_cancel) { /* cancelled before its first step */
      lua_settop(co, 0);
      task_finished(S, lt, AL_CANCELLED);
      return;
    }
    lt->t.started = true;
    al_task_resuming(&lt->t);
    nargs = lua_gettop(co) - 1;
  } else {
    lt->cancel_now = al_task_resuming(&lt->t);
  }
  if (S->debug) {
    double t0 = al_time();
    S->cur = lt;
    status = lua_resume(co, S->driver, nargs, &nres);
    S->cur = NULL;
    if (al_time() - t0 > S->slow_step)
      report_slow_step(S, lt, al_time() - t0, status);
  } else {
    S->cur = lt;
    status = lua_resume(co, S->driver, nargs, &nres);
    S->cur = NULL;
  }
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
    if (lt->t.wait == AL_WAIT_NONE && !lt->t.step.queued) {
      /* A bare coroutine.yield() in a task: it yields to the loop like
       * sleep(0), but cannot be interrupted there. */
      if (lt->cancel_now)
        lt->t.must_cancel = true;
      lt->cancel_now = 0;
      al_loop_post(&S->loop, &lt->t.step);
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

/* ---- outcomes ----------------------------------------------------------- */

static void push_error_value(lua_State *L, int idx, al_future_t *f);

/* Push the results of a done future (only the first, padded with nil, when
 * first_only); returns how many. */
static int push_results(lua_State *L, int idx, al_future_t *f,
                        int first_only) {
  switch (f->kind) {
  case AL_KIND_TASK: {
    ltask *lt = (ltask *)f;
    int i, n = first_only ? 1 : lt->nres;
    luaL_checkstack(L, n, "too many results");
    for (i = 1; i <= n; i++) {
      if (i <= lt->nres) {
        lua_pushvalue(lt->co, i);
        lua_xmove(lt->co, L, 1);
      } else {
        lua_pushnil(L);
      }
    }
    return n;
  }
  case AL_KIND_FUTURE: {
    lfuture *lf = (lfuture *)f;
    lua_getiuservalue(L, idx, 1);
    if (lf->nres == 1)
      return 1;
    if (first_only) {
      if (lf->nres == 0) {
        lua_pop(L, 1);
        lua_pushnil(L);
      } else {
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
      }
      return 1;
    } else {
      int i, t = lua_gettop(L);
      luaL_checkstack(L, lf->nres, "too many results");
      for (i = 1; i <= lf->nres; i++)
        lua_rawgeti(L, t, i);
      lua_remove(L, t);
      return lf->nres;
    }
  }
  default: { /* gather: one array of the first result of each child */
    al_gather_t *g = (al_gather_t *)f;
    if (lua_getiuservalue(L, idx, 2) == LUA_TTABLE)
      return 1;
    lua_pop(L, 1);
    {
      size_t i;
      int res, children;
      idx = lua_absindex(L, idx);
      lua_getiuservalue(L, idx, 1);
      children = lua_gettop(L);
      lua_createtable(L, (int)g->n, 1);
      res = lua_gettop(L);
      for (i = 1; i <= g->n; i++) {
        al_future_t *c;
        lua_rawgeti(L, children, (lua_Integer)i);
        c = lua_touserdata(L, -1);
        if (c->state == AL_DONE)
          push_results(L, -1, c, 1);
        else
          push_error_value(L, -1, c);
        lua_rawseti(L, res, (lua_Integer)i);
        lua_pop(L, 1);
      }
      lua_pushinteger(L, (lua_Integer)g->n);
      lua_setfield(L, res, "n");
      lua_pushvalue(L, res);
      lua_setiuservalue(L, idx, 2);
      lua_remove(L, children);
      return 1;
    }
  }
  }
}

/* Push the error a failed or cancelled future raises. */
static void push_error_value(lua_State *L, int idx, al_future_t *f) {
  idx = lua_absindex(L, idx);
  if (f->kind == AL_KIND_TASK) {
    ltask *lt = (ltask *)f;
    if (lt->has_error) {
      lua_pushvalue(lt->co, 1);
      lua_xmove(lt->co, L, 1);
      return;
    }
  } else if (f->kind == AL_KIND_FUTURE && f->state == AL_FAILED) {
    lua_getiuservalue(L, idx, 1);
    return;
  } else if (f->kind == AL_KIND_GATHER && f->state == AL_FAILED) {
    al_gather_t *g = (al_gather_t *)f;
    size_t i;
    lua_getiuservalue(L, idx, 1);
    for (i = 1; i <= g->n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i);
      if (lua_touserdata(L, -1) == (void *)g->failed) {
        push_error_value(L, -1, g->failed);
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  {
    /* A plain future cancelled by a task's cancel(msg) passed on to it may
     * not keep the message: the task awaiting it has it. */
    const char *msg = f->cancel_msg;
    lstate *S = LALOOP_S(f);
    if (!msg && f->kind == AL_KIND_FUTURE && S->cur)
      msg = S->cur->t.fut.cancel_msg;
    laloop_push_error(L, "CancelledError", msg);
  }
}

int laloop_push_outcome(lua_State *L, int idx, int first_only) {
  al_future_t *f = lua_touserdata(L, idx);
  if (f->state == AL_PENDING)
    return laloop_error(L, "InvalidStateError", "result is not set");
  f->flags |= AL_F_RETRIEVED;
  if (f->state == AL_DONE)
    return push_results(L, idx, f, first_only);
  push_error_value(L, idx, f);
  return lua_error(L);
}

/* ---- awaiting ----------------------------------------------------------- */

static int raise_cancelled(lua_State *L, ltask *lt) {
  lt->cancel_now = 0;
  return laloop_error(L, "CancelledError", lt->t.fut.cancel_msg);
}

static int await_k(lua_State *L, int status, lua_KContext ctx) {
  ltask *lt = laloop_state(L)->cur;
  (void)status;
  if (lt->cancel_now)
    return raise_cancelled(L, lt);
  return laloop_push_outcome(L, (int)ctx, 0);
}

int laloop_await(lua_State *L, int idx) {
  al_future_t *f = lua_touserdata(L, idx);
  ltask *lt;
  idx = lua_absindex(L, idx);
  if (f->state != AL_PENDING)
    return laloop_push_outcome(L, idx, 0);
  lt = laloop_current(L, "await");
  if (f == &lt->t.fut)
    return luaL_error(L, "a task cannot await itself");
  al_task_await(&lt->t, f);
  return lua_yieldk(L, 0, (lua_KContext)idx, await_k);
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  ltask *lt = laloop_state(L)->cur;
  (void)status;
  (void)ctx;
  if (lt->cancel_now)
    return raise_cancelled(L, lt);
  if (lua_gettop(L) >= 2) {
    lua_settop(L, 2);
    return 1;
  }
  return 0;
}

static int l_sleep(lua_State *L) {
  double d = luaL_checknumber(L, 1);
  ltask *lt;
  luaL_argcheck(L, d == d, 1, "not a number");
  lt = laloop_current(L, "sleep");
  al_task_sleep(&lt->t, d);
  return lua_yieldk(L, 0, 0, sleep_k);
}

/* ---- Task methods ------------------------------------------------------- */

static int l_create_task(lua_State *L) {
  lstate *S = laloop_state(L);
  luaL_argexpected(L, is_callable(L, 1), 1, "function");
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
  const char *msg = luaL_optstring(L, 2, NULL);
  lua_pushboolean(L, al_task_cancel(&lt->t, msg));
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

static int f_done(lua_State *L) {
  lua_pushboolean(L, check_future(L, 1)->state != AL_PENDING);
  return 1;
}

static int f_cancelled(lua_State *L) {
  lua_pushboolean(L, check_future(L, 1)->state == AL_CANCELLED);
  return 1;
}

static int f_result(lua_State *L) {
  check_future(L, 1);
  lua_settop(L, 1);
  return laloop_push_outcome(L, 1, 0);
}

static int f_exception(lua_State *L) {
  al_future_t *f = check_future(L, 1);
  if (f->state == AL_PENDING)
    return laloop_error(L, "InvalidStateError", "exception is not set");
  f->flags |= AL_F_RETRIEVED;
  if (f->state == AL_DONE)
    return 0;
  push_error_value(L, 1, f);
  if (f->state == AL_CANCELLED) /* as asyncio: asking a cancelled one raises */
    return lua_error(L);
  return 1;
}

static void push_name(lua_State *L, int idx) {
  ltask *lt = lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  if (push_extras(L, LALOOP_S(lt), idx, 0))
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
  push_extras(L, laloop_state(L), 1, 1);
  lua_insert(L, -2);
  lua_setfield(L, -2, "name");
  return 0;
}

static void push_traceback(lua_State *L, int idx) {
  if (push_extras(L, LALOOP_S(lua_touserdata(L, idx)), idx, 0))
    lua_getfield(L, -1, "tb");
  else
    lua_pushnil(L);
  lua_remove(L, -2);
}

static int t_traceback(lua_State *L) {
  check_task(L, 1);
  push_traceback(L, 1);
  return 1;
}

static int t_tostring(lua_State *L) {
  al_future_t *f = (al_future_t *)check_task(L, 1);
  push_name(L, 1);
  lua_pushfstring(L, "<Task %s name='%s'>", state_name(f), lua_tostring(L, -1));
  return 1;
}

static void report_if_unretrieved(lua_State *L, int idx, al_future_t *f,
                                  const char *what) {
  if (f->state != AL_FAILED || (f->flags & (AL_F_RETRIEVED | AL_F_REPORTED)))
    return;
  f->flags |= AL_F_REPORTED;
  idx = lua_absindex(L, idx);
  push_error_value(L, idx, f);
  if (f->kind == AL_KIND_TASK) {
    push_traceback(L, idx);
    if (push_extras(L, LALOOP_S(f), idx, 0)) { /* debug mode: its birth */
      lua_getfield(L, -1, "created");
      lua_remove(L, -2);
      if (lua_isstring(L, -1) && lua_isstring(L, -2)) {
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
      }
    } else {
      lua_pop(L, 1);
    }
  } else {
    lua_pushnil(L);
  }
  laloop_report(L, LALOOP_S(f), what, lua_gettop(L) - 1, lua_gettop(L));
  lua_pop(L, 2);
}

static int t_gc(lua_State *L) {
  ltask *lt = lua_touserdata(L, 1);
  if (!lt->t.fut.loop || LALOOP_S(lt)->closed)
    return 0;
  report_if_unretrieved(L, 1, &lt->t.fut, "Task exception was never retrieved");
  al_task_destroy(&lt->t);
  return 0;
}

void laloop_report_unretrieved(lua_State *L, lstate *S, void *run_id) {
  int set;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_getfield(L, -1, "failed");
  set = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, set)) {
    ltask *lt = lua_touserdata(L, -2);
    lua_pop(L, 1);
    if (run_id == NULL || (void *)lt->t.scope == run_id) {
      report_if_unretrieved(L, -1, &lt->t.fut,
                            "Task exception was never retrieved");
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, set);
    }
  }
  lua_pop(L, 2);
}

/* ---- Futures ------------------------------------------------------------ */

static int l_future(lua_State *L) {
  lstate *S = laloop_state(L);
  lfuture *lf = lua_newuserdatauv(L, sizeof *lf, 1);
  al_future_init(&lf->f, &S->loop, AL_KIND_FUTURE);
  lf->nres = 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, S->mt_future);
  lua_setmetatable(L, -2);
  return 1;
}

static lfuture *check_plain_future(lua_State *L, int idx) {
  lstate *S = laloop_state(L);
  void *p = lua_touserdata(L, idx);
  const void *mt = p ? metatable_of(L, idx) : NULL;
  if (!mt || (mt != S->mt_future && mt != S->mt_future_gc))
    luaL_typeerror(L, idx, "aloop Future");
  return p;
}

/* Futures are made without a finaliser, which would cost a fifth of a task
 * switch; one that comes to own something (an error to report if nobody
 * retrieves it, a cancel message) gets the finalising metatable. */
static void needs_finaliser(lua_State *L, int idx, lfuture *lf) {
  lstate *S = LALOOP_S(lf);
  if (lf->f.flags & AL_F_KEEP_MSG)
    return;
  idx = lua_absindex(L, idx);
  lf->f.flags |= AL_F_KEEP_MSG;
  lua_rawgetp(L, LUA_REGISTRYINDEX, S->mt_future_gc);
  lua_setmetatable(L, idx);
}

static void ensure_pending(lua_State *L, al_future_t *f) {
  if (f->state != AL_PENDING)
    laloop_error(L, "InvalidStateError",
                 lua_pushfstring(L, "future is already %s", state_name(f)));
}

static int fu_set_result(lua_State *L) {
  lfuture *lf = check_plain_future(L, 1);
  int n = lua_gettop(L) - 1;
  ensure_pending(L, &lf->f);
  if (n == 1) {
    lua_setiuservalue(L, 1, 1);
  } else {
    int i;
    lua_createtable(L, n, 0);
    for (i = 1; i <= n; i++) {
      lua_pushvalue(L, i + 1);
      lua_rawseti(L, -2, i);
    }
    lua_setiuservalue(L, 1, 1);
  }
  lf->nres = n;
  al_future_finish(&lf->f, AL_DONE);
  return 0;
}

static int fu_set_exception(lua_State *L) {
  lfuture *lf = check_plain_future(L, 1);
  luaL_argexpected(L, !lua_isnoneornil(L, 2), 2, "error value");
  ensure_pending(L, &lf->f);
  lua_settop(L, 2);
  needs_finaliser(L, 1, lf);
  lua_setiuservalue(L, 1, 1);
  al_future_finish(&lf->f, AL_FAILED);
  return 0;
}

static int fu_cancel(lua_State *L) {
  lfuture *lf = check_plain_future(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  if (msg && lf->f.state == AL_PENDING)
    needs_finaliser(L, 1, lf);
  lua_pushboolean(L, al_future_cancel(&lf->f, msg));
  return 1;
}

static int fu_await(lua_State *L) {
  check_plain_future(L, 1);
  lua_settop(L, 1);
  return laloop_await(L, 1);
}

static int fu_tostring(lua_State *L) {
  lfuture *lf = check_plain_future(L, 1);
  lua_pushfstring(L, "<Future %s>", state_name(&lf->f));
  return 1;
}

static int fu_gc(lua_State *L) {
  lfuture *lf = lua_touserdata(L, 1);
  if (LALOOP_S(lf)->closed)
    return 0;
  report_if_unretrieved(L, 1, &lf->f, "Future exception was never retrieved");
  al_future_destroy(&lf->f);
  return 0;
}

/* ---- done callbacks ----------------------------------------------------- */

/* A done callback: fn(future) is queued like call_soon when the future
 * completes, in the order callbacks were added. User values: 1 fn, 2 the
 * future. */
typedef struct ldonecb {
  al_handle_t h;
  al_waiter_t w;
  lstate *S;
  int ref;
} ldonecb;

static void donecb_run(al_handle_t *h) {
  ldonecb *cb = al_container_of(h, ldonecb, h);
  laloop_run_callback(cb->S, &cb->ref, 0, "Exception in done callback");
}

static void donecb_waiter(al_waiter_t *w, al_future_t *f) {
  ldonecb *cb = al_container_of(w, ldonecb, w);
  al_loop_post(f->loop, &cb->h);
}

static int donecb_gc(lua_State *L) {
  ldonecb *cb = lua_touserdata(L, 1);
  if (cb->S && !cb->S->closed) {
    al_waiter_remove(&cb->w);
    al_loop_unpost(&cb->S->loop, &cb->h);
  }
  return 0;
}

static int f_add_done_callback(lua_State *L) {
  al_future_t *f = check_future(L, 1);
  lstate *S = laloop_state(L);
  ldonecb *cb;
  luaL_argexpected(L, is_callable(L, 2), 2, "function");
  lua_settop(L, 2);
  cb = lua_newuserdatauv(L, sizeof *cb, 2);
  al_handle_init(&cb->h, donecb_run);
  al_waiter_init(&cb->w, donecb_waiter);
  cb->S = S;
  cb->ref = LUA_NOREF;
  luaL_setmetatable(L, "aloop.DoneCallback");
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 3, 2);
  cb->ref = laloop_anchor(L, S, 3);
  if (f->state == AL_PENDING)
    al_future_add_waiter(f, &cb->w);
  else
    al_loop_post(&S->loop, &cb->h);
  return 0;
}

static int f_remove_done_callback(lua_State *L) {
  al_future_t *f = check_future(L, 1);
  lstate *S = laloop_state(L);
  al_waiter_t *w, *next;
  int removed = 0;
  luaL_checkany(L, 2);
  for (w = f->waiters.head; w; w = next) {
    next = w->next;
    if (w->cb == donecb_waiter) {
      ldonecb *cb = al_container_of(w, ldonecb, w);
      laloop_push_anchored(L, S, cb->ref);
      lua_getiuservalue(L, -1, 1);
      if (lua_rawequal(L, -1, 2)) {
        al_waiter_remove(w);
        laloop_unanchor(L, S, cb->ref);
        cb->ref = LUA_NOREF;
        removed++;
      }
      lua_pop(L, 2);
    }
  }
  lua_pushinteger(L, removed);
  return 1;
}

/* ---- gather ------------------------------------------------------------- */

static int gather_gc(lua_State *L) {
  al_gather_t *g = lua_touserdata(L, 1);
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
  lua_rawgetp(L, LUA_REGISTRYINDEX, S->mt_gather);
  lua_setmetatable(L, -2);
  gi = lua_gettop(L);
  lua_createtable(L, (int)n, 0);
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
      if (!is_callable(L, item)) {
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

/* ---- registration ------------------------------------------------------- */

const void *laloop_new_class(lua_State *L, int up, const char *name,
                             const luaL_Reg *methods, const luaL_Reg *metas) {
  const void *mt;
  luaL_newmetatable(L, name);
  mt = lua_topointer(L, -1);
  /* also under its own address, for lua_rawgetp without string lookups */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, mt);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, metas, 1);
  lua_newtable(L);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  return mt;
}

void laloop_open_tasks(lua_State *L, int mod, int up) {
  static const luaL_Reg task_methods[] = {
      {"await", t_await},
      {"cancel", t_cancel},
      {"uncancel", t_uncancel},
      {"cancelling", t_cancelling},
      {"done", f_done},
      {"cancelled", f_cancelled},
      {"result", f_result},
      {"exception", f_exception},
      {"name", t_name},
      {"get_name", t_name},
      {"set_name", t_set_name},
      {"traceback", t_traceback},
      {"add_done_callback", f_add_done_callback},
      {"remove_done_callback", f_remove_done_callback},
      {NULL, NULL}};
  static const luaL_Reg task_metas[] = {
      {"__tostring", t_tostring}, {"__gc", t_gc}, {NULL, NULL}};
  static const luaL_Reg future_methods[] = {
      {"await", fu_await},
      {"set_result", fu_set_result},
      {"set_exception", fu_set_exception},
      {"cancel", fu_cancel},
      {"done", f_done},
      {"cancelled", f_cancelled},
      {"result", f_result},
      {"exception", f_exception},
      {"add_done_callback", f_add_done_callback},
      {"remove_done_callback", f_remove_done_callback},
      {NULL, NULL}};
  static const luaL_Reg future_metas[] = {{"__tostring", fu_tostring},
                                          {NULL, NULL}};
  static const luaL_Reg gather_metas[] = {{"__gc", gather_gc}, {NULL, NULL}};
  static const luaL_Reg donecb_metas[] = {{"__gc", donecb_gc}, {NULL, NULL}};
  static const luaL_Reg none[] = {{NULL, NULL}};
  static const luaL_Reg fns[] = {{"sleep", l_sleep},
                                 {"create_task", l_create_task},
                                 {"spawn", l_create_task},
                                 {"Future", l_future},
                                 {"gather", l_gather},
                                 {NULL, NULL}};
  lstate *S = lua_touserdata(L, up);
  S->mt_task = laloop_new_class(L, up, LALOOP_TASK_MT, task_methods, task_metas);
  S->mt_future =
      laloop_new_class(L, up, LALOOP_FUTURE_MT, future_methods, future_metas);
  S->mt_gather = laloop_new_class(L, up, LALOOP_GATHER_MT, none, gather_metas);
  /* the finalising Future: the same methods, plus __gc */
  luaL_getmetatable(L, LALOOP_FUTURE_MT);
  lua_createtable(L, 0, 4);
  lua_getfield(L, -2, "__index");
  lua_setfield(L, -2, "__index");
  lua_getfield(L, -2, "__tostring");
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, LALOOP_FUTURE_MT);
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, up);
  lua_pushcclosure(L, fu_gc, 1);
  lua_setfield(L, -2, "__gc");
  S->mt_future_gc = lua_topointer(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, S->mt_future_gc);
  lua_pop(L, 1);
  laloop_new_class(L, up, "aloop.DoneCallback", none, donecb_metas);
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
