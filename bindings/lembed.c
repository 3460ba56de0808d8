/* lembed.c -- the embedding API (aloop.h): sharing a host's libev loop (a
 * prepare watcher runs ready tasks), driving aloop from another main loop
 * (pollable fd, timeout, step), spawning tasks from C, the host's error
 * handler, and shutdown. */
#include <stdlib.h>
#include <string.h>

#include "aloop.h"
#include "laloop.h"

/* Drive one turn on behalf of a host: callbacks and the tasks they create
 * belong to the root scope. */
static void host_turn(lstate *S, lua_State *L, int poll) {
  ldrive saved;
  laloop_drive_begin(S, L, NULL, &saved);
  if (poll) {
    al_loop_fire_timers(&S->loop);
    ev_run(S->loop.ev, EVRUN_NOWAIT);
  }
  al_loop_run_turn(&S->loop);
  laloop_drive_end(S, &saved);
}

/* ---- sharing the host's libev loop ---- */

static void shared_prepare_cb(struct ev_loop *ev, ev_prepare *w, int revents) {
  lstate *S = al_container_of(w, lstate, embed.prepare);
  (void)revents;
  if (LALOOP_BUSY(S) || S->embed.shut)
    return; /* aloop.run or aloop_step is driving the loop itself */
  host_turn(S, S->L, 0);
  if (S->loop.nready > 0) {
    if (!ev_is_active(&S->embed.idle))
      ev_idle_start(ev, &S->embed.idle);
  } else if (ev_is_active(&S->embed.idle)) {
    ev_idle_stop(ev, &S->embed.idle);
  }
}

static void shared_idle_cb(struct ev_loop *ev, ev_idle *w, int revents) {
  (void)ev;
  (void)w;
  (void)revents; /* only there so that the poll does not block */
}

/* The queue stopped being empty: make sure the host's poll does not block
 * before the prepare watcher runs it (a timer firing may be the loop's last
 * event). */
static void shared_on_ready(al_loop_t *loop) {
  lstate *S = loop->data;
  if (!ev_is_active(&S->embed.idle))
    ev_idle_start(S->loop.ev, &S->embed.idle);
}

static void stop_embedding(lstate *S) {
  if (ev_is_active(&S->embed.prepare)) {
    ev_ref(S->loop.ev);
    ev_prepare_stop(S->loop.ev, &S->embed.prepare);
  }
  if (ev_is_active(&S->embed.idle))
    ev_idle_stop(S->loop.ev, &S->embed.idle);
}

static void setup_shared(lstate *S) {
  S->embed.shared = 1;
  S->embed.close = stop_embedding;
  S->loop.on_ready = shared_on_ready;
  ev_prepare_init(&S->embed.prepare, shared_prepare_cb);
  ev_idle_init(&S->embed.idle, shared_idle_cb);
  ev_prepare_start(S->loop.ev, &S->embed.prepare);
  ev_unref(S->loop.ev); /* the prepare alone must not keep the host's loop alive */
  /* Work posted before the host's first ev_run must not wait for a poll. */
  ev_idle_start(S->loop.ev, &S->embed.idle);
}

/* ---- driving from another main loop ---- */

int aloop_pollfd(lua_State *L) {
  lstate *S = laloop_find_state(L);
  if (!S || S->embed.shared)
    return -1;
  if (S->embed.pollfd == LALOOP_POLLFD_UNKNOWN) {
    S->embed.pollfd = -1;
    /* libev has no accessor for its backend's fd, but an ev_embed watcher
     * watches exactly that fd of the loop it embeds: embed aloop's loop into
     * a throwaway one, read the fd, and undo it. */
    if (ev_backend(S->loop.ev) & ev_embeddable_backends()) {
      struct ev_loop *outer = ev_loop_new(EVBACKEND_POLL | EVBACKEND_SELECT);
      if (outer) {
        ev_embed e;
        ev_embed_init(&e, NULL, S->loop.ev);
        ev_embed_start(outer, &e);
        S->embed.pollfd = e.io.fd;
        ev_embed_stop(outer, &e);
        ev_loop_destroy(outer);
      }
    }
  }
  return S->embed.pollfd;
}

double aloop_timeout(lua_State *L) {
  lstate *S = laloop_find_state(L);
  double next;
  if (!S || S->embed.shut)
    return -1;
  if (S->loop.nready > 0)
    return 0;
  next = al_loop_next_timer(&S->loop);
  if (next < 0)
    return -1;
  next -= al_time();
  return next > 0 ? next : 0;
}

static int refuse(lua_State *L, const char *msg) {
  lua_pushstring(L, msg);
  return -1;
}

int aloop_step(lua_State *L) {
  lstate *S = laloop_find_state(L);
  if (!S)
    return refuse(L, "aloop_step: aloop is not open in this state");
  if (S->embed.shut)
    return refuse(L, "aloop_step: aloop was shut down");
  if (LALOOP_BUSY(S))
    return refuse(L, "aloop_step: called from inside aloop");
  host_turn(S, L, 1);
  return (int)S->loop.ntasks;
}

int aloop_task_done(lua_State *L, int idx) {
  lstate *S = laloop_find_state(L);
  const void *mt;
  al_future_t *f = lua_touserdata(L, idx);
  if (!S || !f || !lua_getmetatable(L, idx))
    return 0;
  mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  if (!LALOOP_IS_TASK_MT(S, mt) && mt != S->mt.future && mt != S->mt.future_gc)
    return 0;
  return f->state != AL_PENDING;
}

int aloop_tasks(lua_State *L) {
  lstate *S = laloop_find_state(L);
  return S ? (int)S->loop.ntasks : 0;
}

/* ---- spawning ---- */

static int spawn_p(lua_State *L) {
  lstate *S = lua_touserdata(L, 1);
  int nargs = lua_gettop(L) - 2;
  ltask *lt;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lt = laloop_new_task(L, S, &S->embed.root, 2, nargs);
  lt->detached = 1;
  if (S->embed.shared && !ev_is_active(&S->embed.idle))
    ev_idle_start(S->loop.ev, &S->embed.idle); /* so the host's poll does not block */
  return 1;
}

int aloop_spawn(lua_State *L, int nargs) {
  lstate *S = laloop_find_state(L);
  int status;
  if (!S || S->embed.shut) {
    lua_pop(L, nargs + 1);
    lua_pushstring(L, S ? "aloop_spawn: aloop was shut down"
                        : "aloop_spawn: aloop is not open in this state");
    return LUA_ERRRUN;
  }
  if (lua_type(L, -(nargs + 1)) != LUA_TFUNCTION) {
    lua_pop(L, nargs + 1);
    lua_pushstring(L, "aloop_spawn: a function is expected below the arguments");
    return LUA_ERRRUN;
  }
  lua_pushcfunction(L, spawn_p);
  lua_pushlightuserdata(L, S);
  lua_rotate(L, -(nargs + 3), 2); /* spawn_p, S, fn, args... */
  status = lua_pcall(L, nargs + 2, 1, 0);
  return status;
}

int aloop_dofile(lua_State *L, const char *path, int nargs, const char **args) {
  int status = luaL_loadfile(L, path), i;
  if (status != LUA_OK)
    return status;
  for (i = 0; i < nargs; i++)
    lua_pushstring(L, args[i]);
  return aloop_spawn(L, nargs);
}

void aloop_set_error_handler(lua_State *L, aloop_error_handler fn, void *ud) {
  lstate *S = laloop_find_state(L);
  if (S) {
    S->embed.err_fn = fn;
    S->embed.err_ud = ud;
  }
}

/* ---- shutdown ---- */

static void wake_nothing(al_handle_t *h) { (void)h; }

static int cmp_task_ids(const void *a, const void *b) {
  const ltask *x = *(ltask *const *)a, *y = *(ltask *const *)b;
  return (x->id > y->id) - (x->id < y->id);
}

int aloop_shutdown(lua_State *L, double timeout) {
  lstate *S = laloop_find_state(L);
  int base = lua_gettop(L);
  al_handle_t wake;
  al_timer_t deadline;
  size_t n = 0, i;
  if (!S || S->embed.shut)
    return 0;
  if (LALOOP_BUSY(S))
    return refuse(L, "aloop_shutdown: called from inside aloop");
  /* Cancel every unfinished task, oldest first. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_newtable(L); /* the tasks, kept alive while we work */
  lua_pushnil(L);
  while (lua_next(L, base + 1)) {
    if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TUSERDATA &&
        lua_getmetatable(L, -1)) {
      int is_task = LALOOP_IS_TASK_MT(S, lua_topointer(L, -1));
      lua_pop(L, 1);
      if (is_task) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, base + 2, (lua_Integer)++n);
      }
    }
    lua_pop(L, 1);
  }
  if (n > 0) {
    ltask **ts = lua_newuserdatauv(L, n * sizeof *ts, 0);
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, base + 2, (lua_Integer)i + 1);
      ts[i] = lua_touserdata(L, -1);
      lua_pop(L, 1);
    }
    qsort(ts, n, sizeof *ts, cmp_task_ids);
    for (i = 0; i < n; i++)
      al_task_cancel(&ts[i]->t, NULL);
  }
  /* Run their cleanup, no longer than the timeout. */
  al_handle_init(&wake, wake_nothing);
  al_timer_init(&deadline, &wake);
  al_timer_add(&S->loop, &deadline, al_time() + (timeout > 0 ? timeout : 0));
  {
    ldrive saved;
    laloop_drive_begin(S, L, NULL, &saved);
    al_loop_stop_when_idle(&S->loop, true); /* no poll after the last one finishes */
    while (S->loop.ntasks > 0 && deadline.heap_index != 0)
      if (al_loop_step(&S->loop) == AL_STEP_STUCK)
        break;
    al_loop_stop_when_idle(&S->loop, false);
    laloop_drive_end(S, &saved);
  }
  al_timer_remove(&S->loop, &deadline);
  al_loop_unpost(&S->loop, &wake);
  laloop_report_unretrieved(L, S, NULL);
  S->embed.shut = 1;
  if (S->embed.close)
    S->embed.close(S);
  S->embed.close = NULL;
  S->loop.on_ready = NULL;
  laloop_stop_sigint(S);
  al_loop_close(&S->loop);
  lua_settop(L, base);
  return (int)S->loop.ntasks;
}

/* ---- opening ---- */

static int openlib_p(lua_State *L) {
  struct ev_loop *ev = lua_touserdata(L, 1);
  lstate *S;
  lua_settop(L, 0);
  laloop_open(L, ev);
  S = laloop_find_state(L);
  /* A host owns its signals: aloop.run does not take Ctrl-C over here. */
  S->sigint.handle = 0;
  if (ev && !S->embed.shared)
    setup_shared(S);
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
