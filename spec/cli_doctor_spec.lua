-- termsrv doctor: walks name resolution, TCP, SMB logon, IPC$, pipes, the
-- query right and the (inferred) reset right, and at the first failure says
-- what is wrong and how to fix it. Against the simulator's Windows profiles.

local sim = require "support.sim"
local support = require "support.cli"
local doctor = require "termsrv.doctor"
local dkjson = require "dkjson"

local ADMIN, NONADMIN = support.ADMIN, support.NONADMIN
local with = support.with

local run = support.runner{ unset = { "TERMSRV_USER", "TERMSRV_PASSWORD", "TERMSRV_NTHASH" }, set = { "TZ=UTC" } }

describe("termsrv doctor", function()
  local env, spec = nil, {}

  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/profiles.lua" }
    for _, h in ipairs(env.hosts) do spec[h.name] = { arg = h.name .. "=127.0.0.1:" .. h.port, port = h.port } end
  end)
  teardown(function() sim.stop(env) end)

  it("all steps pass for an administrator on a 2019 host (exit 0)", function()
    local code, out, err = run({ "doctor", spec.TS19.arg }, ADMIN)
    assert.equal("", err)
    assert.equal(0, code)
    local p = spec.TS19.port
    assert.equal(table.concat({
      "TS19 (127.0.0.1:" .. p .. ") as CORP\\ops",
      "  ✓ name resolution     address given",
      "  ✓ TCP port " .. p .. "      port " .. p .. " answers",
      "  ✓ SMB authentication  logged on as CORP\\ops",
      "  ✓ IPC$ share          connected",
      "  ✓ RPC pipes           LSM_API_service, TermSrv_API_service, Ctx_WinStation_API_service bind",
      "  ✓ query right         5 sessions visible, 2 with a user",
      "  ✓ reset right         inferred, not tested: the account sees other users' sessions "
        .. "(administrator-level visibility)",
      "  TS19: ready",
    }, "\n") .. "\n", out)
  end)

  it("a non-admin account: the reset right fails, by inference, with the fix (exit 2)", function()
    local code, out = run({ "doctor", spec.TS19.arg, "--ascii" }, NONADMIN)
    assert.equal(2, code)
    assert.matches("\n  %+ query right +1 session visible, 1 with a user\n", out)
    assert.matches("\n  x reset right +inferred: the account sees only its own session %(1%), not session 0 "
      .. "%-%- it is not an administrator\n", out)
    assert.matches("\n      fix: CORP\\jdoe is not an administrator on TS19: reset and logoff of other users' "
      .. "sessions will be refused%. Add it to the host's local Administrators group", out)
    assert.matches("TS19: FAILED at reset right\n$", out)
  end)

  it("a wrong password: SMB authentication fails, the rest is not checked", function()
    local code, out = run({ "doctor", spec.TS19.arg }, with(ADMIN, { TERMSRV_PASSWORD = "nope" }))
    assert.equal(2, code)
    assert.matches("  ✓ TCP port %d+ +port %d+ answers\n  ✗ SMB authentication  logon refused for CORP\\ops\n"
      .. "      fix: wrong password or unknown account", out)
    assert.matches("  %- IPC%$ share +not checked\n  %- RPC pipes +not checked\n", out)
  end)

  it("nothing listening, or an unknown name: says firewall / DNS, and that 445 is needed, not 3389", function()
    local code, out = run({ "doctor", "DOWN=127.0.0.1:1", "nonexistent.invalid" }, ADMIN)
    assert.equal(2, code)
    assert.matches("DOWN %(127%.0%.0%.1:1%) as CORP\\ops\n  ✓ name resolution +address given\n"
      .. "  ✗ TCP port 1 +connect to 127%.0%.0%.1 port 1: connection refused\n"
      .. "      fix: nothing accepts SMB on port 1: start the Server service %(LanmanServer%) and allow "
      .. "'File and Printer Sharing %(SMB%-In%)' in Windows Firewall %-%- termsrv needs SMB %(445%), not RDP %(3389%)",
      out)
    assert.matches("nonexistent%.invalid %(nonexistent%.invalid:445%) as CORP\\ops\n  ✗ name resolution", out)
    assert.matches("fix: check the name in DNS", out)
  end)

  it("RDP disabled and old hosts: warnings that say what is missing, still exit 0", function()
    local code, out = run({ "doctor", spec.NORDP.arg, spec.W2K3.arg }, ADMIN)
    assert.equal(0, code)
    assert.matches("  ! RPC pipes +LSM_API_service bind\n      note: no TermSrv_API_service: Remote Desktop is "
      .. "disabled", out)
    assert.matches("note: no Ctx_WinStation_API_service: reset, processes, kill, shutdown", out)
    assert.matches("  ! RPC pipes +Ctx_WinStation_API_service bind\n      note: no LSM_API_service %(an old host%)",
      out)
    assert.matches("NORDP: ready\n", out)
    assert.matches("W2K3: ready\n$", out)
  end)

  it("RPC refused (bind NAK): points at AllowRemoteRPC", function()
    sim.ctl(env, "set-fault", "TS08", "bind_nak")
    local code, out = run({ "doctor", spec.TS08.arg }, ADMIN)
    sim.ctl(env, "clear-faults", "TS08")
    assert.equal(2, code)
    assert.matches("  ✗ RPC pipes +LSM_API_service: [^\n]*bind refused\n      fix: [^\n]*AllowRemoteRPC = 1", out)
    assert.matches("TS08: FAILED at RPC pipes\n$", out)
  end)

  it("no query right: names WINSTATION_QUERY and the fix", function()
    sim.ctl(env, "set-fault", "TS08", "fault", "5")
    local code, out = run({ "doctor", spec.TS08.arg }, ADMIN)
    sim.ctl(env, "clear-faults", "TS08")
    assert.equal(2, code)
    assert.matches("  ✗ query right +[^\n]*access denied[^\n]*\n      fix: the account lacks the query right "
      .. "%(WINSTATION_QUERY%)", out)
  end)

  it("several hosts: exit 1 when some fail; JSON rows per step", function()
    local code, out = run({ "doctor", spec.TS19.arg, "DOWN=127.0.0.1:1", "--format", "json" }, ADMIN)
    assert.equal(1, code)
    local rows = {}
    for line in out:gmatch("[^\n]+") do rows[#rows + 1] = assert(dkjson.decode(line)) end
    assert.equal(14, #rows)
    assert.same({ "TS19", "resolve", "ok" }, { rows[1].host, rows[1].step, rows[1].status })
    assert.same({ "DOWN", "tcp", "fail" }, { rows[9].host, rows[9].step, rows[9].status })
    assert.matches("^nothing accepts SMB", rows[9].fix)
    assert.equal("skip", rows[14].status)
    assert.matches('^{"host":"TS19","step":"resolve","label":"name resolution","status":"ok",'
      .. '"detail":"address given","fix":null}\n', out)
  end)

  it("doctor.run works from Lua too", function()
    local checks = doctor.run{ host = "127.0.0.1:" .. spec.TS19.port, user = "CORP\\jdoe",
                               password = "Jdoe-Passw0rd", name = "ts19" }
    assert.is_false(doctor.passed(checks))
    assert.equal("reset", checks[7].step)
    assert.equal("fail", checks[7].status)
    assert.equal("ts19", checks[1].host)
    -- at the REPL the checks print as the command line shows them
    assert.equal(doctor.format(checks):gsub("\n$", ""), tostring(checks))
    assert.matches("ts19: FAILED at reset right", tostring(checks), 1, true)
    local buf = { text = "" }
    function buf.write(b, ...) b.text = b.text .. table.concat({ ... }) end
    require("termsrv.help").show(checks, buf)
    assert.matches("Checks (termsrv.doctor)", buf.text, 1, true)
  end)
end)
