-- The command line's two ways of running many hosts through termsrv.fleet:
-- one after another in this process (-j 1) and in parallel worker
-- processes (-j N). Both must give the same output, order and exit codes.

local sim = require "support.sim"
local support = require "support.cli"

local ADMIN = support.ADMIN
local slurp = support.slurp

local TMP = support.scratch()

local run = support.runner{ unset = { "TERMSRV_USER", "TERMSRV_PASSWORD", "TERMSRV_NTHASH", "TERMSRV_AUDIT" },
                            set = { "TZ=UTC", "HOME=" .. TMP } }

-- idle and server times and durations move between two runs; JSON Lines
-- and CSV stream hosts as they finish: the same lines, in any order
local function mask(text, streamed)
  text = text:gsub('"(server_time)":"[^"]*"', '"%1":#'):gsub('"(idle)":%d+', '"%1":#')
    :gsub('"(disconnected)":%d+', '"%1":#'):gsub("disconnected %w+ >=", "disconnected # >=")
    :gsub('"(last_input_time)":"[^"]*"', '"%1":#'):gsub('"(duration)":[%d.]+', '"%1":#')
  if not streamed then return text end
  local lines = {}
  for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
  table.sort(lines)
  return table.concat(lines, "\n")
end

describe("termsrv CLI on many hosts", function()
  local env, hosts_json

  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/cli.lua" }
    hosts_json = env.hosts_file
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  it("gives the same output sequentially and in parallel, hosts in the order given", function()
    for _, args in ipairs{
      { "users", "--format", "json" },
      { "sessions", "--all", "--client" },
      { "doctor", "--format", "csv" },
      { "logoff", "--state", "disc", "--min-disconnected", "8h", "--format", "json" },
      { "processes", "--name", "explorer.exe" },
    } do
      local a = { table.unpack(args) }
      a[#a + 1] = "--hosts"
      a[#a + 1] = hosts_json
      a[#a + 1] = "DOWN=127.0.0.1:1"
      local c1, o1, e1 = run(a, ADMIN)
      a[#a + 1] = "-j"
      a[#a + 1] = "4"
      local c4, o4, e4 = run(a, ADMIN)
      local what = table.concat(args, " ")
      assert.equal(1, c1, what) -- DOWN fails, the others work
      assert.equal(c1, c4, what)
      local streamed = table.concat(args, " "):find("--format", 1, true) ~= nil
      assert.equal(mask(o1, streamed), mask(o4, streamed), what)
      assert.equal(e1, e4, what)
      if not streamed then assert.truthy(o1:find("TS01", 1, true) < o1:find("TS02", 1, true), what) end
      if args[1] ~= "doctor" then assert.matches("^DOWN: connect: ", e1, what) end
    end
  end)

  it("applies in parallel: every worker acts and appends to the audit log", function()
    local audit = TMP .. "/audit.jsonl"
    local code, out, err = run({ "logoff", "--hosts", hosts_json, "-j", "2", "--user", "bob", "--apply",
                                 "--audit", audit }, ADMIN)
    assert.equal("", err)
    assert.equal(0, code)
    assert.matches("TS01   4  CORP\\bob .*\nTS02   3  CORP\\bob ", out)
    assert.matches("total: 2 hosts, 2 ok, 0 failed", out)
    local n, hosts = 0, {}
    for line in slurp(audit):gmatch("[^\n]+") do
      n = n + 1
      hosts[line:match('"host":"(%w+)"')] = true
    end
    assert.equal(4, n) -- an attempt and an outcome per action
    assert.same({ TS01 = true, TS02 = true }, hosts)
  end)

  it("a hung host is given up at --host-timeout; the others still report (exit 1)", function()
    sim.ctl(env, "set-fault", "TS02", "hang", "method=RpcGetAllSessions")
    local t0 = os.time()
    local code, out, err = run({ "sessions", "--hosts", hosts_json, "-j", "2", "--host-timeout", "1" }, ADMIN)
    sim.ctl(env, "clear-faults", "TS02")
    assert.equal(1, code)
    assert.truthy(os.time() - t0 <= 5)
    assert.matches("TS01  rdp%-tcp#42", out)
    assert.equal("TS02: fleet: no result within 1s; worker ended (hint: the host or the network is slow or hung; "
      .. "raise --host-timeout if it is only slow)\n", err)
  end)
end)
