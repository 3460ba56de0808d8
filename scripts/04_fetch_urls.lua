-- 04_fetch_urls.lua: fetch several pages at once over one HTTP session and
-- print when each fetch starts and completes, then how many pages came back.
-- Mirrors the Python tutorial 04_fetch_urls.py (aiohttp.ClientSession,
-- asyncio.create_task, asyncio.gather) line by line.
--   aloop scripts/04_fetch_urls.lua [URL ...]   (default: the tutorial's URLs)
local aloop = require "aloop"
local http = require "aloop.http"

local function fetch(session, url)
  print(("Starting fetch: %s"):format(url))
  -- `async with session.get(url) as response:` -- closed on leaving scope
  local response <close> = session:get(url)
  local data = response:text()
  print(("Completed fetch: %s"):format(url))
  return data
end

local function main(urls)
  local session <close> = http.Session()
  local tasks = {}
  for i, url in ipairs(urls) do
    tasks[i] = aloop.create_task(fetch, session, url)
  end
  local results = aloop.gather(tasks)
  print(("Fetched %d pages"):format(results.n))
end

local urls = {
  "https://example.com",
  "https://python.org",
  "https://asyncio.org",
}
if arg and #arg > 0 then urls = { table.unpack(arg) } end
aloop.run(main, urls)
