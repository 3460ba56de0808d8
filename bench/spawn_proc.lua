-- subprocess spawn rate, aloop side: run 1 000 `true` processes, 50 at a
-- time (a Semaphore(50)), each exec'd and waited for. Prints the time from
-- the first spawn to the last exit.
local aloop = require "aloop"

local N = tonumber(arg[1]) or 1000
local AT_ONCE = tonumber(arg[2]) or 50

aloop.run(function()
  local sem = aloop.Semaphore(AT_ONCE)
  local function one()
    sem:acquire()
    local p = aloop.subprocess.exec("true")
    local rc = p:wait()
    sem:release()
    assert(rc == 0)
  end
  local t0 = aloop.time()
  local tasks = {}
  for i = 1, N do tasks[i] = aloop.create_task(one) end
  aloop.gather(tasks)
  local elapsed = aloop.time() - t0
  print(string.format("RESULT seconds=%.6f procs=%d rate=%.1f", elapsed, N, N / elapsed))
end)
