/* lfuture.c -- futures as Lua values: the outcome of a done future (its
 * results or its error), aloop.Future, the methods every Task and Future
 * shares, and the report of an error that nobody retrieved. Done callbacks
 * are in ldonecb.c, gather in lgather.c. */
#include <string.h>

#include "laloop.h"

static void push_error_value(lua_State *L, int idx, al_future_t *f);

/* ---- helpers ------------------------------------------------------------ */

al_future_t *laloop_tofuture(lua_State *L, int idx) {
  lstate *S = laloop_state(L);
  void *p = lua_touserdata(L, idx);
  const void *mt;
  if (!p)
    return NULL;
  if (laloop_tokind(L, S, idx, AL_KIND_TASK, sizeof(ltask)) ||
      laloop_tokind(L, S, idx, AL_KIND_FUTURE, sizeof(lfuture)))
    return p;
  mt = laloop_class_of(L, idx);
  if (mt && mt == S->mt.gather)
    return p;
  return NULL;
}

al_future_t *laloop_check_future(lua_State *L, int idx) {
  al_future_t *f = laloop_tofuture(L, idx);
  if (!f)
    luaL_typeerror(L, idx, "aloop Task or Future");
  return f;
}

const char *laloop_state_name(const al_future_t *f) {
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
      /* The results replace the children in their table (made with room
       * for "n"): done, the gather needs its children no more (their
       * waiters are unlinked; only a failed one is searched for its
       * error), and a million children cost no second table. */
      size_t i;
      int res;
      idx = lua_absindex(L, idx);
      lua_getiuservalue(L, idx, 1);
      res = lua_gettop(L);
      for (i = 1; i <= g->n; i++) {
        al_future_t *c;
        lua_rawgeti(L, res, (lua_Integer)i);
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
    size_t len;
    const char *msg = al_future_msg(f, &len);
    lstate *S = LALOOP_S(f);
    if (!msg && f->kind == AL_KIND_FUTURE && S->sched.cur)
      msg = al_future_msg(&S->sched.cur->t.fut, &len);
    laloop_push_error_n(L, "CancelledError", msg, len);
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

static int f_done(lua_State *L) {
  lua_pushboolean(L, laloop_check_future(L, 1)->state != AL_PENDING);
  return 1;
}

static int f_cancelled(lua_State *L) {
  lua_pushboolean(L, laloop_check_future(L, 1)->state == AL_CANCELLED);
  return 1;
}

static int f_result(lua_State *L) {
  laloop_check_future(L, 1);
  lua_settop(L, 1);
  return laloop_push_outcome(L, 1, 0);
}

static int f_exception(lua_State *L) {
  al_future_t *f = laloop_check_future(L, 1);
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

void laloop_report_if_unretrieved(lua_State *L, int idx, al_future_t *f,
                                  const char *what) {
  if (f->state != AL_FAILED || (f->flags & (AL_F_RETRIEVED | AL_F_REPORTED)))
    return;
  f->flags |= AL_F_REPORTED;
  idx = lua_absindex(L, idx);
  push_error_value(L, idx, f);
  if (f->kind == AL_KIND_TASK) {
    laloop_push_traceback(L, idx);
    if (laloop_push_extras(L, LALOOP_S(f), idx, 0)) { /* debug mode: its birth */
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
      laloop_report_if_unretrieved(L, -1, &lt->t.fut,
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
  laloop_push_class(L, S->mtref.future);
  lua_setmetatable(L, -2);
  return 1;
}

static lfuture *check_plain_future(lua_State *L, int idx) {
  lfuture *lf = (lfuture *)laloop_tokind(L, laloop_state(L), idx,
                                         AL_KIND_FUTURE, sizeof *lf);
  if (!lf)
    luaL_typeerror(L, idx, "aloop Future");
  return lf;
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
  laloop_push_class(L, S->mtref.future_gc);
  lua_setmetatable(L, idx);
}

static void ensure_pending(lua_State *L, al_future_t *f) {
  if (f->state != AL_PENDING)
    laloop_error(L, "InvalidStateError",
                 lua_pushfstring(L, "future is already %s", laloop_state_name(f)));
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
  luaL_checkany(L, 2); /* any value, nil too, as error() takes */
  ensure_pending(L, &lf->f);
  lua_settop(L, 2);
  needs_finaliser(L, 1, lf);
  lua_setiuservalue(L, 1, 1);
  al_future_finish(&lf->f, AL_FAILED);
  return 0;
}

static int fu_cancel(lua_State *L) {
  lfuture *lf = check_plain_future(L, 1);
  size_t len = 0;
  const char *msg = luaL_optlstring(L, 2, NULL, &len);
  if (msg && lf->f.state == AL_PENDING)
    needs_finaliser(L, 1, lf);
  lua_pushboolean(L, al_future_cancel_n(&lf->f, msg, len));
  return 1;
}

static int fu_await(lua_State *L) {
  check_plain_future(L, 1);
  lua_settop(L, 1);
  return laloop_await(L, 1);
}

static int fu_tostring(lua_State *L) {
  lfuture *lf = check_plain_future(L, 1);
  lua_pushfstring(L, "<Future %s>", laloop_state_name(&lf->f));
  return 1;
}

static int fu_gc(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  lfuture *lf = laloop_gc_self(L, S->mt.future_gc, "aloop Future");
  if (!lf)
    return 0;
  laloop_report_if_unretrieved(L, 1, &lf->f, "Future exception was never retrieved");
  al_future_destroy(&lf->f);
  return 0;
}

/* ---- registration ------------------------------------------------------- */

void laloop_add_shared_methods(lua_State *L, int up, const luaL_Reg *methods) {
  static const char *const owners[] = {LALOOP_TASK_MT, LALOOP_FUTURE_MT};
  size_t i;
  for (i = 0; i < sizeof owners / sizeof *owners; i++) {
    luaL_getmetatable(L, owners[i]);
    lua_getfield(L, -1, "__index"); /* shared with its finalising twin */
    lua_pushvalue(L, up);
    luaL_setfuncs(L, methods, 1);
    lua_pop(L, 2);
  }
}

void laloop_open_futures(lua_State *L, int mod, int up) {
  /* what every Task and Future answers */
  static const luaL_Reg shared[] = {
      {"done", f_done},
      {"cancelled", f_cancelled},
      {"result", f_result},
      {"exception", f_exception},
      {NULL, NULL}};
  static const luaL_Reg future_methods[] = {
      {"await", fu_await},
      {"set_result", fu_set_result},
      {"set_exception", fu_set_exception},
      {"cancel", fu_cancel},
      {NULL, NULL}};
  static const luaL_Reg future_metas[] = {{"__tostring", fu_tostring},
                                          {NULL, NULL}};
  static const luaL_Reg fns[] = {{"Future", l_future}, {NULL, NULL}};
  lstate *S = lua_touserdata(L, up);
  S->mt.future =
      laloop_new_class(L, up, LALOOP_FUTURE_MT, future_methods, future_metas);
  luaL_getmetatable(L, LALOOP_FUTURE_MT);
  S->mtref.future = laloop_class_ref(L);
  lua_pop(L, 1);
  laloop_add_shared_methods(L, up, shared);
  /* the finalising Future: the same methods, plus __gc */
  luaL_getmetatable(L, LALOOP_FUTURE_MT);
  S->mtref.future_gc = laloop_gc_twin(L, up, fu_gc, &S->mt.future_gc);
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
