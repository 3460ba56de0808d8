-- aloop/threads.lua -- loop:run_in_executor(nil, fn, ...), asyncio's shape
-- on aloop.to_thread's machinery (bindings/lthread.c): the job is copied
-- and queued at once, and a Future (not a Task) stands for it; a task of
-- its own waits for the job and completes the Future, and cancelling the
-- Future lets go of the job. Loaded once with the module table and P.
local aloop, P = ...

local T = aloop._threads
local Future, create_task, is_cancelled = aloop.Future, aloop.create_task, aloop.is_cancelled
local pack, unpack, pcall, error = table.pack, table.unpack, pcall, error

local Loop = getmetatable(aloop.get_event_loop())

function Loop.run_in_executor(_, executor, fn, ...)
  if executor ~= nil then
    P.argerror(1, "run_in_executor", "nil expected (only the default executor is supported)")
  end
  if type(fn) ~= "function" then
    P.typeerror(fn, 2, "run_in_executor", "function")
  end
  local job = T.submit(2, "run_in_executor", 2, fn, ...)
  local fut = Future()
  local started = false
  local waiter = create_task(function()
    started = true
    local r = pack(pcall(T.wait, job))
    if fut:done() then
      return
    end
    if r[1] then
      fut:set_result(unpack(r, 2, r.n))
    elseif is_cancelled(r[2]) then
      fut:cancel()
      error(r[2], 0)
    else
      fut:set_exception(r[2])
    end
  end)
  fut:add_done_callback(function(f)
    if f:cancelled() then
      waiter:cancel()
    end
  end)
  -- cancelled by someone else (the end of a run), maybe before it started:
  -- the Future does not stay pending for good, nor the job held
  waiter:add_done_callback(function(t)
    if not t:cancelled() then
      return
    end
    if not started then
      T.release(job)
    end
    if not fut:done() then
      fut:cancel()
    end
  end)
  return fut
end
