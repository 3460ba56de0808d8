/* al.h -- the aloop core: event loop, ready queue, timers, futures, tasks,
 * gather, wait queues and OS error codes. Plain C11 on libev; it knows tasks
 * and futures, never Lua values. Every record is embedded in storage its
 * caller owns (a Lua userdata in aloop); the core allocates only the timer
 * heap and copied cancel messages, and out of memory there is fatal.
 *
 * Fields are tagged as libuv tags them: public (the owner may read and
 * write), read-only (the owner may read; only the core writes), private
 * (neither: use the functions). */
#ifndef AL_H
#define AL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#define al_container_of(p, type, field) \
  ((type *)(void *)((char *)(p) - offsetof(type, field)))

typedef struct al_link al_link_t;
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

/* ---- errors ------------------------------------------------------------- */

/* Core calls that can fail return 0 or a negative error code; the codes of
 * the OS are its errno values negated (AL_ECONNREFUSED == -ECONNREFUSED), so
 * `return -errno` is the usual way to fail. AL_EOF is the core's own. */
#define AL_ERRNO_MAP(XX)                                                      \
  XX(E2BIG, "argument list too long")                                         \
  XX(EACCES, "permission denied")                                             \
  XX(EADDRINUSE, "address already in use")                                    \
  XX(EADDRNOTAVAIL, "address not available")                                  \
  XX(EAFNOSUPPORT, "address family not supported")                            \
  XX(EAGAIN, "resource temporarily unavailable")                              \
  XX(EALREADY, "connection already in progress")                              \
  XX(EBADF, "bad file descriptor")                                            \
  XX(EBUSY, "resource busy or locked")                                        \
  XX(ECANCELED, "operation canceled")                                         \
  XX(ECHILD, "no child processes")                                            \
  XX(ECONNABORTED, "software caused connection abort")                        \
  XX(ECONNREFUSED, "connection refused")                                      \
  XX(ECONNRESET, "connection reset by peer")                                  \
  XX(EDESTADDRREQ, "destination address required")                            \
  XX(EEXIST, "file already exists")                                           \
  XX(EFAULT, "bad address in system call argument")                           \
  XX(EFBIG, "file too large")                                                 \
  XX(EHOSTDOWN, "host is down")                                               \
  XX(EHOSTUNREACH, "host is unreachable")                                     \
  XX(EINTR, "interrupted system call")                                        \
  XX(EINVAL, "invalid argument")                                              \
  XX(EIO, "i/o error")                                                        \
  XX(EISCONN, "socket is already connected")                                  \
  XX(EISDIR, "illegal operation on a directory")                              \
  XX(ELOOP, "too many symbolic links encountered")                            \
  XX(EMFILE, "too many open files")                                           \
  XX(EMLINK, "too many links")                                                \
  XX(EMSGSIZE, "message too long")                                            \
  XX(ENAMETOOLONG, "name too long")                                           \
  XX(ENETDOWN, "network is down")                                             \
  XX(ENETUNREACH, "network is unreachable")                                   \
  XX(ENFILE, "file table overflow")                                           \
  XX(ENOBUFS, "no buffer space available")                                    \
  XX(ENODEV, "no such device")                                                \
  XX(ENOENT, "no such file or directory")                                     \
  XX(ENOEXEC, "exec format error")                                            \
  XX(ENOMEM, "not enough memory")                                             \
  XX(ENOSPC, "no space left on device")                                       \
  XX(ENOSYS, "function not implemented")                                      \
  XX(ENOTCONN, "socket is not connected")                                     \
  XX(ENOTDIR, "not a directory")                                              \
  XX(ENOTEMPTY, "directory not empty")                                        \
  XX(ENOTSOCK, "socket operation on non-socket")                              \
  XX(ENOTSUP, "operation not supported")                                      \
  XX(ENOTTY, "inappropriate ioctl for device")                                \
  XX(ENXIO, "no such device or address")                                      \
  XX(EOVERFLOW, "value too large for defined data type")                      \
  XX(EPERM, "operation not permitted")                                        \
  XX(EPIPE, "broken pipe")                                                    \
  XX(EPROTO, "protocol error")                                                \
  XX(EPROTONOSUPPORT, "protocol not supported")                               \
  XX(EPROTOTYPE, "protocol wrong type for socket")                            \
  XX(ERANGE, "result too large")                                              \
  XX(EROFS, "read-only file system")                                          \
  XX(ESHUTDOWN, "cannot send after transport endpoint shutdown")              \
  XX(ESPIPE, "invalid seek")                                                  \
  XX(ESRCH, "no such process")                                                \
  XX(ETIMEDOUT, "connection timed out")                                       \
  XX(ETXTBSY, "text file is busy")                                            \
  XX(EXDEV, "cross-device link not permitted")

enum {
#define AL__ERRNO_ENUM(name, msg) AL_##name = -name,
  AL_ERRNO_MAP(AL__ERRNO_ENUM)
#undef AL__ERRNO_ENUM
  AL_EOF = -4095 /* end of stream */
};

/* "ECONNREFUSED" for AL_ECONNREFUSED; "EUNKNOWN" for a code not in the map
 * (and never NULL). */
const char *al_err_name(int err);
/* "connection refused" for AL_ECONNREFUSED; "unknown error" for a code not
 * in the map. Static strings: nothing to free, safe from any thread. */
const char *al_strerror(int err);

/* ---- intrusive lists ---------------------------------------------------- */

/* A circular doubly-linked list through links embedded in their records (as
 * libuv's queue.h): the head is a link too, so insertion and removal never
 * branch. A link that is in no list has next == NULL. */
struct al_link {
  al_link_t *next, *prev;
};

static inline void al_list_init(al_link_t *head) {
  head->next = head->prev = head;
}

static inline bool al_list_empty(const al_link_t *head) {
  return head->next == head;
}

static inline bool al_link_linked(const al_link_t *l) { return l->next != NULL; }

/* The first link, or NULL when the list is empty. */
static inline al_link_t *al_list_first(const al_link_t *head) {
  return head->next == head ? NULL : head->next;
}

static inline void al_list_append(al_link_t *head, al_link_t *l) {
  l->next = head;
  l->prev = head->prev;
  head->prev->next = l;
  head->prev = l;
}

/* Unlink a link that is in a list. */
static inline void al_list_unlink(al_link_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->next = l->prev = NULL;
}

/* Unlink from whatever list holds it; a no-op when it is in none. */
static inline void al_list_remove(al_link_t *l) {
  if (l->next)
    al_list_unlink(l);
}

/* ---- handles: entries of the ready queue ------------------------------ */

/* A handle is a one-shot entry of the ready queue: it runs once each time
 * it is posted, in posting order. */
typedef void (*al_handle_cb)(al_handle_t *h);

struct al_handle {
  al_link_t link; /* private: in the ready queue while queued */
  al_handle_cb cb; /* public */
};

void al_handle_init(al_handle_t *h, al_handle_cb cb);
static inline bool al_handle_queued(const al_handle_t *h) {
  return al_link_linked(&h->link);
}

/* ---- loop ---------------------------------------------------------------- */

struct al_loop {
  struct ev_loop *ev; /* read-only: the caller's, from al_loop_init */
  void *data;         /* public: the owner's pointer (the Lua binding's state) */
  /* Told when the ready queue stops being empty (a host's poll must not
   * block then). public */
  void (*on_ready)(al_loop_t *loop);
  size_t nready; /* read-only: handles in the ready queue */
  size_t ntasks; /* read-only: task records alive and not done */
  size_t nio;    /* read-only: I/O watchers running (io.c, al_io.h) */
  /* private */
  al_link_t ready;          /* FIFO ready queue of handles */
  al_timer_t **timers;      /* min-heap of timers, by deadline */
  size_t ntimers, timers_cap;
  unsigned timer_seq;       /* ties between equal deadlines go FIFO */
  ev_timer heap_timer;      /* one libev timer, for the heap's root */
  double last_poll;         /* al_time() of the last poll of libev */
  unsigned since_check;     /* handles run since the clock was last read */
  unsigned cancel_walks;    /* cancel walks made, to mark what each saw */
  unsigned depth;           /* handles of this loop running now (nesting) */
  bool stop;                /* end the current step without polling */
  bool stop_when_idle;      /* al_loop_stop once no task is left */
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
/* Remove a queued handle (a cancelled call_soon), in O(1); a no-op when it
 * is not queued. */
void al_loop_unpost(al_loop_t *loop, al_handle_t *h);

/* One turn of the scheduler: run the handles that were ready when the turn
 * began (those they post run next turn, as in asyncio), then poll libev:
 * without blocking when work is ready (now and then, so a busy loop still
 * sees timers and I/O), blocking when nothing is. */
int al_loop_step(al_loop_t *loop);
/* One turn of ready handles, without polling (for hosts that poll). */
void al_loop_run_turn(al_loop_t *loop);

/* Make the step under way return once its turn is run, without polling
 * (asyncio's loop.stop(): whoever drives the loop looks at its goal). */
void al_loop_stop(al_loop_t *loop);
/* Forget a stop request nobody acted on (the driver is going away). */
void al_loop_clear_stop(al_loop_t *loop);
/* Let the driving step return as soon as no task is left (shutdown). */
void al_loop_stop_when_idle(al_loop_t *loop, bool on);
/* An error unwound through al_loop_step (a longjmp of the owner's): forget
 * the steps it left unfinished, so the loop can be driven again. */
void al_loop_recover(al_loop_t *loop);
/* Whether a handle of this loop is running now (a step is under way). */
bool al_loop_running(const al_loop_t *loop);

/* Monotonic seconds; the clock of aloop.time() and of every timer. */
double al_time(void);

/* Arm a one-shot libev timer so that it fires no earlier than `delay`
 * seconds of al_time() from now, even if the loop's cached time is stale. */
void al_timer_start(al_loop_t *loop, ev_timer *w, double delay);

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
  al_link_t link;    /* private */
  al_wlist_t *owner; /* read-only: the list it is linked in, or NULL */
  al_waiter_cb cb;   /* public: finds its record with al_container_of */
};

/* A FIFO list of waiters: a future's, a wait queue's, an I/O watcher's. */
struct al_wlist {
  al_link_t head; /* private */
};

/* A cancel message: an owned copy of `len` bytes, NUL-terminated (it may
 * hold NULs too). One allocation, so a future carries one pointer. */
typedef struct al_msg {
  size_t len;
  char bytes[];
} al_msg_t;

struct al_future {
  al_wlist_t waiters; /* private; first: a waiter's owner is its future */
  al_loop_t *loop;    /* read-only */
  al_msg_t *cancel;   /* read-only: its cancel message, or NULL */
  unsigned char kind, state; /* read-only: enum al_kind, enum al_state */
  unsigned char flags;       /* public: enum al_flag */
  unsigned cancel_walk;      /* private: the last cancel walk that saw it */
};

/* A pending future of `kind` (AL_KIND_FUTURE for the owner's own). */
void al_future_init(al_future_t *f, al_loop_t *loop, int kind);
/* Detach all waiters without telling them and free the message; for __gc. */
void al_future_destroy(al_future_t *f);
/* Complete a pending future and tell its waiters, in order. */
void al_future_finish(al_future_t *f, int state);
/* Request cancellation (asyncio's Future.cancel / Task.cancel /
 * gather.cancel by kind); msg may be NULL. Returns false when it cannot be
 * cancelled (already done). A cancel passes on to what a task awaits and to
 * a gather's children; the walk is iterative, so a chain of a million
 * awaiting tasks costs no C stack, and a cycle (tasks awaiting each other,
 * a task gathering itself) is broken where the walk comes back: that task
 * is woken to raise the cancellation at its await. */
bool al_future_cancel(al_future_t *f, const char *msg);
/* The same with a message of `len` bytes, which may hold NULs. */
bool al_future_cancel_n(al_future_t *f, const char *msg, size_t len);
/* Replace the future's cancel message with a copy of msg (NULL: none). */
void al_future_set_msg(al_future_t *f, const char *msg, size_t len);
/* Its cancel message and length; NULL and 0 when it has none. */
static inline const char *al_future_msg(const al_future_t *f, size_t *len) {
  *len = f->cancel ? f->cancel->len : 0;
  return f->cancel ? f->cancel->bytes : NULL;
}
void al_future_add_waiter(al_future_t *f, al_waiter_t *w);

void al_waiter_init(al_waiter_t *w, al_waiter_cb cb);
void al_wlist_init(al_wlist_t *l);

static inline void al_wlist_append(al_wlist_t *l, al_waiter_t *w) {
  w->owner = l;
  al_list_append(&l->head, &w->link);
}

/* Unlink a waiter from its list; a no-op when it is in none. */
static inline void al_waiter_remove(al_waiter_t *w) {
  al_list_remove(&w->link);
  w->owner = NULL;
}

/* The first waiter, or NULL when the list is empty. */
static inline al_waiter_t *al_wlist_first(const al_wlist_t *l) {
  al_link_t *first = al_list_first(&l->head);
  return first ? al_container_of(first, al_waiter_t, link) : NULL;
}

static inline bool al_wlist_empty(const al_wlist_t *l) {
  return al_list_empty(&l->head);
}

/* ---- timers (timer.c) ---------------------------------------------------- */

/* A timer posts its handle once al_time() >= when. Every timer of a loop
 * sits in one binary heap behind a single libev timer, so a sleep costs a
 * task 24 bytes instead of an ev_timer, and the loop always knows its next
 * deadline (al_loop_next_timer), which a host driving it needs. */
struct al_timer {
  double when;         /* read-only */
  unsigned heap_index; /* read-only: 1 + its place in the heap, 0 when out */
  unsigned seq;        /* private */
  al_handle_t *post;   /* public */
};

void al_timer_init(al_timer_t *tm, al_handle_t *post);
void al_timer_add(al_loop_t *loop, al_timer_t *tm, double when);
void al_timer_remove(al_loop_t *loop, al_timer_t *tm); /* no-op if not in */
/* Deadline of the earliest timer, or a negative number when there is none. */
double al_loop_next_timer(const al_loop_t *loop);
/* Post the handles of the timers due by al_time() (for hosts that poll). */
void al_loop_fire_timers(al_loop_t *loop);

/* ---- scopes: the tasks created under one run() --------------------------- */

struct al_scope {
  al_link_t tasks;      /* private: pending tasks, in creation order */
  size_t n;             /* read-only: how many */
  al_scope_t *parent;   /* read-only */
  bool stop_when_empty; /* public: al_loop_stop when its last task finishes */
};

void al_scope_init(al_scope_t *s, al_scope_t *parent);
/* The oldest pending task of the scope, or NULL. */
al_task_t *al_scope_first(const al_scope_t *s);
/* Cancel, in creation order, each task of the scope that no cancel request
 * is pending for (the scope's run is over; their cleanup is to run). */
void al_scope_cancel_all(al_scope_t *s);
/* Unlink every task still in the scope (which is going away) without
 * touching the tasks otherwise: they simply belong to no list any more. */
void al_scope_abandon(al_scope_t *s);

/* ---- tasks --------------------------------------------------------------- */

/* How a parked task waits. The invariant, as asyncio's Task states its own:
 *
 * A pending task is in exactly one of three conditions. It is running (its
 * owner is resuming it: wait == AL_WAIT_NONE, step not queued). Or it is
 * ready: its step is queued, and wait is AL_WAIT_NONE or still names the
 * future or timer that woke it (cleared as it resumes); whatever woke it
 * left its reason in wake_status (or cancel_woke), which the owner reads as
 * the task resumes. Or it is parked: wait != AL_WAIT_NONE, its step is not
 * queued, and exactly one thing will wake it -- the future its waiter is
 * linked to (AL_WAIT_FUTURE, `awaiting` set), its timer in the heap
 * (AL_WAIT_TIMER), or the owner of a hook (AL_WAIT_HOOK), who calls
 * al_task_wake and whose `unwait` undoes the park. A cancel of a parked
 * task passes on to what it awaits (a future), or undoes the park at once
 * (a timer or a hook: unwait runs, cancel_woke is set, the step queued);
 * of a running or ready task, it sets must_cancel, which the next park
 * turns into an immediate wake-up. The waiter and the timer share their
 * bytes, as a task waits on one thing at a time: the timer is in use only
 * while wait == AL_WAIT_TIMER, and the waiter is whole (unlinked, or linked
 * where the task waits) whenever it is not. */
enum al_wait {
  AL_WAIT_NONE = 0, /* running or ready */
  AL_WAIT_FUTURE,   /* linked to a future through t->waiter */
  AL_WAIT_TIMER,    /* sleeping on t->timer */
  AL_WAIT_HOOK      /* parked elsewhere; t->unwait undoes it */
};

/* The undo of a hook park: unlink the task from what it waits on (a wait
 * queue's line, an I/O watcher), and stop what is no longer needed. Called
 * once, when the task is cancelled or destroyed while parked, never after
 * the hook's owner woke it. */
typedef void (*al_unwait_cb)(al_task_t *t);

struct al_task {
  al_future_t fut;    /* a task is a future: must stay first */
  al_handle_t step;   /* read-only: queued when the task is ready */
  union {             /* one wait at a time: wait says which is in use */
    al_waiter_t waiter; /* public while parked on a hook: its owner's link */
    al_timer_t timer;   /* private: its sleep (AL_WAIT_TIMER) */
  };
  al_future_t *awaiting; /* read-only: what it awaits; cleared as it resumes */
  al_unwait_cb unwait;   /* private */
  al_scope_t *scope;     /* read-only: where it was created */
  al_link_t slink;       /* private: in scope's list while pending */
  unsigned ncancels;     /* read-only: cancel requests not yet uncancelled */
  int wake_status;       /* read-only: what its last waker said (park: 0) */
  unsigned char wait;    /* read-only: enum al_wait */
  bool must_cancel;      /* read-only: raise the cancellation at next park */
  bool started;          /* read-only: its first step was taken */
  bool cancel_woke;      /* read-only: a cancel ended its sleep or park: it
                          * is irrevocable, as asyncio's cancelled future
                          * (uncancel cannot undo it) */
};

/* Initialise a pending task in a scope and post its first step; `step` is
 * the owner's function that resumes it. */
void al_task_init(al_task_t *t, al_loop_t *loop, al_scope_t *scope,
                  al_handle_cb step);
/* Park the running task on a future, a timer or a hook until it is woken.
 * A cancel requested while it ran (must_cancel) applies at once: to the
 * future (which is cancelled), else by waking the task as cancelled. */
void al_task_await(al_task_t *t, al_future_t *f);
void al_task_sleep(al_task_t *t, double delay);
/* Park on a hook: the caller has linked the task where its waker will find
 * it (t->waiter may serve); `unwait` undoes that on cancel or destroy. */
void al_task_park(al_task_t *t, al_unwait_cb unwait);
/* Wake a task parked on a hook, telling it `status` (owner-defined; a cancel
 * wakes with AL_ECANCELED). The caller has unlinked it already. */
void al_task_wake(al_task_t *t, int status);
/* A task that gave the loop a turn without waiting (a bare
 * coroutine.yield()): queue it again. A cancel that its resume consumed
 * (`cancel`) stays requested, to be raised at its next wait. */
void al_task_requeue(al_task_t *t, bool cancel);
/* Called by the owner before the task's first step: false when it was
 * cancelled before it could start (its body must never run). */
bool al_task_start(al_task_t *t);
/* Called by the owner as the task resumes: clears the wait state and
 * returns true when the cancellation must be raised at the await point. */
bool al_task_resuming(al_task_t *t);
/* Returns false when the task is done already (asyncio's Task.cancel). */
bool al_task_cancel(al_task_t *t, const char *msg);
bool al_task_cancel_n(al_task_t *t, const char *msg, size_t len);
/* Returns the cancel requests still counted (asyncio's Task.uncancel). */
unsigned al_task_uncancel(al_task_t *t);
/* The task's body ended (or never ran): leave the scope, complete. */
void al_task_finish(al_task_t *t, int state);
/* Forget a task record whatever its state (its storage is being freed):
 * undo its wait, unlink it everywhere, without telling its waiters. */
void al_task_destroy(al_task_t *t);

/* ---- gather -------------------------------------------------------------- */

struct al_gather {
  al_future_t fut;
  size_t n, pending;     /* read-only */
  al_future_t *failed;   /* read-only: the child whose error it raises */
  bool return_exceptions; /* read-only */
  bool cancel_requested;  /* private */
  struct al_gather_child {
    al_waiter_t w; /* linked to the child while it is pending */
    al_gather_t *g;
  } children[]; /* private */
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

/* The wake status of a task woken with a grant. */
#define AL_WAKE_GRANTED 1

struct al_waitq {
  al_wlist_t waiters; /* private: parked tasks, FIFO, through t->waiter */
  long permits;       /* read-only: AL_GRANT_KEEP: permits nobody holds */
  long pending;       /* read-only: grants handed out that their tasks have
                       * not yet taken up (woken, not yet running) */
  unsigned char mode; /* read-only */
};

void al_waitq_init(al_waitq_t *q, int mode, long permits);
/* Take a permit at once: only when one is free and nobody is waiting
 * (FIFO: no barging past the waiters). */
bool al_waitq_try(al_waitq_t *q);
/* Whether a newcomer must queue when `avail` slots or items are free:
 * when tasks wait, or the woken ones have claimed them all. */
bool al_waitq_must_wait(const al_waitq_t *q, long avail);
/* Park a task at the back of the queue until it is granted or cancelled. */
void al_waitq_park(al_waitq_t *q, al_task_t *t);
/* Grant up to n waiters in order (each woken with AL_WAKE_GRANTED); in KEEP
 * mode what is left becomes permits (saturating). Returns how many woke. */
size_t al_waitq_grant(al_waitq_t *q, size_t n);
/* The task resumes from a park on q: takes up its grant, or, when it is
 * cancelled (`forfeit`), passes the grant it was handed on. Returns whether
 * it had been granted. */
bool al_waitq_resume(al_waitq_t *q, al_task_t *t, bool forfeit);
size_t al_waitq_count(const al_waitq_t *q);
/* Wake every waiter without a grant (the queue's owner is going away). */
void al_waitq_destroy(al_waitq_t *q);

#endif
