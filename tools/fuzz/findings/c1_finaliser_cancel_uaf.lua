-- C1 (make torture): a finaliser that cancels a task with a message runs
-- while aloop builds that task's CancelledError from its previous message,
-- which the new cancel() frees: heap-use-after-free (ASan).
local aloop = require "aloop"
collectgarbage("incremental", 1, 100) -- the collector runs almost all the time
local target
local function garbage() -- objects whose finaliser cancels the target
  for _ = 1, 50 do
    setmetatable({}, {__gc = function() if target then target:cancel("from a finaliser") end end})
  end
end
aloop.run(function()
  for i = 1, 2000 do
    target = aloop.create_task(function() garbage() aloop.sleep(1) end)
    aloop.sleep(0)
    target:cancel("first message " .. i)
    garbage()
    pcall(target.await, target)
  end
end)
print("no use-after-free seen")
