-- memory, aloop side: 100 000 tasks parked in sleep(10), measured per task
-- as the Lua heap delta (collectgarbage "count", after full collections) and
-- as the process RSS delta (/proc/self/statm); then all cancelled.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 100000

local function page_size()
  local p = io.popen("getconf PAGESIZE")
  local size = p and tonumber(p:read("l"))
  if p then p:close() end
  return size or 4096
end
local PAGE = page_size()

local function rss_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * PAGE
end

local function measure()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count") * 1024, rss_bytes()
end

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
