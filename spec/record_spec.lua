local record = require "termsrv.record"

describe("termsrv.record #unit", function()
  describe("session()", function()
    it("sets the metatable and fills kind", function()
      local r = record.session{ host = "h", id = 2, name = "rdp-tcp#1", user = "a", state = "active" }
      assert.is_true(record.is_session(r))
      assert.equal("user", r.kind)
      assert.is_false(record.is_session({ id = 2 }))
    end)

    it("classifies services, console, listeners and user sessions", function()
      local function kind(t) t.host = "h"; t.state = t.state or "active"; return record.session(t).kind end
      assert.equal("services", kind{ id = 0, name = "services", state = "disconnected" })
      assert.equal("services", kind{ id = 0, name = "" })
      assert.equal("services", kind{ id = 7, name = "Services" })
      assert.equal("console", kind{ id = 1, name = "console" })
      assert.equal("console", kind{ id = 3, name = "Console" })
      assert.equal("listener", kind{ id = 65536, name = "rdp-tcp", state = "listen" })
      assert.equal("listener", kind{ id = 70000, name = "rdp-tcp" })
      assert.equal("listener", kind{ id = 9, name = "x", state = "listen" })
      assert.equal("user", kind{ id = 65535, name = "" })
      assert.equal("user", kind{ id = 2, name = "", state = "disconnected" })
    end)

    it("derives state from state_code and the other way round", function()
      local r = record.session{ host = "h", id = 2, name = "", state_code = 4 }
      assert.equal("disconnected", r.state)
      local r2 = record.session{ host = "h", id = 2, name = "", state = "connect_query" }
      assert.equal(2, r2.state_code)
    end)

    it("raises on a non-table", function()
      assert.has_error(function() record.session("x") end, "record.session: table expected, got string")
    end)
  end)

  it("has the ten WINSTATIONSTATECLASS states with their qwinsta abbreviations", function()
    local want = { "active", "connected", "connect_query", "shadow", "disconnected", "idle", "listen",
      "reset",
                   "down", "init" }
    local abbrev = { "Active", "Conn", "ConnQ", "Shadow", "Disc", "Idle", "Listen", "Reset", "Down", "Init" }
    for code = 0, 9 do
      assert.equal(want[code + 1], record.STATES[code])
      assert.equal(code, record.STATE_CODES[want[code + 1]])
      assert.equal(abbrev[code + 1], record.STATE_ABBREV[want[code + 1]])
    end
  end)

  describe("validate()", function()
    it("accepts a contract record", function()
      assert.is_true(record.validate{ host = "h", id = 1, name = "", state = "active", state_code = 0,
        logon_time = 1, idle = 3, locked = false })
    end)
    it("names the bad field", function()
      local ok, msg = record.validate{ host = "h", id = 1.5, name = "", state = "active" }
      assert.is_nil(ok)
      assert.equal("field 'id': integer expected, got float", msg)
      ok, msg = record.validate{ host = "h", id = 1, name = "", state = "Active" }
      assert.is_nil(ok)
      assert.equal("unknown state 'Active'", msg)
      ok, msg = record.validate{ host = "h", id = 1, name = "", state = "active", state_code = 4 }
      assert.is_nil(ok)
      assert.matches("does not match", msg)
      assert.equal("missing field 'host'", select(2, record.validate{ id = 1, name = "", state = "active" }))
    end)
  end)

  it("account() gives DOMAIN\\user, user, or nil", function()
    assert.equal("CORP\\a", record.account{ user = "a", domain = "CORP" })
    assert.equal("a", record.account{ user = "a", domain = "" })
    assert.is_nil(record.account{ user = "", domain = "CORP" })
    assert.is_nil(record.account{})
  end)

  it("computes ages from the server clock when the field is missing", function()
    assert.equal(40, record.idle{ last_input_time = 60, server_time = 100 })
    assert.equal(7, record.idle{ idle = 7, last_input_time = 60, server_time = 100 })
    assert.is_nil(record.idle{ last_input_time = 60 })
    assert.equal(50, record.disconnected_for{ state = "disconnected", disconnect_time = 50,
      server_time = 100 })
    assert.is_nil(record.disconnected_for{ state = "active", disconnected = 5 })
    assert.equal(90, record.logon_age({ logon_time = 10, server_time = 100 }, 5000))
    assert.equal(4990, record.logon_age({ logon_time = 10 }, 5000))
    assert.is_nil(record.logon_age({ logon_time = 10 }))
  end)

  it("same_logon() compares id, user, domain (case-insensitive) and logon time", function()
    local a = { id = 3, user = "Bob", domain = "CORP", logon_time = 100 }
    assert.is_true(record.same_logon(a, { id = 3, user = "bob", domain = "corp", logon_time = 100 }))
    assert.is_false(record.same_logon(a, { id = 3, user = "bob", domain = "corp", logon_time = 101 }))
    assert.is_false(record.same_logon(a, { id = 3, user = "eve", domain = "CORP", logon_time = 100 }))
    assert.is_false(record.same_logon(a, { id = 4, user = "Bob", domain = "CORP", logon_time = 100 }))
    assert.is_false(record.same_logon(a, { id = 3, domain = "CORP", logon_time = 100 }))
  end)

  it("fingerprint() and totable()", function()
    local r = record.session{ host = "h", id = 3, name = "", user = "b", domain = "D", state = "active",
                              logon_time = 5, extra = "x" }
    assert.same({ host = "h", id = 3, user = "b", domain = "D", logon_time = 5 }, r:fingerprint())
    local t = record.totable(r)
    assert.is_nil(getmetatable(t))
    assert.is_nil(t.extra)
    assert.equal("user", t.kind)
  end)

  it("prints one readable line", function()
    local r = record.session{ host = "ts01.corp", id = 2, name = "rdp-tcp#42", user = "alice",
      domain = "CORP",
      state = "disconnected", idle = 5400, disconnected = 32400, locked = true, client = "PC042",
      address = "10.1.2.3" }
    assert.equal("ts01.corp  #2  rdp-tcp#42  CORP\\alice  Disc  idle 1h30m  disc 9h  locked  "
      .. "client PC042 (10.1.2.3)", tostring(r))
    local l = record.session{ host = "ts01", id = 65536, name = "rdp-tcp", state = "listen" }
    assert.equal("ts01  #65536  rdp-tcp  -  Listen  (listener)", tostring(l))
  end)

  it("list() prints as a qwinsta table", function()
    local l = record.list{ record.session{ host = "h", id = 2, name = "rdp-tcp#1", user = "a",
      state = "active" } }
    assert.equal(
      " SESSIONNAME       USERNAME                 ID  STATE   TYPE        DEVICE\n" ..
      " rdp-tcp#1         a                         2  Active", tostring(l))
  end)
end)
