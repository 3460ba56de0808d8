-- echo_client.lua: sends a message to the echo server and prints what comes
-- back. Mirrors the TCP echo client of Python's asyncio streams docs.
--   aloop scripts/echo_client.lua [host [port [message]]]
local aloop = require "aloop"

local host = arg[1] or "127.0.0.1"
local port = math.tointeger(tonumber(arg[2] or "8888"))
local message = arg[3] or "Hello World!"

local stream <close> = aloop.open_connection(host, port)
print(("Send: %q"):format(message))
stream:write(message)
stream:drain()
local data = stream:read(100)
print(("Received: %q"):format(data))
print("Close the connection")
stream:close()
stream:wait_closed()
