-- spec/01-task_spec.lua: tasks, futures, the ready queue, the loop's
-- callbacks and aloop.run, as asyncio (CPython 3.11/3.12) behaves.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/01-task_spec.lua
local aloop = require "aloop"

local function busy(seconds)
  local t = aloop.time()
  while aloop.time() - t < seconds do end
end

describe("create_task", function()
  it("does not run the task at once", H.async(function()
    local ran = false
    local t = aloop.create_task(function() ran = true end)
    assert.is_false(ran)
    assert.is_false(t:done())
    t:await()
    assert.is_true(ran)
  end))

  it("runs first steps in creation order", H.async(function()
    local order = {}
    local ts = {}
    for i = 1, 5 do
      ts[i] = aloop.create_task(function() order[#order + 1] = i end)
    end
    aloop.gather(ts)
    assert.same({ 1, 2, 3, 4, 5 }, order)
  end))

  it("passes its extra arguments to the function", H.async(function()
    local t = aloop.create_task(function(a, b, c) return a + b, c end, 1, 2, "x")
    local s, c = t:await()
    assert.equal(3, s)
    assert.equal("x", c)
  end))

  it("spawn is an alias of create_task", H.async(function()
    local ran = false
    local t = aloop.spawn(function(x) ran = true; return x end, 9)
    assert.is_false(ran)
    assert.equal(9, t:await())
    assert.is_true(ran)
  end))

  it("sleep(0) puts the task at the back of the ready queue", H.async(function()
    local order = {}
    local a = aloop.create_task(function()
      order[#order + 1] = "a1"
      aloop.sleep(0)
      order[#order + 1] = "a2"
    end)
    local b = aloop.create_task(function()
      order[#order + 1] = "b1"
      aloop.sleep(0)
      order[#order + 1] = "b2"
    end)
    local c = aloop.create_task(function() order[#order + 1] = "c1" end)
    aloop.gather(a, b, c)
    assert.same({ "a1", "b1", "c1", "a2", "b2" }, order)
  end))

  it("first steps and call_soon callbacks share one FIFO queue", H.async(function()
    local loop = aloop.get_running_loop()
    local order = {}
    loop:call_soon(function(x) order[#order + 1] = x end, "soon1")
    local t1 = aloop.create_task(function() order[#order + 1] = "task1" end)
    loop:call_soon(function(x) order[#order + 1] = x end, "soon2")
    local t2 = aloop.create_task(function() order[#order + 1] = "task2" end)
    loop:call_soon(function(x) order[#order + 1] = x end, "soon3")
    aloop.sleep(0)
    -- everything queued before our sleep(0) ran, in the order it was queued
    assert.same({ "soon1", "task1", "soon2", "task2", "soon3" }, order)
    t1:await(); t2:await()
  end))

  it("a task created by a running task is queued behind what is ready", H.async(function()
    local order = {}
    local loop = aloop.get_running_loop()
    local a = aloop.create_task(function()
      order[#order + 1] = "a"
      loop:call_soon(function() order[#order + 1] = "soon-from-a" end)
      aloop.create_task(function() order[#order + 1] = "child-of-a" end)
    end)
    local b = aloop.create_task(function() order[#order + 1] = "b" end)
    aloop.gather(a, b)
    aloop.sleep(0)
    assert.same({ "a", "b", "soon-from-a", "child-of-a" }, order)
  end))

  it("rejects what is not callable", H.async(function()
    assert.has_error(function() aloop.create_task(5) end)
    assert.has_error(function() aloop.create_task() end)
  end))

  it("accepts a callable table", H.async(function()
    local obj = setmetatable({}, { __call = function(_, x) return x * 2 end })
    assert.equal(42, aloop.create_task(obj, 21):await())
  end))
end)

describe("the ready queue", function()
  it("tasks that sleep(0) in turn alternate strictly", H.async(function()
    local order = {}
    local function worker(name)
      return function()
        for i = 1, 3 do order[#order + 1] = name .. i; aloop.sleep(0) end
      end
    end
    aloop.gather(worker("a"), worker("b"))
    assert.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, order)
  end))

  it("a task awaiting a future wakes before a done callback added later", H.async(function()
    local order = {}
    local fut = aloop.Future()
    local t = aloop.create_task(function() fut:await(); order[#order + 1] = "task woke" end)
    aloop.sleep(0)
    fut:add_done_callback(function() order[#order + 1] = "cb" end)
    fut:set_result(1)
    t:await()
    aloop.sleep(0)
    assert.same({ "task woke", "cb" }, order)
  end))

  it("a task nobody references still runs to completion", H.async(function()
    local done = false
    aloop.create_task(function() aloop.sleep(0.01); done = true end)
    collectgarbage(); collectgarbage()
    aloop.sleep(0.02)
    collectgarbage()
    assert.is_true(done)
  end))

  it("a task awaiting a future nobody else references still wakes", H.async(function()
    local setter
    local t = aloop.create_task(function()
      local fut = aloop.Future()
      setter = function() fut:set_result("woke") end
      return fut:await()
    end)
    aloop.sleep(0)
    collectgarbage(); collectgarbage()
    setter()
    assert.equal("woke", t:await())
  end))

  it("a chain of 1000 tasks awaiting each other", H.async(function()
    local prev = aloop.create_task(function() aloop.sleep(0); return 0 end)
    for _ = 1, 1000 do
      local p = prev
      prev = aloop.create_task(function() return p:await() + 1 end)
    end
    assert.equal(1000, prev:await())
  end))
end)

describe("task results", function()
  it("await returns every result of the function", H.async(function()
    local t = aloop.create_task(function() return 1, nil, "three" end)
    local a, b, c = t:await()
    assert.equal(1, a)
    assert.is_nil(b)
    assert.equal("three", c)
    assert.equal(3, select("#", t:await()))
  end))

  it("result() returns every result once done", H.async(function()
    local t = aloop.create_task(function() aloop.sleep(0); return "x", "y" end)
    t:await()
    local a, b = t:result()
    assert.equal("x", a)
    assert.equal("y", b)
  end))

  it("many results pass through await", H.async(function()
    local vals = {}
    for i = 1, 250 do vals[i] = i end
    local t = aloop.create_task(function() return table.unpack(vals) end)
    local r = table.pack(t:await())
    assert.equal(250, r.n)
    assert.equal(250, r[250])
    r = table.pack(t:result())
    assert.equal(250, r.n)
  end))

  it("a function returning nothing gives no values", H.async(function()
    local t = aloop.create_task(function() end)
    assert.equal(0, select("#", t:await()))
  end))

  it("awaiting a task twice gives the same results", H.async(function()
    local tbl = {}
    local t = aloop.create_task(function() return tbl end)
    assert.equal(tbl, t:await())
    assert.equal(tbl, t:await())
  end))

  it("many tasks can await the same task", H.async(function()
    local f = aloop.create_task(function() aloop.sleep(0.01); return 7 end)
    local ws = {}
    for i = 1, 5 do ws[i] = aloop.create_task(function() return f:await() + i end) end
    local r = aloop.gather(ws)
    assert.same({ 8, 9, 10, 11, 12, n = 5 }, r)
  end))
end)

describe("task queries", function()
  it("done/cancelled/result/exception on a pending task", H.async(function()
    local t = aloop.create_task(function() aloop.sleep(0.01) end)
    assert.is_false(t:done())
    assert.is_false(t:cancelled())
    local ok, err = pcall(t.result, t)
    assert.is_false(ok)
    assert.is_true(aloop.is_invalid_state(err))
    ok, err = pcall(t.exception, t)
    assert.is_false(ok)
    assert.is_true(aloop.is_invalid_state(err))
    t:await()
  end))

  it("on a finished task", H.async(function()
    local t = aloop.create_task(function() return 5 end)
    t:await()
    assert.is_true(t:done())
    assert.is_false(t:cancelled())
    assert.equal(5, t:result())
    assert.is_nil(t:exception())
  end))

  it("on a failed task", H.async(function()
    local e = { "my error" }
    local t = aloop.create_task(function() error(e) end)
    assert.is_false(pcall(t.await, t))
    assert.is_true(t:done())
    assert.is_false(t:cancelled())
    assert.equal(e, t:exception())
    local ok, err = pcall(t.result, t)
    assert.is_false(ok)
    assert.equal(e, err)
  end))

  it("on a cancelled task", H.async(function()
    local t = aloop.create_task(function() aloop.sleep(1) end)
    aloop.sleep(0)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    assert.is_true(t:done())
    assert.is_true(t:cancelled())
    local ok, err = pcall(t.result, t)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    -- asyncio: exception() of a cancelled future raises CancelledError
    ok, err = pcall(t.exception, t)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
  end))
end)

describe("task names", function()
  it("are Task-N, numbered in creation order", H.async(function()
    local a = aloop.create_task(function() end)
    local b = aloop.create_task(function() end)
    local na, nb = a:name(), b:name()
    assert.matches("^Task%-%d+$", na)
    assert.equal(tonumber(na:match("%d+")) + 1, tonumber(nb:match("%d+")))
    aloop.gather(a, b)
  end))

  it("set_name changes the name; get_name is an alias", H.async(function()
    local t = aloop.create_task(function() end)
    t:set_name("worker")
    assert.equal("worker", t:name())
    assert.equal("worker", t:get_name())
    t:set_name(12)
    assert.equal("12", t:name())
    t:await()
  end))

  it("tostring shows the state and the name", H.async(function()
    local t = aloop.create_task(function() aloop.sleep(0) end)
    local n = t:name()
    assert.equal("<Task pending name='" .. n .. "'>", tostring(t))
    t:set_name("w")
    assert.equal("<Task pending name='w'>", tostring(t))
    t:await()
    assert.matches("^<Task finished name='w'", tostring(t))
  end))

  it("tostring of a cancelled task", H.async(function()
    local t = aloop.create_task(aloop.sleep, 1)
    t:set_name("c")
    aloop.sleep(0)
    t:cancel()
    pcall(t.await, t)
    assert.matches("^<Task cancelled name='c'", tostring(t))
  end))

  it("current_task is the running task, nil outside", H.async(function()
    local inner
    local t = aloop.create_task(function() inner = aloop.current_task() end)
    t:await()
    assert.equal(t, inner)
    assert.is_not_nil(aloop.current_task())
  end))
end)

describe("done callbacks", function()
  it("are called through the loop with the task as argument", H.async(function()
    local calls = {}
    local t = aloop.create_task(function() return 1 end)
    t:add_done_callback(function(f) calls[#calls + 1] = { "a", f } end)
    t:add_done_callback(function(f) calls[#calls + 1] = { "b", f } end)
    t:await()
    -- the callbacks were scheduled when t finished, and run in order
    aloop.sleep(0)
    assert.equal(2, #calls)
    assert.equal("a", calls[1][1])
    assert.equal(t, calls[1][2])
    assert.equal("b", calls[2][1])
    assert.equal(t, calls[2][2])
  end))

  it("are not called synchronously on completion", H.async(function()
    local fut = aloop.Future()
    local called = false
    fut:add_done_callback(function() called = true end)
    fut:set_result(1)
    assert.is_false(called)
    aloop.sleep(0)
    assert.is_true(called)
  end))

  it("added to a done task are scheduled soon, not called at once", H.async(function()
    local t = aloop.create_task(function() return 1 end)
    t:await()
    local got
    t:add_done_callback(function(f) got = f end)
    assert.is_nil(got)
    aloop.sleep(0)
    assert.equal(t, got)
  end))

  it("run in FIFO order with call_soon callbacks", H.async(function()
    local loop = aloop.get_running_loop()
    local order = {}
    local fut = aloop.Future()
    fut:add_done_callback(function() order[#order + 1] = "done-cb" end)
    loop:call_soon(function() order[#order + 1] = "soon1" end)
    fut:set_result(true)
    loop:call_soon(function() order[#order + 1] = "soon2" end)
    aloop.sleep(0)
    assert.same({ "soon1", "done-cb", "soon2" }, order)
  end))

  it("remove_done_callback removes every registration of fn", H.async(function()
    local n = 0
    local function cb() n = n + 1 end
    local function other() n = n + 100 end
    local t = aloop.create_task(function() aloop.sleep(0) end)
    t:add_done_callback(cb)
    t:add_done_callback(other)
    t:add_done_callback(cb)
    assert.equal(2, t:remove_done_callback(cb))
    assert.equal(0, t:remove_done_callback(cb))
    t:await()
    aloop.sleep(0)
    assert.equal(100, n)
  end))

  it("an error in a callback is reported and does not stop the loop", H.async(function()
    local fut = aloop.Future()
    local after = false
    local reports = H.reports_of(function()
      fut:add_done_callback(function() error("cb failed", 0) end)
      fut:add_done_callback(function() after = true end)
      fut:set_result(1)
      aloop.sleep(0)
    end)
    assert.is_true(after)
    assert.equal(1, #reports)
    assert.equal("cb failed", reports[1].exception)
  end))
end)

describe("Future", function()
  it("set_result wakes the awaiting task with the values", H.async(function()
    local fut = aloop.Future()
    local t = aloop.create_task(function() return fut:await() end)
    aloop.sleep(0)
    assert.is_false(t:done())
    fut:set_result("a", "b")
    local x, y = t:await()
    assert.equal("a", x)
    assert.equal("b", y)
    assert.equal("a", (fut:result()))
  end))

  it("set_result with one value and with none", H.async(function()
    local f1, f0 = aloop.Future(), aloop.Future()
    f1:set_result(false)
    f0:set_result()
    assert.equal(false, f1:await())
    assert.equal(0, select("#", f0:await()))
  end))

  it("set_exception makes await raise that value", H.async(function()
    local fut = aloop.Future()
    local e = setmetatable({}, { __tostring = function() return "E" end })
    aloop.get_running_loop():call_soon(function() fut:set_exception(e) end)
    local ok, err = pcall(fut.await, fut)
    assert.is_false(ok)
    assert.is_true(rawequal(e, err))
    assert.is_true(rawequal(e, fut:exception()))
  end))

  it("cancel makes await raise a cancellation", H.async(function()
    local fut = aloop.Future()
    aloop.get_running_loop():call_soon(function() fut:cancel("stop") end)
    local ok, err = pcall(fut.await, fut)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.equal("stop", err.message)
    assert.is_true(fut:cancelled())
    assert.is_true(fut:done())
    assert.is_false(fut:cancel())
  end))

  it("set_result twice raises InvalidStateError", H.async(function()
    local fut = aloop.Future()
    fut:set_result(1)
    local ok, err = pcall(fut.set_result, fut, 2)
    assert.is_false(ok)
    assert.is_true(aloop.is_invalid_state(err))
    ok, err = pcall(fut.set_exception, fut, "x")
    assert.is_false(ok)
    assert.is_true(aloop.is_invalid_state(err))
    assert.equal(1, fut:result())
  end))

  it("set_result on a cancelled future raises InvalidStateError", H.async(function()
    local fut = aloop.Future()
    assert.is_true(fut:cancel())
    local ok, err = pcall(fut.set_result, fut, 1)
    assert.is_false(ok)
    assert.is_true(aloop.is_invalid_state(err))
  end))

  it("queries on a pending future", H.async(function()
    local fut = aloop.Future()
    assert.is_false(fut:done())
    assert.is_false(fut:cancelled())
    local ok, err = pcall(fut.result, fut)
    assert.is_false(ok)
    assert.is_true(aloop.is_invalid_state(err))
    ok, err = pcall(fut.exception, fut)
    assert.is_false(ok)
    assert.is_true(aloop.is_invalid_state(err))
    assert.equal("<Future pending>", tostring(fut))
    fut:cancel()
  end))

  it("is recognised by is_future, as a task is", H.async(function()
    local t = aloop.create_task(function() end)
    assert.is_true(aloop.is_future(aloop.Future()))
    assert.is_true(aloop.is_future(t))
    assert.is_falsy(aloop.is_future({}))
    assert.is_falsy(aloop.is_future(function() end))
    t:await()
  end))
end)

describe("await", function()
  it("awaiting a done task returns without yielding", H.async(function()
    local t = aloop.create_task(function() return 3 end)
    t:await()
    local other_ran = false
    aloop.get_running_loop():call_soon(function() other_ran = true end)
    assert.equal(3, t:await())
    assert.equal(3, t:await())
    assert.is_false(other_ran)
    local fut = aloop.Future()
    fut:set_result(4)
    assert.equal(4, fut:await())
    assert.is_false(other_ran)
    aloop.sleep(0)
    assert.is_true(other_ran)
  end))

  it("a task cannot await itself", H.async(function()
    local t
    t = aloop.create_task(function()
      local ok, err = pcall(t.await, t)
      return ok, err
    end)
    local ok, err = t:await()
    assert.is_false(ok)
    assert.matches("cannot await itself", tostring(err))
  end))

  it("awaiting outside a task raises", function()
    local fut
    aloop.run(function() fut = aloop.Future() end)
    local ok, err = pcall(fut.await, fut)
    assert.is_false(ok)
    assert.matches("outside a task", tostring(err))
  end)
end)

describe("sleep", function()
  it("returns after at least d seconds even when called late in a busy step", H.async(function()
    local ts = {}
    for i = 1, 4 do
      ts[i] = aloop.create_task(function()
        busy(0.02) -- the loop's cached clock falls behind
        local t0 = aloop.time()
        aloop.sleep(0.01)
        return aloop.time() - t0
      end)
    end
    local r = aloop.gather(ts)
    for i = 1, 4 do
      assert.is_true(r[i] >= 0.01, "task " .. i .. " slept only " .. r[i])
    end
  end))

  it("is never early across many short sleeps", H.async(function()
    for _, d in ipairs({ 0.001, 0.002, 0.005, 0.003, 0.0001 }) do
      busy(0.005)
      local t0 = aloop.time()
      aloop.sleep(d)
      local dt = aloop.time() - t0
      assert.is_true(dt >= d, ("slept %.6f < %.6f"):format(dt, d))
    end
  end))

  it("sleeps concurrently", H.async(function()
    local asleep, most = 0, 0
    local function nap()
      asleep = asleep + 1
      most = math.max(most, asleep)
      aloop.sleep(0.05)
      asleep = asleep - 1
    end
    local t0 = aloop.time()
    local ts = {}
    for i = 1, 10 do ts[i] = aloop.create_task(nap) end
    aloop.gather(ts)
    local dt = aloop.time() - t0
    assert.equal(10, most) -- all ten asleep at once
    assert.is_true(dt >= 0.05 and dt < 1, "took " .. dt)
  end))

  it("wakes tasks in order of their deadlines", H.async(function()
    local order = {}
    local ts = {}
    for _, d in ipairs({ 0.03, 0.01, 0.02 }) do
      ts[#ts + 1] = aloop.create_task(function()
        aloop.sleep(d); order[#order + 1] = d
      end)
    end
    aloop.gather(ts)
    assert.same({ 0.01, 0.02, 0.03 }, order)
  end))

  it("sleep(s, value) returns value", H.async(function()
    local tbl = {}
    assert.equal("v", aloop.sleep(0, "v"))
    assert.equal(tbl, aloop.sleep(0.001, tbl))
    assert.equal(0, select("#", aloop.sleep(0)))
  end))

  it("a negative delay is like sleep(0)", H.async(function()
    local order = {}
    local t = aloop.create_task(function() order[#order + 1] = "t" end)
    aloop.sleep(-1)
    order[#order + 1] = "main"
    assert.same({ "t", "main" }, order)
    t:await()
  end))
end)

describe("aloop.run", function()
  it("returns the main function's results", function()
    local a, b, c = aloop.run(function(x, y)
      aloop.sleep(0)
      return x + y, nil, "z"
    end, 1, 2)
    assert.equal(3, a)
    assert.is_nil(b)
    assert.equal("z", c)
  end)

  it("raises the main function's error unchanged", function()
    local e = {}
    local ok, err = pcall(aloop.run, function() aloop.sleep(0); error(e) end)
    assert.is_false(ok)
    assert.is_true(rawequal(e, err))
    ok, err = pcall(aloop.run, function() error("Oops!", 0) end)
    assert.is_false(ok)
    assert.equal("Oops!", err)
  end)

  it("at top level cancels and awaits leftover tasks before returning", function()
    local log = {}
    local t0 = aloop.time()
    local r = aloop.run(function()
      aloop.create_task(function()
        local _, err = pcall(aloop.sleep, 0.5)
        log[#log + 1] = aloop.is_cancelled(err) and "cancelled" or "not cancelled"
        aloop.sleep(0.01) -- its cleanup may await
        log[#log + 1] = "cleaned"
      end)
      aloop.sleep(0) -- let it start
      aloop.create_task(function() log[#log + 1] = "never-started" end)
      return "main done"
    end)
    local dt = aloop.time() - t0
    assert.equal("main done", r)
    -- a task cancelled before its first step never runs its body
    assert.same({ "cancelled", "cleaned" }, log)
    assert.equal(0, aloop._stats().tasks)
    -- it was cancelled when main returned, not left to finish its sleep
    assert.is_true(dt < 0.3, "aloop.run took " .. dt .. " s")
  end)

  it("at top level returns as soon as main is done, not at the next timer", function()
    local t0 = aloop.time()
    local ok = pcall(aloop.run, function()
      aloop.create_task(aloop.sleep, 0.5)
      aloop.sleep(0)
    end)
    local dt = aloop.time() - t0
    assert.is_true(ok)
    assert.is_true(dt < 0.3, "aloop.run took " .. dt .. " s")
  end)

  it("cancels leftovers also when main raises", function()
    local cleaned = false
    local t0 = aloop.time()
    local ok, err = pcall(aloop.run, function()
      aloop.create_task(function()
        local _ <close> = setmetatable({}, { __close = function() cleaned = true end })
        aloop.sleep(0.5)
      end)
      aloop.sleep(0)
      error("boom", 0)
    end)
    local dt = aloop.time() - t0
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.is_true(cleaned)
    assert.is_true(dt < 0.3, "aloop.run took " .. dt .. " s")
  end)

  it("inside a task works like outside", H.async(function()
    local a, b = aloop.run(function(x) aloop.sleep(0.001); return x, "second" end, "first")
    assert.equal("first", a)
    assert.equal("second", b)
    local ok, err = pcall(aloop.run, function() error("inner", 0) end)
    assert.is_false(ok)
    assert.equal("inner", err)
  end))

  it("inside a task cancels and awaits the leftovers it created", H.async(function()
    local log = {}
    local outside = aloop.create_task(function()
      aloop.sleep(0.03)
      log[#log + 1] = "outside survived"
    end)
    local r = aloop.run(function()
      aloop.create_task(function()
        local _, err = pcall(aloop.sleep, 10)
        log[#log + 1] = aloop.is_cancelled(err) and "inner cancelled" or "?"
        aloop.sleep(0.01)
        log[#log + 1] = "inner cleaned"
      end)
      aloop.sleep(0)
      return 42
    end)
    assert.equal(42, r)
    assert.same({ "inner cancelled", "inner cleaned" }, log)
    -- tasks created outside the nested run are not its business
    assert.is_false(outside:done())
    outside:await()
    assert.same({ "inner cancelled", "inner cleaned", "outside survived" }, log)
  end))

  it("rejects a non-function", function()
    assert.has_error(function() aloop.run(5) end)
    assert.has_error(function() aloop.run() end)
  end)
end)

describe("the loop", function()
  it("get_running_loop outside run raises", function()
    local ok, err = pcall(aloop.get_running_loop)
    assert.is_false(ok)
    assert.matches("no running event loop", tostring(err))
  end)

  it("get_running_loop inside a task is the event loop", H.async(function()
    assert.equal(aloop.get_event_loop(), aloop.get_running_loop())
    assert.is_true(aloop.get_running_loop():is_running())
  end))

  it("aloop.time is monotonic and agrees with loop:time()", H.async(function()
    local prev = aloop.time()
    for _ = 1, 1000 do
      local now = aloop.time()
      assert.is_true(now >= prev)
      prev = now
    end
    local loop = aloop.get_running_loop()
    local a, b, c = aloop.time(), loop:time(), aloop.time()
    assert.is_true(a <= b and b <= c)
    local t0 = aloop.time()
    aloop.sleep(0.02)
    assert.is_true(aloop.time() - t0 >= 0.02)
  end))

  it("call_soon passes the arguments", H.async(function()
    local got
    aloop.get_running_loop():call_soon(function(...) got = table.pack(...) end, 1, nil, 3)
    aloop.sleep(0)
    assert.same({ 1, nil, 3, n = 3 }, got)
  end))

  it("call_later callbacks run in order of their deadlines", H.async(function()
    local loop = aloop.get_running_loop()
    local order = {}
    local t0 = aloop.time()
    loop:call_later(0.03, function() order[#order + 1] = { "c", aloop.time() - t0 } end)
    loop:call_later(0.01, function() order[#order + 1] = { "a", aloop.time() - t0 } end)
    loop:call_later(0.02, function() order[#order + 1] = { "b", aloop.time() - t0 } end)
    aloop.sleep(0.05)
    assert.equal(3, #order)
    assert.equal("a", order[1][1]); assert.is_true(order[1][2] >= 0.01)
    assert.equal("b", order[2][1]); assert.is_true(order[2][2] >= 0.02)
    assert.equal("c", order[3][1]); assert.is_true(order[3][2] >= 0.03)
  end))

  it("call_later callbacks with equal delays run in the order they were scheduled", H.async(function()
    local loop = aloop.get_running_loop()
    local order = {}
    for i = 1, 5 do loop:call_later(0.01, function() order[#order + 1] = i end) end
    aloop.sleep(0.03)
    assert.same({ 1, 2, 3, 4, 5 }, order)
  end))

  it("tasks sleeping equal delays wake in the order they slept", H.async(function()
    local order = {}
    local ts = {}
    for i = 1, 5 do
      ts[i] = aloop.create_task(function() aloop.sleep(0.01); order[#order + 1] = i end)
    end
    aloop.gather(ts)
    assert.same({ 1, 2, 3, 4, 5 }, order)
  end))

  it("in a callback: the loop is running, there is no current task, run raises", H.async(function()
    local loop = aloop.get_running_loop()
    local got = {}
    loop:call_soon(function()
      got.loop = aloop.get_running_loop()
      got.task = aloop.current_task()
      got.run_ok, got.run_err = pcall(aloop.run, function() end)
    end)
    aloop.sleep(0)
    assert.equal(loop, got.loop)
    assert.is_nil(got.task)
    assert.is_false(got.run_ok)
    assert.matches("cannot be called while the loop is running", tostring(got.run_err))
  end))

  it("a task created in a callback runs", H.async(function()
    local t
    aloop.get_running_loop():call_soon(function()
      t = aloop.create_task(function() return "from callback" end)
    end)
    aloop.sleep(0)
    assert.equal("from callback", t:await())
  end))

  it("call_at runs at an absolute time of loop:time()", H.async(function()
    local loop = aloop.get_running_loop()
    local order = {}
    local now = loop:time()
    local h = loop:call_at(now + 0.02, function(x) order[#order + 1] = { x, loop:time() } end, "late")
    loop:call_at(now + 0.01, function(x) order[#order + 1] = { x, loop:time() } end, "early")
    -- when() is the time given, give or take the time between two reads of
    -- the clock (lloop.c computes it as a delay from now, then adds now)
    assert.is_true(h:when() >= now + 0.02 and h:when() < now + 0.021, "when() " .. h:when() - now)
    aloop.sleep(0.04)
    assert.equal("early", order[1][1])
    assert.equal("late", order[2][1])
    assert.is_true(order[1][2] >= now + 0.01)
    assert.is_true(order[2][2] >= now + 0.02)
  end))

  it("call_at in the past runs soon", H.async(function()
    local ran = false
    local loop = aloop.get_running_loop()
    loop:call_at(loop:time() - 1, function() ran = true end)
    aloop.sleep(0.001)
    assert.is_true(ran)
  end))

  it("Handle:cancel() prevents the callback", H.async(function()
    local loop = aloop.get_running_loop()
    local ran = {}
    local h1 = loop:call_soon(function() ran[#ran + 1] = "soon" end)
    local h2 = loop:call_later(0.01, function() ran[#ran + 1] = "later" end)
    local h3 = loop:call_at(loop:time() + 0.01, function() ran[#ran + 1] = "at" end)
    loop:call_later(0.01, function() ran[#ran + 1] = "kept" end)
    assert.is_false(h1:cancelled())
    h1:cancel(); h2:cancel(); h3:cancel()
    h1:cancel() -- twice is harmless
    assert.is_true(h1:cancelled())
    assert.is_true(h2:cancelled())
    aloop.sleep(0.03)
    assert.same({ "kept" }, ran)
  end))

  it("a callback can schedule more callbacks; they run on a later turn", H.async(function()
    local loop = aloop.get_running_loop()
    local order = {}
    loop:call_soon(function()
      order[#order + 1] = 1
      loop:call_soon(function() order[#order + 1] = 3 end)
    end)
    loop:call_soon(function() order[#order + 1] = 2 end)
    aloop.sleep(0)
    aloop.sleep(0)
    assert.same({ 1, 2, 3 }, order)
  end))

  it("an error in a callback is reported through the exception handler", H.async(function()
    local loop = aloop.get_running_loop()
    local got = H.reports_of(function()
      loop:call_soon(function() error("cb boom", 0) end)
      aloop.sleep(0)
    end)[1]
    assert.is_table(got)
    assert.equal("cb boom", got.exception)
    assert.matches("Exception in callback", got.message)
  end))
end)

describe("aloop.run when nothing can ever wake the main task", function()
  it("raises a clear error instead of hanging, after cancelling main (its cleanup runs)", function()
    local cleaned = false
    local ok, err = pcall(aloop.run, function()
      local _, e = pcall(function() aloop.Future():await() end)
      cleaned = aloop.is_cancelled(e)
      error(e, 0)
    end)
    assert.is_false(ok)
    assert.matches("the main task waits for something that can never happen", tostring(err))
    assert.is_true(cleaned)
  end)
end)
