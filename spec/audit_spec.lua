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
      .. '"phase":null,"attempt":null,"fallback":null,"before":"disconnected","after":"gone","ok":true,'
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
    assert.matches("writable by group or others", err.message)
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
    local n, ids = 0, {}
    for l in read(path):gmatch("[^\n]+") do
      n = n + 1
      local e = json.decode(l)
      -- write-ahead: the attempt before the call, the outcome after it
      assert.equal(n % 2 == 1 and "attempt" or "outcome", e.phase)
      if e.phase == "attempt" then
        assert.equal(json.null, e.ok)
        ids[#ids + 1] = e.attempt
        goto next
      end
      assert.equal(ids[#ids], e.attempt)
      assert.equal("logoff", e.action)
      assert.equal("nightly", e.policy)
      assert.equal("stale", e.rule)
      assert.equal("CORP\\ops", e.account)
      assert.equal("ts01.corp", e.host)
      assert.is_true(e.ok)
      assert.equal("gone", e.after)
      ::next::
    end
    assert.equal(6, n)
    assert.same({}, (audit.pending(path)))
  end)

  it("refuses a symlink, even a dangling one, and never writes through it", function()
    local target = dir .. "/passwd-copy"
    local f = assert(io.open(target, "w")); f:write("root:x:0:0::/root:/bin/sh\n"); f:close()
    os.execute("ln -s '" .. target .. "' '" .. dir .. "/link.jsonl'")
    local log, err = audit.open(dir .. "/link.jsonl")
    assert.is_nil(log)
    assert.equal("audit_unsafe", err.code)
    assert.matches("symbolic link", err.message)
    assert.equal("root:x:0:0::/root:/bin/sh\n", read(target))
    os.execute("ln -s '" .. dir .. "/nowhere.jsonl' '" .. dir .. "/dangling.jsonl'")
    log, err = audit.open(dir .. "/dangling.jsonl")
    assert.is_nil(log)
    assert.equal("audit_unsafe", err.code)
    assert.is_nil(io.open(dir .. "/nowhere.jsonl", "r"))
  end)

  it("refuses a file of another owner and a FIFO", function()
    local path = dir .. "/other.jsonl"
    assert(io.open(path, "w")):close()
    os.execute("chmod 600 '" .. path .. "'; chown nobody '" .. path .. "' 2>/dev/null")
    local owner = io.popen("stat -c %U '" .. path .. "'"):read("l")
    if owner == "nobody" then
      local log, err = audit.open(path)
      assert.is_nil(log)
      assert.equal("audit_unsafe", err.code)
      assert.matches("owned by another user", err.message)
    end
    os.execute("mkfifo '" .. dir .. "/fifo'")
    local log, err = audit.open(dir .. "/fifo")
    assert.is_nil(log)
    assert.equal("audit_unsafe", err.code)
    assert.matches("not a regular file", err.message)
  end)

  it("a write that cannot complete (disk full) is an error, not silence", function()
    local path = dir .. "/full.jsonl"
    local f = assert(io.open(path, "w")); f:write(string.rep("x", 1000), "\n"); f:close()
    os.execute("chmod 600 '" .. path .. "'")
    -- a file size limit of 1 KiB stands in for a full disk: the write(2) is
    -- cut short or fails with EFBIG, as with ENOSPC
    local script = dir .. "/w.lua"
    f = assert(io.open(script, "w"))
    f:write([[
      local audit = require "termsrv.audit"
      local log = assert(audit.open(arg[1]))
      local ok, err = log:attempt{ host = "ts01", action = "logoff", session = { id = 3 } }
      local ok2, err2 = log:write{ host = "ts01", action = "logoff" }
      io.write(tostring(ok), " ", tostring(err and err.code), " ", tostring(ok2), " ", tostring(err2 and err2.code))
    ]])
    f:close()
    local p = io.popen("trap '' XFSZ; ulimit -f 1; LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' "
      .. "LUA_CPATH='./build/?.so;;' lua5.4 '" .. script .. "' '" .. path .. "' 2>&1")
    local out = p:read("a")
    p:close()
    assert.equal("nil audit_failed nil audit_failed", out)
  end)

  it("caps a line at MAX_LINE bytes, shortening only the message", function()
    local line = audit.encode{ host = "ts01", action = "logoff", ok = false, error = "server_error",
                               error_message = string.rep("y", 100000) }
    assert.is_true(#line + 1 <= audit.MAX_LINE)
    assert.equal("server_error", json.decode(line).error)
  end)

  it("pending() lists the attempts without an outcome", function()
    local log = audit.memory()
    local a1 = assert(log:attempt{ host = "ts01", action = "logoff", session = { id = 3, user = "bob" } })
    local a2 = assert(log:attempt{ host = "ts01", action = "reset", session = { id = 4, user = "carol" } })
    assert.not_equal(a1, a2)
    assert(log:outcome(a1, { host = "ts01", action = "logoff", ok = true, after = "gone" }))
    assert(log:outcome("nope", { host = "ts01", action = "x", state_unknown = true }))
    local pend, bad = audit.pending(table.concat(log.entries, "\n") .. "\nnot json\n")
    assert.equal(1, bad)
    assert.equal(1, #pend)
    assert.equal(a2, pend[1].attempt)
    assert.equal(4, pend[1].session.id)
    local last = json.decode(log.entries[4])
    assert.equal(json.null, last.ok)
    assert.equal("state_unknown", last.error)
  end)

  it("refuses a group-writable file too, and leaves it as it was", function()
    local path = dir .. "/gw.jsonl"
    util.spit(path, "old\n", "620")
    local log, err = audit.open(path)
    assert.is_nil(log)
    assert.equal("audit_unsafe", err.code)
    assert.equal("audit", err.op)
    assert.matches("writable by group or others", err.message)
    assert.is_string(err.hint)
    assert.equal("old\n", read(path))
    assert.equal("620", mode(path))
  end)

  it("keeps a line under MAX_LINE even when every text is at its cap and escapes wide", function()
    local wide = string.rep("\1", 5000) -- each byte becomes \u0001 in JSON
    local line = audit.encode{ host = wide, policy = wide, rule = wide, before = wide, after = wide,
      fallback = wide, account = wide, error_message = string.rep("y", 100000), error = "server_error",
      session = { id = 7, user = wide, domain = wide }, action = "logoff", phase = "attempt", attempt = "a-1" }
    assert.is_true(#line + 1 <= audit.MAX_LINE, #line)
    local e = json.decode(line)
    -- the facts survive whole
    assert.equal("logoff", e.action)
    assert.equal("attempt", e.phase)
    assert.equal("a-1", e.attempt)
    assert.equal("server_error", e.error)
    assert.equal(7, e.session.id)
    -- and a logger writes it as one line
    local path = dir .. "/wide.jsonl"
    local log = assert(audit.open(path))
    assert.is_true(log:write{ host = "ts01", action = "logoff", ok = false, error_message = wide .. wide })
    assert.is_true(log:close())
    local text = read(path)
    assert.equal(1, select(2, text:gsub("\n", "")))
    assert.is_true(#text <= audit.MAX_LINE)
  end)

  it("pairs attempts and outcomes in a real file; ids differ across processes", function()
    local path = dir .. "/wa.jsonl"
    local log = assert(audit.open(path))
    local a1 = assert(log:attempt{ host = "ts01", action = "logoff", session = { id = 3 }, ok = true })
    local proc = require "termsrv.proc"
    -- a worker (forked, as the fleet does) writes its own attempt through its own descriptor
    local pid, fd = proc.fork(function()
      local wlog = assert(audit.open(path))
      local id = assert(wlog:attempt{ host = "ts02", action = "reset", session = { id = 9 } })
      assert(wlog:outcome(id, { host = "ts02", action = "reset", ok = true }))
      wlog:close()
      return id
    end)
    local parts = {}
    repeat
      proc.poll({ fd }, 1)
      local d = proc.read(fd)
      if d and d ~= "" then parts[#parts + 1] = d end
    until d == ""
    proc.close(fd)
    assert.equal(0, proc.wait(pid, true).code)
    local a2 = table.concat(parts)
    assert.not_equal(a1, a2)
    assert.matches("%-" .. proc.getpid() .. "%-", a1)
    assert.matches("%-" .. pid .. "%-", a2)
    local pend = assert(audit.pending(path))
    assert.equal(1, #pend)
    assert.equal(a1, pend[1].attempt)
    assert.is_nil(pend[1].ok) -- an attempt never claims success (null, decoded as nil)
    assert(log:outcome(a1, { host = "ts01", action = "logoff", state_unknown = true, error = "timeout" }))
    -- an outcome of unknown state is still to be checked by hand: listed as itself
    pend = assert(audit.pending(path))
    assert.same({ a1, "outcome" }, { pend[1].attempt, pend[1].phase })
    assert(log:outcome(a1, { host = "ts01", action = "logoff", ok = false, error = "timeout" }))
    log:close()
    assert.same({}, (audit.pending(path)))
    local lines = {}
    for l in read(path):gmatch("[^\n]+") do lines[#lines + 1] = json.decode(l) end
    assert.equal(5, #lines)
    assert.equal("outcome", lines[4].phase)
    assert.equal(json.null, lines[4].ok)
    assert.equal("timeout", lines[4].error) -- a given error wins over state_unknown
    local none, ferr = audit.pending(dir .. "/missing.jsonl")
    assert.is_nil(none)
    assert.matches("No such file", ferr)
  end)

  describe("termsrv audit [--pending]", function()
    local support = require "support.cli"
    local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC" } }

    it("lists the log, and with --pending exits 1 while an attempt has no outcome, 0 once none has", function()
      local path = dir .. "/cli.jsonl"
      local log = assert(audit.open(path))
      local a1 = assert(log:attempt{ host = "ts01", action = "logoff", session = { id = 3, user = "bob" } })
      local a2 = assert(log:attempt{ host = "ts02", action = "reset", session = { id = 4, user = "carol" } })
      assert(log:outcome(a1, { host = "ts01", action = "logoff", session = { id = 3, user = "bob" }, ok = true,
                               after = "gone" }))

      local code, out, err = run({ "audit", "--audit", path })
      assert.equal(1, code, err)
      assert.matches("ts01 +3 +bob +logoff +attempt", out)
      assert.matches("ts01 +3 +bob +logoff +outcome +ok", out)
      assert.matches("ts02 +4 +carol +reset +attempt", out)

      code, out, err = run({ "audit", "--pending", "--audit", path })
      assert.equal(1, code, err)
      assert.matches("1 action attempted without a recorded outcome", err)
      assert.matches("ts02 +4 +carol +reset +attempt", out)
      assert.is_nil(out:find("ts01", 1, true))

      code, out = run({ "audit", "--pending", "--format", "json" }, { TERMSRV_AUDIT = path })
      assert.equal(1, code)
      assert.equal(a2, json.decode(out).attempt)

      -- a lost answer whose state is unknown stays pending; a known outcome ends it
      assert(log:outcome(a2, { host = "ts02", action = "reset", session = { id = 4, user = "carol" },
                               state_unknown = true }))
      code, out = run({ "audit", "--pending", "--audit", path })
      assert.equal(1, code)
      assert.matches("ts02 +4 +carol +reset +outcome +unknown +state_unknown", out)
      assert(log:outcome(a2, { host = "ts02", action = "reset", ok = true, after = "gone" }))
      log:close()
      code, out, err = run({ "audit", "--pending", "--audit", path })
      assert.equal(0, code, err)
      assert.equal("", out)
      assert.equal("", err)
    end)

    it("reads the default log, and reports one it cannot read", function()
      os.execute("mkdir -p " .. q(dir .. "/state/termsrv"))
      local path = dir .. "/state/termsrv/audit.jsonl"
      local log = assert(audit.open(path))
      assert(log:attempt{ host = "ts01", action = "logoff" })
      log:close()
      local code = run({ "audit", "--pending" }, { XDG_STATE_HOME = dir .. "/state" })
      assert.equal(1, code)
      local _, err
      code, _, err = run({ "audit", "--pending", "--audit", dir .. "/missing.jsonl" })
      assert.equal(2, code)
      assert.matches("termsrv: audit:", err)
    end)
  end)
end)
