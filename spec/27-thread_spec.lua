-- spec/27-thread_spec.lua: aloop.to_thread and loop:run_in_executor -- a
-- function run on a worker thread with a Lua state of its own, its function,
-- arguments and results copied between the states; errors with the thread's
-- traceback; cancellation; the pool's size; exit with jobs still running.
-- Tests tagged #command start programs (`make tsan` leaves them out: a
-- shell started with libtsan preloaded crashes; it runs the script itself).
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/27-thread_spec.lua
local aloop = require "aloop"

-- The descriptors open in this process (as net_helper.lua's N.fds).
local function fds()
  local list = {}
  for fd = 0, 1100 do
    local f, err = io.open("/proc/self/fd/" .. fd)
    if f then
      f:close()
      list[#list + 1] = fd
    elseif not err:find("No such file", 1, true) then
      list[#list + 1] = fd
    end
  end
  return table.concat(list, " ")
end

local stats = aloop._threads.stats

-- The pool's first use opens libev's wake-up descriptor and starts a
-- thread: do it before anything is counted.
aloop.run(function() aloop.to_thread(function() end) end)
local default_size = aloop.get_thread_pool_size()

-- Wait (bounded) until no job is left in the pool's hands.
local function settle_jobs()
  for _ = 1, 1000 do
    if stats().jobs == 0 and stats().running == 0 then return end
    aloop.sleep(0.01)
  end
  error("jobs left: " .. stats().jobs)
end

-- H.async, and then: no job left allocated, no descriptor more than before.
local function async(fn, opts)
  local body = H.async(function() fn(); settle_jobs() end, opts)
  return function()
    collectgarbage()
    local before = fds()
    body()
    collectgarbage()
    assert.equal(0, stats().jobs)
    assert.equal(before, fds())
  end
end

describe("aloop.to_thread copies", function()
  it("nil, booleans, integers and floats apart, strings with NULs", async(function()
    local a, b, c, d, e, f, g = aloop.to_thread(function(...)
      local t = table.pack(...)
      return t.n, math.type(t[4]), math.type(t[5]), t[6], #t[6], t[1], t[3]
    end, nil, true, false, 3, 3.0, "a\0b\0")
    assert.same({ 6, "integer", "float", "a\0b\0", 4, nil, false },
      { a, b, c, d, e, f, g })
    local big, neg, pi = aloop.to_thread(function(x, y, z) return x, y, z end,
      math.maxinteger, -0.0, math.pi)
    assert.equal(math.maxinteger, big)
    assert.equal("integer", math.type(big))
    assert.equal("float", math.type(neg))
    assert.equal(math.pi, pi)
  end))

  it("nested tables, keeping shared references and cycles", async(function()
    local shared = { "s" }
    local t = { a = { b = { c = 1 } }, x = shared, y = shared, [1.5] = "f", [true] = "t" }
    t.self = t
    local r = aloop.to_thread(function(v)
      assert(v.self == v, "cycle")
      assert(v.x == v.y, "shared")
      v.x[2] = "added in the thread"
      return v
    end, t)
    assert.is_not.equal(t, r)
    assert.equal(r, r.self)
    assert.equal(r.x, r.y)
    assert.same({ "s", "added in the thread" }, r.x)
    assert.equal(1, r.a.b.c)
    assert.equal("f", r[1.5])
    assert.equal("t", r[true])
    assert.same({ "s" }, shared) -- the caller's table is untouched
  end))

  it("the same table passed twice arrives as one table", async(function()
    local t = {}
    assert.is_true(aloop.to_thread(function(a, b) return a == b end, t, t))
  end))

  it("functions with upvalues, as arguments and results", async(function()
    local n, name = 40, "up"
    local function add(x) return x + n end
    local r, g = aloop.to_thread(function(f, s)
      return f(2) .. s .. name, function(y) return y * n end
    end, add, "-")
    assert.equal("42-up", r)
    assert.equal(80, g(2))
  end))

  it("a recursive local function (an upvalue that is itself)", async(function()
    local function fact(k) return k <= 1 and 1 or k * fact(k - 1) end
    assert.equal(3628800, aloop.to_thread(fact, 10))
  end))

  it("globals are the thread's own (_ENV rebound), with the standard libraries", async(function()
    _G.ALOOP_SPEC_GLOBAL = "main"
    local r1, r2 = aloop.to_thread(function()
      return type(string.format), tostring(ALOOP_SPEC_GLOBAL) -- luacheck: ignore
    end)
    _G.ALOOP_SPEC_GLOBAL = nil
    assert.equal("function", r1)
    assert.equal("nil", r2)
  end))
end)

describe("aloop.to_thread refuses what cannot be copied", function()
  it("names the argument and the field", async(function()
    local err = H.raises(aloop.to_thread, function() end, 1, { conn = io.stdout })
    assert.matches('aloop.to_thread: argument #3: field "conn": userdata cannot be copied to a thread', err, 1, true)
    err = H.raises(aloop.to_thread, function() end, { { {}, coroutine.create(print) } })
    assert.matches("argument #2: index 1: index 2: coroutine cannot be copied to a thread", err, 1, true)
    err = H.raises(aloop.to_thread, function() end, { f = print })
    assert.matches('argument #2: field "f": C function cannot be copied to a thread', err, 1, true)
    err = H.raises(aloop.to_thread, function() end, setmetatable({}, {}))
    assert.matches("argument #2: table with a metatable cannot be copied to a thread", err, 1, true)
  end))

  it("names an upvalue of the function", async(function()
    local f = io.stdout
    local err = H.raises(aloop.to_thread, function() return f end)
    assert.matches('argument #1: upvalue "f": userdata cannot be copied to a thread', err, 1, true)
  end))

  it("refuses a C function, and a non-function, as the function", async(function()
    local err = H.raises(aloop.to_thread, print)
    assert.matches("argument #1: C function cannot be copied to a thread", err, 1, true)
    err = H.raises(aloop.to_thread, 42)
    assert.matches("to_thread' (function expected, got number)", err, 1, true)
  end))

  it("names the result that cannot come back", async(function()
    local err = H.raises(aloop.to_thread, function() return 1, { fh = io.stdout } end)
    assert.matches('aloop.to_thread: result #2: field "fh": userdata cannot be copied back from a thread', err, 1, true)
    err = H.raises(aloop.to_thread, function() return coroutine.create(print) end)
    assert.matches("result #1: coroutine cannot be copied back from a thread", err, 1, true)
  end))

  it("raises outside a task", function()
    local err = H.raises(aloop.to_thread, function() end)
    assert.matches("aloop.to_thread called outside a task", err, 1, true)
  end)
end)

describe("an error in the thread", function()
  it("comes back raised with the thread's traceback", async(function()
    local err = H.raises(aloop.to_thread, function()
      local function inner() error("boom in the thread") end
      inner()
    end)
    assert.is_string(err)
    assert.matches("27%-thread_spec%.lua:%d+: boom in the thread\nstack traceback:\n", err)
    assert.matches("'inner'", err)
  end))

  it("a table error value comes back as a copy", async(function()
    local err = H.raises(aloop.to_thread, function() error({ code = 7, why = "no" }) end)
    assert.same({ code = 7, why = "no" }, err)
  end))

  it("an error value that cannot come back is described, with the traceback", async(function()
    local err = H.raises(aloop.to_thread, function() error(io.stdout) end)
    assert.matches("^%(error object is a userdata value%)\nstack traceback:", err)
  end))
end)

describe("require inside a job", function()
  it("finds modules on the caller's package.path", async(function()
    -- no folder made (make tsan's busted cannot start mkdir): a path
    -- template of its own, /tmp/lua_XXXXXX_?.lua
    local base = os.tmpname()
    local file = base .. "_aloop_spec_tmod.lua"
    local f = assert(io.open(file, "w"))
    f:write("return { answer = function() return 42 end }\n")
    f:close()
    local saved = package.path
    package.path = base .. "_?.lua;" .. saved
    local ok, r = pcall(aloop.to_thread, function()
      return require("aloop_spec_tmod").answer()
    end)
    package.path = saved
    os.remove(file)
    os.remove(base)
    assert.is_true(ok, r)
    assert.equal(42, r)
  end))
end)

-- A job that spins for `secs` of its own CPU time, then writes `path`.
local function spin_then_write(secs, path)
  return function()
    local t0 = os.clock()
    while os.clock() - t0 < secs do end
    if path then
      local f = io.open(path, "w")
      f:write("done")
      f:close()
    end
    return "finished"
  end
end

describe("cancelling a task that awaits a job", function()
  it("returns at once; the job runs on and its result is discarded #slow", async(function()
    local mark = os.tmpname()
    os.remove(mark)
    local t = aloop.create_task(aloop.to_thread, spin_then_write(0.6, mark))
    repeat aloop.sleep(0.005) until stats().running == 1
    t:cancel()
    assert.is_true(H.ended_cancelled(t))
    -- cancelled while the job still ran: the mark is written at its end
    assert.is_nil(io.open(mark))
    assert.equal(1, stats().jobs)
    settle_jobs()
    local f = assert(io.open(mark))
    f:close()
    os.remove(mark)
  end))

  it("a discarded running job does not keep aloop.run from returning #slow", function()
    local mark = os.tmpname()
    os.remove(mark)
    aloop.run(function()
      aloop.create_task(aloop.to_thread, spin_then_write(0.6, mark))
      aloop.sleep(0.05)
    end) -- the leftover task is cancelled; the job is still running
    assert.is_nil(io.open(mark))
    aloop.run(settle_jobs)
    os.remove(mark)
  end)

  it("while the job is still queued: it never runs #slow", async(function()
    aloop.set_thread_pool_size(1)
    local mark = os.tmpname()
    os.remove(mark)
    local busy = aloop.create_task(aloop.to_thread, spin_then_write(0.2))
    local queued = aloop.create_task(aloop.to_thread, spin_then_write(0, mark))
    aloop.sleep(0.02)
    queued:cancel()
    assert.is_true(H.ended_cancelled(queued))
    assert.equal("finished", busy:await())
    settle_jobs()
    assert.is_nil(io.open(mark), "the cancelled queued job ran")
    aloop.set_thread_pool_size(default_size)
  end))
end)

describe("the pool", function()
  it("runs 1 000 jobs through a pool of 2", async(function()
    aloop.set_thread_pool_size(2)
    assert.equal(2, aloop.get_thread_pool_size())
    local tasks = {}
    for i = 1, 1000 do
      tasks[i] = aloop.create_task(aloop.to_thread, function(k) return k * k end, i)
    end
    local r = aloop.gather(tasks)
    for i = 1, 1000 do assert.equal(i * i, r[i]) end
    assert.is_true(stats().threads <= 2)
    aloop.set_thread_pool_size(default_size)
  end, 60))

  it("keeps the loop running while a CPU-heavy job runs #slow", async(function()
    local ticks, stop = 0, false
    local ticker = aloop.create_task(function()
      while not stop do
        aloop.sleep(0.01)
        ticks = ticks + 1
      end
    end)
    assert.equal("finished", aloop.to_thread(spin_then_write(0.5)))
    stop = true
    ticker:await()
    -- 0.5 s of CPU in the thread: 50 ticks of 10 ms on an idle machine
    assert.is_true(ticks >= 5, "ticks: " .. ticks)
  end, 30))

  it("a main task that only waits for a job is not stuck", function()
    -- nothing but the job is pending: the pool's ev_async, ref'ed while
    -- the job is wanted, keeps the loop waiting for it
    assert.equal("finished", aloop.run(aloop.to_thread, spin_then_write(0.1)))
  end)

  it("checks set_thread_pool_size's argument", function()
    for _, bad in ipairs({ "x", 1.5, {} }) do
      assert.matches("set_thread_pool_size' (integer expected",
        H.raises(aloop.set_thread_pool_size, bad), 1, true)
    end
    assert.matches("set_thread_pool_size' (integer expected, got no value)",
      H.raises(aloop.set_thread_pool_size), 1, true)
    for _, bad in ipairs({ 0, -1, 1025 }) do
      assert.matches("set_thread_pool_size' (from 1 to 1024 expected)",
        H.raises(aloop.set_thread_pool_size, bad), 1, true)
    end
  end)

  it("takes its default size from ALOOP_THREADS #command", function()
    local out, err, code = H.aloop({ "-e", "print(aloop.get_thread_pool_size())" })
    assert.equal(0, code, err)
    assert.is_true(tonumber(out) >= 1)
    out, err, code = H.sh("ALOOP_THREADS=3 " .. H.aloop_command({ "-e", "print(aloop.get_thread_pool_size())" }))
    assert.equal(0, code, err)
    assert.equal("3\n", out)
  end)
end)

describe("loop:run_in_executor", function()
  it("returns a Future with fn's results", async(function()
    local loop = aloop.get_running_loop()
    local f = loop:run_in_executor(nil, function(a, b) return a + b, "two" end, 40, 2)
    assert.equal(getmetatable(aloop.Future()), getmetatable(f))
    local x, y = f:await()
    assert.equal(42, x)
    assert.equal("two", y)
  end))

  it("passes an error on through the Future", async(function()
    local f = aloop.get_running_loop():run_in_executor(nil, function() error("bad", 0) end)
    local err = H.raises(f.await, f)
    assert.matches("^bad\nstack traceback:", err)
    assert.equal(err, f:exception())
  end))

  it("checks its arguments at once", async(function()
    local loop = aloop.get_running_loop()
    assert.matches("bad argument #1 to 'run_in_executor' (nil expected",
      H.raises(loop.run_in_executor, loop, {}, function() end), 1, true)
    assert.matches("bad argument #2 to 'run_in_executor' (function expected, got nil)",
      H.raises(loop.run_in_executor, loop, nil), 1, true)
    assert.matches('aloop.run_in_executor: argument #3: field "u": userdata cannot be copied to a thread',
      H.raises(loop.run_in_executor, loop, nil, function() end, { u = io.stdout }), 1, true)
  end))

  it("a Future cancelled at once lets go of the job", async(function()
    local f = aloop.get_running_loop():run_in_executor(nil, spin_then_write(0.05))
    f:cancel()
    settle_jobs() -- no collection needed for the job to be freed
  end))

  it("a Future whose run ends before the job is cancelled with it", function()
    local f
    aloop.run(function()
      f = aloop.get_running_loop():run_in_executor(nil, spin_then_write(0.05))
    end)
    aloop.run(settle_jobs) -- its waiter never started: nobody holds the job
    assert.is_true(f:cancelled())
  end)

  it("cancelling the Future lets go of the job", async(function()
    local f = aloop.get_running_loop():run_in_executor(nil, spin_then_write(0.3))
    aloop.sleep(0.02)
    assert.is_true(f:cancel())
    assert.is_true(f:cancelled())
    aloop.sleep(0)
  end))
end)

describe("exit with jobs still running", function()
  it("waits for a running job at the end of the command #command", function()
    local mark = os.tmpname()
    os.remove(mark)
    local script = ([[
      aloop.create_task(aloop.to_thread, function(path)
        local t0 = os.clock()
        while os.clock() - t0 < 0.3 do end
        local f = io.open(path, "w"); f:write("x"); f:close()
      end, %q)
      repeat aloop.sleep(0.01) until aloop._threads.stats().running == 1
      print("main done")
    ]]):format(mark)
    local out, err, code = H.aloop({ "-e", script })
    assert.equal(0, code, err)
    assert.equal("main done\n", out)
    local f = io.open(mark)
    assert.is_not_nil(f, "the job did not finish before exit")
    f:close()
    os.remove(mark)
  end)

  it("gives up on a job blocked for good after ALOOP_THREAD_EXIT_TIMEOUT #command", function()
    local script = [[
      aloop.create_task(aloop.to_thread, function() while true do end end)
      repeat aloop.sleep(0.01) until aloop._threads.stats().running == 1
      print("main done")
    ]]
    local out, err, code = H.sh("ALOOP_THREAD_EXIT_TIMEOUT=0.3 " ..
      H.aloop_command({ "-e", script }), nil, 30)
    assert.equal(0, code, err)
    assert.equal("main done\n", out)
    assert.matches("aloop: 1 worker thread still running a job after 0.3 s as the loop closes; " ..
      "not waiting for it", err, 1, true)
  end)
end)

describe("scripts/to_thread_primes.lua", function()
  for _, mode in ipairs(H.script_modes) do
    it("counts primes on threads while the progress task prints, under " .. mode.name .. " #command", function()
      local out, err, code = H.sh(mode.command({ "scripts/to_thread_primes.lua", "300000", "4" }))
      assert.equal(0, code, err)
      assert.equal("", err)
      local lines = H.split_lines(out)
      assert.equal("progress: 0 of 4 ranges counted", lines[1])
      assert.equal("primes up to 300000: 25997", lines[#lines])
      local ranges, progress = {}, 0
      for _, line in ipairs(lines) do
        if line:match("^primes in ") then
          ranges[#ranges + 1] = line
        elseif line:match("^progress: %d of 4 ranges counted$") then
          progress = progress + 1
        end
      end
      table.sort(ranges)
      assert.same({
        "primes in [1, 75000]: 7393",
        "primes in [150001, 225000]: 6172",
        "primes in [225001, 300000]: 5977",
        "primes in [75001, 150000]: 6455",
      }, ranges)
      -- the first line is printed before any job; a second one only while
      -- the jobs run, which a loop blocked by the counting could not do
      assert.is_true(progress >= 2, "progress lines: " .. progress)
      assert.equal(#lines, progress + 5)
    end)
  end
end)
