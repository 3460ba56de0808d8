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
WERROR     ?= -Werror
WARN       := -std=c11 -Wall -Wextra $(WERROR) -pedantic -D_POSIX_C_SOURCE=200809L
CFLAGS_ALL  = $(WARN) $(OPT) -fPIC $(LUA_CFLAGS) $(XCFLAGS)

CORE_SRC := core/loop.c core/timer.c core/future.c core/task.c core/gather.c core/sync.c
BIND_SRC := bindings/lmodule.c bindings/ltask.c bindings/lloop.c bindings/lerror.c bindings/lsync.c bindings/lembed.c
LUA_PARTS := bindings/lua/aloop/tasks.lua bindings/lua/aloop/sync.lua
LIB_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BIND_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/lparts.o
HDRS     := core/al.h bindings/laloop.h bindings/aloop.h

DEPS := gcc clang make liblua5.4-dev lua5.4 libev-dev lua-busted pkg-config python3 valgrind \
        luarocks man-db
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all test bench asan valgrind clang clean deps demo install uninstall lint format

all: $(BUILD)/aloop $(BUILD)/aloop.so $(BUILD)/libaloop.a $(BUILD)/test_core \
     $(BUILD)/host_poll $(BUILD)/host_libev

# The example hosts (bindings/examples), driven by spec/16-embed_spec.lua.
$(BUILD)/host_%: bindings/examples/host_%.c $(BUILD)/libaloop.a bindings/aloop.h
	$(CC) $(CFLAGS_ALL) -Ibindings -o $@ $< $(BUILD)/libaloop.a $(LUA_LIBS) $(EV_LIBS) -lm $(XLDFLAGS)

# The core tested from C alone (driven by spec/07-core_spec.lua).
$(BUILD)/test_core: spec/c/test_core.c $(CORE_SRC:%.c=$(BUILD)/%.o) core/al.h
	$(CC) $(CFLAGS_ALL) -o $@ spec/c/test_core.c $(CORE_SRC:%.c=$(BUILD)/%.o) $(EV_LIBS) $(XLDFLAGS)

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/gen/lparts.c: bindings/embed.lua $(LUA_PARTS)
	@mkdir -p $(dir $@)
	$(LUA) bindings/embed.lua $@ $(LUA_PARTS)

$(BUILD)/gen/lparts.o: $(BUILD)/gen/lparts.c bindings/laloop.h
	$(CC) $(CFLAGS_ALL) -Ibindings -c $< -o $@

$(BUILD)/libaloop.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/aloop.so: $(LIB_OBJ)
	$(CC) $(OPT) $(XCFLAGS) -shared -o $@ $^ $(EV_LIBS) $(XLDFLAGS)

$(BUILD)/aloop: $(BUILD)/bindings/main.o $(BUILD)/libaloop.a
	$(CC) $(OPT) $(XCFLAGS) -o $@ $^ $(LUA_LIBS) $(EV_LIBS) -lm $(XLDFLAGS)

# The specs. ALOOP_BIN/ALOOP_CPATH say which build they test.
test: all
	ALOOP_BIN=$(BUILD)/aloop ALOOP_CPATH='$(BUILD)/?.so' ALOOP_TEST_CORE=$(BUILD)/test_core ALOOP_HOSTS=$(BUILD) \
	  $(LUA) $(BUSTED) $(BUSTED_ARGS)

# The same specs on a build with AddressSanitizer and UndefinedBehaviorSanitizer.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan:
	$(MAKE) BUILD=build/asan OPT='-O1 -g' XCFLAGS='$(ASAN_FLAGS)' XLDFLAGS='$(ASAN_FLAGS)' \
	  build/asan/aloop build/asan/aloop.so build/asan/test_core \
	  build/asan/host_poll build/asan/host_libev
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ALOOP_BIN=build/asan/aloop ALOOP_CPATH='build/asan/?.so' ALOOP_TEST_CORE=build/asan/test_core ALOOP_HOSTS=build/asan \
	  $(LUA) $(BUSTED) $(BUSTED_ARGS)

# The specs under valgrind: the busted process, and every command it starts.
valgrind: all
	ALOOP_BIN=$(BUILD)/aloop ALOOP_CPATH='$(BUILD)/?.so' ALOOP_TEST_CORE=$(BUILD)/test_core ALOOP_HOSTS=$(BUILD) \
	  ALOOP_WRAP='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite' \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  $(LUA) $(BUSTED) $(BUSTED_ARGS)

# The same sources, warnings as errors, with clang.
clang:
	$(MAKE) BUILD=build/clang CC=clang build/clang/aloop build/clang/aloop.so \
	  build/clang/test_core build/clang/host_poll build/clang/host_libev

bench: all
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# Installs the Debian packages (apt-get update first, as a fresh machine's
# package lists may be empty).
deps:
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq $(DEPS)

# A first look: two tutorial programs, run by the aloop command.
demo: all
	$(BUILD)/aloop scripts/10_say_after.lua
	$(BUILD)/aloop scripts/05_cancel.lua

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -I core -I bindings core bindings

format:
	clang-format -i core/*.c core/*.h bindings/*.c bindings/*.h

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

.PHONY: rock install uninstall

all: $(BUILD)/libaloop.so

# The shared library: the same objects as libaloop.a. Like a Lua C module it
# leaves the Lua API to the host's Lua (never a second copy of Lua).
$(BUILD)/libaloop.so: $(LIB_OBJ)
	$(CC) $(OPT) $(XCFLAGS) -shared -Wl,-soname,libaloop.so.$(ALOOP_SOMAJ) \
	  -o $@ $^ $(EV_LIBS) -lm $(XLDFLAGS)

# What the rockspec builds (with BUILD=build/rock) and installs.
rock: $(BUILD)/aloop $(BUILD)/aloop.so

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
