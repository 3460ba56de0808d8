---@meta aloop
-- LuaLS (lua-language-server) definitions for aloop, the asyncio-like async
-- runtime for Lua 5.4. This file is never run: add the folder that holds it
-- to `workspace.library` (see types/README.md) and `require "aloop"` gets
-- completion, hover docs and type checks.
--
-- Functions that suspend the calling task are marked `---@async`; they must
-- be called from inside a task (LuaLS's opt-in `await-in-sync` diagnostic
-- checks that). Functions given to create_task, gather, run... are typed
-- `async fun`, so their bodies may call them.
--
-- The reference is docs/api.md; keep the two in step.

---@class aloop
---The version of the build, e.g. `"aloop 0.1.0"`.
---@field _VERSION string
---`"FIRST_COMPLETED"`, for `aloop.wait`.
---@field FIRST_COMPLETED "FIRST_COMPLETED"
---`"FIRST_EXCEPTION"`, for `aloop.wait`.
---@field FIRST_EXCEPTION "FIRST_EXCEPTION"
---`"ALL_COMPLETED"`, for `aloop.wait`.
---@field ALL_COMPLETED "ALL_COMPLETED"
---`"QueueEmpty"`: the `kind` of the error `get_nowait` raises on an empty queue.
---@field QueueEmpty "QueueEmpty"
---`"QueueFull"`: the `kind` of the error `put_nowait` raises on a full queue.
---@field QueueFull "QueueFull"
local aloop = {}

------------------------------------------------------------------------------
-- Aliases and option tables

---A function run as a task: it may wait.
---@alias aloop.TaskFunction async fun(...): ...

---What `gather`, `wait_for`, `shield` and `ensure_future` accept: a Task, a
---Future, or a function that is started as a new task.
---@alias aloop.Awaitable aloop.Task|aloop.Future|aloop.TaskFunction

---@alias aloop.ReturnWhen
---| "FIRST_COMPLETED" # one future is done (finished, failed or cancelled)
---| "FIRST_EXCEPTION" # one future failed, or all are done
---| "ALL_COMPLETED"   # all are done (the default)

---@alias aloop.ErrorKind
---| "CancelledError"
---| "TimeoutError"
---| "InvalidStateError"
---| "QueueEmpty"
---| "QueueFull"
---| "QueueShutDown"
---| "BrokenBarrierError"
---| "TaskGroupError"
---| "KeyboardInterrupt"
---| "RuntimeError"
---| "ValueError"
---| "DNSError"

---@class aloop.GatherOptions
---Put errors (and CancelledError values) in the result array instead of
---raising the first one. Default false.
---@field return_exceptions? boolean

---The array `gather` returns: the first result of each child, in argument
---order, and `n`, the number of children (so nil results are counted).
---@class aloop.GatherResult
---@field n integer
---@field [integer] any

---@class aloop.WaitOptions
---When `wait` returns; default `"ALL_COMPLETED"`.
---@field return_when? aloop.ReturnWhen
---Seconds; when they pass `wait` returns what it has. Nothing is cancelled.
---@field timeout? number

---@class aloop.AsCompletedOptions
---Seconds for the whole iteration; then the iterator raises TimeoutError.
---@field timeout? number

---@class aloop.PriorityQueueOptions
---"Less than" on two items; takes precedence over `key`.
---@field lt? fun(a: any, b: any): boolean
---The priority of an item, compared with `<`.
---@field key? fun(item: any): any

---What the loop's exception handler receives.
---@class aloop.ExceptionContext
---`"Task exception was never retrieved"`, `"Future exception was never
---retrieved"`, `"Exception in callback"`, `"Exception in done callback"`, or
---a debug-mode report.
---@field message string
---The error value, when there is one.
---@field exception? any
---A traceback string, when there is one.
---@field traceback? string

---A set of futures: `set[fut] == true`.
---@alias aloop.FutureSet table<aloop.Task|aloop.Future, true>

------------------------------------------------------------------------------
-- Error values

---An error raised by aloop itself. `tostring(err)` is `"kind: message"`, or
---`"kind"` without a message. Recognise them with the `aloop.is_*`
---predicates. Errors raised by your own code are never wrapped in these.
---@class aloop.Error
---@field kind aloop.ErrorKind|string
---@field message? string

---Raised by a TaskGroup that collected two or more errors.
---@class aloop.TaskGroupError: aloop.Error
---@field kind "TaskGroupError"
---The errors, children's in the order they happened, the body's last.
---@field errors any[]

---Raised by `aloop.getaddrinfo`. Prints as `"ENOTFOUND: Domain name not
---found (host)"`.
---@class aloop.DNSError: aloop.Error
---@field kind "DNSError"
---c-ares' status name without its prefix: `"ENOTFOUND"`, `"ENODATA"`,
---`"ETIMEOUT"`, `"ECONNREFUSED"`, `"ESERVICE"`, `"EBADSTR"`...
---@field code string
---c-ares' status number.
---@field status integer
---The host that was looked up.
---@field host string

------------------------------------------------------------------------------
-- Futures and tasks

---What Tasks and Futures have in common.
---@class aloop.FutureBase
local FutureBase = {}

---Waits until it is done, then returns all its results, or raises its error
---unchanged, or raises `CancelledError`. Returns at once if it is done.
---Cancelling the waiting task passes the cancellation on to it.
---@async
---@return any ...
function FutureBase:await() end

---True once it finished, failed or was cancelled.
---@return boolean
function FutureBase:done() end

---True if it ended cancelled.
---@return boolean
function FutureBase:cancelled() end

---All the results. Raises its error if it failed, `CancelledError` if it was
---cancelled, `InvalidStateError` if it is pending. Marks the error retrieved.
---@return any ...
function FutureBase:result() end

---The error if it failed, nil if it finished. Raises `CancelledError` if it
---was cancelled, `InvalidStateError` if it is pending. Marks the error
---retrieved.
---@return any
function FutureBase:exception() end

---Calls `fn(self)` once it is done, from the ready queue (never
---synchronously); at once (scheduled) if it is already done.
---@param fn fun(fut: aloop.Task|aloop.Future)
function FutureBase:add_done_callback(fn) end

---Removes every registration of `fn` not yet scheduled.
---@param fn function
---@return integer removed
function FutureBase:remove_done_callback(fn) end

---A task: a function running in its own coroutine, scheduled by the loop.
---`tostring(task)` is `<Task pending|finished|failed|cancelled name='...'>`.
---@class aloop.Task: aloop.FutureBase
local Task = {}

---Requests cancellation: `CancelledError` (with `msg`) is raised where the
---task waits, or passed on to what it awaits. A task cancelled before its
---first step never runs. Returns false if it is already done.
---@param msg? string
---@return boolean requested
function Task:cancel(msg) end

---The number of pending cancel requests.
---@return integer
function Task:cancelling() end

---Decrements the number of cancel requests (not below 0) and returns it; at
---0, a cancellation not yet delivered is withdrawn.
---@return integer
function Task:uncancel() end

---The task's name: `Task-N`, `main` (the `aloop` command's script), or the
---one set.
---@return string
function Task:name() end

---Same as `name()`.
---@return string
function Task:get_name() end

---Sets the name to `tostring(value)`.
---@param value any
function Task:set_name(value) end

---The traceback of where the task's error was raised, or nil.
---@return string?
function Task:traceback() end

---A value set later by someone else. `tostring(fut)` is
---`<Future pending|finished|failed|cancelled>`.
---@class aloop.Future: aloop.FutureBase
local Future = {}

---Completes it with these values (any number). Raises `InvalidStateError` if
---it is done.
---@param ... any
function Future:set_result(...) end

---Completes it with an error (any value but nil): `await` raises it
---unchanged. Raises `InvalidStateError` if it is done.
---@param err any
function Future:set_exception(err) end

---Cancels it; returns false if it was already done.
---@param msg? string
---@return boolean
function Future:cancel(msg) end

------------------------------------------------------------------------------
-- The loop

---A callback scheduled with `call_soon`, `call_later` or `call_at`.
---@class aloop.Handle
local Handle = {}

---The callback will not be called. Harmless twice, or after it ran.
function Handle:cancel() end

---True if `cancel()` prevented the call.
---@return boolean
function Handle:cancelled() end

---When the callback is due (`loop:time()` clock).
---@return number
function Handle:when() end

---The event loop of this Lua state. `tostring(loop)` is
---`<aloop.Loop running|idle>`.
---@class aloop.Loop
local Loop = {}

---Monotonic seconds, as `aloop.time()`.
---@return number
function Loop:time() end

---Calls `fn(...)` on the next turn of the loop (FIFO with task steps).
---Callbacks run outside any task: they cannot wait.
---@param fn function
---@param ... any
---@return aloop.Handle
function Loop:call_soon(fn, ...) end

---Calls `fn(...)` after `seconds` (negative: as soon as possible).
---@param seconds number
---@param fn function
---@param ... any
---@return aloop.Handle
function Loop:call_later(seconds, fn, ...) end

---Calls `fn(...)` at time `when` of `loop:time()`.
---@param when number
---@param fn function
---@param ... any
---@return aloop.Handle
function Loop:call_at(when, fn, ...) end

---Runs `fn(...)` on a worker thread (as `aloop.to_thread`) and returns a
---Future for its results; the job is copied and queued at once. `executor`
---must be nil (the default executor, the loop's thread pool).
---@param executor nil
---@param fn function
---@param ... any
---@return aloop.Future
function Loop:run_in_executor(executor, fn, ...) end

---Same as `aloop.create_task(fn, ...)`.
---@param fn aloop.TaskFunction
---@param ... any
---@return aloop.Task
function Loop:create_task(fn, ...) end

---True while a task runs or a loop turn is in progress.
---@return boolean
function Loop:is_running() end

---Sets the function that receives the loop's reports (unretrieved errors,
---errors in callbacks, debug reports); nil restores the default (stderr).
---@param fn? fun(context: aloop.ExceptionContext)
function Loop:set_exception_handler(fn) end

------------------------------------------------------------------------------
-- Timeout scopes

---A timeout scope, for a `<close>` variable:
---`local _ <close> = aloop.timeout(1)`. At its deadline it cancels the task;
---closed, it turns that cancellation (only its own) into `TimeoutError`.
---@class aloop.Timeout
local Timeout = {}

---The deadline on the `aloop.time()` clock, or nil.
---@return number?
function Timeout:when() end

---Moves the deadline to `seconds` from now; nil disables it. Raises once the
---scope expired or was left.
---@param seconds number?
function Timeout:reschedule(seconds) end

---True once the deadline fired.
---@return boolean
function Timeout:expired() end

---What `<close>` calls: raises `TimeoutError` if the scope's own
---cancellation is unwinding.
---@param err any
function Timeout:__close(err) end

------------------------------------------------------------------------------
-- Synchronisation

---A mutual-exclusion lock. `acquire()` returns the lock as a guard:
---`local _ <close> = lock:acquire()`.
---@class aloop.Lock
local Lock = {}

---Waits until the lock is free, takes it, returns the lock (its `__close`
---releases it).
---@async
---@return aloop.Lock
function Lock:acquire() end

---Releases it. Raises a `RuntimeError` if it is not locked.
function Lock:release() end

---True while it is held.
---@return boolean
function Lock:locked() end

---A counting semaphore; `release()` may go above the start value.
---@class aloop.Semaphore
local Semaphore = {}

---Waits for a permit, takes it, returns the semaphore (a guard).
---@async
---@return aloop.Semaphore
function Semaphore:acquire() end

---Returns a permit.
function Semaphore:release() end

---True if `acquire()` would wait.
---@return boolean
function Semaphore:locked() end

---The number of free permits.
---@return integer
function Semaphore:value() end

---A semaphore whose `release()` raises a `ValueError` above the start value.
---@class aloop.BoundedSemaphore
local BoundedSemaphore = {}

---Waits for a permit, takes it, returns the semaphore (a guard).
---@async
---@return aloop.BoundedSemaphore
function BoundedSemaphore:acquire() end

---Returns a permit; raises a `ValueError` if that goes above the start value.
function BoundedSemaphore:release() end

---True if `acquire()` would wait.
---@return boolean
function BoundedSemaphore:locked() end

---The number of free permits.
---@return integer
function BoundedSemaphore:value() end

---A flag tasks can wait for.
---@class aloop.Event
local Event = {}

---Sets the flag and wakes every waiter.
function Event:set() end

---Unsets the flag.
function Event:clear() end

---@return boolean
function Event:is_set() end

---Waits until the flag is set; returns true.
---@async
---@return true
function Event:wait() end

---A condition variable on a Lock. `acquire()` returns it as a guard.
---@class aloop.Condition
local Condition = {}

---Takes the lock; returns the condition (a guard).
---@async
---@return aloop.Condition
function Condition:acquire() end

---Releases the lock.
function Condition:release() end

---True while the lock is held.
---@return boolean
function Condition:locked() end

---Releases the lock, waits to be notified, takes the lock again (also when
---it raises); returns true. Raises a `RuntimeError` without the lock.
---@async
---@return true
function Condition:wait() end

---Waits until `predicate()` returns a true value; returns that value.
---@async
---@generic T
---@param predicate fun(): T
---@return T
function Condition:wait_for(predicate) end

---Wakes up to `n` waiters (default 1). Needs the lock.
---@param n? integer
function Condition:notify(n) end

---Wakes every waiter. Needs the lock.
function Condition:notify_all() end

---Lets `parties` tasks through together.
---@class aloop.Barrier
local Barrier = {}

---Waits until `parties` tasks wait, then returns this one's index (0 to
---parties - 1). Raises `BrokenBarrierError` if it is or gets broken or reset.
---@async
---@return integer index
function Barrier:wait() end

---Returns it to the empty state; waiting parties get `BrokenBarrierError`.
---@async
function Barrier:reset() end

---Breaks it until `reset()`.
---@async
function Barrier:abort() end

---@return integer
function Barrier:parties() end

---@return integer
function Barrier:n_waiting() end

---@return boolean
function Barrier:broken() end

------------------------------------------------------------------------------
-- Queues

---A FIFO queue, bounded when `maxsize > 0`.
---@class aloop.Queue
local Queue = {}

---Waits while the queue is full, then adds `item`. Raises `QueueShutDown`
---after `shutdown()`.
---@async
---@param item any
function Queue:put(item) end

---Adds `item` or raises `QueueFull` / `QueueShutDown`.
---@param item any
function Queue:put_nowait(item) end

---Waits while the queue is empty; removes and returns an item. After
---`shutdown()`, returns what is left, then raises `QueueShutDown`.
---@async
---@return any item
function Queue:get() end

---Returns an item or raises `QueueEmpty` / `QueueShutDown`.
---@return any item
function Queue:get_nowait() end

---Marks one item taken earlier as processed. Raises a `ValueError` if called
---more times than items were put.
function Queue:task_done() end

---Waits until every item put has been marked done.
---@async
function Queue:join() end

---Shuts the queue down (Python 3.13): puts raise, waiters wake. With
---`immediate`, the queued items are dropped and counted done.
---@param immediate? boolean
function Queue:shutdown(immediate) end

---@return boolean
function Queue:is_shutdown() end

---@return integer
function Queue:qsize() end

---@return integer
function Queue:maxsize() end

---@return boolean
function Queue:empty() end

---@return boolean
function Queue:full() end

---A last-in first-out queue, with the Queue methods.
---@class aloop.LifoQueue: aloop.Queue

---A queue that gives the smallest item first (by `opts.lt`, `opts.key`, or
---a table's first element), equal ones in insertion order.
---@class aloop.PriorityQueue: aloop.Queue

------------------------------------------------------------------------------
-- TaskGroup

---Structured concurrency, for a `<close>` variable:
---`local tg <close> = aloop.TaskGroup()`. Leaving the block waits for every
---child; on the first failure the others (and the body) are cancelled; one
---error is raised unchanged, several as a `TaskGroupError`.
---@class aloop.TaskGroup
local TaskGroup = {}

---Starts a child task. Raises a `RuntimeError` once the group is finished or
---shutting down.
---@param fn aloop.TaskFunction
---@param ... any
---@return aloop.Task
function TaskGroup:create_task(fn, ...) end

---Same as `create_task`.
---@param fn aloop.TaskFunction
---@param ... any
---@return aloop.Task
function TaskGroup:spawn(fn, ...) end

---The errors collected so far.
---@return any[]
function TaskGroup:errors() end

---What `<close>` calls: waits for the children, then raises their error(s).
---@async
---@param err any
function TaskGroup:__close(err) end

------------------------------------------------------------------------------
-- Module functions: running

---Runs `fn(...)` as the main task until it finishes; cancels and awaits the
---tasks left under it; returns `fn`'s results or raises its error unchanged.
---At top level it drives the loop (raises a `KeyboardInterrupt` error value
---after Ctrl-C, and an error when the main task can never finish); called
---from a task it waits like any other call.
---@param fn aloop.TaskFunction
---@param ... any
---@return any ...
function aloop.run(fn, ...) end

---The running task, or nil outside a task.
---@return aloop.Task?
function aloop.current_task() end

---The loop; raises `no running event loop` when it is not running.
---@return aloop.Loop
function aloop.get_running_loop() end

---The loop, running or not.
---@return aloop.Loop
function aloop.get_event_loop() end

---Monotonic seconds (the clock of timers and `loop:time()`).
---@return number
function aloop.time() end

------------------------------------------------------------------------------
-- Module functions: tasks and futures

---Schedules `fn(...)` as a new task (its first step joins the ready queue)
---and returns it at once. Raises `no running event loop` outside `run`.
---@param fn aloop.TaskFunction
---@param ... any
---@return aloop.Task
function aloop.create_task(fn, ...) end

---Same as `create_task`.
---@param fn aloop.TaskFunction
---@param ... any
---@return aloop.Task
function aloop.spawn(fn, ...) end

---Suspends the task for at least `seconds` (<= 0: yields once); returns
---`value` if given.
---@async
---@generic T
---@param seconds number
---@param value? T
---@return T
function aloop.sleep(seconds, value) end

---A new pending Future.
---@return aloop.Future
function aloop.Future() end

---True if `x` is a Task or a Future (a false value otherwise).
---@param x any
---@return boolean?
function aloop.is_future(x) end

---`x` itself if it is a Task or Future; a function is started as a new task.
---@param x aloop.Awaitable
---@return aloop.Task|aloop.Future
function aloop.ensure_future(x) end

------------------------------------------------------------------------------
-- Module functions: waiting for several things

---Runs its children concurrently and waits for all; returns the first result
---of each, in order, with field `n`. Without `return_exceptions`, raises the
---first error (the others keep running). Cancelling it cancels the children.
---Also `aloop.gather(list [, opts])`.
---@async
---@param ... aloop.Awaitable|aloop.GatherOptions
---@return aloop.GatherResult
---@overload async fun(list: aloop.Awaitable[], opts?: aloop.GatherOptions): aloop.GatherResult
function aloop.gather(...) end

---Waits until `opts.return_when` holds (or `opts.timeout` passes); returns the
---sets of done and pending futures. Cancels nothing.
---@async
---@param fs (aloop.Task|aloop.Future)[]
---@param opts? aloop.WaitOptions
---@return aloop.FutureSet done
---@return aloop.FutureSet pending
function aloop.wait(fs, opts) end

---Waits for `aw` at most `seconds` (nil: no limit). On timeout `aw` is
---cancelled and waited for, then `TimeoutError` is raised.
---@async
---@param aw aloop.Awaitable
---@param seconds number?
---@return any ...
function aloop.wait_for(aw, seconds) end

---A timeout scope for a `<close>` variable (nil: no deadline).
---@param seconds number?
---@return aloop.Timeout
function aloop.timeout(seconds) end

---A timeout scope with an absolute deadline on the `aloop.time()` clock.
---@param when number?
---@return aloop.Timeout
function aloop.timeout_at(when) end

---A Future that follows `aw` but whose cancellation does not reach `aw`
---(`aw` itself if it is already done).
---@param aw aloop.Awaitable
---@return aloop.Task|aloop.Future
function aloop.shield(aw) end

---An iterator over `fs` in completion order, then nil. Calling it waits.
---@param fs (aloop.Task|aloop.Future)[]
---@param opts? aloop.AsCompletedOptions
---@return async fun(): (aloop.Task|aloop.Future)?
function aloop.as_completed(fs, opts) end

------------------------------------------------------------------------------
-- Module functions: synchronisation

---@return aloop.Lock
function aloop.Lock() end

---@param value? integer permits, default 1
---@return aloop.Semaphore
function aloop.Semaphore(value) end

---@param value? integer permits and upper bound, default 1
---@return aloop.BoundedSemaphore
function aloop.BoundedSemaphore(value) end

---@return aloop.Event
function aloop.Event() end

---@param lock? aloop.Lock default: a new Lock
---@return aloop.Condition
function aloop.Condition(lock) end

---@param parties integer at least 1
---@return aloop.Barrier
function aloop.Barrier(parties) end

---@param maxsize? integer 0 (default): unbounded
---@return aloop.Queue
function aloop.Queue(maxsize) end

---@param maxsize? integer 0 (default): unbounded
---@return aloop.LifoQueue
function aloop.LifoQueue(maxsize) end

---@param maxsize? integer 0 (default): unbounded
---@param opts? aloop.PriorityQueueOptions
---@return aloop.PriorityQueue
function aloop.PriorityQueue(maxsize, opts) end

---A TaskGroup whose parent is the current task. Raises outside a task.
---@return aloop.TaskGroup
function aloop.TaskGroup() end

------------------------------------------------------------------------------
-- Module functions: errors

---A new error value of aloop's kind (not raised).
---@param kind aloop.ErrorKind|string
---@param message? string
---@return aloop.Error
function aloop.error(kind, message) end

---@param err any
---@return boolean
function aloop.is_cancelled(err) end

---@param err any
---@return boolean
function aloop.is_timeout(err) end

---@param err any
---@return boolean
function aloop.is_invalid_state(err) end

---@param err any
---@return boolean
function aloop.is_queue_empty(err) end

---@param err any
---@return boolean
function aloop.is_queue_full(err) end

---@param err any
---@return boolean
function aloop.is_queue_shutdown(err) end

---@param err any
---@return boolean
function aloop.is_broken_barrier(err) end

---True if `err` is aloop's `RuntimeError` (a lock released while not held, and the like).
---@param err any
---@return boolean
function aloop.is_runtime_error(err) end

---True if `err` is aloop's `ValueError` (a BoundedSemaphore released too often, task_done called too often).
---@param err any
---@return boolean
function aloop.is_value_error(err) end

---@param err any
---@return boolean
function aloop.is_task_group_error(err) end

---True for the error a top-level `aloop.run` raises after Ctrl-C.
---@param err any
---@return boolean
function aloop.is_interrupted(err) end

---True if `err` is the `DNSError` of a failed `aloop.getaddrinfo`.
---@param err any
---@return boolean
function aloop.is_dns_error(err) end

------------------------------------------------------------------------------
-- Module functions: name resolution

---Options of `aloop.getaddrinfo`.
---@class aloop.GetaddrinfoOptions
---Only this family (default: both).
---@field family? "inet"|"inet6"
---Which protocol a service name is looked up for (default: tcp).
---@field type? "stream"|"dgram"
---Servers to ask instead of `ALOOP_NAMESERVERS` or /etc/resolv.conf:
---`"192.0.2.1"`, `"192.0.2.1:5353"`, `"[2001:db8::1]:53"` (not empty).
---@field nameservers? string[]
---Seconds for the whole lookup (default: c-ares' own timeouts and retries).
---@field timeout? number

---One address of a host.
---@class aloop.Address
---@field family "inet"|"inet6"
---The numeric form: `"127.0.0.1"`, `"::1"`.
---@field address string
---@field port integer
---The zone of a link-local IPv6 address given as `"fe80::1%eth0"`.
---@field scope_id? integer

---Looks `host` up without blocking the loop and returns its addresses.
---Numeric hosts, `localhost` (`::1`, `127.0.0.1`) and names under
---`.invalid` (an error) are answered at once, without a resolver;
---/etc/hosts is read before the resolver is asked. Raises an
---`aloop.DNSError` on failure, `CancelledError` at once when cancelled.
---@async
---@param host string
---@param port integer|string|nil a number, a numeric string or a service name ("http")
---@param opts? aloop.GetaddrinfoOptions
---@return aloop.Address[]
function aloop.getaddrinfo(host, port, opts) end

------------------------------------------------------------------------------
-- Module functions: worker threads

---Runs `fn(...)` on a worker thread with a Lua state of its own and returns
---its results, without blocking the loop. `fn`, its arguments and results
---are copied: nil, booleans, numbers, strings, tables of these (shared
---references and cycles kept, no metatables) and Lua functions whose
---upvalues are copyable (`_ENV` becomes the thread's globals). Anything
---else raises `aloop.to_thread: argument #2: field "conn": userdata cannot
---be copied to a thread`. An error in `fn` is raised here (a string with
---the thread's traceback appended). Cancelling returns at once; the job
---runs on and its results are dropped.
---@async
---@param fn function
---@param ... any
---@return any ...
function aloop.to_thread(fn, ...) end

---At most `n` worker threads (1 to 1024). Default: `ALOOP_THREADS`, else the
---number of online processors.
---@param n integer
function aloop.set_thread_pool_size(n) end

---The most worker threads the pool may run.
---@return integer
function aloop.get_thread_pool_size() end

------------------------------------------------------------------------------
-- Module functions: debug mode

---Turns debug mode on or off; `seconds` is the slow-step threshold (0.1 at
---first; default: unchanged).
---@param on any
---@param seconds? number
function aloop.set_debug(on, seconds) end

---@return boolean
function aloop.get_debug() end

---@class aloop.SignalHandle
local SignalHandle = {}
--- Stop calling this handler (idempotent).
function SignalHandle:cancel() end

--- Run fn(signo) as a loop callback on each delivery of sig (a name such as
--- "SIGTERM" or a number), until the handle is cancelled.
---@param sig string|integer
---@param fn fun(signo: integer)
---@return aloop.SignalHandle
function aloop.on_signal(sig, fn) end

--- Wait for the next delivery of sig; returns its number.
---@param sig string|integer
---@return integer
function aloop.wait_signal(sig) end

--- Whether e is an OS error value (fields code, errno, message).
---@param e any
---@return boolean
function aloop.is_os_error(e) end

return aloop
