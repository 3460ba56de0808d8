/* al_proc.h -- child processes (proc.c): spawned with posix_spawn (signals
 * back to their defaults, an empty signal mask, only the descriptors asked
 * for), watched through a Linux pidfd on the loop and reaped with waitid on
 * that one pid, so the exit statuses of children aloop did not start
 * (io.popen, os.execute, a host's own) are never taken. No SIGCHLD handler,
 * no ev_child. Where pidfd_open is missing (ENOSYS: kernels before 5.3,
 * valgrind 3.19) a wait polls that pid every AL_PROC_POLL seconds instead.
 * Plain C on libev and al_io.h: no Lua. */
#ifndef AL_PROC_H
#define AL_PROC_H

#include "al_io.h"

/* What a child gets as descriptor 0, 1 or 2 (al_spawn_t.fds). */
#define AL_SPAWN_INHERIT (-1) /* the parent's own */
#define AL_SPAWN_STDOUT (-2)  /* descriptor 2 only: the same as 1 */

#define AL_PROC_POLL 0.01

typedef struct al_spawn {
  const char *file;  /* the program (a path, or a name looked up in PATH) */
  char *const *argv; /* NULL-terminated, argv[0] included */
  char *const *envp; /* NULL-terminated; NULL: the parent's environment */
  const char *cwd;   /* NULL: the parent's */
  int fds[3];        /* a descriptor (>= 3) to give as 0, 1, 2, or above */
  bool search;       /* look `file` up in PATH when it has no slash */
} al_spawn_t;

typedef struct al_proc {
  al_io_t io;         /* read-only: the pidfd, readable once it exited
                          (-1 when the system has none) */
  int pid;            /* read-only */
  int status;         /* read-only, once reaped: the exit code, or minus
                          the number of the signal that killed it */
  bool reaped;        /* read-only */
  ev_io orphan;       /* private: reaps a child its owner let go of ... */
  ev_timer orphan_tm; /* ... or, without a pidfd, looks every 50 ms */
  struct al_proc *next, *prev; /* private: the list of orphans */
} al_proc_t;

/* Start a child; returns 0, or the error of the spawn itself (AL_ENOENT for
 * a program that does not exist, AL_EACCES ...). The descriptors in fds
 * stay open in the parent: close them after. */
int al_proc_spawn(al_proc_t *p, al_loop_t *loop, const al_spawn_t *o);
/* Reap it if it has exited, without waiting: 1 (status set; the pidfd is
 * closed, which wakes the tasks parked in al_proc_wait), 0 while it runs,
 * or an error. */
int al_proc_poll(al_proc_t *p);
/* Park the running task t until the child may have exited (then poll
 * again): on the pidfd, or for AL_PROC_POLL seconds without one. A cancel
 * unlinks t; the child is not touched. */
void al_proc_wait(al_proc_t *p, al_task_t *t);
/* Send a signal (through the pidfd: never to a reused pid); 0 after it was
 * reaped, or the error. */
int al_proc_signal(al_proc_t *p, int sig);
/* The owner lets go of p (allocated with malloc): freed now if the child
 * was reaped, else kept as an orphan that an unreferenced watcher reaps
 * when it exits, so no zombie stays while the loop runs. With `loop_alive`
 * false no watcher is touched: the pidfd is closed and p freed. */
void al_proc_release(al_proc_t *p, bool loop_alive);
/* The loop closes: free its orphans (their children are not waited for). */
void al_proc_close_loop(al_loop_t *loop);

#endif
