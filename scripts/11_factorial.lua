-- 11_factorial.lua: gather runs three tasks concurrently and returns their
-- results in order; the whole takes as long as the longest task (9 s),
-- not the sum of all of them (16 s).
-- Mirrors the Python tutorial 11_factorial.py (asyncio.gather with results).
local aloop = require "aloop"

-- Format an array the way Python prints a list: [2, 6, 24]
local function list_str(t)
  local parts = {}
  for i = 1, t.n or #t do parts[i] = tostring(t[i]) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function factorial(name, number)
  local f = 1
  for i = 2, number do
    print(("Task %s: Compute factorial(%d), currently i=%d..."):format(name, number, i))
    aloop.sleep(i)
    f = f * i
  end
  print(("Task %s: factorial(%d) = %d"):format(name, number, f))
  return f
end

local function main()
  local start = aloop.time()

  local results = aloop.gather(
    function() return factorial("A", 2) end,
    function() return factorial("B", 3) end,
    function() return factorial("C", 4) end
  )

  print("Results: " .. list_str(results))
  local finish = aloop.time()
  print(("Completed in %.2f seconds"):format(finish - start))
end

aloop.run(main)
