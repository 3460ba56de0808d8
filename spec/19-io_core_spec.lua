-- 19-io_core_spec.lua -- runs the C test of the I/O core (spec/c/test_io.c,
-- built by make as build/test_io, beside build/test_core) and turns each of
-- its TAP lines into a test.
local core = os.getenv("ALOOP_TEST_CORE") or "build/test_core"
local bin = os.getenv("ALOOP_TEST_IO") or core:gsub("test_core$", "test_io")

describe("the I/O core, from C without Lua", function()
  local cmd = (H.wrap and (H.wrap .. " ") or "") .. bin
  local out, err, code = H.sh(cmd)
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
