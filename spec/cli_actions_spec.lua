-- termsrv actions end to end against the simulator: dry runs touch nothing,
-- --apply acts and writes the audit log, explicit ids act at once (rwinsta),
-- access-denied paths and their exit codes, and the "all connections are in
-- use" scenario that free-slots exists for.

local sim = require "support.sim"
local support = require "support.cli"
local dkjson = require "dkjson"

local BIN, ADMIN, NONADMIN = support.BIN, support.ADMIN, support.NONADMIN
local ACTIONS = { RpcLogoff = true, RpcWinStationReset = true, RpcDisconnect = true,
                  RpcWinStationTerminateProcess = true, RpcWinStationShutdownSystem = true,
                  RpcShowMessageBox = true, RpcWinStationSendMessage = true, RpcConnect = true }
local q, slurp, spit, with, users_of = support.q, support.slurp, support.spit, support.with, support.users_of

local TMP = support.scratch()

local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP .. "/home" } }

local function lines(text)
  local t = {}
  for l in (text or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- The outcome lines of the audit log; each must follow its attempt line.
local function audit_lines(path)
  local out, open = {}, {}
  for _, l in ipairs(lines(slurp(path))) do
    local e = assert(dkjson.decode(l))
    if e.phase == "attempt" then
      open[e.attempt] = true
    else
      assert(e.phase ~= "outcome" or open[e.attempt], "an outcome without its attempt: " .. l)
      out[#out + 1] = e
    end
  end
  return out
end

local function action_calls(env, name)
  return sim.calls(env, function(r) return r.event == "call" and ACTIONS[r.method] and r.host == name end)
end

-- the TIME column moves; everything else of a results table is stable
local function mask_time(text) return (text:gsub("%d+%.%ds", "T.Ts")) end

describe("termsrv actions", function()
  local env, host, simhost, audit_file
  local n = 0

  -- The fixture has 24 identical hosts; every test takes a fresh one (named
  -- TS01 on the command line), so no test sees another's changes and the
  -- simulator starts once.
  setup(function() env = sim.start{ config = "spec/fixtures/sim/full.lua" } end)
  before_each(function()
    n = n + 1
    local h = assert(env.hosts[n], "spec/fixtures/sim/full.lua: more hosts needed")
    host, simhost = "TS01=127.0.0.1:" .. h.port, h.name
    audit_file = TMP .. "/audit" .. n .. ".jsonl"
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  describe("dry runs touch nothing", function()
    it("selector-based reset, logoff, disconnect, free-slots, clean and kill only show the plan", function()
      spit(TMP .. "/policy.lua", "rules = { { select = { state = 'disc' }, action = 'logoff' } }\n")
      local before = users_of(env, simhost)
      local envs = with(ADMIN, { TERMSRV_AUDIT = audit_file })
      for _, args in ipairs{
        { "reset", host, "--state", "disc" },
        { "logoff", host, "--all-users" },
        { "disconnect", host, "--user", "dave" },
        { "free-slots", "3", host },
        { "clean", host, "--policy", TMP .. "/policy.lua" },
        { "kill", host, "--name", "explorer.exe" },
        { "reset", host, "3", "4", "-n" },
      } do
        local code, out, err = run(args, envs)
        assert.equal(0, code, table.concat(args, " ") .. ": " .. err)
        assert.truthy(out:find("dry run", 1, true) or err:find("dry run", 1, true), table.concat(args, " "))
      end
      assert.same({}, action_calls(env, simhost))
      assert.same(before, users_of(env, simhost))
      assert.is_nil(slurp(audit_file))
    end)

    it("the plan says what would happen and why, stalest first", function()
      local code, out = run({ "logoff", host, "--state", "disc", "--min-disconnected", "8h",
                              "--exclude-user", "svc_*" }, ADMIN)
      assert.equal(0, code)
      local l = lines(out)
      assert.equal('Plan (policy "termsrv logoff"): 2 actions on 1 host -- dry run, nothing done yet '
        .. "(--apply acts)", l[1])
      assert.matches("^HOST  ID  USER +STATE  IDLE  DISC  RULE +ACTION  WHY", l[2])
      assert.matches("^TS01   5  CORP\\carol +Disc +3d +3d +logoff +logoff +state disconnected; "
        .. "disconnected 3d%d*s? >= 8h$", l[3])
      assert.matches("^TS01   4  CORP\\bob ", l[4])
      assert.equal("Not touched (1):", l[5])
      assert.equal("  TS01 #8 CORP\\svc_backup: rule logoff: excluded: user CORP\\svc_backup ~ exclude_users 'svc_*'",
        l[6])
    end)

    it("JSON and CSV dry runs give one row per planned step", function()
      local code, out, err = run({ "free-slots", "2", host, "--format", "json" }, ADMIN)
      assert.equal(0, code)
      local rows = {}
      for _, l in ipairs(lines(out)) do rows[#rows + 1] = assert(dkjson.decode(l)) end
      assert.equal(3, #rows)
      -- the host's status record follows its steps
      assert.same({ "host", "TS01", true, 2 }, { rows[3].type, rows[3].host, rows[3].ok, rows[3].records })
      -- svc_backup (disconnected 12h) is a service account: never picked by default
      assert.same({ "carol", "bob" }, { rows[1].user, rows[2].user })
      assert.equal("logoff", rows[1].action)
      assert.matches('^{"host":"TS01","id":5,"user":"carol","domain":"CORP","logon_time":', out)
      assert.matches("dry run: 2 actions planned on 1 host; %-%-apply acts", err)
      code, out = run({ "free-slots", "2", host, "--format", "csv" }, ADMIN)
      assert.equal(0, code)
      assert.equal("type,host,id,user,domain,logon_time,station,state,idle,disconnected,client,address,rule,"
        .. "action,why,ok,error,message,hint,duration,records", out:match("^([^\r]*)\r\n"))
      local l = lines(out:gsub("\r", ""))
      assert.equal(4, #l)
      assert.matches("^step,TS01,5,carol,", l[2])
      assert.matches("^host,TS01,,,.*,true,,,,[%d.]+,2$", l[4])
    end)
  end)

  describe("--apply", function()
    it("acts, verifies, and appends one audit line per action (no secret in it)", function()
      local code, out, err = run({ "logoff", host, "--state", "disc", "--min-disconnected", "8h",
                                   "--exclude-user", "svc_*", "--apply", "--audit", audit_file }, ADMIN)
      assert.equal("", err)
      assert.equal(0, code)
      assert.equal(table.concat({
        "HOST  ID  USER        ACTION  STATUS  BEFORE        AFTER  TIME  DETAIL",
        "TS01   5  CORP\\carol  logoff  ok      disconnected  gone   T.Ts",
        "TS01   4  CORP\\bob    logoff  ok      disconnected  gone   T.Ts",
        "total: 1 host, 2 ok, 0 failed, 0 skipped, 0 host errors",
      }, "\n") .. "\n", mask_time(out))
      local users = users_of(env, simhost)
      assert.is_nil(users[4])
      assert.is_nil(users[5])
      assert.equal("alice", users[3])
      assert.equal("svc_backup", users[8])
      local calls = action_calls(env, simhost)
      assert.equal(2, #calls)
      assert.equal("RpcLogoff", calls[1].method)
      local a = audit_lines(audit_file)
      assert.equal(2, #a)
      assert.equal("CORP\\ops", a[1].account)
      assert.equal("TS01", a[1].host)
      assert.same({ 5, "carol", "CORP" }, { a[1].session.id, a[1].session.user, a[1].session.domain })
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", a[1].session.logon_time)
      assert.same({ "termsrv logoff", "logoff", "logoff", "disconnected", "gone", true },
        { a[1].policy, a[1].rule, a[1].action, a[1].before, a[1].after, a[1].ok })
      assert.equal(4, a[2].session.id)
      assert.is_nil(slurp(audit_file):find("Ops-Passw0rd", 1, true))
      -- appends, never truncates
      code = run({ "reset", host, "3", "--audit", audit_file }, ADMIN)
      assert.equal(0, code)
      assert.equal(3, #audit_lines(audit_file))
    end)

    it("JSON results: one line per session, stable keys", function()
      local code, out, err = run({ "reset", host, "--user", "bob", "--apply", "--format", "json",
                                   "--audit", audit_file }, ADMIN)
      assert.equal(0, code)
      local row = assert(dkjson.decode(out:match("^[^\n]*")))
      assert.same({ "TS01", 4, "bob", "reset", "ok", true, "disconnected", "gone" },
        { row.host, row.id, row.user, row.action, row.status, row.ok, row.before, row.after })
      assert.matches('^{"host":"TS01","id":4,"user":"bob","domain":"CORP","logon_time":"[^"]+","rule":"reset",'
        .. '"action":"reset","status":"ok","ok":true,"before":"disconnected","after":"gone","error":null,'
        .. '"error_message":null,"duration":[%d.]+,"answer":null,"steps":"reset:ok","note":null}\n'
        .. '{"type":"host","host":"TS01","ok":true,"error":null,"message":null,"hint":null,"duration":[%d.]+,'
        .. '"records":1}\n$', out)
      assert.equal("total: 1 host, 1 ok, 0 failed, 0 skipped, 0 host errors\n", err)
    end)

    it("writes to ~/.local/state/termsrv/audit.jsonl by default (mode 600), TERMSRV_AUDIT overrides", function()
      local home = TMP .. "/home-" .. n
      os.execute("mkdir -p " .. q(home))
      local function go(args, extra)
        local parts = { "env", "-u", "TERMSRV_AUDIT", "-u", "XDG_STATE_HOME", "HOME=" .. home,
          "TERMSRV_USER=CORP\\ops", "TERMSRV_PASSWORD=Ops-Passw0rd" }
        for _, e in ipairs(extra or {}) do parts[#parts + 1] = e end
        parts[#parts + 1] = BIN
        for _, a in ipairs(args) do parts[#parts + 1] = a end
        for i, p in ipairs(parts) do parts[i] = q(p) end
        return os.execute(table.concat(parts, " ") .. " </dev/null >/dev/null 2>&1")
      end
      assert.is_true(go({ "reset", host, "3" }))
      local default = home .. "/.local/state/termsrv/audit.jsonl"
      assert.equal(1, #audit_lines(default))
      local p = io.popen("stat -c %a " .. q(default) .. " " .. q(home .. "/.local/state/termsrv"))
      assert.equal("600\n700\n", p:read("a"))
      p:close()
      assert.is_true(go({ "reset", host, "4" }, { "TERMSRV_AUDIT=" .. audit_file }))
      assert.equal(1, #audit_lines(default))
      assert.equal(1, #audit_lines(audit_file))
      assert.is_true(go({ "reset", host, "5", "--no-audit" }))
      assert.equal(1, #audit_lines(default))
    end)

    it("refuses to act when the audit log is unsafe: nothing is done, exit 2", function()
      spit(audit_file, "", "666")
      local code, out, err = run({ "logoff", host, "--all-users", "--apply", "--audit", audit_file }, ADMIN)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("writable by group or others", err)
      code = run({ "reset", host, "3", "--audit", audit_file }, ADMIN)
      assert.equal(2, code)
      assert.same({}, action_calls(env, simhost))
    end)
  end)

  describe("explicit ids act at once, like rwinsta", function()
    it("reset, logoff and disconnect an id; an unknown id fails with exit 2", function()
      local envs = with(ADMIN, { TERMSRV_AUDIT = audit_file })
      local code, out = run({ "reset", host, "4" }, envs)
      assert.equal(0, code)
      assert.matches("TS01   4  CORP\\bob +reset +ok +disconnected +gone", out)
      code = run({ "logoff", host, "--id", "5" }, envs)
      assert.equal(0, code)
      code, out = run({ "disconnect", host, "2" }, envs)
      assert.equal(0, code)
      assert.matches("disconnect +ok +active +disconnected", out)
      local users = users_of(env, simhost)
      assert.is_nil(users[4])
      assert.is_nil(users[5])
      assert.equal(4, sim.state(env, simhost).sessions[4].state) -- id 2: disconnected, still there
      local err
      code, out, err = run({ "reset", host, "42" }, envs)
      assert.equal(2, code)
      assert.matches("TS01  42  %- +reset +failed", out)
      assert.matches("session not found", out)
      assert.equal("", err)
      -- the unknown id was never attempted: no audit line for it
      local a = audit_lines(audit_file)
      assert.equal(3, #a)
      assert.same({ "command line", "reset", true, "bob" }, { a[1].rule, a[1].action, a[1].ok, a[1].session.user })
      assert.is_number(a[1].session.logon_time and 1) -- the fingerprint has the logon time
    end)

    it("a listener needs --listener", function()
      local code, out = run({ "reset", host, "65536", "--no-audit" }, ADMIN)
      assert.equal(2, code)
      assert.matches("is a listener", out)
    end)
  end)

  describe("access denied (the non-admin account)", function()
    it("exit 2 when every action is refused, 1 when some succeed", function()
      local code, out, err = run({ "reset", host, "3", "--no-audit" }, NONADMIN)
      assert.equal(2, code)
      assert.matches("access denied", out)
      assert.equal("", err)
      code, out = run({ "reset", host, "3", "7", "--no-audit" }, NONADMIN)
      assert.equal(1, code)
      assert.matches("TS01   3  %- +reset +failed", out)
      assert.matches("TS01   7  CORP\\jdoe +reset +ok", out)
      assert.matches("total: 1 host, 1 ok, 1 failed", out)
      assert.equal("alice", users_of(env, simhost)[3])
    end)

    it("a non-admin sees only its own sessions, so a bulk plan finds nothing of others", function()
      local code, out = run({ "users", host }, NONADMIN)
      assert.equal(0, code)
      assert.equal(2, #lines(out))
      local err
      code, out, err = run({ "logoff", host, "--all-users" }, NONADMIN)
      -- not "0 actions" and success: it could not see what it was asked to judge
      assert.equal(1, code)
      assert.matches("0 actions on 1 host", out)
      assert.matches("sees only its own sessions.*Administrators", err)
    end)

    it("several hosts: the exit code reflects all of them", function()
      local code, out, err = run({ "reset", host, "DOWN=127.0.0.1:1", "7", "--no-audit" }, NONADMIN)
      assert.equal(1, code)
      assert.matches("TS01   7  CORP\\jdoe +reset +ok", out)
      assert.matches("total: 2 hosts, 1 ok, 0 failed, 0 skipped, 1 host error", out)
      assert.matches("^DOWN: connect:", err)
    end)
  end)

  describe("free-slots: the host that refuses new RDP logons", function()
    it("frees the stalest slot, and a new logon then fits", function()
      local refused = sim.ctl(env, "rdp-login", simhost, "newuser")
      assert.is_false(refused.ok)
      assert.matches("maximum number of connections", refused.error)

      -- the dry run names the stalest session and does nothing
      local code, out = run({ "free-slots", "1", host }, ADMIN)
      assert.equal(0, code)
      assert.matches("\nTS01   5  CORP\\carol +Disc +3d +3d +free_slots +logoff ", out)
      assert.same({}, action_calls(env, simhost))
      assert.is_false(sim.ctl(env, "rdp-login", simhost, "newuser").ok)

      code, out = run({ "free-slots", "1", host, "--apply", "--audit", audit_file }, ADMIN)
      assert.equal(0, code)
      assert.matches("TS01   5  CORP\\carol +logoff +ok +disconnected +gone", out)
      local calls = action_calls(env, simhost)
      assert.equal(1, #calls)
      assert.equal("RpcLogoff", calls[1].method)
      local a = audit_lines(audit_file)
      assert.equal(1, #a)
      assert.same({ "free-slots", "free_slots", "carol" }, { a[1].policy, a[1].rule, a[1].session.user })

      local login = sim.ctl(env, "rdp-login", simhost, "newuser")
      assert.is_true(login.ok)
      assert.equal("newuser", login.session.user)
      local users = users_of(env, simhost)
      assert.is_nil(users[5])
      for _, id in ipairs{ 2, 3, 4, 6, 7, 8 } do assert.truthy(users[id], id) end
    end)

    it("disconnected sessions only, service accounts when asked, --action reset; short of N is exit 1", function()
      local code, out, err = run({ "free-slots", "9", host, "--include-service-accounts", "--action", "reset",
                                   "--apply", "--audit", audit_file }, ADMIN)
      assert.equal(1, code)
      assert.matches("cannot free 9 slots: only 4 candidates", err)
      assert.equal(4, #audit_lines(audit_file))
      assert.matches("total: 1 host, 4 ok", out)
      local users = users_of(env, simhost)
      assert.same({ [2] = "foo", [6] = "dave", [7] = "jdoe" }, users)
      for _, c in ipairs(action_calls(env, simhost)) do assert.equal("RpcWinStationReset", c.method) end
    end)
  end)

  describe("clean --policy", function()
    it("plans from a policy file, then applies it", function()
      spit(TMP .. "/nightly.lua", table.concat({
        'name = "nightly"',
        'exclude = { user = "svc_*" }',
        'rules = {',
        '  { name = "stale", select = { state = "disconnected", min_disconnected = "8h" }, action = "logoff" },',
        '  { name = "idle", select = { state = "active", min_idle = "1h" }, action = "disconnect" },',
        '}',
      }, "\n"))
      local code, out = run({ "clean", host, "--policy", TMP .. "/nightly.lua" }, ADMIN)
      assert.equal(0, code)
      assert.matches('^Plan %(policy "nightly"%): 3 actions on 1 host', out)
      assert.matches("TS01   6  CORP\\dave +Active +2h +%- +idle +disconnect", out)
      code, out = run({ "clean", host, "--policy", TMP .. "/nightly.lua", "--apply", "--audit", audit_file }, ADMIN)
      assert.equal(0, code)
      assert.matches("total: 1 host, 3 ok", out)
      local st = sim.state(env, simhost)
      local by_id = {}
      for _, s in ipairs(st.sessions) do by_id[s.id] = s end
      assert.is_nil(by_id[4])
      assert.is_nil(by_id[5])
      assert.equal(4, by_id[6].state)
      assert.truthy(by_id[8])
      local a = audit_lines(audit_file)
      assert.equal(3, #a)
      assert.equal("nightly", a[1].policy)
    end)
  end)

  describe("clean --policy with a ladder", function()
    it("warns, waits out the grace period, then disconnects", function()
      spit(TMP .. "/ladder.lua", table.concat({
        'name = "idle"',
        'rules = { { name = "idle", select = { state = "active", min_idle = "1h" },',
        '  action = { "message", "disconnect" }, grace = "1s",',
        '  message = { title = "Maintenance", text = "{user}: disconnecting in {grace}" } } }',
      }, "\n"))
      local code, out = run({ "clean", host, "--policy", TMP .. "/ladder.lua", "--apply", "--audit", audit_file },
        ADMIN)
      assert.equal(0, code)
      assert.matches("TS01   6  CORP\\dave +message>disconnect +ok +active +disconnected", out)
      local st = sim.state(env, simhost)
      assert.equal("dave: disconnecting in 1s", st.messages[1].message)
      for _, sess in ipairs(st.sessions) do
        if sess.id == 6 then assert.equal(4, sess.state) end
      end
      local a = audit_lines(audit_file)
      assert.equal(1, #a)
      assert.same({ "disconnect", "idle" }, { a[1].action, a[1].policy })
    end)
  end)

  describe("processes, kill, message, shutdown, connect", function()
    it("lists processes with filters", function()
      local code, out = run({ "processes", host, "--session", "2", "--name", "explorer.exe" }, ADMIN)
      assert.equal(0, code)
      local l = lines(out)
      assert.equal(2, #l)
      assert.matches("^USERNAME +ID +PID +PPID +IMAGE +MEM$", l[1])
      assert.matches("^CORP\\foo +2 +%d+ +%d+ +explorer%.exe +%d+ K$", l[2])
      code, out = run({ "processes", host, "--user", "*dave", "--format", "json" }, ADMIN)
      assert.equal(0, code)
      for _, line in ipairs(lines(out)) do
        local p = assert(dkjson.decode(line))
        if p.type == "host" then break end -- the host's status record comes last
        assert.equal("CORP\\dave", p.account)
        assert.equal(6, p.session)
      end
    end)

    it("kills by PID at once, by name only with --apply, never critical processes", function()
      local code, out = run({ "processes", host, "--session", "2", "--format", "json" }, ADMIN)
      assert.equal(0, code)
      local explorer, csrss
      for _, line in ipairs(lines(out)) do
        local p = dkjson.decode(line)
        if p.image == "explorer.exe" then explorer = p.pid end
        if p.image == "csrss.exe" then csrss = p.pid end
      end
      assert.truthy(explorer and csrss)
      code, out = run({ "kill", host, "--name", "*", "--session", "2" }, ADMIN)
      assert.equal(0, code)
      assert.is_nil(out:find("csrss", 1, true))
      assert.truthy(out:find("explorer.exe", 1, true))
      assert.same({}, action_calls(env, simhost))
      code, out = run({ "kill", host, tostring(explorer), "--audit", audit_file }, ADMIN)
      assert.equal(0, code)
      assert.matches("explorer%.exe +2 +ok", out)
      code = run({ "kill", host, "--name", "ctfmon.exe", "--session", "2", "--apply", "--audit", audit_file },
        ADMIN)
      assert.equal(0, code)
      local killed = sim.state(env, simhost).killed
      assert.equal(2, #killed)
      local a = audit_lines(audit_file)
      assert.equal(2, #a)
      assert.same({ "kill", "pid " .. explorer .. " (explorer.exe)", 2 }, { a[1].action, a[1].rule, a[1].session.id })
    end)

    it("sends messages to ids or to every active user session", function()
      local code, out = run({ "message", host, "2", "--title", "Maintenance", "--text", "Reboot at 18:00",
                              "--wait" }, ADMIN)
      assert.equal(0, code)
      assert.matches("TS01   2  CORP\\foo +message +ok +active +active +T.Ts +answer: ok", mask_time(out))
      code, out = run({ "message", host, "--all-users", "--text", "-" }, ADMIN, (function()
        spit(TMP .. "/msg.txt", "from stdin\n")
        return TMP .. "/msg.txt"
      end)())
      assert.equal(0, code)
      assert.matches("total: 1 host, 3 ok", out) -- foo, dave, jdoe: the active ones
      local st = sim.state(env, simhost)
      local texts = {}
      for _, m in ipairs(st.messages) do texts[#texts + 1] = m.message end
      assert.equal("Reboot at 18:00", texts[1])
      assert.equal("from stdin", texts[#texts])
    end)

    it("message goes through the executor: --state disc reaches disconnected sessions, with buttons", function()
      local before = #sim.state(env, simhost).messages
      local code, out = run({ "message", host, "--state", "disc", "--user", "alice", "--user", "bob",
                              "--text", "hi {user}", "--buttons", "yesno" }, ADMIN)
      assert.equal(0, code, out)
      assert.matches("TS01   3  CORP\\alice +message +ok +disconnected", out)
      local got = {}
      for i = before + 1, #sim.state(env, simhost).messages do
        local m = sim.state(env, simhost).messages[i]
        got[#got + 1] = { m.session, m.message, m.style }
      end
      table.sort(got, function(a, b) return a[1] < b[1] end)
      assert.same({ { 3, "hi alice", 4 }, { 4, "hi bob", 4 } }, got) -- 4 = MB_YESNO
    end)

    it("shutdown needs --yes; with it, reboots and audits", function()
      local code = run({ "shutdown", host, "--reboot" }, ADMIN)
      assert.equal(64, code)
      assert.same({}, sim.state(env, simhost).shutdowns)
      code = run({ "shutdown", host, "--reboot", "--yes", "--audit", audit_file }, ADMIN)
      assert.equal(0, code)
      assert.equal(1, #sim.state(env, simhost).shutdowns)
      assert.equal("reboot", audit_lines(audit_file)[1].action)
    end)

    it("connect moves a disconnected session to a station (tscon)", function()
      local code, out = run({ "connect", host, "3", "2", "--audit", audit_file }, ADMIN)
      assert.equal(0, code)
      assert.matches("TS01   3  CORP\\alice +connect +ok +disconnected", out)
      assert.equal("connect", audit_lines(audit_file)[1].action)
    end)
  end)
end)
