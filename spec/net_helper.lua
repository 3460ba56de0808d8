-- net_helper.lua -- what the network specs share (loaded with dofile, not
-- a spec itself): a test body run as H.async does, that afterwards also
-- fails if a descriptor was left open or an I/O watcher left running; an
-- echo server; a temporary directory.
local aloop = require "aloop"
local N = {}

-- The descriptors open in this process, as a string of numbers: probed
-- one by one through /proc/self/fd (a missing one is ENOENT; a socket
-- cannot be opened there but is not missing).
function N.fds()
  local list = {}
  for fd = 0, 1100 do
    local f, err = io.open("/proc/self/fd/" .. fd)
    if f then
      f:close()
      list[#list + 1] = fd
    elseif not err:find("No such file", 1, true) then
      list[#list + 1] = fd
    end
  end
  return table.concat(list, " ")
end

-- libev opens a descriptor or two the first time a loop runs (the signal
-- pipe): open them before anything is counted.
aloop.run(function() aloop.sleep(0) end)

-- H.async, and then: no descriptor more than before, no watcher running.
function N.async(fn, limit)
  local body = H.async(fn, limit)
  return function()
    collectgarbage()
    collectgarbage()
    local before = N.fds()
    body()
    collectgarbage()
    collectgarbage()
    local io_left = aloop._stats().io
    assert(io_left == 0, "I/O watchers left running after the test: " .. io_left)
    local after = N.fds()
    assert(before == after, "descriptors left open after the test: before " ..
      before .. ", after " .. after)
  end
end

-- An echo server on 127.0.0.1 (or host), port 0: every byte back, then a
-- write_eof at the end of stream.
function N.echo(s)
  while true do
    local d = s:read(65536)
    if d == "" then break end
    s:write(d)
    s:drain()
  end
  s:write_eof()
end

function N.echo_server(host, opts)
  return aloop.start_server(N.echo, host or "127.0.0.1", 0, opts)
end

-- A fresh directory under /tmp, removed by N.rmdir.
function N.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/aloop-net.XXXXXX"))
  local d = p:read("l")
  p:close()
  return d
end

function N.rmdir(d)
  os.execute("rm -rf " .. H.quote(d))
end

-- A deterministic pseudo-random string of n bytes.
function N.bytes(n, seed)
  local parts, x = {}, seed or 1
  local chunk = {}
  for i = 1, 4096 do
    x = (x * 1103515245 + 12345) % 2147483648
    chunk[i] = string.char(x % 256)
  end
  local s = table.concat(chunk)
  for i = 1, n // #s do parts[i] = s end
  parts[#parts + 1] = s:sub(1, n % #s)
  return table.concat(parts)
end

-- TLS material made with the openssl command in dir: a CA (ca.pem), a
-- server certificate for localhost, 127.0.0.1 and ::1 signed by it
-- (server.pem, server.key), a client certificate (client.pem, client.key),
-- and a second CA that signed nothing here (other.pem). Returns the paths.
function N.certs(dir)
  local function run(cmd)
    local ok = os.execute("cd " .. H.quote(dir) .. " && (" .. cmd .. ") >/dev/null 2>&1")
    assert(ok, "openssl failed: " .. cmd)
  end
  local key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
  local function ca(name)
    run(key .. "-x509 -days 2 -subj /CN=" .. name .. " -keyout " .. name .. ".key -out " .. name .. ".pem")
  end
  local function leaf(name, cn, ext)
    run(key .. "-subj /CN=" .. cn .. " -keyout " .. name .. ".key -out " .. name .. ".csr")
    local f = assert(io.open(dir .. "/" .. name .. ".ext", "w"))
    f:write(ext, "\n")
    f:close()
    run("openssl x509 -req -days 2 -in " .. name .. ".csr -CA ca.pem -CAkey ca.key -CAcreateserial" ..
      " -extfile " .. name .. ".ext -out " .. name .. ".pem")
  end
  ca("ca")
  ca("other")
  leaf("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1")
  leaf("client", "aloop-client", "extendedKeyUsage=clientAuth")
  local p = {}
  for _, n in ipairs({ "ca", "other", "server", "client" }) do
    p[n] = dir .. "/" .. n .. ".pem"
    p[n .. "_key"] = dir .. "/" .. n .. ".key"
  end
  return p
end

return N
