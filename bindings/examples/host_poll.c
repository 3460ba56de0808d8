/* host_poll.c -- an example host with its own poll() main loop: it keeps
 * doing periodic work (a "redraw" every PERIOD, standing in for a GUI) while
 * a Lua script runs in aloop, driven through aloop_pollfd, aloop_timeout and
 * aloop_step. It prints how late its ticks ever were.
 * Usage: host_poll script.lua [period_ms]  */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "aloop.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_error(lua_State *L, const char *what, const char *message,
                     const char *traceback, void *ud) {
  (void)L;
  ++*(int *)ud;
  fprintf(stderr, "host: %s: %s\n%s\n", what, message ? message : "",
          traceback ? traceback : "");
}

int main(int argc, char **argv) {
  lua_State *L;
  double period, next_tick, worst = 0, started;
  long ticks = 0;
  int errors = 0, fd, left, script;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua [period_ms]\n", argv[0]);
    return 2;
  }
  period = (argc > 2 ? atof(argv[2]) : 10.0) / 1000.0;
  L = luaL_newstate();
  luaL_openlibs(L);
  if (aloop_openlib(L, NULL) != LUA_OK) { /* aloop owns its loop: we drive */
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_pop(L, 1);
  aloop_set_error_handler(L, on_error, &errors);
  if (aloop_dofile(L, argv[1], argc - 2, (const char **)argv + 2) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  script = lua_gettop(L); /* the script's task, kept to see when it is done */
  fd = aloop_pollfd(L);
  started = now();
  next_tick = started + period;
  while (!aloop_task_done(L, script)) {
    struct pollfd p = {fd, POLLIN, 0};
    double wait = next_tick - now(), t = aloop_timeout(L);
    if (t >= 0 && t < wait)
      wait = t;
    if (wait < 0)
      wait = 0;
    poll(&p, fd >= 0 ? 1 : 0, (int)ceil(wait * 1000.0));
    if (aloop_step(L) < 0) {
      fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
      break;
    }
    while (now() >= next_tick) { /* the host's own work: a "redraw" */
      double late = now() - next_tick;
      if (late > worst)
        worst = late;
      ticks++;
      next_tick += period;
    }
  }
  lua_pop(L, 1);
  left = aloop_shutdown(L, 1.0); /* cancels what the script left running */
  printf("ticks=%ld elapsed=%.3f worst_late_ms=%.3f period_ms=%.3f errors=%d "
         "unfinished=%d\n",
         ticks, now() - started, worst * 1000.0, period * 1000.0, errors, left);
  lua_close(L);
  return errors ? 1 : 0;
}
