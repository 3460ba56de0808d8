-- spec/00-harness_spec.lua: the harness of spec/helper.lua does not hide
-- failures and cannot hang. A body run by H.async that leaves an error only
-- reported (a task nobody awaited, a callback) fails; a command run by H.sh
-- that does not end is stopped at its time limit. The H.async bodies under
-- test are run by hand, under pcall, to see how they end.
--
-- Run from the repository root: lua5.4 /usr/bin/busted spec/00-harness_spec.lua
local aloop = require "aloop"

-- How the test H.async made of fn (and opts) ends: ok, and its error.
local function outcome(fn, opts)
  return pcall(H.async(fn, opts))
end

local function leave_task_error(msg)
  aloop.create_task(function() error(msg, 0) end)
  aloop.sleep(0)
end

describe("H.async", function()
  it("fails a body that left a task error nobody retrieved, with the report", function()
    local ok, err = outcome(function() leave_task_error("lost on purpose") end)
    assert.is_false(ok)
    assert.matches("the loop reported 1 error(s):", err, 1, true)
    assert.matches("Task exception was never retrieved: lost on purpose", err, 1, true)
  end)

  it("fails a body whose callback raised, with the report", function()
    local ok, err = outcome(function()
      aloop.get_running_loop():call_soon(function() error("callback on purpose", 0) end)
      aloop.sleep(0)
    end)
    assert.is_false(ok)
    assert.matches("Exception in callback: callback on purpose", err, 1, true)
  end)

  it("fails a body that dropped a failed Future (reported when collected)", function()
    local ok, err = outcome(function()
      aloop.Future():set_exception("future on purpose")
    end)
    assert.is_false(ok)
    assert.matches("Future exception was never retrieved: future on purpose", err, 1, true)
  end)

  it("keeps the body's own error and adds the reports to it", function()
    local ok, err = outcome(function()
      leave_task_error("lost too")
      error("the body failed", 0)
    end)
    assert.is_false(ok)
    assert.matches("^the body failed\nand the loop reported 1 error%(s%)", err)
    assert.matches("lost too", err, 1, true)
  end)

  it("passes a body that says it expects reports", function()
    assert.is_true((outcome(function() leave_task_error("meant") end, { expect_reports = true })))
    assert.is_true((outcome(function() leave_task_error("meant") end, { expect_reports = 1 })))
  end)

  it("fails a body that expected another number of reports", function()
    local ok, err = outcome(function() leave_task_error("one") end, { expect_reports = 2 })
    assert.is_false(ok)
    assert.matches("the loop reported 1 error(s), expected 2:", err, 1, true)
  end)

  it("still watches after a body collected reports itself with H.reports_of", function()
    local seen
    local ok, err = outcome(function()
      seen = H.reports_of(leave_task_error, "collected")
      leave_task_error("after reports_of")
    end)
    assert.equal(1, #seen)
    assert.equal("collected", seen[1].exception)
    assert.is_false(ok)
    assert.matches("after reports_of", err, 1, true)
    assert.not_matches("collected", err, 1, true)
  end)

  it("stops a body that runs past its limit (the old H.async(fn, limit) form)", function()
    local t0 = aloop.time()
    local ok, err = outcome(function() aloop.sleep(5) end, 0.05)
    assert.is_false(ok)
    assert.is_true(aloop.is_timeout(err), tostring(err))
    assert.is_true(aloop.time() - t0 < 1, "the watchdog took " .. (aloop.time() - t0) .. " s")
  end)

  it("passes a clean body", function()
    assert.is_true((outcome(function() aloop.sleep(0) end)))
  end)
end)

describe("H.sh", function()
  it("stops a command that hangs at its time limit and says so", function()
    local out, err, code, secs = H.sh("echo started; sleep 100", nil, 1)
    assert.equal("started\n", out)
    assert.equal(124, code)
    assert.matches("H.sh: timed out after 1 s (killed by TERM, status 124): echo started; sleep 100",
      err, 1, true)
    assert.is_true(secs >= 1 and secs < 3, "returned after " .. secs .. " s")
  end)

  it("kills with KILL a command that ignores TERM", function()
    local kill_after = H.KILL_AFTER
    H.KILL_AFTER = 0.3
    local _, err, code, secs = H.sh("trap '' TERM; sleep 100", nil, 0.3)
    H.KILL_AFTER = kill_after
    assert.equal(137, code)
    assert.matches("killed by KILL, status 137", err, 1, true)
    assert.is_true(secs >= 0.6 and secs < 2.6, "returned after " .. secs .. " s")
  end)

  it("stops what the command started in the background too", function()
    local mark = os.tmpname()
    H.sh("(sleep 0.8; echo late > " .. H.quote(mark) .. ") & sleep 100", nil, 0.3)
    aloop.run(aloop.sleep, 0.8)
    local f = assert(io.open(mark))
    local s = f:read("a")
    f:close()
    os.remove(mark)
    assert.equal("", s)
  end)

  it("returns a command's output and status as they are", function()
    local out, err, code = H.sh("printf 'a\\nb'; echo oops >&2; exit 3")
    assert.are.same({ "a\nb", "oops\n", 3 }, { out, err, code })
  end)
end)
