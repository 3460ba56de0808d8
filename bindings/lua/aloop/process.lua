-- aloop/process.lua -- standard input (aloop.stdin, aloop.input) and
-- subprocesses (aloop.subprocess.exec / shell and the Process object) on
-- the C side in bindings/lproc.c. Loaded once with the module table and
-- the private helpers P.
local aloop, P = ...

local proc = aloop._proc
local create_task = aloop.create_task
local type, error, pcall, setmetatable, tostring, select, pairs, rawget, rawset =
  type, error, pcall, setmetatable, tostring, select, pairs, rawget, rawset
local mtype, iotype = math.type, io.type

local DEFAULT_LIMIT = 64 * 1024

------------------------------------------------------------------------------
-- Standard input: one stream per state, shared by stdin() and input(), so
-- that what one read ahead the other gets.

local stdin_stream

function aloop.stdin()
  if stdin_stream == nil or stdin_stream:is_closing() then
    stdin_stream = proc.stdin(DEFAULT_LIMIT)
  end
  return stdin_stream
end

-- input([prompt]) -> the next line without its "\n", or nil at the end of
-- input. Other tasks run while it waits; a cancelled input loses nothing.
function aloop.input(prompt)
  if prompt ~= nil then
    if type(prompt) ~= "string" and type(prompt) ~= "number" then
      prompt = tostring(prompt)
    end
    io.stdout:write(prompt)
  end
  io.stdout:flush()
  P.need_task("input")
  local line = aloop.stdin():readline()
  if line == "" then return nil end
  if line:byte(-1) == 10 then line = line:sub(1, -2) end
  return line
end

------------------------------------------------------------------------------
-- Subprocesses

local methods = {}

-- The handle of each Process is private: HANDLES[p] (weak keys), so one
-- lookup both checks `self` and finds it, and nothing reaches it from p.
local HANDLES = setmetatable({}, { __mode = "k" })

local function handle(self, fname)
  local h = HANDLES[self]
  if h == nil then P.typeerror(self, 1, fname, "aloop Process", 2) end
  return h
end

local Process = { __name = "aloop.Process", __metatable = methods }

function Process.__index(self, k)
  if k == "returncode" then -- reaped on the spot if it has exited
    local rc = HANDLES[self]:poll()
    if rc ~= nil then rawset(self, "returncode", rc) end
    return rc
  end
  return methods[k]
end

function Process.__tostring(self)
  handle(self, "__tostring")
  local rc = self.returncode
  return string.format("<aloop.Process %d %s>", self.pid,
    rc == nil and "running" or ("returncode=" .. rc))
end

-- wait() -> returncode, once the child has exited. Cancelling it leaves
-- the child running.
function methods.wait(self)
  local h = handle(self, "wait")
  P.need_task("Process:wait")
  local rc = rawget(self, "returncode")
  if rc ~= nil then return rc end
  rc = h:wait()
  rawset(self, "returncode", rc)
  return rc
end

local function is_pipe_gone(e)
  return type(e) == "table" and (e.code == "EPIPE" or e.code == "ECONNRESET")
end

-- communicate([input]) -> stdout, stderr (strings, or nil for a stream
-- that is not a pipe): feeds input to stdin and closes it, reads both
-- outputs to their end at the same time, then waits for the child.
function methods.communicate(self, input)
  handle(self, "communicate")
  if input ~= nil and type(input) ~= "string" then
    P.typeerror(input, 1, "communicate", "string or nil")
  end
  P.need_task("Process:communicate")
  local sin, sout, serr = self.stdin, self.stdout, self.stderr
  if input ~= nil and not sin then
    error(aloop.error("ValueError", "communicate: input given but stdin is not a pipe"), 2)
  end
  local function feed()
    if not sin then return end
    if input and #input > 0 then
      local ok, e = pcall(function() sin:write(input); sin:drain() end)
      if not ok and not is_pipe_gone(e) then
        sin:close()
        error(e, 0)
      end
    end
    sin:close()
  end
  local function slurp(s)
    if not s then return nil end
    local d = s:read()
    s:close()
    return d
  end
  local tin = create_task(feed)
  local terr = create_task(slurp, serr)
  local out, err
  local ok, e = pcall(function()
    out = slurp(sout)
    tin:await()
    err = terr:await()
  end)
  if not ok then -- cancelled (or a read failed): stop the helpers
    tin:cancel()
    terr:cancel()
    error(e, 0)
  end
  self:wait()
  return out, err
end

local signums = proc.signals

local function check_sig(sig, fname)
  if type(sig) == "string" then
    local n = signums[sig] or signums["SIG" .. sig]
    if not n then P.argerror(1, fname, "unknown signal '" .. sig .. "'", 2) end
    return n
  end
  if mtype(sig) ~= "integer" then P.typeerror(sig, 1, fname, "signal number or name", 2) end
  if sig < 0 or sig > 64 then P.argerror(1, fname, "not a signal number", 2) end
  return sig
end

function methods.send_signal(self, sig)
  handle(self, "send_signal"):signal(check_sig(sig, "send_signal"))
end

function methods.terminate(self) handle(self, "terminate"):signal(signums.SIGTERM) end

function methods.kill(self) handle(self, "kill"):signal(signums.SIGKILL) end

local modes = { pipe = true, inherit = true, null = true }

local function check_mode(v, name, fname, argn)
  if v == nil then return "inherit" end
  if modes[v] or (v == "stdout" and name == "stderr") then return v end
  if iotype(v) == "file" then return v end
  if iotype(v) == "closed file" then
    P.argerror(argn, fname, name .. " is a closed file", 3)
  end
  P.argerror(argn, fname, name .. ' must be "pipe", "inherit", "null"' ..
    (name == "stderr" and ', "stdout"' or "") .. " or an open file", 3)
end

local function spawn(fname, file, argv, opts, argn, search)
  if opts == nil then opts = {}
  elseif type(opts) ~= "table" then P.typeerror(opts, argn, fname, "table", 2) end
  local env = opts.env
  if env ~= nil then
    if type(env) ~= "table" then P.argerror(argn, fname, "env must be a table", 2) end
    for k, v in pairs(env) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
        P.argerror(argn, fname, "env must map names to strings", 2)
      end
    end
  end
  local cwd = opts.cwd
  if cwd ~= nil and type(cwd) ~= "string" then P.argerror(argn, fname, "cwd must be a string", 2) end
  local limit = opts.limit
  if limit == nil then limit = DEFAULT_LIMIT
  elseif mtype(limit) ~= "integer" or limit < 1 then
    P.argerror(argn, fname, "limit must be a positive integer", 2)
  end
  local m0 = check_mode(opts.stdin, "stdin", fname, argn)
  local m1 = check_mode(opts.stdout, "stdout", fname, argn)
  local m2 = check_mode(opts.stderr, "stderr", fname, argn)
  local h, pid, sin, sout, serr = proc.spawn(file, argv, env, cwd, m0, m1, m2, search, limit)
  local p = setmetatable({ pid = pid, stdin = sin, stdout = sout, stderr = serr }, Process)
  HANDLES[p] = h
  return p
end

local subprocess = {}
aloop.subprocess = subprocess

subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT = "pipe", "null", "stdout"

-- exec(program, arg1, ..., [opts]) -> Process
function subprocess.exec(program, ...)
  local fname = "exec"
  if type(program) ~= "string" then P.typeerror(program, 1, fname, "string") end
  local n = select("#", ...)
  local opts
  if n > 0 and type((select(n, ...))) == "table" then
    opts = (select(n, ...))
    n = n - 1
  end
  local argv = { program }
  for i = 1, n do
    local a = (select(i, ...))
    if type(a) == "number" then a = tostring(a)
    elseif type(a) ~= "string" then P.typeerror(a, i + 1, fname, "string") end
    argv[i + 1] = a
  end
  return spawn(fname, program, argv, opts, n + 2, true)
end

-- shell(cmd [, opts]) -> Process: cmd run by /bin/sh -c.
function subprocess.shell(cmd, opts)
  local fname = "shell"
  if type(cmd) ~= "string" then P.typeerror(cmd, 1, fname, "string") end
  return spawn(fname, "/bin/sh", { "/bin/sh", "-c", cmd }, opts, 2, false)
end

subprocess.Process = methods
return subprocess
