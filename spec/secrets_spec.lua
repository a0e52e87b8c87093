-- A process that holds a password leaves no core file and cannot be
-- ptraced by other processes of its uid: a crashing worker with core dumps
-- switched on used to write the password into `core`. Each case runs a
-- fresh lua5.4 that logs on to the simulator and then crashes itself with
-- SIGSEGV, in a directory of its own, with `ulimit -c unlimited` (or as
-- high as the hard limit allows).
local sim = require "support.sim"
local support = require "support.cli"

local TMP = support.scratch()
local q = support.q
local ROOT = sim.root:sub(1, 1) == "/" and sim.root or (io.popen("cd " .. q(sim.root) .. " && pwd"):read("l"))

-- the child: connect (the password is now in its memory), report, crash
local CHILD = [[
local build = os.getenv("TERMSRV_BUILD") or "build"
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. package.path
package.cpath = ROOT .. "/" .. build .. "/?.so;" .. package.cpath
local termsrv = require "termsrv"
local proc = require "termsrv.proc"
local h = assert(termsrv.connect{ host = "127.0.0.1", port = PORT, user = USER, domain = DOMAIN,
                                  password = PASSWORD })
assert(h:sessions())
local dumpable, limit = proc.dump_state()
io.write(tostring(dumpable), " ", tostring(limit), "\n")
io.flush()
proc.kill(proc.getpid(), proc.signals.SEGV)
]]

describe("secrets and core dumps", function()
  local env

  setup(function() env = sim.start{ config = "spec/fixtures/sim/cli.lua" } end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  -- runs the child in DIR; returns what it printed and the core file's bytes (or nil)
  local function crash(dir, allow)
    os.execute("mkdir -p " .. q(dir))
    local script = string.format("ROOT, PORT, USER, DOMAIN, PASSWORD = %q, %d, %q, %q, %q\n",
      ROOT, env.port, env.user, env.domain, env.password) .. CHILD
    support.spit(dir .. "/child.lua", script)
    local p = assert(io.popen("cd " .. q(dir) .. " && { ulimit -c unlimited || ulimit -c \"$(ulimit -H -c)\"; } 2>/dev/null; "
      .. "env -u TERMSRV_ALLOW_CORE_DUMPS "
      .. (allow and "TERMSRV_ALLOW_CORE_DUMPS=1 " or "") .. "lua5.4 child.lua 2>child.err"))
    local out = p:read("a")
    p:close()
    if out == "" then out = "(nothing; stderr: " .. tostring(support.slurp(dir .. "/child.err")) .. ")" end
    local lp = assert(io.popen("ls " .. q(dir)))
    local core
    for name in lp:read("a"):gmatch("[^\n]+") do
      if name:match("^core") then core = support.slurp(dir .. "/" .. name) end
    end
    lp:close()
    return out, core
  end

  it("a process holding a password is not dumpable and writes no core when it crashes", function()
    local out, core = crash(TMP .. "/protected", false)
    assert.equal("false 0\n", out)
    assert.is_nil(core)
  end)

  it("TERMSRV_ALLOW_CORE_DUMPS=1 keeps core dumps for debugging, and they hold the password", function()
    local out, core = crash(TMP .. "/allowed", true)
    assert.matches("^true ", out)
    if not core then
      pending("no ./core here (hard limit or core_pattern): " ..
        (support.slurp("/proc/sys/kernel/core_pattern") or "?"))
      return
    end
    -- what the protection is for: the secret is in the dump
    assert.truthy(core:find(env.password, 1, true), "the password in the core file")
  end)
end)
