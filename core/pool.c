/* pool.c -- worker threads for one loop. Jobs wait in a FIFO queue for a
 * thread; threads are started on demand up to the pool's size and wait for
 * more work when idle. A thread that ends a job puts it on the done list and
 * wakes the loop with the pool's one ev_async; the async callback hands the
 * jobs back on the loop's thread, where their parked tasks are woken. The
 * queue, the done list and the thread records are shared under `mu`; the
 * rest (the waiters, the all-list, the ev_async's ref) is the loop thread's.
 *
 * The ev_async is unref'ed while no job is wanted, so an idle pool never
 * keeps the loop alive, and is ref'ed while some task waits for a job, so a
 * parked task is always backed by a referenced watcher. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "al_pool.h"
#include "al_int.h"

enum { J_NEW = 0, J_QUEUED, J_RUNNING, J_FINISHED };

typedef struct pthr {
  al_link_t link;
  pthread_t tid;
  al_pool_t *p;
  bool exited; /* it set this last, under mu: joining it cannot block */
} pthr;

struct al_pool {
  al_loop_t *loop;
  ev_async async;
  al_thread_exit exit_fn;
  al_link_t all; /* loop thread: every job not yet freed */
  size_t njobs, nwanted;
  /* under mu */
  pthread_mutex_t mu;
  pthread_cond_t work; /* idle threads wait here */
  pthread_cond_t gone; /* close waits here for threads to end */
  al_link_t queue, done, threads;
  unsigned nthreads; /* threads that take jobs */
  unsigned nlive;    /* threads not yet ended (or orphaned ones running) */
  unsigned nidle, size;
  size_t nqueued, nrunning;
  bool closing, orphaned;
};

unsigned al_pool_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

/* ---- the loop side ------------------------------------------------------ */

static void want(al_pool_t *p, al_job_t *j) {
  j->wanted = true;
  if (p->nwanted++ == 0)
    ev_ref(p->loop->ev);
}

static void unwant(al_pool_t *p, al_job_t *j) {
  if (!j->wanted)
    return;
  j->wanted = false;
  if (--p->nwanted == 0)
    ev_unref(p->loop->ev);
}

static void free_job(al_pool_t *p, al_job_t *j) {
  al_list_remove(&j->all);
  p->njobs--;
  j->free(j);
}

static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

/* Nobody waits for the job's outcome any more. */
static void detach(al_job_t *j) {
  al_waiter_t *w;
  while ((w = al_wlist_first(&j->waiters)) != NULL)
    al_waiter_remove(w);
  unwant(j->pool, j);
}

/* The ev_async callback: hand the finished jobs back, on the loop's thread.
 * No Lua here: it only wakes tasks (which the scheduler resumes later). */
static void on_async(struct ev_loop *ev, ev_async *w, int revents) {
  al_pool_t *p = al_container_of(w, al_pool_t, async);
  al_link_t done;
  (void)ev;
  (void)revents;
  al_list_init(&done);
  pthread_mutex_lock(&p->mu);
  while (!al_list_empty(&p->done)) {
    al_link_t *l = p->done.next;
    al_list_unlink(l);
    al_list_append(&done, l);
  }
  pthread_mutex_unlock(&p->mu);
  while (!al_list_empty(&done)) {
    al_link_t *l = done.next;
    al_job_t *j = al_container_of(l, al_job_t, link);
    al_waiter_t *wt;
    al_list_unlink(l);
    j->inpool = false;
    j->done = true;
    if (!j->held) {
      free_job(p, j);
      continue;
    }
    unwant(p, j);
    if ((wt = al_wlist_first(&j->waiters)) != NULL) {
      al_waiter_remove(wt);
      al_task_wake(al_container_of(wt, al_task_t, waiter), 0);
    }
  }
}

al_pool_t *al_pool_new(al_loop_t *loop, unsigned size, al_thread_exit exit_fn) {
  al_pool_t *p = al__xmalloc(sizeof *p);
  pthread_condattr_t ca;
  p->loop = loop;
  p->exit_fn = exit_fn;
  al_list_init(&p->all);
  p->njobs = p->nwanted = 0;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->gone, &ca);
  pthread_condattr_destroy(&ca);
  al_list_init(&p->queue);
  al_list_init(&p->done);
  al_list_init(&p->threads);
  p->nthreads = p->nlive = p->nidle = 0;
  p->size = size > 0 ? size : 1;
  p->nqueued = p->nrunning = 0;
  p->closing = p->orphaned = false;
  ev_async_init(&p->async, on_async);
  ev_async_start(loop->ev, &p->async);
  ev_unref(loop->ev); /* idle: it keeps nothing alive */
  return p;
}

void al_pool_set_size(al_pool_t *p, unsigned size) {
  pthread_mutex_lock(&p->mu);
  p->size = size > 0 ? size : 1;
  pthread_cond_broadcast(&p->work); /* idle threads over the size end */
  pthread_mutex_unlock(&p->mu);
}

unsigned al_pool_size(const al_pool_t *p) {
  return p->size; /* written on the loop thread only */
}

/* ---- the threads -------------------------------------------------------- */

static void pool_destroy(al_pool_t *p) {
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->gone);
  free(p);
}

static void *worker(void *arg) {
  pthr *th = arg;
  al_pool_t *p = th->p;
  void *state = NULL;
  bool last;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    al_job_t *j;
    while (al_list_empty(&p->queue) && !p->closing && p->nthreads <= p->size) {
      p->nidle++;
      pthread_cond_wait(&p->work, &p->mu);
      p->nidle--;
    }
    if (p->closing || p->nthreads > p->size)
      break;
    j = al_container_of(p->queue.next, al_job_t, link);
    al_list_unlink(&j->link);
    p->nqueued--;
    p->nrunning++;
    j->state = J_RUNNING;
    pthread_mutex_unlock(&p->mu);
    j->run(j, &state);
    pthread_mutex_lock(&p->mu);
    p->nrunning--;
    if (p->closing) { /* nobody will take it back: it is ours to free */
      pthread_mutex_unlock(&p->mu);
      j->free(j);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    j->state = J_FINISHED;
    al_list_append(&p->done, &j->link);
    /* Under mu: close stops the watcher only after setting `closing`. */
    ev_async_send(p->loop->ev, &p->async);
  }
  p->nthreads--;
  pthread_mutex_unlock(&p->mu);
  if (state && p->exit_fn)
    p->exit_fn(state);
  pthread_mutex_lock(&p->mu);
  p->nlive--;
  last = p->orphaned && p->nlive == 0;
  if (p->orphaned) {
    al_list_unlink(&th->link);
    free(th);
  } else {
    th->exited = true;
  }
  pthread_cond_broadcast(&p->gone);
  pthread_mutex_unlock(&p->mu);
  if (last)
    pool_destroy(p);
  return NULL;
}

/* Join the threads that ended (under mu; they no longer need it). */
static void reap(al_pool_t *p) {
  al_link_t *l = p->threads.next;
  while (l != &p->threads) {
    pthr *th = al_container_of(l, pthr, link);
    l = l->next;
    if (th->exited) {
      al_list_unlink(&th->link);
      pthread_join(th->tid, NULL);
      free(th);
    }
  }
}

/* Start a thread (under mu) with every signal blocked: signals are the
 * loop thread's business. */
static int spawn(al_pool_t *p) {
  sigset_t all, old;
  pthr *th = al__xmalloc(sizeof *th);
  int err;
  th->p = p;
  th->exited = false;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&th->tid, NULL, worker, th);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) {
    free(th);
    return -err;
  }
  al_list_append(&p->threads, &th->link);
  p->nthreads++;
  p->nlive++;
  return 0;
}

int al_pool_submit(al_pool_t *p, al_job_t *j) {
  int err = 0;
  j->done = false;
  j->held = true;
  j->inpool = true;
  j->wanted = false;
  j->pool = p;
  al_wlist_init(&j->waiters);
  pthread_mutex_lock(&p->mu);
  reap(p);
  j->state = J_QUEUED;
  al_list_append(&p->queue, &j->link);
  p->nqueued++;
  if (p->nidle >= p->nqueued)
    pthread_cond_signal(&p->work);
  else if (p->nthreads < p->size && (err = spawn(p)) != 0 && p->nthreads > 0)
    err = 0; /* the threads running will get to it */
  if (err) {
    al_list_unlink(&j->link);
    p->nqueued--;
  } else if (p->nidle > 0) {
    pthread_cond_signal(&p->work);
  }
  pthread_mutex_unlock(&p->mu);
  if (err) {
    j->inpool = false;
    j->held = false;
    return err;
  }
  al_list_append(&p->all, &j->all);
  p->njobs++;
  want(p, j);
  return 0;
}

static void pool_unwait(al_task_t *t) {
  al_job_t *j = al_container_of(t->waiter.owner, al_job_t, waiters);
  detach(j);
}

void al_pool_park(al_job_t *j, al_task_t *t) {
  t->waiter.cb = never_called;
  al_wlist_append(&j->waiters, &t->waiter);
  al_task_park(t, pool_unwait);
}

void al_pool_release(al_job_t *j) {
  al_pool_t *p = j->pool;
  detach(j);
  j->held = false;
  if (j->inpool) { /* still queued: it never runs */
    pthread_mutex_lock(&p->mu);
    if (j->state == J_QUEUED) {
      al_list_unlink(&j->link);
      p->nqueued--;
      j->inpool = false;
    }
    pthread_mutex_unlock(&p->mu);
  }
  if (!j->inpool)
    free_job(p, j);
}

/* ---- closing ------------------------------------------------------------ */

unsigned al_pool_close(al_pool_t *p, double timeout) {
  al_link_t drop;
  struct timespec until;
  unsigned left;
  al_list_init(&drop);
  /* Stop the watcher: libev wants it ref'ed again first when unref'ed. */
  if (p->nwanted == 0)
    ev_ref(p->loop->ev);
  ev_async_stop(p->loop->ev, &p->async);
  p->nwanted = 0;
  pthread_mutex_lock(&p->mu);
  p->closing = true;
  while (!al_list_empty(&p->all)) {
    al_job_t *j = al_container_of(p->all.next, al_job_t, all);
    al_waiter_t *w;
    al_list_unlink(&j->all);
    while ((w = al_wlist_first(&j->waiters)) != NULL)
      al_waiter_remove(w);
    if (j->inpool && j->state == J_RUNNING)
      continue; /* its thread frees it */
    if (j->inpool) {
      al_list_unlink(&j->link);
      if (j->state == J_QUEUED)
        p->nqueued--;
    }
    al_list_append(&drop, &j->link);
  }
  pthread_cond_broadcast(&p->work);
  clock_gettime(CLOCK_MONOTONIC, &until);
  if (timeout >= 0) {
    double whole = (double)(time_t)timeout;
    until.tv_sec += (time_t)timeout;
    until.tv_nsec += (long)((timeout - whole) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
  }
  while (p->nlive > 0) {
    if (timeout < 0)
      pthread_cond_wait(&p->gone, &p->mu);
    else if (pthread_cond_timedwait(&p->gone, &p->mu, &until) != 0)
      break;
  }
  reap(p);
  left = p->nlive;
  if (left > 0) {
    al_link_t *l;
    p->orphaned = true;
    for (l = p->threads.next; l != &p->threads; l = l->next)
      pthread_detach(al_container_of(l, pthr, link)->tid);
  }
  pthread_mutex_unlock(&p->mu);
  while (!al_list_empty(&drop)) {
    al_job_t *j = al_container_of(drop.next, al_job_t, link);
    al_list_unlink(&j->link);
    j->free(j);
  }
  if (left == 0)
    pool_destroy(p);
  return left;
}

void al_pool_get_stats(al_pool_t *p, al_pool_stats_t *st) {
  pthread_mutex_lock(&p->mu);
  st->threads = p->nthreads;
  st->idle = p->nidle;
  st->size = p->size;
  st->queued = p->nqueued;
  st->running = p->nrunning;
  pthread_mutex_unlock(&p->mu);
  st->jobs = p->njobs;
}
