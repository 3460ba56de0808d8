/* host_libev.c -- an example host that already runs a libev loop and hands
 * it to aloop (aloop_openlib with its own loop): the host's periodic timer
 * (a "redraw" every PERIOD) and aloop's tasks share one ev_run. It prints
 * how late its ticks ever were.
 * Usage: host_libev script.lua [period_ms]  */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "aloop.h"

struct host {
  ev_timer tick; /* first: the callback finds the host from it */
  lua_State *L;
  int script;    /* stack index of the script's task */
  double period, next, worst, started;
  long ticks;
  int errors;
};

static void on_error(lua_State *L, const char *what, const char *message,
                     const char *traceback, void *ud) {
  (void)L;
  ((struct host *)ud)->errors++;
  fprintf(stderr, "host: %s: %s\n%s\n", what, message ? message : "",
          traceback ? traceback : "");
}

/* The host's own periodic work; also ends the loop when the script is done. */
static void tick_cb(struct ev_loop *ev, ev_timer *w, int revents) {
  struct host *h = (struct host *)w; /* tick is the first member */
  double t = ev_time();
  (void)revents;
  ev_now_update(ev);
  while (t >= h->next) {
    if (t - h->next > h->worst)
      h->worst = t - h->next;
    h->ticks++;
    h->next += h->period;
  }
  if (aloop_task_done(h->L, h->script)) { /* the script is over: stop */
    ev_timer_stop(ev, w);
    ev_break(ev, EVBREAK_ALL);
    return;
  }
  ev_timer_set(w, h->next - t, 0.);
  ev_timer_start(ev, w);
}

int main(int argc, char **argv) {
  struct ev_loop *ev = ev_default_loop(0);
  struct host h = {0};
  int left;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua [period_ms]\n", argv[0]);
    return 2;
  }
  h.period = (argc > 2 ? atof(argv[2]) : 10.0) / 1000.0;
  h.L = luaL_newstate();
  luaL_openlibs(h.L);
  if (aloop_openlib(h.L, ev) != LUA_OK) { /* aloop runs on our loop */
    fprintf(stderr, "host: %s\n", lua_tostring(h.L, -1));
    return 1;
  }
  lua_pop(h.L, 1);
  aloop_set_error_handler(h.L, on_error, &h);
  if (aloop_dofile(h.L, argv[1], argc - 2, (const char **)argv + 2) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(h.L, -1));
    lua_close(h.L);
    return 1;
  }
  h.script = lua_gettop(h.L); /* the script's task */
  h.started = ev_time();
  h.next = h.started + h.period;
  ev_timer_init(&h.tick, tick_cb, h.period, 0.);
  ev_timer_start(ev, &h.tick);
  ev_run(ev, 0); /* until the tick sees the script done */
  lua_pop(h.L, 1);
  left = aloop_shutdown(h.L, 1.0); /* cancels what the script left running */
  printf("ticks=%ld elapsed=%.3f worst_late_ms=%.3f period_ms=%.3f errors=%d "
         "unfinished=%d\n",
         h.ticks, ev_time() - h.started, h.worst * 1000.0, h.period * 1000.0,
         h.errors, left);
  lua_close(h.L);
  ev_loop_destroy(ev);
  return h.errors ? 1 : 0;
}
