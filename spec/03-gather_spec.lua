-- spec/03-gather_spec.lua: aloop.gather, as asyncio.gather (CPython
-- 3.11/3.12) behaves: forms, results in order, errors, return_exceptions,
-- cancellation, and errors it reports counting as retrieved.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/03-gather_spec.lua
local aloop = require "aloop"
local after, fail_after = H.after, H.fail_after

-- Run fn as a nested aloop.run; returns what the loop reported (after a
-- full GC).
local function reports_of(fn)
  return H.reports_of(aloop.run, fn)
end

describe("gather", function()
  it("takes its children as arguments", H.async(function()
    local r = aloop.gather(after(0.01, "a"), after(0, "b"), after(0.005, "c"))
    assert.same({ "a", "b", "c", n = 3 }, r)
  end))

  it("takes its children as one array", H.async(function()
    local r = aloop.gather({ after(0.01, 1), after(0, 2), after(0.005, 3) })
    assert.same({ 1, 2, 3, n = 3 }, r)
  end))

  it("array form with options", H.async(function()
    local r = aloop.gather({ after(0, 1), fail_after(0, "e") }, { return_exceptions = true })
    assert.same({ 1, "e", n = 2 }, r)
  end))

  it("keeps results in argument order, not completion order", H.async(function()
    local order = {}
    local function child(d, v)
      return function() aloop.sleep(d); order[#order + 1] = v; return v end
    end
    local r = aloop.gather(child(0.03, "x"), child(0.01, "y"), child(0.02, "z"))
    assert.same({ "y", "z", "x" }, order)
    assert.same({ "x", "y", "z", n = 3 }, r)
  end))

  it("gives the first result of each child; n counts nil results", H.async(function()
    local r = aloop.gather(function() return nil end,
      function() return 1, 2, 3 end,
      function() end)
    assert.equal(3, r.n)
    assert.is_nil(r[1])
    assert.equal(1, r[2])
    assert.is_nil(r[3])
  end))

  it("with no children returns {n = 0} at once", H.async(function()
    assert.same({ n = 0 }, aloop.gather())
    assert.same({ n = 0 }, aloop.gather({}))
    assert.same({ n = 0 }, aloop.gather({}, { return_exceptions = true }))
  end))

  it("mixes Tasks, Futures and functions", H.async(function()
    local t = aloop.create_task(after(0.01, "task"))
    local fut = aloop.Future()
    aloop.get_running_loop():call_later(0.005, function() fut:set_result("future") end)
    local done = aloop.Future()
    done:set_result("done future")
    local r = aloop.gather(t, fut, after(0, "function"), done)
    assert.same({ "task", "future", "function", "done future", n = 4 }, r)
  end))

  it("accepts tasks that are already done", H.async(function()
    local t = aloop.create_task(function() return 5 end)
    t:await()
    assert.same({ 5, n = 1 }, aloop.gather(t))
  end))

  it("runs the same function twice when given twice", H.async(function()
    local n = 0
    local function f() n = n + 1; aloop.sleep(0); return n end
    local r = aloop.gather(f, f)
    assert.equal(2, n)
    assert.equal(2, r.n)
  end))

  it("given the same task twice, gives its result twice", H.async(function()
    local t = aloop.create_task(after(0.005, "r"))
    assert.same({ "r", "r", n = 2 }, aloop.gather(t, t))
  end))

  it("starts function children in argument order, after what is ready", H.async(function()
    local order = {}
    local t = aloop.create_task(function() order[#order + 1] = "earlier task" end)
    local function f(i) return function() order[#order + 1] = i end end
    aloop.gather(f(1), f(2), f(3))
    t:await()
    assert.same({ "earlier task", 1, 2, 3 }, order)
  end))

  it("runs its children concurrently", H.async(function()
    local asleep, most = 0, 0
    local function child()
      asleep = asleep + 1
      most = math.max(most, asleep)
      aloop.sleep(0.05)
      asleep = asleep - 1
    end
    local t0 = aloop.time()
    aloop.gather(child, child, child, child)
    local dt = aloop.time() - t0
    assert.equal(4, most) -- all four asleep at once
    assert.is_true(dt >= 0.05 and dt < 1, "took " .. dt)
  end))

  it("of 10 000 tasks", H.async(function()
    local list = {}
    for i = 1, 10000 do
      list[i] = function() aloop.sleep(0); return i end
    end
    local r = aloop.gather(list)
    assert.equal(10000, r.n)
    local sum = 0
    for i = 1, r.n do
      assert(r[i] == i)
      sum = sum + r[i]
    end
    assert.equal(10000 * 10001 / 2, sum)
  end, 20))

  it("of 10 000 created tasks, variadic as far as the stack allows", H.async(function()
    local ts = {}
    for i = 1, 10000 do ts[i] = aloop.create_task(function() return i * 2 end) end
    local r = aloop.gather(table.unpack(ts, 1, 200))
    assert.equal(200, r.n)
    assert.equal(400, r[200])
    r = aloop.gather(ts)
    assert.equal(20000, r[10000])
  end, 20))
end)

describe("gather errors", function()
  it("raises the first error, unchanged", H.async(function()
    local e = { code = 7 }
    local ok, err = pcall(aloop.gather, after(0.01, 1), fail_after(0.005, e), fail_after(0.02, "later"))
    assert.is_false(ok)
    assert.is_true(rawequal(e, err))
  end))

  it("a string error arrives as that string", H.async(function()
    local ok, err = pcall(aloop.gather, function() error("Oops!", 0) end)
    assert.is_false(ok)
    assert.equal("Oops!", err)
  end))

  it("raises at once, while the other children keep running and finish later", H.async(function()
    local finished = false
    local slow = aloop.create_task(function()
      aloop.sleep(0.03)
      finished = true
      return "slow"
    end)
    local t0 = aloop.time()
    local ok, err = pcall(aloop.gather, slow, fail_after(0.005, "boom"))
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.is_true(aloop.time() - t0 >= 0.005)
    assert.is_false(slow:done()) -- raised before the slow child ended
    assert.is_false(slow:cancelled())
    assert.equal("slow", slow:await())
    assert.is_true(finished)
  end))

  it("function children also keep running after the error", H.async(function()
    local finished = false
    local ok = pcall(aloop.gather,
      function() aloop.sleep(0.02); finished = true end,
      fail_after(0, "boom"))
    assert.is_false(ok)
    assert.is_false(finished)
    aloop.sleep(0.04)
    assert.is_true(finished)
  end))

  it("a cancelled child makes it raise CancelledError; the others run on", H.async(function()
    local victim = aloop.create_task(aloop.sleep, 1)
    local other = aloop.create_task(after(0.02, "other"))
    aloop.get_running_loop():call_later(0.005, function() victim:cancel() end)
    local ok, err = pcall(aloop.gather, victim, other)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.is_false(other:done())
    assert.equal("other", other:await())
  end))

  it("return_exceptions puts errors in the array", H.async(function()
    local e = {}
    local r = aloop.gather(after(0.01, 1), fail_after(0, e), fail_after(0.005, "s"),
      { return_exceptions = true })
    assert.equal(3, r.n)
    assert.equal(1, r[1])
    assert.is_true(rawequal(e, r[2]))
    assert.equal("s", r[3])
  end))

  it("return_exceptions puts CancelledError values for cancelled children", H.async(function()
    local victim = aloop.create_task(aloop.sleep, 1)
    aloop.get_running_loop():call_later(0.005, function() victim:cancel("gone") end)
    local r = aloop.gather(victim, after(0.01, "ok"), { return_exceptions = true })
    assert.equal(2, r.n)
    assert.is_true(aloop.is_cancelled(r[1]))
    assert.equal("gone", r[1].message)
    assert.equal("ok", r[2])
  end))

  it("return_exceptions waits for every child", H.async(function()
    local t0 = aloop.time()
    local r = aloop.gather(fail_after(0, "early"), after(0.03, "late"), { return_exceptions = true })
    assert.is_true(aloop.time() - t0 >= 0.03)
    assert.same({ "early", "late", n = 2 }, r)
  end))

  it("return_exceptions = false is the default", H.async(function()
    local ok, err = pcall(aloop.gather, fail_after(0, "x"), { return_exceptions = false })
    assert.is_false(ok)
    assert.equal("x", err)
  end))
end)

describe("cancelling a gather", function()
  it("cancels every child still running", H.async(function()
    local states = {}
    local function child(i)
      return function()
        local ok, err = pcall(aloop.sleep, 1)
        states[i] = ok and "finished" or (aloop.is_cancelled(err) and "cancelled" or "?")
        if not ok then error(err, 0) end
      end
    end
    local quick = aloop.create_task(after(0, "quick"))
    local parent = aloop.create_task(function()
      return aloop.gather(child(1), quick, child(2))
    end)
    aloop.sleep(0.01)
    assert.is_true(quick:done())
    parent:cancel()
    local ok, err = pcall(parent.await, parent)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.same({ "cancelled", "cancelled" }, states)
    assert.is_false(quick:cancelled())
  end))

  it("raises CancelledError even if every child ignored it", H.async(function()
    local function stubborn()
      local ok = pcall(aloop.sleep, 1)
      return ok and "finished" or "ignored"
    end
    local c1, c2 = aloop.create_task(stubborn), aloop.create_task(stubborn)
    local parent = aloop.create_task(function() return aloop.gather(c1, c2) end)
    aloop.sleep(0)
    parent:cancel()
    local ok, err = pcall(parent.await, parent)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
    assert.equal("ignored", c1:result())
    assert.equal("ignored", c2:result())
  end))

  it("with return_exceptions the parent is still cancelled", H.async(function()
    local parent = aloop.create_task(function()
      return aloop.gather(after(1), after(1), { return_exceptions = true })
    end)
    aloop.sleep(0)
    parent:cancel()
    local ok, err = pcall(parent.await, parent)
    assert.is_false(ok)
    assert.is_true(aloop.is_cancelled(err))
  end))
end)

describe("errors gather reports", function()
  it("count as retrieved: the raised one is not reported", H.async(function()
    local reports = reports_of(function()
      pcall(aloop.gather, fail_after(0, "raised"), after(0.005))
    end)
    assert.same({}, reports)
  end))

  it("count as retrieved: one failing after the gather already raised", H.async(function()
    local reports = reports_of(function()
      local ok = pcall(aloop.gather, fail_after(0, "first"), fail_after(0.01, "second"))
      assert(not ok)
      aloop.sleep(0.03) -- the second fails now, after the gather is done
    end)
    local msgs = {}
    for i, r in ipairs(reports) do msgs[i] = tostring(r.exception) end
    assert.same({}, msgs)
  end))

  it("count as retrieved with return_exceptions", H.async(function()
    local reports = reports_of(function()
      local r = aloop.gather(fail_after(0, "a"), fail_after(0.005, "b"), { return_exceptions = true })
      assert(r[1] == "a" and r[2] == "b")
    end)
    assert.same({}, reports)
  end))

  it("a task failing outside any gather is still reported (control)", H.async(function()
    local reports = reports_of(function()
      aloop.create_task(function() error("lost", 0) end)
      aloop.sleep(0.005)
    end)
    assert.equal(1, #reports)
    assert.equal("lost", reports[1].exception)
  end))
end)

describe("gather misuse", function()
  it("rejects what is not a Task, Future or function", H.async(function()
    local ok, err = pcall(function() aloop.gather(5) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'gather' %(Task, Future or function expected, got number%)", err)
    ok, err = pcall(function() aloop.gather(function() end, "x") end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'gather'", err)
    ok, err = pcall(function() aloop.gather({ function() end, 5 }) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'gather'", err)
    assert.matches("item 2", err)
  end))

  it("raises outside a task", function()
    local ok, err = pcall(aloop.gather, function() end)
    assert.is_false(ok)
    assert.matches("aloop.gather called outside a task", err)
  end)
end)
