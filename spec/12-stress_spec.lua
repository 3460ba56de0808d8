-- spec/12-stress_spec.lua: many tasks contending on a Semaphore(10) and a
-- Queue(100) while a chaos task cancels tasks at random -- also waiters that
-- were just woken and have not run yet. At the end every permit is back,
-- the semaphore never let more than 10 in, and every item put was got
-- exactly once (or was left in the queue), none twice, none invented.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/12-stress_spec.lua
local aloop = require "aloop"

local function closer(fn)
  return setmetatable({}, { __close = fn })
end

-- Producers hold a permit of `sem` while they put one item into `q`;
-- consumers take items until the queue is shut down. A chaos task cancels
-- random tasks (producers and consumers alike) until its budget is spent.
local function run_stress(opts)
  math.randomseed(opts.seed)
  local n_prod, n_cons, permits = opts.producers, opts.consumers, opts.permits
  local sem = aloop.Semaphore(permits)
  local q = aloop.Queue(opts.maxsize)
  local stats = {
    holders = 0, max_holders = 0, put = 0, prod_cancelled = 0, prod_finished = 0,
    got = 0, cons_cancelled = 0, cons_finished = 0, chaos = 0, other_errors = {},
  }
  local put_items, got_count = {}, {}

  local function producer(i)
    local _fin <close> = closer(function() stats.prod_finished = stats.prod_finished + 1 end)
    local _g <close> = sem:acquire()
    stats.holders = stats.holders + 1
    if stats.holders > stats.max_holders then stats.max_holders = stats.holders end
    local _h <close> = closer(function() stats.holders = stats.holders - 1 end)
    for _ = 1, math.random(0, 2) do aloop.sleep(0) end
    q:put(i)
    -- no await between the put and this line: a cancelled put put nothing
    assert(not put_items[i], "item put twice")
    put_items[i] = true
    stats.put = stats.put + 1
    -- holding the permit a while (a cancellation here comes after the put)
    if math.random() < 0.2 then aloop.sleep(0) end
  end

  local function consumer()
    local _fin <close> = closer(function() stats.cons_finished = stats.cons_finished + 1 end)
    while true do
      local ok, item = pcall(q.get, q)
      if not ok then
        if aloop.is_queue_shutdown(item) then return "shut down" end
        error(item, 0)
      end
      got_count[item] = (got_count[item] or 0) + 1
      stats.got = stats.got + 1
      q:task_done()
      if math.random() < 0.3 then aloop.sleep(0) end
    end
  end

  -- Creation interleaved, so producers and consumers share the ready queue.
  local producers, consumers, all = {}, {}, {}
  local ratio = n_prod // n_cons
  local p = 0
  while p < n_prod or #consumers < n_cons do
    for _ = 1, ratio do
      if p < n_prod then
        p = p + 1
        producers[p] = aloop.create_task(producer, p)
        all[#all + 1] = producers[p]
      end
    end
    if #consumers < n_cons then
      consumers[#consumers + 1] = aloop.create_task(consumer)
      all[#all + 1] = consumers[#consumers]
    end
  end

  local chaos = aloop.create_task(function()
    local budget = opts.cancels
    while budget > 0 and stats.prod_finished < n_prod do
      aloop.sleep(0)
      for _ = 1, math.random(0, 4) do
        local victim = all[math.random(#all)]
        if not victim:done() and victim:cancel() then
          stats.chaos = stats.chaos + 1
          budget = budget - 1
        end
      end
    end
  end)

  -- Wait for tasks to end, without cancelling them; those still not done
  -- after `secs` are stuck (a lost wake-up): they are counted, then
  -- cancelled so that the test ends.
  local function finish(tasks, secs, what)
    local deadline = aloop.time() + secs
    for i = 1, #tasks do
      while not tasks[i]:done() and aloop.time() < deadline do aloop.sleep(0) end
    end
    local stuck = 0
    for i = 1, #tasks do
      if not tasks[i]:done() then stuck = stuck + 1; tasks[i]:cancel() end
    end
    stats["stuck_" .. what] = stuck
    local cancelled = 0
    for i = 1, #tasks do
      local t = tasks[i]
      local ok, err = pcall(t.await, t)
      if not ok then
        if aloop.is_cancelled(err) then
          cancelled = cancelled + 1
        else
          stats.other_errors[#stats.other_errors + 1] = tostring(err)
        end
      end
    end
    return cancelled
  end

  stats.prod_cancelled = finish(producers, 5, "producers")
  chaos:await()
  -- Everything produced is in; let the consumers empty the queue and stop.
  q:shutdown()
  stats.cons_cancelled = finish(consumers, 2, "consumers")
  -- What no consumer took (if they were all cancelled) is still there.
  local left = 0
  while not q:empty() do
    local item = q:get_nowait()
    got_count[item] = (got_count[item] or 0) + 1
    left = left + 1
    q:task_done()
  end
  stats.left = left
  stats.sem, stats.q, stats.put_items, stats.got_count = sem, q, put_items, got_count
  stats.producers = producers
  return stats
end

local function check(stats, opts)
  assert.same({}, stats.other_errors)
  -- every task ended by itself: none was left waiting forever
  assert.equal(0, stats.stuck_producers, "producers stuck")
  assert.equal(0, stats.stuck_consumers, "consumers stuck after the shutdown")
  assert.equal(opts.producers, stats.prod_finished)
  assert.equal(opts.consumers, stats.cons_finished)
  -- a producer put its item unless it was cancelled first (it may also be
  -- cancelled after its put, while it still holds the permit)
  local not_put = 0
  for i = 1, opts.producers do
    if not stats.put_items[i] then
      not_put = not_put + 1
      assert(stats.producers[i]:cancelled(), "producer " .. i .. " neither put nor cancelled")
    end
  end
  assert.equal(opts.producers, stats.put + not_put)
  -- the chaos did happen, on both sides
  assert.is_true(stats.prod_cancelled > opts.producers // 50,
    "too few producers cancelled: " .. stats.prod_cancelled)
  assert.is_true(stats.cons_cancelled > 0, "no consumer was cancelled")
  -- the semaphore: never more than `permits` inside, every permit back
  assert.equal(0, stats.holders)
  assert.is_true(stats.max_holders <= opts.permits,
    "more holders than permits: " .. stats.max_holders)
  assert.equal(opts.permits, stats.max_holders)
  assert.equal(opts.permits, stats.sem:value())
  assert.is_false(stats.sem:locked())
  -- the queue: every item put got exactly once, nothing else got
  for item, n in pairs(stats.got_count) do
    assert(stats.put_items[item], "got an item never put: " .. tostring(item))
    assert(n == 1, "item " .. tostring(item) .. " got " .. n .. " times")
  end
  for item in pairs(stats.put_items) do
    assert(stats.got_count[item], "item " .. tostring(item) .. " was lost")
  end
  assert.equal(stats.put, stats.got + stats.left)
  assert.is_true(stats.q:empty())
  -- join has nothing to wait for
  aloop.wait_for(function() stats.q:join() end, 1)
end

describe("stress", function()
  it("10 000 tasks on a Semaphore(10) and a Queue(100), with random cancellations",
    H.async(function()
      local opts = { seed = 20240611, producers = 8000, consumers = 2000,
        permits = 10, maxsize = 100, cancels = 1500 }
      local stats = run_stress(opts)
      check(stats, opts)
    end, 30))

  it("the same with few consumers, so putters wait on a full queue", H.async(function()
    local opts = { seed = 7, producers = 3000, consumers = 40,
      permits = 10, maxsize = 100, cancels = 400 }
    local stats = run_stress(opts)
    check(stats, opts)
  end, 30))

  it("the same with a tiny queue and a Semaphore(1)", H.async(function()
    local opts = { seed = 99, producers = 2000, consumers = 200,
      permits = 1, maxsize = 2, cancels = 300 }
    local stats = run_stress(opts)
    check(stats, opts)
  end, 30))
end)
