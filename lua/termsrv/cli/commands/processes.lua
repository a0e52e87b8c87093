--- `termsrv processes` (query process) and `termsrv kill` (tskill).
-- @module termsrv.cli.commands.processes

local audit = require "termsrv.cli.audit"
local hosts = require "termsrv.cli.hosts"
local output = require "termsrv.cli.output"
local plans = require "termsrv.cli.plans"
local report = require "termsrv.report"
local util = require "termsrv.cli.util"

local M = {}

local PROC_HEAD = { "USERNAME", "ID", "PID", "PPID", "IMAGE", "MEM" }

local function proc_table(procs, multi, verb)
  local head, rows = {}, {}
  if verb then head[1] = "ACTION" end
  if multi then head[#head + 1] = "HOST" end
  for _, h in ipairs(PROC_HEAD) do head[#head + 1] = h end
  for _, p in ipairs(procs) do
    local row = {}
    if verb then row[1] = verb end
    if multi then row[#row + 1] = p.host end
    for _, v in ipairs{ p.account or p.sid or "-", tostring(p.session), tostring(p.pid),
      p.ppid and tostring(p.ppid) or "", p.image or "",
      p.memory and (tostring(p.memory // 1024) .. " K") or "" } do
      row[#row + 1] = v
    end
    rows[#rows + 1] = row
  end
  local base = (verb and 1 or 0) + (multi and 1 or 0)
  return report.text_table(head, rows, { right = { [base + 2] = true, [base + 3] = true, [base + 4] = true,
                                                   [base + 6] = true } })
end

local function sort_procs(procs)
  table.sort(procs, function(a, b)
    if a.session ~= b.session then return (a.session or -1) < (b.session or -1) end
    return a.pid < b.pid
  end)
  return procs
end

local PROCESS_FIELDS = require("termsrv.processes").PROCESS_FIELDS

local function procs_of(r)
  if output.host_err(r) then return {} end
  return sort_procs(r.value.processes)
end

-- JSON and CSV stream each host's processes as it finishes; errors go to
-- stderr as they come in every format.
local function stream_procs(ctx)
  return output.stream(ctx, PROCESS_FIELDS, "process", procs_of, function(r)
    output.report_host_errors(ctx, { r })
    if not output.host_err(r) and r.value.names_note then output.diag(ctx, r.value.names_note) end
  end)
end

-- Said on stderr when the host's LSA did not name the owners: the names
-- are then only those the well-known SIDs and the session owners give.
local function names_note(h, procs)
  local _, err = procs:names_from()
  if not err then return nil end
  return ("note: %s: process owners not named through LSA (%s: %s); names from the well-known SIDs "
    .. "and the session owners only"):format(h.name, err.code, err.message or "")
end

local function collect_procs(results)
  local all, outcomes = {}, {}
  for i, r in ipairs(results) do
    if output.host_err(r) then outcomes[i] = "failed" else
      for _, p in ipairs(procs_of(r)) do all[#all + 1] = p end
      outcomes[i] = "ok"
    end
  end
  return all, outcomes
end

function M.processes(ctx, args)
  local streaming = stream_procs(ctx)
  local results = hosts.run_hosts(ctx, function(h)
    local procs, err = h:processes{ session = args.session, user = args.user, name = args.name }
    if not procs then return { err = err } end
    return { processes = procs, names_note = names_note(h, procs) }
  end)
  local all, outcomes = collect_procs(results)
  local code = output.exit_of(outcomes)
  if code == output.EXIT_FAILED or streaming then return code end
  output.emit(ctx, all, function(items) return proc_table(items, #ctx.hosts > 1) end, PROCESS_FIELDS)
  return code
end

-- Never matched by a filter: what Windows cannot live without.
local CRITICAL = { ["system"] = true, ["smss.exe"] = true, ["csrss.exe"] = true, ["wininit.exe"] = true,
  ["winlogon.exe"] = true, ["services.exe"] = true, ["lsass.exe"] = true, ["svchost.exe"] = true,
  ["lsm.exe"] = true, ["dwm.exe"] = true, ["fontdrvhost.exe"] = true, ["registry"] = true,
  ["memory compression"] = true, ["system idle process"] = true }

local KILL_FIELDS = { "host", "pid", "image", "id", "action", "status", "ok", "error", "error_message",
                      "duration" }

-- The processes to end on host `h`: those of `pids` (the ones not listed as
-- bare {pid=}; nil and the error when the list failed and nothing acts), or
-- those the filter options match, never the critical ones.
local function chosen(h, args, pids, act)
  local procs = {}
  if #pids > 0 then
    local all, err = h:processes()
    if not all then
      if not act then return nil, err end
      all = {}
    end
    local by_pid = {}
    for _, p in ipairs(all) do by_pid[p.pid] = p end
    for _, pid in ipairs(pids) do procs[#procs + 1] = by_pid[pid] or { pid = pid, host = h.name } end
  else
    local all, err = h:processes{ session = args.session, user = args.user, name = args.name }
    if not all then return nil, err end
    for _, p in ipairs(all) do
      if (p.session ~= 0 or args.session == 0) and not CRITICAL[(p.image or ""):lower()] then
        procs[#procs + 1] = p
      end
    end
  end
  return procs
end

function M.kill(ctx, args)
  local pids = ctx.numbers
  local filtered = args.name or args.session or args.user
  if #pids > 0 and filtered then util.usage_error("give PIDs or --name/--session/--user, not both") end
  if #pids == 0 and not filtered then
    util.usage_error("which processes? give PIDs or --name/--session/--user")
  end
  local apply = util.apply_wanted(args)
  local act = (#pids > 0 and not args.dry_run) or (filtered and apply)
  local path = audit.prepare(ctx, args, act)
  if path == nil then return output.EXIT_FAILED end
  if not act then
    stream_procs(ctx)
    local all, outcomes = collect_procs(hosts.run_hosts(ctx, function(h)
      local procs, err = chosen(h, args, pids, act)
      if not procs then return { err = err } end
      return { processes = procs }
    end))
    if ctx.streamed then return output.exit_of(outcomes) end
    output.emit(ctx, all, function(items)
      if #items == 0 then return "no matching processes\n" end
      return proc_table(items, #ctx.hosts > 1, "would kill") .. string.format(
        "dry run: %d process%s would be ended; --apply acts\n", #items, #items == 1 and "" or "es")
    end, PROCESS_FIELDS)
    return output.exit_of(outcomes)
  end
  local view = { empty = "", fields = KILL_FIELDS,
                 columns = { "host", "pid", "image", "id", "status", "detail" } }
  output.stream_rows(ctx, view)
  -- each process through the runner: write-ahead audit, stop
  return output.finish_rows(ctx, plans.run_actions(ctx, path, function(h, runner, note)
    local procs, err = chosen(h, args, pids, act)
    if not procs then return nil, err end
    local rows = {}
    for _, p in ipairs(procs) do
      local what = string.format("pid %d%s", p.pid, p.image and (" (" .. p.image .. ")") or "")
      local entry = plans.entry(h, "kill", "kill", what, p.session and { id = p.session } or nil)
      rows[#rows + 1] = runner:act(entry, function()
        local res, kerr, list = h:kill(p.pid)
        return (res or list)[1], kerr
      end, { pid = p.pid, image = p.image, id = p.session })
      note(rows[#rows])
    end
    return rows
  end), view)
end

return M
