-- A broken or hostile Windows host, end to end: every fault mode the
-- simulator can inject (sim/README.md, "Fault modes"), per host and per
-- method. Each must give `nil, err` with the right code, within the
-- configured timeout, and the handle must work again for the next call
-- once the host behaves (the core reopens a broken pipe). Leaks are checked
-- by running this spec under `make check` (ASan and valgrind).
local sim = require "support.sim"
local termsrv = require "termsrv"
local monotime = require("system").monotime

local TIMEOUT = 2      -- seconds per SMB exchange, as given to connect
local MARGIN = 1       -- what a failure may take beyond it (measured: under 0.1 s)

local env, port

local function connect(host)
  return assert(termsrv.connect{ host = "127.0.0.1", port = port[host], user = env.user,
    domain = env.domain, password = env.password, timeout = TIMEOUT, name = host })
end

local function fault(host, ...)
  sim.ctl(env, "set-fault", host, ...)
end

local function clear(host)
  sim.ctl(env, "clear-faults", host)
end

-- Runs fn; checks that it failed cleanly with `code` in time (`slow`: it
-- had to wait for the timeout, so it took at least that long). Returns the
-- error, the third result (the result record of an action) and the seconds.
local function fails(code, fn, slow)
  local t0 = monotime()
  local ok, err, extra = fn()
  local secs = monotime() - t0
  assert.is_nil(ok)
  assert.is_table(err, "an error object")
  assert.equals(code, err.code, tostring(err))
  assert.equals("termsrv.Error", getmetatable(err).__name)
  assert.is_string(err.message)
  assert.is_true(secs < TIMEOUT + MARGIN, ("took %.2f s"):format(secs))
  if slow then assert.is_true(secs >= TIMEOUT - 0.1, ("took only %.2f s"):format(secs)) end
  return err, extra, secs
end

local function recovers(h, host)
  clear(host)
  local list, err = h:sessions{ times = false }
  assert(list, "the handle does not recover: " .. tostring(err))
  assert.is_true(#list > 0)
end

setup(function()
  env = sim.start{ config = "spec/fixtures/sim/faults.lua" }
  port = env.ports
end)
teardown(function() sim.stop(env) end)

describe("a host that never answers (hang)", function()
  it("times out after the configured timeout, and the handle works afterwards", function()
    local h <close> = connect("TS01")
    fault("TS01", "hang")
    fails("timeout", function() return h:sessions() end, true)
    recovers(h, "TS01")
    -- smbd answers the tree disconnect only once the timed-out read is
    -- over, which it never is here: closing must not wait for it (the
    -- connection is dropped, not closed politely)
    local t0 = monotime()
    h:close()
    assert.is_true(monotime() - t0 < 0.5, ("closing took %.2f s"):format(monotime() - t0))
  end)

  it("per method: only that call times out; the others on the same handle still work", function()
    local h <close> = connect("TS01")
    fault("TS01", "hang", "method=RpcWinStationGetAllProcesses")
    fails("timeout", function() return h:processes() end, true)
    assert(h:sessions{ times = false })
    assert(h:session(2))            -- the legacy pipe, reopened after the timeout
    clear("TS01")
    assert.is_true(#assert(h:processes()) > 0)
  end)
end)

describe("a host that closes the pipe mid-call (close)", function()
  it("gives connection_lost at once", function()
    local h <close> = connect("TS01")
    fault("TS01", "close")
    local _, _, secs = fails("connection_lost", function() return h:sessions() end)
    assert.is_true(secs < 0.5)
    recovers(h, "TS01")
  end)

  it("during an action: the action fails, nothing is claimed done", function()
    local h <close> = connect("TS01")
    fault("TS01", "close", "method=RpcWinStationReset")
    local _, res = fails("connection_lost", function() return h:reset(4) end)
    assert.is_false(res.ok)
    assert.equals("connection_lost", res.err.code)
    recovers(h, "TS01")
  end)
end)

describe("a truncated PDU (truncated)", function()
  -- Half a fragment arrives with its frag_length intact, then nothing, on a
  -- pipe that stays open: a byte stream cannot tell the missing half from a
  -- slow one, so the read waits for it until the timeout. That is `timeout`;
  -- connection_lost would need the host to close the pipe as well.
  it("times out waiting for the rest, and the handle works afterwards", function()
    local h <close> = connect("TS01")
    fault("TS01", "truncated")
    fails("timeout", function() return h:sessions() end, true)
    recovers(h, "TS01")
  end)
end)

describe("a wrong frag_length (bad_frag_length)", function()
  it("smaller than the PDU: malformed_response at once", function()
    local h <close> = connect("TS01")
    fault("TS01", "bad_frag_length", "smaller")
    fails("malformed_response", function() return h:sessions() end)
    recovers(h, "TS01")
  end)

  -- 16 bytes promised that never come: like a truncated PDU, the read can
  -- only end at the timeout.
  it("larger than the PDU: timeout, as for a truncated PDU", function()
    local h <close> = connect("TS01")
    fault("TS01", "bad_frag_length", "larger")
    fails("timeout", function() return h:sessions() end, true)
    recovers(h, "TS01")
  end)
end)

describe("absurd counts (absurd_count, 0x7FFFFFFF elements)", function()
  it("are refused before anything is allocated, in every listing and in the process list", function()
    local h <close> = connect("TS01")
    fault("TS01", "absurd_count")
    for _, method in ipairs{ "all_sessions", "enum", "legacy" } do
      fails("malformed_response", function() return h:sessions{ method = method, times = false } end)
    end
    fails("malformed_response", function() return h:processes() end)
    recovers(h, "TS01")
  end)
end)

describe("a response to another call (wrong_call_id)", function()
  it("is malformed_response", function()
    local h <close> = connect("TS01")
    fault("TS01", "wrong_call_id")
    fails("malformed_response", function() return h:sessions() end)
    recovers(h, "TS01")
  end)

  it("on a per-session call", function()
    local h <close> = connect("TS01")
    fault("TS01", "wrong_call_id", "method=RpcWinStationQueryInformation")
    fails("malformed_response", function() return h:session(3) end)
    recovers(h, "TS01")
  end)
end)

describe("a response whose signature does not verify (bad_signature)", function()
  it("is rejected with bad_signature", function()
    local h <close> = connect("TS01")
    fault("TS01", "bad_signature")
    local err = fails("bad_signature", function() return h:sessions() end)
    assert.matches("signature", err.message)
    recovers(h, "TS01")
  end)

  it("is rejected before it is parsed: a forged answer with absurd counts still says bad_signature", function()
    local h <close> = connect("TS01")
    fault("TS01", "absurd_count", "method=RpcGetAllSessions")
    fault("TS01", "bad_signature", "method=RpcGetAllSessions")
    fails("bad_signature", function() return h:sessions{ method = "all_sessions", times = false } end)
    recovers(h, "TS01")
  end)
end)

describe("a refused bind (bind_nak)", function()
  it("is bind_refused with the reason, known or not", function()
    local h <close> = connect("TS01")
    fault("TS01", "bind_nak", 2)
    local err = fails("bind_refused", function() return h:sessions() end)
    assert.equals(2, err.status)
    assert.equals("local_limit_exceeded", err.status_name)
    -- a reason no table lists is still a refused bind
    fault("TS01", "bind_nak", 77)
    err = fails("bind_refused", function() return h:processes() end)
    assert.equals(77, err.status)
    recovers(h, "TS01")
  end)
end)

describe("faults", function()
  it("give the fault's own code", function()
    local h <close> = connect("TS01")
    local cases = {
      { 0x1C010002, "not_supported", "nca_s_op_rng_error" },
      { 0x6F7, "rpc_fault", "RPC_X_BAD_STUB_DATA" },
      { 0x1C00001A, "invalid_handle", "nca_s_fault_context_mismatch" },
      { 0x1C000011, "server_error", "nca_s_fault_remote_no_memory" },
      { 0x1C0000FF, "rpc_fault" },                     -- a status no table lists
    }
    for _, c in ipairs(cases) do
      fault("TS01", "fault", c[1], "method=RpcWinStationGetAllProcesses")
      local err = fails(c[2], function() return h:processes() end)
      assert.equals(c[1], err.status)
      assert.equals(c[3], err.status_name)
    end
    recovers(h, "TS01")
  end)

  it("access denied: access_denied once the binding has served a call", function()
    local h <close> = connect("TS01")
    assert(h:session(2))                      -- the legacy pipe has answered before
    fault("TS01", "fault", 5, "method=RpcWinStationGetAllProcesses")
    fails("access_denied", function() return h:processes() end)
    recovers(h, "TS01")
  end)

  it("the host's default fault status (0x1C000001) is an rpc_fault", function()
    local h <close> = connect("TS01")
    fault("TS01", "fault")
    local err = fails("rpc_fault", function() return h:sessions() end)
    assert.equals(0x1C000001, err.status)
    recovers(h, "TS01")
  end)

  it("on an action: the action fails with the fault's code", function()
    local h <close> = connect("TS01")
    fault("TS01", "fault", 0x1C00001A, "method=RpcLogoff")
    local _, res = fails("invalid_handle", function() return h:logoff(5) end)
    assert.is_false(res.ok)
    recovers(h, "TS01")
  end)
end)

describe("a slow host (delay)", function()
  it("under the timeout: the call succeeds, late", function()
    local h <close> = connect("TS01")
    fault("TS01", "delay", 1)
    local t0 = monotime()
    local list, err = h:sessions{ times = false }
    local secs = monotime() - t0
    assert(list, tostring(err))
    assert.is_true(secs >= 1 and secs < TIMEOUT, ("took %.2f s"):format(secs))
    clear("TS01")
  end)

  it("over the timeout: timeout, after the timeout and not after the delay", function()
    local h <close> = connect("TS01")
    fault("TS01", "delay", TIMEOUT + 2)
    fails("timeout", function() return h:sessions() end, true)
    recovers(h, "TS01")
  end)
end)

describe("hosts configured to misbehave from the start", function()
  it("each gives its code on the first call after connect", function()
    local expect = { HANG = "timeout", CLOSE = "connection_lost", NAK = "bind_refused",
                     SIG = "bad_signature", ABSURD = "malformed_response" }
    for host, code in pairs(expect) do
      local h <close> = connect(host)
      fails(code, function() return h:sessions{ times = false } end, code == "timeout")
    end
  end)
end)

describe("a handle that went through every fault", function()
  it("holds no more than one pipe per interface, and the host sees the others closed", function()
    local h <close> = connect("TS01")
    sim.clear_log(env)
    local modes = { { "close" }, { "bad_frag_length", "smaller" }, { "absurd_count" },
                    { "wrong_call_id" }, { "bad_signature" }, { "bind_nak" }, { "fault", 5 } }
    for round = 1, 2 do
      for _, m in ipairs(modes) do
        fault("TS01", table.unpack(m))
        assert.is_nil((h:sessions()), m[1] .. " round " .. round)
        assert.is_nil((h:processes()), m[1] .. " round " .. round)
        clear("TS01")
      end
    end
    fault("TS01", "hang", "method=RpcWinStationGetAllProcesses")  -- and one timeout
    assert.is_nil((h:processes()))
    clear("TS01")
    assert(h:sessions())
    assert(h:processes())
    local st = h:stats()
    assert.is_true(st.smb_opens - st.smb_closes <= 3,
      ("%d pipes opened, %d closed"):format(st.smb_opens, st.smb_closes))
    -- the host's view: every pipe it saw opened but one per interface was closed
    local opens = #sim.calls(env, { event = "open", host = "TS01" })
    local closes
    for _ = 1, 50 do    -- the simulator logs a close when it notices it
      closes = #sim.calls(env, { event = "close", host = "TS01" })
      if opens - closes <= 3 then break end
      require("system").sleep(0.05)
    end
    assert.is_true(opens - closes <= 3, ("host saw %d opens, %d closes"):format(opens, closes))
  end)
end)
