-- spec/13-sync_scripts_spec.lua: the scripts that show the synchronisation
-- primitives print exactly the expected lines, exit 0, write nothing to
-- stderr and take the time that shows the primitive at work. Each script is
-- run two ways: by the `aloop` command and by plain lua5.4 with
-- `require "aloop"` finding the module under test (H.script_specs in
-- spec/helper.lua). Tagged #slow: they sleep in real time.
--
--   (scripts/07_semaphore_fetch.lua fetches for real now: spec/31-http_scripts_spec.lua)
--   scripts/13_producer_consumer.lua  a bounded Queue(2), two consumers,
--     task_done/join, then the consumers cancelled. Its lines are the ones
--     CPython 3.11's asyncio prints for the same program (asyncio.Queue(2),
--     same sleeps), checked once and written here literally.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/13-sync_scripts_spec.lua

---------------------------------------------------------------------------

local CASES = {
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

H.script_specs("sync scripts #slow", CASES)
