-- C2 (make fuzz: aloop.gather(<current task>), context task): a task that
-- gathers itself, then is cancelled: cancellation recurses for ever
-- (stack-overflow under ASan, SIGSEGV without).
local aloop = require "aloop"
aloop.run(function()
  local t = aloop.create_task(function() aloop.gather(aloop.current_task()) end)
  aloop.sleep(0.01)
  t:cancel("watchdog")
  aloop.sleep(0.01)
end)
print("no crash")
