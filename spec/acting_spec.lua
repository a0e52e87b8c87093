-- The acting path against the simulator through the real smbd, tried as a
-- careless operator would: Ctrl-C and SIGTERM in the middle of --apply over
-- a farm, kill -9, a user who comes back between plan and apply, client
-- rules on disconnected sessions, explicit ids through the one executor.

local sim = require "support.sim"
local support = require "support.cli"
local dkjson = require "dkjson"

local ADMIN = support.ADMIN
local slurp, spit, with = support.slurp, support.spit, support.with

local TMP = support.scratch()
local ENV = { "TZ=UTC", "HOME=" .. TMP .. "/home" }
local run = support.runner{ unset = support.TERMSRV_VARS, set = ENV }

local function audit_lines(path)
  local out = {}
  for l in (slurp(path) or ""):gmatch("[^\n]+") do out[#out + 1] = assert(dkjson.decode(l)) end
  return out
end

local function logoffs(env, names)
  return sim.calls(env, function(r)
    return r.event == "call" and (r.method == "RpcLogoff" or r.method == "RpcWinStationReset")
      and (names == nil or names[r.host])
  end)
end

local function sleep(s) os.execute("sleep " .. s) end

local spawn = support.spawner{ unset = support.TERMSRV_VARS, set = ENV }

local function wait_for(pred, what)
  for _ = 1, 300 do
    if pred() then return end
    sleep(0.05)
  end
  error("timed out waiting for " .. what)
end

describe("the acting path", function()
  local env
  local next_host = 0
  -- each test takes fresh hosts of the 24 identical ones
  local function take(n)
    local names, specs, set = {}, {}, {}
    for _ = 1, n do
      next_host = next_host + 1
      local h = assert(env.hosts[next_host], "spec/fixtures/sim/full.lua: more hosts needed")
      names[#names + 1] = h.name
      specs[#specs + 1] = h.name .. "=127.0.0.1:" .. h.port
      set[h.name] = true
    end
    local file = TMP .. "/hosts" .. next_host
    spit(file, table.concat(specs, "\n") .. "\n")
    return file, names, set
  end

  setup(function() env = sim.start{ config = "spec/fixtures/sim/full.lua" } end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  for _, case in ipairs{ { sig = "INT", code = 130, jobs = "1" }, { sig = "TERM", code = 143, jobs = "1" },
                         { sig = "INT", code = 130, jobs = "3" } } do
    it(string.format("SIG%s during --apply -j %s: no action starts after it, exit %d", case.sig, case.jobs,
                     case.code), function()
      local file, names, set = take(4)
      for _, n in ipairs(names) do sim.ctl(env, "set-fault", n, "delay", "0.4", "method=RpcLogoff") end
      local audit = TMP .. "/audit-" .. case.sig .. case.jobs .. ".jsonl"
      local pid, finish = spawn({ "logoff", "--hosts", file, "--state", "disc", "--apply", "-j", case.jobs },
        with(ADMIN, { TERMSRV_AUDIT = audit }))
      wait_for(function() return #logoffs(env, set) >= 2 end, "two logoffs")
      local before = #logoffs(env, set)
      os.execute("kill -" .. case.sig .. " " .. pid)
      local code, out, err = finish()
      local after = #logoffs(env, set)
      for _, n in ipairs(names) do sim.ctl(env, "clear-faults", n) end
      assert.equal(case.code, code, out .. err)
      -- 4 hosts x 4 disconnected sessions: far from all of them
      assert.is_true(after < 16, "all were logged off")
      -- at most the in-flight one of each worker after the signal
      assert.is_true(after - before <= tonumber(case.jobs), string.format("%d before, %d after", before, after))
      assert.truthy(err:find("stopped by SIG" .. case.sig, 1, true), err)
      -- every call the simulator saw has an attempt line and an outcome
      local lines = audit_lines(audit)
      local attempts, outcomes = 0, 0
      for _, l in ipairs(lines) do
        if l.phase == "attempt" then attempts = attempts + 1 elseif l.phase == "outcome" then outcomes = outcomes + 1 end
      end
      assert.equal(after, attempts)
      assert.equal(attempts, outcomes)
    end)
  end

  it("kill -9 mid-apply leaves an attempt line for every action the simulator saw", function()
    local file, names, set = take(2)
    for _, n in ipairs(names) do sim.ctl(env, "set-fault", n, "delay", "0.4", "method=RpcLogoff") end
    local audit = TMP .. "/audit-kill9.jsonl"
    local pid, finish = spawn({ "logoff", "--hosts", file, "--state", "disc", "--apply", "-j", "1" },
      with(ADMIN, { TERMSRV_AUDIT = audit }))
    wait_for(function() return #logoffs(env, set) >= 2 end, "two logoffs")
    os.execute("kill -KILL " .. pid)
    finish()
    sleep(0.6)
    for _, n in ipairs(names) do sim.ctl(env, "clear-faults", n) end
    local attempts = 0
    for _, l in ipairs(audit_lines(audit)) do
      if l.phase == "attempt" then attempts = attempts + 1 end
    end
    local calls = logoffs(env, set)
    assert.is_true(#calls >= 2)
    assert.is_true(attempts >= #calls, attempts .. " attempts, " .. #calls .. " calls")
    -- the one in flight has no outcome: `termsrv audit --pending` names it
    local code, out, err = run({ "audit", "--pending", "--audit", audit }, {})
    assert.equal(1, code, out .. err)
    assert.matches("attempted without a recorded outcome", err)
    assert.matches("TS%d+ +%d+ +CORP\\[%w_]+ +logoff +attempt", out)
  end)

  it("refuses inputs that could hit the wrong session (exit 64), before acting", function()
    local file, names, set = take(1)
    local host = names[1] .. "=127.0.0.1:" .. env.hosts[next_host].port
    for _, args in ipairs{
      { "reset", host, "4294967298" }, { "reset", host, "0x2" }, { "reset", host, "2e0" },
      { "reset", host, "--id", "4294967298" }, { "logoff", "--hosts", file, "--state", "disc", "--timeout", "1e400" },
      { "logoff", "--hosts", file, "--state", "disc", "--timeout", "1e-9" },
      { "logoff", "--hosts", file, "--state", "disc", "--port", "70000" },
      { "logoff", "--hosts", file, "--state", "disc", "-j", "100000" },
    } do
      local code, out, err = run(args, with(ADMIN, { TERMSRV_AUDIT = TMP .. "/inputs.jsonl" }))
      assert.equal(64, code, table.concat(args, " ") .. ": " .. out .. err)
    end
    assert.same({}, logoffs(env, set))
    local termsrv = require "termsrv"
    local conn = assert(termsrv.connect{ host = "127.0.0.1", port = env.hosts[next_host].port, name = names[1],
      user = env.domain .. "\\" .. env.user, password = env.password })
    for _, id in ipairs{ 2^53, math.tointeger(2^32 + 2), -1, 1.5 } do
      assert.has_error(function() conn:session(id) end)
      assert.has_error(function() conn:reset(id) end)
    end
    conn:close()
  end)

  it("a host ended at its deadline mid-apply still reports and audits what it did", function()
    local file, names, set = take(1)
    sim.ctl(env, "set-fault", names[1], "delay", "1", "method=RpcLogoff")
    local audit = TMP .. "/audit-deadline.jsonl"
    local code, out, err = run({ "logoff", "--hosts", file, "--state", "disc", "--apply", "--host-timeout", "2.5" },
      with(ADMIN, { TERMSRV_AUDIT = audit }))
    sleep(1.2)
    sim.ctl(env, "clear-faults", names[1])
    assert.equal(2, code, out .. err)
    assert.matches("timeout", err)
    local done = #logoffs(env, set)
    assert.is_true(done >= 1 and done < 4, done .. " logoffs")
    -- not "nothing to do": the rows of the logoffs made before the deadline
    assert.not_matches("nothing to do", out)
    local ok_rows = 0
    for _ in out:gmatch("logoff +ok") do ok_rows = ok_rows + 1 end
    assert.is_true(ok_rows >= 1, out)
    -- one host runs in this process: its deadline stops the runner as a
    -- signal would, so every attempt line is a logoff the host saw
    local attempts = 0
    for _, l in ipairs(audit_lines(audit)) do if l.phase == "attempt" then attempts = attempts + 1 end end
    assert.equal(done, attempts)
  end)

  it("a logoff whose answer is lost is resolved by looking: the session is gone, so it is ok", function()
    local file, names, set = take(1)
    sim.ctl(env, "set-fault", names[1], "bad_signature", "method=RpcLogoff")
    local audit = TMP .. "/audit-lost.jsonl"
    local code, out, err = run({ "logoff", "--hosts", file, "--user", "carol", "--apply" },
      with(ADMIN, { TERMSRV_AUDIT = audit }))
    sim.ctl(env, "clear-faults", names[1])
    assert.equal(0, code, out .. err)
    assert.matches("5  CORP\\carol +logoff +ok +disconnected +gone", out)
    assert.is_true(#logoffs(env, set) >= 1) -- the host did log carol off
    local lines = audit_lines(audit)
    assert.equal(2, #lines)
    assert.same({ "outcome", true, "gone" }, { lines[2].phase, lines[2].ok, lines[2].after })
  end)

  it("a logoff whose answer is lost and whose session cannot be re-read is audited as state unknown", function()
    local file, names, set = take(1)
    -- the logoff's pipe closes unanswered; every read after it closes too
    sim.ctl(env, "set-fault", names[1], "close", "method=RpcLogoff")
    sim.ctl(env, "set-fault", names[1], "close", "method=RpcWinStationQueryInformation", "after=RpcLogoff")
    local audit = TMP .. "/audit-unknown.jsonl"
    local code, out, err = run({ "logoff", "--hosts", file, "--user", "carol", "--apply", "--no-fallback" },
      with(ADMIN, { TERMSRV_AUDIT = audit }))
    sim.ctl(env, "clear-faults", names[1])
    assert.equal(2, code, out .. err)
    assert.matches("its state is unknown", out)
    assert.equal(1, #logoffs(env, set))
    local lines = audit_lines(audit)
    assert.equal(2, #lines)
    assert.same({ "outcome", "connection_lost" }, { lines[2].phase, lines[2].error })
    -- neither done nor not done: check by hand
    assert.matches('"phase":"outcome".*"ok":null', select(2, slurp(audit):match("^([^\n]*)\n([^\n]*)")))
    assert.matches("state is unknown", lines[2].error_message)
    -- and `termsrv audit --pending` lists it among the actions to check by hand
    local pcode, pout = run({ "audit", "--pending", "--audit", audit }, {})
    assert.equal(1, pcode)
    assert.matches("CORP\\carol +logoff +outcome +unknown +connection_lost", pout)
  end)

  it("--host-timeout holds with -j 1 and for one host", function()
    local file, names = take(1)
    sim.ctl(env, "set-fault", names[1], "hang", "method=RpcGetAllSessions")
    local t0 = os.time()
    local code, out, err = run({ "sessions", "--hosts", file, "--host-timeout", "2", "--timeout", "60" }, ADMIN)
    sim.ctl(env, "clear-faults", names[1])
    assert.equal(2, code, out .. err)
    assert.matches("timeout", err)
    assert.is_true(os.time() - t0 < 10)
  end)

  it("a user who reconnected between plan and apply is skipped, by the CLI and by the library", function()
    local _, names = take(1)
    local name = names[1]
    local h = env.hosts[next_host]
    local termsrv = require "termsrv"
    local plan = require "termsrv.plan"
    local conn = assert(termsrv.connect{ host = "127.0.0.1", port = h.port, name = name,
      user = env.domain .. "\\" .. env.user, password = env.password })
    local p = assert(plan.make({ conn }, { rules = { { select = { state = "disc" }, action = "logoff" } } }))
    assert.equal(4, #p)
    -- alice (session 3) comes back and types
    sim.ctl(env, "set-session", name, "3", dkjson.encode{ state = "Active", last_input = "-5s", name = "rdp-tcp#70" })
    local res = p:apply{}
    local by_id = {}
    for _, r in ipairs(res) do by_id[r.id] = r end
    assert.equal("skipped", by_id[3].status)
    assert.truthy(tostring(by_id[3].note):find("active", 1, true), tostring(by_id[3].note))
    assert.equal("ok", by_id[4].status)
    -- the library verb given the stale record refuses too
    local rec = { id = 3, user = "alice", state = "disconnected", host = name }
    local r, err = conn:logoff(rec)
    assert.is_nil(r)
    assert.equal("session_changed", err.code)
    conn:close()
    assert.equal("alice", (function()
      for _, s in ipairs(sim.state(env, name).sessions) do if s.id == 3 then return s.user end end
    end)())
  end)

  it("client rules judge disconnected sessions: exclude_clients protects them, --from-client finds them", function()
    local _, names = take(1)
    local name = names[1]
    local h = env.hosts[next_host]
    sim.ctl(env, "set-session", name, "8", dkjson.encode{ client_name = "BACKUP01", client_address = "10.9.9.9" })
    sim.ctl(env, "set-session", name, "3", dkjson.encode{ client_name = "PC-ALICE", client_address = "10.1.1.3" })
    local termsrv = require "termsrv"
    local plan = require "termsrv.plan"
    local conn = assert(termsrv.connect{ host = "127.0.0.1", port = h.port, name = name,
      user = env.domain .. "\\" .. env.user, password = env.password })
    local p = assert(plan.make({ conn }, { rules = { { select = { state = "disc", exclude_clients = "BACKUP01" },
                                                       action = "logoff" } } }))
    for _, st in ipairs(p.steps) do assert.not_equal(8, st.id) end
    local p2 = assert(plan.make({ conn }, { rules = { { select = { client = "PC-ALICE" }, action = "logoff" } } }))
    assert.equal(1, #p2)
    assert.equal(3, p2.steps[1].id)
    conn:close()
  end)

  it("explicit ids go through the executor: audited write-ahead, a missing id is an error", function()
    local _, names = take(1)
    local h = env.hosts[next_host]
    local audit = TMP .. "/audit-ids.jsonl"
    local code, out, err = run({ "logoff", names[1] .. "=127.0.0.1:" .. h.port, "4", "99" },
      with(ADMIN, { TERMSRV_AUDIT = audit }))
    assert.equal(1, code, out .. err)
    assert.truthy((out .. err):find("99", 1, true))
    local lines = audit_lines(audit)
    assert.equal(2, #lines)
    assert.equal("attempt", lines[1].phase)
    assert.is_nil(lines[1].ok)
    assert.truthy(slurp(audit):find('"ok":null', 1, true))
    assert.equal("outcome", lines[2].phase)
    assert.equal(lines[1].attempt, lines[2].attempt)
    assert.equal(true, lines[2].ok)
    assert.equal("bob", lines[1].session.user)
  end)
end)
