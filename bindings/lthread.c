/* lthread.c -- aloop.to_thread: a function run on one of the loop's worker
 * threads (core/pool.c), each with a Lua state of its own that it keeps
 * from job to job. The function, its arguments and its results cross
 * between the states as copies (lcopy.c); the awaiting task parks on the
 * job with the one wait protocol, and a cancel lets the job run on with
 * its outcome dropped. Also aloop._threads, which aloop/threads.lua builds
 * loop:run_in_executor on, and the pool's size and closing. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "../core/al_pool.h"
#include "lcopy.h"

#define LALOOP_JOB_MT "aloop.ThreadJob"
#define DEFAULT_EXIT_TIMEOUT 30.0

enum {
  LJ_OK = 0, /* out: the results */
  LJ_ERROR,  /* out: the error value (a string with the traceback) */
  LJ_FAILED  /* out: a string: aloop's own message (copy, memory) */
};

/* A job: the core's record, what goes to the thread (package.path,
 * package.cpath, the function and its arguments) and what comes back. */
typedef struct ljob {
  al_job_t j; /* first */
  laloop_buf in, out;
  int status;
} ljob;

/* What run_in_executor holds: the job until it was waited for. */
typedef struct ljobref {
  ljob *lj;
} ljobref;

/* ---- on the worker thread ----------------------------------------------- */

/* The traceback of an error, where it was raised in the job: a string error
 * gets it appended; any other value is left as it is, its traceback kept in
 * the registry for the job to pick up. */
static int thread_msgh(lua_State *T) {
  if (lua_type(T, 1) == LUA_TSTRING) {
    luaL_traceback(T, T, lua_tostring(T, 1), 1);
    return 1;
  }
  luaL_traceback(T, T, NULL, 1);
  lua_setfield(T, LUA_REGISTRYINDEX, "aloop.thread_tb");
  lua_settop(T, 1);
  return 1;
}

static void set_package(lua_State *T, int path, int cpath) {
  if (lua_getglobal(T, "package") == LUA_TTABLE) {
    if (lua_type(T, path) == LUA_TSTRING) {
      lua_pushvalue(T, path);
      lua_setfield(T, -2, "path");
    }
    if (lua_type(T, cpath) == LUA_TSTRING) {
      lua_pushvalue(T, cpath);
      lua_setfield(T, -2, "cpath");
    }
  }
  lua_pop(T, 1);
}

/* The job failed in aloop's hands: out is the message, as plain text. */
static void set_failed(ljob *lj, const char *msg) {
  size_t len = strlen(msg);
  laloop_buf_free(&lj->out);
  lj->status = LJ_FAILED;
  lj->out.p = malloc(len + 1);
  if (!lj->out.p)
    abort();
  memcpy(lj->out.p, msg, len + 1);
  lj->out.n = len;
  lj->out.cap = len + 1;
}

/* Runs under lua_pcall in the thread's state: job (a light userdata). */
static int job_body(lua_State *T) {
  ljob *lj = lua_touserdata(T, 1);
  char err[256];
  int n, status, msgh, nres;
  lua_settop(T, 0);
  n = laloop_copy_in(T, lj->in.p, lj->in.n); /* path, cpath, fn, args */
  set_package(T, 1, 2);
  lua_pushcfunction(T, thread_msgh);
  lua_replace(T, 2);
  msgh = 2;
  status = lua_pcall(T, n - 3, LUA_MULTRET, msgh);
  if (status == LUA_OK) {
    nres = lua_gettop(T) - msgh;
    lj->status = LJ_OK;
    if (laloop_copy_out(T, msgh + 1, nres, &lj->out, "result", 1,
                        "back from a thread", err, sizeof err) != 0)
      set_failed(lj, err);
    return 0;
  }
  lj->status = LJ_ERROR;
  if (laloop_copy_out(T, -1, 1, &lj->out, "error", 1, "back from a thread", err,
                      sizeof err) != 0) {
    /* An error value that cannot come back: its description, and the
     * traceback (lua.c's message handler does the same). */
    laloop_buf_free(&lj->out);
    lua_getfield(T, LUA_REGISTRYINDEX, "aloop.thread_tb");
    lua_pushfstring(T, "(error object is a %s value)\n%s", luaL_typename(T, -2),
                    lua_isstring(T, -1) ? lua_tostring(T, -1) : "");
    laloop_copy_out(T, -1, 1, &lj->out, "error", 1, "back from a thread", err,
                    sizeof err);
  }
  return 0;
}

static void job_run(al_job_t *j, void **thread_state) {
  ljob *lj = (ljob *)j;
  lua_State *T = *thread_state;
  if (!T) {
    T = luaL_newstate();
    if (!T) {
      set_failed(lj, "cannot create a Lua state for the worker thread");
      return;
    }
    luaL_openlibs(T);
    *thread_state = T;
  }
  lua_settop(T, 0);
  lua_pushcfunction(T, job_body);
  lua_pushlightuserdata(T, lj);
  if (lua_pcall(T, 1, 0, 0) != LUA_OK) { /* out of memory, say */
    const char *msg = lua_tostring(T, -1);
    set_failed(lj, msg ? msg : "error in a worker thread");
  }
  lua_settop(T, 0);
  lua_pushnil(T);
  lua_setfield(T, LUA_REGISTRYINDEX, "aloop.thread_tb");
}

static void job_free(al_job_t *j) {
  ljob *lj = (ljob *)j;
  laloop_buf_free(&lj->in);
  laloop_buf_free(&lj->out);
  free(lj);
}

static void thread_exit(void *state) { lua_close(state); }

/* ---- on the loop's thread ----------------------------------------------- */

static unsigned default_size(void) {
  const char *e = getenv("ALOOP_THREADS");
  if (e && *e) {
    char *end;
    long n = strtol(e, &end, 10);
    if (*end == '\0' && n > 0 && n <= 1024)
      return (unsigned)n;
  }
  return al_pool_cpus();
}

static al_pool_t *get_pool(lstate *S) {
  if (!S->pool)
    S->pool = al_pool_new(
        &S->loop, S->pool_size ? S->pool_size : default_size(), thread_exit);
  return S->pool;
}

/* Copy fn (at fidx) and the values after it into a new job and queue it;
 * raises, naming fname and the offending value, when one cannot be
 * copied, `level` being where the blame goes (luaL_where). */
static ljob *submit(lua_State *L, lstate *S, int fidx, const char *fname,
                    int argbase, int level) {
  ljob *lj;
  char err[256];
  int top = lua_gettop(L), rc;
  luaL_checkstack(L, 4, NULL);
  lj = calloc(1, sizeof *lj);
  if (!lj)
    luaL_error(L, "not enough memory");
  lj->j.run = job_run;
  lj->j.free = job_free;
  if (lua_getglobal(L, "package") == LUA_TTABLE) {
    lua_getfield(L, -1, "path");
    lua_getfield(L, -2, "cpath");
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  rc = laloop_copy_out(L, top + 2, 2, &lj->in, "package", 0, "to a thread", err,
                       sizeof err);
  lua_settop(L, top);
  if (rc == 0)
    rc = laloop_copy_out(L, fidx, top - fidx + 1, &lj->in, "argument", argbase,
                         "to a thread", err, sizeof err);
  if (rc != 0) {
    job_free(&lj->j);
    luaL_where(L, level);
    lua_pushfstring(L, "aloop.%s: %s", fname, err);
    lua_concat(L, 2);
    lua_error(L);
  }
  if ((rc = al_pool_submit(get_pool(S), &lj->j)) != 0) {
    job_free(&lj->j);
    laloop_oserror(L, rc, "cannot start a worker thread");
  }
  return lj;
}

/* The outcome of a job that is done: its results pushed (how many
 * returned), or its error raised. The job is released either way. */
static int finish(lua_State *L, ljob *lj) {
  int n;
  if (lj->status == LJ_FAILED) {
    lua_pushlstring(L, lj->out.p, lj->out.n);
    al_pool_release(&lj->j);
    luaL_where(L, 1);
    lua_pushliteral(L, "aloop.to_thread: ");
    lua_rotate(L, -3, 2);
    lua_concat(L, 3);
    return lua_error(L);
  }
  n = laloop_copy_in(L, lj->out.p, lj->out.n);
  if (lj->status == LJ_ERROR) {
    al_pool_release(&lj->j);
    return lua_error(L);
  }
  al_pool_release(&lj->j);
  return n;
}

/* A cancelled wait lets go of the job: it runs on, its outcome dropped. */
static int tt_forfeit(ltask *lt, void *lj) {
  (void)lt;
  al_pool_release(&((ljob *)lj)->j);
  return 0;
}

static int tt_k(lua_State *L, int status, lua_KContext ctx) {
  ljob *lj = (ljob *)ctx;
  laloop_woken(L, status, ctx, tt_k, tt_forfeit, lj);
  return finish(L, lj);
}

/* to_thread(fn, ...) -> what fn(...) returns, run on a worker thread. */
static int l_to_thread(lua_State *L) {
  lstate *S = laloop_state(L);
  ltask *lt;
  ljob *lj;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lt = laloop_current(L, "to_thread");
  lj = submit(L, S, 1, "to_thread", 1, 1);
  lua_settop(L, 0);
  al_pool_park(&lj->j, &lt->t);
  return laloop_park(L, (lua_KContext)lj, tt_k);
}

/* _threads.submit(level, fname, argbase, fn, ...) -> job (run_in_executor:
 * the job starts at once, a task waits for it). */
static int l_submit(lua_State *L) {
  lstate *S = laloop_state(L);
  int level = (int)luaL_checkinteger(L, 1);
  const char *fname = luaL_checkstring(L, 2);
  int argbase = (int)luaL_checkinteger(L, 3);
  ljobref *ref;
  luaL_checktype(L, 4, LUA_TFUNCTION);
  ref = lua_newuserdatauv(L, sizeof *ref, 0);
  ref->lj = NULL;
  luaL_setmetatable(L, LALOOP_JOB_MT);
  lua_insert(L, 4);
  ref->lj = submit(L, S, 5, fname, argbase, level + 1);
  lua_settop(L, 4);
  return 1;
}

static int wait_forfeit(ltask *lt, void *ref) {
  ljob *lj = ((ljobref *)ref)->lj;
  (void)lt;
  ((ljobref *)ref)->lj = NULL;
  al_pool_release(&lj->j);
  return 0;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  ljobref *ref = (ljobref *)ctx;
  ljob *lj;
  laloop_woken(L, status, ctx, wait_k, wait_forfeit, ref);
  lj = ref->lj;
  ref->lj = NULL;
  lua_settop(L, 0);
  return finish(L, lj);
}

/* _threads.wait(job) -> its results (once). */
static int l_wait(lua_State *L) {
  ljobref *ref = luaL_checkudata(L, 1, LALOOP_JOB_MT);
  ltask *lt = laloop_current(L, "to_thread");
  luaL_argcheck(L, ref->lj != NULL, 1, "job already waited for");
  if (ref->lj->j.done)
    return wait_k(L, LUA_OK, (lua_KContext)ref);
  al_pool_park(&ref->lj->j, &lt->t);
  return laloop_park(L, (lua_KContext)ref, wait_k);
}

/* _threads.release(job): let go of a job nobody will wait for (its waiter
 * was cancelled before it started). */
static int l_release(lua_State *L) {
  ljobref *ref = luaL_checkudata(L, 1, LALOOP_JOB_MT);
  if (ref->lj)
    al_pool_release(&ref->lj->j);
  ref->lj = NULL;
  return 0;
}

static int job_gc(lua_State *L) {
  lstate *S = lua_touserdata(L, lua_upvalueindex(1));
  ljobref *ref = luaL_checkudata(L, 1, LALOOP_JOB_MT);
  if (S && !S->closed && ref->lj)
    al_pool_release(&ref->lj->j);
  ref->lj = NULL;
  return 0;
}

/* set_thread_pool_size(n): at most n worker threads from now on. */
static int l_set_size(lua_State *L) {
  lstate *S = laloop_state(L);
  int isint;
  lua_Integer n = lua_tointegerx(L, 1, &isint);
  if (!isint)
    return luaL_typeerror(L, 1, "integer");
  luaL_argcheck(L, n >= 1 && n <= 1024, 1, "from 1 to 1024 expected");
  S->pool_size = (unsigned)n;
  if (S->pool)
    al_pool_set_size(S->pool, (unsigned)n);
  return 0;
}

static int l_get_size(lua_State *L) {
  lstate *S = laloop_state(L);
  lua_pushinteger(
      L, S->pool ? (lua_Integer)al_pool_size(S->pool)
                 : (lua_Integer)(S->pool_size ? S->pool_size : default_size()));
  return 1;
}

/* _threads.stats(): {threads, idle, size, queued, running, jobs}. */
static int l_stats(lua_State *L) {
  lstate *S = laloop_state(L);
  al_pool_stats_t st = {0, 0, 0, 0, 0, 0};
  if (S->pool)
    al_pool_get_stats(S->pool, &st);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, st.threads);
  lua_setfield(L, -2, "threads");
  lua_pushinteger(L, st.idle);
  lua_setfield(L, -2, "idle");
  lua_pushinteger(L, st.size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.queued);
  lua_setfield(L, -2, "queued");
  lua_pushinteger(L, (lua_Integer)st.running);
  lua_setfield(L, -2, "running");
  lua_pushinteger(L, (lua_Integer)st.jobs);
  lua_setfield(L, -2, "jobs");
  return 1;
}

/* Keep this module's code mapped for good: a thread that still runs a job
 * as the loop closes must not find it unloaded under it (lua_close
 * dlcloses the C modules it loaded, this one too). */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)(uintptr_t)pin_module, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void laloop_threads_close(lstate *S) {
  const char *e = getenv("ALOOP_THREAD_EXIT_TIMEOUT");
  double timeout = DEFAULT_EXIT_TIMEOUT;
  unsigned left;
  if (!S->pool)
    return;
  if (e && *e) {
    char *end;
    double t = strtod(e, &end);
    if (*end == '\0' && t == t)
      timeout = t;
  }
  left = al_pool_close(S->pool, timeout);
  S->pool = NULL;
  if (left > 0) {
    pin_module();
    fprintf(stderr,
            "aloop: %u worker thread%s still running a job after %g s as "
            "the loop closes; not waiting for %s\n",
            left, left == 1 ? "" : "s", timeout, left == 1 ? "it" : "them");
  }
}

void laloop_open_threads(lua_State *L, int mod, int up) {
  static const luaL_Reg fns[] = {{"to_thread", l_to_thread},
                                 {"set_thread_pool_size", l_set_size},
                                 {"get_thread_pool_size", l_get_size},
                                 {NULL, NULL}};
  static const luaL_Reg priv[] = {{"submit", l_submit},
                                  {"wait", l_wait},
                                  {"release", l_release},
                                  {"stats", l_stats},
                                  {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__gc", job_gc}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{NULL, NULL}};
  laloop_new_class(L, up, LALOOP_JOB_MT, methods, metas);
  lua_pushvalue(L, mod);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, up);
  luaL_setfuncs(L, priv, 1);
  lua_setfield(L, mod, "_threads");
}
