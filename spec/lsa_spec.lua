-- Process owners named by the host's LSA (\PIPE\lsarpc: LsarOpenPolicy2,
-- LsarLookupSids2, LsarClose) against the simulator through smbd, and the
-- fallback to the well-known SIDs and the session owners where LSA is
-- denied or absent, said so on the list and by the CLI.
local sim = require "support.sim"
local support = require "support.cli"
local termsrv = require "termsrv"

local CONFIG = [[
local function host(name, lsa)
  return { name = name, lsa = lsa,
    accounts = { { name = "ops", password = "Ops-Passw0rd", admin = true },
                 { name = "svc", password = "Svc-Passw0rd" } },
    sessions = { { id = 0, name = "services", state = "Disconnected" },
                 { id = 2, name = "rdp-tcp#1", user = "alice" } },
    processes = {
      { pid = 4, image = "System", session = 0, sid = "S-1-5-18" },
      { pid = 600, image = "svchost.exe", session = 0, sid = "S-1-5-20" },
      { pid = 700, image = "backup.exe", session = 0, user = "svc" },      -- an account without a session
      { pid = 800, image = "explorer.exe", session = 2, user = "alice" },
      { pid = 804, image = "sihost.exe", session = 2, user = "alice" },
      { pid = 801, image = "dwm.exe", session = 2, sid = "S-1-5-90-0-2" },
      { pid = 900, image = "orphan.exe", session = 0, sid = "S-1-5-21-1-2-3-1234" }, -- LSA does not know it
    } }
end
return { hosts = { host("LSA"), host("DEN", "denied"), host("ABS", "absent") } }
]]

local env

setup(function()
  env = sim.start{ config_text = CONFIG }
end)
teardown(function() sim.stop(env) end)

local function connect(name)
  return assert(termsrv.connect{ host = "127.0.0.1", port = env.ports[name], user = "ops", domain = "CORP",
    password = "Ops-Passw0rd", name = name })
end

local function by_image(list)
  local t = {}
  for _, p in ipairs(list) do t[p.image or "?"] = p end
  return t
end

local function lsa_log(name)
  local calls, binds = {}, 0
  for _, e in ipairs(sim.calls(env, { host = name })) do
    if e.pipe == "lsarpc" and e.event == "call" then calls[#calls + 1] = e.method end
    if e.pipe == "lsarpc" and e.event == "bind" then binds = binds + 1 end
  end
  return calls, binds
end

describe("process owners through LSA", function()
  it("names every owner the host knows in one lookup for the whole listing", function()
    sim.clear_log(env)
    local h <close> = connect("LSA")
    local p = by_image(assert(h:processes()))
    assert.equals("CORP\\svc", p["backup.exe"].account)
    assert.equals("CORP\\alice", p["explorer.exe"].account)
    assert.equals("Window Manager\\DWM-2", p["dwm.exe"].account)
    assert.equals("NT AUTHORITY\\SYSTEM", p["System"].account)
    assert.equals("NT AUTHORITY\\NETWORK SERVICE", p["svchost.exe"].account)
    -- a SID the host cannot name keeps no account, only its SID
    assert.is_nil(p["orphan.exe"].account)
    assert.equals("S-1-5-21-1-2-3-1234", p["orphan.exe"].sid)
    local calls, binds = lsa_log("LSA")
    assert.same({ "LsarOpenPolicy2", "LsarLookupSids2", "LsarClose" }, calls)
    assert.equals(1, binds)
    -- a later listing reuses the bound pipe: the same three calls, no bind
    sim.clear_log(env)
    local again = assert(h:processes{ user = "*\\svc" })
    assert.same({ 700 }, { again[1].pid, again[2] })
    calls, binds = lsa_log("LSA")
    assert.same({ { "LsarOpenPolicy2", "LsarLookupSids2", "LsarClose" }, 0 }, { calls, binds })
  end)

  it("says where the names came from", function()
    local h <close> = connect("LSA")
    local list = assert(h:processes())
    -- the orphan's SID sent the client to the session owners for the rest
    assert.same({ "lsa+guess" }, { list:names_from() })
    local named = assert(h:processes{ name = "explorer.exe" })
    assert.equals("lsa+guess", (named:names_from()))
    assert.is_nil(next(named, #named > 0 and #named or nil))   -- a plain sequence
  end)

  for _, c in ipairs{ { "DEN", "access_denied" }, { "ABS", "lsa_unavailable" } } do
    local name, code = c[1], c[2]
    it(name .. ": without LSA (" .. code .. ") the well-known SIDs and session owners still name most", function()
      sim.clear_log(env)
      local h <close> = connect(name)
      local list = assert(h:processes())
      local p = by_image(list)
      local from, lsa_err = list:names_from()
      assert.equals("guess", from)
      assert.equals(code, lsa_err.code)
      assert.equals(name, lsa_err.host)
      assert.equals("CORP\\alice", p["explorer.exe"].account)
      assert.equals("NT AUTHORITY\\SYSTEM", p["System"].account)
      assert.is_nil(p["backup.exe"].account)     -- only LSA knows an account without a session
      -- not asked again on this handle
      assert(h:processes())
      local calls = lsa_log(name)
      assert.equals(code == "access_denied" and 1 or 0, #calls)
    end)
  end

  it("the CLI shows LSA's names, and says on stderr when it had to do without", function()
    local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC" } }
    local code, out, err = run({ "processes", "LSA=127.0.0.1:" .. env.ports.LSA, "--name", "backup.exe" },
      support.ADMIN)
    assert.equals(0, code)
    assert.matches("CORP\\svc +0 +700", out)
    assert.equals("", err)
    code, out, err = run({ "processes", "DEN=127.0.0.1:" .. env.ports.DEN, "--name", "explorer.exe" },
      support.ADMIN)
    assert.equals(0, code)
    assert.matches("CORP\\alice", out, 1, true)
    assert.matches("note: DEN: process owners not named through LSA (access_denied", err, 1, true)
  end)
end)
