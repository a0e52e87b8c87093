--- `termsrv sessions` (qwinsta) and `termsrv users` (quser).
-- @module termsrv.cli.commands.listings

local hosts = require "termsrv.cli.hosts"
local output = require "termsrv.cli.output"
local record = require "termsrv.record"
local report = require "termsrv.report"
local util = require "termsrv.cli.util"

local M = {}

-- The sessions of every host that pass --state/--user, and the exit code.
local function listing(ctx, args, opts)
  local filter
  local sel = {}
  if #util.list(args.state) > 0 then sel.state = args.state end
  if #util.list(args.user) > 0 then sel.user = args.user end
  if next(sel) then
    sel.include_protected = true
    filter = util.compile(sel)
  end
  local results = hosts.run_hosts(ctx, function(h)
    local l, err = h:sessions(opts)
    if not l then return { err = err } end
    local keep = {}
    for _, s in ipairs(l) do
      if not filter or filter:match(s) then keep[#keep + 1] = s end
    end
    return { sessions = keep, problems = l.errors, partial = l.partial }
  end)
  output.report_host_errors(ctx, results)
  local all, outcomes = {}, {}
  for i, r in ipairs(results) do
    if output.host_err(r) then
      outcomes[i] = "failed"
    else
      for _, s in ipairs(r.value.sessions) do all[#all + 1] = s end
      local problems = r.value.problems or {}
      for _, e in ipairs(problems) do output.diag(ctx, tostring(e)) end
      -- a listing that cannot show everything says so (the exit code stays:
      -- what it shows is complete for this account)
      if r.value.partial then output.diag(ctx, "termsrv: " .. r.host .. ": " .. r.value.partial) end
      outcomes[i] = #problems > 0 and "partial" or "ok"
    end
  end
  return all, output.exit_of(outcomes)
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

function M.sessions(ctx, args)
  -- the qwinsta table shows no times: skip the per-session call for it
  local times = not args.no_times and (ctx.format ~= "table" or args.client)
  local recs, code = listing(ctx, args, { all = args.all, times = times, client = args.client })
  if code == output.EXIT_FAILED then return code end
  local multi = #ctx.hosts > 1
  output.emit(ctx, recs, function(items)
    if args.client then return sessions_with_client(items, multi, args.show_domain) end
    return report.qwinsta(items, { host = multi, domain = args.show_domain })
  end)
  return code
end

function M.users(ctx, args)
  local all, code = listing(ctx, args, { all = false, times = true })
  local recs = record.list{}
  for _, r in ipairs(all) do
    if r.user and r.user ~= "" then recs[#recs + 1] = r end
  end
  if code == output.EXIT_FAILED then return code end
  local multi = #ctx.hosts > 1
  output.emit(ctx, recs, function(items)
    return report.quser(items, { host = multi, domain = args.show_domain, time = args.iso and "iso" or nil,
                                 utc = args.utc })
  end)
  return code
end

return M
