-- termsrv.fleet against the simulator through smbd: one sweep over hosts
-- that answer, hang, refuse credentials and cannot be reached, each reported
-- with its own error code; results streaming as hosts finish; crashed
-- workers reported and the sweep going on; `parallel` honoured; no process
-- left behind; records keeping their metatables on the way back. Also the
-- hosts file format, option checking, the serializer and the progress line.
local sim = require "support.sim"
local termsrv = require "termsrv"
local fleet = require "termsrv.fleet"
local proc = require "termsrv.proc"
local record = require "termsrv.record"
local control = require "termsrv.control"
local processes = require "termsrv.processes"
local errors = require "termsrv.error"
local serialize = require "termsrv.serialize"
local progress = require "termsrv.progress"

local env
local port
local CLOSED = "127.0.0.1:1" -- nothing listens on tcpmux: connection refused at once

local CONFIG = [[
return { hosts = {
  { name = "A1" }, { name = "A2" }, { name = "A3" }, { name = "A4" }, { name = "A5" },
  -- accepts the SMB logon and the pipe, then never answers an RPC call
  { name = "HANG", faults = { { mode = "hang" } } },
} }
]]

-- ASan (make check-asan) catches SIGSEGV itself and aborts
local SEGV_SEEN = (os.getenv("LD_PRELOAD") or ""):find("asan") and "ABRT" or "SEGV"

local function addr(name) return "127.0.0.1:" .. port[name] end

local function connect_opts()
  return { user = env.user, domain = env.domain, password = env.password }
end

-- our direct children, zombies included (a worker we forgot shows up here)
local children = require("support.util").children

local function by_host(results)
  local t = {}
  for _, r in ipairs(results) do t[r.host] = r end
  return t
end

local function tmpfile_with(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

setup(function()
  env = sim.start{ config_text = CONFIG }
  port = env.ports
end)
teardown(function() sim.stop(env) end)

describe("termsrv.fleet sweep", function()
  it("reports hosts that answer, hang, refuse the logon and are unreachable, in one sweep", function()
    local f = termsrv.fleet{
      hosts = { addr("A1"), { host = addr("A2"), name = "A2" }, { host = "127.0.0.1", port = port.A3, name = "A3" },
                { host = addr("HANG"), name = "HANG" },
                { host = addr("A4"), name = "BADPW", password = "not-the-password" },
                CLOSED },
      parallel = 8, timeout = 2, connect_timeout = 2, progress = false, connect = connect_opts() }
    local t0 = proc.clock()
    local arrived, order, results = {}, {}, {}
    for r in f:each(function(h) return h:sessions() end) do
      arrived[r.host] = proc.clock() - t0
      order[#order + 1] = r.host
      results[r.host] = r
      assert.equals(fleet.Result, getmetatable(r))
    end
    assert.equals(6, #order)

    -- the hung host is ended at its deadline and arrives last; the others
    -- stream in long before it
    assert.equals("HANG", order[#order])
    assert.is_true(arrived.HANG >= 2 and arrived.HANG < 4.5, "hang ended at " .. arrived.HANG)
    for _, name in ipairs{ addr("A1"), "A2", "A3", "BADPW", CLOSED } do
      assert.is_true(arrived[name] < 1.5, name .. " arrived at " .. arrived[name])
    end

    for _, name in ipairs{ addr("A1"), "A2", "A3" } do
      local r = results[name]
      assert.is_true(r.ok, tostring(r))
      assert.is_nil(r.err)
      assert.equals(record.List, getmetatable(r.value))
      assert.equals(8, #r.value) -- console and the seven user sessions of the default host
      assert.equals(record.Session, getmetatable(r.value[1]))
      assert.is_true(r.duration > 0 and r.duration < 1.5)
    end
    assert.equals("timeout", results.HANG.err.code)
    assert.equals("HANG", results.HANG.err.host)
    assert.equals(errors.Error, getmetatable(results.HANG.err))
    assert.equals("logon_failure", results.BADPW.err.code)
    assert.equals("BADPW", results.BADPW.err.host)
    assert.equals("connection_refused", results[CLOSED].err.code)
    for _, r in pairs(results) do assert.equals(r.ok, r.err == nil) end
    assert.same({}, children())
  end)

  it("holds the deadline in this process too (fork = false): no call starts after it, none outlasts it", function()
    local f = termsrv.fleet{ hosts = { addr("A5"), { host = addr("HANG"), name = "HANG" } }, fork = false,
      timeout = 1.5, progress = false, connect = (function()
        local o = connect_opts(); o.timeout = 60; return o end)() }
    local asked = {}
    local t0 = proc.clock()
    local results = by_host(f:run(function(h, spec)
      -- one listing, then calls until the deadline stops them
      local n = 0
      while n < 50 do
        local l, err = h:sessions{ times = false }
        n = n + 1
        if not l then asked[spec.name] = { n = n, err = err, at = proc.clock() - t0 } break end
        proc.sleep(0.1)
      end
      return n
    end))
    -- A5 answers until its deadline; then the handle asks nothing more
    local a5 = results[addr("A5")]
    assert.is_false(a5.ok)
    assert.equals("timeout", a5.err.code)
    assert.equals("timeout", asked[addr("A5")].err.code)
    assert.matches("deadline", asked[addr("A5")].err.message)
    assert.is_true(asked[addr("A5")].at < 2.0, "A5 asked until " .. asked[addr("A5")].at)
    local listed = sim.calls(env, function(r) return r.event == "call" and r.method == "RpcGetAllSessions"
      and r.host == "A5" end)
    assert.is_true(#listed >= 5, #listed .. " listings")
    assert.equals(asked[addr("A5")].n - 1, #listed) -- the refused call never left
    -- HANG's only call is cut at the deadline's length, not at the 60 s timeout
    assert.equals("timeout", results.HANG.err.code)
    assert.equals(1, asked.HANG.n)
    assert.is_true(proc.clock() - t0 < 6, "took " .. (proc.clock() - t0))
  end)

  it("reports crashed workers and script errors as results and goes on", function()
    local marker = os.tmpname()
    os.remove(marker)
    -- an object of this process with a finaliser: os.exit in a worker must not run it
    local guard = setmetatable({}, { __gc = function() -- luacheck: ignore 211
      local m = io.open(marker, "a")
      if m then m:write("finalised in ", proc.getpid(), "\n") m:close() end
    end })
    -- a connection of this process, open across the sweep: workers inherit
    -- its socket and must leave it alone, whatever the script does
    local mine <close> = assert(termsrv.connect{ host = addr("A5"), user = env.user, domain = env.domain,
                                                 password = env.password })
    assert(mine:sessions())
    local hosts = {}
    for _, n in ipairs{ "A1", "A2", "A3", "A4", "A5" } do hosts[#hosts + 1] = { host = addr(n), name = n } end
    hosts[#hosts + 1] = { host = addr("A1"), name = "EXIT0" }
    hosts[#hosts + 1] = { host = addr("A2"), name = "RAISE" }
    local results = termsrv.fleet{ hosts = hosts, parallel = 3, timeout = 10, progress = false,
      connect = connect_opts() }:run(function(h, spec)
        if spec.name == "A1" then proc.kill(proc.getpid(), proc.signals.SEGV) end
        if spec.name == "A2" then os.exit(3) end
        if spec.name == "A3" then error("boom in the script") end
        if spec.name == "A4" then return nil, errors.new{ code = "access_denied", message = "mine" } end
        if spec.name == "RAISE" then error(errors.new{ code = "invalid_state", message = "raised" }) end
        if spec.name == "EXIT0" then os.exit(true, true) end
        return #assert(h:sessions())
      end)
    local r = by_host(results)
    assert.equals("worker_crashed", r.A1.err.code)
    assert.equals("SIG" .. SEGV_SEEN, r.A1.err.status_name)
    assert.equals(proc.signals[SEGV_SEEN], r.A1.err.status)
    assert.matches("signal", r.A1.err.message)
    assert.equals("worker_crashed", r.A2.err.code)
    assert.equals(3, r.A2.err.status)
    assert.matches("status 3", tostring(r.A2.err))
    assert.equals("script_error", r.A3.err.code)
    assert.matches("boom in the script", r.A3.err.message)
    assert.not_matches("\n", tostring(r.A3.err))
    assert.matches("stack traceback", r.A3.err.traceback)
    assert.equals("access_denied", r.A4.err.code)
    assert.equals("mine", r.A4.err.message)
    assert.equals("invalid_state", r.RAISE.err.code)
    assert.equals("raised", r.RAISE.err.message)
    assert.is_true(r.A5.ok)
    assert.equals(8, r.A5.value)
    assert.equals("worker_crashed", r.EXIT0.err.code)
    assert.equals(0, r.EXIT0.err.status)
    assert.same({ total = 7, ok = 1, failed = 6 },
      { total = results.summary.total, ok = results.summary.ok, failed = results.summary.failed })
    assert.is_nil(io.open(marker), "a worker ran this process's finaliser")
    assert.same({}, children())
    assert.equals(8, #assert(mine:sessions()))
  end)

  it("never runs more than `parallel` workers at once", function()
    local hosts = {}
    for i = 1, 7 do hosts[i] = { host = addr("A" .. (i % 5 + 1)), name = "H" .. i } end
    local f = termsrv.fleet{ hosts = hosts, parallel = 2, timeout = 10, progress = false,
                             connect = connect_opts() }
    local spans, most_children = {}, 0
    for r in f:each(function()
      local t0 = proc.clock()
      proc.sleep(0.2)
      return { t0 = t0, t1 = proc.clock(), pid = proc.getpid() }
    end) do
      assert.is_true(r.ok, tostring(r))
      spans[#spans + 1] = r.value
      most_children = math.max(most_children, #children())
    end
    assert.equals(7, #spans)
    assert.is_true(most_children <= 2, most_children .. " children seen")
    local most = 0
    for _, a in ipairs(spans) do
      local n = 0
      for _, b in ipairs(spans) do
        if b.t0 <= a.t0 and a.t0 < b.t1 then n = n + 1 end
      end
      most = math.max(most, n)
    end
    assert.equals(2, most)
    assert.same({}, children())
  end)

  it("brings back session lists, session, result and process records with their metatables", function()
    local r = termsrv.fleet{ hosts = { addr("A1") }, progress = false, connect = connect_opts() }
      :run(function(h)
        local list = assert(h:sessions())
        local sent = assert(h:message(list[2], "maintenance", "in five minutes"))
        return { list = list, one = list[2], sent = sent, procs = assert(h:processes()),
                 err = errors.new{ code = "timeout", message = "m" }, plain = { 1, 2.5, "x", true } }
      end)[1]
    assert.is_true(r.ok, tostring(r))
    local v = r.value
    assert.equals(record.List, getmetatable(v.list))
    assert.equals(record.Session, getmetatable(v.one))
    assert.equals(control.Result, getmetatable(v.sent))
    assert.equals("message", v.sent.action)
    assert.is_true(#v.procs > 0)
    assert.equals(processes.Process, getmetatable(v.procs[1]))
    assert.equals(errors.Error, getmetatable(v.err))
    assert.same({ 1, 2.5, "x", true }, v.plain)
    assert.equals("float", math.type(v.plain[2]))
    assert.matches("console", tostring(v.list))
    assert.matches("message session", tostring(v.sent))
  end)

  it("refuses to send back what is not plain data, naming where it is", function()
    local r = by_host(termsrv.fleet{ hosts = { { host = addr("A1"), name = "FN" }, { host = addr("A2"), name = "H" } },
      progress = false, connect = connect_opts() }:run(function(h, spec)
        if spec.name == "FN" then return { stats = { fn = print } } end
        return h
      end))
    assert.equals("not_serializable", r.FN.err.code)
    assert.matches("function at value.stats.fn", r.FN.err.message)
    assert.equals("not_serializable", r.H.err.code)
    assert.matches("termsrv.Host", r.H.err.message)
  end)

  it("gives workers the session-control methods when only termsrv.fleet was required", function()
    -- a fresh interpreter: nothing but termsrv.fleet loaded before the fork
    local script = string.format([[
      package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
      package.cpath = "./build/?.so;" .. package.cpath
      local f = require("termsrv.fleet"){ hosts = { %q }, parallel = 1, timeout = 20,
        connect = { user = %q, domain = %q, password = %q } }
      for r in f:each(function(h) return #assert(h:processes{ session = 2 }) end) do
        io.write(tostring(r.ok), " ", tostring(r.value or r.err), "\n")
      end]], addr("A1"), env.user, env.domain, env.password)
    local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS TERMSRV_BUILD=build lua5.4 - 2>&1 <<'EOS'\n"
      .. script .. "\nEOS")
    local out = p:read("a")
    p:close()
    assert.matches("^true %d+\n$", out)
  end)

  it("calls a host method by name", function()
    local r = termsrv.fleet{ hosts = { addr("A1") }, progress = false, connect = connect_opts() }
      :run("sessions", { all = true })[1]
    assert.is_true(r.ok, tostring(r))
    assert.equals(10, #r.value) -- with services and the listener
  end)

  it("ends the workers still running when the loop is left early", function()
    local hosts = {}
    for i = 1, 4 do hosts[i] = { host = addr("A" .. i), name = "S" .. i } end
    local f = termsrv.fleet{ hosts = hosts, parallel = 4, timeout = 30, progress = false,
                             connect = connect_opts() }
    local t0 = proc.clock()
    for r in f:each(function(_, spec) -- luacheck: ignore 512 (left at the first result on purpose)
      if spec.name ~= "S1" then proc.sleep(20) end
      return spec.name
    end) do
      assert.equals("S1", r.value)
      break
    end
    assert.same({}, children())
    assert.is_true(proc.clock() - t0 < 5)
  end)

  it("reads hosts from a file", function()
    local path = tmpfile_with("# session hosts\n\n" .. addr("A1") .. "   # first\r\n  " .. addr("A2")
      .. "\n#" .. addr("A3") .. "\n")
    local f = termsrv.fleet{ hosts = path, progress = false, connect = connect_opts() }
    os.remove(path)
    assert.equals(2, #f)
    local results = f:run(function(h) return h.port end)
    local r = by_host(results)
    assert.equals(port.A1, r[addr("A1")].value)
    assert.equals(port.A2, r[addr("A2")].value)
    assert.same({ total = 2, ok = 2, failed = 0 },
      { total = results.summary.total, ok = results.summary.ok, failed = results.summary.failed })
    assert.is_number(results.summary.seconds)
  end)
end)

describe("termsrv.fleet hosts and options", function()
  it("takes hosts files (text or JSON) and targets that expand (termsrv.targets)", function()
    local path = tmpfile_with('[ "ts01", {"name": "B", "address": "127.0.0.1", "port": 12} ]')
    local f = termsrv.fleet{ hosts = path, connect = { password = "x" } }
    assert.same({ "ts01", "B" }, { f.hosts[1].name, f.hosts[2].name })
    os.remove(path)
    f = termsrv.fleet{ hosts = { "ts[1-3]", { host = "x" } }, connect = { password = "p" } }
    assert.equal(4, #f.hosts)
    assert.has_error(function() termsrv.fleet{ hosts = { "ts[9-1]" }, connect = { password = "p" } } end)
  end)

  it("raises on a malformed hosts file, naming the line", function()
    local path = tmpfile_with("ts01\nts02 ts03 ts04\n")
    local ok, err = pcall(termsrv.fleet, { hosts = path, connect = { password = "x" } })
    assert.is_false(ok)
    assert.equals("termsrv.fleet: " .. path .. ":2: bad host 'ts02 ts03 ts04'",
      err:gsub("^.-fleet_spec%.lua:%d+: ", ""))
    os.remove(path)
    assert.has_error(function() termsrv.fleet{ hosts = "/nonexistent/hosts", connect = { password = "x" } } end)
  end)

  it("raises on bad options", function()
    local ok = { password = "x" }
    assert.has_error(function() termsrv.fleet() end)
    assert.has_error(function() termsrv.fleet{ connect = ok } end, "termsrv.fleet: 'hosts' is required")
    assert.has_error(function() termsrv.fleet{ hosts = {}, parallel = 0, connect = ok } end)
    assert.has_error(function() termsrv.fleet{ hosts = {}, parallel = 2.5, connect = ok } end)
    assert.has_error(function() termsrv.fleet{ hosts = {}, timeout = -1, connect = ok } end)
    assert.has_error(function() termsrv.fleet{ hosts = {}, paralel = 4, connect = ok } end,
      "termsrv.fleet: unknown option 'paralel' (options: connect, connect_timeout, fork, grace, hosts, "
        .. "max_result, parallel, progress, stop, stop_grace, timeout)")
    assert.has_error(function() termsrv.fleet{ hosts = { "ts01" }, connect = { pasword = "x" } } end)
    assert.has_error(function() termsrv.fleet{ hosts = { "ts01" } } end)
    assert.has_error(function() termsrv.fleet{ hosts = { { port = 445 } }, connect = ok } end)
    assert.has_error(function() termsrv.fleet{ hosts = { 42 }, connect = ok } end)
    assert.has_error(function() termsrv.fleet{ hosts = { "ts01" }, connect = ok }:each(42) end)
    -- credentials with the host are enough
    assert.equals(1, #termsrv.fleet{ hosts = { { host = "ts01", nthash = string.rep("0", 32) } } })
    local f = termsrv.fleet{ hosts = { "ts01" }, connect = ok }
    assert.same({ 16, 60 }, { f.parallel, f.timeout })
    assert.equals("termsrv.Fleet(1 hosts, parallel 16, timeout 60s)", tostring(f))
  end)

  it("gives an empty sweep for an empty host list", function()
    local results = termsrv.fleet{ hosts = {}, connect = { password = "x" }, progress = false }:run(print)
    assert.equals(0, #results)
    assert.equals(0, results.summary.total)
  end)
end)

describe("termsrv.serialize", function()
  it("round-trips plain data exactly", function()
    local v = { 1, -2, 3.5, 0.1, 2 ^ 63, math.huge, -math.huge, math.mininteger, "a\0b", "",
                true, false, { nested = { deeper = { "x" } } }, [20] = "sparse", [1.5] = "float key",
                [true] = "bool key", name = "s" }
    local data = assert(serialize.encode(v))
    local back, ok = serialize.decode(data)
    assert.is_true(ok)
    assert.same(v, back)
    assert.equals("integer", math.type(back[1]))
    assert.equals("float", math.type(back[5]))
    local nan = serialize.decode(serialize.encode(0 / 0))
    assert.is_true(nan ~= nan)
    local none, ok2 = serialize.decode(serialize.encode(nil))
    assert.is_nil(none)
    assert.is_true(ok2)
  end)

  it("refuses functions, userdata, cycles and unknown classes, saying where", function()
    local cyc = { a = {} }
    cyc.a.back = cyc
    local cases = {
      { { a = { b = print } }, "a function at value.a.b" },
      { { io.stdout }, "a userdata at value%[1%]" },
      { cyc, "a cycle .* at value.a.back" },
      { { x = setmetatable({}, { __name = "mine" }) }, "metatable 'mine' at value.x" },
      { { [{}] = 1 }, "a table used as a key" },
      { coroutine.create(print), "a thread at value" },
    }
    for _, c in ipairs(cases) do
      local data, err = serialize.encode(c[1])
      assert.is_nil(data)
      assert.matches(c[2], err)
    end
  end)

  it("restores registered classes and rejects damaged data", function()
    local Point = { __name = "spec.Point" }
    Point.__index = Point
    serialize.register(Point)
    local back = serialize.decode(serialize.encode{ p = setmetatable({ x = 1 }, Point) })
    assert.equals(Point, getmetatable(back.p))
    assert.has_error(function() serialize.register({ __name = "spec.Point" }) end)
    local data = serialize.encode{ "abc", { 1, 2 } }
    for _, bad in ipairs{ data:sub(1, -2), data .. "x", "?", "" } do
      local v, ok, err = serialize.decode(bad)
      assert.is_nil(v)
      assert.is_false(ok)
      assert.matches("malformed", err)
    end
  end)
end)

describe("termsrv.progress", function()
  it("writes nothing when the stream is not a terminal, and still keeps the summary", function()
    local f = io.tmpfile()
    local p = progress.new{ total = 3, stream = f }
    assert.is_false(p.enabled)
    p:add(true) p:add(false) p:draw(true) p:clear()
    local s = p:finish()
    assert.same({ 3, 1, 1 }, { s.total, s.ok, s.failed })
    f:seek("set")
    assert.equals("", f:read("a"))
    f:close()
  end)

  it("draws done/total, failures, rate and ETA, and a summary line at the end", function()
    local f = io.tmpfile()
    local now = 100
    local p = progress.new{ total = 4, stream = f, enabled = true, interval = 0, clock = function() return now end }
    now = 102
    p:add(true)
    p:add(false)
    p:set_running(2)
    assert.equals("[2/4]  1 failed  1.0 hosts/s  2 running  ETA 2s  2s", p:line())
    now = 104
    p:add(true)
    p:add(true)
    p:finish()
    f:seek("set")
    local text = f:read("a")
    f:close()
    assert.matches("\r\27%[K%[1/4%]", text)
    assert.matches("4 hosts in 4.0s: 3 ok, 1 failed %(1.0 hosts/s%)\n$", text)
  end)

  it("formats durations and summaries", function()
    assert.equals("4s", progress.format_duration(4.2))
    assert.equals("2m05s", progress.format_duration(125))
    assert.equals("1h02m", progress.format_duration(3720))
    assert.equals("?", progress.format_duration(math.huge))
    assert.equals("10 hosts in 2.0s: 7 ok, 2 failed (4.5 hosts/s), 1 not done",
      progress.summary_line{ total = 10, ok = 7, failed = 2, seconds = 2 })
  end)
end)

describe("handles across fork", function()
  it("a worker cannot use or close its parent's connection, and the parent's keeps working", function()
    local h <close> = assert(termsrv.connect{ host = addr("A2"), user = env.user, domain = env.domain,
      password = env.password })
    assert(h:sessions{ times = false })
    local f = fleet{ hosts = { addr("A3") }, parallel = 1, timeout = 20, connect = connect_opts() }
    local r = f:run(function()
      local ok, msg = pcall(h.sessions, h, { times = false })
      h:close()           -- must not log the parent's SMB session off
      collectgarbage()
      return { ok = ok, msg = tostring(msg) }
    end)[1]
    assert.is_true(r.ok, tostring(r.err))
    assert.is_false(r.value.ok)
    assert.matches("belongs to the parent process", r.value.msg)
    assert.is_truthy(h:sessions{ times = false })
  end)
end)
