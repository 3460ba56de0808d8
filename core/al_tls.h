/* al_tls.h -- TLS as a filter between a socket and a stream's buffers
 * (tls.c), on OpenSSL with memory BIOs: ciphertext received from the socket
 * is fed in, plaintext comes out; plaintext written goes in, ciphertext to
 * send comes out. No socket is touched here (stream.c does all the I/O), so
 * nothing blocks and no call ever waits for a direction. Plain C: no Lua. */
#ifndef AL_TLS_H
#define AL_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* The core's TLS failures, beside the negated errno values of al.h: a
 * handshake or protocol error (al_tls_errmsg says which), and the peer
 * closing the connection without a close_notify (a truncation). */
#define AL_ETLS (-4094)
#define AL_ETLS_EOF (-4093)

typedef struct al_tls_ctx al_tls_ctx_t;
typedef struct al_tls al_tls_t;

/* What a context is made from; NULL strings are not set. */
typedef struct al_tls_opts {
  bool server;        /* the server side (cert and key required) */
  bool verify;        /* client: verify the server (chain and name) */
  bool verify_client; /* server: require and verify a client certificate */
  const char *cafile, *capath; /* trust these; without either, a side
                                  that verifies trusts the system store */
  const char *cert, *key;      /* own certificate chain and key (PEM) */
  const unsigned char *alpn;   /* wire format (length-prefixed names) */
  size_t alpn_len;
  int min_version, max_version; /* TLS1_2_VERSION...; 0: TLS 1.2, newest */
  const char *ciphers;         /* OpenSSL's list for TLS 1.2, or NULL */
  const char *ciphersuites;    /* TLS 1.3's, or NULL */
} al_tls_opts_t;

/* A context, or NULL with the reason written to err (errlen bytes). */
al_tls_ctx_t *al_tls_ctx_new(const al_tls_opts_t *o, char *err, size_t errlen);
void al_tls_ctx_free(al_tls_ctx_t *c);

/* A connection on ctx; host (may be NULL) is the name to verify and send as
 * SNI (an IP literal is verified as an address and not sent). NULL with
 * err written on failure. */
al_tls_t *al_tls_new(al_tls_ctx_t *c, const char *host, char *err,
                     size_t errlen);
void al_tls_free(al_tls_t *t);

/* Ciphertext received: fed in (always taken whole); n 0 says the socket
 * reached its end. */
void al_tls_feed(al_tls_t *t, const char *p, size_t n);
/* One handshake step: 0 done, AL_EAGAIN more input is needed, AL_ETLS. */
int al_tls_handshake(al_tls_t *t);
bool al_tls_handshake_done(const al_tls_t *t);
/* Plaintext into p (up to n): the count, 0 at a clean end (close_notify),
 * AL_EAGAIN when more input is needed, AL_ETLS or AL_ETLS_EOF (both
 * kept: later calls say them again). */
long al_tls_read(al_tls_t *t, char *p, size_t n);
/* Encrypt n bytes (taken whole) or fail with AL_ETLS. */
int al_tls_write(al_tls_t *t, const char *p, size_t n);
/* Queue a close_notify (once); false when none can be sent. */
bool al_tls_shutdown(al_tls_t *t);
/* Ciphertext waiting to be sent, and taking up to n bytes of it. */
size_t al_tls_pending(const al_tls_t *t);
size_t al_tls_take(al_tls_t *t, char *p, size_t n);
/* The reason of the last AL_ETLS: OpenSSL's, with the certificate
 * verification result after it when that is what failed. */
const char *al_tls_errmsg(const al_tls_t *t);
/* The verification result code (0 when it passed or was not done). */
long al_tls_verify_result(const al_tls_t *t);
/* The OpenSSL object (SSL *), for the binding's get_extra_info. */
void *al_tls_ssl(al_tls_t *t);
bool al_tls_is_server(const al_tls_t *t);

#endif
