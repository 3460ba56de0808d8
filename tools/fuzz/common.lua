-- tools/fuzz/common.lua -- what the fuzzer and the GC torture share: the
-- command line, how a child runs (the ASan+UBSan module under lua5.4, with
-- the sanitizer runtimes preloaded), how its stderr tells a crash, and the
-- allow-list of known findings (known.lua).

local C = {}

function C.parse_args(opt)
  local i = 1
  while arg and arg[i] do
    local a, v = arg[i], arg[i + 1]
    local key = a:match("^%-%-([%w%-]+)$")
    if not key then io.stderr:write(arg[0], ": unknown argument ", a, "\n") os.exit(2) end
    if v == nil then io.stderr:write(arg[0], ": ", a, " needs a value\n") os.exit(2) end
    opt[(key:gsub("%-", "_"))] = tonumber(v) or v
    i = i + 2
  end
  return opt
end

function C.shq(x) return "'" .. tostring(x):gsub("'", "'\\''") .. "'" end

local function sh_out(cmd)
  local p = io.popen(cmd)
  local r = p:read("a") or ""
  p:close()
  return (r:gsub("%s+$", ""))
end

C.LUA = os.getenv("FUZZ_LUA") or "lua5.4"
C.CPATH = os.getenv("FUZZ_CPATH") or "build/asan/?.so"
local preload = os.getenv("FUZZ_PRELOAD")
if not preload then
  local cc = os.getenv("CC") or "gcc"
  preload = sh_out(cc .. " -print-file-name=libasan.so") .. " " .. sh_out(cc .. " -print-file-name=libubsan.so")
end
C.ENV = "env LD_PRELOAD=" .. C.shq(preload) ..
  " ASAN_OPTIONS=" .. C.shq(os.getenv("FUZZ_ASAN_OPTIONS") or "detect_leaks=0:abort_on_error=1") ..
  " UBSAN_OPTIONS=" .. C.shq("halt_on_error=1:abort_on_error=1:print_stacktrace=1") ..
  " LUA_CPATH=" .. C.shq(C.CPATH .. ";;")

-- What a sanitizer, libev or a signal left in one line of stderr.
function C.scan_line(r, line)
  local san = line:match("^SUMMARY: (%w+Sanitizer: .*)$")
  if san then r.summary = r.summary or san end
  if line:match("ERROR: %w+Sanitizer") then r.sanitizer = r.sanitizer or line:match("ERROR: (.*)$") end
  local ub = line:match("runtime error: (.*)$")
  if ub then r.ubsan = r.ubsan or ((line:match("([%w_/]+%.c:%d+)") or "?") .. ": " .. ub) end
  local fn, file = line:match("^%s+#%d+ 0x%x+ in ([%w_]+) (.-):%d+")
  if fn and not r.frame and (file:match("bindings/") or file:match("core/")) then r.frame = fn end
  if line:match("^%(libev%)") then r.libev = r.libev or line end
end

function C.crash_detail(r)
  if r.timed_out then return "hang: no progress (process killed by timeout)" end
  if r.ubsan then return "ubsan: " .. r.ubsan end
  if r.summary then
    local kind = r.summary:match("^AddressSanitizer: ([%w%-]+)") or r.summary:match("^(%w+Sanitizer)")
    return "asan: " .. kind .. ((r.frame and kind ~= "stack-overflow") and (" in " .. r.frame) or "")
  end
  if r.libev then return "abort: " .. r.libev end
  if r.rc > 128 then return "signal " .. (r.rc - 128) .. (r.frame and (" in " .. r.frame) or "") end
  return "exit status " .. r.rc .. (r.driver and (": " .. r.driver) or "")
end

-- Runs cmd with stderr to errf; returns its status and the lines that
-- matter (the "@@" ones, and what scan_line found).
function C.run(cmd, errf)
  local _, how, code = os.execute(cmd .. " >/dev/null 2>" .. C.shq(errf))
  local r = { rc = how == "exit" and code or 128 + (code or 0), lines = {} }
  r.timed_out = r.rc == 124 or r.rc == 137
  for line in io.lines(errf) do
    if #line > 4000 then line = line:sub(1, 4000) end
    if line:match("^@@") then
      r.lines[#r.lines + 1] = line
      r.ended = r.ended or line:match("^@@END (.*)$")
      r.start = r.start or line:match("^@@START (.*)$")
      r.hang = r.hang or line:match("^@@HANG (.*)$")
    else
      C.scan_line(r, line)
    end
  end
  return r
end

function C.load_known(here)
  local ok, k = pcall(dofile, here .. "/known.lua")
  if not ok then io.stderr:write("cannot load known.lua: ", tostring(k), "\n") return {} end
  return k or {}
end

-- The first entry of known.lua whose fields (Lua patterns) all match.
function C.match_known(known, f)
  for _, k in ipairs(known) do
    local hit = true
    for _, field in ipairs({ "kind", "key", "form", "detail", "desc", "msg", "ctx" }) do
      if k[field] and not tostring(f[field] or ""):find(k[field]) then hit = false break end
    end
    if hit then return k end
  end
end

return C
