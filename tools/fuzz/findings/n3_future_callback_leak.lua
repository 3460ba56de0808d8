-- N3 (new; make torture: "tasks or anchors left after the last run"): a
-- pending Future with a done callback is anchored for ever, even when
-- nothing else refers to it: the memory is never given back.
local aloop = require "aloop"
for _ = 1, 100000 do
  local f = aloop.Future()
  f:add_done_callback(function() end)
end
collectgarbage()
collectgarbage()
print("anchored:", aloop._stats().anchored, "heap KB:", math.floor(collectgarbage("count")))
--> anchored: 100000   (0 expected)
