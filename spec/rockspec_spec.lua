-- Installing as the README's "Install" section says: the rockspec lists
-- every module, `luarocks --lua-version=5.4 make` installs offline into a
-- private tree, and the installed `termsrv` runs from another directory
-- against the simulator; a release rockspec builds from its git tag; a
-- missing Lua dependency says what to install.
local sim = require "support.sim"
local util = require "support.util"
local core = require "termsrv.core"

local q, slurp = util.quote, util.slurp
local CLEAN = "unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS LUA_PATH LUA_CPATH; "

-- Runs a shell command; returns its output (stdout and stderr) and success.
local function sh(cmd)
  local p = assert(io.popen("{ " .. cmd .. "; } 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function scratch()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  return dir
end

local function load_rockspec(path)
  local env = {}
  assert(loadfile(path, "t", env))()
  return env
end

-- The environment that `luarocks path` gives for a tree, and its bin/ first on PATH.
local function tree_env(tree)
  local out, ok = sh(CLEAN .. "luarocks --lua-version=5.4 --tree=" .. q(tree) .. " path")
  assert(ok, out)
  return out:gsub("\n", "; ") .. " export PATH=" .. q(tree .. "/bin") .. ":\"$PATH\"; "
end

describe("the rockspec", function()
  it("lists every Lua module of lua/ (a module left out breaks the installed command)", function()
    local spec = load_rockspec("termsrv-scm-1.rockspec")
    local out = sh("cd lua && find termsrv -name '*.lua' | sort")
    for file in out:gmatch("[^\n]+") do
      local name = file:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      assert.equals("lua/" .. file, spec.build.modules[name], "module " .. name .. " missing from the rockspec")
    end
    assert.matches("^git%+https://", spec.source.url)
    assert.same({ "lua >= 5.4, < 5.5", "dkjson >= 2.5", "argparse >= 0.7", "luafilesystem >= 1.8",
      "luasystem >= 0.2" }, spec.dependencies)
  end)

  -- the version the code says (termsrv.core.version) is the next or the last
  -- release: its rockspec builds what the scm one builds (regenerate it with
  -- `make rockspec VERSION=X.Y.Z`)
  it("has a release rockspec for this version: the same build, from the tag v" .. core.version, function()
    local scm = load_rockspec("termsrv-scm-1.rockspec")
    local rel = load_rockspec("rockspecs/termsrv-" .. core.version .. "-1.rockspec")
    assert.equals(core.version .. "-1", rel.version)
    assert.equals(scm.source.url, rel.source.url)
    assert.equals("v" .. core.version, rel.source.tag)
    assert.same(scm.build, rel.build)
    assert.same(scm.dependencies, rel.dependencies)
    assert.same(scm.external_dependencies, rel.external_dependencies)
  end)
end)

describe("installing with luarocks", function()
  local env, tree, elsewhere
  setup(function()
    env = sim.start()
    tree, elsewhere = scratch(), scratch()
  end)
  teardown(function()
    sim.stop(env)
    os.execute("rm -rf " .. q(tree) .. " " .. q(elsewhere) .. " src/*.o")
  end)

  it("`luarocks make` installs a termsrv that lists users from another directory", function()
    local out, ok = sh(CLEAN .. "luarocks --lua-version=5.4 --tree=" .. q(tree)
      .. " make --deps-mode=none termsrv-scm-1.rockspec")
    assert.is_true(ok, out)
    local run = CLEAN .. tree_env(tree) .. "cd " .. q(elsewhere) .. " && "
    local version = sh(run .. "command -v termsrv && termsrv --version")
    assert.equals(tree .. "/bin/termsrv\ntermsrv " .. core.version .. "\n", version)
    local users, uok = sh(run .. "TERMSRV_USER=" .. q(env.domain .. "\\" .. env.user)
      .. " TERMSRV_PASSWORD=" .. q(env.password) .. " termsrv users " .. q(env.host .. ":" .. env.port))
    assert.is_true(uok, users)
    assert.matches("^ USERNAME%s+SESSIONNAME%s+ID%s+STATE%s+IDLE TIME%s+LOGON TIME\n", users)
    assert.matches("\n bob%s+4%s+Disc%s+9:00 ", users)
    -- the modules came from the tree, not from the checkout
    local where = sh(run .. "lua5.4 -e 'print(package.searchpath(\"termsrv.cli\", package.path))'")
    assert.equals(tree .. "/share/lua/5.4/termsrv/cli.lua\n", where)
    -- and the REPL's help works there, without LDoc or the checkout
    local help = sh(run .. "lua5.4 -e 'require(\"termsrv\").help(\"Host:sessions\")'")
    assert.equals("Host:sessions([opts])  (termsrv.host)  Lists the sessions of the host.\n", help)
  end)

  it("a release rockspec builds from its git tag", function()
    -- a repository holding this checkout's files (committed or not), tagged as a release
    local repo = elsewhere .. "/termsrv"
    local out, ok = sh("mkdir -p " .. q(repo) .. " && git ls-files -co --exclude-standard -z | "
      .. "xargs -0 cp --parents -t " .. q(repo) .. " && cd " .. q(repo)
      .. " && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm release"
      .. " && git tag v" .. core.version)
    assert.is_true(ok, out)
    local spec = slurp("rockspecs/termsrv-" .. core.version .. "-1.rockspec")
    spec = spec:gsub('url = "git%+https://[^"]*"', 'url = "git+file://' .. repo .. '"')
    util.spit(elsewhere .. "/termsrv-" .. core.version .. "-1.rockspec", spec)
    local rtree = elsewhere .. "/tree"
    out, ok = sh(CLEAN .. "cd " .. q(elsewhere) .. " && luarocks --lua-version=5.4 --tree=" .. q(rtree)
      .. " build --deps-mode=none termsrv-" .. core.version .. "-1.rockspec")
    assert.is_true(ok, out)
    local version = sh(CLEAN .. tree_env(rtree) .. "cd / && termsrv --version")
    assert.equals("termsrv " .. core.version .. "\n", version)
  end)
end)

describe("a missing Lua dependency", function()
  local dir
  setup(function() dir = scratch() end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  -- LUA_PATH without the system's directories: only the modules copied into dir are found
  -- (lua-system is a directory, system/init.lua: its parent's ?/init.lua finds it)
  local function without(name)
    local path = dir .. "/?.lua"
    if name ~= "system" then
      path = path .. ";" .. package.searchpath("system", package.path):gsub("system/init%.lua$", "?/init.lua")
    end
    os.execute("rm -f " .. q(dir) .. "/*.lua")
    for _, other in ipairs{ "dkjson", "argparse" } do
      if other ~= name then
        assert(os.execute("cp " .. q(package.searchpath(other, package.path)) .. " " .. q(dir)))
      end
    end
    return sh("env -u LD_PRELOAD LUA_PATH=" .. q(path) .. " bin/termsrv --version; echo rc=$?")
  end

  it("is named, with its Debian package and its rock, and no traceback", function()
    assert.equals("termsrv: termsrv needs the Lua module dkjson: install lua-dkjson (Debian) or "
      .. "luarocks install dkjson\nrc=2\n", without("dkjson"))
    os.execute("rm -f " .. q(dir) .. "/*")
    assert.equals("termsrv: termsrv needs the Lua module argparse: install lua-argparse (Debian) or "
      .. "luarocks install argparse\nrc=2\n", without("argparse"))
    assert.equals("termsrv: termsrv needs the Lua module system: install lua-system (Debian) or "
      .. "luarocks install luasystem\nrc=2\n", without("system"))
  end)

  it("raises that message from the library too", function()
    local need = require "termsrv.need"
    local ok, err = pcall(need.need, "argparse")
    assert.is_true(ok, err)
    need.PACKAGES.nosuchmodule_spec = { debian = "lua-nosuch", rock = "nosuch" }
    ok, err = pcall(need.need, "nosuchmodule_spec")
    need.PACKAGES.nosuchmodule_spec = nil
    assert.is_false(ok)
    assert.equals("termsrv needs the Lua module nosuchmodule_spec: install lua-nosuch (Debian) or "
      .. "luarocks install nosuch", err)
    assert.has_error(function() need.need("posix") end, "termsrv.need: unknown dependency posix")
  end)
end)
