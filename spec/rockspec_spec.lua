-- The rockspec builds and installs offline into a private tree, and the
-- installed module loads and works without the source tree.
describe("termsrv-scm-1.rockspec", function()
  it("installs with `luarocks --lua-version=5.4 make` offline, and the installed module loads", function()
    local tree = os.tmpname()
    os.remove(tree)
    local log = tree .. ".log"
    local ok = os.execute(string.format(
      "env -u LD_PRELOAD luarocks --lua-version=5.4 --tree=%s make --deps-mode=none termsrv-scm-1.rockspec >%s 2>&1",
      tree, log))
    local out = io.open(log):read("a")
    assert.is_true(ok, out)
    local p = io.popen(string.format("env -u LD_PRELOAD -u LUA_PATH -u LUA_CPATH lua5.4 -e '"
      .. "package.path=\"%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;\" .. package.path;"
      .. "package.cpath=\"%s/lib/lua/5.4/?.so;\" .. package.cpath;"
      .. "local t = require \"termsrv\"; assert(t.fleet and require \"termsrv.proc\" and require \"termsrv.cli\");"
      .. "print(t.version, t.strerror(0x80070005).code, package.searchpath(\"termsrv.core\", package.cpath))'",
      tree, tree, tree))
    local line = p:read("a")
    p:close()
    -- the command is installed, and its wrapper finds the installed modules
    local q = io.popen(string.format("env -u LD_PRELOAD LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' "
      .. "LUA_CPATH='%s/lib/lua/5.4/?.so;;' %s/bin/termsrv --version 2>&1", tree, tree, tree, tree))
    local version = q:read("a")
    q:close()
    os.execute("rm -rf " .. tree .. " " .. log .. " src/*.o")
    assert.matches("^termsrv %d", version)
    assert.matches("^%d+%.%d+%.%d+\taccess_denied\t" .. tree:gsub("%p", "%%%0"), line)
  end)
end)
