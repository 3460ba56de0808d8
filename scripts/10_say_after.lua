-- 10_say_after.lua: create_task starts tasks that run concurrently, so
-- waiting 1 s and 2 s takes 2 seconds in all, not 3.
-- Mirrors the Python tutorial 10_say_after.py (asyncio.create_task).
local aloop = require "aloop"

local function say_after(delay, what)
  aloop.sleep(delay)
  print(what)
end

local function main()
  local task1 = aloop.create_task(say_after, 1, "hello")
  local task2 = aloop.create_task(say_after, 2, "world")

  print("Started tasks...")
  task1:await()
  task2:await()
  print("Tasks finished.")
end

aloop.run(main)
