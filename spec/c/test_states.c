/* test_states.c -- aloop in several Lua states of one process: a signal is
 * owned by one loop only (a second owner gets a clear error, not an abort in
 * libev), and states in two threads each find their own loop; and the
 * corners of a state's life the embedding API meets: aloop_shutdown called
 * from inside a task, aloop used after aloop_shutdown, aloop opened in a
 * state without the standard libraries. Prints TAP; driven by
 * spec/07-core_spec.lua. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "aloop.h"
#include "tap.h"


static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (aloop_openlib(L, NULL) != LUA_OK) {
    fprintf(stderr, "aloop_openlib: %s\n", lua_tostring(L, -1));
    return NULL;
  }
  lua_setglobal(L, "aloop");
  return L;
}

/* Run code; returns its string result (or the error's text) in buf. */
static int run(lua_State *L, const char *code, char *buf, size_t n) {
  int status = luaL_dostring(L, code);
  const char *s = lua_tostring(L, -1);
  snprintf(buf, n, "%s", s ? s : "(nil)");
  lua_settop(L, 0);
  return status;
}

static void test_signal_owner(void) {
  lua_State *a = new_state(), *b = new_state();
  char out[512];
  int st;
  st = run(a, "h = aloop.on_signal('SIGUSR1', function() end) return 'ok'",
           out, sizeof out);
  CHECK(st == LUA_OK && strcmp(out, "ok") == 0,
        "the first loop takes SIGUSR1");
  st = run(b, "aloop.on_signal('SIGUSR1', function() end) return 'took it'",
           out, sizeof out);
  CHECK(st != LUA_OK && strstr(out, "already watched by another aloop loop"),
        "a second loop asking for SIGUSR1 gets a clear error");
  st = run(b,
           "local ok, e = pcall(aloop.run, function() "
           "  return aloop.wait_signal('SIGUSR1') end) "
           "return tostring(e)",
           out, sizeof out);
  CHECK(st == LUA_OK && strstr(out, "already watched"),
        "wait_signal in the second loop gets it too");
  st = run(a, "h:cancel() return 'ok'", out, sizeof out);
  CHECK(st == LUA_OK, "the first loop lets it go");
  st = run(b,
           "local h = aloop.on_signal('SIGUSR1', function() end) h:cancel() "
           "return 'ok'",
           out, sizeof out);
  CHECK(st == LUA_OK && strcmp(out, "ok") == 0,
        "then the second loop may take it");
  run(a, "h2 = aloop.on_signal('SIGUSR2', function() end) return 'ok'", out,
      sizeof out);
  lua_close(a); /* closing a loop gives its signals back */
  st = run(b,
           "local h = aloop.on_signal('SIGUSR2', function() end) h:cancel() "
           "return 'ok'",
           out, sizeof out);
  CHECK(st == LUA_OK && strcmp(out, "ok") == 0,
        "a closed loop's signals are free again");
  lua_close(b);
}

/* Each thread runs its own state: 2 000 tasks handing a count around. */
static const char *work =
    "local q = aloop.Queue(1) "
    "return aloop.run(function() "
    "  local ts = {} "
    "  for i = 1, 2000 do ts[i] = aloop.create_task(function() "
    "    q:put(i) aloop.sleep(0) return q:get() end) end "
    "  local sum = 0 "
    "  for i = 1, 2000 do sum = sum + ts[i]:await() end "
    "  return tostring(sum) end)";

static void *thread_main(void *arg) {
  char *out = arg;
  lua_State *L = new_state();
  int i;
  for (i = 0; i < 20 && L; i++)
    if (run(L, work, out, 64) != LUA_OK)
      break;
  if (L)
    lua_close(L);
  return NULL;
}

static void test_threads(void) {
  pthread_t t1, t2;
  char out1[64] = "", out2[64] = "";
  pthread_create(&t1, NULL, thread_main, out1);
  pthread_create(&t2, NULL, thread_main, out2);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  CHECK(strcmp(out1, "2001000") == 0 && strcmp(out2, "2001000") == 0,
        "states in two threads run their own loops side by side");
}

/* aloop_shutdown from Lua code aloop runs: refused (W7). */
static int l_shutdown(lua_State *L) {
  int r = aloop_shutdown(L, 1.0);
  lua_pushinteger(L, r);
  if (r < 0)
    lua_insert(L, -2); /* r, message */
  return r < 0 ? 2 : 1;
}

static void test_shutdown(void) {
  lua_State *L = new_state();
  char out[512];
  int st;
  lua_register(L, "host_shutdown", l_shutdown);
  st = run(L,
           "return aloop.run(function() "
           "  local r, msg = host_shutdown() "
           "  aloop.sleep(0) "
           "  return r .. ' ' .. tostring(msg) end)",
           out, sizeof out);
  CHECK(st == LUA_OK &&
            strcmp(out, "-1 aloop_shutdown: called from inside aloop") == 0,
        "aloop_shutdown from inside a task is refused, the task goes on");
  st = run(L,
           "local loop = aloop.get_event_loop() "
           "local ok = pcall(loop.call_soon, loop, function() end) "
           "return tostring(ok)",
           out, sizeof out);
  CHECK(st == LUA_OK && strcmp(out, "true") == 0,
        "before the shutdown call_soon works");
  CHECK(aloop_shutdown(L, 1.0) == 0, "aloop_shutdown from the host: 0 left");
  st = run(L,
           "local loop = aloop.get_event_loop() "
           "local _, e1 = pcall(loop.call_later, loop, 0, print) "
           "local _, e2 = pcall(loop.call_soon, loop, print) "
           "local _, e3 = pcall(loop.call_at, loop, 0, print) "
           "local _, e4 = pcall(loop.create_task, loop, print) "
           "return table.concat({e1, e2, e3, e4}, '|')",
           out, sizeof out);
  CHECK(st == LUA_OK && strstr(out, "call_later: aloop was shut down") &&
            strstr(out, "call_soon: aloop was shut down") &&
            strstr(out, "call_at: aloop was shut down") &&
            strstr(out, "aloop was shut down: no task can run"),
        "after aloop_shutdown, call_soon/later/at and create_task raise (W10)");
  CHECK(aloop_shutdown(L, 1.0) == 0, "a second aloop_shutdown does nothing");
  lua_close(L);
}

/* aloop_openlib in a bare state: no standard library opened (B5). */
static void test_bare_state(void) {
  lua_State *L = luaL_newstate();
  char out[512];
  int st = aloop_openlib(L, NULL);
  CHECK(st == LUA_OK, "aloop_openlib works without luaL_openlibs");
  lua_setglobal(L, "aloop");
  st = run(L,
           "local t = {} "
           "local r = aloop.run(function() "
           "  local l = aloop.Lock() local q = aloop.Queue() "
           "  local tk = aloop.create_task(function() q:put(1) return 41 end) "
           "  local v = tk:await() + q:get() "
           "  return v end) "
           "return r",
           out, sizeof out);
  CHECK(st == LUA_OK && strcmp(out, "42") == 0,
        "tasks, queues and locks work in a state without the standard library");
  lua_close(L);
}

int main(void) {
  test_signal_owner();
  test_threads();
  test_shutdown();
  test_bare_state();
  printf("1..%d\n", count);
  return failures ? 1 : 0;
}
