-- H2 (make fuzz: "aloop's own callback failed: 'Exception in done
-- callback'"): shield's done callback fails when the inner task fails with
-- a nil error value; the shield never completes.
local aloop = require "aloop"
aloop.run(function()
  local t = aloop.create_task(function() aloop.sleep(0) error() end)
  local s = aloop.shield(t)
  print("wait_for(shield, 0.1):", pcall(aloop.wait_for, s, 0.1)) -- TimeoutError
end)
