-- TLS, aloop side: a TLS echo server and 50 clients in one process, each
-- doing 1 000 round trips of 64 bytes (write, then readexactly), all at
-- once on 127.0.0.1; then 64 MiB sent through one TLS connection (written
-- in 64 KiB pieces with drain; the server answers once it has them all).
-- Certificates (a CA and a server certificate for localhost, ECDSA P-256)
-- are made with the openssl command in a temp dir first, untimed; the
-- client verifies them. Compared with bench/tls.py (asyncio with ssl).
local aloop = require "aloop"

local CLIENTS = tonumber(arg[1]) or 50
local ROUNDS = tonumber(arg[2]) or 1000
local BULK = (tonumber(arg[3]) or 64) * 1024 * 1024
local SIZE = 64

local function sh(cmd) assert(os.execute(cmd .. " >/dev/null 2>&1"), cmd) end
local dir = io.popen("mktemp -d /tmp/aloop-bench-tls.XXXXXX"):read("l")
local key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
sh("cd " .. dir .. " && " .. key .. "-x509 -days 2 -subj /CN=ca -keyout ca.key -out ca.pem")
sh("cd " .. dir .. " && " .. key .. "-subj /CN=localhost -keyout server.key -out server.csr")
sh("cd " .. dir .. " && echo subjectAltName=DNS:localhost > ext && openssl x509 -req -days 2 -in server.csr" ..
  " -CA ca.pem -CAkey ca.key -CAcreateserial -extfile ext -out server.pem")

aloop.run(function()
  local server = aloop.start_server(function(s)
    local first = s:readexactly(1)
    if first == "B" then -- bulk: count, then answer
      local left = BULK
      while left > 0 do left = left - #s:read(math.min(left, 262144)) end
      s:write("ok")
      s:drain()
      return
    end
    s:write(first)
    while true do
      local data = s:read(65536)
      if data == "" then break end
      s:write(data)
      s:drain()
    end
  end, "127.0.0.1", 0, { tls = { cert = dir .. "/server.pem", key = dir .. "/server.key" } })
  local port = server:port()
  local ctls = { cafile = dir .. "/ca.pem" }
  local streams = {}
  for i = 1, CLIENTS do
    streams[i] = aloop.open_connection("127.0.0.1", port, { tls = ctls, server_hostname = "localhost" })
    streams[i]:write("E")
    assert(streams[i]:readexactly(1) == "E")
  end
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
  local echo = aloop.time() - t0
  for i = 1, CLIENTS do streams[i]:close() end

  local s = aloop.open_connection("127.0.0.1", port, { tls = ctls, server_hostname = "localhost" })
  local chunk = string.rep("b", 65536)
  t0 = aloop.time()
  s:write("B")
  for _ = 1, BULK // #chunk do
    s:write(chunk)
    s:drain()
  end
  assert(s:readexactly(2) == "ok")
  local bulk = aloop.time() - t0
  s:close()
  server:close()
  server:wait_closed()
  local n = CLIENTS * ROUNDS
  print(string.format("RESULT seconds=%.6f round_trips=%d rtps=%.0f bulk_seconds=%.6f bulk_mib_s=%.1f",
    echo, n, n / echo, bulk, BULK / 1048576 / bulk))
end)
os.execute("rm -rf " .. dir)
