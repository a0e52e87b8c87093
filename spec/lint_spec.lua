-- luacheck over every Lua file of the project (the same set as `make lint`),
-- so that CI enforces it.
describe("luacheck", function()
  it("finds nothing in lua/, spec/, examples/, bench/, sim/, bin/termsrv and the doc generator", function()
    local p = io.popen("env -u LD_PRELOAD luacheck --no-color --formatter plain "
      .. "lua spec examples bench sim bin/termsrv .busted doc-src/helpgen.lua config.ld 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.equals("", out)
  end)
end)
