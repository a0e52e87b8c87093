-- Credential hygiene end to end, against the simulator: an NT hash works in
-- place of the password (SMB logon and RPC packet privacy), and no secret --
-- the password, the NT hash in any spelling, a session password given to
-- connect -- ever shows up in an error, a result, a handle, or the audit log.
-- (Where the secret comes from -- credentials file, environment, prompt --
-- is the CLI's and is tested with it.)
local sim = require "support.sim"
local termsrv = require "termsrv"
local audit = require "termsrv.audit"
local plan = require "termsrv.plan"
local ntlm = require("termsrv.testkit").ntlm

local env, port

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Every spelling of a secret worth looking for.
local function spellings(secret)
  local t = { secret }
  if #secret == 32 and secret:match("^%x+$") then
    t[#t + 1] = secret:lower()
    t[#t + 1] = secret:upper()
  else
    local h = ntlm.nt_hash(secret)
    t[#t + 1] = h
    t[#t + 1] = hex(h)
    t[#t + 1] = hex(h):upper()
  end
  return t
end

-- Fails when any string reachable from v (keys, values, tostring of tables
-- with a __tostring) contains one of the secrets.
local function assert_clean(v, secrets, what, seen)
  seen = seen or {}
  local function check(s, where)
    for _, secret in ipairs(secrets) do
      assert.is_nil(s:find(secret, 1, true), ("%s: a secret appears in %s"):format(what, where))
    end
  end
  if type(v) == "string" then
    check(v, "a string")
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__tostring then check(tostring(v), "tostring") end
    for k, x in pairs(v) do
      assert_clean(k, secrets, what, seen)
      assert_clean(x, secrets, what .. "." .. tostring(k), seen)
    end
  end
end

local function connect(over)
  local opts = { host = "127.0.0.1", port = port.TS01, user = env.domain .. "\\" .. env.user,
                 password = env.password, timeout = 3, name = "TS01" }
  for k, v in pairs(over or {}) do opts[k] = v end
  if opts.password == false then opts.password = nil end
  return termsrv.connect(opts)
end

setup(function()
  env = sim.start{ config = "spec/fixtures/sim/faults.lua" }
  port = env.ports
end)
teardown(function() sim.stop(env) end)
after_each(function() sim.ctl(env, "clear-faults", "TS01") end)

describe("an NT hash in place of the password", function()
  local nthash
  setup(function() nthash = hex(ntlm.nt_hash(env.password)) end)

  it("logs on and runs sealed RPC calls (both cases of hex digits)", function()
    for _, spelled in ipairs{ nthash, nthash:upper() } do
      local h <close> = assert(connect{ password = false, nthash = spelled })
      local list = assert(h:sessions())
      assert.is_true(#list > 0)
      assert.is_true(#assert(h:processes()) > 0)   -- the legacy pipe, sealed with keys from the hash
      assert.equals(6, sim.calls(env, { event = "call", host = "TS01" })[1].auth_level)
    end
  end)

  it("is refused when wrong, or not 32 hex digits, without echoing it", function()
    local wrong = ("0123456789abcdef"):rep(2)
    local h, err = connect{ password = false, nthash = wrong }
    if h then h:close() end
    assert.is_nil(h)
    assert.equals("logon_failure", err.code)
    assert_clean(err, spellings(wrong), "wrong nthash")
    -- a malformed hash is the caller's mistake: it raises, and the
    -- message does not quote it
    for _, bad in ipairs{ nthash:sub(2), nthash .. "0", nthash:sub(1, 31) .. "g" } do
      local ok, msg = pcall(connect, { password = false, nthash = bad })
      assert.is_false(ok)
      assert.matches("32 hexadecimal digits", msg)
      assert_clean(msg, { bad }, "malformed nthash")
    end
  end)
end)

describe("secrets never leave the library", function()
  it("not in the error of a failed logon", function()
    local wrong = "Wr0ng-But-Cl0se-" .. env.password
    local h, err = connect{ password = wrong }
    if h then h:close() end
    assert.is_nil(h)
    assert.equals("logon_failure", err.code)
    assert_clean(err, spellings(wrong), "logon failure")
    assert_clean(err:totable(), spellings(wrong), "logon failure (table)")
  end)

  it("not in a handle, its string, its counters, or errors after the logon", function()
    local secrets = spellings(env.password)
    local h <close> = assert(connect())
    assert_clean(h, secrets, "handle")
    assert_clean(tostring(h), secrets, "tostring(handle)")
    assert_clean(h:stats(), secrets, "stats")
    for _, f in ipairs{ { "bad_signature" }, { "fault", 5 }, { "bind_nak" }, { "close" }, { "wrong_call_id" } } do
      sim.ctl(env, "set-fault", "TS01", table.unpack(f))
      -- a failed listing, or one with per-session errors (list.errors)
      local list, err = h:sessions()
      assert.is_truthy(err or list.errors, f[1] .. " went unnoticed")
      assert_clean(err or list.errors, secrets, f[1])
      assert_clean(tostring(err or list.errors[1]), secrets, f[1])
      sim.ctl(env, "clear-faults", "TS01")
    end
  end)

  it("not in the result of a session connect with a wrong session password", function()
    local secrets = spellings(env.password)
    local target_pw = "Targ3t-Session-Pw!"
    for _, s in ipairs(spellings(target_pw)) do secrets[#secrets + 1] = s end
    local h <close> = assert(connect())
    local r, err, res = h:connect(7, 2, target_pw)
    assert.is_nil(r)
    assert.is_string(err.code)
    assert_clean(err, secrets, "connect error")
    assert_clean(res, secrets, "connect result")
    assert_clean(tostring(res), secrets, "tostring(result)")
    assert_clean(res:totable(), secrets, "result table")
  end)

  it("not in the audit log, even when actions fail", function()
    local secrets = spellings(env.password)
    local path = os.tmpname()
    local h <close> = assert(connect())
    sim.ctl(env, "set-fault", "TS01", "fault", 0x1C00001A, "method=RpcLogoff")
    local p = assert(plan.make({ h }, { rules = { { name = "stale", action = "logoff",
      select = { state = "disconnected", min_disconnected = "1h" } } } }))
    local log = assert(audit.open(path))
    local results = p:apply{ audit = log, sleep = function() end }
    log:close()
    sim.ctl(env, "clear-faults", "TS01")
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    os.remove(path)
    assert.is_true(#results > 0)
    assert.matches("invalid_handle", text)             -- the failures were logged...
    assert_clean(text, secrets, "audit log")           -- ...without a secret
    assert_clean(results, secrets, "plan results")
  end)
end)
