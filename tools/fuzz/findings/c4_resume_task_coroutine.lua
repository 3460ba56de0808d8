-- C4 (make fuzz: Loop:call_soon(<function that resumes a task's coroutine>),
-- also Future:add_done_callback, Condition:wait_for ...): a callback that
-- resumes a waiting task's own coroutine: NULL ltask in sleep_k (UBSan) /
-- SIGSEGV.
local aloop = require "aloop"
aloop.run(function()
  local co
  local t = aloop.create_task(function() co = coroutine.running() aloop.sleep(0.05) end)
  aloop.sleep(0)
  aloop.get_event_loop():call_soon(function() print(coroutine.resume(co)) end)
  aloop.sleep(0.1)
end)
print("no crash")
