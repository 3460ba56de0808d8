---@meta aloop.http
-- LuaLS definitions for `require "aloop.http"` (docs/api.md, "HTTP client"):
-- sessions, requests, responses and their errors.

---@class aloop.http.SessionOptions
---Headers every request sends.
---@field headers? table<string, string|number|boolean>
---Seconds for a whole request, body included.
---@field timeout? number
---Seconds to connect.
---@field connect_timeout? number
---Connections open at once (100).
---@field max_connections? integer
---Connections per host (no limit).
---@field max_connections_per_host? integer
---Follow redirects (true), at most max_redirects (10).
---@field follow_redirects? boolean
---@field max_redirects? integer
---Verify the server's certificate (true).
---@field verify? boolean
---Trust the certificates in this PEM file.
---@field cafile? string
---false: HTTP/1.1 only.
---@field http2? boolean
---The session's cookie jar (true).
---@field cookies? boolean
---@field user_agent? string

---@class aloop.http.RequestOptions
---@field headers? table<string, string|number|boolean>
---Encoded and appended to the URL.
---@field query? table
---A string, or a function giving chunks until nil (streamed).
---@field body? string|fun(): string?
---Encoded with lua-cjson.
---@field json? any
---urlencoded, or the fields of a multipart body.
---@field form? table
---multipart/form-data parts.
---@field files? table<string, string|{content: string, filename?: string, content_type?: string}>
---@field timeout? number
---@field allow_redirects? boolean
---@field max_redirects? integer
---Options of the session of a module-level one-off.
---@field session? aloop.http.SessionOptions

---Response headers: case-insensitive lookup, repeats kept.
---@class aloop.http.Headers
---@field [string] string?
local Headers = {}
---@param name string
---@param default? string
---@return string?
function Headers:get(name, default) end
---@param name string
---@return string[]
function Headers:get_all(name) end
---@return {[1]: string, [2]: string}[]
function Headers:items() end

---@class aloop.http.Response
---@field status integer
---@field reason string
---@field http_version string
---@field ok boolean
---@field url string
---@field method string
---@field headers aloop.http.Headers
---@field history aloop.http.Response[]
local Response = {}
---Up to n body bytes as they arrive; "" at the end. Waits.
---@param n? integer
---@return string
function Response:read(n) end
---@param n? integer
---@return fun(): string?
function Response:iter_chunks(n) end
---The whole body. Waits.
---@return string
function Response:text() end
---@return string
function Response:body() end
---The body decoded with lua-cjson. Waits.
---@return any
function Response:json() end
---Raises HTTPStatusError for a status of 400 or more.
---@return aloop.http.Response
function Response:raise_for_status() end
function Response:close() end

---@class aloop.http.Session
local Session = {}
---Waits for the final response's headers.
---@param method string
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:request(method, url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:get(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:post(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:put(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:patch(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:delete(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:head(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function Session:options(url, opts) end
---Aborts its requests and frees everything (also `<close>`).
function Session:close() end

---An HTTP failure: kind ConnectionError, DNSError, TLSError,
---TooManyRedirects, TimeoutError, HTTPError or HTTPStatusError.
---@class aloop.http.Error: aloop.Error
---@field curl_code? integer
---@field curl_error? string
---@field url? string
---@field status? integer
---@field code? string
---@field errno? integer

---@class aloop.http
local http = {}
---@param opts? aloop.http.SessionOptions
---@return aloop.http.Session
function http.Session(opts) end
---A one-off on a session of its own; the body read whole.
---@param method string
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.request(method, url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.get(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.post(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.put(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.patch(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.delete(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.head(url, opts) end
---@param url string
---@param opts? aloop.http.RequestOptions
---@return aloop.http.Response
function http.options(url, opts) end
---Whether e is an error of aloop.http.
---@param e any
---@return boolean
function http.is_http_error(e) end
---`application/x-www-form-urlencoded` encoding of a table.
---@param t table
---@return string
function http.urlencode(t) end
---libcurl's version line.
---@return string
function http.curl_version() end

return http
