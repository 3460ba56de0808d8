-- 25-stdin_spec.lua -- standard input without threads (aloop.input,
-- aloop.stdin) from a pipe, a file, a pseudo-terminal and at its end; a
-- cancelled input that loses nothing; the command's Ctrl-C and SIGTERM
-- while the main task waits on stdin or on a child; and the responsive
-- CLI tutorial (scripts/06_responsive_cli.lua).
local aloop = require "aloop"
-- stderr without valgrind's own notes (under ALOOP_WRAP=valgrind, version
-- 3.19 warns that it does not know pidfd_open; aloop then polls instead)
local function noted(err) return (err:gsub("%-%-%d+%-%- [^\n]*\n", "")) end
local N = dofile("spec/net_helper.lua")

local function fixture(name) return "spec/fixtures/" .. name end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The aloop command on a fixture as a child of this process (through
-- `sh -c exec`, so that ALOOP_WRAP applies), with pipes.
local function start(args, env)
  local vars = ""
  for k, v in pairs(env or {}) do vars = vars .. k .. "=" .. q(v) .. " " end
  return aloop.subprocess.shell("exec env " .. vars .. H.aloop_command(args),
    { stdin = "pipe", stdout = "pipe", stderr = "pipe" })
end

describe("aloop.input", function()
  it("reads the lines of a pipe, then nil at the end, leaving O_NONBLOCK off", function()
    local out, err, code = H.sh("printf 'a\\n\\nlast' | " .. H.aloop_command({ fixture("stdin_lines.lua") }))
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal("1:[a]\n2:[]\n3:[last]\nagain? eof\tnil\nnonblock\tfalse\n", out)
  end)

  it("reads a regular file (which epoll cannot watch)", function()
    local out, err, code = H.aloop({ fixture("stdin_lines.lua") }, "one\ntwo\n")
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal("1:[one]\n2:[two]\nagain? eof\tnil\nnonblock\tfalse\n", out)
  end)

  it("gives nil at once on an empty stdin (/dev/null)", function()
    local out, _, code = H.aloop({ fixture("stdin_lines.lua") })
    assert.equal(0, code)
    assert.equal("again? eof\tnil\nnonblock\tfalse\n", out)
  end)

  it("reads from a pseudo-terminal, leaving the terminal blocking", function()
    local cmd = "(printf 'x y\\n'; sleep 0.5; printf '\\004') | script -qec " ..
      q(H.aloop_command({ fixture("stdin_lines.lua") })) .. " /dev/null"
    local out, _, code = H.sh(cmd, nil, 20)
    assert.equal(0, code)
    out = out:gsub("\r", "")
    assert.truthy(out:find("1:[x y]\n", 1, true), out)
    assert.truthy(out:find("eof\tnil\nnonblock\tfalse\n", 1, true), out)
  end)

  it("shares one buffer with aloop.stdin(), a read-only stream", function()
    local out, err, code = H.aloop({ fixture("stdin_mixed.lua") }, "first\nabcdef\nlast\nend")
    assert.equal("", noted(err))
    assert.equal(0, code)
    local lines = H.split_lines(out)
    assert.equal("> input\tfirst", lines[1])
    assert.equal("read3\tabc", lines[2])
    assert.equal("line\tdef", lines[3])
    assert.equal("line\tlast", lines[4])
    assert.equal("line\tend", lines[5])
    assert.equal("at_eof\ttrue\tnil", lines[6])
    assert.truthy(lines[7]:find("^false\t.*write after write_eof"), lines[7])
  end)

  it("keeps half a line read by a cancelled input for the next one", N.async(function()
    local p = start({ fixture("stdin_cancel.lua") })
    assert.equal("first? ", p.stdout:readuntil("first? "))
    p.stdin:write("par")
    p.stdin:drain()
    aloop.sleep(0.3) -- (whether aloop has read it yet or not, it must be kept)
    p:send_signal("SIGUSR1")
    assert.equal("\ncancelled\ttrue\nsecond? ", p.stdout:readuntil("second? "))
    local out, err = p:communicate("tial\nrest\n")
    assert.equal("", noted(err))
    assert.equal(0, p.returncode)
    assert.equal("line\tpartial\nticked\ttrue\n", out)
  end, 30))

  it("works under lua5.4 too; once the script closes the stream, a new one is made", function()
    local out, err, code = H.lua({ "-e", [[
      local aloop = require "aloop"
      aloop.run(function()
        local s = aloop.stdin()
        print(aloop.input(), s:readline())
        s:close()
        print(aloop.stdin() ~= s, aloop.stdin() == aloop.stdin())
      end)]] }, "one\ntwo\n")
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal("one\ttwo\n\ntrue\ttrue\n", out)
  end)

  it("needs a task", function()
    assert.has_error(function() aloop.input() end)
  end)

  it("is one stream per state, closed with no descriptor left", N.async(function()
    local s = aloop.stdin()
    assert.equal(s, aloop.stdin())
    s:close()
  end))
end)

describe("the aloop command and signals", function()
  local function wait_started(p)
    local line = p.stdout:readline()
    assert.equal("started\n", line)
    aloop.sleep(0.2)
  end

  for _, case in ipairs({
    { sig = "SIGINT", code = 130, msg = "aloop: interrupted" },
    { sig = "SIGTERM", code = 143, msg = "aloop: terminated" },
  }) do
    it(case.sig .. " cancels the main task waiting on stdin; cleanup runs; exit " .. case.code,
      N.async(function()
        local p = start({ fixture("stdin_signal.lua") })
        wait_started(p)
        p:send_signal(case.sig)
        p:wait() -- stdin stays open: the signal, not an end of input, stops it
        local out, err = p:communicate()
        assert.equal(case.code, p.returncode, out .. err)
        assert.equal("finally\ttrue\nclosed\n", out)
        assert.equal(case.msg .. "\n", noted(err))
      end, 20))

    it(case.sig .. " cancels the main task waiting on a child", N.async(function()
      local p = start({ fixture("stdin_signal.lua"), "child" })
      wait_started(p)
      p:send_signal(case.sig)
      p:wait()
      local out, err = p:communicate()
      assert.equal(case.code, p.returncode)
      assert.equal("finally\ttrue\nclosed\n", out)
      assert.equal(case.msg .. "\n", noted(err))
    end, 20))
  end

  it("a script with an on_signal handler for SIGTERM handles it itself", N.async(function()
    local p = start({ "-e", [[
      io.stdout:setvbuf("line")
      local got = false
      aloop.on_signal("SIGTERM", function() print("handled") got = true end)
      print("started")
      while not got do aloop.sleep(0.02) end -- (a handler keeps no loop alive)
      print("main goes on")]] })
    wait_started(p)
    p:terminate()
    p:wait()
    local out, err = p:communicate()
    assert.equal(0, p.returncode)
    assert.equal("handled\nmain goes on\n", out)
    assert.equal("", noted(err))
  end, 20))

  it("lua5.4 scripts keep SIGTERM: it ends them at once", N.async(function()
    local p = aloop.subprocess.shell("exec " .. H.lua_command({ "-e", [[
      local aloop = require "aloop"
      io.stdout:setvbuf("line")
      aloop.run(function() print("started") aloop.sleep(30) end)]] }),
      { stdout = "pipe" })
    assert.equal("started\n", p.stdout:readline())
    p:terminate()
    assert.equal(-15, p:wait())
    p.stdout:close()
  end, 20))
end)

describe("scripts/06_responsive_cli.lua #slow", function()
  local EXPECT_END = "Exiting...\nBackground worker cancelled\n"

  -- Drive the script in cmdline: wait for its prompt, type a command, wait
  -- for its answer, let `wait` seconds pass, type quit. Returns all it
  -- printed and the Working... lines printed while the second input waited.
  local function drive(cmdline, wait)
    local p = aloop.subprocess.shell("exec " .. cmdline, { stdin = "pipe", stdout = "pipe" })
    local seen = p.stdout:readuntil("Enter command: ")
    p.stdin:write("hi there\n")
    seen = seen .. p.stdout:readuntil("Received command: hi there")
    aloop.sleep(wait)
    p.stdin:write("quit\n")
    local rest = p.stdout:read()
    p.stdin:close()
    p.stdout:close()
    assert.equal(0, p:wait())
    local _, n = rest:sub(1, rest:find("Exiting...", 1, true)):gsub("Working%.%.%.", "")
    return (seen .. rest):gsub("\r", ""), n
  end

  for _, mode in ipairs(H.script_modes) do
    it("answers commands through a pipe while the worker keeps working (" .. mode.name .. ")",
      N.async(function()
        local out, n = drive("env ALOOP_CLI_PERIOD=0.05 " .. mode.command({ "scripts/06_responsive_cli.lua" }), 1)
        assert.truthy(out:find("^Enter command: .*Received command: hi there\nEnter command: "), out)
        assert.is_true(n >= 3, "Working... lines while input waited: " .. n .. "\n" .. out)
        assert.equal(EXPECT_END, out:sub(-#EXPECT_END))
      end, 30))
  end

  it("runs in a pseudo-terminal", N.async(function()
    local out, n = drive("env ALOOP_CLI_PERIOD=0.05 script -qec " ..
      q(H.aloop_command({ "scripts/06_responsive_cli.lua" })) .. " /dev/null", 1)
    assert.truthy(out:find("^Enter command: .*\nReceived command: hi there\nEnter command: "), out)
    assert.is_true(n >= 3, out)
    assert.truthy(out:find(EXPECT_END, 1, true), out)
  end, 30))

  it("prints Working... every 2 s by default", N.async(function()
    -- in a terminal each line comes out as it is printed: time two of them
    local p = aloop.subprocess.shell("exec script -qec " ..
      q(H.aloop_command({ "scripts/06_responsive_cli.lua" })) .. " /dev/null",
      { stdin = "pipe", stdout = "pipe" })
    local times = {}
    while #times < 3 do
      local line = p.stdout:readline()
      assert.truthy(line ~= "", "no more output")
      if line:find("Working...", 1, true) then times[#times + 1] = aloop.time() end
    end
    p.stdin:write("quit\n")
    local rest = p.stdout:read()
    p.stdin:close()
    p.stdout:close()
    assert.equal(0, p:wait())
    assert.truthy(rest:find("Exiting...\r\nBackground worker cancelled\r\n", 1, true), rest)
    local dt = times[3] - times[2]
    assert.is_true(dt > 1.5 and dt < 3, "period " .. dt)
  end, 30))
end)
