/* lrun.c -- aloop.run and who drives the scheduler: a top-level run drives
 * the loop until its main task is done, then cancels what is left under it
 * and runs its cleanup; called from a task, it runs a function as a child
 * task instead. Also Ctrl-C for top-level runs (and SIGTERM in the aloop
 * command: aloop._watch_sigterm), and the process-wide table
 * of signal owners (libev lets one loop only watch a given signal). */
#include <pthread.h>
#include <signal.h>

#include "laloop.h"

/* ---- driving ------------------------------------------------------------ */

void laloop_drive_begin(lstate *S, lua_State *L, al_scope_t *scope,
                        ldrive *saved) {
  saved->scope = S->sched.scope;
  saved->driver = S->sched.driver;
  S->sched.driving++;
  if (scope)
    S->sched.scope = scope;
  else if (!S->sched.scope)
    S->sched.scope = &S->embed.root;
  S->sched.driver = L;
}

void laloop_drive_end(lstate *S, const ldrive *saved) {
  S->sched.scope = saved->scope;
  S->sched.driver = saved->driver;
  S->sched.driving--;
}

/* ---- signal owners ------------------------------------------------------ */

/* Starting a signal watcher for a signal another loop watches aborts inside
 * libev, and states may live in several threads: the owners are kept here,
 * under a lock, and a second claim is refused with a message. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static const lstate *sig_owner[LALOOP_NSIG];
static unsigned sig_claims[LALOOP_NSIG]; /* the owner's watchers of it */

int laloop_signal_claim(lua_State *L, lstate *S, int signo) {
  const lstate *owner;
  if (signo <= 0 || signo >= LALOOP_NSIG) {
    lua_pushfstring(L, "signal %d is out of range", signo);
    return -1;
  }
  pthread_mutex_lock(&sig_lock);
  owner = sig_owner[signo];
  if (!owner || owner == S) {
    sig_owner[signo] = S;
    sig_claims[signo]++;
  }
  pthread_mutex_unlock(&sig_lock);
  if (owner && owner != S) {
    lua_pushfstring(L,
                    "signal %d is already watched by another aloop loop in "
                    "this process (a signal can have one owner)",
                    signo);
    return -1;
  }
  return 0;
}

void laloop_signal_release(lstate *S, int signo) {
  if (signo <= 0 || signo >= LALOOP_NSIG)
    return;
  pthread_mutex_lock(&sig_lock);
  if (sig_owner[signo] == S && --sig_claims[signo] == 0)
    sig_owner[signo] = NULL;
  pthread_mutex_unlock(&sig_lock);
}

/* The record of one aloop.run: the scope its tasks are created in (first:
 * a scope with a parent is always a nested run's). */
typedef struct lrun {
  al_scope_t scope;
  int cancelled;   /* the calling task was cancelled meanwhile */
  int ending;      /* nested: LALOOP_RUN_STUCK or _INTERRUPTED, see below */
  ltask *main;     /* nested: its main task */
  al_waiter_t w;   /* top level: told when the main task is done ... */
  al_handle_t h;   /* ... and queues this, which stops the loop's step */
  al_loop_t *loop;
} lrun;

/* A nested run (aloop.run called in a task, as every run of a script under
 * the aloop command is) ends as a top-level one would: when the loop is
 * stuck, or at Ctrl-C, the innermost run around the task the top-level main
 * task's awaits lead to has its main cancelled, and raises the error a
 * top-level run would raise; its caller goes on. */
enum { LALOOP_RUN_STUCK = 1, LALOOP_RUN_INTERRUPTED = 2 };

static lrun *innermost_run(lstate *S, ltask *main) {
  al_task_t *t = &main->t;
  size_t n = S->loop.ntasks; /* bounds the walk: awaits may form a cycle */
  al_scope_t *s;
  while (n-- > 0 && t->wait == AL_WAIT_FUTURE && t->awaiting &&
         t->awaiting->kind == AL_KIND_TASK &&
         t->awaiting->state == AL_PENDING)
    t = (al_task_t *)(void *)t->awaiting;
  for (s = t->scope; s && s->parent; s = s->parent) {
    lrun *run = al_container_of(s, lrun, scope);
    if (!run->ending && run->main->t.fut.state == AL_PENDING)
      return run;
  }
  return NULL;
}

/* End the innermost nested run for `why`; false when there is none. */
static int end_nested_run(lstate *S, ltask *main, int why) {
  lrun *run = main ? innermost_run(S, main) : NULL;
  if (!run)
    return 0;
  run->ending = why;
  al_task_cancel(&run->main->t, NULL);
  return 1;
}

/* ---- Ctrl-C --------------------------------------------------------------- */

static void sigint_run(al_handle_t *h) {
  lstate *S = al_container_of(h, lstate, sigint.h);
  if (laloop_signal_handled(S, SIGINT))
    return; /* the script's on_signal handlers have Ctrl-C */
  if (end_nested_run(S, S->sigint.target, LALOOP_RUN_INTERRUPTED))
    return;
  S->sigint.interrupted = SIGINT;
  if (S->sigint.target)
    al_task_cancel(&S->sigint.target->t, NULL);
}

static void sigint_cb(struct ev_loop *ev, ev_signal *w, int revents) {
  lstate *S = al_container_of(w, lstate, sigint.w);
  (void)ev;
  (void)revents;
  if (S->sigint.interrupted && !laloop_signal_handled(S, SIGINT)) {
    /* a second Ctrl-C: the cleanup is stuck */
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
  al_loop_post(&S->loop, &S->sigint.h);
}

static void start_sigint(lua_State *L, lstate *S) {
  if (!S->sigint.handle || ev_is_active(&S->sigint.w))
    return;
  if (laloop_signal_claim(L, S, SIGINT) != 0) {
    lua_pop(L, 1); /* another loop has Ctrl-C: this run goes without */
    return;
  }
  ev_signal_start(S->loop.ev, &S->sigint.w);
  ev_unref(S->loop.ev); /* Ctrl-C alone must not keep the loop alive */
}

/* SIGTERM, when the command asked for it: as Ctrl-C, so that a service
 * stops gracefully (its cleanup runs) and then exits with 143. */
static void sigterm_run(al_handle_t *h) {
  lstate *S = al_container_of(h, lstate, sigint.termh);
  if (laloop_signal_handled(S, SIGTERM))
    return; /* the script's on_signal handlers have it */
  S->sigint.interrupted = SIGTERM;
  if (S->sigint.target)
    al_task_cancel(&S->sigint.target->t, NULL);
}

static void sigterm_cb(struct ev_loop *ev, ev_signal *w, int revents) {
  lstate *S = al_container_of(w, lstate, sigint.termw);
  (void)ev;
  (void)revents;
  if (S->sigint.interrupted && !laloop_signal_handled(S, SIGTERM)) {
    signal(SIGTERM, SIG_DFL); /* a second one: the cleanup is stuck */
    raise(SIGTERM);
  }
  al_loop_post(&S->loop, &S->sigint.termh);
}

static void start_sigterm(lua_State *L, lstate *S) {
  if (!S->sigint.term || ev_is_active(&S->sigint.termw))
    return;
  if (laloop_signal_claim(L, S, SIGTERM) != 0) {
    lua_pop(L, 1);
    return;
  }
  ev_signal_start(S->loop.ev, &S->sigint.termw);
  ev_unref(S->loop.ev);
}

void laloop_stop_sigint(lstate *S) {
  if (ev_is_active(&S->sigint.w)) {
    ev_ref(S->loop.ev);
    ev_signal_stop(S->loop.ev, &S->sigint.w);
    laloop_signal_release(S, SIGINT);
  }
  if (ev_is_active(&S->sigint.termw)) {
    ev_ref(S->loop.ev);
    ev_signal_stop(S->loop.ev, &S->sigint.termw);
    laloop_signal_release(S, SIGTERM);
  }
}

static const char stuck_msg[] =
    "aloop.run: the main task waits for something that can never happen "
    "(no task is ready, nothing is being waited on)";

/* ---- run ---------------------------------------------------------------- */


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

/* The top-level run, under a protected call: fn, args..., run. */
static int run_toplevel_p(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L) - 2, main_idx, stuck = 0, interrupted;
  lrun *run = lua_touserdata(L, -1);
  ltask *main;
  lua_pop(L, 1); /* run stays alive below, in the caller's frame */
  main = laloop_new_task(L, S, &run->scope, 1, nargs);
  main_idx = lua_gettop(L);
  al_future_add_waiter(&main->t.fut, &run->w);
  S->sigint.interrupted = 0;
  S->sigint.target = main;
  start_sigint(L, S);
  start_sigterm(L, S);
  while (main->t.fut.state == AL_PENDING) {
    if (al_loop_step(&S->loop) == AL_STEP_STUCK &&
        !end_nested_run(S, main, LALOOP_RUN_STUCK)) {
      stuck = 1;
      break;
    }
  }
  S->sigint.target = NULL;
  /* Cancel what is left and let its cleanup run; the step in which the
   * last of it finishes returns without polling. */
  run->scope.stop_when_empty = true;
  for (;;) {
    al_scope_cancel_all(&run->scope);
    if (run->scope.n == 0 || al_loop_step(&S->loop) == AL_STEP_STUCK)
      break;
  }
  interrupted = S->sigint.interrupted;
  main->t.fut.flags |= AL_F_RETRIEVED; /* run raises it */
  laloop_report_unretrieved(L, S, &run->scope);
  if (interrupted == SIGTERM) {
    laloop_push_error(L, "SystemExit", "terminated by SIGTERM");
    lua_pushinteger(L, 128 + SIGTERM);
    lua_setfield(L, -2, "code");
    return lua_error(L);
  }
  if (interrupted)
    return laloop_error(L, "KeyboardInterrupt", NULL);
  if (stuck) /* main was cancelled for it, and its cleanup has run */
    return luaL_error(L, "%s", stuck_msg);
  return laloop_push_outcome(L, main_idx, 0);
}

/* A top-level run drives the scheduler itself. Whatever happens in it, even
 * an error escaping the scheduler (out of memory), it gives the loop back
 * as it found it, so aloop stays usable. */
static int run_toplevel(lua_State *L, lstate *S) {
  int base = lua_gettop(L), status;
  ldrive saved;
  lrun *run = lua_newuserdatauv(L, sizeof *run, 0);
  al_scope_init(&run->scope, NULL);
  run->cancelled = 0;
  run->ending = 0;
  run->main = NULL;
  run->loop = &S->loop;
  al_waiter_init(&run->w, run_main_done);
  al_handle_init(&run->h, run_stop_cb);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the loop: l_run's upvalue */
  lua_pushcclosure(L, run_toplevel_p, 1);
  lua_rotate(L, 1, 1);     /* run_toplevel_p, fn, args..., run */
  lua_pushvalue(L, -1);
  lua_insert(L, 1);        /* run (kept), run_toplevel_p, fn, args..., run */
  laloop_drive_begin(S, L, &run->scope, &saved);
  status = lua_pcall(L, base + 1, LUA_MULTRET, 0);
  laloop_stop_sigint(S);
  S->sigint.target = NULL;
  S->sigint.interrupted = 0;
  al_waiter_remove(&run->w);
  al_loop_unpost(&S->loop, &run->h);
  al_loop_clear_stop(&S->loop);
  if (status != LUA_OK)
    al_loop_recover(&S->loop);
  laloop_drive_end(S, &saved);
  al_scope_abandon(&run->scope); /* tasks that can never finish: forget */
  if (status != LUA_OK)
    return lua_error(L);
  return lua_gettop(L) - 1;
}

/* A cancel of the task that called a nested run is passed on to the run's
 * main task; the run takes it over and raises it once its tasks are done. */
static int run_takes_cancel(ltask *lt, void *run) {
  (void)lt;
  ((lrun *)run)->cancelled = 1;
  return 1;
}

/* aloop.run inside a task: stack is fn, args..., run, main. */
static int run_nested_k(lua_State *L, int status, lua_KContext ctx) {
  int base = (int)ctx;
  ltask *cur = laloop_state(L)->sched.cur;
  lrun *run = lua_touserdata(L, base + 1);
  ltask *main = lua_touserdata(L, base + 2);
  laloop_woken(L, status, ctx, run_nested_k, run_takes_cancel, run);
  if (main->t.fut.state == AL_PENDING) {
    al_task_await(&cur->t, &main->t.fut);
    return laloop_park(L, ctx, run_nested_k);
  }
  al_scope_cancel_all(&run->scope);
  if (run->scope.n > 0) {
    al_task_await(&cur->t, &al_scope_first(&run->scope)->fut);
    return laloop_park(L, ctx, run_nested_k);
  }
  main->t.fut.flags |= AL_F_RETRIEVED; /* run raises it */
  laloop_report_unretrieved(L, LALOOP_S(cur), &run->scope);
  if (run->cancelled && main->t.fut.state != AL_CANCELLED)
    return laloop_raise_cancelled(L, cur);
  if (run->ending == LALOOP_RUN_INTERRUPTED && main->t.fut.state == AL_CANCELLED)
    return laloop_error(L, "KeyboardInterrupt", NULL);
  if (run->ending == LALOOP_RUN_STUCK && main->t.fut.state == AL_CANCELLED)
    return luaL_error(L, "%s", stuck_msg);
  return laloop_push_outcome(L, base + 2, 0);
}

static int run_nested(lua_State *L, lstate *S, ltask *cur) {
  int base = lua_gettop(L);
  lrun *run = lua_newuserdatauv(L, sizeof *run, 0);
  al_scope_init(&run->scope, cur->t.scope);
  run->cancelled = 0;
  run->ending = 0;
  run->main = laloop_new_task(L, S, &run->scope, 1, base - 1);
  return run_nested_k(L, LUA_OK, (lua_KContext)base);
}

static int l_run(lua_State *L) {
  lstate *S = laloop_state(L);
  S->sched.naming_script = 0;
  luaL_checkany(L, 1);
  luaL_argexpected(L, laloop_is_callable(L, 1), 1, "function");
  if (S->sched.cur && S->sched.cur->co == L)
    return run_nested(L, S, laloop_current(L, "run"));
  if (LALOOP_BUSY(S))
    return luaL_error(L, "aloop.run cannot be called while the loop is "
                         "running (call it from a task, or use create_task)");
  if (S->embed.shut)
    return luaL_error(L, "aloop.run: aloop was shut down");
  return run_toplevel(L, S);
}

/* _run_script(chunk, ...): aloop.run for the command's script, whose task
 * is named "main" and takes no number, so that the tasks a script creates
 * are numbered as under lua5.4. */
/* _watch_sigterm(): the aloop command's top-level runs treat SIGTERM as
 * Ctrl-C (SystemExit, code 143); hosts and lua5.4 scripts keep it. */
static int l_watch_sigterm(lua_State *L) {
  laloop_state(L)->sigint.term = 1;
  return 0;
}

static int l_run_script(lua_State *L) {
  lstate *S = laloop_state(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (LALOOP_BUSY(S))
    return luaL_error(L, "aloop._run_script: the loop is running");
  S->sched.naming_script = 1;
  return run_toplevel(L, S);
}

void laloop_open_run(lua_State *L, int mod, int up) {
  static const luaL_Reg fns[] = {
      {"run", l_run},
      {"_run_script", l_run_script},
      {"_watch_sigterm", l_watch_sigterm},
      {NULL, NULL}};
  lstate *S = lua_touserdata(L, up);
  ev_signal_init(&S->sigint.w, sigint_cb, SIGINT);
  al_handle_init(&S->sigint.h, sigint_run);
  ev_signal_init(&S->sigint.termw, sigterm_cb, SIGTERM);
  al_handle_init(&S->sigint.termh, sigterm_run);
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
