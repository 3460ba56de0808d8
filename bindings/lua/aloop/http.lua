-- aloop/http.lua -- `require "aloop.http"`: an aiohttp-style HTTP client on
-- libcurl's multi-socket API (aloop._http, bindings/lhttp.c and
-- core/http.c): Session with a connection pool, cookie jar and defaults;
-- requests built from tables (query, json, form, multipart, streamed
-- bodies); responses with case-insensitive headers, the redirect history and
-- bodies read whole or streamed with bounded memory. Loaded on require with
-- the module table and the private helpers P.
local aloop, P = ...

local C = aloop._http
local type, error, pcall, setmetatable, getmetatable, tostring, tonumber, ipairs, pairs, next,
  rawget, rawset =
  type, error, pcall, setmetatable, getmetatable, tostring, tonumber, ipairs, pairs, next,
  rawget, rawset
local concat, sort = table.concat, table.sort
local mtype = math.type

local http = {}

-- A method called without its object (`r.text()`) or on another one: a
-- clear error at the caller's line, not an index of nil somewhere inside.
local function check_self(self, class, cname, fname, level)
  if type(self) ~= "table" or getmetatable(self) ~= class then
    P.typeerror(self, 1, fname, cname, level or 2)
  end
end

local DEFAULT_UA = "aloop/" .. aloop._VERSION:match("[%d.]+") .. " (" .. C.version():match("^%S+") .. ")"

local json_lib
local function json()
  if not json_lib then
    local ok, lib = pcall(require, "cjson")
    if not ok then error("aloop.http: JSON needs lua-cjson (Debian: lua-cjson)", 3) end
    json_lib = lib
  end
  return json_lib
end

------------------------------------------------------------------------------
-- Errors: aloop error values; curl's failures carry curl_code and
-- curl_error, raise_for_status's carry status.

-- is_http_error(e): an error of this module (a failed transfer or a
-- status raised by raise_for_status), whatever its kind.
function http.is_http_error(e)
  return type(e) == "table" and type(e.kind) == "string" and
    (e.curl_code ~= nil or e.kind == "HTTPStatusError")
end

------------------------------------------------------------------------------
-- Encoding.

local function pct(s, plus)
  s = s:gsub("[^%w%-%._~ ]", function(c) return ("%%%02X"):format(c:byte()) end)
  return (s:gsub(" ", plus and "+" or "%%20"))
end

local function scalar(v, what)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return mtype(v) == "integer" and ("%d"):format(v) or tostring(v) end
  if t == "boolean" then return tostring(v) end
  error(("aloop.http: %s values must be strings, numbers or booleans (got %s)"):format(what, t), 4)
end

-- {k = v | {v1, v2}} or {{k, v}, ...} -> "k=v&k=v2", keys sorted.
local function urlencode(t, plus, what)
  local out = {}
  if t[1] ~= nil then
    for _, kv in ipairs(t) do
      out[#out + 1] = pct(scalar(kv[1], what), plus) .. "=" .. pct(scalar(kv[2], what), plus)
    end
    return concat(out, "&")
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do out[#out + 1] = pct(k, plus) .. "=" .. pct(scalar(x, what), plus) end
    else
      out[#out + 1] = pct(k, plus) .. "=" .. pct(scalar(v, what), plus)
    end
  end
  return concat(out, "&")
end
http.urlencode = function(t) return urlencode(t, true, "form") end

local function boundary()
  local t = {}
  for i = 1, 24 do t[i] = ("%x"):format(math.random(0, 15)) end
  return "aloop-" .. concat(t)
end

local function quote_param(s) return (s:gsub('[\r\n"]', function(c) return ("%%%02X"):format(c:byte()) end)) end

-- multipart/form-data from form (fields) and files ({name = content} or
-- {name = {content =, filename =, content_type =}}); returns body, type.
local function multipart(form, files)
  local b = boundary()
  local parts = {}
  local function add(name, content, filename, ctype)
    local h = { "--", b, '\r\nContent-Disposition: form-data; name="', quote_param(name), '"' }
    if filename then h[#h + 1] = '; filename="' .. quote_param(filename) .. '"' end
    h[#h + 1] = "\r\n"
    if ctype then h[#h + 1] = "Content-Type: " .. ctype .. "\r\n" end
    h[#h + 1] = "\r\n"
    parts[#parts + 1] = concat(h) .. content .. "\r\n"
  end
  local function sorted(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    return keys
  end
  for _, k in ipairs(sorted(form or {})) do add(tostring(k), scalar(form[k], "form")) end
  for _, k in ipairs(sorted(files)) do
    local f = files[k]
    if type(f) == "string" then
      add(tostring(k), f, tostring(k), "application/octet-stream")
    elseif type(f) == "table" and type(f.content) == "string" then
      add(tostring(k), f.content, f.filename or tostring(k), f.content_type or "application/octet-stream")
    else
      error("aloop.http: files values must be strings or {content = string, filename =, content_type =}", 4)
    end
  end
  parts[#parts + 1] = "--" .. b .. "--\r\n"
  return concat(parts), "multipart/form-data; boundary=" .. b
end

------------------------------------------------------------------------------
-- Headers: a multi-map with case-insensitive lookup, in arrival order.
-- h["Content-Type"], h:get(name [, default]), h:get_all(name), pairs(h)
-- gives (name, value) for each, repeats included; #h: how many.

local Headers = {}
local ITEMS = {} -- private key: the list of {name, value}

local function items_of(h, fname)
  check_self(h, Headers, "aloop.http.Headers", fname, 3)
  return h[ITEMS]
end

local function wanted(name, fname)
  if type(name) ~= "string" then P.typeerror(name, 1, fname, "string", 2) end
  return name:lower()
end

local headers_methods = {}
function headers_methods.get(h, name, default)
  local items, want = items_of(h, "get"), wanted(name, "get")
  for _, kv in ipairs(items) do
    if kv[1]:lower() == want then return kv[2] end
  end
  return default
end
function headers_methods.get_all(h, name)
  local items, want, out = items_of(h, "get_all"), wanted(name, "get_all"), {}
  for _, kv in ipairs(items) do
    if kv[1]:lower() == want then out[#out + 1] = kv[2] end
  end
  return out
end
function headers_methods.items(h)
  local out = {}
  for i, kv in ipairs(items_of(h, "items")) do out[i] = { kv[1], kv[2] } end
  return out
end

Headers.__name = "aloop.http.Headers"
Headers.__index = function(h, k)
  if type(k) ~= "string" then return nil end
  return headers_methods[k] or headers_methods.get(h, k)
end
Headers.__newindex = function() error("aloop.http: response headers are read-only", 2) end
Headers.__len = function(h) return #h[ITEMS] end
Headers.__pairs = function(h)
  local i, items = 0, h[ITEMS]
  return function()
    i = i + 1
    local kv = items[i]
    if kv then return kv[1], kv[2] end
  end, h, nil
end
Headers.__tostring = function(h)
  local out = {}
  for i, kv in ipairs(h[ITEMS]) do out[i] = kv[1] .. ": " .. kv[2] end
  return concat(out, "\n")
end

local function new_headers(items)
  return setmetatable({ [ITEMS] = items }, Headers)
end
http.Headers = function(t)
  local items = {}
  for k, v in pairs(t or {}) do items[#items + 1] = { tostring(k), tostring(v) } end
  return new_headers(items)
end

local REASONS = {
  [100] = "Continue", [101] = "Switching Protocols", [200] = "OK", [201] = "Created",
  [202] = "Accepted", [204] = "No Content", [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other", [304] = "Not Modified",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [410] = "Gone", [413] = "Payload Too Large", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- The header text of lhttp.c ("\0url\r\n" before each block) -> a list of
-- {url, status, reason, http_version, headers}, 1xx blocks left out.
local function parse_head(text)
  local blocks = {}
  for block in text:gmatch("%z([^%z]*)") do
    local url, rest = block:match("^(.-)\r\n(.*)$")
    local lines = {}
    for line in rest:gmatch("([^\r\n]*)\r?\n") do
      if line == "" then break end
      lines[#lines + 1] = line
    end
    local ver, status, reason = (lines[1] or ""):match("^HTTP/(%S+)%s+(%d%d%d)%s*(.-)%s*$")
    status = tonumber(status)
    if status and (status >= 200 or status < 100) then
      local items = {}
      for i = 2, #lines do
        local name, value = lines[i]:match("^([^:]+):%s*(.-)%s*$")
        if name then items[#items + 1] = { name, value } end
      end
      if reason == "" then reason = REASONS[status] or "" end
      blocks[#blocks + 1] = { url = url, status = status, reason = reason,
                              http_version = ver, headers = new_headers(items) }
    end
  end
  return blocks
end

------------------------------------------------------------------------------
-- Response.

local Response = {}
Response.__name = "aloop.http.Response"

function Response.__tostring(r)
  check_self(r, Response, "aloop.http.Response", "__tostring")
  return ("<Response [%d %s] %s>"):format(r.status, r.reason, r.url)
end

-- read([n]): up to n body bytes as they arrive ("" at the end); without n,
-- what has arrived. The transfer pauses while nobody reads.
function Response:read(n)
  check_self(self, Response, "aloop.http.Response", "read")
  if self._body then
    local b = self._body
    if b == "" then return "" end
    n = n or #b
    self._body = b:sub(n + 1)
    return b:sub(1, n)
  end
  if n ~= nil and (mtype(n) ~= "integer" or n < 1) then
    P.argerror(1, "read", "a positive integer expected")
  end
  return self._req:read(n)
end

-- iter_chunks([size]): for chunk in r:iter_chunks() do ... end
function Response:iter_chunks(size)
  check_self(self, Response, "aloop.http.Response", "iter_chunks")
  if size ~= nil and (mtype(size) ~= "integer" or size < 1) then
    P.argerror(1, "iter_chunks", "a positive integer expected")
  end
  return function()
    local c = self:read(size)
    if c ~= "" then return c end
  end
end

-- The whole body (kept: a second call gives it again); the transfer's
-- connection goes back to the pool.
function Response:text()
  check_self(self, Response, "aloop.http.Response", "text")
  if self._text then return self._text end
  local parts = {}
  if self._body then
    parts[1] = self._body
    self._body = ""
  else
    while true do
      local c = self._req:read()
      if c == "" then break end
      parts[#parts + 1] = c
    end
    self._req:close()
  end
  self._text = concat(parts)
  return self._text
end
Response.body = Response.text

function Response:json()
  check_self(self, Response, "aloop.http.Response", "json")
  return json().decode(self:text())
end

function Response:raise_for_status()
  check_self(self, Response, "aloop.http.Response", "raise_for_status")
  if self.status >= 400 then
    local e = aloop.error("HTTPStatusError", ("%d %s"):format(self.status, self.reason))
    e.status, e.reason, e.url = self.status, self.reason, self.url
    e.what = self.url
    error(e, 2)
  end
  return self
end

function Response:close()
  check_self(self, Response, "aloop.http.Response", "close")
  if self._req then self._req:close() end
end
Response.__close = Response.close

-- The headers, reason and history are parsed from the header text on first
-- use: a response whose body alone is read costs no header parsing.
local LAZY = { headers = true, history = true, reason = true }

local function parse_lazy(r)
  local blocks = parse_head(r._head)
  local final = blocks[#blocks] or { reason = "", headers = new_headers({}) }
  local history = {}
  for i = 1, #blocks - 1 do
    local b = blocks[i]
    history[i] = setmetatable({ status = b.status, reason = b.reason, http_version = b.http_version,
      headers = b.headers, url = b.url, method = r.method, history = {}, ok = b.status < 400,
      _body = "" }, Response)
  end
  r._head = nil
  rawset(r, "reason", final.reason)
  rawset(r, "headers", final.headers)
  rawset(r, "history", history)
end

Response.__index = function(r, k)
  local m = Response[k]
  if m ~= nil or not LAZY[k] or not r._head then return m end
  parse_lazy(r)
  return rawget(r, k)
end

local function new_response(req, head, url, ver, method)
  -- the final block's status line: after the last "\0url\r\n"
  local status = tonumber(head:match("%z[^\r]*\r\nHTTP/%S+%s+(%d%d%d)[^%z]*$")) or 0
  return setmetatable({
    status = status, http_version = ver, url = url, method = method,
    ok = status < 400, _req = req, _head = head,
  }, Response)
end

------------------------------------------------------------------------------
-- Session.

local Session = {}
Session.__index = Session
Session.__name = "aloop.http.Session"

local function check_opts(opts, n, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(n, fname, type(opts)), 3)
  end
  return opts or {}
end

local function positive(v, name, fname)
  if v ~= nil and (type(v) ~= "number" or v ~= v or v <= 0) then
    error(("bad argument to '%s' (%s: a positive number expected)"):format(fname, name), 3)
  end
  return v
end

-- Header tables as given ({name = value}) merged over the base ones,
-- case-insensitively; returns a list of {name, value}.
local function merge_headers(base, extra)
  local list, at = {}, {}
  local function add(t)
    for k, v in pairs(t or {}) do
      if type(k) ~= "string" then error("aloop.http: header names must be strings", 4) end
      local lk = k:lower()
      if at[lk] then list[at[lk]][2] = scalar(v, "header")
      else list[#list + 1] = { k, scalar(v, "header") }; at[lk] = #list end
    end
  end
  add(base)
  add(extra)
  return list, at
end

-- http.Session([opts]): defaults for its requests and one connection pool,
-- DNS cache, TLS session cache and cookie jar for all of them.
function http.Session(opts)
  opts = check_opts(opts, 1, "Session")
  if opts.headers ~= nil and type(opts.headers) ~= "table" then
    error("bad argument #1 to 'Session' (headers: a table expected)", 2)
  end
  positive(opts.timeout, "timeout", "Session")
  positive(opts.connect_timeout, "connect_timeout", "Session")
  local s = setmetatable({
    headers = opts.headers or {},
    timeout = opts.timeout,
    connect_timeout = opts.connect_timeout,
    follow_redirects = opts.follow_redirects ~= false,
    max_redirects = opts.max_redirects or 10,
    verify = opts.verify ~= false,
    cafile = opts.cafile,
    http2 = opts.http2,
    user_agent = opts.user_agent or DEFAULT_UA,
  }, Session)
  s._c = C.session({
    max_total = opts.max_connections == nil and 100 or opts.max_connections,
    max_host = opts.max_connections_per_host or 0,
    cookies = opts.cookies ~= false,
  })
  return s
end

-- Feed a streamed body: fn() gives chunks until nil.
local function feed(req, fn)
  while true do
    local chunk = fn()
    if chunk == nil then break end
    if type(chunk) ~= "string" then error("aloop.http: a body function must give strings", 0) end
    if chunk ~= "" and not req:feed(chunk) then return end
  end
  req:feed(nil)
end

-- The request's header lines for curl ("Name: value", "Name;" for an empty
-- value), and "Expect:" unless given: no 100-continue round trip.
local function header_lines(base, extra, given)
  local list, at = merge_headers(base, extra)
  for _, kv in ipairs((merge_headers(given))) do
    local lk = kv[1]:lower()
    if at[lk] then list[at[lk]][2] = kv[2] else list[#list + 1] = kv; at[lk] = #list end
  end
  local lines = {}
  for i, kv in ipairs(list) do
    lines[i] = kv[2] == "" and (kv[1] .. ";") or (kv[1] .. ": " .. kv[2])
  end
  if not at.expect then lines[#lines + 1] = "Expect:" end
  return lines
end

-- session:request(method, url [, opts]) -> Response, once its headers are in.
function Session:request(method, url, opts)
  check_self(self, Session, "aloop.http.Session", "request")
  if type(method) ~= "string" then
    error(("bad argument #1 to 'request' (string expected, got %s)"):format(type(method)), 2)
  end
  if type(url) ~= "string" then
    error(("bad argument #2 to 'request' (string expected, got %s)"):format(type(url)), 2)
  end
  opts = check_opts(opts, 3, "request")
  method = method:upper()
  local extra = {}
  local body, stream = opts.body, nil
  if opts.query ~= nil then
    if type(opts.query) ~= "table" then error("bad argument #3 to 'request' (query: a table expected)", 2) end
    local q = urlencode(opts.query, false, "query")
    if q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
  end
  if opts.json ~= nil then
    body = json().encode(opts.json)
    extra["Content-Type"] = "application/json"
  elseif opts.files ~= nil then
    body, extra["Content-Type"] = multipart(opts.form, opts.files)
  elseif opts.form ~= nil then
    body = urlencode(opts.form, true, "form")
    extra["Content-Type"] = "application/x-www-form-urlencoded"
  end
  if type(body) == "function" then
    stream, body = body, nil
  elseif body ~= nil and type(body) ~= "string" then
    error(("bad argument #3 to 'request' (body: a string or a function expected, got %s)"):format(type(body)), 2)
  end
  positive(opts.timeout, "timeout", "request")
  local lines
  if opts.headers == nil and next(extra) == nil and self._lines_of == self.headers then
    lines = self._lines -- the session's own, made once
  else
    lines = header_lines(self.headers, extra, opts.headers)
    if opts.headers == nil and next(extra) == nil then
      self._lines, self._lines_of = lines, self.headers
    end
  end
  local follow = opts.allow_redirects
  if follow == nil then follow = self.follow_redirects end
  local req = C.start(self._c, {
    method = method, url = url, headers = lines, body = body, stream = stream ~= nil,
    timeout = opts.timeout or self.timeout, connect_timeout = self.connect_timeout,
    follow = follow, max_redirects = opts.max_redirects or self.max_redirects,
    verify = self.verify, cafile = self.cafile, http2 = self.http2,
    user_agent = self.user_agent,
  })
  local ok, head, final_url, ver
  if stream then
    ok, head, final_url, ver = pcall(function()
      feed(req, stream)
      return req:head()
    end)
  else
    ok, head, final_url, ver = pcall(req.head, req)
  end
  if not ok then
    req:close()
    error(head, 0)
  end
  return new_response(req, head, final_url, ver, method)
end

for _, m in ipairs { "get", "post", "put", "patch", "delete", "head", "options" } do
  local M = m:upper()
  Session[m] = function(self, url, opts)
    check_self(self, Session, "aloop.http.Session", m)
    return self:request(M, url, opts)
  end
end

function Session:close()
  check_self(self, Session, "aloop.http.Session", "close")
  self._c:close()
end
Session.__close = Session.close

------------------------------------------------------------------------------
-- One-offs: a session of their own, the body read whole, the session closed.

function http.request(method, url, opts)
  local s <close> = http.Session(opts and opts.session)
  local r = s:request(method, url, opts)
  r._body = r:text()
  r._text, r._req = nil, nil
  return r
end

for _, m in ipairs { "get", "post", "put", "patch", "delete", "head", "options" } do
  local M = m:upper()
  http[m] = function(url, opts) return http.request(M, url, opts) end
end

http.Response = Response
http._stats = C.stats
http.curl_version = C.version

return http
