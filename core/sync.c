/* sync.c -- wait queues: tasks parked in FIFO order and woken with a grant
 * (a permit or a notification). Locks, semaphores, events, conditions and
 * queues are built on them. A grant handed to a task that is cancelled
 * before it runs is passed on, so a cancelled waiter never loses one. */
#include <limits.h>

#include "al.h"

void al_waitq_init(al_waitq_t *q, int mode, long permits) {
  al_wlist_init(&q->waiters);
  q->permits = permits;
  q->pending = 0;
  q->mode = (unsigned char)mode;
}

bool al_waitq_try(al_waitq_t *q) {
  if (q->permits > 0 && al_wlist_empty(&q->waiters)) {
    q->permits--;
    return true;
  }
  return false;
}

bool al_waitq_must_wait(const al_waitq_t *q, long avail) {
  return !al_wlist_empty(&q->waiters) || avail <= q->pending;
}

/* Parked tasks are linked through their waiter node; the callback is never
 * called, as the queue wakes its tasks itself. */
static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

/* The one cleanup of a park: leave the line. */
static void waitq_unwait(al_task_t *t) { al_waiter_remove(&t->waiter); }

void al_waitq_park(al_waitq_t *q, al_task_t *t) {
  t->waiter.cb = never_called;
  al_wlist_append(&q->waiters, &t->waiter);
  al_task_park(t, waitq_unwait);
}

size_t al_waitq_grant(al_waitq_t *q, size_t n) {
  size_t woken = 0;
  al_waiter_t *w;
  while (woken < n && (w = al_wlist_first(&q->waiters)) != NULL) {
    al_waiter_remove(w);
    q->pending++;
    al_task_wake(al_container_of(w, al_task_t, waiter), AL_WAKE_GRANTED);
    woken++;
  }
  if (q->mode == AL_GRANT_KEEP) {
    size_t left = n - woken;
    if (left > (size_t)(LONG_MAX - q->permits))
      q->permits = LONG_MAX; /* saturate: no permit count overflows */
    else
      q->permits += (long)left;
  }
  return woken;
}

bool al_waitq_resume(al_waitq_t *q, al_task_t *t, bool forfeit) {
  if (t->wake_status != AL_WAKE_GRANTED)
    return false;
  t->wake_status = 0;
  q->pending--;
  if (forfeit && q->mode != AL_GRANT_DROP)
    al_waitq_grant(q, 1);
  return true;
}

size_t al_waitq_count(const al_waitq_t *q) {
  size_t n = 0;
  const al_link_t *l;
  for (l = q->waiters.head.next; l != &q->waiters.head; l = l->next)
    n++;
  return n;
}

void al_waitq_destroy(al_waitq_t *q) {
  al_waiter_t *w;
  while ((w = al_wlist_first(&q->waiters)) != NULL) {
    al_waiter_remove(w);
    al_task_wake(al_container_of(w, al_task_t, waiter), 0);
  }
}
