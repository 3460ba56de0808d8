-- spec/13-sync_scripts_spec.lua: the scripts that show the synchronisation
-- primitives print exactly the expected lines, exit 0, write nothing to
-- stderr and take the time that shows the primitive at work. Each script is
-- run two ways: by the `aloop` command and by plain lua5.4 with
-- `require "aloop"` finding the module under test (H.script_specs in
-- spec/helper.lua). Tagged #slow: they sleep in real time.
--
--   scripts/07_semaphore_fetch.lua  Semaphore(3) over five simulated 0.5 s
--     fetches: prints what /work/shared/tutorials/07_semaphore_fetch.py
--     prints; at most three fetches at once, so 1 s in all (two rounds).
--   scripts/13_producer_consumer.lua  a bounded Queue(2), two consumers,
--     task_done/join, then the consumers cancelled. Its lines are the ones
--     CPython 3.11's asyncio prints for the same program (asyncio.Queue(2),
--     same sleeps), checked once and written here literally.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/13-sync_scripts_spec.lua

-- Runs the script with its stdout line-buffered (stdbuf) and stamps each line
-- with the wall time it came out; returns { {t = seconds, line = text}, ... },
-- the times relative to the first line.
local function stamped(mode, script)
  local cmdline = table.concat({
    "stdbuf -oL " .. mode.command({ script }),
    [[while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done]],
  }, " | ")
  local out = H.sh(cmdline, nil, 30)
  local rows, t0 = {}, nil
  for _, l in ipairs(H.split_lines(out)) do
    local t, text = l:match("^(%d+%.%d+) (.*)$")
    t = tonumber(t)
    t0 = t0 or t
    rows[#rows + 1] = { t = t - t0, line = text }
  end
  return rows
end

---------------------------------------------------------------------------

local CASES = {
  { script = "scripts/07_semaphore_fetch.lua",
    lines = {
      "Fetching https://example.com",
      "Fetching https://python.org",
      "Fetching https://asyncio.org",
      "Fetching https://github.com",
      "Fetching https://stackoverflow.com",
      "Fetched 5 pages",
    },
    -- Five 0.5 s fetches, three at a time: two rounds, 1 s. All five at
    -- once would take 0.5 s; two at a time 1.5 s; one at a time 2.5 s.
    time = { 0.95, 1.6 }, timing = "takes two rounds of fetches (1 s)" },

  { script = "scripts/13_producer_consumer.lua",
    lines = {
      "producer: put item 1 (queue size 1)",
      "producer: put item 2 (queue size 2)",
      "consumer A: got item 1",
      "consumer B: got item 2",
      "producer: put item 3 (queue size 1)",
      "producer: put item 4 (queue size 2)",
      "consumer A: got item 3",
      "producer: put item 5 (queue size 2)",
      "consumer B: got item 4",
      "producer: put item 6 (queue size 2)",
      "producer: done",
      "consumer A: got item 5",
      "consumer A: got item 6",
      "main: all 6 items processed",
      "consumer A: cancelled after 4 items",
      "consumer B: cancelled after 2 items",
      "main: 2 consumers cancelled",
    },
    -- A handles items 1, 3, 5, 6 at 0.3 s each: join returns at 1.2 s, and
    -- the consumers are cancelled at once, not left to run.
    time = { 1.15, 2.0 }, timing = "joins when the last item is done (1.2 s)" },
}

-- The lines of 07 as they come out: three fetches start at once, the fourth
-- and fifth only when the first three finish (0.5 s later), and the result
-- comes when those finish (1 s). So never more than three at once, and three
-- (not fewer) do run at once.
H.script_specs("sync scripts #slow", CASES, function(mode)
  it("07_semaphore_fetch runs at most three fetches at once under " .. mode.name, function()
    local rows = stamped(mode, "scripts/07_semaphore_fetch.lua")
    local got = {}
    for i, row in ipairs(rows) do got[i] = row.line end
    assert.are.same(CASES[1].lines, got)
    local function at(i, lo, hi, what)
      assert.is_true(rows[i].t >= lo and rows[i].t < hi,
        ("line %d (%s) came %.3f s after the first, expected %.2f <= t < %.2f (%s)")
          :format(i, rows[i].line, rows[i].t, lo, hi, what))
    end
    at(2, 0, 0.25, "second fetch starts at once")
    at(3, 0, 0.25, "third fetch starts at once")
    at(4, 0.45, 0.8, "fourth fetch waits for a permit")
    at(5, 0.45, 0.8, "fifth fetch waits for a permit")
    at(6, 0.95, 1.4, "the last fetches end after two rounds")
  end)
end)
