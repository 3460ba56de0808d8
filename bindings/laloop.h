/* laloop.h -- shared internals of the Lua binding: the per-state loop
 * record, the task/future userdata layouts and the helpers the binding's
 * files call one another through. Not installed.
 *
 * The files, and what they hold:
 *   lmodule.c  the state and its anchors, luaopen_aloop, small module
 *              functions
 *   lparts.c   the parts written in Lua: their private helpers, their
 *              private environment, loading them (package.preload)
 *   lerror.c   error values (aloop's own and the OS's), reports of errors
 *              nobody retrieves, message handlers
 *   lrun.c     aloop.run and who drives the scheduler; Ctrl-C; the
 *              process-wide table of signal owners
 *   ltask.c    tasks: creation, the step that resumes them, the one wait
 *              protocol (park/woken), await, sleep, Task methods
 *   lfuture.c  outcomes, Future, the methods Tasks and Futures share
 *   ldonecb.c  done callbacks
 *   lgather.c  gather
 *   lloop.c    the loop object: call_soon/call_later/call_at handles
 *   lsync.c    the wait queue under every synchronisation primitive
 *   lsignal.c  on_signal and wait_signal
 *   lstream.c  Stream: reads, writes, closing (lstream.h)
 *   lserver.c  Listener and accept; ltls.c  TLS contexts and handshakes
 *   ldns.c     getaddrinfo on the loop's resolvers (core/dns.c), DNSError
 *   lproc.c    subprocesses and standard input (core/proc.c)
 *   lthread.c  to_thread on the loop's worker threads (core/pool.c), and
 *   lcopy.c    the copying of values between Lua states (lcopy.h)
 *   lhttp.c    the C side of aloop.http, on libcurl (core/http.c)
 *   lembed.c   the embedding API (aloop.h), standing on the rest
 *   main.c     the aloop command
 * Arrows run one way: lembed.c uses the module; the module never calls
 * into lembed.c (it reaches the embedding only through S->embed.close). */
#ifndef LALOOP_H
#define LALOOP_H

#include <stdatomic.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "../core/al.h"

#define LALOOP_LOOP_MT "aloop.Loop"
#define LALOOP_TASK_MT "aloop.Task"
#define LALOOP_FUTURE_MT "aloop.Future"
#define LALOOP_GATHER_MT "aloop.Gather"
#define LALOOP_HANDLE_MT "aloop.Handle"
#define LALOOP_DONECB_MT "aloop.DoneCallback"
#define LALOOP_WAITQ_MT "aloop.WaitQueue"
#define LALOOP_ERROR_MT "aloop.Error"

typedef struct lstate lstate;
typedef struct lsig lsig;

#define LALOOP_NSIG 65 /* signal numbers are below this */
typedef struct ltask ltask;

typedef void (*laloop_error_fn)(lua_State *L, const char *what,
                                const char *message, const char *traceback,
                                void *ud);

/* One per main Lua state, inside the loop userdata. */
struct lstate {
  al_loop_t loop;   /* first; loop.ev is the libev loop */
  lua_State *L;     /* the main thread */
  int anchors;      /* registry ref: table anchoring active objects */
  int own_ev;       /* destroy loop.ev with the state */
  int closed;       /* the loop was finalised: touch nothing */
  struct {          /* who runs the scheduler, and in which task */
    ltask *cur;           /* the task whose coroutine is running, if any */
    lua_State *driver;    /* thread running the scheduler (callbacks run here) */
    al_scope_t *scope;    /* scope of the innermost top-level run */
    int driving;          /* run or aloop_step drives the loop now */
    unsigned ntask;       /* tasks ever created, for names */
    int naming_script;    /* the next task is the command's script: "main" */
  } sched;
  struct { /* metatables, compared by address on hot paths */
    const void *task, *future, *future_gc, *gather, *waitq, *handle, *donecb;
    const void *sighandle;
    const void *task_gc; /* a Task that owns something (see ltask.c) */
  } mt;
  struct { /* the hot metatables again, as registry integer keys: pushing
            * one by lua_rawgeti costs a fraction of lua_rawgetp */
    int task, task_gc, future, future_gc, gather;
  } mtref;
  struct {     /* anchors' free slots, kept in C (lmodule.c) */
    int *free; /* a stack of free slots */
    int nfree, cap;
    int top; /* slots 1..top have been handed out */
  } anchor;
  struct {
    int on;           /* ALOOP_DEBUG / set_debug */
    double slow_step; /* a step longer than this is reported */
  } debug;
  struct {            /* Ctrl-C cancels the main task of a top-level run */
    int handle;       /* top-level runs watch SIGINT (not in hosts) */
    ev_signal w;
    al_handle_t h;
    ltask *target;
    int interrupted;  /* the signal that cancelled it: SIGINT or SIGTERM */
    int term;         /* the aloop command: SIGTERM cancels it too */
    ev_signal termw;
    al_handle_t termh;
  } sigint;
  lsig *signals[LALOOP_NSIG]; /* on_signal/wait_signal watchers (lsignal.c) */
  struct {            /* the embedding API (lembed.c) */
    al_scope_t root;  /* tasks the host spawns, and those they create */
    int shared;       /* on the host's libev loop, run from its prepare */
    ev_prepare prepare;
    ev_idle idle;     /* keeps the host's ev_run from blocking when ready */
    int pollfd;       /* LALOOP_POLLFD_UNKNOWN until looked up */
    int shut;         /* aloop_shutdown was called */
    laloop_error_fn err_fn;
    void *err_ud;
    void (*close)(lstate *S); /* undo the embedding, as the loop closes */
  } embed;
  struct al_dns *dns; /* the loop's resolvers (ldns.c), made on first use */
  struct al_pool *pool; /* worker threads (lthread.c), made on first use */
  unsigned pool_size;   /* set_thread_pool_size; 0: ALOOP_THREADS or cores */
  struct al_http *http; /* the loop's HTTP sessions (lhttp.c), on first use */
};

#define LALOOP_POLLFD_UNKNOWN (-2)

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

/* A task, a callback, aloop.run or a host is running the loop already. */
#define LALOOP_BUSY(S)                                                        \
  ((S)->sched.cur || al_loop_running(&(S)->loop) || (S)->sched.driving)

/* lmodule.c */
extern const char laloop_state_key; /* registry key of the loop userdata */
/* The state of the running function (upvalue 1 of every function). While
 * one Lua state of the process has opened aloop, it is read from
 * laloop_only_state (an upvalue read costs a fifth of an await); once a
 * second opens, or the first closes, that holds LALOOP_MANY_STATES for
 * good and the upvalue is read (raising when the loop is closed). */
#define LALOOP_MANY_STATES ((uintptr_t)1)
extern _Atomic uintptr_t laloop_only_state;
lstate *laloop_state_slow(lua_State *L);
static inline lstate *laloop_state(lua_State *L) {
  uintptr_t S = atomic_load_explicit(&laloop_only_state, memory_order_relaxed);
  return S > LALOOP_MANY_STATES ? (lstate *)S : laloop_state_slow(L);
}
lstate *laloop_find_state(lua_State *L); /* NULL if not open, or closed */
/* Anchor the value at idx in the anchors table until unanchored; returns
 * its slot. The slots are handed out in C (S->anchor): never luaL_ref or
 * luaL_unref on the anchors table, whose integer keys are all ours. */
int laloop_anchor(lua_State *L, lstate *S, int idx);
void laloop_unanchor(lua_State *L, lstate *S, int ref);
void laloop_push_anchored(lua_State *L, lstate *S, int ref);
/* Metatables are told apart by address: no string lookups on hot paths. */
static inline const void *laloop_class_of(lua_State *L, int idx) {
  const void *mt = NULL; /* its metatable, or NULL */
  if (lua_getmetatable(L, idx)) {
    mt = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
  return mt;
}
void *laloop_check_class(lua_State *L, int idx, const void *mt,
                         const char *tname);
/* Push a metatable by its registry integer key (S->mtref). */
static inline void laloop_push_class(lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}
/* The integer key of the metatable at the top of the stack (kept there). */
int laloop_class_ref(lua_State *L);
/* A Task's metatable: the plain one, or the finalising one of a task that
 * owns something (an error to report, a cancel message). */
#define LALOOP_IS_TASK_MT(S, m) ((m) == (S)->mt.task || (m) == (S)->mt.task_gc)
/* The Task, Future or gather at idx, of this loop, or NULL; without
 * looking at its metatable. Pure Lua cannot make a userdata, and one made
 * in C passes only with the exact size of ours, our loop's address where a
 * future keeps it and the kind: the cheap check of the hot paths. */
static inline al_future_t *laloop_tokind(lua_State *L, lstate *S, int idx,
                                         int kind, size_t size) {
  al_future_t *f = lua_touserdata(L, idx);
  if (f && lua_rawlen(L, idx) == size && f->loop == &S->loop && f->kind == kind)
    return f;
  return NULL;
}
int laloop_is_callable(lua_State *L, int idx);
/* A delay argument: a number, not NaN; negative counts as 0. */
double laloop_check_delay(lua_State *L, int idx);
const void *laloop_new_class(lua_State *L, int up, const char *name,
                             const luaL_Reg *methods, const luaL_Reg *metas);
/* The finalising twin of the class whose metatable is on the top: the same
 * __index, __tostring, __metatable and __name, plus __gc = gc (upvalue: the
 * state). Sets *mt to it, registers it under that address too, and returns
 * its registry reference; the stack is left as it was. */
int laloop_gc_twin(lua_State *L, int up, lua_CFunction gc, const void **mt);
/* The self of a __gc (upvalue 1 the state): raises when it is of another
 * class; NULL when the loop is closed and nothing may be touched. */
void *laloop_gc_self(lua_State *L, const void *mt, const char *tname);
/* Open the module on ev (NULL: a loop of its own); pushes the module. */
int laloop_open(lua_State *L, struct ev_loop *ev);

/* lerror.c */
void laloop_push_error(lua_State *L, const char *kind, const char *msg);
/* The same with a message of len bytes (a cancel message may hold NULs). */
void laloop_push_error_n(lua_State *L, const char *kind, const char *msg,
                         size_t len);
int laloop_error(lua_State *L, const char *kind, const char *msg);
int laloop_is_kind(lua_State *L, int idx, const char *kind);
/* Push an OSError value for a core error code: code "ECONNREFUSED",
 * errno 111, message "connection refused", printing as
 * "ECONNREFUSED: connection refused"; `what` (may be NULL) says what
 * failed. laloop_oserror raises it. */
void laloop_push_oserror(lua_State *L, int err, const char *what);
int laloop_oserror(lua_State *L, int err, const char *what);
/* Push the text of any value, never raising (a failing __tostring gives a
 * description instead); returns it. */
const char *laloop_tostring(lua_State *L, int idx);
void laloop_report(lua_State *L, lstate *S, const char *what, int err_idx,
                   int tb_idx);
int laloop_traceback_msgh(lua_State *L);
int laloop_callback_msgh(lua_State *L);
void laloop_open_errors(lua_State *L, int mod);

/* ltask.c: tasks and the one wait protocol. A blocking call checks where
 * it runs (laloop_current), arms its wait in the core -- al_task_await,
 * al_task_sleep, al_waitq_park or an I/O hook, each with exactly one
 * cleanup, and each applying a cancel that is pending -- and returns
 * laloop_park(L, ctx, k). Its continuation k serves the direct path
 * (status LUA_OK: it never parked) and the resumed one (LUA_YIELD) alike,
 * as Lua's finishpcall does, and begins with laloop_woken. */
ltask *laloop_current(lua_State *L, const char *fname); /* raises outside */
int laloop_park(lua_State *L, lua_KContext ctx, lua_KFunction k);
/* What a cancelled wait gives back (a grant, say); returns nonzero when the
 * caller takes the cancellation over rather than have it raised. */
typedef int (*laloop_forfeit)(ltask *lt, void *arg);
/* In continuation k (its own ctx and k passed again): LUA_OK gives 0;
 * after a park, the task's wake status, or, when it was cancelled,
 * forfeit(lt, arg) and the CancelledError raised (or AL_ECANCELED returned
 * when forfeit took it over). A coroutine resumed by hand, from outside
 * aloop, parks again at once through (ctx, k): the task is not disturbed,
 * and the resumer gets nil and a message. */
int laloop_woken_slow(lua_State *L, lua_KContext ctx, lua_KFunction k,
                      laloop_forfeit forfeit, void *arg);
static inline int laloop_woken(lua_State *L, int status, lua_KContext ctx,
                               lua_KFunction k, laloop_forfeit forfeit,
                               void *arg) {
  return status == LUA_OK ? 0 : laloop_woken_slow(L, ctx, k, forfeit, arg);
}

int laloop_raise_cancelled(lua_State *L, ltask *lt);
/* A task running fn (at fidx) with the nargs values after it, in scope (NULL:
 * the running task's, else the innermost run's); pushes it. */
ltask *laloop_new_task(lua_State *L, lstate *S, al_scope_t *scope, int fidx,
                       int nargs);
int laloop_await(lua_State *L, int idx);
int laloop_push_extras(lua_State *L, lstate *S, int idx, int create);
void laloop_push_traceback(lua_State *L, int idx);
const char *laloop_state_name(const al_future_t *f);
void laloop_open_tasks(lua_State *L, int mod, int up);
/* The loop closes (its __gc, as the Lua state closes): undo what each
 * pending task holds in the core, as a finaliser would. */
void laloop_close_tasks(lua_State *L, lstate *S);

/* lfuture.c */
al_future_t *laloop_tofuture(lua_State *L, int idx); /* Task, Future, gather */
int laloop_push_outcome(lua_State *L, int idx, int first_only);
void laloop_report_unretrieved(lua_State *L, lstate *S, void *run_id);
void laloop_report_if_unretrieved(lua_State *L, int idx, al_future_t *f,
                                  const char *what);
void laloop_open_futures(lua_State *L, int mod, int up);
/* Methods (upvalue: the state) into both the Task's and the Future's
 * method tables. */
void laloop_add_shared_methods(lua_State *L, int up, const luaL_Reg *methods);
/* The Task or Future at idx (a gather too), or a type error. */
al_future_t *laloop_check_future(lua_State *L, int idx);

/* ldonecb.c */
void laloop_open_donecbs(lua_State *L, int up);

/* lgather.c */
void laloop_open_gather(lua_State *L, int mod, int up);

/* lloop.c */
void laloop_run_callback(lstate *S, int *ref, int packed, const char *what);
void laloop_open_loop(lua_State *L, int mod, int up);

/* lrun.c: who drives the scheduler now, saved and restored around a drive. */
typedef struct ldrive {
  al_scope_t *scope;
  lua_State *driver;
} ldrive;
/* Drive from thread L with new tasks going to `scope` (NULL: keep the
 * current one, or the root when there is none). */
void laloop_drive_begin(lstate *S, lua_State *L, al_scope_t *scope,
                        ldrive *saved);
void laloop_drive_end(lstate *S, const ldrive *saved);
/* Claim signal signo for S's loop in the process-wide table of owners (a
 * signal can be watched by one libev loop only); returns 0, or -1 with an
 * error message pushed when another loop owns it. Release gives it up. */
int laloop_signal_claim(lua_State *L, lstate *S, int signo);
void laloop_signal_release(lstate *S, int signo);
void laloop_stop_sigint(lstate *S);
void laloop_open_run(lua_State *L, int mod, int up);

/* lsignal.c */
void laloop_open_signals(lua_State *L, int mod, int up);
void laloop_close_signals(lstate *S); /* the loop closes: stop watching */
int laloop_signal_handled(lstate *S, int signo); /* on_signal handlers? */

/* lsync.c */
void laloop_open_sync(lua_State *L, int mod, int up);

/* ldns.c: laloop_dns_close destroys the resolvers as the loop closes. */
void laloop_dns_close(lstate *S);
void laloop_open_dns(lua_State *L, int mod, int up);

/* lhttp.c: laloop_http_close closes every HTTP session as the loop closes. */
void laloop_http_close(lstate *S);
void laloop_open_http(lua_State *L, int mod, int up);
/* lproc.c: subprocesses and stdin; laloop_close_procs lets go of the
 * children nobody holds any more as the loop closes. */
void laloop_open_procs(lua_State *L, int mod, int up);
void laloop_close_procs(lstate *S);

/* generated from the files in bindings/lua/aloop by embed.lua */
typedef struct laloop_part {
  const char *name;      /* its module name: "aloop.tasks" */
  const char *chunkname; /* "=aloop/tasks.lua" */
  const char *src;
  unsigned long len;
} laloop_part;
extern const laloop_part laloop_lua_parts[];
/* lparts.c: load the Lua parts into the module at mod (up: its upvalue,
 * the loop), with their private helpers and environment. */
void laloop_open_parts(lua_State *L, int mod, int up);

#endif
