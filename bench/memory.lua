-- memory, aloop side: 100 000 tasks parked in sleep(10), measured per task
-- as the Lua heap delta (collectgarbage "count", after full collections) and
-- as the process RSS delta (/proc/self/statm); then all cancelled.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 100000

local measure = dofile((arg[0]:match("^(.*)/") or ".") .. "/heap.lua")

aloop.run(function()
  local started = 0
  local function sleeper()
    started = started + 1
    aloop.sleep(10)
  end

  -- Size the array first: the array itself is not part of a task's cost.
  local tasks = {}
  for i = 1, N do tasks[i] = false end
  local heap0, rss0 = measure()
  for i = 1, N do tasks[i] = aloop.create_task(sleeper) end
  aloop.sleep(0.05) -- every task has run its first step and is parked
  assert(started == N, ("only %d of %d tasks started"):format(started, N))
  local heap1, rss1 = measure()

  for i = 1, N do tasks[i]:cancel() end
  aloop.gather(tasks, { return_exceptions = true })
  for i = 1, N do assert(tasks[i]:cancelled(), "a task was not cancelled") end
  print(string.format("RESULT bytes_per_task=%.1f rss_bytes_per_task=%.1f tasks=%d",
    (heap1 - heap0) / N, (rss1 - rss0) / N, N))
end)
