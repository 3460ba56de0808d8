-- aloop/tasks.lua -- the combinators written on top of the C core: timeout
-- scopes, wait_for, wait, shield and as_completed. Loaded once with the
-- module table by luaopen_aloop.
local aloop, P = ...

-- Everything is taken at load time: a script that replaces or removes a
-- global (pairs, string, ...) or a field of the module does not change aloop.
local Future, create_task = aloop.Future, aloop.create_task
local is_cancelled, is_timeout, new_error, now = aloop.is_cancelled, aloop.is_timeout, aloop.error,
  aloop.time
local loop = aloop.get_event_loop()
local call_soon, call_later = loop.call_soon, loop.call_later
local setmetatable, getmetatable, rawget, type, error, pcall, pairs =
  setmetatable, getmetatable, rawget, type, error, pcall, pairs
local sgsub = string.gsub
local is_future, callable, check_delay, need_task, typeerror, argerror =
  P.is_future, P.callable, P.check_delay, P.need_task, P.typeerror, P.argerror
local state_of = P.state

aloop.is_future = is_future

-- A Task or Future as it is, a function run as a new task; errors blame
-- the caller of the public function that asks (level 2 from here).
local function ensure_future(x, fname, argn)
  if is_future(x) then return x end
  if callable(x) then
    local ok, t = pcall(create_task, x)
    if ok then return t end
    -- (no loop runs: aloop's message, at the caller's line)
    if type(t) == "string" then t = sgsub(t, "^aloop/[%w_]+%.lua:%d+: ", "") end
    error(t, 3)
  end
  typeerror(x, argn, fname, "Task, Future or function", 2)
end
aloop.ensure_future = function(x)
  local f = ensure_future(x, "ensure_future", 1)
  return f
end

------------------------------------------------------------------------------
-- timeout(delay): a <close>-able scope; when it expires it cancels the task
-- and, on leaving, turns that cancellation (only its own) into TimeoutError.

-- A scope's state is private: SCOPES[scope] (weak keys), one lookup that
-- also checks `self`.
local SCOPES = setmetatable({}, { __mode = "k" })

local function bad_self(v, fname)
  local mt = getmetatable(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  argerror(1, fname, "aloop Timeout expected, got " ..
    (v ~= v and "nan" or type(name) == "string" and name or type(v)), 2)
end

local Timeout = {}
Timeout.__index = Timeout
Timeout.__name = "aloop.Timeout"

local function on_expire(st)
  st.handle = nil
  st.state = "expiring"
  st.task:cancel()
end

local function reschedule(st, when)
  if st.handle then st.handle:cancel(); st.handle = nil end
  st.when = when
  if when then
    local delay = when - now()
    if delay <= 0 then
      st.handle = call_soon(loop, on_expire, st)
    else
      st.handle = call_later(loop, delay, on_expire, st)
    end
  end
end

-- reschedule(when): the deadline becomes `when`, an absolute now()
-- as asyncio's (nil: none).
function Timeout:reschedule(when)
  local st = SCOPES[self]
  if st == nil then bad_self(self, "reschedule") end
  check_delay(when, 1, "reschedule", true)
  if st.state ~= "entered" then
    error("aloop.timeout: cannot reschedule a timeout that is " .. st.state, 2)
  end
  reschedule(st, when)
end

function Timeout:when()
  local st = SCOPES[self]
  if st == nil then bad_self(self, "when") end
  return st.when
end

function Timeout:expired()
  local st = SCOPES[self]
  if st == nil then bad_self(self, "expired") end
  return st.state == "expiring" or st.state == "expired"
end

function Timeout:__close(err)
  local st = SCOPES[self]
  if st == nil then bad_self(self, "__close") end
  if st.handle then st.handle:cancel(); st.handle = nil end
  if st.state == "expiring" then
    st.state = "expired"
    if st.task:uncancel() <= st.cancelling and err ~= nil and is_cancelled(err) then
      error(new_error("TimeoutError"), 0)
    end
  elseif st.state == "entered" then
    st.state = "exited"
  end
end

-- timeout(delay) and timeout_at(when): one scope, by a delay or a time.
local function new_timeout(when, fname)
  local task = need_task(fname, 2)
  local self = setmetatable({}, Timeout)
  local st = { task = task, state = "entered", cancelling = task:cancelling() }
  SCOPES[self] = st
  reschedule(st, when)
  return self
end

local function timeout(delay)
  check_delay(delay, 1, "timeout", true)
  local scope = new_timeout(delay and now() + delay, "timeout")
  return scope
end
aloop.timeout = timeout

function aloop.timeout_at(when)
  check_delay(when, 1, "timeout_at", true)
  local scope = new_timeout(when, "timeout_at")
  return scope
end

------------------------------------------------------------------------------
-- wait_for(aw, timeout): await with a time limit; on timeout the inner task
-- is cancelled and waited for before TimeoutError is raised.

local shield

local function wait_for(aw, delay)
  check_delay(delay, 2, "wait_for", true)
  if not (is_future(aw) or callable(aw)) then
    typeerror(aw, 1, "wait_for", "Task, Future or function")
  end
  local me = need_task("wait_for")
  if aw == me then error("a task cannot await itself", 2) end
  local fut = ensure_future(aw, "wait_for", 1)
  if delay == nil then return fut:await() end
  if delay <= 0 then
    -- As asyncio: no time at all, so cancel it and wait for that at once.
    if fut:done() then return fut:result() end
    fut:cancel()
    local waiter = shield(fut)
    local ok, err = pcall(waiter.await, waiter)
    if fut:cancelled() then error(new_error("TimeoutError"), 2) end
    if not ok then error(err, 0) end
    return fut:result()
  end
  local _scope <close> = timeout(delay)
  return fut:await()
end
aloop.wait_for = wait_for

------------------------------------------------------------------------------
-- shield(aw): a future that follows aw, whose cancellation does not reach aw.

function shield(aw)
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
aloop.shield = shield

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
  local limit = check_delay(opts.timeout, 2, "wait", true)
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
    if limit then
      handle = call_later(loop, limit, function()
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
  local limit = check_delay(opts and opts.timeout, 2, "as_completed", true)
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
  local deadline = limit and now() + limit
  return function()
    if remaining == 0 then return nil end
    while head > tail do
      waiter = Future()
      if deadline then
        local left = deadline - now()
        if left <= 0 then error(new_error("TimeoutError"), 2) end
        local ok, err = pcall(wait_for, waiter, left)
        if not ok then
          if is_timeout(err) then error(err, 2) end
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

