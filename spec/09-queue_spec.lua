-- spec/09-queue_spec.lua: Queue, LifoQueue and PriorityQueue, as asyncio's
-- queues (CPython 3.13, with shutdown): put/get and their _nowait forms,
-- QueueEmpty/QueueFull/QueueShutDown, qsize/empty/full, task_done/join,
-- shutdown, PriorityQueue ordering (default, key, lt; FIFO among equals),
-- FIFO-fair getters and putters, timeouts through wait_for, and cancellation
-- safety: an item or a slot handed to a waiter cancelled at that moment goes
-- to the next waiter (or stays in the queue).
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/09-queue_spec.lua
local aloop = require "aloop"
local settle, ended_cancelled, raises = H.settle, H.ended_cancelled, H.raises

local function drain(q)
  local out = {}
  while not q:empty() do out[#out + 1] = q:get_nowait() end
  return out
end

local function getter(q, log, name)
  return aloop.create_task(function()
    local item = q:get()
    if log then log[#log + 1] = name and (name .. ":" .. tostring(item)) or item end
    return item
  end)
end

local function putter(q, item, log)
  return aloop.create_task(function()
    q:put(item)
    if log then log[#log + 1] = item end
    return item
  end)
end

------------------------------------------------------------------------------
describe("Queue", function()
  it("is FIFO, with qsize, empty, full and maxsize", H.async(function()
    local q = aloop.Queue(3)
    assert.equal(3, q:maxsize())
    assert.is_true(q:empty())
    assert.is_false(q:full())
    assert.equal(0, q:qsize())
    q:put_nowait("a")
    q:put("b")
    assert.equal(2, q:qsize())
    assert.is_false(q:empty())
    assert.is_false(q:full())
    q:put_nowait("c")
    assert.is_true(q:full())
    assert.equal("a", q:get_nowait())
    assert.equal("b", q:get())
    assert.equal("c", q:get_nowait())
    assert.is_true(q:empty())
    -- wraps around its storage correctly
    for i = 1, 10 do
      q:put_nowait(i)
      q:put_nowait(i + 100)
      assert.equal(i, q:get_nowait())
      assert.equal(i + 100, q:get_nowait())
    end
    assert.equal(0, q:qsize())
  end))

  it("unbounded by default and with maxsize 0", H.async(function()
    for _, q in ipairs({ aloop.Queue(), aloop.Queue(0) }) do
      assert.equal(0, q:maxsize())
      for i = 1, 1000 do q:put_nowait(i) end
      assert.is_false(q:full())
      assert.equal(1000, q:qsize())
      for i = 1, 1000 do assert.equal(i, q:get_nowait()) end
    end
    assert.has_error(function() aloop.Queue(-1) end)
    assert.has_error(function() aloop.Queue(2.5) end)
  end))

  it("keeps any Lua value, false included", H.async(function()
    local q = aloop.Queue()
    local t = {}
    q:put_nowait(false)
    q:put_nowait(t)
    q:put_nowait(0)
    assert.equal(false, q:get_nowait())
    assert.equal(t, q:get_nowait())
    assert.equal(0, q:get_nowait())
  end))

  it("get_nowait on an empty queue raises QueueEmpty; put_nowait on a full one QueueFull",
    H.async(function()
      local q = aloop.Queue(1)
      local e = raises(q.get_nowait, q)
      assert.is_true(aloop.is_queue_empty(e))
      assert.is_false(aloop.is_queue_full(e))
      q:put_nowait(1)
      e = raises(q.put_nowait, q, 2)
      assert.is_true(aloop.is_queue_full(e))
      assert.is_false(aloop.is_queue_empty(e))
      assert.equal(1, q:qsize())
      assert.equal(1, q:get_nowait())
    end))

  it("get waits for a put", H.async(function()
    local q = aloop.Queue()
    local t = getter(q)
    settle()
    assert.is_false(t:done())
    q:put_nowait("x")
    assert.equal("x", t:await())
    assert.is_true(q:empty())
  end))

  it("put waits for room", H.async(function()
    local q = aloop.Queue(1)
    q:put_nowait(1)
    local t = putter(q, 2)
    settle()
    assert.is_false(t:done())
    assert.equal(1, q:qsize())
    assert.equal(1, q:get())
    assert.equal(2, t:await())
    assert.equal(2, q:get_nowait())
  end))

  it("getters are served in the order they came", H.async(function()
    local q = aloop.Queue()
    local log = {}
    local tasks = {}
    for i = 1, 5 do tasks[i] = getter(q, log, "g" .. i) end
    settle()
    for i = 1, 5 do q:put_nowait(i) end
    for i = 1, 5 do assert.equal(i, tasks[i]:await()) end
    assert.same({ "g1:1", "g2:2", "g3:3", "g4:4", "g5:5" }, log)
  end))

  it("putters are served in the order they came", H.async(function()
    local q = aloop.Queue(2)
    q:put_nowait(0); q:put_nowait(0)
    local tasks = {}
    for i = 1, 5 do tasks[i] = putter(q, i) end
    settle()
    local got = {}
    for _ = 1, 7 do got[#got + 1] = q:get() end
    for i = 1, 5 do tasks[i]:await() end
    assert.same({ 0, 0, 1, 2, 3, 4, 5 }, got)
  end))

  it("a newcomer's get does not take the item meant for a woken getter", H.async(function()
    local q = aloop.Queue()
    local log = {}
    local a = getter(q, log, "a")
    settle()
    q:put_nowait(1) -- a is woken for it
    local b = getter(q, log, "b") -- arrives before a has run
    settle()
    q:put_nowait(2)
    a:await(); b:await()
    assert.same({ "a:1", "b:2" }, log)
  end))

  it("a newcomer's put does not take the slot meant for a woken putter", H.async(function()
    local q = aloop.Queue(1)
    q:put_nowait(0)
    local p1 = putter(q, 1)
    settle()
    assert.equal(0, q:get_nowait()) -- p1 is woken for the slot
    local p2 = putter(q, 2) -- arrives before p1 has run
    settle()
    assert.equal(1, q:get())
    assert.equal(2, q:get())
    p1:await(); p2:await()
  end))

  it("a cancelled getter leaves the line", H.async(function()
    local q = aloop.Queue()
    local a, b = getter(q), getter(q)
    settle()
    a:cancel()
    settle()
    q:put_nowait("x")
    assert.is_true(ended_cancelled(a))
    assert.equal("x", b:await())
    assert.is_true(q:empty())
  end))

  it("a getter cancelled between wake-up and resumption: the item goes to the next getter",
    H.async(function()
      local q = aloop.Queue()
      local a, b, c = getter(q), getter(q), getter(q)
      settle()
      q:put_nowait("x") -- a is woken ...
      a:cancel()        -- ... and cancelled before it runs
      assert.is_true(ended_cancelled(a))
      assert.equal("x", aloop.wait_for(b, 0.5))
      settle()
      assert.is_false(c:done())
      q:put_nowait("y")
      assert.equal("y", c:await())
      assert.is_true(q:empty())
    end))

  it("a getter cancelled between wake-up and resumption with no one behind: the item stays",
    H.async(function()
      local q = aloop.Queue()
      local a = getter(q)
      settle()
      q:put_nowait("x")
      a:cancel()
      assert.is_true(ended_cancelled(a))
      assert.equal(1, q:qsize())
      -- and a new getter has it at once
      assert.equal("x", aloop.wait_for(getter(q), 0.5))
    end))

  it("two items, the first woken getter cancelled: the other getters get both", H.async(function()
    local q = aloop.Queue()
    local a, b, c = getter(q), getter(q), getter(q)
    settle()
    q:put_nowait(1) -- to a
    q:put_nowait(2) -- to b
    a:cancel()
    assert.is_true(ended_cancelled(a))
    assert.equal(1, aloop.wait_for(b, 0.5))
    assert.equal(2, aloop.wait_for(c, 0.5))
  end))

  it("a putter cancelled between wake-up and resumption: the slot goes to the next putter",
    H.async(function()
      local q = aloop.Queue(1)
      q:put_nowait(0)
      local p1, p2 = putter(q, 1), putter(q, 2)
      settle()
      assert.equal(0, q:get_nowait()) -- slot for p1 ...
      p1:cancel()                     -- ... cancelled before it runs
      assert.is_true(ended_cancelled(p1))
      assert.equal(2, aloop.wait_for(p2, 0.5))
      assert.same({ 2 }, drain(q))
    end))

  it("a putter cancelled between wake-up and resumption with no one behind: the slot is free",
    H.async(function()
      local q = aloop.Queue(1)
      q:put_nowait(0)
      local p1 = putter(q, 1)
      settle()
      assert.equal(0, q:get_nowait())
      p1:cancel()
      assert.is_true(ended_cancelled(p1))
      assert.is_true(q:empty())
      -- a later put goes in without waiting
      assert.equal(3, aloop.wait_for(putter(q, 3), 0.5))
      assert.same({ 3 }, drain(q))
    end))

  it("wait_for times out a get and a put without losing anything", H.async(function()
    local q = aloop.Queue(1)
    local ok, err = pcall(aloop.wait_for, function() return q:get() end, 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    q:put_nowait("a")
    ok, err = pcall(aloop.wait_for, function() q:put("b") end, 0.01)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err))
    assert.same({ "a" }, drain(q))
    -- both still work in time
    local t = aloop.create_task(function()
      return aloop.wait_for(function() return q:get() end, 0.5)
    end)
    settle()
    q:put_nowait("c")
    assert.equal("c", t:await())
    aloop.wait_for(function() q:put("d") end, 0.5)
    assert.same({ "d" }, drain(q))
  end))

  describe("task_done and join", function()
    it("join returns at once with no unfinished items", H.async(function()
      local q = aloop.Queue()
      q:join()
      q:put_nowait(1)
      q:get_nowait()
      q:task_done()
      q:join()
    end))

    it("join waits until every item put has been marked done", H.async(function()
      local q = aloop.Queue()
      for i = 1, 3 do q:put_nowait(i) end
      local joined = false
      local j = aloop.create_task(function() q:join(); joined = true end)
      for _ = 1, 3 do q:get_nowait() end
      settle()
      assert.is_false(joined, "getting is not finishing")
      q:task_done(); q:task_done()
      settle()
      assert.is_false(joined)
      q:task_done()
      j:await()
      assert.is_true(joined)
    end))

    it("several joiners all wake; join blocks again after a new put", H.async(function()
      local q = aloop.Queue()
      q:put_nowait("x")
      local j1 = aloop.create_task(function() q:join(); return 1 end)
      local j2 = aloop.create_task(function() q:join(); return 2 end)
      settle()
      q:get_nowait(); q:task_done()
      assert.equal(1, j1:await())
      assert.equal(2, j2:await())
      q:put_nowait("y")
      local j3 = aloop.create_task(function() q:join(); return 3 end)
      settle()
      assert.is_false(j3:done())
      q:get_nowait(); q:task_done()
      assert.equal(3, j3:await())
    end))

    it("task_done called too many times raises ValueError", H.async(function()
      local q = aloop.Queue()
      local e = raises(q.task_done, q)
      assert.equal("ValueError", type(e) == "table" and e.kind or e)
      q:put_nowait(1)
      q:get_nowait()
      q:task_done()
      raises(q.task_done, q)
    end))

    it("workers with join", H.async(function()
      local q = aloop.Queue(3)
      local seen = {}
      local workers = {}
      for w = 1, 3 do
        workers[w] = aloop.create_task(function()
          while true do
            local item = q:get()
            aloop.sleep(0.001 * (item % 3))
            seen[#seen + 1] = item
            q:task_done()
          end
        end)
      end
      for i = 1, 20 do q:put(i) end
      q:join()
      assert.equal(20, #seen)
      for w = 1, 3 do workers[w]:cancel() end
      for w = 1, 3 do assert.is_true(ended_cancelled(workers[w])) end
    end))

    it("wait_for times out a join", H.async(function()
      local q = aloop.Queue()
      q:put_nowait(1)
      local ok, err = pcall(aloop.wait_for, function() q:join() end, 0.01)
      assert.is_false(ok)
      assert.is_true(aloop.is_timeout(err))
      q:get_nowait(); q:task_done()
      aloop.wait_for(function() q:join() end, 0.5)
    end))
  end)

  describe("shutdown", function()
    it("put and put_nowait raise QueueShutDown afterwards", H.async(function()
      local q = aloop.Queue()
      q:put_nowait(1)
      q:shutdown()
      local e = raises(q.put_nowait, q, 2)
      assert.is_true(aloop.is_queue_shutdown(e))
      e = raises(q.put, q, 3)
      assert.is_true(aloop.is_queue_shutdown(e))
      assert.equal(1, q:qsize())
    end))

    it("get still returns what is left, then raises QueueShutDown", H.async(function()
      local q = aloop.Queue()
      q:put_nowait(1); q:put_nowait(2)
      q:shutdown()
      assert.equal(1, q:get())
      assert.equal(2, q:get_nowait())
      local e = raises(q.get, q)
      assert.is_true(aloop.is_queue_shutdown(e))
      e = raises(q.get_nowait, q)
      assert.is_true(aloop.is_queue_shutdown(e))
      assert.is_false(aloop.is_queue_empty(e))
    end))

    it("wakes waiting getters with QueueShutDown", H.async(function()
      local q = aloop.Queue()
      local a, b = getter(q), getter(q)
      settle()
      q:shutdown()
      for _, t in ipairs({ a, b }) do
        local ok, e = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(aloop.is_queue_shutdown(e))
      end
    end))

    it("wakes waiting putters with QueueShutDown; their items are not put", H.async(function()
      local q = aloop.Queue(1)
      q:put_nowait(0)
      local a, b = putter(q, 1), putter(q, 2)
      settle()
      q:shutdown()
      for _, t in ipairs({ a, b }) do
        local ok, e = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(aloop.is_queue_shutdown(e))
      end
      assert.same({ 0 }, drain(q))
    end))

    it("join is not released by a plain shutdown", H.async(function()
      local q = aloop.Queue()
      q:put_nowait(1)
      q:shutdown()
      local j = aloop.create_task(function() q:join() end)
      settle()
      assert.is_false(j:done())
      q:get_nowait()
      q:task_done()
      j:await()
    end))

    it("immediate: drops the items, counts them done, wakes getters and joiners", H.async(function()
      local q = aloop.Queue()
      for i = 1, 3 do q:put_nowait(i) end
      local j = aloop.create_task(function() q:join(); return "joined" end)
      settle()
      q:shutdown(true)
      assert.is_true(q:empty())
      assert.equal("joined", aloop.wait_for(j, 0.5))
      local e = raises(q.get_nowait, q)
      assert.is_true(aloop.is_queue_shutdown(e))
    end))

    it("immediate: items already taken still need task_done before join returns", H.async(function()
      local q = aloop.Queue()
      for i = 1, 3 do q:put_nowait(i) end
      assert.equal(1, q:get_nowait()) -- taken, not done
      local j = aloop.create_task(function() q:join() end)
      q:shutdown(true)
      settle()
      assert.is_false(j:done())
      q:task_done()
      j:await()
      raises(q.task_done, q)
    end))

    it("immediate: waiting getters raise QueueShutDown", H.async(function()
      local q = aloop.Queue()
      local a = getter(q)
      settle()
      q:shutdown(true)
      local ok, e = pcall(a.await, a)
      assert.is_false(ok)
      assert.is_true(aloop.is_queue_shutdown(e))
    end))

    it("shutdown with a getter woken but not yet run: it still gets the item", H.async(function()
      local q = aloop.Queue()
      local a = getter(q)
      settle()
      q:put_nowait("x")
      q:shutdown()
      assert.equal("x", a:await())
    end))

    it("a getter arriving after shutdown while the last item is claimed is not stranded",
      H.async(function()
        -- a was woken for x; b comes after the shutdown and must wait
        -- behind a (FIFO), but once a has taken x the queue is empty and
        -- shut down: b raises QueueShutDown rather than wait forever
        local q = aloop.Queue()
        local go = aloop.Event()
        local a = getter(q)
        local b = aloop.create_task(function() go:wait(); return q:get() end)
        settle()
        go:set()         -- b runs first ...
        q:put_nowait("x") -- ... then a, woken for x
        q:shutdown()
        assert.equal("x", aloop.wait_for(a, 0.5))
        local ok, e = pcall(aloop.wait_for, b, 0.5)
        assert.is_false(ok)
        assert.is_true(aloop.is_queue_shutdown(e), "b: " .. tostring(e))
      end))
  end)

  it("prints", H.async(function()
    assert.is_string(tostring(aloop.Queue(2)))
  end))
end)

------------------------------------------------------------------------------
describe("LifoQueue", function()
  it("is last-in first-out, with the same API", H.async(function()
    local q = aloop.LifoQueue(3)
    assert.equal(3, q:maxsize())
    q:put_nowait(1); q:put(2); q:put_nowait(3)
    assert.is_true(q:full())
    assert.equal(3, q:qsize())
    local e = raises(q.put_nowait, q, 4)
    assert.is_true(aloop.is_queue_full(e))
    assert.equal(3, q:get_nowait())
    q:put_nowait(4)
    assert.same({ 4, 2, 1 }, drain(q))
    e = raises(q.get_nowait, q)
    assert.is_true(aloop.is_queue_empty(e))
  end))

  it("blocked getters and putters, served in order", H.async(function()
    local q = aloop.LifoQueue(1)
    local log = {}
    local a, b = getter(q, log, "a"), getter(q, log, "b")
    settle()
    q:put("x"); q:put("y")
    a:await(); b:await()
    assert.same({ "a:x", "b:y" }, log)
    q:put_nowait(0)
    local p1, p2 = putter(q, 1), putter(q, 2)
    settle()
    assert.equal(0, q:get())
    assert.equal(1, q:get())
    assert.equal(2, q:get())
    p1:await(); p2:await()
  end))

  it("cancelled getter between wake-up and resumption: the item goes on", H.async(function()
    local q = aloop.LifoQueue()
    local a, b = getter(q), getter(q)
    settle()
    q:put_nowait("x")
    a:cancel()
    assert.is_true(ended_cancelled(a))
    assert.equal("x", aloop.wait_for(b, 0.5))
  end))

  it("task_done, join and shutdown", H.async(function()
    local q = aloop.LifoQueue()
    q:put_nowait(1); q:put_nowait(2)
    local j = aloop.create_task(function() q:join() end)
    assert.equal(2, q:get_nowait()); q:task_done()
    settle()
    assert.is_false(j:done())
    q:shutdown()
    assert.is_true(aloop.is_queue_shutdown(raises(q.put_nowait, q, 3)))
    assert.equal(1, q:get()); q:task_done()
    j:await()
    assert.is_true(aloop.is_queue_shutdown(raises(q.get, q)))
  end))

  it("immediate shutdown drops the items", H.async(function()
    local q = aloop.LifoQueue()
    q:put_nowait(1); q:put_nowait(2)
    q:shutdown(true)
    assert.equal(0, q:qsize())
    q:join()
  end))
end)

------------------------------------------------------------------------------
describe("PriorityQueue", function()
  it("gives the smallest first by default", H.async(function()
    local q = aloop.PriorityQueue()
    for _, v in ipairs({ 5, 1, 4, 2, 3, 9, 0, 7 }) do q:put_nowait(v) end
    assert.same({ 0, 1, 2, 3, 4, 5, 7, 9 }, drain(q))
    for _, v in ipairs({ "pear", "apple", "fig" }) do q:put_nowait(v) end
    assert.same({ "apple", "fig", "pear" }, drain(q))
  end))

  it("orders {priority, data} tables by their first element, equals in FIFO order",
    H.async(function()
      local q = aloop.PriorityQueue()
      local items = {
        { 2, "b1" }, { 1, "a1" }, { 3, "c1" }, { 2, "b2" }, { 1, "a2" },
        { 3, "c2" }, { 2, "b3" }, { 1, "a3" }, { 2, "b4" }, { 1, "a4" },
      }
      for _, it in ipairs(items) do q:put_nowait(it) end
      local out = {}
      for _, it in ipairs(drain(q)) do out[#out + 1] = it[2] end
      assert.same({ "a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4", "c1", "c2" }, out)
    end))

  it("equal items come out in the order they were put (many, interleaved)", H.async(function()
    local q = aloop.PriorityQueue()
    local rnd = 12345
    local function rand(n) rnd = (rnd * 1103515245 + 12345) % 2147483648; return rnd % n end
    local expected = {}
    for i = 1, 300 do
      local p = rand(5)
      local item = { p, i }
      q:put_nowait(item)
      expected[#expected + 1] = item
      if i % 7 == 0 then
        -- take one in the middle: the heap is reshaped
        local got = q:get_nowait()
        for k, e in ipairs(expected) do
          if e == got then table.remove(expected, k); break end
        end
      end
    end
    table.sort(expected, function(a, b)
      if a[1] ~= b[1] then return a[1] < b[1] end
      return a[2] < b[2]
    end)
    local got = drain(q)
    assert.equal(#expected, #got)
    for k = 1, #got do
      assert.equal(expected[k], got[k], "position " .. k)
    end
  end))

  it("gets in order what was put in the middle of gets", H.async(function()
    local q = aloop.PriorityQueue()
    q:put_nowait({ 5, "x" }); q:put_nowait({ 3, "y" })
    assert.equal("y", q:get_nowait()[2])
    q:put_nowait({ 1, "z" }); q:put_nowait({ 5, "w" })
    local out = {}
    for _, it in ipairs(drain(q)) do out[#out + 1] = it[2] end
    assert.same({ "z", "x", "w" }, out)
  end))

  it("orders by a key function, equal keys in FIFO order", H.async(function()
    local q = aloop.PriorityQueue(0, { key = function(job) return job.prio end })
    local jobs = {
      { prio = 3, name = "c" }, { prio = 1, name = "a1" }, { prio = 2, name = "b" },
      { prio = 1, name = "a2" }, { prio = 1, name = "a3" },
    }
    for _, j in ipairs(jobs) do q:put_nowait(j) end
    local out = {}
    for _, j in ipairs(drain(q)) do out[#out + 1] = j.name end
    assert.same({ "a1", "a2", "a3", "b", "c" }, out)
    -- the key may compute anything comparable
    local q2 = aloop.PriorityQueue(nil, { key = function(s) return #s end })
    for _, s in ipairs({ "ccc", "a", "bb", "d", "ee" }) do q2:put_nowait(s) end
    assert.same({ "a", "d", "bb", "ee", "ccc" }, drain(q2))
  end))

  it("orders by an lt comparator, equal items in FIFO order", H.async(function()
    local q = aloop.PriorityQueue(0, { lt = function(a, b) return a.n > b.n end }) -- largest first
    local items = { { n = 1, id = 1 }, { n = 5, id = 2 }, { n = 3, id = 3 }, { n = 5, id = 4 },
      { n = 1, id = 5 }, { n = 3, id = 6 }, { n = 5, id = 7 } }
    for _, it in ipairs(items) do q:put_nowait(it) end
    local out = {}
    for _, it in ipairs(drain(q)) do out[#out + 1] = it.id end
    assert.same({ 2, 4, 7, 3, 6, 1, 5 }, out)
  end))

  it("rejects bad options", H.async(function()
    assert.has_error(function() aloop.PriorityQueue(0, "x") end)
    assert.has_error(function() aloop.PriorityQueue(0, { lt = 1 }) end)
    assert.has_error(function() aloop.PriorityQueue(0, { key = "k" }) end)
    assert.has_error(function() aloop.PriorityQueue(-1) end)
  end))

  it("is bounded by maxsize; getters and putters wait", H.async(function()
    local q = aloop.PriorityQueue(2)
    q:put_nowait(5); q:put_nowait(1)
    assert.is_true(q:full())
    assert.is_true(aloop.is_queue_full(raises(q.put_nowait, q, 0)))
    local p = putter(q, 0)
    settle()
    assert.is_false(p:done())
    assert.equal(1, q:get())
    p:await()
    assert.same({ 0, 5 }, drain(q))
    local g = getter(q)
    settle()
    q:put_nowait(7)
    assert.equal(7, g:await())
  end))

  it("cancelled getter between wake-up and resumption: the item stays for the next",
    H.async(function()
      local q = aloop.PriorityQueue()
      local a, b = getter(q), getter(q)
      settle()
      q:put_nowait(4)
      a:cancel()
      assert.is_true(ended_cancelled(a))
      assert.equal(4, aloop.wait_for(b, 0.5))
    end))

  it("task_done, join and shutdown(immediate)", H.async(function()
    local q = aloop.PriorityQueue()
    q:put_nowait(2); q:put_nowait(1)
    local j = aloop.create_task(function() q:join() end)
    assert.equal(1, q:get_nowait()); q:task_done()
    settle()
    assert.is_false(j:done())
    q:shutdown(true)
    j:await()
    assert.is_true(q:empty())
    assert.is_true(aloop.is_queue_shutdown(raises(q.get_nowait, q)))
    assert.is_true(aloop.is_queue_shutdown(raises(q.put_nowait, q, 1)))
  end))
end)
