/* lstream.h -- what the network binding's files share: the Stream userdata
 * (lstream.c) that the listeners of lserver.c hand out, and the functions
 * that open both. Part of the bindings' internals, like laloop.h. */
#ifndef LSTREAM_H
#define LSTREAM_H

#include "../core/al_io.h"
#include "laloop.h"

#define LALOOP_STREAM_MT "aloop.Stream"
#define LALOOP_LISTENER_MT "aloop.Listener"

/* Stream userdata: a core stream and what the binding adds to it. */
typedef struct lstream {
  al_stream_t st;     /* first */
  lstate *S;
  ltask *reader;      /* the task parked in a read, if any: one at a time */
  al_handle_t notify; /* posted by the core: the write side went idle */
  int ref;            /* anchor while the write watcher holds the stream */
  size_t limit;       /* what readline/readuntil look through (64 KiB) */
  al_addr_t sock, peer; /* addresses, read when the stream is made */
} lstream;

/* A stream over a connected socket fd (taken over; closed on failure);
 * pushes it. */
lstream *laloop_stream_new(lua_State *L, lstate *S, int fd, size_t limit);
/* Push an address as host, port (2 values; a Unix path and nil). */
int laloop_push_addr(lua_State *L, const al_addr_t *a);
/* Open streams and servers: the private table aloop._net, its functions
 * and the Stream and Listener classes. */
void laloop_open_streams(lua_State *L, int mod, int up);
void laloop_open_servers(lua_State *L, int net, int up);
/* ltls.c: raise the error of a read or drain (a TLS failure, a truncation
 * as an IncompleteReadError with `expected` when >= 0, else the OS's); the
 * TLS names of get_extra_info (pushes one value and returns 1, or 0); the
 * TLS functions (aloop.is_tls_error, _net.tls_context, Stream:_start_tls). */
int laloop_stream_raise(lua_State *L, lstream *s, long err,
                        lua_Integer expected);
int laloop_tls_extra(lua_State *L, lstream *s, const char *name);
void laloop_open_tls(lua_State *L, int mod, int net, int up);

#endif
