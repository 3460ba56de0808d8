-- spec/10-tutorials_spec.lua: the tutorial programs in scripts/ print what
-- their Python asyncio originals print (/work/shared/tutorials/*.py, output
-- captured once from CPython 3.11 and written here literally), exit 0, write
-- nothing to stderr, and take the time that shows their tasks run
-- concurrently. Each script is run two ways: by the `aloop` command and by
-- plain `lua5.4` with `require "aloop"` finding the module under test
-- (H.script_specs in spec/helper.lua). Tagged #slow: they sleep in real time.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/10-tutorials_spec.lua

---------------------------------------------------------------------------
-- the expected output, as CPython 3.11 prints it

-- The line Python prints as "Completed in 9.01 seconds": the figure depends
-- on the run, so it is matched by a pattern and checked on its own.
local COMPLETED = "^Completed in (%d+%.%d%d) seconds$"

local CASES = {
  { script = "scripts/01_hello.lua",
    lines = { "Hello", "World" },
    time = { 0.9, 1.9 }, timing = "sleeps 1 s between its lines" },

  { script = "scripts/02_gather_two_tasks.lua",
    lines = { "Task started", "Task started", "Task completed", "Task completed" },
    time = { 1.9, 2.9 }, timing = "runs both tasks concurrently (2 s, not 4)" },

  { script = "scripts/03_gather_exception.lua",
    -- The still-sleeping task() is cancelled when main returns, so its
    -- "Task completed" never appears and the script does not wait 2 s.
    lines = { "Task started", "Caught an exception: Oops!" },
    time = { 0, 1.5 }, timing = "cancels the leftover task when main returns (no 2 s wait)" },

  { script = "scripts/05_cancel.lua",
    lines = { "Task started", "Task was cancelled", "Main caught task cancellation" },
    time = { 0.9, 1.9 }, timing = "cancels the task after 1 s (not 10)" },

  { script = "scripts/08_get_loop.lua",
    lines = {}, -- prints nothing, as in Python; its asserts must pass
    time = { 0, 1.5 }, timing = "finishes at once" },

  { script = "scripts/09_greet.lua",
    lines = { "Hello, Alice!", "Goodbye, Alice!", "Hello, Bob!", "Goodbye, Bob!" },
    time = { 1.9, 2.9 }, timing = "awaits the greetings in sequence (2 s)" },

  { script = "scripts/10_say_after.lua",
    lines = { "Started tasks...", "hello", "world", "Tasks finished." },
    time = { 1.9, 2.9 }, timing = "runs both tasks concurrently (2 s, not 3)" },

  { script = "scripts/11_factorial.lua",
    lines = {
      "Task A: Compute factorial(2), currently i=2...",
      "Task B: Compute factorial(3), currently i=2...",
      "Task C: Compute factorial(4), currently i=2...",
      "Task A: factorial(2) = 2",
      "Task B: Compute factorial(3), currently i=3...",
      "Task C: Compute factorial(4), currently i=3...",
      "Task B: factorial(3) = 6",
      "Task C: Compute factorial(4), currently i=4...",
      "Task C: factorial(4) = 24",
      "Results: [2, 6, 24]",
      { pattern = COMPLETED, text = "Completed in 9.01 seconds" },
    },
    -- Task C sleeps 2+3+4 s; run one after another the three would take 16 s.
    time = { 8.9, 10 }, timing = "runs the three tasks concurrently (9 s, not 16)" },

  { script = "scripts/12_might_fail.lua",
    -- Python prints the list's repr: [2, ValueError('This is an expected error!'), 6];
    -- in Lua the error is the string itself.
    lines = { "Results: [2, This is an expected error!, 6]" },
    time = { 0.9, 1.9 }, timing = "keeps the other tasks running past the error (1 s)" },
}

---------------------------------------------------------------------------

H.script_specs("tutorial scripts #slow", CASES, function(mode)
  it("11_factorial reports its own elapsed time as 9 s under " .. mode.name, function()
    local r = H.script_result(mode, "scripts/11_factorial.lua")
    local secs = tonumber(r.lines[#r.lines] and r.lines[#r.lines]:match(COMPLETED))
    assert.is_not_nil(secs, "last line: " .. tostring(r.lines[#r.lines]))
    -- sleep never returns early by aloop.time(): the 2+3+4 s of task C
    assert.is_true(secs >= 9.0 and secs < 10 + H.script_slack,
      ("reported %.2f s, expected 9.00 <= t < %.2f"):format(secs, 10 + H.script_slack))
  end)
end)
