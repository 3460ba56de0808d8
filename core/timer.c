/* timer.c -- the sleepers heap: every sleeping task of a loop in one binary
 * min-heap by deadline, behind a single libev timer armed for the earliest.
 * A task records its place in the heap, so a cancelled sleep leaves in
 * O(log n), and a sleep costs the task 16 bytes instead of an ev_timer. */
#include <stdio.h>
#include <stdlib.h>

#include "al.h"

static bool earlier(const al_task_t *a, const al_task_t *b) {
  if (a->when != b->when)
    return a->when < b->when;
  return (int)(a->seq - b->seq) < 0; /* FIFO, robust to wrap-around */
}

static void place(al_task_t **heap, size_t i, al_task_t *t) {
  heap[i] = t;
  t->heap_index = (unsigned)i + 1;
}

static void sift_up(al_task_t **heap, size_t i) {
  al_task_t *t = heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(t, heap[parent]))
      break;
    place(heap, i, heap[parent]);
    i = parent;
  }
  place(heap, i, t);
}

static void sift_down(al_task_t **heap, size_t n, size_t i) {
  al_task_t *t = heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && earlier(heap[c + 1], heap[c]))
      c++;
    if (!earlier(heap[c], t))
      break;
    place(heap, i, heap[c]);
    i = c;
  }
  place(heap, i, t);
}

/* Arm the libev timer for the root, or stop it when nobody sleeps (so that
 * an idle loop is seen as idle). */
static void rearm(al_loop_t *loop) {
  if (ev_is_active(&loop->sleep_timer))
    ev_timer_stop(loop->ev, &loop->sleep_timer);
  if (loop->nsleepers > 0)
    al_timer_start(loop, &loop->sleep_timer,
                   loop->sleepers[0]->when - al_time());
}

void al_sleepers_add(al_loop_t *loop, al_task_t *t, double when) {
  if (loop->nsleepers == loop->sleepers_cap) {
    size_t cap = loop->sleepers_cap ? 2 * loop->sleepers_cap : 64;
    al_task_t **h = realloc(loop->sleepers, cap * sizeof *h);
    if (!h) {
      fputs("aloop: out of memory\n", stderr);
      abort();
    }
    loop->sleepers = h;
    loop->sleepers_cap = cap;
  }
  t->when = when;
  t->seq = loop->sleep_seq++;
  loop->sleepers[loop->nsleepers] = t;
  sift_up(loop->sleepers, loop->nsleepers++);
  if (loop->sleepers[0] == t)
    rearm(loop);
}

void al_sleepers_remove(al_loop_t *loop, al_task_t *t) {
  size_t i;
  al_task_t *last;
  if (!t->heap_index)
    return;
  i = t->heap_index - 1;
  t->heap_index = 0;
  last = loop->sleepers[--loop->nsleepers];
  if (i < loop->nsleepers) {
    place(loop->sleepers, i, last);
    if (i > 0 && earlier(last, loop->sleepers[(i - 1) / 2]))
      sift_up(loop->sleepers, i);
    else
      sift_down(loop->sleepers, loop->nsleepers, i);
  }
  if (i == 0)
    rearm(loop);
}

void al__sleepers_due(struct ev_loop *ev, ev_timer *w, int revents) {
  al_loop_t *loop = al_container_of(w, al_loop_t, sleep_timer);
  double now = al_time();
  (void)ev;
  (void)revents;
  while (loop->nsleepers > 0 && loop->sleepers[0]->when <= now) {
    al_task_t *t = loop->sleepers[0];
    al_task_t *last = loop->sleepers[--loop->nsleepers];
    t->heap_index = 0;
    t->wait = AL_WAIT_NONE;
    if (loop->nsleepers > 0) {
      place(loop->sleepers, 0, last);
      sift_down(loop->sleepers, loop->nsleepers, 0);
    }
    al_loop_post(loop, &t->step);
  }
  rearm(loop);
}
