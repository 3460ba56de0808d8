/* lcopy.c -- Lua values to a flat buffer and back, for worker threads: the
 * state that writes and the state that reads never run at the same time on
 * the same data, because the buffer is plain C memory in between. Tables
 * and functions are numbered as they are first written; a later reference
 * writes the number, so shared references and cycles arrive as they were.
 *
 * The format: one tag byte per value, then its payload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcopy.h"

enum {
  T_NIL = 1,
  T_FALSE,
  T_TRUE,
  T_INT,
  T_FLT,
  T_STR,     /* + size_t, bytes */
  T_TABLE,   /* key, value pairs up to T_END */
  T_FUNC,    /* size_t, bytecode, then its upvalues up to T_END */
  T_REF,     /* unsigned: the number of a table or function written before */
  T_GLOBALS, /* the writing state's global table: the reader's */
  T_END
};

#define MAX_DEPTH 200

void laloop_buf_free(laloop_buf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

static void buf_add(laloop_buf *b, const void *src, size_t n) {
  if (b->cap - b->n < n) {
    size_t cap = b->cap ? b->cap : 64;
    char *p;
    while (cap - b->n < n)
      cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
      fputs("aloop: out of memory\n", stderr);
      abort();
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void buf_tag(laloop_buf *b, unsigned char tag) { buf_add(b, &tag, 1); }

/* ---- writing ------------------------------------------------------------ */

typedef struct writer {
  lua_State *L;
  laloop_buf *b;
  int seen;     /* stack index of the table: value -> number, or 0 */
  int globals;  /* stack index of L's global table */
  unsigned ids; /* tables and functions numbered so far */
  int depth;
  const char *dir;
  char *err;
  size_t errsz;
} writer;

/* Put a place in front of the message being built as the failure unwinds:
 * "field "a": " before "userdata cannot be copied". */
static int fail_at(writer *w, const char *place) {
  size_t pl = strlen(place), ml = strlen(w->err);
  if (pl + 2 + ml + 1 > w->errsz)
    return -1; /* deep enough to be told; keep the innermost part */
  memmove(w->err + pl + 2, w->err, ml + 1);
  memcpy(w->err, place, pl);
  memcpy(w->err + pl, ": ", 2);
  return -1;
}

static int fail(writer *w, const char *what) {
  snprintf(w->err, w->errsz, "%s cannot be copied %s", what, w->dir);
  return -1;
}

/* The place of a key, as a message names it. */
static void key_place(lua_State *L, int k, char *out, size_t n) {
  switch (lua_type(L, k)) {
  case LUA_TSTRING:
    snprintf(out, n, "field \"%.60s\"", lua_tostring(L, k));
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, k))
      snprintf(out, n, "index " LUA_INTEGER_FMT, lua_tointeger(L, k));
    else
      snprintf(out, n, "key " LUA_NUMBER_FMT, lua_tonumber(L, k));
    break;
  case LUA_TBOOLEAN:
    snprintf(out, n, "key %s", lua_toboolean(L, k) ? "true" : "false");
    break;
  default:
    snprintf(out, n, "key (a %s)", luaL_typename(L, k));
  }
}

static int put(writer *w, int idx);

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  buf_add(ud, p, sz);
  return 0;
}

/* A table or function seen before is written as its number; else it gets
 * the next number. Returns 1 when written as a reference. */
static int put_ref(writer *w, int idx) {
  unsigned id;
  if (!w->seen) {
    lua_newtable(w->L);
    w->seen = lua_gettop(w->L);
  }
  lua_pushvalue(w->L, idx);
  if (lua_rawget(w->L, w->seen) == LUA_TNUMBER) {
    id = (unsigned)lua_tointeger(w->L, -1);
    lua_pop(w->L, 1);
    buf_tag(w->b, T_REF);
    buf_add(w->b, &id, sizeof id);
    return 1;
  }
  lua_pop(w->L, 1);
  lua_pushvalue(w->L, idx);
  lua_pushinteger(w->L, ++w->ids);
  lua_rawset(w->L, w->seen);
  return 0;
}

static int put_table(writer *w, int idx) {
  lua_State *L = w->L;
  char place[96];
  if (lua_getmetatable(L, idx)) {
    lua_pop(L, 1);
    return fail(w, "table with a metatable");
  }
  if (put_ref(w, idx))
    return 0;
  buf_tag(w->b, T_TABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1;
    if (put(w, k) != 0) {
      lua_pop(L, 2);
      return fail_at(w, "a key");
    }
    if (put(w, k + 1) != 0) {
      key_place(L, k, place, sizeof place);
      lua_pop(L, 2);
      return fail_at(w, place);
    }
    lua_pop(L, 1);
  }
  buf_tag(w->b, T_END);
  return 0;
}

static int put_function(writer *w, int idx) {
  lua_State *L = w->L;
  size_t at, len;
  int i;
  const char *name;
  if (lua_iscfunction(L, idx))
    return fail(w, "C function");
  if (put_ref(w, idx))
    return 0;
  buf_tag(w->b, T_FUNC);
  at = w->b->n;
  len = 0;
  buf_add(w->b, &len, sizeof len);
  lua_pushvalue(L, idx);
  lua_dump(L, dump_writer, w->b, 0); /* not stripped: names and lines */
  lua_pop(L, 1);
  len = w->b->n - at - sizeof len;
  memcpy(w->b->p + at, &len, sizeof len);
  for (i = 1; (name = lua_getupvalue(L, idx, i)) != NULL; i++) {
    char place[96];
    if (strcmp(name, "_ENV") == 0) { /* the function's globals: the reader's */
      buf_tag(w->b, T_GLOBALS);
      lua_pop(L, 1);
      continue;
    }
    if (put(w, lua_gettop(L)) != 0) {
      snprintf(place, sizeof place, "upvalue \"%.60s\"", *name ? name : "?");
      lua_pop(L, 1);
      return fail_at(w, place);
    }
    lua_pop(L, 1);
  }
  buf_tag(w->b, T_END);
  return 0;
}

static int put(writer *w, int idx) {
  lua_State *L = w->L;
  int r = 0;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    buf_tag(w->b, T_NIL);
    return 0;
  case LUA_TBOOLEAN:
    buf_tag(w->b, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
    return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      buf_tag(w->b, T_INT);
      buf_add(w->b, &i, sizeof i);
    } else {
      lua_Number d = lua_tonumber(L, idx);
      buf_tag(w->b, T_FLT);
      buf_add(w->b, &d, sizeof d);
    }
    return 0;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    buf_tag(w->b, T_STR);
    buf_add(w->b, &len, sizeof len);
    buf_add(w->b, s, len);
    return 0;
  }
  case LUA_TTABLE:
  case LUA_TFUNCTION:
    if (lua_rawequal(L, idx, w->globals)) {
      buf_tag(w->b, T_GLOBALS);
      return 0;
    }
    if (w->depth >= MAX_DEPTH)
      return fail(w, "a value nested this deep");
    if (!lua_checkstack(L, 8))
      return fail(w, "a value nested this deep");
    w->depth++;
    r = lua_type(L, idx) == LUA_TTABLE ? put_table(w, idx)
                                       : put_function(w, idx);
    w->depth--;
    return r;
  case LUA_TTHREAD:
    return fail(w, "coroutine");
  case LUA_TLIGHTUSERDATA:
    return fail(w, "light userdata");
  default:
    return fail(w, "userdata");
  }
}

int laloop_copy_out(lua_State *L, int first, int n, laloop_buf *b,
                    const char *label, int base, const char *dir, char *err,
                    size_t errsz) {
  writer w;
  int top, i, r = 0;
  first = lua_absindex(L, first);
  luaL_checkstack(L, 8, "copying values");
  top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  w.L = L;
  w.b = b;
  w.seen = 0;
  w.globals = lua_gettop(L);
  w.ids = 0;
  w.depth = 0;
  w.dir = dir;
  w.err = err;
  w.errsz = errsz;
  for (i = 0; i < n && r == 0; i++) {
    if ((r = put(&w, first + i)) != 0) {
      char place[48];
      snprintf(place, sizeof place, "%s #%d", label, base + i);
      fail_at(&w, place);
    }
  }
  lua_settop(L, top);
  return r;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct reader {
  lua_State *L;
  const char *p, *end;
  int ids;       /* stack index of the table: number -> value */
  lua_Integer n; /* tables and functions made so far */
} reader;

static void take(reader *r, void *dst, size_t n) {
  if ((size_t)(r->end - r->p) < n)
    luaL_error(r->L, "aloop: corrupt copy buffer");
  memcpy(dst, r->p, n);
  r->p += n;
}

static unsigned char peek(reader *r) {
  if (r->p >= r->end)
    luaL_error(r->L, "aloop: corrupt copy buffer");
  return (unsigned char)*r->p;
}

static void get(reader *r);

static void number_it(reader *r) {
  lua_pushvalue(r->L, -1);
  lua_rawseti(r->L, r->ids, ++r->n);
}

static void get_table(reader *r) {
  lua_State *L = r->L;
  lua_newtable(L);
  number_it(r);
  while (peek(r) != T_END) {
    get(r);
    get(r);
    lua_rawset(L, -3);
  }
  r->p++;
}

static void get_function(reader *r) {
  lua_State *L = r->L;
  size_t len;
  int i;
  take(r, &len, sizeof len);
  if ((size_t)(r->end - r->p) < len)
    luaL_error(L, "aloop: corrupt copy buffer");
  if (luaL_loadbufferx(L, r->p, len, "=(copied function)", "b") != LUA_OK)
    lua_error(L);
  r->p += len;
  number_it(r);
  for (i = 1; peek(r) != T_END; i++) {
    get(r);
    if (!lua_setupvalue(L, -2, i))
      lua_pop(L, 1);
  }
  r->p++;
}

static void get(reader *r) {
  lua_State *L = r->L;
  unsigned char tag;
  luaL_checkstack(L, 4, "copying values");
  take(r, &tag, 1);
  switch (tag) {
  case T_NIL:
    lua_pushnil(L);
    break;
  case T_FALSE:
  case T_TRUE:
    lua_pushboolean(L, tag == T_TRUE);
    break;
  case T_INT: {
    lua_Integer i;
    take(r, &i, sizeof i);
    lua_pushinteger(L, i);
    break;
  }
  case T_FLT: {
    lua_Number d;
    take(r, &d, sizeof d);
    lua_pushnumber(L, d);
    break;
  }
  case T_STR: {
    size_t len;
    take(r, &len, sizeof len);
    if ((size_t)(r->end - r->p) < len)
      luaL_error(L, "aloop: corrupt copy buffer");
    lua_pushlstring(L, r->p, len);
    r->p += len;
    break;
  }
  case T_TABLE:
    get_table(r);
    break;
  case T_FUNC:
    get_function(r);
    break;
  case T_REF: {
    unsigned id;
    take(r, &id, sizeof id);
    lua_rawgeti(L, r->ids, (lua_Integer)id);
    break;
  }
  case T_GLOBALS:
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    break;
  default:
    luaL_error(L, "aloop: corrupt copy buffer");
  }
}

int laloop_copy_in(lua_State *L, const char *p, size_t n) {
  reader r;
  int base = lua_gettop(L), count = 0;
  r.L = L;
  r.p = p;
  r.end = p + n;
  r.n = 0;
  lua_newtable(L);
  r.ids = lua_gettop(L);
  while (r.p < r.end) {
    get(&r);
    count++;
  }
  lua_remove(L, base + 1);
  return count;
}
