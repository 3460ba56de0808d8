-- to_thread_primes.lua: CPU-heavy work on worker threads while the loop stays
-- free. Each range of numbers is counted for primes by aloop.to_thread (the
-- function and its arguments are copied to a thread with a Lua state of its
-- own); meanwhile a progress task keeps printing, which it could not do if
-- the counting ran on the loop. The Lua form of asyncio.to_thread with a
-- ticker task beside it. Usage: to_thread_primes.lua [limit [ranges]]
local aloop = require "aloop"

-- Plain Lua, no aloop: this is what runs on a worker thread.
local function count_primes(lo, hi)
  local n = 0
  for k = math.max(lo, 2), hi do
    local prime = true
    for d = 2, math.floor(math.sqrt(k)) do
      if k % d == 0 then
        prime = false
        break
      end
    end
    if prime then n = n + 1 end
  end
  return n
end

local function main(limit, nranges)
  local step = limit // nranges
  local done, tasks = 0, {}
  local progress = aloop.create_task(function()
    while true do
      print(("progress: %d of %d ranges counted"):format(done, nranges))
      aloop.sleep(0.05)
    end
  end)
  for i = 1, nranges do
    local lo, hi = (i - 1) * step + 1, i == nranges and limit or i * step
    tasks[i] = aloop.create_task(function()
      local n = aloop.to_thread(count_primes, lo, hi)
      done = done + 1
      print(("primes in [%d, %d]: %d"):format(lo, hi, n))
      return n
    end)
  end
  local counts = aloop.gather(tasks)
  progress:cancel()
  local total = 0
  for i = 1, counts.n do total = total + counts[i] end
  print(("primes up to %d: %d"):format(limit, total))
end

aloop.run(main, tonumber(arg and arg[1]) or 300000, tonumber(arg and arg[2]) or 4)
