-- Inputs that could reach the wrong session are refused: session ids and
-- pids are 32-bit on the wire, so 4294967298 must not become session 2 (an
-- active user) and 2^53 must not become session 0; numbers in other
-- notations are not taken for host names; timeouts that are not a sane
-- number of seconds raise instead of quietly becoming the default. The CLI
-- cases run bin/termsrv against the simulator and read its call log.
local sim = require "support.sim"
local support = require "support.cli"
local termsrv = require "termsrv"
local core = require "termsrv.core"

local ADMIN = support.ADMIN
local ACTIONS = { RpcLogoff = true, RpcWinStationReset = true, RpcDisconnect = true,
                  RpcWinStationTerminateProcess = true, RpcShowMessageBox = true,
                  RpcWinStationSendMessage = true, RpcConnect = true }

local TMP = support.scratch()
local run = support.runner{ unset = support.TERMSRV_VARS,
                            set = { "TZ=UTC", "HOME=" .. TMP .. "/home", "TERMSRV_AUDIT=" .. TMP .. "/audit.jsonl" } }

describe("inputs that could hit the wrong session", function()
  local env, n = nil, 0
  local host, simhost

  -- spec/fixtures/sim/full.lua: 24 identical hosts, session 2 is foo (active)
  setup(function() env = sim.start{ config = "spec/fixtures/sim/full.lua" } end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)
  before_each(function()
    n = n + 1
    local h = assert(env.hosts[n], "spec/fixtures/sim/full.lua: more hosts needed")
    host, simhost = "TS01=127.0.0.1:" .. h.port, h.name
  end)

  local function calls_to(name, only_actions)
    return sim.calls(env, function(r)
      return r.host == name and (not only_actions or (r.event == "call" and ACTIONS[r.method]))
    end)
  end

  local function usage(args, pattern)
    local code, out, err = run(args, ADMIN)
    assert.equal(64, code, table.concat(args, " ") .. ": " .. err)
    assert.equal("", out)
    if pattern then assert.matches(pattern, err, 1, true) end
    return err
  end

  describe("the command line", function()
    it("reset HOST 4294967298 is a usage error; session 2 is not touched (not even with the -n plan)", function()
      local before = support.users_of(env, simhost)
      assert.equal("foo", before[2])
      for _, args in ipairs{ { "reset", host, "4294967298", "-n" }, { "reset", host, "4294967298" },
                             { "logoff", host, "4294967298", "--apply" },
                             { "disconnect", host, "4294967298" } } do
        local err = usage(args, "'4294967298'")
        assert.matches("4294967295", err, 1, true)
      end
      -- refused before any connection: the simulator saw nothing at all
      assert.same({}, calls_to(simhost))
      assert.same(before, support.users_of(env, simhost))
    end)

    it("ids and pids beyond 32 bits, in every command that takes them, are usage errors naming the range", function()
      for _, args in ipairs{
        { "reset", host, "99999999999999999999", "-n" },
        { "reset", host, "18446744073709551618", "-n" },
        { "kill", host, "4294967298" },
        { "message", host, "4294967298", "--text", "hi" },
        { "connect", host, "4294967298", "3" },
        { "connect", host, "3", "4294967298" },
        { "reset", host, "--id", "4294967298", "-n" },
        { "kill", host, "--session", "4294967298" },
        { "processes", host, "--session", "4294967298" },
      } do
        local err = usage(args)
        assert.matches("4294967295", err, 1, true)
      end
      assert.same({}, calls_to(simhost))
    end)

    it("0x10, 1e3, +5, 1.5 and -1 are neither ids nor hosts where numbers are taken", function()
      for _, t in ipairs{ "0x10", "0X2", "1e3", "2E0", "+5", "1.5", "2." } do
        for _, cmd in ipairs{ "reset", "kill", "message" } do
          local args = { cmd, host, t }
          if cmd == "message" then args[#args + 1] = "--text"; args[#args + 1] = "hi" end
          if cmd == "reset" then args[#args + 1] = "-n" end
          local err = usage(args, "'" .. t .. "'")
          assert.matches("plain decimal", err, 1, true)
        end
      end
      for _, args in ipairs{ { "reset", host, "-1", "-n" }, { "kill", host, "-5" } } do
        local err = usage(args, "'" .. args[3] .. "'")
        assert.matches("negative numbers are not accepted", err, 1, true)
      end
      for _, args in ipairs{ { "reset", host, "--id", "0x2", "-n" }, { "reset", host, "--id", "1e3", "-n" },
                             { "reset", host, "--id", "+2", "-n" }, { "processes", host, "--session", "2.0" } } do
        usage(args, "'" .. args[4] .. "'")
      end
      assert.same({}, calls_to(simhost))
    end)

    it("--timeout, --connect-timeout, --host-timeout and --wait-timeout: NaN, inf, <= 0 and > 1 day are usage errors", function()
      for _, opt in ipairs{ "--timeout", "--connect-timeout", "--host-timeout" } do
        for _, v in ipairs{ "nan", "inf", "1e999", "0", "0s", "0.0001", "-1", "86401", "2d", "1e9" } do
          local err = usage({ "sessions", host, opt, v }, "'" .. v .. "'")
          if not v:match("^%-") then assert.matches("0.001 to 86400", err, 1, true) end
        end
      end
      usage({ "reset", host, "3", "--wait-timeout", "1e999" }, "'1e999'")
      usage({ "message", host, "3", "--text", "hi", "--time", "4294967298" }, "'4294967298'")
      usage({ "message", host, "3", "--text", "hi", "--time", "-1" }, "'-1'")
      assert.same({}, calls_to(simhost))
      -- sane values still work
      local code, _, err = run({ "sessions", host, "--timeout", "5", "--connect-timeout", "2s",
                                 "--host-timeout", "1m" }, ADMIN)
      assert.equal(0, code, err)
    end)

    it("the largest id is still an id (refused by the host, not wrapped)", function()
      local code, _, err = run({ "reset", host, "4294967295" }, ADMIN)
      assert.is_true(code == 1 or code == 2, err)
      assert.same({}, calls_to(simhost, true))
      assert.equal("foo", support.users_of(env, simhost)[2])
    end)
  end)

  describe("the library", function()
    local h
    before_each(function()
      h = assert(termsrv.connect{ host = "127.0.0.1:" .. env.hosts[n].port, user = ADMIN.TERMSRV_USER,
                                  password = ADMIN.TERMSRV_PASSWORD, timeout = 5, name = "TS01" })
    end)
    after_each(function() h:close() end)

    it("h:processes raises for a filter of the wrong type instead of ignoring it", function()
      for _, f in ipairs{ { session = "x" }, { session = 2 ^ 40 }, { session = -1 }, { user = 5 }, { name = {} } } do
        local ok, err = pcall(function() local r = h:processes(f); return r end)
        assert.is_false(ok)
        assert.matches("host:processes: ", err, 1, true)
        assert.matches("inputs_spec", err, 1, true) -- blamed on the caller
      end
      assert.has_error(function() h:processes("explorer.exe") end)
      assert.truthy(#assert(h:processes{ session = 2 }) > 0)
    end)

    it("h:processes{user=} reads accounts as the selectors do: bare names, domains, beyond ASCII", function()
      local function users(f)
        local t = {}
        for _, p in ipairs(assert(h:processes(f))) do t[p.account] = true end
        return t
      end
      assert.same({ ["CORP\\dave"] = true }, users{ user = "dave" })
      assert.same({ ["CORP\\dave"] = true }, users{ user = "corp\\DA*" })
      assert.same({}, users{ user = "OTHER\\dave" })
      assert.same({ ["CORP\\dave"] = true }, users{ user = "dave@corp.example" }) -- a UPN
      sim.ctl(env, "set-session", simhost, 6, require("dkjson").encode{ user = "Åsa" })
      assert.same({ ["CORP\\Åsa"] = true }, users{ user = "corp\\åSA" })
      assert.same({ ["CORP\\Åsa"] = true }, users{ user = "ÅS?" })
    end)

    it("connect refuses a NUL inside the host, user, domain or password instead of cutting it", function()
      for _, k in ipairs{ "host", "user", "domain", "password", "name" } do
        local o = { host = "127.0.0.1:" .. env.hosts[n].port, user = "ops", domain = "CORP",
                    password = ADMIN.TERMSRV_PASSWORD }
        o[k] = (o[k] or "x") .. "\0tail"
        local ok, err = pcall(termsrv.connect, o)
        assert.is_false(ok, k)
        assert.matches(k .. " contains a NUL byte", err, 1, true)
      end
    end)

    it("h:session raises for ids that are not 0..2^32-1 integers", function()
      for _, id in ipairs{ 2 ^ 53, 2 ^ 32 + 2, -1, 1.5, 0 / 0, math.huge, 1 << 53, (1 << 32) + 2, "2" } do
        assert.has_error(function() h:session(id) end)
        local ok, err = pcall(h.session, h, id)
        assert.is_false(ok)
        assert.matches("0..4294967295", err, 1, true)
      end
      -- a float that is exactly an id in range is that id
      assert.equal("foo", assert(h:session(2.0)).user)
      assert.equal(2, h:session(2.0).id)
      assert.equal("foo", assert(h:session(2)).user)
    end)

    it("actions refuse ids beyond 32 bits before anything reaches the host", function()
      local c = h._c
      for _, id in ipairs{ (1 << 32) + 2, 1 << 53, -1, 2 ^ 53 } do
        assert.has_error(function() c:info(id) end)
        assert.has_error(function() c:client(id) end)
        assert.has_error(function() c:reset(id) end)
        assert.has_error(function() c:logoff(id) end)
        assert.has_error(function() c:disconnect(id) end)
        assert.has_error(function() c:connect(id, 3) end)
        assert.has_error(function() c:connect(3, id) end)
        assert.has_error(function() c:message(id, "t", "x") end)
        assert.has_error(function() c:kill(id) end)
        assert.has_error(function() c:server_time(id) end)
      end
      for _, id in ipairs{ 1.5, 0 / 0, math.huge } do
        assert.has_error(function() c:reset(id) end)
        assert.has_error(function() c:info(id) end)
      end
      -- the other 32-bit arguments do not wrap either
      assert.has_error(function() c:message(2, "t", "x", 0, 1 << 32) end)
      assert.has_error(function() c:message(2, "t", "x", -1, 0) end)
      assert.has_error(function() c:kill(1234, 1 << 32) end)
      for _, id in ipairs{ (1 << 32) + 2, 2 ^ 53 } do
        assert.has_error(function() h:reset(id) end)
        assert.has_error(function() h:logoff(id) end)
      end
      assert.same({}, calls_to(env.hosts[n].name, true))
      assert.equal("foo", support.users_of(env, env.hosts[n].name)[2])
    end)

    it("connect raises for timeouts that are NaN, infinite, negative, zero or over a day", function()
      local base = { host = "127.0.0.1:" .. env.hosts[n].port, user = ADMIN.TERMSRV_USER,
                     password = ADMIN.TERMSRV_PASSWORD }
      for _, k in ipairs{ "timeout", "connect_timeout" } do
        for _, v in ipairs{ 0 / 0, math.huge, -math.huge, -1, 0, 0.0, 1e-9, 86401, 1e12 } do
          local o = support.with(base, { [k] = v })
          local ok, err = pcall(termsrv.connect, o)
          assert.is_false(ok, k .. " = " .. tostring(v))
          assert.matches("option '" .. k .. "'", err, 1, true)
          -- the C core checks the same on its own
          local raw = { host = "127.0.0.1", port = env.hosts[n].port, user = "ops", domain = "CORP",
                        password = ADMIN.TERMSRV_PASSWORD, [k] = v }
          ok, err = pcall(core.connect, raw)
          assert.is_false(ok, "core " .. k .. " = " .. tostring(v))
          assert.matches("option '" .. k .. "'", err, 1, true)
        end
      end
      for _, o in ipairs{ { port = 445.5 }, { port = 0 / 0 }, { max_frag = 0 / 0 }, { max_frag = 4280.5 } } do
        o.host, o.password = "127.0.0.1", "x"
        assert.has_error(function() core.connect(o) end)
      end
      -- sane values connect
      local c = assert(termsrv.connect(support.with(base, { timeout = 0.5, connect_timeout = 86400 })))
      c:close()
    end)
  end)
end)
