-- .luacheckrc -- luacheck's settings for `make lint`: Lua 5.4 everywhere,
-- busted's globals and the harness's H in the specs.
std = "lua54"
max_line_length = 120

exclude_files = {
  "spec/fixtures/cli_syntax.lua", -- a syntax error on purpose (06-command)
}

files["spec"] = {
  std = "+busted",
  globals = { "H" }, -- spec/helper.lua sets it
}

-- To-be-closed variables held only for their __close (`local _fin <close>`).
ignore = { "211/_.+" }
