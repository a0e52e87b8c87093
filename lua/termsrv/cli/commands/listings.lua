--- `termsrv sessions` (qwinsta) and `termsrv users` (quser).
-- @module termsrv.cli.commands.listings

local hosts = require "termsrv.cli.hosts"
local monitor = require "termsrv.monitor"
local output = require "termsrv.cli.output"
local record = require "termsrv.record"
local report = require "termsrv.report"
local util = require "termsrv.cli.util"

local M = {}

-- Slots of a host (--slots): those in use (sessions with a user, any
-- state) and what the host says its limit is; `why` when it does not say.
local function slots(h, l)
  local t = { used = monitor.tally(l).in_use }
  local cap, err = h:capacity{ sessions = l }
  if cap then
    t.limit, t.unlimited = cap.limit, cap.unlimited
  else
    t.why = tostring(err.message or err.code):gsub("^RpcWinStation%w*%b(): ", "")
      .. (err.status_name and " [" .. err.status_name .. "]" or "")
  end
  return t
end

--- A host's slots on their own (a listing with the listener, and the
-- query): `{used=, limit=, unlimited=, why=}`, or nil, err.
function M.host_slots(h)
  local l, err = h:sessions{ all = true, times = false }
  if not l then return nil, err end
  return slots(h, l)
end

--- Makes the status records of JSON/CSV output carry a host's slots
-- (`value.slots` of its result).
function M.slot_status(ctx)
  ctx.status_extra = { "slots_used", "slots_limit", "slots_unlimited", "slots_unknown" }
  ctx.status_of = function(r)
    local t = r.value and r.value.slots
    if not t then return {} end
    return { slots_used = t.used, slots_limit = t.limit, slots_unlimited = t.unlimited or false,
             slots_unknown = t.why }
  end
end

--- One line: "7 of 10 slots used", "7 slots used, no limit", or unknown and why.
-- `when` ("before") follows "used".
function M.slots_text(host, t, when)
  local used = when and "used " .. when or "used"
  if t.limit then
    return string.format("%s: %d of %d slots %s (the host's limit)", host, t.used, t.limit, used)
  end
  if t.unlimited then
    return string.format("%s: %d slots %s, no limit (the host's listener sets none)", host, t.used, used)
  end
  return string.format("%s: %d slots %s of an unknown limit (the host does not say: %s)", host, t.used, used,
    t.why or "?")
end

-- The sessions of every host that pass --state/--user (and `keep`), and
-- the exit code. With JSON or CSV they stream out as each host finishes
-- (the list returned is then empty).
local function listing(ctx, args, opts, keep)
  local filter
  local sel = {}
  if #util.list(args.state) > 0 then sel.state = args.state end
  if #util.list(args.user) > 0 then sel.user = args.user end
  if next(sel) then
    sel.include_protected = true
    filter = util.compile(sel)
  end
  local function list(h)
    -- --slots needs the listener: list it too (no call more), show it only with --all
    local o = opts
    if args.slots then o = util.copy(opts); o.all = true end
    local l, err = h:sessions(o)
    if not l then return { err = err } end
    local kept = {}
    for _, s in ipairs(l) do
      if (not filter or filter:match(s)) and (opts.all or not args.slots or
          (s.kind ~= "listener" and s.kind ~= "services")) then
        kept[#kept + 1] = s
      end
    end
    return { sessions = kept, problems = l.errors, partial = l.partial, slots = args.slots and slots(h, l) }
  end
  local function records_of(r)
    local t = {}
    if output.host_err(r) then return t end
    for _, s in ipairs(r.value.sessions) do if not keep or keep(s) then t[#t + 1] = s end end
    return t
  end
  -- what went wrong on a host is said as soon as that host finishes
  local function diagnose(r)
    if output.host_err(r) then return output.report_host_errors(ctx, { r }) end
    for _, e in ipairs(r.value.problems or {}) do output.diag(ctx, tostring(e)) end
    -- a listing that cannot show everything says so (the exit code stays:
    -- what it shows is complete for this account)
    if r.value.partial then output.diag(ctx, "termsrv: " .. r.host .. ": " .. r.value.partial) end
  end
  if args.slots then M.slot_status(ctx) end -- JSON and CSV: in each host's status record
  local streaming = output.stream(ctx, report.SESSION_FIELDS, "session", records_of, diagnose)
  local results = hosts.run_hosts(ctx, list)
  local all, outcomes = record.list{}, {}
  for i, r in ipairs(results) do
    if output.host_err(r) then
      outcomes[i] = "failed"
    else
      if not streaming then for _, s in ipairs(records_of(r)) do all[#all + 1] = s end end
      outcomes[i] = #(r.value.problems or {}) > 0 and "partial" or "ok"
    end
  end
  return all, output.exit_of(outcomes), results
end

-- After the table: a line per host that answered, with its slots.
function M.slot_lines(ctx, results, when)
  for _, r in ipairs(results) do
    if r.value and r.value.slots then
      output.out(ctx, M.slots_text(r.host, r.value.slots, when) .. "\n")
    end
  end
end

local SESSION_CLIENT_HEAD = { "SESSIONNAME", "USERNAME", "ID", "STATE", "IDLE", "CLIENT", "ADDRESS" }

local function sessions_with_client(recs, multi, domain)
  local head, rows = {}, {}
  if multi then head[1] = "HOST" end
  for _, h in ipairs(SESSION_CLIENT_HEAD) do head[#head + 1] = h end
  for _, r in ipairs(recs) do
    local idle = record.idle(r)
    local row = {}
    if multi then row[1] = r.host end
    for _, v in ipairs{ r.name or "", (domain and record.account(r) or r.user) or "", tostring(r.id),
      record.STATE_ABBREV[r.state] or r.state or "", idle and report.quser_idle(idle) or "",
      r.client or "", r.address or "" } do
      row[#row + 1] = v
    end
    rows[#rows + 1] = row
  end
  return report.text_table(head, rows, { right = { [multi and 4 or 3] = true } })
end

-- `sessions --counter` (qwinsta /counter): a row of counters per host.
local COUNTER_HEAD = { { "created", "CREATED" }, { "disconnected", "DISCONNECTED" },
  { "reconnected", "RECONNECTED" }, { "active", "ACTIVE" }, { "disconnected_now", "DISC" },
  { "pending", "PENDING" }, { "logged_on", "LOGGED ON" }, { "logons", "LOGONS" },
  { "local_logons", "LOCAL" }, { "remote_logons", "REMOTE" } }
M.COUNTER_FIELDS = { "host", "via" }
for _, c in ipairs(require("termsrv.host").COUNTERS) do M.COUNTER_FIELDS[#M.COUNTER_FIELDS + 1] = c[1] end

function M.counters(ctx)
  local function get(h)
    local t, err = h:counters()
    if not t then return { err = err } end
    return { counters = t }
  end
  local function records_of(r)
    if output.host_err(r) then return {} end
    local t = {}
    for k, v in pairs(r.value.counters) do t[k] = v end
    return { t }
  end
  local streaming = output.stream(ctx, M.COUNTER_FIELDS, "counters", records_of,
    function(r) if output.host_err(r) then output.report_host_errors(ctx, { r }) end end)
  local results = hosts.run_hosts(ctx, get)
  local outcomes, rows = {}, {}
  for i, r in ipairs(results) do
    outcomes[i] = output.host_err(r) and "failed" or "ok"
    if not streaming then for _, x in ipairs(records_of(r)) do rows[#rows + 1] = x end end
  end
  local code = output.exit_of(outcomes)
  if ctx.streamed or #rows == 0 then return code end
  output.emit(ctx, rows, function(items)
    local head, right, body = { "HOST" }, {}, {}
    for i, c in ipairs(COUNTER_HEAD) do head[i + 1], right[i + 1] = c[2], true end
    for _, t in ipairs(items) do
      local row = { t.host }
      for i, c in ipairs(COUNTER_HEAD) do row[i + 1] = t[c[1]] ~= nil and tostring(t[c[1]]) or "-" end
      body[#body + 1] = row
    end
    return report.text_table(head, body, { right = right })
  end, M.COUNTER_FIELDS)
  return code
end

function M.sessions(ctx, args)
  if args.counter then return M.counters(ctx) end
  -- the qwinsta table shows no times: skip the per-session call for it.
  -- A strict boolean: `false or nil` is nil, and nil means "times on".
  local times = not args.no_times and (ctx.format ~= "table" or args.client == true)
  local recs, code, results = listing(ctx, args, { all = args.all, times = times, client = args.client,
                                                   drivers = args.drivers })
  if code == output.EXIT_FAILED or ctx.streamed then return code end
  local multi = #ctx.hosts > 1
  output.emit(ctx, recs, function(items)
    if args.client then return sessions_with_client(items, multi, args.show_domain) end
    return report.qwinsta(items, { host = multi, domain = args.show_domain })
  end)
  if args.slots then M.slot_lines(ctx, results) end
  return code
end

function M.users(ctx, args)
  local recs, code = listing(ctx, args, { all = false, times = true, client = args.client,
                                          locked = args.locked },
    function(r) return r.user and r.user ~= "" end)
  if code == output.EXIT_FAILED or ctx.streamed then return code end
  local extra = {}
  if args.disconnected then extra[#extra + 1] = "disconnected" end
  if args.locked then extra[#extra + 1] = "locked" end
  if args.client then
    for _, k in ipairs{ "client", "address", "time_zone" } do extra[#extra + 1] = k end
  end
  local multi = #ctx.hosts > 1
  output.emit(ctx, recs, function(items)
    return report.quser(items, { host = multi, domain = args.show_domain, time = args.iso and "iso" or nil,
                                 utc = args.utc, extra = extra })
  end)
  return code
end

return M
