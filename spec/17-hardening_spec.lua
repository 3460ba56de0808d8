-- 17-hardening_spec.lua -- regressions of the robustness review
-- (shared/research/robustness-review.md), each named after what broke. The
-- C-level ones run their reproducer as a child process, which must end by
-- itself with status 0 and no signal.
local aloop = require "aloop"

-- Run a Lua program under the aloop command; returns stdout, stderr, code.
local function child(code)
  return H.aloop({ "-e", code })
end

describe("hardening", function()
  it("a finaliser that cancels a task with a message while its cancellation is built (C1)", function()
    local out, err, code = child([[
      collectgarbage("incremental", 1, 100)
      local target
      local junk = setmetatable({}, { __mode = "k" })
      local n = 0
      local function churn()
        for _ = 1, 200 do
          setmetatable({}, { __gc = function()
            n = n + 1
            if target and not target:done() then target:cancel(("m"):rep(40) .. n) end
          end })
        end
      end
      for _ = 1, 50 do
        target = aloop.create_task(function() aloop.sleep(1) end)
        aloop.sleep(0)
        target:cancel("first message")
        churn()
        local ok, e = pcall(target.await, target)
        assert(not ok and aloop.is_cancelled(e))
      end
      print("ok")
    ]])
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("ok\n", out)
  end)

  it("two tasks awaiting each other are cancelled without a crash (C2)", H.async(function()
    local a, b
    a = aloop.create_task(function() aloop.sleep(0) b:await() end)
    b = aloop.create_task(function() aloop.sleep(0) a:await() end)
    aloop.sleep(0.01)
    a:cancel()
    assert.is_true(H.ended_cancelled(a))
    assert.is_true(H.ended_cancelled(b))
  end))

  it("a task gathering itself is cancelled without a crash (C2)", H.async(function()
    local t = aloop.create_task(function() aloop.gather(aloop.current_task()) end)
    aloop.sleep(0.01)
    t:cancel()
    assert.is_true(H.ended_cancelled(t))
  end))

  it("cancelling the head of a chain of 300 000 awaiting tasks costs no C stack (C2)", H.async(function()
    local N, prev = H.wrap and 30000 or 300000, aloop.Future() -- less under valgrind
    local last = prev
    for _ = 1, N do
      local inner = prev
      prev = aloop.create_task(function() return inner:await() end)
    end
    aloop.sleep(0)
    prev:cancel("stop")
    assert.is_true(H.ended_cancelled(prev))
    assert.is_true(last:cancelled())
  end, 60))

  it("aloop called from a finaliser after its loop was finalised raises (C3)", function()
    local out, err, code = H.lua({ "-e", [[
      local pool = setmetatable({}, { __gc = function()
        local aloop = package.loaded.aloop
        local ok, e = pcall(aloop.run, function() aloop.sleep(0.01) end)
        io.stdout:write("in finaliser: ", tostring(ok), " ", tostring(e), "\n")
      end })
      local aloop = require "aloop"
      aloop.run(function() aloop.sleep(0.001) end)
      print("end")
    ]] })
    assert.equal(0, code, err)
    assert.matches("end\nin finaliser: false aloop is closed", out)
  end)

  it("a task's coroutine resumed by hand stays parked (C4)", H.async(function()
    local co
    local t = aloop.create_task(function() co = coroutine.running(); aloop.sleep(0.02); return "done" end)
    aloop.sleep(0.005)
    local res = {}
    aloop.get_running_loop():call_soon(function() res = table.pack(coroutine.resume(co, "x")) end)
    assert.equal("done", t:await())
    assert.is_true(res[1])
    assert.is_nil(res[2])
    assert.matches("resumed by aloop only", res[3])
  end))

  it("a task's coroutine closed by hand fails the task clearly (C4)", H.async(function()
    local co
    local t = aloop.create_task(function() co = coroutine.running(); aloop.sleep(0.02) end)
    aloop.sleep(0.005)
    coroutine.close(co)
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.matches("closed by hand", tostring(e))
  end))

  it("metatables are protected and __gc checks its self (C6)", H.async(function()
    local t = aloop.create_task(function() end)
    local mt = getmetatable(t)
    assert.is_nil(rawget(mt, "__gc"))
    assert.is_function(mt.cancel)
    -- a task that owns something (here an error) has the finaliser
    local f = aloop.create_task(function() error("boom") end)
    assert.is_false(pcall(f.await, f))
    local gc = debug.getmetatable(f).__gc
    assert.matches("aloop Task expected", H.raises(gc, "x"))
    assert.is_nil(rawget(getmetatable(f), "__gc"))
    t:await()
  end))

  it("a semaphore released past the largest integer saturates (C7)", function()
    local s = aloop.Semaphore(math.maxinteger)
    s:release()
    assert.equal(math.maxinteger, s:value())
  end)

  it("cancelling 100 000 queued call_soon handles newest first is fast (H1)", H.async(function()
    local loop, hs = aloop.get_running_loop(), {}
    local N = H.wrap and 10000 or 100000 -- (valgrind: 10 000; quadratic took 0.12 s there)
    for i = 1, N do hs[i] = loop:call_soon(error, "never") end
    local t0 = os.clock()
    for i = N, 1, -1 do hs[i]:cancel() end
    assert.is_true(os.clock() - t0 < 2, "took " .. (os.clock() - t0))
  end, 30))

  it("shield of a task that fails with nil completes, failed (H2, W2)", H.async(function()
    local t = aloop.create_task(function() aloop.sleep(0.001) error() end)
    local s = aloop.shield(t)
    local ok, e = pcall(aloop.wait_for, s, 1)
    assert.is_false(ok)
    assert.is_nil(e)
  end))

  it("a nil error fails a TaskGroup and wait(FIRST_EXCEPTION) sees it (W2)", H.async(function()
    local ok, e = pcall(function()
      local tg <close> = aloop.TaskGroup()
      tg:create_task(function() error() end)
      tg:create_task(function() aloop.sleep(1) end)
    end)
    assert.is_false(ok)
    assert.is_nil(e)
    local t = aloop.create_task(function() error() end)
    local slow = aloop.create_task(function() aloop.sleep(1) end)
    local done = aloop.wait({ t, slow }, { return_when = "FIRST_EXCEPTION" })
    assert.is_true(done[t])
    slow:cancel()
    pcall(t.await, t)
  end))

  it("an error escaping the scheduler leaves aloop usable (H3)", function()
    local out, err, code = H.lua({ "-e", [[
      local aloop = require "aloop"
      local function deep(n, ...)
        if n == 0 then
          return pcall(aloop.run, function()
            aloop.get_running_loop():call_soon(function() end, table.unpack({}, 1, 200))
            aloop.sleep(0)
            return "main done"
          end)
        end
        return deep(n - 1, n, ...)
      end
      print(deep(100))
      print(pcall(aloop.run, function() return "ok" end))
    ]] })
    assert.equal(0, code, err)
    assert.matches("true\tok\n$", out)
  end)

  it("an error value whose __tostring fails arrives unchanged (W1)", H.async(function()
    local v = setmetatable({}, { __tostring = function() error("exploded") end })
    local t = aloop.create_task(function() error(v) end)
    local ok, e = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal(v, e)
  end))

  it("Timeout:reschedule takes an absolute time, as asyncio's (W3)", H.async(function()
    local scope <close> = aloop.timeout(0.05)
    scope:reschedule(scope:when() + 1)
    local left = scope:when() - aloop.time()
    assert.is_true(left > 0.9 and left < 1.1, "left " .. left)
    scope:reschedule(nil)
  end))

  it("errors name the public function, never aloop's files (B1, B3, B6)", H.async(function()
    local e = H.raises(aloop.as_completed, {}, 5)
    assert.matches("bad argument #2 to 'as_completed' %(table expected, got number%)", e)
    assert.not_matches("aloop/", e)
    e = H.raises(aloop.sleep, "10")
    assert.matches("number expected, got string", e)
    e = H.raises(aloop.get_running_loop().create_task, aloop.get_running_loop(), nil)
    assert.not_matches("aloop/", e)
    e = H.raises(aloop.set_debug, true, 0 / 0)
    assert.matches("not a number", e)
  end))

  it("a cancel message with NULs arrives whole, also passed on (W9)", H.async(function()
    local t = aloop.create_task(function() aloop.sleep(10) end)
    aloop.sleep(0)
    t:cancel("before\0after")
    local _, err = pcall(t.await, t)
    assert.equal("before\0after", err.message)
    local f = aloop.Future()
    f:cancel("a\0b")
    assert.equal("a\0b", H.raises(f.await, f).message)
    local g = aloop.Future()
    local t2 = aloop.create_task(function() return g:await() end)
    aloop.sleep(0)
    t2:cancel("x\0y")
    assert.equal("x\0y", H.raises(t2.await, t2).message)
    assert.is_true(g:cancelled())
  end))

  it("a script replacing or removing globals does not break aloop (W8)", H.async(function()
    local saved = { pairs = pairs, string = string, getmetatable = getmetatable,
      setmetatable = setmetatable, type = type, select = select, table = table }
    local ok, err = pcall(function()
      _G.pairs = function() error("replaced pairs") end
      _G.string, _G.getmetatable, _G.table = nil, nil, nil
      _G.type = function() return "nonsense" end
      local t = aloop.create_task(function() aloop.sleep(0) return 1 end)
      local done = aloop.wait({ t })
      assert(done[t], "wait works")
      assert(tostring(aloop.Lock()):find("Lock", 1, true), "tostring of a Lock")
      local c = aloop.Condition(aloop.Lock())
      local q = aloop.PriorityQueue()
      q:put_nowait(3); q:put_nowait(1)
      assert(q:get_nowait() == 1)
      assert(c:locked() == false)
    end)
    for k, v in saved.pairs(saved) do _G[k] = v end
    assert(ok, err)
  end))

  it("a pending future with a done callback, dropped, is collected (N3)", H.async(function()
    local weak = setmetatable({}, { __mode = "k" })
    do
      local f = aloop.Future()
      f:add_done_callback(function() error("never") end)
      f:add_done_callback(function() error("never either") end)
      weak[f] = true
    end
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak)) -- and H.async checks that nothing stays anchored
  end))

  it("a done callback queued by completion runs though its future was dropped (N3)", H.async(function()
    local got = {}
    do
      local f = aloop.Future()
      f:add_done_callback(function(fut) got[#got + 1] = fut:result() end)
      f:add_done_callback(function(fut) got[#got + 1] = fut:result() * 2 end)
      f:set_result(21)
    end
    collectgarbage(); collectgarbage()
    aloop.sleep(0)
    assert.same({ 21, 42 }, got)
  end))

  it("remove_done_callback takes a pending callback out for good (N3)", H.async(function()
    local f, ran = aloop.Future(), {}
    local function a() ran[#ran + 1] = "a" end
    local function b() ran[#ran + 1] = "b" end
    f:add_done_callback(a); f:add_done_callback(b); f:add_done_callback(a)
    assert.equal(2, f:remove_done_callback(a))
    collectgarbage()
    f:set_result(1)
    aloop.sleep(0)
    assert.same({ "b" }, ran)
    assert.equal(0, f:remove_done_callback(b))
  end))

  it("the error of a shielded task whose shield was cancelled is reported, never dropped (D6)", H.async(function()
    local reports = H.reports_of(function()
      local failing = aloop.create_task(function() aloop.sleep(0.01) error("inner failure", 0) end)
      local s = aloop.shield(failing)
      s:cancel()
      aloop.sleep(0.03)
      assert.is_true(failing:done())
      failing = nil -- luacheck: ignore
    end)
    assert.equal(1, #reports)
    assert.equal("inner failure", reports[1].exception)
  end))

  it("handles: cancelled() is true after a late cancel, callable tables are callbacks (D1, D2)", H.async(function()
    local loop, ran = aloop.get_running_loop(), {}
    local h = loop:call_soon(function() ran[#ran + 1] = "fn" end)
    aloop.sleep(0)
    h:cancel()
    assert.is_true(h:cancelled()) -- as asyncio: also after it ran
    loop:call_soon(setmetatable({}, { __call = function(_, x) ran[#ran + 1] = x end }), "callable")
    aloop.sleep(0)
    assert.same({ "fn", "callable" }, ran)
  end))

  it("metamethods Lua calls may wait; C functions calling back may not (D3)", H.async(function()
    local o = setmetatable({}, { __index = function(_, k) aloop.sleep(0) return k end,
      __add = function() aloop.sleep(0) return 5 end })
    assert.equal("x", o.x)
    assert.equal(5, o + 1)
    local e = H.raises(table.sort, { 3, 2, 1 }, function(a, b) aloop.sleep(0) return a < b end)
    assert.matches("aloop.sleep cannot wait here", e, 1, true)
  end))

  it("an error value's __tostring ignores extra arguments (B7)", function()
    local e = aloop.error("TimeoutError", "late")
    local ts = debug.getmetatable(e).__tostring
    assert.equal("TimeoutError: late", ts(e, "extra", 42))
  end)

  it("a finaliser at lua_close that lets go of an anchor after the loop is gone does not crash", function()
    local out, err, code = H.lua({ "spec/fixtures/close_unanchor.lua" })
    assert.equal(0, code, err)
    assert.matches("after close: no crash\ttrue", out, 1, true)
  end)

  -- B5 (aloop_openlib in a state without the standard libraries), W7 and
  -- W10 (aloop_shutdown inside a task, aloop used after it) are checked from
  -- C by spec/c/test_states.c, run by spec 07.
end)
