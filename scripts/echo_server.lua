-- echo_server.lua: a TCP echo server. Each connection sends a message, gets
-- it back, and is closed; a task per connection, so many clients are served
-- at once. Mirrors the TCP echo server of Python's asyncio streams docs.
--   aloop scripts/echo_server.lua [port [host]]   (8888, 127.0.0.1; port 0
--   picks a free one)
local aloop = require "aloop"
io.stdout:setvbuf("line")

local port = tonumber(arg[1] or "8888")
local host = arg[2] or "127.0.0.1"

local function handle_echo(stream)
  local data = stream:read(100)
  local addr = stream:get_extra_info("peername")
  print(("Received %q from %s:%d"):format(data, addr[1], addr[2]))
  print(("Send: %q"):format(data))
  stream:write(data)
  stream:drain()
  print("Close the connection")
  stream:close()
  stream:wait_closed()
end

local server = aloop.start_server(handle_echo, host, math.tointeger(port))
local addrs = {}
for i, a in ipairs(server:sockets()) do
  addrs[i] = (a[1]:find(":") and "[" .. a[1] .. "]" or a[1]) .. ":" .. a[2]
end
print("Serving on " .. table.concat(addrs, ", "))
server:serve_forever()
