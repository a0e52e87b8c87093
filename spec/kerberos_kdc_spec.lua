-- Kerberos with a real KDC (tier 2 of KERBEROS-NOTES.md 4.2): MIT's krb5kdc
-- on a free loopback port with a realm of its own (sim/krbkdc), the
-- simulator accepting with the keytab the KDC wrote. The client gets its
-- tickets itself: from a password (in memory, no kinit) or from a client
-- keytab. The SMB logon stays NTLM here (libsmbclient's own Kerberos is not
-- part of this world). Clients run in a child process: KRB5_CONFIG and
-- KRB5CCNAME must be set before MIT reads them.
local sim = require "support.sim"
local util = require "support.util"
local support = require "support.cli"

local SPN = "host/ts01.corp.test"
local env, dir, kdc

local function run_client(body, extra_env, port, host)
  local script = string.format([[
    package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
    package.cpath = "build/?.so;" .. package.cpath
    local t = require "termsrv"
    local function try(o)
      o.host = %q; o.port = %d; o.user = o.user or "ops"; o.timeout = 5
      local h, e = t.connect(o)
      if h then
        local s; s, e = h:sessions{ times = false }
        if s then io.write("ok|", #s, "\n") return end
      end
      io.write(e.code, "|", tostring(e.status_name), "|", tostring(e), "\n")
    end
    %s]], host or "127.0.0.1", port or env.port, body)
  local path = os.tmpname()
  util.spit(path, script)
  -- the plain build: sanitizer runs keep their preload out of children
  local cmd = string.format("env -u LD_PRELOAD -u ASAN_OPTIONS TERMSRV_BUILD=build KRB5_CONFIG=%s KRB5CCNAME=FILE:%s "
    .. "KRB5RCACHETYPE=none %s lua5.4 %s 2>&1", util.quote(kdc.dir .. "/krb5.conf"),
    util.quote(dir .. "/cc"), extra_env or "", util.quote(path))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  os.remove(path)
  local code, name, msg = out:match("^([^|\n]*)|([^|\n]*)|?([^\n]*)")
  return code, name, msg, out
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  local out, ok, _, err = sim.run{ sim.root .. "/sim/krbkdc", "start", dir }
  assert(ok, "sim/krbkdc: " .. err)
  kdc = { dir = out:match("TERMSRV_KDC_DIR='?([^'\n]+)") }
  env = sim.start{ config_text = string.format(
    "return { hosts = { { name = 'TS01', kerberos = { keytab = %q } } } }", kdc.dir .. "/service.keytab") }
end)
teardown(function()
  sim.stop(env)
  sim.run{ sim.root .. "/sim/krbkdc", "stop", dir }
  os.execute("rm -rf " .. util.quote(dir))
end)

describe("Kerberos with a KDC", function()
  it("a password with smb = false is NTLM's, for the SMB logon: the RPC binds need a ticket", function()
    local code, _, msg = run_client(string.format(
      "try{ password = %q, kerberos = { spn = %q, smb = false } }", env.password, SPN))
    assert.equals("krb_no_ticket", code, msg)
  end)

  it("with a password and no NTLM asked for, the SMB logon does not fall back to NTLM", function()
    -- the host is named by address: libsmbclient cannot use Kerberos there
    local code, _, msg = run_client(string.format(
      "try{ password = 'Ops-Passw0rd', kerberos = { spn = %q } }", SPN))
    assert.equals("logon_failure", code, msg)
    assert.matches("Kerberos logon refused", msg)
    assert.matches("named by address", msg)
    -- asked for: rpc_auth = "privacy" lets both fall back
    code, _, msg = run_client("try{ password = 'Ops-Passw0rd', kerberos = true, rpc_auth = 'privacy' }")
    assert.equals("ok", code, msg)
  end)

  it("a keytab and principal (for cron jobs), with raw Kerberos too", function()
    for _, at in ipairs{ "spnego", "krb5" } do
      local code, _, _, out = run_client(string.format(
        "try{ password = %q, kerberos = { keytab = %q, principal = 'ops', spn = %q, smb = false, auth_type = %q } }",
        env.password, kdc.dir .. "/ops.keytab", SPN, at))
      assert.equals("ok", code, out)
    end
  end)

  it("a wrong password is a logon failure, named as a Kerberos password", function()
    local code, name, msg = run_client(string.format(
      "try{ password = 'wrong', kerberos = { spn = %q } }", SPN))
    assert.equals("logon_failure", code, msg)
    assert.equals("KRB5KRB_AP_ERR_BAD_INTEGRITY", name)
    assert.matches("Kerberos password", msg)
  end)

  it("an SPN the KDC does not know", function()
    local code, name, msg = run_client(string.format("try{ password = %q, kerberos = { keytab = %q, "
      .. "principal = 'ops', spn = 'host/nothere.corp.test', smb = false } }", env.password,
      kdc.dir .. "/ops.keytab"))
    assert.equals("krb_unknown_spn", code, msg)
    assert.equals("KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN", name)
  end)

  it("an expired ticket in the cache", function()
    -- kinit for the shortest lifetime, then let it run out
    local ok = os.execute(string.format("echo Ops-Passw0rd | env -u LD_PRELOAD KRB5_CONFIG=%s KRB5CCNAME=FILE:%s "
      .. "kinit -l 1s ops >/dev/null", util.quote(kdc.dir .. "/krb5.conf"), util.quote(dir .. "/cc")))
    assert.is_true(ok)
    os.execute("sleep 1.2")
    local code, _, msg = run_client(string.format(
      "try{ password = %q, kerberos = { spn = %q, smb = false } }", env.password, SPN))
    os.remove(dir .. "/cc")
    assert.equals("krb_ticket_expired", code, msg)
  end)

  it("no common encryption type: the client offers only one the realm does not have (Camellia)", function()
    -- as an RC4-only client meets an AES-only account
    local conf = util.slurp(kdc.dir .. "/krb5.conf"):gsub("permitted_enctypes = [^\n]*",
      "permitted_enctypes = camellia256-cts-cmac")
    util.spit(dir .. "/camellia.conf", conf)
    local code, name, msg = run_client(string.format(
      "try{ password = 'Ops-Passw0rd', kerberos = { spn = %q } }", SPN),
      "KRB5_CONFIG=" .. util.quote(dir .. "/camellia.conf"))
    assert.equals("krb_etype", code, msg)
    assert.equals("KRB5KDC_ERR_ETYPE_NOSUPP", name)
  end)

  it("KDC unreachable", function()
    local conf = util.slurp(kdc.dir .. "/krb5.conf"):gsub("kdc = 127%.0%.0%.1:%d+", "kdc = 127.0.0.1:1")
    util.spit(dir .. "/dead.conf", conf)
    local code, name, msg = run_client(string.format(
      "try{ password = 'Ops-Passw0rd', kerberos = { spn = %q } }", SPN),
      "KRB5_CONFIG=" .. util.quote(dir .. "/dead.conf"))
    assert.equals("krb_kdc_unreachable", code, msg)
    assert.equals("KRB5_KDC_UNREACH", name)
  end)
end)

describe("the command line with -k", function()
  local function run(args, vars)
    local r = support.runner{ unset = support.TERMSRV_VARS, set = { "TERMSRV_BUILD=build",
      "KRB5_CONFIG=" .. kdc.dir .. "/krb5.conf", "KRB5CCNAME=FILE:" .. dir .. "/cc",
      "KRB5RCACHETYPE=none", "LD_PRELOAD=", "ASAN_OPTIONS=" } }
    return r(args, vars)
  end
  local where

  setup(function() where = "127.0.0.1:" .. env.port end)

  it("doctor -k without a ticket names the ticket, never a wrong password", function()
    local code, out = run({ "doctor", "-k", "--spn", SPN, where }, { TERMSRV_USER = "ops" })
    assert.not_equals(0, code)
    assert.matches("kinit", out)
    assert.not_matches("wrong password", out)
  end)

  it("--keytab needs --principal, and all three options need -k", function()
    local code, _, err = run({ "sessions", "-k", "--keytab", "/nonexistent", where }, { TERMSRV_USER = "ops" })
    assert.equals(64, code)
    assert.matches("needs %-%-principal", err)
    code, _, err = run({ "sessions", "--spn", SPN, where }, support.ADMIN)
    assert.equals(64, code)
    assert.matches("go with %-k", err)
  end)
end)

-- Kerberos everywhere: smbd takes Kerberos SMB logons (dedicated keytab,
-- cifs/ts01.corp.test) and refuses NTLM, as does the RPC server. The client
-- names the host ts01.corp.test, resolved to 127.0.0.1 by nss_wrapper.
describe("a host that refuses NTLM, at the SMB logon and for RPC", function()
  local env2, where, run
  local NSS = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"

  setup(function()
    env2 = sim.start{ config_text = string.format([[
      return { hosts = { { name = "NONTLM", ntlm = false,
        kerberos = { keytab = %q, smb_keytab = %q } } } }]],
      kdc.dir .. "/service.keytab", kdc.dir .. "/smb.keytab") }
    util.spit(dir .. "/hosts", "127.0.0.1 ts01.corp.test\n")
    where = "ts01.corp.test:" .. env2.port
    local r = support.runner{ unset = support.TERMSRV_VARS, set = { "TERMSRV_BUILD=build",
      "KRB5_CONFIG=" .. kdc.dir .. "/krb5.conf", "KRB5CCNAME=FILE:" .. dir .. "/cc3",
      "KRB5RCACHETYPE=none", "ASAN_OPTIONS=", "LD_PRELOAD=" .. NSS, "NSS_WRAPPER_HOSTS=" .. dir .. "/hosts" } }
    run = function(args, vars) return r(args, vars) end
  end)
  teardown(function() sim.stop(env2); os.remove(dir .. "/cc3") end)

  it("a password alone (library): tickets in memory for SMB and RPC, none written to the cache", function()
    local code, _, _, out = run_client(string.format(
      "try{ password = 'Ops-Passw0rd', user = 'ops@CORP.TEST', kerberos = { spn = %q } }", SPN),
      "LD_PRELOAD=" .. NSS .. " NSS_WRAPPER_HOSTS=" .. util.quote(dir .. "/hosts"), env2.port,
      "ts01.corp.test")
    assert.equals("ok", code, out)
    assert.is_nil(util.slurp(dir .. "/cc"), "no ticket written to the credential cache")
    local calls = sim.calls(env2, { event = "call" })
    assert.equals(9, calls[#calls].auth_type)
  end)

  it("sessions, users and reset with a password alone (-k): no NTLM anywhere", function()
    local creds = { TERMSRV_USER = "ops@CORP.TEST", TERMSRV_PASSWORD = "Ops-Passw0rd" }
    local code, out, err = run({ "sessions", "-k", where }, creds)
    assert.equals(0, code, err)
    assert.matches("rdp%-tcp#42", out)
    code, out, err = run({ "users", "-k", where }, creds)
    assert.equals(0, code, err)
    assert.matches("carol", out)
    code, out, err = run({ "reset", "-k", "--audit", dir .. "/audit.jsonl", where, "5" }, creds)
    assert.equals(0, code, err .. out)
    for _, s in ipairs(sim.state(env2, "NONTLM").sessions) do assert.not_equals(5, s.id) end
    for _, c in ipairs(sim.calls(env2, { event = "call" })) do assert.equals(9, c.auth_type) end
  end)

  it("a policy --apply with the ticket cache (kinit)", function()
    assert.is_true(os.execute(string.format("echo Ops-Passw0rd | env -u LD_PRELOAD KRB5_CONFIG=%s "
      .. "KRB5CCNAME=FILE:%s kinit ops >/dev/null", util.quote(kdc.dir .. "/krb5.conf"),
      util.quote(dir .. "/cc3"))))
    util.spit(dir .. "/policy.lua", 'rules = { { select = { state = "disconnected", '
      .. 'min_disconnected = "8h" }, action = "logoff" } }\n')
    local code, out, err = run({ "clean", "-k", where, "--policy", dir .. "/policy.lua", "--apply",
      "--audit", dir .. "/audit.jsonl" }, { TERMSRV_USER = "ops@CORP.TEST" })
    assert.equals(0, code, err .. out)
    assert.matches("ok", out)
    local left = {}
    for _, s in ipairs(sim.state(env2, "NONTLM").sessions) do left[s.id] = true end
    assert.is_nil(left[4])   -- bob, disconnected 9h
  end)

  it("NTLM gets a clear refusal: at the SMB logon, and for RPC", function()
    local code, _, err = run({ "sessions", where }, { TERMSRV_USER = "CORP\\ops", TERMSRV_PASSWORD = "Ops-Passw0rd" })
    assert.equals(2, code)
    assert.matches("refuses NTLM", err)
    code, _, err = run({ "sessions", "-k", "--rpc-auth", "privacy", where },
      { TERMSRV_USER = "ops@CORP.TEST", TERMSRV_PASSWORD = "Ops-Passw0rd" })
    assert.equals(2, code)
    assert.matches("the host refuses NTLM for RPC: use Kerberos", err)
  end)
end)
