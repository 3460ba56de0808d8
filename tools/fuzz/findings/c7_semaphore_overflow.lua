-- C7 (make fuzz: Semaphore.release / __close / WaitQueue.grant on
-- aloop.Semaphore(math.maxinteger)): signed overflow in al_waitq_grant
-- (UBSan); without UBSan the semaphore goes negative.
local aloop = require "aloop"
local s = aloop.Semaphore(math.maxinteger)
getmetatable(s).__close(s) -- as `local _ <close> = s` would on leaving
print("value:", s:value())
