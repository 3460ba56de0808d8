-- aloop/sync.lua -- asyncio's synchronisation primitives and TaskGroup, on
-- the C wait queue (aloop._WaitQueue): every waiter waits in FIFO order, and
-- a permit, lock, slot or notification handed to a waiter cancelled at that
-- moment passes on to the next (the wait queue sees to it).
local aloop, P = ...

local WaitQueue, is_cancelled = aloop._WaitQueue, aloop.is_cancelled
local argerror, typeerror, need_task = P.argerror, P.typeerror, P.need_task
local state_of, tostring_safe = P.state, P.tostring
local setmetatable, error, type, pcall = setmetatable, error, type, pcall
local mtype = math.type

local function raise(kind, msg, level)
  error(aloop.error(kind, msg), level and level + 1 or 3)
end

-- An integer argument of at least min; errors blame the caller of the
-- public function (level 2 from here).
local function check_int(v, fname, argn, min)
  if mtype(v) ~= "integer" then
    argerror(argn, fname, "integer expected, got " .. (mtype(v) and "float" or type(v)), 2)
  end
  if v < min then argerror(argn, fname, "must be at least " .. min, 2) end
  return v
end

local function class(name)
  local c = { __name = name }
  c.__index = c
  c.__tostring = function(self)
    return string.format("<%s %s>", name, self:_describe())
  end
  return c
end

-- Guards: acquire() returns the object itself, whose __close releases, so
-- `local _ <close> = lock:acquire()` is `async with lock:`.
local function releasing_close(self) self:release() end

------------------------------------------------------------------------------
-- Lock

local Lock = class("aloop.Lock")
Lock.__close = releasing_close

-- As asyncio's: released, the lock is unlocked at once, even while it is
-- handed to the first waiter (who holds it when it runs); a newcomer still
-- queues behind the waiters.
function aloop.Lock()
  return setmetatable({ _q = WaitQueue("keep", 1), _held = false }, Lock)
end

function Lock:acquire()
  self._q:wait("Lock:acquire")
  self._held = true
  return self
end

function Lock:release()
  if not self._held then raise("RuntimeError", "Lock is not acquired") end
  self._held = false
  self._q:grant(1)
end

function Lock:locked() return self._held end
function Lock:_describe()
  local n = self._q:waiting()
  return (self:locked() and "locked" or "unlocked") .. (n > 0 and (", waiters: " .. n) or "")
end

------------------------------------------------------------------------------
-- Semaphore, BoundedSemaphore

local Semaphore = class("aloop.Semaphore")
Semaphore.__close = releasing_close

function aloop.Semaphore(value)
  value = value == nil and 1 or check_int(value, "Semaphore", 1, 0)
  return setmetatable({ _q = WaitQueue("keep", value) }, Semaphore)
end

function Semaphore:acquire()
  self._q:wait("Semaphore:acquire")
  return self
end

function Semaphore:release()
  self._q:grant(1)
end

function Semaphore:locked()
  return self._q:permits() == 0 or self._q:waiting() > 0
end

function Semaphore:value() return self._q:permits() end
function Semaphore:_describe()
  return string.format("value: %d, waiters: %d", self._q:permits(), self._q:waiting())
end

local BoundedSemaphore = class("aloop.BoundedSemaphore")
BoundedSemaphore.__close = releasing_close
BoundedSemaphore.acquire = Semaphore.acquire
BoundedSemaphore.locked = Semaphore.locked
BoundedSemaphore.value = Semaphore.value
BoundedSemaphore._describe = Semaphore._describe

function aloop.BoundedSemaphore(value)
  value = value == nil and 1 or check_int(value, "BoundedSemaphore", 1, 0)
  return setmetatable({ _q = WaitQueue("keep", value), _bound = value }, BoundedSemaphore)
end

function BoundedSemaphore:release()
  if self._q:permits() >= self._bound then
    raise("ValueError", "BoundedSemaphore released too many times")
  end
  self._q:grant(1)
end

------------------------------------------------------------------------------
-- Event

local Event = class("aloop.Event")

function aloop.Event()
  return setmetatable({ _q = WaitQueue("drop"), _flag = false }, Event)
end

function Event:is_set() return self._flag end

function Event:set()
  if not self._flag then
    self._flag = true
    self._q:grant(self._q:waiting())
  end
end

local function clear_event(self) self._flag = false end
Event.clear = clear_event

function Event:wait()
  if self._flag then return true end
  self._q:wait("Event:wait")
  return true
end

function Event:_describe()
  return (self._flag and "set" or "unset") .. ", waiters: " .. self._q:waiting()
end

------------------------------------------------------------------------------
-- Condition

local Condition = class("aloop.Condition")
Condition.__close = releasing_close

function aloop.Condition(lock)
  if lock == nil then
    lock = aloop.Lock()
  elseif getmetatable(lock) ~= Lock then
    typeerror(lock, 1, "Condition", "aloop.Lock")
  end
  return setmetatable({ _lock = lock, _q = WaitQueue("pass") }, Condition)
end

function Condition:acquire()
  self._lock:acquire()
  return self
end

function Condition:release() self._lock:release() end
function Condition:locked() return self._lock:locked() end

-- wait(): release the lock, wait to be notified, take the lock back (also
-- when cancelled: the caller's `<close>` releases it). A notification that
-- reaches a waiter cancelled at that moment goes to the next one.
function Condition:wait()
  if not self._lock:locked() then raise("RuntimeError", "cannot wait on un-acquired lock") end
  self._lock:release()
  local ok, err = pcall(self._q.wait, self._q, "Condition:wait")
  while true do
    local got, err2 = pcall(self._lock.acquire, self._lock)
    if got then break end
    if not is_cancelled(err2) then error(err2, 0) end
    ok, err = false, err2
  end
  if not ok then error(err, 0) end
  return true
end

function Condition:wait_for(predicate)
  local result = predicate()
  while not result do
    self:wait()
    result = predicate()
  end
  return result
end

function Condition:notify(n)
  n = n == nil and 1 or check_int(n, "notify", 1, 0)
  if not self._lock:locked() then raise("RuntimeError", "cannot notify on un-acquired lock") end
  self._q:grant(n)
end

function Condition:notify_all()
  self:notify(self._q:waiting())
end

function Condition:_describe()
  return (self:locked() and "locked" or "unlocked") .. ", waiters: " .. self._q:waiting()
end

------------------------------------------------------------------------------
-- Barrier (asyncio 3.11)

local Barrier = class("aloop.Barrier")

function aloop.Barrier(parties)
  check_int(parties, "Barrier", 1, 1)
  return setmetatable({ _cond = aloop.Condition(), _parties = parties,
    _state = "filling", _count = 0 }, Barrier)
end

local function broken_error(msg) return aloop.error("BrokenBarrierError", msg) end

function Barrier:wait()
  local cond = self._cond
  local _ <close> = cond:acquire()
  cond:wait_for(function() return self._state ~= "draining" and self._state ~= "resetting" end)
  if self._state == "broken" then error(broken_error("Barrier aborted"), 2) end
  local index = self._count
  self._count = index + 1
  local ok, err = pcall(function()
    if index + 1 == self._parties then
      self._state = "draining"
      cond:notify_all()
    else
      cond:wait_for(function() return self._state ~= "filling" end)
      if self._state == "broken" or self._state == "resetting" then
        error(broken_error("Abort or reset of barrier"), 0)
      end
    end
  end)
  self._count = self._count - 1
  if self._count == 0 then
    if self._state == "resetting" or self._state == "draining" then self._state = "filling" end
    cond:notify_all()
  end
  if not ok then error(err, 0) end
  return index
end

function Barrier:reset()
  local _ <close> = self._cond:acquire()
  if self._count > 0 then
    self._state = "resetting"
  else
    self._state = "filling"
  end
  self._cond:notify_all()
end

function Barrier:abort()
  local _ <close> = self._cond:acquire()
  self._state = "broken"
  self._cond:notify_all()
end

function Barrier:parties() return self._parties end
function Barrier:n_waiting() return self._state == "filling" and self._count or 0 end
function Barrier:broken() return self._state == "broken" end
function Barrier:_describe()
  return string.format("%s, waiters: %d/%d", self._state, self:n_waiting(), self._parties)
end

------------------------------------------------------------------------------
-- Queue, LifoQueue, PriorityQueue (with shutdown, as in Python 3.13)
--
-- A queue's state lives in the upvalues of its methods (one set of closures
-- per queue): an upvalue is read in one VM step where a field is a hash
-- lookup, and put/get are the hottest paths of producer/consumer code. The
-- three kinds differ only in their storage (store, fetch).

local Queue = class("aloop.Queue")
local LifoQueue = class("aloop.LifoQueue")
local PriorityQueue = class("aloop.PriorityQueue")

local function make_queue(cls, name, maxsize, store, fetch)
  local self = setmetatable({}, cls)
  local n, unfinished, shutdown = 0, 0, false
  local getters, putters = WaitQueue("pass"), WaitQueue("pass")
  local finished = aloop.Event()
  finished:set()
  local put_where, get_where = name .. ":put", name .. ":get"

  function self.qsize() return n end
  function self.maxsize() return maxsize end
  function self.empty() return n == 0 end
  function self.full() return maxsize > 0 and n >= maxsize end
  function self.is_shutdown() return shutdown end

  local function put_nowait(_, item)
    if shutdown then raise("QueueShutDown", "queue is shut down") end
    if maxsize > 0 and n >= maxsize then raise("QueueFull", "queue is full") end
    store(item, n)
    n = n + 1
    if unfinished == 0 then clear_event(finished) end
    unfinished = unfinished + 1
    getters:grant(1)
  end
  self.put_nowait = put_nowait

  -- Room or items are kept for the waiters already woken (pending), so a
  -- newcomer never takes them first: waiting is FIFO-fair.
  function self.put(_, item)
    if maxsize > 0 and putters:must_wait(maxsize - n) then
      while true do
        if shutdown then raise("QueueShutDown", "queue is shut down") end
        putters:wait(put_where)
        if shutdown or n < maxsize then break end
      end
    end
    return put_nowait(self, item)
  end

  local function get_nowait()
    if n == 0 then
      if shutdown then raise("QueueShutDown", "queue is shut down") end
      raise("QueueEmpty", "queue is empty")
    end
    local item = fetch(n)
    n = n - 1
    if maxsize > 0 then putters:grant(1) end -- else none can wait
    if shutdown and n == 0 then
      -- Shut down and drained: getters that queued behind the last claimed
      -- item must wake to see it (nothing will ever be put again).
      getters:grant(getters:waiting())
    end
    return item
  end
  self.get_nowait = get_nowait

  function self.get()
    if n == 0 or getters:must_wait(n) then
      while true do
        if shutdown and n == 0 then raise("QueueShutDown", "queue is shut down") end
        getters:wait(get_where)
        if n > 0 or shutdown then break end
      end
    end
    return get_nowait()
  end

  function self.task_done()
    if unfinished <= 0 then raise("ValueError", "task_done() called too many times") end
    unfinished = unfinished - 1
    if unfinished == 0 then finished:set() end
  end

  function self.join()
    if unfinished > 0 then finished:wait() end
  end

  function self.shutdown(_, immediate)
    shutdown = true
    if immediate then
      while n > 0 do
        fetch(n)
        n = n - 1
        if unfinished > 0 then unfinished = unfinished - 1 end
      end
      if unfinished == 0 then finished:set() end
    end
    getters:grant(getters:waiting())
    putters:grant(putters:waiting())
  end

  function self._describe()
    return string.format("maxsize=%d qsize=%d getters=%d putters=%d", maxsize, n,
      getters:waiting(), putters:waiting())
  end
  return self
end

-- Queue(maxsize): first in, first out; items[head .. head+n-1].
function aloop.Queue(maxsize)
  maxsize = maxsize == nil and 0 or check_int(maxsize, "Queue", 1, 0)
  local items, head = {}, 1
  return make_queue(Queue, "Queue", maxsize,
    function(item, n) items[head + n] = item end,
    function(n)
      local item = items[head]
      items[head] = nil
      if n == 1 then head = 1 else head = head + 1 end
      return item
    end)
end

-- LifoQueue(maxsize): last in, first out.
function aloop.LifoQueue(maxsize)
  maxsize = maxsize == nil and 0 or check_int(maxsize, "LifoQueue", 1, 0)
  local items = {}
  return make_queue(LifoQueue, "LifoQueue", maxsize,
    function(item, n) items[n + 1] = item end,
    function(n)
      local item = items[n]
      items[n] = nil
      return item
    end)
end

-- PriorityQueue(maxsize [, opts]): smallest first. Items are compared with
-- opts.lt(a, b) if given, else by opts.key(item) if given, else: an item
-- that is a table is ordered by its first element (item[1], like Python's
-- (priority, data) tuples), anything else by itself, with `<`. Equal
-- priorities come out in the order they were put.
local function default_key(item)
  if type(item) == "table" then return item[1] end
  return item
end

function aloop.PriorityQueue(maxsize, opts)
  maxsize = maxsize == nil and 0 or check_int(maxsize, "PriorityQueue", 1, 0)
  local lt, key
  if opts ~= nil then
    if type(opts) ~= "table" then
      typeerror(opts, 2, "PriorityQueue", "table")
    end
    if opts.lt ~= nil and type(opts.lt) ~= "function" then
      argerror(2, "PriorityQueue", "lt must be a function")
    end
    if opts.key ~= nil and type(opts.key) ~= "function" then
      argerror(2, "PriorityQueue", "key must be a function")
    end
    lt, key = opts.lt, opts.key
  end
  key = key or default_key
  local heap, seq = {}, 0
  local function less(a, b)
    if lt then
      if lt(a.item, b.item) then return true end
      if lt(b.item, a.item) then return false end
    else
      local ka, kb = a.key, b.key
      if ka < kb then return true end
      if kb < ka then return false end
    end
    return a.seq < b.seq
  end
  return make_queue(PriorityQueue, "PriorityQueue", maxsize,
    function(item, n)
      seq = seq + 1
      local e = { item = item, seq = seq }
      if not lt then e.key = key(item) end
      local i = n + 1
      heap[i] = e
      while i > 1 do
        local p = i // 2
        if not less(heap[i], heap[p]) then break end
        heap[i], heap[p] = heap[p], heap[i]
        i = p
      end
    end,
    function(n)
      local top = heap[1]
      heap[1] = heap[n]
      heap[n] = nil
      n = n - 1
      local i = 1
      while true do
        local l, r, m = 2 * i, 2 * i + 1, i
        if l <= n and less(heap[l], heap[m]) then m = l end
        if r <= n and less(heap[r], heap[m]) then m = r end
        if m == i then break end
        heap[i], heap[m] = heap[m], heap[i]
        i = m
      end
      return top.item
    end)
end

aloop.QueueEmpty, aloop.QueueFull = "QueueEmpty", "QueueFull"

------------------------------------------------------------------------------
-- TaskGroup: local tg <close> = aloop.TaskGroup(); tg:create_task(fn, ...)

local TaskGroup = class("aloop.TaskGroup")

function aloop.TaskGroup()
  local parent = need_task("TaskGroup")
  return setmetatable({ _parent = parent, _tasks = {}, _ntasks = 0, _errors = {}, _nerrors = 0,
    _aborting = false, _exiting = false, _exited = false,
    _parent_cancel_requested = false, _done = nil, _seq = 0 }, TaskGroup)
end

function TaskGroup:_describe()
  return string.format("tasks=%d errors=%d%s", self._ntasks, self._nerrors,
    self._aborting and " cancelling" or "")
end

-- Cancel the children still running, in the order they were created.
function TaskGroup:_abort()
  self._aborting = true
  local list = {}
  for t, seq in pairs(self._tasks) do list[#list + 1] = { t, seq } end
  table.sort(list, function(a, b) return a[2] < b[2] end)
  for _, e in ipairs(list) do
    if not e[1]:done() then e[1]:cancel() end
  end
end

function TaskGroup:_on_task_done(task)
  self._tasks[task] = nil
  self._ntasks = self._ntasks - 1
  if self._done and self._ntasks == 0 and not self._done:done() then
    self._done:set_result(true)
  end
  -- (a task may fail with nil: its state says so, not its error value)
  if state_of(task) ~= "failed" then return end
  self._nerrors = self._nerrors + 1
  self._errors[self._nerrors] = task:exception()
  if not self._aborting then self:_abort() end
  -- The body of the block is cancelled too, unless it already left.
  if not self._parent_cancel_requested and not self._exiting and not self._parent:done() then
    self._parent_cancel_requested = true
    self._parent:cancel()
  end
end

function TaskGroup:create_task(fn, ...)
  if self._exited then raise("RuntimeError", "TaskGroup is finished", 2) end
  if self._aborting then raise("RuntimeError", "TaskGroup is shutting down", 2) end
  local task = aloop.create_task(fn, ...)
  self._seq = self._seq + 1
  self._tasks[task] = self._seq
  self._ntasks = self._ntasks + 1
  task:add_done_callback(function(t) self:_on_task_done(t) end)
  return task
end
TaskGroup.spawn = TaskGroup.create_task

function TaskGroup:errors() return self._errors end

function TaskGroup:__close(err)
  self._exiting = true
  local propagate_cancel = (err ~= nil and is_cancelled(err)) and err or nil
  if self._parent_cancel_requested then
    if self._parent:uncancel() == 0 then propagate_cancel = nil end
  end
  if err ~= nil and not self._aborting then self:_abort() end
  while self._ntasks > 0 do
    self._done = aloop.Future()
    local ok, e = pcall(self._done.await, self._done)
    if not ok then
      if not is_cancelled(e) then error(e, 0) end
      if not self._aborting then
        propagate_cancel = e
        self:_abort()
      end
    end
    self._done = nil
  end
  self._exited = true
  if propagate_cancel ~= nil and self._nerrors == 0 then error(propagate_cancel, 0) end
  if err ~= nil and not is_cancelled(err) then
    self._nerrors = self._nerrors + 1
    self._errors[self._nerrors] = err
  end
  local errors, n = self._errors, self._nerrors
  errors.n = n
  if n == 1 then error(errors[1], 0) end
  if n > 1 then
    local e = aloop.error("TaskGroupError", string.format("%d errors in a TaskGroup; first: %s",
      n, tostring_safe(errors[1])))
    e.errors = errors
    error(e, 0)
  end
end

