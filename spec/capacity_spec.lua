-- Slot capacity (issue #12 item 4): what the host itself says about its
-- connection limit, the RDP listener's MaxInstanceCount (legacy
-- RpcWinStationQueryInformation, class WinStationCreateData, on the
-- listener's session id), through the real smbd to the simulator; and the
-- simulator enforcing the same limit on RDP logons.
local sim = require "support.sim"
local termsrv = require "termsrv"

local env

setup(function() env = sim.start{ config = "spec/fixtures/sim/capacity.lua" } end)
teardown(function() sim.stop(env) end)

local function connect(name, user, password)
  return assert(termsrv.connect{ host = "127.0.0.1", port = env.ports[name], name = name,
    user = user or env.user, domain = env.domain, password = password or env.password })
end

local function in_use(list)
  local n = 0
  for _, s in ipairs(list) do if s.kind == "user" and s.user then n = n + 1 end end
  return n
end

describe("host:capacity()", function()
  it("says 7 of 10: the listener's MaxInstanceCount, and where it came from", function()
    local h <close> = connect("CAP10")
    local cap = assert(h:capacity())
    assert.same({ limit = 10, unlimited = false, enabled = true, max_instance_count = 10, listener = 65536,
                  listener_name = "rdp-tcp", source = "listener" }, cap)
    assert.equals(7, in_use(assert(h:sessions())))
  end)

  it("takes the listener from a listing the caller already has (no second listing)", function()
    local h <close> = connect("CAP10")
    local list = assert(h:sessions{ all = true, times = false })
    sim.clear_log(env)
    local cap = assert(h:capacity{ sessions = list })
    assert.equals(10, cap.limit)
    assert.same({}, sim.calls(env, { host = "CAP10", method = "RpcGetAllSessions" }))
    assert.equals(10, assert(h:capacity{ listener = 65536 }).limit)
  end)

  it("says unlimited for MaxInstanceCount 0xFFFFFFFF, with no limit number", function()
    local h <close> = connect("UNLIM")
    local cap = assert(h:capacity())
    assert.is_true(cap.unlimited)
    assert.is_nil(cap.limit)
    assert.equals(0xFFFFFFFF, cap.max_instance_count)
  end)

  it("works on a legacy-only host (Windows Server 2003 profile)", function()
    local h <close> = connect("W2003")
    assert.equals(5, assert(h:capacity()).limit)
  end)

  it("says it does not know, and why, where Windows does not say", function()
    local cases = { DENIED = "access_denied", NOCLASS = "not_supported", RDPOFF = "rdp_disabled",
                    NOLSN = "no_listener" }
    for name, code in pairs(cases) do
      local h <close> = connect(name)
      local cap, err = h:capacity()
      assert.is_nil(cap, name)
      assert.equals(code, err.code, name .. ": " .. tostring(err))
      assert.equals(name, err.host)
    end
  end)

  it("a non-administrator sees no listener: unknown, not a guess", function()
    local h <close> = connect("CAP10", "jdoe", "Jdoe-Passw0rd")
    local cap, err = h:capacity()
    assert.is_nil(cap)
    assert.equals("no_listener", err.code)
    -- asked directly, the listener refuses the query
    local _, err2 = h:capacity{ listener = 65536 }
    assert.equals("access_denied", err2.code)
  end)
end)

describe("the simulator enforces the listener's limit", function()
  it("rdp-login succeeds up to MaxInstanceCount 8, then is refused", function()
    assert.is_true(sim.ctl(env, "rdp-login", "CAP8", "newuser1").ok)
    local refused = sim.ctl(env, "rdp-login", "CAP8", "newuser2")
    assert.is_false(refused.ok)
    assert.equals("The maximum number of connections has been exceeded", refused.error)
    local h <close> = connect("CAP8")
    assert.equals(8, in_use(assert(h:sessions{ times = false })))
    assert.equals(8, assert(h:capacity()).limit)
  end)
end)
