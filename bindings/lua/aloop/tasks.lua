-- aloop/tasks.lua -- the combinators written on top of the C core: timeout
-- scopes, wait_for, wait, shield and as_completed. Loaded once with the
-- module table by luaopen_aloop.
local aloop, P = ...

local Future, create_task = aloop.Future, aloop.create_task
local is_cancelled = aloop.is_cancelled
local loop = aloop.get_event_loop()
local setmetatable, type, error, pcall, pairs = setmetatable, type, error, pcall, pairs
local getmetatable = getmetatable
local is_future, callable, check_delay, need_task, typeerror, argerror =
  P.is_future, P.callable, P.check_delay, P.need_task, P.typeerror, P.argerror
local state_of = P.state

aloop.is_future = is_future

-- A Task or Future as it is, a function run as a new task; errors blame
-- the caller of the public function that asks (level 2 from here).
local function ensure_future(x, fname, argn)
  if is_future(x) then return x end
  if callable(x) then return create_task(x) end
  typeerror(x, argn, fname, "Task, Future or function", 2)
end
aloop.ensure_future = function(x)
  local f = ensure_future(x, "ensure_future", 1)
  return f
end

------------------------------------------------------------------------------
-- timeout(delay): a <close>-able scope; when it expires it cancels the task
-- and, on leaving, turns that cancellation (only its own) into TimeoutError.

local Timeout = {}
Timeout.__index = Timeout
Timeout.__name = "aloop.Timeout"

local function on_expire(self)
  self._handle = nil
  self._state = "expiring"
  self._task:cancel()
end

-- reschedule(when): the deadline becomes `when`, an absolute aloop.time()
-- as asyncio's (nil: none).
function Timeout:reschedule(when)
  check_delay(when, 1, "reschedule", true)
  if self._state ~= "entered" then
    error("aloop.timeout: cannot reschedule a timeout that is " .. self._state, 2)
  end
  if self._handle then self._handle:cancel(); self._handle = nil end
  self._when = when
  if when then
    local delay = when - aloop.time()
    if delay <= 0 then
      self._handle = loop:call_soon(on_expire, self)
    else
      self._handle = loop:call_later(delay, on_expire, self)
    end
  end
end

function Timeout:when() return self._when end
function Timeout:expired() return self._state == "expiring" or self._state == "expired" end

function Timeout:__close(err)
  if self._handle then self._handle:cancel(); self._handle = nil end
  if self._state == "expiring" then
    self._state = "expired"
    if self._task:uncancel() <= self._cancelling and err ~= nil and is_cancelled(err) then
      error(aloop.error("TimeoutError"), 0)
    end
  elseif self._state == "entered" then
    self._state = "exited"
  end
end

-- timeout(delay) and timeout_at(when): one scope, by a delay or a time.
local function new_timeout(when, fname)
  local task = need_task(fname, 2)
  local self = setmetatable({ _task = task, _state = "entered",
    _cancelling = task:cancelling() }, Timeout)
  self:reschedule(when)
  return self
end

function aloop.timeout(delay)
  check_delay(delay, 1, "timeout", true)
  local scope = new_timeout(delay and aloop.time() + delay, "timeout")
  return scope
end

function aloop.timeout_at(when)
  check_delay(when, 1, "timeout_at", true)
  local scope = new_timeout(when, "timeout_at")
  return scope
end

------------------------------------------------------------------------------
-- wait_for(aw, timeout): await with a time limit; on timeout the inner task
-- is cancelled and waited for before TimeoutError is raised.

function aloop.wait_for(aw, delay)
  check_delay(delay, 2, "wait_for", true)
  if not (is_future(aw) or callable(aw)) then
    typeerror(aw, 1, "wait_for", "Task, Future or function")
  end
  need_task("wait_for")
  local fut = ensure_future(aw, "wait_for", 1)
  if delay == nil then return fut:await() end
  if delay <= 0 then
    -- As asyncio: no time at all, so cancel it and wait for that at once.
    if fut:done() then return fut:result() end
    fut:cancel()
    local waiter = aloop.shield(fut)
    local ok, err = pcall(waiter.await, waiter)
    if fut:cancelled() then error(aloop.error("TimeoutError"), 2) end
    if not ok then error(err, 0) end
    return fut:result()
  end
  local _scope <close> = aloop.timeout(delay)
  return fut:await()
end

------------------------------------------------------------------------------
-- shield(aw): a future that follows aw, whose cancellation does not reach aw.

function aloop.shield(aw)
  if not (is_future(aw) or callable(aw)) then
    typeerror(aw, 1, "shield", "Task, Future or function")
  end
  local inner = ensure_future(aw, "shield", 1)
  if inner:done() then return inner end
  local outer = Future()
  inner:add_done_callback(function()
    -- The outer was cancelled: inner's outcome is left to whoever holds
    -- it. Unlike asyncio, which marks its error retrieved here, an error
    -- nobody looks at is reported: never dropped.
    if outer:done() then return end
    local state = state_of(inner)
    if state == "cancelled" then
      outer:cancel()
    elseif state == "failed" then -- its error may be any value, nil too
      outer:set_exception(inner:exception())
    else
      outer:set_result(inner:result())
    end
  end)
  return outer
end

------------------------------------------------------------------------------
-- wait(fs, opts) -> done, pending (sets: tables keyed by the futures).

local return_whens = { FIRST_COMPLETED = true, FIRST_EXCEPTION = true, ALL_COMPLETED = true }
aloop.FIRST_COMPLETED = "FIRST_COMPLETED"
aloop.FIRST_EXCEPTION = "FIRST_EXCEPTION"
aloop.ALL_COMPLETED = "ALL_COMPLETED"

local function check_list(fs, fname)
  if type(fs) ~= "table" or getmetatable(fs) ~= nil then
    typeerror(fs, 1, fname, "array of Tasks or Futures", 2)
  end
  for i = 1, #fs do
    if not is_future(fs[i]) then
      argerror(1, fname, "item " .. i .. ": Task or Future expected, got " .. type(fs[i]), 2)
    end
  end
end

function aloop.wait(fs, opts)
  check_list(fs, "wait")
  if opts ~= nil and type(opts) ~= "table" then typeerror(opts, 2, "wait", "table") end
  opts = opts or {}
  local return_when = opts.return_when or "ALL_COMPLETED"
  if not return_whens[return_when] then
    argerror(2, "wait", "return_when must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED")
  end
  local timeout = check_delay(opts.timeout, 2, "wait", true)
  need_task("wait")
  if #fs == 0 then argerror(1, "wait", "the set of futures is empty") end

  local function satisfied()
    local ndone = 0
    for i = 1, #fs do
      local f = fs[i]
      if f:done() then
        ndone = ndone + 1
        if return_when == "FIRST_COMPLETED" then return true end
        if return_when == "FIRST_EXCEPTION" and state_of(f) == "failed" then
          return true
        end
      end
    end
    return ndone == #fs
  end

  if not satisfied() then
    local waiter = Future()
    local function on_done()
      if not waiter:done() and satisfied() then waiter:set_result() end
    end
    local handle
    if timeout then
      handle = loop:call_later(timeout, function()
        if not waiter:done() then waiter:set_result() end
      end)
    end
    local seen = {}
    for i = 1, #fs do
      if not seen[fs[i]] then seen[fs[i]] = true; fs[i]:add_done_callback(on_done) end
    end
    local ok, err = pcall(waiter.await, waiter)
    if handle then handle:cancel() end
    for f in pairs(seen) do f:remove_done_callback(on_done) end
    if not ok then error(err, 0) end
  end
  local done, pending = {}, {}
  for i = 1, #fs do
    if fs[i]:done() then done[fs[i]] = true else pending[fs[i]] = true end
  end
  return done, pending
end

------------------------------------------------------------------------------
-- as_completed(fs [, opts]): for f in aloop.as_completed(fs) do ... end gives
-- the futures in the order they complete; opts.timeout bounds the whole.

function aloop.as_completed(fs, opts)
  check_list(fs, "as_completed")
  if opts ~= nil and type(opts) ~= "table" then typeerror(opts, 2, "as_completed", "table") end
  local timeout = check_delay(opts and opts.timeout, 2, "as_completed", true)
  local queue, head, tail, remaining, waiter = {}, 1, 0, 0, nil
  local seen = {}
  for i = 1, #fs do
    local f = fs[i]
    if not seen[f] then
      seen[f] = true
      remaining = remaining + 1
      f:add_done_callback(function(done)
        tail = tail + 1
        queue[tail] = done
        if waiter and not waiter:done() then waiter:set_result() end
      end)
    end
  end
  local deadline = timeout and aloop.time() + timeout
  return function()
    if remaining == 0 then return nil end
    while head > tail do
      waiter = Future()
      if deadline then
        local left = deadline - aloop.time()
        if left <= 0 then error(aloop.error("TimeoutError"), 2) end
        local ok, err = pcall(aloop.wait_for, waiter, left)
        if not ok then
          if aloop.is_timeout(err) then error(err, 2) end
          error(err, 0)
        end
      else
        waiter:await()
      end
    end
    remaining = remaining - 1
    local f = queue[head]
    queue[head] = nil
    head = head + 1
    return f
  end
end

