--- What the command line shows: exit codes from per-host outcomes,
-- diagnostics on stderr, listings in the chosen format, and the rows and
-- summary of actions.
-- @module termsrv.cli.output

local errors = require "termsrv.error"
local report = require "termsrv.report"
local text = require "termsrv.text"
local json = require "termsrv.json"

local M = {}

M.EXIT_OK, M.EXIT_PARTIAL, M.EXIT_FAILED, M.EXIT_USAGE = 0, 1, 2, 64

-- ----------------------------------------------------------------------------
-- outcomes and exit codes

--- The error of a host result (connect failure, or the operation's own).
function M.host_err(r)
  if not r.ok then return r.err end
  if type(r.value) == "table" and r.value.err then return r.value.err end
  return nil
end

-- How many of `rows` (outcome strings, or rows judged by `status`, else
-- `ok`) are ok, failed, skipped...
local function tally(rows)
  local n = { ok = 0, failed = 0, skipped = 0 }
  for _, x in ipairs(rows) do
    local st = type(x) == "string" and x or x.status or (x.ok and "ok" or "failed")
    n[st] = (n[st] or 0) + 1
  end
  return n
end

--- 0 when every outcome is "ok", 2 when all are "failed", else 1.
function M.exit_of(outcomes)
  local n = tally(outcomes)
  if n.ok == #outcomes then return M.EXIT_OK end
  if n.failed == #outcomes then return M.EXIT_FAILED end
  return M.EXIT_PARTIAL
end

--- Outcome of a host from its result rows: all ok / some failed / all failed.
function M.outcome_of(rows)
  local n = tally(rows)
  if n.failed == 0 then return "ok" end
  return n.ok == 0 and "failed" or "partial"
end

-- ----------------------------------------------------------------------------
-- streams

--- Writes `s` to the command's stdout.
-- Tables escape server strings cell by cell; this guard catches any text
-- that reached a table another way (JSON and CSV escape their own).
function M.out(ctx, s)
  if ctx.format == "table" or ctx.format == nil then s = text.printable_lines(s) end
  ctx.stdout:write(s)
end

--- One line per diagnostic (a worker's script error carries a traceback:
-- shown only with TERMSRV_DEBUG).
function M.diag(ctx, s)
  s = tostring(s)
  if not (ctx.getenv and ctx.getenv("TERMSRV_DEBUG")) then s = s:gsub("\n.*$", "") end
  ctx.stderr:write(text.printable_lines(s), "\n")
end

--- `items` as JSON Lines or CSV (with `fields`), or as `text_fn(items)` for tables.
function M.emit(ctx, items, text_fn, fields)
  local fmt = ctx.format
  local opts = fields and { fields = fields } or nil
  if fmt == "json" then M.out(ctx, report.jsonl(items, opts))
  elseif fmt == "csv" then M.out(ctx, report.csv(items, opts))
  else M.out(ctx, text_fn(items)) end
end

--- Each failed host's error on stderr, named by its host.
function M.report_host_errors(ctx, results)
  for _, r in ipairs(results) do
    local e = M.host_err(r)
    if e then
      if getmetatable(e) == errors.Error then
        if e.host == nil then e = errors.with(e, { host = r.host }) end
        if e.code == "timeout" and e.op == "fleet" then
          e = errors.with(e, { hint = "the host or the network is slow or hung; raise --host-timeout "
            .. "if it is only slow" })
        end
      end
      M.diag(ctx, tostring(e))
    end
  end
end

-- ----------------------------------------------------------------------------
-- streaming: JSON Lines and CSV as each host finishes

--- The columns of a host's status record: `type` ("host"), whether it
-- answered (`ok`), the error's `code`, `message` and `hint` when it did not,
-- how long it took, and how many records it gave. Every host gets one, in
-- JSON Lines and CSV, so that "no sessions" and "could not ask" differ.
M.STATUS_FIELDS = { "type", "host", "ok", "error", "message", "hint", "duration", "records" }

--- A host's status record from its run_hosts result.
function M.status_record(r, records)
  local e = M.host_err(r)
  local t = { type = "host", host = r.host, ok = e == nil, records = records,
              duration = r.duration and math.floor(r.duration * 1000 + 0.5) / 1000 }
  if e then
    t.error = type(e) == "table" and e.code or "error"
    t.message = type(e) == "table" and e.message or tostring(e)
    t.hint = type(e) == "table" and e.hint or nil
  end
  return t
end

local function flush(ctx) if ctx.stdout.flush then ctx.stdout:flush() end end

--- Streams JSON Lines or CSV as each host finishes.
-- With `--format json` or `csv`, sets `ctx.on_host` so that each host's
-- records (`records_of(result)`, a list; `kind` names them in CSV's `type`
-- column) are written, flushed, as soon as that host finishes, followed by
-- its status record; CSV has one header for both kinds of row (`type`, the
-- records' `fields`, then the status columns they lack). `each(result)`,
-- when given, runs first for every host (its diagnostics; for tables, once
-- all hosts are in, in host order). Returns true
-- when streaming; `ctx.streamed` is then set.
function M.stream(ctx, fields, kind, records_of, each)
  local fmt = ctx.format
  if fmt ~= "json" and fmt ~= "csv" then
    ctx.after_hosts = each
    return false
  end
  local columns = { "type" }
  local have = { type = true }
  -- a command may add columns to the status records (ctx.status_extra,
  -- filled by ctx.status_of(result))
  local status_fields = table.move(ctx.status_extra or {}, 1, #(ctx.status_extra or {}), #M.STATUS_FIELDS + 1,
    table.move(M.STATUS_FIELDS, 1, #M.STATUS_FIELDS, 1, {}))
  local function status_of(r, n)
    local st = M.status_record(r, n)
    if ctx.status_of then for k, v in pairs(ctx.status_of(r)) do st[k] = v end end
    return st
  end
  for _, list in ipairs{ fields, status_fields } do
    for _, k in ipairs(list) do
      if not have[k] then columns[#columns + 1], have[k] = k, true end
    end
  end
  if fmt == "csv" then M.out(ctx, (report.csv({}, { fields = columns }))) end
  ctx.streamed = true
  ctx.on_host = function(r)
    if each then each(r) end
    local items = records_of(r) or {}
    if fmt == "json" then
      if #items > 0 then M.out(ctx, report.jsonl(items, { fields = fields })) end
      local st = status_of(r, #items)
      for _, k in ipairs(status_fields) do if st[k] == nil then st[k] = json.null end end
      M.out(ctx, json.encode(st, status_fields) .. "\n")
    else
      local rows = report.rows(items, { fields = fields })
      for _, row in ipairs(rows) do row.type = kind end
      rows[#rows + 1] = status_of(r, #items)
      local csv = report.csv(rows, { fields = columns })
      M.out(ctx, (csv:gsub("^[^\n]*\n", ""))) -- the header went out first
    end
    flush(ctx)
  end
  return true
end

-- ----------------------------------------------------------------------------
-- action results

-- The action rows of one host's result: what it reported, or what a host
-- that failed after acting (deadline, stop) sent as it went.
local function rows_of(r)
  return r.ok and r.value and r.value.results or r.partial or {}
end

--- Streams the action rows of each host as it finishes (see `stream`; `view`
-- as for `finish_rows`), its error on stderr at once in every format.
function M.stream_rows(ctx, view)
  M.stream(ctx, view and view.fields or report.RESULT_FIELDS, "result", rows_of,
    function(r) M.report_host_errors(ctx, { r }) end)
end

--- Reports the host errors of action results (`value.results` rows from each
-- host; unless `stream_rows` did as they came) and gathers them: all rows,
-- each host's outcome, the number of hosts that failed as a whole.
function M.collect_rows(ctx, results)
  if not (ctx.on_host or ctx.after_hosts) then M.report_host_errors(ctx, results) end
  local rows, outcomes, host_errors = {}, {}, 0
  for i, r in ipairs(results) do
    if M.host_err(r) then
      host_errors = host_errors + 1
      outcomes[i] = "failed"
    end
    -- a host that failed after acting (deadline, stop) still shows its rows
    for _, x in ipairs(rows_of(r)) do rows[#rows + 1] = x end
    if not outcomes[i] then outcomes[i] = M.outcome_of(r.value.results or {}) end
  end
  return rows, outcomes, host_errors
end

--- The summary line of action results; to stdout for tables, else stderr.
function M.summary(ctx, rows, host_errors, nhosts)
  local n = tally(rows)
  local line = string.format("total: %d host%s, %d ok, %d failed, %d skipped, %d host error%s", nhosts,
    nhosts == 1 and "" or "s", n.ok, #rows - n.ok - n.skipped, n.skipped, host_errors,
    host_errors == 1 and "" or "s")
  if ctx.format == "table" then M.out(ctx, line .. "\n") else M.diag(ctx, line) end
end

local SESSION_COLUMNS = { "host", "id", "user", "action", "status", "before", "after", "time", "detail" }

--- Shows the rows of actions on every host (`view`: `empty`, the table's
-- text when there are none; `columns` and `fields`, those of the table and
-- of JSON/CSV, default the session actions') and the summary; returns the
-- exit code.
function M.finish_rows(ctx, results, view)
  view = view or {}
  local rows, outcomes, host_errors = M.collect_rows(ctx, results)
  if ctx.format == "table" then
    -- "nothing to do" only when every host answered: a host that failed
    -- or timed out may have done things (its audit lines say which)
    M.out(ctx, #rows == 0 and (host_errors == 0 and view.empty or "")
      or report.results_table(rows, view.columns or SESSION_COLUMNS))
  elseif not ctx.streamed then
    M.emit(ctx, setmetatable(rows, { __name = "termsrv.results" }), nil, view.fields or report.RESULT_FIELDS)
  end
  M.summary(ctx, rows, host_errors, #results)
  return M.run_end(ctx, results, M.exit_of(outcomes))
end

--- The exit code of a run that acted, after saying what stops it: an
-- outcome the audit log lost (exit 2), a stop by signal (128 + the signal).
function M.run_end(ctx, results, code)
  for _, r in ipairs(results) do
    local e = r.ok and r.value and r.value.audit_error
    if e then
      M.diag(ctx, "termsrv: AUDIT LOG INCOMPLETE on " .. tostring(r.host) .. ": " .. tostring(e))
      if code == M.EXIT_OK or code == M.EXIT_PARTIAL then code = M.EXIT_FAILED end
    end
  end
  if ctx.stopped then
    local started = 0
    for _, r in ipairs(results) do if not r.not_started then started = started + 1 end end
    M.diag(ctx, string.format("termsrv: stopped by %s: no action was started after it; %d of %d host%s "
      .. "had started (see the rows above); the audit log's attempt lines are the record "
      .. "(termsrv audit --pending)",
      require("termsrv.cli.stop").name(ctx.stopped), started, #results, #results == 1 and "" or "s"))
    code = 128 + ctx.stopped
  end
  return code
end

return M
