-- 24-tls_spec.lua -- TLS on streams and servers (core/tls.c, bindings/ltls.c,
-- aloop/streams.lua): verification of the chain and the name by default,
-- its failures as TLS errors with OpenSSL's reason, client certificates,
-- ALPN, STARTTLS with bytes read ahead, close_notify against truncation,
-- 10 MB each way, interop with openssl s_server and s_client (started here
-- on a free loopback port, bounded in time and stopped by pid),
-- cancellation mid-handshake, and the combined error of a name whose every
-- address fails. Certificates are made at test time in a temp dir.
local aloop = require "aloop"
local N = dofile("spec/net_helper.lua")

local dir, C

setup(function()
  dir = N.tmpdir()
  C = N.certs(dir)
end)

teardown(function()
  N.rmdir(dir)
end)

local function server_tls(extra)
  local t = { cert = C.server, key = C.server_key }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function tls_echo_server(extra)
  return aloop.start_server(N.echo, "127.0.0.1", 0, { tls = server_tls(extra) })
end

-- A port free on 127.0.0.1 now (for the openssl programs).
local function free_port()
  local srv = aloop.start_server(function() end, "127.0.0.1", 0)
  local port = srv:port()
  srv:close()
  srv:wait_closed()
  return port
end

-- Start a shell command line in the background (under timeout); its pid.
local function spawn(cmdline, out)
  local pidfile = dir .. "/pid"
  os.remove(pidfile)
  assert(os.execute(("timeout 20 %s >%s 2>&1 </dev/null & echo $! >%s"):format(
    cmdline, H.quote(out), H.quote(pidfile))))
  local f = assert(io.open(pidfile))
  local pid = f:read("n")
  f:close()
  return pid
end

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local function stop(pid)
  os.execute("kill " .. pid .. " 2>/dev/null")
  for _ = 1, 50 do
    if not alive(pid) then return end
    aloop.sleep(0.1)
  end
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

describe("TLS client", function()
  it("verifies the server against cafile and moves bytes", N.async(function()
    local srv <close> = tls_echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
    s:write("hello\n")
    assert.equal("hello\n", s:readline())
    assert.matches("^TLSv1%.[23]$", s:get_extra_info("version"))
    local cipher = s:get_extra_info("cipher")
    assert.is_string(cipher[1])
    assert.is_true(cipher[3] >= 128)
    local cert = s:get_extra_info("peercert")
    assert.equal("CN=localhost", cert.subject)
    assert.equal("CN=ca", cert.issuer)
    assert.same({ "DNS", "localhost" }, cert.subjectAltName[1])
    assert.same({ "IP Address", "127.0.0.1" }, cert.subjectAltName[2])
    local obj = s:get_extra_info("ssl_object")
    assert.is_false(obj.server_side)
    assert.is_nil(s:get_extra_info("alpn"))
    assert.equal("dflt", s:get_extra_info("nothing", "dflt"))
    s:write_eof()
    assert.equal("", s:read())
  end))

  it("by name: localhost is checked and sent as SNI", N.async(function()
    local seen
    local srv <close> = aloop.start_server(function(s)
      seen = s:get_extra_info("ssl_object").server_hostname
      s:write("ok")
    end, "127.0.0.1", 0, { tls = server_tls() })
    local s <close> = aloop.open_connection("localhost", srv:port(), { tls = { cafile = C.ca }, family = "inet" })
    assert.equal("ok", s:readexactly(2))
    assert.equal("localhost", seen)
  end))

  it("verifies by default: an unknown CA fails with the verify result", N.async(function()
    local srv <close> = tls_echo_server()
    local e = H.raises(aloop.open_connection, "127.0.0.1", srv:port(), { tls = true })
    assert.is_true(aloop.is_tls_error(e))
    assert.matches("certificate verify failed: ", tostring(e))
    e = H.raises(aloop.open_connection, "127.0.0.1", srv:port(), { tls = { cafile = C.other } })
    assert.is_true(aloop.is_tls_error(e))
    assert.matches("^TLSError: certificate verify failed: unable to get local issuer certificate", tostring(e))
    assert.is_string(e.verify_message)
    assert.is_false(aloop.is_connection_error(e))
    assert.is_false(aloop.is_tls_error("certificate verify failed"))
  end))

  it("a wrong host name fails; server_hostname chooses the name", N.async(function()
    local srv <close> = tls_echo_server()
    local e = H.raises(aloop.open_connection, "127.0.0.1", srv:port(),
      { tls = { cafile = C.ca }, server_hostname = "example.com" })
    assert.is_true(aloop.is_tls_error(e))
    assert.matches("certificate verify failed: hostname mismatch", e.message)
    e = H.raises(aloop.open_connection, "127.0.0.1", srv:port(),
      { tls = { cafile = C.ca, server_hostname = "other.test" } })
    assert.matches("hostname mismatch", e.message)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(),
      { tls = { cafile = C.ca }, server_hostname = "localhost" })
    s:write("x")
    assert.equal("x", s:read(1))
  end))

  it("verify = false accepts any certificate", N.async(function()
    local srv <close> = tls_echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(),
      { tls = { verify = false }, server_hostname = "example.com" })
    s:write("ping")
    assert.equal("ping", s:readexactly(4))
  end))

  it("checks its options", N.async(function()
    local e = H.raises(aloop.open_connection, "127.0.0.1", 1, { tls = 5 })
    assert.matches("bad argument #3 to 'open_connection'", tostring(e))
    e = H.raises(aloop.open_connection, "127.0.0.1", 1, { tls = { cafile = 1 } })
    assert.matches("tls.cafile", tostring(e))
    e = H.raises(aloop.open_connection, "127.0.0.1", 1, { server_hostname = "x" })
    assert.matches("only meaningful with tls", tostring(e))
    e = H.raises(aloop.open_connection, "127.0.0.1", 1, { tls = { cafile = dir .. "/missing.pem" } })
    assert.is_true(aloop.is_tls_error(e))
    assert.matches("missing.pem", e.message)
    e = H.raises(aloop.start_server, N.echo, "127.0.0.1", 0, { tls = {} })
    assert.matches("needs tls.cert", tostring(e))
  end))

  it("over a Unix socket, with server_hostname", N.async(function()
    local path = dir .. "/tls.sock"
    local _srv <close> = aloop.start_unix_server(N.echo, path, { tls = server_tls() })
    local e = H.raises(aloop.open_unix_connection, path, { tls = { cafile = C.ca } })
    assert.matches("server_hostname is required", tostring(e))
    local s <close> = aloop.open_unix_connection(path, { tls = { cafile = C.ca }, server_hostname = "localhost" })
    s:write("unix")
    assert.equal("unix", s:readexactly(4))
  end))
end)

describe("TLS server", function()
  it("requires and verifies client certificates with verify_client", N.async(function()
    local who = {}
    local srv <close> = aloop.start_server(function(s)
      who[#who + 1] = s:get_extra_info("peercert").subject
      s:write("hi")
    end, "127.0.0.1", 0, { tls = server_tls({ cafile = C.ca, verify_client = true }) })
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(),
      { tls = { cafile = C.ca, cert = C.client, key = C.client_key } })
    assert.equal("hi", s:readexactly(2))
    assert.same({ "CN=aloop-client" }, who)
    -- without one: the handshake (TLS 1.2) or the first read (TLS 1.3,
    -- where the server's refusal comes after the client's handshake) fails
    local e = H.raises(function()
      local c <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
      return c:read()
    end)
    assert.is_true(aloop.is_tls_error(e), tostring(e))
    assert.same({ "CN=aloop-client" }, who) -- the handler never ran for it
  end))

  it("a failed handshake closes that connection, is not a handler error, and the server goes on",
    N.async(function()
      local calls = 0
      local srv <close> = aloop.start_server(function(s)
        calls = calls + 1
        N.echo(s)
      end, "127.0.0.1", 0, { tls = server_tls() })
      for _ = 1, 3 do
        local e = H.raises(aloop.open_connection, "127.0.0.1", srv:port(), { tls = { cafile = C.other } })
        assert.is_true(aloop.is_tls_error(e))
      end
      -- a plain client that speaks no TLS
      local p <close> = aloop.open_connection("127.0.0.1", srv:port())
      p:write("GET / HTTP/1.0\r\n\r\n")
      local ok, got = pcall(p.read, p)
      assert.is_true(not ok or #got < 200)
      local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
      s:write("fine")
      assert.equal("fine", s:readexactly(4))
      assert.equal(1, calls)
      -- in debug mode the failure is reported (not as a handler error)
      local reports = H.reports_of(function()
        aloop.set_debug(true, 60) -- (no slow-step reports, even under valgrind)
        pcall(aloop.open_connection, "127.0.0.1", srv:port(), { tls = { cafile = C.other } })
        for _ = 1, 500 do -- until the server's connection task is over
          if next(srv._conns) == nil then break end
          aloop.sleep(0.01)
        end
        aloop.set_debug(false, 0.1) -- (the default threshold back)
      end)
      local tls_reports = {}
      for _, r in ipairs(reports) do
        if r.message == "TLS handshake with a client failed" then tls_reports[#tls_reports + 1] = r end
      end
      assert.equal(1, #tls_reports)
      assert.is_true(aloop.is_tls_error(tls_reports[1].exception))
    end))

  it("negotiates ALPN", N.async(function()
    local chosen
    local srv <close> = aloop.start_server(function(s)
      chosen = s:get_extra_info("alpn")
      s:write("x")
    end, "127.0.0.1", 0, { tls = server_tls({ alpn = { "h2", "http/1.1" } }) })
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(),
      { tls = { cafile = C.ca, alpn = { "spdy/1", "http/1.1" } } })
    assert.equal("x", s:read(1))
    assert.equal("http/1.1", s:get_extra_info("alpn"))
    assert.equal("http/1.1", chosen)
    assert.equal("http/1.1", s:get_extra_info("ssl_object").alpn)
    -- nothing in common: no protocol chosen, the connection goes on
    local n <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca, alpn = { "x" } } })
    assert.equal("x", n:read(1))
    assert.is_nil(n:get_extra_info("alpn"))
    assert.is_nil(chosen)
  end))

  it("moves 10 MB each way byte for byte (aloop server, aloop client)", N.async(function()
    local srv <close> = tls_echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
    local data = N.bytes(10 * 1024 * 1024, 7)
    local writer = aloop.create_task(function()
      for i = 1, #data, 100000 do
        s:write(data:sub(i, i + 99999))
        s:drain()
      end
      s:write_eof()
    end)
    local got = s:read()
    writer:await()
    assert.equal(#data, #got)
    assert.is_true(got == data, "the bytes differ")
  end, 60))
end)

describe("TLS versions and ciphers", function()
  it("min_version and max_version bound what is negotiated; no overlap fails the handshake",
    N.async(function()
      local srv12 <close> = tls_echo_server({ max_version = "TLSv1.2" })
      local s <close> = aloop.open_connection("127.0.0.1", srv12:port(), { tls = { cafile = C.ca } })
      assert.equal("TLSv1.2", s:get_extra_info("version"))
      local s2 <close> = aloop.open_connection("127.0.0.1", srv12:port(),
        { tls = { cafile = C.ca, min_version = "TLSv1.2", max_version = "TLSv1.2" } })
      assert.equal("TLSv1.2", s2:get_extra_info("version"))
      local e = H.raises(aloop.open_connection, "127.0.0.1", srv12:port(),
        { tls = { cafile = C.ca, min_version = "TLSv1.3" } })
      assert.is_true(aloop.is_tls_error(e))
      assert.matches("protocol version", tostring(e))
      local srv <close> = tls_echo_server()
      local s3 <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
      assert.equal("TLSv1.3", s3:get_extra_info("version")) -- the newest by default
    end))

  it("ciphers (TLS 1.2) and ciphersuites (TLS 1.3) choose what is used", N.async(function()
    local srv <close> = tls_echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = {
      cafile = C.ca, max_version = "TLSv1.2", ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305" } })
    assert.equal("ECDHE-ECDSA-CHACHA20-POLY1305", s:get_extra_info("cipher")[1])
    local s13 <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = {
      cafile = C.ca, ciphersuites = "TLS_CHACHA20_POLY1305_SHA256" } })
    assert.equal("TLS_CHACHA20_POLY1305_SHA256", s13:get_extra_info("cipher")[1])
    s:write("x")
    assert.equal("x", s:readexactly(1))
  end))

  it("refuses unknown versions and cipher lists, naming the option", N.async(function()
    local e = H.raises(aloop.open_connection, "127.0.0.1", 1, { tls = { min_version = "SSLv3" } })
    assert.matches("bad argument #3 to 'open_connection' %(tls.min_version must be \"TLSv1.2\" or \"TLSv1.3\"%)",
      tostring(e))
    e = H.raises(aloop.open_connection, "127.0.0.1", 1,
      { tls = { min_version = "TLSv1.3", max_version = "TLSv1.2" } })
    assert.matches("tls.min_version is above tls.max_version", tostring(e))
    e = H.raises(aloop.open_connection, "127.0.0.1", 1, { tls = { ciphers = 5 } })
    assert.matches("tls.ciphers must be a string", tostring(e))
    e = H.raises(aloop.start_server, N.echo, "127.0.0.1", 0, { tls = server_tls({ ciphers = "NO-SUCH-CIPHER" }) })
    assert.is_true(aloop.is_tls_error(e))
    assert.matches("the cipher list", tostring(e))
    e = H.raises(aloop.open_connection, "127.0.0.1", 1, { tls = { ciphersuites = "TLS_NO_SUCH" } })
    assert.is_true(aloop.is_tls_error(e))
    assert.matches("the TLS 1.3 cipher suites", tostring(e))
  end))
end)

describe("TLS ends", function()
  it("close sends close_notify: the reader sees a clean end", N.async(function()
    local srv <close> = aloop.start_server(function(s)
      s:write("last words")
      s:close()
    end, "127.0.0.1", 0, { tls = server_tls() })
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
    assert.equal("last words", s:read())
    assert.is_true(s:at_eof())
  end))

  it("write_eof sends close_notify and the peer can still answer (half-close)", N.async(function()
    local srv <close> = aloop.start_server(function(s)
      local got = s:read()
      s:write("reply to " .. got)
    end, "127.0.0.1", 0, { tls = server_tls() })
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
    s:write("question")
    s:write_eof()
    assert.equal("reply to question", s:read())
  end))

  it("a peer that closes without close_notify gives an incomplete read", N.async(function()
    -- a plain relay in front of a TLS server: it cuts the client's side
    -- (a TCP FIN, no close_notify) when told to
    local cut = aloop.Event()
    local tls_srv <close> = aloop.start_server(function(s)
      s:write("0123456789")
      s:drain()
      aloop.sleep(30)
    end, "127.0.0.1", 0, { tls = server_tls() })
    local relay <close> = aloop.start_server(function(c)
      local up <close> = aloop.open_connection("127.0.0.1", tls_srv:port())
      local function pump(from, to)
        while true do
          local d = from:read(65536)
          if d == "" then return end
          to:write(d)
        end
      end
      local a = aloop.create_task(pump, c, up)
      local b = aloop.create_task(pump, up, c)
      cut:wait()
      a:cancel()
      b:cancel()
      c:close()
      up:abort()
    end, "127.0.0.1", 0)
    local s <close> = aloop.open_connection("127.0.0.1", relay:port(), { tls = { cafile = C.ca } })
    assert.equal("0123", s:readexactly(4))
    assert.equal("4567", s:readexactly(4))
    cut:set()
    local e = H.raises(s.readexactly, s, 10)
    assert.is_true(aloop.is_incomplete_read(e), tostring(e))
    assert.equal("89", e.partial)
    assert.equal(10, e.expected)
    assert.matches("close_notify", e.message)
    tls_srv:close()
  end))

  it("a read under wait_for times out and loses nothing", N.async(function()
    local go = aloop.Event()
    local srv <close> = aloop.start_server(function(s)
      go:wait()
      s:write("late")
      s:close()
    end, "127.0.0.1", 0, { tls = server_tls() })
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
    local e = H.raises(aloop.wait_for, function() return s:read(10) end, 0.1)
    assert.is_true(aloop.is_timeout(e))
    go:set()
    assert.equal("late", s:read())
  end))
end)

describe("start_tls", function()
  it("upgrades a plain stream; bytes read ahead go to the handshake", N.async(function()
    local srv <close> = aloop.start_server(function(s)
      assert.equal("STARTTLS\n", s:readline())
      -- the client did not wait: its ClientHello is in the read buffer
      s:start_tls({ server_side = true, cert = C.server, key = C.server_key })
      assert.equal("secret\n", s:readline())
      s:write("granted\n")
    end, "127.0.0.1", 0)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    s:write("STARTTLS\n")
    assert.equal(s, s:start_tls({ cafile = C.ca, server_hostname = "localhost" }))
    s:write("secret\n")
    assert.equal("granted\n", s:readline())
    assert.equal("TLSv1.3", s:get_extra_info("version"))
    local e = H.raises(s.start_tls, s, { cafile = C.ca, server_hostname = "localhost" })
    assert.matches("already using TLS", tostring(e))
  end))

  it("writes while the handshake goes on wait for it, in order; a read raises at once",
    N.async(function()
      local got = aloop.Future()
      local srv <close> = aloop.start_server(function(s)
        s:readline()
        aloop.sleep(0.2)
        s:start_tls({ server_side = true, cert = C.server, key = C.server_key })
        got:set_result(s:readexactly(3 + 200000))
      end, "127.0.0.1", 0)
      local s <close> = aloop.open_connection("127.0.0.1", srv:port())
      s:write("STARTTLS\n")
      local t = aloop.create_task(s.start_tls, s, { cafile = C.ca, server_hostname = "localhost" })
      H.settle()
      s:write("one")
      assert.equal(3, s:get_write_buffer_size()) -- waiting for the handshake
      local big = string.rep("0123456789", 20000)
      local drained = false
      local writer = aloop.create_task(function()
        s:write(big) -- over the high-water mark: drain waits for the handshake and the peer
        s:drain()
        drained = true
      end)
      H.settle()
      assert.is_false(drained)
      assert.matches("another task", tostring(H.raises(s.read, s, 1)))
      assert.equal(s, t:await())
      writer:await()
      assert.is_true(drained)
      assert.equal("one" .. big, got:await()) -- encrypted after the handshake, nothing lost
    end))

  it("a write_eof during the handshake waits for it and for the writes before it",
    N.async(function()
      local got = aloop.Future()
      local srv <close> = aloop.start_server(function(s)
        s:readline()
        aloop.sleep(0.1)
        s:start_tls({ server_side = true, cert = C.server, key = C.server_key })
        got:set_result(s:read()) -- to the end: the close_notify after "last words"
      end, "127.0.0.1", 0)
      local s <close> = aloop.open_connection("127.0.0.1", srv:port())
      s:write("STARTTLS\n")
      local t = aloop.create_task(s.start_tls, s, { cafile = C.ca, server_hostname = "localhost" })
      H.settle()
      s:write("last words")
      s:write_eof()
      assert.matches("write after write_eof", tostring(H.raises(s.write, s, "more")))
      assert.equal(s, t:await())
      assert.equal("last words", got:await())
    end))

  it("writes queued during a handshake that fails are dropped with the connection",
    N.async(function()
      local srv <close> = aloop.start_server(function(s)
        s:readline()
        pcall(s.start_tls, s, { server_side = true, cert = C.server, key = C.server_key })
      end, "127.0.0.1", 0)
      local s <close> = aloop.open_connection("127.0.0.1", srv:port())
      s:write("STARTTLS\n")
      local t = aloop.create_task(s.start_tls, s, { cafile = C.ca, server_hostname = "wrong.test" })
      H.settle()
      s:write("secret")
      local e = H.raises(t.await, t)
      assert.is_true(aloop.is_tls_error(e))
      assert.is_true(s:is_closing())
      assert.matches("closed stream", tostring(H.raises(s.write, s, "more")))
    end))

  it("after a plain exchange, and failing: the stream is closed", N.async(function()
    local srv <close> = aloop.start_server(function(s)
      s:write("220 ready\n")
      assert.equal("STARTTLS\n", s:readline())
      s:write("220 go ahead\n")
      pcall(s.start_tls, s, { server_side = true, cert = C.server, key = C.server_key })
    end, "127.0.0.1", 0)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    assert.equal("220 ready\n", s:readline())
    s:write("STARTTLS\n")
    assert.equal("220 go ahead\n", s:readline())
    local e = H.raises(s.start_tls, s, { cafile = C.ca, server_hostname = "wrong.test" })
    assert.is_true(aloop.is_tls_error(e))
    assert.is_true(s:is_closing())
  end))
end)

describe("TLS cancellation", function()
  it("a handshake cut by wait_for leaves no descriptor and no watcher", N.async(function()
    local srv <close> = aloop.start_server(function() aloop.sleep(30) end, "127.0.0.1", 0)
    for _ = 1, 3 do
      local e = H.raises(aloop.wait_for, function()
        return aloop.open_connection("127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
      end, 0.1)
      assert.is_true(aloop.is_timeout(e))
    end
    local t = aloop.create_task(aloop.open_connection, "127.0.0.1", srv:port(), { tls = { cafile = C.ca } })
    H.settle()
    t:cancel()
    assert.is_true(H.ended_cancelled(t))
  end))

  it("ssl_handshake_timeout bounds the server's wait for a silent client", N.async(function()
    local calls = 0
    local srv <close> = aloop.start_server(function() calls = calls + 1 end, "127.0.0.1", 0,
      { tls = server_tls(), ssl_handshake_timeout = 0.1 })
    local p <close> = aloop.open_connection("127.0.0.1", srv:port())
    assert.equal("", p:read()) -- the server gave up and closed
    assert.equal(0, calls)
  end))
end)

describe("openssl interop", function()
  it("an aloop client talks to openssl s_server", N.async(function()
    local port = free_port()
    local out = dir .. "/s_server.out"
    local pid = spawn(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -www -naccept 1"):format(
      port, H.quote(C.server), H.quote(C.server_key)), out)
    local s
    for _ = 1, 100 do
      local ok, r = pcall(aloop.open_connection, "127.0.0.1", port, { tls = { cafile = C.ca } })
      if ok then s = r break end
      aloop.sleep(0.05)
    end
    assert(s, "s_server did not start: " .. slurp(out))
    s:write("GET / HTTP/1.0\r\n\r\n")
    local ok, body = pcall(s.read, s)
    if not ok then body = aloop.is_incomplete_read(body) and body.partial or error(body, 0) end
    s:close()
    stop(pid)
    assert.matches("^HTTP/1%.0 200 ok", body)
    assert.matches("Ciphers supported in s_server", body)
  end))

  it("TLS 1.3 post-handshake messages: a KeyUpdate from s_server is read on the way, both ways go on",
    N.async(function()
    local port = free_port()
    local out, fifo = dir .. "/s_server_k.out", dir .. "/stdin.fifo"
    os.remove(fifo)
    assert(os.execute("mkfifo " .. H.quote(fifo)))
    local pidfile = dir .. "/pid"
    os.remove(pidfile)
    assert(os.execute(("timeout 20 openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -naccept 1 " ..
      "-tls1_3 >%s 2>&1 <%s & echo $! >%s"):format(port, H.quote(C.server), H.quote(C.server_key),
      H.quote(out), H.quote(fifo), H.quote(pidfile))))
    local input = assert(io.open(fifo, "w")) -- s_server's stdin: lines to send, "K" a KeyUpdate
    input:setvbuf("no")
    local f = assert(io.open(pidfile))
    local pid = f:read("n")
    f:close()
    local s
    for _ = 1, 100 do
      local ok, r = pcall(aloop.open_connection, "127.0.0.1", port, { tls = { cafile = C.ca } })
      if ok then s = r break end
      aloop.sleep(0.05)
    end
    assert(s, "s_server did not start: " .. slurp(out))
    local function wait_for_text(text)
      for _ = 1, 100 do
        if slurp(out):find(text, 1, true) then return true end
        aloop.sleep(0.05)
      end
      return false
    end
    s:write("before\n")
    assert.is_true(wait_for_text("before"))
    input:write("K\n") -- a KeyUpdate asking for ours in return
    aloop.sleep(0.1)
    input:write("from the server\n")
    assert.equal("from the server\n", s:readline()) -- the update was read on the way
    s:write("after\n") -- under the new keys
    local got = wait_for_text("after")
    input:close()
    s:close()
    stop(pid)
    assert.is_true(got, slurp(out))
    assert.matches("before\nSSL_do_handshake %-> 1\n", slurp(out)) -- s_server sent the update there
  end))

  it("openssl s_client talks to an aloop server", N.async(function()
    local srv <close> = aloop.start_server(function(s)
      s:write("hello from aloop\n")
      s:close()
    end, "127.0.0.1", 0, { tls = server_tls() })
    local out = dir .. "/s_client.out"
    local pid = spawn(("openssl s_client -connect 127.0.0.1:%d -servername localhost -CAfile %s " ..
      "-verify_return_error -ign_eof"):format(srv:port(), H.quote(C.ca)), out)
    for _ = 1, 200 do
      if not alive(pid) then break end
      aloop.sleep(0.05)
    end
    stop(pid)
    local text = slurp(out)
    assert.matches("hello from aloop", text)
    assert.matches("Verify return code: 0 %(ok%)", text)
  end))
end)

describe("connection errors", function()
  it("every address of a name failing gives one error naming each", N.async(function()
    local port = free_port()
    local e = H.raises(aloop.open_connection, "localhost", port)
    assert.is_true(aloop.is_connection_error(e))
    assert.matches("Multiple exceptions: ", tostring(e))
    assert.matches("::1 port " .. port, tostring(e))
    assert.matches("127%.0%.0%.1 port " .. port, tostring(e))
    assert.equal(2, #e.errors)
    e = H.raises(aloop.open_connection, "127.0.0.1", port)
    assert.equal("ECONNREFUSED", e.code)
    assert.is_nil(e.errors)
  end))
end)
