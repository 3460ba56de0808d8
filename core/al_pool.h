/* al_pool.h -- a pool of worker threads for one loop (core/pool.c): jobs run
 * on POSIX threads created on demand, and come back to the loop through one
 * ev_async and a mutex-protected list; the task that waits for a job parks
 * on it with the one wait protocol. Lua-free: what a job does, and what each
 * thread keeps between jobs (a Lua state, in aloop), is the owner's. */
#ifndef AL_POOL_H
#define AL_POOL_H

#include "al.h"

typedef struct al_pool al_pool_t;
typedef struct al_job al_job_t;

/* Runs a job on a pool thread. *thread_state is the thread's own (NULL on
 * its first job); whatever the job leaves there is kept for the next job of
 * the same thread and given to the pool's exit function when the thread
 * ends. It must not touch the loop nor anything of the loop's thread. */
typedef void (*al_job_run)(al_job_t *job, void **thread_state);
/* Frees a job's storage; may be called on any thread. */
typedef void (*al_job_free)(al_job_t *job);
/* Called on a pool thread as it ends, with its state if it has one. */
typedef void (*al_thread_exit)(void *thread_state);

struct al_job {
  al_job_run run;   /* public */
  al_job_free free; /* public */
  bool done;        /* read-only: run has returned; the owner may read */
  /* private */
  al_link_t link; /* in the pool's queue or its done list */
  al_pool_t *pool;
  al_wlist_t waiters; /* the parked task, through t->waiter */
  bool held;          /* the owner holds it until al_pool_release */
  bool inpool;        /* the pool holds it until it is handed back */
  bool wanted;        /* counted in pool->nwanted (the loop stays alive) */
  int state;          /* queued, running, finished: under the pool's lock */
  al_link_t all;      /* in the pool's list of every job not yet freed */
};

/* A pool for the loop (no thread is created yet); up to `size` threads. */
al_pool_t *al_pool_new(al_loop_t *loop, unsigned size, al_thread_exit exit_fn);
/* Change the most threads the pool may run (at least 1). Idle threads over
 * the new size end; busy ones end after their job. */
void al_pool_set_size(al_pool_t *p, unsigned size);
unsigned al_pool_size(const al_pool_t *p);
/* The number of online processors (at least 1). */
unsigned al_pool_cpus(void);

/* Queue a job (run and free set by the caller, who holds it until
 * al_pool_release). Starts a thread when none is idle and the pool is not
 * full. Returns 0, or a negative error code when no thread could be
 * started and none runs (the job is not queued then). */
int al_pool_submit(al_pool_t *p, al_job_t *job);
/* Park the running task until the job is done (it must not be). A cancel
 * detaches it: the task wakes at once, the job runs on (when it has
 * started) and its outcome is dropped, and the loop no longer stays alive
 * for it. */
void al_pool_park(al_job_t *job, al_task_t *t);
/* Let go of a job (after reading its outcome, or to abandon it). A job
 * still queued is dropped: it never runs. */
void al_pool_release(al_job_t *job);

/* Close the pool (the loop is closing): queued jobs are dropped, parked
 * tasks unlinked, never woken; then wait for the jobs that are running to
 * end and join their threads, up to `timeout` seconds (< 0: no limit).
 * Returns how many threads still ran when the wait gave up: those carry on
 * detached, free their job, state and the pool's record themselves, and
 * never touch the loop again. Before al_loop_close. */
unsigned al_pool_close(al_pool_t *p, double timeout);

typedef struct al_pool_stats {
  unsigned threads, idle, size;
  size_t queued, running, jobs; /* jobs: allocated and not yet freed */
} al_pool_stats_t;
void al_pool_get_stats(al_pool_t *p, al_pool_stats_t *st);

#endif
