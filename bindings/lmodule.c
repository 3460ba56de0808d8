/* lmodule.c -- the `aloop` module: the per-state loop, anchoring, error
 * reports, and aloop.run, which drives the scheduler at top level or, called
 * from a task, runs a function as a child task and cleans up after it. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aloop.h"
#include "laloop.h"

const char laloop_state_key = 0;
static int default_loop_taken = 0;

/* ---- state and anchors -------------------------------------------------- */

/* Most processes open aloop in one Lua state only: while that holds, its
 * loop is found without reading an upvalue (which costs a fifth of an
 * await). Once a second state opens aloop, or the first closes, every
 * lookup goes through the upvalue. */
static _Atomic(lstate *) only_state;
static atomic_int states_opened;

lstate *laloop_state(lua_State *L) {
  lstate *S = atomic_load_explicit(&only_state, memory_order_relaxed);
  return S ? S : lua_touserdata(L, lua_upvalueindex(1));
}

ltask *laloop_current(lua_State *L, const char *fname) {
  lstate *S = laloop_state(L);
  ltask *lt = S->cur;
  if (!lt || lt->co != L)
    luaL_error(L, "aloop.%s called outside a task", fname);
  if (!lua_isyieldable(L))
    luaL_error(L,
               "aloop.%s cannot wait here (inside a metamethod or a C "
               "function that does not allow yielding)",
               fname);
  return lt;
}

int laloop_anchor(lua_State *L, lstate *S, int idx) {
  int ref;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_pushvalue(L, idx);
  ref = luaL_ref(L, -2);
  lua_pop(L, 1);
  return ref;
}

void laloop_unanchor(lua_State *L, lstate *S, int ref) {
  if (ref == LUA_NOREF)
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  luaL_unref(L, -1, ref);
  lua_pop(L, 1);
}

void laloop_push_anchored(lua_State *L, lstate *S, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_rawgeti(L, -1, ref);
  lua_remove(L, -2);
}

/* Tell of an error nobody will see otherwise: through the handler set with
 * loop:set_exception_handler(fn) if there is one (fn gets a context table
 * with message, exception, traceback), else on stderr. Never raises. */
void laloop_report(lua_State *L, lstate *S, const char *what, int err_idx,
                   int tb_idx) {
  int base = lua_gettop(L);
  err_idx = err_idx ? lua_absindex(L, err_idx) : 0;
  tb_idx = tb_idx ? lua_absindex(L, tb_idx) : 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  if (lua_getfield(L, -1, "handler") != LUA_TNIL) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, what);
    lua_setfield(L, -2, "message");
    if (err_idx) {
      lua_pushvalue(L, err_idx);
      lua_setfield(L, -2, "exception");
    }
    if (tb_idx) {
      lua_pushvalue(L, tb_idx);
      lua_setfield(L, -2, "traceback");
    }
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) {
      lua_settop(L, base);
      return;
    }
    fprintf(stderr, "aloop: exception handler failed: %s\n",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  }
  if (S->err_fn) { /* the host's */
    const char *msg = err_idx ? luaL_tolstring(L, err_idx, NULL) : NULL;
    const char *tb =
        tb_idx && lua_type(L, tb_idx) == LUA_TSTRING ? lua_tostring(L, tb_idx) : NULL;
    S->err_fn(L, what, msg, tb, S->err_ud);
    lua_settop(L, base);
    return;
  }
  if (tb_idx && lua_type(L, tb_idx) == LUA_TSTRING) {
    fprintf(stderr, "aloop: %s\n%s\n", what, lua_tostring(L, tb_idx));
  } else if (err_idx) {
    fprintf(stderr, "aloop: %s\n%s\n", what, luaL_tolstring(L, err_idx, NULL));
  } else {
    fprintf(stderr, "aloop: %s\n", what);
  }
  fflush(stderr);
  lua_settop(L, base);
}

/* Message handler of callbacks (call_soon, done callbacks): the error
 * passes unchanged; its traceback, taken where it was raised, waits in
 * anchors.cb_tb for the report. */
int laloop_callback_msgh(lua_State *L) {
  lstate *S;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &laloop_state_key);
  S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!S)
    return 1;
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  lua_setfield(L, 2, "cb_tb");
  lua_settop(L, 1);
  return 1;
}

/* Run a queued callback, dropping its anchor: the anchored userdata's user
 * value 1 is the function and user value 2 its one argument or, if
 * `packed`, the table of its arguments. An error is reported as `what`,
 * with the traceback of where it was raised. */
void laloop_run_callback(lstate *S, int *ref, int packed, const char *what) {
  lua_State *L = S->driver;
  int base = lua_gettop(L), nargs = 1, status;
  laloop_push_anchored(L, S, *ref);
  laloop_unanchor(L, S, *ref);
  *ref = LUA_NOREF;
  lua_pushcfunction(L, laloop_callback_msgh);
  lua_getiuservalue(L, base + 1, 1);
  lua_getiuservalue(L, base + 1, 2);
  if (packed) {
    int i;
    nargs = (int)luaL_len(L, base + 4);
    luaL_checkstack(L, nargs, "too many arguments");
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

/* ---- run ---------------------------------------------------------------- */

/* The record of one aloop.run: the scope its tasks are created in. */
typedef struct lrun {
  al_scope_t scope;
  int cancelled;   /* the calling task was cancelled meanwhile */
  al_waiter_t w;   /* top level: told when the main task is done ... */
  al_handle_t h;   /* ... and queues this, which stops the loop's step */
  al_loop_t *loop;
} lrun;

/* As asyncio's run_until_complete: the main task's completion queues a
 * callback that stops the loop after its turn, so what the main task just
 * queued still takes its first step, and nothing blocks in a poll after. */
static void run_stop_cb(al_handle_t *h) {
  lrun *run = al_container_of(h, lrun, h);
  al_loop_stop(run->loop);
}

static void run_main_done(al_waiter_t *w, al_future_t *f) {
  lrun *run = al_container_of(w, lrun, w);
  (void)f;
  al_loop_post(run->loop, &run->h);
}

/* Cancel (once each) the tasks left in a scope, in creation order. */
static void cancel_leftovers(al_scope_t *s) {
  al_task_t *t;
  for (t = s->head; t; t = t->snext)
    if (t->ncancels == 0 && !t->must_cancel)
      al_task_cancel(t, NULL);
}

static void sigint_run(al_handle_t *h) {
  lstate *S = al_container_of(h, lstate, sigint_h);
  S->interrupted = 1;
  if (S->sigint_target)
    al_task_cancel(&S->sigint_target->t, NULL);
}

static void sigint_cb(struct ev_loop *ev, ev_signal *w, int revents) {
  lstate *S = al_container_of(w, lstate, sigint);
  (void)ev;
  (void)revents;
  if (S->interrupted) { /* a second Ctrl-C: the cleanup is stuck */
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
  al_loop_post(&S->loop, &S->sigint_h);
}

static int run_toplevel(lua_State *L, lstate *S) {
  int nargs = lua_gettop(L) - 1, main_idx, stuck = 0, interrupted;
  lrun *run;
  ldrive saved;
  ltask *main;
  run = lua_newuserdatauv(L, sizeof *run, 0);
  al_scope_init(&run->scope, NULL);
  run->cancelled = 0;
  run->loop = &S->loop;
  al_waiter_init(&run->w, run_main_done);
  al_handle_init(&run->h, run_stop_cb);
  laloop_drive_begin(S, L, &run->scope, &saved);
  main = laloop_new_task(L, S, &run->scope, 1, nargs);
  main_idx = lua_gettop(L);
  al_future_add_waiter(&main->t.fut, &run->w);
  S->interrupted = 0;
  S->sigint_target = main;
  if (S->handle_sigint) {
    ev_signal_start(S->ev, &S->sigint);
    ev_unref(S->ev); /* Ctrl-C alone must not keep the loop alive */
  }
  while (main->t.fut.state == AL_PENDING) {
    if (al_loop_step(&S->loop) == AL_STEP_STUCK) {
      stuck = 1;
      break;
    }
  }
  S->sigint_target = NULL;
  /* Cancel what is left and let its cleanup run; the step in which the
   * last of it finishes returns without polling. */
  run->scope.stop_when_empty = true;
  for (;;) {
    cancel_leftovers(&run->scope);
    if (run->scope.n == 0 || al_loop_step(&S->loop) == AL_STEP_STUCK)
      break;
  }
  if (S->handle_sigint) {
    ev_ref(S->ev);
    ev_signal_stop(S->ev, &S->sigint);
  }
  interrupted = S->interrupted;
  S->interrupted = 0;
  al_waiter_remove(&run->w);
  al_loop_unpost(&S->loop, &run->h);
  S->loop.stop = false;
  main->t.fut.flags |= AL_F_RETRIEVED; /* run raises it */
  laloop_report_unretrieved(L, S, &run->scope);
  laloop_drive_end(S, &saved);
  al_scope_abandon(&run->scope); /* tasks that can never finish: forget */
  if (interrupted)
    return laloop_error(L, "KeyboardInterrupt", NULL);
  if (stuck) /* main was cancelled for it, and its cleanup has run */
    return luaL_error(L, "aloop.run: the main task waits for something that "
                         "can never happen (no task is ready, nothing is "
                         "being waited on)");
  return laloop_push_outcome(L, main_idx, 0);
}

/* aloop.run inside a task: stack is fn, args..., run, main. */
static int run_nested_k(lua_State *L, int status, lua_KContext ctx) {
  int base = (int)ctx;
  lstate *S = laloop_state(L);
  ltask *cur = S->cur;
  lrun *run = lua_touserdata(L, base + 1);
  ltask *main = lua_touserdata(L, base + 2);
  (void)status;
  if (cur->cancel_now) {
    cur->cancel_now = 0;
    run->cancelled = 1;
  }
  if (main->t.fut.state == AL_PENDING) {
    al_task_await(&cur->t, &main->t.fut);
    return lua_yieldk(L, 0, ctx, run_nested_k);
  }
  cancel_leftovers(&run->scope);
  if (run->scope.n > 0) {
    al_task_await(&cur->t, &run->scope.head->fut);
    return lua_yieldk(L, 0, ctx, run_nested_k);
  }
  main->t.fut.flags |= AL_F_RETRIEVED; /* run raises it */
  laloop_report_unretrieved(L, S, &run->scope);
  if (run->cancelled && main->t.fut.state != AL_CANCELLED)
    return laloop_error(L, "CancelledError", cur->t.fut.cancel_msg);
  return laloop_push_outcome(L, base + 2, 0);
}

static int run_nested(lua_State *L, lstate *S, ltask *cur) {
  int base = lua_gettop(L);
  lrun *run = lua_newuserdatauv(L, sizeof *run, 0);
  ltask *main;
  al_scope_init(&run->scope, cur->t.scope);
  run->cancelled = 0;
  main = laloop_new_task(L, S, &run->scope, 1, base - 1);
  al_task_await(&cur->t, &main->t.fut);
  return lua_yieldk(L, 0, (lua_KContext)base, run_nested_k);
}

static int l_run(lua_State *L) {
  lstate *S = laloop_state(L);
  S->naming_script = 0;
  luaL_checkany(L, 1);
  if (lua_type(L, 1) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 1, "__call") == LUA_TNIL)
      return luaL_typeerror(L, 1, "function");
    lua_pop(L, 1); /* the __call it pushed */
  }
  if (S->cur && S->cur->co == L) {
    laloop_current(L, "run");
    return run_nested(L, S, S->cur);
  }
  if (LALOOP_BUSY(S))
    return luaL_error(L, "aloop.run cannot be called while the loop is "
                         "running (call it from a task, or use create_task)");
  if (S->shut)
    return luaL_error(L, "aloop.run: aloop was shut down");
  return run_toplevel(L, S);
}

/* _run_script(chunk, ...): aloop.run for the command's script, whose task
 * is named "main" and takes no number, so that the tasks a script creates
 * are numbered as under lua5.4. */
static int l_run_script(lua_State *L) {
  lstate *S = laloop_state(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (LALOOP_BUSY(S))
    return luaL_error(L, "aloop._run_script: the loop is running");
  S->naming_script = 1;
  return run_toplevel(L, S);
}

/* ---- small functions ---------------------------------------------------- */

static int l_time(lua_State *L) {
  lua_pushnumber(L, al_time());
  return 1;
}

static int l_current_task(lua_State *L) {
  lstate *S = laloop_state(L);
  if (S->cur && S->cur->co == L)
    laloop_push_anchored(L, S, S->cur->ref);
  else
    lua_pushnil(L);
  return 1;
}

static int l_get_running_loop(lua_State *L) {
  lstate *S = laloop_state(L);
  if (!S->cur && S->loop.depth == 0)
    return luaL_error(L, "no running event loop");
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

static int l_get_event_loop(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

/* _traceback(err): the traceback kept for err where it was raised in a
 * task, or nil (for hosts that report errors, such as the command). */
static int l_traceback(lua_State *L) {
  lstate *S = laloop_state(L);
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_getfield(L, 2, "last_err");
  if (!lua_isnil(L, 1) && lua_rawequal(L, 1, 3))
    lua_getfield(L, 2, "last_tb");
  else
    lua_pushnil(L);
  return 1;
}

/* set_debug(on [, seconds]): report steps longer than seconds (0.1) and
 * where failed tasks were created. */
static int l_set_debug(lua_State *L) {
  lstate *S = laloop_state(L);
  double s = luaL_optnumber(L, 2, S->slow_step);
  luaL_argcheck(L, s >= 0, 2, "must not be negative");
  S->debug = lua_toboolean(L, 1);
  S->slow_step = s;
  return 0;
}

static int l_get_debug(lua_State *L) {
  lua_pushboolean(L, laloop_state(L)->debug);
  return 1;
}

static int l_stats(lua_State *L) {
  lstate *S = laloop_state(L);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)S->loop.ntasks);
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, (lua_Integer)S->loop.nready);
  lua_setfield(L, -2, "ready");
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  {
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) != LUA_TNUMBER)
        n++;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "anchored");
  }
  return 1;
}

/* ---- the loop object's lifetime ----------------------------------------- */

static int loop_gc(lua_State *L) {
  lstate *S = lua_touserdata(L, 1);
  if (S->closed)
    return 0;
  S->closed = 1;
  atomic_store(&only_state, NULL);
  laloop_stop_embedding(S);
  if (ev_is_active(&S->sigint)) {
    ev_ref(S->ev);
    ev_signal_stop(S->ev, &S->sigint);
  }
  al_loop_close(&S->loop);
  if (S->own_ev) {
    if (ev_is_default_loop(S->ev))
      default_loop_taken = 0;
    ev_loop_destroy(S->ev);
  }
  S->ev = NULL;
  return 0;
}

/* Find or create the state's loop; leaves the loop userdata on the stack. */
static lstate *get_state(lua_State *L, struct ev_loop *ev) {
  lstate *S;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &laloop_state_key) == LUA_TUSERDATA) {
    S = lua_touserdata(L, -1);
    if (ev && ev != S->ev)
      luaL_error(L, "aloop is already open in this state, on another loop");
    return S;
  }
  lua_pop(L, 1);
  S = lua_newuserdatauv(L, sizeof *S, 0);
  memset(S, 0, sizeof *S);
  if (ev) {
    S->own_ev = 0;
    S->shared = 1;
  } else {
    /* A backend that can be embedded has a pollable fd (aloop_pollfd). */
    unsigned flags = ev_recommended_backends() & ev_embeddable_backends();
    if (!default_loop_taken && (ev = ev_default_loop(flags)) != NULL)
      default_loop_taken = 1;
    else
      ev = ev_loop_new(flags);
    S->own_ev = 1;
  }
  if (!ev)
    luaL_error(L, "aloop: cannot create an event loop");
  S->ev = ev;
  al_loop_init(&S->loop, ev);
  S->loop.data = S;
  al_scope_init(&S->root, NULL);
  S->pollfd = -2;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->L = lua_tothread(L, -1);
  if (atomic_fetch_add(&states_opened, 1) == 0)
    atomic_store(&only_state, S);
  else
    atomic_store(&only_state, NULL);
  lua_pop(L, 1);
  S->driver = S->L;
  S->handle_sigint = 1;
  S->slow_step = 0.1;
  {
    const char *d = getenv("ALOOP_DEBUG");
    S->debug = d && *d && strcmp(d, "0") != 0;
  }
  ev_signal_init(&S->sigint, sigint_cb, SIGINT);
  al_handle_init(&S->sigint_h, sigint_run);
  /* anchors: array part for refs; "failed" is a weak set of failed tasks */
  lua_newtable(L);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "failed");
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "extras");
  S->anchors = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_setmetatable(L, LALOOP_LOOP_MT);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &laloop_state_key);
  if (S->shared)
    laloop_setup_shared(S);
  return S;
}

static int open_module(lua_State *L, struct ev_loop *ev) {
  static const luaL_Reg fns[] = {{"run", l_run},
                                 {"time", l_time},
                                 {"current_task", l_current_task},
                                 {"get_running_loop", l_get_running_loop},
                                 {"get_event_loop", l_get_event_loop},
                                 {"set_debug", l_set_debug},
                                 {"get_debug", l_get_debug},
                                 {"_stats", l_stats},
                                 {"_traceback", l_traceback},
                                 {"_run_script", l_run_script},
                                 {NULL, NULL}};
  int up, mod;
  luaL_checkversion(L);
  if (luaL_newmetatable(L, LALOOP_LOOP_MT)) {
    lua_pushcfunction(L, loop_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  get_state(L, ev);
  up = lua_gettop(L);
  lua_newtable(L);
  mod = lua_gettop(L);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  laloop_open_errors(L, mod);
  laloop_open_tasks(L, mod, up);
  laloop_open_loop(L, mod, up);
  laloop_open_sync(L, mod, up);
  lua_pushliteral(L, ALOOP_VERSION);
  lua_setfield(L, mod, "_VERSION");
  /* The parts written in Lua complete the module. */
  {
    const laloop_part *p;
    for (p = laloop_lua_parts; p->name; p++) {
      if (luaL_loadbufferx(L, p->src, p->len, p->name, "t") != LUA_OK)
        return lua_error(L);
      lua_pushvalue(L, mod);
      lua_call(L, 1, 0);
    }
  }
  lua_remove(L, up);
  return 1;
}

int luaopen_aloop(lua_State *L) { return open_module(L, NULL); }

static int openlib_p(lua_State *L) {
  struct ev_loop *ev = lua_touserdata(L, 1);
  lstate *S;
  lua_settop(L, 0);
  open_module(L, ev);
  /* A host owns its signals: aloop.run does not take Ctrl-C over here. */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &laloop_state_key);
  S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  S->handle_sigint = 0;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "aloop");
  lua_pop(L, 1);
  return 1;
}

int aloop_openlib(lua_State *L, struct ev_loop *ev) {
  lua_pushcfunction(L, openlib_p); /* protected: no error escapes */
  lua_pushlightuserdata(L, ev);
  return lua_pcall(L, 1, 1, 0);
}
