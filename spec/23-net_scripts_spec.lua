-- 23-net_scripts_spec.lua -- the network scripts, run by the aloop command:
-- scripts/echo_server.lua with scripts/echo_client.lua talking to it, and
-- scripts/check_hosts.lua over a port that answers, one that refuses and
-- one that never answers (a full backlog), all checked at once.
local aloop = require "aloop"
dofile("spec/net_helper.lua")

local function cmdline(script, args)
  local parts = { H.wrap or "", H.quote(H.bin), H.quote(script) }
  for _, a in ipairs(args or {}) do parts[#parts + 1] = H.quote(a) end
  return table.concat(parts, " ")
end

describe("scripts/echo_server.lua and echo_client.lua", function()
  it("echo a message, printing what each side did", function()
    -- the server runs in the background; its first lines: pid, then port
    local server = assert(io.popen("echo $$; exec " .. cmdline("scripts/echo_server.lua", { "0" }) .. " 2>&1", "r"))
    local pid = server:read("l")
    local serving = server:read("l")
    local port = serving and serving:match("^Serving on 127%.0%.0%.1:(%d+)$")
    assert.is_not_nil(port, serving)
    local out, err, code = H.aloop({ "scripts/echo_client.lua", "127.0.0.1", port, "hello" })
    os.execute("kill " .. pid)
    local rest = server:read("a")
    server:close()
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal('Send: "hello"\nReceived: "hello"\nClose the connection\n', out)
    assert.matches('^Received "hello" from 127%.0%.0%.1:%d+\nSend: "hello"\nClose the connection\n', rest)
  end)
end)

describe("scripts/check_hosts.lua", function()
  it("checks every host at once, each with its time limit", H.async(function()
    -- answers: a listening socket (the kernel completes the handshake)
    local up <close> = aloop.start_server(print, "127.0.0.1", 0, { start_serving = false })
    -- refuses: a port nobody listens on any more
    local gone = aloop.start_server(print, "127.0.0.1", 0)
    local refused = gone:port()
    gone:close()
    gone:wait_closed()
    -- never answers: backlog 0, filled by one connection
    local full <close> = aloop.start_server(print, "127.0.0.1", 0, { backlog = 0, start_serving = false })
    local _filler <close> = aloop.open_connection("127.0.0.1", full:port())
    local out, err, code, secs = H.aloop({ "scripts/check_hosts.lua", "-t", "0.5",
      "127.0.0.1:" .. up:port(), "127.0.0.1:" .. refused, "127.0.0.1:" .. full:port(),
      "localhost:" .. up:port(), "nonsense" })
    assert.equal("", err)
    assert.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(6, #lines, out)
    assert.matches("^127%.0%.0%.1:%d+ +open %([%d.]+ ms%)$", lines[1])
    assert.matches("^127%.0%.0%.1:%d+ +closed %(ECONNREFUSED: connection refused", lines[2])
    assert.matches("^127%.0%.0%.1:%d+ +no answer within 0%.5 s$", lines[3])
    assert.matches("^localhost:%d+ +open", lines[4])
    assert.matches("^nonsense +bad target", lines[5])
    assert.equal("2 of 5 answered", lines[6])
    -- at once: the hanging one's 0.5 s, not a sum
    assert.is_true(secs < (H.wrap and 5 or 1.5), "took " .. secs .. " s")
  end))
end)
