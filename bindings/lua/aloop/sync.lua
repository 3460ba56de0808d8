-- aloop/sync.lua -- asyncio's synchronisation primitives and TaskGroup, on
-- the C wait queue (aloop._WaitQueue): every waiter waits in FIFO order, and
-- a permit, lock, slot or notification handed to a waiter cancelled at that
-- moment passes on to the next (the wait queue sees to it).
local aloop = ...

local WaitQueue, is_cancelled, current_task = aloop._WaitQueue, aloop.is_cancelled, aloop.current_task
local setmetatable, error, type, pcall, select = setmetatable, error, type, pcall, select
local mtype = math.type

local function raise(kind, msg, level)
  error(aloop.error(kind, msg), level and level + 1 or 3)
end

local function check_int(v, fname, argn, min, level)
  level = level or 3
  if mtype(v) ~= "integer" then
    error(string.format("bad argument #%d to '%s' (integer expected, got %s)",
      argn, fname, mtype(v) and "float" or type(v)), level)
  end
  if v < min then
    error(string.format("bad argument #%d to '%s' (must be at least %d)", argn, fname, min), level)
  end
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

function Event:clear() self._flag = false end

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
    error("bad argument #1 to 'Condition' (aloop.Lock expected, got " .. type(lock) .. ")", 2)
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

local Queue = class("aloop.Queue")

local function new_queue(mt, maxsize, fname)
  maxsize = maxsize == nil and 0 or check_int(maxsize, fname, 1, 0, 4)
  return setmetatable({
    _maxsize = maxsize, _n = 0, _head = 1, _items = {},
    _getters = WaitQueue("pass"), _putters = WaitQueue("pass"),
    _unfinished = 0, _finished = aloop.Event(), _shutdown = false,
  }, mt)
end

function aloop.Queue(maxsize)
  local q = new_queue(Queue, maxsize, "Queue")
  q._finished:set()
  return q
end

-- FIFO storage: items[head .. head+n-1].
function Queue:_put(item)
  self._items[self._head + self._n] = item
  self._n = self._n + 1
end

function Queue:_get()
  local h = self._head
  local item = self._items[h]
  self._items[h] = nil
  self._n = self._n - 1
  if self._n == 0 then self._head = 1 else self._head = h + 1 end
  return item
end

function Queue:qsize() return self._n end
function Queue:maxsize() return self._maxsize end
function Queue:empty() return self._n == 0 end
function Queue:full() return self._maxsize > 0 and self._n >= self._maxsize end

local function put_nowait(self, item)
  if self._shutdown then raise("QueueShutDown", "queue is shut down") end
  local max = self._maxsize
  if max > 0 and self._n >= max then raise("QueueFull", "queue is full") end
  self:_put(item)
  self._unfinished = self._unfinished + 1
  self._finished._flag = false -- Event:clear()
  self._getters:grant(1)
end
Queue.put_nowait = put_nowait

-- Room or items are kept for the waiters already woken (pending), so a
-- newcomer never takes them first: waiting is FIFO-fair.
function Queue:put(item)
  local max = self._maxsize
  if max > 0 and self._putters:must_wait(max - self._n) then
    while true do
      if self._shutdown then raise("QueueShutDown", "queue is shut down") end
      self._putters:wait("Queue:put")
      if self._shutdown or self._n < self._maxsize then break end
    end
  end
  return put_nowait(self, item)
end

local function get_nowait(self)
  if self._n == 0 then
    if self._shutdown then raise("QueueShutDown", "queue is shut down") end
    raise("QueueEmpty", "queue is empty")
  end
  local item = self:_get()
  if self._maxsize > 0 then self._putters:grant(1) end -- else none can wait
  if self._shutdown and self._n == 0 then
    -- Shut down and drained: getters that queued behind the last claimed
    -- item must wake to see it (nothing will ever be put again).
    self._getters:grant(self._getters:waiting())
  end
  return item
end
Queue.get_nowait = get_nowait

function Queue:get()
  local n = self._n
  if n == 0 or self._getters:must_wait(n) then
    while true do
      if self._shutdown and self._n == 0 then raise("QueueShutDown", "queue is shut down") end
      self._getters:wait("Queue:get")
      if self._n > 0 or self._shutdown then break end
    end
  end
  return get_nowait(self)
end

function Queue:task_done()
  if self._unfinished <= 0 then raise("ValueError", "task_done() called too many times") end
  self._unfinished = self._unfinished - 1
  if self._unfinished == 0 then self._finished:set() end
end

function Queue:join()
  if self._unfinished > 0 then self._finished:wait() end
end

function Queue:shutdown(immediate)
  self._shutdown = true
  if immediate then
    while self._n > 0 do
      self:_get()
      if self._unfinished > 0 then self._unfinished = self._unfinished - 1 end
    end
    if self._unfinished == 0 then self._finished:set() end
  end
  self._getters:grant(self._getters:waiting())
  self._putters:grant(self._putters:waiting())
end

function Queue:is_shutdown() return self._shutdown end

function Queue:_describe()
  return string.format("maxsize=%d qsize=%d getters=%d putters=%d", self._maxsize, self._n,
    self._getters:waiting(), self._putters:waiting())
end

local function subclass(name)
  local c = class(name)
  for k, v in pairs(Queue) do
    if c[k] == nil and k ~= "__name" and k ~= "__index" and k ~= "__tostring" then c[k] = v end
  end
  return c
end

local LifoQueue = subclass("aloop.LifoQueue")

function aloop.LifoQueue(maxsize)
  local q = new_queue(LifoQueue, maxsize, "LifoQueue")
  q._finished:set()
  return q
end

function LifoQueue:_put(item)
  self._n = self._n + 1
  self._items[self._n] = item
end

function LifoQueue:_get()
  local item = self._items[self._n]
  self._items[self._n] = nil
  self._n = self._n - 1
  return item
end

-- PriorityQueue(maxsize [, opts]): smallest first. Items are compared with
-- opts.lt(a, b) if given, else by opts.key(item) if given, else: an item
-- that is a table is ordered by its first element (item[1], like Python's
-- (priority, data) tuples), anything else by itself, with `<`. Equal
-- priorities come out in the order they were put.
local PriorityQueue = subclass("aloop.PriorityQueue")

function aloop.PriorityQueue(maxsize, opts)
  local q = new_queue(PriorityQueue, maxsize, "PriorityQueue")
  q._finished:set()
  q._seq = 0
  q._heap = {}
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #2 to 'PriorityQueue' (table expected, got " .. type(opts) .. ")", 2)
    end
    if opts.lt ~= nil and type(opts.lt) ~= "function" then
      error("bad argument #2 to 'PriorityQueue' (lt must be a function)", 2)
    end
    if opts.key ~= nil and type(opts.key) ~= "function" then
      error("bad argument #2 to 'PriorityQueue' (key must be a function)", 2)
    end
    q._lt, q._key = opts.lt, opts.key
  end
  return q
end

local function default_key(item)
  if type(item) == "table" then return item[1] end
  return item
end

function PriorityQueue:_less(a, b)
  local lt = self._lt
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

function PriorityQueue:_put(item)
  local heap = self._heap
  self._seq = self._seq + 1
  local e = { item = item, seq = self._seq }
  if not self._lt then e.key = (self._key or default_key)(item) end
  self._n = self._n + 1
  local i = self._n
  heap[i] = e
  while i > 1 do
    local p = i // 2
    if not self:_less(heap[i], heap[p]) then break end
    heap[i], heap[p] = heap[p], heap[i]
    i = p
  end
end

function PriorityQueue:_get()
  local heap, n = self._heap, self._n
  local top = heap[1]
  heap[1] = heap[n]
  heap[n] = nil
  n = n - 1
  self._n = n
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and self:_less(heap[l], heap[m]) then m = l end
    if r <= n and self:_less(heap[r], heap[m]) then m = r end
    if m == i then break end
    heap[i], heap[m] = heap[m], heap[i]
    i = m
  end
  return top.item
end

aloop.QueueEmpty, aloop.QueueFull = "QueueEmpty", "QueueFull"

------------------------------------------------------------------------------
-- TaskGroup: local tg <close> = aloop.TaskGroup(); tg:create_task(fn, ...)

local TaskGroup = class("aloop.TaskGroup")

function aloop.TaskGroup()
  local parent = current_task()
  if not parent then error("aloop.TaskGroup called outside a task", 2) end
  return setmetatable({ _parent = parent, _tasks = {}, _ntasks = 0, _errors = {},
    _aborting = false, _exiting = false, _exited = false,
    _parent_cancel_requested = false, _done = nil, _seq = 0 }, TaskGroup)
end

function TaskGroup:_describe()
  return string.format("tasks=%d errors=%d%s", self._ntasks, #self._errors,
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
  if task:cancelled() then return end
  local err = task:exception()
  if err == nil then return end
  self._errors[#self._errors + 1] = err
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
  if propagate_cancel ~= nil and #self._errors == 0 then error(propagate_cancel, 0) end
  if err ~= nil and not is_cancelled(err) then
    self._errors[#self._errors + 1] = err
  end
  local errors = self._errors
  if #errors == 1 then error(errors[1], 0) end
  if #errors > 1 then
    local e = aloop.error("TaskGroupError", string.format("%d errors in a TaskGroup; first: %s",
      #errors, tostring(errors[1])))
    e.errors = errors
    error(e, 0)
  end
end

