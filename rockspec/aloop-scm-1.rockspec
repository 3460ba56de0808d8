-- aloop-scm-1.rockspec -- the LuaRocks package of aloop: the module (require
-- "aloop", one C library with its Lua parts compiled in) and the aloop
-- command. Built by the Makefile's `rock` target into build/rock/.
--   from a checkout:  luarocks --lua-version 5.4 make rockspec/aloop-scm-1.rockspec
rockspec_format = "3.0"
package = "aloop"
version = "scm-1"

source = {
  -- Placeholder until the repository is published; `luarocks make` in a
  -- checkout does not fetch it.
  url = "git+https://example.invalid/aloop.git",
}

description = {
  summary = "An asyncio-like async runtime for Lua 5.4, in C on libev",
  detailed = [[
aloop runs Lua code in tasks (coroutines) on a libev event loop, with the
names and semantics of Python's asyncio: run, sleep, create_task, gather,
wait, wait_for, timeout, shield, as_completed, cancellation with cleanup,
and the synchronisation primitives (Lock, Semaphore, Event, Condition,
Barrier, Queue, TaskGroup). Also installs the `aloop` command, which runs a
script as the main task.
]],
  labels = { "async", "asyncio", "coroutines", "event-loop", "libev" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

-- C libraries from the system (Debian: libev-dev, libc-ares-dev). Later
-- ones (libcurl, OpenSSL) are declared here as they are used.
external_dependencies = {
  LIBEV = { header = "ev.h", library = "ev" },
  LIBCARES = { header = "ares.h", library = "cares" },
}

build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    BUILD = "build/rock",
    WERROR = "", -- warnings stay warnings for users' newer compilers
    CC = "$(CC)",
    LUA = "$(LUA)",
    LUA_CFLAGS = "-I$(LUA_INCDIR)",
    XCFLAGS = "$(CFLAGS) -I$(LIBEV_INCDIR)",
    EV_LIBS = "-L$(LIBEV_LIBDIR) -lev",
    CARES_CFLAGS = "-I$(LIBCARES_INCDIR)",
    CARES_LIBS = "-L$(LIBCARES_LIBDIR) -lcares",
  },
  -- The files are few: the rockspec installs them itself, not `make install`
  -- (which also installs the header, the C libraries and the man page).
  install_pass = false,
  install = {
    lib = { aloop = "build/rock/aloop.so" },
    bin = { aloop = "build/rock/aloop" },
  },
}
