-- 19-hardening_lua_spec.lua -- regressions of the robustness review
-- (shared/research/robustness-review.md) in aloop's Lua-written parts
-- (aloop/sync.lua, tasks.lua, streams.lua), each named after what broke:
-- methods that did not check their self (B2, W5), errors that named aloop's
-- files or other functions (B3), the PriorityQueue losing or corrupting
-- items (N1, W6, N4), the wait queue's name argument (N2) and globals read
-- at call time (W8).
local aloop = require "aloop"

local N = dofile("spec/net_helper.lua")

local HERE = "19%-hardening_lua_spec%.lua:%d+: "

-- The error of fn(...), which must be a string that points at this file.
-- (called from a Lua function here: pcall itself has no line)
local function raises_here(fn, ...)
  local e = H.raises(function(...)
    local r = fn(...)
    return r
  end, ...)
  assert.is_string(e)
  assert.matches("^[^\n]*" .. HERE, e)
  assert.not_matches("aloop/", e)
  return e
end

-- The Lua classes, an object of each and its methods (those that run
-- outside a task at least up to their self check).
local function objects()
  return {
    Lock = { aloop.Lock(), { "acquire", "release", "locked" } },
    Semaphore = { aloop.Semaphore(2), { "acquire", "release", "locked", "value" } },
    BoundedSemaphore = { aloop.BoundedSemaphore(2), { "acquire", "release", "locked", "value" } },
    Event = { aloop.Event(), { "is_set", "set", "clear", "wait" } },
    Condition = { aloop.Condition(), { "acquire", "release", "locked", "wait", "wait_for",
      "notify", "notify_all" } },
    Barrier = { aloop.Barrier(2), { "wait", "reset", "abort", "parties", "n_waiting", "broken" } },
    Queue = { aloop.Queue(), { "qsize", "maxsize", "empty", "full", "is_shutdown", "put_nowait",
      "put", "get_nowait", "get", "task_done", "join", "shutdown" } },
    LifoQueue = { aloop.LifoQueue(), { "put_nowait", "get_nowait", "shutdown" } },
    PriorityQueue = { aloop.PriorityQueue(), { "put_nowait", "get_nowait", "shutdown" } },
  }
end

describe("hardening of the Lua parts", function()
  it("a method called with '.' names itself and its class at the caller's line (B2)", function()
    for cls, e in pairs(objects()) do
      local obj, methods = e[1], e[2]
      for _, m in ipairs(methods) do
        local err = raises_here(obj[m])
        assert.matches("bad argument #1 to '" .. m .. "' %(aloop " .. cls .. " expected, got nil%)",
          err, nil, cls .. "." .. m)
      end
    end
  end)

  it("a method given another kind of object names what it got (B2)", function()
    local lock, ev = aloop.Lock(), aloop.Event()
    assert.matches("bad argument #1 to 'acquire' %(aloop Lock expected, got aloop%.Event%)",
      raises_here(lock.acquire, ev))
    assert.matches("bad argument #1 to 'release' %(aloop Semaphore expected, got aloop%.BoundedSemaphore%)",
      raises_here(aloop.Semaphore().release, aloop.BoundedSemaphore()))
    -- BoundedSemaphore's release keeps its bound: Semaphore's does not take it
    assert.matches("aloop BoundedSemaphore expected, got aloop%.Semaphore",
      raises_here(aloop.BoundedSemaphore().release, aloop.Semaphore()))
    assert.matches("aloop Queue expected, got aloop%.LifoQueue",
      raises_here(aloop.Queue().put_nowait, aloop.LifoQueue(), 1))
    assert.matches("aloop Condition expected, got number",
      raises_here(aloop.Condition().notify, 5))
    assert.matches("aloop Barrier expected, got nan",
      raises_here(aloop.Barrier(1).parties, 0 / 0))
  end)

  it("metamethods check their object (B2)", function()
    for cls, e in pairs(objects()) do
      local mt = getmetatable(e[1])
      assert.matches("bad argument #1 to '__tostring' %(aloop " .. cls .. " expected, got nil%)",
        raises_here(mt.__tostring))
      assert.matches("<aloop%." .. cls .. " ", tostring(e[1]))
      if mt.__close then
        assert.matches("bad argument #1 to '__close' %(aloop " .. cls .. " expected, got table%)",
          raises_here(mt.__close, {}))
      end
    end
  end)

  it("q.put_nowait(x) no longer enqueues nil; q.shutdown(true) raises (W5)", function()
    local q = aloop.Queue()
    assert.matches("bad argument #1 to 'put_nowait' %(aloop Queue expected, got string%)",
      raises_here(q.put_nowait, "job"))
    assert.matches("bad argument #1 to 'put' %(aloop Queue expected, got string%)",
      raises_here(q.put, "job2"))
    assert.equal(0, q:qsize())
    q:put_nowait("a")
    assert.matches("bad argument #1 to 'shutdown' %(aloop Queue expected, got boolean%)",
      raises_here(q.shutdown, true))
    assert.is_false(q:is_shutdown())
    assert.equal("a", q:get_nowait())
  end)

  it("a queue's method given another queue of its class works on that one (W5)", function()
    local q1, q2 = aloop.Queue(), aloop.Queue()
    q1.put_nowait(q2, "x")
    assert.equal(0, q1:qsize())
    assert.equal(1, q2:qsize())
    assert.equal("x", q1.get_nowait(q2))
  end)

  it("nothing internal is reachable from the objects (B2, N2)", H.async(function()
    for cls, e in pairs(objects()) do
      local obj = e[1]
      if cls:find("Queue$") then
        for k, v in pairs(obj) do assert.is_function(v, k) end
      else
        assert.is_nil(next(obj), cls)
      end
      assert.is_nil(obj._describe, cls)
      assert.is_nil(obj._q, cls)
    end
    local tg <close> = aloop.TaskGroup()
    assert.is_nil(next(tg))
    assert.is_nil(tg._on_task_done)
    assert.is_nil(tg._abort)
    local scope <close> = aloop.timeout(1)
    assert.is_nil(scope._task)
    assert.is_nil(aloop._WaitQueue)
  end))

  it("a predicate or a task function is checked at the call (B2)", H.async(function()
    local cond = aloop.Condition()
    assert.matches("bad argument #1 to 'wait_for' %(function expected, got number%)",
      raises_here(cond.wait_for, cond, 5))
    local tg <close> = aloop.TaskGroup()
    assert.matches("bad argument #1 to 'create_task' %(function expected, got nil%)",
      raises_here(tg.create_task, tg, nil))
    assert.matches("bad argument #1 to 'spawn' %(function expected, got string%)",
      raises_here(tg.spawn, tg, "f"))
    assert.matches("bad argument #1 to 'create_task' %(aloop TaskGroup expected, got nil%)",
      raises_here(tg.create_task))
  end))

  it("errors of the Lua parts name the function called at the caller's line (B3)", H.async(function()
    assert.matches("a task cannot await itself",
      raises_here(aloop.wait_for, aloop.current_task(), 1))
    local scope <close> = aloop.timeout(1)
    assert.matches("bad argument #1 to 'reschedule'", raises_here(scope.reschedule, scope, "x"))
    assert.matches("aloop Timeout expected, got nil", raises_here(scope.when))
    -- a waiting method from a finaliser: it names itself, at its caller
    local e
    setmetatable({}, { __gc = function()
      e = select(2, pcall(aloop.wait_for, aloop.Future(), 1))
    end })
    collectgarbage()
    collectgarbage()
    assert.matches("aloop%.wait_for cannot wait here", e)
    assert.not_matches("aloop/", e)
  end))

  it("waiting methods outside a task name themselves at the caller's line (B3)", function()
    local b = aloop.Barrier(2)
    assert.matches("aloop%.Barrier:wait called outside a task", raises_here(b.wait, b))
    local cond = aloop.Condition()
    assert.matches("aloop%.Condition:wait_for called outside a task",
      raises_here(cond.wait_for, cond, function() return true end))
    local q = aloop.Queue()
    q:put_nowait(1)
    assert.matches("aloop%.Queue:join called outside a task", raises_here(q.join, q))
    assert.matches("aloop%.Queue:get called outside a task", raises_here(aloop.Queue().get, aloop.Queue()))
    local lock = aloop.Lock()
    lock:acquire() -- free: works outside a task
    assert.matches("aloop%.Lock:acquire called outside a task", raises_here(lock.acquire, lock))
    -- Barrier:reset and abort take its lock: free, they work anywhere
    b:reset()
    b:abort()
    assert.is_true(b:broken())
  end)

  it("a TaskGroup closed outside a task while it has children says so and stays whole (fuzz)",
    H.async(function()
      local tg = aloop.TaskGroup()
      local child = tg:create_task(aloop.sleep, 0.01, "done")
      local e
      aloop.get_running_loop():call_soon(function()
        e = raises_here(getmetatable(tg).__close, tg)
      end)
      aloop.sleep(0)
      assert.matches("aloop%.TaskGroup:__close called outside a task", e)
      tg:__close() -- in the task: waits for the child, as it would have
      assert.equal("done", child:result())
    end))

  it("a PriorityQueue put whose item does not compare leaves the queue as it was (N1)", function()
    local pq = aloop.PriorityQueue()
    for _, v in ipairs({ 5, 1, 4, 2, 3 }) do pq:put_nowait(v) end
    local e = raises_here(pq.put_nowait, pq, "x")
    assert.matches("bad argument #1 to 'put_nowait' %(item does not compare with the queued ones: " ..
      "attempt to compare", e)
    assert.equal(5, pq:qsize())
    aloop.run(function()
      e = raises_here(pq.put, pq, { "x" })
      assert.matches("bad argument #1 to 'put' %(item does not compare", e)
    end)
    local out = {}
    while not pq:empty() do out[#out + 1] = pq:get_nowait() end
    assert.same({ 1, 2, 3, 4, 5 }, out)
    -- and the queue works on after it
    pq:put_nowait(7)
    assert.equal(7, pq:get_nowait())
  end)

  it("a PriorityQueue comparator that raises loses no item and keeps none (W6)", function()
    local pq = aloop.PriorityQueue(0, { lt = function(a, b)
      if (a.id == "new" and b.id == "root") or (b.id == "new" and a.id == "root") then
        error("cannot compare new with root", 0)
      end
      return a.p < b.p
    end })
    pq:put_nowait({ id = "root", p = 1 })
    pq:put_nowait({ id = "five", p = 5 })
    pq:put_nowait({ id = "three", p = 3 })
    local ok, err = pcall(pq.put_nowait, pq, { id = "new", p = 2 })
    assert.is_false(ok)
    assert.equal("cannot compare new with root", err) -- the comparator's error, unchanged
    assert.equal(3, pq:qsize())
    local out = {}
    while not pq:empty() do out[#out + 1] = pq:get_nowait().id end
    assert.same({ "root", "three", "five" }, out)
  end)

  it("a PriorityQueue get whose comparator raises keeps the items (W6)", function()
    local fail = false
    local pq = aloop.PriorityQueue(0, { lt = function(a, b)
      if fail then error("lt failed", 0) end
      return a < b
    end })
    for _, v in ipairs({ 3, 1, 2, 5, 4 }) do pq:put_nowait(v) end
    fail = true
    local ok, err = pcall(pq.get_nowait, pq)
    assert.same({ false, "lt failed" }, { ok, err })
    assert.equal(5, pq:qsize())
    fail = false
    local out = {}
    while not pq:empty() do out[#out + 1] = pq:get_nowait() end
    assert.same({ 1, 2, 3, 4, 5 }, out)
  end)

  it("a PriorityQueue used again in the middle of its own put or get stays whole (N4)", function()
    -- What a finaliser does when the collector runs during a comparison:
    -- the comparator itself uses the queue, at every 7th call.
    local pq, calls, inner, taken, puts_inner = nil, 0, 0, {}, 0
    pq = aloop.PriorityQueue(0, { lt = function(a, b)
      calls = calls + 1
      if calls % 7 == 0 and inner < 200 then
        inner = inner + 1
        if inner % 2 == 0 and not pq:empty() then
          local v = pq:get_nowait()
          taken[#taken + 1] = v
        else
          pq:put_nowait(1000 + inner)
          puts_inner = puts_inner + 1
        end
      end
      return a < b
    end })
    local put = 0
    for i = 1, 300 do
      pq:put_nowait((i * 7919) % 1000)
      put = put + 1
      if i % 3 == 0 then
        local v = pq:get_nowait() -- (the comparator may append to `taken` meanwhile)
        taken[#taken + 1] = v
      end
    end
    local rest = {}
    while not pq:empty() do
      local v = pq:get_nowait()
      rest[#rest + 1] = v
    end
    for i = 2, #rest do assert.is_true(rest[i - 1] <= rest[i], "order at " .. i) end
    assert.equal(put + puts_inner, #taken + #rest)
  end)

  it("a PriorityQueue emptied by its comparator in the middle of a put starts over (torture)",
    function()
      local q, emptying = nil, false
      local taken = {}
      q = aloop.PriorityQueue(0, { lt = function(a, b)
        if emptying then
          emptying = false
          while not q:empty() do taken[#taken + 1] = q:get_nowait() end
        end
        return a < b
      end })
      for i = 1, 8 do q:put_nowait(i * 10) end
      emptying = true
      q:put_nowait(5) -- its walk up meets a heap that is gone: it starts over
      assert.same({ 10, 20, 30, 40, 50, 60, 70, 80 }, taken)
      assert.equal(1, q:qsize())
      assert.equal(5, q:get_nowait())
    end)

  it("PriorityQueue under finalisers that use it stays whole (N4)", function()
    local pq = aloop.PriorityQueue()
    local added, removed = 0, 0
    local function junk(n)
      for _ = 1, n do
        setmetatable({}, { __gc = function()
          if removed < added and (added + removed) % 2 == 0 then
            pq:get_nowait(); removed = removed + 1
          else
            pq:put_nowait(added % 97); added = added + 1
          end
        end })
      end
    end
    collectgarbage("incremental", 1, 100)
    local ok, err = pcall(function()
      for i = 1, 3000 do
        junk(3)
        pq:put_nowait(i % 89); added = added + 1
        if i % 2 == 0 then pq:get_nowait(); removed = removed + 1 end
      end
    end)
    collectgarbage("incremental", 200, 100)
    collectgarbage()
    assert.is_true(ok, tostring(err))
    assert.equal(added - removed, pq:qsize())
    local prev = -1
    while not pq:empty() do
      local v = pq:get_nowait()
      assert.is_true(prev <= v)
      prev = v
    end
  end)

  it("Server methods and Stream:lines check their object (B2)", N.async(function()
    local srv <close> = aloop.start_server(N.echo, "127.0.0.1", 0)
    for _, m in ipairs({ "start_serving", "is_serving", "close", "wait_closed", "serve_forever",
      "port", "sockets" }) do
      assert.matches("bad argument #1 to '" .. m .. "' %(aloop Server expected, got nil%)",
        raises_here(srv[m]), nil, m)
    end
    assert.matches("aloop Server expected, got aloop%.Lock", raises_here(srv.close, aloop.Lock()))
    assert.matches("bad argument #1 to '__tostring' %(aloop Server expected, got nil%)",
      raises_here(getmetatable(srv).__tostring))
    assert.is_true(srv:is_serving())
    local s <close> = aloop.open_connection("127.0.0.1", srv:port())
    assert.matches("bad argument #1 to 'lines' %(aloop Stream expected, got string%)",
      raises_here(s.lines, "l"))
    s:write("a\nb\n")
    s:write_eof()
    local got = {}
    for line in s:lines() do got[#got + 1] = line end
    assert.same({ "a", "b" }, got)
  end))

  it("outside a loop, start_server raises at the caller's line and keeps no socket (B3)", function()
    local before = N.fds()
    assert.matches("no running event loop",
      raises_here(aloop.start_server, N.echo, "127.0.0.1", 0))
    assert.matches("no running event loop", raises_here(aloop.shield, function() end))
    assert.equal(before, N.fds())
  end)

  it("globals replaced or removed by a script do not break aloop (W8)", function()
    local out, err, code = H.aloop({ "-e", [[
      local aloop = require "aloop"
      local G = {}
      for _, k in ipairs({ "pairs", "ipairs", "next", "string", "table", "math", "getmetatable",
        "setmetatable", "type", "error", "select", "tostring", "tonumber", "pcall", "rawget" }) do
        G[k] = _G[k]
      end
      local print, xpcall, traceback = print, xpcall, debug.traceback
      local res = {}
      local ok, e = xpcall(aloop.run, traceback, function()
        for k in G.pairs(G) do _G[k] = nil end
        pairs = function() error("pairs is disabled") end
        local t = aloop.create_task(aloop.sleep, 0.01)
        local done = aloop.wait({ t }, { timeout = 5 })
        res[#res + 1] = done[t] and "wait" or "no"
        res[#res + 1] = G.tostring(aloop.Lock()):sub(1, 11)
        local c = aloop.Condition(aloop.Lock())
        do local _ <close> = c:acquire() end
        local tg <close> = aloop.TaskGroup()
        tg:create_task(aloop.sleep, 0)
        local pq = aloop.PriorityQueue()
        pq:put_nowait(2); pq:put_nowait(1)
        res[#res + 1] = pq:get_nowait()
        local q = aloop.Queue(1)
        q:put(1)
        res[#res + 1] = q:get()
        do local _ <close> = aloop.timeout(1) end
        res[#res + 1] = aloop.wait_for(function() return "wf" end, 1)
        for f in aloop.as_completed({ aloop.create_task(aloop.sleep, 0) }) do f:result() end
        res[#res + 1] = G.select(2, G.pcall(aloop.Barrier, 0)):match("bad argument") and "b" or "?"
        for k, v in G.pairs(G) do _G[k] = v end
      end)
      for k, v in G.pairs(G) do _G[k] = v end
      print(ok and table.concat(res, " ") or e)
    ]] })
    assert.equal(0, code, err)
    assert.equal("wait <aloop.Lock 1 1 wf b\n", out)
  end)
end)
