-- 06_responsive_cli.lua: a command prompt that stays responsive: a
-- background worker keeps printing while the main task waits for a line
-- of input, without a thread (aloop.input never blocks the loop).
-- Mirrors the Python tutorial 06_responsive_cli.py (run_in_executor with
-- input). The worker's period is 2 s, or ALOOP_CLI_PERIOD seconds. At the
-- end of input (Ctrl-D) it exits as with "quit" (Python's input would
-- raise EOFError there).
local aloop = require "aloop"

local period = tonumber(os.getenv("ALOOP_CLI_PERIOD")) or 2

local function background_worker()
  while true do
    print("Working...")
    aloop.sleep(period)
  end
end

local function user_input()
  while true do
    local user_text = aloop.input("Enter command: ")
    if user_text == "quit" or user_text == nil then
      print("Exiting...")
      break
    else
      print("Received command: " .. user_text)
    end
  end
end

local function main()
  local worker = aloop.create_task(background_worker)
  user_input()
  worker:cancel()
  local ok, err = pcall(worker.await, worker)
  if not ok then
    if not aloop.is_cancelled(err) then error(err, 0) end
    print("Background worker cancelled")
  end
end

aloop.run(main)
