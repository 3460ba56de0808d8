-- spec/08-sync_spec.lua: Lock, Semaphore, BoundedSemaphore, Event, Condition
-- and Barrier, as asyncio (CPython 3.12/3.13) has them: normal use, FIFO
-- fairness (no newcomer barges past a waiter that was woken but has not run
-- yet), timeouts through wait_for, and cancellation safety -- a waiter
-- cancelled while it waits, or between its wake-up and its resumption,
-- leaks no permit, lock or notification: it passes on to the next waiter.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/08-sync_spec.lua
local aloop = require "aloop"
local settle, ended_cancelled, raises = H.settle, H.ended_cancelled, H.raises

-- A task that acquires `prim` (anything with acquire/release), logs `name`,
-- holds it `hold` seconds and releases it through the guard.
local function acquirer(prim, name, log, hold)
  return aloop.create_task(function()
    local _ <close> = prim:acquire()
    log[#log + 1] = name
    if hold then aloop.sleep(hold) end
    return name
  end)
end

------------------------------------------------------------------------------
describe("Lock", function()
  it("acquire/release/locked, and acquire returns a guard", H.async(function()
    local lock = aloop.Lock()
    assert.is_false(lock:locked())
    local g = lock:acquire()
    assert.equal(lock, g)
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
    do
      local _ <close> = lock:acquire()
      assert.is_true(lock:locked())
    end
    assert.is_false(lock:locked())
  end))

  it("the guard releases when the block raises", H.async(function()
    local lock = aloop.Lock()
    local ok, err = pcall(function()
      local _ <close> = lock:acquire()
      error("boom", 0)
    end)
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.is_false(lock:locked())
  end))

  it("releasing an unlocked lock raises", H.async(function()
    local lock = aloop.Lock()
    raises(lock.release, lock)
    lock:acquire()
    lock:release()
    raises(lock.release, lock)
    assert.is_false(lock:locked())
  end))

  it("releasing twice while the lock is handed to a waiter raises, and never admits two holders",
    H.async(function()
      -- asyncio: the first release() unlocks and wakes A, the second raises
      -- RuntimeError('Lock is not acquired.'). Here the lock is handed to A;
      -- a second release must not hand it to B as well.
      local lock = aloop.Lock()
      lock:acquire()
      local inside, max_inside = 0, 0
      local function worker()
        local _ <close> = lock:acquire()
        inside = inside + 1
        max_inside = math.max(max_inside, inside)
        aloop.sleep(0.01)
        inside = inside - 1
      end
      local a = aloop.create_task(worker)
      local b = aloop.create_task(worker)
      settle()
      lock:release()
      local second_raised = not pcall(lock.release, lock)
      local a_ok, a_err = pcall(a.await, a)
      local b_ok, b_err = pcall(b.await, b)
      assert.is_true(second_raised, "the second release() did not raise")
      assert.equal(1, max_inside, "two tasks held the lock at once")
      assert.is_true(a_ok, tostring(a_err))
      assert.is_true(b_ok, tostring(b_err))
      assert.is_false(lock:locked())
    end))

  it("gives mutual exclusion", H.async(function()
    local lock = aloop.Lock()
    local inside, max_inside, done = 0, 0, 0
    local tasks = {}
    for i = 1, 8 do
      tasks[i] = aloop.create_task(function()
        for _ = 1, 3 do
          local _ <close> = lock:acquire()
          inside = inside + 1
          max_inside = math.max(max_inside, inside)
          aloop.sleep(0.001 * (i % 3))
          inside = inside - 1
          done = done + 1
        end
      end)
    end
    for i = 1, #tasks do tasks[i]:await() end
    assert.equal(1, max_inside)
    assert.equal(24, done)
    assert.is_false(lock:locked())
  end))

  it("waiters acquire in arrival order", H.async(function()
    local lock = aloop.Lock()
    local log = {}
    lock:acquire()
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = acquirer(lock, i, log)
      aloop.sleep(0) -- task i is parked before task i+1 starts
    end
    lock:release()
    for i = 1, #tasks do tasks[i]:await() end
    assert.same({ 1, 2, 3, 4, 5, 6 }, log)
    assert.is_false(lock:locked())
  end))

  it("waiters parked in the same step still acquire in creation order", H.async(function()
    local lock = aloop.Lock()
    local log = {}
    lock:acquire()
    local tasks = {}
    for i = 1, 6 do tasks[i] = acquirer(lock, i, log, 0.001) end
    settle()
    lock:release()
    for i = 1, #tasks do tasks[i]:await() end
    assert.same({ 1, 2, 3, 4, 5, 6 }, log)
  end))

  it("a newcomer does not barge past a woken waiter that has not run yet", H.async(function()
    local lock = aloop.Lock()
    local log = {}
    lock:acquire()
    local a = acquirer(lock, "a", log)
    settle()
    lock:release()  -- a is woken, not yet running
    -- as asyncio: unlocked at once, yet a newcomer queues behind a
    assert.is_false(lock:locked())
    do
      local _ <close> = lock:acquire() -- waits behind a
      log[#log + 1] = "main"
    end
    a:await()
    assert.same({ "a", "main" }, log)
    assert.is_false(lock:locked())
  end))

  it("a cancelled waiter leaves the line and the next one gets the lock", H.async(function()
    local lock = aloop.Lock()
    local log = {}
    lock:acquire()
    local a = acquirer(lock, "a", log)
    local b = acquirer(lock, "b", log)
    local c = acquirer(lock, "c", log)
    settle()
    a:cancel()
    settle()
    lock:release()
    assert.is_true(ended_cancelled(a))
    assert.equal("b", b:await())
    assert.equal("c", c:await())
    assert.same({ "b", "c" }, log)
    assert.is_false(lock:locked())
  end))

  it("cancelled between wake-up and resumption: the lock passes to the next waiter", H.async(function()
    local lock = aloop.Lock()
    local log = {}
    lock:acquire()
    local a = acquirer(lock, "a", log)
    local b = acquirer(lock, "b", log)
    settle()
    lock:release() -- granted to a ...
    a:cancel()     -- ... which is cancelled before it runs
    assert.is_true(ended_cancelled(a))
    assert.equal("b", b:await())
    assert.same({ "b" }, log)
    assert.is_false(lock:locked())
  end))

  it("cancelled between wake-up and resumption with no one behind: the lock is free again",
    H.async(function()
      local lock = aloop.Lock()
      local log = {}
      lock:acquire()
      local a = acquirer(lock, "a", log)
      settle()
      lock:release()
      a:cancel()
      assert.is_true(ended_cancelled(a))
      assert.same({}, log)
      assert.is_false(lock:locked())
      -- and can be taken without waiting
      local t = aloop.create_task(function() lock:acquire(); return "got" end)
      assert.equal("got", aloop.wait_for(t, 0.5))
      lock:release()
    end))

  it("cancel() then uncancel() before the waiter runs: it does not get the lock", H.async(function()
    -- asyncio: the cancel reached the waiter's future, so acquire() raises
    -- CancelledError even though the count went back to zero.
    local lock = aloop.Lock()
    lock:acquire()
    local a = aloop.create_task(function()
      local ok, err = pcall(lock.acquire, lock)
      if ok then return "acquired" end
      return aloop.is_cancelled(err) and "cancelled" or tostring(err)
    end)
    settle()
    a:cancel()
    assert.equal(0, a:uncancel())
    settle()
    assert.equal("cancelled", aloop.wait_for(a, 0.5))
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
  end))

  it("a cancellation caught around acquire leaves the lock with its holder", H.async(function()
    local lock = aloop.Lock()
    lock:acquire()
    local t = aloop.create_task(function()
      local ok, err = pcall(lock.acquire, lock)
      assert(not ok and aloop.is_cancelled(err))
      return "went on"
    end)
    settle()
    t:cancel()
    assert.equal("went on", t:await())
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
  end))

  it("wait_for times out an acquire without taking the lock", H.async(function()
    local lock = aloop.Lock()
    lock:acquire()
    local t0 = aloop.time()
    local ok, err = pcall(aloop.wait_for, function() lock:acquire() end, 0.02)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_true(aloop.time() - t0 < 0.5)
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
    -- in time: acquired in the inner task, released here
    assert.equal(lock, aloop.wait_for(function() return lock:acquire() end, 0.5))
    assert.is_true(lock:locked())
    lock:release()
  end))

  it("the guard releases when the holder is cancelled", H.async(function()
    local lock = aloop.Lock()
    local t = aloop.create_task(function()
      local _ <close> = lock:acquire()
      aloop.sleep(1)
    end)
    settle()
    assert.is_true(lock:locked())
    t:cancel()
    assert.is_true(ended_cancelled(t))
    assert.is_false(lock:locked())
  end))

  it("prints", H.async(function()
    local lock = aloop.Lock()
    assert.is_string(tostring(lock))
    lock:acquire()
    assert.is_string(tostring(lock))
    lock:release()
  end))
end)

------------------------------------------------------------------------------
describe("Semaphore", function()
  it("counts permits; the default is one", H.async(function()
    local one = aloop.Semaphore()
    assert.equal(1, one:value())
    assert.is_false(one:locked())
    one:acquire()
    assert.is_true(one:locked())
    one:release()

    local sem = aloop.Semaphore(3)
    assert.equal(3, sem:value())
    assert.equal(sem, sem:acquire())
    sem:acquire()
    assert.equal(1, sem:value())
    assert.is_false(sem:locked())
    sem:acquire()
    assert.equal(0, sem:value())
    assert.is_true(sem:locked())
    sem:release(); sem:release(); sem:release()
    assert.equal(3, sem:value())
  end))

  it("a plain Semaphore may be released above its start value", H.async(function()
    local sem = aloop.Semaphore(1)
    sem:release()
    assert.equal(2, sem:value())
    sem:acquire(); sem:acquire()
    assert.is_true(sem:locked())
  end))

  it("rejects a negative or non-integer value", function()
    assert.has_error(function() aloop.Semaphore(-1) end)
    assert.has_error(function() aloop.Semaphore(1.5) end)
    assert.has_error(function() aloop.Semaphore("x") end)
    assert.equal(0, aloop.Semaphore(0):value())
  end)

  it("guards with <close>, also on errors", H.async(function()
    local sem = aloop.Semaphore(2)
    do
      local _ <close> = sem:acquire()
      assert.equal(1, sem:value())
    end
    assert.equal(2, sem:value())
    assert.is_false(pcall(function()
      local _ <close> = sem:acquire()
      error("x")
    end))
    assert.equal(2, sem:value())
  end))

  it("lets at most n tasks in at once", H.async(function()
    local sem = aloop.Semaphore(3)
    local inside, max_inside, done = 0, 0, 0
    local tasks = {}
    for i = 1, 12 do
      tasks[i] = aloop.create_task(function()
        local _ <close> = sem:acquire()
        inside = inside + 1
        max_inside = math.max(max_inside, inside)
        aloop.sleep(0.002 * (i % 4))
        inside = inside - 1
        done = done + 1
      end)
    end
    for i = 1, #tasks do tasks[i]:await() end
    assert.equal(3, max_inside)
    assert.equal(12, done)
    assert.equal(3, sem:value())
  end))

  it("Semaphore(0) blocks until a release", H.async(function()
    local sem = aloop.Semaphore(0)
    local t = aloop.create_task(function() sem:acquire(); return "in" end)
    settle()
    assert.is_false(t:done())
    sem:release()
    assert.equal("in", t:await())
    assert.equal(0, sem:value())
  end))

  it("waiters acquire in arrival order, one release at a time", H.async(function()
    local sem = aloop.Semaphore(0)
    local log = {}
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = aloop.create_task(function() sem:acquire(); log[#log + 1] = i end)
    end
    settle()
    for k = 1, 5 do
      sem:release()
      settle()
      assert.equal(k, #log)
    end
    for i = 1, #tasks do tasks[i]:await() end
    assert.same({ 1, 2, 3, 4, 5 }, log)
    assert.equal(0, sem:value())
  end))

  it("several releases in one step wake the waiters in order", H.async(function()
    local sem = aloop.Semaphore(0)
    local log = {}
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = aloop.create_task(function() sem:acquire(); log[#log + 1] = i end)
    end
    settle()
    for _ = 1, 3 do sem:release() end
    settle()
    assert.same({ 1, 2, 3 }, log)
    sem:release(); sem:release()
    for i = 1, #tasks do tasks[i]:await() end
    assert.same({ 1, 2, 3, 4, 5 }, log)
  end))

  it("a newcomer does not barge past a woken waiter that has not run yet", H.async(function()
    local sem = aloop.Semaphore(1)
    local log = {}
    sem:acquire()
    local a = acquirer(sem, "a", log)
    settle()
    sem:release()
    assert.is_true(sem:locked())
    assert.equal(0, sem:value())
    do
      local _ <close> = sem:acquire()
      log[#log + 1] = "main"
    end
    a:await()
    assert.same({ "a", "main" }, log)
    assert.equal(1, sem:value())
  end))

  it("a cancelled waiter leaves the line", H.async(function()
    local sem = aloop.Semaphore(0)
    local log = {}
    local a = acquirer(sem, "a", log)
    local b = acquirer(sem, "b", log)
    settle()
    a:cancel()
    settle()
    sem:release()
    assert.is_true(ended_cancelled(a))
    assert.equal("b", b:await())
    assert.same({ "b" }, log)
    assert.equal(1, sem:value())
  end))

  it("cancelled between wake-up and resumption: the permit passes to the next waiter", H.async(function()
    local sem = aloop.Semaphore(0)
    local got = {}
    local function taker(name)
      return aloop.create_task(function()
        sem:acquire()
        got[#got + 1] = name
        aloop.sleep(0.005)
        sem:release()
      end)
    end
    local a, b, c = taker("a"), taker("b"), taker("c")
    settle()
    sem:release() -- to a
    a:cancel()    -- before a runs
    assert.is_true(ended_cancelled(a))
    b:await()
    c:await()
    assert.same({ "b", "c" }, got)
    assert.equal(1, sem:value())
  end))

  it("cancelled between wake-up and resumption with no one behind: the permit is kept",
    H.async(function()
      local sem = aloop.Semaphore(0)
      local holders = {}
      local a = aloop.create_task(function() sem:acquire(); holders[#holders + 1] = "a" end)
      local b = aloop.create_task(function() sem:acquire(); holders[#holders + 1] = "b" end)
      settle()
      sem:release() -- to a
      sem:release() -- to b
      a:cancel()    -- a's permit has no one to go to
      assert.is_true(ended_cancelled(a))
      b:await()
      assert.same({ "b" }, holders)
      assert.equal(1, sem:value())
      assert.is_false(sem:locked())
    end))

  it("wait_for times out an acquire without taking a permit", H.async(function()
    local sem = aloop.Semaphore(1)
    sem:acquire()
    local ok, err = pcall(aloop.wait_for, function() sem:acquire() end, 0.02)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.equal(0, sem:value())
    sem:release()
    assert.equal(1, sem:value())
    assert.is_false(sem:locked())
  end))

  it("prints", H.async(function()
    assert.is_string(tostring(aloop.Semaphore(2)))
  end))
end)

------------------------------------------------------------------------------
describe("BoundedSemaphore", function()
  it("releasing above its start value raises", H.async(function()
    local sem = aloop.BoundedSemaphore(2)
    assert.equal(2, sem:value())
    raises(sem.release, sem)
    assert.equal(2, sem:value())
    sem:acquire()
    sem:release()
    raises(sem.release, sem)
    assert.equal(2, sem:value())
  end))

  it("the error is a ValueError", H.async(function()
    local sem = aloop.BoundedSemaphore()
    local err = raises(sem.release, sem)
    assert.equal("ValueError", type(err) == "table" and err.kind or err)
  end))

  it("guards with <close> and counts like a Semaphore", H.async(function()
    local sem = aloop.BoundedSemaphore(2)
    do
      local _a <close> = sem:acquire()
      local _b <close> = sem:acquire()
      assert.is_true(sem:locked())
      assert.equal(0, sem:value())
    end
    assert.equal(2, sem:value())
    assert.is_false(sem:locked())
  end))

  it("rejects a negative or non-integer value", function()
    assert.has_error(function() aloop.BoundedSemaphore(-1) end)
    assert.has_error(function() aloop.BoundedSemaphore(0.5) end)
  end)

  it("waiters are FIFO and a cancelled woken waiter passes its permit on", H.async(function()
    local sem = aloop.BoundedSemaphore(1)
    local log = {}
    sem:acquire()
    local a = acquirer(sem, "a", log)
    local b = acquirer(sem, "b", log, 0.002)
    local c = acquirer(sem, "c", log, 0.002)
    settle()
    sem:release()
    a:cancel()
    assert.is_true(ended_cancelled(a))
    b:await(); c:await()
    assert.same({ "b", "c" }, log)
    assert.equal(1, sem:value())
    raises(sem.release, sem) -- no permit was counted twice
  end))

  it("wait_for times out an acquire", H.async(function()
    local sem = aloop.BoundedSemaphore(1)
    local _ <close> = sem:acquire()
    local ok, err = pcall(aloop.wait_for, function() sem:acquire() end, 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.equal(0, sem:value())
  end))

  it("prints", H.async(function()
    assert.is_string(tostring(aloop.BoundedSemaphore(2)))
  end))
end)

------------------------------------------------------------------------------
describe("Event", function()
  it("set, clear, is_set; wait on a set event returns true at once", H.async(function()
    local ev = aloop.Event()
    assert.is_false(ev:is_set())
    ev:set()
    assert.is_true(ev:is_set())
    assert.is_true(ev:wait())
    ev:set() -- again: no-op
    assert.is_true(ev:is_set())
    ev:clear()
    assert.is_false(ev:is_set())
  end))

  it("wait blocks until set, and set wakes every waiter", H.async(function()
    local ev = aloop.Event()
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = aloop.create_task(function() return ev:wait(), i end)
    end
    settle()
    for i = 1, 5 do assert.is_false(tasks[i]:done()) end
    ev:set()
    for i = 1, 5 do
      local r, idx = tasks[i]:await()
      assert.is_true(r)
      assert.equal(i, idx)
    end
  end))

  it("wakes its waiters in the order they came", H.async(function()
    local ev = aloop.Event()
    local log = {}
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = aloop.create_task(function() ev:wait(); log[#log + 1] = i end)
    end
    settle()
    ev:set()
    for i = 1, 5 do tasks[i]:await() end
    assert.same({ 1, 2, 3, 4, 5 }, log)
  end))

  it("a waiter woken by set returns true even if the event is cleared before it runs", H.async(function()
    local ev = aloop.Event()
    local t = aloop.create_task(function() return ev:wait() end)
    settle()
    ev:set()
    ev:clear()
    assert.is_true(aloop.wait_for(t, 0.5))
    assert.is_false(ev:is_set())
  end))

  it("wait after clear blocks again", H.async(function()
    local ev = aloop.Event()
    ev:set(); ev:clear()
    local t = aloop.create_task(function() return ev:wait() end)
    settle()
    assert.is_false(t:done())
    ev:set()
    assert.is_true(t:await())
  end))

  it("a cancelled waiter does not keep the others from waking", H.async(function()
    local ev = aloop.Event()
    local a = aloop.create_task(function() return ev:wait() end)
    local b = aloop.create_task(function() return ev:wait() end)
    settle()
    a:cancel()
    settle()
    ev:set()
    assert.is_true(ended_cancelled(a))
    assert.is_true(b:await())
  end))

  it("cancelled between wake-up and resumption: that waiter is cancelled, the others wake",
    H.async(function()
      local ev = aloop.Event()
      local a = aloop.create_task(function() return ev:wait() end)
      local b = aloop.create_task(function() return ev:wait() end)
      local c = aloop.create_task(function() return ev:wait() end)
      settle()
      ev:set()
      b:cancel()
      assert.is_true(a:await())
      assert.is_true(ended_cancelled(b))
      assert.is_true(c:await())
      assert.is_true(ev:is_set())
    end))

  it("cancel() then uncancel() before the waiter runs: wait does not report a set event",
    H.async(function()
      local ev = aloop.Event()
      local a = aloop.create_task(function()
        local ok, err = pcall(ev.wait, ev)
        if ok then return "returned " .. tostring(err) .. ", is_set " .. tostring(ev:is_set()) end
        return aloop.is_cancelled(err) and "cancelled" or tostring(err)
      end)
      settle()
      a:cancel()
      a:uncancel()
      assert.equal("cancelled", aloop.wait_for(a, 0.5))
    end))

  it("wait_for times out a wait; the event works afterwards", H.async(function()
    local ev = aloop.Event()
    local ok, err = pcall(aloop.wait_for, function() return ev:wait() end, 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    local t = aloop.create_task(function() return ev:wait() end)
    settle()
    ev:set()
    assert.is_true(t:await())
    assert.is_true(aloop.wait_for(function() return ev:wait() end, 0.5))
  end))

  it("prints", H.async(function()
    assert.is_string(tostring(aloop.Event()))
  end))
end)

------------------------------------------------------------------------------
describe("Condition", function()
  it("acquire/release/locked with its own lock, and a guard", H.async(function()
    local cond = aloop.Condition()
    assert.is_false(cond:locked())
    assert.equal(cond, cond:acquire())
    assert.is_true(cond:locked())
    cond:release()
    assert.is_false(cond:locked())
    do
      local _ <close> = cond:acquire()
      assert.is_true(cond:locked())
    end
    assert.is_false(cond:locked())
  end))

  it("shares a Lock it is given", H.async(function()
    local lock = aloop.Lock()
    local cond = aloop.Condition(lock)
    lock:acquire()
    assert.is_true(cond:locked())
    cond:release()
    assert.is_false(lock:locked())
    assert.has_error(function() aloop.Condition({}) end)
    assert.has_error(function() aloop.Condition(aloop.Semaphore()) end)
  end))

  it("wait and notify need the lock", H.async(function()
    local cond = aloop.Condition()
    raises(cond.wait, cond)
    raises(cond.notify, cond)
    raises(cond.notify_all, cond)
    raises(cond.release, cond)
  end))

  it("wait releases the lock while waiting and holds it again on return", H.async(function()
    local cond = aloop.Condition()
    local seen = {}
    local t = aloop.create_task(function()
      local _ <close> = cond:acquire()
      local r = cond:wait()
      seen.r = r
      seen.locked = cond:locked()
      return "woken"
    end)
    settle()
    assert.is_false(cond:locked(), "the waiter released the lock")
    do
      local _ <close> = cond:acquire()
      cond:notify()
      settle()
      assert.is_false(t:done(), "the waiter needs the lock back first")
    end
    assert.equal("woken", t:await())
    assert.is_true(seen.r)
    assert.is_true(seen.locked)
    assert.is_false(cond:locked())
  end))

  local function waiters(cond, n, log)
    local tasks = {}
    for i = 1, n do
      tasks[i] = aloop.create_task(function()
        local _ <close> = cond:acquire()
        cond:wait()
        log[#log + 1] = i
        return i
      end)
    end
    settle()
    return tasks
  end

  it("notify(n) wakes n waiters in the order they came", H.async(function()
    local cond = aloop.Condition()
    local log = {}
    local tasks = waiters(cond, 5, log)
    do
      local _ <close> = cond:acquire()
      cond:notify()
    end
    settle()
    assert.same({ 1 }, log)
    do
      local _ <close> = cond:acquire()
      cond:notify(2)
    end
    settle()
    assert.same({ 1, 2, 3 }, log)
    do
      local _ <close> = cond:acquire()
      cond:notify_all()
    end
    for i = 1, 5 do assert.equal(i, tasks[i]:await()) end
    assert.same({ 1, 2, 3, 4, 5 }, log)
    assert.is_false(cond:locked())
  end))

  it("notify_all wakes every waiter, in order", H.async(function()
    local cond = aloop.Condition()
    local log = {}
    local tasks = waiters(cond, 4, log)
    do
      local _ <close> = cond:acquire()
      cond:notify_all()
    end
    for i = 1, 4 do tasks[i]:await() end
    assert.same({ 1, 2, 3, 4 }, log)
  end))

  it("a notification with no waiter is not kept for a later one", H.async(function()
    local cond = aloop.Condition()
    do
      local _ <close> = cond:acquire()
      cond:notify(3)
      cond:notify_all()
    end
    local log = {}
    local tasks = waiters(cond, 1, log)
    settle()
    assert.same({}, log)
    do
      local _ <close> = cond:acquire()
      cond:notify()
    end
    tasks[1]:await()
    assert.same({ 1 }, log)
  end))

  it("notify(0) wakes no one and notify rejects bad counts", H.async(function()
    local cond = aloop.Condition()
    local log = {}
    local tasks = waiters(cond, 1, log)
    do
      local _ <close> = cond:acquire()
      cond:notify(0)
      assert.has_error(function() cond:notify(-1) end)
      assert.has_error(function() cond:notify(1.5) end)
    end
    settle()
    assert.same({}, log)
    do
      local _ <close> = cond:acquire()
      cond:notify()
    end
    tasks[1]:await()
  end))

  it("wait_for returns the predicate's value, at once when it already holds", H.async(function()
    local cond = aloop.Condition()
    local _ <close> = cond:acquire()
    local calls = 0
    assert.equal("yes", cond:wait_for(function() calls = calls + 1; return "yes" end))
    assert.equal(1, calls)
    assert.is_true(cond:locked())
  end))

  it("wait_for waits until the predicate holds, re-checking on each notify", H.async(function()
    local cond = aloop.Condition()
    local value, checks = 0, 0
    local t = aloop.create_task(function()
      local _ <close> = cond:acquire()
      local r = cond:wait_for(function() checks = checks + 1; return value >= 3 and value end)
      assert(cond:locked())
      return r
    end)
    settle()
    for _ = 1, 3 do
      local _ <close> = cond:acquire()
      value = value + 1
      cond:notify()
      aloop.sleep(0)
    end
    assert.equal(3, t:await())
    assert.equal(4, checks)
  end))

  it("producer/consumer", H.async(function()
    local cond = aloop.Condition()
    local items, got = {}, {}
    local consumers = {}
    for c = 1, 3 do
      consumers[c] = aloop.create_task(function()
        for _ = 1, 4 do
          local _ <close> = cond:acquire()
          cond:wait_for(function() return #items > 0 end)
          got[#got + 1] = table.remove(items, 1)
        end
      end)
    end
    for i = 1, 12 do
      local _ <close> = cond:acquire()
      items[#items + 1] = i
      cond:notify()
      if i % 4 == 0 then aloop.sleep(0.001) end
    end
    for c = 1, 3 do consumers[c]:await() end
    table.sort(got)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, got)
    assert.is_false(cond:locked())
  end))

  it("a cancelled waiter gets the lock back before the cancellation reaches it", H.async(function()
    local cond = aloop.Condition()
    local held_when_cancelled
    local t = aloop.create_task(function()
      local _ <close> = cond:acquire()
      local ok, err = pcall(cond.wait, cond)
      held_when_cancelled = cond:locked()
      if not ok then error(err, 0) end
    end)
    settle()
    cond:acquire() -- main holds the lock
    t:cancel()
    settle()
    assert.is_false(t:done(), "the cancelled waiter waits for the lock")
    cond:release()
    assert.is_true(ended_cancelled(t))
    assert.is_true(held_when_cancelled)
    assert.is_false(cond:locked())
  end))

  it("a waiter cancelled before the notify does not swallow it", H.async(function()
    local cond = aloop.Condition()
    local log = {}
    local tasks = waiters(cond, 2, log)
    local _ <close> = cond:acquire()
    tasks[1]:cancel()
    cond:notify(1)
    cond:release()
    assert.is_true(ended_cancelled(tasks[1]))
    assert.equal(2, aloop.wait_for(tasks[2], 0.5))
    assert.same({ 2 }, log)
    cond:acquire()
  end))

  it("cancelled between notify and resumption: the notification passes to the next waiter",
    H.async(function()
      local cond = aloop.Condition()
      local log = {}
      local tasks = waiters(cond, 3, log)
      do
        local _ <close> = cond:acquire()
        cond:notify(1) -- to waiter 1 ...
        tasks[1]:cancel() -- ... cancelled before it runs
      end
      assert.is_true(ended_cancelled(tasks[1]))
      assert.equal(2, aloop.wait_for(tasks[2], 0.5))
      settle()
      assert.is_false(tasks[3]:done(), "only one notification was given")
      assert.same({ 2 }, log)
      do
        local _ <close> = cond:acquire()
        cond:notify()
      end
      assert.equal(3, tasks[3]:await())
      assert.is_false(cond:locked())
    end))

  it("cancelled between notify and resumption while holding nothing: the lock is not leaked",
    H.async(function()
      local cond = aloop.Condition()
      local log = {}
      local tasks = waiters(cond, 1, log)
      cond:acquire()
      cond:notify()
      tasks[1]:cancel()
      cond:release()
      assert.is_true(ended_cancelled(tasks[1]))
      assert.is_false(cond:locked())
      assert.same({}, log)
    end))

  it("wait_for (the timeout) on a condition wait: TimeoutError, lock released", H.async(function()
    local cond = aloop.Condition()
    local ok, err = pcall(aloop.wait_for, function()
      local _ <close> = cond:acquire()
      cond:wait_for(function() return false end)
    end, 0.02)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.is_false(cond:locked())
    -- the condition still works
    local log = {}
    local tasks = waiters(cond, 1, log)
    do
      local _ <close> = cond:acquire()
      cond:notify()
    end
    tasks[1]:await()
    assert.same({ 1 }, log)
  end))

  it("prints", H.async(function()
    assert.is_string(tostring(aloop.Condition()))
  end))
end)

------------------------------------------------------------------------------
describe("Barrier", function()
  it("lets the parties through together, each with its own index", H.async(function()
    local b = aloop.Barrier(3)
    assert.equal(3, b:parties())
    assert.equal(0, b:n_waiting())
    assert.is_false(b:broken())
    local after = {}
    local tasks = {}
    for i = 1, 3 do
      tasks[i] = aloop.create_task(function()
        local idx = b:wait()
        after[#after + 1] = i
        return idx
      end)
      settle()
      if i < 3 then
        assert.equal(i, b:n_waiting())
        assert.same({}, after)
      end
    end
    local idx = {}
    for i = 1, 3 do idx[#idx + 1] = tasks[i]:await() end
    assert.same({ 0, 1, 2 }, idx)
    assert.equal(3, #after)
    assert.equal(0, b:n_waiting())
    assert.is_false(b:broken())
  end))

  it("Barrier(1) passes at once; Barrier(0) is refused", H.async(function()
    local b = aloop.Barrier(1)
    assert.equal(0, b:wait())
    assert.equal(0, b:wait())
    assert.has_error(function() aloop.Barrier(0) end)
    assert.has_error(function() aloop.Barrier() end)
  end))

  it("can be used for several rounds", H.async(function()
    local b = aloop.Barrier(4)
    local rounds = {}
    local tasks = {}
    for i = 1, 4 do
      tasks[i] = aloop.create_task(function()
        for r = 1, 5 do
          aloop.sleep(0.001 * ((i + r) % 3))
          rounds[r] = (rounds[r] or 0) + 1
          b:wait()
          -- nobody gets past round r before all four reached it
          assert(rounds[r] == 4, "passed the barrier early")
        end
      end)
    end
    for i = 1, 4 do tasks[i]:await() end
    assert.same({ 4, 4, 4, 4, 4 }, rounds)
    assert.equal(0, b:n_waiting())
  end))

  it("abort breaks it for the waiters and later callers; reset mends it", H.async(function()
    local b = aloop.Barrier(3)
    local t1 = aloop.create_task(function() return b:wait() end)
    local t2 = aloop.create_task(function() return b:wait() end)
    settle()
    b:abort()
    assert.is_true(b:broken())
    for _, t in ipairs({ t1, t2 }) do
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.is_true(aloop.is_broken_barrier(err))
    end
    local err = raises(b.wait, b)
    assert.is_true(aloop.is_broken_barrier(err))
    b:reset()
    assert.is_false(b:broken())
    local tasks = {}
    for i = 1, 3 do tasks[i] = aloop.create_task(function() return b:wait() end) end
    for i = 1, 3 do tasks[i]:await() end
  end))

  it("reset while parties wait breaks their wait, not the barrier", H.async(function()
    local b = aloop.Barrier(3)
    local t1 = aloop.create_task(function() return b:wait() end)
    local t2 = aloop.create_task(function() return b:wait() end)
    settle()
    b:reset()
    for _, t in ipairs({ t1, t2 }) do
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.is_true(aloop.is_broken_barrier(err))
    end
    assert.is_false(b:broken())
    assert.equal(0, b:n_waiting())
    local tasks = {}
    for i = 1, 3 do tasks[i] = aloop.create_task(function() return b:wait() end) end
    for i = 1, 3 do tasks[i]:await() end
  end))

  it("a cancelled party leaves without breaking the barrier", H.async(function()
    local b = aloop.Barrier(2)
    local a = aloop.create_task(function() return b:wait() end)
    settle()
    assert.equal(1, b:n_waiting())
    a:cancel()
    assert.is_true(ended_cancelled(a))
    assert.equal(0, b:n_waiting())
    assert.is_false(b:broken())
    local x = aloop.create_task(function() return b:wait() end)
    local y = aloop.create_task(function() return b:wait() end)
    local ix, iy = x:await(), y:await()
    assert.same({ 0, 1 }, { math.min(ix, iy), math.max(ix, iy) })
  end))

  it("wait_for times out a wait; the barrier stays usable", H.async(function()
    local b = aloop.Barrier(2)
    local ok, err = pcall(aloop.wait_for, function() return b:wait() end, 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.equal(0, b:n_waiting())
    assert.is_false(b:broken())
    local x = aloop.create_task(function() return b:wait() end)
    assert.equal(1, aloop.wait_for(function() return b:wait() end, 0.5))
    assert.equal(0, x:await())
  end))

  it("prints", H.async(function()
    assert.is_string(tostring(aloop.Barrier(2)))
  end))
end)
