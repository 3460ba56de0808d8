-- bench/heap.lua -- what the memory benchmarks measure: the Lua heap and
-- the process's resident set, after full collections. Loaded by
-- memory.lua and coro.lua with dofile (next to them), so both sides of the
-- comparison measure alike.
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

-- heap bytes, RSS bytes
return function()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count") * 1024, rss_bytes()
end
