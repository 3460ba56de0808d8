-- helper.lua -- loaded by busted before the specs: finds the build under test
-- (ALOOP_CPATH, ALOOP_BIN), runs test bodies as tasks under a watchdog and
-- checks that nothing was left alive, and runs the command for CLI specs.
local cpath = os.getenv("ALOOP_CPATH") or "./build/?.so"
package.cpath = cpath .. ";" .. package.cpath

local aloop = require "aloop"
local H = {}
_G.H = H

H.bin = os.getenv("ALOOP_BIN") or "build/aloop"
H.wrap = os.getenv("ALOOP_WRAP") -- e.g. valgrind, for every command run
H.cpath = cpath

-- A test body run as the main task of aloop.run, failing after `limit`
-- seconds; afterwards no task may be pending and nothing anchored.
function H.async(fn, limit)
  return function()
    local ok, err = pcall(aloop.run, function()
      return aloop.wait_for(fn, limit or 10)
    end)
    collectgarbage()
    local st = aloop._stats()
    if ok then
      assert(st.tasks == 0, "tasks left pending after the test: " .. st.tasks)
      assert(st.ready == 0, "handles left in the ready queue: " .. st.ready)
      assert(st.anchored == 0, "objects left anchored after the test: " .. st.anchored)
    end
    if not ok then error(err, 0) end
  end
end

-- Shared by the specs: let the other tasks run for a few loop turns.
function H.settle(n)
  for _ = 1, n or 5 do aloop.sleep(0) end
end

-- Await t; true if it ended cancelled (its await raised the cancellation).
function H.ended_cancelled(t)
  local ok, err = pcall(t.await, t)
  return not ok and aloop.is_cancelled(err) and t:cancelled()
end

-- The error fn(...) raises; fails if it raises none.
function H.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return err
end

-- A function that sleeps d seconds and returns the values given.
function H.after(d, ...)
  local vals = table.pack(...)
  return function()
    aloop.sleep(d)
    return table.unpack(vals, 1, vals.n)
  end
end

-- A function that sleeps d seconds and raises e (unchanged).
function H.fail_after(d, e)
  return function()
    aloop.sleep(d)
    error(e, 0)
  end
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = shell_quote

-- Run a shell command line; returns stdout, stderr, exit status, seconds.
function H.sh(cmdline, input)
  local out, errf = os.tmpname(), os.tmpname()
  local infile
  if input then
    infile = os.tmpname()
    local f = assert(io.open(infile, "w")); f:write(input); f:close()
  end
  local t0 = aloop.time()
  local full = string.format("(%s) >%s 2>%s <%s", cmdline, out, errf,
    infile or "/dev/null")
  local _, _, code = os.execute(full)
  local elapsed = aloop.time() - t0
  local function slurp(p)
    local f = assert(io.open(p)); local s = f:read("a"); f:close(); os.remove(p); return s
  end
  if infile then os.remove(infile) end
  return slurp(out), slurp(errf), code, elapsed
end

-- Run the aloop command with arguments (strings, quoted here).
function H.aloop(args, input)
  local parts = {}
  if H.wrap then parts[#parts + 1] = H.wrap end
  parts[#parts + 1] = H.bin
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  return H.sh(table.concat(parts, " "), input)
end

-- Run a Lua file (or -e code) with lua5.4 and the module under test.
function H.lua(args, input)
  local parts = { "LUA_CPATH=" .. shell_quote(cpath .. ";;") }
  if H.wrap then parts[#parts + 1] = H.wrap end
  parts[#parts + 1] = "lua5.4"
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  return H.sh(table.concat(parts, " "), input)
end

return H
