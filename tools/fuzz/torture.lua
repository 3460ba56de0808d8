-- tools/fuzz/torture.lua -- GC torture for aloop (`make torture`): every
-- feature at once while the collector runs almost continuously, and the
-- finalisers of garbage call back into aloop at random (cancel a live task,
-- resolve a Future, create a task, call_soon, Event:set, Queue:put_nowait...).
--
-- The parent (this file without --child) runs one child per seed under the
-- ASan+UBSan module and `timeout`, and fails on a crash, a sanitizer report,
-- a hang, an error message that points into aloop, or tasks left alive.
--
--   lua5.4 tools/fuzz/torture.lua [--seeds "1 2 3 4"] [--seconds 30] [--out DIR]
-- Environment: SEEDS, TORTURE_SECONDS, FUZZ_CPATH, FUZZ_PRELOAD, FUZZ_LUA.

local HERE = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local C = dofile(HERE .. "/common.lua")

local opt = {
  seeds = os.getenv("SEEDS") or "1 2 3 4",
  seconds = tonumber(os.getenv("TORTURE_SECONDS")) or 30,
  out = os.getenv("FUZZ_OUT") or "build/fuzz",
}
C.parse_args(opt)

------------------------------------------------------------------------------
-- Child: one seed.

local function child()
  local seed = math.tointeger(tonumber(opt.child))
  local seconds = tonumber(opt.seconds)
  math.randomseed(seed)
  local rnd = math.random
  local aloop = require "aloop"
  local loop = aloop.get_event_loop()

  -- The collector's settings, by seed: pause (0: a new cycle at once),
  -- step multiplier, step size (log2 bytes); and how many VM instructions
  -- a task runs between two forced GC steps (0: no hook).
  local GC = { { 1, 1000, 10 }, { 1, 100, 8 }, { 5, 400, 13 }, { 2, 200, 6 } }
  local base = math.tointeger(tonumber(opt.gc)) or seed -- the collector settings come with the first seed
  local gc = GC[(base - 1) % #GC + 1]
  collectgarbage("incremental", gc[1], gc[2], gc[3])
  local HOOKS = { 0, 500, 97, 2000 }
  local hook_every = HOOKS[((base - 1) + (base - 1) // #GC) % #HOOKS + 1]
  io.stderr:write(string.format("@@START seed %d: collectgarbage(\"incremental\", %d, %d, %d), GC step every %s instructions in tasks\n",
    seed, gc[1], gc[2], gc[3], hook_every > 0 and tostring(hook_every) or "(none)"))

  local S = { rounds = 0, tasks = 0, objects = 0, fin = 0, calls = 0, cycles = 0, errors = 0, peak = 0 }
  local quiet = false

  -- Live objects for the finalisers to play with: 32 slots per kind; a new
  -- object replaces a random one, which becomes garbage in turn.
  local live = {}
  for _, k in ipairs({ "tasks", "futures", "events", "queues", "locks", "sems", "conds", "handles", "barriers",
    "tgs", "timeouts", "cancelled" }) do live[k] = {} end
  local function keep(kind, x) live[kind][rnd(32)] = x; S.objects = S.objects + 1; return x end
  local function pick(kind) return live[kind][rnd(32)] end

  local function note_error(e, where)
    S.errors = S.errors + 1
    local s = type(e) == "string" and e or nil
    if type(e) == "table" and getmetatable(e) and rawget(e, "kind") then s = tostring(rawget(e, "message")) end
    if s and (s:find("aloop/[%w_]+%.lua:") or s:find("bindings/") or s:find("[%w_]+%.c:%d")) then
      io.stderr:write("@@F internal\t", where, "\t", (s:sub(1, 300):gsub("[\r\n\t]", " ")), "\n")
    end
  end

  local junk
  local hook = function() collectgarbage("step", 0) end
  local function spawn(fn, ...)
    S.tasks = S.tasks + 1
    return aloop.create_task(function(...)
      if hook_every > 0 then debug.sethook(hook, "", hook_every) end
      return fn(...)
    end, ...)
  end

  local MSGS = { "m", "", "before\0after", string.rep("long message ", 40) }
  -- Cancel with a message, and remember the task: cancelling it again
  -- while it wakes up with the first message is a finaliser's favourite.
  local function cancel_msg(t)
    if t then
      t:cancel(MSGS[rnd(#MSGS)])
      live.cancelled[rnd(8)] = t
    end
  end
  local actions = {
    function() cancel_msg(pick("tasks")) end,
    function() cancel_msg(live.cancelled[rnd(8)]) end,
    function() cancel_msg(live.cancelled[rnd(8)]) end,
    function() local t = pick("tasks") if t then t:cancel() end end,
    function() local f = pick("futures") if f then f:set_result(rnd(100)) end end,
    function() local f = pick("futures") if f then f:set_exception("finaliser error") end end,
    function() local f = pick("futures") if f then f:cancel(MSGS[rnd(#MSGS)]) end end,
    function() keep("tasks", spawn(function() junk(2) aloop.sleep(rnd() * 0.005) end)) end,
    function() keep("futures", aloop.Future()) end,
    function() keep("handles", loop:call_soon(function() junk(2) end)) end,
    function() keep("handles", loop:call_later(rnd() * 0.005, function() junk(2) end)) end,
    function() local h = pick("handles") if h then h:cancel() end end,
    function() local e = pick("events") if e then if rnd(2) == 1 then e:set() else e:clear() end end end,
    function() local q = pick("queues") if q then q:put_nowait(rnd(100)) end end,
    function() local q = pick("queues") if q then q:get_nowait() end end,
    function() local q = pick("queues") if q then q:task_done() end end,
    function() local l = pick("locks") if l then l:release() end end,
    function() local s = pick("sems") if s then s:release() end end,
    function() local t = pick("tasks") if t then t:uncancel() end end,
    function()
      local f = pick("futures") or pick("tasks")
      if f then f:add_done_callback(function() junk(1) end) end
    end,
    function() local c = pick("conds") if c then c:notify_all() end end,
    function() local b = pick("barriers") if b then b:abort() end end,
    function() local tm = pick("timeouts") if tm then tm:reschedule(rnd() * 0.005) end end,
    function() aloop.sleep(0) end,
    function() local t = pick("tasks") if t then tostring(t) t:traceback() end end,
    function()
      local tg = pick("tgs")
      if tg then keep("tasks", tg:create_task(function() aloop.sleep(rnd() * 0.002) end)) end
    end,
    function() collectgarbage("step") end,
  }
  local function on_gc()
    if quiet then return end
    S.fin = S.fin + 1
    if rnd(3) == 1 then return end
    S.calls = S.calls + 1
    local ok, e = pcall(actions[rnd(#actions)])
    if not ok then note_error(e, "finaliser") end
  end
  local JUNK = { __gc = on_gc }
  function junk(n)
    for _ = 1, n do setmetatable({}, JUNK) end
    S.objects = S.objects + n
  end
  local function sentinel()
    setmetatable({}, { __gc = function()
      S.cycles = S.cycles + 1
      if not quiet then sentinel() end
    end })
  end
  sentinel()

  local function boom() junk(1) error("worker error", 0) end
  local function child_fn(i)
    return function()
      junk(2)
      aloop.sleep(rnd() * 0.005)
      if rnd(5) == 1 then boom() end
      return i
    end
  end

  -- The features, each a small workload for one task.
  local W = {}
  function W.sleep() for _ = 1, rnd(5) do junk(3) aloop.sleep(rnd() * 0.003) end end
  function W.wait_for() return aloop.wait_for(child_fn(1), rnd() * 0.006) end
  function W.gather()
    local fs = {}
    for i = 1, rnd(6) do fs[i] = rnd(2) == 1 and keep("tasks", spawn(child_fn(i))) or child_fn(i) end
    return aloop.gather(fs, { return_exceptions = rnd(2) == 1 })
  end
  function W.wait()
    local fs = {}
    for i = 1, rnd(5) do fs[i] = keep("tasks", spawn(child_fn(i))) end
    local whens = { "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED" }
    return aloop.wait(fs, { return_when = whens[rnd(3)], timeout = rnd(2) == 1 and rnd() * 0.004 or nil })
  end
  function W.as_completed()
    local fs = {}
    for i = 1, rnd(5) do fs[i] = keep("tasks", spawn(child_fn(i))) end
    for f in aloop.as_completed(fs, { timeout = 0.01 }) do pcall(f.result, f) junk(1) end
  end
  function W.queue()
    local kinds = { aloop.Queue, aloop.LifoQueue, aloop.PriorityQueue }
    local q = keep("queues", kinds[rnd(3)](rnd(0, 3)))
    local n = rnd(8)
    local prod = spawn(function() for i = 1, n do junk(1) q:put(i) end end)
    local cons = spawn(function() for _ = 1, n do junk(1) q:get() q:task_done() end end)
    keep("tasks", prod) keep("tasks", cons)
    aloop.wait_for(function() q:join() end, 0.01)
    if rnd(3) == 1 then q:shutdown(rnd(2) == 1) end
  end
  function W.lock()
    local l = pick("locks") or keep("locks", aloop.Lock())
    local tm <close> = keep("timeouts", aloop.timeout(rnd() * 0.005))
    local _ <close> = l:acquire()
    junk(2)
    aloop.sleep(rnd() * 0.002)
  end
  function W.semaphore()
    local s = pick("sems") or keep("sems", rnd(2) == 1 and aloop.Semaphore(rnd(1, 3)) or aloop.BoundedSemaphore(2))
    local _ <close> = s:acquire()
    aloop.sleep(rnd() * 0.002)
  end
  function W.event()
    local e = pick("events") or keep("events", aloop.Event())
    aloop.wait_for(function() e:wait() end, rnd() * 0.004)
    e:set()
  end
  function W.condition()
    local c = pick("conds") or keep("conds", aloop.Condition())
    local _ <close> = c:acquire()
    local flag = rnd(2) == 1
    loop:call_later(rnd() * 0.003, function() flag = true end)
    aloop.wait_for(function() c:wait_for(function() junk(1) return flag end) end, 0.005)
  end
  function W.notify()
    local c = pick("conds")
    if c then
      local _ <close> = c:acquire()
      c:notify(rnd(0, 2))
    end
  end
  function W.barrier()
    local b = pick("barriers") or keep("barriers", aloop.Barrier(rnd(1, 3)))
    aloop.wait_for(function() b:wait() end, rnd() * 0.004)
    if rnd(4) == 1 then b:reset() end
  end
  function W.taskgroup()
    local tg <close> = keep("tgs", aloop.TaskGroup())
    for i = 1, rnd(4) do keep("tasks", tg:create_task(child_fn(i))) end
    junk(2)
  end
  function W.timeout()
    local tm <close> = keep("timeouts", aloop.timeout(rnd() * 0.004))
    if rnd(2) == 1 then tm:reschedule(rnd() * 0.004) end
    aloop.sleep(rnd() * 0.006)
  end
  function W.shield()
    local t = keep("tasks", spawn(child_fn(1)))
    return aloop.wait_for(aloop.shield(t), rnd() * 0.005)
  end
  function W.callbacks()
    local f = keep("futures", aloop.Future())
    f:add_done_callback(function() junk(2) end)
    local h = keep("handles", loop:call_later(rnd() * 0.003, function() junk(1) if not f:done() then f:set_result(1) end end))
    loop:call_soon(function() junk(1) if rnd(3) == 1 then h:cancel() end end)
    loop:call_at(aloop.time() + rnd() * 0.003, function() junk(1) end)
    aloop.wait_for(f, 0.005)
  end
  function W.cancel()
    local t = keep("tasks", spawn(function() junk(2) aloop.sleep(0.01) end))
    aloop.sleep(0)
    cancel_msg(t)
    junk(3)
    return t:await()
  end
  function W.nested_run()
    return aloop.run(function() junk(2) aloop.sleep(rnd() * 0.002) return 1 end)
  end
  local names = {}
  for k in pairs(W) do names[#names + 1] = k end
  table.sort(names)

  local function round()
    local ws = {}
    for i = 1, 30 do
      local name = names[rnd(#names)]
      ws[i] = keep("tasks", spawn(function()
        local ok, e = pcall(W[name])
        if not ok then note_error(e, name) end
      end))
    end
    local ok, e = pcall(aloop.wait_for, function() return aloop.gather(ws, { return_exceptions = true }) end, 5)
    if not ok then note_error(e, "round") end
  end

  -- A loop-level watchdog: a round that takes 20 s is a hang.
  local function summary()
    return string.format("%d rounds, %d tasks, %d objects allocated, %d finalisers run, " ..
      "%d aloop calls from finalisers, %d GC cycles, %d errors caught, peak heap %.1f MB",
      S.rounds, S.tasks, S.objects, S.fin, S.calls, S.cycles, S.errors, S.peak / 1024)
  end
  local t0 = os.time()
  while os.time() - t0 < seconds do
    if S.rounds % 5 == 0 then io.stderr:write("@@PROGRESS ", summary(), "\n") end
    S.rounds = S.rounds + 1
    local wd = loop:call_later(20, function()
      io.stderr:write("@@HANG round ", S.rounds, " did not end in 20 s\n")
      os.exit(3)
    end)
    local ok, e = pcall(aloop.run, round)
    wd:cancel()
    if not ok then note_error(e, "run") end
    local kb = collectgarbage("count")
    if kb > S.peak then S.peak = kb end
  end
  -- Afterwards, with the finalisers quiet and the last timers run out:
  -- nothing may be left alive.
  quiet = true
  for k in pairs(live) do live[k] = {} end
  collectgarbage()
  pcall(aloop.run, function() aloop.sleep(0.05) end)
  collectgarbage()
  collectgarbage()
  local st = aloop._stats()
  io.stderr:write(string.format("@@STATS tasks=%d ready=%d anchored=%d\n", st.tasks, st.ready, st.anchored))
  io.stderr:write("@@END seed ", seed, ": ", summary(), "\n")
end

if opt.child then return child() end

------------------------------------------------------------------------------
-- Parent: one child per seed. A child that crashes is followed by another
-- (seed S, then S*1000+1, S*1000+2 ...: same collector settings) until the
-- seed's time is used up, so that one early crash does not hide the rest.

local known = C.load_known(HERE)
os.execute("mkdir -p " .. C.shq(opt.out))
local failed, suppressed = {}, {}
local t_start = os.time()
print(string.format("torture: seeds %s, %d s each, module %s", opt.seeds, opt.seconds, C.CPATH))
for base in tostring(opt.seeds):gmatch("%d+") do
  local t_end = os.time() + opt.seconds
  local problems, seen = {}, {}
  local function problem(kind, detail, msg, seed)
    if seen[kind .. detail] then return end -- once per place and seed
    seen[kind .. detail] = true
    local f = { kind = kind, key = "torture", detail = detail, msg = msg, seed = seed }
    f.known = C.match_known(known, f)
    problems[#problems + 1] = f
  end
  local k, kept, crashes = 0, {}, 0
  local total, labels = {}, {}
  local function count(line)
    for num, label in (line or ""):gmatch("(%d+) ([%a][%a ]-)[,%.]") do
      if not total[label] then total[label] = 0; labels[#labels + 1] = label end
      total[label] = total[label] + tonumber(num)
    end
  end
  repeat
    local seed = k == 0 and tonumber(base) or tonumber(base) * 1000 + k
    local errf = opt.out .. "/torture-" .. seed .. ".err"
    local left = math.max(1, t_end - os.time())
    local r = C.run(C.ENV .. " timeout -k 5 " .. math.floor(left + 60) .. " " .. C.LUA .. " " .. C.shq(arg[0]) ..
      " --child " .. seed .. " --gc " .. base .. " --seconds " .. left, errf)
    local n0 = #problems
    for _, line in ipairs(r.lines) do
      local kind, where, msg = line:match("^@@F (%w+)\t([^\t]*)\t(.*)$")
      if kind then
        problem("torture-message", where .. ": " .. (msg:match("(aloop/[%w_]+%.lua:%d+)") or
          msg:match("bindings/[%w_/]+%.%a+") or "?"), msg, seed)
      end
      local t, rd, an = line:match("^@@STATS tasks=(%d+) ready=(%d+) anchored=(%d+)")
      if t and (t ~= "0" or rd ~= "0" or an ~= "0") then
        problem("torture-leftover", "tasks or anchors left after the last run", line:sub(3), seed)
      end
    end
    if not r.ended then
      problem((r.hang or r.timed_out) and "torture-hang" or "torture-crash", r.hang or C.crash_detail(r),
        r.sanitizer or r.libev or "", seed)
    end
    if k == 0 then print(r.start or ("seed " .. seed)) end
    local progress
    for _, line in ipairs(r.lines) do progress = line:match("^@@PROGRESS (.*)$") or progress end
    count(r.ended or progress)
    if not r.ended then crashes = crashes + 1 end
    print(string.format("  seed %d: %s", seed,
      r.ended and r.ended:gsub("^seed %d+: ", "") or ("CRASHED (" .. C.crash_detail(r) .. ") after " ..
        (progress or "nothing"))))
    if #problems > n0 then kept[#kept + 1] = errf else os.remove(errf) end
    k = k + 1
  until r.ended or os.time() >= t_end
  local parts = {}
  for _, l in ipairs(labels) do
    if l ~= "errors caught" then parts[#parts + 1] = total[l] .. " " .. l end
  end
  print(string.format("  seed %s survived: %s; %d run(s), %d crash(es)", base, table.concat(parts, ", "), k, crashes))
  for _, p in ipairs(problems) do
    print(string.format("  %s %s (seed %d): %s  %s", p.known and ("[known " .. p.known.id .. "]") or "[new]", p.kind,
      p.seed, p.detail, (p.msg or ""):sub(1, 200)))
    if p.known then suppressed[#suppressed + 1] = p else failed[#failed + 1] = p end
  end
  if #kept > 0 then print("  stderr kept in " .. table.concat(kept, " ")) end
end
print(string.format("torture: %d s in all", os.time() - t_start))
if #suppressed > 0 then
  print(string.format("\n!!!!!!!! %d KNOWN TORTURE FINDINGS SUPPRESSED by tools/fuzz/known.lua !!!!!!!!", #suppressed))
  print("  They are bugs still to fix: delete their entries from known.lua once fixed.")
end
if #failed > 0 then
  print(string.format("torture: FAILED: %d new findings", #failed))
  os.exit(1)
end
print("torture: OK")
