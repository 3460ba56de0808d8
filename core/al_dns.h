/* al_dns.h -- name resolution that never blocks the loop (core/dns.c): c-ares
 * channels driven by the loop's own libev watchers and its timer heap, and
 * lookup requests a task parks on. Numeric hosts, localhost and .invalid
 * are answered without asking a resolver (RFC 6761). Lua-free. */
#ifndef AL_DNS_H
#define AL_DNS_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "al.h"

typedef struct al_dns al_dns_t;
typedef struct al_dns_chan al_dns_chan_t;
typedef struct al_dns_req al_dns_req_t;

/* A loop's resolvers: a c-ares channel per nameserver configuration, each
 * created on first use and kept until al_dns_close. */
al_dns_t *al_dns_new(al_loop_t *loop);
/* Destroy every channel and every request, whoever holds it (the loop is
 * closing): parked tasks are unlinked, never woken. Before al_loop_close. */
void al_dns_close(al_dns_t *dns);

typedef union al_sockaddr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} al_sockaddr_t;

typedef struct al_dns_opts {
  int family;          /* AF_UNSPEC, AF_INET or AF_INET6 */
  int socktype;        /* 0, SOCK_STREAM or SOCK_DGRAM (for service names) */
  const char *servers; /* "ip,ip:port,[ip6]:port" (c-ares' csv), or NULL:
                        * $ALOOP_NAMESERVERS, else /etc/resolv.conf */
  double timeout;      /* seconds for the whole lookup; <= 0: c-ares' own */
} al_dns_opts_t;

/* Statuses are c-ares' (ARES_SUCCESS == 0, ARES_ENOTFOUND ...). */
struct al_dns_req {
  al_sockaddr_t *addrs; /* read-only: the answer, when done with status 0 */
  size_t naddrs;        /* read-only */
  int status;           /* read-only: when done */
  bool done;            /* read-only: status (and addrs) are final */
  /* private */
  bool inflight;  /* c-ares holds it until its callback */
  bool held;      /* the owner holds it until al_dns_release */
  bool detached;  /* nobody wants the answer any more */
  al_link_t link; /* in dns->reqs while allocated */
  al_dns_t *dns;
  al_dns_chan_t *chan; /* the channel asked, or NULL */
  al_wlist_t waiters;  /* the parked task, through t->waiter */
  al_timer_t deadline; /* opts.timeout */
  al_handle_t expire;
  unsigned short port; /* network order, for each answer */
};

/* Start a lookup of host (and service: NULL, a number or a name from
 * /etc/services) and return its request, which the caller holds until it
 * calls al_dns_release. The request may be done at once (numeric hosts,
 * localhost, .invalid, /etc/hosts, bad arguments). */
al_dns_req_t *al_dns_getaddrinfo(al_dns_t *dns, const char *host,
                                 const char *service, const al_dns_opts_t *o);
/* Park the running task until the request is done (it must not be). A
 * cancel detaches the request: the task wakes at once, and the answer, if
 * one comes, is dropped. */
void al_dns_park(al_dns_req_t *r, al_task_t *t);
/* Let go of a request (after reading its answer, or to abandon it). Its
 * memory is freed once c-ares lets go too. */
void al_dns_release(al_dns_req_t *r);

/* "ENOTFOUND" for ARES_ENOTFOUND (c-ares' name without its prefix, as
 * Node's dns module names them); "EUNKNOWN" for a status it does not know. */
const char *al_dns_status_name(int status);
/* c-ares' message for a status ("Domain name not found"). */
const char *al_dns_strerror(int status);

typedef struct al_dns_stats {
  size_t channels, sockets, requests, inflight;
} al_dns_stats_t;
void al_dns_get_stats(const al_dns_t *dns, al_dns_stats_t *st);

#endif
