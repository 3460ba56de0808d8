-- 01_hello.lua: the smallest aloop program: run a main function as a task
-- and sleep inside it without blocking.
-- Mirrors the Python tutorial 01_hello.py (asyncio.run + asyncio.sleep).
local aloop = require "aloop"

local function main()
  print("Hello")
  aloop.sleep(1)
  print("World")
end

aloop.run(main)
