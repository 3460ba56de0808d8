-- bench/http.lua -- aloop.http: 20 000 GETs of a 1 KiB file at concurrency
-- 50 over one session, against the nginx bench/run.py started
-- (ALOOP_BENCH_HTTP: its base URL); `download` instead: one 100 MB file
-- streamed and dropped. Prints one RESULT line.
local aloop = require "aloop"
local http = require "aloop.http"

local base = assert(os.getenv("ALOOP_BENCH_HTTP"), "ALOOP_BENCH_HTTP: the server's base URL")
local mode = arg[1] or "get"

if mode == "download" then
  aloop.run(function()
    local s <close> = http.Session()
    local t0 = aloop.time()
    local r <close> = s:get(base .. "/bench/100mb.bin")
    local n = 0
    for c in r:iter_chunks() do n = n + #c end
    local dt = aloop.time() - t0
    assert(n == 100 * 1024 * 1024, "short download: " .. n)
    print(("RESULT seconds=%.6f mbps=%.1f"):format(dt, n / dt / 1e6))
  end)
  return
end

local TOTAL, CONCURRENCY = 20000, 50
local url = base .. "/bench/1k.bin"

aloop.run(function()
  local s <close> = http.Session({ max_connections = CONCURRENCY })
  local left, bytes = TOTAL, 0
  local function worker()
    while left > 0 do
      left = left - 1
      local r <close> = s:get(url)
      bytes = bytes + #r:text()
    end
  end
  local t0 = aloop.time()
  local tasks = {}
  for i = 1, CONCURRENCY do tasks[i] = aloop.create_task(worker) end
  aloop.gather(tasks)
  local dt = aloop.time() - t0
  assert(bytes == TOTAL * 1024, "bytes: " .. bytes)
  print(("RESULT seconds=%.6f rps=%.1f requests=%d"):format(dt, TOTAL / dt, TOTAL))
end)
