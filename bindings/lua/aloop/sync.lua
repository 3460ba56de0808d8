-- aloop/sync.lua -- asyncio's synchronisation primitives and TaskGroup, on
-- the C wait queue (aloop._WaitQueue): every waiter waits in FIFO order, and
-- a permit, lock, slot or notification handed to a waiter cancelled at that
-- moment passes on to the next (the wait queue sees to it).
local aloop, P = ...

-- Everything is taken at load time: a script that replaces or removes a
-- global (pairs, string, ...) or a field of the module does not change aloop.
local WaitQueue, is_cancelled, new_error = aloop._WaitQueue, aloop.is_cancelled, aloop.error
local create_task, new_future = aloop.create_task, aloop.Future
local argerror, typeerror, need_task = P.argerror, P.typeerror, P.need_task
local state_of, tostring_safe, callable = P.state, P.tostring, P.callable
local setmetatable, getmetatable, rawget, error, type, pcall, pairs, ipairs =
  setmetatable, getmetatable, rawget, error, type, pcall, pairs, ipairs
local mtype, sformat, sgsub, tsort = math.type, string.format, string.gsub, table.sort
local isyieldable = coroutine.isyieldable

-- The wait queue is private to the Lua parts (P.WaitQueue): its wait(where)
-- takes the name of the method that waits, which only aloop may give.
P.WaitQueue = WaitQueue
aloop._WaitQueue = nil

-- A string error of aloop's own, without its place in a Lua part.
local function unplaced(e)
  if type(e) ~= "string" then return e end
  return (sgsub(e, "^aloop/[%w_]+%.lua:%d+: ", ""))
end

local function raise(kind, msg, level)
  error(new_error(kind, msg), level and level + 1 or 3)
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

-- What a value is, for "X expected, got Y": an object's class name.
local function got(v)
  if v ~= v then return "nan" end
  local mt = getmetatable(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  if type(name) == "string" then return name end
  return type(v)
end

-- A method called without its object (`lock.acquire()`), or on a wrong one:
-- blames the method's caller (level 2 from here, or more).
local function bad_self(v, fname, cname, level)
  argerror(1, fname, "aloop " .. cname .. " expected, got " .. got(v), level or 2)
end

-- The objects' state is private: states[obj] is the state table of each
-- object of one class (weak keys), so one lookup both checks `self` and
-- finds the state. Nothing internal is reachable from the object.
local function registry() return setmetatable({}, { __mode = "k" }) end

local function class(name, states, describe)
  local cname = name:match("^aloop%.(.*)$")
  local c = { __name = name }
  c.__index = c
  c.__tostring = function(self)
    local st = states[self]
    if st == nil then bad_self(self, "__tostring", cname) end
    return sformat("<%s %s>", name, describe(st))
  end
  return c, cname
end

------------------------------------------------------------------------------
-- Lock

-- As asyncio's: released, the lock is unlocked at once, even while it is
-- handed to the first waiter (who holds it when it runs); a newcomer still
-- queues behind the waiters.
local LOCKS = registry()
local function lock_release(st, level)
  if not st.held then raise("RuntimeError", "Lock is not acquired", level + 1) end
  st.held = false
  st.q:grant(1)
end

local Lock = class("aloop.Lock", LOCKS, function(st)
  local n = st.q:waiting()
  return (st.held and "locked" or "unlocked") .. (n > 0 and (", waiters: " .. n) or "")
end)

local function new_lock()
  local self, st = setmetatable({}, Lock), { q = WaitQueue("keep", 1), held = false }
  LOCKS[self] = st
  return self, st
end
aloop.Lock = function() return (new_lock()) end

-- Guards: acquire() returns the object itself, whose __close releases, so
-- `local _ <close> = lock:acquire()` is `async with lock:`.
function Lock:acquire()
  local st = LOCKS[self]
  if st == nil then bad_self(self, "acquire", "Lock") end
  -- (where no task can wait, a free lock is taken all the same)
  local q = st.q
  if isyieldable() then
    q:wait("Lock:acquire")
  elseif not q:try() then
    need_task("Lock:acquire")
  end
  st.held = true
  return self
end

function Lock:release()
  local st = LOCKS[self]
  if st == nil then bad_self(self, "release", "Lock") end
  lock_release(st, 2)
end

function Lock:__close()
  local st = LOCKS[self]
  if st == nil then bad_self(self, "__close", "Lock") end
  lock_release(st, 2)
end

function Lock:locked()
  local st = LOCKS[self]
  if st == nil then bad_self(self, "locked", "Lock") end
  return st.held
end

------------------------------------------------------------------------------
-- Semaphore, BoundedSemaphore: one set of methods each (a method of one
-- does not take the other).

local function semaphore_class(name, bounded)
  local states = registry()
  local cls, cname = class(name, states, function(st)
    return sformat("value: %d, waiters: %d", st.q:permits(), st.q:waiting())
  end)
  local where = cname .. ":acquire"
  local function release(st, level)
    if bounded and st.q:permits() >= st.bound then
      raise("ValueError", "BoundedSemaphore released too many times", level + 1)
    end
    st.q:grant(1)
  end
  function cls:acquire()
    local st = states[self]
    if st == nil then bad_self(self, "acquire", cname) end
    local q = st.q
    if isyieldable() then
      q:wait(where)
    elseif not q:try() then
      need_task(where)
    end
    return self
  end
  function cls:release()
    local st = states[self]
    if st == nil then bad_self(self, "release", cname) end
    if bounded then release(st, 2) else st.q:grant(1) end
  end
  function cls:__close()
    local st = states[self]
    if st == nil then bad_self(self, "__close", cname) end
    if bounded then release(st, 2) else st.q:grant(1) end
  end
  function cls:locked()
    local st = states[self]
    if st == nil then bad_self(self, "locked", cname) end
    return st.q:permits() == 0 or st.q:waiting() > 0
  end
  function cls:value()
    local st = states[self]
    if st == nil then bad_self(self, "value", cname) end
    return st.q:permits()
  end
  aloop[cname] = function(value)
    value = value == nil and 1 or check_int(value, cname, 1, 0)
    local self = setmetatable({}, cls)
    states[self] = { q = WaitQueue("keep", value), bound = value }
    return self
  end
end
semaphore_class("aloop.Semaphore", false)
semaphore_class("aloop.BoundedSemaphore", true)

------------------------------------------------------------------------------
-- Event

local EVENTS = registry()
local Event = class("aloop.Event", EVENTS, function(st)
  return (st.flag and "set" or "unset") .. ", waiters: " .. st.q:waiting()
end)

-- (also the queues' `finished` flag, as a bare state)
local function new_event_state() return { q = WaitQueue("drop"), flag = false } end
local function event_set(st)
  if not st.flag then
    st.flag = true
    st.q:grant(st.q:waiting())
  end
end

function aloop.Event()
  local self = setmetatable({}, Event)
  EVENTS[self] = new_event_state()
  return self
end

function Event:is_set()
  local st = EVENTS[self]
  if st == nil then bad_self(self, "is_set", "Event") end
  return st.flag
end

function Event:set()
  local st = EVENTS[self]
  if st == nil then bad_self(self, "set", "Event") end
  event_set(st)
end

function Event:clear()
  local st = EVENTS[self]
  if st == nil then bad_self(self, "clear", "Event") end
  st.flag = false
end

function Event:wait()
  local st = EVENTS[self]
  if st == nil then bad_self(self, "wait", "Event") end
  if st.flag then return true end
  if not isyieldable() then need_task("Event:wait") end
  st.q:wait("Event:wait")
  return true
end

------------------------------------------------------------------------------
-- Condition

local CONDS = registry()
local Condition = class("aloop.Condition", CONDS, function(st)
  return (st.lst.held and "locked" or "unlocked") .. ", waiters: " .. st.q:waiting()
end)

local function new_condition(lock)
  local lst
  if lock == nil then
    lock, lst = new_lock()
  else
    lst = LOCKS[lock]
    if lst == nil then typeerror(lock, 1, "Condition", "aloop.Lock", 2) end
  end
  local self = setmetatable({}, Condition)
  local st = { lock = lock, lst = lst, q = WaitQueue("pass") }
  CONDS[self] = st
  return self, st
end
aloop.Condition = function(lock) return (new_condition(lock)) end

-- wait(): release the lock, wait to be notified, take the lock back (also
-- when cancelled: the caller's `<close>` releases it). A notification that
-- reaches a waiter cancelled at that moment goes to the next one. `where`
-- names the public method; the caller checked it runs in a task.
local function lock_take(lst, where)
  lst.q:wait(where)
  lst.held = true
end

local function cond_wait(st, where, level)
  local lst = st.lst
  if not lst.held then raise("RuntimeError", "cannot wait on un-acquired lock", level + 1) end
  lock_release(lst, level + 1)
  local ok, err = pcall(st.q.wait, st.q, where)
  while true do
    local got_it, err2 = pcall(lock_take, lst, where)
    if got_it then break end
    if not is_cancelled(err2) then error(err2, 0) end
    ok, err = false, err2
  end
  if not ok then error(err, 0) end
  return true
end

local function cond_wait_for(st, predicate, where, level)
  local result = predicate()
  while not result do
    cond_wait(st, where, level + 1)
    result = predicate()
  end
  return result
end

local function cond_notify(st, n, level)
  if not st.lst.held then raise("RuntimeError", "cannot notify on un-acquired lock", level + 1) end
  st.q:grant(n)
end

function Condition:acquire()
  local st = CONDS[self]
  if st == nil then bad_self(self, "acquire", "Condition") end
  local q = st.lst.q
  if isyieldable() then
    q:wait("Condition:acquire")
  elseif not q:try() then
    need_task("Condition:acquire")
  end
  st.lst.held = true
  return self
end

function Condition:release()
  local st = CONDS[self]
  if st == nil then bad_self(self, "release", "Condition") end
  lock_release(st.lst, 2)
end

function Condition:__close()
  local st = CONDS[self]
  if st == nil then bad_self(self, "__close", "Condition") end
  lock_release(st.lst, 2)
end

function Condition:locked()
  local st = CONDS[self]
  if st == nil then bad_self(self, "locked", "Condition") end
  return st.lst.held
end

function Condition:wait()
  local st = CONDS[self]
  if st == nil then bad_self(self, "wait", "Condition") end
  need_task("Condition:wait")
  return cond_wait(st, "Condition:wait", 2)
end

function Condition:wait_for(predicate)
  local st = CONDS[self]
  if st == nil then bad_self(self, "wait_for", "Condition") end
  if not callable(predicate) then typeerror(predicate, 1, "wait_for", "function") end
  need_task("Condition:wait_for")
  return cond_wait_for(st, predicate, "Condition:wait_for", 2)
end

function Condition:notify(n)
  local st = CONDS[self]
  if st == nil then bad_self(self, "notify", "Condition") end
  n = n == nil and 1 or check_int(n, "notify", 1, 0)
  cond_notify(st, n, 2)
end

function Condition:notify_all()
  local st = CONDS[self]
  if st == nil then bad_self(self, "notify_all", "Condition") end
  cond_notify(st, st.q:waiting(), 2)
end

------------------------------------------------------------------------------
-- Barrier (asyncio 3.11)

local BARRIERS = registry()
local function n_waiting(st) return st.state == "filling" and st.count or 0 end
local Barrier = class("aloop.Barrier", BARRIERS, function(st)
  return sformat("%s, waiters: %d/%d", st.state, n_waiting(st), st.parties)
end)

function aloop.Barrier(parties)
  check_int(parties, "Barrier", 1, 1)
  local self = setmetatable({}, Barrier)
  local _, cst = new_condition()
  BARRIERS[self] = { cst = cst, parties = parties, state = "filling", count = 0 }
  return self
end

local function broken_error(msg) return new_error("BrokenBarrierError", msg) end

-- The barrier's internal lock, taken and released around each method.
-- Outside a task it works while no one holds it (level: from here to the
-- caller of the public method).
local function barrier_lock(st, where, level)
  local lst = st.cst.lst
  if not lst.q:try() then
    need_task(where, level)
    lst.q:wait(where)
  end
  lst.held = true
  return lst
end
local barrier_unlock = { __close = function(t) lock_release(t.lst, 1) end }

function Barrier:wait()
  local st = BARRIERS[self]
  if st == nil then bad_self(self, "wait", "Barrier") end
  need_task("Barrier:wait")
  local where, cst = "Barrier:wait", st.cst
  local _ <close> = setmetatable({ lst = barrier_lock(st, where, 2) }, barrier_unlock)
  cond_wait_for(cst, function() return st.state ~= "draining" and st.state ~= "resetting" end, where, 2)
  if st.state == "broken" then error(broken_error("Barrier aborted"), 2) end
  local index = st.count
  st.count = index + 1
  local ok, err = pcall(function()
    if index + 1 == st.parties then
      st.state = "draining"
      cond_notify(cst, cst.q:waiting(), 1)
    else
      cond_wait_for(cst, function() return st.state ~= "filling" end, where, 1)
      if st.state == "broken" or st.state == "resetting" then
        error(broken_error("Abort or reset of barrier"), 0)
      end
    end
  end)
  st.count = st.count - 1
  if st.count == 0 then
    if st.state == "resetting" or st.state == "draining" then st.state = "filling" end
    cond_notify(cst, cst.q:waiting(), 1)
  end
  if not ok then error(err, 0) end
  return index
end

function Barrier:reset()
  local st = BARRIERS[self]
  if st == nil then bad_self(self, "reset", "Barrier") end
  local _ <close> = setmetatable({ lst = barrier_lock(st, "Barrier:reset", 2) }, barrier_unlock)
  st.state = st.count > 0 and "resetting" or "filling"
  cond_notify(st.cst, st.cst.q:waiting(), 1)
end

function Barrier:abort()
  local st = BARRIERS[self]
  if st == nil then bad_self(self, "abort", "Barrier") end
  local _ <close> = setmetatable({ lst = barrier_lock(st, "Barrier:abort", 2) }, barrier_unlock)
  st.state = "broken"
  cond_notify(st.cst, st.cst.q:waiting(), 1)
end

function Barrier:parties()
  local st = BARRIERS[self]
  if st == nil then bad_self(self, "parties", "Barrier") end
  return st.parties
end

function Barrier:n_waiting()
  local st = BARRIERS[self]
  if st == nil then bad_self(self, "n_waiting", "Barrier") end
  return n_waiting(st)
end

function Barrier:broken()
  local st = BARRIERS[self]
  if st == nil then bad_self(self, "broken", "Barrier") end
  return st.state == "broken"
end

------------------------------------------------------------------------------
-- Queue, LifoQueue, PriorityQueue (with shutdown, as in Python 3.13)
--
-- A queue's state lives in the upvalues of its methods (one set of closures
-- per queue): an upvalue is read in one VM step where a field is a hash
-- lookup, and put/get are the hottest paths of producer/consumer code. Each
-- method checks its `self` against the queue it belongs to (an upvalue
-- too); the same method given another queue of its class works on that one
-- (as `Queue.put_nowait(q, x)` in Python). The three kinds differ only in
-- their storage: store(item, fname) adds an item, fetch() takes the next.
--
-- A finaliser may use the queue in the middle of any call that can run the
-- collector: the count `n` is changed before or after such calls, never
-- across one, and the storage keeps its own indexes.

local QUEUES = registry() -- queue -> its class

local function make_queue(cls, cname, maxsize, store, fetch, clear)
  local self = setmetatable({}, cls)
  QUEUES[self] = cls
  local n, unfinished, shutdown = 0, 0, false
  local getters, putters = WaitQueue("pass"), WaitQueue("pass")
  local finished = new_event_state()
  event_set(finished)
  local put_where, get_where, join_where = cname .. ":put", cname .. ":get", cname .. ":join"

  -- `self` is not this queue: the same method of the queue given, if it is
  -- one of this class; else a bad argument (level 2: the method's caller).
  local function other(s, fname, ...)
    if QUEUES[s] ~= cls then bad_self(s, fname, cname) end
    return s[fname](s, ...)
  end

  function self.qsize(s)
    if s ~= self then return other(s, "qsize") end
    return n
  end
  function self.maxsize(s)
    if s ~= self then return other(s, "maxsize") end
    return maxsize
  end
  function self.empty(s)
    if s ~= self then return other(s, "empty") end
    return n == 0
  end
  function self.full(s)
    if s ~= self then return other(s, "full") end
    return maxsize > 0 and n >= maxsize
  end
  function self.is_shutdown(s)
    if s ~= self then return other(s, "is_shutdown") end
    return shutdown
  end

  -- put and get have the whole path inline (they are the hot ones); errors
  -- blame the caller of the public method.
  function self.put_nowait(s, item)
    if s ~= self then return other(s, "put_nowait", item) end
    if shutdown then raise("QueueShutDown", "queue is shut down") end
    if maxsize > 0 and n >= maxsize then raise("QueueFull", "queue is full") end
    store(item, "put_nowait")
    n = n + 1
    if unfinished == 0 then finished.flag = false end
    unfinished = unfinished + 1
    getters:grant(1)
  end

  -- Room or items are kept for the waiters already woken (pending), so a
  -- newcomer never takes them first: waiting is FIFO-fair.
  function self.put(s, item)
    if s ~= self then return other(s, "put", item) end
    if maxsize > 0 and putters:must_wait(maxsize - n) then
      if not isyieldable() then need_task(put_where) end
      while true do
        if shutdown then raise("QueueShutDown", "queue is shut down") end
        putters:wait(put_where)
        if shutdown or n < maxsize then break end
      end
    end
    if shutdown then raise("QueueShutDown", "queue is shut down") end
    if maxsize > 0 and n >= maxsize then raise("QueueFull", "queue is full") end
    store(item, "put")
    n = n + 1
    if unfinished == 0 then finished.flag = false end
    unfinished = unfinished + 1
    getters:grant(1)
  end

  -- fetch() failed (a PriorityQueue whose items do not compare): the item
  -- claimed goes back.
  local function fetch_failed(err, fname)
    n = n + 1
    if err.text then
      error(sformat("aloop.%s:%s: the queued items do not compare (%s)", cname, fname, err.text), 3)
    end
    error(err.value, 0)
  end

  local function empty_error()
    if shutdown then raise("QueueShutDown", "queue is shut down", 3) end
    raise("QueueEmpty", "queue is empty", 3)
  end

  function self.get_nowait(s)
    if s ~= self then return other(s, "get_nowait") end
    if n == 0 then empty_error() end
    n = n - 1 -- claimed before fetch() can run a finaliser
    local item, err = fetch()
    if err ~= nil then fetch_failed(err, "get_nowait") end
    if maxsize > 0 then putters:grant(1) end -- else none can wait
    if shutdown and n == 0 then
      -- Shut down and drained: getters that queued behind the last claimed
      -- item must wake to see it (nothing will ever be put again).
      getters:grant(getters:waiting())
    end
    return item
  end

  function self.get(s)
    if s ~= self then return other(s, "get") end
    if n == 0 or getters:must_wait(n) then
      if not isyieldable() then need_task(get_where) end
      while true do
        if shutdown and n == 0 then raise("QueueShutDown", "queue is shut down") end
        getters:wait(get_where)
        if n > 0 or shutdown then break end
      end
    end
    if n == 0 then empty_error() end
    n = n - 1
    local item, err = fetch()
    if err ~= nil then fetch_failed(err, "get") end
    if maxsize > 0 then putters:grant(1) end
    if shutdown and n == 0 then getters:grant(getters:waiting()) end
    return item
  end

  function self.task_done(s)
    if s ~= self then return other(s, "task_done") end
    if unfinished <= 0 then raise("ValueError", "task_done() called too many times") end
    unfinished = unfinished - 1
    if unfinished == 0 then event_set(finished) end
  end

  function self.join(s)
    if s ~= self then return other(s, "join") end
    if unfinished > 0 and not finished.flag then
      if not isyieldable() then need_task(join_where) end
      finished.q:wait(join_where)
    end
  end

  function self.shutdown(s, immediate)
    if s ~= self then return other(s, "shutdown", immediate) end
    shutdown = true
    if immediate then
      local k = n
      n = 0
      clear()
      unfinished = unfinished > k and unfinished - k or 0
      if unfinished == 0 then event_set(finished) end
    end
    getters:grant(getters:waiting())
    putters:grant(putters:waiting())
  end

  return self, function()
    return sformat("maxsize=%d qsize=%d getters=%d putters=%d", maxsize, n,
      getters:waiting(), putters:waiting())
  end
end

local DESCRIBE = registry() -- queue -> its describe()
local function queue_class(name)
  return (class(name, DESCRIBE, function(describe) return describe() end))
end
local Queue = queue_class("aloop.Queue")
local LifoQueue = queue_class("aloop.LifoQueue")
local PriorityQueue = queue_class("aloop.PriorityQueue")

local function new_queue(...)
  local self, describe = make_queue(...)
  DESCRIBE[self] = describe
  return self
end

-- Queue(maxsize): first in, first out; items[head .. tail].
function aloop.Queue(maxsize)
  maxsize = maxsize == nil and 0 or check_int(maxsize, "Queue", 1, 0)
  local items, head, tail = {}, 1, 0
  return new_queue(Queue, "Queue", maxsize,
    function(item)
      tail = tail + 1
      items[tail] = item
    end,
    function()
      local item = items[head]
      items[head] = nil
      if head == tail then head, tail = 1, 0 else head = head + 1 end
      return item
    end,
    function() items, head, tail = {}, 1, 0 end)
end

-- LifoQueue(maxsize): last in, first out.
function aloop.LifoQueue(maxsize)
  maxsize = maxsize == nil and 0 or check_int(maxsize, "LifoQueue", 1, 0)
  local items, top = {}, 0
  return new_queue(LifoQueue, "LifoQueue", maxsize,
    function(item)
      top = top + 1
      items[top] = item
    end,
    function()
      local item = items[top]
      items[top] = nil
      top = top - 1
      return item
    end,
    function() items, top = {}, 0 end)
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

-- The text of an error raised by `<` in here, without its place.
local function compare_text(e)
  if type(e) ~= "string" then return nil end
  local text = sgsub(e, "^aloop/sync%.lua:%d+: ", "")
  if text == e or not text:find("^attempt to compare") then return nil end
  return text
end

function aloop.PriorityQueue(maxsize, opts)
  maxsize = maxsize == nil and 0 or check_int(maxsize, "PriorityQueue", 1, 0)
  local lt, key
  if opts ~= nil then
    if type(opts) ~= "table" then
      typeerror(opts, 2, "PriorityQueue", "table")
    end
    if opts.lt ~= nil and not callable(opts.lt) then
      argerror(2, "PriorityQueue", "lt must be a function")
    end
    if opts.key ~= nil and not callable(opts.key) then
      argerror(2, "PriorityQueue", "key must be a function")
    end
    lt, key = opts.lt, opts.key
  end
  key = key or default_key
  -- heap[1 .. size]. A put or get first compares (which runs user code and
  -- maybe a finaliser that uses this queue: `version` tells, and it starts
  -- over), then moves the entries without calling anything. A comparison
  -- that raises leaves the heap as it was.
  local heap, size, seq, version, path = {}, 0, 0, 0, {}
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
  -- the final place of e put at size+1 (nothing moved)
  local function sift_up_place(e)
    local i = size + 1
    while i > 1 do
      local p = i // 2
      if not less(e, heap[p]) then break end
      i = p
    end
    return i
  end
  -- the path of the hole left at 1 by the top, for the last entry x:
  -- path[1 .. depth] (nothing moved)
  local function sift_down_path(x)
    local i, depth, last = 1, 0, size - 1
    while true do
      local l, r = 2 * i, 2 * i + 1
      if l > last then break end
      local c = l
      if r <= last and less(heap[r], heap[l]) then c = r end
      if not less(heap[c], x) then break end
      depth = depth + 1
      path[depth] = c
      i = c
    end
    return depth
  end
  local function failed(e, fname) -- (level 3: the caller of put or put_nowait)
    local text = not lt and compare_text(e)
    if text then argerror(1, fname, "item does not compare with the queued ones: " .. text, 3) end
    error(e, 0)
  end
  return new_queue(PriorityQueue, "PriorityQueue", maxsize,
    function(item, fname)
      local e = { item = item }
      if not lt then e.key = key(item) end
      local ok, i, v
      repeat
        v = version
        e.seq = seq + 1
        ok, i = pcall(sift_up_place, e)
        -- (a failure after the heap changed under the walk: start over)
        if not ok and v == version then failed(i, fname) end
      until v == version
      -- from here on, nothing can run a finaliser
      size = size + 1
      seq = e.seq
      local j = size
      while j > i do
        local p = j // 2
        heap[j] = heap[p]
        j = p
      end
      heap[i] = e
      version = version + 1
    end,
    function()
      local ok, depth, v, x
      repeat
        v = version
        x = heap[size]
        ok, depth = pcall(sift_down_path, x)
        if not ok and v == version then
          return nil, { text = not lt and compare_text(depth), value = depth }
        end
      until v == version
      local top, i = heap[1], 1
      for d = 1, depth do
        local c = path[d]
        heap[i] = heap[c]
        i = c
      end
      heap[size] = nil
      size = size - 1
      if size > 0 then heap[i] = x end
      version = version + 1
      return top.item
    end,
    function()
      heap, size = {}, 0
      version = version + 1
    end)
end

aloop.QueueEmpty, aloop.QueueFull = "QueueEmpty", "QueueFull"

------------------------------------------------------------------------------
-- TaskGroup: local tg <close> = aloop.TaskGroup(); tg:create_task(fn, ...)

local GROUPS = registry()
local TaskGroup = class("aloop.TaskGroup", GROUPS, function(st)
  return sformat("tasks=%d errors=%d%s", st.ntasks, st.nerrors, st.aborting and " cancelling" or "")
end)

function aloop.TaskGroup()
  local parent = need_task("TaskGroup")
  local self = setmetatable({}, TaskGroup)
  GROUPS[self] = { parent = parent, tasks = {}, ntasks = 0, errors = {}, nerrors = 0,
    aborting = false, exiting = false, exited = false,
    parent_cancel_requested = false, done = nil, seq = 0 }
  return self
end

-- Cancel the children still running, in the order they were created.
local function by_seq(a, b) return a[2] < b[2] end
local function abort(st)
  st.aborting = true
  local list = {}
  for t, seq in pairs(st.tasks) do list[#list + 1] = { t, seq } end
  tsort(list, by_seq)
  for _, e in ipairs(list) do
    if not e[1]:done() then e[1]:cancel() end
  end
end

local function on_task_done(st, task)
  st.tasks[task] = nil
  st.ntasks = st.ntasks - 1
  if st.done and st.ntasks == 0 and not st.done:done() then
    st.done:set_result(true)
  end
  -- (a task may fail with nil: its state says so, not its error value)
  if state_of(task) ~= "failed" then return end
  st.nerrors = st.nerrors + 1
  st.errors[st.nerrors] = task:exception()
  if not st.aborting then abort(st) end
  -- The body of the block is cancelled too, unless it already left.
  if not st.parent_cancel_requested and not st.exiting and not st.parent:done() then
    st.parent_cancel_requested = true
    st.parent:cancel()
  end
end

local function group_create_task(self, fname, fn, ...)
  local st = GROUPS[self]
  if st == nil then bad_self(self, fname, "TaskGroup", 3) end
  if st.exited then raise("RuntimeError", "TaskGroup is finished", 3) end
  if st.aborting then raise("RuntimeError", "TaskGroup is shutting down", 3) end
  if not callable(fn) then typeerror(fn, 1, fname, "function", 2) end
  local ok, task = pcall(create_task, fn, ...)
  if not ok then error(unplaced(task), 3) end
  st.seq = st.seq + 1
  st.tasks[task] = st.seq
  st.ntasks = st.ntasks + 1
  task:add_done_callback(function(t) on_task_done(st, t) end)
  return task
end

function TaskGroup:create_task(fn, ...)
  return (group_create_task(self, "create_task", fn, ...))
end

function TaskGroup:spawn(fn, ...)
  return (group_create_task(self, "spawn", fn, ...))
end

function TaskGroup:errors()
  local st = GROUPS[self]
  if st == nil then bad_self(self, "errors", "TaskGroup") end
  return st.errors
end

function TaskGroup:__close(err)
  local st = GROUPS[self]
  if st == nil then bad_self(self, "__close", "TaskGroup") end
  -- it waits for its children: only a task can (checked before any change)
  if st.ntasks > 0 then need_task("TaskGroup:__close") end
  st.exiting = true
  local propagate_cancel = (err ~= nil and is_cancelled(err)) and err or nil
  if st.parent_cancel_requested then
    if st.parent:uncancel() == 0 then propagate_cancel = nil end
  end
  if err ~= nil and not st.aborting then abort(st) end
  while st.ntasks > 0 do
    st.done = new_future()
    local ok, e = pcall(st.done.await, st.done)
    if not ok then
      if not is_cancelled(e) then error(e, 0) end
      if not st.aborting then
        propagate_cancel = e
        abort(st)
      end
    end
    st.done = nil
  end
  st.exited = true
  if propagate_cancel ~= nil and st.nerrors == 0 then error(propagate_cancel, 0) end
  if err ~= nil and not is_cancelled(err) then
    st.nerrors = st.nerrors + 1
    st.errors[st.nerrors] = err
  end
  local errors, n = st.errors, st.nerrors
  errors.n = n
  if n == 1 then error(errors[1], 0) end
  if n > 1 then
    local e = new_error("TaskGroupError", sformat("%d errors in a TaskGroup; first: %s",
      n, tostring_safe(errors[1])))
    e.errors = errors
    error(e, 0)
  end
end
