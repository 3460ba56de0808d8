-- 30-http_spec.lua -- aloop.http against a real nginx on loopback ports
-- (spec/http_helper.lua): statuses, headers, bodies byte for byte,
-- redirects and their history, JSON, cookies, multipart, streaming both
-- ways, timeouts, refused, DNS and TLS failures, cancellation mid-transfer,
-- connection limits and reuse, HTTP/2 multiplexing. The 100 MB transfers
-- are tagged #slow.
local aloop = require "aloop"
local http = require "aloop.http"
local N = dofile("spec/net_helper.lua")
local X = dofile("spec/http_helper.lua")

local srv

-- No session, request or socket of the HTTP client left.
local function none_left()
  local st = http._stats()
  assert.same({ sessions = 0, requests = 0, sockets = 0, buffered = 0 }, st)
end

local function async(fn, limit)
  local body = N.async(fn, limit or 30)
  return function()
    body()
    none_left()
  end
end

local function catch(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return e
end

local function rss_kb()
  local s = X.readfile("/proc/self/status")
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

describe("aloop.http", function()
  lazy_setup(function() srv = X.start() end)
  lazy_teardown(function() if srv then srv:stop() end end)

  describe("responses", function()
    it("GET: status, reason, version, headers and body", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/static/small.txt"))
      assert.equal(200, r.status)
      assert.equal("OK", r.reason)
      assert.equal("1.1", r.http_version)
      assert.equal(srv:url("/static/small.txt"), r.url)
      assert.equal("17", r.headers["Content-Length"])
      assert.equal("17", r.headers["content-length"])
      assert.equal("17", r.headers:get("CONTENT-LENGTH"))
      assert.equal("text/plain", r.headers["content-type"])
      assert.is_true(r.ok)
      assert.same({}, r.history)
      assert.equal("hello from nginx\n", r:text())
      assert.equal("hello from nginx\n", r:text()) -- kept
    end))

    it("a 4 MB file comes byte for byte", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/static/4mb.bin"))
      local want = X.readfile(srv.www .. "/static/4mb.bin")
      local got = r:text()
      assert.equal(#want, #got)
      assert.is_true(want == got)
    end))

    it("a 404 is a response; raise_for_status raises with the status", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/missing"))
      assert.equal(404, r.status)
      assert.equal("Not Found", r.reason)
      assert.is_false(r.ok)
      local e = catch(r.raise_for_status, r)
      assert.equal("HTTPStatusError", e.kind)
      assert.equal(404, e.status)
      assert.is_true(http.is_http_error(e))
      assert.matches("404 Not Found", tostring(e))
      local ok <close> = s:get(srv:url("/static/small.txt"))
      assert.equal(ok, ok:raise_for_status())
      local r5 <close> = s:get(srv:url("/status500"))
      assert.equal(500, r5.status)
      assert.equal("boom", r5:text())
    end))

    it("repeated headers are kept, in order", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/multi"))
      assert.same({ "one", "two" }, r.headers:get_all("x-multi"))
      assert.equal("one", r.headers["X-Multi"])
      local n = 0
      for name in pairs(r.headers) do
        if name:lower() == "x-multi" then n = n + 1 end
      end
      assert.equal(2, n)
      assert.is_nil(r.headers["x-none"])
      assert.same({}, r.headers:get_all("x-none"))
    end))

    it("a chunked response, streamed in its chunks", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/chunked"))
      assert.is_nil(r.headers["content-length"])
      assert.equal("chunked", r.headers["transfer-encoding"])
      local chunks = {}
      for c in r:iter_chunks() do chunks[#chunks + 1] = c end
      assert.is_true(#chunks >= 2)
      assert.equal("first\nsecond\nthird\n", table.concat(chunks))
      assert.equal("", r:read())
    end))

    it("read(n) gives at most n bytes", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/static/small.txt"))
      assert.equal("hello", r:read(5))
      assert.equal(" from nginx\n", r:read(100))
      assert.equal("", r:read(5))
    end))

    it("HEAD has headers and no body", async(function()
      local s <close> = http.Session()
      local r <close> = s:head(srv:url("/static/4mb.bin"))
      assert.equal(200, r.status)
      assert.equal(tostring(4 * 1024 * 1024), r.headers["content-length"])
      assert.equal("", r:text())
    end))

    it(":json() decodes the body", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/json"))
      local j = r:json()
      assert.equal("aloop", j.name)
      assert.same({ 1, 2, 3 }, j.list)
      assert.is_true(j.nested.ok)
    end))
  end)

  describe("redirects", function()
    it("are followed, with the chain in history", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/redirect2"))
      assert.equal(200, r.status)
      assert.equal(srv:url("/static/small.txt"), r.url)
      assert.equal(2, #r.history)
      assert.equal(301, r.history[1].status)
      assert.equal(srv:url("/redirect2"), r.history[1].url)
      assert.equal("/redirect", r.history[1].headers.location:match("/redirect$"))
      assert.equal(302, r.history[2].status)
      assert.equal(srv:url("/redirect"), r.history[2].url)
      assert.equal("hello from nginx\n", r:text())
    end))

    it("are not followed with allow_redirects = false", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/redirect"), { allow_redirects = false })
      assert.equal(302, r.status)
      assert.matches("/static/small.txt$", r.headers.location)
      assert.same({}, r.history)
      local s2 <close> = http.Session({ follow_redirects = false })
      local r2 <close> = s2:get(srv:url("/redirect"))
      assert.equal(302, r2.status)
    end))

    it("a loop ends with TooManyRedirects", async(function()
      local s <close> = http.Session()
      local e = catch(s.get, s, srv:url("/loop"))
      assert.equal("TooManyRedirects", e.kind)
      assert.is_true(http.is_http_error(e))
      assert.equal(47, e.curl_code)
      assert.matches("10", e.message)
      e = catch(s.get, s, srv:url("/loop"), { max_redirects = 2 })
      assert.equal("TooManyRedirects", e.kind)
    end))
  end)

  describe("requests", function()
    it("send session and request headers, query and user agent", async(function()
      local s <close> = http.Session({ headers = { ["X-Test"] = "base", Accept = "*/*" },
        user_agent = "spec-agent/1" })
      local r <close> = s:get(srv:url("/info"), { query = { b = "x y", a = 1, list = { "p", "q&" } } })
      local j = r:json()
      assert.equal("GET", j.method)
      assert.equal("spec-agent/1", j.ua)
      assert.equal("base", j.x_test)
      assert.equal("a=1&b=x%20y&list=p&list=q%26", j.args)
      local r2 <close> = s:get(srv:url("/info?z=1"), { headers = { ["x-test"] = "mine" }, query = { y = 2 } })
      local j2 = r2:json()
      assert.equal("mine", j2.x_test)
      assert.equal("z=1&y=2", j2.args)
      local r3 <close> = http.Session():get(srv:url("/info"))
      assert.matches("^aloop/", r3:json().ua)
    end))

    it("POST a string, JSON, a form, multipart; PUT, PATCH, DELETE", async(function()
      local s <close> = http.Session()
      local r <close> = s:post(srv:url("/echo"), { body = "raw bytes\0here" })
      assert.equal("raw bytes\0here", r:text())
      local rj <close> = s:post(srv:url("/echo"), { json = { a = 1, b = { "x" } } })
      assert.same({ a = 1, b = { "x" } }, rj:json())
      local rf <close> = s:post(srv:url("/echo"), { form = { name = "a b", sym = "&=" } })
      assert.equal("name=a+b&sym=%26%3D", rf:text())
      local rm <close> = s:post(srv:url("/echo"), { form = { field = "v" },
        files = { upload = { content = "file\r\ndata", filename = "f.txt", content_type = "text/plain" } } })
      local body = rm:text()
      local b = body:match("^%-%-(%S+)\r\n")
      assert.is_not_nil(b)
      assert.equal(table.concat({
        "--" .. b, 'Content-Disposition: form-data; name="field"', "", "v",
        "--" .. b, 'Content-Disposition: form-data; name="upload"; filename="f.txt"',
        "Content-Type: text/plain", "", "file\r\ndata", "--" .. b .. "--", "" }, "\r\n"), body)
      for _, m in ipairs { "put", "patch", "delete" } do
        local rr <close> = s[m](s, srv:url("/echo"), { body = m })
        assert.equal(m, rr:text())
      end
      local ri <close> = s:request("OPTIONS", srv:url("/info"))
      assert.equal("OPTIONS", ri:json().method)
    end))

    it("the content type of json and form bodies", async(function()
      local s <close> = http.Session()
      local r <close> = s:post(srv:url("/info"), { json = { 1 } })
      assert.equal("application/json", r:json().content_type)
      local r2 <close> = s:post(srv:url("/info"), { form = { a = 1 } })
      assert.equal("application/x-www-form-urlencoded", r2:json().content_type)
    end))

    it("a body from a function is streamed up", async(function()
      local s <close> = http.Session()
      local piece = N.bytes(65536, 7)
      local i = 0
      local r <close> = s:post(srv:url("/echo"), { body = function()
        i = i + 1
        if i > 64 then return nil end
        if i % 8 == 0 then aloop.sleep(0) end -- a producer that awaits
        return piece
      end })
      local got = r:text()
      assert.equal(64 * 65536, #got)
      assert.is_true(got == piece:rep(64))
    end))

    it("module-level one-offs read the body and leave nothing open", async(function()
      local r = http.get(srv:url("/static/small.txt"))
      assert.equal(200, r.status)
      assert.equal("hello from nginx\n", r:text())
      local p = http.post(srv:url("/echo"), { json = { 1, 2 } })
      assert.same({ 1, 2 }, p:json())
    end))

    it("check their arguments", function()
      assert.has_error(function() http.Session(5) end, "bad argument #1 to 'Session' (table expected, got number)")
      aloop.run(function()
        local s <close> = http.Session()
        assert.has_error(function() s:request(nil, "x") end, "bad argument #1 to 'request' (string expected, got nil)")
        assert.has_error(function() s:get(nil) end, "bad argument #2 to 'request' (string expected, got nil)")
        assert.has_error(function() s:get("http://x", 5) end,
          "bad argument #3 to 'request' (table expected, got number)")
        assert.has_error(function() s:post("http://x", { body = 5 }) end,
          "bad argument #3 to 'request' (body: a string or a function expected, got number)")
      end)
      none_left()
    end)

    it("methods check their object, and blame the caller's line", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/static/small.txt"))
      local here = "30%-http_spec%.lua:%d+: "
      local function err(fn) return tostring(catch(fn)) end
      assert.matches(here .. "bad argument #1 to 'get' %(aloop.http.Session expected, got nil%)",
        err(function() s.get() end))
      assert.matches("bad argument #1 to 'request' %(aloop.http.Session expected, got table%)",
        err(function() s.request({}, "GET", "x") end))
      assert.matches("bad argument #1 to 'close' %(aloop.http.Session expected, got number%)",
        err(function() s.close(5) end))
      assert.matches(here .. "bad argument #1 to 'text' %(aloop.http.Response expected, got nil%)",
        err(function() r.text() end))
      for _, m in ipairs { "read", "iter_chunks", "json", "raise_for_status", "close" } do
        assert.matches("bad argument #1 to '" .. m .. "' %(aloop.http.Response expected, got table%)",
          err(function() r[m](s) end))
      end
      assert.matches("bad argument #1 to 'read' %(a positive integer expected%)",
        err(function() r:read(0) end))
      assert.matches("bad argument #1 to 'iter_chunks' %(a positive integer expected%)",
        err(function() r:iter_chunks("x") end))
      assert.matches(here .. "bad argument #1 to 'get' %(aloop.http.Headers expected, got nil%)",
        err(function() r.headers.get(nil, "x") end))
      assert.matches(here .. "bad argument #1 to 'get_all' %(string expected, got nil%)",
        err(function() r.headers:get_all() end))
      assert.matches("bad argument #1 to 'items' %(aloop.http.Headers expected, got table%)",
        err(function() r.headers.items({}) end))
      -- the objects still work after all that
      assert.equal("hello from nginx\n", r:text())
      assert.equal("17", r.headers:get("content-length"))
    end))
  end)

  describe("cookies", function()
    it("are kept per session, and not with cookies = false", async(function()
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/setcookie"))
      assert.equal("session=abc123; Path=/", r.headers["set-cookie"])
      local r2 <close> = s:get(srv:url("/info"))
      assert.equal("session=abc123", r2:json().cookie)
      local other <close> = http.Session()
      local r3 <close> = other:get(srv:url("/info"))
      assert.equal("", r3:json().cookie)
      local none <close> = http.Session({ cookies = false })
      local r4 <close> = none:get(srv:url("/setcookie"))
      assert.equal("set", r4:text())
      local r5 <close> = none:get(srv:url("/info"))
      assert.equal("", r5:json().cookie)
    end))
  end)

  describe("failures", function()
    it("a timeout is a TimeoutError", async(function()
      local s <close> = http.Session({ timeout = 0.3 })
      local e = catch(s.get, s, srv:url("/slow"))
      assert.is_true(aloop.is_timeout(e))
      assert.is_true(http.is_http_error(e))
      assert.equal(28, e.curl_code)
      local e2 = catch(http.Session().get, http.Session(), srv:url("/slow"), { timeout = 0.2 })
      assert.is_true(aloop.is_timeout(e2))
      collectgarbage()
    end))

    it("connection refused", async(function()
      local gone = aloop.start_server(print, "127.0.0.1", 0)
      local port = gone:port()
      gone:close()
      gone:wait_closed()
      local s <close> = http.Session()
      local e = catch(s.get, s, ("http://127.0.0.1:%d/"):format(port))
      assert.equal("ConnectionError", e.kind)
      assert.equal("ECONNREFUSED", e.code)
      assert.equal(7, e.curl_code)
      assert.is_true(http.is_http_error(e))
      assert.matches("127.0.0.1", tostring(e))
    end))

    it("a DNS failure (.invalid)", async(function()
      local s <close> = http.Session({ connect_timeout = 10 })
      local e = catch(s.get, s, "http://no-such-host.invalid/")
      assert.equal("DNSError", e.kind)
      assert.is_true(aloop.is_dns_error(e))
      assert.equal(6, e.curl_code)
      assert.is_true(http.is_http_error(e))
    end))

    it("an untrusted certificate fails; verify = false and cafile work", async(function()
      local s <close> = http.Session()
      local e = catch(s.get, s, srv:tls_url("/static/small.txt"))
      assert.equal("TLSError", e.kind)
      assert.is_true(http.is_http_error(e))
      local insecure <close> = http.Session({ verify = false })
      local r <close> = insecure:get(srv:tls_url("/static/small.txt"))
      assert.equal(200, r.status)
      assert.equal("2", r.http_version)
      assert.equal("OK", r.reason)
      assert.equal("hello from nginx\n", r:text())
      local trusted <close> = http.Session({ cafile = srv.cert })
      local r2 <close> = trusted:get(srv:tls_url("/static/4mb.bin"))
      assert.is_true(r2:text() == X.readfile(srv.www .. "/static/4mb.bin"))
      local h1 <close> = http.Session({ cafile = srv.cert, http2 = false })
      local r3 <close> = h1:get(srv:tls_url("/static/small.txt"))
      assert.equal("1.1", r3.http_version)
    end))
  end)

  describe("cancellation", function()
    it("aborts the transfer at once, and its connection is not reused", async(function()
      srv:clear_log()
      local s <close> = http.Session()
      local started = aloop.Event()
      local t = aloop.create_task(function()
        local r <close> = s:get(srv:url("/rate/4mb.bin"))
        r:read(1000)
        started:set()
        for _ in r:iter_chunks() do end
      end)
      started:wait()
      assert.equal(1, http._stats().requests)
      t:cancel()
      aloop.sleep(0)
      assert.is_true(t:cancelled())
      assert.equal(0, http._stats().requests) -- freed at once
      local r <close> = s:get(srv:url("/static/small.txt"))
      assert.equal("hello from nginx\n", r:text())
      aloop.sleep(0.2)
      local log = srv:log("/static/small.txt")
      local last = log[#log]
      assert.equal("GET /static/small.txt HTTP/1.1", last.request)
      assert.equal(1, last.conn_requests) -- a new connection
    end))

    it("while waiting for the headers", async(function()
      local s <close> = http.Session()
      local t = aloop.create_task(s.get, s, srv:url("/slow"))
      aloop.sleep(0.1)
      assert.equal(1, http._stats().requests)
      t:cancel()
      aloop.sleep(0)
      assert.equal(0, http._stats().requests)
      assert.is_true(t:cancelled())
    end))

    it("by wait_for ends in a TimeoutError and frees the request", async(function()
      local s <close> = http.Session()
      local e = catch(aloop.wait_for, function() return s:get(srv:url("/slow")) end, 0.1)
      assert.is_true(aloop.is_timeout(e))
      assert.equal(0, http._stats().requests)
    end))

    it("closing the session wakes its waiters with an error", async(function()
      local s = http.Session()
      local t = aloop.create_task(s.get, s, srv:url("/slow"))
      aloop.sleep(0.05)
      s:close()
      local e = catch(t.await, t)
      assert.equal("HTTPError", e.kind)
      assert.matches("closed", e.message)
    end))
  end)

  describe("connections", function()
    it("are reused by a session", async(function()
      srv:clear_log()
      local s <close> = http.Session()
      for _ = 1, 5 do
        local r <close> = s:get(srv:url("/static/small.txt"))
        r:text()
      end
      aloop.sleep(0.1)
      local log = srv:log("/static/small.txt")
      assert.equal(5, #log)
      for i, e in ipairs(log) do
        assert.equal(log[1].conn, e.conn)
        assert.equal(i, e.conn_requests)
      end
    end))

    it("max_connections_per_host limits the requests in flight", async(function()
      srv:clear_log()
      local s <close> = http.Session({ max_connections_per_host = 2 })
      local tasks = {}
      for i = 1, 6 do
        tasks[i] = aloop.create_task(function()
          local r <close> = s:get(srv:url("/delay"))
          return r:text()
        end)
      end
      local res = aloop.gather(tasks)
      for i = 1, 6 do assert.equal("delayed\n", res[i]) end
      aloop.sleep(0.1)
      local log = srv:log("/delay")
      assert.equal(6, #log)
      assert.equal(2, X.max_in_flight(log))
    end))

    it("20 concurrent HTTP/2 requests share one connection", async(function()
      srv:clear_log()
      local s <close> = http.Session({ cafile = srv.cert })
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = aloop.create_task(function()
          local r <close> = s:get(srv:tls_url("/delay"))
          assert.equal("2", r.http_version)
          return r:text()
        end)
      end
      local res = aloop.gather(tasks)
      assert.equal(20, res.n)
      aloop.sleep(0.1)
      local log = srv:log("/delay")
      assert.equal(20, #log)
      local conns = {}
      for _, e in ipairs(log) do
        assert.equal("HTTP/2.0", e.protocol)
        conns[e.conn] = true
      end
      assert.equal(1, #(function() local l = {} for c in pairs(conns) do l[#l + 1] = c end return l end)())
      assert.is_true(X.max_in_flight(log) >= 2) -- multiplexed, not one by one
    end))

    it("hundreds of concurrent requests share one session", async(function()
      local s <close> = http.Session()
      local tasks = {}
      for i = 1, 300 do
        tasks[i] = aloop.create_task(function()
          local r <close> = s:get(srv:url("/static/1k.bin"))
          return #r:text()
        end)
      end
      local res = aloop.gather(tasks)
      for i = 1, 300 do assert.equal(1024, res[i]) end
      assert.is_true(http._stats().sockets <= 100)
    end))
  end)

  describe("streaming with bounded memory #slow", function()
    it("a 100 MB download read in chunks", async(function()
      local path = srv:make_file("100mb.bin", 100 * 1024 * 1024)
      collectgarbage()
      local before = rss_kb()
      local most = before
      local s <close> = http.Session()
      local r <close> = s:get(srv:url("/static/100mb.bin"))
      local n, check, held = 0, {}, 0
      local f = assert(io.open(path, "rb"))
      for c in r:iter_chunks(256 * 1024) do
        -- compare a few slices byte for byte as they come
        if #check < 8 and n % (13 * 1024 * 1024) < #c then
          f:seek("set", n)
          check[#check + 1] = f:read(#c) == c
        end
        n = n + #c
        held = math.max(held, http._stats().buffered)
        if n % (8 * 1024 * 1024) < #c then
          collectgarbage()
          most = math.max(most, rss_kb())
          aloop.sleep(0.01) -- a slow consumer: the transfer pauses
        end
      end
      f:close()
      assert.equal(100 * 1024 * 1024, n)
      for _, ok in ipairs(check) do assert.is_true(ok) end
      assert.is_true(held <= 1024 * 1024 + 64 * 1024, ("held %d bytes"):format(held))
      -- the process's size, where no sanitizer keeps freed memory around
      if not H.asan_options then
        assert.is_true(most - before < 24 * 1024, ("grew by %d KiB"):format(most - before))
      end
    end, 120))

    it("a 64 MB upload from a function, echoed back", async(function()
      collectgarbage()
      local before = rss_kb()
      local most = before
      local s <close> = http.Session()
      local piece = N.bytes(256 * 1024, 3)
      local i, held = 0, 0
      local r <close> = s:post(srv:url("/echo"), { body = function()
        i = i + 1
        held = math.max(held, http._stats().buffered)
        if i % 16 == 0 then
          collectgarbage()
          most = math.max(most, rss_kb())
        end
        if i <= 256 then return piece end
      end })
      local n, same = 0, true
      for c in r:iter_chunks(256 * 1024) do
        if same then same = c == piece:sub(n % #piece + 1, n % #piece + #c) or
          c == (piece .. piece):sub(n % #piece + 1, n % #piece + #c) end
        n = n + #c
        held = math.max(held, http._stats().buffered)
      end
      assert.equal(64 * 1024 * 1024, n)
      assert.is_true(same)
      assert.is_true(held <= 1024 * 1024 + 512 * 1024, ("held %d bytes"):format(held))
      if not H.asan_options then
        assert.is_true(most - before < 24 * 1024, ("grew by %d KiB"):format(most - before))
      end
    end, 120))
  end)
end)
