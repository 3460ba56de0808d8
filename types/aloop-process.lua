---@meta aloop
-- LuaLS definitions for standard input and subprocesses (docs/api.md,
-- "Standard input" and "Subprocesses"). They add to the class `aloop` of
-- aloop.lua in this folder.

---@class aloop
local aloop = {}

---Writes `prompt` to io.stdout, flushes it, and waits (without blocking the
---loop) for the next line of standard input, returned without its "\n";
---nil at the end of input. Cancellable: nothing read is lost. Needs a task.
---@param prompt? string
---@return string?
function aloop.input(prompt) end

---The read-only stream of standard input, shared with `aloop.input`.
---@return aloop.Stream
function aloop.stdin() end

---@alias aloop.StdioOption "pipe"|"inherit"|"null"|"stdout"|file*

---@class aloop.SubprocessOptions
---"pipe" gives `p.stdin`; "inherit" (default), "null", or an open file.
---@field stdin? aloop.StdioOption
---"pipe" gives `p.stdout`.
---@field stdout? aloop.StdioOption
---"pipe" gives `p.stderr`; "stdout" sends it where stdout goes.
---@field stderr? aloop.StdioOption
---The child's whole environment.
---@field env? table<string, string|number>
---The directory the child starts in.
---@field cwd? string
---The pipe streams' readline limit (65536).
---@field limit? integer

---@class aloop.Process
---@field pid integer
---nil while the child runs; its exit status, or minus the signal that killed it.
---@field returncode integer?
---@field stdin aloop.Stream?
---@field stdout aloop.Stream?
---@field stderr aloop.Stream?
local Process = {}

---Waits for the child to exit; cancelling the wait leaves it running.
---@return integer returncode
function Process:wait() end

---Feeds `input` to stdin and closes it, reads stdout and stderr to their
---ends at once, then waits for the exit.
---@param input? string
---@return string? stdout
---@return string? stderr
function Process:communicate(input) end

---@param sig integer|string a number or a name ("SIGHUP", "HUP")
function Process:send_signal(sig) end

---SIGTERM.
function Process:terminate() end

---SIGKILL.
function Process:kill() end

---@class aloop.subprocess
---@field PIPE "pipe"
---@field DEVNULL "null"
---@field STDOUT "stdout"
local subprocess = {}

---Starts `program` (looked up in PATH without a slash) with the arguments;
---the last argument may be the options. Raises the OS error (ENOENT ...) at
---once when it cannot be started.
---@param program string
---@param ... string|number|aloop.SubprocessOptions
---@return aloop.Process
function subprocess.exec(program, ...) end

---Runs `cmd` with /bin/sh -c.
---@param cmd string
---@param opts? aloop.SubprocessOptions
---@return aloop.Process
function subprocess.shell(cmd, opts) end

aloop.subprocess = subprocess
