-- The floor under the spawn+gather benchmark on stock Lua 5.4, with no
-- runtime: create and resume N coroutines (each runs to its first yield, as
-- a task runs to its sleep(0)), then resume each to finish and sum the
-- results (as gather collects them). No scheduler on stock Lua can spawn and
-- gather tasks faster than this; bench/run.py sets aloop's spawn beside it.
-- Timed by aloop.time (the clock spawn.lua reads: wall time, so both sides
-- pay alike for a busy machine) when the module is there, else os.clock;
-- nothing else of aloop is used.
local N = tonumber(arg[1]) or 100000

local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
local has_aloop, aloop = pcall(require, "aloop")
local clock = has_aloop and aloop.time or os.clock

local function worker(i)
  yield()
  return i
end

local t0 = clock()
local cos = {}
for i = 1, N do
  local co = create(worker)
  resume(co, i)
  cos[i] = co
end
local sum = 0
for i = 1, N do
  local _, v = resume(cos[i])
  sum = sum + v
end
local elapsed = clock() - t0
assert(sum == N * (N + 1) // 2, "a coroutine lost its result")
print(string.format("RESULT seconds=%.6f tasks=%d", elapsed, N))
