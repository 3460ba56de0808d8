-- N2 (new; make fuzz: WaitQueue:wait(<any value>) from a callback): the
-- module's _WaitQueue:wait(where) turns any argument into the name of the
-- function it reports, unchecked ("aloop.10 called outside a task").
local aloop = require "aloop"
local wq = aloop._WaitQueue()
print(pcall(function() return wq:wait(10) end))
print(pcall(function() return wq:wait("before\0after") end))
