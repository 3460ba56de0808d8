/* dns.c -- name resolution on the loop: one c-ares channel per nameserver
 * configuration, driven by libev watchers c-ares asks for (sock_state_cb)
 * and one timer in the loop's heap re-armed from ares_timeout. c-ares is
 * only ever called from the loop's callbacks and the owner's calls, never
 * from inside its own callbacks, which just record answers and wake tasks.
 *
 * A request has two holders: c-ares, until its callback, and the owner,
 * until al_dns_release. c-ares 1.18 cannot cancel one query, so a cancelled
 * task detaches its request: the answer is dropped when it comes, and the
 * record is freed when both holders let go. When no query of a channel is
 * wanted any more, the channel's queries are cancelled as a whole. */
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h> /* fd_set and struct timeval, which ares.h uses */
#include <sys/time.h>

#include <ares.h>

#include "al_dns.h"
#include "al_int.h"

struct al_dns {
  al_loop_t *loop;
  al_link_t chans; /* channels, each with its own configuration */
  al_link_t reqs;  /* every request not yet freed */
  size_t nreqs;
};

struct al_dns_chan {
  al_link_t link;
  al_dns_t *dns;
  ares_channel ch;
  char *servers;   /* its configuration; NULL: the system's */
  al_link_t socks; /* the sockets c-ares asked us to watch */
  size_t nsocks;
  size_t ninflight; /* requests c-ares holds */
  size_t nwanted;   /* of those, the ones not done nor detached */
  al_timer_t tm;    /* ares_timeout, in the loop's heap */
  al_handle_t kick; /* runs c-ares' timeouts from the ready queue */
};

typedef struct dns_sock {
  al_link_t link;
  ev_io w;
  al_dns_chan_t *chan;
} dns_sock;

/* ---- status names ------------------------------------------------------ */

static const char *const status_names[] = {
    "SUCCESS",         "ENODATA",       "EFORMERR",
    "ESERVFAIL",       "ENOTFOUND",     "ENOTIMP",
    "EREFUSED",        "EBADQUERY",     "EBADNAME",
    "EBADFAMILY",      "EBADRESP",      "ECONNREFUSED",
    "ETIMEOUT",        "EOF",           "EFILE",
    "ENOMEM",          "EDESTRUCTION",  "EBADSTR",
    "EBADFLAGS",       "ENONAME",       "EBADHINTS",
    "ENOTINITIALIZED", "ELOADIPHLPAPI", "EADDRGETNETWORKPARAMS",
    "ECANCELLED",      "ESERVICE"};

const char *al_dns_status_name(int status) {
  if (status < 0 ||
      (size_t)status >= sizeof status_names / sizeof *status_names)
    return "EUNKNOWN";
  return status_names[status];
}

const char *al_dns_strerror(int status) {
  if (status == ARES_ESERVICE) /* newer than 1.18's table of messages */
    return "Service name not recognized";
  return ares_strerror(status);
}

/* ---- the channel's sockets and timer ---------------------------------- */

static void rearm(al_dns_chan_t *c);

static void sock_ready(struct ev_loop *ev, ev_io *w, int revents) {
  al_dns_chan_t *c = al_container_of(w, dns_sock, w)->chan;
  ares_socket_t fd = w->fd;
  (void)ev;
  ares_process_fd(c->ch, revents & EV_READ ? fd : ARES_SOCKET_BAD,
                  revents & EV_WRITE ? fd : ARES_SOCKET_BAD);
  rearm(c); /* the watcher itself may be gone: c-ares closed its socket */
}

/* c-ares' sock_state_cb: start, change or (0, 0) forget watching fd. The
 * watcher is stopped before its record is freed and before c-ares closes
 * the fd. */
static void sock_state(void *data, ares_socket_t fd, int readable,
                       int writable) {
  al_dns_chan_t *c = data;
  struct ev_loop *ev = c->dns->loop->ev;
  int events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
  dns_sock *s = NULL;
  al_link_t *l;
  for (l = c->socks.next; l != &c->socks; l = l->next) {
    if (al_container_of(l, dns_sock, link)->w.fd == fd) {
      s = al_container_of(l, dns_sock, link);
      break;
    }
  }
  if (!events) {
    if (s) {
      ev_io_stop(ev, &s->w);
      al_list_remove(&s->link);
      c->nsocks--;
      free(s);
    }
    return;
  }
  if (!s) {
    s = al__xmalloc(sizeof *s);
    s->chan = c;
    ev_init(&s->w, sock_ready);
    al_list_append(&c->socks, &s->link);
    c->nsocks++;
  } else {
    ev_io_stop(ev, &s->w);
  }
  ev_io_set(&s->w, fd, events);
  ev_io_start(ev, &s->w);
}

/* After every call into c-ares: its next timeout, in the heap while any
 * query is pending (so a parked task is always backed by a watcher or the
 * timer); a timeout already due runs from the ready queue. */
static void rearm(al_dns_chan_t *c) {
  al_loop_t *loop = c->dns->loop;
  struct timeval tv, *tvp = ares_timeout(c->ch, NULL, &tv);
  al_timer_remove(loop, &c->tm);
  if (!tvp)
    return;
  if (tvp->tv_sec <= 0 && tvp->tv_usec <= 0)
    al_loop_post(loop, &c->kick);
  else
    al_timer_add(loop, &c->tm,
                 al_time() + (double)tvp->tv_sec + (double)tvp->tv_usec / 1e6);
}

/* The timer's handle: run c-ares' timeouts. Queries that nobody wants
 * any more are cancelled first (ares_cancel ends every query of the
 * channel, which is why it waits until none is wanted). */
static void kick(al_handle_t *h) {
  al_dns_chan_t *c = al_container_of(h, al_dns_chan_t, kick);
  if (c->ninflight > 0 && c->nwanted == 0)
    ares_cancel(c->ch);
  ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  rearm(c);
}

static void maybe_sweep(al_dns_chan_t *c) {
  if (c && c->ninflight > 0 && c->nwanted == 0)
    al_loop_post(c->dns->loop, &c->kick);
}

static al_dns_chan_t *get_chan(al_dns_t *dns, const char *servers,
                               int *status) {
  struct ares_options ao;
  char lookups[] = "fb"; /* /etc/hosts first, then DNS */
  al_dns_chan_t *c;
  al_link_t *l;
  if (!servers) {
    servers = getenv("ALOOP_NAMESERVERS");
    if (servers && !*servers)
      servers = NULL;
  }
  for (l = dns->chans.next; l != &dns->chans; l = l->next) {
    c = al_container_of(l, al_dns_chan_t, link);
    if (servers ? c->servers && strcmp(c->servers, servers) == 0 : !c->servers)
      return c;
  }
  c = al__xmalloc(sizeof *c);
  memset(c, 0, sizeof *c);
  c->dns = dns;
  al_list_init(&c->socks);
  al_handle_init(&c->kick, kick);
  al_timer_init(&c->tm, &c->kick);
  memset(&ao, 0, sizeof ao);
  ao.sock_state_cb = sock_state;
  ao.sock_state_cb_data = c;
  ao.lookups = lookups;
  ares_library_init(ARES_LIB_INIT_ALL);
  *status =
      ares_init_options(&c->ch, &ao, ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
  if (*status == ARES_SUCCESS && servers) {
    *status = ares_set_servers_ports_csv(c->ch, servers);
    if (*status != ARES_SUCCESS)
      ares_destroy(c->ch);
  }
  if (*status != ARES_SUCCESS) {
    ares_library_cleanup();
    free(c);
    return NULL;
  }
  if (servers) {
    c->servers = al__xmalloc(strlen(servers) + 1);
    strcpy(c->servers, servers);
  }
  al_list_append(&dns->chans, &c->link);
  return c;
}

static void chan_destroy(al_dns_chan_t *c) {
  al_loop_t *loop = c->dns->loop;
  al_link_t *l;
  al_timer_remove(loop, &c->tm);
  al_loop_unpost(loop, &c->kick);
  ares_destroy(c->ch); /* calls back ARES_EDESTRUCTION, closes sockets */
  while ((l = al_list_first(&c->socks)) != NULL) { /* if any were kept */
    dns_sock *s = al_container_of(l, dns_sock, link);
    ev_io_stop(loop->ev, &s->w);
    al_list_remove(l);
    free(s);
  }
  ares_library_cleanup();
  al_list_remove(&c->link);
  free(c->servers);
  free(c);
}

/* ---- requests ---------------------------------------------------------- */

static void maybe_free(al_dns_req_t *r) {
  if (r->inflight || r->held)
    return;
  al_timer_remove(r->dns->loop, &r->deadline);
  al_loop_unpost(r->dns->loop, &r->expire);
  al_list_remove(&r->link);
  r->dns->nreqs--;
  free(r->addrs);
  free(r);
}

static void add_addr(al_dns_req_t *r, int family, const void *addr,
                     uint32_t scope) {
  al_sockaddr_t *a = &r->addrs[r->naddrs++];
  memset(a, 0, sizeof *a);
  if (family == AF_INET) {
    a->in4.sin_family = AF_INET;
    a->in4.sin_port = r->port;
    memcpy(&a->in4.sin_addr, addr, sizeof a->in4.sin_addr);
  } else {
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_port = r->port;
    a->in6.sin6_scope_id = scope;
    memcpy(&a->in6.sin6_addr, addr, sizeof a->in6.sin6_addr);
  }
}

/* The request is answered (or failed, or timed out): keep the addresses
 * and wake the task parked on it. */
static void finish(al_dns_req_t *r, int status,
                   const struct ares_addrinfo *res) {
  al_waiter_t *w;
  r->done = true;
  r->status = status;
  al_timer_remove(r->dns->loop, &r->deadline);
  al_loop_unpost(r->dns->loop, &r->expire);
  if (status == ARES_SUCCESS && res) {
    const struct ares_addrinfo_node *n;
    size_t count = 0;
    for (n = res->nodes; n; n = n->ai_next)
      count++;
    r->addrs = al__xmalloc((count ? count : 1) * sizeof *r->addrs);
    for (n = res->nodes; n; n = n->ai_next) {
      if (n->ai_family == AF_INET &&
          n->ai_addrlen >= sizeof(struct sockaddr_in))
        add_addr(r, AF_INET,
                 &((struct sockaddr_in *)(void *)n->ai_addr)->sin_addr, 0);
      else if (n->ai_family == AF_INET6 &&
               n->ai_addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const void *)n->ai_addr;
        add_addr(r, AF_INET6, &s6->sin6_addr, s6->sin6_scope_id);
      }
    }
    if (r->naddrs == 0)
      r->status = ARES_ENODATA;
  }
  if ((w = al_wlist_first(&r->waiters)) != NULL) {
    al_waiter_remove(w);
    al_task_wake(al_container_of(w, al_task_t, waiter), 0);
  }
}

/* ares_getaddrinfo's callback: may run before ares_getaddrinfo returns,
 * and with ARES_EDESTRUCTION as the channel is destroyed. */
static void gai_done(void *arg, int status, int timeouts,
                     struct ares_addrinfo *res) {
  al_dns_req_t *r = arg;
  al_dns_chan_t *c = r->chan;
  (void)timeouts;
  r->inflight = false;
  c->ninflight--;
  if (!r->done && !r->detached) {
    c->nwanted--;
    if (status != ARES_EDESTRUCTION)
      finish(r, status, res);
  }
  if (res)
    ares_freeaddrinfo(res);
  maybe_free(r);
}

/* No one will read the answer: drop the deadline, and let the channel's
 * queries go if none is wanted. */
static void detach(al_dns_req_t *r) {
  al_waiter_t *w;
  while ((w = al_wlist_first(&r->waiters)) != NULL)
    al_waiter_remove(w);
  if (r->detached)
    return;
  r->detached = true;
  al_timer_remove(r->dns->loop, &r->deadline);
  al_loop_unpost(r->dns->loop, &r->expire);
  if (r->inflight && !r->done) {
    r->chan->nwanted--;
    maybe_sweep(r->chan);
  }
}

/* opts.timeout ran out: fail the request now; c-ares lets go later. */
static void expire(al_handle_t *h) {
  al_dns_req_t *r = al_container_of(h, al_dns_req_t, expire);
  if (r->done || r->detached)
    return;
  if (r->inflight)
    r->chan->nwanted--;
  finish(r, ARES_ETIMEOUT, NULL);
  maybe_sweep(r->chan);
}

/* Hook parks never call the waiter's callback: the request wakes its task. */
static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

/* The one cleanup of a park: the task leaves, the request is detached. */
static void dns_unwait(al_task_t *t) {
  al_dns_req_t *r = al_container_of(t->waiter.owner, al_dns_req_t, waiters);
  al_waiter_remove(&t->waiter);
  detach(r);
}

void al_dns_park(al_dns_req_t *r, al_task_t *t) {
  t->waiter.cb = never_called;
  al_wlist_append(&r->waiters, &t->waiter);
  al_task_park(t, dns_unwait);
}

void al_dns_release(al_dns_req_t *r) {
  detach(r);
  r->held = false;
  maybe_free(r);
}

/* ---- the lookup -------------------------------------------------------- */

static int service_port(const char *service, int socktype,
                        unsigned short *port) {
  const char *p;
  *port = 0;
  if (!service || !*service)
    return ARES_SUCCESS;
  for (p = service; *p >= '0' && *p <= '9'; p++)
    ;
  if (!*p) {
    unsigned long v = strtoul(service, NULL, 10);
    if (v > 65535 || p - service > 5)
      return ARES_ESERVICE;
    *port = htons((unsigned short)v);
    return ARES_SUCCESS;
  } else {
    struct servent *se =
        getservbyname(service, socktype == SOCK_DGRAM ? "udp" : "tcp");
    if (!se)
      return ARES_ESERVICE;
    *port = (unsigned short)se->s_port; /* network order already */
    return ARES_SUCCESS;
  }
}

/* host is `name` or under it ("a.localhost"), ignoring case and one
 * trailing dot. */
static bool is_under(const char *host, const char *name) {
  size_t n = strlen(host), k = strlen(name);
  if (n > 0 && host[n - 1] == '.')
    n--;
  if (n < k || strncasecmp(host + n - k, name, k) != 0)
    return false;
  return n == k || host[n - k - 1] == '.';
}

/* "fe80::1%eth0" or "::1": an IPv6 address with an optional zone. Returns
 * 1 when it is one, 0 when not, -1 for an address with a bad zone. */
static int parse_ip6(const char *host, struct in6_addr *a, uint32_t *scope) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  const char *pct = strchr(host, '%');
  *scope = 0;
  if (!pct)
    return inet_pton(AF_INET6, host, a) == 1;
  if ((size_t)(pct - host) >= sizeof buf || strlen(pct + 1) > IF_NAMESIZE)
    return 0;
  memcpy(buf, host, (size_t)(pct - host));
  buf[pct - host] = '\0';
  if (inet_pton(AF_INET6, buf, a) != 1)
    return 0;
  if (pct[1] >= '0' && pct[1] <= '9')
    *scope = (uint32_t)strtoul(pct + 1, NULL, 10);
  else
    *scope = if_nametoindex(pct + 1);
  return *scope ? 1 : -1;
}

/* Answers that need no resolver: numeric hosts, localhost (the loopback
 * addresses) and .invalid (never a name), as RFC 6761 asks. */
static bool answer_locally(al_dns_req_t *r, const char *host, int family) {
  static const struct in6_addr loop6 = IN6ADDR_LOOPBACK_INIT;
  struct in_addr a4;
  struct in6_addr a6;
  uint32_t scope;
  int v6;
  r->addrs = al__xmalloc(2 * sizeof *r->addrs);
  if (!*host) {
    finish(r, ARES_EBADNAME, NULL);
  } else if (inet_pton(AF_INET, host, &a4) == 1) {
    if (family != AF_INET6)
      add_addr(r, AF_INET, &a4, 0);
    finish(r, r->naddrs ? ARES_SUCCESS : ARES_ENOTFOUND, NULL);
  } else if ((v6 = parse_ip6(host, &a6, &scope)) != 0) {
    if (v6 > 0 && family != AF_INET)
      add_addr(r, AF_INET6, &a6, scope);
    finish(r,
           r->naddrs ? ARES_SUCCESS
           : v6 < 0  ? ARES_EBADNAME
                     : ARES_ENOTFOUND,
           NULL);
  } else if (is_under(host, "localhost")) {
    a4.s_addr = htonl(INADDR_LOOPBACK);
    if (family != AF_INET)
      add_addr(r, AF_INET6, &loop6, 0);
    if (family != AF_INET6)
      add_addr(r, AF_INET, &a4, 0);
    finish(r, ARES_SUCCESS, NULL);
  } else if (is_under(host, "invalid")) {
    finish(r, ARES_ENOTFOUND, NULL);
  } else {
    free(r->addrs);
    r->addrs = NULL;
    return false;
  }
  return true;
}

al_dns_req_t *al_dns_getaddrinfo(al_dns_t *dns, const char *host,
                                 const char *service, const al_dns_opts_t *o) {
  struct ares_addrinfo_hints hints;
  al_dns_req_t *r = al__xmalloc(sizeof *r);
  al_dns_chan_t *c;
  int status;
  memset(r, 0, sizeof *r);
  r->dns = dns;
  r->held = true;
  al_wlist_init(&r->waiters);
  al_handle_init(&r->expire, expire);
  al_timer_init(&r->deadline, &r->expire);
  al_list_append(&dns->reqs, &r->link);
  dns->nreqs++;
  if ((status = service_port(service, o->socktype, &r->port)) != ARES_SUCCESS) {
    finish(r, status, NULL);
    return r;
  }
  if (answer_locally(r, host, o->family))
    return r;
  if (!(c = get_chan(dns, o->servers, &status))) {
    finish(r, status, NULL);
    return r;
  }
  r->chan = c;
  r->inflight = true;
  c->ninflight++;
  c->nwanted++;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = o->family;
  hints.ai_socktype = o->socktype;
  ares_getaddrinfo(c->ch, host, NULL, &hints, gai_done, r);
  if (!r->done && o->timeout > 0)
    al_timer_add(dns->loop, &r->deadline, al_time() + o->timeout);
  rearm(c);
  return r;
}

/* ---- the loop's resolvers ---------------------------------------------- */

al_dns_t *al_dns_new(al_loop_t *loop) {
  al_dns_t *dns = al__xmalloc(sizeof *dns);
  dns->loop = loop;
  al_list_init(&dns->chans);
  al_list_init(&dns->reqs);
  dns->nreqs = 0;
  return dns;
}

void al_dns_close(al_dns_t *dns) {
  al_link_t *l;
  /* Nobody holds or waits for any request now: the tasks are not woken
   * (the loop is going away), and c-ares' last callbacks free the rest. */
  for (l = dns->reqs.next; l != &dns->reqs; l = l->next) {
    al_dns_req_t *r = al_container_of(l, al_dns_req_t, link);
    al_waiter_t *w;
    while ((w = al_wlist_first(&r->waiters)) != NULL)
      al_waiter_remove(w);
    if (r->inflight && !r->done && !r->detached)
      r->chan->nwanted--;
    r->detached = true;
    r->held = false;
    al_timer_remove(dns->loop, &r->deadline);
    al_loop_unpost(dns->loop, &r->expire);
  }
  while ((l = al_list_first(&dns->chans)) != NULL)
    chan_destroy(al_container_of(l, al_dns_chan_t, link));
  while ((l = al_list_first(&dns->reqs)) != NULL) {
    al_dns_req_t *r = al_container_of(l, al_dns_req_t, link);
    r->inflight = false; /* c-ares has called back (or never held it) */
    maybe_free(r);
  }
  free(dns);
}

void al_dns_get_stats(const al_dns_t *dns, al_dns_stats_t *st) {
  const al_link_t *l;
  memset(st, 0, sizeof *st);
  st->requests = dns->nreqs;
  for (l = dns->chans.next; l != &dns->chans; l = l->next) {
    const al_dns_chan_t *c = al_container_of(l, al_dns_chan_t, link);
    st->channels++;
    st->sockets += c->nsocks;
    st->inflight += c->ninflight;
  }
}
