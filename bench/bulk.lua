-- Bulk throughput, aloop side: 1 GiB through one loopback connection, written
-- in 256 KiB chunks with drain, read by the server in reads of up to 1 MiB.
-- Prints the time and MB/s. Compared with bench/bulk.py and echo_floor.c.
local aloop = require "aloop"

local TOTAL = math.tointeger(tonumber(arg[1]) or 1024 * 1024 * 1024)
local CHUNK = 256 * 1024

aloop.run(function()
  local received, done = 0, aloop.Event()
  local server = aloop.start_server(function(s)
    while true do
      local data = s:read(1024 * 1024)
      if data == "" then break end
      received = received + #data
    end
    done:set()
  end, "127.0.0.1", 0)
  local s = aloop.open_connection("127.0.0.1", server:port())
  local chunk = string.rep("x", CHUNK)
  local t0 = aloop.time()
  for _ = 1, TOTAL // CHUNK do
    s:write(chunk)
    s:drain()
  end
  s:write_eof()
  done:wait()
  local elapsed = aloop.time() - t0
  assert(received == TOTAL, "received " .. received)
  s:close()
  server:close()
  server:wait_closed()
  print(string.format("RESULT seconds=%.6f bytes=%d mbps=%.1f", elapsed, TOTAL, TOTAL / elapsed / 1e6))
end)
