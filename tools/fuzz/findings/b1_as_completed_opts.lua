-- B1 (make fuzz: aloop:as_completed(...), aloop.as_completed(fs, <not a
-- table>)): a non-table opts fails inside aloop/tasks.lua.
local aloop = require "aloop"
aloop.run(function()
  local t = aloop.create_task(function() return 1 end)
  print(pcall(function() return aloop.as_completed({t}, 5) end))
  --> aloop/tasks.lua:244: attempt to index a number value (local 'opts')
end)
