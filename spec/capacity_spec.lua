-- Slot capacity (issue #12 item 4): what the host itself says about its
-- connection limit, the RDP listener's MaxInstanceCount (legacy
-- RpcWinStationQueryInformation, class WinStationCreateData, on the
-- listener's session id), through the real smbd to the simulator; and the
-- simulator enforcing the same limit on RDP logons.
local sim = require "support.sim"
local support = require "support.cli"
local termsrv = require "termsrv"

local TMP = support.scratch()
local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP } }
local ADMIN = support.ADMIN

local env

setup(function() env = sim.start{ config = "spec/fixtures/sim/capacity.lua" } end)
teardown(function()
  sim.stop(env)
  support.rmdir(TMP)
end)

local function connect(name, user, password)
  return assert(termsrv.connect{ host = "127.0.0.1", port = env.ports[name], name = name,
    user = user or env.user, domain = env.domain, password = password or env.password })
end

local function in_use(list)
  local n = 0
  for _, s in ipairs(list) do if s.kind == "user" and s.user then n = n + 1 end end
  return n
end

describe("host:capacity()", function()
  it("says 7 of 10: the listener's MaxInstanceCount, and where it came from", function()
    local h <close> = connect("CAP10")
    local cap = assert(h:capacity())
    assert.same({ limit = 10, unlimited = false, enabled = true, max_instance_count = 10, listener = 65536,
                  listener_name = "rdp-tcp", source = "listener" }, cap)
    assert.equals(7, in_use(assert(h:sessions())))
  end)

  it("takes the listener from a listing the caller already has (no second listing)", function()
    local h <close> = connect("CAP10")
    local list = assert(h:sessions{ all = true, times = false })
    sim.clear_log(env)
    local cap = assert(h:capacity{ sessions = list })
    assert.equals(10, cap.limit)
    assert.same({}, sim.calls(env, { host = "CAP10", method = "RpcGetAllSessions" }))
    assert.equals(10, assert(h:capacity{ listener = 65536 }).limit)
  end)

  it("says unlimited for MaxInstanceCount 0xFFFFFFFF, with no limit number", function()
    local h <close> = connect("UNLIM")
    local cap = assert(h:capacity())
    assert.is_true(cap.unlimited)
    assert.is_nil(cap.limit)
    assert.equals(0xFFFFFFFF, cap.max_instance_count)
  end)

  it("works on a legacy-only host (Windows Server 2003 profile)", function()
    local h <close> = connect("W2003")
    assert.equals(5, assert(h:capacity()).limit)
  end)

  it("says it does not know, and why, where Windows does not say", function()
    local cases = { DENIED = "access_denied", NOCLASS = "not_supported", RDPOFF = "rdp_disabled",
                    NOLSN = "no_listener" }
    for name, code in pairs(cases) do
      local h <close> = connect(name)
      local cap, err = h:capacity()
      assert.is_nil(cap, name)
      assert.equals(code, err.code, name .. ": " .. tostring(err))
      assert.equals(name, err.host)
    end
  end)

  it("a non-administrator sees no listener: unknown, not a guess", function()
    local h <close> = connect("CAP10", "jdoe", "Jdoe-Passw0rd")
    local cap, err = h:capacity()
    assert.is_nil(cap)
    assert.equals("no_listener", err.code)
    -- asked directly, the listener refuses the query
    local _, err2 = h:capacity{ listener = 65536 }
    assert.equals("access_denied", err2.code)
  end)
end)

describe("the simulator enforces the listener's limit", function()
  it("rdp-login succeeds up to MaxInstanceCount 8, then is refused", function()
    assert.is_true(sim.ctl(env, "rdp-login", "CAP8", "newuser1").ok)
    local refused = sim.ctl(env, "rdp-login", "CAP8", "newuser2")
    assert.is_false(refused.ok)
    assert.equals("The maximum number of connections has been exceeded", refused.error)
    local h <close> = connect("CAP8")
    assert.equals(8, in_use(assert(h:sessions{ times = false })))
    assert.equals(8, assert(h:capacity()).limit)
  end)
end)

describe("the simulator's WinStationCreateData, read by impacket (sim/selftest.py)", function()
  it("is 8 bytes: fEnableWinStation in bit 0 of the ULONG @0, MaxInstanceCount @4", function()
    local r = sim.selftest(env, { port = env.ports.CAP10 }, "create:65536", "create:65536:4",
      "create:65536:16", "create:70000")
    assert.same({ 0, 1, 8, 1, 10 }, { r[1].result, r[1]["return"], r[1].return_length, r[1].enabled,
      r[1].max_instance_count })
    -- a buffer short of sizeof(WINSTATIONCREATE): too small, the size needed
    assert.same({ 0x8007007A, 0, 8 }, { r[2].result, r[2]["return"], r[2].return_length })
    -- any other length: 3.7.4.1.6 says it MUST be sizeof(WINSTATIONCREATE)
    assert.same({ 0x80070057, 0 }, { r[3].result, r[3]["return"] })
    -- no such session
    assert.same({ 0x80071B6E, 0 }, { r[4].result, r[4]["return"] })
  end)
end)

describe("termsrv check and metrics use the host's limit", function()
  local function target(name) return name .. "=127.0.0.1:" .. env.ports[name] end
  local function perf(out, label)
    local v, rest = out:match("'" .. label .. "'=(%d+)([^ \n]*)")
    return tonumber(v), rest
  end

  it("check: 7 of 10 slots used, slots left judged against the host's limit", function()
    local code, out = run({ "check", target("CAP10"), "--warning-slots-left", "5:", "--critical-slots-left", "2:" },
      ADMIN)
    assert.equal(1, code, out)
    assert.matches("^TERMSRV WARNING %- CAP10: 7 in use, .*3 of 10 slots left %(7 of 10 used; the host's limit; "
      .. "WARNING: < 5%) |", out)
    local v, rest = perf(out, "slots_left")
    assert.equal(3, v)
    assert.equal(";5:;2:;0;10", rest)
    code, out = run({ "check", target("CAP10"), "--critical-slots-left", "4:" }, ADMIN)
    assert.equal(2, code, out)
  end)

  it("--slots still overrides the host's limit", function()
    local code, out = run({ "check", target("CAP10"), "--slots", "20", "--critical-slots-left", "5:" }, ADMIN)
    assert.equal(0, code, out)
    assert.matches("13 of 20 slots left |", out)
  end)

  it("check: unknown where the host does not say, and never a guess", function()
    local code, out = run({ "check", target("DENIED"), "--critical-slots-left", "1:" }, ADMIN)
    assert.equal(3, code, out)
    assert.matches("UNKNOWN: slots left unknown %(the host does not say its connection limit: access denied "
      .. "%[E_ACCESSDENIED%]; give it with %-%-slots N%)", out)
    assert.is_nil(out:find("slots_left", 1, true))
    code, out = run({ "check", target("UNLIM"), "--critical-slots-left", "1:" }, ADMIN)
    assert.equal(0, code, out)
    assert.matches("7 slots used, no limit %(the host's listener sets none%)", out)
  end)

  it("metrics: termsrv_slots_limit from the host where it says one; promtool accepts it", function()
    local code, out = run({ "metrics", target("CAP10"), target("DENIED"), target("UNLIM"), target("RDPOFF") },
      ADMIN)
    assert.equal(0, code, out)
    local limits = {}
    for l in out:gmatch("termsrv_slots_limit(%b{} %d+)") do limits[#limits + 1] = l end
    assert.same({ '{host="CAP10"} 10' }, limits)
    assert.truthy(out:find('termsrv_slots_used{host="CAP10"} 7', 1, true))
    if os.execute("command -v promtool >/dev/null 2>&1") then
      local f = TMP .. "/capacity.prom"
      support.spit(f, out)
      local p = io.popen("promtool check metrics < " .. support.q(f) .. " 2>&1")
      local said = p:read("a")
      assert.is_true(p:close(), said)
    end
  end)
end)

describe("termsrv sessions --slots", function()
  local function target(name) return name .. "=127.0.0.1:" .. env.ports[name] end

  it("says after the table how many of each host's slots are used, and of which limit", function()
    local code, out, err = run({ "sessions", target("CAP10"), target("DENIED"), target("UNLIM"), "--slots",
      "-j", "1" }, ADMIN)
    assert.equal("", err)
    assert.equal(0, code)
    assert.truthy(out:find("\nCAP10: 7 of 10 slots used (the host's limit)\n", 1, true), out)
    assert.truthy(out:find("\nDENIED: 7 slots used of an unknown limit (the host does not say: access denied "
      .. "[E_ACCESSDENIED])\n", 1, true), out)
    assert.truthy(out:find("\nUNLIM: 7 slots used, no limit (the host's listener sets none)\n", 1, true), out)
    assert.is_nil(out:find("rdp-tcp  ", 1, true)) -- the listener is asked, not shown without --all
  end)

  it("JSON: in each host's status record", function()
    local code, out = run({ "sessions", target("CAP10"), target("NOCLASS"), "--slots", "--format", "json",
      "-j", "1" }, ADMIN)
    assert.equal(0, code)
    local json = require "dkjson"
    local st = {}
    for l in out:gmatch("[^\n]+") do
      local r = json.decode(l)
      if r.type == "host" then st[r.host] = r end
    end
    assert.same({ 7, 10, false }, { st.CAP10.slots_used, st.CAP10.slots_limit, st.CAP10.slots_unlimited })
    assert.is_nil(st.NOCLASS.slots_limit)
    assert.truthy(out:find('"host":"NOCLASS".-"slots_limit":null'), out)
    assert.equal("information class not supported [STATUS_INVALID_INFO_CLASS]", st.NOCLASS.slots_unknown)
    -- without --slots the status record has no slot columns
    code, out = run({ "sessions", target("CAP10"), "--format", "json" }, ADMIN)
    assert.equal(0, code)
    assert.is_nil(out:find("slots_", 1, true))
  end)
end)

describe("termsrv free-slots --slots", function()
  it("the dry run says how many of the host's slots were used before", function()
    local t = "CAP10=127.0.0.1:" .. env.ports.CAP10
    local code, out, err = run({ "free-slots", "2", t, "--slots" }, ADMIN)
    assert.equal("", err)
    assert.equal(0, code)
    assert.truthy(out:find("\nCAP10: 7 of 10 slots used before (the host's limit)\n", 1, true), out)
    assert.matches("free_slots", out)
    code, out = run({ "free-slots", "2", t, "--slots", "--format", "json" }, ADMIN)
    assert.equal(0, code)
    assert.truthy(out:find('"type":"host","host":"CAP10".-"slots_used":7,"slots_limit":10'), out)
    -- without --slots: no query (the plan alone)
    code, out = run({ "free-slots", "2", t }, ADMIN)
    assert.equal(0, code)
    assert.is_nil(out:find("slots used", 1, true))
  end)
end)
