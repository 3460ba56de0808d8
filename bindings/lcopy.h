/* lcopy.h -- worker threads in the binding: copying Lua values between
 * Lua states through a neutral buffer (lcopy.c: one state writes values
 * into the buffer, the other reads them out, so no two states are ever
 * touched at once), and aloop.to_thread on the loop's pool (lthread.c). */
#ifndef LCOPY_H
#define LCOPY_H

#include <stddef.h>

#include "laloop.h"

typedef struct laloop_buf {
  char *p;
  size_t n, cap;
} laloop_buf;

void laloop_buf_free(laloop_buf *b);

/* Append the n values from index `first` of L to b: nil, booleans,
 * numbers (integers and floats kept apart), strings, tables of these
 * (shared references and cycles kept; no metatables) and Lua functions
 * (their bytecode and upvalues; the upvalue _ENV, and any upvalue holding L's
 * global table, becomes the reading state's globals). Returns 0; or -1 with a message in err naming the
 * value's place: "<label> #<base+i>: field "conn": userdata cannot be
 * copied <dir>" (dir: "to a thread"). Raises only for lack of memory. */
int laloop_copy_out(lua_State *L, int first, int n, laloop_buf *b,
                    const char *label, int base, const char *dir, char *err,
                    size_t errsz);
/* Push the values of b[0..n) onto L; returns how many. */
int laloop_copy_in(lua_State *L, const char *p, size_t n);

/* lthread.c: to_thread, the private aloop._threads, and closing the pool
 * as the loop closes (before al_loop_close). */
void laloop_open_threads(lua_State *L, int mod, int up);
void laloop_threads_close(lstate *S);

#endif
