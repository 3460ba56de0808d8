/* task.c -- task records: the state of a coroutine the owner resumes, what it
 * waits on (a future, its embedded timer, or an owner's hook), and asyncio's
 * cancellation rules (cancel passes on to what is awaited; must_cancel).
 * The invariant tying the fields together is stated in al.h. */
#include "al_int.h"

static void task_waiter_cb(al_waiter_t *w, al_future_t *f) {
  al_task_t *t = al_container_of(w, al_task_t, waiter);
  (void)f;
  al_loop_post(t->fut.loop, &t->step);
}

void al_scope_init(al_scope_t *s, al_scope_t *parent) {
  al_list_init(&s->tasks);
  s->n = 0;
  s->parent = parent;
  s->stop_when_empty = false;
}

al_task_t *al_scope_first(const al_scope_t *s) {
  al_link_t *l = al_list_first(&s->tasks);
  return l ? al_container_of(l, al_task_t, slink) : NULL;
}

void al_scope_cancel_all(al_scope_t *s) {
  al_link_t *l;
  /* Cancelling never finishes a task at once (its step does), so the list
   * does not change under the walk. */
  for (l = s->tasks.next; l != &s->tasks; l = l->next) {
    al_task_t *t = al_container_of(l, al_task_t, slink);
    if (t->ncancels == 0 && !t->must_cancel)
      al_task_cancel(t, NULL);
  }
}

void al_scope_abandon(al_scope_t *s) {
  al_link_t *l;
  while ((l = al_list_first(&s->tasks)) != NULL)
    al_list_remove(l);
  s->n = 0;
}

void al_task_init(al_task_t *t, al_loop_t *loop, al_scope_t *scope,
                  al_handle_cb step) {
  al_future_init(&t->fut, loop, AL_KIND_TASK);
  al_handle_init(&t->step, step);
  al_waiter_init(&t->waiter, task_waiter_cb);
  t->awaiting = NULL;
  t->unwait = NULL;
  t->ncancels = 0;
  t->wake_status = 0;
  t->wait = AL_WAIT_NONE;
  t->must_cancel = false;
  t->started = false;
  t->cancel_woke = false;
  t->scope = scope;
  t->slink.next = t->slink.prev = NULL;
  if (scope) {
    al_list_append(&scope->tasks, &t->slink);
    scope->n++;
  }
  loop->ntasks++;
  al_loop_post(loop, &t->step);
}

/* Out of the timer heap (if still in it), and the waiter that shares the
 * timer's bytes made whole again (unlinked): the sleep is over. */
static void end_sleep(al_task_t *t) {
  if (t->timer.heap_index)
    al_timer_remove(t->fut.loop, &t->timer);
  al_waiter_init(&t->waiter, task_waiter_cb);
  t->wait = AL_WAIT_NONE;
}

/* The task is woken by a cancel before it could wait: asyncio would cancel
 * the future it is about to wait on, which cannot be taken back. */
static void wake_cancelled(al_task_t *t) {
  t->must_cancel = false;
  t->cancel_woke = true;
  t->wake_status = AL_ECANCELED;
  t->wait = AL_WAIT_NONE;
  al_loop_post(t->fut.loop, &t->step);
}

void al_task_await(al_task_t *t, al_future_t *f) {
  t->waiter.cb = task_waiter_cb; /* a hook's owner may have set its own */
  t->awaiting = f;
  t->wait = AL_WAIT_FUTURE;
  /* A cancel requested while the task ran applies to what it awaits next,
   * as in asyncio's Task.__step. */
  if (t->must_cancel) {
    size_t len;
    const char *msg = al_future_msg(&t->fut, &len);
    if (al_future_cancel_n(f, msg, len))
      t->must_cancel = false;
  }
  if (f->state == AL_PENDING)
    al_future_add_waiter(f, &t->waiter);
  else
    al_loop_post(t->fut.loop, &t->step);
}

void al_task_sleep(al_task_t *t, double delay) {
  t->wake_status = 0;
  if (t->must_cancel && delay > 0) {
    wake_cancelled(t);
    return;
  }
  if (delay <= 0) {
    al_loop_post(t->fut.loop, &t->step);
    return;
  }
  t->wait = AL_WAIT_TIMER; /* the waiter is free (resuming freed it) */
  al_timer_init(&t->timer, &t->step);
  al_timer_add(t->fut.loop, &t->timer, al_time() + delay);
}

void al_task_park(al_task_t *t, al_unwait_cb unwait) {
  t->wake_status = 0;
  t->wait = AL_WAIT_HOOK;
  t->unwait = unwait;
  if (t->must_cancel) {
    unwait(t);
    t->unwait = NULL;
    wake_cancelled(t);
  }
}

void al_task_wake(al_task_t *t, int status) {
  t->unwait = NULL;
  t->wake_status = status;
  t->wait = AL_WAIT_NONE;
  al_loop_post(t->fut.loop, &t->step);
}

void al_task_requeue(al_task_t *t, bool cancel) {
  if (cancel)
    t->must_cancel = true;
  al_loop_post(t->fut.loop, &t->step);
}

bool al_task_start(al_task_t *t) {
  if (t->must_cancel)
    return false;
  t->started = true;
  al_task_resuming(t);
  return true;
}

bool al_task_resuming(al_task_t *t) {
  bool cancel = t->must_cancel || t->cancel_woke;
  t->cancel_woke = false;
  if (t->wait == AL_WAIT_TIMER)
    end_sleep(t);
  else
    al_waiter_remove(&t->waiter);
  t->awaiting = NULL;
  t->wait = AL_WAIT_NONE;
  t->unwait = NULL;
  t->must_cancel = false;
  return cancel;
}

/* Undo a timer or hook park of a task that is going away or cancelled. */
static void undo_park(al_task_t *t) {
  if (t->wait == AL_WAIT_TIMER) {
    end_sleep(t);
  } else if (t->wait == AL_WAIT_HOOK && t->unwait) {
    al_unwait_cb unwait = t->unwait;
    t->unwait = NULL;
    unwait(t);
  }
}

bool al_task_cancel(al_task_t *t, const char *msg) {
  return al_future_cancel(&t->fut, msg);
}

bool al_task_cancel_n(al_task_t *t, const char *msg, size_t len) {
  return al_future_cancel_n(&t->fut, msg, len);
}

al_future_t *al__task_cancel_one(al_task_t *t, const char *msg, size_t len) {
  t->ncancels++;
  al_future_set_msg(&t->fut, msg, len);
  if (t->wait == AL_WAIT_FUTURE && t->awaiting &&
      t->awaiting->state == AL_PENDING)
    return t->awaiting; /* it wakes us when it completes, cancelled or not */
  t->must_cancel = true;
  if (t->wait == AL_WAIT_TIMER || t->wait == AL_WAIT_HOOK) {
    undo_park(t);
    wake_cancelled(t);
    t->must_cancel = true; /* the resume sees it either way */
  }
  return NULL;
}

void al__task_cancel_cycle(al_task_t *t) {
  if (t->wait != AL_WAIT_FUTURE)
    return; /* already woken: it raises the cancellation as it resumes */
  al_waiter_remove(&t->waiter);
  t->awaiting = NULL;
  wake_cancelled(t);
}

unsigned al_task_uncancel(al_task_t *t) {
  if (t->ncancels > 0 && --t->ncancels == 0)
    t->must_cancel = false;
  return t->ncancels;
}

static void leave_scope(al_task_t *t) {
  al_scope_t *s = t->scope;
  if (al_link_linked(&t->slink)) {
    al_list_remove(&t->slink);
    s->n--;
    if (s->n == 0 && s->stop_when_empty)
      al_loop_stop(t->fut.loop);
  }
}

void al_task_finish(al_task_t *t, int state) {
  al_task_resuming(t);
  leave_scope(t);
  if (--t->fut.loop->ntasks == 0 && t->fut.loop->stop_when_idle)
    al_loop_stop(t->fut.loop);
  al_loop_unpost(t->fut.loop, &t->step);
  al_future_finish(&t->fut, state);
}

void al_task_destroy(al_task_t *t) {
  if (t->fut.state == AL_PENDING) {
    undo_park(t);
    al_task_resuming(t);
    leave_scope(t);
    t->fut.loop->ntasks--;
    al_loop_unpost(t->fut.loop, &t->step);
  }
  al_future_destroy(&t->fut);
}
