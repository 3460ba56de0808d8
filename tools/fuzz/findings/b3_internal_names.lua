-- B3 (make fuzz and make torture): error messages that name aloop's own
-- files, or another function than the one called. The first six are the
-- review's; the last four are further instances the fuzzer found.
local aloop = require "aloop"
local function try(what, f) print(what, select(2, pcall(f))) end
try("top level: aloop.ensure_future(fn)", function() return aloop.ensure_future(print) end)
try("top level: aloop.shield(fn)", function() return aloop.shield(print) end)
aloop.run(function()
  local loop = aloop.get_event_loop()
  try("loop:create_task(nil)", function() return loop:create_task(nil) end)
  do
    local tg <close> = aloop.TaskGroup()
    try("tg:create_task(nil)", function() return tg:create_task(nil) end)
  end
  try("aloop.wait_for(current_task())", function() return aloop.wait_for(aloop.current_task(), 1) end)
  local barrier, q, cond = aloop.Barrier(2), aloop.Queue(), aloop.Condition()
  q:put_nowait(1)
  cond:acquire() -- held: the callback's acquire would have to wait
  local done = aloop.Future()
  loop:call_soon(function() -- a loop callback: no task
    try("callback: barrier:wait()", function() return barrier:wait() end)
    try("callback: q:join()", function() return q:join() end)
    try("callback: cond:acquire()", function() return cond:acquire() end)
    try("callback: aloop.timeout_at(0)", function() return aloop.timeout_at(0) end)
    done:set_result(true)
  end)
  done:await()
  setmetatable({}, {__gc = function() -- a finaliser: no waiting
    try("finaliser: lock:acquire() held", function()
      local lock = aloop.Lock()
      lock:acquire()
      return lock:acquire()
    end)
  end})
  collectgarbage()
end)
