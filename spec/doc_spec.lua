-- The API reference (`make doc`): LDoc runs without a warning, the table
-- termsrv.help prints (lua/termsrv/helpdata.lua) is what LDoc sees today, and
-- every public function and method -- of every module the rockspec installs,
-- of the C modules, and of each object a user gets (host handle, session
-- record, list, plan, step, results, fleet, fleet job and result, audit
-- logger, error...) -- is in it, the way luv checks its docs' coverage. Every
-- such object prints as text, never as `table: 0x...`.
local sim = require "support.sim"
local util = require "support.util"

local q = util.quote

local function sh(cmd)
  local p = assert(io.popen("{ " .. cmd .. "; } 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

-- The names of the functions of `x` that the reference does not document.
local function undocumented(x)
  local help = require "termsrv.help"
  local entries, name = help.entries(x)
  assert(entries, "termsrv.help does not know " .. tostring(x))
  local missing = {}
  for _, e in ipairs(entries) do
    if not e[3] then missing[#missing + 1] = e[1] end
  end
  return missing, name
end

describe("make doc", function()
  local tmp
  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
  end)
  teardown(function() os.execute("rm -rf " .. q(tmp) .. " " .. q(tmp .. ".lua")) end)

  it("runs LDoc over the tree without a warning", function()
    local out, ok = sh("ldoc -d " .. q(tmp) .. " .")
    assert.is_true(ok, out)
    local warnings = out:gsub("reading configuration from config.ld\n", ""):gsub("output written to [^\n]*\n", "")
    assert.equals("", warnings)
    assert.truthy(util.slurp(tmp .. "/modules/termsrv.host.html"))
    assert.truthy(util.slurp(tmp .. "/modules/termsrv.core.html"))
  end)

  it("left lua/termsrv/helpdata.lua as LDoc sees the comments today (else: run make doc)", function()
    local out, ok = sh("TERMSRV_HELPDATA=" .. q(tmp .. ".lua") .. " LUA_PATH='./doc-src/?.lua;;' "
      .. "ldoc --filter helpgen.write .")
    assert.is_true(ok, out)
    assert.equals(util.slurp(tmp .. ".lua"), util.slurp("lua/termsrv/helpdata.lua"),
      "lua/termsrv/helpdata.lua is stale: run `make doc` and commit it")
  end)
end)

describe("the reference documents", function()
  it("every function of every module the rockspec installs, and of the C modules", function()
    local env = {}
    assert(loadfile("termsrv-scm-1.rockspec", "t", env))()
    local missing = {}
    local names = {}
    for name in pairs(env.build.modules) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      -- the command modules' functions are `fn(ctx, args)` handlers of the CLI
      -- (documented by their module and --help), not a library API
      if name ~= "termsrv.helpdata" and not name:find("^termsrv%.cli%.commands%.") then
        local mod = require(name)
        assert(require("termsrv.helpdata")[name], "module " .. name .. " is not in the reference")
        if type(mod) == "table" then
          for _, f in ipairs((undocumented(mod))) do missing[#missing + 1] = f end
        end
      end
    end
    assert.same({}, missing)
  end)

  describe("the methods of the objects a user gets", function()
    local env, termsrv, h, objects, crossed
    setup(function()
      env = sim.start()
      termsrv = require "termsrv"
      h = assert(termsrv.connect{ host = env.host, port = env.port, user = env.domain .. "\\" .. env.user,
                                  password = env.password })
      local list = assert(h:sessions())
      local p = assert(termsrv.plan(h, { name = "stale", state = "disc", min_disconnected = "8h",
                                         action = "logoff" }))
      local none = assert(termsrv.plan(h, { name = "none", state = "disc", min_disconnected = "100d",
                                            action = "logoff" }))
      local log = termsrv.audit.memory()
      local fleet = termsrv.fleet.new{ hosts = { { name = "TS01", host = env.host, port = env.port } },
                                       connect = { user = env.domain .. "\\" .. env.user,
                                                   password = env.password }, progress = false }
      local run = fleet:run("server_time")
      crossed = fleet:run(function(hh) return { stats = hh:stats(), pipes = hh:pipes(), status = termsrv.strerror(5) } end)
      local job = fleet:start("server_time")
      while not job:done() do job:step() end
      job:close()
      objects = {
        { "host handle", h }, { "session list", list }, { "session record", list[1] },
        { "plan", p }, { "plan step", p.steps[1] }, { "results", none:apply{ audit = log } },
        { "audit logger", log }, { "error", termsrv.error.new{ code = "x", message = "y" } },
        { "fleet", fleet }, { "fleet results", run }, { "fleet result", run[1] }, { "fleet job", job },
        { "process", assert(h:processes())[1] },
        { "action result", setmetatable({ host = "TS01", id = 2, action = "logoff", ok = true },
                                        require("termsrv.control").Result) },
        { "connection", require("termsrv.host").conn(h) },
        { "policy", termsrv.policy.new{ name = "x", state = "disc", action = "logoff" } },
        { "selector", termsrv.select.compile{ state = "disc" } },
        { "summary", termsrv.report.summary(list) },
        { "status", termsrv.strerror(5) }, { "stats", h:stats() }, { "pipes", h:pipes() },
      }
    end)
    teardown(function()
      if h then h:close() end
      sim.stop(env)
    end)

    it("are all in the reference", function()
      local missing = {}
      for _, o in ipairs(objects) do
        local m, class = undocumented(o[2])
        for _, f in ipairs(m) do missing[#missing + 1] = o[1] .. " (" .. class .. "): " .. f end
      end
      assert.same({}, missing)
    end)

    it("print as text, not as a table's address", function()
      for _, o in ipairs(objects) do
        assert.not_matches("^table: 0x", tostring(o[2]), o[1])
      end
      assert.equals("termsrv " .. termsrv.version .. " (termsrv.help() lists the modules)", tostring(termsrv))
      assert.matches("^access_denied: access denied %[Win32 0x00000005 ERROR_ACCESS_DENIED%] %(hint: ",
        tostring(termsrv.strerror(5)))
      assert.matches("^bytes_in=%d+ bytes_out=%d+ .* tcp_connects=1$", tostring(h:stats()))
      -- and so do they when a fleet worker sends them back
      local v = assert(crossed[1].value, tostring(crossed[1]))
      assert.matches("^bytes_in=%d+ ", tostring(v.stats))
      assert.matches("^access_denied: ", tostring(v.status))
    end)

    it("termsrv.help prints them one line each", function()
      local buf = {}
      local out = { write = function(self, ...) for _, s in ipairs{ ... } do buf[#buf + 1] = s end return self end }
      termsrv.help(h, out)
      local text = table.concat(buf)
      assert.matches("^Host %(termsrv.host, termsrv.control, termsrv.processes%)\n", text)
      assert.matches("\n  Host:sessions%(%[opts%]%)%s+Lists the sessions of the host%.\n", text)
      assert.matches("\n  Host:logoff%(s%[, opts%]%)%s+Logs a session off", text) -- from termsrv.control
      assert.not_matches("undocumented", text)
      buf = {}
      termsrv.help(objects[3][2], out)
      assert.matches("\n  Session:account%(t%)%s+", table.concat(buf)) -- documented as termsrv.record.account
      buf = {}
      termsrv.help(nil, out)
      assert.matches("\n  termsrv.select%s+", table.concat(buf))
      buf = {}
      termsrv.help("Host:sessions", out)
      assert.equals("Host:sessions([opts])  (termsrv.host)  Lists the sessions of the host.\n", table.concat(buf))
      buf = {}
      termsrv.help(termsrv, out)
      assert.matches("\n  termsrv.connect%(opts%)%s+", table.concat(buf))
    end)
  end)
end)
