-- N4 (new; make torture: "aloop/sync.lua:443: attempt to index a nil value
-- (local 'b')", ":477 (local 'top')"): a finaliser that takes from a
-- PriorityQueue while a put on it is under way leaves a hole in the heap;
-- the item is lost and later calls fail inside aloop/sync.lua. Under GC
-- torture any allocation in put can run the finaliser; here the key
-- function runs the collector to make it happen at once.
local aloop = require "aloop"
local q
q = aloop.PriorityQueue(0, {key = function(x) collectgarbage() return x end})
q:put_nowait(1)
q:put_nowait(2)
setmetatable({}, {__gc = function() print("finaliser takes", q:get_nowait()) end})
print("put 0:", pcall(q.put_nowait, q, 0))
for _ = 1, 2 do print("get:", pcall(q.get_nowait, q)) end
print("qsize:", q:qsize()) --> 0 items, one of 0 and 2 lost, or an error inside sync.lua
