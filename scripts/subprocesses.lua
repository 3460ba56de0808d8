-- subprocesses.lua: run several commands at once and gather their outputs,
-- each within a time limit: one that takes too long is killed, and one that
-- does not exist is an OSError raised at once.
local aloop = require "aloop"

local commands = {
  { "echo", "hello" },
  { "uname", "-s" },
  { "sh", "-c", "exit 3" },
  { "sleep", "10" },
  { "no-such-command-aloop" },
}

local function describe(cmd)
  local parts = {}
  for i, a in ipairs(cmd) do parts[i] = a:find(" ") and ("'" .. a .. "'") or a end
  return table.concat(parts, " ")
end

-- One command: its first line of output and exit status, or why not.
local function run(cmd)
  local args = { table.unpack(cmd) }
  args[#args + 1] = { stdout = "pipe" }
  local ok, p = pcall(aloop.subprocess.exec, table.unpack(args))
  if not ok then return tostring(p) end
  local got, out = pcall(aloop.wait_for, function() return p:communicate() end, 1)
  if not got then
    if type(out) == "table" and out.kind == "TimeoutError" then
      p:kill() -- cancelling communicate leaves the child running
      p.stdout:close()
      return "timed out (killed: " .. p:wait() .. ")"
    end
    error(out, 0)
  end
  return ("exit %d: %s"):format(p.returncode, (out:gsub("\n$", "")))
end

aloop.run(function()
  local t0 = aloop.time()
  local tasks = {}
  for i, cmd in ipairs(commands) do tasks[i] = aloop.create_task(run, cmd) end
  local results = aloop.gather(table.unpack(tasks))
  for i, cmd in ipairs(commands) do
    print(describe(cmd) .. ": " .. results[i])
  end
  print("done in under 2 s: " .. tostring(aloop.time() - t0 < 2))
end)
