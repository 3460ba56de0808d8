-- 18-process_spec.lua -- what belongs to the whole process stays the
-- process's: a loop aloop makes is its own (not libev's default loop, which
-- reaps every child), signals are taken only when a script asks, and OS
-- errors come back as values.
local aloop = require "aloop"

describe("process-wide state", function()
  local popen = [[
    local aloop = require "aloop"
    aloop.run(function()
      local p = io.popen("exit 3")
      aloop.sleep(0.2)
      print(p:close())
      print(os.execute("exit 4"))
    end)
  ]]

  it("io.popen keeps its child's exit status under the aloop command", function()
    local out, err, code = H.aloop({ "-e", popen })
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("nil\texit\t3\nnil\texit\t4\n", out)
  end)

  it("io.popen keeps its child's exit status under lua5.4", function()
    local out, err, code = H.lua({ "-e", popen })
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("nil\texit\t3\nnil\texit\t4\n", out)
  end)
end)

describe("OS errors as values", function()
  it("carry the code, the errno and the message, and print as CODE: message", function()
    local e = aloop._oserror(111)
    assert.is_true(aloop.is_os_error(e))
    assert.equal("ECONNREFUSED", e.code)
    assert.equal(111, e.errno)
    assert.equal("connection refused", e.message)
    assert.equal("ECONNREFUSED: connection refused", tostring(e))
    assert.is_false(aloop.is_os_error("ECONNREFUSED"))
    assert.is_false(aloop.is_cancelled(e))
  end)

  it("say what failed when told", function()
    local e = aloop._oserror(2, "open /nope")
    assert.equal("ENOENT: no such file or directory (open /nope)", tostring(e))
  end)

  it("name an errno outside the table EUNKNOWN", function()
    local e = aloop._oserror(4000)
    assert.equal("EUNKNOWN", e.code)
    assert.equal(4000, e.errno)
  end)

  it("raise as values through await", H.async(function()
    local t = aloop.create_task(function() error(aloop._oserror(104)) end)
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal("ECONNRESET", e.code)
  end))
end)

describe("signals for scripts", function()
  local pid = tonumber(io.open("/proc/self/stat"):read("a"):match("^(%d+)"))
  local function kill(sig) os.execute("kill -" .. sig .. " " .. pid) end

  it("on_signal runs its handler on a delivery, until cancelled", H.async(function()
    local got = {}
    local h = aloop.on_signal("SIGUSR1", function(signo) got[#got + 1] = signo end)
    kill("USR1")
    for _ = 1, 100 do if #got > 0 then break end aloop.sleep(0.01) end
    assert.same({ 10 }, got)
    h:cancel()
    h:cancel() -- idempotent
  end))

  it("wait_signal waits for the next delivery, and takes names or numbers", H.async(function()
    local t = aloop.create_task(aloop.wait_signal, "USR2")
    aloop.sleep(0.01)
    kill("USR2")
    assert.equal(12, t:await())
  end))

  it("wait_signal is cancellable and leaves nothing behind", H.async(function()
    local ok, e = pcall(aloop.wait_for, function() return aloop.wait_signal(10) end, 0.02)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(e))
  end))

  it("a handler's error is reported, and the other handlers still run", H.async(function()
    local got = 0
    local reports = H.reports_of(function()
      local h1 = aloop.on_signal("SIGUSR1", function() error("boom", 0) end)
      local h2 = aloop.on_signal("SIGUSR1", function() got = got + 1 end)
      kill("USR1")
      for _ = 1, 100 do if got > 0 then break end aloop.sleep(0.01) end
      h1:cancel(); h2:cancel()
    end)
    assert.equal(1, got)
    assert.equal(1, #reports)
    assert.equal("boom", reports[1].exception)
  end))

  it("refuses what cannot be caught or does not exist", function()
    assert.matches("cannot be caught", H.raises(aloop.on_signal, "SIGKILL", print))
    assert.matches("unknown signal", H.raises(aloop.on_signal, "SIGNOPE", print))
    assert.matches("function expected", H.raises(aloop.on_signal, "SIGUSR1", 42))
    assert.matches("outside a task", H.raises(aloop.wait_signal, "SIGUSR1"))
  end)

  it("a waiting task alone keeps the loop alive; handlers alone do not", function()
    local h = aloop.on_signal("SIGUSR1", function() end)
    local ok, e = pcall(aloop.run, function() aloop.Future():await() end)
    h:cancel()
    assert.is_false(ok)
    assert.matches("can never happen", tostring(e))
  end)
end)
