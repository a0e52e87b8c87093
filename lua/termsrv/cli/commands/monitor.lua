--- `termsrv check` (a Nagios/Icinga/Checkmk plugin) and `termsrv metrics`
-- (Prometheus text exposition, for node_exporter's textfile collector).
-- The counting, thresholds and formats are termsrv.monitor's; this module
-- lists the hosts and writes the result.
-- @module termsrv.cli.commands.monitor

local errors = require "termsrv.error"
local hosts = require "termsrv.cli.hosts"
local monitor = require "termsrv.monitor"
local output = require "termsrv.cli.output"

local M = {}

--- `check`'s deadline per host when --host-timeout is not given: a plugin
-- must answer before the monitoring system's own check timeout (60 s by
-- default in Nagios and Icinga 2).
M.CHECK_HOST_TIMEOUT = 30

--- What a plugin prints and returns when it cannot check at all (usage,
-- credentials, internal errors): one UNKNOWN status line, exit 3.
function M.unknown(ctx, msg)
  ctx.stdout:write("TERMSRV UNKNOWN - ", (tostring(msg):gsub("\n.*", ""):gsub("|", "/")), "\n")
  return monitor.UNKNOWN
end

-- The one-line text of a host's error, without its host name (the line
-- names the host already).
local function error_text(e)
  if getmetatable(e) ~= errors.Error then return tostring(e) end
  local t = {}
  for k, v in pairs(e) do t[k] = v end
  t.host = nil
  if t.code == "timeout" and t.op == "fleet" then
    t.hint = "the host or the network is slow or hung; raise --host-timeout if it is only slow"
  end
  return tostring(setmetatable(t, errors.Error))
end

-- The function each host runs: counts of its sessions (with the times the
-- ages need), or the error; a listing that cannot see every session is an
-- error here, since its counts would be too low. With `capacity` (no
-- --slots given) it also asks the host for its connection limit, on the
-- listener of the same listing (one more call); `capacity_unknown` says
-- why when the host does not say.
local function survey(stale, capacity)
  return function(h)
    local l, err = h:sessions{ all = capacity, times = true }
    if not l then return { err = err } end
    if l.partial then
      return { err = errors.new{ code = "access_denied", host = h.name, op = "list sessions",
        message = l.partial, hint = "use an account that administers the host: counts of only some "
          .. "sessions would be wrong" } }
    end
    local v = { tally = monitor.tally(l, stale), problems = l.errors and #l.errors or 0 }
    if capacity then
      local cap, cerr = h:capacity{ sessions = l }
      if cap then
        v.capacity = { limit = cap.limit, unlimited = cap.unlimited }
      else
        -- the reason in a few words: what Windows answered, not which call
        local why = tostring(cerr.message or cerr.code):gsub("^RpcWinStation%w*%b(): ", "")
        if cerr.status_name then why = why .. " [" .. cerr.status_name .. "]" end
        v.capacity_unknown = { code = cerr.code, text = why }
      end
    end
    return v
  end
end

-- The connection limit a host's counts are judged against: --slots, else
-- what the host said. -> slots, from ("option"/"host"), unlimited, why unknown
local function slots_of(args, value)
  if args.slots then return args.slots, "option" end
  local cap = value.capacity
  if cap then return cap.limit, "host", cap.unlimited end
  local u = value.capacity_unknown
  return nil, nil, false,
    u and ("the host does not say its connection limit: " .. u.text .. "; give it with --slots N")
end

local function thresholds(args)
  local th = {}
  for _, c in ipairs(monitor.CHECKS) do
    th[c.key] = { warn = args["warning_" .. c.key], crit = args["critical_" .. c.key] }
  end
  return th
end

function M.check(ctx, args)
  local th = thresholds(args)
  if not ctx.host_timeout then ctx.host_timeout = M.CHECK_HOST_TIMEOUT end
  local error_state = args.error_state == "critical" and monitor.CRITICAL or monitor.UNKNOWN
  local results = hosts.run_hosts(ctx, survey(args.stale, args.slots == nil))
  local multi = #results > 1
  local judged, totals, answered = {}, { in_use = 0, disconnected = 0, stale = 0 }, 0
  for i, r in ipairs(results) do
    local e = output.host_err(r)
    if e then
      judged[i] = { name = r.host, state = error_state, text = error_text(e) }
    else
      local t = r.value.tally
      local slots, from, unlimited, why = slots_of(args, r.value)
      local j = monitor.judge(t, { thresholds = th, stale = args.stale, slots = slots, slots_from = from,
                                   unlimited = unlimited, slots_unknown = why,
                                   prefix = multi and r.host .. "::" or nil })
      if r.value.problems > 0 then
        j.text = j.text .. string.format(" (%d session detail%s could not be read)", r.value.problems,
          r.value.problems == 1 and "" or "s")
      end
      j.name = r.host
      judged[i] = j
      answered = answered + 1
      totals.in_use = totals.in_use + t.in_use
      totals.disconnected = totals.disconnected + t.disconnected
      totals.stale = totals.stale + t.stale
    end
  end
  local text, code = monitor.plugin_output(judged, answered > 0 and totals or nil)
  ctx.stdout:write(text)
  return code
end

-- A name nobody can guess: io.open cannot refuse to follow a symlink, so
-- the temporary file's name must not be one another user could plant.
local function random_hex(n)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(n)
  if f then f:close() end
  if not bytes or #bytes ~= n then
    bytes = string.pack("<I4d", require("termsrv.proc").getpid(), os.clock() + os.time())
  end
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- Writes `data` to `path` through a temporary file in the same directory
-- and a rename, so that a reader sees the old file or the new one, never a
-- part. The temporary name starts with a dot and does not end in .prom
-- (the textfile collector reads only *.prom). The file gets the usual mode
-- (0666 less the umask): the collector runs as another user.
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] termsrv.Error (`bad_path`, `write_failed`)
function M.write_atomic(path, data)
  local dir, base = path:match("^(.*/)([^/]+)$")
  if not dir then dir, base = "", path end
  if path:sub(-1) == "/" or base == "" or base == "." or base == ".." then
    return nil, errors.new{ code = "bad_path", message = "'" .. path .. "' is not a file name" }
  end
  local tmp = string.format("%s.%s.%s.tmp", dir, base, random_hex(8))
  local function fail(err)
    os.remove(tmp)
    return nil, errors.new{ code = "write_failed", op = "write " .. path, message = tostring(err) }
  end
  local f, err = io.open(tmp, "w")
  if not f then return fail(err) end
  local ok, werr = f:write(data)
  if not ok then f:close(); return fail(werr) end
  local closed, cerr = f:close()
  if not closed then return fail(cerr) end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then return fail(rerr) end
  return true
end

function M.metrics(ctx, args)
  local results = hosts.run_hosts(ctx, survey(args.stale, args.slots == nil))
  output.report_host_errors(ctx, results)
  local list, outcomes = {}, {}
  for i, r in ipairs(results) do
    local e = output.host_err(r)
    list[i] = { name = r.host, up = e == nil, duration = r.duration,
                slots = not e and (slots_of(args, r.value)) or args.slots,
                tally = not e and r.value.tally or nil,
                error_code = e and (type(e) == "table" and e.code or "error") or nil }
    outcomes[i] = e and "failed" or "ok"
  end
  local text = monitor.exposition(monitor.families(list, { stale = args.stale }))
  if args.output then
    local ok, err = M.write_atomic(args.output, text)
    if not ok then
      output.diag(ctx, "termsrv: " .. tostring(err))
      return output.EXIT_FAILED
    end
  else
    ctx.stdout:write(text)
  end
  return output.exit_of(outcomes)
end

return M
