-- 13_producer_consumer.lua: a producer and two consumers share a bounded
-- queue. The queue holds at most 2 items, so the producer waits (put blocks)
-- whenever the consumers fall behind; each consumer marks every item done
-- with task_done(), and main waits with join() until all six items are
-- processed, then cancels the consumers, which are still waiting in get().
-- Consumer A takes 0.3 s per item and B 0.5 s, so the whole run takes 1.2 s
-- and prints the same lines every time.
-- asyncio counterpart: asyncio.Queue(maxsize=2), put/get, task_done/join,
-- Task.cancel.
local aloop = require "aloop"

local ITEMS = 6

local function producer(queue)
  for item = 1, ITEMS do
    queue:put(item) -- waits while the queue is full
    print(("producer: put item %d (queue size %d)"):format(item, queue:qsize()))
  end
  print("producer: done")
end

local function consumer(name, queue, seconds_per_item)
  local handled = 0
  local _, err = pcall(function()
    while true do
      local item = queue:get() -- waits while the queue is empty
      print(("consumer %s: got item %d"):format(name, item))
      aloop.sleep(seconds_per_item) -- the work
      handled = handled + 1
      queue:task_done()
    end
  end)
  -- The loop only ends by an error: the cancellation sent by main.
  if aloop.is_cancelled(err) then
    print(("consumer %s: cancelled after %d items"):format(name, handled))
  end
  error(err, 0) -- re-raise, so the task ends cancelled
end

local function main()
  local queue = aloop.Queue(2)
  local consumers = {
    aloop.create_task(consumer, "A", queue, 0.3),
    aloop.create_task(consumer, "B", queue, 0.5),
  }
  aloop.create_task(producer, queue):await()

  queue:join() -- until task_done() was called for every item put
  print(("main: all %d items processed"):format(ITEMS))

  for _, task in ipairs(consumers) do task:cancel() end
  -- Wait for them to finish cancelling (return_exceptions: their
  -- cancellations are results here, not raised).
  local results = aloop.gather(consumers, { return_exceptions = true })
  local cancelled = 0
  for i = 1, results.n do
    if consumers[i]:cancelled() then cancelled = cancelled + 1 end
  end
  print(("main: %d consumers cancelled"):format(cancelled))
end

aloop.run(main)
