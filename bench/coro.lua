-- Reference for the memory benchmark: the size of a bare Lua coroutine,
-- resumed once and parked in coroutine.yield(), 100 000 of them, measured as
-- the Lua heap delta and the process RSS delta per coroutine (no aloop).
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
