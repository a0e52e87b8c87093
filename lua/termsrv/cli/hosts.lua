--- Hosts on the command line: host specs, hosts files, and running a
-- function on every host (in parallel through termsrv.fleet, or one after
-- another in this process).
-- @module termsrv.cli.hosts

local errors = require "termsrv.error"
local output = require "termsrv.cli.output"
local util = require "termsrv.cli.util"

local M = {}

local usage_error = util.usage_error

-------------------------------------------------------------------------------
-- host specs

local function split_hostport(s)
  local h, p = s:match("^%[(.+)%]:(%d+)$")
  if not h then h, p = s:match("^([^:]+):(%d+)$") end
  if h then return h, tonumber(p) end
  return s:match("^%[(.+)%]$") or s, nil
end

--- One host spec from `ADDRESS[:PORT]` or `LABEL=ADDRESS[:PORT]`.
-- @tparam string text
-- @tparam[opt] integer default_port
-- @tparam[opt] string label
-- @treturn[1] table `{host=, port=, name=}`
-- @treturn[2] nil
-- @treturn[2] string message
function M.parse_host(text, default_port, label)
  if type(text) ~= "string" or text == "" then return nil, "empty host name" end
  local name, addr = text:match("^([^=]+)=(.+)$")
  addr = addr or text
  local host, port = split_hostport(addr)
  if not host or host == "" or host:find("[%s/\\]") then return nil, "bad host '" .. text .. "'" end
  if port and (port < 1 or port > 65535) then return nil, "bad port in '" .. text .. "'" end
  return { host = host, port = port or default_port or 445, name = label or name or text }
end

--- Host specs from the text of a hosts file: one host per line
-- (`ADDRESS[:PORT] [LABEL]` or `LABEL=ADDRESS[:PORT]`, `#` comments), or a
-- JSON array of strings or `{name=, host= | address=, port=}` objects.
-- @tparam string text
-- @tparam[opt] integer default_port
-- @tparam[opt="hosts file"] string where for messages
-- @treturn[1] {table,...}
-- @treturn[2] nil
-- @treturn[2] string message
function M.parse_hosts_file(text, default_port, where)
  where = where or "hosts file"
  local out = {}
  if text:match("^%s*%[") then
    local v, _, err = require("dkjson").decode(text)
    if type(v) ~= "table" then return nil, where .. ": bad JSON: " .. tostring(err) end
    for i, e in ipairs(v) do
      local spec, perr
      if type(e) == "string" then
        spec, perr = M.parse_host(e, default_port)
      elseif type(e) == "table" and type(e.host or e.address) == "string" then
        local addr = e.host or e.address
        if e.port then addr = (addr:find(":", 1, true) and ("[" .. addr .. "]") or addr) .. ":" .. e.port end
        spec, perr = M.parse_host(addr, default_port, e.name)
      else
        perr = "entry " .. i .. ": string or {host=, port=, name=} expected"
      end
      if not spec then return nil, where .. ": " .. perr end
      out[#out + 1] = spec
    end
    return out
  end
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" then
      local addr, label = line:match("^(%S+)%s+(%S+)$")
      local spec, err = M.parse_host(addr or line, default_port, label)
      if not spec then return nil, string.format("%s, line %d: %s", where, n, err) end
      out[#out + 1] = spec
    end
  end
  return out
end

--- Splits the positional targets into host specs (with those of `--hosts`
-- files, each host once) and integers (session ids, pids). Bad ones are
-- usage errors.
-- @treturn {table,...} host specs
-- @treturn {integer,...} numbers
function M.targets(ctx, args, numbers_allowed)
  local hosts, nums = {}, {}
  local port = args.port
  for _, t in ipairs(util.list(args.target)) do
    if t:match("^%d+$") then
      if not numbers_allowed then usage_error("'" .. t .. "' is not a host name") end
      -- ids and pids are 32-bit: a larger number would wrap onto another session
      local n = #t <= 10 and math.tointeger(tonumber(t))
      if not n or n > 0xFFFFFFFF then
        usage_error("'" .. t .. "' is out of range: session ids and pids are 0..4294967295")
      end
      nums[#nums + 1] = n
    elseif numbers_allowed and (t:match("^[%+%-]%d") or t:match("^%d+[%.eE]") or t:match("^0[xX]%x+$")) then
      usage_error("'" .. t .. "' is not a session id or pid (plain decimal 0..4294967295) nor a host name")
    else
      local spec, err = M.parse_host(t, port)
      if not spec then usage_error(err) end
      hosts[#hosts + 1] = spec
    end
  end
  for _, path in ipairs(util.list(args.hosts)) do
    local f, err = io.open(path, "r")
    if not f then usage_error("cannot read hosts file: " .. tostring(err)) end
    local text = f:read("a")
    f:close()
    local specs, perr = M.parse_hosts_file(text, port, path)
    if not specs then usage_error(perr) end
    for _, s in ipairs(specs) do hosts[#hosts + 1] = s end
  end
  if #hosts == 0 then usage_error("no hosts: give HOST... or --hosts FILE") end
  local seen, uniq = {}, {}
  for _, s in ipairs(hosts) do
    if seen[s.name] then
      output.diag(ctx, "termsrv: " .. s.name .. " is given twice; using it once")
    else
      seen[s.name] = true
      uniq[#uniq + 1] = s
    end
  end
  return uniq, nums
end

-------------------------------------------------------------------------------
-- running a function on every host

local function now()
  local ok, system = pcall(require, "system")
  if ok and type(system) == "table" and system.monotime then return system.monotime() end
  return os.time()
end

local function fleet_module()
  local ok, m = pcall(require, "termsrv.fleet")
  if not ok then return nil end
  if type(m) == "function" then return m end
  if type(m) == "table" then
    local mt = getmetatable(m)
    if mt and mt.__call then return function(...) return m(...) end end
    if type(m.new) == "function" then return m.new end
    if type(m.fleet) == "function" then return m.fleet end
  end
  return nil
end

-- Error objects that crossed a process boundary as plain tables get their
-- metatable back, so that tostring() gives the usual one line.
local function revive(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return v end
  seen[v] = true
  if getmetatable(v) == nil and type(v.code) == "string" and (v.message ~= nil or v.op ~= nil) then
    setmetatable(v, errors.Error)
  end
  for _, x in pairs(v) do revive(x, seen) end
  return v
end

-- In worker processes: results in the order of the hosts; a host the fleet
-- gave no result for counts as a crashed worker. nil and a message when the
-- fleet itself failed.
local function run_fleet(ctx, make, fn)
  local hosts = ctx.hosts
  local opts = { hosts = hosts, parallel = ctx.jobs, connect = ctx.connect,
                 connect_timeout = ctx.connect.connect_timeout, progress = ctx.progress }
  if ctx.host_timeout then opts.timeout = ctx.host_timeout end
  if ctx.stop then opts.stop = ctx.stop end
  local ok, f = pcall(make, opts)
  if not (ok and f) then return nil, tostring(f) end
  -- not in a pcall: once workers have started, an error is the run's, and
  -- re-running the hosts elsewhere would act twice
  local results = f:run(function(h, spec) return fn(h, spec, true) end)
  local by_name, out = {}, {}
  for i, spec in ipairs(hosts) do by_name[spec.name] = i end
  for _, r in ipairs(results) do
    local i = math.type(r.index) == "integer" and hosts[r.index] and r.index or by_name[r.host]
    if i and not out[i] then
      out[i] = { host = r.host, spec = hosts[i], ok = r.ok, value = revive(r.value),
                 err = revive(r.err), duration = r.duration, not_started = r.not_started,
                 -- what a worker that gave no answer reported as it went
                 partial = not r.ok and revive(r.value and r.value.results or r.notes) or nil }
    end
  end
  for i, spec in ipairs(hosts) do
    if not out[i] then
      out[i] = { host = spec.name, spec = spec, ok = false, err = errors.new{ code = "worker_crashed",
        host = spec.name, op = "fleet", message = "no result for this host" } }
    end
  end
  return out
end

-- One host after another in this process.
local function run_here(ctx, fn)
  local termsrv = require "termsrv"
  local out = {}
  for i, spec in ipairs(ctx.hosts) do
    if ctx.stop and ctx.stop() then
      out[i] = { host = spec.name, spec = spec, ok = false, not_started = true, err = errors.new{
        code = "stopped", host = spec.name, op = "termsrv", message = "not started: the run was stopped" } }
      goto continue
    end
    local o = util.copy(ctx.connect)
    o.host, o.port, o.name = spec.host, spec.port, spec.name
    local t0 = now()
    -- connect raises on options it cannot use (e.g. --kerberos with --rpc-auth privacy)
    local okc, h, err = pcall(termsrv.connect, o)
    if not okc then
      h, err = nil, errors.new{ code = "invalid_parameter", host = spec.name, op = "connect",
                                message = tostring(h):gsub("^[^:]*:%d+: ", "") }
    end
    local r = { host = spec.name, spec = spec }
    if not h then
      r.ok, r.err = false, err
    else
      local ok, v = pcall(fn, h, spec, false)
      if ok then
        r.ok, r.value = true, v
      else
        r.ok, r.err = false, errors.new{ code = "internal", host = spec.name, op = "termsrv",
                                          message = tostring(v) }
      end
      h:close()
    end
    r.duration = now() - t0
    out[i] = r
    ::continue::
  end
  return out
end

--- Runs `fn(h, spec)` on every host of `ctx.hosts` with a connected handle.
-- With `ctx.jobs > 1` and termsrv.fleet installed, hosts run in parallel
-- worker processes; otherwise one after another in this process. Either way a
-- failing host never stops the others, and the results come back in the
-- order the hosts were given: `{host=, spec=, ok=, value=, err=, duration=}`.
-- `fn` must return plain data (records keep their metatables) and not raise;
-- a value with `err` marks the host as failed.
-- Sets `ctx.used_fleet` when the hosts ran in workers, and `ctx.fleet_error`
-- when they should have but could not.
-- @tparam table ctx `hosts`, `connect` (termsrv.connect options without host),
--   `jobs`, `host_timeout`, `progress`, `fleet` (constructor instead of
--   termsrv.fleet's; false: never use one)
-- @tparam function fn
-- @treturn {table,...}
function M.run_hosts(ctx, fn)
  -- the session-control methods must be on host handles before workers fork
  require "termsrv"
  -- a deadline needs a worker to end: --host-timeout runs even one host in one
  local make = ((ctx.jobs or 1) > 1 and #ctx.hosts > 1) or ctx.host_timeout ~= nil
  if make then
    if ctx.fleet == nil then make = fleet_module() else make = ctx.fleet end
    if not make then ctx.fleet_error = "termsrv.fleet is not available" end
  end
  if make then
    local results, err = run_fleet(ctx, make, fn)
    if results then
      ctx.used_fleet = true
      return results
    end
    -- the fleet could not be set up: no worker has started, nothing was done
    ctx.fleet_error = err
  end
  return run_here(ctx, fn)
end

return M
