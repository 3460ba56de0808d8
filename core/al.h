/* al.h -- the aloop core: event loop, ready queue, futures, tasks, gather.
 * Plain C11 on libev; it knows tasks and futures, never Lua values. Every
 * record is embedded in storage its caller owns (a Lua userdata in aloop):
 * nothing here allocates, except a copied cancel message. */
#ifndef AL_H
#define AL_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#define al_container_of(p, type, field) \
  ((type *)(void *)((char *)(p) - offsetof(type, field)))

typedef struct al_loop al_loop_t;
typedef struct al_handle al_handle_t;
typedef struct al_waiter al_waiter_t;
typedef struct al_wlist al_wlist_t;
typedef struct al_waitq al_waitq_t;
typedef struct al_future al_future_t;
typedef struct al_task al_task_t;
typedef struct al_scope al_scope_t;
typedef struct al_gather al_gather_t;
typedef struct al_timer al_timer_t;

/* ---- handles: entries of the ready queue ------------------------------ */

/* A handle is run once each time it is posted, in posting order. */
typedef void (*al_handle_cb)(al_handle_t *h);

struct al_handle {
  al_handle_t *next;
  al_handle_cb cb;
  bool queued;
};

void al_handle_init(al_handle_t *h, al_handle_cb cb);

/* ---- loop ---------------------------------------------------------------- */

struct al_loop {
  struct ev_loop *ev;
  al_timer_t **timers;      /* min-heap of timers, by deadline */
  size_t ntimers, timers_cap;
  unsigned timer_seq;       /* ties between equal deadlines go FIFO */
  ev_timer heap_timer;      /* one libev timer, for the heap's root */
  al_handle_t *head, *tail; /* FIFO ready queue */
  size_t nready;
  size_t ntasks;            /* task records alive and not done */
  double last_poll;         /* al_time() of the last poll of libev */
  unsigned since_check;     /* handles run since the clock was last read */
  unsigned depth;           /* nested al_loop_step calls (re-entry guard) */
  bool stop;                /* end the current step without polling */
  bool stop_when_idle;      /* al_loop_stop once no task is left */
  void (*on_ready)(al_loop_t *loop); /* told when the queue stops being empty */
  void *data;               /* owner's pointer (the Lua binding's state) */
};

/* Result of al_loop_step. */
enum {
  AL_STEP_MORE = 0, /* progress was possible; call again */
  AL_STEP_STUCK = 1 /* nothing is ready and no watcher can make anything ready */
};

/* Attach to a libev loop the caller owns and keeps alive. */
void al_loop_init(al_loop_t *loop, struct ev_loop *ev);
/* Stop the loop's own watchers and free what it allocated. */
void al_loop_close(al_loop_t *loop);

/* Append a handle to the ready queue. Posting a queued handle is a no-op. */
void al_loop_post(al_loop_t *loop, al_handle_t *h);

/* Remove a queued handle (a cancelled call_soon). */
void al_loop_unpost(al_loop_t *loop, al_handle_t *h);

/* One turn of the scheduler: run the handles that were ready when the turn
 * began (those they post run next turn, as in asyncio), then poll libev:
 * without blocking when work is ready (at most every AL_POLL_INTERVAL, so a
 * busy loop still sees timers and I/O), blocking when nothing is. */
int al_loop_step(al_loop_t *loop);

/* Make the step under way return once its turn is run, without polling
 * (asyncio's loop.stop(): whoever drives the loop looks at its goal). */
void al_loop_stop(al_loop_t *loop);

/* One turn of ready handles, without polling (for hosts that poll). */
void al_loop_run_turn(al_loop_t *loop);

/* Monotonic seconds; the clock of aloop.time() and of every timer. */
double al_time(void);

/* Arm a one-shot libev timer so that it fires no earlier than `delay`
 * seconds of al_time() from now, even if the loop's cached time is stale. */
void al_timer_start(al_loop_t *loop, ev_timer *w, double delay);

#define AL_POLL_INTERVAL 1e-4
#define AL_CHECK_EVERY 32

/* ---- futures ------------------------------------------------------------- */

enum al_state { AL_PENDING = 0, AL_DONE, AL_FAILED, AL_CANCELLED };
enum al_kind { AL_KIND_FUTURE = 0, AL_KIND_TASK, AL_KIND_GATHER };
enum al_flag {
  AL_F_RETRIEVED = 1, /* the outcome (error) was looked at */
  AL_F_REPORTED = 2,  /* an unretrieved error was already reported */
  AL_F_KEEP_MSG = 4   /* a plain future that may own a cancel message */
};

/* A waiter is told, synchronously and in registration order, when the future
 * it is linked to completes. Its callback must not run Lua: it queues. */
typedef void (*al_waiter_cb)(al_waiter_t *w, al_future_t *f);

struct al_waiter {
  al_waiter_t *next, *prev;
  al_wlist_t *owner; /* the list it is linked in, or NULL */
  al_waiter_cb cb;   /* finds its record with al_container_of */
};

/* A FIFO list of waiters: a future's, or a wait queue's. */
struct al_wlist {
  al_waiter_t *head, *tail;
};

struct al_future {
  al_wlist_t waiters; /* first: a waiter's owner is its future */
  al_loop_t *loop;
  char *cancel_msg; /* owned copy, or NULL */
  unsigned char kind, state, flags;
};

void al_future_init(al_future_t *f, al_loop_t *loop, int kind);
/* Detach all waiters without telling them and free the message; for __gc. */
void al_future_destroy(al_future_t *f);
void al_waiter_init(al_waiter_t *w, al_waiter_cb cb);
void al_future_add_waiter(al_future_t *f, al_waiter_t *w);
void al_wlist_append(al_wlist_t *l, al_waiter_t *w);
void al_waiter_remove(al_waiter_t *w); /* no-op when not linked */
/* Complete a pending future and tell its waiters. */
void al_future_finish(al_future_t *f, int state);
/* Request cancellation (asyncio's Future.cancel / Task.cancel /
 * gather.cancel by kind); msg may be NULL. Returns false when it cannot be
 * cancelled (already done). */
bool al_future_cancel(al_future_t *f, const char *msg);
void al_future_set_msg(al_future_t *f, const char *msg);

/* ---- timers (timer.c) ---------------------------------------------------- */

/* A timer posts its handle once al_time() >= when. Every timer of a loop
 * sits in one binary heap behind a single libev timer, so a sleep costs a
 * task 24 bytes instead of an ev_timer, and the loop always knows its next
 * deadline (al_loop_next_timer), which a host driving it needs. */
struct al_timer {
  double when;
  unsigned heap_index; /* 1 + its place in the heap, or 0 when not in it */
  unsigned seq;
  al_handle_t *post;
};

void al_timer_init(al_timer_t *tm, al_handle_t *post);
void al_timer_add(al_loop_t *loop, al_timer_t *tm, double when);
void al_timer_remove(al_loop_t *loop, al_timer_t *tm); /* no-op if not in */
/* Deadline of the earliest timer, or a negative number when there is none. */
double al_loop_next_timer(const al_loop_t *loop);
/* Post the handles of the timers due by al_time() (for hosts that poll). */
void al_timers_fire(al_loop_t *loop);
/* libev callback of loop->heap_timer: post the handles of due timers. */
void al__timers_due(struct ev_loop *ev, ev_timer *w, int revents);

/* ---- scopes: the tasks created under one run() --------------------------- */

struct al_scope {
  al_task_t *head, *tail; /* pending tasks, in creation order */
  size_t n;
  al_scope_t *parent;
  bool stop_when_empty;   /* al_loop_stop when its last task finishes */
};

void al_scope_init(al_scope_t *s, al_scope_t *parent);
/* Unlink every task still in the scope (which is going away) without
 * touching the tasks otherwise: they simply belong to no list any more. */
void al_scope_abandon(al_scope_t *s);

/* ---- tasks --------------------------------------------------------------- */

enum al_wait {
  AL_WAIT_NONE = 0, /* running or queued */
  AL_WAIT_FUTURE,   /* linked to a future through t->waiter */
  AL_WAIT_TIMER,    /* sleeping on t->timer */
  AL_WAIT_HOOK      /* parked elsewhere; t->unwait undoes it on cancel */
};

struct al_task {
  al_future_t fut; /* a task is a future: must stay first */
  al_handle_t step;
  al_waiter_t waiter;
  al_timer_t timer;             /* its sleep */
  al_future_t *awaiting;        /* what it awaits; cleared when it resumes */
  void (*unwait)(al_task_t *t); /* undo an AL_WAIT_HOOK park */
  al_scope_t *scope;
  al_task_t *snext, *sprev;
  unsigned ncancels;  /* cancel requests not yet uncancelled */
  unsigned char wait; /* enum al_wait */
  bool must_cancel;   /* raise the cancellation when it next resumes */
  bool started;
  bool granted;       /* woken from a wait queue with a grant (sync.c) */
  bool in_scope;      /* still in t->scope's list (t->scope stays set) */
  bool cancel_woke;   /* a cancel ended its sleep or park: irrevocable, as
                       * asyncio's cancelled future (uncancel cannot undo) */
};

/* Initialise a pending task in a scope and post its first step; `step` is
 * the owner's function that resumes it. */
void al_task_init(al_task_t *t, al_loop_t *loop, al_scope_t *scope,
                  al_handle_cb step);
/* Park the task on a future, a timer or a hook until it is woken. */
void al_task_await(al_task_t *t, al_future_t *f);
void al_task_sleep(al_task_t *t, double delay);
void al_task_park(al_task_t *t, void (*unwait)(al_task_t *));
/* Wake a parked task (a hook's owner calls this when the wait is over). */
void al_task_wake(al_task_t *t);
/* Called by the owner as the task resumes: clears the wait state and
 * returns true when the cancellation must be raised at the await point. */
bool al_task_resuming(al_task_t *t);
bool al_task_cancel(al_task_t *t, const char *msg);
unsigned al_task_uncancel(al_task_t *t);
/* The task's body ended (or never ran): leave the scope, complete. */
void al_task_finish(al_task_t *t, int state);
/* Forget a task record whatever its state (its storage is being freed):
 * stop its timer, unlink it everywhere, without telling its waiters. */
void al_task_destroy(al_task_t *t);

/* ---- gather -------------------------------------------------------------- */

struct al_gather {
  al_future_t fut;
  size_t n, pending;
  al_future_t *failed; /* the child whose error the gather raises, if any */
  bool return_exceptions;
  bool cancel_requested;
  struct al_gather_child {
    al_waiter_t w; /* linked to the child while it is pending */
    al_gather_t *g;
  } children[];
};

size_t al_gather_size(size_t n);
/* Initialise over n children, then add each (any may already be done; an
 * empty gather completes at once). The first failed child, in order of
 * completion, makes the gather fail unless return_exceptions is set. */
void al_gather_init(al_gather_t *g, al_loop_t *loop, size_t n,
                    bool return_exceptions);
void al_gather_add(al_gather_t *g, size_t i, al_future_t *child);
/* Unlink from children still pending; for __gc. */
void al_gather_destroy(al_gather_t *g);

/* ---- wait queues (sync.c): what every synchronisation primitive is ------ */

/* What becomes of a grant (a permit, a notification) handed to a task that
 * is cancelled before it could use it. */
enum al_grant_mode {
  AL_GRANT_KEEP = 0, /* a permit: to the next waiter, else counted back */
  AL_GRANT_PASS,     /* a wake-up: to the next waiter, else dropped */
  AL_GRANT_DROP      /* a broadcast: nothing to pass on */
};

struct al_waitq {
  al_wlist_t waiters; /* parked tasks, FIFO, through their t->waiter */
  long permits;       /* AL_GRANT_KEEP: permits nobody holds */
  long pending;       /* grants handed out that their tasks have not yet
                       * taken up (they are woken but not yet running) */
  unsigned char mode;
};

void al_waitq_init(al_waitq_t *q, int mode, long permits);
/* Take a permit at once: only when one is free and nobody is waiting
 * (FIFO: no barging past the waiters). */
bool al_waitq_try(al_waitq_t *q);
/* Park a task at the back of the queue until it is granted or cancelled. */
void al_waitq_park(al_waitq_t *q, al_task_t *t);
/* Grant up to n waiters in order (each is woken with t->granted); in KEEP
 * mode what is left becomes permits. Returns how many were woken. */
size_t al_waitq_grant(al_waitq_t *q, size_t n);
/* A woken task takes up its grant (call as it resumes with t->granted). */
void al_waitq_taken(al_waitq_t *q, al_task_t *t);
/* A granted task was cancelled before it could use its grant. */
void al_waitq_forfeit(al_waitq_t *q, al_task_t *t);
size_t al_waitq_count(const al_waitq_t *q);
/* Wake every waiter without a grant (the queue's owner is going away). */
void al_waitq_destroy(al_waitq_t *q);

#endif
