-- IPv6 client addresses (RpcGetRemoteAddress, RCM_REMOTEADDRESS with
-- sin_family 23) in RFC 5952 text: lowercase hex, no leading zeros, the
-- longest run of two or more zero groups as "::" (the first when tied, a
-- lone zero group written out), IPv4-mapped as ::ffff:a.b.c.d.
local parse = require("termsrv.testkit").tsts.parse

-- family, union switch, port (network order), flowinfo, 16 address bytes,
-- scope id, then the HRESULT
local function answer(hex)
  local addr = hex:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)
  assert(#addr == 16)
  return string.pack("<I2I2>I2xx<I4", 23, 23, 3389, 0) .. addr .. string.pack("<I4I4", 0, 0)
end

describe("IPv6 client addresses", function()
  local cases = {
    { "20010db8000000000000000000000001", "2001:db8::1" },
    { "20010db8000000000001000000000001", "2001:db8::1:0:0:1" },       -- first of two equal runs
    { "20010db8000000010000000000000001", "2001:db8:0:1::1" },         -- the longer run
    { "20010db8000100010001000100010000", "2001:db8:1:1:1:1:1:0" },    -- one zero group: no ::
    { "20010db8aaaabbbbccccddddeeee0001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1" },
    { "fe800000000000000202b3fffe1e8329", "fe80::202:b3ff:fe1e:8329" },
    { "00000000000000000000000000000001", "::1" },
    { "00000000000000000000000000000000", "::" },
    { "20010db8000000000000000000000000", "2001:db8::" },
    { "00000000000000000000ffff0a010203", "::ffff:10.1.2.3" },
    { "0000000000000000000000000a010203", "::a01:203" },               -- not mapped: plain hex
    { "ABCD00EF000000000000000000000000", "abcd:ef::" },
  }
  for _, c in ipairs(cases) do
    it(c[2], function()
      local cl, hr = assert(parse("remote_address", answer(c[1])))
      assert.equals(0, hr)
      assert.same({ c[2], 3389 }, { cl.address, cl.port })
    end)
  end
end)

describe("sessions with IPv6 clients, through smbd", function()
  local sim = require "support.sim"
  local support = require "support.cli"
  local termsrv = require "termsrv"
  local env
  setup(function()
    env = sim.start{ config_text = [[return { hosts = { { name = "TS6", sessions = {
      { id = 0, name = "services", state = "Disconnected" },
      { id = 2, name = "rdp-tcp#1", user = "alice", client_name = "PC6", client_address = "2001:DB8:0:0:1:0:0:1" },
      { id = 3, name = "rdp-tcp#2", user = "bob", client_name = "PC4", client_address = "::ffff:10.1.2.3" },
      { id = 4, name = "rdp-tcp#3", user = "carol", client_name = "PC7", client_address = "fe80:0:0:0:202:b3ff:fe1e:8329" },
    } } } }]] }
  end)
  teardown(function() sim.stop(env) end)

  it("show the client address in RFC 5952 form, and a selector's glob matches that form", function()
    local h <close> = assert(termsrv.connect{ host = "127.0.0.1", port = env.ports.TS6, user = "ops",
      domain = "CORP", password = "Ops-Passw0rd", name = "TS6" })
    local got = {}
    for _, s in ipairs(assert(h:sessions{ client = true })) do got[s.id] = s.address end
    assert.same({ [2] = "2001:db8::1:0:0:1", [3] = "::ffff:10.1.2.3", [4] = "fe80::202:b3ff:fe1e:8329" }, got)
    local m = termsrv.select.compile{ address = "2001:db8::*" }
    local hits = {}
    for _, s in ipairs(assert(h:sessions{ client = true })) do
      if m:match(s) then hits[#hits + 1] = s.id end
    end
    assert.same({ 2 }, hits)
    local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC" } }
    local code, out = run({ "sessions", "TS6=127.0.0.1:" .. env.ports.TS6, "--client", "--format", "json" },
      support.ADMIN)
    assert.equals(0, code)
    assert.matches('"address":"fe80::202:b3ff:fe1e:8329"', out, 1, true)
  end)
end)
