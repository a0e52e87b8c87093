-- Test helper for the simulated Windows terminal server in sim/.
--
--   local sim = require "support.sim"
--   local env = sim.start{ config = "spec/fixtures/hosts.lua" }   -- both fields optional
--   ... env.host, env.port, env.user, env.password, env.domain, env.nonadmin_user,
--       env.nonadmin_password, env.dir, env.log, env.hosts, env.hostlist ...
--   sim.calls(env, { method = "RpcGetAllSessions" })   -- decoded call-log records
--   sim.ctl(env, "set-fault", "TS01", "delay", 0.5)    -- decoded JSON reply
--   sim.state(env, "TS01")
--   sim.stop(env)
--
-- Child processes run without LD_PRELOAD / ASAN_OPTIONS so that sanitizer runs of
-- the test suite do not leak into smbd and python (see LUA-NOTES 5.2).

local json = require "dkjson"

local sim = {}

-- The repository root, from this file's own path (spec/support/sim.lua).
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/support/sim.lua"
local root = here:match("^(.*)/spec/support/sim%.lua$") or "."
sim.root = root

local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local util = require "support.util"
local quote, read_file = util.quote, util.slurp

-- Runs a command (arguments are quoted here); returns stdout, ok, exit code, stderr.
local function run(args)
  local parts = {}
  for i, a in ipairs(args) do parts[i] = quote(a) end
  local errfile = os.tmpname()
  local p = assert(io.popen(CLEAN_ENV .. table.concat(parts, " ") .. " 2>" .. quote(errfile), "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  local err = read_file(errfile) or ""
  os.remove(errfile)
  return out, ok, code, err
end
sim.run = run

local function decode(text, what)
  local value, _, err = json.decode(text)
  if err or value == nil then
    error(("%s: cannot decode JSON (%s): %s"):format(what, tostring(err), text), 3)
  end
  return value
end

--- Starts a simulator; raises on failure.
-- opts.config: Lua or JSON config file (default: the built-in host TS01), or
-- opts.config_text: the source of a Lua config;
-- opts.dir: state directory to create (default /tmp/tss.XXXXXX).
function sim.start(opts)
  opts = opts or {}
  local args = { root .. "/sim/start" }
  local scratch
  if opts.config_text then
    -- a config written by the spec itself: the simulator reads .lua files as Lua
    local base = os.tmpname()
    scratch = base .. ".lua"
    local f = assert(io.open(scratch, "w"))
    f:write(opts.config_text)
    f:close()
    os.remove(base)
    opts = { config = scratch, dir = opts.dir }
  end
  if opts.config then args[#args + 1] = "--config"; args[#args + 1] = opts.config end
  if opts.dir then args[#args + 1] = "--dir"; args[#args + 1] = opts.dir end
  local out, ok, code, err = run(args)
  if scratch then os.remove(scratch) end
  local dir = out:match("TERMSRV_SIM_DIR=([^\n]+)")
  if not ok or not dir then
    error(("sim/start failed (exit %s): %s%s"):format(tostring(code), err, out), 2)
  end
  local v = decode(assert(read_file(dir .. "/env.json")), "env.json")
  local env = {
    dir = v.TERMSRV_SIM_DIR, host = v.TERMSRV_SIM_HOST, port = tonumber(v.TERMSRV_SIM_PORT),
    name = v.TERMSRV_SIM_NAME, user = v.TERMSRV_SIM_USER, password = v.TERMSRV_SIM_PASSWORD,
    domain = v.TERMSRV_SIM_DOMAIN, nonadmin_user = v.TERMSRV_SIM_NONADMIN_USER,
    nonadmin_password = v.TERMSRV_SIM_NONADMIN_PASSWORD, log = v.TERMSRV_SIM_LOG,
    hosts_file = v.TERMSRV_SIM_HOSTS_FILE, hostlist = v.TERMSRV_SIM_HOSTLIST,
  }
  env.hosts = decode(assert(read_file(env.hosts_file)), "hosts.json")
  env.ports = {} -- port by host name, the way specs dial a host
  for _, h in ipairs(env.hosts) do env.ports[h.name] = h.port end
  return env
end

--- Stops the simulator and removes its directory; idempotent.
function sim.stop(env)
  if not env or env.stopped then return end
  local _, ok, code, err = run({ root .. "/sim/stop", env.dir })
  if not ok then error(("sim/stop failed (exit %s): %s"):format(tostring(code), err), 2) end
  env.stopped = true
end

local function matches(record, filter)
  if type(filter) == "function" then return filter(record) end
  for k, v in pairs(filter) do
    if record[k] ~= v then return false end
  end
  return true
end

--- The call log as an array of records, optionally filtered by a table of
-- field = value (all must match) or by a function(record) -> boolean.
function sim.calls(env, filter)
  local records = {}
  local f = io.open(env.log, "r")
  if not f then return records end
  for line in f:lines() do
    if line ~= "" then
      local record = decode(line, "call log")
      if not filter or matches(record, filter) then records[#records + 1] = record end
    end
  end
  f:close()
  return records
end

function sim.clear_log(env)
  return sim.ctl(env, "clear-log")
end

--- Runs sim/ctl; table arguments are sent as JSON.  Raises on a control error.
function sim.ctl(env, cmd, ...)
  local args = { root .. "/sim/ctl", env.dir, cmd }
  for _, a in ipairs({ ... }) do
    args[#args + 1] = type(a) == "table" and json.encode(a) or tostring(a)
  end
  local out, ok, code, err = run(args)
  if not ok then
    error(("sim/ctl %s failed (exit %s): %s%s"):format(cmd, tostring(code), out, err), 2)
  end
  return decode(out, "sim/ctl " .. cmd)
end

function sim.state(env, host)
  return sim.ctl(env, "state", host or env.hosts[1].name)
end

--- Runs sim/selftest.py (impacket's DCE/RPC client) against a host of env.
-- opts: port, user, password, domain, level, timeout, max_recv_frag, rpc_password
-- (defaults: the first host with the admin account); returns the decoded array
-- of per-op results.
function sim.selftest(env, opts, ...)
  opts = opts or {}
  local args = {
    "/usr/bin/python3", root .. "/sim/selftest.py",
    "--port", opts.port or env.port,
    "--user", opts.user or env.user,
    "--password", opts.password or env.password,
    "--domain", opts.domain or env.domain,
    "--level", opts.level or 6,
    "--timeout", opts.timeout or 5,
  }
  if opts.max_recv_frag then
    args[#args + 1] = "--max-recv-frag"; args[#args + 1] = opts.max_recv_frag
  end
  if opts.rpc_password then
    args[#args + 1] = "--rpc-password"; args[#args + 1] = opts.rpc_password
  end
  if opts.kerberos_ccache then
    args[#args + 1] = "--kerberos-ccache"; args[#args + 1] = opts.kerberos_ccache
  end
  for _, op in ipairs({ ... }) do args[#args + 1] = op end
  local out, ok, code, err = run(args)
  if not ok then
    error(("selftest.py failed (exit %s): %s%s"):format(tostring(code), err, out), 2)
  end
  return decode(out, "selftest.py")
end

return sim
