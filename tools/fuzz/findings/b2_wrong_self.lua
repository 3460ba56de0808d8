-- B2 (make fuzz: every method of Lock, Semaphore, BoundedSemaphore, Event,
-- Condition, Barrier, the queues, TaskGroup and Timeout in the '.' form, and
-- their __tostring/__close without their object): the Lua-implemented
-- methods fail inside aloop/sync.lua or aloop/tasks.lua.
local aloop = require "aloop"
local function try(what, f) print(what, select(2, pcall(f))) end
aloop.run(function()
  local lock, cond, tg = aloop.Lock(), aloop.Condition(), aloop.TaskGroup()
  local tm <close> = aloop.timeout(nil)
  try("lock.acquire()", function() return lock.acquire() end)
  try("aloop.Event().set(1)", function() return aloop.Event().set(1) end)
  try("tm.when(1)", function() return tm.when(1) end)
  try("mt.__tostring({})", function() return getmetatable(lock).__tostring({}) end)
  try("mt.__close(0)", function() return getmetatable(lock).__close(0) end)
  try("cond:wait_for(5)", function() return cond:wait_for(5) end)
  try("tg:_on_task_done(0)", function() return tg:_on_task_done(0) end)
end)
