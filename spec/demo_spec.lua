-- The scripts a user runs first: examples/qwinsta.lua and quser.lua print
-- what the Windows commands print, and examples/demo.lua (what `make demo`
-- runs) lists the default host and shows the nightly policy's dry run
-- without touching anything.
local sim = require "support.sim"

local env

local quote = require("support.util").quote

local function run(script, ...)
  local args = { "env -u LD_PRELOAD -u ASAN_OPTIONS",
    "TERMSRV_USER=" .. quote(env.domain .. "\\" .. env.user),
    "TERMSRV_PASSWORD=" .. quote(env.password), "lua5.4", script,
    env.host .. ":" .. env.port }
  for _, a in ipairs({ ... }) do args[#args + 1] = quote(a) end
  local p = io.popen(table.concat(args, " ") .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

setup(function() env = sim.start() end)
teardown(function() sim.stop(env) end)

describe("examples", function()
  it("qwinsta.lua prints qwinsta's table with every session, listener and services included, TYPE filled",
    function()
    local out, ok = run("examples/qwinsta.lua")
    assert.is_true(ok, out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.matches("^ SESSIONNAME%s+USERNAME%s+ID%s+STATE%s+TYPE%s+DEVICE$", lines[1])
    assert.matches("^ services%s+0%s+Disc$", lines[2])
    assert.matches("^ rdp%-tcp#42%s+foo%s+2%s+Active%s+rdpwd$", out:match("\n( rdp%-tcp#42[^\n]*)"))
    assert.matches("^ console%s+1%s+Conn%s+wdcon$", out:match("\n( console[^\n]*)"))
    assert.matches("^%s+alice%s+3%s+Disc$", out:match("\n(%s+alice[^\n]*)"))
    assert.matches("^ rdp%-tcp%s+65536%s+Listen$", lines[#lines])
  end)

  it("quser.lua prints users with quser's idle times, measured on the server", function()
    local out, ok = run("examples/quser.lua")
    assert.is_true(ok, out)
    assert.matches("USERNAME%s+SESSIONNAME%s+ID%s+STATE%s+IDLE TIME%s+LOGON TIME", out)
    assert.matches("\n foo%s+rdp%-tcp#42%s+2%s+Active%s+3%s+%d+/%d+/%d%d%d%d", out)
    assert.matches("\n bob%s+4%s+Disc%s+9:00%s", out)
    assert.matches("\n carol%s+5%s+Disc%s+3%+00:00%s", out)
    assert.is_nil(out:find("services", 1, true)) -- quser shows users only
  end)

  it("a wrong password gives one line naming the host and the fix, and a non-zero exit", function()
    local save = env.password
    env.password = "Not-The-Pw-9x"
    local out, ok = run("examples/qwinsta.lua")
    env.password = save
    assert.is_falsy(ok)
    assert.matches("^[^\n]*: connect: [^\n]*SMB logon refused %[EACCES%] %(hint: wrong password", out)
    assert.is_nil(out:find("Not-The-Pw-9x", 1, true))
  end)
end)

describe("the demo", function()
  it("lists the sessions, then shows the nightly plan as a dry run that touches nothing", function()
    sim.clear_log(env)
    local out, ok = run("examples/demo.lua", "TS01")
    assert.is_true(ok, out)
    assert.matches("sessions on TS01", out)
    assert.matches("dry run, nothing done yet", out)
    assert.matches("TS01%s+5%s+CORP\\carol%s+Disc%s+3d%s+3d%s+stale%-disconnected%s+logoff>reset", out)
    assert.matches("TS01%s+6%s+CORP\\dave%s+Active%s+2h%s+%-%s+idle%-active%s+message%+10m>disconnect", out)
    assert.matches("svc_backup: excluded by policy", out)
    for _, c in ipairs(sim.calls(env, { event = "call" })) do
      assert.is_nil(c.method:find("Logoff") or c.method:find("Reset") or c.method:find("Disconnect")
        or c.method:find("Message"), c.method)
    end
    assert.equals(10, #sim.state(env, "TS01").sessions)
  end)
end)
