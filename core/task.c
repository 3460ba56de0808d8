/* task.c -- task records: the state of a coroutine the owner resumes, what it
 * waits on (a future, its embedded timer, or an owner's hook), and asyncio's
 * cancellation rules (cancel passes on to what is awaited; must_cancel). */
#include "al.h"

static void task_waiter_cb(al_waiter_t *w, al_future_t *f) {
  al_task_t *t = al_container_of(w, al_task_t, waiter);
  (void)f;
  al_loop_post(t->fut.loop, &t->step);
}

void al_scope_init(al_scope_t *s, al_scope_t *parent) {
  s->head = s->tail = NULL;
  s->n = 0;
  s->parent = parent;
  s->stop_when_empty = false;
}

void al_scope_abandon(al_scope_t *s) {
  al_task_t *t;
  while ((t = s->head) != NULL) {
    s->head = t->snext;
    t->in_scope = false;
    t->snext = t->sprev = NULL;
  }
  s->tail = NULL;
  s->n = 0;
}

void al_task_init(al_task_t *t, al_loop_t *loop, al_scope_t *scope,
                  al_handle_cb step) {
  al_future_init(&t->fut, loop, AL_KIND_TASK);
  al_handle_init(&t->step, step);
  al_waiter_init(&t->waiter, task_waiter_cb);
  al_timer_init(&t->timer, &t->step);
  t->awaiting = NULL;
  t->unwait = NULL;
  t->ncancels = 0;
  t->wait = AL_WAIT_NONE;
  t->must_cancel = false;
  t->started = false;
  t->granted = false;
  t->cancel_woke = false;
  t->scope = scope;
  t->snext = NULL;
  t->sprev = scope ? scope->tail : NULL;
  t->in_scope = scope != NULL;
  if (scope) {
    if (scope->tail)
      scope->tail->snext = t;
    else
      scope->head = t;
    scope->tail = t;
    scope->n++;
  }
  loop->ntasks++;
  al_loop_post(loop, &t->step);
}

void al_task_await(al_task_t *t, al_future_t *f) {
  t->waiter.cb = task_waiter_cb; /* a wait queue may have set its own */
  t->awaiting = f;
  t->wait = AL_WAIT_FUTURE;
  /* A cancel requested while the task ran applies to what it awaits next,
   * as in asyncio's Task.__step. */
  if (t->must_cancel && al_future_cancel(f, t->fut.cancel_msg))
    t->must_cancel = false;
  if (f->state == AL_PENDING)
    al_future_add_waiter(f, &t->waiter);
  else
    al_loop_post(t->fut.loop, &t->step);
}

void al_task_sleep(al_task_t *t, double delay) {
  if (t->must_cancel && delay > 0) {
    /* asyncio would cancel the sleep's future: it cannot be taken back */
    t->must_cancel = false;
    t->cancel_woke = true;
    al_loop_post(t->fut.loop, &t->step);
    return;
  }
  if (delay <= 0) {
    al_loop_post(t->fut.loop, &t->step);
    return;
  }
  t->wait = AL_WAIT_TIMER;
  al_timer_add(t->fut.loop, &t->timer, al_time() + delay);
}

void al_task_park(al_task_t *t, void (*unwait)(al_task_t *)) {
  t->wait = AL_WAIT_HOOK;
  t->unwait = unwait;
  if (t->must_cancel) {
    t->cancel_woke = true;
    al_task_wake(t);
  }
}

void al_task_wake(al_task_t *t) {
  if (t->wait == AL_WAIT_HOOK) {
    t->unwait = NULL;
    }
  t->wait = AL_WAIT_NONE;
  al_loop_post(t->fut.loop, &t->step);
}

bool al_task_resuming(al_task_t *t) {
  bool cancel = t->must_cancel || t->cancel_woke;
  t->cancel_woke = false;
  al_waiter_remove(&t->waiter);
  if (t->timer.heap_index)
    al_timer_remove(t->fut.loop, &t->timer);
  t->awaiting = NULL;
  t->wait = AL_WAIT_NONE;
  t->unwait = NULL;
  t->must_cancel = false;
  return cancel;
}

bool al_task_cancel(al_task_t *t, const char *msg) {
  if (t->fut.state != AL_PENDING)
    return false;
  t->ncancels++;
  al_future_set_msg(&t->fut, msg);
  if (t->awaiting && t->wait == AL_WAIT_FUTURE &&
      al_future_cancel(t->awaiting, msg))
    return true; /* it wakes us when it completes, cancelled or not */
  t->must_cancel = true;
  switch (t->wait) {
  case AL_WAIT_TIMER:
    al_timer_remove(t->fut.loop, &t->timer);
    t->wait = AL_WAIT_NONE;
    t->cancel_woke = true;
    al_loop_post(t->fut.loop, &t->step);
    break;
  case AL_WAIT_HOOK:
    if (t->unwait)
      t->unwait(t);
    al_waiter_remove(&t->waiter); /* out of a wait queue's line at once */
    t->cancel_woke = true;
    al_task_wake(t);
    break;
  default:
    break; /* running, queued, or woken already: it sees must_cancel */
  }
  return true;
}

unsigned al_task_uncancel(al_task_t *t) {
  if (t->ncancels > 0 && --t->ncancels == 0)
    t->must_cancel = false;
  return t->ncancels;
}

static void leave_scope(al_task_t *t) {
  al_scope_t *s = t->scope;
  if (t->in_scope) {
    if (t->sprev)
      t->sprev->snext = t->snext;
    else
      s->head = t->snext;
    if (t->snext)
      t->snext->sprev = t->sprev;
    else
      s->tail = t->sprev;
    s->n--;
    if (s->n == 0 && s->stop_when_empty)
      al_loop_stop(t->fut.loop);
    t->in_scope = false; /* t->scope stays: where it was created */
    t->snext = t->sprev = NULL;
  }
}

void al_task_finish(al_task_t *t, int state) {
  al_task_resuming(t);
  leave_scope(t);
  if (--t->fut.loop->ntasks == 0 && t->fut.loop->stop_when_idle)
    al_loop_stop(t->fut.loop);
  if (t->step.queued)
    al_loop_unpost(t->fut.loop, &t->step);
  al_future_finish(&t->fut, state);
}

void al_task_destroy(al_task_t *t) {
  if (t->fut.state == AL_PENDING) {
    if (t->wait == AL_WAIT_HOOK && t->unwait)
      t->unwait(t);
    al_task_resuming(t);
    leave_scope(t);
    t->fut.loop->ntasks--;
    if (t->step.queued)
      al_loop_unpost(t->fut.loop, &t->step);
  }
  al_future_destroy(&t->fut);
}
