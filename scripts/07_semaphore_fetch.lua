-- 07_semaphore_fetch.lua: a semaphore limits how many tasks run a section at
-- once: all the fetches are started together, but at most three requests
-- are in flight at any moment. Mirrors the Python tutorial
-- 07_semaphore_fetch.py (asyncio.Semaphore, `async with semaphore:`,
-- aiohttp) line by line.
--   aloop scripts/07_semaphore_fetch.lua [URL ...]   (default: the tutorial's)
local aloop = require "aloop"
local http = require "aloop.http"

local semaphore = aloop.Semaphore(3)

local function limited_fetch(session, url)
  -- `async with semaphore:` -- the permit is released when `_` goes out of
  -- scope, also on error or cancellation.
  local _ <close> = semaphore:acquire()
  print(("Fetching %s"):format(url))
  local response <close> = session:get(url)
  return response:text()
end

local function main(urls)
  local session <close> = http.Session()
  local tasks = {}
  for i, url in ipairs(urls) do
    tasks[i] = aloop.create_task(limited_fetch, session, url)
  end
  local results = aloop.gather(tasks)
  print(("Fetched %d pages"):format(results.n))
end

local urls = {
  "https://example.com",
  "https://python.org",
  "https://asyncio.org",
  "https://github.com",
  "https://stackoverflow.com",
}
if arg and #arg > 0 then urls = { table.unpack(arg) } end
aloop.run(main, urls)
