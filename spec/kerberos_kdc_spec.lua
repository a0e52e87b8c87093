-- Kerberos with a real KDC (tier 2 of KERBEROS-NOTES.md 4.2): MIT's krb5kdc
-- on a free loopback port with a realm of its own (sim/krbkdc), the
-- simulator accepting with the keytab the KDC wrote. The client gets its
-- tickets itself: from a password (in memory, no kinit) or from a client
-- keytab. The first host takes NTLM SMB logons; the last one (smbd with a
-- keytab of its own) only Kerberos, at the SMB logon and for RPC. Clients
-- run in a child process: KRB5_CONFIG and KRB5CCNAME must be set before MIT
-- reads them.
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

  -- The issue's done-criterion: the same four commands with each kind of
  -- Kerberos credential, on a host where NTLM fails at the SMB logon and at
  -- every bind. The simulator refuses an RPC principal that is not the SMB
  -- user, so a pass also proves that both logons used one identity.
  local KINDS = {
    { "the ticket cache (kinit)", { TERMSRV_USER = "ops@CORP.TEST" }, {}, "in the cache FILE:", true },
    { "a password alone", { TERMSRV_USER = "ops@CORP.TEST", TERMSRV_PASSWORD = "Ops-Passw0rd" }, {},
      "got with the password" },
    { "a keytab (--keytab, --principal), no account", {},
      { "--keytab", "KEYTAB", "--principal", "ops@CORP.TEST" }, "got from the keytab" },
  }
  for i, kind in ipairs(KINDS) do
    local what, creds, extra, source, kinit = kind[1], kind[2], kind[3], kind[4], kind[5]
    it("doctor, sessions, users, reset and a policy --apply with " .. what .. ": no NTLM anywhere", function()
      os.remove(dir .. "/cc3")
      if kinit then
        assert.is_true(os.execute(string.format("echo Ops-Passw0rd | env -u LD_PRELOAD KRB5_CONFIG=%s "
          .. "KRB5CCNAME=FILE:%s kinit ops >/dev/null", util.quote(kdc.dir .. "/krb5.conf"),
          util.quote(dir .. "/cc3"))))
      end
      local tmp = dir .. "/tmp" .. i
      assert.is_true(os.execute("mkdir -p " .. util.quote(tmp)))
      local vars = { TMPDIR = tmp }
      for k, v in pairs(creds) do vars[k] = v end
      local function k(...)
        local args = { ... }
        table.insert(args, 2, "-k")
        for j, a in ipairs(extra) do
          table.insert(args, 2 + j, a == "KEYTAB" and kdc.dir .. "/ops.keytab" or a)
        end
        return run(args, vars)
      end
      local victim, stale = 50 + i, 60 + i
      sim.ctl(env2, "add-session", "NONTLM", { id = victim, name = "rdp-tcp#9" .. i, user = "k" .. i,
        state = "Active", logon = "-10m" })
      sim.ctl(env2, "add-session", "NONTLM", { id = stale, user = "d" .. i, state = "Disconnected",
        disconnect = "-9h" })
      sim.clear_log(env2)

      local code, out, err = k("doctor", "--ascii", where)
      assert.equals(0, code, err .. out)
      assert.matches("%+ Kerberos credentials +ops@CORP.TEST, ticket " .. source, out)
      assert.matches("%+ ticket for the SMB logon +cifs/ts01.corp.test\n", out)
      assert.matches("%+ ticket for the RPC binds +host/ts01.corp.test\n", out)
      assert.matches("%+ SMB authentication +logged on as ops@CORP.TEST", out)
      assert.matches("ready", out)
      code, out, err = k("sessions", where)
      assert.equals(0, code, err)
      assert.matches("rdp%-tcp#9" .. i, out)
      code, out, err = k("users", where)
      assert.equals(0, code, err)
      assert.matches("k" .. i, out)
      code, out, err = k("reset", "--audit", dir .. "/audit.jsonl", where, tostring(victim))
      assert.equals(0, code, err .. out)
      util.spit(dir .. "/policy.lua", 'rules = { { select = { state = "disconnected", '
        .. 'min_disconnected = "8h" }, action = "logoff" } }\n')
      code, out, err = k("clean", where, "--policy", dir .. "/policy.lua", "--apply",
        "--audit", dir .. "/audit.jsonl")
      assert.equals(0, code, err .. out)
      local left = {}
      for _, s in ipairs(sim.state(env2, "NONTLM").sessions) do left[s.id] = true end
      assert.is_nil(left[victim], "reset")
      assert.is_nil(left[stale], "policy logoff")
      assert.is_true(left[2], "the active session stays")
      local calls = sim.calls(env2, { event = "call" })
      assert.is_true(#calls > 0)
      for _, c in ipairs(calls) do assert.equals(9, c.auth_type) end
      if not kinit then
        -- the caller's cache is never written, and a private one is gone
        assert.is_nil(util.slurp(dir .. "/cc3"), "nothing written to KRB5CCNAME")
      end
      local p = assert(io.popen("ls -A " .. util.quote(tmp)))
      local leftover = p:read("a")
      p:close()
      assert.equals("", leftover, "no private credential cache left behind")
    end)
  end

  it("a keytab's TGT is in a private cache (0700 directory, 0600 file) only while the handle is open", function()
    local tmp = dir .. "/tmpkt"
    assert.is_true(os.execute("mkdir -p " .. util.quote(tmp)))
    local body = string.format([[
      local function ls() local p = io.popen("find %s -mindepth 1 -printf '%%m %%y %%f;'")
        local r = p:read("a") p:close() return r end
      local kt = { keytab = %q, principal = "ops@CORP.TEST" }
      local h, e = t.connect{ host = "ts01.corp.test", port = %d, kerberos = kt, timeout = 5 }
      assert(h, tostring(e))
      local open = ls()
      assert(h:sessions{ times = false })
      h:close()
      io.write("open=", open, "|closed=", ls(), "|env=", tostring(os.getenv("KRB5CCNAME")), "|")
      -- failures after the TGT was got: refused port, unknown principal
      h, e = t.connect{ host = "ts01.corp.test", port = 1, kerberos = kt, timeout = 5 }
      io.write(tostring(h == nil), " ", e.code, " ", ls(), "|")
      h, e = t.connect{ host = "ts01.corp.test", port = %d, timeout = 5,
        kerberos = { keytab = %q, principal = "nobody@CORP.TEST" } }
      io.write(tostring(h == nil), " ", e.code, " ", ls(), "\n")
    ]], tmp, kdc.dir .. "/ops.keytab", env2.port, env2.port, kdc.dir .. "/ops.keytab")
    local _, _, _, out = run_client(body, "TMPDIR=" .. util.quote(tmp) .. " LD_PRELOAD=" .. NSS
      .. " NSS_WRAPPER_HOSTS=" .. util.quote(dir .. "/hosts"), env2.port, "ts01.corp.test")
    local open, closed, envv, refused, unknown = out:match("^open=([^|]*)|closed=([^|]*)|env=([^|]*)|([^|]*)|([^\n]*)")
    assert.is_not_nil(open, out)
    assert.matches("^700 d termsrv%-krb5%-%w+;600 f cc;$", open)
    assert.equals("", closed)
    assert.equals("FILE:" .. dir .. "/cc", envv, "the caller's KRB5CCNAME is restored")
    assert.equals("true connection_refused ", refused)
    assert.matches("^true %S+ $", unknown)
  end)

  describe("doctor -k names the Kerberos step that fails, and why", function()
    local PW = { TERMSRV_USER = "ops@CORP.TEST", TERMSRV_PASSWORD = "Ops-Passw0rd" }
    local function kinit(life)
      assert.is_true(os.execute(string.format("echo Ops-Passw0rd | env -u LD_PRELOAD KRB5_CONFIG=%s "
        .. "KRB5CCNAME=FILE:%s kinit %s ops >/dev/null", util.quote(kdc.dir .. "/krb5.conf"),
        util.quote(dir .. "/cc3"), life and ("-l " .. life) or "")))
    end
    local function doctor(args, vars)
      local full = { "doctor", "-k", "--ascii" }
      for _, a in ipairs(args) do full[#full + 1] = a end
      local code, out, err = run(full, vars)
      assert.not_equals(0, code, out)
      return out .. err
    end
    before_each(function() os.remove(dir .. "/cc3") end)

    it("no ticket", function()
      local out = doctor({ where }, { TERMSRV_USER = "ops@CORP.TEST" })
      assert.matches("x Kerberos credentials +[^\n]*KRB5_CC_NOTFOUND", out)
      assert.matches("fix: no Kerberos ticket: run kinit", out)
      assert.matches("%- SMB authentication +not reached", out)
      assert.matches("FAILED at Kerberos credentials", out)
    end)

    it("an expired ticket", function()
      kinit("1s")
      os.execute("sleep 1.2")
      local out = doctor({ where }, { TERMSRV_USER = "ops@CORP.TEST" })
      assert.matches("x Kerberos credentials +[^\n]*expired", out)
      assert.matches("fix: the Kerberos ticket has expired: kinit again", out)
      assert.matches("FAILED at Kerberos credentials", out)
    end)

    it("an SPN the KDC does not know (--spn): the SMB logon works, the RPC binds cannot", function()
      local out = doctor({ "--spn", "host/nothere.corp.test", where }, PW)
      assert.matches("%+ Kerberos credentials +ops@CORP.TEST, ticket got with the password", out)
      assert.matches("%+ ticket for the SMB logon +cifs/ts01.corp.test", out)
      assert.matches("x ticket for the RPC binds +[^\n]*KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN", out)
      assert.matches("fix: the KDC knows no service", out)
      assert.matches("%+ SMB authentication +logged on as ops@CORP.TEST", out)
      assert.matches("x RPC pipes", out)
      assert.matches("FAILED at ticket for the RPC binds", out)
    end)

    it("the KDC stopped: a ticket in the cache, but no service ticket to be had", function()
      kinit()
      -- the realm's KDC moved to a port where nothing listens
      local conf = util.slurp(kdc.dir .. "/krb5.conf"):gsub("kdc = 127%.0%.0%.1:%d+", "kdc = 127.0.0.1:1")
      util.spit(dir .. "/dead.conf", conf)
      local out = doctor({ where }, { TERMSRV_USER = "ops@CORP.TEST", KRB5_CONFIG = dir .. "/dead.conf" })
      assert.matches("%+ Kerberos credentials +ops@CORP.TEST, ticket in the cache FILE:", out)
      assert.matches("x ticket for the SMB logon +[^\n]*KRB5_KDC_UNREACH", out)
      assert.matches("fix: no KDC answered", out)
      assert.matches("FAILED at ticket for the SMB logon", out)
    end)

    it("a wrong password, and no encryption type in common (AES not offered)", function()
      local out = doctor({ where }, { TERMSRV_USER = "ops@CORP.TEST", TERMSRV_PASSWORD = "wrong" })
      assert.matches("x Kerberos credentials +[^\n]*wrong Kerberos password", out)
      assert.matches("FAILED at Kerberos credentials", out)
      local conf = util.slurp(kdc.dir .. "/krb5.conf"):gsub("permitted_enctypes = [^\n]*",
        "permitted_enctypes = camellia256-cts-cmac")
      util.spit(dir .. "/camellia.conf", conf)
      out = doctor({ where }, { TERMSRV_USER = "ops@CORP.TEST", TERMSRV_PASSWORD = "Ops-Passw0rd",
        KRB5_CONFIG = dir .. "/camellia.conf" })
      assert.matches("x Kerberos credentials +[^\n]*KRB5KDC_ERR_ETYPE_NOSUPP", out)
      assert.matches("fix: no common Kerberos encryption type: enable AES", out)
    end)

    it("the host given as an IP address", function()
      local out = doctor({ "127.0.0.1:" .. env2.port }, PW)
      assert.matches("%+ Kerberos credentials", out)
      assert.matches("x ticket for the SMB logon +[^\n]*named by an address", out)
      assert.matches("fix: Kerberos needs the host's DNS name", out)
      assert.matches("FAILED at ticket for the SMB logon", out)
    end)
  end)

  it("kerberos.ccache serves the SMB logon too, whatever KRB5CCNAME says", function()
    assert.is_true(os.execute(string.format("echo Ops-Passw0rd | env -u LD_PRELOAD KRB5_CONFIG=%s "
      .. "KRB5CCNAME=FILE:%s kinit ops >/dev/null", util.quote(kdc.dir .. "/krb5.conf"),
      util.quote(dir .. "/ccopt"))))
    local code, _, _, out = run_client(string.format([[
      try{ kerberos = { ccache = %q } }
      io.write(tostring(os.getenv("KRB5CCNAME")), "\n")]], "FILE:" .. dir .. "/ccopt"),
      "LD_PRELOAD=" .. NSS .. " NSS_WRAPPER_HOSTS=" .. util.quote(dir .. "/hosts"), env2.port,
      "ts01.corp.test")
    os.remove(dir .. "/ccopt")
    assert.equals("ok", code, out)
    assert.matches("\nFILE:" .. dir:gsub("%p", "%%%0") .. "/cc\n", out)
    assert.is_nil(util.slurp(dir .. "/cc"))
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
