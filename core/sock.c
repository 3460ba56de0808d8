/* sock.c -- sockets for streams and servers: numeric addresses (v4, v6,
 * Unix), nonblocking close-on-exec sockets that connect, listen and accept.
 * Names are not resolved here: the bindings hand in numeric hosts. */
#define _GNU_SOURCE /* accept4, SOCK_NONBLOCK, SOCK_CLOEXEC */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "al_io.h"

int al_addr_parse(al_addr_t *a, const char *host, int port, int family) {
  memset(a, 0, sizeof *a);
  if (port < 0 || port > 65535)
    return AL_EINVAL;
  if (family != AF_INET6) {
    struct sockaddr_in *in = (struct sockaddr_in *)&a->u.ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      in->sin_port = htons((unsigned short)port);
      a->len = sizeof *in;
      return 0;
    }
  }
  if (family != AF_INET) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->u.ss;
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *pct = strchr(host, '%');
    size_t n = pct ? (size_t)(pct - host) : strlen(host);
    if (n >= INET6_ADDRSTRLEN)
      return AL_EINVAL;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons((unsigned short)port);
      if (pct) { /* a zone: fe80::1%eth0 or fe80::1%2 */
        char *end;
        unsigned long id = strtoul(pct + 1, &end, 10);
        if (*end != '\0' || end == pct + 1)
          id = if_nametoindex(pct + 1);
        if (id == 0)
          return AL_EINVAL;
        in6->sin6_scope_id = (uint32_t)id;
      }
      a->len = sizeof *in6;
      return 0;
    }
  }
  return AL_EINVAL;
}

int al_addr_unix(al_addr_t *a, const char *path) {
  struct sockaddr_un *un = (struct sockaddr_un *)&a->u.ss;
  size_t n = strlen(path);
  memset(a, 0, sizeof *a);
  if (n >= sizeof un->sun_path)
    return AL_ENAMETOOLONG;
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, n + 1);
  a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

int al_addr_family(const al_addr_t *a) { return a->u.sa.sa_family; }

int al_addr_format(const al_addr_t *a, char *host, size_t hostlen) {
  host[0] = '\0';
  switch (a->u.sa.sa_family) {
  case AF_INET: {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&a->u.ss;
    inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostlen);
    return ntohs(in->sin_port);
  }
  case AF_INET6: {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->u.ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostlen);
    return ntohs(in6->sin6_port);
  }
  case AF_UNIX: {
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->u.ss;
    size_t max = a->len > offsetof(struct sockaddr_un, sun_path)
                     ? a->len - offsetof(struct sockaddr_un, sun_path)
                     : 0;
    size_t n = strnlen(un->sun_path, max < sizeof un->sun_path ? max : sizeof un->sun_path);
    if (n >= hostlen)
      n = hostlen - 1;
    memcpy(host, un->sun_path, n);
    host[n] = '\0';
    return 0;
  }
  default:
    return 0;
  }
}

static int new_socket(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

/* A set-up step failed: the error it left in errno, the socket closed. */
static int close_failed(int fd) {
  int err = -errno;
  close(fd);
  return err;
}

int al_sock_connect(const al_addr_t *a, const al_addr_t *local,
                    bool *in_progress) {
  int fd = new_socket(a->u.sa.sa_family);
  *in_progress = false;
  if (fd < 0)
    return fd;
  if (local && bind(fd, &local->u.sa, local->len) != 0)
    return close_failed(fd);
  while (connect(fd, &a->u.sa, a->len) != 0) {
    if (errno == EINTR)
      continue;
    if (errno == EINPROGRESS || (errno == EAGAIN && a->u.sa.sa_family == AF_UNIX)) {
      *in_progress = true;
      break;
    }
    return close_failed(fd);
  }
  return fd;
}

int al_sock_connected(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return -errno;
  return -err;
}

int al_sock_listen(const al_addr_t *a, int backlog, unsigned flags) {
  int fd = new_socket(a->u.sa.sa_family), one = 1;
  if (fd < 0)
    return fd;
  if ((a->u.sa.sa_family != AF_UNIX &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
      ((flags & AL_L_REUSEPORT) &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      ((flags & AL_L_V6ONLY) && a->u.sa.sa_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
      bind(fd, &a->u.sa, a->len) != 0 || listen(fd, backlog) != 0)
    return close_failed(fd);
  return fd;
}

int al_sock_accept(int fd) {
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0)
      return c;
    switch (errno) {
    case EINTR:
    case ECONNABORTED: /* that one went away already: take the next */
      continue;
    case EWOULDBLOCK:
      return AL_EAGAIN;
    default:
      return -errno;
    }
  }
}

int al_sock_nodelay(int fd, bool on) {
  int v = on;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0 ? -errno : 0;
}

int al_sock_name(int fd, al_addr_t *a, bool peer) {
  int r;
  memset(a, 0, sizeof *a);
  a->len = sizeof a->u.ss;
  r = peer ? getpeername(fd, &a->u.sa, &a->len) : getsockname(fd, &a->u.sa, &a->len);
  return r != 0 ? -errno : 0;
}
