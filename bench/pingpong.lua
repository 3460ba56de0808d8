-- ping-pong, aloop side: two tasks hand a counter back and forth through
-- futures, 1 000 000 hand-overs in all (each hand-over is one switch: set the
-- other's future, then await a fresh one of our own). Prints the total time.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 1000000

local function player(me, other, slots)
  while true do
    local v = slots[me]:await()
    if v >= N then
      -- The one who receives N tells the other to stop, then both return.
      if v == N then slots[other]:set_result(v + 1) end
      return
    end
    slots[me] = aloop.Future()
    slots[other]:set_result(v + 1)
  end
end

aloop.run(function()
  local slots = { aloop.Future(), aloop.Future() }
  local a = aloop.create_task(player, 1, 2, slots)
  local b = aloop.create_task(player, 2, 1, slots)
  local t0 = aloop.time()
  slots[1]:set_result(0)
  aloop.gather({ a, b })
  local elapsed = aloop.time() - t0
  print(string.format("RESULT seconds=%.6f switches=%d", elapsed, N))
end)
