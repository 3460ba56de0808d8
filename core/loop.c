/* loop.c -- the scheduler: a FIFO ready queue drained in turns between polls
 * of libev. libev callbacks only post handles here; handles (which may run
 * Lua through their owner) are run from al_loop_step, never inside ev_run. */
#include <stdlib.h>
#include <time.h>

#include "al_int.h"

double al_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void al_handle_init(al_handle_t *h, al_handle_cb cb) {
  h->link.next = h->link.prev = NULL;
  h->cb = cb;
}

void al_loop_init(al_loop_t *loop, struct ev_loop *ev) {
  loop->ev = ev;
  loop->timers = NULL;
  loop->ntimers = loop->timers_cap = 0;
  loop->timer_seq = 0;
  ev_init(&loop->heap_timer, al__timers_due);
  al_list_init(&loop->ready);
  loop->nready = 0;
  loop->ntasks = 0;
  loop->nio = 0;
  loop->last_poll = 0;
  loop->since_check = 0;
  loop->cancel_walks = 0;
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
  if (al_link_linked(&h->link))
    return;
  al_list_append(&loop->ready, &h->link);
  if (loop->nready++ == 0 && loop->on_ready)
    loop->on_ready(loop); /* last: a tail call, no frame on the fast path */
}

void al_loop_unpost(al_loop_t *loop, al_handle_t *h) {
  if (al_link_linked(&h->link)) {
    al_list_remove(&h->link);
    loop->nready--;
  }
}

/* Run the handles that were ready when the turn began. */
static void run_ready(al_loop_t *loop) {
  size_t n = loop->nready;
  /* Only the count matters, and only up to AL_CHECK_EVERY. */
  loop->since_check += (unsigned)(n < AL_CHECK_EVERY ? n : AL_CHECK_EVERY);
  while (n-- > 0 && loop->nready > 0) {
    al_handle_t *h = al_container_of(loop->ready.next, al_handle_t, link);
    al_list_unlink(&h->link);
    loop->nready--;
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

void al_loop_clear_stop(al_loop_t *loop) { loop->stop = false; }

void al_loop_stop_when_idle(al_loop_t *loop, bool on) {
  loop->stop_when_idle = on;
}

bool al_loop_running(const al_loop_t *loop) { return loop->depth > 0; }

void al_loop_recover(al_loop_t *loop) {
  loop->depth = 0;
  loop->stop = false;
}

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
