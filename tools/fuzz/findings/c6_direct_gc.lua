-- C6 (make fuzz: getmetatable(X).__gc(...)): the __gc metamethods, reachable
-- with getmetatable, do not check their argument. The argument picks one:
--   handle, task, waitq, loop  - called with a wrong value: NULL member
--                                access (UBSan) / SIGSEGV
--   loop_self                  - the loop's own __gc on the loop, then a
--                                wait: "(libev) epoll_wait: Bad file
--                                descriptor", abort
--   loop_self_run              - the same at top level, then aloop.run:
--                                SEGV in run_toplevel
local aloop = require "aloop"
local which = arg and arg[1] or "handle"
local loop = aloop.get_event_loop()
local gc = {
  handle = function() getmetatable(loop:call_soon(print)).__gc({}) end,
  task = function() getmetatable(aloop.current_task()).__gc(1e308) end,
  waitq = function() getmetatable(aloop._WaitQueue()).__gc({}) end,
  loop = function() getmetatable(loop).__gc(aloop) end,
  loop_self = function() getmetatable(loop).__gc(loop) aloop.sleep(0.01) end,
}
if which == "loop_self_run" then
  getmetatable(loop).__gc(loop)
  aloop.run(function() end)
else
  aloop.run(function() gc[which]() end)
end
print("no crash: " .. which)
