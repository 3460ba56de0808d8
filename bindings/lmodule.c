/* lmodule.c -- the `aloop` module: the per-state loop record and its
 * anchors, opening the module (the C areas, then the parts written in Lua:
 * lparts.c), and the module's small functions. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "aloop.h"
#include "laloop.h"
#include "lcopy.h"
#include "lstream.h"

const char laloop_state_key = 0;

/* ---- finding the state -------------------------------------------------- */

/* Most processes open aloop in one Lua state only: while that holds, its
 * loop is found without reading an upvalue (which costs a fifth of an
 * await). The word holds that state, or MANY for good once a second state
 * opens aloop or the first closes; a state's own thread reads MANY from
 * the moment it has opened, so it never takes another state's loop. */
#define MANY LALOOP_MANY_STATES
#define only_state laloop_only_state
_Atomic uintptr_t laloop_only_state;

/* The state through the upvalue; a closed one (its loop was finalised as
 * the Lua state closes, and a finaliser called aloop after that) raises,
 * as nothing may touch the loop any more. A closed state is never the
 * only_state, so the fast path needs no check. */
lstate *laloop_state_slow(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  /* No position: the caller may be one of aloop's own Lua parts. */
  if (!S || lua_rawlen(L, lua_upvalueindex(1)) != sizeof *S) {
    lua_pushliteral(L, "aloop: called without its loop (a method called on "
                       "the wrong object?)");
    lua_error(L);
  }
  if (S->closed) {
    lua_pushliteral(L, "aloop is closed (its loop was finalised as the Lua "
                       "state closed)");
    lua_error(L);
  }
  return S;
}


static void note_state_opened(lstate *S) {
  uintptr_t none = 0;
  if (!atomic_compare_exchange_strong(&only_state, &none, (uintptr_t)S))
    atomic_store(&only_state, MANY);
}

lstate *laloop_find_state(lua_State *L) {
  lstate *S;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &laloop_state_key);
  S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return S && !S->closed ? S : NULL;
}

/* ---- anchors and shared checks ----------------------------------------- */



/* Anchors are slots of the anchors table's array part; the free ones are
 * kept on a stack in C, which costs half of luaL_ref and luaL_unref (whose
 * free list lives in the table, and which look up its length). */
int laloop_anchor(lua_State *L, lstate *S, int idx) {
  int ref;
  idx = lua_absindex(L, idx);
  if (S->closed) /* the free list is gone: nothing may be anchored now */
    luaL_error(L, "aloop is closed (its loop was finalised as the Lua state "
                  "closed)");
  if (S->anchor.nfree > 0) {
    ref = S->anchor.free[--S->anchor.nfree];
  } else {
    if (S->anchor.top == S->anchor.cap) { /* room to free every slot */
      int cap = S->anchor.cap ? S->anchor.cap * 2 : 64;
      int *p = realloc(S->anchor.free, (size_t)cap * sizeof *p);
      if (!p)
        luaL_error(L, "not enough memory");
      S->anchor.free = p;
      S->anchor.cap = cap;
    }
    ref = ++S->anchor.top;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, ref);
  lua_pop(L, 1);
  return ref;
}

void laloop_unanchor(lua_State *L, lstate *S, int ref) {
  if (ref == LUA_NOREF)
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_pushnil(L);
  lua_rawseti(L, -2, ref);
  lua_pop(L, 1);
  if (!S->closed) /* (the loop's finaliser freed the list) */
    S->anchor.free[S->anchor.nfree++] = ref; /* cap >= top: always room */
}

void laloop_push_anchored(lua_State *L, lstate *S, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_rawgeti(L, -1, ref);
  lua_remove(L, -2);
}

void *laloop_check_class(lua_State *L, int idx, const void *mt,
                         const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (!p || laloop_class_of(L, idx) != mt)
    luaL_typeerror(L, idx, tname);
  return p;
}

int laloop_is_callable(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TFUNCTION)
    return 1;
  if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

double laloop_check_delay(lua_State *L, int idx) {
  double d;
  luaL_argexpected(L, lua_type(L, idx) == LUA_TNUMBER, idx, "number");
  d = lua_tonumber(L, idx);
  luaL_argcheck(L, d == d, idx, "not a number");
  return d < 0 ? 0 : d;
}

/* ---- registration ------------------------------------------------------- */

int laloop_class_ref(lua_State *L) {
  lua_pushvalue(L, -1);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

const void *laloop_new_class(lua_State *L, int up, const char *name,
                             const luaL_Reg *methods, const luaL_Reg *metas) {
  const void *mt;
  luaL_newmetatable(L, name);
  mt = lua_topointer(L, -1);
  /* also under its own address, for lua_rawgetp without string lookups */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, mt);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, metas, 1);
  lua_newtable(L);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, methods, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  /* Protected: getmetatable gives the methods, never __gc and the rest,
   * which must not be called by hand. */
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  return mt;
}

int laloop_gc_twin(lua_State *L, int up, lua_CFunction gc, const void **mt) {
  static const char *const shared[] = {"__index", "__tostring", "__metatable",
                                       "__name"};
  size_t i;
  lua_createtable(L, 0, 5);
  for (i = 0; i < sizeof shared / sizeof *shared; i++) {
    lua_getfield(L, -2, shared[i]);
    lua_setfield(L, -2, shared[i]);
  }
  lua_pushvalue(L, up);
  lua_pushcclosure(L, gc, 1);
  lua_setfield(L, -2, "__gc");
  *mt = lua_topointer(L, -1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, *mt);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

void *laloop_gc_self(lua_State *L, const void *mt, const char *tname) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  void *p = laloop_check_class(L, 1, mt, tname);
  return S && !S->closed ? p : NULL;
}

/* ---- small functions ---------------------------------------------------- */

static int l_time(lua_State *L) {
  lua_pushnumber(L, al_time());
  return 1;
}

static int l_current_task(lua_State *L) {
  lstate *S = laloop_state(L);
  if (S->sched.cur && S->sched.cur->co == L)
    laloop_push_anchored(L, S, S->sched.cur->ref);
  else
    lua_pushnil(L);
  return 1;
}

static int l_get_running_loop(lua_State *L) {
  lstate *S = laloop_state(L);
  if (!S->sched.cur && !al_loop_running(&S->loop))
    return luaL_error(L, "no running event loop");
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

static int l_get_event_loop(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

/* _traceback(err): the traceback kept for err where it was raised in a
 * task, or nil (for hosts that report errors, such as the command). */
static int l_traceback(lua_State *L) {
  lstate *S = laloop_state(L);
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  lua_getfield(L, 2, "last_err");
  if (!lua_isnil(L, 1) && lua_rawequal(L, 1, 3))
    lua_getfield(L, 2, "last_tb");
  else
    lua_pushnil(L);
  return 1;
}

/* set_debug(on [, seconds]): report steps longer than seconds (0.1) and
 * where failed tasks were created. */
static int l_set_debug(lua_State *L) {
  lstate *S = laloop_state(L);
  double s = luaL_optnumber(L, 2, S->debug.slow_step);
  luaL_argcheck(L, s == s, 2, "not a number");
  luaL_argcheck(L, s >= 0, 2, "must not be negative");
  S->debug.on = lua_toboolean(L, 1);
  S->debug.slow_step = s;
  return 0;
}

static int l_get_debug(lua_State *L) {
  lua_pushboolean(L, laloop_state(L)->debug.on);
  return 1;
}

static int l_stats(lua_State *L) {
  lstate *S = laloop_state(L);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)S->loop.ntasks);
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, (lua_Integer)S->loop.nready);
  lua_setfield(L, -2, "ready");
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->anchors);
  {
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) != LUA_TNUMBER)
        n++;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "anchored");
  }
  return 1;
}

/* ---- the loop object's lifetime ----------------------------------------- */

static int loop_gc(lua_State *L) {
  lstate *S = luaL_checkudata(L, 1, LALOOP_LOOP_MT);
  if (S->closed)
    return 0;
  laloop_close_tasks(L, S); /* first, as their finalisers used to run */
  S->closed = 1;
  atomic_store(&only_state, MANY);
  if (S->embed.close)
    S->embed.close(S);
  laloop_stop_sigint(S);
  laloop_close_signals(S);
  laloop_dns_close(S);
  laloop_threads_close(S);
  laloop_http_close(S);
  laloop_close_procs(S);
  al_loop_close(&S->loop);
  free(S->anchor.free);
  S->anchor.free = NULL;
  S->anchor.nfree = S->anchor.cap = 0;
  if (S->own_ev)
    ev_loop_destroy(S->loop.ev);
  return 0;
}

/* t[name] = a new table with metatable mt (at mt_idx). */
static void new_weak_table(lua_State *L, int mt_idx, const char *name) {
  mt_idx = lua_absindex(L, mt_idx);
  lua_newtable(L);
  lua_pushvalue(L, mt_idx);
  lua_setmetatable(L, -2);
  lua_setfield(L, mt_idx - 1, name);
}

/* Find or create the state's loop; leaves the loop userdata on the stack. */
static lstate *get_state(lua_State *L, struct ev_loop *ev) {
  lstate *S;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &laloop_state_key) == LUA_TUSERDATA) {
    S = lua_touserdata(L, -1);
    if (ev && ev != S->loop.ev)
      luaL_error(L, "aloop is already open in this state, on another loop");
    return S;
  }
  lua_pop(L, 1);
  S = lua_newuserdatauv(L, sizeof *S, 0);
  memset(S, 0, sizeof *S);
  if (!ev) {
    /* A loop of its own, never libev's default loop: that one reaps every
     * child process, so io.popen():close() would lose its status. A
     * backend that can be embedded has a pollable fd (aloop_pollfd). */
    ev = ev_loop_new(ev_recommended_backends() & ev_embeddable_backends());
    if (!ev)
      ev = ev_loop_new(0);
    if (!ev)
      luaL_error(L, "aloop: cannot create an event loop");
    S->own_ev = 1;
  }
  al_loop_init(&S->loop, ev);
  S->loop.data = S;
  al_scope_init(&S->embed.root, NULL);
  S->embed.pollfd = LALOOP_POLLFD_UNKNOWN;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->L = lua_tothread(L, -1);
  note_state_opened(S);
  lua_pop(L, 1);
  S->sched.driver = S->L;
  S->sigint.handle = 1;
  S->debug.slow_step = 0.1;
  {
    const char *d = getenv("ALOOP_DEBUG");
    S->debug.on = d && *d && strcmp(d, "0") != 0;
  }
  /* anchors: array part for refs; "failed" is a weak set of failed tasks,
   * "extras" the weak table of what few tasks have (name, traceback),
   * "donecbs" the done callbacks of each future (lfuture.c: they live as
   * long as their future) and "donecb_at" the same callbacks by address */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  new_weak_table(L, -1, "failed");
  new_weak_table(L, -1, "extras");
  new_weak_table(L, -1, "donecbs");
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  new_weak_table(L, -1, "donecb_at");
  lua_pop(L, 1);
  S->anchors = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_setmetatable(L, LALOOP_LOOP_MT);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &laloop_state_key);
  return S;
}

int laloop_open(lua_State *L, struct ev_loop *ev) {
  static const luaL_Reg fns[] = {{"time", l_time},
                                 {"current_task", l_current_task},
                                 {"get_running_loop", l_get_running_loop},
                                 {"get_event_loop", l_get_event_loop},
                                 {"set_debug", l_set_debug},
                                 {"get_debug", l_get_debug},
                                 {"_stats", l_stats},
                                 {"_traceback", l_traceback},
                                 {NULL, NULL}};
  int up, mod;
  luaL_checkversion(L);
  if (luaL_newmetatable(L, LALOOP_LOOP_MT)) {
    lua_pushcfunction(L, loop_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  get_state(L, ev);
  up = lua_gettop(L);
  lua_newtable(L);
  mod = lua_gettop(L);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  laloop_open_errors(L, mod);
  laloop_open_run(L, mod, up);
  laloop_open_tasks(L, mod, up);
  laloop_open_futures(L, mod, up);
  laloop_open_donecbs(L, up);
  laloop_open_gather(L, mod, up);
  laloop_open_loop(L, mod, up);
  laloop_open_sync(L, mod, up);
  laloop_open_signals(L, mod, up);
  laloop_open_dns(L, mod, up);
  laloop_open_streams(L, mod, up);
  laloop_open_threads(L, mod, up);
  laloop_open_http(L, mod, up);
  laloop_open_procs(L, mod, up);
  lua_pushliteral(L, ALOOP_VERSION);
  lua_setfield(L, mod, "_VERSION");
  laloop_open_parts(L, mod, up);
  lua_remove(L, up);
  return 1;
}

/* Network reads and writes make and drop large strings at a high rate.
 * glibc's default gives the pages of freed large blocks back to the kernel
 * at once and faults them in again on the next allocation: a third of the
 * throughput of a bulk transfer (bench/bulk.lua, 1 GiB: ~700 against ~2300
 * MB/s). So when aloop is the program's runtime (`require "aloop"`, the
 * aloop command; never through aloop_openlib, whose host owns its process)
 * it grows and trims the heap 16 MiB at a time and serves blocks below
 * 4 MiB from the heap. (A 64 MiB M_TRIM_THRESHOLD as well made spawning a
 * million tasks 25% slower.) A MALLOC_* variable in the environment
 * (glibc's own tuning) leaves all this alone. */
static void tune_malloc(void) {
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD)
  static int done;
  if (done)
    return;
  done = 1;
  if (getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_TOP_PAD_") ||
      getenv("MALLOC_MMAP_THRESHOLD_") || getenv("GLIBC_TUNABLES"))
    return;
  mallopt(M_TOP_PAD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
}

int luaopen_aloop(lua_State *L) {
  tune_malloc();
  return laloop_open(L, NULL);
}
