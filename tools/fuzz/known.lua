-- tools/fuzz/known.lua -- TEMPORARY allow-list: the findings of `make fuzz`
-- and `make torture` that are recorded (tools/fuzz/findings/FINDINGS.md) and
-- waiting for their fix. A finding that matches an entry is reported as
-- suppressed instead of failing the run. Delete an entry as soon as its fix
-- lands; the goal is an empty list.
--
-- Each entry: id (the review's finding ID, or N<n> for a new one), then
-- Lua patterns on the fields of a finding, all of which must match:
--   kind    crash, hang, msg-file, msg-name, report (fuzz);
--           torture-crash, torture-hang, torture-message, torture-leftover
--   key     the target, "Lock.acquire", "aloop.gather" ("torture" for torture)
--   form    dot, colon (methods and aloop.f), self, bare (metamethods)
--   detail  the place: "aloop/sync.lua", "ubsan: core/sync.c:49: ..."
--   desc    the first call that showed it; msg: what it raised or reported
--   ctx     the context it was first seen in (fuzz only)
-- The first entry that matches wins, so the narrower ones come first.

return {
  -- Crashes and memory errors -------------------------------------------
  { id = "C1", kind = "torture%-crash", detail = "heap%-use%-after%-free in laloop_push_error" },
  { id = "C2", kind = "crash", detail = "stack%-overflow" },
  { id = "C3", kind = "crash", ctx = "^close$", detail = "SEGV in run_toplevel" },
  { id = "C6", kind = "crash", key = "%.__gc$" },
  { id = "C4", kind = "crash", desc = "resumes a task's coroutine" },
  { id = "C4", kind = "crash", detail = "^ubsan: bindings/ltask%.c:478: member access within null pointer" },
  -- getmetatable(loop).__gc(loop): the loop is gone, the next turn fails.
  { id = "C6", kind = "crash", detail = "epoll_wait: Bad file descriptor" },
  { id = "C6", kind = "crash", ctx = "^toplevel$", detail = "SEGV in run_toplevel" },
  { id = "C7", kind = "crash", detail = "core/sync%.c:%d+: signed integer overflow" },

  -- Hangs -----------------------------------------------------------------
  { id = "H2", kind = "report", msg = "^nil | .*aloop/tasks%.lua:%d+: in function <aloop/tasks%.lua" },

  -- New (not in the review) ------------------------------------------------
  -- A pending Future with a done callback is anchored for ever.
  { id = "N3", kind = "torture%-leftover", msg = "anchored=[1-9]" },
}
