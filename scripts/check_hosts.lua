-- check_hosts.lua: which of these hosts answer? Connects to every
-- host:port at once, each with its own time limit, and prints one line per
-- host in the order given, then how many answered.
--   aloop scripts/check_hosts.lua [-t seconds] host:port ...   ([::1]:80 for IPv6)
local aloop = require "aloop"

local timeout, targets = 1.0, {}
local i = 1
while i <= #arg do
  if arg[i] == "-t" then
    timeout = assert(tonumber(arg[i + 1]), "-t needs a number of seconds")
    i = i + 2
  else
    targets[#targets + 1] = arg[i]
    i = i + 1
  end
end
if #targets == 0 then
  io.stderr:write("usage: aloop check_hosts.lua [-t seconds] host:port ...\n")
  os.exit(2)
end

local function split(target)
  local host, port = target:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = target:match("^(.+):(%d+)$") end
  return host, math.tointeger(tonumber(port))
end

local function check(target)
  local host, port = split(target)
  if not host then return "bad target (host:port expected)" end
  local t0 = aloop.time()
  local ok, err = pcall(aloop.wait_for, function()
    local _s <close> = aloop.open_connection(host, port)
  end, timeout)
  if ok then
    return ("open (%.1f ms)"):format((aloop.time() - t0) * 1000), true
  elseif aloop.is_timeout(err) then
    return ("no answer within %g s"):format(timeout)
  else
    return "closed (" .. tostring(err) .. ")"
  end
end

local tasks = {}
for k, target in ipairs(targets) do tasks[k] = aloop.create_task(check, target) end
local answered = 0
for k, target in ipairs(targets) do
  local line, up = tasks[k]:await()
  if up then answered = answered + 1 end
  print(("%-28s %s"):format(target, line))
end
print(("%d of %d answered"):format(answered, #targets))
