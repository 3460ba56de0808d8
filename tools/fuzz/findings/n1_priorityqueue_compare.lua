-- N1 (new; make fuzz: PriorityQueue:put / put_nowait): an item whose key
-- does not compare with the queued ones fails inside aloop/sync.lua.
local aloop = require "aloop"
local q = aloop.PriorityQueue()
q:put_nowait(1)
print(pcall(function() return q:put_nowait("x") end))
--> aloop/sync.lua:444: attempt to compare string with number
print(pcall(function() return q:put_nowait({}) end))
--> aloop/sync.lua:444: attempt to compare nil with number
