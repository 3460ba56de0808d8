-- 14-debug_spec.lua -- debug mode (ALOOP_DEBUG=1 or aloop.set_debug): slow
-- steps are reported with the task's name and where it stopped; the report
-- of an error nobody retrieved says where the task was created.
local aloop = require "aloop"

local fixture = "spec/fixtures/debug_slow.lua"

local function line_of(marker)
  local n = 0
  for line in io.lines(fixture) do
    n = n + 1
    if line:find(marker, 1, true) then return n end
  end
end

describe("debug mode", function()
  it("ALOOP_DEBUG=1 reports a step over 100 ms with name and location", function()
    local _, err, code = H.sh("ALOOP_DEBUG=1 " .. H.aloop_command({ fixture }))
    assert.equal(0, code)
    assert.matches("Task 'Task%-2' ran %d+%.%d%d%d s without yielding, until " ..
      fixture:gsub("%p", "%%%0") .. ":" .. line_of("-- STOPPED"), err)
  end)

  it("adds where a failed task was created to its never-retrieved report", function()
    local _, err = H.sh("ALOOP_DEBUG=1 " .. H.aloop_command({ fixture }))
    assert.matches("Task exception was never retrieved\nlate failure", err, 1, true)
    assert.matches("task created at:.-" .. fixture:gsub("%p", "%%%0") .. ":" .. line_of("-- CREATED"), err)
  end)

  it("is off by default: nothing but the error report", function()
    local _, err, code = H.aloop({ fixture })
    assert.equal(0, code)
    assert.not_matches("without yielding", err)
    assert.not_matches("task created at", err)
    assert.matches("late failure", err, 1, true)
  end)

  it("set_debug(true, seconds) turns it on from Lua with its own threshold", H.async(function()
    aloop.set_debug(true, 0.02)
    local ok, reports = pcall(H.reports_of, function()
      assert.is_true(aloop.get_debug())
      local t = aloop.create_task(function()
        local t0 = os.clock()
        while os.clock() - t0 < 0.04 do end
      end)
      t:await()
      -- off before this task's own step can grow long (the GCs below run
      -- in it, and a slow machine or valgrind would flag it too)
      aloop.set_debug(false)
      aloop.sleep(0)
    end)
    aloop.set_debug(false)
    assert(ok, reports)
    assert.equal(1, #reports)
    assert.matches("ran %d+%.%d%d%d s without yielding, until its end", reports[1].message)
  end))

  it("set_debug checks its arguments", function()
    assert.has_error(function() aloop.set_debug(true, -1) end,
      "bad argument #2 to 'set_debug' (must not be negative)")
    assert.is_false(aloop.get_debug())
  end)
end)
