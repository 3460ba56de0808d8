-- timers, aloop side: 100 000 tasks each sleep a pseudo-random 0-100 ms
-- (the same LCG sequence as timers.py) and record their lateness: time after
-- waking - time before sleeping - delay. Prints mean, min and max in ms.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 100000
local SEED = 12345

local sum, min, max = 0.0, math.huge, -math.huge

-- 31-bit LCG (glibc's constants), written out the same way in Python.
local function delays(n, seed)
  local x, out = seed, {}
  for i = 1, n do
    x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    out[i] = (x % 100001) / 1e6 -- 0 .. 0.1 s, 1 us steps
  end
  return out
end

local function worker(delay)
  local t0 = aloop.time()
  aloop.sleep(delay)
  local late = aloop.time() - t0 - delay
  sum = sum + late
  if late < min then min = late end
  if late > max then max = late end
end

aloop.run(function()
  local ds = delays(N, SEED)
  local tasks = {}
  for i = 1, N do tasks[i] = aloop.create_task(worker, ds[i]) end
  aloop.gather(tasks)
  local dsum = 0.0
  for i = 1, N do dsum = dsum + ds[i] end
  print(string.format(
    "RESULT mean_late_ms=%.6f min_late_ms=%.6f max_late_ms=%.6f mean_delay_ms=%.6f",
    sum / N * 1e3, min * 1e3, max * 1e3, dsum / N * 1e3))
end)
