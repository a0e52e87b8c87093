-- Nothing is done that is not audited first, on every path that changes
-- state: each acting command of bin/termsrv (explicit ids, selectors,
-- free-slots, a policy, kill by pid and by filter, tscon, shutdown) run
-- against the simulator through the real smbd with an audit log that cannot
-- be trusted or written -- a symlink to a file, a dangling symlink, a file
-- other users may write, one of another owner, a directory, a full disk.
-- Each must exit 2 naming the audit log, leave a symlink's target alone,
-- and make no state-changing call (the simulator's call log is the witness).
-- Also the paths that are not session rules (kill, shutdown) under a
-- signal and a host that stops answering mid-run: the same runner, the
-- same write-ahead audit as a policy's (spec/acting_spec.lua has those).

local sim = require "support.sim"
local support = require "support.cli"

local BIN, ADMIN = support.BIN, support.ADMIN
local q, slurp, spit, with = support.q, support.slurp, support.spit, support.with

local TMP = support.scratch()
local ENV = { "TZ=UTC", "HOME=" .. TMP .. "/home" }
local run = support.runner{ unset = support.TERMSRV_VARS, set = ENV }
local spawn = support.spawner{ unset = support.TERMSRV_VARS, set = ENV }
local dkjson = require "dkjson"

local function phases(path)
  local n = { attempt = 0, outcome = 0 }
  for l in (slurp(path) or ""):gmatch("[^\n]+") do
    local e = assert(dkjson.decode(l))
    n[e.phase] = n[e.phase] + 1
    if e.phase == "outcome" then n.failed = (n.failed or 0) + (e.ok == true and 0 or 1) end
  end
  return n
end

-- the calls that change a session or the host
local CHANGES = { RpcLogoff = true, RpcDisconnect = true, RpcConnect = true, RpcWinStationReset = true,
  RpcWinStationDisconnect = true, RpcWinStationConnect = true, RpcWinStationTerminateProcess = true,
  RpcWinStationShutdownSystem = true }

local POLICY = TMP .. "/nightly.lua"

-- every acting command, each on a host of its own (TS01..TS09 of full.lua)
local COMMANDS = {
  { "reset", "3" },
  { "logoff", "--user", "alice", "--apply" },
  { "disconnect", "2" },
  { "kill", "4242" },
  { "kill", "--name", "*", "--session", "2", "--apply" },
  { "connect", "3", "2" },
  { "shutdown", "--reboot", "--yes" },
  { "free-slots", "1", "--apply" },
  { "clean", "--policy", POLICY, "--apply" },
}

-- How each bad audit path is made; `shell` runs the command under a shell
-- prefix instead (the full disk).
local FAULTS = {
  { name = "a symlink to a file", make = function(path)
      spit(TMP .. "/passwd-copy", "root:x:0:0:root:/root:/bin/bash\n")
      os.execute("ln -sfn " .. q(TMP .. "/passwd-copy") .. " " .. q(path))
    end, check = function()
      assert.equal("root:x:0:0:root:/root:/bin/bash\n", slurp(TMP .. "/passwd-copy"))
    end },
  { name = "a dangling symlink", make = function(path)
      os.remove(TMP .. "/nowhere")
      os.execute("ln -sfn " .. q(TMP .. "/nowhere") .. " " .. q(path))
    end, check = function() assert.is_nil(slurp(TMP .. "/nowhere")) end },
  { name = "a file other users may write", make = function(path)
      spit(path, "")
      os.execute("chmod 666 " .. q(path))
    end },
  { name = "a file of another owner", make = function(path)
      spit(path, "")
      os.execute("chmod 600 " .. q(path) .. " && chown nobody " .. q(path))
    end },
  { name = "a directory", make = function(path) os.execute("mkdir -p " .. q(path)) end },
  { name = "a full disk", make = function(path)
      spit(path, string.rep("x", 1023) .. "\n")
      os.execute("chmod 600 " .. q(path))
    end, shell = "trap '' XFSZ; ulimit -f 1;" },
}

describe("every acting command with an audit log it cannot trust or write", function()
  local env
  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/full.lua" }
    spit(POLICY, 'name = "nightly"\nrules = { { name = "stale", select = { state = "disconnected" }, '
      .. 'action = "logoff" } }\n')
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  local function changes(name)
    return #sim.calls(env, function(r) return r.event == "call" and CHANGES[r.method] and r.host == name end)
  end

  -- the command line of `cmd` on host `h`: the host first after the
  -- command, except free-slots' count
  local function argv(cmd, h)
    local args = { cmd[1] }
    local at = cmd[1] == "free-slots" and 3 or 2
    for j = 2, #cmd do
      if j == at then args[#args + 1] = h.name .. "=127.0.0.1:" .. h.port end
      args[#args + 1] = cmd[j]
    end
    if #args == #cmd then args[#args + 1] = h.name .. "=127.0.0.1:" .. h.port end
    return args
  end

  it("with a sound audit log, each command does change its host (so the cases below can fail)", function()
    for i, cmd in ipairs(COMMANDS) do
      local h = env.hosts[#COMMANDS + i]
      local path = string.format("%s/audit-good-%d.jsonl", TMP, i)
      local code, out, err = run(argv(cmd, h), with(ADMIN, { TERMSRV_AUDIT = path }))
      local what = table.concat(argv(cmd, h), " ")
      assert.is_true(code == 0 or code == 1 or code == 2, what .. "\n" .. out .. err)
      assert.is_true(changes(h.name) >= 1, what .. ": nothing changed\n" .. out .. err)
      assert.matches('"phase":"attempt"', slurp(path) or "", 1, true)
    end
  end)

  local function kills(name)
    return #sim.calls(env, function(r)
      return r.event == "call" and r.method == "RpcWinStationTerminateProcess" and r.host == name
    end)
  end

  it("kill --apply stops at SIGTERM: no process is ended after it but the one in flight, exit 143", function()
    local h = env.hosts[19]
    sim.ctl(env, "set-fault", h.name, "delay", "0.5", "method=RpcWinStationTerminateProcess")
    local path = TMP .. "/audit-kill-term.jsonl"
    local pid, finish = spawn({ "kill", h.name .. "=127.0.0.1:" .. h.port, "--name", "*", "--session", "2",
                                "--apply" }, with(ADMIN, { TERMSRV_AUDIT = path }))
    for _ = 1, 200 do
      if kills(h.name) >= 1 then break end
      os.execute("sleep 0.05")
    end
    local before = kills(h.name)
    os.execute("kill -TERM " .. pid)
    local code, out, err = finish()
    sim.ctl(env, "clear-faults", h.name)
    local after = kills(h.name)
    assert.equal(143, code, out .. err)
    assert.is_true(before >= 1 and after - before <= 1, before .. " before, " .. after .. " after")
    assert.matches("stopped by SIGTERM", err, 1, true)
    -- session 2 runs more processes than were ended
    assert.matches("skipped", out, 1, true)
    local n = phases(path)
    assert.same({ after, after }, { n.attempt, n.outcome })
  end)

  it("message stops at SIGTERM too (it runs as a plan): no box goes out after it but the one in flight", function()
    local h = env.hosts[21]
    local function boxes()
      return #sim.calls(env, function(r)
        return r.event == "call" and r.host == h.name and r.method == "RpcShowMessageBox"
      end)
    end
    sim.ctl(env, "set-fault", h.name, "delay", "0.5", "method=RpcShowMessageBox")
    local pid, finish = spawn({ "message", h.name .. "=127.0.0.1:" .. h.port, "--all-users", "--text", "hi" },
                              ADMIN)
    for _ = 1, 200 do
      if boxes() >= 1 then break end
      os.execute("sleep 0.05")
    end
    local before = boxes()
    os.execute("kill -TERM " .. pid)
    local code, out, err = finish()
    sim.ctl(env, "clear-faults", h.name)
    local after = boxes()
    assert.equal(143, code, out .. err)
    assert.is_true(before >= 1 and after - before <= 1 and after < 3, before .. " before, " .. after .. " after")
    assert.matches("stopped by SIGTERM", err, 1, true)
    assert.matches("skipped", out, 1, true) -- three active users; not all got the box
    assert.not_matches("no user", out, 1, true) -- a session nobody is logged on to is not picked
  end)

  it("a host that stops answering mid-kill: each call ends at its timeout, and is audited", function()
    local h = env.hosts[20]
    sim.ctl(env, "set-fault", h.name, "hang", "method=RpcWinStationTerminateProcess")
    local path = TMP .. "/audit-kill-hang.jsonl"
    local t0 = os.time()
    local code, out, err = run({ "kill", h.name .. "=127.0.0.1:" .. h.port, "--name", "explorer.exe",
                                 "--session", "2", "--apply", "--timeout", "2" }, with(ADMIN, { TERMSRV_AUDIT = path }))
    sim.ctl(env, "clear-faults", h.name)
    assert.equal(2, code, out .. err)
    assert.matches("timeout", out .. err)
    assert.is_true(os.time() - t0 < 10)
    local n = phases(path)
    assert.equal(kills(h.name), n.attempt)
    assert.same({ n.attempt, n.attempt }, { n.outcome, n.failed })
  end)

  for f, fault in ipairs(FAULTS) do
    it("acts on nobody: " .. fault.name, function()
      for i, cmd in ipairs(COMMANDS) do
        local h = env.hosts[i]
        local args = argv(cmd, h)
        local path = string.format("%s/audit-%d-%d.jsonl", TMP, f, i)
        fault.make(path)
        local vars = with(ADMIN, { TERMSRV_AUDIT = path })
        local code, out
        if fault.shell then
          local parts = {}
          for k, v in pairs(vars) do parts[#parts + 1] = q(k .. "=" .. v) end
          for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
          local p = io.popen(fault.shell .. " env TZ=UTC " .. table.concat(parts, " ", 1, #parts - #args)
            .. " " .. q(BIN) .. " " .. table.concat(parts, " ", #parts - #args + 1) .. " </dev/null 2>&1; echo rc=$?")
          out = p:read("a")
          p:close()
          code = tonumber(out:match("rc=(%d+)%s*$"))
        else
          local o, e
          code, o, e = run(args, vars)
          out = o .. e
        end
        local what = table.concat(args, " ")
        assert.equal(2, code, what .. "\n" .. out)
        assert.matches("audit", out, 1, true)
        assert.equal(0, changes(h.name), what .. ": the host was changed\n" .. out)
        if fault.check then fault.check() end
      end
    end)
  end
end)
