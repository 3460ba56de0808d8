/* tls.c -- TLS through OpenSSL memory BIOs (see al_tls.h): contexts (trust,
 * own certificate, ALPN, verification), connections fed with ciphertext and
 * drained of it, and the reasons of failures as text. Verification is on
 * unless asked off: the chain against the given CA or the system store and
 * the host name (or IP address) of the peer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "al.h"
#include "al_tls.h"

struct al_tls_ctx {
  SSL_CTX *ctx;
  unsigned char *alpn; /* server: the names it accepts (wire format) */
  size_t alpn_len;
  bool server;
};

struct al_tls {
  SSL *ssl;
  BIO *rbio, *wbio; /* ciphertext in, ciphertext out */
  int err;          /* a failure that stays: AL_ETLS or AL_ETLS_EOF */
  bool done;        /* the handshake is complete */
  bool shut;        /* close_notify queued */
  char msg[256];
};

/* OpenSSL's first queued error as "reason" (its queue is then cleared). */
static void queued_error(char *out, size_t n, const char *fallback) {
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  snprintf(out, n, "%s", r ? r : fallback);
  ERR_clear_error();
}

/* ---- contexts ------------------------------------------------------------ */

/* Server: take the first of its protocols that the client also offers;
 * none in common: go on without ALPN (as Python's ssl does). */
static int select_alpn(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  al_tls_ctx_t *c = arg;
  unsigned char *o;
  (void)ssl;
  if (SSL_select_next_proto(&o, outlen, c->alpn, (unsigned)c->alpn_len, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

al_tls_ctx_t *al_tls_ctx_new(const al_tls_opts_t *o, char *err, size_t errlen) {
  al_tls_ctx_t *c = calloc(1, sizeof *c);
  SSL_CTX *ctx;
  const char *what = NULL;
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  ERR_clear_error();
  ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
  c->ctx = ctx;
  c->server = o->server;
  if (!ctx) {
    what = "SSL_CTX_new";
    goto fail;
  }
  if (SSL_CTX_set_min_proto_version(
          ctx, o->min_version ? o->min_version : TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, o->max_version) != 1) {
    what = "the TLS versions";
    goto fail;
  }
  if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
    what = "the cipher list";
    goto fail;
  }
  if (o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
    what = "the TLS 1.3 cipher suites";
    goto fail;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(
      ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections hold no buffers */
  if (o->cafile || o->capath) {
    if (SSL_CTX_load_verify_locations(ctx, o->cafile, o->capath) != 1) {
      what = o->cafile ? o->cafile : o->capath;
      goto fail;
    }
  } else if ((o->server ? o->verify_client : o->verify) &&
             SSL_CTX_set_default_verify_paths(ctx) != 1) {
    what = "the system's trusted certificates";
    goto fail;
  }
  if (o->cert) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
      what = o->cert;
      goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key ? o->key : o->cert,
                                    SSL_FILETYPE_PEM) != 1) {
      what = o->key ? o->key : o->cert;
      goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      what = "the key does not match the certificate";
      goto fail;
    }
  } else if (o->server) {
    snprintf(err, errlen, "a TLS server needs a certificate and a key");
    al_tls_ctx_free(c);
    return NULL;
  }
  if (o->server && o->verify_client && o->cafile) {
    /* tell clients which CAs are trusted, to pick their certificate */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->cafile);
    if (names)
      SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
  }
  if (o->server)
    SSL_CTX_set_verify(ctx,
                       o->verify_client
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_NONE,
                       NULL);
  else
    SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       NULL);
  if (o->alpn && o->alpn_len > 0) {
    if (o->server) {
      c->alpn = malloc(o->alpn_len);
      if (!c->alpn) {
        what = "out of memory";
        goto fail;
      }
      memcpy(c->alpn, o->alpn, o->alpn_len);
      c->alpn_len = o->alpn_len;
      SSL_CTX_set_alpn_select_cb(ctx, select_alpn, c);
    } else if (SSL_CTX_set_alpn_protos(ctx, o->alpn, (unsigned)o->alpn_len) !=
               0) {
      what = "ALPN protocols";
      goto fail;
    }
  }
  return c;
fail : {
  char reason[160];
  queued_error(reason, sizeof reason, "failed");
  snprintf(err, errlen, "%s: %s", what, reason);
}
  al_tls_ctx_free(c);
  return NULL;
}

void al_tls_ctx_free(al_tls_ctx_t *c) {
  if (!c)
    return;
  SSL_CTX_free(c->ctx);
  free(c->alpn);
  free(c);
}

/* ---- connections ----------------------------------------------------------- */

al_tls_t *al_tls_new(al_tls_ctx_t *c, const char *host, char *err,
                     size_t errlen) {
  al_tls_t *t = calloc(1, sizeof *t);
  bool server = c->server;
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  ERR_clear_error();
  t->ssl = SSL_new(c->ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    goto fail;
  }
  BIO_set_mem_eof_return(t->rbio, -1); /* empty: "retry", until the end */
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  if (server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (host && *host) {
      unsigned char bin[16];
      bool ip = inet_pton(AF_INET, host, bin) == 1 ||
                inet_pton(AF_INET6, host, bin) == 1;
      if (ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1)
          goto fail;
      } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(t->ssl, host) != 1 ||
            SSL_set_tlsext_host_name(t->ssl, host) != 1)
          goto fail;
      }
    }
  }
  return t;
fail:
  queued_error(err, errlen, "cannot make a TLS connection");
  al_tls_free(t);
  return NULL;
}

void al_tls_free(al_tls_t *t) {
  if (!t)
    return;
  SSL_free(t->ssl); /* and its BIOs */
  free(t);
}

void al_tls_feed(al_tls_t *t, const char *p, size_t n) {
  if (n == 0)
    BIO_set_mem_eof_return(t->rbio, 0);
  else
    BIO_write(t->rbio, p, (int)n);
}

/* After an SSL call returned r <= 0: AL_EAGAIN, 0 (clean end) or a failure
 * kept in t->err with its reason. */
static int failed(al_tls_t *t, int r) {
  int e = SSL_get_error(t->ssl, r);
  unsigned long q;
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return AL_EAGAIN;
  if (e == SSL_ERROR_ZERO_RETURN)
    return 0;
  q = ERR_peek_error();
  if ((e == SSL_ERROR_SSL &&
       ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
      (e == SSL_ERROR_SYSCALL && q == 0)) {
    t->err = t->done ? AL_ETLS_EOF : AL_ETLS;
    snprintf(t->msg, sizeof t->msg, "%s",
             t->done ? "the peer closed the connection without close_notify"
                     : "unexpected eof while reading (the peer closed the "
                       "connection during the handshake)");
    ERR_clear_error();
    return t->err;
  }
  t->err = AL_ETLS;
  queued_error(t->msg, sizeof t->msg, "TLS protocol error");
  if (strcmp(t->msg, "certificate verify failed") == 0 &&
      SSL_get_verify_result(t->ssl) != X509_V_OK) {
    size_t l = strlen(t->msg);
    snprintf(t->msg + l, sizeof t->msg - l, ": %s",
             X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
  }
  return AL_ETLS;
}

int al_tls_handshake(al_tls_t *t) {
  int r;
  if (t->err)
    return t->err == AL_ETLS_EOF ? AL_ETLS : t->err;
  if (t->done)
    return 0;
  ERR_clear_error();
  r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    t->done = true;
    return 0;
  }
  r = failed(t, r);
  if (r == 0) { /* a close_notify in the handshake */
    t->err = AL_ETLS;
    snprintf(t->msg, sizeof t->msg, "the peer closed during the handshake");
    return AL_ETLS;
  }
  return r;
}

bool al_tls_handshake_done(const al_tls_t *t) { return t->done; }

long al_tls_read(al_tls_t *t, char *p, size_t n) {
  int r;
  if (t->err)
    return t->err;
  ERR_clear_error();
  r = SSL_read(t->ssl, p, n > 0x40000000 ? 0x40000000 : (int)n);
  if (r > 0)
    return r;
  return failed(t, r);
}

int al_tls_write(al_tls_t *t, const char *p, size_t n) {
  while (n > 0) {
    int chunk = n > 16384 ? 16384 : (int)n;
    int r;
    ERR_clear_error();
    r = SSL_write(t->ssl, p, chunk);
    if (r <= 0) {
      r = failed(t, r);
      return r == 0 || r == AL_EAGAIN ? AL_ETLS : r;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

bool al_tls_shutdown(al_tls_t *t) {
  if (t->shut || !t->done || t->err == AL_ETLS)
    return false;
  t->shut = true;
  ERR_clear_error();
  SSL_shutdown(t->ssl); /* queues close_notify; the answer is not awaited */
  ERR_clear_error();
  return true;
}

size_t al_tls_pending(const al_tls_t *t) { return BIO_ctrl_pending(t->wbio); }

size_t al_tls_take(al_tls_t *t, char *p, size_t n) {
  int r = BIO_read(t->wbio, p, n > 0x40000000 ? 0x40000000 : (int)n);
  return r > 0 ? (size_t)r : 0;
}

const char *al_tls_errmsg(const al_tls_t *t) { return t->msg; }

long al_tls_verify_result(const al_tls_t *t) {
  return SSL_get_verify_result(t->ssl);
}

void *al_tls_ssl(al_tls_t *t) { return t->ssl; }

bool al_tls_is_server(const al_tls_t *t) { return SSL_is_server(t->ssl) != 0; }
