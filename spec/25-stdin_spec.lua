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

  it("keeps half a line read by a cancelled input for the next one", function()
    local out, err, code = H.sh("(printf 'par'; sleep 0.8; printf 'tial\\nrest\\n') | " ..
      H.aloop_command({ fixture("stdin_cancel.lua") }), nil, 20)
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal("first? \ncancelled\ttrue\nsecond? line\tpartial\nticked\ttrue\n", out)
  end)

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

  for _, mode in ipairs(H.script_modes) do
    it("answers commands through a pipe while the worker keeps working (" .. mode.name .. ")", function()
      local cmd = "(printf 'hello\\n'; sleep 1; printf 'quit\\n') | env ALOOP_CLI_PERIOD=0.1 " ..
        mode.command({ "scripts/06_responsive_cli.lua" })
      local out, err, code = H.sh(cmd, nil, 20)
      assert.equal("", noted(err))
      assert.equal(0, code)
      local s = out:find("Received command: hello\n", 1, true)
      assert.truthy(s, out)
      local between = out:sub(s, out:find("Exiting...", 1, true))
      local _, n = between:gsub("Working%.%.%.", "")
      assert.is_true(n >= 3, "Working... lines while input waited: " .. n .. "\n" .. out)
      assert.equal(EXPECT_END, out:sub(-#EXPECT_END))
    end)
  end

  it("runs in a pseudo-terminal", function()
    local cmd = "(printf 'hi there\\n'; sleep 1; printf 'quit\\n'; sleep 0.5) | " ..
      "env ALOOP_CLI_PERIOD=0.1 script -qec " ..
      q(H.aloop_command({ "scripts/06_responsive_cli.lua" })) .. " /dev/null"
    local out, _, code = H.sh(cmd, nil, 20)
    assert.equal(0, code)
    out = out:gsub("\r", "")
    assert.truthy(out:find("Enter command: Received command: hi there\n", 1, true), out)
    local _, n = out:gsub("Working%.%.%.", "")
    assert.is_true(n >= 3, out)
    assert.truthy(out:find(EXPECT_END, 1, true), out)
  end)

  it("prints Working... every 2 s by default", function()
    local out, err, code = H.sh("(sleep 2.5; printf 'quit\\n') | " ..
      H.aloop_command({ "scripts/06_responsive_cli.lua" }), nil, 20)
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal("Enter command: Working...\nWorking...\n" .. EXPECT_END, out)
  end)
end)
