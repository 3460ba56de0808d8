/* timer.c -- every timer of a loop (task sleeps, call_later handles) in one
 * binary min-heap by deadline, behind a single libev timer armed for the
 * earliest. A timer records its place in the heap, so one that is cancelled
 * leaves in O(log n); the loop always knows its next deadline. */
#include <stdio.h>
#include <stdlib.h>

#include "al_int.h"

void al_timer_init(al_timer_t *tm, al_handle_t *post) {
  tm->when = 0;
  tm->heap_index = 0;
  tm->seq = 0;
  tm->post = post;
}

static bool earlier(const al_timer_t *a, const al_timer_t *b) {
  if (a->when != b->when)
    return a->when < b->when;
  return (int)(a->seq - b->seq) < 0; /* FIFO, robust to wrap-around */
}

static void place(al_timer_t **heap, size_t i, al_timer_t *tm) {
  heap[i] = tm;
  tm->heap_index = (unsigned)i + 1;
}

static void sift_up(al_timer_t **heap, size_t i) {
  al_timer_t *tm = heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(tm, heap[parent]))
      break;
    place(heap, i, heap[parent]);
    i = parent;
  }
  place(heap, i, tm);
}

static void sift_down(al_timer_t **heap, size_t n, size_t i) {
  al_timer_t *tm = heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && earlier(heap[c + 1], heap[c]))
      c++;
    if (!earlier(heap[c], tm))
      break;
    place(heap, i, heap[c]);
    i = c;
  }
  place(heap, i, tm);
}

/* Arm the libev timer for the root, or stop it when the heap is empty (so
 * that an idle loop is seen as idle). */
static void rearm(al_loop_t *loop) {
  if (ev_is_active(&loop->heap_timer))
    ev_timer_stop(loop->ev, &loop->heap_timer);
  if (loop->ntimers > 0)
    al_timer_start(loop, &loop->heap_timer, loop->timers[0]->when - al_time());
}

void al_timer_add(al_loop_t *loop, al_timer_t *tm, double when) {
  if (tm->heap_index)
    al_timer_remove(loop, tm);
  if (loop->ntimers == loop->timers_cap) {
    size_t cap = loop->timers_cap ? 2 * loop->timers_cap : 64;
    al_timer_t **h = al__xrealloc(loop->timers, cap * sizeof *h);
    loop->timers = h;
    loop->timers_cap = cap;
  }
  tm->when = when;
  tm->seq = loop->timer_seq++;
  loop->timers[loop->ntimers] = tm;
  sift_up(loop->timers, loop->ntimers++);
  if (loop->timers[0] == tm)
    rearm(loop);
}

void al_timer_remove(al_loop_t *loop, al_timer_t *tm) {
  size_t i;
  al_timer_t *last;
  if (!tm->heap_index)
    return;
  i = tm->heap_index - 1;
  tm->heap_index = 0;
  last = loop->timers[--loop->ntimers];
  if (i < loop->ntimers) {
    place(loop->timers, i, last);
    if (i > 0 && earlier(last, loop->timers[(i - 1) / 2]))
      sift_up(loop->timers, i);
    else
      sift_down(loop->timers, loop->ntimers, i);
  }
  if (i == 0)
    rearm(loop);
}

double al_loop_next_timer(const al_loop_t *loop) {
  return loop->ntimers > 0 ? loop->timers[0]->when : -1;
}

void al__timers_due(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)ev;
  (void)revents;
  al_loop_fire_timers(al_container_of(w, al_loop_t, heap_timer));
}

void al_loop_fire_timers(al_loop_t *loop) {
  double now = al_time();
  size_t before = loop->ntimers;
  while (loop->ntimers > 0 && loop->timers[0]->when <= now) {
    al_timer_t *tm = loop->timers[0];
    al_timer_t *last = loop->timers[--loop->ntimers];
    tm->heap_index = 0;
    if (loop->ntimers > 0) {
      place(loop->timers, 0, last);
      sift_down(loop->timers, loop->ntimers, 0);
    }
    al_loop_post(loop, tm->post);
  }
  if (loop->ntimers != before || !ev_is_active(&loop->heap_timer))
    rearm(loop);
}
