-- spec/15-install_spec.lua: what users install works. `make install` into a
-- temporary prefix gives a tree from which a tiny C host builds with nothing
-- but `pkg-config --cflags --libs aloop` and runs a task, whose aloop command
-- runs a script, and which `make uninstall` empties again. The LuaRocks
-- package (rockspec/aloop-scm-1.rockspec), built with `luarocks make` into a
-- temporary tree, runs tutorial scripts and a subset of the specs with the
-- module installed there, not the one in build/.
--
-- Tagged #slow: it builds and installs twice.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/15-install_spec.lua

local q = H.quote

-- Commands run with the environment of a plain shell: no make variables
-- inherited from a `make test` above us, no preloaded sanitizer runtime.
local ENV = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u LD_PRELOAD " ..
  "-u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "

-- A build may take longer than H.sh's default limit: those pass their own.
local function sh(cmdline, timeout) return H.sh(ENV .. "sh -c " .. q(cmdline), nil, timeout) end

local function mktemp()
  local out, err, code = H.sh("mktemp -d")
  assert(code == 0, "mktemp -d failed: " .. err)
  return (out:gsub("%s+$", ""))
end

-- What a command printed, for the message of a failed assertion.
local function show(what, out, err, code)
  return ("%s exited %s\n--- stdout:\n%s\n--- stderr:\n%s"):format(what, tostring(code), out, err)
end

local function files_under(dir)
  local out = H.sh("cd " .. q(dir) .. " && find . ! -type d")
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  table.sort(list)
  return list
end

-- A host embedding aloop through the public header: open Lua, require the
-- module with luaL_requiref, run a task that sleeps and prints.
local HOST_C = [[
#include <stdio.h>
#include <lauxlib.h>
#include <lualib.h>
#include <aloop.h>

static const char chunk[] =
  "local aloop = require 'aloop'\n"
  "aloop.run(function() aloop.sleep(0.01) print('ok') end)\n";

int main(void) {
  lua_State *L = luaL_newstate();
  int status;
  luaL_openlibs(L);
  luaL_requiref(L, "aloop", luaopen_aloop, 0);
  lua_pop(L, 1);
  status = luaL_dostring(L, chunk);
  if (status != LUA_OK)
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
]]

-- The files make install puts under the prefix (with the version of
-- bindings/aloop.h in the names of the shared library).
local function expected_files()
  local version
  for line in io.lines("bindings/aloop.h") do
    version = version or line:match('#define ALOOP_VERSION "aloop ([^"]+)"')
  end
  assert(version, "no ALOOP_VERSION in bindings/aloop.h")
  local major = version:match("^(%d+)")
  local list = {
    "./bin/aloop",
    "./include/aloop.h",
    "./lib/libaloop.a",
    "./lib/libaloop.so",
    "./lib/libaloop.so." .. major,
    "./lib/libaloop.so." .. version,
    "./lib/lua/5.4/aloop.so",
    "./lib/pkgconfig/aloop.pc",
    "./share/man/man1/aloop.1",
  }
  table.sort(list)
  return list
end

describe("make install #slow", function()
  local prefix

  setup(function()
    prefix = mktemp()
    local out, err, code = sh("make -j2 install DESTDIR= PREFIX=" .. q(prefix), 300)
    assert(code == 0, show("make install", out, err, code))
  end)

  teardown(function()
    if prefix then H.sh("rm -rf " .. q(prefix)) end
  end)

  it("installs the command, module, header, libraries, .pc and man page under PREFIX", function()
    assert.are.same(expected_files(), files_under(prefix))
    local out = H.sh("readlink " .. q(prefix .. "/lib/libaloop.so"))
    assert.matches("^libaloop%.so%.%d+\n$", out)
  end)

  it("a C host builds with only pkg-config --cflags --libs aloop, and runs a task", function()
    local c = prefix .. "/host.c"
    local f = assert(io.open(c, "w")); f:write(HOST_C); f:close()
    local pc = "PKG_CONFIG_PATH=" .. q(prefix .. "/lib/pkgconfig")
    local out, err, code = sh("cc -o " .. q(prefix .. "/host") .. " " .. q(c) ..
      " $(" .. pc .. " pkg-config --cflags --libs aloop)")
    assert(code == 0, show("cc (shared libaloop)", out, err, code))
    out, err, code = sh("LD_LIBRARY_PATH=" .. q(prefix .. "/lib") .. " " .. q(prefix .. "/host"))
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("ok\n", out)
    -- it is the installed shared library that the host loaded
    out = sh("LD_LIBRARY_PATH=" .. q(prefix .. "/lib") .. " ldd " .. q(prefix .. "/host"))
    assert.matches("libaloop.so.%d+ => " .. (prefix .. "/lib/"):gsub("%p", "%%%0"), out)
    -- and statically: libaloop.a (-l:libaloop.a picks it over the .so) with
    -- what pkg-config --static adds for it
    out, err, code = sh("cc -o " .. q(prefix .. "/host_static") .. " " .. q(c) ..
      " $(" .. pc .. " pkg-config --static --cflags --libs aloop | sed 's/-laloop/-l:libaloop.a/')")
    assert(code == 0, show("cc (static libaloop)", out, err, code))
    out, err, code = sh(q(prefix .. "/host_static"))
    assert.are.same({ "ok\n", "", 0 }, { out, err, code })
    out = sh("ldd " .. q(prefix .. "/host_static"))
    assert.not_matches("libaloop", out, 1, true)
    os.remove(c); os.remove(prefix .. "/host"); os.remove(prefix .. "/host_static")
  end)

  it("installs an aloop command that runs a script as the main task", function()
    local out, err, code = sh(q(prefix .. "/bin/aloop") .. " -e " ..
      q("aloop.sleep(0.01) print('main', arg[0] ~= nil)"))
    assert.are.same({ "main\ttrue\n", "", 0 }, { out, err, code })
    out, err, code = sh(q(prefix .. "/bin/aloop") .. " scripts/01_hello.lua")
    assert.are.same({ "Hello\nWorld\n", "", 0 }, { out, err, code })
  end)

  it("installs a man page that renders", function()
    local out, err, code = sh("MANWIDTH=80 man -l " .. q(prefix .. "/share/man/man1/aloop.1") .. " | cat")
    assert(code == 0, show("man", out, err, code))
    assert.matches("SYNOPSIS", out, 1, true)
    assert.matches("EXIT STATUS", out, 1, true)
  end)

  it("make uninstall removes every file it installed", function()
    local out, err, code = sh("make uninstall DESTDIR= PREFIX=" .. q(prefix))
    assert(code == 0, show("make uninstall", out, err, code))
    assert.are.same({}, files_under(prefix))
  end)

  it("honours DESTDIR: the files are staged, the .pc names the real prefix", function()
    local stage = mktemp()
    local out, err, code = sh("make install DESTDIR=" .. q(stage) .. " PREFIX=/opt/aloop", 300)
    local files = files_under(stage .. "/opt/aloop")
    local pcf = io.open(stage .. "/opt/aloop/lib/pkgconfig/aloop.pc")
    local pctext = pcf and pcf:read("a") or ""
    if pcf then pcf:close() end
    local out2, err2, code2 = sh("make uninstall DESTDIR=" .. q(stage) .. " PREFIX=/opt/aloop")
    local after = files_under(stage)
    H.sh("rm -rf " .. q(stage))
    assert(code == 0, show("make install DESTDIR", out, err, code))
    assert(code2 == 0, show("make uninstall DESTDIR", out2, err2, code2))
    assert.are.same(expected_files(), files)
    assert.matches("\nprefix=/opt/aloop\n", pctext, 1, true)
    assert.matches("\nlibdir=/opt/aloop/lib\n", pctext, 1, true)
    assert.are.same({}, after)
  end)
end)

describe("luarocks make rockspec/aloop-scm-1.rockspec #slow", function()
  local tree, status_before
  local LR = "luarocks --lua-version 5.4 "

  setup(function()
    local _, _, has = H.sh("command -v luarocks")
    assert(has == 0, "luarocks is not installed (make deps installs it)")
    status_before = H.sh("git status --porcelain --untracked-files=all")
    tree = mktemp()
    local out, err, code = sh("MAKEFLAGS=-j2 " .. LR .. "make rockspec/aloop-scm-1.rockspec --tree " .. q(tree), 300)
    assert(code == 0, show("luarocks make", out, err, code))
  end)

  teardown(function()
    if tree then H.sh("rm -rf " .. q(tree)) end
  end)

  it("leaves the files git tracks (and the untracked ones) as they were", function()
    assert.are.equal(status_before, (H.sh("git status --porcelain --untracked-files=all")))
  end)

  it("installs the module and the command into the tree", function()
    assert.is_truthy(io.open(tree .. "/lib/lua/5.4/aloop.so")):close()
    local out, err, code = sh(q(tree .. "/bin/aloop") .. " -e " .. q("aloop.sleep(0.01) print('cmd ok')"))
    assert.are.same({ "cmd ok\n", "", 0 }, { out, err, code })
  end)

  it("builds a module that links no Lua library: the interpreter loading it has one", function()
    local out = sh("ldd " .. q(tree .. "/lib/lua/5.4/aloop.so"))
    assert.not_matches("liblua", out, 1, true)
  end)

  it("builds a command that loads C modules, as lua5.4 does (lua-cjson, from make deps)", function()
    local out, err, code = sh(q(tree .. "/bin/aloop") .. " -e " .. q("print(require('cjson').encode({ 1, 2 }))"))
    assert.are.same({ "[1,2]\n", "", 0 }, { out, err, code })
  end)

  -- lua5.4 with the tree's paths (luarocks path), from the repository root.
  local function lua_in_tree(args)
    return sh("eval \"$(" .. LR .. "--tree " .. q(tree) .. " path)\" && lua5.4 " .. args)
  end

  it("require finds the installed module, not build/", function()
    local out, err, code = lua_in_tree("-e " .. q("print(package.searchpath('aloop', package.cpath))"))
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(tree .. "/lib/lua/5.4/aloop.so\n", out)
  end)

  it("runs scripts/10_say_after.lua", function()
    local out, err, code, secs = lua_in_tree("scripts/10_say_after.lua")
    assert.are.same({ "Started tasks...\nhello\nworld\nTasks finished.\n", "", 0 }, { out, err, code })
    assert.is_true(secs >= 1.9 and secs < 2.9, "took " .. secs .. " s")
  end)

  it("runs scripts/05_cancel.lua", function()
    local out, err, code = lua_in_tree("scripts/05_cancel.lua")
    assert.are.same({ "Task started\nTask was cancelled\nMain caught task cancellation\n", "", 0 },
      { out, err, code })
  end)

  it("passes spec/01-task_spec.lua and spec/03-gather_spec.lua with the installed module", function()
    local out, err, code = sh("ALOOP_CPATH=" .. q(tree .. "/lib/lua/5.4/?.so") ..
      " ALOOP_BIN=" .. q(tree .. "/bin/aloop") ..
      " lua5.4 /usr/bin/busted spec/01-task_spec.lua spec/03-gather_spec.lua", 120)
    assert(code == 0, show("busted", out, err, code))
    -- spec/summary.lua's closing line (failures and errors together)
    local passed, failed = out:match("\n(%d+) passed, (%d+) failed\n$")
    assert(passed, show("busted", out, err, code))
    assert.is_true(tonumber(passed) > 50, passed .. " passed")
    assert.are.equal("0", failed)
  end)
end)
