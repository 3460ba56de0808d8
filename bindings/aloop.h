/* aloop.h -- the embedding API of aloop: open the module into a host's
 * lua_State, optionally on the host's own libev loop. */
#ifndef ALOOP_H
#define ALOOP_H

#include <ev.h>
#include <lua.h>

#define ALOOP_VERSION "aloop 0.1.0"

/* The `aloop` module's opener, for require or luaL_requiref. */
int luaopen_aloop(lua_State *L);

/* Open aloop on the host's libev loop `ev` (NULL: aloop makes its own).
 * Pushes the module table. The loop must outlive the Lua state. */
int aloop_openlib(lua_State *L, struct ev_loop *ev);

#endif
