---@meta aloop
-- LuaLS definitions for aloop's streams and servers (docs/api.md, "Streams
-- and servers"). They add to the class `aloop` of aloop.lua in this folder.

---@class aloop
local aloop = {}

---@alias aloop.Family "inet"|"inet6"

---@class aloop.ConnectOptions
---How far `readline`/`readuntil` look for their separator (65536).
---@field limit? integer
---Only addresses of this family.
---@field family? aloop.Family
---Bind to this address first: `{host, port}` or a host.
---@field local_addr? string|{[1]: string, [2]: integer?}
---TCP_NODELAY (on by default).
---@field nodelay? boolean
---Seconds before the next address is tried (0.25); false: one after another.
---@field happy_eyeballs_delay? number|false
---TLS: true (verify against the system store) or client options.
---@field tls? boolean|aloop.TLSClientOptions
---The name to verify and send as SNI (default: host; "": no name check).
---@field server_hostname? string
---Seconds the TLS handshake may take (60).
---@field ssl_handshake_timeout? number

---@class aloop.TLSClientOptions
---Trust these (PEM file / hashed directory) instead of the system store.
---@field cafile? string
---@field capath? string
---false: no verification at all (explicit opt-out).
---@field verify? boolean
---@field server_hostname? string
---A client certificate and its key (PEM).
---@field cert? string
---@field key? string
---Protocols offered, e.g. {"h2", "http/1.1"}.
---@field alpn? string[]
---The oldest and newest TLS versions allowed (TLS 1.2 and the newest by default).
---@field min_version? "TLSv1.2"|"TLSv1.3"
---@field max_version? "TLSv1.2"|"TLSv1.3"
---OpenSSL cipher list for TLS 1.2, and the TLS 1.3 cipher suites.
---@field ciphers? string
---@field ciphersuites? string

---@class aloop.TLSServerOptions
---The certificate (chain) and key, PEM.
---@field cert string
---@field key? string
---Trusted for client certificates.
---@field cafile? string
---@field capath? string
---Require and verify a client certificate.
---@field verify_client? boolean
---Protocols accepted, in order of preference.
---@field alpn? string[]
---The oldest and newest TLS versions allowed (TLS 1.2 and the newest by default).
---@field min_version? "TLSv1.2"|"TLSv1.3"
---@field max_version? "TLSv1.2"|"TLSv1.3"
---OpenSSL cipher list for TLS 1.2, and the TLS 1.3 cipher suites.
---@field ciphers? string
---@field ciphersuites? string

---@class aloop.StartTLSOptions: aloop.TLSClientOptions
---The server side of the handshake (needs cert and key).
---@field server_side? boolean
---Server side: require and verify a client certificate.
---@field verify_client? boolean
---Seconds the handshake may take (60).
---@field ssl_handshake_timeout? number

---@class aloop.ServerOptions
---The listen queue (100).
---@field backlog? integer
---SO_REUSEPORT.
---@field reuse_port? boolean
---Only this family (with host nil: listen on that one only).
---@field family? aloop.Family
---The `limit` of the streams handed to the handler (65536).
---@field limit? integer
---false: accept only after `start_serving()` or `serve_forever()`.
---@field start_serving? boolean
---TLS: each connection does its handshake before the handler runs.
---@field tls? aloop.TLSServerOptions
---Seconds a client may take to do the handshake (60).
---@field ssl_handshake_timeout? number

---A connection: asyncio's StreamReader and StreamWriter in one object.
---@class aloop.Stream
local Stream = {}

---Up to `n` bytes as soon as any are there; `""` at the end of stream.
---Without `n` (or -1): everything up to the end of stream.
---@async
---@param n? integer
---@return string
function Stream:read(n) end

---A line with its "\n"; at the end of stream what is left ("" when nothing).
---@async
---@return string
function Stream:readline() end

---The bytes up to and including `sep` ("\n"). Raises IncompleteReadError at
---an early end of stream, LimitOverrunError past the limit.
---@async
---@param sep? string
---@return string
function Stream:readuntil(sep) end

---Exactly `n` bytes, or IncompleteReadError (`partial`, `expected`).
---@async
---@param n integer
---@return string
function Stream:readexactly(n) end

---`for line in stream:lines() do`: lines without "\n" ("L": with it).
---@param fmt? "l"|"L"
---@return async fun(): string?
function Stream:lines(fmt) end

---Nothing buffered and the peer has closed (does not wait).
---@return boolean
function Stream:at_eof() end

---Queue bytes; never waits.
---@param data string|number
function Stream:write(data) end

---Waits while the write buffer is above the high-water mark, until it is at
---the low one; raises the error that lost the connection.
---@async
function Stream:drain() end

---Shut down writing once the buffer is sent.
function Stream:write_eof() end

---@return true
function Stream:can_write_eof() end

---@return integer
function Stream:get_write_buffer_size() end

---@param high? integer 65536
---@param low? integer high // 4
function Stream:set_write_buffer_limits(high, low) end

---Idempotent; what was written is still sent, then the socket closes.
function Stream:close() end

---Close at once with a reset (RST), dropping what was not sent.
function Stream:abort() end

---@return boolean
function Stream:is_closing() end

---Waits until the socket is closed.
---@async
function Stream:wait_closed() end

---Upgrade this open plain stream to TLS (STARTTLS) and return it; a failed
---handshake closes it and raises a TLSError.
---@async
---@param opts? aloop.StartTLSOptions
---@return aloop.Stream
function Stream:start_tls(opts) end

---@return string host
---@return integer? port
function Stream:sockname() end

---@return string host
---@return integer? port
function Stream:peername() end

---"peername", "sockname" ({host, port}), "socket" (the descriptor).
---@param name "peername"|"sockname"|"socket"|string
---@param default? any
---@return any
function Stream:get_extra_info(name, default) end

---@class aloop.Server
local Server = {}

---@return integer?
function Server:port() end

---@return {[1]: string, [2]: integer?}[]
function Server:sockets() end

---@return boolean
function Server:is_serving() end

function Server:start_serving() end

---Stop accepting and close the listening sockets (idempotent).
function Server:close() end

---Waits until closed and every connection handler has finished.
---@async
function Server:wait_closed() end

---Accepts until the server is closed; cancelling it closes the server.
---@async
function Server:serve_forever() end

---Connects to host:port (numeric or "localhost" for now); happy eyeballs.
---@async
---@param host string
---@param port integer|string
---@param opts? aloop.ConnectOptions
---@return aloop.Stream
function aloop.open_connection(host, port, opts) end

---@async
---@param path string
---@param opts? {limit?: integer}
---@return aloop.Stream
function aloop.open_unix_connection(path, opts) end

---Runs `handler(stream)` as a task per connection. `host` nil, "" or "*":
---every IPv4 and IPv6 address. Port 0 picks a free port.
---@param handler async fun(stream: aloop.Stream)
---@param host string?
---@param port integer|string|nil
---@param opts? aloop.ServerOptions
---@return aloop.Server
function aloop.start_server(handler, host, port, opts) end

---@param handler async fun(stream: aloop.Stream)
---@param path string
---@param opts? aloop.ServerOptions
---@return aloop.Server
function aloop.start_unix_server(handler, path, opts) end

---An OS error about a connection (refused, reset, aborted, broken pipe,
---timed out, unreachable).
---@param err any
---@return boolean
function aloop.is_connection_error(err) end

---A TLS handshake or protocol failure (`message` has OpenSSL's reason;
---`verify_code`, `verify_message` when verification failed).
---@param err any
---@return boolean
function aloop.is_tls_error(err) end

---@param err any
---@return boolean
function aloop.is_os_error(err) end

---An IncompleteReadError (`partial`, `expected`).
---@param err any
---@return boolean
function aloop.is_incomplete_read(err) end

---A LimitOverrunError (`consumed`).
---@param err any
---@return boolean
function aloop.is_limit_overrun(err) end
