/* echo_floor.c -- the floor for bench/echo.* and bench/bulk.*: the same work
 * done by a plain single-threaded C program on epoll (level-triggered,
 * nonblocking sockets, no buffering layer, no runtime), so the report can say
 * what share of it aloop reaches.
 *   echo_floor echo [clients [rounds]]   100 clients x 2 000 round trips of
 *                                        64 bytes against an echo server
 *   echo_floor bulk [bytes]              1 GiB through one connection
 * Prints one RESULT line, as the Lua and Python sides do. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SIZE 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* A connected pair over 127.0.0.1: *client and *server, both nonblocking. */
static int listener(struct sockaddr_in *a) {
  socklen_t len = sizeof *a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || bind(l, (struct sockaddr *)a, sizeof *a) != 0 || listen(l, 1024) != 0 ||
      getsockname(l, (struct sockaddr *)a, &len) != 0)
    die("listen");
  return l;
}

static void pair(int l, const struct sockaddr_in *a, int *client, int *server) {
  int one = 1;
  *client = socket(AF_INET, SOCK_STREAM, 0);
  if (*client < 0 || connect(*client, (const struct sockaddr *)a, sizeof *a) != 0)
    die("connect");
  *server = accept4(l, NULL, NULL, SOCK_NONBLOCK);
  if (*server < 0)
    die("accept");
  setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fcntl(*client, F_SETFL, fcntl(*client, F_GETFL) | O_NONBLOCK) != 0)
    die("fcntl");
}

typedef struct conn {
  int fd, is_client, got, rounds;
} conn;

static int echo(int clients, int rounds) {
  struct sockaddr_in a;
  int l = listener(&a), ep = epoll_create1(0), i, done = 0;
  conn *cs = calloc((size_t)clients * 2, sizeof *cs);
  char msg[SIZE], buf[65536];
  struct epoll_event evs[256];
  double t0, dt;
  memset(msg, 'x', sizeof msg);
  for (i = 0; i < clients; i++) {
    conn *c = &cs[2 * i], *s = &cs[2 * i + 1];
    struct epoll_event ev = {.events = EPOLLIN};
    pair(l, &a, &c->fd, &s->fd);
    c->is_client = 1;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    ev.data.ptr = s;
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
  }
  t0 = now();
  for (i = 0; i < clients; i++)
    if (write(cs[2 * i].fd, msg, SIZE) != SIZE)
      die("write");
  while (done < clients) {
    int n = epoll_wait(ep, evs, 256, -1), k;
    for (k = 0; k < n; k++) {
      conn *c = evs[k].data.ptr;
      ssize_t r;
      if (!c->is_client) {
        r = read(c->fd, buf, sizeof buf);
        if (r > 0 && write(c->fd, buf, (size_t)r) != r)
          die("echo write");
        continue;
      }
      r = read(c->fd, buf, (size_t)(SIZE - c->got));
      if (r <= 0)
        continue;
      c->got += (int)r;
      if (c->got < SIZE)
        continue;
      c->got = 0;
      if (++c->rounds < rounds) {
        if (write(c->fd, msg, SIZE) != SIZE)
          die("write");
      } else {
        done++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      }
    }
  }
  dt = now() - t0;
  printf("RESULT seconds=%.6f round_trips=%d rtps=%.0f\n", dt, clients * rounds,
         clients * rounds / dt);
  return 0;
}

static int bulk(long long total) {
  struct sockaddr_in a;
  int l = listener(&a), ep = epoll_create1(0), c, s, sending = 1;
  long long sent = 0, received = 0;
  static char chunk[256 * 1024], buf[1024 * 1024];
  struct epoll_event ev, evs[4];
  double t0, dt;
  memset(chunk, 'x', sizeof chunk);
  pair(l, &a, &c, &s);
  ev.events = EPOLLOUT;
  ev.data.fd = c;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  ev.events = EPOLLIN;
  ev.data.fd = s;
  epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
  t0 = now();
  for (;;) {
    int n = epoll_wait(ep, evs, 4, -1), k, eof = 0;
    for (k = 0; k < n; k++) {
      if (evs[k].data.fd == c && sending) {
        long long left = total - sent;
        ssize_t r = write(c, chunk, (size_t)(left < (long long)sizeof chunk ? left : (long long)sizeof chunk));
        if (r > 0)
          sent += r;
        if (sent == total) {
          sending = 0;
          shutdown(c, SHUT_WR);
          epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL);
        }
      } else if (evs[k].data.fd == s) {
        ssize_t r;
        while ((r = read(s, buf, sizeof buf)) > 0)
          received += r;
        if (r == 0)
          eof = 1;
      }
    }
    if (eof)
      break;
  }
  dt = now() - t0;
  if (received != total) {
    fprintf(stderr, "received %lld of %lld\n", received, total);
    return 1;
  }
  printf("RESULT seconds=%.6f bytes=%lld mbps=%.1f\n", dt, total, (double)total / dt / 1e6);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "echo";
  if (strcmp(mode, "bulk") == 0)
    return bulk(argc > 2 ? atoll(argv[2]) : 1024LL * 1024 * 1024);
  return echo(argc > 2 ? atoi(argv[2]) : 100, argc > 3 ? atoi(argv[3]) : 2000);
}
