-- semaphore, aloop side: 100 000 tasks contend for a Semaphore(10); each
-- acquires it, sleeps 0 while holding it, and releases it; gather them all.
-- Prints the time from before the first spawn to gather returning.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 100000
local LIMIT = 10

local held, max_held = 0, 0

local function worker(sem)
  local _ <close> = sem:acquire()
  held = held + 1
  if held > max_held then max_held = held end
  aloop.sleep(0)
  held = held - 1
end

aloop.run(function()
  local sem = aloop.Semaphore(LIMIT)
  local t0 = aloop.time()
  local tasks = {}
  for i = 1, N do tasks[i] = aloop.create_task(worker, sem) end
  aloop.gather(tasks)
  local elapsed = aloop.time() - t0
  if max_held ~= LIMIT then error("semaphore held by " .. max_held .. " tasks at most") end
  print(string.format("RESULT seconds=%.6f tasks=%d", elapsed, N))
end)
