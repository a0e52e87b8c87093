local plan = require "termsrv.plan"
local audit = require "termsrv.audit"
local errors = require "termsrv.error"
local fx = require "fixtures.sessions"
local fake = require "fixtures.fake_host"

local NOW = fx.NOW
local S = fx.session

local STALE = { name = "stale", select = { state = "disconnected", min_disconnected = "8h" },
  action = "logoff" }
local BOB_LOGOFF_RESET = { name = "r", select = { user = "bob" }, action = { "logoff", "reset" } }
local IDLE = { name = "idle", select = { state = "active", min_idle = "2h" },
               action = { "message", "disconnect", "logoff", "reset" },
               message = { title = "Maintenance", text = "{user}: signing you out of {host} in {grace}" } }

local function entry(host, sessions, self)
  return { host = host or "ts01.corp", self = self or fx.SELF, sessions = sessions or fx.typical(host) }
end

local function step_ids(p)
  local t = {}
  for i, s in ipairs(p.steps) do t[i] = s.id end
  return t
end

local function build(pol, sessions, opts)
  return plan.build({ entry("ts01.corp", sessions) }, pol, opts or { now = NOW })
end

describe("termsrv.plan #unit", function()
  describe("build()", function()
    it("plans the stale sessions, stalest first, touching nothing", function()
      local recs = fx.typical()
      local p = build({ rules = { STALE } }, recs)
      assert.same({ 5, 3, 4 }, step_ids(p))
      assert.equal(3, #p)
      local s = p.steps[2]
      assert.equal("ts01.corp", s.host)
      assert.equal("bob", s.user)
      assert.equal("stale", s.rule)
      assert.equal("logoff", s.action)
      assert.same({ "logoff" }, s.steps)
      assert.equal("state disconnected; disconnected 9h >= 8h", s.why)
      assert.same({ id = 3, user = "bob", domain = "CORP", logon_time = NOW - 20 * 3600 }, s.fingerprint)
      assert.equal(recs[4], s.record)
      assert.equal("disconnected", recs[4].state) -- untouched
    end)

    it("never plans protected sessions; lists the ones a rule would have hit", function()
      local p = build({ rules = { { name = "all", select = {}, action = "reset" } } })
      assert.same({ 5, 3, 4, 2 }, step_ids(p))
      assert.equal(2, #p.skipped) -- console (Administrator) and own session (ops); not services/listener
      assert.equal(1, p.skipped[1].id)
      assert.equal("protected", p.skipped[1].why)
      assert.equal('rule all: protected: the console session '
        .. '(add include_protected = {"console"} or name the id)', p.skipped[1].reason)
      assert.equal(6, p.skipped[2].id)
      assert.matches("own session", p.skipped[2].reason)
    end)

    it("protects the own session even when a rule names the user", function()
      local p = build({ rules = { { name = "me", select = { user = "ops" }, action = "logoff" } } })
      assert.same({}, step_ids(p))
      local p2 = build({ rules = { { name = "me", select = { user = "ops", include_protected = "self" },
                                    action = "logoff" } } })
      assert.same({ 6 }, step_ids(p2))
    end)

    it("first matching rule wins", function()
      local p = build({ rules = { STALE, IDLE, { name = "any", select = {}, action = "disconnect" } } })
      local by_id = {}
      for _, s in ipairs(p.steps) do by_id[s.id] = s.rule end
      assert.same({ [2] = "idle", [3] = "stale", [4] = "stale", [5] = "stale" }, by_id)
      assert.same({ 5, 3, 4, 2 }, step_ids(p))
    end)

    it("policy exclude and selector exclusions show up as not touched", function()
      local p = build({ exclude = { user = "svc_*" }, rules = { STALE } })
      assert.same({ 3, 4 }, step_ids(p))
      assert.equal(5, p.skipped[1].id)
      assert.equal("excluded", p.skipped[1].why)
    end)

    it("max_actions caps the actions per host, keeping the stalest", function()
      local p = build({ max_actions = 2, rules = { STALE } })
      assert.same({ 5, 3 }, step_ids(p))
      local capped = p.skipped[#p.skipped]
      assert.equal(4, capped.id)
      assert.equal("capped", capped.why)
      assert.equal("over max_actions (2) for this host", capped.reason)
      assert.equal("stale", capped.rule)
      assert.same({ 5 }, step_ids(build({ rules = { STALE } }, nil, { now = NOW, max_actions = 1 })))
    end)

    describe("free_slots", function()
      it("picks the stalest disconnected first, then the longest idle", function()
        local p = build({ free_slots = 3 })
        assert.same({ 5, 3, 4 }, step_ids(p))
        assert.equal("not_needed", p.skipped[#p.skipped].why)
        assert.equal(2, p.skipped[#p.skipped].id)
        local p4 = build({ free_slots = 4 })
        assert.same({ 5, 3, 4, 2 }, step_ids(p4))
      end)

      it("says when not enough sessions can be freed", function()
        local p = build({ free_slots = 9 })
        assert.same({ 5, 3, 4, 2 }, step_ids(p))
        assert.equal(5, p.hosts[1].short)
        assert.matches("ts01.corp: free_slots 9 requested, only 4 candidates", tostring(p))
      end)

      it("uses the rules as candidates and never exceeds max_actions", function()
        local p = build({ free_slots = 5, max_actions = 2, rules = { STALE } })
        assert.same({ 5, 3 }, step_ids(p))
        assert.equal("capped", p.skipped[#p.skipped].why)
        local q = build({ rules = { STALE } }, nil, { now = NOW, free_slots = 1 })
        assert.same({ 5 }, step_ids(q))
      end)

      it("breaks ties deterministically: logon time, then id; unknown values last", function()
        local recs = {
          S{ id = 10, user = "a", state = "disconnected", disconnected = 100, idle = 100, logon_time = 500 },
          S{ id = 11, user = "b", state = "disconnected", disconnected = 100, idle = 100, logon_time = 400 },
          S{ id = 9, user = "c", state = "disconnected", disconnected = 100, idle = 100, logon_time = 500 },
          S{ id = 12, user = "d", state = "disconnected", idle = 900 },                 -- age unknown
          S{ id = 13, user = "e", state = "disconnected", disconnected = 100, idle = 200, logon_time = 600 },
          S{ id = 14, user = "f", state = "active", idle = 50 },
          S{ id = 15, user = "g", state = "active" },                                    -- idle unknown
          S{ id = 16, user = "h", state = "idle", idle = 5000 },
          S{ id = 17, user = "i", state = "active", idle = 50, logon_time = 1 },
          S{ id = 18, user = "j", state = "disconnected", disconnected = 101 },
        }
        local p = build({ free_slots = 10 }, recs)
        assert.same({ 18, 13, 11, 9, 10, 12, 16, 17, 14, 15 }, step_ids(p))
        -- the order does not depend on the input order
        local rev = {}
        for i = #recs, 1, -1 do rev[#rev + 1] = recs[i] end
        assert.same(step_ids(p), step_ids(build({ free_slots = 10 }, rev)))
      end)

      it("can be turned off per plan", function()
        local p = build({ free_slots = 1, rules = { STALE } }, nil, { now = NOW, free_slots = false })
        assert.same({ 5, 3, 4 }, step_ids(p))
      end)
    end)

    it("handles several hosts in order, and hosts that could not be listed", function()
      local err = errors.new{ code = "host_unreachable", host = "ts03", message = "no route" }
      local p = plan.build({ entry("ts01"), { host = "ts03", err = err }, entry("ts02") },
        { rules = { STALE } }, { now = NOW })
      local hosts = {}
      for _, s in ipairs(p.steps) do hosts[#hosts + 1] = s.host .. "#" .. s.id end
      assert.same({ "ts01#5", "ts01#3", "ts01#4", "ts02#5", "ts02#3", "ts02#4" }, hosts)
      assert.equal(1, #p.errors)
      assert.equal("ts03", p.errors[1].host)
      assert.equal(err, p.errors[1].err)
      assert.equal(2, #p.hosts)
    end)

    it("accepts plain tables as sessions and fills in the host", function()
      local raw = { id = 3, name = "", user = "x", state = "disconnected", disconnected = 40000 }
      local p = plan.build({ { host = "h1", sessions = { raw } } }, { rules = { STALE } })
      assert.equal("h1", p.steps[1].host)
      assert.equal("user", p.steps[1].record.kind)
    end)

    it("raises on programmer errors", function()
      assert.has_error(function() plan.build("x", { rules = { STALE } }) end,
        "plan.build: array of entries expected, got string")
      assert.has_error(function() plan.build({ { sessions = {} } }, { rules = { STALE } }) end,
        "plan.build: entries[1].host: string expected")
      assert.has_error(function() plan.build({ { host = "h" } }, { rules = { STALE } }) end,
        "plan.build: entries[1].sessions: array of records expected")
      local ok, e = pcall(plan.build, {}, { rules = { { select = {}, action = "kill" } } })
      assert.is_false(ok)
      assert.matches("unknown action 'kill'", e)
    end)

    it("prints what would be done, to whom, and why", function()
      local p = build({ name = "nightly", rules = { STALE, IDLE } })
      assert.equal(table.concat({
        'Plan (policy "nightly"): 4 actions on 1 host -- dry run, nothing done yet (plan:apply() acts)',
        "HOST       ID  USER             STATE   IDLE  DISC  RULE   ACTION                              WHY",
        "ts01.corp   5  CORP\\svc_backup  Disc    1d6h  1d6h  stale  logoff                              "
          .. "state disconnected; disconnected 1d6h >= 8h",
        "ts01.corp   3  CORP\\bob         Disc    10h   9h    stale  logoff                              "
          .. "state disconnected; disconnected 9h >= 8h",
        "ts01.corp   4  CORP\\carol       Disc    8h    8h    stale  logoff                              "
          .. "state disconnected; disconnected 8h >= 8h",
        "ts01.corp   2  CORP\\alice       Active  3h    -     idle   message+5m>disconnect>logoff>reset  "
          .. "state active; idle 3h >= 2h",
        "Not touched (1):",
        '  ts01.corp #6 CORP\\ops: rule stale: protected: own session (the account termsrv runs as) '
          .. '(add include_protected = {"self"} or name the id)',
      }, "\n"), tostring(p))
      assert.equal("ts01.corp #3 CORP\\bob: logoff (rule stale: state disconnected; disconnected 9h >= 8h)",
        tostring(p.steps[2]))
    end)

    it("converts to JSON with ISO times and a fixed key order", function()
      local p = build({ name = "n", rules = { STALE } }, { fx.typical()[4] })
      assert.equal('{"policy":"n","created":"2026-11-26T09:14:00Z","max_actions":50,'
        .. '"hosts":[{"host":"ts01.corp","sessions":1,"steps":1,"skipped":0}],'
        .. '"steps":[{"host":"ts01.corp","id":3,"user":"bob","domain":"CORP",'
        .. '"logon_time":"2026-11-25T13:14:00Z","station":"","state":"disconnected","idle":36000,'
        .. '"disconnected":32400,"rule":"stale","action":"logoff",'
        .. '"why":"state disconnected; disconnected 9h >= 8h"}],"skipped":[],"errors":[]}', p:tojson())
      assert.equal("bob", p:totable().steps[1].user)
    end)
  end)

  describe("apply()", function()
    local c
    before_each(function() c = fake.clock() end)

    local function make(pol, sessions, behaviour)
      local h = fake.new("ts01.corp", sessions or fx.typical(), behaviour)
      local p = assert(plan.make({ h }, pol, { now = NOW }))
      return p, h
    end

    local function run(p, opts)
      opts = opts or {}
      opts.clock, opts.sleep = c.clock, c.sleep
      return p:apply(opts)
    end

    it("logs off the planned sessions, passing the planned record, and verifies", function()
      local p, h = make({ rules = { STALE } })
      local log = audit.memory()
      local res = run(p, { audit = log })
      assert.same({ "sessions", "logoff 5", "logoff 3", "logoff 4" }, h.calls)
      assert.is_true(h.last_opts.wait)
      assert.equal("function", type(h.last_opts.check)) -- the rule is judged again on the fresh record
      assert.equal(3, #res)
      for _, r in ipairs(res) do
        assert.equal("ok", r.status)
        assert.is_true(r.ok)
        assert.equal("gone", r.after)
        assert.equal("disconnected", r.before)
        assert.equal(0.25, r.duration)
        assert.equal(1, #r.steps)
      end
      assert.equal(6, #log.entries) -- write-ahead: an attempt, then the outcome
      local json = require "termsrv.json"
      local a1, o1 = json.decode(log.entries[1]), json.decode(log.entries[2])
      assert.same({ "attempt", json.null, "outcome", true }, { a1.phase, a1.ok, o1.phase, o1.ok })
      assert.equal(a1.attempt, o1.attempt)
      assert.same({ 0 }, { #c.sleeps })
      assert.equal(0, res.summary.exit_code)
      local j = require("termsrv.json").decode(res:tojson())
      assert.equal(3, #j.results)
      assert.equal("ok", j.results[1].status)
      assert.equal(3, j.summary.total.ok)
      assert.matches('^{"results":%[{"host":"ts01.corp","id":5,"user":"svc_backup"', res:tojson())
      assert.equal("ts01.corp: 3 ok, 0 failed, 0 skipped\n"
        .. "total: 1 host, 3 ok, 0 failed, 0 skipped, 0 host errors", tostring(res.summary))
    end)

    it("asks the host for times, and for client data or lock state only when a rule needs it", function()
      local _, h = make({ rules = { STALE } })
      assert.same({ all = false, times = true, client = false, locked = false }, h.list_opts)
      local _, h2 = make({ rules = { { select = { client = "PC*" }, action = "logoff" } } })
      assert.is_true(h2.list_opts.client)
      local _, h3 = make({ rules = { { select = { locked = true }, action = "disconnect" } } })
      assert.is_true(h3.list_opts.locked)
    end)

    it("runs the ladder: message, one grace, re-check, disconnect, logoff (no reset needed)", function()
      local p, h = make({ rules = { IDLE } })
      local log = audit.memory()
      local res = run(p, { audit = log })
      assert.same({ "sessions", "message 2", "disconnect 2", "logoff 2" }, h.calls)
      assert.same({ 300 }, c.sleeps)
      assert.equal("Maintenance", h.messages[1].title)
      assert.equal("alice: signing you out of ts01.corp in 5m", h.messages[1].text)
      assert.same({ 300, false }, { h.messages[1].opts.timeout, h.messages[1].opts.wait })
      local r = res[1]
      assert.equal("ok", r.status)
      assert.equal("gone", r.after)
      assert.equal("active", r.before)
      assert.equal("message>disconnect>logoff>reset", r.action)
      assert.equal(3, #r.steps)
      assert.equal("timeout", r.answer)
      assert.equal(4, #log.entries) -- disconnect and logoff; the message changes no state
      local e1 = require("termsrv.json").decode(log.entries[2])
      assert.equal("disconnect", e1.action)
      assert.equal("idle", e1.rule)
      assert.equal("CORP\\ops", e1.account)
    end)

    it("audits messages too when asked", function()
      local p = make({ rules = { IDLE } })
      local log = audit.memory()
      run(p, { audit = log, audit_messages = true })
      assert.equal(6, #log.entries)
    end)

    it("sends every message first, then waits one grace period for all", function()
      local recs = {
        S{ id = 2, user = "a", state = "active", idle = 9000 },
        S{ id = 3, user = "b", state = "active", idle = 9000 },
        S{ id = 4, user = "c", state = "active", idle = 9000 },
      }
      local p, h = make({ rules = { IDLE } }, recs)
      local res = run(p)
      assert.same({ 300 }, c.sleeps)
      assert.same({ "sessions", "message 2", "message 3", "message 4",
                    "disconnect 2", "logoff 2",
                    "disconnect 3", "logoff 3",
                    "disconnect 4", "logoff 4" }, h.calls)
      assert.equal(3, res.summary.total.ok)
    end)

    it("escalates to reset when logoff fails", function()
      local p, h = make({ rules = { BOB_LOGOFF_RESET } },
        nil, { logoff = function(self)
          return nil, errors.new{ code = "access_denied", host = self.name, op = "logoff",
            message = "denied" }
        end })
      local log = audit.memory()
      local res = run(p, { audit = log })
      assert.same({ "sessions", "logoff 3", "reset 3" }, h.calls)
      local r = res[1]
      assert.equal("ok", r.status)
      assert.equal("gone", r.after)
      assert.equal("logoff failed (access_denied), escalating to reset", r.note)
      assert.equal("logoff:failed(access_denied) reset:ok", require("termsrv.report").rows({ r })[1].steps)
      assert.equal(4, #log.entries)
      local e1 = require("termsrv.json").decode(log.entries[2])
      assert.is_false(e1.ok)
      assert.equal("access_denied", e1.error)
    end)

    it("escalates to reset when logoff hangs (the session is still there)", function()
      local p, h = make({ rules = { BOB_LOGOFF_RESET } },
        nil, { logoff = function(self, cur)
          -- as host:logoff{wait = true} reports a session that stays: not_verified
          cur.state = "down"
          local r = { host = self.name, id = cur.id, action = "logoff", before = "disconnected", after = "down",
                      ok = false, duration = 30, err = errors.new{ code = "not_verified", message = "still down" } }
          return nil, r.err, r
        end })
      local res = run(p)
      assert.same({ "sessions", "logoff 3", "reset 3" }, h.calls)
      assert.equal("ok", res[1].status)
      assert.equal("logoff did not finish (still down), escalating to reset", res[1].note)
      assert.equal(30.25, res[1].duration)
    end)

    it("fails when the last step fails, keeping the error", function()
      local p = make({ rules = { STALE } }, { S{ id = 3, user = "bob", state = "disconnected",
        disconnected = 40000 } },
        { logoff = function(self)
          return nil, errors.new{ code = "access_denied", host = self.name, message = "denied" }
        end })
      local res = run(p)
      assert.equal("failed", res[1].status)
      assert.is_false(res[1].ok)
      assert.equal("access_denied", res[1].err.code)
      assert.equal(2, res.summary.exit_code)
    end)

    it("skips a session whose id now belongs to another logon", function()
      local p, h = make({ rules = { STALE } })
      h.live[3] = S{ host = "ts01.corp", id = 3, user = "mallory", domain = "CORP", state = "disconnected" }
      local log = audit.memory()
      local res = run(p, { audit = log })
      assert.equal("skipped", res[2].status)
      assert.equal("session_changed", res[2].err.code)
      assert.is_not_nil(h.live[3])
      assert.equal("ok", res[1].status)
      assert.equal(2, res.summary.total.ok)
      assert.equal(1, res.summary.total.skipped)
      assert.equal(0, res.summary.exit_code)
      assert.equal(6, #log.entries) -- the refused call is audited too
    end)

    it("skips a session that is already gone", function()
      local p, h = make({ rules = { STALE } })
      h.live[5] = nil
      local res = run(p)
      assert.equal("skipped", res[1].status)
      assert.equal("gone", res[1].after)
      assert.equal("session already gone", res[1].note)
    end)

    it("ends ok when the user logs off during the grace period", function()
      local p, h = make({ rules = { IDLE } })
      c.on_sleep = function() h.live[2] = nil end
      local res = run(p)
      assert.same({ "sessions", "message 2", "disconnect 2" }, h.calls)
      assert.equal("ok", res[1].status)
      assert.equal("gone", res[1].after)
      assert.equal("session ended before disconnect", res[1].note)
    end)

    it("stops the ladder when the user comes back during the grace period", function()
      local p, h = make({ rules = { IDLE } })
      c.on_sleep = function() h.live[2].idle = 4 end
      local res = run(p)
      assert.same({ "sessions", "message 2", "disconnect 2" }, h.calls) -- refused by the re-check
      assert.equal("skipped", res[1].status)
      assert.is_not_nil(h.live[2])
      assert.equal("active", h.live[2].state)
      assert.matches("no longer matches: .*idle 4s < 2h", res[1].note)
    end)

    it("stops when the user reconnects during a grace after disconnect", function()
      local recs = { S{ id = 2, user = "a", state = "active", idle = 9000 } }
      local rule = { name = "d", select = { min_idle = "2h" }, action = { "disconnect", "logoff" },
                     grace = "1h" }
      local p, h = make({ rules = { rule } }, recs)
      c.on_sleep = function() h.live[2].state = "active" end
      local res = run(p)
      assert.same({ 3600 }, c.sleeps)
      assert.same({ "sessions", "disconnect 2", "logoff 2" }, h.calls) -- refused by the re-check
      assert.is_not_nil(h.live[2])
      assert.equal("skipped", res[1].status)
      assert.equal("session 2 is active now, not disconnected", res[1].note)
    end)

    it("skips the message and its grace for a disconnected session", function()
      local rule = { name = "l", select = { state = "disconnected", user = "bob" },
                     action = { "message", "disconnect", "logoff" }, message = "bye" }
      local p, h = make({ rules = { rule } })
      local res = run(p)
      assert.same({}, c.sleeps)
      assert.same({ "sessions", "logoff 3" }, h.calls)
      assert.equal("ok", res[1].status)
      assert.equal("message skipped: session is disconnected; already disconnected", res[1].note)
    end)

    it("a disconnect of an already disconnected session does nothing and is skipped", function()
      local p, h = make({ rules = { { name = "d", select = { user = "bob" }, action = "disconnect" } } })
      local res = run(p)
      assert.same({ "sessions" }, h.calls)
      assert.equal("skipped", res[1].status)
    end)

    it("stops acting when the audit log cannot be written", function()
      local p, h = make({ rules = { STALE } })
      local n = 0
      local full = { attempt = function() n = n + 1; return nil, "disk full" end, outcome = function() end }
      local res = run(p, { audit = full })
      assert.equal(1, n) -- the attempt line of the first action
      assert.same({ "sessions" }, h.calls) -- so nothing was done at all
      for i = 1, 3 do
        assert.equal("failed", res[i].status) -- nothing done, and the run failed
        assert.equal("audit_failed", res[i].err.code)
      end
      assert.equal("not attempted", res[1].note)
      assert.equal("cannot write the audit log: disk full", res[1].err.message)
      assert.equal(2, res.summary.exit_code)
    end)

    it("isolates a host method that raises", function()
      local p = make({ rules = { STALE } }, nil, { logoff = function(_, cur)
        if cur.id == 3 then error("boom") end
      end })
      local res = run(p)
      assert.equal("ok", res[1].status)
      assert.equal("failed", res[2].status)
      assert.equal("internal", res[2].err.code)
      assert.equal("ok", res[3].status)
      assert.equal(1, res.summary.exit_code)
    end)

    it("needs host handles: from make(), or given to apply", function()
      local p = build({ rules = { STALE } })
      local res = run(p)
      assert.equal("failed", res[1].status)
      assert.equal("no_handle", res[1].err.code)
      local h = fake.new("ts01.corp", fx.typical())
      local res2 = run(build({ rules = { STALE } }), { hosts = { h } })
      assert.equal("ok", res2[1].status)
      local by_name = { ["ts01.corp"] = fake.new("x", fx.typical()) }
      local res3 = run(build({ rules = { STALE } }), { hosts = by_name })
      assert.equal("ok", res3[1].status)
    end)

    it("passes wait = false through when asked", function()
      local p, h = make({ wait = false, rules = { STALE } })
      run(p)
      assert.is_false(h.last_opts.wait)
    end)

    it("calls progress for each finished session", function()
      local p = make({ rules = { STALE } })
      local seen = {}
      run(p, { progress = function(r) seen[#seen + 1] = r.id end })
      assert.same({ 5, 3, 4 }, seen)
    end)

    it("raises on a bad audit option", function()
      local p = make({ rules = { STALE } })
      assert.has_error(function() p:apply{ audit = 5 } end, "plan:apply: option 'audit' must be a table, got number")
      assert.has_error(function() p:apply{ audit = {} } end,
        "opts.audit: a logger with :attempt and :outcome expected (termsrv.audit.open or .memory)")
      assert.has_error(function() p:apply{ audti = {} } end)
    end)
  end)

  describe("make()", function()
    it("lists every host; a host that fails or raises becomes a plan error", function()
      local good = fake.new("ts01", fx.typical())
      local down = fake.new("ts02", {}, { sessions = function(self)
        return nil, errors.new{ code = "host_unreachable", host = self.name, message = "no route to host" }
      end })
      local buggy = fake.new("ts03", {}, { sessions = function() error("oops") end })
      local p = plan.make({ good, down, buggy }, { rules = { STALE } }, { now = NOW })
      assert.equal(3, #p)
      assert.equal(2, #p.errors)
      assert.equal("host_unreachable", p.errors[1].err.code)
      assert.equal("internal", p.errors[2].err.code)
      assert.matches("Host errors %(2%):\n  ts02: ts02: no route to host", tostring(p))
      local res = p:apply{ clock = function() return 0 end, sleep = function() end }
      assert.equal(3, res.summary.total.ok)
      assert.equal(2, res.summary.total.host_errors)
      assert.equal(1, res.summary.exit_code)
    end)

    it("accepts one handle, and a policy file path", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write('rules = { { name = "stale", select = { state = "disconnected", min_disconnected = "8h" }, '
        .. 'action = "logoff" } }')
      f:close()
      local p = assert(plan.make(fake.new("ts01", fx.typical()), path, { now = NOW }))
      os.remove(path)
      assert.equal(3, #p)
      local bad, err = plan.make(fake.new("ts01", {}), "/nonexistent.lua")
      assert.is_nil(bad)
      assert.equal("io_error", err.code)
    end)
  end)

  it("has a real default sleep and clock", function()
    assert.is_number(plan.default_clock())
    plan.default_sleep(0)
  end)
end)
