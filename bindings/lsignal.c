/* lsignal.c -- signals for scripts: aloop.on_signal(sig, fn) runs fn as a
 * loop callback on each delivery, aloop.wait_signal(sig) waits for the next.
 * One libev watcher per signal and loop, claimed in the process-wide table
 * of owners (lrun.c), so a signal another loop watches is a clear error and
 * never an abort inside libev. */
#include <signal.h>
#include <string.h>

#include "laloop.h"

/* One per watched signal of a loop; a userdata anchored while in use. User
 * value 1: the array of on_signal handles, in registration order. */
typedef struct lsig {
  ev_signal w;
  al_handle_t h;      /* runs the handlers, from the scheduler */
  al_wlist_t waiters; /* tasks in wait_signal */
  lstate *S;
  int signo;
  int ref;            /* anchor while the watcher runs */
  int nhandlers;
  unsigned pending;   /* deliveries not yet handed to the handlers */
  int counted;        /* the watcher keeps the loop alive (tasks wait) */
} lsig;

/* An on_signal handle. User values: 1 fn, 2 its lsig (kept alive). */
typedef struct lsighandle {
  lsig *sig;
  int active;
} lsighandle;

static const struct {
  const char *name;
  int signo;
} signames[] = {{"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},
                {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGPIPE", SIGPIPE},
                {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM}, {"SIGCHLD", SIGCHLD},
                {"SIGCONT", SIGCONT}, {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN},
                {"SIGTTOU", SIGTTOU}, {"SIGURG", SIGURG},   {"SIGXCPU", SIGXCPU},
                {"SIGXFSZ", SIGXFSZ}, {"SIGVTALRM", SIGVTALRM},
                {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH}, {"SIGIO", SIGIO},
                {"SIGSYS", SIGSYS},   {"SIGKILL", SIGKILL}, {"SIGSTOP", SIGSTOP},
                {NULL, 0}};

static int check_signal(lua_State *L, int idx) {
  int i, signo = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    signo = (int)luaL_checkinteger(L, idx);
  } else {
    const char *name = luaL_checkstring(L, idx);
    for (i = 0; signames[i].name; i++)
      if (strcmp(name, signames[i].name) == 0 ||
          strcmp(name, signames[i].name + 3) == 0)
        signo = signames[i].signo;
    if (!signo)
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
  }
  luaL_argcheck(L, signo > 0 && signo < 65, idx, "not a signal number");
  luaL_argcheck(L, signo != SIGKILL && signo != SIGSTOP, idx,
                "SIGKILL and SIGSTOP cannot be caught");
  return signo;
}

/* Whether the watcher should keep the loop alive: while a task waits. */
static void update_count(lsig *s) {
  int want = !al_wlist_empty(&s->waiters);
  if (want == s->counted || !ev_is_active(&s->w))
    return;
  if (want)
    ev_ref(s->S->loop.ev);
  else
    ev_unref(s->S->loop.ev);
  s->counted = want;
}

static void sig_cb(struct ev_loop *ev, ev_signal *w, int revents) {
  lsig *s = al_container_of(w, lsig, w);
  (void)ev;
  (void)revents;
  s->pending++;
  al_loop_post(&s->S->loop, &s->h);
}

/* Stop watching once nobody listens: the signal goes back to its owner. */
static void release_if_unused(lua_State *L, lsig *s) {
  lstate *S = s->S;
  if (s->nhandlers > 0 || !al_wlist_empty(&s->waiters) || S->closed)
    return;
  if (ev_is_active(&s->w)) {
    if (!s->counted)
      ev_ref(S->loop.ev);
    s->counted = 0;
    ev_signal_stop(S->loop.ev, &s->w);
    laloop_signal_release(S, s->signo);
  }
  al_loop_unpost(&S->loop, &s->h);
  if (S->signals[s->signo] == s)
    S->signals[s->signo] = NULL;
  laloop_unanchor(L, S, s->ref);
  s->ref = LUA_NOREF;
}

/* Deliveries: wake every waiter, then call each handler (a failing one is
 * reported, the others still run). */
static void sig_run(al_handle_t *h) {
  lsig *s = al_container_of(h, lsig, h);
  lstate *S = s->S;
  lua_State *L = S->sched.driver;
  int base = lua_gettop(L), i, n;
  al_waiter_t *w;
  while ((w = al_wlist_first(&s->waiters)) != NULL) {
    al_waiter_remove(w);
    al_task_wake(al_container_of(w, al_task_t, waiter), s->signo);
  }
  update_count(s);
  laloop_push_anchored(L, S, s->ref); /* keeps s alive while handlers run */
  lua_getiuservalue(L, base + 1, 1);
  n = (int)lua_rawlen(L, base + 2);
  lua_createtable(L, n, 0); /* a copy: handlers may cancel handlers */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, base + 2, i);
    lua_rawseti(L, base + 3, i);
  }
  for (; s->pending > 0; s->pending--) {
    for (i = 1; i <= n; i++) {
      lsighandle *sh;
      lua_rawgeti(L, base + 3, i);
      sh = lua_touserdata(L, -1);
      if (!sh->active) {
        lua_pop(L, 1);
        continue;
      }
      lua_pushcfunction(L, laloop_callback_msgh); /* base + 5 */
      lua_getiuservalue(L, base + 4, 1);
      lua_pushinteger(L, s->signo);
      if (lua_pcall(L, 1, 0, base + 5) != LUA_OK) {
        int err = lua_gettop(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
        lua_getfield(L, -1, "cb_tb");
        lua_pushnil(L);
        lua_setfield(L, -3, "cb_tb");
        laloop_report(L, S, "Exception in signal handler", err, lua_gettop(L));
      }
      lua_settop(L, base + 3);
    }
  }
  lua_settop(L, base);
  release_if_unused(L, s);
}

/* The record of signo on S's loop, watching; pushes nothing. Raises when
 * another loop of the process owns the signal. */
static lsig *get_sig(lua_State *L, lstate *S, int signo) {
  lsig *s = S->signals[signo];
  if (s)
    return s;
  if (laloop_signal_claim(L, S, signo) != 0)
    lua_error(L);
  s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  s->S = S;
  s->signo = signo;
  al_wlist_init(&s->waiters);
  al_handle_init(&s->h, sig_run);
  ev_signal_init(&s->w, sig_cb, signo);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  s->ref = laloop_anchor(L, S, -1);
  lua_pop(L, 1);
  ev_signal_start(S->loop.ev, &s->w);
  ev_unref(S->loop.ev); /* handlers alone do not keep the loop alive */
  S->signals[signo] = s;
  return s;
}

/* on_signal(sig, fn) -> handle */
static int l_on_signal(lua_State *L) {
  lstate *S = laloop_state(L);
  int signo = check_signal(L, 1);
  lsighandle *sh;
  lsig *s;
  luaL_argexpected(L, laloop_is_callable(L, 2), 2, "function");
  if (S->embed.shut)
    return luaL_error(L, "aloop.on_signal: aloop was shut down");
  s = get_sig(L, S, signo);
  sh = lua_newuserdatauv(L, sizeof *sh, 2);
  sh->sig = s;
  sh->active = 1;
  lua_rawgetp(L, LUA_REGISTRYINDEX, S->mt.sighandle);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  laloop_push_anchored(L, S, s->ref);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, -3, 2);
  lua_getiuservalue(L, -1, 1);
  lua_pushvalue(L, -3);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 2);
  s->nhandlers++;
  return 1;
}

static int sh_cancel(lua_State *L) {
  lstate *S = laloop_state(L);
  lsighandle *sh = laloop_check_class(L, 1, S->mt.sighandle,
                                      "aloop signal handle");
  lua_Integer i, n;
  if (!sh->active || S->closed)
    return 0;
  sh->active = 0;
  lua_getiuservalue(L, 1, 2);
  lua_getiuservalue(L, -1, 1);
  n = (lua_Integer)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_rawequal(L, -1, 1)) {
      lua_pop(L, 1);
      for (; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        lua_rawseti(L, -2, i);
      }
      lua_pushnil(L);
      lua_rawseti(L, -2, n);
      break;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  sh->sig->nhandlers--;
  release_if_unused(L, sh->sig);
  return 0;
}

static int sh_tostring(lua_State *L) {
  lstate *S = laloop_state(L);
  lsighandle *sh = laloop_check_class(L, 1, S->mt.sighandle,
                                      "aloop signal handle");
  lua_pushfstring(L, "<aloop signal handler %d%s>", sh->sig->signo,
                  sh->active ? "" : " cancelled");
  return 1;
}

/* The one cleanup of a wait_signal park. */
static void sig_unwait(al_task_t *t) {
  al_wlist_t *l = t->waiter.owner;
  lsig *s = al_container_of(l, lsig, waiters);
  al_waiter_remove(&t->waiter);
  update_count(s);
}

static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

static int wait_signal_gone(ltask *lt, void *s) {
  release_if_unused(lt->co, s);
  return 0;
}

/* The lsig stays on the task's stack while it waits: alive until here. */
static int wait_signal_k(lua_State *L, int status, lua_KContext ctx) {
  lsig *s = (lsig *)ctx;
  int signo = laloop_woken(L, status, ctx, wait_signal_k, wait_signal_gone, s);
  release_if_unused(L, s);
  lua_pushinteger(L, signo);
  return 1;
}

/* wait_signal(sig) -> the signal number, at its next delivery. */
static int l_wait_signal(lua_State *L) {
  lstate *S = laloop_state(L);
  int signo = check_signal(L, 1);
  ltask *lt = laloop_current(L, "wait_signal");
  lsig *s = get_sig(L, S, signo);
  laloop_push_anchored(L, S, s->ref);
  lt->t.waiter.cb = never_called;
  al_wlist_append(&s->waiters, &lt->t.waiter);
  update_count(s);
  al_task_park(&lt->t, sig_unwait);
  return laloop_park(L, (lua_KContext)s, wait_signal_k);
}

void laloop_close_signals(lstate *S) {
  int i;
  for (i = 0; i < LALOOP_NSIG; i++) {
    lsig *s = S->signals[i];
    if (s && ev_is_active(&s->w)) {
      if (!s->counted)
        ev_ref(S->loop.ev);
      ev_signal_stop(S->loop.ev, &s->w);
      laloop_signal_release(S, s->signo);
    }
    S->signals[i] = NULL;
  }
}

int laloop_signal_handled(lstate *S, int signo) {
  return S->signals[signo] && S->signals[signo]->nhandlers > 0;
}

void laloop_open_signals(lua_State *L, int mod, int up) {
  static const luaL_Reg methods[] = {{"cancel", sh_cancel}, {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__tostring", sh_tostring}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"on_signal", l_on_signal},
                                 {"wait_signal", l_wait_signal},
                                 {NULL, NULL}};
  lstate *S = lua_touserdata(L, up);
  S->mt.sighandle =
      laloop_new_class(L, up, "aloop.SignalHandle", methods, metas);
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
