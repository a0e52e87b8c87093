-- Self-test of the simulated Windows terminal server (sim/), driven through a
-- real smbd by python3-impacket's DCE/RPC client with NTLM packet privacy
-- (sim/selftest.py), plus the start/stop/ctl contract other specs rely on.

local sim = require "support.sim"

local S_OK = 0
local E_ACCESSDENIED = 0x80070005
local HR_FILE_NOT_FOUND = 0x80070002
local HR_CTX_NOT_FOUND = 0x80071B6E
local HR_LOGON_FAILURE = 0x8007052E
local STATUS_CTX_WINSTATION_NOT_FOUND = 0xC00A0015
local STATUS_NO_MORE_ENTRIES = 0x8000001A
local STATUS_ACCESS_DENIED = 0xC0000022
local STATUS_LOGON_FAILURE = 0xC000006D
local STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
local STATUS_PIPE_DISCONNECTED = 0xC00000B0
local NCA_OP_RNG_ERROR = 0x1C010002
local NCA_CONTEXT_MISMATCH = 0x1C00001A
local RPC_ACCESS_DENIED = 0x5
local RPC_BAD_STUB_DATA = 0x6F7
local RPC_SEC_PKG_ERROR = 0x721
local NCA_UNK_IF = 0x1C010003
local NCA_INVALID_PRES_CONTEXT = 0x1C00001C
local IDOK, IDTIMEOUT, IDASYNC = 1, 32000, 32001
local ACTIVE, CONNECTED, DISCONNECTED, LISTEN = 0, 1, 4, 6

-- Seconds since boot with 10 ms resolution (os.clock is CPU time).
local function wallclock()
  local f = assert(io.open("/proc/uptime"))
  local t = tonumber(f:read("a"):match("^(%S+)"))
  f:close()
  return t
end

local function by_id(list)
  local t = {}
  for _, s in ipairs(list) do t[s.id] = s end
  return t
end

local function ids(list)
  local out = {}
  for _, s in ipairs(list) do out[#out + 1] = s.id end
  return out
end

-- One op through impacket; returns its result object.
local function op(env, opts, spec)
  return sim.selftest(env, opts, spec)[1]
end

local function port_of(env, name)
  for _, h in ipairs(env.hosts) do
    if h.name == name then return h.port end
  end
  error("no host " .. name)
end

-- Processes (not zombies) whose command line names dir.
local function live_processes(dir)
  local out = sim.run({ "ps", "-eo", "stat=,args=" })
  local found = {}
  for line in out:gmatch("[^\n]+") do
    local stat, args = line:match("^%s*(%S+)%s+(.*)$")
    if stat and not stat:match("^Z") and args:find(dir, 1, true) then found[#found + 1] = args end
  end
  return found
end

-- A temporary .lua config file (the simulator tells Lua from JSON by the suffix).
local function write_config(text)
  local base = os.tmpname()
  os.remove(base)
  local path = base .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("sim: the default host", function()
  local env, start_seconds

  lazy_setup(function()
    local t0 = wallclock()
    env = sim.start()
    start_seconds = wallclock() - t0
  end)

  lazy_teardown(function() sim.stop(env) end)

  describe("start", function()
    it("returns within 5 s with the documented environment", function()
      assert.is_true(start_seconds < 5, "start took " .. start_seconds .. " s")
      assert.equal("127.0.0.1", env.host)
      assert.is_number(env.port)
      assert.equal("ops", env.user)
      assert.equal("CORP", env.domain)
      assert.equal("jdoe", env.nonadmin_user)
      assert.truthy(env.password ~= "" and env.nonadmin_password ~= "")
      assert.truthy(env.dir:match("^/tmp/tss%."))
      assert.same({ { name = "TS01", address = "127.0.0.1", port = env.port, profile = "2019" } },
        env.hosts)
      local f = assert(io.open(env.hostlist))
      assert.equal("127.0.0.1:" .. env.port .. "\n", f:read("a"))
      f:close()
    end)
  end)

  describe("listing through impacket", function()
    it("RpcGetAllSessions level 2 shows the default sessions", function()
      local r = op(env, nil, "sessions:2")
      assert.is_true(r.ok, r.error)
      assert.equal(S_OK, r.hresult)
      assert.equal(2, r.level)
      assert.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 65536 }, ids(r.sessions))
      local s = by_id(r.sessions)
      assert.same({ "services", DISCONNECTED, "" }, { s[0].name, s[0].state, s[0].user })
      assert.same({ "console", CONNECTED }, { s[1].name, s[1].state })
      assert.same({ "rdp-tcp", LISTEN }, { s[65536].name, s[65536].state })
      assert.same({ "rdp-tcp#42", ACTIVE, "foo", "CORP", "TS01" },
        { s[2].name, s[2].state, s[2].user, s[2].domain, s[2].host })
      for _, id in ipairs({ 3, 4, 5, 8 }) do
        assert.same({ "", DISCONNECTED }, { s[id].name, s[id].state })
      end
    end)

    it("RpcGetAllSessions level 1 and the enumeration handle at levels 1 and 2 agree", function()
      local r = sim.selftest(env, nil, "sessions:1", "enum:1", "enum:2")
      for _, res in ipairs(r) do assert.is_true(res.ok, res.error) end
      assert.same(ids(r[1].sessions), ids(r[2].sessions))
      assert.same(ids(r[1].sessions), ids(r[3].sessions))
      assert.equal(S_OK, r[2].close_hresult)
      local s = by_id(r[3].sessions)
      assert.equal(2, s[2].level)
      assert.equal(1, s[2].full_desktop)
      assert.equal("7d76f5883fd14d40a3488b8e030294a9", s[0].type)   -- services GUID, bytes_le
    end)

    it("the legacy enumeration pages through all sessions and ends with NO_MORE_ENTRIES", function()
      local r = op(env, nil, "legacy-enum:228")          -- three LOGONIDs per call
      assert.is_true(r.ok, r.error)
      assert.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 65536 }, ids(r.sessions))
      assert.equal(5, r.calls)
      assert.equal(STATUS_NO_MORE_ENTRIES, r.final_result)
      assert.equal(1, r.final_return)
      assert.equal("rdp-tcp#42", by_id(r.sessions)[2].name)
    end)

    it("session details agree with the simulator's state across all calls", function()
      local state = sim.state(env)
      local s2 = by_id(state.sessions)[2]
      local r = sim.selftest(env, nil, "info:2", "query:2", "client:2")
      local info, query, client = r[1], r[2], r[3]
      assert.is_true(info.ok and query.ok and client.ok)
      assert.same({ S_OK, ACTIVE, 1, "rdp-tcp#42", "foo", "CORP" },
        { info.ex.hresult, info.ex.state, info.ex.flags, info.ex.name, info.ex.user, info.ex.domain })
      assert.near(s2.logon_time, info.ex.logon, 0.001)
      assert.near(s2.last_input_time, info.ex.last_input, 0.001)
      assert.equal(0, info.ex.disconnect)
      assert.same({ "foo", "CORP", "rdp-tcp#42" }, { info.info.user, info.info.domain, info.info.station })
      assert.near(s2.connect_time, info.times.connect, 0.001)
      assert.same({ "foo", "CORP" }, { info.user_name.user, info.user_name.domain })
      assert.equal(ACTIVE, info.state.state)
      -- legacy class 8: VARDATA_WIRE + WINSTATIONINFORMATION (offsets in sim/README.md)
      assert.same({ 0, 1, 1220, 1216, 4 }, { query.result, query["return"], query.return_length,
        query.size, query.offset })
      assert.same({ ACTIVE, "rdp-tcp#42", 2, "foo", "CORP" },
        { query.state, query.name, query.logon_id, query.user, query.domain })
      assert.near(s2.last_input_time, query.last_input, 0.001)
      assert.near(os.time(), query.current_time, 5)
      -- RCMPublic
      assert.same({ S_OK, 2296, "LAPTOP-FOO", "10.10.20.42" }, { client.client_data.hresult,
        client.client_data.length, client.client_data.client_name, client.client_data.client_address })
      assert.same({ 2, "10.10.20.42" }, { client.remote_address.family, client.remote_address.address })
      assert.near(s2.last_input_time, client.last_input.time, 0.001)
    end)

    it("a disconnected session reports its disconnect time; idle ages come from last input", function()
      local r = op(env, nil, "info:4")
      assert.is_true(r.ok, r.error)
      assert.equal(DISCONNECTED, r.ex.state)
      -- relative times are fixed when the simulator starts: allow for the
      -- time the suite took to get here on a busy machine
      assert.near(os.time() - 9 * 3600, r.ex.disconnect, 60)
      local dave = op(env, nil, "info:6")
      assert.near(os.time() - 2 * 3600, dave.ex.last_input, 60)
      assert.equal(0, dave.ex.flags)                         -- locked
    end)

    it("answers unknown sessions like Windows does", function()
      local r = sim.selftest(env, nil, "info:99", "query:99", "logoff:99")
      assert.equal(HR_CTX_NOT_FOUND, r[1].ex.hresult)
      assert.equal(HR_CTX_NOT_FOUND, r[2].result)            -- HRESULT style on 2019
      assert.equal(0, r[2]["return"])
      assert.equal(HR_FILE_NOT_FOUND, r[3].open_hresult)
    end)

    it("lists more than 80 processes over several fragments, with NULL image and SID for Idle", function()
      sim.clear_log(env)
      local r = op(env, nil, "processes")
      assert.is_true(r.ok, r.error)
      assert.is_true(r.count >= 80, "only " .. r.count .. " processes")
      assert.equal(r.count, #r.processes)
      local idle, system = r.processes[1], r.processes[2]
      assert.same({ 0, nil, nil, 0 }, { idle.pid, idle.image, idle.sid, idle.sid_size })
      assert.same({ 4, "System", "S-1-5-18" }, { system.pid, system.image, system.sid })
      local explorer
      for _, p in ipairs(r.processes) do
        if p.session == 2 and p.image == "explorer.exe" then explorer = p end
      end
      assert.truthy(explorer and explorer.sid:match("^S%-1%-5%-21%-"))
      local call = sim.calls(env, { method = "RpcWinStationGetAllProcesses" })[1]
      assert.is_true(call.frags_out >= 3, "frags_out " .. call.frags_out)
    end)

    it("fragments responses at the client's max_recv_frag", function()
      sim.clear_log(env)
      local r = op(env, { max_recv_frag = 1432 }, "processes")
      assert.is_true(r.ok, r.error)
      local bind = sim.calls(env, { event = "bind", pipe = "ctx_winstation_api_service" })[1]
      assert.equal(1432, bind.max_xmit_frag)
      local call = sim.calls(env, { method = "RpcWinStationGetAllProcesses" })[1]
      assert.is_true(call.frags_out >= 15)
      assert.is_true(call.bytes_out <= 1432 * call.frags_out)
    end)
  end)

  describe("actions change the state for later calls", function()
    local function add(id, fields)
      fields.id = id
      return sim.ctl(env, "add-session", "TS01", fields)
    end

    it("legacy reset removes the session and its processes", function()
      add(20, { name = "rdp-tcp#90", user = "u20", state = "Active" })
      local r = sim.selftest(env, nil, "reset:20", "sessions:1")
      assert.same({ 0, 1 }, { r[1].result, r[1]["return"] })
      assert.is_nil(by_id(r[2].sessions)[20])
      assert.is_nil(by_id(sim.state(env).sessions)[20])
    end)

    it("logoff removes the session", function()
      add(21, { name = "rdp-tcp#91", user = "u21", state = "Active" })
      local r = sim.selftest(env, nil, "logoff:21", "sessions:1")
      assert.equal(S_OK, r[1].hresult)
      assert.is_nil(by_id(r[2].sessions)[21])
    end)

    it("disconnect (LSM and legacy) moves to Disconnected with a time and no station name", function()
      add(22, { name = "rdp-tcp#92", user = "u22", state = "Active" })
      add(23, { name = "rdp-tcp#93", user = "u23", state = "Active" })
      local r = sim.selftest(env, nil, "disconnect:22", "legacy-disconnect:23", "info:22")
      assert.equal(S_OK, r[1].hresult)
      assert.same({ 0, 1 }, { r[2].result, r[2]["return"] })
      assert.same({ DISCONNECTED, "" }, { r[3].ex.state, r[3].ex.name })
      assert.near(os.time(), r[3].ex.disconnect, 5)
      local s23 = by_id(sim.state(env).sessions)[23]
      assert.same({ DISCONNECTED, "" }, { s23.state, s23.name })
    end)

    it("connect attaches a session to the target station", function()
      add(24, { user = "u24", state = "Disconnected", disconnect = "-1h" })
      add(25, { name = "rdp-tcp#95", state = "Connected", client_name = "KIOSK",
        client_address = "10.9.9.9" })
      local r = op(env, nil, "connect:24:25")
      assert.equal(S_OK, r.hresult)
      local s = by_id(sim.state(env).sessions)
      assert.same({ ACTIVE, "rdp-tcp#95", "KIOSK" }, { s[24].state, s[24].name, s[24].client_name })
      assert.is_nil(s[25])
      -- another user's session needs that user's password
      add(26, { name = "rdp-tcp#96", state = "Connected" })
      local wrong = sim.selftest(env, nil, "connect:7:26:nope", "connect:7:26:" .. env.nonadmin_password)
      assert.equal(HR_LOGON_FAILURE, wrong[1].hresult)
      assert.equal(S_OK, wrong[2].hresult)
      assert.equal("rdp-tcp#96", by_id(sim.state(env).sessions)[7].name)
    end)

    it("messages are recorded with the configured answer", function()
      sim.ctl(env, "set-session", "TS01", 2, { message_response = "IDYES" })
      local r = sim.selftest(env, nil, "message:2:Maintenance:Reboot at 22h",
        "message:2:Note:async:nowait", "message:3:Hi:you are away", "legacy-message:2:Legacy:Hello")
      assert.same({ S_OK, 6 }, { r[1].hresult, r[1].response })
      assert.equal(IDASYNC, r[2].response)
      assert.equal(IDTIMEOUT, r[3].response)                 -- nobody connected to session 3
      assert.same({ 0, 1, 6 }, { r[4].result, r[4]["return"], r[4].response })
      local msgs = sim.state(env).messages
      assert.equal(4, #msgs)
      assert.same({ 2, "Maintenance", "Reboot at 22h", 6, "RpcShowMessageBox" },
        { msgs[1].session, msgs[1].title, msgs[1].message, msgs[1].response, msgs[1].method })
      assert.same({ "Legacy", "Hello", "RpcWinStationSendMessage" },
        { msgs[4].title, msgs[4].message, msgs[4].method })
      sim.ctl(env, "set-session", "TS01", 2, { message_response = IDOK })
    end)

    it("a killed process disappears; shutdown is recorded", function()
      local victim
      for _, p in ipairs(sim.state(env).processes) do
        if p.session == 8 and p.image == "explorer.exe" then victim = p.pid end
      end
      local r = sim.selftest(env, nil, "kill:" .. victim, "kill:4", "shutdown:0x6", "processes")
      assert.same({ 0, 1 }, { r[1].result, r[1]["return"] })
      assert.same({ E_ACCESSDENIED, 0 }, { r[2].result, r[2]["return"] })   -- System
      assert.same({ 0, 1 }, { r[3].result, r[3]["return"] })
      for _, p in ipairs(r[4].processes) do assert.is_not.equal(victim, p.pid) end
      local state = sim.state(env)
      assert.equal(victim, state.killed[1].pid)
      assert.same({ 6, "CORP\\ops" }, { state.shutdowns[1].flags, state.shutdowns[1].caller })
    end)
  end)

  describe("security", function()
    it("refuses a wrong password at the SMB and at the RPC level", function()
      local smb = op(env, { password = "wrong" }, "sessions")
      assert.is_false(smb.ok)
      assert.equal(STATUS_LOGON_FAILURE, smb.smb_status)
      sim.clear_log(env)
      local rpc = op(env, { rpc_password = "wrong" }, "sessions")
      assert.is_false(rpc.ok)
      assert.equal(RPC_ACCESS_DENIED, rpc.fault)
      local auth3 = sim.calls(env, { event = "auth3" })[1]
      assert.equal(STATUS_LOGON_FAILURE, auth3.result)
    end)

    it("a non-admin sees only its own sessions and is denied others'", function()
      local user = { user = env.nonadmin_user, password = env.nonadmin_password }
      local victim
      for _, p in ipairs(sim.state(env).processes) do
        if p.session == 2 then victim = p.pid end
      end
      local r = sim.selftest(env, user, "sessions", "legacy-enum", "logoff:2", "reset:2",
        "info:2", "kill:" .. victim, "shutdown:2", "query:7", "processes")
      assert.same({ 7 }, ids(r[1].sessions))
      assert.same({ 7 }, ids(r[2].sessions))
      assert.equal(E_ACCESSDENIED, r[3].hresult)
      assert.same({ E_ACCESSDENIED, 0 }, { r[4].result, r[4]["return"] })
      assert.equal(E_ACCESSDENIED, r[5].ex.hresult)
      assert.same({ E_ACCESSDENIED, 0 }, { r[6].result, r[6]["return"] })
      assert.same({ E_ACCESSDENIED, 0 }, { r[7].result, r[7]["return"] })
      assert.same({ 0, "jdoe" }, { r[8].result, r[8].user })
      for _, p in ipairs(r[9].processes) do assert.equal(7, p.session) end
      assert.is_not_nil(by_id(sim.state(env).sessions)[2])
    end)

    it("refuses an unauthenticated bind by default", function()
      local r = op(env, { level = 1 }, "sessions")
      assert.is_false(r.ok)
      assert.equal(RPC_ACCESS_DENIED, r.fault)
    end)

    it("refuses packet integrity when privacy is required", function()
      assert.equal(RPC_ACCESS_DENIED, op(env, { level = 5 }, "sessions").fault)
    end)
  end)

  describe("DCE/RPC details", function()
    it("binds several presentation contexts, alter_context, and refuses unknown ones", function()
      local r = sim.selftest(env, nil, "multi-context", "alter-context", "bogus-bind")
      local sessions = #sim.state(env).sessions
      for _, res in ipairs(r) do
        assert.is_true(res.ok, res.error)
        assert.equal(sessions, res.count)
      end
      assert.equal(S_OK, r[1].open_hresult)
      assert.equal(S_OK, r[2].open_hresult)
    end)

    it("faults an unknown opnum, a stale or foreign handle and malformed stub data", function()
      local r = sim.selftest(env, nil, "opnum:lsm:99", "opnum:ctx:2", "stale-handle",
        "foreign-handle", "bad-stub")
      assert.equal(NCA_OP_RNG_ERROR, r[1].fault)
      assert.equal(NCA_OP_RNG_ERROR, r[2].fault)
      assert.equal(NCA_CONTEXT_MISMATCH, r[3].fault)
      assert.equal(NCA_CONTEXT_MISMATCH, r[4].fault)
      assert.equal(RPC_BAD_STUB_DATA, r[5].fault)
    end)

    it("faults a request on a refused or unknown presentation context", function()
      local r = sim.selftest(env, nil, "call-context:0", "call-context:7", "call-context:2")
      assert.equal(NCA_UNK_IF, r[1].fault)
      assert.equal(NCA_INVALID_PRES_CONTEXT, r[2].fault)
      assert.is_true(r[3].ok, r[3].error)
    end)

    it("faults a request whose NTLM verifier is wrong, and logs it", function()
      sim.clear_log(env)
      assert.equal(RPC_SEC_PKG_ERROR, op(env, nil, "bad-request-signature").fault)
      local err = sim.calls(env, { event = "error" })[1]
      assert.truthy(err.detail:match("verifier"))
    end)

    it("closes the pipe when a client splits one PDU over two writes", function()
      sim.clear_log(env)
      assert.is_false(op(env, nil, "split-write").ok)
      local err = sim.calls(env, { event = "error" })[1]
      assert.truthy(err.detail:match("split"))
    end)

    it("logs every call with the documented fields", function()
      sim.clear_log(env)
      assert.is_true(op(env, nil, "sessions:1").ok)
      local f = assert(io.open(env.log))
      local text = f:read("a")
      f:close()
      local call_line = text:match('[^\n]*"event":"call"[^\n]*')
      for _, key in ipairs({ "ts", "host", "port", "pipe", "event", "iface", "opnum", "method",
        "auth_level", "auth_type", "user", "call_id", "result", "fault", "bytes_in", "bytes_out",
        "frags_in", "frags_out" }) do
        assert.truthy(call_line:find('"' .. key .. '":', 1, true), "missing " .. key)
      end
      local call = sim.calls(env, { event = "call" })[1]
      assert.same({ "TS01", env.port, "lsm_api_service", "TermSrvEnumeration", 10,
        "RpcGetAllSessions", 6, 10, "CORP\\ops", 0, 1, 1 },
        { call.host, call.port, call.pipe, call.iface, call.opnum, call.method, call.auth_level,
          call.auth_type, call.user, call.result, call.frags_in, call.frags_out })
      local events = {}
      for _, rec in ipairs(sim.calls(env)) do events[#events + 1] = rec.event end
      assert.same({ "open", "bind", "auth3", "call", "close" }, events)
      local open = sim.calls(env, { event = "open" })[1]
      assert.same({ "127.0.0.1" }, { open.client })
      assert.truthy(open.smb_user:match("\\ops$"))
    end)
  end)

  describe("control channel", function()
    it("adds, changes and removes sessions", function()
      local added = sim.ctl(env, "add-session", "TS01", { id = 40, name = "rdp-tcp#140",
        user = "newbie", state = "Active", logon = "-10m" })
      assert.near(sim.state(env).host.now - 600, added.logon_time, 2)
      -- the user reconnected: same id, new logon time and user
      local changed = sim.ctl(env, "set-session", env.port, 40, { user = "other", logon = "-1m" })
      assert.same({ "other", "rdp-tcp#140" }, { changed.user, changed.name })
      assert.near(added.logon_time + 540, changed.logon_time, 2)
      local listed = by_id(op(env, nil, "sessions").sessions)
      assert.equal("other", listed[40].user)
      assert.same({ ok = true }, sim.ctl(env, "remove-session", "TS01", 40))
      assert.is_nil(by_id(op(env, nil, "sessions").sessions)[40])
      assert.has_error(function() sim.ctl(env, "remove-session", "TS01", 40) end)
    end)

    it("rdp-login honours max_sessions (10 on the default host)", function()
      local count = 0
      for _, s in ipairs(sim.state(env).sessions) do
        if s.user ~= "" and s.id < 65536 then count = count + 1 end
      end
      for i = count + 1, 10 do
        local r = sim.ctl(env, "rdp-login", "TS01", "load" .. i)
        assert.is_true(r.ok)
        assert.equal(ACTIVE, r.session.state)
      end
      local refused = sim.ctl(env, "rdp-login", "TS01", "onemore")
      assert.same({ ok = false, error = "The maximum number of connections has been exceeded" },
        refused)
    end)
  end)

  describe("fault modes, as the impacket client sees them", function()
    local scope = "method=RpcGetAllSessions"
    local quick = { timeout = 1.5 }

    -- Runs fn with one fault set on RpcGetAllSessions; checks the log recorded it.
    local function with_fault(mode, arg, fn)
      sim.clear_log(env)
      if arg then sim.ctl(env, "set-fault", "TS01", mode, arg, scope)
      else sim.ctl(env, "set-fault", "TS01", mode, scope) end
      local ok, err = pcall(fn)
      sim.ctl(env, "clear-faults", "TS01")
      if not ok then error(err, 0) end
      assert.equal(1, #sim.calls(env, { event = "fault-injected", mode = mode }))
    end

    it("hang: the call never returns; other calls still work", function()
      with_fault("hang", nil, function()
        local t0 = wallclock()
        local r = sim.selftest(env, quick, "sessions", "enum")
        assert.is_true(r[1].timeout)
        assert.is_true(wallclock() - t0 < 10)
        assert.is_true(r[2].ok)
      end)
    end)

    it("close: the pipe is closed mid-call", function()
      with_fault("close", nil, function()
        assert.equal(STATUS_PIPE_DISCONNECTED, op(env, quick, "sessions").smb_status)
      end)
    end)

    it("truncated: a short PDU, then silence", function()
      with_fault("truncated", nil, function()
        assert.is_true(op(env, quick, "sessions").timeout)
      end)
    end)

    it("bad_frag_length: frag_length larger, or smaller, than the bytes sent", function()
      with_fault("bad_frag_length", nil, function()
        assert.is_true(op(env, quick, "sessions").timeout)
      end)
      with_fault("bad_frag_length", "smaller", function()
        assert.truthy(op(env, quick, "sessions").error:match("claims frag_length 16"))
      end)
    end)

    it("absurd_count: array counts of 0x7fffffff", function()
      with_fault("absurd_count", nil, function()
        local r = op(env, quick, "sessions")
        assert.is_false(r.ok)
        assert.truthy(r.error:match("buffer"))
      end)
    end)

    it("wrong_call_id", function()
      with_fault("wrong_call_id", nil, function()
        assert.truthy(op(env, quick, "sessions").error:match("^response call_id"))
      end)
    end)

    it("bad_signature: the response verifier does not check", function()
      with_fault("bad_signature", nil, function()
        assert.truthy(op(env, quick, "sessions").error:match("bad response verifier"))
      end)
    end)

    it("bind_nak", function()
      sim.clear_log(env)
      sim.ctl(env, "set-fault", "TS01", "bind_nak")
      local r = op(env, quick, "enum")
      sim.ctl(env, "clear-faults", "TS01")
      assert.is_false(r.ok)
      assert.truthy(r.error:match("reason_not_specified"))
      assert.equal("nak", sim.calls(env, { event = "bind" })[1].result)
    end)

    it("fault: every matching call faults with the given status", function()
      with_fault("fault", "0x6BA", function()
        assert.equal(0x6BA, op(env, quick, "sessions").fault)
      end)
    end)

    it("delay: each call takes the given extra time", function()
      with_fault("delay", "0.6", function()
        assert.is_true(op(env, quick, "sessions").ok)
        assert.is_true(sim.calls(env, { event = "call", method = "RpcGetAllSessions" })[1].ms >= 600)
      end)
    end)
  end)
end)

describe("sim: a fleet of hosts", function()
  local env

  lazy_setup(function() env = sim.start{ config = sim.root .. "/sim/configs/fleet.lua" } end)
  lazy_teardown(function() sim.stop(env) end)

  local function on(name, opts)
    opts = opts or {}
    opts.port = port_of(env, name)
    return opts
  end

  it("lists every host in config order with its own port", function()
    local names, ports = {}, {}
    for _, h in ipairs(env.hosts) do
      names[#names + 1] = h.name
      ports[h.port] = true
    end
    assert.same({ "TS19", "TS08", "TS12", "TS22", "NORDP", "W2K3", "OPEN", "SKEW", "SIGN",
      "FULL", "SLOW" }, names)
    assert.equal(port_of(env, "TS19"), env.port)
    local count = 0
    for _ in pairs(ports) do count = count + 1 end
    assert.equal(#env.hosts, count)
  end)

  it("profile 2008 lacks opnum 17 and RpcGetAllSessions and answers legacy calls in NTSTATUS", function()
    local r = sim.selftest(env, on("TS08"), "info:2", "sessions", "enum", "query:99")
    assert.equal(NCA_OP_RNG_ERROR, r[1].fault)
    assert.equal(NCA_OP_RNG_ERROR, r[2].fault)
    assert.is_true(r[3].ok)
    assert.equal(STATUS_CTX_WINSTATION_NOT_FOUND, r[4].result)
    local denied = sim.selftest(env, on("TS08", { user = "jdoe", password = "Jdoe-Passw0rd" }),
      "reset:2")
    assert.equal(STATUS_ACCESS_DENIED, denied[1].result)
  end)

  it("profiles 2012r2 and 2022 serve everything", function()
    for _, name in ipairs({ "TS12", "TS22" }) do
      local r = sim.selftest(env, on(name), "sessions", "info:2", "client:2", "query:2")
      for _, res in ipairs(r) do assert.is_true(res.ok, name .. " " .. tostring(res.error)) end
    end
  end)

  it("rdp-disabled has no TermSrv or Ctx_WinStation pipe", function()
    local r = sim.selftest(env, on("NORDP"), "sessions", "legacy-enum", "client:2")
    assert.is_true(r[1].ok)
    assert.equal(STATUS_OBJECT_NAME_NOT_FOUND, r[2].smb_status)
    assert.equal(STATUS_OBJECT_NAME_NOT_FOUND, r[3].smb_status)
  end)

  it("legacy-only has no LSM pipe but lists through the legacy interface", function()
    local r = sim.selftest(env, on("W2K3"), "sessions", "legacy-enum", "query:2")
    assert.equal(STATUS_OBJECT_NAME_NOT_FOUND, r[1].smb_status)
    assert.same({ 0, 1, 2, 3, 65536 }, ids(r[2].sessions))
    assert.same({ "foo", "OLDCORP" }, { r[3].user, r[3].domain })
  end)

  it("accepts the SMB identity on a host configured to", function()
    local r = sim.selftest(env, on("OPEN", { level = 1 }), "sessions", "logoff:2")
    assert.equal(5, r[1].count)
    assert.equal(S_OK, r[2].hresult)
    local plain = op(env, on("OPEN", { level = 1, user = "jdoe", password = "Jdoe-Passw0rd" }),
      "sessions")
    assert.same({ 3 }, ids(plain.sessions))
    local call = sim.calls(env, { event = "call", host = "OPEN", method = "RpcGetAllSessions" })[1]
    assert.equal(1, call.auth_level)
  end)

  it("reports the skewed clock of a host in CurrentTime and the NTLM challenge", function()
    -- the host's clock is read somewhere inside the call: bound it by the
    -- times before and after (the impacket client can be slow on a busy machine)
    local t0 = os.time()
    local r = op(env, on("SKEW"), "query:2")
    local t1 = os.time()
    assert.is_true(r.current_time >= t0 + 7200 - 2 and r.current_time <= t1 + 7200 + 2,
      string.format("%s not in [%d, %d]", tostring(r.current_time), t0 + 7200, t1 + 7200))
    assert.near(r.current_time - 300, r.last_input, 60) -- fixed at the simulator's start
  end)

  it("accepts packet integrity where min_auth_level is 5", function()
    local r = sim.selftest(env, on("SIGN", { level = 5 }), "sessions", "processes")
    assert.is_true(r[1].ok and r[2].ok)
  end)

  it("rdp-login reconnects a disconnected session and stops at max_sessions", function()
    assert.same({ ok = false, error = "The maximum number of connections has been exceeded" },
      sim.ctl(env, "rdp-login", "FULL", "newuser"))
    local back = sim.ctl(env, "rdp-login", "FULL", "jdoe")
    assert.same({ true, true, 3, ACTIVE }, { back.ok, back.reconnected, back.session.id,
      back.session.state })
  end)

  it("applies faults from the config file", function()
    sim.clear_log(env)
    assert.is_true(op(env, on("SLOW"), "sessions").ok)
    assert.is_true(sim.calls(env, { event = "call", method = "RpcGetAllSessions" })[1].ms >= 300)
  end)
end)

describe("sim: unit tests", function()
  it("pass: NTLM against the MS-NLMP vectors, the strict NDR reader", function()
    local out, ok, _, err = sim.run({ "/usr/bin/python3", "-m", "unittest", "discover", "-s",
      sim.root .. "/sim/tests" })
    assert(ok, out .. err)
  end)
end)

describe("sim: start and stop", function()
  it("runs two instances side by side and stop leaves no process and no directory", function()
    local a = sim.start()
    local dir = os.tmpname()
    os.remove(dir)
    local b = sim.start{ dir = dir }
    assert.equal(dir, b.dir)
    assert.is_not.equal(a.port, b.port)
    assert.is_true(op(a, nil, "sessions").ok)
    assert.is_true(op(b, nil, "sessions").ok)
    assert.is_true(#live_processes(b.dir) >= 2)
    sim.stop(b)
    assert.same({}, live_processes(b.dir))
    assert.is_nil(io.open(b.dir .. "/config.json"))
    assert.is_true(op(a, nil, "sessions").ok)             -- the other instance is untouched
    sim.stop(a)
    sim.stop(a)                                           -- idempotent
    assert.same({}, live_processes(a.dir))
    local _, ok = sim.run({ sim.root .. "/sim/stop", a.dir })
    assert.is_true(ok)
  end)

  it("serves 250 hosts from one start, well within 5 s", function()
    local path = write_config([[
      local hosts = {}
      for i = 1, 250 do
        hosts[i] = { name = ("H%03d"):format(i), profile = i % 50 == 0 and "legacy-only" or "2022",
                     sessions = { { id = 1, name = "console", state = "Connected" } } }
      end
      return { hosts = hosts }
    ]])
    local t0 = wallclock()
    local env = sim.start{ config = path }
    local took = wallclock() - t0
    os.remove(path)
    local ok, err = pcall(function()
      assert.is_true(took < 5, "start took " .. took .. " s")
      assert.equal(250, #env.hosts)
      assert.is_true(op(env, { port = port_of(env, "H250") }, "legacy-enum").ok)
      assert.equal(1, op(env, { port = port_of(env, "H123") }, "sessions").count)
    end)
    sim.stop(env)
    assert(ok, err)
  end)

  it("rejects a bad config with a readable error", function()
    local path = write_config([[return { hosts = { { name = "X", profile = "2003" } } }]])
    local ok, err = pcall(sim.start, { config = path })
    os.remove(path)
    assert.is_false(ok)
    assert.truthy(tostring(err):match("unknown profile"))
  end)
end)
