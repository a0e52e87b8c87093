-- qwinsta's TYPE and DEVICE columns and qwinsta /counter, through the real
-- smbd to the simulator: the legacy RpcWinStationQueryInformation classes
-- WinStationWd (3) and WinStationPd (4) per session, and the Terminal
-- Services counters (RpcGetSessionCounters, else the legacy
-- RpcWinStationGetTermSrvCountersValue), per Windows profile.
local sim = require "support.sim"
local support = require "support.cli"
local json = require "termsrv.json"
local termsrv = require "termsrv"

local TMP = support.scratch()
local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP } }
local ADMIN = support.ADMIN

local env

setup(function() env = sim.start{ config = "spec/fixtures/sim/stack.lua" } end)
teardown(function()
  sim.stop(env)
  support.rmdir(TMP)
end)

local function connect(name)
  return assert(termsrv.connect{ host = "127.0.0.1", port = env.ports[name], name = name,
    user = env.user, domain = env.domain, password = env.password, detail_connections = 1 })
end

local function target(name) return name .. "=127.0.0.1:" .. env.ports[name] end

local function by_id(list)
  local t = {}
  for _, s in ipairs(list) do t[s.id] = s end
  return t
end

local function calls(host, method)
  local n = 0
  for _, e in ipairs(sim.calls(env, { host = host })) do
    if e.event == "call" and (not method or e.method == method) then n = n + 1 end
  end
  return n
end

describe("TYPE and DEVICE (h:sessions{drivers = true})", function()
  it("says rdpwd for a session connected over RDP, wdcon for the console, nothing else", function()
    local h <close> = connect("TS22")
    local s = by_id(assert(h:sessions{ all = true, times = false, drivers = true }))
    assert.equals("rdpwd", s[2].driver)
    assert.equals("wdcon", s[1].driver)
    assert.is_nil(s[0].driver)      -- services
    assert.is_nil(s[3].driver)      -- disconnected: no stack attached
    assert.is_nil(s[65536].driver)  -- the listener, as Windows shows it
    -- DEVICE: only a serial line names one (RDP over TCP leaves it empty)
    assert.equals("COM1", s[4].device)
    assert.is_nil(s[2].device)
  end)

  it("prints them in qwinsta's columns", function()
    local h <close> = connect("TS22")
    local out = termsrv.report.qwinsta(assert(h:sessions{ all = true, times = false, drivers = true }))
    assert.matches("\n console +1  Conn    wdcon\n", out)
    assert.matches("\n rdp%-tcp#3 +foo +2  Active  rdpwd\n", out)
    assert.matches("\n async#1 +modem +4  Active  rdpwd +COM1\n", out)
    assert.matches("\n rdp%-tcp +65536  Listen\n", out)
  end)

  it("costs two legacy calls per session, and nothing unless asked", function()
    local h <close> = connect("TS22")
    sim.clear_log(env)
    local list = assert(h:sessions{ all = true, times = false })
    assert.equals(1, calls("TS22"))
    assert.is_nil(list[1].driver)
    sim.clear_log(env)
    list = assert(h:sessions{ all = true, times = false, drivers = true })
    -- the listing, OpenServer, then WinStationWd and WinStationPd per session
    assert.equals(1 + 1 + 2 * #list, calls("TS22"))
    assert.equals(2 * #list, calls("TS22", "RpcWinStationQueryInformation"))
  end)

  it("a deep host's drivers are read over several connections at once, as its details are", function()
    local h <close> = assert(termsrv.connect{ host = "127.0.0.1", port = env.ports.DEEP, name = "DEEP",
      user = env.user, domain = env.domain, password = env.password })
    sim.clear_log(env)
    local list = assert(h:sessions{ times = false, drivers = true })
    assert.equals(24, #list)
    for _, s in ipairs(list) do assert.equals("rdpwd", s.driver, "session " .. s.id) end
    assert.is_nil(list.errors)
    -- each connection opens the legacy pipe once: 24 sessions, at least 8 per connection
    local opens = 0
    for _, e in ipairs(sim.calls(env, { host = "DEEP" })) do
      if e.event == "open" and e.pipe == "ctx_winstation_api_service" then opens = opens + 1 end
    end
    assert.equals(3, opens)
    assert.equals(48, calls("DEEP", "RpcWinStationQueryInformation"))
  end)

  it("on Windows Server 2003 the listener shows its driver too", function()
    local h <close> = connect("W2K3")
    local s = by_id(assert(h:sessions{ all = true, times = false, drivers = true }))
    assert.equals("rdpwd", s[65536].driver)
    assert.equals("wdcon", s[1].driver)
  end)

  it("with RDP disabled (no legacy pipe) the columns stay empty and the listing says why", function()
    local h <close> = connect("NORDP")
    local list = assert(h:sessions{ all = true, times = false, drivers = true })
    assert.equals(5, #list)
    for _, s in ipairs(list) do assert.is_nil(s.driver) end
    assert.equals(1, #list.errors)
    assert.equals("rdp_disabled", list.errors[1].code)
  end)

  it("the command line: sessions --drivers fills the table, JSON and CSV", function()
    local code, out, err = run({ "sessions", target("TS22"), "--all", "--drivers" }, ADMIN)
    assert.equals(0, code, err)
    assert.matches("SESSIONNAME +USERNAME +ID +STATE +TYPE +DEVICE\n", out)
    assert.matches("\n rdp%-tcp#3 +foo +2  Active  rdpwd\n", out)
    assert.matches("\n async#1 +modem +4  Active  rdpwd +COM1\n", out)
    code, out, err = run({ "sessions", target("TS22"), "--drivers", "--format", "json" }, ADMIN)
    assert.equals(0, code, err)
    local seen = {}
    for line in out:gmatch("[^\n]+") do
      local r = json.decode(line)
      if r.type ~= "host" then seen[r.id] = r end
    end
    assert.equals("rdpwd", seen[2].driver)
    assert.equals("COM1", seen[4].device)
    assert.equals(json.null, seen[3].driver)
    code, out = run({ "sessions", target("TS22"), "--drivers", "--format", "csv" }, ADMIN)
    assert.equals(0, code)
    local header = out:match("^[^\n]+")
    assert.matches(",driver,device,", header, 1, true)
    assert.matches("\nsession,TS22,4,async#1,modem,", out, 1, true)
    assert.matches(",rdpwd,COM1", out, 1, true)
  end)

  it("examples/qwinsta.lua prints what Windows prints", function()
    local ex = support.runner{ command = { "lua5.4", sim.root .. "/examples/qwinsta.lua" },
      unset = support.TERMSRV_VARS }
    local code, out, err = ex({ "127.0.0.1:" .. env.ports.TS22 }, ADMIN)
    assert.equals(0, code, err)
    assert.matches("\n console +1  Conn    wdcon\n", out)
    assert.matches("\n rdp%-tcp#3 +foo +2  Active  rdpwd\n", out)
  end)
end)

describe("counters (h:counters(), qwinsta /counter)", function()
  it("reads them in ONE call on the LSM pipe", function()
    local h <close> = connect("TS22")
    sim.clear_log(env)
    local c = assert(h:counters())
    assert.equals("lsm", c.via)
    assert.equals(1, calls("TS22"))
    assert.equals(1, calls("TS22", "RpcGetSessionCounters"))
    -- the simulator's truth: what it counted since boot, and what is there now
    local st = sim.state(env, "TS22").counters
    for _, k in ipairs(require("termsrv.host").COUNTERS) do
      assert.equals(st[tostring(k[2])], c[k[1]], k[1])
    end
    assert.equals(2, c.active)
    assert.equals(1, c.disconnected_now)
    assert.equals(3, c.logged_on)
  end)

  it("move with logons, disconnects and reconnects", function()
    local h <close> = connect("TS22")
    local before = assert(h:counters())
    assert.is_true(sim.ctl(env, "rdp-login", "TS22", "newuser").ok)        -- a new session
    assert.is_true(assert(h:disconnect(2)).ok)                               -- foo disconnects
    assert.is_true(sim.ctl(env, "rdp-login", "TS22", "foo").reconnected)   -- and comes back
    local after = assert(h:counters())
    assert.equals(before.created + 1, after.created)
    assert.equals(before.disconnected + 1, after.disconnected)
    assert.equals(before.reconnected + 1, after.reconnected)
    assert.equals(before.logons + 2, after.logons)
    assert.equals(before.active + 1, after.active)
    -- a logoff ends a session: what is there now drops, the history stays
    assert.is_true(assert(h:logoff(2)).ok)
    local later = assert(h:counters())
    assert.equals(after.created, later.created)
    assert.equals(after.logged_on - 1, later.logged_on)
  end)

  it("on Windows Server 2003 (no LSM pipe): the legacy call", function()
    local h <close> = connect("W2K3")
    sim.clear_log(env)
    local c = assert(h:counters())
    assert.equals("legacy", c.via)
    assert.equals(1, calls("W2K3", "RpcWinStationGetTermSrvCountersValue"))
    assert.equals(1, c.disconnected_now)
  end)

  it("with RDP disabled: the LSM pipe still has them", function()
    local h <close> = connect("NORDP")
    assert.equals("lsm", assert(h:counters()).via)
  end)

  it("a host that offers none gives a clear error, not zeros", function()
    local h <close> = connect("NOCNT")
    local c, err = h:counters()
    assert.is_nil(c)
    assert.equals("not_supported", err.code)
    assert.equals("NOCNT", err.host)
    assert.matches("offers no Terminal Services counters", tostring(err), 1, true)
  end)

  it("the command line: sessions --counter, a row per host, failures on stderr", function()
    local code, out, err = run({ "sessions", target("TS22"), target("NOCNT"), "--counter" }, ADMIN)
    assert.equals(1, code, err)
    assert.matches("HOST +CREATED +DISCONNECTED +RECONNECTED +ACTIVE +DISC +PENDING", out)
    assert.matches("\nTS22 +%d+ +%d+ +%d+ +%d+", out)
    assert.matches("NOCNT: read the counters", err, 1, true)
    assert.matches("offers no Terminal Services counters", err, 1, true)
    code, out, err = run({ "sessions", target("W2K3"), "--counter", "--format", "json" }, ADMIN)
    assert.equals(0, code, err)
    local rec = json.decode(out:match("^[^\n]+"))
    assert.equals("W2K3", rec.host)
    assert.equals("legacy", rec.via)
    assert.equals(1, rec.disconnected_now)
  end)
end)
