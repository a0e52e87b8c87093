-- Windows 11 24H2's LSM last input (profiles "win11", "win11-rdp-disabled"):
-- RpcGetSessionInformationEx sends a LastInputTime that is no FILETIME on
-- the host clock (impacket's Windows 11 sample: a date in 1601). The client
-- never makes an idle time of it: it asks the legacy query (server clock)
-- instead, and where there is none idle is unknown and a policy on idle
-- skips the session with that reason, through the real smbd.
local sim = require "support.sim"
local support = require "support.cli"
local termsrv = require "termsrv"

local CONFIG = [[
local sessions = {
  { id = 0, name = "services", state = "Disconnected" },
  { id = 2, name = "rdp-tcp#3", user = "alice", state = "Active", logon = "-5h", last_input = "-3h" },
  { id = 3, user = "bob", state = "Disconnected", logon = "-9h", disconnect = "-2h" },
}
return { hosts = {
  { name = "W11", profile = "win11", sessions = sessions },
  { name = "W11RD", profile = "win11-rdp-disabled", sessions = sessions },
} }
]]

local env

setup(function() env = sim.start{ config_text = CONFIG } end)
teardown(function() sim.stop(env) end)

local function connect(name)
  return assert(termsrv.connect{ host = "127.0.0.1", port = env.ports[name], user = "ops", domain = "CORP",
    password = "Ops-Passw0rd", name = name })
end

local function session(list, id)
  for _, s in ipairs(list) do if s.id == id then return s end end
end

local function near(want, got) return got and math.abs(got - want) <= 120 end

describe("Windows 11's relative LSM last input", function()
  it("the default details (legacy, server clock) give the real idle", function()
    local h <close> = connect("W11")
    local alice = session(assert(h:sessions()), 2)
    assert.is_true(near(3 * 3600, alice.idle), tostring(alice.idle))
  end)

  it("details from LSM: the relative value is not used; the legacy query gives the idle", function()
    sim.clear_log(env)
    local h <close> = connect("W11")
    local list = assert(h:sessions{ source = "lsm_ex" })
    local alice = session(list, 2)
    assert.is_true(near(3 * 3600, alice.idle), tostring(alice.idle))
    assert.is_true(near(os.time() - 3 * 3600, alice.last_input_time))
    assert.is_nil(alice.idle_unknown)
    assert.is_nil(list.errors)
    local ex, legacy = 0, 0
    for _, e in ipairs(sim.calls(env, { host = "W11" })) do
      if e.method == "RpcGetSessionInformationEx" then ex = ex + 1 end
      if e.method == "RpcWinStationQueryInformation" then legacy = legacy + 1 end
    end
    assert.is_true(ex >= 2)
    assert.equals(2, legacy)   -- one per session that has a last input (alice, bob)
  end)

  it("without the legacy pipe idle is unknown, with the reason; the disconnect age still counts", function()
    local h <close> = connect("W11RD")
    local list = assert(h:sessions())
    local alice, bob = session(list, 2), session(list, 3)
    assert.is_nil(alice.idle)
    assert.is_nil(alice.last_input_time)
    assert.matches("no legacy TermSrv pipe", alice.idle_unknown, 1, true)
    assert.is_true(near(2 * 3600, bob.disconnected), tostring(bob.disconnected))
    assert.is_nil(list.errors)
  end)

  it("a policy on idle skips such a session and says why, instead of matching nothing silently", function()
    local h <close> = connect("W11RD")
    local p = assert(termsrv.plan(h, { name = "idle", state = "active", min_idle = "1h", action = "logoff" }))
    assert.equals(0, #p.steps)
    local skipped
    for _, s in ipairs(p.skipped) do if s.id == 2 then skipped = s end end
    assert(skipped, "alice's session is among the skipped")
    assert.equals("unknown", skipped.why)
    assert.matches("idle unknown", skipped.reason, 1, true)
    -- a rule that does not need idle still acts on the same host
    local q = assert(termsrv.plan(h, { name = "disc", state = "disc", min_disconnected = "1h", action = "logoff" }))
    assert.equals(1, #q.steps)
    assert.equals(3, q.steps[1].id)
  end)

  it("the CLI's dry run shows the skipped session and its reason", function()
    local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC" } }
    local code, out, err = run({ "logoff", "W11RD=127.0.0.1:" .. env.ports.W11RD, "--state", "active",
      "--min-idle", "1h" }, support.ADMIN)
    assert.is_true(code == 0 or code == 1, tostring(code) .. err)
    assert.matches("idle unknown", out .. err, 1, true)
  end)
end)
