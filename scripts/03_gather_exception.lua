-- 03_gather_exception.lua: an error raised in one task propagates out of
-- gather to the awaiting code, where pcall catches it (try/except).
-- The other task keeps running; when main returns, aloop.run cancels it,
-- so its "Task completed" is never printed (as with asyncio.run).
-- Mirrors the Python tutorial 03_gather_exception.py.
local aloop = require "aloop"

local function task()
  print("Task started")
  aloop.sleep(2)
  print("Task completed")
end

local function faulty_task()
  error("Oops!", 0)
end

local function main()
  local ok, err = pcall(aloop.gather, task, faulty_task)
  if not ok then
    -- `except Exception` does not catch a cancellation: let it through.
    if aloop.is_cancelled(err) then error(err, 0) end
    print("Caught an exception: " .. tostring(err))
  end
end

aloop.run(main)
