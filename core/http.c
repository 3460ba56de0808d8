/* http.c -- libcurl's multi-socket API on the loop's libev: each socket curl
 * names gets an ev_io watcher (CURLMOPT_SOCKETFUNCTION), curl's one timeout
 * an ev_timer (CURLMOPT_TIMERFUNCTION, in seconds as a double: curl's own
 * libev example divides by an integer 1000). The watchers call
 * curl_multi_socket_action and then collect finished transfers. libcurl's
 * callbacks never call libcurl: the write, header and read callbacks only
 * move bytes, set flags and wake the parked task; pausing a transfer is
 * done by returning CURL_WRITEFUNC_PAUSE, resuming by the reader, outside
 * any callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "al_http.h"
#include "al_int.h"

struct al_http {
  al_loop_t *loop;
  al_link_t sessions;
};

/* A socket curl asked us to watch, attached with curl_multi_assign. */
typedef struct hsock {
  ev_io w;
  al_http_multi_t *m;
  al_link_t link; /* in m->socks */
} hsock;

static void hsock_free(hsock *h) {
  ev_io_stop(h->m->http->loop->ev, &h->w);
  al_list_remove(&h->link);
  h->m->nsockets--;
  free(h);
}

al_http_t *al_http_new(al_loop_t *loop) {
  al_http_t *http = al__xmalloc(sizeof *http);
  /* counted, and thread-safe since 7.84; al_http_close undoes it */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  http->loop = loop;
  al_list_init(&http->sessions);
  return http;
}

void al_http_close(al_http_t *http) {
  al_link_t *l;
  while ((l = al_list_first(&http->sessions)))
    al_http_multi_close(al_container_of(l, al_http_multi_t, link), false);
  free(http);
  curl_global_cleanup(); /* counted: the last one frees libcurl's state */
}

/* ---- waking the task parked on a request ---------------------------- */

static void never_called(al_waiter_t *w, al_future_t *f) {
  (void)w;
  (void)f;
}

static void unwait(al_task_t *t) { al_waiter_remove(&t->waiter); }

static void wake(al_http_req_t *r, int status) {
  al_waiter_t *w;
  while ((w = al_wlist_first(&r->waiters))) {
    al_waiter_remove(w);
    al_task_wake(al_container_of(w, al_task_t, waiter), status);
  }
}

static void unlink_waiters(al_http_req_t *r) {
  al_waiter_t *w;
  while ((w = al_wlist_first(&r->waiters)))
    al_waiter_remove(w); /* its task goes with the loop: unwait is a no-op */
}

void al_http_req_wait(al_http_req_t *r, al_task_t *t) {
  t->waiter.cb = never_called;
  al_wlist_append(&r->waiters, &t->waiter);
  al_task_park(t, unwait); /* a pending cancel unwaits at once */
}

/* ---- finished transfers ---------------------------------------------- */

/* Collect what curl_multi_socket_action finished: never from a callback. */
static void collect(al_http_multi_t *m) {
  CURLMsg *msg;
  int left;
  while (m->multi && (msg = curl_multi_info_read(m->multi, &left))) {
    al_http_req_t *r = NULL;
    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    r->result = (int)msg->data.result; /* msg dies with the removal */
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &r->os_errno);
    curl_multi_remove_handle(m->multi, r->easy);
    r->added = false;
    r->done = r->final = true;
    wake(r, 0);
  }
}

/* ---- the multi handle's socket and timer ----------------------------- */

static void io_cb(struct ev_loop *ev, ev_io *w, int revents) {
  hsock *h = w->data;
  al_http_multi_t *m = h->m; /* h may be freed by the action */
  int running, flags = 0;
  (void)ev;
  if (revents & EV_READ)
    flags |= CURL_CSELECT_IN;
  if (revents & EV_WRITE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(m->multi, w->fd, flags, &running);
  collect(m);
}

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents) {
  al_http_multi_t *m = w->data;
  int running;
  (void)ev;
  (void)revents;
  curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  collect(m);
}

/* CURLMOPT_SOCKETFUNCTION: watch s as curl says. A REMOVE may name a
 * socket we never watched (curl's internal handles): sockp is NULL then. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *up,
                     void *sockp) {
  al_http_multi_t *m = up;
  hsock *h = sockp;
  int events = 0;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (h)
      hsock_free(h);
    return 0;
  }
  if (!h) {
    h = al__xmalloc(sizeof *h);
    ev_init(&h->w, io_cb);
    h->w.data = h;
    h->m = m;
    al_list_append(&m->socks, &h->link);
    m->nsockets++;
    curl_multi_assign(m->multi, s, h);
  } else {
    ev_io_stop(m->http->loop->ev, &h->w); /* stop, set, start: fds recur */
  }
  if (what & CURL_POLL_IN)
    events |= EV_READ;
  if (what & CURL_POLL_OUT)
    events |= EV_WRITE;
  ev_io_set(&h->w, s, events);
  ev_io_start(m->http->loop->ev, &h->w);
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer; -1 removes it, 0 is "soon" (the next
 * poll, never a call from here). */
static int on_timer(CURLM *multi, long ms, void *up) {
  al_http_multi_t *m = up;
  (void)multi;
  ev_timer_stop(m->http->loop->ev, &m->timer);
  if (ms >= 0)
    al_timer_start(m->http->loop, &m->timer, (double)ms / 1000.0);
  return 0;
}

int al_http_multi_init(al_http_multi_t *m, al_http_t *http,
                       const al_http_multi_opts_t *o) {
  memset(m, 0, sizeof *m);
  m->http = http;
  al_list_init(&m->reqs);
  al_list_init(&m->socks);
  m->multi = curl_multi_init();
  if (!m->multi)
    return AL_ENOMEM;
  if (o->cookies) {
    m->share = curl_share_init();
    if (!m->share) {
      curl_multi_cleanup(m->multi);
      m->multi = NULL;
      return AL_ENOMEM;
    }
    curl_share_setopt(m->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
  }
  ev_init(&m->timer, timer_cb);
  m->timer.data = m;
  curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
  curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
  curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  if (o->max_total > 0) {
    curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, o->max_total);
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, o->max_total);
  }
  if (o->max_host > 0)
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->max_host);
  al_list_append(&http->sessions, &m->link);
  m->open = true;
  return 0;
}

void al_http_multi_close(al_http_multi_t *m, bool wake_tasks) {
  al_link_t *l;
  if (!m->open)
    return;
  m->open = false;
  while ((l = al_list_first(&m->reqs)))
    al_http_req_close(al_container_of(l, al_http_req_t, link), wake_tasks);
  /* the socket callback runs during the cleanup (REMOVE for the cached
   * connections) and frees the records */
  curl_multi_cleanup(m->multi);
  m->multi = NULL;
  /* any socket curl did not say REMOVE for: its watcher must not outlive
   * the multi handle */
  while ((l = al_list_first(&m->socks)))
    hsock_free(al_container_of(l, hsock, link));
  while (m->nspare > 0)
    curl_easy_cleanup(m->spare[--m->nspare]);
  if (m->share)
    curl_share_cleanup(m->share);
  m->share = NULL;
  ev_timer_stop(m->http->loop->ev, &m->timer);
  al_list_remove(&m->link);
}

/* ---- a request's callbacks: bytes in, bytes out, nothing else -------- */

/* CURLOPT_HEADERFUNCTION: every header line of every response (redirects
 * and 1xx included), each block after the URL it answers. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  al_http_req_t *r = ud;
  (void)size; /* always 1 */
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    char *url = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
    al_buf_append(&r->head, "\0", 1);
    if (url)
      al_buf_append(&r->head, url, strlen(url));
    al_buf_append(&r->head, "\r\n", 2);
  }
  al_buf_append(&r->head, p, n);
  return n;
}

/* CURLOPT_WRITEFUNCTION: body bytes. The first ones mean the headers before
 * them were the final response's. Past the limit the transfer pauses, and
 * curl hands the same bytes again when the reader resumes it. */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  al_http_req_t *r = ud;
  (void)size;
  r->final = true;
  if (r->body.len >= r->limit) {
    r->paused = true;
    wake(r, 0);
    return CURL_WRITEFUNC_PAUSE;
  }
  al_buf_append(&r->body, p, n);
  wake(r, 0);
  return n;
}

/* CURLOPT_READFUNCTION for a streamed upload: what was fed, else a pause
 * until al_http_req_feed, else the end. */
static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  al_http_req_t *r = ud;
  size_t k = size * n;
  if (r->up.len == 0) {
    if (r->up_eof)
      return 0;
    r->up_paused = r->up_wanted = true;
    wake(r, 0);
    return CURL_READFUNC_PAUSE;
  }
  if (k > r->up.len)
    k = r->up.len;
  memcpy(p, al_buf_head(&r->up), k);
  al_buf_consume(&r->up, k);
  if (r->up.len == 0 && !r->up_eof) {
    r->up_wanted = true;
    wake(r, 0);
  }
  return k;
}

int al_http_req_init(al_http_req_t *r, al_http_multi_t *m, size_t limit) {
  memset(r, 0, sizeof *r);
  al_wlist_init(&r->waiters);
  r->m = m;
  r->limit = limit;
  if (!m->open)
    return AL_EINVAL;
  if (m->nspare > 0) {
    r->easy = m->spare[--m->nspare];
    curl_easy_reset(r->easy);
  } else if (!(r->easy = curl_easy_init())) {
    return AL_ENOMEM;
  }
  al_list_append(&m->reqs, &r->link);
  curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(r->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (m->share) { /* the session's cookie jar, and the engine on */
    curl_easy_setopt(r->easy, CURLOPT_SHARE, m->share);
    curl_easy_setopt(r->easy, CURLOPT_COOKIEFILE, "");
  }
  return 0;
}

void al_http_req_set_headers(al_http_req_t *r, struct curl_slist *h) {
  curl_slist_free_all(r->headers);
  r->headers = h;
  curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, h);
}

void al_http_req_stream_upload(al_http_req_t *r) {
  curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(r->easy, CURLOPT_READDATA, r);
  r->up_wanted = true;
}

int al_http_req_start(al_http_req_t *r) {
  if (!r->easy || r->added ||
      curl_multi_add_handle(r->m->multi, r->easy) != CURLM_OK)
    return AL_EINVAL;
  r->added = true;
  return 0;
}

void al_http_req_consume(al_http_req_t *r, size_t n) {
  al_buf_consume(&r->body, n);
  if (r->paused && r->added && r->body.len < r->limit / 2) {
    r->paused = false;
    /* may call on_body at once, which may pause again */
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
  }
}

void al_http_req_feed(al_http_req_t *r, const char *p, size_t n, bool eof) {
  if (n > 0)
    al_buf_append(&r->up, p, n);
  if (eof)
    r->up_eof = true;
  r->up_wanted = false;
  if (r->up_paused && r->added) {
    r->up_paused = false;
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
  }
}

void al_http_req_close(al_http_req_t *r, bool wake_tasks) {
  if (r->easy) {
    al_http_multi_t *m = r->m;
    if (r->added) {
      /* a connection whose transfer was cut short is never reused */
      curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
      curl_multi_remove_handle(m->multi, r->easy);
      r->added = false;
      curl_easy_cleanup(r->easy);
    } else if (m->open && m->nspare < AL_HTTP_SPARE) {
      /* curl_easy_reset forgets the cookie file list without freeing it:
       * free it first (the shared jar stays) */
      if (m->share)
        curl_easy_setopt(r->easy, CURLOPT_COOKIEFILE, (char *)NULL);
      m->spare[m->nspare++] = r->easy;
    } else {
      curl_easy_cleanup(r->easy);
    }
    r->easy = NULL;
    al_list_remove(&r->link);
    if (!r->done) {
      r->done = r->final = true;
      r->result = CURLE_ABORTED_BY_CALLBACK;
    }
  }
  curl_slist_free_all(r->headers);
  r->headers = NULL;
  al_buf_free(&r->head);
  al_buf_free(&r->body);
  al_buf_free(&r->up);
  if (wake_tasks)
    wake(r, AL_WAKE_CLOSED);
  else
    unlink_waiters(r);
}

const char *al_http_strerror(int code) {
  return curl_easy_strerror((CURLcode)code);
}

void al_http_get_stats(const al_http_t *http, al_http_stats_t *st) {
  const al_link_t *l, *q;
  memset(st, 0, sizeof *st);
  for (l = http->sessions.next; l != &http->sessions; l = l->next) {
    const al_http_multi_t *m = al_container_of(l, al_http_multi_t, link);
    st->sessions++;
    st->sockets += m->nsockets;
    for (q = m->reqs.next; q != &m->reqs; q = q->next) {
      const al_http_req_t *r = al_container_of(q, al_http_req_t, link);
      st->requests++;
      st->buffered += r->body.len + r->up.len;
    }
  }
}
