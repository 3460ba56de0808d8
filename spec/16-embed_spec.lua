-- 16-embed_spec.lua -- the embedding API through the two example hosts
-- (bindings/examples): one drives aloop from its own poll() loop, one shares
-- its libev loop with aloop. Both keep doing periodic work ("redraws" every
-- 10 ms) while 1 000 aloop tasks sleep, gather and get cancelled; the work
-- must never stall for more than one period. Tagged #make_all: the hosts
-- are built by `make all`, not by the rock.
local dir = os.getenv("ALOOP_HOSTS") or H.build

local function host(name, args)
  return H.sh(H.command(dir .. "/" .. name, args))
end

local function stats(out)
  local s = {}
  for k, v in out:gmatch("([%w_]+)=([%d%.]+)") do s[k] = tonumber(v) end
  return s
end

for _, name in ipairs({ "host_poll", "host_libev" }) do
  describe(name .. " #make_all", function()
    it("runs 1 000 tasks while its own ticks keep their period", function()
      local out, err, code = host(name, { "spec/fixtures/embed_work.lua", "10" })
      assert.equal("", err)
      assert.equal(0, code)
      local s = stats(out)
      assert.is_true(s.rounds >= 1, out)
      assert.equal(0, s.errors)
      assert.equal(0, s.unfinished)
      -- ticks kept coming: one per period over the whole run, give or take
      assert.is_true(s.ticks >= math.floor(s.elapsed / 0.010) - 2, out)
      -- and none waited for the whole work: a late tick is bounded by a few
      -- periods (one period flaked when the shared machine preempted the host)
      if not H.wrap then -- valgrind slows everything, not the point here
        assert.is_true(s.worst_late_ms <= 3 * s.period_ms,
          "a tick was late by more than three periods: " .. out)
      end
    end)

    it("hears a failing task through its error handler and exits 1", function()
      local out, err, code = host(name, { "spec/fixtures/embed_fail.lua" })
      assert.equal(1, code)
      assert.matches("host: Task failed: script failed", err, 1, true)
      assert.matches("embed_fail.lua:4", err, 1, true)
      assert.matches("errors=1", out, 1, true)
    end)

    it("shuts down cleanly: leftover tasks are cancelled and their cleanup runs", function()
      local out, err, code = host(name, { "spec/fixtures/embed_leftover.lua" })
      assert.equal("", err)
      assert.equal(0, code)
      assert.matches("script done\n", out, 1, true)
      assert.matches("cleanup ran\n", out, 1, true)
      assert.matches("unfinished=0", out, 1, true)
      if not H.wrap then -- shutdown returns once cleanup is done, not at its timeout
        assert.is_true(stats(out).elapsed < 0.5, out)
      end
    end)
  end)
end
