-- download.lua: stream a (large) file from a URL to disk with bounded
-- memory, drawing a progress bar on the terminal: bytes so far, rate, ETA.
-- The transfer pauses while the disk is behind, instead of buffering.
--   aloop scripts/download.lua URL [FILE]   (FILE: the URL's last part)
local aloop = require "aloop"
local http = require "aloop.http"

local url, path = arg[1], arg[2]
if not url then
  io.stderr:write("usage: aloop scripts/download.lua URL [FILE]\n")
  os.exit(2)
end
path = path or url:match("([^/?#]+)[?#]?[^/]*$") or "download.out"

local tty = os.execute("test -t 2")

local function size(n)
  local units, i = { "B", "KiB", "MiB", "GiB", "TiB" }, 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

local function clock(s)
  if s ~= s or s == math.huge or s < 0 then return "--:--" end
  s = math.floor(s + 0.5)
  return s >= 3600 and ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60)
    or ("%d:%02d"):format(s // 60, s % 60)
end

local function bar(done, total, rate, elapsed)
  local width = 30
  local line
  if total then
    local frac = total > 0 and done / total or 1
    local fill = math.floor(frac * width + 0.5)
    line = ("[%s%s] %3d%%  %s / %s  %s/s  ETA %s"):format(("#"):rep(fill), (" "):rep(width - fill),
      math.floor(frac * 100), size(done), size(total), size(rate),
      clock(rate > 0 and (total - done) / rate or math.huge))
  else
    line = ("%s  %s/s  %s"):format(size(done), size(rate), clock(elapsed))
  end
  return line
end

aloop.run(function()
  local session <close> = http.Session()
  local response <close> = session:get(url)
  response:raise_for_status()
  local total = tonumber(response.headers["content-length"])
  local out = assert(io.open(path, "wb"))
  local done, t0, last = 0, aloop.time(), 0
  for chunk in response:iter_chunks(256 * 1024) do
    out:write(chunk)
    done = done + #chunk
    local now = aloop.time()
    if tty and now - last >= 0.1 then
      last = now
      io.stderr:write("\r", bar(done, total, done / math.max(now - t0, 1e-6), now - t0), "\27[K")
    end
  end
  out:close()
  local elapsed = aloop.time() - t0
  if tty then io.stderr:write("\r", bar(done, total, done / math.max(elapsed, 1e-6), elapsed), "\27[K\n") end
  print(("Saved %s (%d bytes) in %.2f s, %s/s"):format(path, done, elapsed,
    size(done / math.max(elapsed, 1e-6))))
end)
