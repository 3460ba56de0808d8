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
}
