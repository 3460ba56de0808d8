-- 02_gather_two_tasks.lua: gather runs two tasks concurrently, so two
-- 2-second sleeps take 2 seconds in all, not 4.
-- Mirrors the Python tutorial 02_gather_two_tasks.py (asyncio.gather).
local aloop = require "aloop"

local function task()
  print("Task started")
  aloop.sleep(2)
  print("Task completed")
end

local function main()
  -- Each function passed to gather runs as a new task (twice here).
  aloop.gather(task, task)
end

aloop.run(main)
