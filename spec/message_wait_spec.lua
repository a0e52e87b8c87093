-- A message wait lasts as long as asked (issue #15 item 4): the user may
-- answer after far longer than one SMB exchange may take. The simulator's
-- user answers 3 s after the box appears; the connection's timeout is 1 s.
local sim = require "support.sim"
local support = require "support.cli"
local termsrv = require "termsrv"
local proc = require "termsrv.proc"
local dkjson = require "dkjson"

local TMP = support.scratch()
local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP } }

describe("message --wait", function()
  local env, host, name

  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/full.lua" }
    name = env.hosts[1].name
    host = "TS01=127.0.0.1:" .. env.hosts[1].port
    -- 6 = IDYES
    sim.ctl(env, "set-session", name, 2, dkjson.encode{ message_delay = 3, message_response = 6 })
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  it("gets the answer the user gives after 3 s, on a connection whose exchanges time out at 1 s", function()
    local t0 = proc.clock()
    local code, out, err = run({ "message", host, "2", "--text", "backup at 22:00", "--buttons", "yesno",
                                 "--wait", "--time", "10", "--timeout", "1", "--format", "json" },
                               support.ADMIN)
    local took = proc.clock() - t0
    assert.equal(0, code, err)
    local row = assert(dkjson.decode(out:match("^[^\n]+")))
    assert.equal("yes", row.answer)
    assert.truthy(took >= 3, took)
  end)

  it("the library: h:message{wait = true} waits on a connection of its own; the handle stays usable", function()
    local h = assert(termsrv.connect{ host = "127.0.0.1", port = env.hosts[1].port, user = "CORP\\ops",
                                      password = support.ADMIN.TERMSRV_PASSWORD, timeout = 1 })
    local r = assert(h:message(2, "t", "x", { wait = true, timeout = 10, buttons = "yesno" }))
    assert.equal("yes", r.answer)
    assert(h:sessions())
    -- a box that does not wait returns at once on this handle
    r = assert(h:message(2, "t", "x", { wait = false }))
    assert.equal("async", r.answer)
    h:close()
  end)
end)
