-- spec/11-taskgroup_spec.lua: aloop.TaskGroup, as asyncio.TaskGroup (CPython
-- 3.12/3.13): `local tg <close> = aloop.TaskGroup()` waits for the children
-- on leaving the block; the first child failure cancels the other children
-- and the body, and the block raises it (several failures: a TaskGroupError
-- listing them); cancelling the owner cancels the children; no child
-- outlives the block; children are cancelled in creation order.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/11-taskgroup_spec.lua
local aloop = require "aloop"
local settle, ended_cancelled = H.settle, H.ended_cancelled

-- A child that sleeps d seconds and returns v.
local function after(d, v)
  return function() aloop.sleep(d); return v end
end

-- A child that sleeps d seconds and raises e.
local function fail_after(d, e)
  return function() aloop.sleep(d); error(e, 0) end
end

describe("TaskGroup", function()
  it("waits for every child when the block is left", H.async(function()
    local log = {}
    local t1, t2, t3
    do
      local tg <close> = aloop.TaskGroup()
      t1 = tg:create_task(function() aloop.sleep(0.02); log[#log + 1] = "slow"; return 1 end)
      t2 = tg:create_task(function() aloop.sleep(0.005); log[#log + 1] = "fast"; return 2 end)
      t3 = tg:create_task(function() log[#log + 1] = "now"; return 3 end)
      assert.same({}, log, "children start when the body awaits or leaves")
    end
    assert.same({ "now", "fast", "slow" }, log)
    assert.is_true(t1:done() and t2:done() and t3:done())
    assert.equal(1, t1:result())
    assert.equal(2, t2:result())
    assert.equal(3, t3:result())
  end))

  it("passes arguments to the children and returns their tasks", H.async(function()
    local t
    do
      local tg <close> = aloop.TaskGroup()
      t = tg:create_task(function(a, b, c) return a + b, c end, 1, 2, "x")
    end
    local s, c = t:await()
    assert.equal(3, s)
    assert.equal("x", c)
  end))

  it("an empty group, and the body may await in the block", H.async(function()
    do
      local _ <close> = aloop.TaskGroup()
    end
    local got
    do
      local tg <close> = aloop.TaskGroup()
      local t = tg:create_task(after(0.005, "v"))
      got = t:await()
      tg:create_task(after(0.001, "w")) -- more children after awaiting
    end
    assert.equal("v", got)
  end))

  it("children may add children to the group", H.async(function()
    local log = {}
    do
      local tg <close> = aloop.TaskGroup()
      tg:create_task(function()
        aloop.sleep(0.005)
        tg:create_task(function() aloop.sleep(0.005); log[#log + 1] = "grandchild" end)
        log[#log + 1] = "child"
      end)
    end
    assert.same({ "child", "grandchild" }, log)
  end))

  it("the first child failure cancels the others and the body; the block raises it",
    H.async(function()
      local log = {}
      local err = { "a table error" }
      local sib
      local t0 = aloop.time()
      local ok, e = pcall(function()
        local tg <close> = aloop.TaskGroup()
        sib = tg:create_task(function() aloop.sleep(1); log[#log + 1] = "sibling ran on" end)
        tg:create_task(fail_after(0.01, err))
        aloop.sleep(1)
        log[#log + 1] = "body ran on"
      end)
      assert.is_false(ok)
      assert.equal(err, e, "the child's error value, unchanged")
      assert.is_true(aloop.time() - t0 < 0.5)
      assert.same({}, log)
      assert.is_true(sib:cancelled())
    end))

  it("a failure with the body already leaving still cancels the others", H.async(function()
    local sib
    local t0 = aloop.time()
    local ok, e = pcall(function()
      local tg <close> = aloop.TaskGroup()
      sib = tg:create_task(after(1, "late"))
      tg:create_task(fail_after(0.01, "boom"))
    end)
    assert.is_false(ok)
    assert.equal("boom", e)
    assert.is_true(aloop.time() - t0 < 0.5)
    assert.is_true(sib:cancelled())
  end))

  it("a body blocked on a lock or a queue is cancelled by a child failure, leaking nothing",
    H.async(function()
      local lock, q = aloop.Lock(), aloop.Queue()
      lock:acquire()
      for _, block in ipairs({
        function() local _ <close> = lock:acquire() end,
        function() return q:get() end,
      }) do
        local ok, e = pcall(function()
          local tg <close> = aloop.TaskGroup()
          tg:create_task(fail_after(0.005, "child failed"))
          block()
        end)
        assert.is_false(ok)
        assert.equal("child failed", e)
      end
      assert.is_true(lock:locked()) -- still main's, and only main's
      lock:release()
      assert.is_false(lock:locked())
      q:put_nowait("x")
      assert.equal("x", aloop.wait_for(function() return q:get() end, 0.5))
      assert.equal(0, aloop.current_task():cancelling())
    end))

  it("a failure caught around the block leaves the owner free to go on", H.async(function()
    local me = aloop.current_task()
    local ok, e = pcall(function()
      local tg <close> = aloop.TaskGroup()
      tg:create_task(fail_after(0.005, "x"))
      aloop.sleep(1)
    end)
    assert.is_false(ok)
    assert.equal("x", e)
    assert.equal(0, me:cancelling())
    aloop.sleep(0.005) -- not cancelled
    local ok2, e2 = pcall(function()
      local tg <close> = aloop.TaskGroup()
      tg:create_task(fail_after(0, "y"))
    end)
    assert.is_false(ok2)
    assert.equal("y", e2)
    assert.equal(0, me:cancelling())
    aloop.sleep(0.001)
  end))

  it("a failure while the body is not awaiting: the body's next await is cancelled",
    H.async(function()
      -- as asyncio: the child fails during the first sleep(0), its done
      -- callback runs after the body has resumed, so the second is cancelled
      local reached = {}
      local ok, e = pcall(function()
        local tg <close> = aloop.TaskGroup()
        tg:create_task(function() error("early", 0) end)
        aloop.sleep(0)
        reached[#reached + 1] = "after sleep(0)"
        aloop.sleep(0)
        reached[#reached + 1] = "after the 2nd sleep(0)" -- not reached
      end)
      assert.is_false(ok)
      assert.equal("early", e)
      assert.same({ "after sleep(0)" }, reached)
      assert.equal(0, aloop.current_task():cancelling())
    end))

  it("cancels the other children in creation order", H.async(function()
    local order = {}
    local n = 20
    local ok, e = pcall(function()
      local tg <close> = aloop.TaskGroup()
      for i = 1, n do
        tg:create_task(function()
          local ok2 = pcall(aloop.sleep, 1 + ((i * 7) % n) / 100)
          if not ok2 then order[#order + 1] = i end
          error(aloop.error("CancelledError"), 0)
        end)
      end
      tg:create_task(fail_after(0.005, "trigger"))
    end)
    assert.is_false(ok)
    assert.equal("trigger", e)
    local expected = {}
    for i = 1, n do expected[i] = i end
    assert.same(expected, order)
  end))

  it("several failures: a TaskGroupError listing them", H.async(function()
    local ok, e = pcall(function()
      local tg <close> = aloop.TaskGroup()
      tg:create_task(fail_after(0.01, "first"))
      tg:create_task(function()
        local ok2 = pcall(aloop.sleep, 1)
        assert(not ok2)
        error("second", 0) -- fails while being cancelled
      end)
    end)
    assert.is_false(ok)
    assert.is_true(aloop.is_task_group_error(e))
    assert.equal("TaskGroupError", e.kind)
    assert.same({ "first", "second", n = 2 }, e.errors)
    assert.is_string(tostring(e))
    assert.is_false(aloop.is_task_group_error("first"))
  end))

  it("failures in the same step are all collected", H.async(function()
    local ok, e = pcall(function()
      local tg <close> = aloop.TaskGroup()
      local f = aloop.Future()
      for i = 1, 3 do
        tg:create_task(function() f:await(); error("e" .. i, 0) end)
      end
      aloop.sleep(0)
      f:set_result(true) -- all three are woken at once
    end)
    assert.is_false(ok)
    assert.is_true(aloop.is_task_group_error(e))
    assert.same({ "e1", "e2", "e3", n = 3 }, e.errors)
  end))

  it("an error in the body cancels the children and is raised", H.async(function()
    local child
    local ok, e = pcall(function()
      local tg <close> = aloop.TaskGroup()
      child = tg:create_task(after(1, "never"))
      aloop.sleep(0.001)
      error("body failed", 0)
    end)
    assert.is_false(ok)
    assert.equal("body failed", e)
    assert.is_true(child:cancelled())
  end))

  it("an error in the body and a child failing while cancelled: both, the body's last",
    H.async(function()
      local ok, e = pcall(function()
        local tg <close> = aloop.TaskGroup()
        tg:create_task(function()
          pcall(aloop.sleep, 1)
          error("child", 0)
        end)
        aloop.sleep(0.001)
        error("body", 0)
      end)
      assert.is_false(ok)
      assert.is_true(aloop.is_task_group_error(e))
      assert.same({ "child", "body", n = 2 }, e.errors)
    end))

  it("a child cancelled from outside is not a failure", H.async(function()
    local a, b
    do
      local tg <close> = aloop.TaskGroup()
      a = tg:create_task(after(1, "a"))
      b = tg:create_task(after(0.01, "b"))
      aloop.sleep(0)
      a:cancel()
    end
    assert.is_true(a:cancelled())
    assert.equal("b", b:result())
  end))

  it("cancelling the owner in the body cancels the children; the owner ends cancelled",
    H.async(function()
      local children = {}
      local cleanup = {}
      local owner = aloop.create_task(function()
        local tg <close> = aloop.TaskGroup()
        for i = 1, 3 do
          children[i] = tg:create_task(function()
            local _ <close> = setmetatable({}, { __close = function()
              aloop.sleep(0.005) -- cleanup that awaits
              cleanup[#cleanup + 1] = i
            end })
            aloop.sleep(1)
          end)
        end
        aloop.sleep(1)
      end)
      settle()
      owner:cancel()
      assert.is_true(ended_cancelled(owner))
      for i = 1, 3 do assert.is_true(children[i]:cancelled()) end
      table.sort(cleanup)
      assert.same({ 1, 2, 3 }, cleanup, "the owner waited for the children's cleanup")
    end))

  it("cancelling the owner while it waits at the end of the block cancels the children",
    H.async(function()
      local child
      local owner = aloop.create_task(function()
        local tg <close> = aloop.TaskGroup()
        child = tg:create_task(after(1, "x"))
      end)
      settle() -- the owner is now waiting for its child
      assert.is_false(owner:done())
      owner:cancel()
      assert.is_true(ended_cancelled(owner))
      assert.is_true(child:cancelled())
    end))

  it("the owner's cancellation is kept when a child fails too", H.async(function()
    -- the child error has priority over the cancellation in asyncio
    local owner = aloop.create_task(function()
      local tg <close> = aloop.TaskGroup()
      tg:create_task(function()
        pcall(aloop.sleep, 1)
        error("cleanup failed", 0)
      end)
      aloop.sleep(1)
    end)
    settle()
    owner:cancel()
    local ok, e = pcall(owner.await, owner)
    assert.is_false(ok)
    assert.equal("cleanup failed", e)
  end))

  it("wait_for around the block: TimeoutError, children cancelled", H.async(function()
    local children = {}
    local t0 = aloop.time()
    local ok, e = pcall(aloop.wait_for, function()
      local tg <close> = aloop.TaskGroup()
      for i = 1, 3 do children[i] = tg:create_task(after(1, i)) end
    end, 0.02)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(e))
    assert.is_true(aloop.time() - t0 < 0.5)
    for i = 1, 3 do assert.is_true(children[i]:cancelled()) end
  end))

  it("a timeout scope inside the owner: TimeoutError, children cancelled", H.async(function()
    local child
    local ok, e = pcall(function()
      local _ <close> = aloop.timeout(0.02)
      local tg <close> = aloop.TaskGroup()
      child = tg:create_task(after(1, "x"))
      aloop.sleep(1)
    end)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(e))
    assert.is_true(child:cancelled())
    assert.equal(0, aloop.current_task():cancelling())
  end))

  it("no child outlives the block, even one slow to finish after its cancel", H.async(function()
    local finished = false
    local child
    local ok = pcall(function()
      local tg <close> = aloop.TaskGroup()
      child = tg:create_task(function()
        local ok2 = pcall(aloop.sleep, 1)
        assert(not ok2)
        aloop.sleep(0.02) -- finishing touches after being cancelled
        finished = true
      end)
      tg:create_task(fail_after(0.001, "x"))
    end)
    assert.is_false(ok)
    assert.is_true(finished)
    assert.is_true(child:done())
  end))

  it("create_task after the block has ended raises", H.async(function()
    local tg
    do
      local g <close> = aloop.TaskGroup()
      tg = g
    end
    assert.has_error(function() tg:create_task(function() end) end)
  end))

  it("nested groups: an inner failure fails the outer group", H.async(function()
    local outer_sib
    local ok, e = pcall(function()
      local outer <close> = aloop.TaskGroup()
      outer_sib = outer:create_task(after(1, "o"))
      outer:create_task(function()
        local inner <close> = aloop.TaskGroup()
        inner:create_task(after(1, "i"))
        inner:create_task(fail_after(0.005, "inner boom"))
      end)
    end)
    assert.is_false(ok)
    assert.equal("inner boom", e)
    assert.is_true(outer_sib:cancelled())
  end))

  it("is made only inside a task", function()
    assert.has_error(function() aloop.TaskGroup() end)
  end)

  it("prints", H.async(function()
    local tg <close> = aloop.TaskGroup()
    assert.is_string(tostring(tg))
  end))
end)
