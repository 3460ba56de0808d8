/* test_io.c -- the I/O core tested from C alone, without Lua, on socket
 * pairs: a task parks on a descriptor and is woken when it is ready; a
 * cancel or a destroy while parked stops the watcher; a close wakes it; a
 * reused descriptor number is watched afresh; the stream flushes, drains,
 * shuts down and closes as it says. Prints TAP; driven by
 * spec/07-core_spec.lua. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/al_io.h"
#include "tap.h"


/* A task whose step only records that it ran and whether it was cancelled. */
typedef struct ttask {
  al_task_t t;
  int steps, cancelled, status;
} ttask;

static void record_step(al_handle_t *h) {
  ttask *tt = (ttask *)al_container_of(h, al_task_t, step);
  tt->steps++;
  tt->status = tt->t.wake_status;
  tt->cancelled = al_task_resuming(&tt->t);
}

static void new_task(ttask *tt, al_loop_t *loop, al_scope_t *scope) {
  memset(tt, 0, sizeof *tt);
  al_task_init(&tt->t, loop, scope, record_step);
  al_loop_stop(loop);
  al_loop_step(loop); /* its first step: now it is running, may park */
  tt->steps = 0;
}

static void socket_pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    perror("socketpair");
    exit(2);
  }
}

/* Step until the task ran, or the loop would block for nothing. */
static void run_until_step(al_loop_t *loop, ttask *tt) {
  int i;
  for (i = 0; i < 100 && tt->steps == 0; i++)
    if (al_loop_step(loop) == AL_STEP_STUCK)
      break;
}

static void test_park_wake(al_loop_t *loop, al_scope_t *scope) {
  int sv[2];
  ttask tt;
  al_io_t io;
  socket_pair(sv);
  al_io_init(&io, loop, sv[0]);
  new_task(&tt, loop, scope);
  al_io_wait(&io, &tt.t, EV_READ);
  CHECK(tt.t.wait == AL_WAIT_HOOK && ev_is_active(&io.rw) && loop->nio == 1,
        "a task parks on a descriptor: its read watcher runs");
  CHECK(!ev_is_active(&io.ww), "the other direction's watcher stays stopped");
  if (write(sv[1], "x", 1) != 1)
    perror("write");
  run_until_step(loop, &tt);
  CHECK(tt.steps == 1 && tt.status == 0 && !tt.cancelled,
        "the descriptor became readable: the task is woken with status 0");
  CHECK(!ev_is_active(&io.rw) && loop->nio == 0,
        "nobody waits any more: the watcher is stopped");
  al_io_close(&io);
  CHECK(io.fd == -1, "closed: the descriptor is forgotten");
  al_task_finish(&tt.t, AL_DONE);
  al_task_destroy(&tt.t);
  close(sv[1]);
}

static void test_cancel_parked(al_loop_t *loop, al_scope_t *scope) {
  int sv[2];
  ttask a, b;
  al_io_t io;
  socket_pair(sv);
  al_io_init(&io, loop, sv[0]);
  new_task(&a, loop, scope);
  new_task(&b, loop, scope);
  al_io_wait(&io, &a.t, EV_READ);
  al_io_wait(&io, &b.t, EV_READ);
  al_task_cancel(&a.t, NULL);
  CHECK(a.t.waiter.owner == NULL && ev_is_active(&io.rw),
        "a cancelled waiter leaves; the watcher runs on for the other");
  al_task_cancel(&b.t, NULL);
  CHECK(!ev_is_active(&io.rw) && loop->nio == 0,
        "cancelled while parked: the watcher is stopped with the last waiter");
  run_until_step(loop, &a);
  run_until_step(loop, &b);
  CHECK(a.cancelled && b.cancelled && a.status == AL_ECANCELED,
        "the cancelled tasks run, and see the cancellation");
  if (write(sv[1], "x", 1) != 1)
    perror("write");
  CHECK(al_loop_step(loop) == AL_STEP_STUCK,
        "data arriving later wakes nobody (no stale waiter), and nothing spins");
  /* a cancel requested while it ran applies as it parks */
  a.steps = 0;
  al_task_cancel(&a.t, NULL);
  al_io_wait(&io, &a.t, EV_WRITE);
  CHECK(!ev_is_active(&io.ww) && al_handle_queued(&a.t.step),
        "a cancel pending when it parks: woken at once, no watcher left");
  run_until_step(loop, &a);
  al_task_finish(&a.t, AL_CANCELLED);
  al_task_finish(&b.t, AL_CANCELLED);
  al_task_destroy(&a.t);
  al_task_destroy(&b.t);
  al_io_close(&io);
  close(sv[1]);
}

static void test_destroy_and_close_parked(al_loop_t *loop, al_scope_t *scope) {
  int sv[2];
  ttask a, b;
  al_io_t io;
  socket_pair(sv);
  al_io_init(&io, loop, sv[0]);
  new_task(&a, loop, scope);
  new_task(&b, loop, scope);
  al_io_wait(&io, &a.t, EV_READ);
  al_io_wait(&io, &b.t, EV_WRITE);
  CHECK(loop->nio == 2, "both directions watched");
  al_task_destroy(&a.t);
  CHECK(!ev_is_active(&io.rw) && loop->nio == 1,
        "a task destroyed while parked: its watcher is stopped");
  al_io_close(&io);
  CHECK(loop->nio == 0 && !ev_is_active(&io.ww),
        "closing the descriptor stops the watchers first");
  run_until_step(loop, &b);
  CHECK(b.steps == 1 && b.status == AL_WAKE_CLOSED,
        "a task parked on a descriptor that is closed is woken, told so");
  b.steps = 0;
  al_io_wait(&io, &b.t, EV_READ);
  run_until_step(loop, &b);
  CHECK(b.steps == 1 && b.status == AL_WAKE_CLOSED && loop->nio == 0,
        "waiting on a closed descriptor returns at once");
  al_task_finish(&b.t, AL_DONE);
  al_task_destroy(&b.t);
  close(sv[1]);
}

static void test_fd_reuse(al_loop_t *loop, al_scope_t *scope) {
  int sv[2], sv2[2], old;
  ttask a;
  al_io_t io, io2;
  socket_pair(sv);
  old = sv[0];
  al_io_init(&io, loop, sv[0]);
  new_task(&a, loop, scope);
  al_io_wait(&io, &a.t, EV_READ);
  al_task_cancel(&a.t, NULL);
  run_until_step(loop, &a);
  al_io_close(&io);
  close(sv[1]);
  socket_pair(sv2); /* the lowest numbers: the ones just closed */
  CHECK(sv2[0] == old || sv2[1] == old, "the descriptor number is reused");
  al_io_init(&io2, loop, sv2[0] == old ? sv2[0] : sv2[1]);
  a.steps = 0;
  al_io_wait(&io2, &a.t, EV_READ);
  if (write(sv2[0] == old ? sv2[1] : sv2[0], "y", 1) != 1)
    perror("write");
  run_until_step(loop, &a);
  CHECK(a.steps == 1 && a.status == 0 && !a.cancelled,
        "a reused descriptor number is watched afresh");
  al_io_close(&io2);
  close(sv2[0] == old ? sv2[1] : sv2[0]);
  al_task_finish(&a.t, AL_DONE);
  al_task_destroy(&a.t);
}

/* ---- streams ---- */

static size_t drain_peer(int fd) {
  char buf[65536];
  size_t total = 0;
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0)
    total += (size_t)r;
  return total;
}

static void test_stream(al_loop_t *loop, al_scope_t *scope) {
  int sv[2], sndbuf = 4096;
  ttask a;
  al_stream_t s;
  char *big = malloc(1 << 20);
  size_t got = 0;
  int i;
  long r;
  socket_pair(sv);
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  memset(big, 'a', 1 << 20);
  al_stream_init(&s, loop, sv[0]);
  CHECK(al_stream_fill(&s, 10) == AL_EAGAIN, "nothing to read yet: EAGAIN");
  al_stream_write(&s, big, 1 << 20);
  CHECK(s.wbuf.len > 0 && ev_is_active(&s.io.ww),
        "what the socket does not take is buffered; the write watcher runs");
  CHECK(al_stream_must_drain(&s), "above the high-water mark, drain must wait");
  new_task(&a, loop, scope);
  al_stream_drain_wait(&s, &a.t);
  for (i = 0; i < 10000 && a.steps == 0; i++) {
    got += drain_peer(sv[1]);
    al_loop_step(loop);
  }
  CHECK(a.steps == 1 && a.status == 0 && s.wbuf.len <= s.low,
        "the drainer is woken at the low-water mark");
  al_stream_write_eof(&s);
  CHECK(!(s.flags & AL_S_SHUT_DONE), "write_eof waits for the buffer");
  for (i = 0; i < 10000 && s.wbuf.len > 0; i++) {
    got += drain_peer(sv[1]);
    al_loop_step(loop);
  }
  got += drain_peer(sv[1]);
  CHECK(got == (1u << 20) && (s.flags & AL_S_SHUT_DONE) && loop->nio == 0,
        "every byte is sent, then writing is shut down; no watcher left");
  CHECK(read(sv[1], big, 1) == 0, "the peer sees the end of stream");
  if (write(sv[1], "hello", 5) != 5)
    perror("write");
  close(sv[1]);
  r = al_stream_fill(&s, 10);
  CHECK(r == 5 && s.rbuf.len == 5 && memcmp(al_buf_head(&s.rbuf), "hello", 5) == 0,
        "the other direction still reads");
  CHECK(al_stream_fill(&s, 10) == AL_EAGAIN,
        "the last receive emptied the socket: EAGAIN without asking it again");
  CHECK(al_stream_fill(&s, 10) == 0 && (s.flags & AL_S_EOF), "then the end of stream");
  al_stream_write(&s, "x", 1);
  al_stream_close(&s);
  CHECK((s.flags & AL_S_CLOSED) && s.io.fd == -1, "close with nothing queued is at once");
  al_stream_close(&s);
  al_stream_destroy(&s, true);
  al_task_finish(&a.t, AL_DONE);
  al_task_destroy(&a.t);

  /* a close with bytes queued waits for them, then closes */
  socket_pair(sv);
  al_stream_init(&s, loop, sv[0]);
  al_stream_write(&s, big, 1 << 20);
  al_stream_close(&s);
  CHECK((s.flags & AL_S_CLOSE_WANT) && s.io.fd >= 0, "close with bytes queued is deferred");
  new_task(&a, loop, scope);
  al_stream_wait_closed(&s, &a.t);
  got = 0;
  for (i = 0; i < 10000 && a.steps == 0; i++) {
    got += drain_peer(sv[1]);
    al_loop_step(loop);
  }
  got += drain_peer(sv[1]);
  CHECK(a.steps == 1 && got == (1u << 20) && s.io.fd == -1 && loop->nio == 0,
        "the deferred close flushes every byte, then closes and wakes wait_closed");
  al_stream_destroy(&s, true);
  al_task_finish(&a.t, AL_DONE);
  al_task_destroy(&a.t);
  close(sv[1]);

  /* writing to a peer that went away is an error, never a signal */
  socket_pair(sv);
  al_stream_init(&s, loop, sv[0]);
  close(sv[1]);
  al_stream_write(&s, "x", 1);
  CHECK(s.werr == AL_EPIPE, "a peer gone: EPIPE, recorded (no SIGPIPE)");
  al_stream_destroy(&s, true);
  free(big);
}

int main(void) {
  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  al_loop_t loop;
  al_scope_t scope;
  al_loop_init(&loop, ev);
  al_scope_init(&scope, NULL);
  test_park_wake(&loop, &scope);
  test_cancel_parked(&loop, &scope);
  test_destroy_and_close_parked(&loop, &scope);
  test_fd_reuse(&loop, &scope);
  test_stream(&loop, &scope);
  CHECK(loop.nio == 0 && loop.ntasks == 0, "nothing left running");
  al_loop_close(&loop);
  ev_loop_destroy(ev);
  printf("1..%d\n", count);
  return failures ? 1 : 0;
}
