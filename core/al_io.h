/* al_io.h -- the I/O core: descriptors watched per direction with tasks
 * parked on them (io.c), buffered byte streams (stream.c) and sockets
 * (sock.c). Plain C on libev and al.h, like the rest of the core: no Lua.
 * Records are embedded in storage the caller owns; only byte buffers are
 * allocated. Calls that can fail return 0 (or a count) or a negative AL_E*
 * code. */
#ifndef AL_IO_H
#define AL_IO_H

#include <sys/socket.h>

#include "al.h"

typedef struct al_io al_io_t;
typedef struct al_buf al_buf_t;
typedef struct al_stream al_stream_t;

/* ---- io.c: a descriptor and the tasks waiting on it ---------------------- */

/* The wake status of a task whose descriptor was closed under it. */
#define AL_WAKE_CLOSED AL_EBADF

/* Called from the libev callback when the descriptor is ready in a direction
 * its owner wants (al_io_want); it must not run Lua. */
typedef void (*al_io_cb)(al_io_t *io, int revents);

struct al_io {
  al_loop_t *loop; /* read-only */
  int fd;          /* read-only: -1 once closed */
  ev_io rw, ww;    /* private: one watcher per direction */
  al_wlist_t readers, writers; /* private: parked tasks, through t->waiter */
  al_io_cb on_ready;           /* public: the owner's callback */
  unsigned char want;          /* private: EV_READ|EV_WRITE the owner wants */
};

/* A watched descriptor (fd >= 0, nonblocking); nothing is started. */
void al_io_init(al_io_t *io, al_loop_t *loop, int fd);
/* Park the running task t until the descriptor is ready for `events`
 * (EV_READ or EV_WRITE): t is woken with status 0 when it may be, and with
 * AL_WAKE_CLOSED when the descriptor is closed first. Its watcher runs only
 * while someone waits, so a readable descriptor nobody reads does not spin
 * the loop; a cancel unlinks t and stops the watcher if it was the last. */
void al_io_wait(al_io_t *io, al_task_t *t, int events);
/* The owner's own interest in a direction: on_ready is called while the
 * descriptor is ready in it (the stream flushing its write buffer). */
void al_io_want(al_io_t *io, int events, bool on);
/* Wake the tasks parked in a direction (EV_READ, EV_WRITE or both) with
 * `status`. */
void al_io_wake(al_io_t *io, int events, int status);
/* Stop both watchers and wake every parked task with `status`; the
 * descriptor stays open. */
void al_io_stop(al_io_t *io, int status);
/* al_io_stop(AL_WAKE_CLOSED), then close the descriptor (once). */
void al_io_close(al_io_t *io);
/* The watchers of the loop that are running now (both directions count). */
static inline size_t al_io_active_count(const al_loop_t *loop) {
  return loop->nio;
}

/* ---- stream.c: a buffered byte stream over a socket ----------------------- */

/* A byte buffer: data[off .. off+len) is held, cap allocated. */
struct al_buf {
  char *data;
  size_t off, len, cap;
};

void al_buf_free(al_buf_t *b);
/* Room for n more bytes after the held ones; returns where they go. Out of
 * memory is fatal. */
char *al_buf_reserve(al_buf_t *b, size_t n);
void al_buf_append(al_buf_t *b, const char *p, size_t n);
void al_buf_consume(al_buf_t *b, size_t n);
static inline const char *al_buf_head(const al_buf_t *b) {
  return b->data + b->off;
}

/* The stream moves bytes between a socket and two buffers: the read buffer
 * is filled when its reader asks (al_stream_fill: a pull, so a reader that
 * is cancelled leaves what arrived in the buffer), the write buffer is
 * flushed by the write watcher in C, so writing never waits. The two seams
 * where a filter (TLS through memory BIOs) will sit are stream_input and
 * stream_output in stream.c: socket bytes in, buffer bytes out. */
enum al_stream_flag {
  AL_S_EOF = 1,        /* the peer will send nothing more (or we closed) */
  AL_S_SHUT_WANT = 2,  /* write_eof: shut down writing once flushed */
  AL_S_SHUT_DONE = 4,  /* writing is shut down */
  AL_S_CLOSE_WANT = 8, /* close: close once flushed */
  AL_S_CLOSED = 16,    /* the descriptor is closed */
  AL_S_DRAINED = 32,   /* the last receive emptied the socket */
  /* set by the owner after al_stream_init: */
  AL_S_PIPE = 64,  /* not a socket: read/write (a pipe, a terminal, a file);
                      write_eof closes the descriptor */
  AL_S_POLL = 128  /* a blocking descriptor (stdin, left as it is): read
                      only when poll says it is ready */
};

struct al_stream {
  al_io_t io;              /* read-only (first) */
  al_buf_t rbuf;           /* public: bytes received, not yet read */
  al_buf_t wbuf;           /* read-only: bytes written, not yet sent */
  al_wlist_t drainers;     /* private: tasks in drain() */
  al_wlist_t closers;      /* private: tasks in wait_closed() */
  size_t high, low;        /* public: write buffer marks (64 KiB, 16 KiB) */
  int rerr, werr;          /* read-only: the first error of each side */
  unsigned flags;          /* read-only: enum al_stream_flag */
  /* public: posted when the write side goes idle or the stream closes (its
   * owner may let go of it then); may be NULL. */
  al_handle_t *notify;
  struct al_tls *tls;      /* read-only: the TLS filter, if any (al_tls.h) */
  al_buf_t tlsq;           /* private: written during the TLS handshake, to
                            * be encrypted once it is done */
};

void al_stream_init(al_stream_t *s, al_loop_t *loop, int fd);
/* Bytes written and not yet sent, those waiting for a TLS handshake too. */
static inline size_t al_stream_buffered(const al_stream_t *s) {
  return s->wbuf.len + s->tlsq.len;
}
/* Receive into the read buffer, asking for `want` bytes or more. Returns
 * how many arrived (> 0), 0 at end of stream (AL_S_EOF is set), AL_EAGAIN
 * when nothing is there yet (wait with al_io_wait(.., EV_READ)), or the
 * error, which is kept in rerr and returned again by later calls. When the
 * last receive emptied the socket, the next call says AL_EAGAIN without
 * asking it again (the wait, level-triggered, returns at once if bytes came
 * meanwhile): a reader that waits saves a system call each time. `want` 0
 * always asks. */
long al_stream_fill(al_stream_t *s, size_t want);
/* Queue bytes: sent at once as far as the socket takes them, the rest by
 * the write watcher; during a TLS handshake they wait, in order, for its
 * end (a failed handshake drops them with the connection). Returns AL_EPIPE
 * after write_eof or close; after a connection error the bytes are dropped
 * (werr tells, drain raises). */
int al_stream_write(al_stream_t *s, const char *p, size_t n);
/* Whether a drain must wait: the buffer is above the high-water mark. */
bool al_stream_must_drain(const al_stream_t *s);
/* Set the marks (low <= high); drainers are woken if the buffer is at the
 * new low mark already. */
void al_stream_set_limits(al_stream_t *s, size_t high, size_t low);
/* Park t until the write buffer is at the low-water mark or below, or the
 * connection is lost (woken with werr). */
void al_stream_drain_wait(al_stream_t *s, al_task_t *t);
/* Shut down the writing side once the buffer is flushed (on TLS: a
 * close_notify first; during a handshake, after it and what waited for
 * it). AL_EPIPE after close; 0 when done or under way. */
int al_stream_write_eof(al_stream_t *s);
/* Close: at once when nothing is left to send (or the connection is lost),
 * else once the buffer is flushed. Readers see the end of stream. */
void al_stream_close(al_stream_t *s);
/* Close now, dropping what was not sent. */
void al_stream_abort(al_stream_t *s);
/* Close now with a reset (SO_LINGER 0: the peer gets an RST, not a FIN),
 * dropping what was not sent. */
void al_stream_reset(al_stream_t *s);
/* Park t until the descriptor is closed. */
void al_stream_wait_closed(al_stream_t *s, al_task_t *t);
/* Close now and free the buffers; for __gc. When the loop is gone already
 * (`loop_alive` false) no watcher is touched. */
void al_stream_destroy(al_stream_t *s, bool loop_alive);
/* Put a TLS filter (al_tls.h, owned by the stream from now on) between the
 * socket and the buffers: bytes already read ahead are fed to it as
 * ciphertext; plaintext still queued to send goes first, in the clear. */
void al_stream_tls_attach(al_stream_t *s, struct al_tls *t);
/* Advance the handshake: 0 done, AL_EAGAIN (wait with al_io_wait(..,
 * EV_READ)), AL_ETLS (al_tls_errmsg), or the connection's error. */
int al_stream_tls_handshake(al_stream_t *s);

/* ---- sock.c: sockets ------------------------------------------------------ */

/* An address of any family we speak (TCP over v4 or v6, Unix). */
typedef struct al_addr {
  union {
    struct sockaddr sa;
    struct sockaddr_storage ss;
  } u;
  socklen_t len;
} al_addr_t;

/* Parse a numeric host ("127.0.0.1", "::1", "fe80::1%lo") and a port into
 * an address; AL_EINVAL when host is not numeric. `family` AF_UNSPEC, or
 * AF_INET / AF_INET6 to accept only that one. */
int al_addr_parse(al_addr_t *a, const char *host, int port, int family);
/* A Unix socket address; AL_ENAMETOOLONG when the path does not fit. */
int al_addr_unix(al_addr_t *a, const char *path);
/* Write the numeric host (at least 108 bytes; the path for Unix) and
 * return the port (0 for Unix). */
int al_addr_format(const al_addr_t *a, char *host, size_t hostlen);
int al_addr_family(const al_addr_t *a);

/* A nonblocking, close-on-exec socket of the address's family, bound to
 * `local` if not NULL, connecting to `a`. Returns the descriptor, which may
 * still be connecting (*in_progress set: wait for EV_WRITE, then
 * al_sock_connected), or the error. */
int al_sock_connect(const al_addr_t *a, const al_addr_t *local,
                    bool *in_progress);
/* The outcome of a connect that was in progress (SO_ERROR). */
int al_sock_connected(int fd);
enum al_listen_flag {
  AL_L_REUSEPORT = 1, /* SO_REUSEPORT */
  AL_L_V6ONLY = 2     /* IPV6_V6ONLY (listening on v4 and v6 alike) */
};
/* A nonblocking, close-on-exec listening socket (SO_REUSEADDR for TCP);
 * returns the descriptor or the error. */
int al_sock_listen(const al_addr_t *a, int backlog, unsigned flags);
/* Accept one connection: nonblocking, close-on-exec. The descriptor,
 * AL_EAGAIN when none is waiting, or the error (AL_EMFILE ...). */
int al_sock_accept(int fd);
int al_sock_nodelay(int fd, bool on);
int al_sock_name(int fd, al_addr_t *a, bool peer);

#endif
