-- Streaming, complete output (issue #12): JSON Lines and CSV leave as each
-- host finishes, flushed, so a consumer reading a pipe sees the fast hosts
-- while a slow one is still answering; and every host gets a status record,
-- failed ones included, so "no sessions" differs from "could not ask".
local sim = require "support.sim"
local support = require "support.cli"
local proc = require "termsrv.proc"
local dkjson = require "dkjson"

local ADMIN = support.ADMIN
local TMP = support.scratch()
local q = support.q

describe("streaming output", function()
  local env, farm

  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/full.lua" }
    -- three hosts, the second one slow, and one that nothing listens on
    local lines = {}
    for i = 1, 3 do lines[#lines + 1] = "TS0" .. i .. "=127.0.0.1:" .. env.hosts[i].port end
    lines[#lines + 1] = "DOWN=127.0.0.1:1"
    farm = TMP .. "/farm.txt"
    support.spit(farm, table.concat(lines, "\n") .. "\n")
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  local function command(args)
    local parts = { "env", "-u", "TERMSRV_AUDIT", "HOME=" .. TMP }
    for k, v in pairs(ADMIN) do parts[#parts + 1] = k .. "=" .. v end
    parts[#parts + 1] = support.BIN
    for _, a in ipairs(args) do parts[#parts + 1] = a end
    for i, p in ipairs(parts) do parts[i] = q(p) end
    return table.concat(parts, " ") .. " 2>/dev/null </dev/null"
  end

  it("the first host's records come out while the slowest host is still answering", function()
    sim.ctl(env, "set-fault", env.hosts[2].name, "delay", "3", "method=RpcGetAllSessions")
    local t0 = proc.clock()
    local p = assert(io.popen(command{ "sessions", "--hosts", farm, "-j", "8", "--format", "json" }))
    local first = p:read("l")
    local t_first = proc.clock() - t0
    local rest = p:read("a")
    local t_all = proc.clock() - t0
    p:close()
    sim.ctl(env, "clear-faults", env.hosts[2].name)
    assert.truthy(first and dkjson.decode(first), first)
    assert.truthy(t_all >= 3, "the slow host held the run for its 3 s")
    assert.truthy(t_first < 2.5, string.format("first line after %.2fs of %.2fs", t_first, t_all))
    -- the slow host's records are the last ones
    local last_records
    for l in rest:gmatch("[^\n]+") do
      local r = dkjson.decode(l)
      if r.type ~= "host" then last_records = r.host end
    end
    assert.equal("TS02", last_records)
  end)

  it("every host gets a status record in JSON Lines and CSV, the failed one with its error", function()
    local p = assert(io.popen(command{ "users", "--hosts", farm, "-j", "2", "--format", "json" }))
    local out = p:read("a")
    p:close()
    local status = {}
    for l in out:gmatch("[^\n]+") do
      local r = dkjson.decode(l)
      if r.type == "host" then status[r.host] = r end
    end
    for i = 1, 3 do
      local s = assert(status["TS0" .. i], "TS0" .. i)
      assert.is_true(s.ok)
      assert.equal(7, s.records) -- foo, alice, bob, carol, dave, jdoe, svc_backup
    end
    local down = assert(status.DOWN)
    assert.is_false(down.ok)
    assert.equal("connection_refused", down.error)
    assert.matches("connection refused", down.message)
    assert.truthy(down.hint and #down.hint > 0)
    assert.equal(0, down.records)
    assert.equal("number", type(down.duration))

    p = assert(io.popen(command{ "sessions", "--hosts", farm, "--format", "csv" }))
    out = p:read("a")
    p:close()
    local l = {}
    for line in out:gmatch("([^\r\n]*)\r\n") do l[#l + 1] = line end
    assert.matches("^type,host,id,", l[1])
    local n = 0
    for _, line in ipairs(l) do if line:match("^host,") then n = n + 1 end end
    assert.equal(4, n)
    local down_row
    for _, line in ipairs(l) do if line:match("^host,DOWN,") then down_row = line end end
    assert.matches("^host,DOWN,.*,false,connection_refused,", down_row)
  end)
end)
