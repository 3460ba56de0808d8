/* sync.c -- wait queues: tasks parked in FIFO order and woken with a grant
 * (a permit or a notification). Locks, semaphores, events, conditions and
 * queues are built on them. A grant handed to a task that is cancelled
 * before it runs is passed on, so a cancelled waiter never loses one. */
#include "al.h"

void al_waitq_init(al_waitq_t *q, int mode, long permits) {
  q->waiters.head = q->waiters.tail = NULL;
  q->permits = permits;
  q->pending = 0;
  q->mode = (unsigned char)mode;
}

bool al_waitq_try(al_waitq_t *q) {
  if (q->permits > 0 && q->waiters.head == NULL) {
    q->permits--;
    return true;
  }
  return false;
}

/* Parked tasks are linked through their waiter node; the callback is never
 * called, as the queue wakes its tasks itself. */
static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

void al_waitq_park(al_waitq_t *q, al_task_t *t) {
  t->granted = false;
  t->waiter.cb = never_called;
  al_wlist_append(&q->waiters, &t->waiter);
  /* On cancel the hook just wakes it; resuming unlinks the waiter. */
  al_task_park(t, NULL);
}

size_t al_waitq_grant(al_waitq_t *q, size_t n) {
  size_t woken = 0;
  while (woken < n && q->waiters.head) {
    al_waiter_t *w = q->waiters.head;
    al_task_t *t = al_container_of(w, al_task_t, waiter);
    al_waiter_remove(w);
    t->granted = true;
    q->pending++;
    al_task_wake(t);
    woken++;
  }
  if (q->mode == AL_GRANT_KEEP)
    q->permits += (long)(n - woken);
  return woken;
}

void al_waitq_taken(al_waitq_t *q, al_task_t *t) {
  if (t->granted) {
    t->granted = false;
    q->pending--;
  }
}

void al_waitq_forfeit(al_waitq_t *q, al_task_t *t) {
  if (!t->granted)
    return;
  al_waitq_taken(q, t);
  if (q->mode != AL_GRANT_DROP)
    al_waitq_grant(q, 1);
}

size_t al_waitq_count(const al_waitq_t *q) {
  size_t n = 0;
  const al_waiter_t *w;
  for (w = q->waiters.head; w; w = w->next)
    n++;
  return n;
}

void al_waitq_destroy(al_waitq_t *q) {
  while (q->waiters.head) {
    al_task_t *t = al_container_of(q->waiters.head, al_task_t, waiter);
    al_waiter_remove(q->waiters.head);
    al_task_wake(t);
  }
}
