local policy = require "termsrv.policy"
local fx = require "fixtures.sessions"

local function err_of(t)
  local ok, e = pcall(policy.new, t)
  assert.is_false(ok, "expected an error")
  return (tostring(e):gsub("^[^:]*:%d+: ", ""))
end

local STALE = { name = "stale", select = { state = "disconnected", min_disconnected = "8h" },
  action = "logoff" }

describe("termsrv.policy #unit", function()
  describe("new()", function()
    it("builds rules with ladders, defaults and compiled selectors", function()
      local p = policy.new{ name = "nightly", rules = { STALE,
        { name = "idle", select = { state = "active", min_idle = "4h" },
          action = { "message", "disconnect", "logoff", "reset" },
          message = { title = "Maintenance", text = "bye" } } } }
      assert.is_true(policy.is_policy(p))
      assert.equal(50, p.max_actions)
      assert.is_nil(p.free_slots)
      assert.is_true(p.wait)
      assert.equal(2, #p.rules)
      assert.same({ "logoff" }, p.rules[1].steps)
      assert.equal("logoff", p.rules[1].action)
      assert.same({ "message", "disconnect", "logoff", "reset" }, p.rules[2].steps)
      assert.equal("message>disconnect>logoff>reset", p.rules[2].action)
      assert.same({ message = 300 }, p.rules[2].grace)
      assert.same({ title = "Maintenance", text = "bye" }, p.rules[2].message)
      assert.equal(p, policy.new(p))
      assert.equal(p.rules[2], p:rule("idle"))
    end)

    it("names unnamed rules rule<N>", function()
      local p = policy.new{ rules = { { select = {}, action = "disconnect" } } }
      assert.equal("rule1", p.rules[1].name)
    end)

    it("accepts grace as one duration (after the first step) or per step", function()
      local p = policy.new{ rules = {
        { select = {}, action = { "message", "logoff" }, message = "hi", grace = "10m" },
        { select = {}, action = { "disconnect", "logoff" }, grace = "1h" },
        { select = {}, action = { "message", "disconnect", "logoff" }, message = { text = "x", timeout = 30 },
          grace = { message = "2m", disconnect = "1h" } } } }
      assert.same({ message = 600 }, p.rules[1].grace)
      assert.equal("Message from your administrator", p.rules[1].message.title)
      assert.same({ disconnect = 3600 }, p.rules[2].grace)
      assert.same({ message = 120, disconnect = 3600 }, p.rules[3].grace)
      assert.equal(30, p.rules[3].message.timeout)
    end)

    it("accepts the single-rule shorthand", function()
      local p = policy.new{ state = "disconnected", min_disconnected = "8h", exclude_users = { "svc_*" },
                            action = "logoff", max_actions = 5 }
      assert.equal(1, #p.rules)
      assert.equal(5, p.max_actions)
      assert.is_true((p.rules[1].select(fx.typical()[4])))
      assert.is_false((p.rules[1].select(fx.typical()[6])))
      local q = policy.new{ select = { state = "disconnected" }, action = "reset", name = "r" }
      assert.equal("r", q.name)
      assert.equal("reset", q.rules[1].action)
    end)

    it("free_slots alone gets a default logoff rule over every unprotected session", function()
      local p = policy.new{ free_slots = 2 }
      assert.equal(2, p.free_slots)
      assert.equal("free_slots", p.rules[1].name)
      assert.equal("logoff", p.rules[1].action)
    end)

    it("knows when the plan must ask for client data or all sessions", function()
      assert.is_nil(policy.new{ rules = { STALE } }.needs_client)
      assert.is_true(policy.new{ rules = { { select = { address = "10.0.0.0/8" },
        action = "logoff" } } }.needs_client)
      assert.is_true(policy.new{ rules = { { select = { exclude_clients = "x" },
        action = "logoff" } } }.needs_client)
      assert.is_true(policy.new{ rules = { { select = { include_protected = { "listener" } },
        action = "reset" } } }
        .needs_all)
    end)

    it("prints a readable summary", function()
      local p = policy.new{ name = "n", exclude = { user = "svc*" }, rules = { STALE,
        { name = "idle", select = { min_idle = "4h" }, action = { "message", "logoff" }, message = "x" } } }
      assert.equal('termsrv.policy "n": 2 rules, max_actions 50 per host\n'
        .. '  exclude {user="svc*"}\n'
        .. '  1. stale: {min_disconnected="8h", state="disconnected"} -> logoff\n'
        .. '  2. idle: {min_idle="4h"} -> message (wait 5m) logoff', tostring(p))
    end)
  end)

  describe("validation names the rule and the field", function()
    it("action", function()
      assert.equal('policy rule 1 ("x"): action: unknown action \'logof\' (one of message, disconnect, '
        .. 'logoff, reset)',
        err_of{ rules = { { name = "x", select = {}, action = "logof" } } })
      assert.equal('policy rule 1 ("rule1"): action: missing (logoff, reset, disconnect, message, or a '
        .. 'ladder list)',
        err_of{ rules = { { select = {} } } })
      assert.equal('policy rule 1 ("x"): action: a ladder goes message -> disconnect -> logoff -> reset, '
        .. 'each at '
        .. "most once (step 2 'disconnect' is out of order)",
        err_of{ rules = { { name = "x", select = {}, action = { "logoff", "disconnect" } } } })
      assert.matches("step 2 'logoff' is out of order",
        err_of{ rules = { { name = "x", select = {}, action = { "logoff", "logoff" } } } })
      assert.matches("action: string or non%-empty list expected, got table",
        err_of{ rules = { { name = "x", select = {}, action = {} } } })
    end)

    it("select", function()
      assert.equal('policy rule 2 ("idle"): select: unknown key \'min_idel\' (did you mean \'min_idle\'?)',
        err_of{ rules = { STALE, { name = "idle", select = { min_idel = "4h" }, action = "logoff" } } })
      assert.equal('policy rule 1 ("x"): select: min_idle: bad duration \'4 hrz\': unknown unit \'hrz\' '
        .. "(expected seconds or a duration like 45s, 90m, 8h, 2d, 1h30m)",
        err_of{ rules = { { name = "x", select = { min_idle = "4 hrz" }, action = "logoff" } } })
      assert.equal('policy rule 1 ("x"): select: missing (use select = {} to mean every unprotected session)',
        err_of{ rules = { { name = "x", action = "logoff" } } })
    end)

    it("message and grace", function()
      assert.equal('policy rule 1 ("x"): message: missing ({title = ..., text = ...} is required for a '
        .. 'message step)',
        err_of{ rules = { { name = "x", select = {}, action = { "message", "logoff" } } } })
      assert.matches('message: given, but the action has no message step',
        err_of{ rules = { { name = "x", select = {}, action = "logoff", message = "hi" } } })
      assert.matches('message.text: non%-empty string expected',
        err_of{ rules = { { name = "x", select = {}, action = "message", message = { title = "t" } } } })
      assert.matches("message.buttons: ok, okcancel, yesno",
        err_of{ rules = { { select = {}, action = "message", message = { text = "t", buttons = "yes" } } } })
      assert.matches("message.wait: boolean expected",
        err_of{ rules = { { select = {}, action = "message", message = { text = "t", wait = 1 } } } })
      assert.matches("message: unknown field 'body'",
        err_of{ rules = { { name = "x", select = {}, action = "message", message = { text = "t",
          body = 1 } } } })
      assert.equal('policy rule 1 ("x"): grace: bad duration \'5x\': unknown unit \'x\' (expected seconds '
        .. 'or a '
        .. "duration like 45s, 90m, 8h, 2d, 1h30m)",
        err_of{ rules = { { name = "x", select = {}, action = { "message", "logoff" }, message = "m",
          grace = "5x" } } })
      assert.matches('grace: needs a ladder with a step to wait for',
        err_of{ rules = { { name = "x", select = {}, action = "logoff", grace = "5m" } } })
      assert.matches("grace: nothing follows the last step 'logoff'",
        err_of{ rules = { { name = "x", select = {}, action = { "disconnect", "logoff" },
          grace = { logoff = 5 } } } })
      assert.matches("grace: 'reset' is not a step of the action",
        err_of{ rules = { { name = "x", select = {}, action = { "disconnect", "logoff" },
          grace = { reset = 5 } } } })
    end)

    it("rule and policy fields", function()
      assert.equal('policy rule 1 ("x"): unknown field \'selector\' (fields: name, select, action, message, '
        .. 'grace, '
        .. "description)", err_of{ rules = { { name = "x", selector = {}, action = "logoff" } } })
      assert.equal('policy rule 2 ("x"): name: duplicate rule name (also rule 1)',
        err_of{ rules = { { name = "x", select = {}, action = "logoff" }, { name = "x", select = {},
          action = "reset" } } })
      assert.equal("policy: unknown field 'max_action' (fields: rules, name, description, exclude, "
        .. "max_actions, "
        .. "free_slots, wait)", err_of{ rules = { STALE }, max_action = 3 })
      assert.equal("policy: max_actions: integer >= 0 expected, got -1", err_of{ rules = { STALE },
        max_actions = -1 })
      assert.equal("policy: free_slots: integer >= 1 expected, got 0", err_of{ free_slots = 0 })
      assert.equal("policy: rules: no rules (and no free_slots)", err_of{ rules = {} })
      assert.equal("policy rule 1: table expected, got string", err_of{ rules = { "logoff" } })
      assert.equal("policy: table expected, got nil", err_of(nil))
      assert.matches("policy: exclude: unknown key 'usr'", err_of{ rules = { STALE },
        exclude = { usr = "x" } })
    end)
  end)

  describe("match()", function()
    local ctx = { self = fx.SELF, now = fx.NOW }

    it("first matching rule wins", function()
      local p = policy.new{ rules = { STALE, { name = "any-disc", select = { state = "disconnected" },
        action = "reset" } } }
      local recs = fx.typical()
      local rule, why = p:match(recs[4], ctx)
      assert.equal("stale", rule.name)
      assert.equal("state disconnected; disconnected 9h >= 8h", why)
      assert.equal("any-disc", (p:match(fx.session{ id = 9, user = "z", state = "disconnected",
        disconnected = 60 }, ctx)).name)
    end)

    it("policy-wide exclude beats every rule", function()
      local p = policy.new{ exclude = { user = "svc_*" }, rules = { STALE } }
      local rule, why, kind = p:match(fx.typical()[6], ctx)
      assert.is_nil(rule)
      assert.equal("excluded", kind)
      assert.equal("excluded by policy: exclude {user=\"svc_*\"} (user CORP\\svc_backup ~ 'svc_*')", why)
    end)

    it("names the rule when a where predicate raises", function()
      local p = policy.new{ rules = { { name = "w", select = { where = function() error("bad field", 0) end },
                                        action = "logoff" } } }
      assert.has_error(function() p:match(fx.typical()[4], ctx) end,
        'policy rule "w": select failed on ts01.corp #3: bad field')
    end)

    it("reports protection as the most telling reason", function()
      local p = policy.new{ rules = { { name = "a", select = { state = "active" }, action = "logoff" },
        STALE } }
      local rule, why, kind = p:match(fx.typical()[7], ctx) -- own session, disconnected 12h
      assert.is_nil(rule)
      assert.equal("protected", kind)
      assert.matches("^rule stale: protected: own session", why)
      local _, why2, kind2 = p:match(fx.session{ id = 9, user = "z", state = "connected" }, ctx)
      assert.equal("criteria", kind2)
      assert.equal("rule a: state connected is not active", why2)
    end)
  end)

  describe("loading files", function()
    local tmp = os.tmpname()
    after_each(function() os.remove(tmp) end)
    local function write(s) local f = assert(io.open(tmp, "w")); f:write(s); f:close() end

    it("a file that returns a table", function()
      write([[return { name = "f",
        rules = { { name = "stale", select = { state = "disconnected" }, action = "logoff" } } }]])
      local p = assert(policy.load(tmp))
      assert.equal("f", p.name)
      assert.equal(tmp, p.source)
    end)

    it("a file that sets globals, with helpers available", function()
      write([[
        name = "g"
        max_actions = 3
        local limit = duration.parse("8h")
        rules = { { name = "late", select = { state = "disconnected",
          where = function(rec) return rec.disconnected >= limit and date("!%Y", 0) == "1970" end },
          action = "logoff" } }
      ]])
      local p = assert(policy.load(tmp))
      assert.equal("g", p.name)
      assert.equal(3, p.max_actions)
      assert.is_true((p.rules[1].select(fx.typical()[4])))
    end)

    it("runs in a restricted environment: no io, os, require, load", function()
      for _, code in ipairs{ "io.open('/etc/passwd')", "os.execute('true')", "require 'termsrv'",
                             "load('return 1')", "debug.getinfo(1)" } do
        write(code .. "\nreturn { free_slots = 1 }")
        local p, err = policy.load(tmp)
        assert.is_nil(p, code)
        assert.equal("bad_policy", err.code)
        assert.truthy(err.message:find("attempt to index a nil value", 1, true)
          or err.message:find("attempt to call a nil value", 1, true), err.message)
      end
    end)

    it("cannot change the string library of the process", function()
      write("string.rep = nil\nreturn { free_slots = 1 }")
      assert.truthy(policy.load(tmp))
      assert.is_function(string.rep)
    end)

    it("syntax errors and invalid content come back as nil, err naming the file", function()
      write("rules = {")
      local p, err = policy.load(tmp)
      assert.is_nil(p)
      assert.equal("bad_policy", err.code)
      write("rules = { { name = 'x', select = { min_idle = '4x' }, action = 'logoff' } }")
      p, err = policy.load(tmp)
      assert.is_nil(p)
      assert.equal(tmp .. ': policy rule 1 ("x"): select: min_idle: bad duration \'4x\': unknown unit \'x\' '
        .. "(expected seconds or a duration like 45s, 90m, 8h, 2d, 1h30m)", err.message)
      write("return 42")
      p, err = policy.load(tmp)
      assert.is_nil(p)
      assert.matches("must return a table", err.message)
    end)

    it("stops an endless loop", function()
      local p, err = policy.from_string("while true do end", "=loop")
      assert.is_nil(p)
      assert.equal("loop: while loading: instruction budget spent (20000000 instructions; an endless loop?)",
        err.message)
      assert.equal("instructions", err.limit)
      assert.is_nil(debug.gethook())
    end)

    it("a missing file is an io_error", function()
      local p, err = policy.load("/nonexistent/policy.lua")
      assert.is_nil(p)
      assert.equal("io_error", err.code)
    end)

    it("load(table) returns nil, err instead of raising", function()
      local p, err = policy.load{ rules = { { select = {}, action = "nope" } } }
      assert.is_nil(p)
      assert.equal("bad_policy", err.code)
      assert.matches("unknown action 'nope'", err.message)
    end)
  end)
end)
