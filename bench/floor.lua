-- The floor under the ping-pong benchmark on stock Lua 5.4, with no runtime:
-- two coroutines switched by a bare loop, one small object with a metatable
-- allocated per hand-over (as each hand-over allocates a Future). No
-- scheduler can switch faster than this; compare with asyncio's ping-pong.
local N = tonumber(arg[1]) or 1000000
local mt = { __index = {} }
local box = {} -- luacheck: ignore 241 (a store per hand-over is the point)
local function player()
  for i = 1, N // 2 do
    box.f = setmetatable({ i }, mt)
    coroutine.yield()
  end
end
local a, b = coroutine.create(player), coroutine.create(player)
local resume = coroutine.resume
-- Timed by aloop.time (the clock pingpong.lua reads: wall time, so both
-- sides pay alike for a busy machine) when the module is there, else
-- os.clock; nothing else of aloop is used.
local has_aloop, aloop = pcall(require, "aloop")
local clock = has_aloop and aloop.time or os.clock
local t0 = clock()
for _ = 1, N // 2 do
  resume(a)
  resume(b)
end
print(string.format("RESULT seconds=%.6f switches=%d", clock() - t0, N))
