-- aloop-scm-1.rockspec -- the LuaRocks package of aloop: the module (require
-- "aloop", one C library with its Lua parts compiled in) and the aloop
-- command. Built by the Makefile's `rock` target into build/rock/; nothing
-- in it links the system's Lua: the module leaves the Lua API to the
-- interpreter that loads it, and the command links the Lua LuaRocks was
-- configured with (the library under its LUA_DIR).
--   from a checkout:  luarocks --lua-version 5.4 make rockspec/aloop-scm-1.rockspec
--   tests:            luarocks --lua-version 5.4 test rockspec/aloop-scm-1.rockspec
rockspec_format = "3.0"
package = "aloop"
version = "scm-1"

-- The repository aloop is developed in, until it has a public one: `luarocks
-- make` in a checkout does not fetch it; `luarocks build` clones it.
source = {
  url = "git+file:///work/main",
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
  homepage = "file:///work/main/README.md",
  license = "MIT",
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

-- C libraries from the system (Debian: libev-dev, libc-ares-dev). Later
-- ones (libcurl, OpenSSL) are declared here as they are used.
external_dependencies = {
  LIBEV = { header = "ev.h", library = "ev" },
  LIBCARES = { header = "ares.h", library = "cares" },
  -- libcurl4-openssl-dev puts curl/curl.h under the multiarch include
  -- directory, which the compiler searches and LuaRocks does not
  LIBCURL = { library = "curl" },
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
    -- The command links LuaRocks' Lua, found there (the Makefile's rock).
    ROCK_LUA_DIR = "$(LUA_DIR)",
    XCFLAGS = "$(CFLAGS) -I$(LIBEV_INCDIR)",
    EV_LIBS = "-L$(LIBEV_LIBDIR) -lev",
    CARES_CFLAGS = "-I$(LIBCARES_INCDIR)",
    CARES_LIBS = "-L$(LIBCARES_LIBDIR) -lcares -lssl -lcrypto", -- with OpenSSL (TLS)
    CURL_CFLAGS = "-I$(LIBCURL_INCDIR)",
    CURL_LIBS = "-L$(LIBCURL_LIBDIR) -lcurl",
  },
  -- The files are few: the rockspec installs them itself, not `make install`
  -- (which also installs the header, the C libraries and the man page).
  install_pass = false,
  install = {
    lib = { aloop = "build/rock/aloop.so" },
    bin = { aloop = "build/rock/aloop" },
  },
}

-- The specs, with busted, on what `luarocks make` built in build/rock; not
-- those that need the C test programs of `make all`, nor the slow ones.
test = {
  type = "busted",
  flags = { "-Xhelper", "build=build/rock", "--exclude-tags=slow,make_all" },
}
