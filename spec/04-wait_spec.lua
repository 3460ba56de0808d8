-- spec/04-wait_spec.lua: wait, wait_for, timeout scopes, shield and
-- as_completed, as asyncio (CPython 3.11/3.12) behaves.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/04-wait_spec.lua
local aloop = require "aloop"
local after, fail_after = H.after, H.fail_after

local function keys(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

local function closer(fn)
  return setmetatable({}, { __close = fn })
end

describe("wait", function()
  it("ALL_COMPLETED (the default) waits for every task", H.async(function()
    local a = aloop.create_task(after(0.01, 1))
    local b = aloop.create_task(after(0.02, 2))
    local c = aloop.create_task(fail_after(0.005, "err"))
    local done, pending = aloop.wait({ a, b, c })
    assert.equal(3, keys(done))
    assert.is_true(done[a] and done[b] and done[c])
    assert.equal(0, keys(pending))
    assert.equal("err", c:exception())
    done = aloop.wait({ a }, { return_when = "ALL_COMPLETED" })
    assert.is_true(done[a])
  end))

  it("FIRST_COMPLETED returns when one task is done", H.async(function()
    local a = aloop.create_task(after(0.01, 1))
    local b = aloop.create_task(after(0.05, 2))
    local t0 = aloop.time()
    local done, pending = aloop.wait({ a, b }, { return_when = aloop.FIRST_COMPLETED })
    assert.is_true(aloop.time() - t0 >= 0.01)
    assert.same({ [a] = true }, done)
    assert.same({ [b] = true }, pending)
    assert.is_false(b:done())
    assert.is_false(b:cancelled())
    b:cancel()
    pcall(b.await, b)
  end))

  it("FIRST_COMPLETED counts a failure as completion", H.async(function()
    local a = aloop.create_task(fail_after(0.005, "x"))
    local b = aloop.create_task(after(0.05))
    local done, pending = aloop.wait({ a, b }, { return_when = "FIRST_COMPLETED" })
    assert.is_true(done[a])
    assert.is_true(pending[b])
    assert.equal("x", a:exception())
    b:cancel()
    pcall(b.await, b)
  end))

  it("FIRST_EXCEPTION returns at the first failure", H.async(function()
    local a = aloop.create_task(after(0.005, 1))
    local b = aloop.create_task(fail_after(0.01, "boom"))
    local c = aloop.create_task(after(0.05, 3))
    local t0 = aloop.time()
    local done, pending = aloop.wait({ a, b, c }, { return_when = aloop.FIRST_EXCEPTION })
    assert.is_true(aloop.time() - t0 >= 0.01)
    assert.same({ [a] = true, [b] = true }, done)
    assert.same({ [c] = true }, pending)
    assert.is_false(c:done()) -- returned before the last task ended
    assert.equal("boom", b:exception())
    c:cancel()
    pcall(c.await, c)
  end))

  it("FIRST_EXCEPTION without failures waits for all", H.async(function()
    local a = aloop.create_task(after(0.005, 1))
    local b = aloop.create_task(after(0.02, 2))
    local done, pending = aloop.wait({ a, b }, { return_when = "FIRST_EXCEPTION" })
    assert.same({ [a] = true, [b] = true }, done)
    assert.same({}, pending)
  end))

  it("with a timeout returns what is done and cancels nothing", H.async(function()
    local a = aloop.create_task(after(0.005, 1))
    local b = aloop.create_task(after(0.05, 2))
    local t0 = aloop.time()
    local done, pending = aloop.wait({ a, b }, { timeout = 0.02 })
    local dt = aloop.time() - t0
    assert.is_true(dt >= 0.02 and dt < 1, "took " .. dt)
    assert.same({ [a] = true }, done)
    assert.same({ [b] = true }, pending)
    assert.is_false(b:done()) -- returned at its timeout, before b ended
    assert.is_false(b:cancelled())
    assert.equal(2, b:await())
  end))

  it("returns at once when the condition already holds", H.async(function()
    local a = aloop.create_task(after(0, 1))
    a:await()
    local other = false
    aloop.get_running_loop():call_soon(function() other = true end)
    local done = aloop.wait({ a })
    assert.is_true(done[a])
    local t0 = aloop.time()
    aloop.wait({ a }, { timeout = 1 })
    assert.is_true(aloop.time() - t0 < 0.5)
    aloop.sleep(0)
    assert.is_true(other)
  end))

  it("takes the same task twice", H.async(function()
    local a = aloop.create_task(after(0.005, 1))
    local done, pending = aloop.wait({ a, a })
    assert.same({ [a] = true }, done)
    assert.same({}, pending)
  end))

  it("takes Futures", H.async(function()
    local f1, f2 = aloop.Future(), aloop.Future()
    aloop.get_running_loop():call_later(0.005, function() f2:set_result("x") end)
    local done, pending = aloop.wait({ f1, f2 }, { return_when = "FIRST_COMPLETED" })
    assert.same({ [f2] = true }, done)
    assert.same({ [f1] = true }, pending)
    f1:cancel()
  end))

  it("cancelled, it does not cancel the tasks it waits for", H.async(function()
    local inner = aloop.create_task(after(0.03, "inner"))
    local w = aloop.create_task(function() return aloop.wait({ inner }) end)
    aloop.sleep(0.005)
    w:cancel()
    local ok, err = pcall(w.await, w)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.is_false(inner:done())
    assert.equal("inner", inner:await())
  end))

  it("of an empty list raises", H.async(function()
    assert.has_error(function() aloop.wait({}) end)
  end))
end)

describe("wait_for", function()
  it("returns the results when in time", H.async(function()
    local a, b = aloop.wait_for(after(0.005, "a", "b"), 0.5)
    assert.equal("a", a)
    assert.equal("b", b)
    local t = aloop.create_task(after(0, 7))
    assert.equal(7, aloop.wait_for(t, 0.5))
  end))

  it("without a timeout waits as long as it takes", H.async(function()
    assert.equal(3, aloop.wait_for(after(0.01, 3), nil))
  end))

  it("passes the inner error through unchanged", H.async(function()
    local e = {}
    local ok, err = pcall(aloop.wait_for, fail_after(0, e), 0.5)
    assert.is_false(ok)
    assert.is_true(rawequal(e, err))
  end))

  it("on timeout raises TimeoutError after the inner task was cancelled and finished", H.async(function()
    local log = {}
    local inner = aloop.create_task(function()
      local _ <close> = closer(function(_, err)
        log[#log + 1] = "cleanup start:" .. tostring(aloop.is_cancelled(err))
        aloop.sleep(0.01)
        log[#log + 1] = "cleanup end"
      end)
      aloop.sleep(1)
    end)
    local t0 = aloop.time()
    local ok, err = pcall(aloop.wait_for, inner, 0.02)
    local dt = aloop.time() - t0
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.equal("TimeoutError", tostring(err))
    assert.same({ "cleanup start:true", "cleanup end" }, log)
    assert.is_true(inner:done())
    assert.is_true(inner:cancelled())
    assert.is_true(dt >= 0.03 and dt < 0.5, "took " .. dt)
  end))

  it("on timeout of a function, the task made for it is cancelled", H.async(function()
    local cancelled = false
    local ok, err = pcall(aloop.wait_for, function()
      local ok2, e = pcall(aloop.sleep, 1)
      cancelled = aloop.is_cancelled(e)
      if not ok2 then error(e, 0) end
    end, 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_true(cancelled)
  end))

  it("on timeout of a Future, the Future is cancelled", H.async(function()
    local fut = aloop.Future()
    local ok, err = pcall(aloop.wait_for, fut, 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_true(fut:cancelled())
  end))

  it("returns the result if the inner task ignores the cancellation", H.async(function()
    local ok, r = pcall(aloop.wait_for, function()
      local ok2 = pcall(aloop.sleep, 1)
      return ok2 and "finished" or "ignored"
    end, 0.01)
    assert.is_true(ok)
    assert.equal("ignored", r)
    -- the caller is not left cancelled
    aloop.sleep(0.001)
    assert.equal(0, aloop.current_task():cancelling())
  end))

  it("cancelled from outside raises CancelledError, not TimeoutError", H.async(function()
    local inner = aloop.create_task(after(1))
    local w = aloop.create_task(function() return aloop.wait_for(inner, 0.5) end)
    aloop.sleep(0.01)
    w:cancel()
    local ok, err = pcall(w.await, w)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.is_false(aloop.is_timeout(err))
    assert.is_true(inner:cancelled())
    assert.is_true(w:cancelled())
  end))

  it("timeout 0 on a done Future returns its result", H.async(function()
    local fut = aloop.Future()
    fut:set_result("ready")
    assert.equal("ready", aloop.wait_for(fut, 0))
  end))

  it("timeout 0 on a function: TimeoutError, the body never ran", H.async(function()
    local ran = false
    local ok, err = pcall(aloop.wait_for, function() ran = true end, 0)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_false(ran)
  end))

  it("an error the inner task raises while cleaning up after the timeout passes through", H.async(function()
    local ok, err = pcall(aloop.wait_for, function()
      local ok2 = pcall(aloop.sleep, 1)
      assert(not ok2)
      error("cleanup failed", 0)
    end, 0.01)
    assert.is_false(ok)
    assert.equal("cleanup failed", err)
  end))

  it("leaves the caller usable after a timeout", H.async(function()
    local ok, err = pcall(aloop.wait_for, after(1), 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.equal(0, aloop.current_task():cancelling())
    assert.equal("v", aloop.sleep(0.005, "v"))
    assert.equal(1, aloop.wait_for(after(0, 1), 0.5))
  end))
end)

describe("timeout scope", function()
  it("raises TimeoutError from __close when it expires", H.async(function()
    local reached = false
    local t0 = aloop.time()
    local ok, err = pcall(function()
      local _ <close> = aloop.timeout(0.02)
      aloop.sleep(1)
      reached = true
    end)
    local dt = aloop.time() - t0
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_false(reached)
    assert.is_true(dt >= 0.02 and dt < 0.5, "took " .. dt)
    assert.equal(0, aloop.current_task():cancelling())
  end))

  it("does nothing when the body finishes in time", H.async(function()
    local scope
    local r = (function()
      local t <close> = aloop.timeout(0.05)
      scope = t
      aloop.sleep(0.005)
      return "in time"
    end)()
    assert.equal("in time", r)
    assert.is_false(scope:expired())
    aloop.sleep(0.06) -- and it does not fire later
    assert.equal(0, aloop.current_task():cancelling())
  end))

  it("expired() and when()", H.async(function()
    local scope
    local now = aloop.time()
    pcall(function()
      local t <close> = aloop.timeout(0.01)
      scope = t
      assert(t:when() >= now + 0.01 and t:when() < now + 1, "when() is not 0.01 s from now")
      assert(not t:expired())
      aloop.sleep(1)
    end)
    assert.is_true(scope:expired())
  end))

  it("timeout(nil) never expires", H.async(function()
    local ok = pcall(function()
      local t <close> = aloop.timeout(nil)
      assert(t:when() == nil)
      aloop.sleep(0.01)
    end)
    assert.is_true(ok)
  end))

  it("a cancellation from outside stays a cancellation", H.async(function()
    local w = aloop.create_task(function()
      local ok, err = pcall(function()
        local _ <close> = aloop.timeout(0.5)
        aloop.sleep(1)
      end)
      return ok, err
    end)
    aloop.sleep(0.01)
    w:cancel()
    local ok, err = w:await()
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.is_false(aloop.is_timeout(err))
  end))

  it("expiring together with an outside cancel: the cancellation wins", H.async(function()
    local w = aloop.create_task(function()
      local ok, err = pcall(function()
        local t <close> = aloop.timeout(10)
        t:reschedule(aloop.time() - 1) -- expires on the next turn
        aloop.current_task():cancel()
        aloop.sleep(1)
      end)
      return ok, err
    end)
    local ok, err = w:await()
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
  end))

  it("nested: the outer one expiring is the outer one's timeout", H.async(function()
    local log = {}
    local ok, err = pcall(function()
      local _o <close> = aloop.timeout(0.02)
      local ok2, err2 = pcall(function()
        local _i <close> = aloop.timeout(0.5)
        aloop.sleep(1)
      end)
      log[#log + 1] = aloop.is_cancelled(err2) and "inner saw cancel"
        or (aloop.is_timeout(err2) and "inner saw timeout" or "inner saw " .. tostring(ok2))
      error(err2, 0)
    end)
    assert.is_false(ok)
    assert.same({ "inner saw cancel" }, log)
    assert.is_true(aloop.is_timeout(err))
  end))

  it("nested: the inner one expiring does not touch the outer one", H.async(function()
    local ok, err = pcall(function()
      local outer <close> = aloop.timeout(0.5)
      local ok2, err2 = pcall(function()
        local _i <close> = aloop.timeout(0.01)
        aloop.sleep(1)
      end)
      assert(not ok2 and aloop.is_timeout(err2))
      aloop.sleep(0.005) -- the task is not cancelled any more
      assert(not outer:expired())
      return "went on"
    end)
    assert.is_true(ok, tostring(err))
    assert.equal("went on", err)
  end))

  it("reschedule moves the deadline later", H.async(function()
    local t0 = aloop.time()
    local ok, err = pcall(function()
      local t <close> = aloop.timeout(0.01)
      t:reschedule(aloop.time() + 0.04)
      aloop.sleep(1)
    end)
    local dt = aloop.time() - t0
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_true(dt >= 0.04 and dt < 0.5, "took " .. dt)
  end))

  it("reschedule(nil) disables it", H.async(function()
    local ok = pcall(function()
      local t <close> = aloop.timeout(0.01)
      t:reschedule(nil)
      aloop.sleep(0.03)
    end)
    assert.is_true(ok)
  end))

  it("timeout(0) expires at the first await", H.async(function()
    local ok, err = pcall(function()
      local _ <close> = aloop.timeout(0)
      aloop.sleep(0)
    end)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
  end))

  it("timeout(0) expires before a task created inside it starts", H.async(function()
    local ran = false
    local ok, err = pcall(function()
      local _ <close> = aloop.timeout(0)
      aloop.create_task(function() ran = true end):await()
    end)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_false(ran)
  end))

  it("timeout(0) with no await in the body raises nothing", H.async(function()
    local ok = pcall(function()
      local _ <close> = aloop.timeout(0)
      return 1
    end)
    assert.is_true(ok)
    aloop.sleep(0.001)
  end))

  it("an error of the body after expiry passes unchanged", H.async(function()
    local ok, err = pcall(function()
      local _ <close> = aloop.timeout(0.01)
      local ok2 = pcall(aloop.sleep, 1)
      assert(not ok2)
      error("mine", 0)
    end)
    assert.is_false(ok)
    assert.equal("mine", err)
  end))

  it("timeout_at takes an absolute time", H.async(function()
    local t0 = aloop.time()
    local ok, err = pcall(function()
      local _ <close> = aloop.timeout_at(aloop.time() + 0.02)
      aloop.sleep(1)
    end)
    assert.is_true(aloop.is_timeout(err))
    assert.is_false(ok)
    assert.is_true(aloop.time() - t0 >= 0.02)
  end))

  it("leaving by an error before expiry: the error passes, nothing fires later", H.async(function()
    local ok, err = pcall(function()
      local _ <close> = aloop.timeout(0.01)
      error("early", 0)
    end)
    assert.is_false(ok)
    assert.equal("early", err)
    assert.equal("v", aloop.sleep(0.02, "v")) -- not cancelled by the old scope
  end))

  it("the body catching the cancellation itself: no TimeoutError, expired() is true", H.async(function()
    local scope
    local ok, r = pcall(function()
      local t <close> = aloop.timeout(0.01)
      scope = t
      local ok2 = pcall(aloop.sleep, 1)
      return ok2 and "slept" or "caught"
    end)
    assert.is_true(ok)
    assert.equal("caught", r)
    assert.is_true(scope:expired())
    assert.equal(0, aloop.current_task():cancelling())
  end))

  it("cannot be rescheduled after it was left", H.async(function()
    local scope
    do
      local t <close> = aloop.timeout(1)
      scope = t
    end
    assert.has_error(function() scope:reschedule(1) end)
  end))

  it("outside a task raises", function()
    local ok, err = pcall(aloop.timeout, 1)
    assert.is_false(ok)
    assert.matches("aloop.timeout called outside a task", err)
  end)
end)

describe("shield", function()
  it("gives the shielded task's result", H.async(function()
    local t = aloop.create_task(after(0.005, "r"))
    assert.equal("r", aloop.shield(t):await())
  end))

  it("takes a function and runs it as a task", H.async(function()
    assert.equal(5, aloop.shield(after(0, 5)):await())
  end))

  it("gives the shielded task's error", H.async(function()
    local e = {}
    local ok, err = pcall(function() return aloop.shield(fail_after(0, e)):await() end)
    assert.is_false(ok)
    assert.is_true(rawequal(e, err))
  end))

  it("cancelling the awaiting task does not cancel the inner one", H.async(function()
    local inner = aloop.create_task(after(0.02, "inner"))
    local w = aloop.create_task(function() return aloop.shield(inner):await() end)
    aloop.sleep(0.005)
    w:cancel()
    local ok, err = pcall(w.await, w)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.is_false(inner:done())
    assert.equal("inner", inner:await())
  end))

  it("cancelling the shield itself does not cancel the inner one", H.async(function()
    local inner = aloop.create_task(after(0.02, "x"))
    local s = aloop.shield(inner)
    assert.is_true(s:cancel())
    aloop.sleep(0.03)
    assert.is_true(s:cancelled())
    assert.equal("x", inner:result())
  end))

  it("used with wait_for, the inner task survives the timeout", H.async(function()
    local inner = aloop.create_task(after(0.03, "survived"))
    local ok, err = pcall(aloop.wait_for, aloop.shield(inner), 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_false(inner:cancelled())
    assert.equal("survived", inner:await())
  end))
end)

describe("as_completed", function()
  it("gives the futures in the order they complete", H.async(function()
    local ts = {
      aloop.create_task(after(0.03, "c")),
      aloop.create_task(after(0.01, "a")),
      aloop.create_task(after(0.02, "b")),
    }
    local got = {}
    for f in aloop.as_completed(ts) do
      got[#got + 1] = f:await()
    end
    assert.same({ "a", "b", "c" }, got)
  end))

  it("gives failed ones too, in order", H.async(function()
    local ts = {
      aloop.create_task(after(0.02, "ok")),
      aloop.create_task(fail_after(0.01, "bad")),
    }
    local got = {}
    for f in aloop.as_completed(ts) do
      local ok, v = pcall(f.await, f)
      got[#got + 1] = (ok and "ok:" or "err:") .. tostring(v)
    end
    assert.same({ "err:bad", "ok:ok" }, got)
  end))

  it("with a timeout raises TimeoutError when not all are done", H.async(function()
    local slow = aloop.create_task(after(0.5))
    local fast = aloop.create_task(after(0.005, 1))
    local got = {}
    local ok, err = pcall(function()
      for f in aloop.as_completed({ slow, fast }, { timeout = 0.02 }) do
        got[#got + 1] = f:await()
      end
    end)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.same({ 1 }, got)
    assert.is_false(slow:cancelled()) -- as asyncio: nothing is cancelled
    slow:cancel()
    pcall(slow.await, slow)
  end))

  it("gives a task given twice once, and nil after the last", H.async(function()
    local a = aloop.create_task(after(0.005, "a"))
    local b = aloop.create_task(after(0.01, "b"))
    local it = aloop.as_completed({ a, b, a })
    assert.equal(a, it())
    assert.equal(b, it())
    assert.is_nil(it())
    assert.is_nil(it())
  end))

  it("of done tasks gives them all", H.async(function()
    local a = aloop.create_task(after(0, 1))
    local b = aloop.create_task(after(0, 2))
    aloop.gather(a, b)
    local n = 0
    for f in aloop.as_completed({ a, b }) do n = n + f:result() end
    assert.equal(3, n)
  end))
end)

describe("misuse", function()
  it("wait_for outside a task raises", function()
    local fut
    aloop.run(function() fut = aloop.Future(); fut:set_result(1) end)
    local ok, err = pcall(aloop.wait_for, fut, 1)
    assert.is_false(ok)
    assert.matches("aloop.wait_for called outside a task", err)
  end)

  it("wait: bad return_when", H.async(function()
    local t = aloop.create_task(after(0))
    local ok, err = pcall(aloop.wait, { t }, { return_when = "SOMETIMES" })
    assert.is_false(ok)
    assert.matches("return_when", err)
    t:await()
  end))
end)
