-- tools/fuzz/fuzz.lua -- aloop's API fuzzer (`make fuzz`). It finds every
-- function by walking the module table and the objects its constructors
-- return (so a new function is fuzzed without editing this file), calls
-- each with wrong and extreme arguments (values.lua), in the '.' and ':'
-- forms, from six contexts, and fails on a crash, a sanitizer report, a
-- hang, or an error message that points into aloop (aloop/*.lua, bindings/,
-- *.c) or names another function than the one called.
--
-- Contexts: task (each call in a task of its own, cancelled if it waits),
-- callback (loop:call_soon), done_callback, finaliser (the __gc of garbage,
-- run by collectgarbage inside a task), toplevel (no loop running), close
-- (finalisers that run at lua_close, after aloop's own loop was finalised).
--
-- Call n is a pure function of (seed, n): first every target with every
-- single value in both forms, in a seeded order, then random argument lists.
-- The parent (this file without --child) runs them in child processes (the
-- ASan+UBSan module under lua5.4, preloaded runtimes), a time slice at a
-- time, each under `timeout`. A child prints "@@C <n>" to stderr before
-- call n, so the last such line before a crash or hang names the call; the
-- parent re-runs that call alone to confirm it (or bisects for the earlier
-- call it needs), writes a reproducer, skips the target from then on, and
-- goes on. Findings listed in known.lua are counted but do not fail the run.
--
--   lua5.4 tools/fuzz/fuzz.lua [--seed N] [--seconds S] [--max-calls N]
--                              [--contexts task,callback,...] [--out DIR]
--   lua5.4 tools/fuzz/fuzz.lua --child CONTEXT --list 1     (the targets)
--   lua5.4 tools/fuzz/fuzz.lua --child CONTEXT --repro N    (call N as a script)
-- Environment: FUZZ_SEED, FUZZ_SECONDS, FUZZ_MAX_CALLS, FUZZ_CONTEXTS,
-- FUZZ_OUT (build/fuzz), FUZZ_CPATH (the module under test, build/asan/?.so),
-- FUZZ_PRELOAD (the sanitizer runtimes), FUZZ_LUA (lua5.4), FUZZ_ASAN_OPTIONS,
-- FUZZ_VERBOSE (show the bisection).

local HERE = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local V = dofile(HERE .. "/values.lua")
local C = dofile(HERE .. "/common.lua")

local CONTEXTS = { "task", "callback", "done_callback", "finaliser", "toplevel", "close" }
local EPOCH = 64        -- calls between two fresh pools of objects
local CALL_LIMIT = 2    -- seconds a cancelled call may take to end
local CLOSE_BATCH = 200 -- calls per process in the close context
local HANG_LIMIT = 10   -- seconds past its time slice before a child is killed

------------------------------------------------------------------------------
-- Options

local opt = {
  seed = tonumber(os.getenv("FUZZ_SEED")) or 1,
  seconds = tonumber(os.getenv("FUZZ_SECONDS")) or 120,
  max_calls = tonumber(os.getenv("FUZZ_MAX_CALLS")) or 200000,
  contexts = os.getenv("FUZZ_CONTEXTS") or table.concat(CONTEXTS, ","),
  out = os.getenv("FUZZ_OUT") or "build/fuzz",
  slice = 8,
}
C.parse_args(opt)

------------------------------------------------------------------------------
-- Child: discovery of the targets

local aloop, loop, ERRMT, now

local function eval(src, env, what)
  local f, err = load("return " .. src, "=" .. (what or "fuzzval"), "t", env)
  if not f then error("fuzz: cannot compile " .. src .. ": " .. err) end
  return f()
end

local function sorted_keys(t, filter)
  local ks = {}
  for k, v in pairs(t) do
    if type(k) == "string" and (not filter or filter(k, v)) then ks[#ks + 1] = k end
  end
  table.sort(ks)
  return ks
end

-- Lets a task started by the caller run a few turns; cancels it if it is
-- still waiting then. Returns its results when it ended by itself.
local function run_bounded(fn)
  local t = aloop.create_task(fn)
  for _ = 1, 3 do
    if t:done() then break end
    pcall(aloop.sleep, 0)
  end
  if not t:done() then
    t:cancel("fuzz: probe took too long")
    for _ = 1, 20 do
      if t:done() then break end
      pcall(aloop.sleep, 0)
    end
  end
  return t
end

-- Walk the module: classes are keyed by metatable; each has a recipe (the
-- source of an expression that makes one) and its methods.
local classes, targets = {}, {}

local function is_aloop_object(x)
  local ty = type(x)
  if ty ~= "table" and ty ~= "userdata" then return nil end
  local mt = debug.getmetatable(x)
  if type(mt) ~= "table" or x == aloop then return nil end
  local name = rawget(mt, "__name")
  if type(name) == "string" and name:match("^aloop%.") then return mt end
  return nil
end

local function discover(env)
  local by_mt, order, names = {}, {}, {}
  local function consider(x, recipe, depth)
    local mt = is_aloop_object(x)
    if not mt or by_mt[mt] then return end
    local name = rawget(mt, "__name"):gsub("^aloop%.", "")
    if names[name] then
      local k = 2
      while names[name .. "#" .. k] do k = k + 1 end
      name = name .. "#" .. k
    end
    names[name] = true
    local c = { name = name, mt = mt, recipe = recipe, depth = depth, sample = x, variants = {} }
    by_mt[mt] = c
    order[#order + 1] = c
  end
  local probes = {}
  for i, p in ipairs(V.PROBES) do probes[i] = { src = table.concat(p, ", "), n = #p } end
  local function probe(call_src, depth)
    for _, p in ipairs(probes) do
      local src = call_src .. "(" .. p.src .. ")"
      local out = {}
      run_bounded(function()
        local f = load("return " .. src, "=probe", "t", env)
        out = table.pack(pcall(f))
      end)
      if out[1] then
        for k = 2, out.n do consider(out[k], src, depth) end
      end
    end
  end
  for _, k in ipairs(sorted_keys(aloop, function(_, v) return type(v) == "function" end)) do
    probe("aloop." .. k, 1)
  end
  -- The methods of what was found, on a fresh object each time, and the
  -- objects a table object holds in its fields.
  local i = 1
  while order[i] do
    local c = order[i]
    if type(c.sample) == "table" then
      for _, k in ipairs(sorted_keys(c.sample)) do
        consider(rawget(c.sample, k), "(" .. c.recipe .. ")." .. k, c.depth + 1)
      end
    end
    c.sample = nil
    if c.depth < 3 then
      local idx = rawget(c.mt, "__index")
      if type(idx) == "table" then
        for _, m in ipairs(sorted_keys(idx, function(k, v) return type(v) == "function" and not k:match("^__") end)) do
          probe("(" .. c.recipe .. "):" .. m, c.depth + 1)
        end
      end
    end
    i = i + 1
  end
  -- Variants: what the constructors make from extreme arguments.
  for _, k in ipairs(sorted_keys(aloop, function(_, v) return type(v) == "function" end)) do
    for _, p in ipairs(V.EXTREME_PROBES) do
      local src = "aloop." .. k .. "(" .. table.concat(p, ", ") .. ")"
      local out = {}
      run_bounded(function() out = table.pack(pcall(load("return " .. src, "=probe", "t", env))) end)
      local c = out[1] and is_aloop_object(out[2]) and by_mt[is_aloop_object(out[2])]
      -- Only when it differs from the plain one (as tostring shows it).
      if c and c.recipe:match("^aloop%.([%w_]+)%(") == k and #c.variants < 4 then
        local plain = {}
        run_bounded(function() plain = table.pack(pcall(load("return " .. c.recipe, "=probe", "t", env))) end)
        local function show(x) local ok, t = pcall(tostring, x) return ok and t:gsub("0x%x+", "") end
        if plain[1] and (show(plain[2]) ~= show(out[2]) or not rawget(c.mt, "__tostring")) then
          c.variants[#c.variants + 1] = src
        end
      end
    end
  end
  pcall(loop.set_exception_handler, loop, nil)
  pcall(aloop.set_debug, false)
  table.sort(order, function(a, b) return a.name < b.name end)
  return order
end

-- The targets: module functions, then each class's methods (from __index
-- and, for table objects, own fields) and metamethods (as getmetatable
-- gives them to any user).
local function build_targets(env)
  for _, k in ipairs(sorted_keys(aloop, function(_, v) return type(v) == "function" end)) do
    targets[#targets + 1] = { key = "aloop." .. k, kind = "fn", name = k }
  end
  for _, c in ipairs(classes) do
    local seen = {}
    local sample = run_bounded(function() return eval(c.recipe, env) end)
    local obj = sample:done() and not sample:cancelled() and sample:exception() == nil and sample:result()
    local function add(name, kind)
      if seen[name] then return end
      seen[name] = true
      targets[#targets + 1] = { key = c.name .. "." .. name, kind = kind, name = name, cls = c }
    end
    local idx = rawget(c.mt, "__index")
    local ms = {}
    if type(idx) == "table" then
      for _, k in ipairs(sorted_keys(idx, function(_, v) return type(v) == "function" end)) do ms[#ms + 1] = k end
    end
    if type(obj) == "table" then
      for _, k in ipairs(sorted_keys(obj, function(_, v) return type(v) == "function" end)) do ms[#ms + 1] = k end
    end
    table.sort(ms)
    for _, k in ipairs(ms) do
      if not k:match("^__") then add(k, "method") end
    end
    local umt = obj and getmetatable(obj)
    if type(umt) == "table" then
      for _, k in ipairs(sorted_keys(umt, function(k, v) return k:match("^__") and type(v) == "function" end)) do
        add(k, "meta")
      end
    end
  end
end

------------------------------------------------------------------------------
-- Child: the calls. Call i is a pure function of (seed, i): first every
-- target with every single value in both forms, in a seeded random order,
-- then random argument lists.

local values = {}   -- { name, src, dynamic, cls }
local value_by_name = {}
local plausible = {}
local nsys, perm

local FORMS = { fn = { "dot", "colon" }, method = { "colon", "dot" }, meta = { "self", "bare" } }

local function build_values()
  for _, v in ipairs(V.VALUES) do values[#values + 1] = { name = v[1], src = v[2] } end
  for _, v in ipairs(V.DYNAMIC) do values[#values + 1] = { name = v[1], src = v[2], dynamic = true } end
  for _, c in ipairs(classes) do
    values[#values + 1] = { name = "a " .. c.name, src = c.recipe, cls = c }
    c.value = #values
  end
  for _, c in ipairs(classes) do
    c.variant_values = {}
    for _, src in ipairs(c.variants) do
      values[#values + 1] = { name = src, src = src, cls = c }
      c.variant_values[#c.variant_values + 1] = #values
    end
  end
  for i, v in ipairs(values) do value_by_name[v.name] = i end
  for _, n in ipairs(V.PLAUSIBLE) do plausible[#plausible + 1] = assert(value_by_name[n], n) end
  plausible[#plausible + 1] = value_by_name.self
  nsys = #targets * 2 * (#values + 1)
  -- Fisher-Yates with the seed: the order of the systematic calls.
  math.randomseed(opt.seed)
  perm = {}
  for i = 1, nsys do perm[i] = i end
  for i = nsys, 2, -1 do
    local j = math.random(i)
    perm[i], perm[j] = perm[j], perm[i]
  end
end

local function call_spec(i)
  if i <= nsys then
    local k = perm[i] - 1
    local per_target = 2 * (#values + 1)
    local t = targets[k // per_target + 1]
    k = k % per_target
    local form = FORMS[t.kind][k // (#values + 1) + 1]
    local a = k % (#values + 1)
    return { t = t, form = form, args = a == 0 and {} or { a } }
  end
  math.randomseed(opt.seed, i)
  local t = targets[math.random(#targets)]
  local form = FORMS[t.kind][math.random(2)]
  local recv
  if t.cls and #t.cls.variant_values > 0 and math.random(2) == 1 then
    recv = t.cls.variant_values[math.random(#t.cls.variant_values)]
  end
  local r = math.random(100)
  local nargs = r <= 10 and 0 or r <= 40 and 1 or r <= 75 and 2 or r <= 92 and 3 or 4
  local args = {}
  for k = 1, nargs do
    if math.random(2) == 1 then args[k] = plausible[math.random(#plausible)]
    else args[k] = math.random(#values) end
  end
  return { t = t, form = form, args = args, recv = recv }
end

local function call_source(t, form, nargs, names)
  local as = {}
  for k = 1, nargs do as[k] = names and names[k] or ("a" .. k) end
  local recv = names and names.recv or "o"
  local list = table.concat(as, ", ")
  if t.kind == "fn" then
    return (form == "dot" and "aloop." or "aloop:") .. t.name .. "(" .. list .. ")"
  elseif t.kind == "method" then
    return recv .. (form == "colon" and ":" or ".") .. t.name .. "(" .. list .. ")"
  else
    local first = form == "self" and (nargs > 0 and recv .. ", " or recv) or ""
    return "getmetatable(" .. recv .. ")." .. t.name .. "(" .. first .. list .. ")"
  end
end

local function describe(spec)
  local names = { recv = spec.recv and values[spec.recv].src or spec.t.cls and spec.t.cls.name or "aloop" }
  for k, a in ipairs(spec.args) do names[k] = "<" .. values[a].name .. ">" end
  return call_source(spec.t, spec.form, #spec.args, names)
end

local chunks = {}
local function call_chunk(t, form, nargs)
  local key = t.key .. "\0" .. form .. "\0" .. nargs
  local f = chunks[key]
  if not f then
    local ps = { "o" }
    for k = 1, nargs do ps[#ps + 1] = "a" .. k end
    local src = "local aloop, " .. table.concat(ps, ", ") .. " = ...\nreturn " .. call_source(t, form, nargs)
    f = assert(load(src, "=user.lua", "t", _ENV))
    chunks[key] = f
  end
  return f
end

------------------------------------------------------------------------------
-- Child: the pool of argument values, rebuilt every EPOCH calls.

local env, P
local pool_inst = {}

local function make_env()
  P = {}
  local e = setmetatable({ aloop = aloop, P = P }, { __index = _G })
  assert(load(V.PRELUDE, "=fuzzval", "t", e))()
  return e
end

-- Must run in a task (the objects that need one, Timeout and TaskGroup,
-- belong to it).
local function build_pool()
  pcall(loop.set_exception_handler, loop, nil)
  pcall(aloop.set_debug, false)
  P.task = aloop.create_task(function()
    P.task_co = coroutine.running()
    pcall(aloop.sleep, 5)
  end)
  pcall(aloop.sleep, 0)
  for i, v in ipairs(values) do
    if not v.dynamic then
      local ok, x = pcall(eval, v.src, env)
      pool_inst[i] = ok and x or nil
    end
  end
end

local function resolve(a, recv)
  local v = values[a]
  if v.dynamic then
    if v.src == nil then return recv end
    return eval(v.src, env)
  end
  return pool_inst[a]
end

------------------------------------------------------------------------------
-- Child: one call, and the checks on the error it raised.

local ctx_name
local ncalls = 0
local skip = {}

local function oneline(s, n)
  s = tostring(s):gsub("[\r\n\t]", " ")
  if #s > (n or 300) then s = s:sub(1, n or 300) .. "..." end
  return s
end

local reported = {}
local repro
local function finding(kind, spec, i, detail, msg)
  local sig = kind .. "|" .. spec.t.key .. "|" .. spec.form .. "|" .. detail
  local path = reported[sig]
  if not path then
    path = opt.out .. "/repro/" .. ctx_name .. "-" .. i .. ".lua"
    local f = io.open(path, "w")
    if f then f:write(repro({ i })) f:close() else path = "-" end
    reported[sig] = path
  end
  io.stderr:write("@@F ", kind, "\t", spec.t.key, "\t", spec.form, "\t", detail, "\t", i, "\t",
    oneline(describe(spec), 200), "\t", oneline(msg or ""), "\t", path, "\n")
end

local function error_text(e)
  if type(e) == "string" then return e end
  if type(e) == "table" and getmetatable(e) == ERRMT then
    local m = rawget(e, "message")
    return tostring(rawget(e, "kind")) .. (m ~= nil and (": " .. tostring(m)) or "")
  end
  return nil
end

local ALIASES = { spawn = "create_task", create_task = "spawn", name = "get_name", get_name = "name" }

local function check_error(spec, i, e, args)
  local s = error_text(e)
  if s and #s > 2000 then s = s:sub(1, 2000) end -- the patterns below are not linear
  if not s or s:find("fuzz arg:", 1, true) or s:find("fuzzval:", 1, true) then return end
  local file = s:match("(aloop/[%w_]+%.lua):") or s:match("(bindings/[%w_/]+%.%a+)")
    or s:match("([%w_/]+%.c):%d")
  if file then return finding("msg-file", spec, i, file, s) end
  local want = spec.t.name
  local function bad_name(n)
    local last = n:match("([%w_?]+)$") or n
    return last ~= want and last ~= ALIASES[want]
  end
  local function shown(n) -- a name that came from an argument is not the point
    for k = 1, #spec.args do
      local a = args[k]
      if (type(a) == "string" or type(a) == "number") and n:find(tostring(a):match("^[^%z]*"):sub(1, 40), 1, true) then
        return "'<an argument>'"
      end
    end
    return "'" .. n .. "'"
  end
  for n in s:gmatch("to '([^']*)'") do
    if bad_name(n) then return finding("msg-name", spec, i, shown(n), s) end
  end
  local n = s:match("^aloop%.([^ ]+) called outside a task") or s:match("^aloop%.([^ ]+) cannot wait here")
  if n and bad_name(n) then return finding("msg-name", spec, i, shown(n), s) end
end

local function run_call(i)
  local spec = call_spec(i)
  if skip[spec.t.key] then return end
  io.stderr:write("@@C ", i, "\t", spec.t.key, "\t", oneline(describe(spec), 200), "\n")
  ncalls = ncalls + 1
  local recv = spec.t.kind == "fn" and aloop or pool_inst[spec.recv or spec.t.cls.value]
  local args, n = {}, #spec.args
  for k = 1, n do
    local ok, x = pcall(resolve, spec.args[k], recv)
    args[k] = ok and x or nil
  end
  local f = call_chunk(spec.t, spec.form, n)
  local r = table.pack(pcall(f, aloop, recv, table.unpack(args, 1, n)))
  if not r[1] then check_error(spec, i, r[2], args) end
  return spec
end

------------------------------------------------------------------------------
-- Child: a stand-alone reproducer for call i in this context.

local CONTEXT_CODE = {
  task = "  local t = aloop.create_task(CALL)\n  for _ = 1, 3 do aloop.sleep(0) end\n" ..
    "  t:cancel(\"watchdog\")\n  aloop.sleep(0.01)",
  callback = "  aloop.get_event_loop():call_soon(CALL)\n  aloop.sleep(0.01)",
  done_callback = "  local f = aloop.Future()\n  f:add_done_callback(CALL)\n  f:set_result(true)\n  aloop.sleep(0.01)",
  finaliser = "  setmetatable({}, {__gc = CALL})\n  collectgarbage()\n  aloop.sleep(0.01)",
}

-- The source of a script that makes calls is[1], is[2] ... as the fuzzer
-- did, each in a fresh instance of the context.
function repro(is)
  local out = {}
  local function w(...) out[#out + 1] = table.concat({ ... }) end
  local calls, srcs, vars, setup = {}, {}, {}, {}
  for c, i in ipairs(is) do
    local spec = call_spec(i)
    local sfx = c == 1 and "" or tostring(c)
    local names = { recv = "o" .. sfx }
    if spec.t.kind ~= "fn" then
      local recipe = values[spec.recv or spec.t.cls.value].src
      vars[#vars + 1] = names.recv
      setup[#setup + 1] = "  " .. names.recv .. " = " .. recipe
      srcs[#srcs + 1] = recipe
    end
    for k, a in ipairs(spec.args) do
      local v = values[a]
      if v.dynamic then
        names[k] = v.src or (spec.t.kind == "fn" and "aloop" or names.recv)
      else
        names[k] = "a" .. k .. (c == 1 and "" or ("_" .. c))
        vars[#vars + 1] = names[k]
        setup[#setup + 1] = "  " .. names[k] .. " = " .. v.src .. " -- " .. v.name
        srcs[#srcs + 1] = v.src
      end
    end
    calls[c] = { fn = "call" .. sfx, src = call_source(spec.t, spec.form, #spec.args, names), i = i,
      desc = describe(spec) }
  end
  for _, c in ipairs(calls) do w("-- ", c.desc, "   (call ", c.i, ")") end
  w("-- context: ", ctx_name, "; made by tools/fuzz/fuzz.lua, seed ", opt.seed)
  if ctx_name == "close" then
    w("-- made before aloop is loaded, so finalised after aloop's loop, at lua_close")
    for c = #calls, 1, -1 do
      w("KEEP", c, " = setmetatable({}, {__gc = function() ", calls[c].fn:upper(), "() end})")
    end
  end
  w('local aloop = require "aloop"')
  local all = table.concat(srcs, " ")
  if all:find("[%u][%u][%u]") or all:find("guard_fn") then
    w("local P = {}")
    w("do -- the argument helpers")
    w((V.PRELUDE:gsub("\n$", "")))
    w("end")
  elseif all:find("P%.") then
    w("local P = {}")
  end
  if #vars > 0 then w("local ", table.concat(vars, ", ")) end
  for _, c in ipairs(calls) do
    w("local function ", c.fn, "()")
    w("  local r = table.pack(pcall(function() return ", c.src, " end))")
    w("  print(\"", c.fn, ": pcall ->\", r[1], (select(2, pcall(tostring, r[2]))))")
    w("end")
    if ctx_name == "close" then w(c.fn:upper(), " = ", c.fn) end
  end
  w("aloop.run(function()")
  if all:find("P%.task") then
    w("  P.task = aloop.create_task(function() P.task_co = coroutine.running() aloop.sleep(5) end)")
    w("  aloop.sleep(0)")
  end
  for _, l in ipairs(setup) do w(l) end
  for _, c in ipairs(calls) do
    if CONTEXT_CODE[ctx_name] then w((CONTEXT_CODE[ctx_name]:gsub("CALL", c.fn))) end
  end
  w("end)")
  if ctx_name == "toplevel" then
    for _, c in ipairs(calls) do w(c.fn, "()") end
  end
  return table.concat(out, "\n") .. "\n"
end

------------------------------------------------------------------------------
-- Child: the contexts. Each runs calls from..to (or the listed ones) until
-- its time slice is used up, then prints "@@END <next> <calls>".

local function call_list()
  local list = {}
  if opt.calls then
    for n in tostring(opt.calls):gmatch("%d+") do list[#list + 1] = tonumber(n) end
  end
  return list
end

local function next_call(state)
  if state.list[1] then
    state.pos = state.pos + 1
    return state.list[state.pos]
  end
  state.i = (state.i or (opt.from - 1)) + 1
  if state.i > opt.to or now() > state.deadline then return nil end
  return state.i
end

local function finish(state)
  local nxt = state.list[1] and (opt.to + 1) or state.i
  io.stderr:write("@@END ", nxt, " ", ncalls, "\n")
end

-- A driver task's own turn; a finaliser may have cancelled it: undo that.
local function turn(d)
  local ok = pcall(aloop.sleep, d or 0)
  if not ok then
    local me = aloop.current_task()
    while me:cancelling() > 0 do me:uncancel() end
  end
end

local function new_pool_owner()
  local ready = false
  local owner = aloop.create_task(function()
    build_pool()
    ready = true
    pcall(aloop.sleep, 3600)
  end)
  for _ = 1, 50 do
    if ready then break end
    turn()
  end
  return owner
end

local function wait_flag(flag, spec, i)
  for _ = 1, 3 do
    if flag() then return end
    turn()
  end
  local t0 = now()
  while not flag() and now() - t0 < CALL_LIMIT do turn(0.001) end
  if not flag() then finding("hang", spec, i, "callback never ran", "") end
end

local drivers = {}

function drivers.task(state)
  aloop.run(function()
    local owner
    local k = 0
    for i in next_call, state do
      if k == 0 or (i - 1) % EPOCH == 0 then
        if owner then owner:cancel() end
        owner = new_pool_owner()
      end
      k = k + 1
      local spec
      local ct = aloop.create_task(function() spec = run_call(i) end)
      for _ = 1, 3 do
        if ct:done() then break end
        turn()
      end
      if not ct:done() then
        local t0 = now()
        repeat
          ct:cancel("fuzz: watchdog")
          for _ = 1, 20 do
            if ct:done() then break end
            turn()
          end
          if not ct:done() then turn(0.01) end
        until ct:done() or now() - t0 > CALL_LIMIT
        if not ct:done() and spec then
          finding("hang", spec, i, "ignores cancellation", "still running " .. CALL_LIMIT .. " s after cancel()")
        end
      end
    end
    if owner then owner:cancel() end
  end)
end

local function callback_driver(state, schedule)
  aloop.run(function()
    local owner
    local k = 0
    for i in next_call, state do
      if k == 0 or (i - 1) % EPOCH == 0 then
        if owner then owner:cancel() end
        owner = new_pool_owner()
      end
      k = k + 1
      local ran = false
      local spec = call_spec(i)
      schedule(function()
        local ok, err = pcall(run_call, i)
        if not ok then io.stderr:write("@@DRIVER ", oneline(err), "\n") end
        ran = true
      end)
      wait_flag(function() return ran end, spec, i)
    end
    if owner then owner:cancel() end
  end)
end

function drivers.callback(state)
  callback_driver(state, function(fn) loop:call_soon(fn) end)
end

function drivers.done_callback(state)
  callback_driver(state, function(fn)
    local f = aloop.Future()
    f:add_done_callback(function() fn() end)
    f:set_result(true)
  end)
end

function drivers.finaliser(state)
  aloop.run(function()
    local owner
    local k = 0
    local batch = {}
    local function flush()
      for _, i in ipairs(batch) do
        setmetatable({}, { __gc = function() run_call(i) end })
      end
      batch = {}
      collectgarbage()
      collectgarbage()
      turn()
      turn()
    end
    for i in next_call, state do
      if k == 0 or (i - 1) % EPOCH == 0 then
        flush()
        if owner then owner:cancel() end
        owner = new_pool_owner()
      end
      k = k + 1
      batch[#batch + 1] = i
      if #batch == 8 then flush() end
    end
    flush()
    if owner then owner:cancel() end
  end)
end

function drivers.toplevel(state)
  local k = 0
  for i in next_call, state do
    if k == 0 or (i - 1) % EPOCH == 0 then
      pcall(aloop.run, build_pool)
    end
    k = k + 1
    run_call(i)
  end
  -- What the next call would do first: so that a run of calls that broke
  -- the loop fails the same way when it is re-run alone or bisected.
  pcall(aloop.run, build_pool)
end

------------------------------------------------------------------------------
-- Child main

local function child()
  ctx_name = opt.child
  for k in tostring(opt.skip or ""):gmatch("[^,]+") do skip[k] = true end
  -- The close context: objects made before aloop is loaded are finalised
  -- after aloop's loop, at lua_close; each makes one call then.
  local close_slots = {}
  if ctx_name == "close" then
    FUZZ_KEEP = { setmetatable({}, { __gc = function()
      io.stderr:write("@@END ", close_slots.next or opt.to + 1, " ", ncalls, "\n")
    end }) }
    for k = CLOSE_BATCH, 1, -1 do
      FUZZ_KEEP[#FUZZ_KEEP + 1] = setmetatable({}, { __gc = function()
        if close_slots[k] then run_call(close_slots[k]) end
      end })
    end
  end
  aloop = require "aloop"
  loop = aloop.get_event_loop()
  ERRMT = getmetatable(aloop.error("X"))
  now = os.time
  env = make_env()
  local ok, err = pcall(aloop.run, function()
    classes = discover(env)
    build_targets(env)
  end)
  if not ok then io.stderr:write("fuzz: discovery failed: ", tostring(err), "\n") os.exit(3) end
  build_values()
  if opt.list then
    for _, t in ipairs(targets) do print(t.key, t.kind) end
    for _, c in ipairs(classes) do print("class", c.name, c.recipe, table.concat(c.variants, " ")) end
    print("values", #values, "systematic calls", nsys)
    return
  end
  if opt.repro then
    ctx_name = opt.child
    return io.write(repro({ tonumber(opt.repro), tonumber(opt.repro_then) }))
  end
  opt.from = tonumber(opt.from) or 1
  opt.to = tonumber(opt.to) or opt.max_calls
  local state = { list = call_list(), pos = 0, deadline = tonumber(opt.slice) or 8 }
  state.deadline = now() + state.deadline
  io.stderr:write("@@START ", ctx_name, " targets=", #targets, " classes=", #classes,
    " values=", #values, " systematic=", nsys, "\n")
  if ctx_name == "close" then
    pcall(aloop.run, build_pool)
    local k = 0
    for i in next_call, state do
      k = k + 1
      close_slots[k] = i
      if k == CLOSE_BATCH then break end
    end
    close_slots.next = state.list[1] and (opt.to + 1) or (state.i or opt.from) + (k == CLOSE_BATCH and 1 or 0)
    return
  end
  local driver = drivers[ctx_name]
  if not driver then io.stderr:write("fuzz: unknown context ", ctx_name, "\n") os.exit(2) end
  local dok, derr = pcall(driver, state)
  if not dok then io.stderr:write("@@DRIVER ", oneline(derr), "\n") end
  finish(state)
end

if opt.child then return child() end

------------------------------------------------------------------------------
-- Parent: run the contexts in child processes, collect and report.

local shq, ENV, LUA = C.shq, C.ENV, C.LUA

local SELF = arg[0]
local run_no = 0

-- Runs one child; returns what its stderr says.
local function run_child(ctx, a, limit)
  run_no = run_no + 1
  local errf = opt.out .. "/child-" .. run_no .. ".err"
  local cmd = { ENV, "timeout -k 2", math.floor(limit), LUA, shq(SELF), "--child", ctx, "--seed", opt.seed,
    "--out", shq(opt.out), "--max-calls", opt.max_calls }
  for k, v in pairs(a) do cmd[#cmd + 1] = "--" .. k .. " " .. shq(v) end
  cmd[#cmd + 1] = ">/dev/null 2>" .. shq(errf)
  local t0 = os.time()
  local _, how, code = os.execute(table.concat(cmd, " "))
  local r = { rc = how == "exit" and code or 128 + (code or 0), secs = os.time() - t0,
    findings = {}, reports = {}, ncalls = 0 }
  local f = assert(io.open(errf))
  -- aloop's own reports ("aloop: Exception in callback", the message, a
  -- traceback) must not point into aloop either: neither the message, nor
  -- the callback that failed (the outermost Lua function of the traceback)
  -- when that is one of aloop's own closures.
  local block
  local function end_block()
    if not block then return end
    local b = block
    block = nil
    if not b.last or not b.msg then return end
    local file = b.msg:match("(aloop/[%w_]+%.lua):") or b.msg:match("(bindings/[%w_/]+%.%a+)")
    if file then
      r.reports[#r.reports + 1] = { detail = file .. " in report '" .. b.title .. "'", msg = b.msg:sub(1, 300),
        last = b.last }
    elseif b.title:match("^Exception in") and b.outer and b.outer:match("in function <aloop/") then
      r.reports[#r.reports + 1] = { detail = "aloop's own callback failed: '" .. b.title .. "'",
        msg = b.msg:sub(1, 200) .. " | " .. b.outer, last = b.last }
    end
  end
  for line in f:lines() do
    if #line > 4000 then line = line:sub(1, 4000) end
    local tag, rest = line:match("^@@(%u+) ?(.*)$")
    if tag or line:match("^aloop: ") or line:match("^==%d+==") then end_block() end
    if tag == "START" then r.started = true
    elseif tag == "C" then
      local i, key, desc = rest:match("^(%d+)\t([^\t]*)\t(.*)$")
      r.last = { i = tonumber(i), key = key, desc = desc }
      r.first = r.first or r.last
      r.seen = (r.seen or 0) + 1
    elseif tag == "F" then
      local kind, key, form, detail, i, desc, msg, path =
        rest:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      r.findings[#r.findings + 1] = { kind = kind, key = key, form = form, detail = detail, i = tonumber(i),
        desc = desc, msg = msg, repro = path }
    elseif tag == "END" then
      local nxt, n = rest:match("^(%d+) (%d+)")
      r.next, r.ncalls = tonumber(nxt), tonumber(n)
    elseif tag == "DRIVER" then
      r.driver = rest
    elseif not tag then
      C.scan_line(r, line)
      if r.started then
        if line:match("^aloop: ") then block = { title = line:sub(8), last = r.last }
        elseif block then
          -- The callback is the last Lua frame of the first run of them.
          if not block.msg then block.msg = line
          elseif line:match("^\t%[C%]") then
            if block.outer then block.closed = true end
          elseif line:match("^\t") and not line:match("^\t%(%.%.%.tail") and not block.closed then
            block.outer = line
          end
        end
      end
    end
  end
  end_block()
  f:close()
  os.remove(errf)
  r.crashed = r.next == nil
  r.timed_out = r.rc == 124 or r.rc == 137
  return r
end

local crash_detail = C.crash_detail

local function parent()
  os.execute("mkdir -p " .. shq(opt.out .. "/repro") .. " && rm -f " .. shq(opt.out) .. "/repro/*.lua")
  local contexts = {}
  for c in opt.contexts:gmatch("[^,]+") do contexts[#contexts + 1] = c end
  local known = C.load_known(HERE)
  local all, order = {}, {}
  -- A crash or hang is one finding per place (its sanitizer report), with
  -- the targets that reached it; a message, one per target, form and file.
  local function add(f, ctx)
    -- (after lua_close, in the close context, is a place of its own)
    local sig = (f.kind == "crash" or f.kind == "hang") and (f.kind .. "|" .. f.detail .. (ctx == "close" and "|close" or ""))
      or f.kind == "report" and (f.kind .. "|" .. f.detail .. "|" .. (f.msg:gsub("^.-|", "")))
      or (f.kind .. "|" .. f.key .. "|" .. (f.form or "") .. "|" .. f.detail)
    local e = all[sig]
    if not e then
      e = { kind = f.kind, key = f.key, form = f.form, detail = f.detail, first = f, ctxs = {}, n = 0, keys = {} }
      e.known = C.match_known(known, { kind = e.kind, key = e.key, form = e.form, detail = e.detail,
        desc = f.desc, msg = f.msg, ctx = ctx })
      all[sig] = e
      order[#order + 1] = e
    end
    if not e.ctxs[ctx] then e.ctxs[ctx] = true; e.ctxs[#e.ctxs + 1] = ctx end
    if not e.keys[f.key] then e.keys[f.key] = true; e.keys[#e.keys + 1] = f.key end
    e.n = e.n + 1
  end
  local sites = {} -- crash detail -> the call found to cause it first
  local t_start = os.time()
  local per_ctx = opt.seconds / #contexts
  local counts = {}
  io.write(string.format("fuzz: seed %d, %d s, at most %d calls per context, contexts %s\n",
    opt.seed, opt.seconds, opt.max_calls, opt.contexts))
  io.flush()
  for ci, ctx in ipairs(contexts) do
    local deadline = t_start + per_ctx * ci
    local from, n, skip = 1, 0, {}
    local function skiplist()
      local ks = {}
      for k in pairs(skip) do ks[#ks + 1] = k end
      table.sort(ks)
      return table.concat(ks, ",")
    end
    while from <= opt.max_calls and os.time() < deadline do
      local slice = math.max(1, math.min(opt.slice, deadline - os.time()))
      local r = run_child(ctx, { from = from, to = opt.max_calls, slice = slice, skip = skiplist() },
        slice + HANG_LIMIT)
      for _, f in ipairs(r.findings) do add(f, ctx) end
      for _, rep in ipairs(r.reports) do
        add({ kind = "report", key = rep.last.key, detail = rep.detail, i = rep.last.i, desc = rep.last.desc,
          msg = rep.msg }, ctx)
      end
      if not r.crashed then
        n = n + r.ncalls
        from = r.next
      elseif not r.last then
        add({ kind = "crash", key = "(start-up)", detail = crash_detail(r), desc = "", msg = r.sanitizer or "" }, ctx)
        io.write("fuzz: ", ctx, ": the child failed before its first call: ", crash_detail(r), "\n")
        break
      else
        n = n + (r.seen or 0)
        local last = r.last
        local f = { kind = r.timed_out and "hang" or "crash", key = last.key, detail = crash_detail(r),
          i = last.i, desc = last.desc, msg = r.sanitizer or r.libev or "" }
        local site = sites[f.detail .. (ctx == "close" and "|close" or "")]
        if site then
          -- Seen before: no need to isolate it again; skip what caused it.
          add(f, ctx)
          local k = (site.later and not skip[site.key]) and site.key or last.key
          skip[k] = true
          io.write(string.format("fuzz: %s: %s at call %d %s: %s (again; skipping %s)\n", ctx, f.kind, last.i,
            last.desc, f.detail, k))
          io.flush()
          from = last.i + 1
          goto continue
        end
        -- Confirm with the call alone, in a fresh process; if it passes
        -- alone, bisect for the latest start from which it still fails:
        -- the call there is the one it needs.
        local alone = run_child(ctx, { calls = last.i, to = last.i }, HANG_LIMIT)
        local culprit = last
        if not alone.crashed then
          local detail = f.detail
          local function same(b)
            return b.crashed and b.last and (b.last.i == last.i or crash_detail(b) == detail)
          end
          local lo, hi = from, last.i
          local give_up = math.min(os.time() + math.max(5, per_ctx // 4), deadline + 2)
          while hi - lo > 1 and os.time() < give_up do
            local mid = (lo + hi) // 2
            local b = run_child(ctx, { from = mid, to = last.i, slice = 30, skip = skiplist() }, 30 + HANG_LIMIT)
            if os.getenv("FUZZ_VERBOSE") then
              io.write("  bisect ", mid, "..", last.i, ": ", b.crashed and crash_detail(b) or "passes",
                b.last and (" at " .. b.last.i) or "", "\n")
            end
            if same(b) then
              lo = mid
            else
              hi = mid
            end
          end
          local pair = run_child(ctx, { calls = lo .. "," .. last.i, to = last.i }, HANG_LIMIT)
          if hi - lo == 1 and same(pair) and pair.first then
            culprit = pair.first
            f.key, f.i, f.desc = culprit.key, culprit.i, culprit.desc .. "; then " .. last.desc
            f.how = "at a later call"
          else
            f.how = "only after earlier calls, not isolated"
            f.msg = f.msg .. " [calls " .. from .. ".." .. last.i .. "]"
          end
        end
        if f.how ~= "only after earlier calls, not isolated" then
          f.repro = opt.out .. "/repro/" .. ctx .. "-" .. culprit.i .. ".lua"
          os.execute(ENV .. " timeout 60 " .. LUA .. " " .. shq(SELF) .. " --child " .. ctx ..
            " --seed " .. opt.seed .. " --out " .. shq(opt.out) .. " --repro " .. culprit.i ..
            (culprit ~= last and (" --repro-then " .. last.i) or "") .. " >" .. shq(f.repro) .. " 2>/dev/null")
        else
          f.repro = "-"
        end
        add(f, ctx)
        sites[f.detail .. (ctx == "close" and "|close" or "")] = { key = culprit.key, later = culprit ~= last }
        io.write(string.format("fuzz: %s: %s at call %d %s: %s%s\n", ctx, f.kind, culprit.i, f.desc, f.detail,
          f.how and (" (" .. f.how .. ")") or ""))
        io.flush()
        skip[culprit.key] = true
        from = last.i + 1
      end
      ::continue::
    end
    counts[#counts + 1] = { ctx, n }
    io.write(string.format("fuzz: context %-13s %7d calls\n", ctx, n))
    io.flush()
  end
  -- The report.
  local total = 0
  for _, c in ipairs(counts) do total = total + c[2] end
  io.write("\n== calls per context ==\n")
  for _, c in ipairs(counts) do io.write(string.format("  %-13s %7d\n", c[1], c[2])) end
  io.write(string.format("  %-13s %7d   (%d s)\n", "total", total, os.time() - t_start))
  local new, supp, ids, nids = {}, {}, {}, 0
  for _, e in ipairs(order) do
    if e.known then
      supp[#supp + 1] = e
      if not ids[e.known.id] then ids[e.known.id] = 0; nids = nids + 1 end
      ids[e.known.id] = ids[e.known.id] + 1
    else
      new[#new + 1] = e
    end
  end
  local summary = assert(io.open(opt.out .. "/findings.txt", "w"))
  for _, e in ipairs(order) do
    summary:write(table.concat({ e.known and e.known.id or "new", e.kind, table.concat(e.keys, " "), e.form or "",
      e.detail .. (e.first.how and (" (" .. e.first.how .. ")") or ""), table.concat(e.ctxs, ","), e.first.desc,
      e.first.msg or "", e.first.repro or "-" }, "\t"), "\n")
  end
  summary:close()
  if #supp > 0 then
    local list = {}
    for id, c in pairs(ids) do list[#list + 1] = id .. " (" .. c .. ")" end
    table.sort(list)
    io.write(string.format("\n!!!!!!!! %d KNOWN FINDINGS SUPPRESSED by tools/fuzz/known.lua (%d IDs) !!!!!!!!\n",
      #supp, nids))
    io.write("  ", table.concat(list, ", "), "\n")
    io.write("  They are bugs still to fix: delete their entries from known.lua once fixed.\n")
    io.write("  All findings: ", opt.out, "/findings.txt\n")
  end
  if #new > 0 then
    io.write(string.format("\n== %d NEW FINDINGS ==\n", #new))
    for _, e in ipairs(new) do
      io.write(string.format("  %s %s%s: %s%s\n      call: %s\n      got:  %s\n      contexts: %s; %d times%s; reproducer: %s\n",
        e.kind, e.key, e.form and ("[" .. e.form .. "]") or "", e.detail,
        e.first.how and (" (" .. e.first.how .. ")") or "", e.first.desc, e.first.msg or "",
        table.concat(e.ctxs, ","), e.n, #e.keys > 1 and (", also via " .. table.concat(e.keys, " ", 2)) or "",
        e.first.repro or "-"))
    end
    io.write(string.format("\nfuzz: FAILED: %d new findings (seed %d, %d calls)\n", #new, opt.seed, total))
    os.exit(1)
  end
  io.write(string.format("\nfuzz: OK: no new findings (seed %d, %d calls, %d known suppressed)\n",
    opt.seed, total, #supp))
end

parent()
