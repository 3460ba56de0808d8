-- helper.lua -- loaded by busted before the specs: finds the build under test
-- (ALOOP_CPATH, ALOOP_BIN), runs test bodies as tasks under a watchdog and
-- fails them if anything was left alive or reported, runs commands under a
-- time limit for the CLI specs, and holds the runner of the script specs.
-- The build under test: ALOOP_CPATH, ALOOP_BIN (and for 07 and 16
-- ALOOP_TEST_CORE, ALOOP_HOSTS), else the files in one build folder:
-- build/, or the one named by `busted -Xhelper build=DIR` (the rockspec's
-- `luarocks test` names build/rock).
local build = "build"
for _, a in ipairs(arg or {}) do build = a:match("^build=(.+)$") or build end
local cpath = os.getenv("ALOOP_CPATH") or ("./" .. build .. "/?.so")
package.cpath = cpath .. ";" .. package.cpath

local aloop = require "aloop"
local H = {}
_G.H = H

H.build = build
H.bin = os.getenv("ALOOP_BIN") or (build .. "/aloop")
H.wrap = os.getenv("ALOOP_WRAP") -- e.g. valgrind, for every command run
-- ASAN_OPTIONS for the programs that run aloop (the command, lua5.4 with the
-- module, the C tests and hosts): `make asan` turns leak detection on for
-- them, as they close their Lua state, while the busted process keeps it off.
H.asan_options = os.getenv("ALOOP_ASAN_OPTIONS")
H.cpath = cpath

-- What the loop reported, as one line each: message and error.
local function describe_reports(reports)
  local lines = {}
  for i, r in ipairs(reports) do
    lines[i] = ("  %s: %s"):format(r.message, tostring(r.traceback or r.exception))
  end
  return table.concat(lines, "\n")
end

-- The handler H.async installed for the body running now (nil outside).
local harness_handler

-- A test body run as the main task of aloop.run, failing after `limit`
-- seconds; afterwards no task may be pending, nothing anchored, and nothing
-- reported through the loop's exception handler (an error in a task nobody
-- awaited, in a callback or done callback): such an error would otherwise
-- only be printed while the test passed.
--   H.async(fn)  H.async(fn, limit)  H.async(fn, { limit = 10, expect_reports = true })
-- A body that means to leave reports says so with expect_reports (true: any
-- number of them; a number: exactly that many), or collects them itself
-- with H.reports_of.
function H.async(fn, opts)
  if type(opts) ~= "table" then opts = { limit = opts } end
  local limit, expect = opts.limit or 10, opts.expect_reports
  return function()
    local reports, loop = {}, nil
    local function handler(ctx) reports[#reports + 1] = ctx end
    local ok, err = pcall(aloop.run, function()
      loop = aloop.get_running_loop()
      loop:set_exception_handler(handler)
      harness_handler = handler
      return aloop.wait_for(fn, limit)
    end)
    harness_handler = nil
    collectgarbage() -- what the body dropped is reported now, to this test
    if loop then loop:set_exception_handler(nil) end
    local st = aloop._stats()
    if ok then
      assert(st.tasks == 0, "tasks left pending after the test: " .. st.tasks)
      assert(st.ready == 0, "handles left in the ready queue: " .. st.ready)
      assert(st.anchored == 0, "objects left anchored after the test: " .. st.anchored)
    end
    local unexpected = #reports > 0 and not expect
      or type(expect) == "number" and #reports ~= expect
    if unexpected then
      local what = ("the loop reported %d error(s)%s:\n%s"):format(#reports,
        type(expect) == "number" and (", expected " .. expect) or "",
        describe_reports(reports))
      error(ok and what or (tostring(err) .. "\nand " .. what), 0)
    end
    if not ok then error(err, 0) end
  end
end

-- Run fn(...) with an exception handler that collects what the loop reports
-- (a full GC runs before it is removed); then put back the handler that was
-- there (H.async's inside a test body). Returns the reports, a list of
-- contexts { message, exception, traceback }. fn may call aloop.run itself.
function H.reports_of(fn, ...)
  local loop = aloop.get_event_loop()
  local reports = {}
  loop:set_exception_handler(function(ctx) reports[#reports + 1] = ctx end)
  local ok, err = pcall(fn, ...)
  collectgarbage(); collectgarbage()
  loop:set_exception_handler(harness_handler)
  if not ok then error(err, 0) end
  return reports
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

-- The lines of s, without the final newline's empty line.
function H.split_lines(s)
  local lines = {}
  for line in (s .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  if lines[#lines] == "" then lines[#lines] = nil end -- the final newline
  return lines
end

---------------------------------------------------------------------------
-- commands

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = shell_quote

-- Seconds a command may run before H.sh stops it (TERM, then KILL
-- H.KILL_AFTER seconds later if it is still there).
H.TIMEOUT = 60
H.KILL_AFTER = 3

local function slurp(p)
  local f = assert(io.open(p)); local s = f:read("a"); f:close(); os.remove(p); return s
end

-- Run a shell command line under coreutils timeout (default H.TIMEOUT s);
-- returns stdout, stderr, exit status, seconds. A command that ran out of
-- time (with what it started, its process group) is stopped: its status is
-- 124 (it ended on TERM) or 137 (on KILL), and a line saying so ends stderr.
function H.sh(cmdline, input, timeout)
  timeout = timeout or H.TIMEOUT
  local out, errf = os.tmpname(), os.tmpname()
  local infile
  if input then
    infile = os.tmpname()
    local f = assert(io.open(infile, "w")); f:write(input); f:close()
  end
  local t0 = aloop.time()
  local full = string.format("timeout -k %g %g sh -c %s >%s 2>%s <%s",
    H.KILL_AFTER, timeout, shell_quote(cmdline), out, errf, infile or "/dev/null")
  local _, _, code = os.execute(full)
  local elapsed = aloop.time() - t0
  if infile then os.remove(infile) end
  local stdout, stderr = slurp(out), slurp(errf)
  if (code == 124 or code == 137) and elapsed >= timeout then
    stderr = stderr .. ("\nH.sh: timed out after %g s (killed by %s, status %d): %s\n")
      :format(timeout, code == 124 and "TERM" or "KILL", code, cmdline)
  end
  return stdout, stderr, code, elapsed
end

-- The command line that runs prog with args (strings, quoted here) and the
-- environment variables env (name = value), under ALOOP_WRAP and with
-- ALOOP_ASAN_OPTIONS. It starts with a program name (env or the wrapper),
-- so it can follow another command such as stdbuf.
function H.command(prog, args, env)
  local parts, vars = {}, {}
  if H.asan_options then vars[#vars + 1] = "ASAN_OPTIONS=" .. shell_quote(H.asan_options) end
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. shell_quote(v) end
  if #vars > 0 then parts[1] = "env " .. table.concat(vars, " ") end
  if H.wrap then parts[#parts + 1] = H.wrap end
  parts[#parts + 1] = shell_quote(prog)
  for _, a in ipairs(args or {}) do parts[#parts + 1] = shell_quote(a) end
  return table.concat(parts, " ")
end

-- The command lines of the aloop command and of lua5.4 with the module
-- under test, with arguments.
function H.aloop_command(args) return H.command(H.bin, args) end
function H.lua_command(args)
  return H.command("lua5.4", args, { LUA_CPATH = cpath .. ";;" })
end

-- Run the aloop command with arguments; returns as H.sh.
function H.aloop(args, input, timeout)
  return H.sh(H.aloop_command(args), input, timeout)
end

-- Run a Lua file (or -e code) with lua5.4 and the module under test.
function H.lua(args, input, timeout)
  return H.sh(H.lua_command(args), input, timeout)
end

---------------------------------------------------------------------------
-- script specs (10-tutorials, 13-sync_scripts)

-- The two ways a script is run: by the aloop command, and by plain lua5.4
-- with `require "aloop"` finding the module under test.
H.script_modes = {
  { name = "aloop", command = H.aloop_command },
  { name = "lua5.4", command = H.lua_command },
}

-- Under a wrapper (ALOOP_WRAP=valgrind ...) a script starts and ends slower:
-- its total time gets this much more room.
H.script_slack = H.wrap and 2.0 or 0

-- Expected lines with pattern entries ({ pattern =, text = }) replaced by
-- the line they matched (or by their sample text when nothing matched), to
-- compare as tables.
local function expected_lines(case, got)
  local exp = {}
  for i, line in ipairs(case.lines) do
    if type(line) == "table" then
      exp[i] = (got[i] and got[i]:match(line.pattern)) and got[i] or line.text
    else
      exp[i] = line
    end
  end
  return exp
end

-- Each script is run once per mode; the tests read the cached result
-- { out, lines, err, code, elapsed }.
local script_cache = {}
function H.script_result(mode, script)
  local key = mode.name .. " " .. script
  if not script_cache[key] then
    local out, err, code, elapsed = H.sh(mode.command({ script }), nil, 30)
    script_cache[key] = { out = out, lines = H.split_lines(out), err = err,
                          code = code, elapsed = elapsed }
  end
  return script_cache[key]
end

-- Specs for scripts that print known lines: for each mode, and each case
-- { script =, lines =, time = { lo, hi }, timing = "what the time shows" },
-- the script prints those lines and exits 0, writes nothing to stderr, and
-- takes lo <= t < hi seconds (hi + H.script_slack). more(mode), if given,
-- adds tests to each mode's block.
function H.script_specs(title, cases, more)
  local busted = require "busted"
  local describe, it, assert = busted.describe, busted.it, busted.assert
  describe(title, function()
    for _, mode in ipairs(H.script_modes) do
      describe("under " .. mode.name, function()
        for _, case in ipairs(cases) do
          local name = case.script:match("([^/]+)%.lua$")

          it(("%s prints the expected lines and exits 0 under %s"):format(name, mode.name), function()
            local r = H.script_result(mode, case.script)
            assert.are.same(expected_lines(case, r.lines), r.lines,
                            "stdout of " .. name .. ", stderr:\n" .. r.err)
            assert.are.equal(0, r.code, "exit status; stderr:\n" .. r.err)
          end)

          it(("%s writes nothing to stderr under %s"):format(name, mode.name), function()
            local r = H.script_result(mode, case.script)
            assert.are.equal("", r.err)
          end)

          it(("%s %s under %s"):format(name, case.timing, mode.name), function()
            local r = H.script_result(mode, case.script)
            assert.are.equal(0, r.code, "exit status; stderr:\n" .. r.err)
            local lo, hi = case.time[1], case.time[2] + H.script_slack
            assert.is_true(r.elapsed >= lo and r.elapsed < hi,
              ("%s took %.3f s, expected %.2f <= t < %.2f"):format(name, r.elapsed, lo, hi))
          end)
        end
        if more then more(mode) end
      end)
    end
  end)
end

return H
