-- 07-core_spec.lua -- runs the C test of the core (spec/c/test_core.c, built
-- by make as build/test_core) and turns each of its TAP lines into a test.
-- Tagged #make_all: it needs a program `make all` builds and the rock does
-- not.
local bin = os.getenv("ALOOP_TEST_CORE") or (H.build .. "/test_core")

describe("the core, from C without Lua #make_all", function()
  local out, err, code = H.sh(H.command(bin))
  it("runs to the end and exits 0", function()
    assert.equal("", err)
    assert.equal(0, code)
    assert.matches("\n1%.%.%d+\n$", out)
  end)
  for line in out:gmatch("[^\n]+") do
    local ok, name = line:match("^(o?k?n?o?t? ?ok) %d+ %- (.*)$")
    if name then
      it(name, function()
        assert(ok == "ok", line)
      end)
    end
  end
end)
