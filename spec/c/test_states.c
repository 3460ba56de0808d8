/* test_states.c -- aloop in several Lua states of one process: a signal is
 * owned by one loop only (a second owner gets a clear error, not an abort in
 * libev), and states in two threads each find their own loop. Prints TAP;
 * driven by spec/07-core_spec.lua. */
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

int main(void) {
  test_signal_owner();
  test_threads();
  printf("1..%d\n", count);
  return failures ? 1 : 0;
}
