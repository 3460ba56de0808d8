-- 07-core_spec.lua -- runs the C tests and turns each of their TAP lines
-- into a test: the core from C without Lua (spec/c/test_core.c), the I/O
-- core on socket pairs (spec/c/test_io.c), and aloop
-- in several Lua states of one process (spec/c/test_states.c: one owner per
-- signal, states in two threads each on their own loop). Tagged #make_all:
-- they are programs `make all` builds and the rock does not.
local dir = os.getenv("ALOOP_HOSTS") or H.build
local tests = {
  { "the core, from C without Lua", os.getenv("ALOOP_TEST_CORE") or (dir .. "/test_core") },
  { "the I/O core, from C without Lua", dir .. "/test_io" },
  { "several Lua states in one process", dir .. "/test_states" },
}

for _, test in ipairs(tests) do
  describe(test[1] .. " #make_all", function()
    local out, err, code = H.sh(H.command(test[2]))
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
end
