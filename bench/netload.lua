-- netload.lua -- many concurrent connections to one aloop echo server, a
-- number of round trips each, every byte accounted for.
--
--   aloop bench/netload.lua both N R     server and clients in one process
--   aloop bench/netload.lua client N R   clients here, the server in a child
--                                        aloop process (`server` mode), so
--                                        each side has its own descriptors
--   aloop bench/netload.lua server N     serves N connections, prints its port
--                                        first, its totals at the end
--
-- Prints "RESULT connections=N sent=S received=S lost=L failed=F
-- seconds=T"; exits 1 if a byte was lost or a connection failed. `make
-- stress` runs the client mode with 10 000 connections; spec/22-load_spec.lua
-- the both mode with 2 000.
local aloop = require "aloop"

local mode = arg[1] or "both"
local N = math.tointeger(tonumber(arg[2] or "2000"))
local R = math.tointeger(tonumber(arg[3] or "50"))
local SIZE = 100

-- The server: echo, and count what it echoed; done after n connections.
local function serve(n)
  local done_conns, echoed = 0, 0
  local all_done = aloop.Event()
  local srv = aloop.start_server(function(s)
    while true do
      local d = s:read(65536)
      if d == "" then break end
      echoed = echoed + #d
      s:write(d)
      s:drain()
    end
    done_conns = done_conns + 1
    if done_conns == n then all_done:set() end
  end, "127.0.0.1", 0, { backlog = 4096 })
  return srv, all_done, function() return echoed end
end

-- One client: R messages of SIZE bytes naming the client and the round,
-- each read back and compared.
local function client(port, id, totals)
  local ok, err = pcall(function()
    local s <close> = aloop.open_connection("127.0.0.1", port)
    for r = 1, R do
      local msg = string.format("%08d:%08d:", id, r)
      msg = msg .. string.rep(string.char(65 + (id + r) % 26), SIZE - #msg)
      s:write(msg)
      totals.sent = totals.sent + #msg
      local back = s:readexactly(#msg)
      totals.received = totals.received + #back
      if back ~= msg then totals.mismatched = totals.mismatched + 1 end
    end
  end)
  if not ok then
    totals.failed = totals.failed + 1
    if totals.failed <= 5 then io.stderr:write("client ", id, ": ", tostring(err), "\n") end
  end
end

local function run_clients(port)
  local totals = { sent = 0, received = 0, mismatched = 0, failed = 0 }
  local t0 = aloop.time()
  local tasks = {}
  for id = 1, N do tasks[id] = aloop.create_task(client, port, id, totals) end
  aloop.gather(tasks)
  return totals, aloop.time() - t0
end

local function report(totals, secs, echoed)
  local lost = totals.sent - totals.received
  print(string.format("RESULT connections=%d sent=%d received=%d lost=%d failed=%d mismatched=%d%s seconds=%.3f",
    N, totals.sent, totals.received, lost, totals.failed, totals.mismatched,
    echoed and (" echoed=" .. echoed) or "", secs))
  if lost ~= 0 or totals.failed ~= 0 or totals.mismatched ~= 0 then os.exit(1) end
end

if mode == "server" then
  local srv, all_done, echoed = serve(N)
  print("PORT " .. srv:port())
  io.stdout:flush()
  all_done:wait()
  srv:close()
  srv:wait_closed()
  print("SERVER echoed=" .. echoed())
elseif mode == "client" then
  local self = arg[-1] or "aloop"
  local child = assert(io.popen(string.format("exec %q %q server %d", self, arg[0], N), "r"))
  local port = math.tointeger(tonumber(child:read("l"):match("^PORT (%d+)")))
  local totals, secs = run_clients(port)
  local tail = child:read("a")
  child:close()
  report(totals, secs, tail:match("echoed=(%d+)"))
else
  local srv, all_done, echoed = serve(N)
  local totals, secs = run_clients(srv:port())
  all_done:wait()
  srv:close()
  srv:wait_closed()
  report(totals, secs, echoed())
end
