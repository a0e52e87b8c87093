-- Session control against the simulator through smbd: every verb, with
-- what users rely on — the state change shows in a later listing, a stale
-- record is refused, a non-admin is denied, missing services are named.
local sim = require "support.sim"
local termsrv = require "termsrv"

local env, port

local function connect(host, over)
  local opts = { host = "127.0.0.1", port = port[host], user = env.user, domain = env.domain,
                 password = env.password, timeout = 5, name = host }
  for k, v in pairs(over or {}) do opts[k] = v end
  return assert(termsrv.connect(opts))
end

local function listed(h, id)
  for _, s in ipairs(assert(h:sessions{ times = false })) do
    if s.id == id then return s end
  end
end

local function sim_session(host, id)
  for _, s in ipairs(sim.state(env, host).sessions) do
    if s.id == id then return s end
  end
end

setup(function()
  env = sim.start{ config = "spec/fixtures/sim/control.lua" }
  port = env.ports
end)
teardown(function() sim.stop(env) end)

describe("session actions", function()
  local h
  setup(function() h = connect("TS01") end)
  teardown(function() h:close() end)

  it("reset ends a session (the real rwinsta) and verifies it is gone", function()
    local rec = listed(h, 5)
    local r = assert(h:reset(rec, { wait = true }))
    assert.same({ "TS01", 5, "carol", "reset", "disconnected", "gone", true },
      { r.host, r.id, r.user, r.action, r.before, r.after, r.ok })
    assert.is_number(r.duration)
    assert.is_nil(listed(h, 5))
    assert.matches("reset session 5", tostring(r))
  end)

  it("logoff ends a session", function()
    local r = assert(h:logoff(4, { wait = true }))
    assert.same({ "bob", "logoff", "gone" }, { r.user, r.action, r.after })
    assert.is_nil(r.fallback)
    assert.is_nil(listed(h, 4))
  end)

  it("disconnect leaves the user logged on, disconnected, with a disconnect time", function()
    local r = assert(h:disconnect(6, { wait = true }))
    assert.same({ "active", "disconnected" }, { r.before, r.after })
    local s = assert(h:session(6))
    assert.equals("disconnected", s.state)
    assert.equals("dave", s.user)
    assert.is_true(s.disconnected >= 0 and s.disconnected < 60)
  end)

  it("message returns the user's answer, or async when not waiting", function()
    sim.ctl(env, "set-session", "TS01", "7", '{"message_response": 6}') -- IDYES
    local r = assert(h:message(7, "Maintenance", "Sign out now?", { buttons = "yesno", wait = true, timeout = 30 }))
    assert.equals("yes", r.answer)
    r = assert(h:message(7, "Maintenance", "Bye"))
    assert.equals("async", r.answer)
    local msgs = sim.state(env, "TS01").messages
    assert.equals("Maintenance", msgs[#msgs - 1].title)
    assert.equals("Sign out now?", msgs[#msgs - 1].message)
  end)

  it("connect moves a disconnected session onto another station (tscon)", function()
    local r = assert(h:connect(3, 2, nil, { wait = true }))
    assert.same({ "connect", "alice", true }, { r.action, r.user, r.ok })
    local s = assert(h:session(3))
    assert.equals("active", s.state)
    assert.equals("rdp-tcp#42", s.name)
  end)

  it("refuses to act on a stale record (session_changed) and touches nothing", function()
    local rec = listed(h, 8)
    assert.equals("svc_backup", rec.user)
    sim.ctl(env, "set-session", "TS01", "8", '{"user": "mallory", "logon": "-1m", "state": "Active"}')
    sim.clear_log(env)
    local r, err, res = h:logoff(rec)
    assert.is_nil(r)
    assert.equals("session_changed", err.code)
    assert.matches("mallory", err.message)
    assert.is_false(res.ok)
    assert.equals(0, #sim.calls(env, { method = "RpcLogoff" }))
    assert.equals("mallory", sim_session("TS01", 8).user)
  end)

  it("says session_not_found for an id that does not exist", function()
    local r, err = h:reset(4242)
    assert.is_nil(r)
    assert.equals("session_not_found", err.code)
    assert.equals("TS01", err.host)
  end)

  it("refuses a listener unless asked", function()
    local r, err = h:reset(65536)
    assert.is_nil(r)
    assert.equals("invalid_parameter", err.code)
  end)
end)

describe("a non-admin", function()
  it("is denied on other users' sessions and may act on its own", function()
    local h <close> = connect("TS01", { user = env.nonadmin_user, password = env.nonadmin_password })
    for _, verb in ipairs{ "reset", "logoff", "disconnect" } do
      local r, err = h[verb](h, 2)
      assert.is_nil(r, verb)
      -- the re-read already fails: a non-admin cannot even query another's session
      assert.equals("access_denied", err.code, verb)
      assert.matches("Administrators", err.hint)
    end
    local r = assert(h:disconnect(7, { wait = true }))
    assert.equals("disconnected", r.after)
    local _, err = h:shutdown{ reboot = true, confirm = true }
    assert.equals("access_denied", err.code)
  end)
end)

describe("processes", function()
  local h
  setup(function() h = connect("TS01") end)
  teardown(function() h:close() end)

  it("lists every process of the host, from a multi-fragment answer, NULL names included", function()
    local sent_before = #sim.calls(env, { method = "RpcWinStationGetAllProcesses" })
    local all = assert(h:processes())
    local call = sim.calls(env, { method = "RpcWinStationGetAllProcesses" })[sent_before + 1]
    assert.is_true(call.frags_out > 1)
    assert.equals(#sim.state(env, "TS01").processes, #all)
    local idle = all[1]
    assert.same({ 0, nil, nil }, { idle.pid, idle.image, idle.sid })
    for _, p in ipairs(all) do
      if p.pid == 4 then assert.equals("NT AUTHORITY\\SYSTEM", p.account) end
    end
  end)

  it("filters by session, image name and user, and names the session owner", function()
    local mine = assert(h:processes{ session = 2 })
    assert.is_true(#mine > 3)
    for _, p in ipairs(mine) do assert.equals(2, p.session) end
    local explorers = assert(h:processes{ name = "EXPLORER.exe" })
    assert.is_true(#explorers >= 3)
    local foo = assert(h:processes{ user = "*\\foo", name = "explorer.exe" })
    assert.equals(1, #foo)
    assert.equals("CORP\\foo", foo[1].account)
    assert.is_true(foo[1].memory > 0)
  end)

  it("kill ends a process, by pid or by name", function()
    local victim = assert(h:processes{ session = 2, name = "ctfmon.exe" })[1]
    local res = assert(h:kill(victim.pid))
    assert.is_true(res[1].ok)
    assert.same({}, assert(h:processes{ session = 2, name = "ctfmon.exe" }))
    res = assert(h:kill{ name = "SearchUI.exe", session = 2 })
    assert.equals(1, #res)
    local gone, err = h:kill(99999)
    assert.is_nil(gone)
    assert.equals("process_not_found", err.code)
  end)

  it("shutdown refuses without confirm=true and records a reboot with it", function()
    assert.has_error(function() h:shutdown{ reboot = true } end)
    assert(h:shutdown{ reboot = true, confirm = true })
    local sd = sim.state(env, "TS01").shutdowns
    assert.equals(1, #sd)
  end)
end)

describe("logoff falls back to reset", function()
  it("when RpcLogoff fails, and says so in the result", function()
    local h <close> = connect("TSFB")
    local r = assert(h:logoff(3, { wait = true }))
    assert.same({ "logoff", "reset", "gone" }, { r.action, r.fallback, r.after })
    local again = assert(h:logoff(4, { fallback = false }) == nil and true)
    assert.is_true(again)
  end)
end)

describe("Windows versions and missing services", function()
  it("RDP disabled: logoff and disconnect work through LSM; reset and processes say rdp_disabled", function()
    local h <close> = connect("TSRD")
    assert(h:disconnect(2, { wait = true }))
    assert(h:logoff(3, { wait = true, fallback = false }))
    local r, err = h:reset(4)
    assert.is_nil(r)
    assert.equals("rdp_disabled", err.code)
    assert.matches("Remote Desktop", err.hint)
    local p, perr = h:processes()
    assert.is_nil(p)
    assert.equals("rdp_disabled", perr.code)
    assert.equals("disconnected", listed(h, 2).state)
  end)

  it("2008: every action works", function()
    local h <close> = connect("TS08")
    assert(h:logoff(3, { wait = true }))
    assert(h:reset(4, { wait = true }))
    assert(h:disconnect(2, { wait = true }))
    assert.equals("async", assert(h:message(6, "t", "m")).answer)
    assert.is_true(#assert(h:processes()) > 10)
    assert.is_nil(listed(h, 3))
  end)

  it("legacy-only (2003): logoff is a reset, disconnect and message use the legacy interface", function()
    local h <close> = connect("TS03")
    local r = assert(h:logoff(3, { wait = true }))
    assert.equals("gone", r.after)
    assert(h:disconnect(2, { wait = true }))
    sim.clear_log(env)
    assert.equals("async", assert(h:message(6, "t", "m")).answer)
    assert.equals(1, #sim.calls(env, { method = "RpcWinStationSendMessage", host = "TS03" }))
    assert.equals("disconnected", listed(h, 2).state)
  end)
end)

describe("termsrv.strerror", function()
  local core = require "termsrv.core"

  it("knows every status the calls return, with a code, a message and a hint", function()
    for _, row in ipairs(core.status_table()) do
      assert.is_string(row.code)
      assert.is_true(#row.name > 0 and #row.message > 0, row.name)
      if row.code ~= "ok" then assert.is_true(#row.hint > 10, row.name) end
    end
  end)

  it("decodes HRESULT, NTSTATUS, Win32 and RPC fault numbers by their shape", function()
    local cases = {
      [0x80070005] = "access_denied", [0xC0000022] = "access_denied", [5] = "access_denied",
      [0x80071B6E] = "session_not_found", [0xC00A0015] = "session_not_found", [0x80070002] = "session_not_found",
      [0x1C010002] = "not_supported", [0x1C00001A] = "invalid_handle", [0x6F7] = "rpc_fault",
      [0x8007139F] = "invalid_state", [0xC000006D] = "logon_failure", [0x721] = "auth_failed",
      [0x80070490] = "process_not_found", [0x800706BA] = "connection_lost",
    }
    for status, code in pairs(cases) do
      local info = termsrv.strerror(status)
      assert.is_table(info, string.format("0x%X", status))
      assert.equals(code, info.code, string.format("0x%X", status))
    end
    assert.equals("nca_s_op_rng_error", termsrv.strerror(0x1C010002).name)
    assert.equals("rpc_s_access_denied", termsrv.strerror(5, "fault").name)
    assert.equals("ECONNREFUSED", termsrv.strerror(111, "errno").name)
    assert.is_nil(termsrv.strerror(0x12345678))
  end)
end)

describe("result records", function()
  it("print one readable line for sessions, processes and the host", function()
    local control = require "termsrv.control"
    local R = control.Result
    local s = setmetatable({ host = "TS01", id = 3, user = "alice", domain = "CORP", action = "logoff",
      before = "disconnected", after = "gone", duration = 0.25, ok = true }, R)
    assert.equals("TS01: logoff session 3 (CORP\\alice): disconnected -> gone in 0.25s: ok", tostring(s))
    local k = setmetatable({ host = "TS01", id = 2, pid = 4242, image = "notepad.exe", action = "kill",
      duration = 0.01, ok = true }, R)
    assert.equals("TS01: kill pid 4242 (notepad.exe) in session 2 in 0.01s: ok", tostring(k))
    local h = setmetatable({ host = "TS01", action = "reboot", duration = 0.02, ok = true }, R)
    assert.equals("TS01: reboot in 0.02s: ok", tostring(h))
  end)
end)

-- Every session verb against the same four situations, so that none of
-- them can quietly skip the re-check or mis-map an answer.
describe("every verb", function()
  local verbs = {
    reset = function(h, s) return h:reset(s) end,
    logoff = function(h, s) return h:logoff(s, { fallback = false }) end,
    disconnect = function(h, s) return h:disconnect(s) end,
    message = function(h, s) return h:message(s, "t", "m") end,
    connect = function(h, s) return h:connect(s, 1) end,
  }

  for name, verb in pairs(verbs) do
    it(name .. ": not found, stale record, and a non-admin on another user's session", function()
      local h <close> = connect("TS22")
      local r, err = verb(h, 4242)
      assert.is_nil(r)
      assert.equals("session_not_found", err.code)

      local rec = listed(h, 2)
      sim.ctl(env, "set-session", "TS22", "2", '{"user": "mallory", "logon": "-10s"}')
      sim.clear_log(env)
      r, err = verb(h, rec)
      assert.is_nil(r)
      assert.equals("session_changed", err.code)
      for _, c in ipairs(sim.calls(env, { host = "TS22", event = "call" })) do
        assert.truthy(c.method:match("Query") or c.method:match("Open"), c.method)
      end
      sim.ctl(env, "set-session", "TS22", "2", '{"user": "foo"}')

      local u <close> = connect("TS22", { user = env.nonadmin_user, password = env.nonadmin_password })
      r, err = verb(u, 3)
      assert.is_nil(r)
      assert.equals("access_denied", err.code)
    end)
  end

  it("processes, kill and shutdown: a non-admin is denied another user's processes and the shutdown", function()
    local h <close> = connect("TS22")
    local other = assert(h:processes{ session = 3, name = "explorer.exe" })[1]
    local u <close> = connect("TS22", { user = env.nonadmin_user, password = env.nonadmin_password })
    local res, err = u:kill(other.pid)
    assert.is_nil(res)
    assert.equals("access_denied", err.code)
    local _, serr = u:shutdown{ poweroff = true, confirm = true }
    assert.equals("access_denied", serr.code)
    assert.equals(0, #sim.state(env, "TS22").shutdowns)
  end)

  it("RDP disabled: kill and shutdown need the legacy pipe and say rdp_disabled", function()
    local h <close> = connect("TSRD")
    local _, err = h:kill(1234)
    assert.equals("rdp_disabled", err.code)
    _, err = h:shutdown{ reboot = true, confirm = true }
    assert.equals("rdp_disabled", err.code)
  end)

  it("2008 and legacy-only: processes, kill and connect work too", function()
    for _, name in ipairs{ "TS08", "TS03" } do
      local h <close> = connect(name)
      local p = assert(h:processes{ session = 7, name = "ctfmon.exe" })[1]
      assert(h:kill(p.pid))
      assert.same({}, assert(h:processes{ session = 7, name = "ctfmon.exe" }), name)
    end
    local h <close> = connect("TS08")
    assert(h:connect(5, 7, nil, { wait = true }))
    assert.equals("rdp-tcp#61", assert(h:session(5)).name)
  end)
end)

describe("without RPC packet privacy", function()
  it("works on a host that accepts the SMB identity, but never sends a session password in clear", function()
    local h <close> = connect("TSID", { rpc_auth = "none" })
    assert.equals("foo", listed(h, 2).user)
    sim.clear_log(env)
    local r, err = h:connect(3, 2, "alices-password")
    assert.is_nil(r)
    assert.equals("invalid_parameter", err.code)
    assert.matches("privacy", err.message)
    assert.equals(0, #sim.calls(env, { host = "TSID", method = "RpcConnect" }))
    for _, c in ipairs(sim.calls(env, { host = "TSID", event = "call" })) do assert.equals(1, c.auth_level) end
  end)
end)
