-- http_helper.lua -- what the HTTP specs share (loaded with dofile, not a
-- spec itself): nginx from Debian's packages, configured from
-- spec/fixtures/nginx/nginx.conf.in, on two free loopback ports (plain
-- HTTP/1.1, and TLS with HTTP/2 under a certificate made now with
-- `openssl`), under a temporary prefix, started in the foreground, bounded
-- in time and stopped by its pid; its access log read back.
local aloop = require "aloop"
local N = dofile("spec/net_helper.lua")
local X = {}

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, "command failed: " .. cmd)
end

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
X.readfile = readfile

local function writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
X.writefile = writefile

-- Two distinct free ports on 127.0.0.1 (servers on port 0, then closed).
local function free_ports()
  local a, b
  aloop.run(function()
    local s1 = aloop.start_server(function() end, "127.0.0.1", 0)
    local s2 = aloop.start_server(function() end, "127.0.0.1", 0)
    a, b = s1:port(), s2:port()
    s1:close()
    s2:close()
    s1:wait_closed()
    s2:wait_closed()
  end)
  return a, b
end

-- The files the server serves, made now: small.txt, 1k.bin, 4mb.bin (and
-- 100mb.bin on X.big()).
local function make_files(www)
  sh("mkdir -p " .. www .. "/static")
  writefile(www .. "/static/small.txt", "hello from nginx\n")
  local k = {}
  for i = 1, 1024 do k[i] = string.char(32 + (i * 7) % 90) end
  writefile(www .. "/static/1k.bin", table.concat(k))
  sh(("head -c %d /dev/urandom > %s/static/4mb.bin"):format(4 * 1024 * 1024, www))
end

local Server = {}
Server.__index = Server

function X.start()
  local prefix = N.tmpdir()
  local port, tlsport = free_ports()
  local conf = assert(readfile("spec/fixtures/nginx/nginx.conf.in"))
  conf = conf:gsub("@PREFIX@", prefix):gsub("@PORT@", tostring(port)):gsub("@TLSPORT@", tostring(tlsport))
  writefile(prefix .. "/nginx.conf", conf)
  make_files(prefix .. "/www")
  sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes " ..
    "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=localhost " ..
    "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null"):format(prefix, prefix))
  sh(("nginx -p %s -c %s/nginx.conf -e %s/error.log > %s/out.log 2>&1 & echo $! > %s/launch.pid")
    :format(prefix, prefix, prefix, prefix, prefix))
  local pid = tonumber(readfile(prefix .. "/launch.pid"))
  local s = setmetatable({ prefix = prefix, port = port, tlsport = tlsport, pid = pid,
    cert = prefix .. "/cert.pem", www = prefix .. "/www" }, Server)
  -- nginx writes its pid file once it listens: wait for it, 10 s at most
  for _ = 1, 200 do
    if readfile(prefix .. "/nginx.pid") then return s end
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
    os.execute("sleep 0.05")
  end
  local log = (readfile(prefix .. "/out.log") or "") .. (readfile(prefix .. "/error.log") or "")
  s:stop()
  error("nginx did not start: " .. log)
end

function Server:url(path) return ("http://127.0.0.1:%d%s"):format(self.port, path or "/") end
function Server:tls_url(path) return ("https://localhost:%d%s"):format(self.tlsport, path or "/") end

-- A file of n bytes under /static/ (made once), for the big transfers.
function Server:make_file(name, n)
  local path = self.www .. "/static/" .. name
  if not readfile(path .. ".made") then
    sh(("head -c %d /dev/urandom > %s && touch %s.made"):format(n, path, path))
  end
  return path
end

-- The access log: a list of {conn, conn_requests, start, finish, status,
-- protocol, request, bytes}; only the requests for `path` when given
-- (an aborted slow request is logged when nginx is done with it).
function Server:log(path)
  local out = {}
  for line in (readfile(self.prefix .. "/access.log") or ""):gmatch("[^\n]+") do
    local conn, n, msec, rt, status, proto, req, bytes =
      line:match('^(%d+) (%d+) ([%d.]+) ([%d.]+) (%d+) (%S+) "(.-)" (%d+)$')
    if conn and (not path or req:match("^%S+ ([^%s?]+)") == path) then
      out[#out + 1] = { conn = tonumber(conn), conn_requests = tonumber(n),
        start = tonumber(msec) - tonumber(rt), finish = tonumber(msec), status = tonumber(status),
        protocol = proto, request = req, bytes = tonumber(bytes) }
    end
  end
  return out
end

-- Forget the log so far (the next X:log() starts after this).
function Server:clear_log()
  writefile(self.prefix .. "/access.log", "")
  os.execute(("kill -USR1 %d"):format(self.pid)) -- reopen it
  os.execute("sleep 0.05")
end

-- The most requests whose [start, finish] overlap, among entries. nginx
-- logs times in milliseconds, so a request that starts as another ends
-- may seem to overlap it by a millisecond or two: 3 ms are forgiven.
function X.max_in_flight(entries)
  local ev, eps = {}, 0.003
  for _, e in ipairs(entries) do
    if e.finish - e.start > 2 * eps then
      ev[#ev + 1] = { e.start + eps, 1 }
      ev[#ev + 1] = { e.finish - eps, -1 }
    end
  end
  table.sort(ev, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
  local n, most = 0, 0
  for _, e in ipairs(ev) do
    n = n + e[2]
    if n > most then most = n end
  end
  return most
end

function Server:stop()
  if self.pid then
    os.execute(("kill -TERM %d 2>/dev/null"):format(self.pid))
    for _ = 1, 100 do
      if not os.execute(("kill -0 %d 2>/dev/null"):format(self.pid)) then break end
      os.execute("sleep 0.05")
    end
    os.execute(("kill -KILL %d 2>/dev/null"):format(self.pid))
    self.pid = nil
  end
  N.rmdir(self.prefix)
end

return X
