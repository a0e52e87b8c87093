-- One measured sweep for bench/run.py: lists the sessions of every host in
-- a hosts file, either in a plain sequential loop (what a script does today)
-- or with termsrv.fleet, and prints one JSON line of measurements.
--
--   lua5.4 bench/sweep.lua loop  HOSTS USER DOMAIN PASSWORD
--   lua5.4 bench/sweep.lua fleet HOSTS USER DOMAIN PASSWORD PARALLEL
--
-- Run as its own process per mode, so that peak RSS and CPU time are this
-- mode's alone.
local termsrv = require "termsrv"
local proc = require "termsrv.proc"
local json = require "dkjson"

local mode, file, user, domain, password, parallel = table.unpack(arg)
if not (mode and file and user and domain and password) then
  io.stderr:write("usage: sweep.lua loop|fleet HOSTS USER DOMAIN PASSWORD [PARALLEL]\n")
  os.exit(2)
end

local out = { mode = mode, ok = 0, failed = 0, smb_round_trips = 0, rpc_calls = 0, sessions = 0,
              errors = {} }

local function count(ok, value, err)
  if ok then
    out.ok = out.ok + 1
    out.sessions = out.sessions + value.n
    out.smb_round_trips = out.smb_round_trips + value.stats.smb_round_trips
    out.rpc_calls = out.rpc_calls + value.stats.rpc_calls
  else
    out.failed = out.failed + 1
    local code = err and err.code or "?"
    out.errors[code] = (out.errors[code] or 0) + 1
  end
end

-- the work per host: a default listing, and the client's own counters
local function list(h)
  local l, err = h:sessions()
  if not l then return nil, err end
  return { n = #l, stats = h:stats() }
end

local started = proc.clock()
if mode == "loop" then
  local hosts = assert(require("termsrv.targets").read_hosts(file))
  out.hosts = #hosts
  for _, spec in ipairs(hosts) do
    local h, err = termsrv.connect{ host = spec.host, port = spec.port, user = user, domain = domain,
                                    password = password }
    local value
    if h then
      value, err = list(h)
      h:close()
    end
    count(value ~= nil, value, err)
  end
elseif mode == "fleet" then
  local f = termsrv.fleet{ hosts = file, parallel = math.tointeger(tonumber(parallel)) or 32,
    timeout = 60, progress = false, connect = { user = user, domain = domain, password = password } }
  out.hosts = #f
  out.parallel = f.parallel
  for r in f:each(list) do count(r.ok, r.value, r.err) end
else
  error("mode must be loop or fleet")
end
out.wall = proc.clock() - started

local self, children = proc.rusage("self"), proc.rusage("children")
out.cpu_self = self.utime + self.stime
out.cpu_children = children.utime + children.stime
out.maxrss_self = self.maxrss
out.maxrss_children = children.maxrss
io.write(json.encode(out), "\n")
