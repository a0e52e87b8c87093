-- Kerberos for the RPC binds, end to end through smbd: the simulator accepts
-- SPNEGO (auth type 9, third leg in alter_context) and raw Kerberos (16,
-- third leg in rpc_auth_3) with MIT's GSS-API behind python3-gssapi.
-- Tier 1 of KERBEROS-NOTES.md 4.2: no KDC; sim/krbworld forges a service
-- ticket for host/ts01.corp.test into a ccache and writes the key into the
-- simulator's keytab. The SMB logon stays NTLM (kerberos.smb = false): only
-- the RPC binds are Kerberos here.
local sim = require "support.sim"
local util = require "support.util"
local termsrv = require "termsrv"

local SPN = "host/ts01.corp.test@CORP.TEST"
local env, port, dir, world

-- a world: ccache and keytab, from sim/krbworld
local function make_world(name, ...)
  local d = dir .. "/" .. name
  local out, ok, _, err = sim.run{ sim.root .. "/sim/krbworld", d, ... }
  assert(ok, "sim/krbworld failed: " .. err)
  local ccache, keytab = out:match("^([^\n]+)\n([^\n]+)\n")
  return { ccache = ccache, keytab = keytab }
end

local function connect(host, krb, over)
  local opts = { host = "127.0.0.1", port = port[host], user = env.user, domain = env.domain,
    password = env.password, timeout = 5, name = host,
    kerberos = { ccache = world.good.ccache, spn = SPN, smb = false } }
  for k, v in pairs(krb or {}) do opts.kerberos[k] = v or nil end
  for k, v in pairs(over or {}) do opts[k] = v end
  return termsrv.connect(opts)
end

local function listing(host, krb, over)
  local h, err = connect(host, krb, over)
  if not h then return nil, err end
  local list, lerr = h:sessions{ times = false }
  local st = h:stats()
  h:close()
  return list, lerr, st
end

local function binds(host)
  return sim.calls(env, { host = host, event = "bind" })
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. util.quote(dir)))
  world = {
    good = make_world("good"),
    other = make_world("other"),                 -- another key: the wrong one for "good"
    skew = make_world("skew", "--skew", "3600"),  -- the client's clock an hour ahead
  }
  local config = string.format([[
    local good, other, skew = %q, %q, %q
    return { hosts = {
      { name = "TS01", kerberos = { keytab = good } },
      { name = "WRONGKEY", kerberos = { keytab = other } },
      { name = "SKEW", kerberos = { keytab = skew } },
      { name = "NOHS", kerberos = { keytab = good, header_sign = false } },
      { name = "NONTLM", kerberos = { keytab = good }, ntlm = false },
      { name = "MIC", kerberos = { keytab = good, mech_list_mic = true } },
      { name = "BADMIC", kerberos = { keytab = good, mech_list_mic = "bad" } },
    } }]], world.good.keytab, world.other.keytab, world.skew.keytab)
  env = sim.start{ config_text = config }
  port = env.ports
end)
teardown(function()
  sim.stop(env)
  os.execute("rm -rf " .. util.quote(dir))
end)

describe("Kerberos RPC binds", function()
  it("list sessions with SPNEGO (auth type 9): AP-REQ, AP-REP, the client's AP-REP in alter_context", function()
    sim.clear_log(env)
    local list, err, st = listing("TS01")
    assert(list, tostring(err))
    assert.is_true(#list > 0)
    local b, alter = binds("TS01"), sim.calls(env, { host = "TS01", event = "alter" })
    assert.equals(1, #b)      -- one pipe: one bind and one alter_context
    assert.equals(1, #alter)
    assert.same({ 9, 9 }, { b[1].auth_type, alter[1].auth_type })
    assert.is_true(b[1].header_sign)
    local calls = sim.calls(env, { host = "TS01", event = "call" })
    assert.equals(9, calls[1].auth_type)
    assert.equals(6, calls[1].auth_level)
    assert.matches("ops$", calls[1].user)
    -- one bind = bind + bind_ack + alter_context + alter_context_resp:
    -- 2 writes and 4 reads; NTLM's is 2 writes (bind, auth3) and 2 reads
    local n = select(3, listing("TS01", nil, { kerberos = false, rpc_auth = "privacy" }))
    io.write(string.format("\n  listing: Kerberos/SPNEGO %d SMB round trips, NTLM %d\n",
      st.smb_round_trips, n.smb_round_trips))
    assert.equals(n.smb_round_trips + 2, st.smb_round_trips)
  end)

  it("list sessions and reset one with raw Kerberos (auth type 16, third leg in rpc_auth_3)", function()
    sim.clear_log(env)
    local h = assert(connect("TS01", { auth_type = "krb5" }))
    local list = assert(h:sessions{ times = false })
    local target
    for _, s in ipairs(list) do if s.id == 4 then target = s end end
    assert(target, "session 4 listed")
    local r = assert(h:reset(target, { wait = true }))
    assert.is_true(r.ok)
    local st = h:stats()
    h:close()
    local b = binds("TS01")
    assert.is_true(#b >= 1)
    for _, x in ipairs(b) do assert.equals(16, x.auth_type) end
    -- one rpc_auth_3 per bound pipe, no alter_context
    assert.equals(#b, #sim.calls(env, { host = "TS01", event = "auth3" }))
    for _, s in ipairs(sim.state(env, "TS01").sessions) do assert.not_equals(4, s.id) end
    io.write(string.format("  raw Kerberos: list + reset in %d SMB round trips\n", st.smb_round_trips))
  end)

  it("works without header signing when the host does not ack it", function()
    sim.clear_log(env)
    local list, err = listing("NOHS")
    assert(list, tostring(err))
    assert.is_false(binds("NOHS")[1].header_sign)
  end)

  it("accepts a Kerberos client we did not write: impacket's (SPNEGO, its own crypto, no header signing)", function()
    sim.clear_log(env)
    local r = sim.selftest(env, { port = port.TS01, kerberos_ccache = world.good.ccache }, "sessions")
    assert.is_true(r[1].ok, r[1].error)
    assert.is_true(r[1].count > 0)
    local b = binds("TS01")
    assert.same({ 9, false }, { b[1].auth_type, b[1].header_sign })
  end)

  it("verifies a mechListMIC in the alter_context_resp, and refuses a forged one", function()
    assert(listing("MIC"))
    local _, err = listing("BADMIC")
    assert.equals("bad_signature", err.code, tostring(err))
    assert.matches("mechListMIC", tostring(err))
  end)

  it("works on a host that refuses NTLM, where NTLM gets a bind refusal", function()
    assert(listing("NONTLM"))
    local _, err = listing("NONTLM", nil, { kerberos = false, rpc_auth = "privacy" })
    assert.equals("bind_refused", err.code, tostring(err))
  end)
end)

describe("Kerberos failures name the fix", function()
  local function fails(code, status_name, ...)
    local _, err = listing(...)
    assert.is_table(err)
    assert.equals(code, err.code, tostring(err))
    if status_name then assert.equals(status_name, err.status_name, tostring(err)) end
    assert.is_string(err.hint)
    assert.not_matches("wrong password", err.hint)
    return err
  end

  it("wrong key: the host cannot decrypt the ticket (its KRB-ERROR is decoded)", function()
    local err = fails("krb_wrong_key", "KRB5KRB_AP_ERR_BAD_INTEGRITY", "WRONGKEY")
    assert.equals("Kerberos", err.status_kind)
    assert.equals(0x96C73A1F, err.status)
    fails("krb_wrong_key", nil, "WRONGKEY", { auth_type = "krb5" })
  end)

  it("clock skew", function()
    fails("krb_clock_skew", "KRB5KRB_AP_ERR_SKEW", "SKEW", { ccache = world.skew.ccache })
  end)

  it("no ticket: at connect, before any SMB traffic", function()
    fails("krb_no_ticket", "KRB5_FCC_NOFILE", "TS01", { ccache = dir .. "/missing" })
  end)

  it("no ticket for that service", function()
    fails("krb_no_ticket", "KRB5_CC_NOTFOUND", "TS01", { spn = "host/other.corp.test@CORP.TEST" })
  end)

  it("wrong key, clock skew, a missing and an expired ticket: each its own code and hint", function()
    local expired = termsrv.strerror(0x96C73A20, "kerberos")   -- KRB5KRB_AP_ERR_TKT_EXPIRED
    local errs = {
      { fails("krb_wrong_key", nil, "WRONGKEY"), "key" },
      { fails("krb_clock_skew", nil, "SKEW", { ccache = world.skew.ccache }), "NTP" },
      { fails("krb_no_ticket", nil, "TS01", { ccache = dir .. "/missing" }), "kinit" },
      { { code = expired.code, hint = expired.hint }, "kinit again" },
    }
    local codes, hints = {}, {}
    for _, e in ipairs(errs) do
      local err, word = e[1], e[2]
      assert.matches(word, err.hint, 1, true)
      assert.is_nil(codes[err.code], err.code)
      assert.is_nil(hints[err.hint], err.hint)
      codes[err.code], hints[err.hint] = true, true
    end
    assert.equals("krb_ticket_expired", expired.code)
  end)

  it("doctor: the clock skew and the wrong key show at the RPC bind, after good tickets", function()
    local doctor = require "termsrv.doctor"
    for _, case in ipairs{ { "SKEW", world.skew.ccache, "krb_clock_skew", "NTP" },
                           { "WRONGKEY", world.good.ccache, "krb_wrong_key", "key" } } do
      local checks = doctor.run{ host = "127.0.0.1:" .. port[case[1]], user = env.user, domain = env.domain,
        password = env.password, timeout = 5, kerberos = { ccache = case[2], spn = SPN, smb = false } }
      local by = {}
      for _, c in ipairs(checks) do by[c.step] = c end
      assert.equals("ok", by.krb_creds.status, by.krb_creds.detail)
      assert.equals("skip", by.krb_cifs.status)
      assert.equals("ok", by.krb_host.status, by.krb_host.detail)
      assert.equals("ok", by.smb.status)
      assert.equals("fail", by.pipes.status)
      assert.equals(case[3], by.pipes.code, by.pipes.detail)
      assert.matches(case[4], by.pipes.fix, 1, true)
    end
  end)

  it("a host given as an IP address is refused for Kerberos, with no NTLM attempt", function()
    sim.clear_log(env)
    local err = fails("krb_needs_name", nil, "TS01", { spn = false })
    assert.matches("DNS name", err.hint)
    assert.same({}, sim.calls(env, { host = "TS01" }))
  end)

  it("an RPC principal that is not the SMB user is refused after the bind", function()
    local _, err = listing("TS01", nil, { user = env.nonadmin_user, password = env.nonadmin_password })
    assert.equals("auth_failed", err.code, tostring(err))
    assert.matches("Kerberos", tostring(err))
  end)
end)

describe("sealed Kerberos responses", function()
  -- a bit flipped in the finished response fragment: in the signed header
  -- (alloc_hint), in the encrypted stub, in the verifier
  for _, case in ipairs{ { "header", 16 * 8 }, { "stub", 30 * 8 + 3 }, { "verifier", -1 },
                        { "auth_length", 10 * 8 + 2 }, { "sec_trailer pad", -(76 + 6) * 8 + 1 } } do
    it("are rejected before parsing when one bit of the " .. case[1] .. " is flipped", function()
      sim.ctl(env, "set-fault", "TS01", "flip_bit", tostring(case[2]), "method=RpcGetAllSessions")
      local _, err = listing("TS01")
      sim.ctl(env, "clear-faults", "TS01")
      assert.equals("bad_signature", err.code, tostring(err))
    end)
  end
end)
