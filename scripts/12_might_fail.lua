-- 12_might_fail.lua: gather with return_exceptions = true puts a task's
-- error in the results array instead of raising it; the other tasks finish.
-- Mirrors the Python tutorial 12_might_fail.py
-- (asyncio.gather(..., return_exceptions=True)).
local aloop = require "aloop"

-- Format an array the way Python prints a list: [2, <error>, 6]
local function list_str(t)
  local parts = {}
  for i = 1, t.n or #t do parts[i] = tostring(t[i]) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function might_fail(n)
  if n == 2 then
    error("This is an expected error!", 0)
  end
  aloop.sleep(1)
  return n * 2
end

local function main()
  local results = aloop.gather(
    function() return might_fail(1) end,
    function() return might_fail(2) end,
    function() return might_fail(3) end,
    { return_exceptions = true } -- Capture errors
  )
  print("Results: " .. list_str(results))
end

aloop.run(main)
