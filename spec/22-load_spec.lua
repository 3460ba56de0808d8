-- 22-load_spec.lua -- 2 000 concurrent connections to one aloop echo
-- server, 50 round trips of 100 bytes each, every byte accounted for: run
-- as a child aloop process (bench/netload.lua) with a descriptor limit
-- raised for it. `make stress` does the same with 10 000 connections.
describe("load", function()
  it("2 000 connections x 50 round trips: no byte lost, none mixed up", function()
    local n = H.wrap and 200 or 2000
    local cmd = "ulimit -n 8192 && " .. (H.wrap and (H.wrap .. " ") or "") ..
      H.quote(H.bin) .. " bench/netload.lua both " .. n .. " 50"
    local out, err, code = H.sh(cmd)
    assert.equal("", err)
    assert.equal(0, code, out)
    local sent = n * 50 * 100
    assert.matches(string.format("RESULT connections=%d sent=%d received=%d lost=0 failed=0 mismatched=0 echoed=%d ",
      n, sent, sent, sent), out)
  end)
end)
