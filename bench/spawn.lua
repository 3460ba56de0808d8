-- spawn+gather, aloop side: spawn 100 000 tasks that each sleep(0) and
-- return, then gather them all. Prints the time from before the first spawn
-- to gather returning.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 100000

local function worker()
  aloop.sleep(0)
end

aloop.run(function()
  local t0 = aloop.time()
  local tasks = {}
  for i = 1, N do tasks[i] = aloop.create_task(worker) end
  aloop.gather(tasks)
  local elapsed = aloop.time() - t0
  print(string.format("RESULT seconds=%.6f tasks=%d", elapsed, N))
end)
