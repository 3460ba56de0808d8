-- 05_cancel.lua: cancelling a task raises a cancellation error at the point
-- where it awaits; the task runs its cleanup and re-raises, and the code
-- awaiting the task sees the cancellation.
-- Mirrors the Python tutorial 05_cancel.py (Task.cancel, CancelledError).
local aloop = require "aloop"

local function cancellable_task()
  local ok, err = pcall(function()
    print("Task started")
    aloop.sleep(10)
    print("Task finished")
  end)
  if not ok then
    if aloop.is_cancelled(err) then
      print("Task was cancelled")
      -- Cleanup code goes here
    end
    error(err, 0) -- re-raise
  end
end

local function main()
  local task = aloop.create_task(cancellable_task)
  aloop.sleep(1)
  task:cancel()
  local ok, err = pcall(task.await, task)
  if not ok then
    if not aloop.is_cancelled(err) then error(err, 0) end
    print("Main caught task cancellation")
  end
end

aloop.run(main)
