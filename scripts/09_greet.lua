-- 09_greet.lua: awaiting one coroutine after another runs them in sequence:
-- two 1-second greetings take 2 seconds.
-- Mirrors the Python tutorial 09_greet.py.
local aloop = require "aloop"

local function greet(name)
  print(("Hello, %s!"):format(name))
  aloop.sleep(1) -- Pause for 1 second
  print(("Goodbye, %s!"):format(name))
end

local function main()
  greet("Alice")
  greet("Bob")
end

aloop.run(main)
