-- spec/22-dns_spec.lua: aloop.getaddrinfo on c-ares, without blocking the
-- loop. Loopback only: every lookup that reaches a resolver is pointed at
-- spec/fixtures/dns_responder.py on a 127.0.0.1 UDP port (nameservers or
-- ALOOP_NAMESERVERS); numeric hosts, localhost and .invalid never reach one.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/22-dns_spec.lua
local aloop = require "aloop"
local raises = H.raises

-- ---- the responder -------------------------------------------------------

-- Start the responder (it prints its port, and exits by itself after
-- `lifetime` seconds); returns its pid and port.
local function start_responder(lifetime)
  local out = os.tmpname()
  local p = assert(io.popen(string.format(
    "python3 spec/fixtures/dns_responder.py --lifetime %d --delay 0.4 >%s 2>&1 & echo $!",
    lifetime, H.quote(out))))
  local pid = tonumber(p:read("l"))
  p:close()
  local port
  for _ = 1, 100 do
    local f = io.open(out)
    local line = f and f:read("l")
    if f then f:close() end
    port = line and tonumber(line)
    if port then break end
    os.execute("sleep 0.05")
  end
  os.remove(out)
  assert(pid and port, "the DNS responder did not start")
  return pid, port
end

-- Descriptors open in this process (seen from a child: the pipe to it is
-- counted alike each time).
-- The process's open descriptors, as { ["7"] = "socket:[1234]", ... }, after
-- a full collection (so what earlier spec files dropped is closed first, and
-- does not count against this one).
local function open_fds()
  collectgarbage()
  collectgarbage()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  local fds = {}
  local p = assert(io.popen("ls -l /proc/" .. pid .. "/fd"))
  for line in p:lines() do
    local fd, target = line:match("(%d+) %-> (.*)$")
    if fd then fds[fd] = target end
  end
  p:close()
  return fds
end

-- What is open now and was not before (the listing's own pipe aside).
local function new_fds(before)
  local out = {}
  for fd, target in pairs(open_fds()) do
    if before[fd] ~= target and not target:match("^pipe:") then
      out[#out + 1] = fd .. " -> " .. target
    end
  end
  table.sort(out)
  return out
end

-- Addresses as sorted "family address" strings.
local function addrs(list)
  local out = {}
  for i, a in ipairs(list) do out[i] = a.family .. " " .. a.address end
  table.sort(out)
  return out
end

-- Whether fn(...) returned without giving the loop a turn: a task created
-- before the call has not started when it returns.
local function without_waiting(fn, ...)
  local started = false
  local t = aloop.create_task(function() started = true end)
  local res = table.pack(pcall(fn, ...))
  local waited = started
  t:await()
  return not waited, table.unpack(res, 1, res.n)
end

-- Let the loop run until the resolvers are idle (the answers to cancelled
-- queries dropped, their sockets closed).
local function until_idle(limit)
  local deadline = aloop.time() + (limit or 2)
  repeat
    local st = aloop._dns_stats()
    if st.requests == 0 and st.inflight == 0 and st.sockets == 0 then return st end
    aloop.sleep(0.01)
  until aloop.time() > deadline
  return aloop._dns_stats()
end

-- A name /etc/hosts maps that no rule answers without it: not localhost,
-- not numeric, not .invalid.
local function hosts_entry()
  local f = io.open("/etc/hosts")
  if not f then return nil end
  for line in f:lines() do
    local addr, names = line:gsub("#.*", ""):match("^%s*(%S+)%s+(.-)%s*$")
    if addr and addr:match("^%d+%.%d+%.%d+%.%d+$") then
      for name in names:gmatch("%S+") do
        local l = name:lower()
        if not (l == "localhost" or l:match("%.localhost%.?$") or l:match("%.invalid%.?$")
                or l:match("^[%d.]+$") or l:match(":")) then
          f:close()
          return name, addr
        end
      end
    end
  end
  f:close()
  return nil
end

describe("aloop.getaddrinfo", function()
  local pid, port, ns, fds_before

  lazy_setup(function()
    aloop.run(function() end) -- the loop's own descriptors are made by now
    fds_before = open_fds()
    pid, port = start_responder(120)
    ns = { "127.0.0.1:" .. port }
  end)

  lazy_teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  end)

  local function opts(t)
    t = t or {}
    t.nameservers = ns
    return t
  end

  -- ---- answers from the resolver ---------------------------------------

  it("returns the A and AAAA answers of the resolver", H.async(function()
    local r = aloop.getaddrinfo("both.test", 80, opts())
    assert.same({ "inet 127.0.0.3", "inet 127.0.0.4", "inet6 ::3" }, addrs(r))
    for _, a in ipairs(r) do assert.equal(80, a.port) end
    assert.same({ "inet 127.0.0.2" }, addrs(aloop.getaddrinfo("v4.test", 443, opts())))
    assert.same({ "inet6 ::2" }, addrs(aloop.getaddrinfo("v6.test", 443, opts())))
  end))

  it("filters by family", H.async(function()
    assert.same({ "inet 127.0.0.3", "inet 127.0.0.4" },
      addrs(aloop.getaddrinfo("both.test", 80, opts({ family = "inet" }))))
    assert.same({ "inet6 ::3" },
      addrs(aloop.getaddrinfo("both.test", 80, opts({ family = "inet6" }))))
    local e = raises(aloop.getaddrinfo, "v4.test", 80, opts({ family = "inet6" }))
    assert.is_true(aloop.is_dns_error(e))
    assert.equal("ENODATA", e.code)
  end))

  it("takes the port as a number, a numeric string, a service name or nil", H.async(function()
    assert.equal(8080, aloop.getaddrinfo("v4.test", 8080, opts())[1].port)
    assert.equal(53, aloop.getaddrinfo("v4.test", "53", opts())[1].port)
    assert.equal(0, aloop.getaddrinfo("v4.test", nil, opts())[1].port)
    local f = io.open("/etc/services")
    local has_http = f and f:read("a"):match("\nhttp%s+80/tcp")
    if f then f:close() end
    if has_http then
      assert.equal(80, aloop.getaddrinfo("v4.test", "http", opts())[1].port)
    end
    local e = raises(aloop.getaddrinfo, "v4.test", "no-such-service", opts())
    assert.equal("ESERVICE", e.code)
  end))

  it("raises a DNSError for NXDOMAIN, with code, message and host", H.async(function()
    local e = raises(aloop.getaddrinfo, "nx.test", 80, opts())
    assert.is_true(aloop.is_dns_error(e))
    assert.is_false(aloop.is_os_error(e))
    assert.equal("DNSError", e.kind)
    assert.equal("ENOTFOUND", e.code)
    assert.equal("nx.test", e.host)
    assert.equal("Domain name not found", e.message)
    assert.equal("ENOTFOUND: Domain name not found (nx.test)", tostring(e))
  end))

  it("a silent server: DNSError ETIMEOUT within opts.timeout", H.async(function()
    local t0 = aloop.time()
    local e = raises(aloop.getaddrinfo, "silent.test", 80, opts({ timeout = 0.3 }))
    local took = aloop.time() - t0
    assert.is_true(aloop.is_dns_error(e), tostring(e))
    assert.equal("ETIMEOUT", e.code)
    assert.is_true(took >= 0.29 and took < 1.5, "took " .. took)
    local st = until_idle()
    assert.equal(0, st.requests)
    assert.equal(0, st.sockets)
  end))

  it("a lookup cancelled by wait_for ends at once and is abandoned cleanly", H.async(function()
    local t0 = aloop.time()
    local e = raises(aloop.wait_for, function()
      return aloop.getaddrinfo("silent.test", 80, opts())
    end, 0.2)
    local took = aloop.time() - t0
    assert.is_true(aloop.is_timeout(e), tostring(e))
    assert.is_true(took < 1, "took " .. took)
    local st = until_idle()
    assert.equal(0, st.requests)
    assert.equal(0, st.inflight)
    assert.equal(0, st.sockets)
  end))

  it("task:cancel() while it waits raises CancelledError at once", H.async(function()
    local t = aloop.create_task(aloop.getaddrinfo, "silent.test", 80, opts())
    H.settle()
    assert.equal(1, aloop._dns_stats().requests)
    local t0 = aloop.time()
    t:cancel()
    assert.is_true(H.ended_cancelled(t))
    assert.is_true(aloop.time() - t0 < 0.1)
    assert.equal(0, until_idle().requests)
  end))

  it("the late answer to a cancelled lookup is dropped; the others get theirs", H.async(function()
    -- slow1 and slow2 are answered after 0.4 s; slow1's task is cancelled
    -- before, while slow2 keeps the channel's queries wanted.
    local t1 = aloop.create_task(aloop.getaddrinfo, "slow1.test", 80, opts({ family = "inet" }))
    local t2 = aloop.create_task(aloop.getaddrinfo, "slow2.test", 81, opts({ family = "inet" }))
    aloop.sleep(0.1)
    t1:cancel()
    assert.is_true(H.ended_cancelled(t1))
    assert.equal(2, aloop._dns_stats().requests) -- slow1's waits for its answer
    local r = t2:await()
    assert.same({ "inet 127.0.0.5" }, addrs(r))
    assert.equal(81, r[1].port)
    local st = until_idle()
    assert.equal(0, st.requests)
  end))

  it("a task cancelled before it looks up raises CancelledError without waiting", H.async(function()
    local t = aloop.create_task(function()
      aloop.current_task():cancel()
      return aloop.getaddrinfo("silent.test", 80, opts())
    end)
    local t0 = aloop.time()
    assert.is_true(H.ended_cancelled(t))
    assert.is_true(aloop.time() - t0 < 0.1)
    assert.equal(0, until_idle().requests)
  end))

  it("other tasks keep running while a lookup waits", H.async(function()
    local ticks, done = 0, false
    local ticker = aloop.create_task(function()
      while not done do
        aloop.sleep(0.02)
        ticks = ticks + 1
      end
    end)
    local r = aloop.getaddrinfo("slow.test", 80, opts({ family = "inet" }))
    done = true
    ticker:await()
    assert.same({ "inet 127.0.0.5" }, addrs(r))
    assert.is_true(ticks >= 10, "ticks: " .. ticks) -- 0.4 s of 0.02 s sleeps
  end))

  it("a lookup under aloop.timeout raises TimeoutError", H.async(function()
    local ok, e = pcall(function()
      local _ <close> = aloop.timeout(0.1)
      return aloop.getaddrinfo("silent.test", 80, opts())
    end)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(e), tostring(e))
    assert.equal(0, until_idle().requests)
  end))

  it("100 concurrent lookups are all answered", H.async(function()
    local tasks = {}
    for i = 1, 100 do
      tasks[i] = aloop.create_task(aloop.getaddrinfo, "h" .. i .. ".many.test", i, opts())
    end
    local results = aloop.gather(tasks)
    for i = 1, 100 do
      local r = results[i]
      assert.equal(1, #r, "h" .. i)
      assert.equal(string.format("127.1.%d.%d", i // 256, i % 256), r[1].address)
      assert.equal(i, r[1].port)
    end
    assert.equal(0, until_idle().requests)
  end))

  -- ---- answers without a resolver --------------------------------------

  it("numeric IPv4 and IPv6 hosts need no resolver and no wait", H.async(function()
    local before = aloop._dns_stats()
    local nowait, ok, r = without_waiting(aloop.getaddrinfo, "127.0.0.7", 25)
    assert.is_true(nowait and ok)
    assert.same({ { family = "inet", address = "127.0.0.7", port = 25 } }, r)
    nowait, ok, r = without_waiting(aloop.getaddrinfo, "2001:db8::1", 25)
    assert.is_true(nowait and ok)
    assert.same({ { family = "inet6", address = "2001:db8::1", port = 25 } }, r)
    nowait, ok, r = without_waiting(aloop.getaddrinfo, "2001:db8::1", 25, { family = "inet" })
    assert.is_true(nowait and not ok)
    assert.equal("ENOTFOUND", r.code)
    assert.same(before, aloop._dns_stats())
  end))

  it("localhost is the loopback addresses, per family (RFC 6761)", H.async(function()
    local nowait, ok, r = without_waiting(aloop.getaddrinfo, "localhost", 80)
    assert.is_true(nowait and ok)
    assert.same({ family = "inet6", address = "::1", port = 80 }, r[1])
    assert.same({ family = "inet", address = "127.0.0.1", port = 80 }, r[2])
    assert.same({ "inet 127.0.0.1" },
      addrs(aloop.getaddrinfo("LocalHost.", 80, { family = "inet" })))
    assert.same({ "inet6 ::1" },
      addrs(aloop.getaddrinfo("db.localhost", 80, { family = "inet6" })))
  end))

  it("names under .invalid fail at once (RFC 6761)", H.async(function()
    for _, name in ipairs({ "invalid", "x.invalid", "a.b.INVALID." }) do
      local nowait, ok, e = without_waiting(aloop.getaddrinfo, name, 80, opts())
      assert.is_true(nowait and not ok, name)
      assert.is_true(aloop.is_dns_error(e))
      assert.equal("ENOTFOUND", e.code)
      assert.equal(name, e.host)
    end
  end))

  it("honours /etc/hosts before asking the resolver", H.async(function()
    local name, addr = hosts_entry()
    if not name then
      pending("/etc/hosts has no entry besides localhost on this machine")
      return
    end
    -- the responder would say NXDOMAIN: the answer comes from the file
    local r = aloop.getaddrinfo(name, 80, opts({ family = "inet" }))
    assert.same({ "inet " .. addr }, addrs(r))
  end))

  -- ---- misuse and the environment ---------------------------------------

  it("rejects bad arguments", H.async(function()
    assert.matches("port", raises(aloop.getaddrinfo, "x.test", 70000))
    assert.matches("port", raises(aloop.getaddrinfo, "x.test", 1.5))
    assert.matches("family", raises(aloop.getaddrinfo, "x.test", 80, { family = "ipx" }))
    assert.matches("type", raises(aloop.getaddrinfo, "x.test", 80, { type = 1 }))
    assert.matches("timeout", raises(aloop.getaddrinfo, "x.test", 80, { timeout = 0 }))
    assert.matches("nameservers", raises(aloop.getaddrinfo, "x.test", 80, { nameservers = {} }))
    assert.matches("nameservers", raises(aloop.getaddrinfo, "x.test", 80, { nameservers = "a" }))
    assert.matches("nameservers", raises(aloop.getaddrinfo, "x.test", 80, { nameservers = { 1 } }))
    local e = raises(aloop.getaddrinfo, "x.test", 80, { nameservers = { "not an address" } })
    assert.is_true(aloop.is_dns_error(e))
    assert.equal("EBADSTR", e.code)
  end))

  it("raises outside a task", function()
    assert.matches("outside a task", raises(aloop.getaddrinfo, "localhost", 80))
  end)

  local function run_fixture(mode)
    local parts = {
      "ALOOP_NAMESERVERS=127.0.0.1:" .. port,
      "LUA_CPATH=" .. H.quote(H.cpath .. ";;"),
    }
    if H.wrap then parts[#parts + 1] = H.wrap end
    parts[#parts + 1] = "lua5.4 spec/fixtures/dns_exit.lua " .. mode
    return H.sh(table.concat(parts, " "))
  end

  it("ALOOP_NAMESERVERS points the resolver; an idle channel lets the program end", function()
    local out, err, code, took = run_fixture("done")
    assert.equal("127.0.0.2\n", out)
    assert.equal("", err)
    assert.equal(0, code)
    if not H.wrap then assert.is_true(took < 2, "took " .. took) end
  end)

  it("a task left waiting on a lookup is cancelled as run returns", function()
    local out, err, code = run_fixture("leftover")
    assert.equal("main done\n", out)
    assert.equal("", err)
    assert.equal(0, code)
  end)

  it("the state closes cleanly while lookups are in flight", function()
    local out, err, code = run_fixture("close")
    assert.equal("closing\n", out)
    assert.equal("", err)
    assert.equal(0, code)
  end)

  it("leaves no descriptor open and nothing pending", H.async(function()
    local st = until_idle()
    assert.same({ requests = 0, inflight = 0, sockets = 0 },
      { requests = st.requests, inflight = st.inflight, sockets = st.sockets })
    assert.same({}, new_fds(fds_before))
  end))
end)
