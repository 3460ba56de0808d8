/* stream.c -- buffered byte streams over a socket. The read buffer is
 * pulled: bytes are received only when a reader asks, so a reader that is
 * cancelled loses nothing. The write buffer is pushed: bytes go out at once
 * as far as the socket takes them and the write watcher sends the rest in
 * C, waking drainers at the low-water mark and doing a deferred shutdown or
 * close once the buffer is empty. Sends use MSG_NOSIGNAL: a peer that went
 * away is an EPIPE, never a SIGPIPE. A stream over a pipe or a terminal
 * (AL_S_PIPE) uses read/write instead, and its write_eof closes it. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "al_io.h"
#include "al_tls.h"
#include "al_int.h"

#define AL_READ_CHUNK 16384      /* a read receives at least this much room */
#define AL_READ_MAX (1024 * 1024) /* and at most this much per call */

/* ---- buffers --------------------------------------------------------------- */

void al_buf_free(al_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->off = b->len = b->cap = 0;
}

char *al_buf_reserve(al_buf_t *b, size_t n) {
  if (b->len == 0)
    b->off = 0;
  if (b->off + b->len + n <= b->cap)
    return b->data + b->off + b->len;
  if (b->off > 0 && b->len + n <= b->cap) { /* slide down: room enough */
    memmove(b->data, b->data + b->off, b->len);
    b->off = 0;
    return b->data + b->len;
  }
  {
    size_t cap = b->cap ? b->cap : 4096;
    char *p;
    while (cap < b->len + n)
      cap *= 2;
    if (b->off > 0) {
      memmove(b->data, b->data + b->off, b->len);
      b->off = 0;
    }
    p = al__xrealloc(b->data, cap);
    b->data = p;
    b->cap = cap;
    return b->data + b->len;
  }
}

void al_buf_append(al_buf_t *b, const char *p, size_t n) {
  if (n == 0)
    return;
  memcpy(al_buf_reserve(b, n), p, n);
  b->len += n;
}

void al_buf_consume(al_buf_t *b, size_t n) {
  if (n >= b->len) {
    b->off = b->len = 0;
    if (b->cap > 256 * 1024) /* a big transfer is over: give it back */
      al_buf_free(b);
  } else {
    b->off += n;
    b->len -= n;
  }
}

/* ---- the stream ------------------------------------------------------------ */

static void on_ready(al_io_t *io, int dir);

void al_stream_init(al_stream_t *s, al_loop_t *loop, int fd) {
  memset(s, 0, sizeof *s);
  al_io_init(&s->io, loop, fd);
  s->io.on_ready = on_ready;
  al_wlist_init(&s->drainers);
  al_wlist_init(&s->closers);
  s->high = 64 * 1024;
  s->low = 16 * 1024;
}

static void notify(al_stream_t *s) {
  if (s->notify)
    al_loop_post(s->io.loop, s->notify);
}

static void wake_list(al_wlist_t *l, int status) {
  al_waiter_t *w;
  while ((w = al_wlist_first(l)) != NULL) {
    al_waiter_remove(w);
    al_task_wake(al_container_of(w, al_task_t, waiter), status);
  }
}

static void do_close(al_stream_t *s) {
  if (s->flags & AL_S_CLOSED)
    return;
  s->flags |= AL_S_CLOSED | AL_S_EOF;
  s->flags &= ~(unsigned)AL_S_CLOSE_WANT;
  al_io_close(&s->io); /* wakes the readers and writers parked */
  al_buf_free(&s->wbuf);
  al_buf_free(&s->tlsq);
  wake_list(&s->drainers, 0);
  wake_list(&s->closers, 0);
  notify(s);
}

/* The write side failed: what was not sent is lost; drain raises it. */
static void write_failed(al_stream_t *s, int err) {
  if (!s->werr)
    s->werr = err;
  s->wbuf.off = s->wbuf.len = 0;
  al_io_want(&s->io, EV_WRITE, false);
  wake_list(&s->drainers, err);
  if (s->flags & AL_S_CLOSE_WANT)
    do_close(s);
  else
    notify(s);
}

/* write() to a pipe without a SIGPIPE: the signal is blocked around it and
 * one it raised is taken back, so a reader that went away is an EPIPE, and
 * the process's own disposition is left alone. */
static ssize_t pipe_write(int fd, const char *p, size_t n) {
  sigset_t set, old, pending;
  ssize_t r;
  int err, was_pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  r = write(fd, p, n);
  err = errno;
  if (r < 0 && err == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    sigtimedwait(&set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = err;
  return r;
}

/* The output seam: bytes of the write buffer to the socket. A TLS filter
 * will encrypt into the buffer before this, so it stays as it is. Returns
 * the count sent (0 when the socket is full) or the error. */
static long stream_output(al_stream_t *s, const char *p, size_t n) {
  for (;;) {
    ssize_t r = s->flags & AL_S_PIPE ? pipe_write(s->io.fd, p, n)
                                     : send(s->io.fd, p, n, MSG_NOSIGNAL);
    if (r >= 0)
      return (long)r;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    return -errno;
  }
}

/* Bytes to the socket: sent at once when nothing is queued, else queued
 * for the write watcher. Dropped after a write error. */
static void out_raw(al_stream_t *s, const char *p, size_t n) {
  if (s->werr || n == 0)
    return;
  if (s->wbuf.len == 0) {
    long r = stream_output(s, p, n);
    if (r < 0) {
      write_failed(s, (int)r);
      return;
    }
    p += r;
    n -= (size_t)r;
    if (n == 0)
      return;
  }
  al_buf_append(&s->wbuf, p, n);
  al_io_want(&s->io, EV_WRITE, true);
}

/* The TLS filter's ciphertext to the socket (through the write buffer when
 * bytes are queued there already: no copy more). */
static void tls_out(al_stream_t *s) {
  size_t n;
  while ((n = al_tls_pending(s->tls)) > 0) {
    if (s->werr) { /* the connection is lost: nothing goes anywhere */
      char sink[4096];
      while (al_tls_take(s->tls, sink, sizeof sink) > 0)
        ;
      return;
    }
    if (s->wbuf.len > 0) {
      char *p = al_buf_reserve(&s->wbuf, n);
      s->wbuf.len += al_tls_take(s->tls, p, n);
    } else {
      char tmp[32768];
      size_t got = al_tls_take(s->tls, tmp, sizeof tmp);
      out_raw(s, tmp, got);
    }
  }
}

/* A TLS handshake is going on: writes and write_eof wait for its end. */
static bool in_handshake(const al_stream_t *s) {
  return s->tls && !al_tls_handshake_done(s->tls);
}

/* The write buffer is empty: do what waited for it. */
static void flushed(al_stream_t *s) {
  al_io_want(&s->io, EV_WRITE, false);
  if (s->flags & AL_S_CLOSE_WANT) {
    do_close(s);
    return;
  }
  if ((s->flags & AL_S_SHUT_WANT) && !(s->flags & AL_S_SHUT_DONE) &&
      !in_handshake(s)) {
    s->flags |= AL_S_SHUT_DONE;
    if (s->flags & AL_S_PIPE) { /* a pipe's end of writing: close it */
      do_close(s);
      return;
    }
    if (shutdown(s->io.fd, SHUT_WR) != 0 && !s->werr)
      s->werr = -errno;
  }
  notify(s);
}

static void flush(al_stream_t *s) {
  while (s->wbuf.len > 0) {
    long r = stream_output(s, al_buf_head(&s->wbuf), s->wbuf.len);
    if (r < 0) {
      write_failed(s, (int)r);
      return;
    }
    if (r == 0)
      break;
    al_buf_consume(&s->wbuf, (size_t)r);
  }
  if (s->wbuf.len <= s->low)
    wake_list(&s->drainers, 0);
  if (s->wbuf.len == 0)
    flushed(s);
}

static void on_ready(al_io_t *io, int dir) {
  al_stream_t *s = al_container_of(io, al_stream_t, io);
  if (dir == EV_WRITE)
    flush(s);
}

/* The input seam: socket bytes into the read buffer. A TLS filter will
 * receive into its memory BIO here and decrypt into the buffer. */
static long stream_input(al_stream_t *s, size_t want) {
  size_t room = want < AL_READ_CHUNK ? AL_READ_CHUNK
                : want > AL_READ_MAX ? AL_READ_MAX
                                     : want;
  char *p = al_buf_reserve(&s->rbuf, room);
  for (;;) {
    ssize_t r;
    if (s->flags & AL_S_POLL) { /* a blocking descriptor: read if ready */
      struct pollfd pf = {s->io.fd, POLLIN, 0};
      if (poll(&pf, 1, 0) == 0)
        return AL_EAGAIN;
    }
    r = s->flags & AL_S_PIPE ? read(s->io.fd, p, room)
                             : recv(s->io.fd, p, room, 0);
    if (r > 0) {
      s->rbuf.len += (size_t)r;
      if ((size_t)r < room && !(s->flags & AL_S_POLL))
        s->flags |= AL_S_DRAINED;
      return (long)r;
    }
    if (r == 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return AL_EAGAIN;
    return -errno;
  }
}

/* Ciphertext from the socket into the TLS filter: > 0 fed, 0 the end
 * (fed as such), AL_EAGAIN nothing there, or the error. *short_read says
 * the socket was emptied. */
static long tls_recv(al_stream_t *s, bool *short_read) {
  char buf[65536];
  for (;;) {
    ssize_t r = recv(s->io.fd, buf, sizeof buf, 0);
    if (r >= 0) {
      al_tls_feed(s->tls, buf, (size_t)r);
      *short_read = (size_t)r < sizeof buf;
      return (long)r;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return AL_EAGAIN;
    return -errno;
  }
}

/* The input seam with TLS: decrypt what the filter holds into the read
 * buffer, receiving ciphertext only when it holds no whole record. The
 * filter is emptied before this says AL_EAGAIN, so a wait on the socket
 * never hangs with plaintext inside it; what decrypting wants to send (a
 * key update, an alert) goes out at once. */
static long tls_input(al_stream_t *s, size_t want) {
  size_t room = want < AL_READ_CHUNK ? AL_READ_CHUNK
                : want > AL_READ_MAX ? AL_READ_MAX
                                     : want;
  long total = 0;
  bool short_read = false, at_end = false;
  for (;;) {
    char *p = al_buf_reserve(&s->rbuf, room);
    long r = al_tls_read(s->tls, p, room);
    if (al_tls_pending(s->tls) > 0)
      tls_out(s);
    if (r > 0) {
      s->rbuf.len += (size_t)r;
      total += r;
      if (total >= AL_READ_MAX)
        return total;
      continue;
    }
    if (r != AL_EAGAIN || at_end) /* the end, or an error: said next time */
      return total > 0 ? total : r == AL_EAGAIN ? AL_ETLS_EOF : r;
    if (total > 0) {
      if (short_read)
        s->flags |= AL_S_DRAINED;
      return total;
    }
    r = tls_recv(s, &short_read);
    if (r == 0)
      at_end = true;
    else if (r < 0)
      return r;
  }
}

long al_stream_fill(al_stream_t *s, size_t want) {
  long r;
  if (s->rerr)
    return s->rerr;
  if (s->flags & AL_S_EOF)
    return 0;
  if ((s->flags & AL_S_DRAINED) && want > 0) {
    s->flags &= ~(unsigned)AL_S_DRAINED;
    return AL_EAGAIN;
  }
  s->flags &= ~(unsigned)AL_S_DRAINED;
  r = s->tls ? tls_input(s, want) : stream_input(s, want);
  if (r == 0)
    s->flags |= AL_S_EOF;
  else if (r < 0 && r != AL_EAGAIN)
    s->rerr = (int)r;
  return r;
}

/* Plaintext through the TLS filter, a record at a time, each sent as it
 * comes. */
static void tls_write(al_stream_t *s, const char *p, size_t n) {
  while (n > 0 && !s->werr) {
    size_t k = n < 16384 ? n : 16384;
    int r = al_tls_write(s->tls, p, k);
    tls_out(s);
    if (r < 0) {
      write_failed(s, r);
      break;
    }
    p += k;
    n -= k;
  }
}

int al_stream_write(al_stream_t *s, const char *p, size_t n) {
  if (s->flags & (AL_S_CLOSED | AL_S_CLOSE_WANT | AL_S_SHUT_WANT |
                  AL_S_SHUT_DONE))
    return AL_EPIPE;
  if (s->werr || n == 0)
    return 0;
  if (s->tls) {
    if (in_handshake(s))
      al_buf_append(&s->tlsq, p, n); /* sent when the handshake is done */
    else
      tls_write(s, p, n);
    return 0;
  }
  if (s->wbuf.len == 0) { /* nothing queued: straight to the socket */
    long r = stream_output(s, p, n);
    if (r < 0) {
      write_failed(s, (int)r);
      return 0;
    }
    p += r;
    n -= (size_t)r;
    if (n == 0)
      return 0;
  }
  al_buf_append(&s->wbuf, p, n);
  al_io_want(&s->io, EV_WRITE, true);
  return 0;
}

bool al_stream_must_drain(const al_stream_t *s) {
  return al_stream_buffered(s) > s->high && !s->werr &&
         !(s->flags & AL_S_CLOSED);
}

void al_stream_set_limits(al_stream_t *s, size_t high, size_t low) {
  s->high = high;
  s->low = low;
  if (s->wbuf.len <= s->low)
    wake_list(&s->drainers, 0);
}

static void unwait_list(al_task_t *t) { al_waiter_remove(&t->waiter); }

static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

void al_stream_drain_wait(al_stream_t *s, al_task_t *t) {
  t->waiter.cb = never_called;
  al_wlist_append(&s->drainers, &t->waiter);
  al_task_park(t, unwait_list); /* backed by the write watcher */
}

void al_stream_wait_closed(al_stream_t *s, al_task_t *t) {
  t->waiter.cb = never_called;
  al_wlist_append(&s->closers, &t->waiter);
  al_task_park(t, unwait_list);
  if ((s->flags & AL_S_CLOSED) && t->wait == AL_WAIT_HOOK) {
    al_waiter_remove(&t->waiter);
    al_task_wake(t, 0);
  }
}

/* Shut the write side: the close_notify first, then the socket once the
 * write buffer is empty. */
static int shut_write(al_stream_t *s) {
  if (s->tls && !s->werr && al_tls_shutdown(s->tls)) /* close_notify first */
    tls_out(s);
  if (s->wbuf.len == 0 && !s->werr && (s->flags & AL_S_PIPE)) {
    s->flags |= AL_S_SHUT_DONE;
    do_close(s);
    return 0;
  }
  if (s->wbuf.len == 0 && !s->werr) {
    s->flags |= AL_S_SHUT_DONE;
    if (shutdown(s->io.fd, SHUT_WR) != 0)
      return -errno;
  }
  return 0;
}

int al_stream_write_eof(al_stream_t *s) {
  if (s->flags & (AL_S_CLOSED | AL_S_CLOSE_WANT))
    return AL_EPIPE;
  if (s->flags & (AL_S_SHUT_WANT | AL_S_SHUT_DONE))
    return 0;
  s->flags |= AL_S_SHUT_WANT;
  if (in_handshake(s))
    return 0; /* after the handshake and what was written during it */
  return shut_write(s);
}

void al_stream_close(al_stream_t *s) {
  if (s->flags & (AL_S_CLOSED | AL_S_CLOSE_WANT))
    return;
  s->flags |= AL_S_EOF;
  if (s->tls && !s->werr && !(s->flags & (AL_S_SHUT_WANT | AL_S_SHUT_DONE)) &&
      al_tls_shutdown(s->tls)) /* close_notify, then the flush and close */
    tls_out(s);
  if (s->flags & AL_S_CLOSED) /* the close_notify could not be sent */
    return;
  if (s->wbuf.len > 0 && !s->werr) {
    /* keep flushing; readers are done (they see the end of stream) */
    s->flags |= AL_S_CLOSE_WANT;
    al_io_want(&s->io, EV_READ, false);
    al_io_wake(&s->io, EV_READ, AL_WAKE_CLOSED);
    return;
  }
  do_close(s);
}

void al_stream_abort(al_stream_t *s) {
  s->wbuf.off = s->wbuf.len = 0;
  s->tlsq.off = s->tlsq.len = 0;
  do_close(s);
}

void al_stream_reset(al_stream_t *s) {
  if (s->io.fd >= 0 && !(s->flags & AL_S_PIPE)) {
    struct linger lg = {1, 0};
    setsockopt(s->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  al_stream_abort(s);
}

void al_stream_destroy(al_stream_t *s, bool loop_alive) {
  if (loop_alive) {
    s->notify = NULL;
    al_stream_abort(s);
  } else if (s->io.fd >= 0) { /* the loop and its watchers are gone */
    close(s->io.fd);
    s->io.fd = -1;
  }
  al_buf_free(&s->rbuf);
  al_buf_free(&s->wbuf);
  al_buf_free(&s->tlsq);
  al_tls_free(s->tls);
  s->tls = NULL;
}

/* ---- TLS ---------------------------------------------------------------- */

void al_stream_tls_attach(al_stream_t *s, struct al_tls *t) {
  s->tls = t;
  s->flags &= ~(unsigned)AL_S_DRAINED;
  if (s->rbuf.len > 0) { /* bytes read ahead of the switch are ciphertext */
    al_tls_feed(t, al_buf_head(&s->rbuf), s->rbuf.len);
    al_buf_consume(&s->rbuf, s->rbuf.len);
  }
}

int al_stream_tls_handshake(al_stream_t *s) {
  bool at_end = false;
  for (;;) {
    bool short_read;
    long r;
    if (s->flags & AL_S_CLOSED)
      return AL_WAKE_CLOSED;
    r = al_tls_handshake(s->tls);
    tls_out(s);
    if (r == 0 && s->tlsq.len > 0) { /* what was written meanwhile, now */
      tls_write(s, al_buf_head(&s->tlsq), s->tlsq.len);
      al_buf_free(&s->tlsq);
      if (s->wbuf.len <= s->low)
        wake_list(&s->drainers, 0);
    }
    if (r == 0 && (s->flags & AL_S_SHUT_WANT) &&
        !(s->flags & AL_S_SHUT_DONE)) { /* a write_eof waited for it */
      int e = shut_write(s);
      if (e < 0 && !s->werr)
        s->werr = e; /* the write side's error, for drain */
    }
    if (r != AL_EAGAIN)
      return (int)r;
    if (s->werr)
      return s->werr;
    if (at_end) /* the end was fed and OpenSSL still wants more */
      return AL_ECONNRESET;
    r = tls_recv(s, &short_read);
    if (r < 0)
      return (int)r;
    at_end = r == 0;
  }
}
