/* laloop.h -- shared internals of the Lua binding: the per-state loop
 * record, the task/future userdata layouts and the helpers the binding's
 * files call one another through. Not installed. */
#ifndef LALOOP_H
#define LALOOP_H

#include <lauxlib.h>
#include <lua.h>

#include "../core/al.h"

#define LALOOP_LOOP_MT "aloop.Loop"
#define LALOOP_TASK_MT "aloop.Task"
#define LALOOP_FUTURE_MT "aloop.Future"
#define LALOOP_GATHER_MT "aloop.Gather"
#define LALOOP_HANDLE_MT "aloop.Handle"
#define LALOOP_SCOPE_MT "aloop.Scope"
#define LALOOP_ERROR_MT "aloop.Error"

typedef struct lstate lstate;
typedef struct ltask ltask;

/* One per main Lua state, inside the loop userdata. */
struct lstate {
  al_loop_t loop;
  struct ev_loop *ev;
  int own_ev;          /* destroy ev with the state */
  lua_State *L;        /* the main thread */
  lua_State *driver;   /* thread running the scheduler now (callbacks run here) */
  int anchors;         /* registry ref: table anchoring active objects */
  ltask *cur;          /* the task whose coroutine is running, if any */
  al_scope_t *scope;   /* scope of the innermost top-level run */
  unsigned ntask;      /* tasks ever created, for names */
  const void *mt_task, *mt_future, *mt_gather; /* metatables, to compare */
  const void *mt_future_gc; /* a Future that needs finalising */
  const void *mt_waitq;
  int closed;
  int debug;
  double slow_step;    /* debug: a step longer than this is reported */
  int handle_sigint;   /* top-level run turns Ctrl-C into cancelling main */
  ev_signal sigint;
  al_handle_t sigint_h;
  ltask *sigint_target;
  int interrupted;
  int naming_script; /* the next task is the command's script */
  /* embedding (lembed.c) */
  al_scope_t root;     /* tasks the host spawns, and those they create */
  int driving;         /* someone drives the loop now: run, aloop_step */
  int shared;          /* on the host's libev loop, run from its prepare */
  ev_prepare prepare;
  ev_idle idle;        /* keeps the host's ev_run from blocking when ready */
  int pollfd;          /* -2 until looked up */
  int shut;            /* aloop_shutdown was called */
  void (*err_fn)(lua_State *L, const char *what, const char *message,
                 const char *traceback, void *ud);
  void *err_ud;
};

/* Task userdata. User value 1: the coroutine. A name given with set_name
 * and the traceback of its error live in the weak table anchors.extras, as
 * few tasks have them: 100 000 sleeping tasks should cost little more than
 * their coroutines. */
struct ltask {
  al_task_t t;      /* first: an ltask* is an al_task_t* is an al_future_t* */
  lua_State *co;
  int ref;          /* anchor while pending, else LUA_NOREF */
  int nres;         /* after it finished: results at co[1..nres] */
  unsigned id;      /* for its default name; 0 for the command's script */
  unsigned char cancel_now; /* raise the cancellation at the await point */
  unsigned char has_error;  /* after it failed: the error is co[1] */
  unsigned char detached;   /* spawned by the host: report its error at once */
};

#define LALOOP_S(f) ((lstate *)((al_future_t *)(f))->loop->data)

/* Future userdata. User value 1: the single result, a packed table of
 * results (nres != 1), or the error. */
typedef struct lfuture {
  al_future_t f;
  int nres;
} lfuture;

/* lmodule.c */
lstate *laloop_state(lua_State *L);            /* upvalue 1 of every function */
ltask *laloop_current(lua_State *L, const char *fname); /* raises outside */
int laloop_anchor(lua_State *L, lstate *S, int idx);
void laloop_unanchor(lua_State *L, lstate *S, int ref);
void laloop_push_anchored(lua_State *L, lstate *S, int ref);
void laloop_report(lua_State *L, lstate *S, const char *what, int err_idx,
                   int tb_idx);
int laloop_traceback_msgh(lua_State *L);
int laloop_callback_msgh(lua_State *L);
void laloop_run_callback(lstate *S, int *ref, int packed, const char *what);

/* lerror.c */
void laloop_push_error(lua_State *L, const char *kind, const char *msg);
int laloop_error(lua_State *L, const char *kind, const char *msg);
int laloop_is_kind(lua_State *L, int idx, const char *kind);
void laloop_open_errors(lua_State *L, int mod);
/* The registry key under which the lstate pointer is kept. */
extern const char laloop_state_key;

/* ltask.c */
al_future_t *laloop_tofuture(lua_State *L, int idx); /* Task, Future, gather */
/* A task running fn (at fidx) with the nargs values after it, in scope (NULL:
 * the running task's, else the innermost run's); pushes it. */
ltask *laloop_new_task(lua_State *L, lstate *S, al_scope_t *scope, int fidx,
                       int nargs);
int laloop_await(lua_State *L, int idx);
int laloop_push_outcome(lua_State *L, int idx, int first_only);
void laloop_report_unretrieved(lua_State *L, lstate *S, void *run_id);
void laloop_open_tasks(lua_State *L, int mod, int up);
const void *laloop_new_class(lua_State *L, int up, const char *name,
                             const luaL_Reg *methods, const luaL_Reg *metas);

/* generated from the files in bindings/lua/aloop by embed.lua */
typedef struct laloop_part {
  const char *name;
  const char *src;
  unsigned long len;
} laloop_part;
extern const laloop_part laloop_lua_parts[];

/* lloop.c */
void laloop_open_loop(lua_State *L, int mod, int up);
void laloop_open_run(lua_State *L, int mod, int up);

/* Who drives the scheduler now, saved and restored around a drive. */
typedef struct ldrive {
  al_scope_t *scope;
  lua_State *driver;
} ldrive;
/* Drive from thread L with new tasks going to `scope` (NULL: keep the
 * current one, or the root when there is none). */
void laloop_drive_begin(lstate *S, lua_State *L, al_scope_t *scope,
                        ldrive *saved);
void laloop_drive_end(lstate *S, const ldrive *saved);
/* A task, a callback, aloop.run or a host is running the loop already. */
#define LALOOP_BUSY(S) ((S)->cur || (S)->loop.depth > 0 || (S)->driving)

/* lembed.c */
lstate *laloop_find_state(lua_State *L); /* NULL if aloop was never opened */
void laloop_setup_shared(lstate *S);
void laloop_stop_embedding(lstate *S);

/* lsync.c */
void laloop_open_sync(lua_State *L, int mod, int up);

#endif
