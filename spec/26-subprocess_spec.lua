-- 26-subprocess_spec.lua -- aloop.subprocess: exec and shell, the stdio
-- options, env and cwd, communicate with 10 MB each way, signals and
-- negative return codes, a missing program raising at once, children
-- started with a clean signal state and no inherited descriptors, waiting
-- that reaps only aloop's own children (io.popen and os.execute keep their
-- statuses), cancellation that leaves the child alone, and a collected
-- Process whose child is still reaped. Every test checks that no
-- descriptor, watcher or zombie is left; also scripts/subprocesses.lua.
local aloop = require "aloop"
-- stderr without valgrind's own notes (under ALOOP_WRAP=valgrind, version
-- 3.19 warns that it does not know pidfd_open; aloop then polls instead)
local function noted(err) return (err:gsub("%-%-%d+%-%- [^\n]*\n", "")) end
local N = dofile("spec/net_helper.lua")
local sp = aloop.subprocess

local mypid = tonumber(io.open("/proc/self/stat"):read("a"):match("^(%d+)"))

-- The pids of this process's children that are zombies.
local function zombies()
  local found = {}
  local p = io.popen("ls /proc")
  local names = p:read("a")
  p:close() -- first: its shell would be a zombie until then
  for name in names:gmatch("%S+") do
    if name:match("^%d+$") then
      local f = io.open("/proc/" .. name .. "/stat")
      if f then
        local st = f:read("a") or ""
        f:close()
        local state, ppid = st:match("%) (%a) (%d+)")
        if state == "Z" and tonumber(ppid) == mypid then found[#found + 1] = name end
      end
    end
  end
  return table.concat(found, " ")
end

-- N.async, and no zombie child afterwards.
local function test(fn, limit)
  local body = N.async(fn, limit)
  return function()
    body()
    assert.equal("", zombies(), "zombie children left")
  end
end

local function tmpdir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  return d
end

describe("aloop.subprocess.exec", function()
  it("runs a program with arguments and gives its output and status", test(function()
    local p = sp.exec("sh", "-c", "echo \"$1 $2\"; echo err >&2; exit 3", "sh", "a b", 7,
      { stdout = "pipe", stderr = "pipe" })
    assert.is_true(math.type(p.pid) == "integer" and p.pid > 0)
    assert.is_nil(p.stdin)
    local out, err = p:communicate()
    assert.equal("a b 7\n", out)
    assert.equal("err\n", err)
    assert.equal(3, p.returncode)
    assert.equal(3, p:wait())
  end))

  it("raises the OS error at once for a program that does not exist", test(function()
    local ok, e = pcall(sp.exec, "/nonexistent/program", { stdout = "pipe" })
    assert.is_false(ok)
    assert.is_true(aloop.is_os_error(e))
    assert.equal("ENOENT", e.code)
    assert.equal("ENOENT: no such file or directory", tostring(e))
    ok, e = pcall(sp.exec, "aloop-no-such-program-in-path")
    assert.is_false(ok)
    assert.equal("ENOENT", e.code)
    ok, e = pcall(sp.exec, "/etc/passwd") -- not executable
    assert.is_false(ok)
    assert.equal("EACCES", e.code)
  end))

  it("checks its arguments, naming the function", function()
    local ok, e = pcall(sp.exec, nil)
    assert.is_false(ok)
    local _
    assert.truthy(e:find("bad argument #1 to 'exec' (string expected, got nil)", 1, true), e)
    _, e = pcall(sp.exec, "true", {}, { stdout = "pipe" })
    assert.truthy(e:find("bad argument #2 to 'exec' (string expected, got table)", 1, true), e)
    _, e = pcall(sp.exec, "true", { stdout = "bogus" })
    assert.truthy(e:find("bad argument #2 to 'exec' (stdout must be", 1, true), e)
    _, e = pcall(sp.exec, "true", { stdin = "stdout" })
    assert.truthy(e:find("stdin must be", 1, true), e)
    _, e = pcall(sp.shell, 42)
    assert.truthy(e:find("bad argument #1 to 'shell' (string expected, got number)", 1, true), e)
    _, e = pcall(sp.shell, "true", { env = { A = {} } })
    assert.truthy(e:find("bad argument #2 to 'shell' (env must map names to strings)", 1, true), e)
  end)

  it("Process methods check their object, and nothing internal shows on it", test(function()
    local p = sp.exec("true")
    local here = "26%-subprocess_spec%.lua:%d+: "
    for _, m in ipairs { "wait", "communicate", "terminate", "kill" } do
      local ok, e = pcall(function() p[m]() end)
      assert.is_false(ok)
      assert.matches(here .. "bad argument #1 to '" .. m .. "' %(aloop Process expected, got nil%)", e)
    end
    local ok, e = pcall(function() p.send_signal({}, "TERM") end)
    assert.is_false(ok)
    assert.matches(here .. "bad argument #1 to 'send_signal' %(aloop Process expected, got table%)", e)
    ok, e = pcall(function() p:send_signal("BOGUS") end)
    assert.is_false(ok)
    assert.matches(here .. "bad argument #1 to 'send_signal' %(unknown signal 'BOGUS'%)", e)
    local keys = {}
    for k in pairs(p) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "pid" }, keys) -- (no pipes asked for: stdin, stdout, stderr nil)
    assert.equal(sp.Process, getmetatable(p))
    assert.equal(0, p:wait())
    assert.matches("^<aloop.Process %d+ returncode=0>$", tostring(p))
  end))

  it("communicate feeds 10 MB in and reads 10 MB out and 10 MB err without a deadlock", test(function()
    local data = string.rep("0123456789abcdef", 10 * 1024 * 1024 // 16)
    local p = sp.shell("tee /dev/stderr", { stdin = "pipe", stdout = "pipe", stderr = "pipe" })
    local out, err = p:communicate(data)
    assert.equal(#data, #out)
    assert.is_true(out == data)
    assert.is_true(err == data)
    assert.equal(0, p.returncode)
  end, 60))

  it("gives minus the signal number when the child was killed", test(function()
    local p = sp.exec("sleep", "30")
    assert.is_nil(p.returncode)
    p:kill()
    assert.equal(-9, p:wait())
    assert.equal(-9, p.returncode)
    p:kill() -- after it was reaped: nothing happens
    local q = sp.exec("sleep", "30")
    q:terminate()
    assert.equal(-15, q:wait())
    local r = sp.exec("sleep", "30")
    r:send_signal("SIGUSR1")
    assert.equal(-10, r:wait())
    local s = sp.exec("sleep", "30")
    s:send_signal(2)
    assert.equal(-2, s:wait())
  end))

  it("passes env (the whole environment) and cwd", test(function()
    local dir = tmpdir()
    local p = sp.exec("/bin/sh", "-c", "pwd; echo \"$FOO:$HOME\"",
      { env = { FOO = "bar", N = 1 }, cwd = dir, stdout = "pipe" })
    local out = p:communicate()
    assert.equal(dir .. "\nbar:\n", out)
    local ok, e = pcall(sp.exec, "true", { cwd = dir .. "/missing" })
    assert.is_false(ok)
    assert.equal("ENOENT", e.code)
    os.remove(dir)
  end))

  it("takes every stdio option: pipe, inherit, null, stdout and an open file", test(function()
    local dir = tmpdir()
    local f = assert(io.open(dir .. "/out", "w"))
    f:write("before\n")
    local p = sp.shell("echo to-file; echo err-to-file >&2; cat", { stdin = "null", stdout = f, stderr = "stdout" })
    assert.equal(0, p:wait())
    f:close()
    local r = assert(io.open(dir .. "/out"))
    assert.equal("before\nto-file\nerr-to-file\n", r:read("a"))
    r:close()
    local q = sp.shell("echo out; echo err >&2", { stdout = "pipe", stderr = "stdout" })
    assert.equal("out\nerr\n", q:communicate())
    local n = sp.shell("echo gone; echo gone >&2", { stdout = "null", stderr = "null" })
    assert.is_nil(n.stdout)
    assert.equal(0, n:wait())
    local i = sp.exec("true", { stdin = "inherit", stdout = "inherit", stderr = "inherit" })
    assert.equal(0, i:wait())
    local w = assert(io.open(dir .. "/in", "w")); w:write("from a file\n"); w:close()
    local rf = assert(io.open(dir .. "/in"))
    local c = sp.exec("cat", { stdin = rf, stdout = "pipe" })
    assert.equal("from a file\n", c:communicate())
    rf:close()
    local closed = assert(io.open(dir .. "/in")); closed:close()
    local ok, e = pcall(sp.exec, "cat", { stdin = closed })
    assert.is_false(ok)
    assert.truthy(e:find("stdin is a closed file", 1, true), e)
    os.remove(dir .. "/in"); os.remove(dir .. "/out"); os.remove(dir)
  end))

  it("streams: write, drain, write_eof and readline on the pipes", test(function()
    local p = sp.exec("cat", { stdin = "pipe", stdout = "pipe" })
    p.stdin:write("one\ntwo\n")
    p.stdin:drain()
    assert.equal("one\n", p.stdout:readline())
    p.stdin:write_eof()
    assert.equal("two\n", p.stdout:readline())
    assert.equal("", p.stdout:read())
    assert.equal(0, p:wait())
    p.stdout:close()
  end))

  it("writing to a child that exited is EPIPE, not a SIGPIPE", test(function()
    local p = sp.exec("true", { stdin = "pipe" })
    p:wait()
    local ok, e = pcall(function()
      for _ = 1, 10 do p.stdin:write(string.rep("x", 100000)); p.stdin:drain() end
    end)
    assert.is_false(ok)
    assert.equal("EPIPE", e.code)
    p.stdin:close()
    -- communicate ignores it, as asyncio does
    local q = sp.exec("true", { stdin = "pipe", stdout = "pipe" })
    q:wait()
    assert.equal("", q:communicate(string.rep("y", 1000000)))
  end))
end)

describe("children", function()
  it("start with default signal dispositions, an empty mask, and no inherited descriptors", test(function()
    -- (signals 32 and 33 belong to glibc, which leaves them be)
    local p = sp.exec("grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", { stdout = "pipe" })
    local blk, ign = p:communicate():match("SigBlk:%s*(%x+)\nSigIgn:%s*(%x+)")
    assert.equal(0, tonumber(blk, 16) & 0x7fffffff)
    assert.equal(0, tonumber(ign, 16) & 0x7fffffff)
    local keep = sp.exec("sleep", "30", { stdin = "pipe", stdout = "pipe" }) -- pipes of ours are open
    local q = sp.exec("ls", "-l", "/proc/self/fd", { stdout = "pipe" })
    local mine = { [keep.stdin:get_extra_info("socket")] = true,
                   [keep.stdout:get_extra_info("socket")] = true }
    local ls = io.popen("ls -l /proc/" .. mypid .. "/fd")
    local listing = ls:read("a")
    ls:close()
    -- our pipe ends and the child ends of the other child's pipes are
    -- close-on-exec; so are the pidfds and libev's own descriptors: no
    -- descriptor of the child is one of those pipes (compared by what they
    -- are, not by number: a tool such as valgrind may hold numbers of its own)
    local ours = {}
    for fd, target in listing:gmatch(" (%d+) %-> ([^\n]+)") do
      if mine[tonumber(fd)] then ours[target] = true end
    end
    local theirs = q:communicate()
    -- Under valgrind a child inherits every descriptor, close-on-exec or
    -- not (valgrind's own reserved ones show in its listing too): its exec
    -- is not the kernel's, so only the flags are checked there (below).
    local maps = assert(io.open("/proc/self/maps")):read("a")
    if not maps:find("vgpreload", 1, true) then
      for target in theirs:gmatch(" %d+ %-> ([^\n]+)") do assert.is_nil(ours[target], theirs) end
    end
    local checked = 0
    for fd, target in listing:gmatch(" (%d+) %-> ([^\n]+)") do
      if target:find("pidfd", 1, true) or target:find("eventpoll", 1, true) or
          mine[tonumber(fd)] then
        local f = io.open("/proc/self/fdinfo/" .. fd)
        if f then -- (the listing's own pipe is gone by now)
          local flags = tonumber(f:read("a"):match("flags:%s*(%d+)"), 8)
          f:close()
          assert.is_true(flags & tonumber("2000000", 8) ~= 0, "descriptor " .. fd ..
            " (" .. target .. ") is not close-on-exec")
          checked = checked + 1
        end
      end
    end
    -- 2 pipes and epoll, and a pidfd but under valgrind (no pidfd_open there)
    assert.is_true(checked >= (maps:find("vgpreload", 1, true) and 3 or 4), listing)
    keep:kill()
    keep:wait()
    keep.stdin:close()
    keep.stdout:close()
  end))

  it("do not inherit signals the parent ignores", function()
    local out, err, code = H.sh("trap '' INT HUP PIPE; " .. H.aloop_command({ "-e", [[
      local p = aloop.subprocess.exec("grep", "^SigIgn", "/proc/self/status", { stdout = "pipe" })
      print(tonumber(p:communicate():match("(%x+)%s*$"), 16) & 0x7fffffff)]] }))
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal("0\n", out)
  end)

  it("are reaped one by one: io.popen and os.execute keep their statuses", test(function()
    local p = sp.exec("sleep", "0.3")
    local f = io.popen("exit 3")
    local g = io.popen("sleep 0.1; exit 5")
    aloop.sleep(0.05)
    assert.same({ nil, "exit", 3 }, { f:close() })
    assert.same({ nil, "exit", 4 }, { os.execute("exit 4") })
    assert.equal(0, p:wait())
    assert.same({ nil, "exit", 5 }, { g:close() })
  end))

  it("many at once", test(function()
    local ps = {}
    for i = 1, 20 do ps[i] = sp.shell("exit " .. i) end
    for i = 1, 20 do assert.equal(i, ps[i]:wait()) end
  end))

  it("a cancelled wait or communicate leaves the child running", test(function()
    local p = sp.exec("sleep", "30", { stdout = "pipe" })
    local t = aloop.create_task(p.wait, p)
    aloop.sleep(0.05)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    assert.is_true(t:cancelled())
    assert.is_nil(p.returncode)
    local ok, e = pcall(aloop.wait_for, function() return p:communicate() end, 0.1)
    assert.is_false(ok)
    assert.equal("TimeoutError", e.kind)
    assert.is_nil(p.returncode)
    assert.equal(0, sp.exec("kill", "-0", tostring(p.pid)):wait())
    p:kill() -- what to do to stop it
    assert.equal(-9, p:wait())
    p.stdout:close()
  end))

  it("are reaped even when their Process is collected while they run", test(function()
    local pid
    do
      local p = sp.exec("sleep", "0.2")
      pid = p.pid
    end
    collectgarbage()
    collectgarbage()
    aloop.sleep(0.6)
    assert.is_nil(io.open("/proc/" .. pid .. "/stat"), "child " .. pid .. " is still there")
  end))
end)

describe("a state that closes", function()
  it("lets go of children still running, without waiting for them", function()
    local out, err, code, secs = H.lua({ "-e", [[
      local aloop = require "aloop"
      aloop.run(function()
        local p = aloop.subprocess.exec("sleep", "10", { stdout = "pipe" })
        local q = aloop.subprocess.exec("sleep", "10")
        p, q = nil, nil
        collectgarbage()
        collectgarbage()
        local r = aloop.subprocess.exec("sleep", "10") -- held as the state closes
        print("done", r.returncode)
      end)]] }, nil, 20)
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal("done\tnil\n", out)
    assert.is_true(secs < 8, "took " .. secs .. " s") -- not the 10 s of the children
  end)
end)

describe("scripts/subprocesses.lua", function()
  it("runs commands at once and gathers their outputs, with a timeout", function()
    local out, err, code = H.aloop({ "scripts/subprocesses.lua" }, nil, 20)
    assert.equal("", noted(err))
    assert.equal(0, code)
    assert.equal(table.concat({
      "echo hello: exit 0: hello",
      "uname -s: exit 0: Linux",
      "sh -c 'exit 3': exit 3: ",
      "sleep 10: timed out (killed: -9)",
      "no-such-command-aloop: ENOENT: no such file or directory",
      "done in under 2 s: true", "" }, "\n"), out)
  end)
end)
