-- spec/06-command_spec.lua: the `aloop` command, in the manner of lua.c.
-- `aloop script.lua args` runs the chunk as the main task (top-level code may
-- await), with `arg` and `...` set as lua5.4 sets them; -e, -l, -, -v, -h;
-- exit 0, 1 on an uncaught error (message and traceback of where it was
-- raised on stderr), 130 after Ctrl-C once the main task and the tasks it
-- left behind were cancelled and cleaned up. Fixtures live in spec/fixtures/.
--
-- The command is always run through H.aloop / H.sh with H.bin (and H.wrap),
-- so ALOOP_BIN / ALOOP_WRAP select the build under test.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/06-command_spec.lua

local FIX = "spec/fixtures/"

local function fixture(name) return FIX .. name end

-- The line number of the line of a fixture marked with `-- RAISE`.
local function raise_line(name)
  local n = 0
  for line in io.lines(fixture(name)) do
    n = n + 1
    if line:find("-- RAISE", 1, true) then return n end
  end
  error("no RAISE marker in " .. name)
end

local function count(haystack, needle)
  local n, i = 0, 1
  while true do
    local s, e = haystack:find(needle, i, true)
    if not s then return n end
    n, i = n + 1, e + 1
  end
end

-- Run a fixture in the background, wait until it printed "started" (at most
-- ~5 s), send SIGINT ~0.3 s later, and wait for it. Returns the fixture's
-- stdout, stderr, exit status (as the shell's `wait` reports it) and the
-- seconds from the signal to the exit. Like every H.sh command line, it is
-- stopped if it takes longer than 20 s in all.
-- A non-interactive sh starts background commands with SIGINT ignored; a
-- terminal's Ctrl-C reaches a program whose SIGINT is at its default, so
-- restore that when env(1) can (GNU coreutils >= 8.31).
local DEFAULT_INT = select(3, H.sh("env --default-signal=INT true")) == 0
  and "env --default-signal=INT " or ""

local function interrupt(name, command)
  local out, err = os.tmpname(), os.tmpname()
  local line = table.concat({
    DEFAULT_INT .. (command or H.aloop_command)({ fixture(name) }) .. " >" .. out .. " 2>" .. err .. " & pid=$!",
    "i=0",
    "while ! grep -q started " .. out .. " && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done",
    "sleep 0.3",
    "s=$(date +%s.%N)",
    "kill -INT $pid",
    "wait $pid",
    "rc=$?",
    "e=$(date +%s.%N)",
    [[echo "exit:$rc $s $e"]],
  }, "; ")
  local status, sherr = H.sh(line, nil, 20)
  local function slurp(p)
    local f = assert(io.open(p)); local s = f:read("a"); f:close(); os.remove(p); return s
  end
  local stdout, stderr = slurp(out), slurp(err)
  local rc, s, e = status:match("exit:(%d+) ([%d.]+) ([%d.]+)")
  assert(rc, "could not run the interrupt line: " .. status .. sherr)
  return stdout, stderr, tonumber(rc), tonumber(e) - tonumber(s)
end

---------------------------------------------------------------------------

describe("aloop script.lua", function()
  it("runs the chunk as the main task, with arg and ... set as lua sets them", function()
    local out, err, code = H.aloop({ fixture("cli_args.lua"), "a", "b c" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(table.concat({
      "arg0=" .. fixture("cli_args.lua"),
      "arg1=a",
      "arg2=b c",
      "arg-1=" .. H.bin,
      "arg-2=nil",
      "arg-3=nil",
      "#arg=2",
      "varargs=2:a,b c",
    }, "\n") .. "\n", out)
  end)

  it("puts options before the script at negative indices of arg", function()
    local out, err, code = H.aloop({ "-e", "x = 1", fixture("cli_args.lua"), "z" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.matches("arg0=" .. fixture("cli_args.lua"):gsub("%p", "%%%0") .. "\n", out)
    assert.matches("\narg1=z\n", out, 1, true)
    assert.matches("\narg%-1=x = 1\n", out)
    assert.matches("\narg%-2=%-e\n", out)
    assert.matches("\narg%-3=" .. H.bin:gsub("%p", "%%%0") .. "\n", out)
    assert.matches("\nvarargs=1:z\n", out, 1, true)
  end)

  it("treats arguments after the script as the script's, even option-like ones", function()
    local out, err, code = H.aloop({ fixture("cli_args.lua"), "-v", "--" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.matches("\narg1=-v\narg2=--\n", out, 1, true)
  end)

  it("exits 0 and writes nothing to stderr when the main task succeeds", function()
    local out, err, code = H.aloop({ fixture("cli_names.lua") })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.matches("run1\tdone\t2\n", out, 1, true)
  end)

  it("keeps os.exit's status and flushes what was printed", function()
    local out, err, code = H.aloop({ "-e", "io.write('bye') aloop.sleep(0.01) os.exit(3)" })
    assert.are.equal("bye", out)
    assert.are.equal("", err)
    assert.are.equal(3, code)
  end)

  it("runs the collector in generational mode, as lua5.4 does", function()
    local code = "print(collectgarbage('incremental'))"
    local out, err, status = H.aloop({ "-e", code })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    local out2 = H.lua({ "-e", code })
    assert.are.equal("generational\n", out2)
    assert.are.equal(out2, out)
  end)

  it("behaves as under lua5.4 for a script that uses aloop.run(main)", function()
    local out1, err1, code1 = H.aloop({ fixture("cli_names.lua") })
    local out2, err2, code2 = H.lua({ fixture("cli_names.lua") })
    assert.are.equal(0, code2)
    assert.are.equal("", err2)
    assert.matches("main\tTask-1\t<Task pending name='Task-1'>", out2, 1, true)
    assert.are.equal(out2, out1) -- same task numbering and tostring
    assert.are.equal(err2, err1)
    assert.are.equal(code2, code1)
  end)

  it("cancels the tasks the main task left behind, and runs their cleanup at once", function()
    local out, err, code, secs = H.aloop({ fixture("cli_leftover.lua") })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local after = out:match("^main done\nleftover cleanup true after ([%d.]+) s\n$")
    assert.is_truthy(after, "stdout was:\n" .. out)
    -- the leftover sleeps 2 s: its cleanup must not wait for that
    assert.is_true(tonumber(after) < 0.5, "leftover cleanup ran " .. after .. " s after main")
    assert.is_true(secs < 2, "the run took " .. secs .. " s")
  end)
end)

describe("aloop options", function()
  it("-e runs code as the main task with the global aloop", function()
    local out, err, code = H.aloop({ "-e", "aloop.sleep(0.01) print('slept', type(aloop.run))" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("slept\tfunction\n", out)
  end)

  it("-e without a script sets arg as lua does (the program at index 0)", function()
    -- lua(1): "If there is no script, the interpreter name goes to index 0,
    -- followed by the other arguments."
    local code_ = "print(arg[0], arg[1], arg[2], arg[-1])"
    local out, err, code = H.aloop({ "-e", code_ })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(H.bin .. "\t-e\t" .. code_ .. "\tnil\n", out)
  end)

  it("several -e run in order", function()
    local out, err, code = H.aloop({ "-e", "x = 20", "-e", "aloop.sleep(0) print(x + 1)" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("21\n", out)
  end)

  it("- reads the script from stdin, with the arguments after it", function()
    local script = "local aloop = require 'aloop'\naloop.sleep(0.01)\nprint('stdin', arg[0], ...)\n"
    local out, err, code = H.aloop({ "-", "p", "q" }, script)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("stdin\t-\tp\tq\n", out)
  end)

  it("reads the script from stdin when given none and stdin is not a terminal", function()
    local out, err, code = H.aloop({}, "require('aloop').sleep(0) print('piped')\n")
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("piped\n", out)
  end)

  it("-l mod requires a module into a global, in order with -e", function()
    local out, err, code = H.aloop({
      "-e", "package.path = 'spec/fixtures/?.lua;' .. package.path",
      "-l", "cli_mod",
      "-e", "print(cli_mod.hello())",
    })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("hello from cli_mod\n", out)
  end)

  it("-l with a missing module exits 1 with lua's message", function()
    local out, err, code = H.aloop({ "-l", "no_such_module_xyz", "-e", "print('ran')" })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("module 'no_such_module_xyz' not found", err, 1, true)
  end)

  it("-v prints a version and exits 0", function()
    local out, err, code = H.aloop({ "-v" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.matches("^aloop %d+%.%d+", out)
    assert.matches("Lua 5.4", out, 1, true)
  end)

  it("-v with a script prints the version and runs the script", function()
    local out, err, code = H.aloop({ "-v", fixture("cli_args.lua"), "a" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.matches("^aloop %d+%.%d+[^\n]*\narg0=", out)
  end)

  for _, opt in ipairs({ "-h", "--help" }) do
    it(opt .. " prints the usage on stdout and exits 0", function()
      local out, err, code = H.aloop({ opt })
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.matches("^usage: ", out)
      assert.matches("-e", out, 1, true)
      assert.matches("-v", out, 1, true)
    end)
  end

  it("an unknown option prints the usage on stderr and exits 1", function()
    local out, err, code = H.aloop({ "-z", fixture("cli_args.lua") })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("-z", err, 1, true)
    assert.matches("usage: ", err, 1, true)
  end)

  it("-e without its argument prints the usage on stderr and exits 1", function()
    local out, err, code = H.aloop({ "-e" })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("usage: ", err, 1, true)
  end)
end)

describe("aloop errors", function()
  it("an uncaught top-level error: exit 1, message and traceback naming file and line", function()
    local name = "cli_error_top.lua"
    local where = fixture(name) .. ":" .. raise_line(name) .. ":"
    local out, err, code = H.aloop({ fixture(name) })
    assert.are.equal("before\n", out)
    assert.are.equal(1, code)
    assert.matches(where .. " top-level failure", err, 1, true)
    assert.matches("stack traceback:", err, 1, true)
    local tb = err:sub((assert(err:find("stack traceback:", 1, true))))
    assert.matches(where .. " in ", tb, 1, true) -- the frame that raised
    assert.matches(fixture(name) .. ":" .. (raise_line(name) + 1) .. ":", tb, 1, true) -- its caller
  end)

  it("an error raised in a task the script awaited: the traceback points inside the task", function()
    local name = "cli_error_task.lua"
    local where = fixture(name) .. ":" .. raise_line(name) .. ":"
    local out, err, code = H.aloop({ fixture(name) })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches(where .. " task failure 7", err, 1, true)
    local tbpos = err:find("stack traceback:", 1, true)
    assert.is_truthy(tbpos, "no traceback in:\n" .. err)
    assert.matches(where .. " in ", err:sub(tbpos), 1, true)
  end)

  it("an error raised in the function run by aloop.run(main): the traceback points inside it", function()
    local name = "cli_error_run.lua"
    local where = fixture(name) .. ":" .. raise_line(name) .. ":"
    local out, err, code = H.aloop({ fixture(name) })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches(where .. " attempt to index a nil value (local 't')", err, 1, true)
    local tbpos = err:find("stack traceback:", 1, true)
    assert.is_truthy(tbpos, "no traceback in:\n" .. err)
    assert.matches(where .. " in ", err:sub(tbpos), 1, true)
  end)

  for _, name in ipairs({ "cli_error_top.lua", "cli_error_task.lua", "cli_error_run.lua" }) do
    it("an uncaught error is reported once, not also as never retrieved (" .. name .. ")", function()
      local _, err, code = H.aloop({ fixture(name) })
      assert.are.equal(1, code)
      -- asyncio.run(main) re-raises main's exception and logs nothing else;
      -- the error aloop.run raises has been retrieved.
      assert.are.equal(0, count(err, "never retrieved"), "stderr was:\n" .. err)
      local msg = fixture(name) .. ":" .. raise_line(name) .. ":"
      assert.are.equal(1, count(err, "stack traceback:"), "stderr was:\n" .. err)
      assert.is_true(count(err, msg) >= 1)
    end)
  end

  it("an uncaught error object shows its __tostring", function()
    local out, err, code = H.aloop({ fixture("cli_error_object.lua") })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("MyError(code=42)", err, 1, true)
    assert.is_falsy(err:find("table: 0x", 1, true))
  end)

  it("an error in -e code: exit 1 with the message", function()
    local out, err, code = H.aloop({ "-e", "aloop.sleep(0) error('from -e')" })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("from -e", err, 1, true)
  end)

  it("a syntax error: exit 1 with lua's message, nothing run", function()
    local out, err, code = H.aloop({ fixture("cli_syntax.lua") })
    local _, lerr, lcode = H.sh("lua5.4 " .. H.quote(fixture("cli_syntax.lua")))
    assert.are.equal(1, lcode)
    local msg = lerr:match("^lua5%.4: ([^\n]*)")
    assert.are.equal(fixture("cli_syntax.lua") .. ":3: unexpected symbol near '='", msg)
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches(msg, err, 1, true)
  end)

  it("a missing script: exit 1 with a message naming it", function()
    local out, err, code = H.aloop({ fixture("no_such_script.lua") })
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("no_such_script.lua", err, 1, true)
  end)

  it("a failed task nobody awaited is reported on stderr; the exit status stays 0", function()
    local name = "cli_unretrieved.lua"
    local where = fixture(name) .. ":" .. raise_line(name) .. ":"
    local out, err, code = H.aloop({ fixture(name) })
    assert.are.equal("main done\n", out)
    assert.are.equal(0, code)
    assert.matches("Task exception was never retrieved", err, 1, true)
    assert.matches(where .. " lost failure", err, 1, true)
    local tbpos = err:find("stack traceback:", 1, true)
    assert.is_truthy(tbpos, "no traceback in:\n" .. err)
    assert.matches(where .. " in ", err:sub(tbpos), 1, true)
    assert.are.equal(1, count(err, "never retrieved"))
  end)
end)

describe("aloop and Ctrl-C", function()
  it("cancels the main task sleeping in a pcall; cleanup runs; exit 130", function()
    local out, err, code, secs = interrupt("cli_sigint_pcall.lua")
    assert.are.equal("started\ncleanup\tfalse\ttrue\n", out, "stderr:\n" .. err)
    assert.are.equal(130, code, "stderr:\n" .. err)
    assert.is_true(secs < 2, "exit took " .. secs .. " s after SIGINT")
  end)

  it("cancels the main task sleeping with a <close> variable; cleanup runs; exit 130", function()
    local out, err, code, secs = interrupt("cli_sigint_close.lua")
    assert.are.equal("started\ncleanup\n", out, "stderr:\n" .. err)
    assert.are.equal(130, code, "stderr:\n" .. err)
    assert.is_true(secs < 2, "exit took " .. secs .. " s after SIGINT")
  end)

  it("also cancels the tasks the main task spawned; their cleanup runs at once; exit 130", function()
    local out, err, code, secs = interrupt("cli_sigint_child.lua")
    local after = out:match("^started\ncleanup\nchild cleanup true after ([%d.]+) s\n$")
    assert.is_truthy(after, "stdout was:\n" .. out .. "\nstderr:\n" .. err)
    -- the child sleeps 2 s: its cleanup must not wait for that
    assert.is_true(tonumber(after) < 0.5, "child cleanup ran " .. after .. " s after the main's")
    assert.is_true(secs < 1.5, "exit took " .. secs .. " s after SIGINT")
    assert.are.equal(130, code, "stderr:\n" .. err)
  end)

  -- W4: a script's own aloop.run is nested under the command (the script
  -- runs in a task) and top-level under lua5.4; it ends the same way.
  for _, runner in ipairs({ "aloop", "lua5.4" }) do
    local command = runner == "aloop" and H.aloop_command or H.lua_command
    it("a nested run that can never finish raises and the script goes on, under " .. runner .. " (W4)", function()
      local out, err, code = H.sh(command({ fixture("cli_nested_deadlock.lua") }))
      assert.equal(0, code, err)
      assert.matches("caught:\tfalse\taloop.run: the main task waits for something that can never happen", out, 1, true)
      assert.matches("script goes on", out, 1, true)
      assert.equal("", err)
    end)

    it("Ctrl-C interrupts the script's own run, which raises KeyboardInterrupt, under " .. runner .. " (W4)", function()
      local out, err, code = interrupt("cli_nested_sigint.lua", command)
      assert.equal(0, code, err)
      assert.matches("run raised:\tfalse\tKeyboardInterrupt\ttrue", out, 1, true)
      assert.matches("script goes on", out, 1, true)
    end)
  end
end)
