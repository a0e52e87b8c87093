-- A test world like Windows Server 2025 / Windows 11 24H2 (issue #14 item
-- 4): SMB signing required on every connection, and a host that requires
-- SMB encryption server-wide. Each profile runs the integration suite's
-- listing, reset and policy apply through the real smbd, and smbstatus
-- shows that the connection really was signed (and encrypted).
local sim = require "support.sim"
local support = require "support.cli"
local termsrv = require "termsrv"

local ADMIN = support.ADMIN
local TMP = support.scratch()
local run = support.runner{ unset = support.TERMSRV_VARS,
                            set = { "TZ=UTC", "HOME=" .. TMP, "TERMSRV_AUDIT=" .. TMP .. "/audit.jsonl" } }

describe("Windows Server 2025 profiles", function()
  local env

  setup(function() env = sim.start{ config = "spec/fixtures/sim/win2025.lua" } end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  -- smbstatus's line for our connection to the smbd of host `i`
  local function smbstatus(i)
    local p = assert(io.popen("smbstatus -s " .. support.q(env.dir .. "/g" .. (i - 1) .. "/smb.conf")
      .. " -b 2>/dev/null"))
    local text = p:read("a")
    p:close()
    return text:match("\n(%d+%s+ops%s[^\n]*)")
  end

  for i, case in ipairs{ { name = "TS25", encrypted = false }, { name = "TS25E", encrypted = true } } do
    describe(case.name .. (case.encrypted and " (encryption required)" or " (signing required)"), function()
      local target
      before_each(function()
        local h = env.hosts[i]
        assert.equal(case.name, h.name)
        target = case.name .. "=127.0.0.1:" .. h.port
      end)

      it("the connection is SMB 3.1.1, signed" .. (case.encrypted and " and encrypted" or ""), function()
        local h = assert(termsrv.connect{ host = "127.0.0.1", port = env.hosts[i].port, user = "CORP\\ops",
                                          password = ADMIN.TERMSRV_PASSWORD })
        assert(h:sessions())
        local line = assert(smbstatus(i), "our connection in smbstatus")
        h:close()
        assert.matches("SMB3_11", line)
        local enc, sig = line:match("SMB3_11%s+(%S+)%s+(%S+)")
        assert.matches("^AES", sig, line)
        if case.encrypted then assert.matches("^AES", enc, line) else assert.equal("-", enc, line) end
      end)

      it("costs the documented round trips with signing" .. (case.encrypted and " and encryption" or "")
        .. " on: 1 call for qwinsta, K + 2 calls and 3K + 16 round trips for quser", function()
        local h <close> = assert(termsrv.connect{ host = "127.0.0.1", port = env.hosts[i].port,
          user = "CORP\\ops", password = ADMIN.TERMSRV_PASSWORD })
        local n = #assert(h:sessions{ times = false, all = true })
        local st = h:stats()
        -- one RpcGetAllSessions in one fragment: logon's first CREATE, bind, auth3, the call
        assert.same({ 1, 8 }, { st.rpc_calls, st.smb_round_trips })
        assert.equals(7, n)
        local h2 <close> = assert(termsrv.connect{ host = "127.0.0.1", port = env.hosts[i].port,
          user = "CORP\\ops", password = ADMIN.TERMSRV_PASSWORD })
        local k = #assert(h2:sessions())
        st = h2:stats()
        assert.same({ k + 2, 3 * k + 16 }, { st.rpc_calls, st.smb_round_trips })
      end)

      it("takes the success codes current Windows answers with (0x10000000, 1) as success", function()
        local name = env.hosts[i].name
        local h = assert(termsrv.connect{ host = "127.0.0.1", port = env.hosts[i].port, user = "CORP\\ops",
                                          password = ADMIN.TERMSRV_PASSWORD })
        local a = assert(sim.ctl(env, "rdp-login", name, "jdoe")).session.id
        local b = assert(sim.ctl(env, "rdp-login", name, "ops")).session.id
        assert(h:disconnect(a, { wait = true }))
        assert(h:disconnect(a)) -- already disconnected: 1
        assert(h:connect(a, b, "Jdoe-Passw0rd")) -- 1
        assert.equal("active", assert(h:session(a)).state)
        local r = assert(h:logoff(a, { wait = true })) -- 0x10000000
        assert.equal("gone", r.after)
        assert.is_nil(r.fallback)
        h:close()
        local seen = {}
        for _, c in ipairs(sim.calls(env, function(c) return c.host == name and c.event == "call" end)) do
          seen[c.method] = seen[c.method] or {}
          seen[c.method][#seen[c.method] + 1] = c.result
        end
        assert.same({ 0, 1 }, seen.RpcDisconnect)
        assert.same({ 1 }, seen.RpcConnect)
        assert.same({ 0x10000000 }, seen.RpcLogoff)
        sim.ctl(env, "remove-session", name, b)
      end)

      it("lists, resets and applies a policy", function()
        local code, out, err = run({ "users", target }, ADMIN)
        assert.equal(0, code, err)
        assert.matches("alice", out)
        code, out, err = run({ "reset", target, "3", "--format", "json" }, ADMIN)
        assert.equal(0, code, err)
        assert.matches('"id":3,"user":"alice".*"status":"ok"', out)
        local policy = TMP .. "/p" .. i .. ".lua"
        support.spit(policy, 'rules = { { name = "stale", select = { state = "disconnected", '
          .. 'min_disconnected = "8h" }, action = "logoff" } }\n')
        code, out, err = run({ "clean", target, "--policy", policy, "--apply" }, ADMIN)
        assert.equal(0, code, err)
        assert.matches("bob .* ok", out)
        assert.matches("carol .* ok", out)
        local users = support.users_of(env, case.name)
        assert.same({ [2] = "foo" }, users)
      end)
    end)
  end
end)
