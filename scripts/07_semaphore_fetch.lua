-- 07_semaphore_fetch.lua: a semaphore limits how many tasks run a section at
-- once: five fetches are started together, but at most three are in flight
-- at any moment, so five 0.5 s fetches take 1 s (two rounds), not 0.5 s.
-- The fetches are SIMULATED: until aloop has its HTTP client, each "fetch"
-- sleeps 0.5 s and returns a made-up page instead of downloading the URL.
-- Mirrors the Python tutorial 07_semaphore_fetch.py (asyncio.Semaphore,
-- `async with semaphore:`, aiohttp).
local aloop = require "aloop"

local semaphore = aloop.Semaphore(3)

-- Stand-in for session.get(url) + response.text(): takes 0.5 s, like a
-- (fast) request would, and returns a fake page.
local function fetch(url)
  aloop.sleep(0.5)
  return "<html><title>" .. url .. "</title></html>"
end

local function limited_fetch(url)
  -- `async with semaphore:` -- the permit is released when `_` goes out of
  -- scope, also on error or cancellation.
  local _ <close> = semaphore:acquire()
  print(("Fetching %s"):format(url))
  return fetch(url)
end

local function main(urls)
  local tasks = {}
  for i, url in ipairs(urls) do
    tasks[i] = aloop.create_task(limited_fetch, url)
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
aloop.run(main, urls)
