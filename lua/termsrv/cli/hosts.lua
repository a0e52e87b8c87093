--- Hosts on the command line: host specs, hosts files, and running a
-- function on every host through termsrv.fleet.
-- @module termsrv.cli.hosts

local fleet = require "termsrv.fleet"
local output = require "termsrv.cli.output"
local targets = require "termsrv.targets"
local util = require "termsrv.cli.util"

local M = {}

local usage_error = util.usage_error

-- ----------------------------------------------------------------------------
-- host specs

--- Splits the positional targets into host specs and integers.
-- The host specs include those of `--hosts` files, each host once; the
-- integers are session ids or pids. Bad ones are usage errors.
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
    elseif numbers_allowed and tonumber(t) then -- 1.5, 1e3, 0x10, -3: numbers, but not ids
      usage_error("'" .. t .. "' is not a session id or pid (plain decimal 0..4294967295) nor a host name")
    else
      -- CIDR blocks and [01-40] ranges stand for several hosts
      local specs, why = targets.specs(t, port or 445)
      if not specs then usage_error(why) end
      table.move(specs, 1, #specs, #hosts + 1, hosts)
    end
  end
  for _, path in ipairs(util.list(args.hosts)) do
    local specs, perr = targets.read_hosts(path, port or 445)
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

-- ----------------------------------------------------------------------------
-- running a function on every host

--- Runs `fn(h, spec)` on every host of `ctx.hosts` with a connected handle,
-- through termsrv.fleet: in parallel worker processes with `ctx.jobs > 1`
-- and more than one host; otherwise in this process, where the deadline
-- (`ctx.host_timeout`) holds between calls and bounds each call. A failing
-- host never stops the others; the results come back in
-- the order the hosts were given: `{host=, spec=, ok=, value=, err=,
-- duration=, not_started=, partial=}` (`partial`: the rows a host that gave
-- no answer sent as it went). `fn` must return plain data (records keep
-- their metatables); a value with `err` marks the host as failed.
-- `ctx.on_host(result)`, when set, gets each host's result as that host
-- finishes (the streaming output of JSON Lines and CSV); `ctx.after_hosts`
-- gets every result once all are in, in host order (table output).
-- @tparam table ctx `hosts`, `connect` (termsrv.connect options without host),
--   `jobs`, `host_timeout`, `stop`, `on_host` (a progress line shows on a terminal for more
--   than one host)
-- @tparam function fn
-- @treturn {table,...}
function M.run_hosts(ctx, fn)
  -- the session-control methods must be on host handles before workers fork
  require "termsrv"
  local hosts = ctx.hosts
  local f = fleet.new{ hosts = hosts, parallel = ctx.jobs or 1, connect = ctx.connect,
    connect_timeout = ctx.connect.connect_timeout, progress = #hosts > 1 and nil or false, stop = ctx.stop,
    timeout = ctx.host_timeout, fork = (ctx.jobs or 1) > 1 and #hosts > 1 }
  -- once a host has started, an error is the run's: running hosts again would act twice
  local out = {}
  local iter, _, _, sweep = f:each(fn)
  local sweep_close <close> = sweep -- luacheck: ignore 211
  for r in iter do
    local x = { host = r.host, spec = hosts[r.index], ok = r.ok, value = r.value, err = r.err,
                duration = r.duration, not_started = r.not_started,
                partial = not r.ok and (r.value and r.value.results or r.notes) or nil }
    out[r.index] = x
    if ctx.on_host then ctx.on_host(x) end
  end
  -- tables come out once every host has answered: their diagnostics too,
  -- in the order the hosts were given (the same whatever -j)
  if ctx.after_hosts then for _, x in ipairs(out) do ctx.after_hosts(x) end end
  return out
end

return M
