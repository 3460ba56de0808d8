-- Reference for the memory benchmark: the size of a bare Lua coroutine,
-- resumed once and parked in coroutine.yield(), 100 000 of them, measured as
-- the Lua heap delta and the process RSS delta per coroutine (no aloop).
local N = tonumber(arg[1]) or 100000

local measure = dofile((arg[0]:match("^(.*)/") or ".") .. "/heap.lua")

local function body() coroutine.yield() end

local cos = {} -- luacheck: ignore 241 (only held, so the coroutines stay alive)
for i = 1, N do cos[i] = false end
local heap0, rss0 = measure()
for i = 1, N do
  local co = coroutine.create(body)
  assert(coroutine.resume(co))
  cos[i] = co
end
local heap1, rss1 = measure()
print(string.format("RESULT bytes_per_task=%.1f rss_bytes_per_task=%.1f tasks=%d",
  (heap1 - heap0) / N, (rss1 - rss0) / N, N))
