-- to_thread, aloop side: the round-trip latency of one tiny job awaited at a
-- time (ROUNDS of them), then the throughput of N tiny jobs started at once
-- and gathered. Prints the mean round trip and the time for the N jobs.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 10000
local ROUNDS = tonumber(arg[2]) or 2000

local function tiny(x)
  return x + 1
end

aloop.run(function()
  aloop.to_thread(tiny, 0) -- the pool's first thread is started here
  local t0 = aloop.time()
  for i = 1, ROUNDS do aloop.to_thread(tiny, i) end
  local rt = (aloop.time() - t0) / ROUNDS
  t0 = aloop.time()
  local tasks = {}
  for i = 1, N do tasks[i] = aloop.create_task(aloop.to_thread, tiny, i) end
  local r = aloop.gather(tasks)
  local elapsed = aloop.time() - t0
  assert(r[N] == N + 1)
  print(string.format("RESULT seconds=%.6f jobs_per_s=%.0f latency_us=%.2f jobs=%d",
    elapsed, N / elapsed, rt * 1e6, N))
end)
