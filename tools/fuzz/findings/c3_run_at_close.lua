-- C3 (make fuzz, context close): an object made before aloop is loaded is
-- finalised after aloop's loop, at lua_close; aloop.run (or _run_script)
-- there uses the destroyed loop: SEGV in run_toplevel.
-- Run with lua5.4 (the aloop command makes its own objects first).
local keep = setmetatable({}, {__gc = function()
  local aloop = package.loaded.aloop
  print("finaliser:", pcall(aloop.run, function() end))
end})
local aloop = require "aloop"
aloop.run(function() aloop.sleep(0) end)
print("end of script; lua_close runs the finaliser")
