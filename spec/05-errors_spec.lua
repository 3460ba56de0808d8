-- spec/05-errors_spec.lua: error values (user errors pass through unchanged,
-- aloop's own errors print well and are recognised), argument checking of
-- every public function, and reports of errors nobody retrieved, as asyncio's
-- "Task exception was never retrieved".
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/05-errors_spec.lua
local aloop = require "aloop"

local THIS = "spec/05%-errors_spec%.lua"

local function line() return debug.getinfo(2, "l").currentline end

-- Collect what the loop reports while fn runs (fn may itself call aloop.run);
-- a full GC runs before the handler is removed.
local collect_reports = H.reports_of

local function messages(reports)
  local out = {}
  for i, r in ipairs(reports) do out[i] = r.message .. ": " .. tostring(r.exception) end
  return out
end

-- The error message of calling fn(...), which must fail.
local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

describe("user errors pass through unchanged", function()
  it("error('Oops!', 0) arrives as exactly 'Oops!'", H.async(function()
    local function oops() aloop.sleep(0); error("Oops!", 0) end
    local t = aloop.create_task(oops)
    local ok, err = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal("Oops!", err)
    assert.equal("Oops!", t:exception())
    assert.equal("Oops!", select(2, pcall(t.result, t)))
    assert.equal("Oops!", select(2, pcall(aloop.gather, oops)))
    assert.equal("Oops!", select(2, pcall(aloop.wait_for, oops, 1)))
    assert.equal("Oops!", select(2, pcall(aloop.run, oops)))
  end))

  it("error with a position keeps just its own position", H.async(function()
    local l
    local t = aloop.create_task(function() l = line() + 1
      error("Oops!")
    end)
    local ok, err = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal("spec/05-errors_spec.lua:" .. l .. ": Oops!", err)
  end))

  it("error tables pass through identical, across levels of awaiting", H.async(function()
    local e = setmetatable({ code = 1 }, { __tostring = function() return "E!" end })
    local c = aloop.create_task(function() aloop.sleep(0); error(e) end)
    local b = aloop.create_task(function() return c:await() end)
    local a = aloop.create_task(function() return b:await() end)
    local ok, err = pcall(a.await, a)
    assert.is_false(ok)
    assert.is_true(rawequal(e, err))
    assert.is_true(rawequal(e, b:exception()))
    assert.is_true(rawequal(e, c:exception()))
  end))

  it("other error values pass through too", H.async(function()
    for _, v in ipairs({ 42, true, 1.5 }) do
      local t = aloop.create_task(function() error(v) end)
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.equal(v, err)
    end
  end))

  it("a task raising nil still fails", H.async(function()
    local t = aloop.create_task(function() error(nil) end)
    local ok = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(t:done())
    assert.is_false(t:cancelled())
  end))

  it("Future:set_exception values are raised identical", H.async(function()
    local e = {}
    local fut = aloop.Future()
    fut:set_exception(e)
    local ok, err = pcall(fut.await, fut)
    assert.is_false(ok)
    assert.is_true(rawequal(e, err))
    fut = aloop.Future()
    fut:set_exception("plain")
    assert.equal("plain", select(2, pcall(fut.await, fut)))
  end))
end)

describe("aloop's error values", function()
  it("print well", H.async(function()
    local t = aloop.create_task(aloop.sleep, 1)
    aloop.sleep(0)
    t:cancel("the reason")
    local _, err = pcall(t.await, t)
    assert.equal("CancelledError: the reason", tostring(err))
    t = aloop.create_task(aloop.sleep, 1)
    aloop.sleep(0)
    t:cancel()
    _, err = pcall(t.await, t)
    assert.equal("CancelledError", tostring(err))
    _, err = pcall(aloop.wait_for, function() aloop.sleep(1) end, 0.001)
    assert.equal("TimeoutError", tostring(err))
    local fut = aloop.Future()
    _, err = pcall(fut.result, fut)
    assert.matches("^InvalidStateError", tostring(err))
    fut:cancel()
  end))

  it("are recognised by their predicates, and only by theirs", H.async(function()
    local t = aloop.create_task(aloop.sleep, 1)
    aloop.sleep(0)
    t:cancel()
    local _, cancelled = pcall(t.await, t)
    local _, timeout = pcall(aloop.wait_for, function() aloop.sleep(1) end, 0.001)
    local fut = aloop.Future()
    local _, invalid = pcall(fut.exception, fut)
    fut:cancel()
    assert.is_true(aloop.is_cancelled(cancelled))
    assert.is_false(aloop.is_timeout(cancelled))
    assert.is_false(aloop.is_invalid_state(cancelled))
    assert.is_true(aloop.is_timeout(timeout))
    assert.is_false(aloop.is_cancelled(timeout))
    assert.is_true(aloop.is_invalid_state(invalid))
    assert.is_false(aloop.is_cancelled(invalid))
    for _, v in ipairs({ "CancelledError", { kind = "CancelledError" }, 1, true, {} }) do
      assert.is_false(aloop.is_cancelled(v))
      assert.is_false(aloop.is_timeout(v))
      assert.is_false(aloop.is_invalid_state(v))
      assert.is_false(aloop.is_queue_empty(v))
      assert.is_false(aloop.is_queue_full(v))
    end
    assert.is_false(aloop.is_cancelled(nil))
    assert.is_false(aloop.is_cancelled())
  end))

  it("aloop.error makes values of aloop's kinds", function()
    local e = aloop.error("TimeoutError")
    assert.is_true(aloop.is_timeout(e))
    assert.equal("TimeoutError", tostring(e))
    e = aloop.error("CancelledError", "m")
    assert.is_true(aloop.is_cancelled(e))
    assert.equal("m", e.message)
    assert.equal("CancelledError: m", tostring(e))
    assert.is_true(aloop.is_queue_empty(aloop.error("QueueEmpty")))
    assert.is_true(aloop.is_queue_full(aloop.error("QueueFull")))
    assert.is_true(aloop.is_invalid_state(aloop.error("InvalidStateError")))
  end)
end)

describe("misuse raises an error naming the function and the argument", function()
  local fn = function() end

  it("sleep", H.async(function()
    assert.matches("bad argument #1 to 'sleep' %(number expected, got string%)",
      err_of(function() aloop.sleep("x") end))
    assert.matches("bad argument #1 to 'sleep' %(number expected, got no value%)",
      err_of(function() aloop.sleep() end))
    assert.matches("bad argument #1 to 'sleep'", err_of(function() aloop.sleep(0 / 0) end))
  end))

  it("create_task and spawn", H.async(function()
    assert.matches("bad argument #1 to 'create_task' %(function expected, got number%)",
      err_of(function() aloop.create_task(5) end))
    assert.matches("bad argument #1 to 'create_task' %(function expected, got no value%)",
      err_of(function() aloop.create_task() end))
    assert.matches("bad argument #1 to 'spawn' %(function expected, got table%)",
      err_of(function() aloop.spawn({}) end))
  end))

  it("gather", H.async(function()
    assert.matches("bad argument #1 to 'gather' %(Task, Future or function expected, got number%)",
      err_of(function() aloop.gather(5) end))
    assert.matches("bad argument #3 to 'gather' %(Task, Future or function expected, got string%)",
      err_of(function() aloop.gather(fn, fn, "x") end))
  end))

  it("wait_for", H.async(function()
    assert.matches("bad argument #1 to 'wait_for' %(Task, Future or function expected, got string%)",
      err_of(function() aloop.wait_for("x", 1) end))
    assert.matches("bad argument #2 to 'wait_for' %(number expected, got string%)",
      err_of(function() aloop.wait_for(fn, "x") end))
  end))

  it("wait, as_completed, shield, timeout", H.async(function()
    assert.matches("bad argument #1 to 'wait'", err_of(function() aloop.wait(5) end))
    assert.matches("bad argument #1 to 'wait'", err_of(function() aloop.wait({ 5 }) end))
    assert.matches("bad argument #2 to 'wait'",
      err_of(function() aloop.wait({ aloop.Future() }, 5) end))
    assert.matches("bad argument #2 to 'wait' %(number expected, got string%)",
      err_of(function() aloop.wait({ aloop.Future() }, { timeout = "x" }) end))
    assert.matches("bad argument #1 to 'as_completed'", err_of(function() aloop.as_completed("x") end))
    assert.matches("bad argument #1 to 'shield' %(Task, Future or function expected, got number%)",
      err_of(function() aloop.shield(5) end))
    assert.matches("bad argument #2 to 'wait'",
      err_of(function() aloop.wait({ aloop.Future() }, { return_when = 5 }) end))
    assert.matches("bad argument #1 to 'timeout'", err_of(function() aloop.timeout(0 / 0) end))
    assert.matches("bad argument #1 to 'timeout' %(number expected, got string%)",
      err_of(function() aloop.timeout("x") end))
  end))

  it("run", function()
    assert.matches("bad argument #1 to 'run' %(function expected, got number%)",
      err_of(function() aloop.run(5) end))
  end)

  it("Future methods", H.async(function()
    local fut = aloop.Future()
    assert.matches("bad argument #1 to 'set_exception'",
      err_of(function() fut:set_exception() end))
    assert.matches("bad argument #1 to 'add_done_callback' %(function expected, got number%)",
      err_of(function() fut:add_done_callback(5) end))
    assert.matches("bad argument #1 to 'cancel' %(string expected, got table%)",
      err_of(function() fut:cancel({}) end))
    assert.is_false(fut:done()) -- none of that touched it
    assert.matches("bad argument #1 to 'done' %(aloop Task or Future expected, got number%)",
      err_of(function() fut.done(5) end))
    assert.matches("bad argument #1 to 'set_result'",
      err_of(function() fut.set_result({}) end))
    assert.matches("calling 'set_result' on bad self",
      err_of(function() local x = { set_result = fut.set_result }; x:set_result(1) end))
    fut:cancel()
  end))

  it("Task methods", H.async(function()
    local t = aloop.create_task(fn)
    assert.matches("bad argument #1 to 'add_done_callback' %(function expected, got string%)",
      err_of(function() t:add_done_callback("x") end))
    assert.matches("bad argument #1 to 'cancel' %(string expected, got table%)",
      err_of(function() t:cancel({}) end))
    assert.matches("bad argument #1 to 'set_name' %(value expected%)",
      err_of(function() t:set_name() end))
    assert.matches("bad argument #1 to 'await' %(aloop Task expected, got aloop.Future%)",
      err_of(function() t.await(aloop.Future()) end))
    t:await()
  end))

  it("loop methods", H.async(function()
    local loop = aloop.get_running_loop()
    assert.matches("bad argument #1 to 'call_later' %(number expected, got string%)",
      err_of(function() loop:call_later("x", fn) end))
    assert.matches("bad argument #2 to 'call_later' %(function expected, got string%)",
      err_of(function() loop:call_later(1, "x") end))
    assert.matches("bad argument #1 to 'call_soon' %(function expected, got number%)",
      err_of(function() loop:call_soon(5) end))
    assert.matches("bad argument #1 to 'call_at' %(number expected, got string%)",
      err_of(function() loop:call_at("x", fn) end))
    assert.matches("bad argument #2 to 'call_at' %(function expected, got nil%)",
      err_of(function() loop:call_at(1, nil) end))
    assert.matches("bad argument #1 to 'call_later'",
      err_of(function() loop:call_later(0 / 0, fn) end))
    assert.matches("bad argument #1 to 'set_exception_handler' %(function expected, got number%)",
      err_of(function() loop:set_exception_handler(5) end))
  end))
end)

describe("awaiting where a task cannot wait", function()
  it("aloop.sleep outside a task raises", function()
    assert.matches("aloop.sleep called outside a task", err_of(aloop.sleep, 0))
    assert.matches("aloop.sleep called outside a task", err_of(function() aloop.sleep(1) end))
  end)

  it("aloop.sleep in a loop callback raises (a callback is not a task)", H.async(function()
    local got
    aloop.get_running_loop():call_soon(function()
      got = select(2, pcall(aloop.sleep, 0))
    end)
    aloop.sleep(0)
    assert.matches("aloop.sleep called outside a task", tostring(got))
  end))

  it("awaiting in a coroutine of one's own inside a task raises", H.async(function()
    local co = coroutine.wrap(function() return pcall(aloop.sleep, 0) end)
    local ok, err = co()
    assert.is_false(ok)
    assert.matches("aloop.sleep called outside a task", tostring(err))
  end))

  it("aloop.sleep where yielding is impossible raises a clear error", H.async(function()
    local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b)
      aloop.sleep(0)
      return a < b
    end)
    assert.is_false(ok)
    assert.matches("aloop.sleep cannot wait here", tostring(err))
  end))

  it("gather, wait_for, wait outside a task raise", function()
    assert.matches("aloop.gather called outside a task", err_of(aloop.gather))
    assert.matches("aloop.wait_for called outside a task",
      err_of(aloop.wait_for, function() end, 1))
  end)

  it("wait_for in a loop callback raises and starts nothing", H.async(function()
    local started, got = false, nil
    aloop.get_running_loop():call_soon(function()
      got = select(2, pcall(aloop.wait_for, function() started = true end, 1))
    end)
    aloop.sleep(0.005)
    assert.matches("aloop.wait_for called outside a task", tostring(got))
    assert.is_false(started)
  end))

  it("create_task outside run raises", function()
    assert.matches("no running event loop", err_of(aloop.create_task, function() end))
  end)
end)

describe("unretrieved errors", function()
  it("a failed task nobody asked is reported at the end of run, with its traceback", H.async(function()
    local l
    local reports = collect_reports(function()
      aloop.run(function()
        aloop.create_task(function() l = line() + 1
          error("lost error", 0)
        end)
        aloop.sleep(0)
      end)
    end)
    assert.same({ "Task exception was never retrieved: lost error" }, messages(reports))
    local ctx = reports[1]
    assert.equal("lost error", ctx.exception)
    assert.is_string(ctx.traceback)
    assert.matches(THIS .. ":" .. l .. ":", ctx.traceback)
  end))

  it("a table error is reported as that table", H.async(function()
    local e = {}
    local reports = collect_reports(function()
      aloop.run(function()
        aloop.create_task(function() error(e) end)
        aloop.sleep(0)
      end)
    end)
    assert.equal(1, #reports)
    assert.is_true(rawequal(e, reports[1].exception))
  end))

  it("a failed task nobody asked is reported when collected", H.async(function()
    local l
    local reports = collect_reports(function()
      local t = aloop.create_task(function() l = line() + 1
        error("collected error", 0)
      end)
      aloop.sleep(0)
      assert(t:done())
      t = nil -- luacheck: ignore
      collectgarbage(); collectgarbage()
    end)
    assert.same({ "Task exception was never retrieved: collected error" }, messages(reports))
    assert.matches(THIS .. ":" .. l .. ":", reports[1].traceback)
  end))

  it("is reported once only", H.async(function()
    local reports = collect_reports(function()
      aloop.run(function()
        local t = aloop.create_task(function() error("once", 0) end)
        aloop.sleep(0)
        _G.__kept_task = t -- survives the run: reported at its end, not again at GC
      end)
      collectgarbage(); collectgarbage()
      _G.__kept_task = nil
      collectgarbage(); collectgarbage()
    end)
    assert.same({ "Task exception was never retrieved: once" }, messages(reports))
  end))

  it("retrieved errors are not reported (await, result, exception, gather, wait_for)", H.async(function()
    local reports = collect_reports(function()
      aloop.run(function()
        local function boom() error("retrieved", 0) end
        local a = aloop.create_task(boom)
        local b = aloop.create_task(boom)
        local c = aloop.create_task(boom)
        aloop.sleep(0)
        pcall(a.await, a)
        pcall(b.result, b)
        b:exception()
        c:exception()
        pcall(aloop.gather, boom)
        pcall(aloop.wait_for, boom, 1)
      end)
    end)
    assert.same({}, messages(reports))
  end))

  it("a cancelled task is not reported", H.async(function()
    local reports = collect_reports(function()
      aloop.run(function()
        local t = aloop.create_task(aloop.sleep, 1)
        aloop.sleep(0)
        t:cancel()
        aloop.sleep(0)
      end)
    end)
    assert.same({}, messages(reports))
  end))

  it("the error aloop.run raises is not reported (nested run)", H.async(function()
    local reports = collect_reports(function()
      local ok, err = pcall(aloop.run, function() error("raised by run", 0) end)
      assert(not ok and err == "raised by run")
    end)
    assert.same({}, messages(reports))
  end))

  it("a failed Future nobody asked is reported when collected", H.async(function()
    local reports = collect_reports(function()
      local fut = aloop.Future()
      fut:set_exception("future error")
      fut = nil -- luacheck: ignore
      collectgarbage(); collectgarbage()
    end)
    assert.same({ "Future exception was never retrieved: future error" }, messages(reports))
  end))
end)

describe("unretrieved errors at top level", function()
  it("the error aloop.run raises is not reported", function()
    local reports = collect_reports(function()
      local ok, err = pcall(aloop.run, function() aloop.sleep(0); error("raised by run", 0) end)
      assert(not ok and err == "raised by run")
    end)
    assert.same({}, messages(reports))
  end)

  it("a leftover task that failed is reported when run returns", function()
    local reports = collect_reports(function()
      aloop.run(function()
        aloop.create_task(function() error("leftover failed", 0) end)
        aloop.sleep(0)
      end)
    end)
    assert.same({ "Task exception was never retrieved: leftover failed" }, messages(reports))
  end)

  it("nothing is written to stderr when a handler is set", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local aloop = require "aloop"
      local n = 0
      aloop.get_event_loop():set_exception_handler(function() n = n + 1 end)
      aloop.run(function()
        aloop.create_task(function() error("x", 0) end)
        aloop.sleep(0)
      end)
      io.write(n)
    ]])
    f:close()
    local out, err, code = H.lua({ script })
    os.remove(script)
    assert.equal(0, code)
    assert.equal("1", out)
    assert.equal("", err)
  end)

  it("without a handler it goes to stderr with its traceback", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local aloop = require "aloop"
      aloop.run(function()
        aloop.create_task(function()
          error("to stderr", 0)
        end)
        aloop.sleep(0)
      end)
    ]])
    f:close()
    local out, err, code = H.lua({ script })
    os.remove(script)
    assert.equal(0, code)
    assert.equal("", out)
    assert.matches("Task exception was never retrieved", err)
    assert.matches("to stderr", err)
    assert.matches(":4:", err) -- the line of the error() call
  end)
end)

describe("regressions found by the docs review", function()
  it("RuntimeError and ValueError have predicates", H.async(function()
    local err = H.raises(function() aloop.Lock():release() end)
    assert.is_true(aloop.is_runtime_error(err))
    assert.is_false(aloop.is_value_error(err))
    err = H.raises(function() aloop.Queue():task_done() end)
    assert.is_true(aloop.is_value_error(err))
    assert.is_false(aloop.is_runtime_error("RuntimeError"))
  end))

  it("a loop callback's error is reported with the traceback of where it was raised", H.async(function()
    local loop = aloop.get_running_loop()
    local got = H.reports_of(function()
      loop:call_soon(function()
        error("callback broke") -- RAISED HERE
      end)
      aloop.sleep(0.01)
    end)[1]
    assert.equal("Exception in callback", got.message)
    assert.matches("callback broke", tostring(got.exception), 1, true)
    local raised_at
    local n = 0
    for l in io.lines("spec/05-errors_spec.lua") do
      n = n + 1
      if l:find("-- RAISED HERE", 1, true) and not l:find("find", 1, true) then raised_at = n end
    end
    assert.matches("05%-errors_spec%.lua:" .. raised_at .. ":", got.traceback)
  end))

  it("aloop.run with a callable table passes exactly the arguments given", function()
    local obj = setmetatable({}, { __call = function(_, ...) return select("#", ...), ... end })
    local n, a, b = aloop.run(obj, "x", "y")
    assert.equal(2, n)
    assert.equal("x", a)
    assert.equal("y", b)
  end)

  it("top-level run returns as soon as its leftovers are cleaned up, not at the next timer", function()
    local t0, h = aloop.time(), nil
    aloop.run(function()
      h = aloop.get_running_loop():call_later(3, function() end) -- still pending
      aloop.create_task(function() aloop.sleep(5) end)
      aloop.sleep(0)
    end)
    local took = aloop.time() - t0
    h:cancel()
    assert.is_true(took < 0.5, "run took " .. took .. " s")
  end)
end)
