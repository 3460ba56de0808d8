# aloop -- one entry point: build, test, bench, sanitizers, install.
# `make deps` installs the Debian packages everything here needs.

CC       ?= gcc
PREFIX   ?= /usr/local
LUA      ?= lua5.4
BUSTED   ?= /usr/bin/busted
PYTHON   ?= /usr/bin/python3
BUILD    ?= build
OPT      ?= -O2 -g

LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
EV_LIBS    := -lev
CARES_CFLAGS := $(shell pkg-config --cflags libcares 2>/dev/null)
CARES_LIBS   := $(shell pkg-config --libs libcares 2>/dev/null || echo -lcares)
WERROR     ?= -Werror
WARN       := -std=c11 -Wall -Wextra $(WERROR) -pedantic -D_POSIX_C_SOURCE=200809L
# Stricter warnings (much of Lua's own set) that the sources are clean under,
# with gcc and clang alike.
WARN_MORE  := -Wshadow -Wmissing-prototypes -Wmissing-declarations -Wstrict-prototypes \
              -Wold-style-definition -Wundef -Wwrite-strings -Wredundant-decls \
              -Wnested-externs -Wpointer-arith -Wdouble-promotion -Wformat=2 -Wvla -Wconversion
# -MMD -MP: each object gets a .d file listing the headers it includes;
# objects also depend on this Makefile, so a change of flags rebuilds them.
DEPFLAGS   := -MMD -MP
# core/ never includes Lua: its objects are built without Lua's headers.
CORE_CFLAGS = $(WARN) $(WARN_MORE) $(OPT) -fPIC $(DEPFLAGS) $(CARES_CFLAGS) $(XCFLAGS)
CFLAGS_ALL  = $(CORE_CFLAGS) $(LUA_CFLAGS)

CORE_SRC := core/loop.c core/timer.c core/future.c core/task.c core/gather.c core/sync.c core/error.c
BIND_SRC := bindings/lmodule.c bindings/lparts.c bindings/lerror.c bindings/lrun.c bindings/ltask.c bindings/lfuture.c bindings/ldonecb.c bindings/lgather.c bindings/lloop.c bindings/lsync.c bindings/lsignal.c bindings/lembed.c
CORE_SRC += core/dns.c
BIND_SRC += bindings/ldns.c
LUA_PARTS := bindings/lua/aloop/tasks.lua bindings/lua/aloop/sync.lua
# the network layer: streams, servers (core/al_io.h)
CORE_SRC += core/io.c core/stream.c core/sock.c
BIND_SRC += bindings/lstream.c bindings/lserver.c
LUA_PARTS += bindings/lua/aloop/streams.lua
# worker threads: aloop.to_thread, loop:run_in_executor (core/al_pool.h)
CORE_SRC += core/pool.c
BIND_SRC += bindings/lthread.c bindings/lcopy.c
LUA_PARTS += bindings/lua/aloop/threads.lua
EV_LIBS  += -pthread # every program and library links the pool
# TLS on the streams (core/al_tls.h): OpenSSL through memory BIOs
CORE_SRC += core/tls.c
BIND_SRC += bindings/ltls.c
CARES_LIBS += $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)
# the HTTP client: libcurl's multi-socket API on the loop (core/al_http.h);
# every link line that takes c-ares takes libcurl too
CORE_SRC += core/http.c
BIND_SRC += bindings/lhttp.c
LUA_PARTS += bindings/lua/aloop/http.lua
HDRS += core/al_http.h
# (`override`: the rockspec sets CARES_* on the command line, and the
# rockspec sets CURL_* from LuaRocks' LIBCURL)
CURL_CFLAGS ?= $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   ?= $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
override CARES_CFLAGS += $(CURL_CFLAGS)
override CARES_LIBS += $(CURL_LIBS)
CORE_SRC += core/proc.c
BIND_SRC += bindings/lproc.c
LUA_PARTS += bindings/lua/aloop/process.lua
LIB_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BIND_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/lparts.o
HDRS     := core/al.h core/al_int.h bindings/laloop.h bindings/aloop.h
HDRS     += core/al_dns.h
HDRS     += core/al_io.h bindings/lstream.h
HDRS     += core/al_pool.h bindings/lcopy.h
HDRS     += core/al_tls.h

# The last line is for the I/O layer to come (c-ares, OpenSSL, libcurl) and
# what its specs and benchmarks will run against.
DEPS := gcc clang make liblua5.4-dev lua5.4 libev-dev lua-busted pkg-config python3 valgrind \
        luarocks man-db coreutils cppcheck clang-format lua-check clang-tidy \
        libc-ares-dev libssl-dev libcurl4-openssl-dev openssl nginx-light lua-cjson wrk tmux python3-aiohttp
DEPS += curl libnginx-mod-http-echo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all test test-fast bench asan asan-build tsan valgrind clang clean deps demo \
        install uninstall rock lint format format-check

HOSTS := $(BUILD)/host_poll $(BUILD)/host_libev
all: $(BUILD)/aloop $(BUILD)/aloop.so $(BUILD)/libaloop.a $(BUILD)/libaloop.so \
     $(BUILD)/test_core $(BUILD)/test_states $(HOSTS)

# The example hosts (bindings/examples), driven by spec/16-embed_spec.lua.
$(BUILD)/host_%: bindings/examples/host_%.c $(BUILD)/libaloop.a Makefile
	$(CC) $(CFLAGS_ALL) -Ibindings -o $@ $< $(BUILD)/libaloop.a $(LUA_LIBS) $(EV_LIBS) $(CARES_LIBS) -lm $(XLDFLAGS)

# Several Lua states in one process (driven by spec/07-core_spec.lua).
$(BUILD)/test_states: spec/c/test_states.c $(BUILD)/libaloop.a Makefile
	$(CC) $(CFLAGS_ALL) -Ibindings -o $@ $< $(BUILD)/libaloop.a $(LUA_LIBS) $(EV_LIBS) $(CARES_LIBS) -lm -lpthread $(XLDFLAGS)

# The I/O core tested from C alone (driven by spec/07-core_spec.lua).
all: $(BUILD)/test_io
$(BUILD)/test_io: spec/c/test_io.c $(CORE_SRC:%.c=$(BUILD)/%.o) spec/c/tap.h Makefile
	$(CC) $(CORE_CFLAGS) -o $@ spec/c/test_io.c $(CORE_SRC:%.c=$(BUILD)/%.o) $(EV_LIBS) $(CARES_LIBS) $(XLDFLAGS)

# The core tested from C alone (driven by spec/07-core_spec.lua): no Lua.
$(BUILD)/test_core: spec/c/test_core.c $(CORE_SRC:%.c=$(BUILD)/%.o) Makefile
	$(CC) $(CORE_CFLAGS) -o $@ spec/c/test_core.c $(CORE_SRC:%.c=$(BUILD)/%.o) $(EV_LIBS) $(CARES_LIBS) $(XLDFLAGS)

$(BUILD)/core/%.o: core/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/gen/lparts.c: bindings/embed.lua $(LUA_PARTS)
	@mkdir -p $(dir $@)
	$(LUA) bindings/embed.lua $@ $(LUA_PARTS)

$(BUILD)/gen/lparts.o: $(BUILD)/gen/lparts.c Makefile
	$(CC) $(CFLAGS_ALL) -Ibindings -c $< -o $@

$(BUILD)/libaloop.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/aloop.so: $(LIB_OBJ)
	$(CC) $(OPT) $(XCFLAGS) -shared -o $@ $^ $(EV_LIBS) $(CARES_LIBS) -lm $(XLDFLAGS)

$(BUILD)/aloop: $(BUILD)/bindings/main.o $(BUILD)/libaloop.a
	$(CC) $(OPT) $(XCFLAGS) -o $@ $^ $(LUA_LIBS) $(EV_LIBS) $(CARES_LIBS) -lm $(XLDFLAGS)

# The specs. ALOOP_BIN/ALOOP_CPATH say which build they test.
SPEC_ENV = ALOOP_BIN=$(BUILD)/aloop ALOOP_CPATH='$(BUILD)/?.so' ALOOP_TEST_CORE=$(BUILD)/test_core ALOOP_HOSTS=$(BUILD)
test: all
	$(SPEC_ENV) $(LUA) $(BUSTED) $(BUSTED_ARGS)

# The specs but those tagged #slow (tutorial scripts that sleep in real
# time, make install and luarocks make): seconds, not a minute.
test-fast: all
	$(SPEC_ENV) $(LUA) $(BUSTED) --exclude-tags=slow $(BUSTED_ARGS)

# The same specs on a build with AddressSanitizer and UndefinedBehaviorSanitizer.
# asan-build builds the command, module, C test and hosts in build/asan;
# asan runs the specs on them. busted's lua5.4 loads the module with the
# sanitizer runtimes preloaded, and without leak detection: it exits
# without closing its Lua state, so all of Lua would look leaked. The
# programs the specs start (the command, lua5.4 on a script, test_core, the
# hosts) close their state, and look for leaks: ALOOP_ASAN_OPTIONS, which
# spec/helper.lua passes to them as ASAN_OPTIONS.
ASAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OPTS    := abort_on_error=1
ASAN_PRELOAD  = $$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)
asan-build:
	$(MAKE) BUILD=build/asan OPT='-O1 -g' XCFLAGS='$(ASAN_FLAGS)' XLDFLAGS='$(ASAN_FLAGS)' \
	  build/asan/aloop build/asan/aloop.so build/asan/test_core build/asan/test_states build/asan/test_io \
	  build/asan/host_poll build/asan/host_libev

asan: asan-build
	LD_PRELOAD="$(ASAN_PRELOAD)" \
	  ASAN_OPTIONS=detect_leaks=0:$(ASAN_OPTS) ALOOP_ASAN_OPTIONS=detect_leaks=1:$(ASAN_OPTS) \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ALOOP_BIN=build/asan/aloop ALOOP_CPATH='build/asan/?.so' ALOOP_TEST_CORE=build/asan/test_core ALOOP_HOSTS=build/asan \
	  $(LUA) $(BUSTED) $(BUSTED_ARGS)

# ThreadSanitizer: the command, module and C tests built with
# -fsanitize=thread in build/tsan; then test_core, test_states (Lua states
# in two threads), the command on two tutorial scripts that finish at once,
# and a few specs with libtsan preloaded into lua5.4 for the module.
# Without function entry/exit instrumentation (gcc's param): each yield from
# an instrumented C function is a longjmp through the uninstrumented liblua
# that TSan's shadow stack never unwinds, so after ~65 000 yields it
# overflows (a plain C function calling lua_yield shows it). Races are still
# found, reported with shorter stacks. Under TSan a coroutine costs ~1 ms,
# so the specs with 10 000 tasks (03, 09) are left out; --ignore-lua keeps
# busted from re-running itself through .busted's `lua`, which fails there.
TSAN_FLAGS   := -fsanitize=thread -fno-omit-frame-pointer --param=tsan-instrument-func-entry-exit=0
TSAN_OPTIONS := halt_on_error=1:exitcode=66
TSAN_SCRIPTS := scripts/03_gather_exception.lua scripts/08_get_loop.lua
TSAN_SPECS   := spec/01-task_spec.lua spec/02-cancel_spec.lua spec/08-sync_spec.lua \
                spec/11-taskgroup_spec.lua
# the thread spec but its tests that start programs (#command): a shell
# started with libtsan preloaded crashes; the script runs on its own above
TSAN_SPECS   += --exclude-tags=command spec/27-thread_spec.lua
TSAN_SCRIPTS += scripts/to_thread_primes.lua
tsan:
	$(MAKE) BUILD=build/tsan OPT='-O1 -g' XCFLAGS='$(TSAN_FLAGS)' XLDFLAGS='$(TSAN_FLAGS)' \
	  build/tsan/aloop build/tsan/aloop.so build/tsan/test_core build/tsan/test_states
	TSAN_OPTIONS=$(TSAN_OPTIONS) build/tsan/test_core
	TSAN_OPTIONS=$(TSAN_OPTIONS) build/tsan/test_states
	for s in $(TSAN_SCRIPTS); do TSAN_OPTIONS=$(TSAN_OPTIONS) build/tsan/aloop $$s || exit 1; done
	LD_PRELOAD="$$($(CC) -print-file-name=libtsan.so)" TSAN_OPTIONS=$(TSAN_OPTIONS) \
	  ALOOP_BIN=build/tsan/aloop ALOOP_CPATH='build/tsan/?.so' \
	  $(LUA) $(BUSTED) --ignore-lua $(TSAN_SPECS)

# The specs under valgrind: the busted process (--ignore-lua: busted would
# otherwise re-run itself through .busted's `lua`, outside valgrind), and
# every command it starts. The real-time specs tagged #slow (timing bounds,
# 100 MB transfers, CPU-heavy thread jobs) run in `test` and `asan` only:
# under valgrind they take minutes and their time bounds mean nothing.
valgrind: all
	ALOOP_BIN=$(BUILD)/aloop ALOOP_CPATH='$(BUILD)/?.so' ALOOP_TEST_CORE=$(BUILD)/test_core ALOOP_HOSTS=$(BUILD) \
	  ALOOP_WRAP='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite' \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  $(LUA) $(BUSTED) --ignore-lua --exclude-tags=slow $(BUSTED_ARGS)

# The same sources, warnings as errors, with clang.
clang:
	$(MAKE) BUILD=build/clang CC=clang build/clang/aloop build/clang/aloop.so \
	  build/clang/test_core build/clang/test_states build/clang/test_io build/clang/host_poll build/clang/host_libev

bench: all
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# The C floor of the network benchmarks (bench/echo.*, bench/bulk.*).
bench: $(BUILD)/echo_floor
$(BUILD)/echo_floor: bench/echo_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ bench/echo_floor.c $(XLDFLAGS)

# 10 000 concurrent connections to one aloop echo server (in a child aloop
# process), STRESS_ROUNDS round trips each: bytes sent, received and lost.
STRESS_CONNS  ?= 10000
STRESS_ROUNDS ?= 20
.PHONY: stress
stress: all
	ulimit -n $$(( $(STRESS_CONNS) + 1000 )) 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	  $(BUILD)/aloop bench/netload.lua client $(STRESS_CONNS) $(STRESS_ROUNDS)

# Installs the Debian packages (apt-get update first, as a fresh machine's
# package lists may be empty).
deps:
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq $(DEPS)

# A first look: two tutorial programs, run by the aloop command.
demo: all
	$(BUILD)/aloop scripts/10_say_after.lua
	$(BUILD)/aloop scripts/05_cancel.lua

# Static checks: cppcheck over the C, luacheck over the Lua (.luacheckrc),
# and how far the C is from .clang-format (counted, not failed on: the
# sources predate it).
LUA_LINT  := bindings/lua bindings/embed.lua scripts spec bench
C_FORMAT  := $(CORE_SRC) $(BIND_SRC) bindings/main.c $(HDRS)
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -I core -I bindings core bindings
	luacheck --quiet --no-color $(LUA_LINT)
	@$(MAKE) --no-print-directory format-check

format-check:
	@n=$$(clang-format --dry-run $(C_FORMAT) 2>&1 | grep -c 'warning:'); \
	  echo "clang-format: $$n places in core/ and bindings/ differ from .clang-format (make format rewrites them)"

format:
	clang-format -i $(C_FORMAT)

clean:
	rm -rf build

# ---- install ----
# `make install` / `make uninstall`, honouring PREFIX and DESTDIR: the aloop
# command, the Lua module, the embedding header, the static and the shared
# library, a pkg-config file and the man page aloop(1). Driven by
# spec/15-install_spec.lua, which also builds the LuaRocks package
# (rockspec/aloop-scm-1.rockspec calls `make rock`).

ALOOP_VER    := $(shell sed -n 's/.*define ALOOP_VERSION "aloop \([^"]*\)".*/\1/p' bindings/aloop.h)
ALOOP_SOMAJ  := $(firstword $(subst ., ,$(ALOOP_VER)))
INSTALL      ?= install
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
LUA_CMODDIR  ?= $(LIBDIR)/lua/5.4
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR       ?= $(PREFIX)/share/man

# The .pc names lua5.4 in Requires (a host embeds Lua, so it links it too);
# where pkg-config does not know lua5.4, its flags are written in instead.
PC_REQUIRES := $(shell pkg-config --exists lua5.4 2>/dev/null && echo lua5.4)
PC_CFLAGS   := $(if $(PC_REQUIRES),,$(LUA_CFLAGS))
PC_LIBS     := $(if $(PC_REQUIRES),,$(LUA_LIBS))

# The shared library: the same objects as libaloop.a. Like a Lua C module it
# leaves the Lua API to the host's Lua (never a second copy of Lua).
$(BUILD)/libaloop.so: $(LIB_OBJ)
	$(CC) $(OPT) $(XCFLAGS) -shared -Wl,-soname,libaloop.so.$(ALOOP_SOMAJ) \
	  -o $@ $^ $(EV_LIBS) $(CARES_LIBS) -lm $(XLDFLAGS)

# What the rockspec builds (with BUILD=build/rock) and installs: the module,
# which leaves the Lua API to the interpreter that loads it, and the
# command, linked with LuaRocks' Lua, not the system's: the rockspec passes
# ROCK_LUA_DIR (LuaRocks' LUA_DIR), where the library is looked for under
# the names LuaRocks itself tries; statically when it can, exporting Lua's
# API for the C modules the command loads, as lua5.4 does.
ifdef ROCK_LUA_DIR
ROCK_LUA_LIB := $(firstword $(wildcard $(foreach d, \
  lib/$(shell $(CC) -print-multiarch 2>/dev/null) lib64 lib, \
  $(foreach n,lua5.4 lua54 lua-5.4 lua-54 lua,$(ROCK_LUA_DIR)/$(d)/lib$(n).a)) \
  $(foreach d, \
  lib/$(shell $(CC) -print-multiarch 2>/dev/null) lib64 lib, \
  $(foreach n,lua5.4 lua54 lua-5.4 lua-54 lua,$(ROCK_LUA_DIR)/$(d)/lib$(n).so))))
LUA_LIBS := -Wl,-E $(ROCK_LUA_LIB) -ldl
endif
rock: $(BUILD)/aloop.so
	@if [ -n '$(ROCK_LUA_DIR)' ] && [ -z '$(ROCK_LUA_LIB)' ]; then \
	  echo "aloop: no Lua library under $(ROCK_LUA_DIR) (LuaRocks' LUA_DIR) for the aloop command" >&2; \
	  exit 1; fi
	$(MAKE) $(BUILD)/aloop

install: $(BUILD)/aloop $(BUILD)/aloop.so $(BUILD)/libaloop.a $(BUILD)/libaloop.so
	$(INSTALL) -d '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(LUA_CMODDIR)' '$(DESTDIR)$(INCLUDEDIR)' \
	  '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' '$(DESTDIR)$(MANDIR)/man1'
	$(INSTALL) -m 755 $(BUILD)/aloop '$(DESTDIR)$(BINDIR)/aloop'
	$(INSTALL) -m 755 $(BUILD)/aloop.so '$(DESTDIR)$(LUA_CMODDIR)/aloop.so'
	$(INSTALL) -m 644 bindings/aloop.h '$(DESTDIR)$(INCLUDEDIR)/aloop.h'
	$(INSTALL) -m 644 $(BUILD)/libaloop.a '$(DESTDIR)$(LIBDIR)/libaloop.a'
	$(INSTALL) -m 755 $(BUILD)/libaloop.so '$(DESTDIR)$(LIBDIR)/libaloop.so.$(ALOOP_VER)'
	ln -sf libaloop.so.$(ALOOP_VER) '$(DESTDIR)$(LIBDIR)/libaloop.so.$(ALOOP_SOMAJ)'
	ln -sf libaloop.so.$(ALOOP_SOMAJ) '$(DESTDIR)$(LIBDIR)/libaloop.so'
	sed -e 's|@prefix@|$(PREFIX)|g' -e 's|@libdir@|$(LIBDIR)|g' \
	  -e 's|@includedir@|$(INCLUDEDIR)|g' -e 's|@cmoddir@|$(LUA_CMODDIR)|g' \
	  -e 's|@version@|$(ALOOP_VER)|g' -e 's|@requires@|$(PC_REQUIRES)|g' \
	  -e 's|@lua_cflags@|$(PC_CFLAGS)|g' -e 's|@lua_libs@|$(PC_LIBS)|g' -e 's| *$$||' \
	  bindings/aloop.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/aloop.pc'
	chmod 644 '$(DESTDIR)$(PKGCONFIGDIR)/aloop.pc'
	$(INSTALL) -m 644 bindings/aloop.1 '$(DESTDIR)$(MANDIR)/man1/aloop.1'
	@$(ALOOP_LDCONFIG)

uninstall:
	rm -f '$(DESTDIR)$(BINDIR)/aloop' '$(DESTDIR)$(LUA_CMODDIR)/aloop.so' \
	  '$(DESTDIR)$(INCLUDEDIR)/aloop.h' '$(DESTDIR)$(LIBDIR)/libaloop.a' \
	  '$(DESTDIR)$(LIBDIR)/libaloop.so' '$(DESTDIR)$(LIBDIR)/libaloop.so.$(ALOOP_SOMAJ)' \
	  '$(DESTDIR)$(LIBDIR)/libaloop.so.$(ALOOP_VER)' '$(DESTDIR)$(PKGCONFIGDIR)/aloop.pc' \
	  '$(DESTDIR)$(MANDIR)/man1/aloop.1'
	@$(ALOOP_LDCONFIG)

# Refresh the dynamic linker's cache after a real (not staged) install as
# root into a directory it is configured to search, e.g. /usr/local/lib.
ALOOP_LDCONFIG = if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && \
	  grep -qsx '$(LIBDIR)' /etc/ld.so.conf /etc/ld.so.conf.d/*.conf; then ldconfig; fi
# ---- end install ----

# The headers each object and program was built with (from -MMD).
-include $(LIB_OBJ:.o=.d) $(BUILD)/bindings/main.d $(BUILD)/test_core.d $(BUILD)/test_states.d \
  $(HOSTS:=.d)

# ---- fuzz and GC torture (tools/fuzz) ----
# `make fuzz`: the API fuzzer (tools/fuzz/fuzz.lua) calls every function and
# method it finds on the module with wrong and extreme arguments, from six
# contexts, on the ASan+UBSan build; it fails on a crash, a sanitizer report,
# a hang, or an error message that points into aloop. FUZZ_SECONDS bounds it
# (in all), FUZZ_SEED picks the calls, FUZZ_MAX_CALLS caps each context.
# `make torture`: every feature at once with the collector running almost
# continuously and finalisers calling back into aloop, TORTURE_SECONDS per
# seed, for each of SEEDS. Known findings are listed (for now) in
# tools/fuzz/known.lua; the logs and reproducers go to build/fuzz.

FUZZ_SECONDS    ?= 120
FUZZ_SEED       ?= 1
FUZZ_MAX_CALLS  ?= 200000
TORTURE_SECONDS ?= 30
SEEDS           ?= 1 2 3 4
FUZZ_ENV = FUZZ_LUA=$(LUA) FUZZ_CPATH='build/asan/?.so' FUZZ_OUT=build/fuzz \
  FUZZ_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)"

.PHONY: fuzz torture fuzz-asan-build

# The ASan+UBSan command and module alone (what `make asan` builds first).
fuzz-asan-build:
	$(MAKE) BUILD=build/asan OPT='-O1 -g' XCFLAGS='$(ASAN_FLAGS)' XLDFLAGS='$(ASAN_FLAGS)' \
	  build/asan/aloop build/asan/aloop.so

fuzz: fuzz-asan-build
	$(FUZZ_ENV) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$(FUZZ_SEED) FUZZ_MAX_CALLS=$(FUZZ_MAX_CALLS) \
	  $(LUA) tools/fuzz/fuzz.lua

torture: fuzz-asan-build
	$(FUZZ_ENV) TORTURE_SECONDS=$(TORTURE_SECONDS) SEEDS='$(SEEDS)' $(LUA) tools/fuzz/torture.lua
# ---- end fuzz and GC torture ----
