/* proc.c -- child processes: posix_spawn with a clean signal state and only
 * the descriptors asked for (everything aloop opens is close-on-exec), a
 * pidfd watched with the loop's I/O records, and waitid on that one pid,
 * so other children's statuses stay with whoever waits for them. */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "al_proc.h"

static _Atomic int no_pidfd; /* pidfd_open said ENOSYS */

/* Whether path names a file we may execute: 0 or the error. */
static int executable(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return -errno;
  if (S_ISDIR(st.st_mode))
    return AL_EACCES;
  return access(path, X_OK) == 0 ? 0 : -errno;
}

/* The errors posix_spawn would report from the child, found first: the
 * common ones (no such program, not executable, no such cwd) then do not
 * depend on the C library telling them (under valgrind it cannot). */
static int precheck(const al_spawn_t *o) {
  struct stat st;
  int first = AL_ENOENT;
  if (o->cwd) {
    if (stat(o->cwd, &st) != 0)
      return -errno;
    if (!S_ISDIR(st.st_mode))
      return AL_ENOTDIR;
  }
  if (o->file[0] == '\0')
    return AL_ENOENT;
  if (!o->search || strchr(o->file, '/'))
    return executable(o->file);
  {
    const char *path = getenv("PATH"), *p;
    char buf[4096];
    if (!path)
      path = "/bin:/usr/bin";
    for (p = path;; p = strchr(p, ':') + 1) {
      size_t dl = strcspn(p, ":");
      int r;
      if (dl + strlen(o->file) + 2 <= sizeof buf) {
        memcpy(buf, dl ? p : ".", dl ? dl : 1);
        buf[dl ? dl : 1] = '/';
        strcpy(buf + (dl ? dl : 1) + 1, o->file);
        r = executable(buf);
        if (r == 0)
          return 0;
        if (r == AL_EACCES)
          first = r; /* as execvp: EACCES if one was found but refused */
      }
      if (p[dl] == '\0')
        break;
    }
  }
  return first;
}

int al_proc_spawn(al_proc_t *p, al_loop_t *loop, const al_spawn_t *o) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  pid_t pid;
  int r = 0, i, pfd;
  memset(p, 0, sizeof *p);
  p->pid = -1;
  al_io_init(&p->io, loop, -1);
  r = precheck(o);
  if (r != 0)
    return r;
  if (posix_spawn_file_actions_init(&fa) != 0)
    return AL_ENOMEM;
  if (posix_spawnattr_init(&at) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return AL_ENOMEM;
  }
  for (i = 0; i < 3 && r == 0; i++) {
    if (o->fds[i] >= 0)
      r = posix_spawn_file_actions_adddup2(&fa, o->fds[i], i);
    else if (i == 2 && o->fds[i] == AL_SPAWN_STDOUT)
      r = posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  if (r == 0 && o->cwd)
    r = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
  sigemptyset(&none);
  sigfillset(&all);
  if (r == 0)
    r = posix_spawnattr_setsigmask(&at, &none);
  if (r == 0)
    r = posix_spawnattr_setsigdefault(&at, &all);
  if (r == 0)
    r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
  if (r == 0)
    r = (o->search ? posix_spawnp : posix_spawn)(
        &pid, o->file, &fa, &at, o->argv, o->envp ? o->envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (r != 0)
    return -r;
  pfd = no_pidfd ? -1 : pidfd_open(pid, 0);       /* close-on-exec */
  if (pfd < 0 && (no_pidfd || errno == ENOSYS)) { /* waits will poll */
    no_pidfd = 1; /* (asked once: valgrind warns on each call) */
    p->pid = pid;
    return 0;
  }
  if (pfd < 0) {
    int err = errno;
    siginfo_t si;
    kill(pid, SIGKILL);
    waitid(P_PID, (id_t)pid, &si, WEXITED);
    return -err;
  }
  p->pid = pid;
  al_io_init(&p->io, loop, pfd);
  return 0;
}

/* waitid on our pid only: 1 and the status when it has exited. */
static int reap(int pid, int *status) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) != 0) {
    if (errno != EINTR)
      return -errno;
  }
  if (si.si_pid == 0)
    return 0;
  *status = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
  return 1;
}

int al_proc_poll(al_proc_t *p) {
  int r;
  if (p->reaped)
    return 1;
  r = reap(p->pid, &p->status);
  if (r == 1) {
    p->reaped = true;
    if (p->io.fd >= 0)
      al_io_close(&p->io); /* wakes the waiters: they poll and see it */
  }
  return r;
}

void al_proc_wait(al_proc_t *p, al_task_t *t) {
  if (p->io.fd >= 0)
    al_io_wait(&p->io, t, EV_READ);
  else
    al_task_sleep(t, AL_PROC_POLL);
}

int al_proc_signal(al_proc_t *p, int sig) {
  if (p->reaped || p->pid <= 0)
    return 0;
  if (p->io.fd < 0) /* not reaped yet, so the pid is still ours */
    return kill(p->pid, sig) != 0 ? -errno : 0;
  if (pidfd_send_signal(p->io.fd, sig, NULL, 0) != 0)
    return errno == ESRCH ? 0 : -errno; /* exited, not reaped yet */
  return 0;
}

/* ---- orphans ---------------------------------------------------------------- */

static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static al_proc_t *orphans; /* of every loop: states may live in threads */

static void unlink_orphan(al_proc_t *p) {
  pthread_mutex_lock(&orphans_lock);
  if (p->prev)
    p->prev->next = p->next;
  else
    orphans = p->next;
  if (p->next)
    p->next->prev = p->prev;
  pthread_mutex_unlock(&orphans_lock);
}

static void drop_orphan(al_proc_t *p) {
  struct ev_loop *ev = p->io.loop->ev;
  ev_ref(ev);
  if (p->io.fd >= 0) {
    ev_io_stop(ev, &p->orphan);
    close(p->io.fd);
  } else {
    ev_timer_stop(ev, &p->orphan_tm);
  }
  unlink_orphan(p);
  free(p);
}

static void orphan_check(al_proc_t *p) {
  int status;
  if (reap(p->pid, &status) != 0) /* exited (or cannot be waited for) */
    drop_orphan(p);
}

static void orphan_cb(struct ev_loop *ev, ev_io *w, int revents) {
  (void)ev;
  (void)revents;
  orphan_check(al_container_of(w, al_proc_t, orphan));
}

static void orphan_tm_cb(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)ev;
  (void)revents;
  orphan_check(al_container_of(w, al_proc_t, orphan_tm));
}

void al_proc_release(al_proc_t *p, bool loop_alive) {
  if (!loop_alive || p->reaped || al_proc_poll(p) != 0) {
    if (loop_alive && p->io.fd >= 0)
      al_io_close(&p->io);
    else if (p->io.fd >= 0)
      close(p->io.fd);
    free(p);
    return;
  }
  if (p->io.fd >= 0) {
    al_io_stop(&p->io, AL_WAKE_CLOSED);
    ev_io_init(&p->orphan, orphan_cb, p->io.fd, EV_READ);
    ev_io_start(p->io.loop->ev, &p->orphan);
  } else {
    ev_timer_init(&p->orphan_tm, orphan_tm_cb, 0.05, 0.05);
    ev_timer_start(p->io.loop->ev, &p->orphan_tm);
  }
  ev_unref(p->io.loop->ev); /* an orphan does not keep the loop running */
  pthread_mutex_lock(&orphans_lock);
  p->prev = NULL;
  p->next = orphans;
  if (orphans)
    orphans->prev = p;
  orphans = p;
  pthread_mutex_unlock(&orphans_lock);
}

void al_proc_close_loop(al_loop_t *loop) {
  for (;;) {
    al_proc_t *p;
    pthread_mutex_lock(&orphans_lock);
    for (p = orphans; p && p->io.loop != loop; p = p->next)
      ;
    pthread_mutex_unlock(&orphans_lock);
    if (!p)
      return;
    drop_orphan(p);
  }
}
