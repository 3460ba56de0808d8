/* loop.c -- the scheduler: a FIFO ready queue drained in turns between polls
 * of libev. libev callbacks only post handles here; handles (which may run
 * Lua through their owner) are run from al_loop_step, never inside ev_run. */
#include <stdlib.h>
#include <time.h>

#include "al.h"

double al_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void al_handle_init(al_handle_t *h, al_handle_cb cb) {
  h->next = NULL;
  h->cb = cb;
  h->queued = false;
}

void al_loop_init(al_loop_t *loop, struct ev_loop *ev) {
  loop->ev = ev;
  loop->timers = NULL;
  loop->ntimers = loop->timers_cap = 0;
  loop->timer_seq = 0;
  ev_init(&loop->heap_timer, al__timers_due);
  loop->head = loop->tail = NULL;
  loop->nready = 0;
  loop->ntasks = 0;
  loop->last_poll = 0;
  loop->since_check = 0;
  loop->depth = 0;
  loop->stop = false;
  loop->stop_when_idle = false;
  loop->on_ready = NULL;
  loop->data = NULL;
}

void al_loop_close(al_loop_t *loop) {
  size_t i;
  if (ev_is_active(&loop->heap_timer))
    ev_timer_stop(loop->ev, &loop->heap_timer);
  for (i = 0; i < loop->ntimers; i++) /* their owners may remove them later */
    loop->timers[i]->heap_index = 0;
  free(loop->timers);
  loop->timers = NULL;
  loop->ntimers = loop->timers_cap = 0;
}

void al_loop_post(al_loop_t *loop, al_handle_t *h) {
  if (h->queued)
    return;
  h->queued = true;
  h->next = NULL;
  if (loop->tail) {
    loop->tail->next = h;
  } else {
    loop->head = h;
    if (loop->on_ready)
      loop->on_ready(loop);
  }
  loop->tail = h;
  loop->nready++;
}

void al_loop_unpost(al_loop_t *loop, al_handle_t *h) {
  al_handle_t **pp, *prev = NULL;
  if (!h->queued)
    return;
  for (pp = &loop->head; *pp; prev = *pp, pp = &(*pp)->next) {
    if (*pp == h) {
      *pp = h->next;
      if (loop->tail == h)
        loop->tail = prev;
      h->queued = false;
      h->next = NULL;
      loop->nready--;
      return;
    }
  }
}

/* Run the handles that were ready when the turn began. */
static void run_ready(al_loop_t *loop) {
  size_t n = loop->nready;
  loop->since_check += (unsigned)(n < 1024 ? n : 1024);
  while (n-- > 0 && loop->head) {
    al_handle_t *h = loop->head;
    loop->head = h->next;
    if (!loop->head)
      loop->tail = NULL;
    loop->nready--;
    h->queued = false;
    h->next = NULL;
    h->cb(h);
  }
}

int al_loop_step(al_loop_t *loop) {
  int active;
  double now;
  loop->depth++;
  run_ready(loop);
  loop->depth--;
  if (loop->stop) {
    loop->stop = false;
    return AL_STEP_MORE;
  }
  if (loop->nready > 0) {
    /* Work is ready: poll without blocking, but not on every turn, since a
     * turn can be a single task switch and a poll is a system call; even
     * the clock is read only every AL_CHECK_EVERY handles. */
    if (loop->since_check < AL_CHECK_EVERY)
      return AL_STEP_MORE;
    loop->since_check = 0;
    now = al_time();
    if (now - loop->last_poll >= AL_POLL_INTERVAL) {
      loop->last_poll = now;
      ev_run(loop->ev, EVRUN_NOWAIT);
    }
    return AL_STEP_MORE;
  }
  active = ev_run(loop->ev, EVRUN_ONCE);
  loop->last_poll = al_time();
  loop->since_check = 0;
  if (loop->nready == 0 && !active)
    return AL_STEP_STUCK;
  return AL_STEP_MORE;
}

void al_loop_stop(al_loop_t *loop) { loop->stop = true; }

void al_loop_run_turn(al_loop_t *loop) {
  loop->depth++;
  run_ready(loop);
  loop->depth--;
  loop->stop = false;
}

void al_timer_start(al_loop_t *loop, ev_timer *w, double delay) {
  /* ev_now() is the time of the last poll, which may be long ago in a busy
   * turn; a timer set against it could fire before `delay` has passed. */
  ev_now_update(loop->ev);
  ev_timer_set(w, delay > 0 ? delay : 0, 0.);
  ev_timer_start(loop->ev, w);
}
