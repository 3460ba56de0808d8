-- 20-stream_spec.lua -- streams: open_connection, the reads (read, readline,
-- readuntil, readexactly, lines), writes with back-pressure, half-close,
-- errors from the OS and their recognisers, cancellation losing no byte,
-- one reader at a time, IPv6 and Unix sockets. Loopback only; every test
-- checks that no descriptor or watcher is left behind.
local aloop = require "aloop"
local N = dofile("spec/net_helper.lua")

-- A server whose handler is fn(stream), on 127.0.0.1 port 0.
local function server(fn, host, opts)
  return aloop.start_server(fn, host or "127.0.0.1", 0, opts)
end

describe("open_connection", function()
  it("connects, writes and reads back (echo)", N.async(function()
    local srv <close> = N.echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    s:write("hello\n")
    s:write("world\n")
    assert.equal("hello\n", s:readline())
    assert.equal("world\n", s:readline())
    s:write("a;b;c")
    assert.equal("a;", s:readuntil(";"))
    assert.equal("b;c", s:readexactly(3))
    s:write_eof()
    assert.equal("", s:read())
    assert.is_true(s:at_eof())
  end))

  it("refused: raises ECONNREFUSED, a connection error with errno and code", N.async(function()
    local srv = N.echo_server()
    local port = srv:port()
    srv:close()
    srv:wait_closed()
    local e = H.raises(aloop.open_connection, "127.0.0.1", port)
    assert.is_true(aloop.is_connection_error(e))
    assert.is_true(aloop.is_os_error(e))
    assert.equal("ECONNREFUSED", e.code)
    assert.equal(111, e.errno)
    assert.matches("^ECONNREFUSED: connection refused", tostring(e))
    assert.is_false(aloop.is_connection_error("ECONNREFUSED"))
  end))

  it("a connect that hangs ends under wait_for, leaving no socket", N.async(function()
    -- backlog 0 and nobody accepting: one connection fills the queue, and
    -- the SYN of the next is dropped, so that connect hangs
    local srv <close> = server(function() end, "127.0.0.1", { backlog = 0, start_serving = false })
    local held = {}
    local timed_out = false
    for _ = 1, 8 do
      local ok, s = pcall(aloop.wait_for, function()
        return aloop.open_connection("127.0.0.1", srv:port())
      end, 0.3)
      if ok then
        held[#held + 1] = s
      else
        assert.is_true(aloop.is_timeout(s), tostring(s))
        timed_out = true
        break
      end
    end
    assert.is_true(timed_out, "a connect to a full backlog should hang")
    -- and under a timeout scope too
    local e = H.raises(function()
      local _ <close> = aloop.timeout(0.1)
      aloop.open_connection("127.0.0.1", srv:port())
    end)
    assert.is_true(aloop.is_timeout(e))
    for _, s in ipairs(held) do s:close() end
  end))

  it("a cancelled connect closes its socket at once", N.async(function()
    local srv <close> = server(function() end, "127.0.0.1", { backlog = 0, start_serving = false })
    local _first <close> = aloop.open_connection("127.0.0.1", srv:port())
    local before = N.fds()
    local t = aloop.create_task(aloop.open_connection, "127.0.0.1", srv:port())
    H.settle()
    assert.is_false(t:done())
    t:cancel()
    assert.is_true(H.ended_cancelled(t))
    assert.equal(before, N.fds())
  end))

  it("over IPv6 (::1)", N.async(function()
    local srv <close> = N.echo_server("::1")
    local s <close> = aloop.open_connection("::1", srv:port())
    local host, port = s:peername()
    assert.equal("::1", host)
    assert.equal(srv:port(), port)
    s:write("six")
    assert.equal("six", s:readexactly(3))
  end))

  it("localhost: ::1 first, then 127.0.0.1 when ::1 refuses", N.async(function()
    local srv <close> = N.echo_server("127.0.0.1")
    local s <close> = aloop.open_connection("localhost", srv:port())
    assert.equal("127.0.0.1", (s:peername()))
    local s6 <close> = aloop.open_connection("localhost", srv:port(), { family = "inet" })
    assert.equal("127.0.0.1", (s6:peername()))
  end))

  it("happy eyeballs: a hanging first address does not hold up the second", N.async(function()
    -- ::1 on port P hangs (full backlog, nobody accepts); 127.0.0.1 on P answers
    local hang, srv
    for _ = 1, 20 do
      hang = server(function() end, "::1", { backlog = 0, start_serving = false })
      local ok, s = pcall(N.echo_server, "127.0.0.1", nil)
      if ok then s:close() end
      ok, srv = pcall(aloop.start_server, function(st)
        st:write(st:read(10))
      end, "127.0.0.1", hang:port())
      if ok then break end
      hang:close()
    end
    local _filler <close> = aloop.open_connection("::1", hang:port())
    local t0 = aloop.time()
    local s <close> = aloop.open_connection("localhost", hang:port(), { happy_eyeballs_delay = 0.05 })
    assert.equal("127.0.0.1", (s:peername()))
    assert.is_true(aloop.time() - t0 < 0.9, "took " .. (aloop.time() - t0))
    s:write("x")
    assert.equal("x", s:read(10))
    srv:close()
    hang:close()
  end))

  it("binds the local address asked for; nodelay can be turned off", N.async(function()
    local srv <close> = N.echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(),
      { local_addr = { "127.0.0.1", 0 }, nodelay = false })
    assert.equal("127.0.0.1", (s:sockname()))
    s:write("ok")
    assert.equal("ok", s:readexactly(2))
  end))

  it("names go through getaddrinfo (a .invalid name fails at once)", N.async(function()
    local e = H.raises(aloop.open_connection, "example.invalid", 80)
    assert.is_true(aloop.is_dns_error(e))
    assert.equal("ENOTFOUND", e.code)
  end))

  it("checks its arguments", N.async(function()
    assert.matches("bad argument #1 to 'open_connection' %(string expected, got number%)",
      H.raises(aloop.open_connection, 1, 2))
    assert.matches("bad argument #2 to 'open_connection'",
      H.raises(aloop.open_connection, "127.0.0.1", "x"))
    assert.matches("bad argument #2 to 'open_connection' %(port out of range%)",
      H.raises(aloop.open_connection, "127.0.0.1", 70000))
    assert.matches("bad argument #3 to 'open_connection'",
      H.raises(aloop.open_connection, "127.0.0.1", 1, { family = "x" }))
  end))

  it("must run in a task", function()
    assert.matches("aloop.open_connection called outside a task",
      H.raises(aloop.open_connection, "127.0.0.1", 1))
  end)
end)

describe("Stream reads", function()
  it("read(n) returns what is there, up to n; read() to the end; \"\" at the end", N.async(function()
    local srv <close> = server(function(s)
      s:write("abc")
      s:drain()
      s:read(1) -- wait for the go
      s:write("defgh")
      s:write_eof()
    end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    assert.equal("ab", s:read(2))
    assert.equal("c", s:read(100))
    s:write("!")
    assert.equal("defgh", s:read())
    assert.equal("", s:read(10))
    assert.equal("", s:read())
    assert.equal("", s:read(0))
    assert.is_true(s:at_eof())
  end))

  it("readline keeps the newline and gives what is left at the end", N.async(function()
    local srv <close> = server(function(s) s:write("one\ntwo\nthree"); s:write_eof() end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    assert.equal("one\n", s:readline())
    assert.equal("two\n", s:readline())
    assert.equal("three", s:readline())
    assert.equal("", s:readline())
  end))

  it("lines() as file:lines, with \"L\" keeping the newline", N.async(function()
    local srv <close> = server(function(s) s:write("a\n\nb\r\nc"); s:write_eof() end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    local got = {}
    for line in s:lines() do got[#got + 1] = line end
    assert.same({ "a", "", "b\r", "c" }, got)
    local s2 <close> = aloop.open_connection("127.0.0.1", srv:port())
    got = {}
    for line in s2:lines("L") do got[#got + 1] = line end
    assert.same({ "a\n", "\n", "b\r\n", "c" }, got)
    assert.matches("bad argument #1 to 'lines'", H.raises(s.lines, s, "x"))
  end))

  it("readexactly and readuntil: an early end raises IncompleteReadError with .partial", N.async(function()
    local srv <close> = server(function(s) s:write("12345"); s:write_eof() end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    local e = H.raises(s.readexactly, s, 10)
    assert.is_true(aloop.is_incomplete_read(e))
    assert.equal("12345", e.partial)
    assert.equal(10, e.expected)
    assert.equal("", s:read())
    local s2 <close> = aloop.open_connection("127.0.0.1", srv:port())
    e = H.raises(s2.readuntil, s2, "\r\n")
    assert.is_true(aloop.is_incomplete_read(e))
    assert.equal("12345", e.partial)
    assert.is_nil(e.expected)
    assert.is_false(aloop.is_incomplete_read("x"))
  end))

  it("a line longer than the limit raises LimitOverrunError and consumes nothing", N.async(function()
    local srv <close> = server(function(s) s:write("0123456789abcdef\nok\n"); s:write_eof() end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port(), { limit = 8 })
    local e = H.raises(s.readline, s)
    assert.is_true(aloop.is_limit_overrun(e))
    assert.is_false(aloop.is_limit_overrun({}))
    e = H.raises(s.readuntil, s, "\n")
    assert.is_true(aloop.is_limit_overrun(e))
    assert.equal("0123456789abcdef\n", s:readexactly(17))
    assert.equal("ok\n", s:readline())
  end))

  it("a cancelled read loses no byte: the next read gets them all", N.async(function()
    local go = aloop.Event()
    local srv <close> = server(function(s)
      s:write("first-")
      s:drain()
      go:wait()
      s:write("second\nrest")
      s:write_eof()
    end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    for _, op in ipairs({ "readexactly", "readuntil", "readline" }) do
      local t = aloop.create_task(function()
        if op == "readexactly" then return s:readexactly(12) end
        if op == "readuntil" then return s:readuntil("\n") end
        return s:readline()
      end)
      H.settle(20)
      assert.is_false(t:done())
      t:cancel()
      assert.is_true(H.ended_cancelled(t))
    end
    go:set()
    assert.equal("first-second\n", s:readline())
    assert.equal("rest", s:read())
  end))

  it("one reader at a time: a second reader gets a clear error", N.async(function()
    local go = aloop.Event()
    local srv <close> = server(function(s) go:wait(); s:write("data") end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    local t = aloop.create_task(s.read, s, 10)
    H.settle()
    local e = H.raises(s.read, s, 10)
    assert.is_true(aloop.is_runtime_error(e))
    assert.matches("another task is already waiting", tostring(e))
    go:set()
    assert.equal("data", t:await())
  end))

  it("checks its arguments, naming the method", N.async(function()
    local srv <close> = N.echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    assert.matches("bad argument #1 to 'read' %(number expected, got string%)",
      H.raises(function() return s:read("x") end))
    assert.matches("bad argument #1 to 'readexactly' %(must not be negative%)",
      H.raises(function() return s:readexactly(-1) end))
    assert.matches("bad argument #1 to 'readuntil' %(separator must not be empty%)",
      H.raises(function() return s:readuntil("") end))
    assert.matches("bad argument #1 to 'write' %(string expected, got table%)",
      H.raises(function() return s:write({}) end))
    assert.matches("bad argument #1 to 'set_write_buffer_limits'",
      H.raises(function() return s:set_write_buffer_limits("x") end))
  end))
end)

describe("Stream writes", function()
  it("10 MB each way, byte for byte", N.async(function()
    local srv <close> = N.echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
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
    assert.is_true(data == got, "the bytes differ")
  end, 60))

  it("back-pressure: drain waits at the high-water mark until the peer reads", N.async(function()
    local go = aloop.Event()
    local received = 0
    local srv <close> = server(function(s)
      go:wait()
      while true do
        local d = s:read(65536)
        if d == "" then break end
        received = received + #d
      end
    end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    s:set_write_buffer_limits(128 * 1024, 32 * 1024)
    local chunk = ("x"):rep(16 * 1024)
    local sent, in_drain, max_buffered = 0, false, 0
    local writer = aloop.create_task(function()
      while sent < 64 * 1024 * 1024 do
        s:write(chunk)
        sent = sent + #chunk
        max_buffered = math.max(max_buffered, s:get_write_buffer_size())
        in_drain = true
        s:drain()
        in_drain = false
        if go:is_set() and sent >= 1024 * 1024 then break end
      end
      s:write_eof()
    end)
    -- the peer does not read: the writer ends up waiting in drain
    local turns = 0
    while not (in_drain and s:get_write_buffer_size() > 128 * 1024) do
      aloop.sleep(0.001)
      turns = turns + 1
      assert(turns < 20000, "the writer never blocked")
    end
    local blocked_at = sent
    H.settle(50)
    assert.equal(blocked_at, sent, "the writer went on although the peer did not read")
    assert.is_true(in_drain)
    assert.is_true(s:get_write_buffer_size() <= 128 * 1024 + #chunk)
    assert.is_true(max_buffered <= 128 * 1024 + #chunk)
    go:set()
    writer:await()
    s:close()
    s:wait_closed()
    srv:close()
    srv:wait_closed()
    assert.equal(sent, received)
  end, 60))

  it("a cancelled drain leaves the buffered data to be sent", N.async(function()
    local go = aloop.Event()
    local got
    local srv <close> = server(function(s) go:wait(); got = s:read() end)
    local s = aloop.open_connection("127.0.0.1", srv:port())
    local data = N.bytes(8 * 1024 * 1024, 3)
    s:write(data)
    local t = aloop.create_task(s.drain, s)
    H.settle()
    assert.is_false(t:done())
    t:cancel()
    assert.is_true(H.ended_cancelled(t))
    assert.is_true(s:get_write_buffer_size() > 0)
    s:close() -- flushes what was written
    assert.is_true(s:is_closing())
    go:set()
    s:wait_closed()
    srv:close()
    srv:wait_closed()
    assert.is_true(got == data)
  end, 30))

  it("half-close: write_eof ends one direction, the other goes on", N.async(function()
    local srv <close> = server(function(s)
      local req = s:read() -- to the client's write_eof
      s:write("got " .. #req)
      s:write_eof()
    end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    s:write("12345")
    s:write_eof()
    assert.matches("write after write_eof", tostring(H.raises(s.write, s, "x")))
    assert.equal("got 5", s:read())
    -- and the server half-closing first
    local srv2 <close> = server(function(st)
      st:write("bye")
      st:write_eof()
      st:write(st:read()) -- cannot: write_eof was called
    end)
    local errors = {}
    aloop.get_running_loop():set_exception_handler(function(ctx) errors[#errors + 1] = ctx end)
    local c <close> = aloop.open_connection("127.0.0.1", srv2:port())
    assert.equal("bye", c:read())
    c:write("still writing")
    c:write_eof()
    srv2:close()
    srv2:wait_closed()
    aloop.get_running_loop():set_exception_handler(nil)
    assert.equal(1, #errors)
    assert.matches("write after write_eof", tostring(errors[1].exception))
  end))

  it("a peer reset in the middle of a read raises ECONNRESET", N.async(function()
    local srv <close> = server(function(s)
      s:write("partial")
      s:drain()
      s:read(1)
      s:abort() -- SO_LINGER 0: an RST
    end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    assert.equal("partial", s:readexactly(7))
    s:write("!")
    local e = H.raises(s.readexactly, s, 100)
    assert.is_true(aloop.is_connection_error(e), tostring(e))
    assert.equal("ECONNRESET", e.code)
    assert.matches("^ECONNRESET: connection reset by peer", tostring(e))
    -- again: the error stays
    assert.equal("ECONNRESET", H.raises(s.read, s, 1).code)
  end))

  it("writing to a peer that went away never kills the process", N.async(function()
    local srv <close> = server(function(s) s:read(1); s:abort() end)
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    s:write("!")
    pcall(s.read, s) -- the reset
    local e
    for _ = 1, 100 do
      s:write(("x"):rep(65536))
      local ok, err = pcall(s.drain, s)
      if not ok then e = err; break end
      aloop.sleep(0.001)
    end
    assert.is_not_nil(e, "drain never raised")
    assert.is_true(aloop.is_connection_error(e), tostring(e))
    assert.is_true(e.code == "EPIPE" or e.code == "ECONNRESET", e.code)
  end))
end)

describe("Stream life", function()
  it("close is idempotent, <close>-able; wait_closed and is_closing", N.async(function()
    local srv <close> = N.echo_server()
    local s = aloop.open_connection("127.0.0.1", srv:port())
    assert.is_false(s:is_closing())
    do
      local _c <close> = s
    end
    assert.is_true(s:is_closing())
    s:close()
    s:wait_closed()
    assert.equal("", s:read())
    assert.matches("write on a closed stream", tostring(H.raises(s.write, s, "x")))
    assert.equal("<aloop.Stream closed>", tostring(s))
  end))

  it("close wakes a reader waiting on the stream with the end of stream", N.async(function()
    local srv <close> = server(function(s) s:read() end)
    local s = aloop.open_connection("127.0.0.1", srv:port())
    local t = aloop.create_task(s.read, s, 10)
    H.settle()
    s:close()
    assert.equal("", t:await())
  end))

  it("sockname, peername, get_extra_info", N.async(function()
    local srv <close> = N.echo_server()
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    local h, p = s:sockname()
    assert.equal("127.0.0.1", h)
    assert.equal("number", math.type(p) and "number")
    assert.same({ "127.0.0.1", srv:port() }, s:get_extra_info("peername"))
    assert.same({ h, p }, s:get_extra_info("sockname"))
    assert.equal("integer", math.type(s:get_extra_info("socket")))
    assert.is_nil(s:get_extra_info("nothing"))
    assert.equal(5, s:get_extra_info("nothing", 5))
    assert.matches("^<aloop.Stream fd=%d+ 127.0.0.1:%d+>$", tostring(s))
  end))

  it("a Unix socket", N.async(function()
    local dir = N.tmpdir()
    local path = dir .. "/echo.sock"
    local srv = aloop.start_unix_server(function(s)
      s:write("unix:" .. s:readline())
    end, path)
    local s <close> = aloop.open_unix_connection(path)
    s:write("hi\n")
    assert.equal("unix:hi\n", s:read())
    assert.equal(path, srv:sockets()[1][1])
    assert.equal(path, (s:peername()))
    srv:close()
    srv:wait_closed()
    local f = io.open(path)
    assert.is_nil(f, "the socket file is removed when the server closes")
    local e = H.raises(aloop.open_unix_connection, path)
    assert.equal("ENOENT", e.code)
    N.rmdir(dir)
  end))
end)
