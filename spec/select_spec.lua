local selector = require "termsrv.select"
local fx = require "fixtures.sessions"

local S = fx.session
local NOW = fx.NOW

local function ids(list)
  local t = {}
  for i, r in ipairs(list) do t[i] = r.id end
  return t
end

local function pick(sel, ctx)
  return ids(selector.filter(fx.typical(), sel, ctx or { self = fx.SELF, now = NOW }))
end

describe("termsrv.select #unit", function()
  describe("protected sessions", function()
    it("an empty selector matches every unprotected user session, and nothing protected", function()
      -- 0 services, 1 console, 6 own session, 65536 listener are protected
      assert.same({ 2, 3, 4, 5 }, pick({}))
    end)

    it("never selects services, console or listeners by accident", function()
      assert.same({}, pick({ state = "listen" }))
      assert.same({}, pick({ user = "Administrator" }))
      assert.same({ 3, 4, 5 }, pick({ state = "disconnected" }))
      assert.same({}, pick({ id = { 0, 1, 65536 }, state = "active", exclude_ids = { 0, 1, 65536 } }))
    end)

    it("protects the caller's own sessions", function()
      assert.same({}, pick({ user = "ops" }))
      assert.same({ 6 }, pick({ user = "ops" }, {}))  -- no self known: nothing to protect
      local m = selector.compile{ user = "ops" }
      local ok, why, kind = m(S{ id = 6, user = "OPS", domain = "corp", state = "active" },
        { self = fx.SELF })
      assert.is_false(ok)
      assert.equal("protected", kind)
      assert.equal('protected: own session (the account termsrv runs as) (add include_protected = {"self"} '
        .. 'or name the id)', why)
    end)

    it("recognizes the own account in every spelling, erring on the side of protection", function()
      local rec = S{ id = 6, user = "ops", domain = "CORP", state = "active" }
      for _, self in ipairs{
        { user = "ops", domain = "CORP" }, { user = "OPS", domain = "corp" }, { user = "CORP\\ops" },
        { user = "ops@corp.example" }, { user = "ops", domain = "corp.example" }, { user = "ops" },
        { user = "ops", domain = "" }, { user = "ops", domain = "." },
      } do
        assert.is_true(selector.is_self(rec, self), self.user .. "/" .. tostring(self.domain))
      end
      assert.is_false(selector.is_self(rec, { user = "ops", domain = "OTHER" }))
      assert.is_false(selector.is_self(rec, { user = "alice", domain = "CORP" }))
      assert.is_false(selector.is_self(S{ id = 7, state = "active" }, { user = "ops" }))
      assert.is_false(selector.is_self(rec, nil))
    end)

    it("include_protected lifts protection for the named kinds only", function()
      assert.same({ 1, 2 }, pick({ state = "active", include_protected = { "console" } }))
      assert.same({ 3, 4, 5, 6 }, pick({ state = "disconnected", include_protected = "self" }))
      assert.same({ 0, 3, 4, 5 }, pick({ state = "disconnected", include_protected = { "services" } }))
      assert.same({ 65536 }, pick({ state = "listen", include_protected = { "listener" } }))
      assert.same({ 0, 1, 2, 3, 4, 5, 6, 65536 }, pick({ include_protected = true }))
      assert.same({ 2, 3, 4, 5 }, pick({ include_protected = false }))
    end)

    it("naming the id lifts protection for that id", function()
      assert.same({ 1 }, pick({ id = 1 }))
      assert.same({ 1, 6 }, pick({ id = { 1, 6, 7 } }))
      local ok, why = selector.compile{ id = 1 }(fx.typical()[2])
      assert.is_true(ok)
      assert.equal("id 1; protection lifted (console)", why)
    end)
  end)

  describe("criteria", function()
    it("state: names, lists, qwinsta abbreviations, case", function()
      assert.same({ 2 }, pick({ state = "active" }))
      assert.same({ 2, 3, 4, 5 }, pick({ state = { "active", "disconnected" } }))
      assert.same({ 3, 4, 5 }, pick({ state = "Disc" }))
      assert.same({ 3, 4, 5 }, pick({ state = "DISCONNECTED" }))
      assert.is_true((selector.compile{ state = "ConnQ" }(S{ id = 9, state = "connect_query" })))
    end)

    it("user: exact, glob, list, case-insensitive, DOMAIN\\user", function()
      assert.same({ 2 }, pick({ user = "alice" }))
      assert.same({ 2 }, pick({ user = "ALICE" }))
      assert.same({ 5 }, pick({ user = "svc_*" }))
      assert.same({ 3 }, pick({ user = "b?b" }))
      assert.same({ 2, 4 }, pick({ user = { "alice", "c*" } }))
      assert.same({ 2 }, pick({ user = "corp\\al*" }))
      assert.same({}, pick({ user = "OTHER\\alice" }))
      assert.same({}, pick({ user = "ali" }))          -- globs are anchored
      assert.same({}, pick({ user = "alice." }))      -- dots are literal
    end)

    it("user globs fold non-ASCII letters like Windows does", function()
      local r = S{ id = 9, user = "Ærø_Иван", domain = "CORP", state = "active" }
      assert.is_true((selector.compile{ user = "ærø_иван" }(r)))
      assert.is_true((selector.compile{ user = "?RØ_*" }(r)))
      assert.is_false((selector.compile{ user = "ærø_иванн" }(r)))
    end)

    it("a session without a user never matches a user criterion", function()
      local ok, why = selector.compile{ user = "*" }(S{ id = 9, state = "connected" })
      assert.is_false(ok)
      assert.equal("no user logged on (user '*')", why)
    end)

    it("domain, station, host", function()
      assert.same({ 2, 3, 4, 5 }, pick({ domain = "corp" }))
      assert.same({ 2 }, pick({ station = "rdp-tcp#*" }))
      assert.same({ 3, 4, 5 }, pick({ station = "*", state = "disconnected" }))
      assert.same({ 2, 3, 4, 5 }, pick({ host = "TS0?.corp" }))
      assert.same({}, pick({ host = "ts02*" }))
    end)

    it("client and address (glob and IPv4 CIDR)", function()
      assert.same({ 2 }, pick({ client = "pc0*" }))
      assert.same({ 2 }, pick({ address = "10.1.*" }))
      assert.same({ 2 }, pick({ address = "10.1.0.0/16" }))
      assert.same({ 2 }, pick({ address = "10.1.2.3/32" }))
      assert.same({ 2 }, pick({ address = "0.0.0.0/0" }))
      assert.same({}, pick({ address = "10.2.0.0/16" }))
      assert.same({ 2 }, pick({ address = { "192.168.0.0/16", "10.0.0.0/8" } }))
      local mapped = S{ id = 9, user = "x", state = "active", address = "::ffff:10.1.2.3" }
      assert.is_true((selector.compile{ address = "10.1.0.0/16" }(mapped)))
      local v6 = S{ id = 9, user = "x", state = "active", address = "fe80::1" }
      assert.is_false((selector.compile{ address = "10.1.0.0/16" }(v6)))
      assert.is_true((selector.compile{ address = "fe80::*" }(v6)))
      local ok, why = selector.compile{ client = "pc*" }(fx.typical()[4])
      assert.is_false(ok)
      assert.equal("client unknown (client 'pc*')", why)
    end)

    it("min_idle: inclusive boundary, exactly 8h matches, one second less does not", function()
      local m = selector.compile{ min_idle = "8h" }
      assert.is_true((m(S{ id = 9, user = "x", state = "active", idle = 28800 })))
      local ok, why = m(S{ id = 9, user = "x", state = "active", idle = 28799 })
      assert.is_false(ok)
      assert.equal("idle 7h59m59s < 8h (min_idle)", why)
      ok, why = m(S{ id = 9, user = "x", state = "active", idle = 28800 })
      assert.is_true(ok)
      assert.equal("idle 8h >= 8h", why)
      assert.same({ 3, 4, 5 }, pick({ min_idle = 28800 }))
    end)

    it("a record whose needed field is nil does not match, and says so", function()
      local m = selector.compile{ min_idle = "1m" }
      local ok, why = m(S{ id = 9, user = "x", state = "active" })
      assert.is_false(ok)
      assert.equal("idle unknown (min_idle 1m)", why)
      ok, why = selector.compile{ min_disconnected = "1m" }(S{ id = 9, user = "x", state = "disconnected" })
      assert.is_false(ok)
      assert.equal("disconnected unknown (min_disconnected 1m)", why)
      ok, why = selector.compile{ locked = true }(S{ id = 9, user = "x", state = "active" })
      assert.is_false(ok)
      assert.equal("lock state unknown (locked true)", why)
      ok, why = selector.compile{ min_logon_age = "1h" }(S{ id = 9, user = "x", state = "active" })
      assert.is_false(ok)
      assert.equal("logged on unknown (min_logon_age 1h)", why)
    end)

    it("idle falls back to last_input_time on the server clock", function()
      local r = S{ id = 9, user = "x", state = "active", last_input_time = NOW - 7200 }
      assert.is_true((selector.compile{ min_idle = "2h" }(r)))
    end)

    it("min_disconnected only matches disconnected sessions", function()
      assert.same({ 3, 4, 5 }, pick({ min_disconnected = "8h" }))   -- carol exactly 8h
      assert.same({ 3, 5 }, pick({ min_disconnected = "8h1s" }))
      local ok, why = selector.compile{ min_disconnected = "1s" }(fx.typical()[3])
      assert.is_false(ok)
      assert.equal("not disconnected (state active, min_disconnected)", why)
    end)

    it("min_logon_age uses the server clock, else ctx.now", function()
      assert.same({ 3, 5 }, pick({ min_logon_age = "20h" }))
      local r = S{ id = 9, user = "x", state = "active", logon_time = 1000, server_time = false }
      r.server_time = nil
      assert.is_true((selector.compile{ min_logon_age = "1h" }(r, { now = 1000 + 3600 })))
      assert.is_false((selector.compile{ min_logon_age = "1h" }(r, { now = 1000 + 3599 })))
    end)

    it("locked true / false", function()
      assert.same({ 2 }, pick({ locked = false }))
      assert.same({}, pick({ locked = true }))
    end)

    it("where: a predicate with an optional reason", function()
      local m = selector.compile{ where = function(rec) return rec.id % 2 == 1, "odd id" end }
      assert.same({ 3, 5 }, ids(selector.filter(fx.typical(), m, { self = fx.SELF })))
      local ok, why = selector.compile{ where = function() return false end }(fx.typical()[3])
      assert.is_false(ok)
      assert.equal("where: false", why)
      local seen
      selector.compile{ where = function(_, ctx) seen = ctx; return true end }(fx.typical()[3], { now = 5 })
      assert.equal(5, seen.now)
    end)

    it("criteria combine with AND, and the reason lists each one", function()
      local ok, why = selector.compile{ state = "disconnected", min_disconnected = "8h",
        user = "b*" }(fx.typical()[4])
      assert.is_true(ok)
      assert.equal("state disconnected; user CORP\\bob ~ 'b*'; disconnected 9h >= 8h", why)
      ok, why = selector.compile{ state = "active", user = "b*" }(fx.typical()[4])
      assert.is_false(ok)
      assert.equal("state disconnected is not active", why)
      assert.equal("no criteria", select(2, selector.compile{}(fx.typical()[4])))
    end)
  end)

  describe("exclusions", function()
    it("exclude_users, exclude_stations, exclude_clients, exclude_ids", function()
      assert.same({ 2, 3, 4 }, pick({ exclude_users = { "svc_*" } }))
      assert.same({ 3, 4, 5 }, pick({ exclude_stations = "rdp-tcp*" }))
      assert.same({ 3, 4, 5 }, pick({ exclude_clients = "PC0*" }))
      assert.same({ 3, 4, 5 }, pick({ exclude_clients = "10.0.0.0/8" }))
      assert.same({ 2, 5 }, pick({ exclude_ids = { 3, 4 } }))
      local ok, why, kind = selector.compile{ exclude_users = "CORP\\svc_*" }(fx.typical()[6])
      assert.is_false(ok)
      assert.equal("excluded", kind)
      assert.equal("excluded: user CORP\\svc_backup ~ exclude_users 'CORP\\svc_*'", why)
    end)

    it("exclude = selector or list of selectors", function()
      assert.same({ 2, 3 }, pick({ exclude = { state = "disconnected", min_disconnected = "8h",
        user = { "carol", "svc*" } } }))
      assert.same({ 3 }, pick({ exclude = { { state = "active" }, { min_disconnected = "10h" },
        { user = "carol" } } }))
      local ok, why = selector.compile{ exclude = { user = "bob" } }(fx.typical()[4])
      assert.is_false(ok)
      assert.equal("excluded: exclude {user=\"bob\"} (user CORP\\bob ~ 'bob')", why)
    end)

    it("an exclusion wins over include_protected and explicit ids", function()
      assert.same({}, pick({ id = 1, exclude_users = "admin*" }))
    end)
  end)

  describe("compile() validation (programmer errors raise)", function()
    local function err_of(t)
      local ok, e = pcall(selector.compile, t)
      assert.is_false(ok)
      return (tostring(e):gsub("^[^:]*:%d+: ", ""))
    end

    it("unknown keys, with a suggestion", function()
      assert.equal("select: unknown key 'min_idel' (did you mean 'min_idle'?)", err_of{ min_idel = "8h" })
      assert.equal("select: unknown key 'users' (did you mean 'user'?)", err_of{ users = "a" })
      assert.equal("select: unknown key 'zzzzzzzzzz'", err_of{ zzzzzzzzzz = 1 })
      assert.equal("select: unknown key '1'", err_of{ "state" })
    end)

    it("bad durations name the key and the value", function()
      assert.equal("select: min_idle: bad duration '8x': unknown unit 'x' (expected seconds or a duration "
        .. "like 45s, 90m, 8h, 2d, 1h30m)", err_of{ min_idle = "8x" })
      assert.matches("min_disconnected: bad duration '%-1h'", err_of{ min_disconnected = "-1h" })
    end)

    it("wrong types and values", function()
      assert.equal("select: state: unknown state 'gone' (one of active, connected, connect_query, shadow, "
        .. "disconnected, idle, listen, reset, down, init)", err_of{ state = "gone" })
      assert.equal("select: user: string expected, got number", err_of{ user = 5 })
      assert.equal("select: user: empty list", err_of{ user = {} })
      assert.equal("select: user: empty string (use \"*\" for any)", err_of{ user = "" })
      assert.equal("select: id: session id (non-negative integer) expected, got 1.5", err_of{ id = 1.5 })
      assert.equal("select: locked: true or false expected, got string", err_of{ locked = "yes" })
      assert.equal("select: where: function expected, got string", err_of{ where = "x" })
      assert.equal("select: bad IPv4 CIDR block '10.0.0.0/33' (expected e.g. 10.1.0.0/16)",
        err_of{ address = "10.0.0.0/33" })
      assert.equal("select: include_protected: unknown 'root' (one of services, console, listener, self)",
        err_of{ include_protected = "root" })
      assert.equal("select: include_protected is not allowed inside exclude",
        err_of{ exclude = { include_protected = true } })
      assert.equal("select: selector table expected, got string", err_of("state"))
    end)

    it("raises at the caller's line", function()
      local ok, e = pcall(function() selector.compile{ bogus = 1 } end)
      assert.is_false(ok)
      assert.matches("select_spec.lua:%d+: select: unknown key 'bogus'", e)
    end)

    it("compiles once; a compiled selector passes through and prints its spec", function()
      local m = selector.compile{ state = "disconnected", min_idle = "8h", user = { "a", "b" } }
      assert.equal(m, selector.compile(m))
      assert.is_true(selector.is_selector(m))
      assert.equal('termsrv.selector {min_idle="8h", state="disconnected", user={"a", "b"}}', tostring(m))
    end)
  end)

  it("explain() gives the outcome and reason for every record", function()
    local out = selector.explain(fx.typical(), { state = "disconnected" }, { self = fx.SELF })
    assert.equal(8, #out)
    assert.is_false(out[1].match)
    assert.equal("protected", out[1].why)
    assert.is_true(out[4].match)
    assert.equal("state disconnected", out[4].reason)
    assert.equal("criteria", out[2].why)
  end)
end)

describe("termsrv.select.account_matcher: one reading of an account pattern #unit", function()
  local select = require "termsrv.select"
  it("takes bare names, DOMAIN\\user, user@domain and globs, case-folded beyond ASCII", function()
    local function m(p, u, d) return select.account_matcher(p)(u, d) end
    assert.is_true(m("alice", "Alice", "CORP"))
    assert.is_true(m("a*", "alice", "ANY"))
    assert.is_true(m("CORP\\al?ce", "ALICE", "corp"))
    assert.is_false(m("OTHER\\alice", "alice", "CORP"))
    assert.is_true(m("alice@corp", "alice", "CORP"))
    assert.is_true(m("alice@corp.example.com", "alice", "CORP"))
    assert.is_true(m("alice@CORP.EXAMPLE.COM", "alice", "corp.example.com"))
    assert.is_false(m("alice@other.example.com", "alice", "CORP"))
    assert.is_true(m("CORP\\Åsa", "åSA", "corp"))
    assert.is_true(m("ÅS?", "åsa", "CORP"))
    assert.has_error(function() select.account_matcher("\\x") end)
    assert.has_error(function() select.account_matcher("CORP\\") end)
  end)

  it("selectors use it: user = 'alice@corp.example' selects CORP\\alice", function()
    local m = select.compile{ user = "alice@corp.example", include_protected = true }
    assert.is_true((m:match({ id = 3, user = "alice", domain = "CORP", state = "disconnected", kind = "user" })))
  end)
end)
