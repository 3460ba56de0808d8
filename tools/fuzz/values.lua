-- tools/fuzz/values.lua -- the wrong and extreme argument values the fuzzer
-- passes, each as Lua source, so that a reproducer can print the same
-- expression it evaluated. Loaded by fuzz.lua; returns PRELUDE and VALUES.

local M = {}

-- Evaluated once per pool, with `aloop` and `P` (the pool) in scope. guard()
-- marks what an argument's own code raises ("fuzz arg: ..."), so the
-- fuzzer does not blame the function under test for an error of its argument;
-- a cancellation goes through unchanged.
M.PRELUDE = [[
local function guard(f)
  return function(...)
    local r = table.pack(pcall(f, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    if aloop.is_cancelled(r[2]) then error(r[2], 0) end
    error("fuzz arg: " .. tostring(r[2]), 0)
  end
end
local function raiser(what) return function() error("fuzz arg: " .. what .. " raised", 0) end end
local function yielder(what) return function(...) return coroutine.yield(...) end end
local sleeper = guard(function() aloop.sleep(0) return 1 end)
RAISING = { __name = "aloop.Task", __index = raiser("__index"), __newindex = raiser("__newindex"),
  __tostring = raiser("__tostring"), __call = raiser("__call"), __len = raiser("__len"),
  __eq = raiser("__eq"), __lt = raiser("__lt"), __le = raiser("__le"), __concat = raiser("__concat"),
  __close = raiser("__close"), __unm = raiser("__unm"), __add = raiser("__add") }
YIELDING = { __index = yielder(), __tostring = yielder(), __call = yielder(), __len = yielder(),
  __lt = yielder(), __le = yielder(), __eq = yielder(), __concat = yielder() }
SLEEPING = { __index = sleeper, __tostring = sleeper, __call = sleeper, __len = sleeper,
  __lt = sleeper, __le = sleeper, __concat = sleeper }
guard_fn = guard
]]

-- { name, source }. Sources see the prelude's globals, aloop and P.
M.VALUES = {
  { "nil", "nil" },
  { "true", "true" },
  { "false", "false" },
  { "0", "0" },
  { "1", "1" },
  { "0.001", "0.001" },
  { "-1", "-1" },
  { "0.5", "0.5" },
  { "-0.5", "-0.5" },
  { "1.5", "1.5" },
  { "maxint", "math.maxinteger" },
  { "minint", "math.mininteger" },
  { "nan", "0/0" },
  { "inf", "1/0" },
  { "-inf", "-1/0" },
  { "2^53", "2^53" },
  { "1e308", "1e308" },
  { "-1e308", "-1e308" },
  { "1e-300", "1e-300" },
  { "empty string", '""' },
  { '"10"', '"10"' },
  { "string with NUL", '"before\\0after"' },
  { "1 MB string", 'string.rep("x", 1 << 20)' },
  { '"TimeoutError"', '"TimeoutError"' },
  { '"keep"', '"keep"' },
  { "{}", "{}" },
  { "{1,2,3}", "{1, 2, 3}" },
  { "raising metatable", "setmetatable({}, RAISING)" },
  { "yielding metatable", "setmetatable({}, YIELDING)" },
  { "sleeping metatable", "setmetatable({}, SLEEPING)" },
  { "fake Error", '{kind = "CancelledError", message = "fake"}' },
  { "function", "function() end" },
  { "function that errors", 'function() error("fuzz arg: function raised", 0) end' },
  { "function that errors with nil", "function() error() end" },
  { "function that errors with an object", "function() error(setmetatable({}, RAISING)) end" },
  { "function that yields", "function(...) return coroutine.yield(...) end" },
  { "function that sleeps", "guard_fn(function() aloop.sleep(0.001) return 1 end)" },
  { "function that cancels the current task",
    'function() local t = aloop.current_task() if t then t:cancel("fuzz: cancelled by an argument") end end' },
  { "function that resumes a task's coroutine",
    "function() if P.task_co then return coroutine.resume(P.task_co) end end" },
  { "function that closes a task's coroutine",
    "function() if P.task_co then return coroutine.close(P.task_co) end end" },
  { "print", "print" },
  { "callable table", "setmetatable({}, {__call = function() return 1 end})" },
  { "coroutine", "coroutine.create(function() return 1 end)" },
  { "dead coroutine", "(function() local c = coroutine.create(function() end) coroutine.resume(c) return c end)()" },
  { "a task's coroutine", "P.task_co" },
  { "io.stdout", "io.stdout" },
  { "the module", "aloop" },
}

-- Values resolved at each call, in the context of the call.
M.DYNAMIC = {
  { "self", nil },                                    -- the receiver itself
  { "current task", "aloop.current_task()" },
}

-- Argument sets tried on every module function and method to find the
-- objects it returns (discovery); sources as above.
M.PROBES = {
  {},
  { '"TimeoutError"' },
  { "0.001" },
  { "1" },
  { "function() pcall(aloop.sleep, 0.5) end" },
  { "function() end" },
}

-- Extreme arguments for the constructors: each object they make becomes
-- one more receiver and argument (a Semaphore(math.maxinteger) ...).
M.EXTREME_PROBES = {
  { "math.maxinteger" },
  { "0" },
  { '"keep"', "math.maxinteger" },
  { '"pass"', "0" },
}

-- Values a working call would take, preferred for the first arguments of
-- the random calls (names from VALUES, plus "object" for the same class).
M.PLAUSIBLE = { "function", "function that sleeps", "0", "0.5", "1.5", "nil", '"TimeoutError"',
  "{}", "callable table", "true" }

return M
