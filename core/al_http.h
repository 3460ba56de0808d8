/* al_http.h -- HTTP transfers on libcurl's multi-socket API, driven by the
 * loop's own libev watchers (core/http.c): a multi handle per session, its
 * sockets as ev_io watchers and its one timer as an ev_timer, requests whose
 * header and body events are buffered for the task that waits on them.
 * libcurl is never called from inside one of its own callbacks: those only
 * buffer, mark and wake (research/io.md §1). Lua-free. */
#ifndef AL_HTTP_H
#define AL_HTTP_H

#include <curl/curl.h>

#include "al.h"
#include "al_io.h"

typedef struct al_http al_http_t;
typedef struct al_http_multi al_http_multi_t;
typedef struct al_http_req al_http_req_t;

/* A loop's sessions, so that closing the loop closes them all. */
al_http_t *al_http_new(al_loop_t *loop);
/* Close every session still open (its parked tasks are unlinked, never
 * woken: the loop is closing), then free. Before al_loop_close. */
void al_http_close(al_http_t *http);

#define AL_HTTP_SPARE 64

typedef struct al_http_multi_opts {
  long max_total; /* CURLMOPT_MAX_TOTAL_CONNECTIONS; 0: no limit */
  long max_host;  /* CURLMOPT_MAX_HOST_CONNECTIONS; 0: no limit */
  bool cookies;   /* an in-memory cookie jar shared by its requests */
} al_http_multi_opts_t;

/* One session: a multi handle (its connection pool, DNS and TLS session
 * caches) and a share handle for cookies. */
struct al_http_multi {
  CURLM *multi;  /* read-only */
  CURLSH *share; /* read-only: NULL without cookies */
  /* private */
  al_http_t *http;
  al_link_t link;  /* in http->sessions while open */
  al_link_t reqs;  /* requests added and not yet closed */
  al_link_t socks; /* the sockets watched */
  ev_timer timer;  /* CURLMOPT_TIMERFUNCTION's one timer */
  size_t nsockets;
  CURL *spare[AL_HTTP_SPARE]; /* easy handles of finished requests, reset
                               * and reused (an init is many allocations) */
  unsigned nspare;
  bool open;
};

/* Returns 0, or AL_ENOMEM when libcurl cannot make its handles. */
int al_http_multi_init(al_http_multi_t *m, al_http_t *http,
                       const al_http_multi_opts_t *o);
/* Abort every request of the session and free its handles; idempotent.
 * Tasks parked on its requests are woken with AL_WAKE_CLOSED when `wake`,
 * else only unlinked. */
void al_http_multi_close(al_http_multi_t *m, bool wake);

/* A request and its response as it arrives. The binding sets the easy
 * handle's options between al_http_req_init and al_http_req_start. */
struct al_http_req {
  CURL *easy;     /* read-only: NULL once closed */
  al_buf_t head;  /* read-only: "\0url\r\n" then each header block as
                          * received, status line first */
  al_buf_t body;  /* read-only: body bytes not yet consumed */
  int result;     /* read-only: CURLcode, when done */
  long os_errno;  /* read-only: CURLINFO_OS_ERRNO, when done */
  bool final;     /* read-only: the final response's headers are in */
  bool done;      /* read-only: the transfer is over (result) */
  bool up_wanted; /* read-only: a streamed upload wants more data */
  char errbuf[CURL_ERROR_SIZE]; /* read-only: curl's message, if any */
  /* private */
  al_http_multi_t *m;
  al_link_t link; /* in m->reqs while it has an easy handle */
  struct curl_slist *headers;
  al_buf_t up;        /* streamed upload bytes not yet sent */
  al_wlist_t waiters; /* the parked task */
  size_t limit;       /* body bytes held before the transfer pauses */
  bool added, paused, up_paused, up_eof;
};

/* Make the easy handle with the options every request has (callbacks,
 * private pointer, no signals, error buffer, the session's share); returns
 * 0 or AL_ENOMEM. */
int al_http_req_init(al_http_req_t *r, al_http_multi_t *m, size_t limit);
/* Own a header list (freed with the request). */
void al_http_req_set_headers(al_http_req_t *r, struct curl_slist *h);
/* Stream the upload from al_http_req_feed (CURLOPT_READFUNCTION). */
void al_http_req_stream_upload(al_http_req_t *r);
/* Add it to the session's multi handle; returns 0 or AL_EINVAL. */
int al_http_req_start(al_http_req_t *r);
/* Park the running task until something changes: headers complete, body
 * bytes, upload room, the end. A cancel unlinks it. */
void al_http_req_wait(al_http_req_t *r, al_task_t *t);
/* The reader took n body bytes: a paused transfer resumes when the rest is
 * below half the limit. */
void al_http_req_consume(al_http_req_t *r, size_t n);
/* Upload bytes (eof: the last); resumes a paused upload. */
void al_http_req_feed(al_http_req_t *r, const char *p, size_t n, bool eof);
/* Upload bytes queued and not yet sent. */
static inline size_t al_http_req_upload_queued(const al_http_req_t *r) {
  return r->up.len;
}
/* Abort the transfer if it is still running (its connection is never
 * reused), free the easy handle and the buffers; idempotent. A parked task
 * is woken with AL_WAKE_CLOSED when `wake`, else only unlinked. */
void al_http_req_close(al_http_req_t *r, bool wake);

/* "CURLE_COULDNT_CONNECT"-style short names are not in libcurl: the
 * binding maps codes; this gives libcurl's own text for a code. */
const char *al_http_strerror(int code);

typedef struct al_http_stats {
  size_t sessions, requests, sockets;
  size_t buffered; /* body and upload bytes the requests hold */
} al_http_stats_t;
void al_http_get_stats(const al_http_t *http, al_http_stats_t *st);

#endif
