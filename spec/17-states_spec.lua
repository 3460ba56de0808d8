-- 17-states_spec.lua -- aloop in several Lua states of one process
-- (spec/c/test_states.c, built by make as build/test_states): one owner per
-- signal, and states in two threads each on their own loop.
local bin = (os.getenv("ALOOP_HOSTS") or "build") .. "/test_states"

describe("several states in one process", function()
  local out, err, code = H.sh((H.wrap and (H.wrap .. " ") or "") .. bin)
  it("runs to the end and exits 0", function()
    assert.equal("", err)
    assert.equal(0, code)
    assert.matches("\n1%.%.%d+\n$", out)
  end)
  for line in out:gmatch("[^\n]+") do
    local ok, name = line:match("^(o?k?n?o?t? ?ok) %d+ %- (.*)$")
    if name then
      it(name, function() assert(ok == "ok", line) end)
    end
  end
end)
