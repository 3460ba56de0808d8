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
  -- Error messages --------------------------------------------------------
  { id = "B1", kind = "msg%-file", key = "^aloop%.as_completed$", msg = "local 'opts'" },
  -- the Lua classes: a method called with '.', a metamethod without its
  -- object, an internal method or a predicate that is not callable
  { id = "B2", kind = "msg%-file", key = "^%u", form = "^dot$" },
  { id = "B2", kind = "msg%-file", key = "^%u", form = "^bare$" },
  { id = "B2", kind = "msg%-file", key = "^TaskGroup%._on_task_done$" },
  { id = "B2", kind = "msg%-file", key = "^Condition%.wait_for$", msg = "local 'predicate'" },
  -- errors that name aloop's own files or other functions than the one called
  { id = "B3", kind = "msg%-file", key = "create_task$", msg = "bad argument #1 to 'create_task'" },
  { id = "B3", kind = "msg%-file", key = "^TaskGroup%.spawn$", msg = "bad argument #1 to 'create_task'" },
  { id = "B3", kind = "msg%-file", key = "^aloop%.wait_for$", msg = "a task cannot await itself" },
  { id = "B3", kind = "msg%-file", msg = "called outside a task" },
  { id = "B3", kind = "msg%-file", msg = "cannot wait here" },
  { id = "B3", kind = "msg%-file", msg = "no running event loop" },
  { id = "B3", kind = "msg%-name", detail = "^'await'$" },
  { id = "B3", kind = "msg%-name", key = "^aloop%.timeout_at$", detail = "^'timeout'$" },
  { id = "B3", kind = "msg%-name", key = "^Condition%.wait_for$", detail = "^'Condition:wait'$" },
  { id = "B3", kind = "torture%-message", msg = "cannot wait here" },

  -- New (not in the review) ------------------------------------------------
  -- PriorityQueue: items whose keys do not compare fail inside sync.lua.
  { id = "N1", kind = "msg%-file", key = "^PriorityQueue%.put", msg = "attempt to compare" },
  -- aloop._WaitQueue:wait(where) reports any argument as the function's name.
  { id = "N2", kind = "msg%-name", key = "^WaitQueue%.wait$" },
  -- A finaliser that uses a PriorityQueue in the middle of its put/get.
  { id = "N4", kind = "torture%-message", msg = "aloop/sync%.lua:%d+: attempt to index a nil value %(local '[%a_]+'%)" },
}
