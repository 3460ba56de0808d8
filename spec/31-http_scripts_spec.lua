-- 31-http_scripts_spec.lua -- the HTTP scripts run by the aloop command (and
-- by lua5.4 with the module) against the spec's nginx: 04_fetch_urls and
-- 07_semaphore_fetch print the tutorials' lines, 07 with at most three
-- requests in flight as nginx's access log shows; download.lua saves a file
-- byte for byte.
local X = dofile("spec/http_helper.lua")

local srv

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("HTTP scripts", function()
  lazy_setup(function() srv = X.start() end)
  lazy_teardown(function() if srv then srv:stop() end end)

  for _, mode in ipairs(H.script_modes) do
    it("04_fetch_urls fetches the pages at once under " .. mode.name, function()
      local urls = { srv:url("/delay"), srv:url("/static/small.txt"), srv:url("/json") }
      local out, err, code = H.sh(mode.command({ "scripts/04_fetch_urls.lua", table.unpack(urls) }), nil, 30)
      assert.equal("", err)
      assert.equal(0, code)
      local got = lines(out)
      assert.equal(7, #got)
      -- all three start before any completes: they run at once
      for i = 1, 3 do assert.equal("Starting fetch: " .. urls[i], got[i]) end
      local done = {}
      for i = 4, 6 do done[#done + 1] = got[i] end
      table.sort(done)
      local want = {}
      for i = 1, 3 do want[i] = "Completed fetch: " .. urls[i] end
      table.sort(want)
      assert.same(want, done)
      assert.equal("Fetched 3 pages", got[7])
    end)

    it("07_semaphore_fetch keeps at most three requests in flight under " .. mode.name, function()
      srv:clear_log()
      local urls = {}
      for i = 1, 7 do urls[i] = srv:url("/delay") .. "?page=" .. i end
      local out, err, code = H.sh(mode.command({ "scripts/07_semaphore_fetch.lua", table.unpack(urls) }), nil, 30)
      assert.equal("", err)
      assert.equal(0, code)
      local want = {}
      for i = 1, 7 do want[i] = "Fetching " .. urls[i] end
      want[8] = "Fetched 7 pages"
      assert.same(want, lines(out))
      os.execute("sleep 0.1")
      local log = srv:log("/delay")
      assert.equal(7, #log)
      assert.equal(3, X.max_in_flight(log))
    end)
  end

  it("download.lua streams a file to disk", function()
    local dir = srv.prefix .. "/dl"
    os.execute("mkdir -p " .. dir)
    local out, err, code = H.aloop({ "scripts/download.lua", srv:url("/static/4mb.bin"), dir .. "/got.bin" })
    assert.equal("", err) -- not a terminal: no progress bar
    assert.equal(0, code)
    assert.matches("^Saved " .. dir:gsub("%p", "%%%0") .. "/got.bin %(4194304 bytes%)", out)
    assert.is_true(os.execute(("cmp -s %s/got.bin %s/static/4mb.bin"):format(dir, srv.www)))
    local _, err2, code2 = H.aloop({ "scripts/download.lua", srv:url("/missing"), dir .. "/x" })
    assert.equal(1, code2)
    assert.matches("HTTPStatusError: 404 Not Found", err2)
  end)
end)
