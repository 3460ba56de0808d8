/* ltls.c -- TLS in the binding: contexts made from Lua options
 * (aloop._net.tls_context, cached by aloop/streams.lua), the handshake that
 * turns a Stream into a TLS one (Stream:_start_tls, parking while the peer
 * has not answered), TLS errors (aloop.is_tls_error), truncation raised as
 * an incomplete read, and get_extra_info's TLS names. The filter itself is
 * core/tls.c; the public open_connection/start_server/start_tls options
 * are read in aloop/streams.lua. */
#include <string.h>

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../core/al_tls.h"
#include "lstream.h"

#define LALOOP_TLSCTX_MT "aloop.TLSContext"

typedef struct ltlsctx {
  al_tls_ctx_t *c;
} ltlsctx;

/* ---- errors ------------------------------------------------------------------ */

/* A TLSError: message = OpenSSL's reason (and the verification result). */
static void push_tls_error(lua_State *L, const char *msg, long verify) {
  laloop_push_error(L, "TLSError", msg);
  if (verify != X509_V_OK) {
    lua_pushinteger(L, verify);
    lua_setfield(L, -2, "verify_code");
    lua_pushstring(L, X509_verify_cert_error_string(verify));
    lua_setfield(L, -2, "verify_message");
  }
}

int laloop_stream_raise(lua_State *L, lstream *s, long err,
                        lua_Integer expected) {
  if (err == AL_ETLS && s->st.tls) {
    push_tls_error(L, al_tls_errmsg(s->st.tls),
                   al_tls_verify_result(s->st.tls));
    return lua_error(L);
  }
  if (err == AL_ETLS_EOF) { /* truncation: never a quiet end of stream */
    size_t n = s->st.rbuf.len;
    laloop_push_error(L, "IncompleteReadError",
                      "the peer closed the TLS connection without "
                      "close_notify (the data may be truncated)");
    lua_pushlstring(L, al_buf_head(&s->st.rbuf), n);
    al_buf_consume(&s->st.rbuf, n);
    lua_setfield(L, -2, "partial");
    if (expected >= 0) {
      lua_pushinteger(L, expected);
      lua_setfield(L, -2, "expected");
    }
    return lua_error(L);
  }
  return laloop_oserror(L, (int)err, NULL);
}

static int is_tls_error(lua_State *L) {
  lua_pushboolean(L, laloop_is_kind(L, 1, "TLSError"));
  return 1;
}

/* ---- contexts ------------------------------------------------------------------ */

static const char *opt_string(lua_State *L, int t, const char *k) {
  const char *v = NULL;
  if (lua_getfield(L, t, k) == LUA_TSTRING)
    v = lua_tostring(L, -1); /* the options table keeps it */
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, int t, const char *k) {
  int v;
  lua_getfield(L, t, k);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* "TLSv1.2" and "TLSv1.3" as OpenSSL's numbers; 0 for none. */
static int opt_version(lua_State *L, int t, const char *k) {
  const char *v = opt_string(L, t, k);
  if (!v)
    return 0;
  return strcmp(v, "TLSv1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

/* _net.tls_context{server=, verify=, verify_client=, cafile=, capath=,
 * cert=, key=, alpn = {names}, min_version=, max_version=, ciphers=,
 * ciphersuites=}: options checked by the caller. */
static int n_tls_context(lua_State *L) {
  al_tls_opts_t o;
  luaL_Buffer b;
  ltlsctx *u;
  char err[300];
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&o, 0, sizeof o);
  o.server = opt_bool(L, 1, "server");
  o.verify = opt_bool(L, 1, "verify");
  o.verify_client = opt_bool(L, 1, "verify_client");
  o.cafile = opt_string(L, 1, "cafile");
  o.capath = opt_string(L, 1, "capath");
  o.cert = opt_string(L, 1, "cert");
  o.key = opt_string(L, 1, "key");
  o.min_version = opt_version(L, 1, "min_version");
  o.max_version = opt_version(L, 1, "max_version");
  o.ciphers = opt_string(L, 1, "ciphers");
  o.ciphersuites = opt_string(L, 1, "ciphersuites");
  luaL_buffinit(L, &b);
  if (lua_getfield(L, 1, "alpn") == LUA_TTABLE) {
    lua_Integer i, n = luaL_len(L, -1);
    for (i = 1; i <= n; i++) {
      size_t len;
      const char *name;
      lua_geti(L, -1, i);
      name = lua_tolstring(L, -1, &len);
      if (!name || len == 0 || len > 255)
        return luaL_error(L, "bad ALPN protocol name");
      luaL_addchar(&b, (char)len);
      luaL_addlstring(&b, name, len);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  luaL_pushresult(&b);
  o.alpn = (const unsigned char *)lua_tolstring(L, -1, &o.alpn_len);
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->c = NULL;
  luaL_setmetatable(L, LALOOP_TLSCTX_MT);
  u->c = al_tls_ctx_new(&o, err, sizeof err);
  if (!u->c) {
    push_tls_error(L, err, X509_V_OK);
    return lua_error(L);
  }
  return 1;
}

static int ctx_gc(lua_State *L) {
  ltlsctx *u = luaL_checkudata(L, 1, LALOOP_TLSCTX_MT);
  al_tls_ctx_free(u->c);
  u->c = NULL;
  return 0;
}

/* ---- the handshake ------------------------------------------------------------ */

/* A handshake cancelled: the connection is of no use, it goes at once. */
static int handshake_forfeit(ltask *lt, void *s) {
  (void)lt;
  al_stream_abort(&((lstream *)s)->st);
  return 0;
}

static int handshake_k(lua_State *L, int status, lua_KContext ctx) {
  lstream *s = lua_touserdata(L, 1);
  int r;
  s->reader = NULL;
  laloop_woken(L, status, ctx, handshake_k, handshake_forfeit, s);
  r = al_stream_tls_handshake(&s->st);
  if (r == 0) {
    lua_settop(L, 1);
    return 1;
  }
  if (r == AL_EAGAIN) {
    ltask *lt = laloop_current(L, "Stream:start_tls");
    s->reader = lt; /* no read meanwhile */
    al_io_wait(&s->st.io, &lt->t, EV_READ);
    return laloop_park(L, 0, handshake_k);
  }
  if (r == AL_ETLS)
    push_tls_error(L, al_tls_errmsg(s->st.tls),
                   al_tls_verify_result(s->st.tls));
  else
    laloop_push_oserror(L, r, "TLS handshake");
  al_stream_abort(&s->st);
  return lua_error(L);
}

/* Stream:_start_tls(ctx, server_hostname): put TLS on the stream and do the
 * handshake; on failure (or cancellation) the stream is closed. */
static int s_start_tls(lua_State *L) {
  lstream *s = luaL_checkudata(L, 1, LALOOP_STREAM_MT);
  ltlsctx *u = luaL_checkudata(L, 2, LALOOP_TLSCTX_MT);
  const char *host = luaL_optstring(L, 3, NULL);
  char err[300];
  al_tls_t *t;
  laloop_current(L, "Stream:start_tls");
  if (s->st.tls)
    return laloop_error(L, "RuntimeError", "the stream is already using TLS");
  if (s->reader)
    return laloop_error(L, "RuntimeError",
                        "start_tls called while a task reads the stream");
  if (s->st.flags &
      (AL_S_CLOSED | AL_S_CLOSE_WANT | AL_S_SHUT_WANT | AL_S_SHUT_DONE))
    return laloop_error(L, "RuntimeError", "start_tls on a closed stream");
  t = al_tls_new(u->c, host, err, sizeof err);
  if (!t) {
    push_tls_error(L, err, X509_V_OK);
    return lua_error(L);
  }
  lua_pushvalue(L, 2); /* the context lives as long as the stream */
  lua_setiuservalue(L, 1, 1);
  al_stream_tls_attach(&s->st, t);
  lua_settop(L, 1);
  return handshake_k(L, LUA_OK, 0);
}

/* ---- get_extra_info ---------------------------------------------------------- */

static void push_name(lua_State *L, X509_NAME *n) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long len;
  X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
  len = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, (size_t)len);
  BIO_free(b);
}

static void push_time(lua_State *L, const ASN1_TIME *tm) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long len;
  ASN1_TIME_print(b, tm);
  len = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, (size_t)len);
  BIO_free(b);
}

/* The peer's certificate as a table: subject, issuer (RFC 2253 strings),
 * serialNumber (hex), notBefore, notAfter, subjectAltName ({type, value}
 * pairs, types "DNS" and "IP Address" as Python's). */
static int push_peercert(lua_State *L, SSL *ssl) {
  X509 *x = SSL_get1_peer_certificate(ssl);
  GENERAL_NAMES *alt;
  BIGNUM *bn;
  char *hex;
  if (!x)
    return 0;
  lua_createtable(L, 0, 6);
  push_name(L, X509_get_subject_name(x));
  lua_setfield(L, -2, "subject");
  push_name(L, X509_get_issuer_name(x));
  lua_setfield(L, -2, "issuer");
  push_time(L, X509_get0_notBefore(x));
  lua_setfield(L, -2, "notBefore");
  push_time(L, X509_get0_notAfter(x));
  lua_setfield(L, -2, "notAfter");
  bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  hex = bn ? BN_bn2hex(bn) : NULL;
  if (hex) {
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "serialNumber");
  }
  OPENSSL_free(hex);
  BN_free(bn);
  alt = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  if (alt) {
    int i, n = sk_GENERAL_NAME_num(alt), k = 0;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
      const GENERAL_NAME *g = sk_GENERAL_NAME_value(alt, i);
      if (g->type == GEN_DNS) {
        lua_createtable(L, 2, 0);
        lua_pushliteral(L, "DNS");
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                        (size_t)ASN1_STRING_length(g->d.dNSName));
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, ++k);
      } else if (g->type == GEN_IPADD) {
        char ip[64];
        int len = ASN1_STRING_length(g->d.iPAddress);
        if (inet_ntop(len == 4 ? AF_INET : AF_INET6,
                      ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof ip) &&
            (len == 4 || len == 16)) {
          lua_createtable(L, 2, 0);
          lua_pushliteral(L, "IP Address");
          lua_rawseti(L, -2, 1);
          lua_pushstring(L, ip);
          lua_rawseti(L, -2, 2);
          lua_rawseti(L, -2, ++k);
        }
      }
    }
    lua_setfield(L, -2, "subjectAltName");
    GENERAL_NAMES_free(alt);
  }
  X509_free(x);
  return 1;
}

static int push_alpn(lua_State *L, SSL *ssl) {
  const unsigned char *p;
  unsigned int n;
  SSL_get0_alpn_selected(ssl, &p, &n);
  if (n == 0)
    return 0;
  lua_pushlstring(L, (const char *)p, n);
  return 1;
}

/* get_extra_info's TLS names: pushes the value and returns 1, or 0. */
int laloop_tls_extra(lua_State *L, lstream *s, const char *name) {
  SSL *ssl;
  if (!s->st.tls || !al_tls_handshake_done(s->st.tls))
    return 0;
  ssl = al_tls_ssl(s->st.tls);
  if (strcmp(name, "peercert") == 0)
    return push_peercert(L, ssl);
  if (strcmp(name, "version") == 0) {
    lua_pushstring(L, SSL_get_version(ssl));
    return 1;
  }
  if (strcmp(name, "alpn") == 0)
    return push_alpn(L, ssl);
  if (strcmp(name, "cipher") == 0) { /* {name, protocol, secret bits} */
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    lua_createtable(L, 3, 0);
    lua_pushstring(L, SSL_CIPHER_get_name(c));
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, SSL_CIPHER_get_version(c));
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, SSL_CIPHER_get_bits(c, NULL));
    lua_rawseti(L, -2, 3);
    return 1;
  }
  if (strcmp(name, "ssl_object") == 0) { /* what asyncio's SSLObject tells */
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, SSL_get_version(ssl));
    lua_setfield(L, -2, "version");
    lua_pushstring(L, SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    lua_setfield(L, -2, "cipher");
    lua_pushboolean(L, al_tls_is_server(s->st.tls));
    lua_setfield(L, -2, "server_side");
    if (sni) {
      lua_pushstring(L, sni);
      lua_setfield(L, -2, "server_hostname");
    }
    if (push_alpn(L, ssl))
      lua_setfield(L, -2, "alpn");
    if (push_peercert(L, ssl))
      lua_setfield(L, -2, "peercert");
    return 1;
  }
  return 0;
}

void laloop_open_tls(lua_State *L, int mod, int net, int up) {
  static const luaL_Reg ctx_metas[] = {{"__gc", ctx_gc}, {NULL, NULL}};
  static const luaL_Reg empty[] = {{NULL, NULL}};
  laloop_new_class(L, up, LALOOP_TLSCTX_MT, empty, ctx_metas);
  lua_pushvalue(L, up);
  lua_pushcclosure(L, n_tls_context, 1);
  lua_setfield(L, net, "tls_context");
  lua_pushcfunction(L, is_tls_error);
  lua_setfield(L, mod, "is_tls_error");
  luaL_getmetatable(L, LALOOP_STREAM_MT);
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, up);
  lua_pushcclosure(L, s_start_tls, 1);
  lua_setfield(L, -2, "_start_tls");
  lua_pop(L, 2);
}
