-- 08_get_loop.lua: getting hold of the event loop. It prints nothing, like
-- the Python original; it only checks that the loop returned by
-- get_event_loop() is the one tasks run on.
-- Mirrors the Python tutorial 08_get_loop.py (asyncio.get_event_loop).
local aloop = require "aloop"

local loop = aloop.get_event_loop()
-- Inside a task you might prefer:
-- local loop = aloop.get_running_loop()

local function main()
  assert(aloop.get_running_loop() == loop,
         "get_event_loop() is not the running loop")
end

aloop.run(main)
