/* al_int.h -- what the core's files share and nobody else may use: the
 * libev callback behind the timer heap, the scheduler's tuning and the one
 * answer to running out of memory. */
#ifndef AL_INT_H
#define AL_INT_H

#include "al.h"

/* A busy loop polls libev without blocking at most this often (seconds),
 * reading the clock only every AL_CHECK_EVERY handles. */
#define AL_POLL_INTERVAL 1e-4
#define AL_CHECK_EVERY 32

/* realloc (malloc for p == NULL) that never returns NULL: running out of
 * memory in the core is fatal (al.h), with one line on stderr. */
void *al__xrealloc(void *p, size_t n);
#define al__xmalloc(n) al__xrealloc(NULL, (n))

/* libev callback of loop->heap_timer: post the handles of due timers. */
void al__timers_due(struct ev_loop *ev, ev_timer *w, int revents);

/* One step of a cancel walk (future.c) on a pending task: count the
 * request, and return the future it awaits, to which the cancel passes on,
 * or NULL when the task itself is to raise it. */
al_future_t *al__task_cancel_one(al_task_t *t, const char *msg, size_t len);
/* The walk came back to a task it passed: wake it to raise the cancel. */
void al__task_cancel_cycle(al_task_t *t);

#endif
