-- TCP echo, aloop side: one echo server and 100 clients in one process, each
-- client doing 2 000 round trips of 64 bytes (write, then readexactly), all
-- at once on 127.0.0.1. Prints the time and the round trips per second.
-- Compared with bench/echo.py (asyncio streams) and bench/echo_floor.c.
local aloop = require "aloop"

local CLIENTS = tonumber(arg[1]) or 100
local ROUNDS = tonumber(arg[2]) or 2000
local SIZE = 64

aloop.run(function()
  local server = aloop.start_server(function(s)
    while true do
      local data = s:read(65536)
      if data == "" then break end
      s:write(data)
      s:drain()
    end
  end, "127.0.0.1", 0)
  local port = server:port()
  local streams = {}
  for i = 1, CLIENTS do streams[i] = aloop.open_connection("127.0.0.1", port) end
  local msg = string.rep("x", SIZE)
  local function client(s)
    for _ = 1, ROUNDS do
      s:write(msg)
      assert(s:readexactly(SIZE) == msg)
    end
  end
  local t0 = aloop.time()
  local tasks = {}
  for i = 1, CLIENTS do tasks[i] = aloop.create_task(client, streams[i]) end
  aloop.gather(tasks)
  local elapsed = aloop.time() - t0
  for i = 1, CLIENTS do streams[i]:close() end
  server:close()
  server:wait_closed()
  local n = CLIENTS * ROUNDS
  print(string.format("RESULT seconds=%.6f round_trips=%d rtps=%.0f", elapsed, n, n / elapsed))
end)
