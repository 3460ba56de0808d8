-- aloop/streams.lua -- asyncio's streams on the C Stream and Listener
-- (bindings/lstream.c, lserver.c): open_connection with the one place names
-- become addresses (resolve) and happy eyeballs (RFC 8305), start_server
-- with a task accepting on each listening socket and a task per connection,
-- Stream:lines, and TLS (opts.tls, Stream:start_tls) on the C filter of
-- bindings/ltls.c. Loaded once with the module table and the private
-- helpers P.
local aloop, P = ...

-- Everything is taken at load time: a script that replaces or removes a
-- global (pairs, string, ...) or a field of the module does not change aloop.
local net = aloop._net
local Stream = net.Stream
local create_task, is_cancelled, current_task = aloop.create_task, aloop.is_cancelled, aloop.current_task
local new_error, new_future, getaddrinfo, wait = aloop.error, aloop.Future, aloop.getaddrinfo, aloop.wait
local type, error, pcall, xpcall, setmetatable, getmetatable, rawget, tostring, tonumber =
  type, error, pcall, xpcall, setmetatable, getmetatable, rawget, tostring, tonumber
local ipairs, next, select = ipairs, next, select
local mtype, tointeger, traceback = math.type, math.tointeger, debug.traceback
local sgsub, sformat, sfind, slower, sbyte, ssub, smatch, tconcat =
  string.gsub, string.format, string.find, string.lower, string.byte, string.sub, string.match, table.concat
local argerror, typeerror, callable, need_task, check_delay =
  P.argerror, P.typeerror, P.callable, P.need_task, P.check_delay

local DEFAULT_LIMIT = 64 * 1024

local function raise(kind, msg)
  error(new_error(kind, msg), 3)
end

------------------------------------------------------------------------------
-- Names to addresses.

local families = { inet = "inet", inet6 = "inet6", [4] = "inet", [6] = "inet6" }

-- resolve(host, port, opts) -> array of { family = "inet" | "inet6",
-- host = numeric address, port = port }, in the order to try them.
--
-- The single hook where a host name becomes addresses: numeric hosts as
-- they are, "localhost" as ::1 and 127.0.0.1 (RFC 6761), both without
-- asking anyone; other names through aloop.getaddrinfo. opts.family
-- ("inet", "inet6") filters.
local function resolve(host, port, opts)
  local want = opts and opts.family
  local found = {}
  local fam = net.is_numeric(host)
  if fam then
    found[1] = { family = fam, host = host, port = port }
  elseif slower(host) == "localhost" or slower(host) == "localhost." then
    found[1] = { family = "inet6", host = "::1", port = port }
    found[2] = { family = "inet", host = "127.0.0.1", port = port }
  else -- a name: the loop's resolver (c-ares), never blocking
    for i, a in ipairs(getaddrinfo(host, port, { family = want })) do
      found[i] = { family = a.family, host = a.address, port = port }
    end
  end
  if want then
    local kept = {}
    for _, a in ipairs(found) do
      if a.family == want then kept[#kept + 1] = a end
    end
    if #kept == 0 then
      local e = new_error("DNSError", "no " .. want .. " address for " .. host)
      e.host = host
      error(e, 0)
    end
    found = kept
  end
  return found
end
net.resolve = resolve

------------------------------------------------------------------------------
-- Option checks, naming the public function.

local function check_opts(opts, argn, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then typeerror(opts, argn, fname, "table", 2) end
  return opts
end

-- level: how far the public function is from here (2: its caller).
local function check_int(v, argn, fname, what, min, max, level)
  if mtype(v) ~= "integer" then
    argerror(argn, fname, (what and (what .. " ") or "") .. "integer expected, got " ..
      (mtype(v) or type(v)), level)
  end
  if (min and v < min) or (max and v > max) then
    argerror(argn, fname, (what or "value") .. " out of range", level)
  end
  return v
end

local function check_common(opts, argn, fname)
  local limit = DEFAULT_LIMIT
  if opts.limit ~= nil then limit = check_int(opts.limit, argn, fname, "limit", 1, nil, 3) end
  return limit
end

local function check_port(port, argn, fname)
  if type(port) == "string" and smatch(port, "^%d+$") then port = tointeger(tonumber(port)) end
  if mtype(port) ~= "integer" then typeerror(port, argn, fname, "port number", 2) end
  if port < 0 or port > 65535 then argerror(argn, fname, "port out of range", 2) end
  return port
end

------------------------------------------------------------------------------
-- TLS: contexts, one per distinct set of options, kept while a stream or a
-- server uses them (weak values; freed with the loop at the latest).

local tls_contexts = setmetatable({}, { __mode = "v" })
local HANDSHAKE_TIMEOUT = 60 -- seconds, as asyncio's ssl_handshake_timeout

-- tls: true or { cafile, capath, verify, cert, key, alpn, verify_client,
-- server_hostname, min_version, max_version, ciphers, ciphersuites };
-- level: how far the public function is from here.
local TLS_VERSIONS = { ["TLSv1.2"] = 1, ["TLSv1.3"] = 2 }
local function tls_context(tls, server, argn, fname, level)
  if tls == true then tls = {} end
  if type(tls) ~= "table" then
    P.typeerror(tls, argn, fname, "tls as true or a table", level)
  end
  local spec = { server = server, verify = tls.verify ~= false, verify_client = tls.verify_client == true }
  for _, k in ipairs({ "cafile", "capath", "cert", "key", "ciphers", "ciphersuites" }) do
    local v = tls[k]
    if v ~= nil and type(v) ~= "string" then
      P.argerror(argn, fname, "tls." .. k .. " must be a string", level)
    end
    spec[k] = v
  end
  if tls.alpn ~= nil then
    if type(tls.alpn) ~= "table" then P.argerror(argn, fname, "tls.alpn must be a list of names", level) end
    spec.alpn = {}
    for i, name in ipairs(tls.alpn) do
      if type(name) ~= "string" or #name == 0 or #name > 255 then
        P.argerror(argn, fname, "tls.alpn must be a list of names", level)
      end
      spec.alpn[i] = name
    end
  end
  for _, k in ipairs({ "min_version", "max_version" }) do
    local v = tls[k]
    if v ~= nil and not TLS_VERSIONS[v] then
      P.argerror(argn, fname, "tls." .. k .. ' must be "TLSv1.2" or "TLSv1.3"', level)
    end
    spec[k] = v
  end
  if spec.min_version and spec.max_version
    and TLS_VERSIONS[spec.min_version] > TLS_VERSIONS[spec.max_version] then
    P.argerror(argn, fname, "tls.min_version is above tls.max_version", level)
  end
  if server and not spec.cert then P.argerror(argn, fname, "a TLS server needs tls.cert (and tls.key)", level) end
  local key = table.concat({ tostring(server), tostring(spec.verify), tostring(spec.verify_client),
    spec.cafile or "", spec.capath or "", spec.cert or "", spec.key or "",
    spec.alpn and table.concat(spec.alpn, "\0") or "",
    spec.min_version or "", spec.max_version or "", spec.ciphers or "", spec.ciphersuites or "" }, "\1")
  local ctx = tls_contexts[key]
  if not ctx then
    ctx = net.tls_context(spec)
    tls_contexts[key] = ctx
  end
  return ctx, tls
end

local function handshake_timeout(v, argn, fname)
  if v == nil then return HANDSHAKE_TIMEOUT end
  P.check_delay(v, argn, fname)
  return v
end

-- The handshake on a connected stream, bounded in time; the stream is
-- closed when it fails, times out or is cancelled.
local function handshake(s, ctx, hostname, timeout)
  local ok, err = pcall(aloop.wait_for, function() return s:_start_tls(ctx, hostname) end, timeout)
  if not ok then
    s:abort()
    error(err, 0)
  end
  return s
end

-- The client's TLS options of open_connection / open_unix_connection: the
-- context and the name to verify (nil: none).
local function client_tls(opts, host, argn, fname)
  local tls = opts.tls
  if tls == nil or tls == false then
    if opts.server_hostname ~= nil then
      P.argerror(argn, fname, "server_hostname is only meaningful with tls", 3)
    end
    return nil
  end
  local ctx, t = tls_context(tls, false, argn, fname, 4)
  local name = opts.server_hostname
  if name == nil then name = t.server_hostname end
  if name == nil then name = host end
  if name ~= nil and type(name) ~= "string" then P.typeerror(name, argn, fname, "server_hostname as a string", 3) end
  if name == nil and t.verify ~= false then
    P.argerror(argn, fname, "server_hostname is required to verify a TLS connection without a host name", 3)
  end
  if name == "" then name = nil end -- asyncio: "" turns the name check off
  return ctx, name, handshake_timeout(opts.ssl_handshake_timeout, argn, fname)
end

-- stream:start_tls(opts): upgrade an open stream to TLS (STARTTLS), as the
-- client (server_hostname, and the options of opts.tls) or the server
-- (server_side = true, cert, key); returns the stream, now encrypted.
function Stream.start_tls(self, opts)
  local fname = "start_tls"
  opts = check_opts(opts, 1, fname)
  local server = opts.server_side == true
  local ctx, name, timeout
  if server then
    ctx = tls_context(opts, true, 1, fname, 3)
    timeout = handshake_timeout(opts.ssl_handshake_timeout, 1, fname)
  else
    ctx, name, timeout = client_tls({ tls = opts, server_hostname = opts.server_hostname,
      ssl_handshake_timeout = opts.ssl_handshake_timeout }, nil, 1, fname)
  end
  P.need_task(fname)
  return handshake(self, ctx, name, timeout)
end

------------------------------------------------------------------------------
-- open_connection

local function connect_one(a, o)
  return net.connect(a.host, a.port, o.local_host, o.local_port, o.nodelay, o.limit)
end

-- RFC 8305: start with the first address; start the next one when an
-- attempt fails or `delay` passes without an answer (nil: never), and take
-- the first to connect; the others are cancelled or closed.
local function happy_eyeballs(addrs, o, delay)
  local n = #addrs
  if n == 1 then return connect_one(addrs[1], o) end
  local started, errors, winner = {}, {}, nil
  local function attempt(i)
    local ok, s = pcall(connect_one, addrs[i], o)
    if ok then
      if winner then s:close() else winner = s end
    elseif is_cancelled(s) then
      error(s, 0)
    else
      errors[i] = s
    end
  end
  local ok, err = pcall(function()
    for i = 1, n do
      started[i] = create_task(attempt, i)
      while not winner do
        local pending = {}
        for j = 1, i do
          if not started[j]:done() then pending[#pending + 1] = started[j] end
        end
        if #pending == 0 then break end
        wait(pending, { return_when = "FIRST_COMPLETED", timeout = i < n and delay or nil })
        if i < n then break end -- one failed, or the delay passed: the next
      end
      if winner then break end
    end
  end)
  for i = 1, #started do
    if not started[i]:done() then started[i]:cancel() end
  end
  if not ok then
    if winner then winner:close() end
    error(err, 0)
  end
  if winner then return winner end
  local errs = {}
  for i = 1, n do
    if errors[i] then errs[#errs + 1] = errors[i] end
  end
  if #errs == 1 then error(errs[1], 0) end
  if #errs > 1 then -- one error naming each address (asyncio's "Multiple exceptions")
    local parts = {}
    for i, e in ipairs(errs) do parts[i] = tostring(e) end
    local first = errs[1]
    local e = mtype(type(first) == "table" and first.errno) == "integer" and aloop._oserror(first.errno)
      or aloop.error("OSError")
    e.message, e.what, e.errors = "Multiple exceptions: " .. table.concat(parts, "; "), nil, errs
    error(e, 0)
  end
  raise("OSError", "no address could be connected to")
end

function aloop.open_connection(host, port, opts)
  local fname = "open_connection"
  if type(host) ~= "string" then typeerror(host, 1, fname, "string") end
  port = check_port(port, 2, fname)
  opts = check_opts(opts, 3, fname)
  local o = { limit = check_common(opts, 3, fname), nodelay = opts.nodelay ~= false }
  local delay = opts.happy_eyeballs_delay
  if delay == nil then
    delay = 0.25
  elseif delay == false then
    delay = nil
  else
    check_delay(delay, 3, fname)
  end
  local family = opts.family
  if family ~= nil then
    family = families[family]
    if not family then argerror(3, fname, "family must be \"inet\" or \"inet6\"") end
  end
  need_task(fname)
  local la = opts.local_addr
  if la ~= nil then
    local lh, lp
    if type(la) == "string" then lh, lp = la, 0
    elseif type(la) == "table" then lh, lp = la[1] or la.host, la[2] or la.port or 0
    else typeerror(la, 3, fname, "local_addr as {host, port}") end
    local found = resolve(lh, lp, { family = family })
    o.local_host, o.local_port = found[1].host, check_port(lp, 3, fname)
    family = family or found[1].family
  end
  local ctx, name, timeout = client_tls(opts, host, 3, fname)
  local addrs = resolve(host, port, { family = family })
  local s = happy_eyeballs(addrs, o, delay)
  if ctx then return handshake(s, ctx, name, timeout) end
  return s
end

function aloop.open_unix_connection(path, opts)
  local fname = "open_unix_connection"
  if type(path) ~= "string" then typeerror(path, 1, fname, "string") end
  opts = check_opts(opts, 2, fname)
  local limit = check_common(opts, 2, fname)
  local ctx, name, timeout = client_tls(opts, nil, 2, fname)
  need_task(fname)
  local s = net.connect(path, nil, nil, nil, false, limit)
  if ctx then return handshake(s, ctx, name, timeout) end
  return s
end

------------------------------------------------------------------------------
-- Stream:lines

-- for line in stream:lines([fmt]) do: lines without their "\n" ("l"), or
-- with it ("L"), as file:lines; the last line may lack one.
local readline = Stream.readline
function Stream.lines(self, fmt)
  if getmetatable(self) ~= Stream then
    local mt = getmetatable(self)
    local name = type(mt) == "table" and rawget(mt, "__name")
    argerror(1, "lines", "aloop Stream expected, got " ..
      (self ~= self and "nan" or type(name) == "string" and name or type(self)))
  end
  if fmt ~= nil and fmt ~= "l" and fmt ~= "L" then
    argerror(1, "lines", "invalid format (\"l\" or \"L\" expected)")
  end
  local keep = fmt == "L"
  return function()
    local line = readline(self)
    if line == "" then return nil end
    if not keep and sbyte(line, -1) == 10 then line = ssub(line, 1, -2) end
    return line
  end
end

------------------------------------------------------------------------------
-- Servers

local Server = { __name = "aloop.Server" }
Server.__index = Server

-- The servers made here (weak keys): each method checks its `self`.
local SERVERS = setmetatable({}, { __mode = "k" })
local function check_self(v, fname)
  if SERVERS[v] then return end
  local mt = getmetatable(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  argerror(1, fname, "aloop Server expected, got " ..
    (v ~= v and "nan" or type(name) == "string" and name or type(v)), 2)
end

-- Each connection: handler(stream) as a task; an error it raises goes to
-- the loop's exception handler with its traceback; the stream is closed
-- when the handler is done, whatever way it ends.
local function serve_conn(self, stream)
  if self._tls then -- the handshake first; a failed one closes the connection,
    -- reported in debug mode only (asyncio logs it at debug level)
    local ok, err = pcall(handshake, stream, self._tls, nil, self._tls_timeout)
    if not ok then
      self._conns[current_task()] = nil
      if is_cancelled(err) then error(err, 0) end
      if aloop.get_debug() then net.report("TLS handshake with a client failed", err) end
      return
    end
  end
  local tb
  local ok, err = xpcall(self._handler, function(e)
    if not is_cancelled(e) then tb = traceback(tostring(e), 2) end
    return e
  end, stream)
  self._conns[current_task()] = nil
  stream:close()
  if not ok then
    if is_cancelled(err) then error(err, 0) end
    net.report("Unhandled exception in client connection handler", err, tb)
  end
end

local close

-- One per listening socket, in the scope of the run that started the
-- server: cancelled with it, and then the server closes.
local function acceptor(self, l)
  while true do
    local ok, s = pcall(l.accept, l)
    if not ok then
      close(self)
      error(s, 0)
    end
    if not s then return end
    local t = create_task(serve_conn, self, s)
    self._conns[t] = true
  end
end

local function start_serving(self)
  if self._closed then raise("RuntimeError", "server is closed") end
  if self._serving then return end
  self._serving = true
  for i, l in ipairs(self._listeners) do
    self._acceptors[i] = create_task(acceptor, self, l)
  end
end

function Server:start_serving()
  check_self(self, "start_serving")
  start_serving(self)
end

function Server:is_serving()
  check_self(self, "is_serving")
  return self._serving and not self._closed
end

function close(self)
  if self._closed then return end
  self._closed = true
  for _, l in ipairs(self._listeners) do l:close() end
  for _, t in ipairs(self._acceptors) do t:cancel() end
  if not self._closed_future:done() then self._closed_future:set_result(true) end
end

function Server:close()
  check_self(self, "close")
  close(self)
end

function Server:__close()
  check_self(self, "__close")
  close(self)
end

-- wait_closed(): until close() was called and every connection handler
-- has finished (as asyncio 3.12).
function Server:wait_closed()
  check_self(self, "wait_closed")
  need_task("Server:wait_closed")
  if not self._closed then self._closed_future:await() end
  while true do
    local t = next(self._conns)
    if not t then return end
    pcall(t.await, t)
    self._conns[t] = nil
  end
end

-- serve_forever(): serve until closed; cancelling it closes the server.
function Server:serve_forever()
  check_self(self, "serve_forever")
  need_task("Server:serve_forever")
  if self._closed then raise("RuntimeError", "server is closed") end
  start_serving(self)
  local ok, err = pcall(self._closed_future.await, self._closed_future)
  if not ok then
    close(self)
    error(err, 0)
  end
end

function Server:port()
  check_self(self, "port")
  local l = self._listeners[1]
  if not l then return nil end
  return select(2, l:sockname())
end

-- sockets(): the addresses listened on, each { host, port } (a Unix
-- server: { path }).
local function sockets(self)
  local out = {}
  for i, l in ipairs(self._listeners) do
    local h, p = l:sockname()
    out[i] = { h, p }
  end
  return out
end

function Server:sockets()
  check_self(self, "sockets")
  return sockets(self)
end

function Server:__tostring()
  check_self(self, "__tostring")
  local parts = {}
  for i, a in ipairs(sockets(self)) do
    parts[i] = a[2] and (sfind(a[1], ":") and ("[" .. a[1] .. "]:" .. a[2]) or (a[1] .. ":" .. a[2])) or a[1]
  end
  return sformat("<aloop.Server %s%s>", tconcat(parts, " "),
    self._closed and " closed" or "")
end

-- The server's TLS options (opts.tls), checked before it listens.
local function server_tls(opts, argn, fname)
  if opts.tls == nil or opts.tls == false then return opts end
  local o = setmetatable({}, { __index = opts })
  o._tls_ctx = tls_context(opts.tls, true, argn, fname, 4)
  o._tls_timeout = handshake_timeout(opts.ssl_handshake_timeout, argn, fname)
  return o
end

local function new_server(handler, listeners, opts)
  local self = setmetatable({
    _handler = handler, _listeners = listeners, _acceptors = {}, _conns = {},
    _serving = false, _closed = false, _closed_future = new_future(),
    _tls = opts._tls_ctx, _tls_timeout = opts._tls_timeout,
  }, Server)
  SERVERS[self] = true
  if opts.start_serving ~= false then
    local ok, err = pcall(start_serving, self)
    if not ok then -- (no loop runs: aloop's message, at the caller's line)
      close(self)
      if type(err) == "string" then err = sgsub(err, "^aloop/[%w_]+%.lua:%d+: ", "") end
      error(err, 3)
    end
  end
  return self
end

local function check_handler(handler, fname)
  if not callable(handler) then typeerror(handler, 1, fname, "function", 2) end
end

local function close_all(ls)
  for _, l in ipairs(ls) do l:close() end
end

-- Listen on each address, all on one port: with port 0, the port the first
-- socket got (tried again a few times if another socket took it meanwhile).
local function listen_all(addrs, port, opts, limit, fname)
  local backlog = opts.backlog ~= nil and check_int(opts.backlog, 4, fname, "backlog", 0, nil, 3) or 100
  local v6only = #addrs > 1
  for _ = 1, 10 do
    local ls, p = {}, port
    local ok, err = pcall(function()
      for i, a in ipairs(addrs) do
        ls[i] = net.listen(a.host, p, backlog, opts.reuse_port, v6only and a.family == "inet6", limit)
        if p == 0 then p = select(2, ls[i]:sockname()) end
      end
    end)
    if ok then return ls end
    close_all(ls)
    if not (port == 0 and #ls > 0 and type(err) == "table" and err.code == "EADDRINUSE") then
      error(err, 0)
    end
  end
  raise("OSError", "could not find one free port for every address")
end

function aloop.start_server(handler, host, port, opts)
  local fname = "start_server"
  check_handler(handler, fname)
  if host ~= nil and type(host) ~= "string" then typeerror(host, 2, fname, "string or nil") end
  port = port == nil and 0 or check_port(port, 3, fname)
  opts = check_opts(opts, 4, fname)
  local limit = check_common(opts, 4, fname)
  opts = server_tls(opts, 4, fname)
  local family = opts.family
  if family ~= nil then
    family = families[family]
    if not family then argerror(4, fname, "family must be \"inet\" or \"inet6\"") end
  end
  local addrs
  if host == nil or host == "" or host == "*" then
    addrs = {}
    if family ~= "inet6" then addrs[#addrs + 1] = { family = "inet", host = "0.0.0.0" } end
    if family ~= "inet" then addrs[#addrs + 1] = { family = "inet6", host = "::" } end
  else
    addrs = resolve(host, port, { family = family })
  end
  return (new_server(handler, listen_all(addrs, port, opts, limit, fname), opts))
end

function aloop.start_unix_server(handler, path, opts)
  local fname = "start_unix_server"
  check_handler(handler, fname)
  if type(path) ~= "string" then typeerror(path, 2, fname, "string") end
  opts = check_opts(opts, 3, fname)
  local limit = check_common(opts, 3, fname)
  opts = server_tls(opts, 3, fname)
  local backlog = opts.backlog ~= nil and check_int(opts.backlog, 3, fname, "backlog", 0, nil, 2) or 100
  return (new_server(handler, { net.listen_unix(path, backlog, limit) }, opts))
end

------------------------------------------------------------------------------
-- _stats: how many I/O watchers run.

local stats = aloop._stats
function aloop._stats()
  local st = stats()
  st.io = net.io_count()
  return st
end
