/* test_core.c -- the core tested from C alone, without Lua: ready-queue
 * order, waiters, the sleepers heap, cancellation passing on, gather, and
 * the loop seeing when nothing can ever become ready. Prints TAP; driven by
 * spec/07-core_spec.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/al.h"
#include "tap.h"


/* ---- handles ---- */

static char order[64];
static size_t norder;
static al_loop_t *the_loop;

typedef struct rec {
  al_handle_t h;
  char tag;
  al_handle_t *then; /* posted when this one runs */
} rec;

static void rec_cb(al_handle_t *h) {
  rec *r = al_container_of(h, rec, h);
  order[norder++] = r->tag;
  if (r->then)
    al_loop_post(the_loop, r->then);
}

static void test_handles(al_loop_t *loop) {
  rec a = {.tag = 'a'}, b = {.tag = 'b'}, c = {.tag = 'c'};
  al_handle_init(&a.h, rec_cb);
  al_handle_init(&b.h, rec_cb);
  al_handle_init(&c.h, rec_cb);
  a.then = &c.h;
  norder = 0;
  al_loop_post(loop, &a.h);
  al_loop_post(loop, &b.h);
  al_loop_post(loop, &b.h); /* posting twice is a no-op */
  CHECK(loop->nready == 2, "a queued handle is queued once");
  al_loop_step(loop);
  CHECK(norder == 2 && memcmp(order, "ab", 2) == 0,
        "a turn runs what was ready when it began, in order");
  al_loop_step(loop);
  CHECK(norder == 3 && order[2] == 'c', "what a turn posts runs next turn");
  al_loop_post(loop, &a.h);
  al_loop_post(loop, &b.h);
  al_loop_unpost(loop, &a.h);
  a.then = NULL;
  norder = 0;
  al_loop_step(loop);
  CHECK(norder == 1 && order[0] == 'b', "an unposted handle does not run");
}

/* ---- futures and waiters ---- */

typedef struct wrec {
  al_waiter_t w;
  char tag;
} wrec;

static void wrec_cb(al_waiter_t *w, al_future_t *f) {
  (void)f;
  order[norder++] = al_container_of(w, wrec, w)->tag;
}

static void test_waiters(al_loop_t *loop) {
  al_future_t f;
  wrec x = {.tag = 'x'}, y = {.tag = 'y'}, z = {.tag = 'z'};
  al_future_init(&f, loop, AL_KIND_FUTURE);
  al_waiter_init(&x.w, wrec_cb);
  al_waiter_init(&y.w, wrec_cb);
  al_waiter_init(&z.w, wrec_cb);
  al_future_add_waiter(&f, &x.w);
  al_future_add_waiter(&f, &y.w);
  al_future_add_waiter(&f, &z.w);
  al_waiter_remove(&y.w);
  al_waiter_remove(&y.w); /* twice is harmless */
  norder = 0;
  al_future_finish(&f, AL_DONE);
  CHECK(norder == 2 && memcmp(order, "xz", 2) == 0,
        "waiters are told in order; a removed one is not");
  CHECK(al_wlist_empty(&f.waiters) && x.w.owner == NULL, "told waiters are unlinked");
  CHECK(!al_future_cancel(&f, "late"), "a done future cannot be cancelled");
  al_future_destroy(&f);
}

/* ---- tasks: sleeping, cancellation ---- */

#define NSLEEP 2000

typedef struct ttask {
  al_task_t t;
  double woke;
  int cancelled;
} ttask;

static int nwoken;

static void sleeper_step(al_handle_t *h) {
  ttask *tt = (ttask *)al_container_of(h, al_task_t, step);
  if (!tt->t.started) { /* first step: go to sleep */
    tt->t.started = true;
    al_task_resuming(&tt->t);
    double delay = tt->woke; /* woke holds the delay until then ... */
    tt->woke = al_time() + delay; /* ... and then the deadline, read before
                                   * the sleep reads its own clock */
    al_task_sleep(&tt->t, delay);
    return;
  }
  tt->cancelled = al_task_resuming(&tt->t);
  if (!tt->cancelled && al_time() < tt->woke)
    tt->woke = -1; /* woke early: marked */
  else
    tt->woke = al_time();
  nwoken++;
  al_task_finish(&tt->t, tt->cancelled ? AL_CANCELLED : AL_DONE);
}

static void test_sleepers(al_loop_t *loop) {
  static ttask ts[NSLEEP];
  al_scope_t scope;
  int i, early = 0, ordered = 1, cancelled_ok = 1;
  unsigned seed = 12345;
  al_scope_init(&scope, NULL);
  for (i = 0; i < NSLEEP; i++) {
    memset(&ts[i], 0, sizeof ts[i]);
    seed = seed * 1103515245u + 12345u;
    ts[i].woke = (double)(1 + seed % 50) / 1000.0; /* 1 to 50 ms */
    al_task_init(&ts[i].t, loop, &scope, sleeper_step);
  }
  CHECK(scope.n == NSLEEP, "tasks join their scope");
  al_loop_stop(loop); /* return after the first steps, without polling */
  al_loop_step(loop); /* first steps: all asleep */
  CHECK(loop->ntimers == NSLEEP, "every sleeper is in the heap");
  for (i = 0; i < NSLEEP; i += 10) /* cancel every tenth */
    al_task_cancel(&ts[i].t, NULL);
  nwoken = 0;
  while (nwoken < NSLEEP)
    if (al_loop_step(loop) == AL_STEP_STUCK)
      break;
  CHECK(nwoken == NSLEEP, "every sleeper woke");
  for (i = 0; i < NSLEEP; i++) {
    if (ts[i].woke < 0)
      early++;
    if (i % 10 == 0 && !(ts[i].cancelled && ts[i].t.fut.state == AL_CANCELLED))
      cancelled_ok = 0;
    if (i % 10 != 0 && ts[i].cancelled)
      cancelled_ok = 0;
  }
  (void)ordered;
  CHECK(early == 0, "no sleeper woke before its deadline by al_time()");
  CHECK(cancelled_ok, "cancelled sleepers leave the heap and see it");
  CHECK(scope.n == 0 && loop->ntimers == 0, "finished tasks leave scope and heap");
  CHECK(al_loop_step(loop) == AL_STEP_STUCK,
        "a loop with nothing ready and no watcher says it is stuck");
}

/* ---- cancellation passes on to what is awaited ---- */

static void idle_step(al_handle_t *h) { (void)h; }

static void test_cancel_passes_on(al_loop_t *loop) {
  al_task_t outer, inner;
  al_future_t f;
  al_scope_t scope;
  al_scope_init(&scope, NULL);
  al_task_init(&outer, loop, &scope, idle_step);
  al_task_init(&inner, loop, &scope, idle_step);
  al_loop_step(loop);
  al_future_init(&f, loop, AL_KIND_FUTURE);
  al_task_await(&inner, &f);
  al_task_await(&outer, &inner.fut);
  CHECK(al_task_cancel(&outer, "stop"), "cancel of a waiting task succeeds");
  CHECK(f.state == AL_CANCELLED, "it passed on to the future the inner awaits");
  CHECK(!outer.must_cancel && outer.fut.state == AL_PENDING,
        "the outer waits on: the inner decides");
  CHECK(al_handle_queued(&inner.step) && !al_handle_queued(&outer.step), "only the inner is woken");
  al_task_resuming(&inner);
  al_task_finish(&inner, AL_DONE); /* the inner ignored it */
  CHECK(al_handle_queued(&outer.step) && !al_task_resuming(&outer),
        "an awaited task that ignores the cancel: the outer is not cancelled");
  al_task_finish(&outer, AL_DONE);
  CHECK(outer.ncancels == 1 && al_task_uncancel(&outer) == 0,
        "cancel requests are counted, uncancel takes one back");
  al_future_destroy(&f);
  al_task_destroy(&inner);
  al_task_destroy(&outer);
}

/* ---- gather ---- */

static void test_gather(al_loop_t *loop) {
  al_future_t a, b, c;
  al_gather_t *g = malloc(al_gather_size(3));
  al_future_init(&a, loop, AL_KIND_FUTURE);
  al_future_init(&b, loop, AL_KIND_FUTURE);
  al_future_init(&c, loop, AL_KIND_FUTURE);
  al_gather_init(g, loop, 3, false);
  al_gather_add(g, 0, &a);
  al_gather_add(g, 1, &b);
  al_gather_add(g, 2, &c);
  al_future_finish(&c, AL_DONE);
  al_future_finish(&a, AL_DONE);
  CHECK(g->fut.state == AL_PENDING, "gather waits for every child");
  al_future_finish(&b, AL_FAILED);
  CHECK(g->fut.state == AL_FAILED && g->failed == &b && (b.flags & AL_F_RETRIEVED),
        "a failed child fails the gather, and counts as retrieved");
  al_gather_destroy(g);
  al_future_destroy(&a);
  al_future_destroy(&b);
  al_future_destroy(&c);

  al_future_init(&a, loop, AL_KIND_FUTURE);
  al_future_init(&b, loop, AL_KIND_FUTURE);
  al_gather_init(g, loop, 2, true);
  al_gather_add(g, 0, &a);
  al_gather_add(g, 1, &b);
  CHECK(al_future_cancel(&g->fut, NULL), "cancelling a gather cancels children");
  CHECK(a.state == AL_CANCELLED && b.state == AL_CANCELLED &&
            g->fut.state == AL_CANCELLED,
        "with every child cancelled, the gather is cancelled");
  al_gather_destroy(g);
  al_future_destroy(&a);
  al_future_destroy(&b);

  al_gather_init(g, loop, 0, false);
  CHECK(g->fut.state == AL_DONE, "an empty gather is done at once");
  al_gather_destroy(g);
  free(g);
}

/* ---- wait queues and hook parking ---- */

static int unwaits;
static al_wlist_t hook_line;

static void hook_unwait(al_task_t *t) {
  unwaits++;
  al_waiter_remove(&t->waiter);
}

static void test_hook_park(al_loop_t *loop) {
  al_task_t a, b;
  al_scope_t scope;
  al_scope_init(&scope, NULL);
  al_wlist_init(&hook_line);
  al_task_init(&a, loop, &scope, idle_step);
  al_task_init(&b, loop, &scope, idle_step);
  al_loop_step(loop);
  al_wlist_append(&hook_line, &a.waiter);
  al_task_park(&a, hook_unwait);
  al_wlist_append(&hook_line, &b.waiter);
  al_task_park(&b, hook_unwait);
  CHECK(a.wait == AL_WAIT_HOOK && !al_handle_queued(&a.step),
        "a parked task waits on its hook, not queued");
  al_waiter_remove(&a.waiter);
  al_task_wake(&a, 42);
  CHECK(al_handle_queued(&a.step) && a.wake_status == 42 && unwaits == 0,
        "its waker wakes it with a status; the cleanup does not run");
  CHECK(!al_task_resuming(&a), "a woken task resumes without a cancel");
  CHECK(al_task_cancel(&b, NULL) && unwaits == 1 && al_wlist_empty(&hook_line),
        "cancelling a parked task runs its one cleanup, which unlinks it");
  CHECK(al_handle_queued(&b.step) && b.wake_status == AL_ECANCELED &&
            al_task_resuming(&b),
        "the cancelled task is woken, and resumes to raise");
  /* a cancel requested while it ran applies as it parks */
  al_task_cancel(&a, NULL);
  al_wlist_append(&hook_line, &a.waiter);
  al_task_park(&a, hook_unwait);
  CHECK(unwaits == 2 && al_wlist_empty(&hook_line) && al_handle_queued(&a.step),
        "a pending cancel undoes a park at once");
  al_task_resuming(&a);
  /* destroyed while parked: the cleanup runs */
  al_wlist_append(&hook_line, &b.waiter);
  al_task_park(&b, hook_unwait);
  al_task_destroy(&b);
  CHECK(unwaits == 3 && al_wlist_empty(&hook_line) && scope.n == 1,
        "a task destroyed while parked is unlinked by its cleanup");
  al_task_finish(&a, AL_CANCELLED);
  al_task_destroy(&a);
}

static int nsteps;
static void counting_step(al_handle_t *h) {
  (void)h;
  nsteps++;
}

/* A task's waiter and timer share their bytes: one task through every kind
 * of wait in turn, the waiter whole again after each sleep. */
static void test_one_wait_at_a_time(al_loop_t *loop) {
  al_task_t t;
  al_future_t f;
  al_scope_t scope;
  size_t timers0 = loop->ntimers;
  al_scope_init(&scope, NULL);
  al_wlist_init(&hook_line);
  unwaits = 0;
  al_task_init(&t, loop, &scope, counting_step);
  al_loop_step(loop);
  al_task_resuming(&t);
  al_task_sleep(&t, 10);
  CHECK(t.wait == AL_WAIT_TIMER && loop->ntimers == timers0 + 1, "asleep: in the heap");
  CHECK(al_task_cancel(&t, NULL) && loop->ntimers == timers0 && t.wait == AL_WAIT_NONE &&
            t.waiter.link.next == NULL && t.waiter.owner == NULL,
        "a cancelled sleep leaves the heap and the waiter whole");
  CHECK(al_task_resuming(&t), "it resumes cancelled");
  al_future_init(&f, loop, AL_KIND_FUTURE);
  al_task_await(&t, &f);
  CHECK(!al_wlist_empty(&f.waiters) && t.waiter.owner == &f.waiters,
        "after the sleep, the waiter links to an awaited future");
  al_future_finish(&f, AL_DONE);
  CHECK(al_handle_queued(&t.step) && al_wlist_empty(&f.waiters), "the future wakes it");
  CHECK(!al_task_resuming(&t), "and it resumes");
  al_task_sleep(&t, 0.001);
  nsteps = 0;
  while (nsteps == 0)
    if (al_loop_step(loop) == AL_STEP_STUCK)
      break;
  CHECK(loop->ntimers == timers0 && t.wait == AL_WAIT_TIMER, "a sleep that ran out leaves the heap");
  CHECK(!al_task_resuming(&t) && t.waiter.link.next == NULL && t.wait == AL_WAIT_NONE,
        "resuming after it makes the waiter whole again");
  al_wlist_append(&hook_line, &t.waiter);
  al_task_park(&t, hook_unwait);
  al_waiter_remove(&t.waiter);
  al_task_wake(&t, 7);
  CHECK(!al_task_resuming(&t) && t.wake_status == 7 && unwaits == 0, "then a hook park");
  al_task_sleep(&t, 10);
  al_task_destroy(&t);
  CHECK(loop->ntimers == timers0 && scope.n == 0, "destroyed asleep: out of the heap and the scope");
  al_future_destroy(&f);
}

static void test_waitq(al_loop_t *loop) {
  al_waitq_t q;
  al_task_t t[3];
  al_scope_t scope;
  int i;
  al_scope_init(&scope, NULL);
  al_waitq_init(&q, AL_GRANT_KEEP, 1);
  CHECK(al_waitq_try(&q) && !al_waitq_try(&q), "one permit, taken once");
  for (i = 0; i < 3; i++)
    al_task_init(&t[i], loop, &scope, idle_step);
  al_loop_step(loop);
  for (i = 0; i < 3; i++) {
    al_task_resuming(&t[i]);
    al_waitq_park(&q, &t[i]);
  }
  CHECK(al_waitq_count(&q) == 3 && al_waitq_must_wait(&q, 5),
        "three wait in line; a newcomer must queue");
  CHECK(al_waitq_grant(&q, 1) == 1 && t[0].wake_status == AL_WAKE_GRANTED &&
            q.pending == 1,
        "a grant wakes the first in line");
  al_task_cancel(&t[0], NULL); /* granted, then cancelled before it ran */
  CHECK(al_task_resuming(&t[0]) && al_waitq_resume(&q, &t[0], true) &&
            t[1].wake_status == AL_WAKE_GRANTED && q.pending == 1,
        "a cancelled grantee passes its grant on to the next");
  al_task_cancel(&t[2], NULL);
  CHECK(al_waitq_count(&q) == 0 && al_task_resuming(&t[2]) &&
            !al_waitq_resume(&q, &t[2], true),
        "a cancelled waiter leaves the line and has nothing to pass on");
  al_task_resuming(&t[1]);
  CHECK(al_waitq_resume(&q, &t[1], false) && q.pending == 0,
        "a woken grantee takes its grant up");
  al_waitq_grant(&q, (size_t)-1);
  al_waitq_grant(&q, (size_t)-1);
  CHECK(q.permits == __LONG_MAX__, "permits saturate instead of overflowing");
  for (i = 0; i < 3; i++) {
    al_task_finish(&t[i], AL_DONE);
    al_task_destroy(&t[i]);
  }
  al_waitq_destroy(&q);
}

static void test_errors(void) {
  CHECK(AL_ECONNREFUSED == -ECONNREFUSED &&
            strcmp(al_err_name(AL_ECONNREFUSED), "ECONNREFUSED") == 0 &&
            strcmp(al_strerror(AL_ECONNREFUSED), "connection refused") == 0,
        "error codes are negated errno values, with names and messages");
  CHECK(strcmp(al_err_name(-4000), "EUNKNOWN") == 0 &&
            strcmp(al_strerror(AL_EOF), "end of file") == 0,
        "unknown codes and AL_EOF have names too");
}

int main(void) {
  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  al_loop_t loop;
  al_loop_init(&loop, ev);
  the_loop = &loop;
  test_handles(&loop);
  test_waiters(&loop);
  test_sleepers(&loop);
  test_cancel_passes_on(&loop);
  test_gather(&loop);
  test_hook_park(&loop);
  test_one_wait_at_a_time(&loop);
  test_waitq(&loop);
  test_errors();
  al_loop_close(&loop);
  ev_loop_destroy(ev);
  printf("1..%d\n", count);
  return failures ? 1 : 0;
}
