local audit = require "termsrv.audit"
local errors = require "termsrv.error"
local json = require "termsrv.json"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -m 700 '" .. p .. "'"))
  return p
end

local util = require "support.util"
local function read(path) return assert(util.slurp(path)) end
local q = util.quote

local function mode(path)
  local p = assert(io.popen("stat -c %a " .. q(path)))
  local m = p:read("l")
  p:close()
  return m
end

local ENTRY = {
  time = 1795684440, operator = "alice", account = "CORP\\ops", host = "ts01.corp",
  session = { id = 3, user = "bob", domain = "CORP", logon_time = 1795612440 },
  policy = "nightly", rule = "stale", action = "logoff", before = "disconnected", after = "gone",
  ok = true, duration = 0.25012,
}

describe("termsrv.audit", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("encodes one line with a fixed key order (golden)", function()
    assert.equal('{"time":"2026-11-26T09:14:00Z","operator":"alice","sudo_user":null,"account":"CORP\\\\ops",'
      .. '"host":"ts01.corp","session":{"id":3,"user":"bob","domain":"CORP",'
      .. '"logon_time":"2026-11-25T13:14:00Z"},"policy":"nightly","rule":"stale","action":"logoff",'
      .. '"before":"disconnected","after":"gone","ok":true,'
      .. '"error":null,"error_message":null,"duration":0.25}', audit.encode(ENTRY))
  end)

  it("writes error code and message from an error object", function()
    local e = json.decode(audit.encode{ action = "reset", ok = false,
      err = errors.new{ code = "access_denied",
      host = "ts01", op = "reset", message = "access denied", hint = "needs WINSTATION_RESET" } })
    assert.equal("access_denied", e.error)
    assert.equal("ts01: reset: access denied (hint: needs WINSTATION_RESET)", e.error_message)
    assert.is_false(e.ok)
    assert.equal(os.getenv("USER") or audit.operator(), e.operator)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", e.time)
  end)

  it("never writes a secret, even when the entry carries one", function()
    local entry = {}
    for k, v in pairs(ENTRY) do entry[k] = v end
    entry.password = "hunter2-secret"
    entry.nthash = "8846F7EAEE8FB117AD06BDD830B7586C"
    entry.auth = { user = "ops", password = "hunter2-secret", nthash = "8846F7EAEE8FB117AD06BDD830B7586C" }
    entry.session = { id = 3, user = "bob", password = "pw-in-session" }
    entry.error_message = "logon failed for ops with password hunter2-secret (hash "
      .. "8846F7EAEE8FB117AD06BDD830B7586C)"
    entry.extra = "whatever"
    local line = audit.encode(entry)
    assert.is_nil(line:find("hunter2", 1, true))
    assert.is_nil(line:find("8846F7EAEE8FB117AD06BDD830B7586C", 1, true))
    assert.is_nil(line:find("pw-in-session", 1, true))
    assert.is_nil(line:find("whatever", 1, true))
    assert.is_nil(line:find("password\":", 1, true))
    assert.is_nil(line:find("nthash", 1, true))
    local e = json.decode(line)
    assert.equal("logon failed for ops with password [REDACTED] (hash [REDACTED])", e.error_message)
    local keys = {}
    for k in pairs(e) do keys[#keys + 1] = k end
    table.sort(keys)
    local want = {}
    for _, k in ipairs(audit.FIELDS) do want[#want + 1] = k end
    table.sort(want)
    assert.same(want, keys)
  end)

  it("keeps lines short and on one line", function()
    local line = audit.encode{ action = "logoff", error_message = ("x"):rep(5000) .. "\nsecond line" }
    assert.is_nil(line:find("\n", 1, true))
    assert.truthy(#line < 1300)
  end)

  it("creates the file with mode 0600 and flushes every line", function()
    local path = dir .. "/audit.jsonl"
    local log = assert(audit.open(path))
    assert.equal("600", mode(path))
    assert.is_true(log:write(ENTRY))
    assert.equal(audit.encode(ENTRY) .. "\n", read(path)) -- readable before close
    assert.equal("termsrv.audit " .. path .. " (open, 1 written)", tostring(log))
    log:close()
    log:close()
    assert.equal("termsrv.audit " .. path .. " (closed, 1 written)", tostring(log))
    local ok, err = log:write(ENTRY)
    assert.is_nil(ok)
    assert.equal("audit_failed", err.code)
  end)

  it("is append-only: reopening keeps every earlier line", function()
    local path = dir .. "/a.jsonl"
    local f = assert(io.open(path, "w"))
    f:write("earlier line\n")
    f:close()
    os.execute("chmod 640 '" .. path .. "'")
    do
      local log <close> = assert(audit.open(path))
      log:write(ENTRY)
      log:write(ENTRY)
    end
    local log2 = assert(audit.open(path))
    log2:write{ action = "reset" }
    log2:close()
    local lines = {}
    for l in read(path):gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(4, #lines)
    assert.equal("earlier line", lines[1])
    assert.equal("reset", json.decode(lines[4]).action)
    assert.equal("640", mode(path)) -- an existing file keeps its mode
  end)

  it("refuses a world-writable file", function()
    local path = dir .. "/ww.jsonl"
    assert(io.open(path, "w")):close()
    os.execute("chmod 666 '" .. path .. "'")
    local log, err = audit.open(path)
    assert.is_nil(log)
    assert.equal("audit_unsafe", err.code)
    assert.matches("world%-writable %(mode 666%)", err.message)
    assert.equal("", read(path))
  end)

  it("refuses a directory, and reports a path it cannot create", function()
    local log, err = audit.open(dir)
    assert.is_nil(log)
    assert.equal("audit_unsafe", err.code)
    log, err = audit.open(dir .. "/missing/dir/a.jsonl")
    assert.is_nil(log)
    assert.equal("audit_failed", err.code)
    assert.has_error(function() audit.open(nil) end, "audit.open: path expected")
  end)

  it("copes with quotes in the path", function()
    local path = dir .. "/it's.jsonl"
    local log = assert(audit.open(path))
    log:write(ENTRY)
    log:close()
    assert.equal("600", mode(path))
  end)

  it("memory() keeps the encoded lines", function()
    local log = audit.memory()
    assert.is_true(log:write(ENTRY))
    assert.same({ audit.encode(ENTRY) }, log.entries)
    assert.equal("termsrv.audit (memory, 1 entries)", tostring(log))
    assert.is_true(audit.is_logger(log))
  end)

  it("records one line per state-changing action of a plan", function()
    local plan = require "termsrv.plan"
    local fx = require "fixtures.sessions"
    local fake = require "fixtures.fake_host"
    local h = fake.new("ts01.corp", fx.typical())
    local p = plan.make({ h }, { name = "nightly", rules = { { name = "stale",
      select = { state = "disconnected", min_disconnected = "8h" }, action = "logoff" } } }, { now = fx.NOW })
    local path = dir .. "/plan.jsonl"
    local log = assert(audit.open(path))
    p:apply{ audit = log, clock = function() return 0 end, sleep = function() end }
    log:close()
    local n = 0
    for l in read(path):gmatch("[^\n]+") do
      n = n + 1
      local e = json.decode(l)
      assert.equal("logoff", e.action)
      assert.equal("nightly", e.policy)
      assert.equal("stale", e.rule)
      assert.equal("CORP\\ops", e.account)
      assert.equal("ts01.corp", e.host)
      assert.is_true(e.ok)
      assert.equal("gone", e.after)
    end
    assert.equal(3, n)
  end)
end)

describe("termsrv.audit without lfs", function()
  local fresh, dir
  setup(function()
    package.loaded["termsrv.audit"] = nil
    package.loaded.lfs = nil
    package.preload.lfs = function() error("no lfs here") end
    fresh = require "termsrv.audit"
    package.preload.lfs = nil
    package.loaded["termsrv.audit"] = nil
  end)
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("checks modes with stat(1)", function()
    local path = dir .. "/x.jsonl"
    local log = assert(fresh.open(path))
    assert.equal("600", mode(path))
    log:write(ENTRY)
    log:close()
    os.execute("chmod 602 '" .. path .. "'")
    local bad, err = fresh.open(path)
    assert.is_nil(bad)
    assert.equal("audit_unsafe", err.code)
    bad, err = fresh.open(dir)
    assert.is_nil(bad)
    assert.equal("audit_unsafe", err.code)
  end)
end)
