-- The client's time zone: WINSTATIONCLIENT.ClientTimeZone (MS-TSTS 2.2.2.19,
-- TS_TIME_ZONE_INFORMATION at byte 2048 of the structure: Bias in minutes,
-- UTC = local + bias, then StandardName[32]), read with RpcGetClientData,
-- shown in the session records, the JSON and the users table.
local kit = require "termsrv.testkit"
local record = require "termsrv.record"

local function client_data(bias, name)
  local blob = { string.pack("<I4", 4), ("\0"):rep(2044) }
  local tz = string.pack("<i4", bias) .. (name:gsub(".", "%0\0")) .. ("\0"):rep(64 - 2 * #name)
  blob[#blob + 1] = tz .. ("\0"):rep(2296 - 2048 - #tz)
  local b = table.concat(blob)
  assert(#b == 2296)
  return string.pack("<I4I4", 0x20000, #b) .. b .. string.pack("<I4I4", #b, 0)
end

describe("ClientTimeZone", function()
  it("is read from its offset in the WINSTATIONCLIENT", function()
    local c = assert(kit.tsts.parse("client_data", client_data(-60, "W. Europe Standard Time")))
    assert.same({ "W. Europe Standard Time", -60 }, { c.tz_name, c.tz_bias })
    c = assert(kit.tsts.parse("client_data", client_data(480, "Pacific Standard Time")))
    assert.same({ "Pacific Standard Time", 480 }, { c.tz_name, c.tz_bias })
  end)

  it("is absent when the client sent none, or when the bias is no time zone", function()
    assert.is_nil(assert(kit.tsts.parse("client_data", client_data(0, ""))).tz_name)
    assert.is_nil(assert(kit.tsts.parse("client_data", client_data(100000, "Nowhere"))).tz_name)
    -- a short structure (an older server's) has no time zone, and no error
    local short = string.pack("<I4I4", 0x20000, 48) .. ("\0"):rep(48) .. string.pack("<I4I4", 48, 0)
    assert.is_nil(assert(kit.tsts.parse("client_data", short)).tz_name)
  end)

  it("prints as its name and UTC offset", function()
    assert.equals("W. Europe Standard Time (UTC+01:00)", record.time_zone{ name = "W. Europe Standard Time", bias = -60 })
    assert.equals("India Standard Time (UTC+05:30)", record.time_zone{ name = "India Standard Time", bias = -330 })
    assert.equals("Pacific Standard Time (UTC-08:00)", record.time_zone{ name = "Pacific Standard Time", bias = 480 })
    assert.equals("UTC+00:00", record.time_zone{ name = "", bias = 0 })
    assert.is_nil(record.time_zone(nil))
  end)
end)

describe("the client's time zone through smbd", function()
  local sim = require "support.sim"
  local support = require "support.cli"
  local termsrv = require "termsrv"
  local env
  setup(function()
    env = sim.start{ config_text = [[return { hosts = { { name = "TZ", sessions = {
      { id = 0, name = "services", state = "Disconnected" },
      { id = 2, name = "rdp-tcp#1", user = "alice", client_name = "PC-BER", client_address = "10.1.2.3",
        client_time_zone = "W. Europe Standard Time", client_tz_bias = -60 },
      { id = 3, name = "rdp-tcp#2", user = "bob", client_name = "PC-SEA", client_address = "10.1.2.4",
        client_time_zone = "Pacific Standard Time", client_tz_bias = 480 },
    } } } }]] }
  end)
  teardown(function() sim.stop(env) end)

  it("is in the records, the JSON and the users --client table", function()
    local h <close> = assert(termsrv.connect{ host = "127.0.0.1", port = env.ports.TZ, user = "ops",
      domain = "CORP", password = "Ops-Passw0rd", name = "TZ" })
    local got = {}
    for _, s in ipairs(assert(h:sessions{ client = true })) do got[s.id] = s.time_zone end
    assert.same({ [2] = "W. Europe Standard Time (UTC+01:00)", [3] = "Pacific Standard Time (UTC-08:00)" }, got)
    assert.equals("Pacific Standard Time (UTC-08:00)", assert(h:session(3, { client = true })).time_zone)
    local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC" } }
    local target = "TZ=127.0.0.1:" .. env.ports.TZ
    local code, out = run({ "sessions", target, "--client", "--format", "json" }, support.ADMIN)
    assert.equals(0, code)
    assert.matches('"time_zone":"W. Europe Standard Time (UTC+01:00)"', out, 1, true)
    code, out = run({ "users", target, "--client" }, support.ADMIN)
    assert.equals(0, code)
    assert.matches("TIME ZONE", out, 1, true)
    assert.matches("PC%-SEA +10%.1%.2%.4 +Pacific Standard Time %(UTC%-08:00%)", out)
  end)
end)
