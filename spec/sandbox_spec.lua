-- The policy sandbox (termsrv.sandbox, src/sandbox.c): every way a policy
-- escaped for time and memory ends in a bad_policy error within a bound
-- time, well below the memory cap plus slack; the pattern functions are
-- bounded; only regular files of bounded size are read; print goes to
-- stderr. Small limits keep these fast.

local core = require "termsrv.core"
local fake = require "fixtures.fake_host"
local sim = require "support.sim"
local support = require "support.cli"
local fx = require "fixtures.sessions"
local plan = require "termsrv.plan"
local policy = require "termsrv.policy"
local sandbox = require "termsrv.sandbox"

local clock = core.sandbox_clock
local MiB = 1024 * 1024
local SMALL = { memory = 4 * MiB, instructions = 1000000, time = 10 }
-- the bounds on time below hold with room to spare; a sanitizer build runs
-- up to ten times slower (malloc-heavy loops)
local SLOW = (package.searchpath("termsrv.core", package.cpath) or ""):find("asan") and 10 or 1
local function within(secs, bound) return secs < bound * SLOW end

-- Loads `src` with `limits`; returns the error and the seconds it took.
local function load_fails(src, limits)
  local t0 = clock()
  local p, err = policy.from_string(src, "=p", { limits = limits or SMALL })
  local took = clock() - t0
  assert.is_nil(p, "the policy loaded")
  assert.equal("bad_policy", err.code, tostring(err))
  return err, took
end

-- A policy whose one rule selects with `where` (source of a function).
local function where_policy(fn, limits)
  local p = assert(policy.from_string("rules = { { name = 'w', action = 'logoff', select = { where = "
    .. fn .. " } } }", "=w.lua", { limits = limits or SMALL }))
  return p
end

describe("policy sandbox", function()
  local saved_index = getmetatable("").__index

  after_each(function()
    -- every path restores the process: string methods, hook
    assert.equal(string, getmetatable("").__index)
    assert.equal(saved_index, getmetatable("").__index)
    assert.is_nil(debug.gethook())
  end)

  describe("instruction budget", function()
    it("stops an endless loop", function()
      local err, took = load_fails("while true do end")
      assert.equal("instructions", err.limit)
      assert.equal("load policy: p: while loading: instruction budget spent (1000000 instructions; an endless "
        .. "loop?) (hint: a policy runs within limits (memory, instructions, time): fix the policy, or raise "
        .. "the limit)", tostring(err))
      assert.is_true(within(took, 1), took)
    end)

    it("cannot be caught: pcall in a loop, nested pcalls, a pcall of the error itself", function()
      for _, src in ipairs{
        "while true do pcall(error, 'x') end",
        "while true do pcall(function() while true do end end) end",
        "local function f() while true do pcall(pcall, f) end end f()",
        "while true do local ok, e = pcall(function() while true do end end) "
          .. "while true do pcall(error, e) end end",
        "for _ in pcall, function() while true do end end do end while true do end",
      } do
        local err, took = load_fails(src)
        assert.equal("instructions", err.limit, src)
        assert.is_true(within(took, 3), src .. ": " .. took) -- 0.1-0.7 s on an idle machine
      end
    end)

    it("keeps the caller's hook", function()
      local calls = 0
      local function h() calls = calls + 1 end
      debug.sethook(h, "", 1000)
      load_fails("while true do end")
      local f, mask, count = debug.gethook()
      debug.sethook()
      assert.equal(h, f)
      assert.equal("", mask)
      assert.equal(1000, count)
    end)

    it("a spent meter stays spent", function()
      local m = sandbox.meter{ instructions = 1000 }
      assert.is_false((sandbox.run(m, function() while true do end end)))
      local ok, err = sandbox.run(m, function() return 1 end)
      assert.is_false(ok)
      assert.equal("instructions", err.limit)
      local n = 0
      assert.same({ true, 42 }, { sandbox.run(sandbox.meter(), function(x) n = n + 1 return x end, 42) })
      assert.equal(1, n)
    end)
  end)

  describe("wall clock", function()
    it("stops a loop that the instruction budget would let run for long", function()
      local err, took = load_fails("while true do end", { time = 0.2, instructions = 1 << 40 })
      assert.equal("time", err.limit)
      assert.matches("time limit reached %(0%.2 s", err.message)
      assert.is_true(took >= 0.2 and within(took, 0.6), took)
    end)

    it("stops a loop of C calls between two looks of the hook", function()
      local err, took = load_fails("while true do local s = ('x'):rep(1000000) end",
        { time = 0.2, instructions = 1 << 40, memory = 32 * MiB })
      assert.equal("time", err.limit)
      assert.is_true(within(took, 0.6), took)
    end)
  end)

  describe("memory cap", function()
    it("stops a policy that allocates without end, well below the cap plus slack", function()
      for _, src in ipairs{
        "local t = {} while true do t[#t + 1] = ('x'):rep(100) .. #t end",
        "local t = {} while true do t[#t + 1] = {} end",
        "local s = 'x' while true do s = s .. s end",
        "return ('x'):rep(1 << 30)",
        "return table.concat({ ('x'):rep(1 << 20) }, '', 1, 1) .. ('y'):rep(8 << 20)",
        -- the memory error caught in a loop
        "local t = {} while true do pcall(function() while true do t[#t + 1] = {} end end) end",
      } do
        collectgarbage()
        local before = collectgarbage("count") * 1024
        local m = sandbox.meter{ memory = 4 * MiB, instructions = 1 << 40, time = 5 }
        local f = assert(load(src, "=m", "t", sandbox.env()))
        local t0 = clock()
        local ok, err = sandbox.run(m, f)
        local took = clock() - t0
        local after = collectgarbage("count") * 1024
        assert.is_false(ok, src)
        assert.equal("memory", err.limit, src)
        assert.equal("memory limit reached (4 MiB)", err.message)
        assert.is_true(m.peak <= 4 * MiB, src)
        assert.is_true(after - before < 4 * MiB + 256 * 1024, src .. ": grew by " .. (after - before))
        assert.is_true(within(took, 1), src .. ": " .. took)
      end
    end)

    it("from a file: a bad_policy error with the limit", function()
      local err = load_fails("local t = {} while true do t[#t + 1] = {} end",
        { memory = 2 * MiB, instructions = 1 << 40 })
      assert.equal("memory", err.limit)
      assert.equal("p: while loading: memory limit reached (2 MiB)", err.message)
    end)

    it("leaves the process able to allocate afterwards", function()
      load_fails("local s = 'x' while true do s = s .. s end")
      local big = ("x"):rep(16 * MiB)
      assert.equal(16 * MiB, #big)
    end)

    it("counts a plan's predicates together: what one stashes, the next cannot", function()
      local p = where_policy("function() keep = keep or {} keep[#keep + 1] = ('x'):rep(1 << 20) return false end",
        { memory = 3 * MiB, instructions = 1 << 40 })
      local sessions = {}
      for i = 1, 10 do sessions[i] = fx.session{ id = i + 10, user = "u" .. i, state = "disconnected" } end
      local pl, err = plan.build({ { host = "ts01", sessions = sessions } }, p)
      assert.is_nil(pl)
      assert.equal("memory", err.limit)
      assert.matches('^w%.lua: policy rule "w", session #1%d: memory limit reached', err.message)
    end)
  end)

  describe("pattern functions", function()
    local A40, P40 = ("a"):rep(40), ("a*"):rep(40) .. "b"

    it("refuse a backtracking pattern before it runs, called as functions or as methods", function()
      for _, src in ipairs{
        "return string.find(('a'):rep(40), ('a*'):rep(40) .. 'b')",
        "local s = ('a'):rep(40) return s:find(('a*'):rep(40) .. 'b')",
        "return ('a'):rep(40):match(('a-'):rep(40) .. 'b')",
        "return ('a'):rep(40):gsub(('a?'):rep(40) .. 'b', '')",
        "for x in ('a'):rep(40):gmatch(('a*'):rep(40) .. 'b') do end",
        "return ('a'):rep(5000):find('(a*)%1b')",
        "return ('a'):rep(1 << 20):find(('a'):rep(1 << 19) .. 'b', 1, true)",
        "return duration.parse(('1'):rep(100000) .. ' x')",
      } do
        local err, took = load_fails(src)
        assert.is_nil(err.limit, src)
        assert.matches("pattern too costly in a policy", err.message, 1, false, src)
        assert.is_true(within(took, 0.2), src .. ": " .. took)
      end
      local err = load_fails("local x = string.find(('a'):rep(40), ('a*'):rep(40) .. 'b')")
      assert.matches("^p:1: string.find: pattern too costly in a policy %(up to [%d.e+]+ steps on a 40%-byte "
        .. "subject, the limit is 1e%+07%)", err.message)
    end)

    it("still match what policies match", function()
      local p = assert(policy.from_string([[
        local user = ("svc_backup"):match("^svc_(%w+)$")
        local n = select(2, ("a,b,c"):gsub(",", ";"))
        local parts = {}
        for w in ("TS01 TS02 TS03"):gmatch("%S+") do parts[#parts + 1] = w end
        assert(user == "backup" and n == 2 and #parts == 3)
        assert(("x"):rep(2000):find("y", 1, true) == nil)
        assert(("LAPTOP-0042"):find("LAPTOP%-%d+") == 1)
        assert(string.rep("", 1 << 40) == "")
        rules = { { select = { min_idle = duration.parse("4h"),
          where = function(rec) return rec.user:match("^a") ~= nil, "starts with a" end }, action = "logoff" } }
      ]], "=ok", { limits = SMALL }))
      assert.equal(1, #p.rules)
    end)

    it("a pattern predicate at plan time", function()
      local p = where_policy("function(rec) return ((rec.user or '') .. ('a'):rep(40)):find(('a*'):rep(40) .. 'b') "
        .. "end")
      local pl, err = plan.make(fake.new("ts01", fx.typical()), p)
      assert.is_nil(pl)
      assert.equal("bad_policy", err.code)
      assert.matches("pattern too costly", err.message)
    end)

    it("are the real ones outside the sandbox", function()
      assert.equal(1, A40:find("a", 1, true))
      assert.is_nil((A40:sub(1, 12)):find(("a*"):rep(12) .. "b"))
      assert.equal(string.find, ("").find)
      assert.is_nil(P40:find("^b"))
    end)

    it("costs: anchors, repetitions, optional items, %b and back-references", function()
      local cost = sandbox.pattern_cost
      assert.equal(8, cost("^svc_%w", 100))
      assert.equal(101 * 101 * 5, cost("a*bc", 100))
      assert.equal(101 * 101 * 5, cost("a-bc", 100))
      assert.equal(2 * 2 * 6, cost("^a?b?", 100))
      assert.equal(101 * (4 + 1 + 101), cost("%b()", 100))
      assert.equal(101 * 101 * (6 + 1 + 101), cost("(a*)%1", 100))
      assert.equal(101 * 101 * 8, cost("[%]*]*x", 100)) -- a set with ']' and '*' in it, repeated
      assert.equal(101 * 101 * 5, cost("^b*x", 100, "gmatch")) -- ^ is no anchor in gmatch
      assert.equal(101 * 4, cost("a*b", 100, "plain"))
    end)
  end)

  describe("C loops that allocate nothing", function()
    it("are refused: table.move over a huge range, table.sort with a C comparator or of a huge table, "
      .. "a huge date format", function()
      for _, src in ipairs{
        "table.move({}, 1, 1 << 50, 2)",
        "local t = {} for i = 1, 1000 do t[i] = i end table.sort(t, select)",
        "local t = {} for i = 1, 100001 do t[i] = -i end table.sort(t)",
        "return date(('%c'):rep(100000))",
      } do
        local err, took = load_fails(src)
        assert.is_true(within(took, 0.2), src)
        assert.matches("in a policy", err.message)
      end
    end)
  end)

  describe("where predicates at plan time", function()
    local sessions = fx.typical()

    it("an endless predicate ends the plan with bad_policy, naming the rule and the session", function()
      local p = where_policy("function() while true do pcall(error, 'x') end end")
      local t0 = clock()
      local pl, err = plan.make(fake.new("ts01", sessions), p)
      assert.is_true(within(clock() - t0, 1))
      assert.is_nil(pl)
      assert.equal("bad_policy", err.code)
      assert.equal("instructions", err.limit)
      assert.equal("ts01", err.host)
      assert.matches('^w%.lua: policy rule "w", session #%d+: instruction budget spent', err.message)
    end)

    it("share one budget: each predicate under the limit, all of them over it", function()
      local p = where_policy("function() for i = 1, 100000 do end return false end",
        { instructions = 1000000, time = 5 })
      local many = {}
      for i = 1, 20 do many[i] = fx.session{ id = i + 10, user = "u" .. i, state = "disconnected" } end
      local pl, err = plan.build({ { host = "ts01", sessions = many } }, p)
      assert.is_nil(pl)
      assert.equal("instructions", err.limit)
      -- the plan's limits win over the policy's
      assert.truthy(plan.build({ { host = "ts01", sessions = many } }, p, { limits = { instructions = 1 << 40 } }))
    end)

    it("one budget per host: each host's plan gets its own", function()
      local p = where_policy("function() for i = 1, 100000 do end return false end",
        { instructions = 300000, time = 5 })
      local hosts = {}
      for i = 1, 5 do
        local h = "ts0" .. i
        hosts[i] = { host = h, sessions = { fx.session{ host = h, id = 11, user = "a" },
                                            fx.session{ host = h, id = 12, user = "b" } } }
      end
      assert.truthy(plan.build(hosts, p))
      hosts[3].sessions[3] = fx.session{ host = "ts03", id = 13, user = "c" }
      hosts[3].sessions[4] = fx.session{ host = "ts03", id = 14, user = "d" }
      local pl, err = plan.build(hosts, p)
      assert.is_nil(pl)
      assert.equal("ts03", err.host)
      assert.equal("instructions", err.limit)
    end)

    it("a predicate that raises is a bad_policy error of the plan", function()
      local p = where_policy("function() error('bad field', 0) end")
      local pl, err = plan.build({ { host = "ts01", sessions = sessions } }, p)
      assert.is_nil(pl)
      assert.equal("bad_policy", err.code)
      assert.matches('policy rule "w": select failed on ts01%.corp #%d+: bad field', err.message)
    end)

    it("a predicate from a policy table runs under the default limits", function()
      local p = policy.new{ rules = { { select = { where = function() while true do end end }, action = "logoff" } } }
      local ok, err = pcall(p.match, p, sessions[4], {})
      assert.is_false(ok)
      assert.equal("instructions", err.limit)
    end)
  end)

  describe("policy files", function()
    local dir = os.tmpname()
    setup(function() os.remove(dir) os.execute("mkdir -p '" .. dir .. "'") end)
    teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

    local function refused(path, pattern, limits)
      local t0 = clock()
      local p, err = policy.load(path, limits and { limits = limits })
      assert.is_true(within(clock() - t0, 0.5), path)
      assert.is_nil(p, path)
      assert.equal("bad_policy", err.code, tostring(err))
      assert.matches(pattern, err.message, 1, false, path)
      return err
    end

    it("refuses what is not a regular file: a directory, /dev/zero, a FIFO", function()
      refused(dir, "a directory, not a regular file")
      refused("/dev/zero", "a character device, not a regular file")
      os.execute("mkfifo '" .. dir .. "/fifo'")
      refused(dir .. "/fifo", "a FIFO, not a regular file") -- without waiting for a writer
    end)

    it("refuses a file over file_size", function()
      local f = assert(io.open(dir .. "/big.lua", "w"))
      f:write("return { free_slots = 1 }\n", ("-- padding\n"):rep(100))
      f:close()
      local err = refused(dir .. "/big.lua", "larger than 1000 bytes", { file_size = 1000 })
      assert.equal("file_size", err.limit)
      assert.truthy(policy.load(dir .. "/big.lua"))
      local p, e = policy.from_string(("-- x\n"):rep(300), "=s", { limits = { file_size = 1000 } })
      assert.is_nil(p)
      assert.equal("s: larger than 1000 bytes", e.message)
    end)

    it("a missing file is still an io_error", function()
      local p, err = policy.load(dir .. "/none.lua")
      assert.is_nil(p)
      assert.equal("io_error", err.code)
    end)

    it("bad limits are the caller's error", function()
      assert.has_error(function() policy.load(dir, { limits = { memroy = 1 } }) end,
        "sandbox: limits: unknown option 'memroy' (options: file_size, instructions, memory, pattern, time)")
      assert.has_error(function() policy.from_string("", nil, { limits = { time = 0 } }) end,
        "sandbox: limits: time: positive finite number expected, got 0")
    end)
  end)

  describe("print", function()
    it("goes to stderr, not stdout", function()
      local real_print, real_stderr, real_write = print, io.stderr, io.write
      local got, leaked = {}, {}
      _G.print = function(...) leaked[#leaked + 1] = table.concat({ ... }, " ") end
      io.write = _G.print -- luacheck: ignore 122
      io.stderr = { write = function(_, ...) for _, s in ipairs{ ... } do got[#got + 1] = s end end } -- luacheck: ignore 122
      local ok, p = pcall(policy.from_string, "print('hello', 42, nil) return { free_slots = 1 }", "=p")
      _G.print, io.stderr, io.write = real_print, real_stderr, real_write -- luacheck: ignore 122
      assert.is_true(ok, p)
      assert.truthy(p)
      assert.same({}, leaked)
      assert.equal("hello\t42\tnil\n", table.concat(got))
    end)
  end)

  describe("termsrv clean --policy", function()
    local env, host
    local TMP = support.scratch()
    local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP } }
    setup(function()
      env = sim.start()
      host = env.host .. ":" .. env.port
    end)
    teardown(function()
      sim.stop(env)
      support.rmdir(TMP)
    end)

    it("a directory, /dev/zero and a FIFO exit 64 with a message", function()
      os.execute("mkfifo " .. support.q(TMP .. "/fifo"))
      for path, what in pairs{ [TMP] = "a directory", ["/dev/zero"] = "a character device",
                               [TMP .. "/fifo"] = "a FIFO" } do
        local t0 = clock()
        local code, out, err = run({ "clean", host, "--policy", path }, support.ADMIN)
        assert.is_true(within(clock() - t0, 2), path)
        assert.equal(64, code, err)
        assert.equal("", out)
        assert.equal("termsrv: load policy: " .. path .. ": " .. what .. ", not a regular file (hint: --policy "
          .. "takes a Lua file)\n", err)
      end
    end)

    it("a policy's print goes to stderr, never into the JSON Lines on stdout", function()
      support.spit(TMP .. "/print.lua", [[
        print("MARK at load")
        rules = { { name = "p", action = "logoff",
                    select = { where = function(rec) print("MARK in where", rec.id) return false end } } }
      ]])
      local code, out, err = run({ "clean", host, "--policy", TMP .. "/print.lua", "--format", "json" },
        support.ADMIN)
      assert.equal(0, code, err)
      assert.is_nil(out:find("MARK", 1, true), out)
      for line in out:gmatch("[^\n]+") do assert.matches("^{.*}$", line) end
      assert.truthy(err:find("MARK at load\n", 1, true), err)
      assert.truthy(err:find("MARK in where\t%d+\n"), err)
    end)

    it("an endless where predicate is a bad policy: exit 64 with the limit, within a bound time", function()
      support.spit(TMP .. "/spin.lua", [[
        rules = { { name = "spin", action = "logoff",
                    select = { where = function() while true do pcall(error, "x") end end } } }
      ]])
      local t0 = clock()
      local code, out, err = run({ "clean", host, "--policy", TMP .. "/spin.lua", "--format", "json" },
        support.ADMIN)
      assert.is_true(within(clock() - t0, 4))
      assert.equal(64, code, err)
      -- stdout holds only the host's status record: no plan steps, the error with its limit
      local dkjson = require "dkjson"
      local only = assert(dkjson.decode((assert(out:match("^([^\n]*)\n$"), out))))
      assert.same({ "host", false, "bad_policy" }, { only.type, only.ok, only.error })
      -- whichever limit trips first: on a loaded machine (or under ASan) the clock can win
      local budget = err:find('match policy: [^\n]*/spin%.lua: policy rule "spin", session #%d+: instruction '
        .. "budget spent %(20000000 instructions")
      local clock_limit = err:find('match policy: [^\n]*/spin%.lua: policy rule "spin", session #%d+: time limit '
        .. "reached %(2 s")
      assert.truthy(budget or clock_limit, err)
      -- the limits from the command line: for the load and for the plan
      t0 = clock()
      code, out, err = run({ "clean", host, "--policy", TMP .. "/spin.lua", "--policy-limit", "instructions=1e5",
                           "--policy-limit", "time=5s" }, support.ADMIN)
      assert.is_true(within(clock() - t0, 2))
      assert.equal(64, code, err)
      assert.matches("instruction budget spent %(100000 instructions", err)
      assert.equal("Plan: 0 actions on 0 hosts -- dry run, nothing done yet (--apply acts)\n", out)
      code, out, err = run({ "clean", host, "--policy", TMP .. "/spin.lua", "--policy-limit", "time=0.05" },
        support.ADMIN)
      assert.equal(64, code, err)
      assert.matches("time limit reached %(0%.05 s", err)
      assert.equal("Plan: 0 actions on 0 hosts -- dry run, nothing done yet (--apply acts)\n", out)
      support.spit(TMP .. "/grow.lua", "local t = {} while true do t[#t + 1] = {} end")
      code, out, err = run({ "clean", host, "--policy", TMP .. "/grow.lua", "--policy-limit", "memory=2M" },
        support.ADMIN)
      assert.equal(64, code, err)
      assert.equal("termsrv: load policy: " .. TMP .. "/grow.lua: while loading: memory limit reached (2 MiB) "
        .. "(hint: a policy runs within limits (memory, instructions, time): fix the policy, or raise the limit)\n",
        err)
      assert.equal("", out)
    end)

    it("a bad --policy-limit is a usage error", function()
      for _, l in ipairs{ "memory", "memory=lots", "time=0", "instructions=-1", "speed=1", "pattern=inf" } do
        local code, out, err = run({ "clean", host, "--policy", TMP .. "/spin.lua", "--policy-limit", l },
          support.ADMIN)
        assert.equal(64, code, l)
        assert.equal("", out)
        assert.matches("termsrv: %-%-policy%-limit", err, 1, false, l)
      end
    end)
  end)
end)
