/* io.c -- a descriptor with one libev watcher per direction and the tasks
 * parked on each. A watcher runs only while a task waits in its direction
 * or the owner wants it (libev is level-triggered: an idle watcher on a
 * ready descriptor would spin the loop), and it is never unreferenced, so
 * every parked task is backed by an active watcher. The callback only wakes
 * tasks and calls the owner's C callback. */
#include <unistd.h>

#include "al_io.h"

static void io_cb(struct ev_loop *ev, ev_io *w, int revents);

void al_io_init(al_io_t *io, al_loop_t *loop, int fd) {
  io->loop = loop;
  io->fd = fd;
  ev_io_init(&io->rw, io_cb, fd, EV_READ);
  ev_io_init(&io->ww, io_cb, fd, EV_WRITE);
  io->rw.data = io->ww.data = io;
  al_wlist_init(&io->readers);
  al_wlist_init(&io->writers);
  io->on_ready = NULL;
  io->want = 0;
}

static void start(al_io_t *io, ev_io *w) {
  if (!ev_is_active(w)) {
    ev_io_start(io->loop->ev, w);
    io->loop->nio++;
  }
}

static void stop(al_io_t *io, ev_io *w) {
  if (ev_is_active(w)) {
    ev_io_stop(io->loop->ev, w);
    io->loop->nio--;
  }
}

/* Run the watcher of a direction exactly while someone needs it. */
static void update(al_io_t *io, int dir) {
  ev_io *w = dir == EV_READ ? &io->rw : &io->ww;
  al_wlist_t *l = dir == EV_READ ? &io->readers : &io->writers;
  if (io->fd >= 0 && ((io->want & dir) || !al_wlist_empty(l)))
    start(io, w);
  else
    stop(io, w);
}

/* Parked tasks are linked through their waiter, whose callback is never
 * called: the watcher wakes them itself. */
static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

/* The one cleanup of each park: leave the list, stop the watcher if it
 * served nobody else. */
static void unwait_read(al_task_t *t) {
  al_io_t *io = al_container_of(t->waiter.owner, al_io_t, readers);
  al_waiter_remove(&t->waiter);
  update(io, EV_READ);
}

static void unwait_write(al_task_t *t) {
  al_io_t *io = al_container_of(t->waiter.owner, al_io_t, writers);
  al_waiter_remove(&t->waiter);
  update(io, EV_WRITE);
}

void al_io_wait(al_io_t *io, al_task_t *t, int events) {
  int dir = events & EV_READ ? EV_READ : EV_WRITE;
  al_wlist_t *l = dir == EV_READ ? &io->readers : &io->writers;
  t->waiter.cb = never_called;
  al_wlist_append(l, &t->waiter);
  update(io, dir);
  /* a cancel pending applies here: unwait runs and stops the watcher */
  al_task_park(t, dir == EV_READ ? unwait_read : unwait_write);
  if (io->fd < 0 && t->wait == AL_WAIT_HOOK) { /* closed: no watcher runs */
    al_waiter_remove(&t->waiter);
    al_task_wake(t, AL_WAKE_CLOSED);
  }
}

void al_io_want(al_io_t *io, int events, bool on) {
  if (on)
    io->want |= (unsigned char)events;
  else
    io->want &= (unsigned char)~events;
  if (events & EV_READ)
    update(io, EV_READ);
  if (events & EV_WRITE)
    update(io, EV_WRITE);
}

static void wake_all(al_wlist_t *l, int status) {
  al_waiter_t *w;
  while ((w = al_wlist_first(l)) != NULL) {
    al_waiter_remove(w);
    al_task_wake(al_container_of(w, al_task_t, waiter), status);
  }
}

static void io_cb(struct ev_loop *ev, ev_io *w, int revents) {
  al_io_t *io = w->data;
  int dir = w == &io->rw ? EV_READ : EV_WRITE;
  (void)ev;
  (void)revents;
  wake_all(dir == EV_READ ? &io->readers : &io->writers, 0);
  if ((io->want & dir) && io->on_ready)
    io->on_ready(io, dir); /* may close the descriptor */
  update(io, dir);
}

void al_io_wake(al_io_t *io, int events, int status) {
  if (events & EV_READ) {
    wake_all(&io->readers, status);
    update(io, EV_READ);
  }
  if (events & EV_WRITE) {
    wake_all(&io->writers, status);
    update(io, EV_WRITE);
  }
}

void al_io_stop(al_io_t *io, int status) {
  io->want = 0;
  stop(io, &io->rw);
  stop(io, &io->ww);
  wake_all(&io->readers, status);
  wake_all(&io->writers, status);
}

void al_io_close(al_io_t *io) {
  al_io_stop(io, AL_WAKE_CLOSED);
  if (io->fd >= 0) {
    close(io->fd); /* watchers stopped first: libev must not see it reused */
    io->fd = -1;
  }
}
