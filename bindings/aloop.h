/* aloop.h -- the embedding API of aloop: open it into a host's lua_State,
 * share the host's libev loop or drive aloop from any other main loop, run
 * Lua as tasks, hear about their errors, and shut down cleanly.
 *
 * Every function takes the lua_State the module was opened in (or a thread
 * of it) and must be called from the host's thread, never from inside a Lua
 * function that aloop is running. None of them raises a Lua error: failures
 * come back as status codes, with the message on the Lua stack. */
#ifndef ALOOP_H
#define ALOOP_H

#include <ev.h>
#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ALOOP_VERSION "aloop 0.1.0"

/* ---- opening ------------------------------------------------------------- */

/* The `aloop` module's opener, for require or luaL_requiref; aloop creates
 * and owns its libev loop (use the "driving" functions below, or aloop.run
 * from Lua, to run it). */
int luaopen_aloop(lua_State *L);

/* Open aloop into L and push the module table (LUA_OK), or push an error
 * message and return an error status. With ev == NULL aloop makes its own
 * loop. With a host's loop, aloop shares it:
 * the host keeps calling ev_run(ev, ...) as usual and aloop's ready tasks
 * run from a prepare watcher on it (every Lua call there is protected, so
 * no error unwinds through ev_run). The loop must outlive the Lua state.
 * Also sets package.loaded.aloop, so scripts' require "aloop" finds it.
 * Opened this way, aloop.run leaves SIGINT alone (the host owns its
 * signals); with require, a top-level aloop.run turns Ctrl-C into
 * cancelling its main task, as asyncio.run does. */
int aloop_openlib(lua_State *L, struct ev_loop *ev);

/* ---- running Lua as tasks ------------------------------------------------ */

/* Run the function below nargs arguments on the stack as a new task, popping
 * them; pushes the Task and returns LUA_OK, or pushes an error message and
 * returns an error status. The task starts at the next step of the loop.
 * If such a task fails, its error goes to the error handler at once. */
int aloop_spawn(lua_State *L, int nargs);

/* Load a Lua file and run its chunk as a task, with the given arguments (as
 * `...`), like aloop_spawn. A syntax error returns LUA_ERRSYNTAX. */
int aloop_dofile(lua_State *L, const char *path, int nargs, const char **args);

/* Number of tasks that have not finished. */
int aloop_tasks(lua_State *L);

/* 1 if the value at idx is a Task (or Future) that is done, else 0. */
int aloop_task_done(lua_State *L, int idx);

/* ---- driving aloop from another main loop -------------------------------- */

/* A file descriptor that becomes readable when aloop's loop has events to
 * handle (I/O, signals, wake-ups from other threads): add it to the host's
 * poll set. -1 if this platform's libev backend has none, or if aloop shares
 * the host's libev loop (the host runs that loop itself). */
int aloop_pollfd(lua_State *L);

/* Seconds the host may wait before calling aloop_step again: 0 when tasks
 * are ready to run, the time to aloop's next timer, or -1 when aloop waits
 * for nothing but events on aloop_pollfd. */
double aloop_timeout(lua_State *L);

/* Handle aloop's pending events without blocking and run one turn of ready
 * tasks. Returns the number of unfinished tasks, or -1 (message pushed) when
 * called where it must not be (inside aloop, or after aloop_shutdown). */
int aloop_step(lua_State *L);

/* ---- errors -------------------------------------------------------------- */

/* Told of every error nobody else will see: a task whose error was never
 * retrieved, a failing callback, a failed task spawned by the host. `what`
 * says which; `message` is the error as text; `traceback` may be NULL. The
 * default prints to stderr. It never ends the host. Pass NULL to restore
 * the default. A Lua handler set with loop:set_exception_handler() is asked
 * first. */
typedef void (*aloop_error_handler)(lua_State *L, const char *what,
                                    const char *message,
                                    const char *traceback, void *ud);
void aloop_set_error_handler(lua_State *L, aloop_error_handler fn, void *ud);

/* ---- shutting down ------------------------------------------------------- */

/* Cancel every unfinished task and run the loop (blocking, at most `timeout`
 * seconds) until their cleanup is done; report errors nobody retrieved;
 * stop every watcher aloop has on the libev loop. Afterwards aloop_step
 * refuses to run; lua_close(L) then frees everything. Returns the number of
 * tasks that did not finish in time (0 when all did), or -1 (message pushed)
 * when called from inside aloop (a task, a callback: the loop cannot be shut
 * down under the code it runs). A second call does nothing and returns 0. */
int aloop_shutdown(lua_State *L, double timeout);

#ifdef __cplusplus
}
#endif

#endif
