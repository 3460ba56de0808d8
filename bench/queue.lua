-- queue ping-pong, aloop side: two tasks pass an item back and forth through
-- two Queues of maxsize 1 (ping: one -> two, pong: two -> one), 1 000 000
-- items through the queues in all (500 000 round trips). Every get finds its
-- queue empty and waits, so each item is one put, one wake-up, one get.
-- Prints the total time.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 1000000
local ROUNDS = N // 2

local function pinger(ping, pong)
  for i = 1, ROUNDS do
    ping:put(i)
    local v = pong:get()
    if v ~= i then error("pong returned " .. tostring(v) .. ", expected " .. i) end
  end
end

local function ponger(ping, pong)
  for _ = 1, ROUNDS do
    pong:put(ping:get())
  end
end

aloop.run(function()
  local ping, pong = aloop.Queue(1), aloop.Queue(1)
  local t0 = aloop.time()
  local a = aloop.create_task(pinger, ping, pong)
  local b = aloop.create_task(ponger, ping, pong)
  aloop.gather({ a, b })
  local elapsed = aloop.time() - t0
  print(string.format("RESULT seconds=%.6f items=%d", elapsed, ROUNDS * 2))
end)
