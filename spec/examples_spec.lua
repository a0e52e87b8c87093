-- The example scripts in examples/ run against the simulator and do what
-- their headers promise.

local sim = require "support.sim"
local support = require "support.cli"

local ROOT = sim.root
if ROOT:sub(1, 1) ~= "/" then -- the scripts run from a scratch directory
  local p = io.popen("pwd")
  ROOT = p:read("l") .. "/" .. ROOT
  p:close()
end
local ADMIN = support.ADMIN
local slurp, with = support.slurp, support.with

local TMP = support.scratch()

local example = support.runner{ command = { "lua5.4" }, cwd = TMP, set = { "TZ=UTC" },
  unset = { "TERMSRV_USER", "TERMSRV_PASSWORD", "TERMSRV_NTHASH", "TERMSRV_CREDENTIALS" } }

local function run(script, args, env)
  return example({ ROOT .. "/examples/" .. script, table.unpack(args) }, env)
end

describe("examples", function()
  local env, n = nil, 0
  local host, simhost

  setup(function() env = sim.start{ config = "spec/fixtures/sim/full.lua" } end)
  before_each(function()
    n = n + 1
    host, simhost = "127.0.0.1:" .. env.hosts[n].port, env.hosts[n].name
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  local function users() return support.users_of(env, simhost) end

  it("rwinsta.lua resets by id and by station name; a missing one makes exit 1", function()
    local code, out, err = run("rwinsta.lua", { host, "4", "rdp-tcp#42" }, ADMIN)
    assert.equal("", err)
    assert.equal(0, code)
    assert.matches("reset session 4 %(CORP\\bob%): disconnected %-> gone in [%d.]+s: ok\n", out)
    assert.matches("reset session 2 %(CORP\\foo%): active %-> gone", out)
    local u = users()
    assert.is_nil(u[2])
    assert.is_nil(u[4])
    local _
    code, _, err = run("rwinsta.lua", { host, "3", "99" }, ADMIN)
    assert.equal(1, code)
    assert.matches("no session 99", err)
    code = run("rwinsta.lua", { host, "6" }, { TERMSRV_USER = "CORP\\jdoe", TERMSRV_PASSWORD = "Jdoe-Passw0rd" })
    assert.equal(2, code)
    assert.equal("dave", users()[6])
  end)

  it("cleanup-disconnected.lua: a dry run, then --apply with an audit log", function()
    local audit = TMP .. "/cleanup.jsonl"
    local label = "TS01=" .. host
    local code, out = run("cleanup-disconnected.lua", { "--keep", "svc_*", label }, ADMIN)
    assert.equal(0, code)
    assert.matches('Plan %(policy "cleanup%-disconnected"%): 2 actions on 1 host', out)
    assert.matches("TS01   5  CORP\\carol", out)
    assert.matches("TS01 #8 CORP\\svc_backup: excluded by policy", out)
    assert.equal(7, (function() local k = 0; for _ in pairs(users()) do k = k + 1 end; return k end)())
    code, out = run("cleanup-disconnected.lua", { "--older", "1h", "--apply", label, "DOWN=127.0.0.1:1" },
      with(ADMIN, { TERMSRV_AUDIT = audit }))
    assert.equal(1, code) -- DOWN is unreachable
    assert.matches("total: 1 host, 3 ok, 0 failed", out)
    local u = users()
    assert.is_nil(u[4])
    assert.is_nil(u[5])
    assert.is_nil(u[8])
    assert.equal("alice", u[3]) -- disconnected 20 min only
    local lines = 0
    for _ in slurp(audit):gmatch("[^\n]+") do lines = lines + 1 end
    assert.equal(6, lines) -- an attempt and an outcome per action
  end)

  it("free-slots.lua: a full host takes a new RDP logon after it ran", function()
    assert.is_false(sim.ctl(env, "rdp-login", simhost, "newuser").ok)
    local code, out = run("free-slots.lua", { host, "1" }, ADMIN)
    assert.equal(0, code)
    assert.matches("free_slots 1 per host %-%- dry run", out)
    assert.is_false(sim.ctl(env, "rdp-login", simhost, "newuser").ok)
    code, out = run("free-slots.lua", { host, "1", "--apply" }, with(ADMIN, { TERMSRV_AUDIT = TMP .. "/fs.jsonl" }))
    assert.equal(0, code)
    assert.matches("5  CORP\\carol +free_slots +logoff>reset +ok +gone", out)
    assert.is_true(sim.ctl(env, "rdp-login", simhost, "newuser").ok)
  end)
end)
