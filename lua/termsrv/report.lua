--- Reports: qwinsta/quser tables, JSON Lines, CSV, summaries.
--
-- Text functions return a string ending in a newline, ready for `io.write`.
--
-- Time scheme for JSON and CSV (the same columns, in the same order, in
-- both): fields ending in `_time` are ISO 8601 UTC strings with seconds
-- (`"2026-11-26T09:14:00Z"`); durations (`idle`, `disconnected`, `duration`)
-- are numbers of seconds (`duration` to the millisecond). Unknown values are
-- JSON `null` / an empty CSV field, so every line has every key. Pass
-- `{time = "epoch"}` to get `*_time` as integer epoch seconds instead.
-- Lua records keep epoch integers; only the serialized forms use ISO.
-- @module termsrv.report

local duration = require "termsrv.duration"
local json = require "termsrv.json"
local record = require "termsrv.record"
local text = require "termsrv.text"

local M = {}

--- JSON/CSV column order for action results.
M.RESULT_FIELDS = { "host", "id", "user", "domain", "logon_time", "rule", "action", "status", "ok",
                    "before", "after", "error", "error_message", "duration", "answer", "steps", "note" }
--- JSON/CSV column order for plan steps.
M.STEP_FIELDS = { "host", "id", "user", "domain", "logon_time", "station", "state", "idle",
                  "disconnected", "client", "address", "rule", "action", "why" }
--- JSON/CSV column order for sessions (same as record.FIELDS).
M.SESSION_FIELDS = record.FIELDS
--- JSON/CSV column order for plan entries that were not touched.
M.SKIPPED_FIELDS = { "host", "id", "user", "domain", "logon_time", "state", "rule", "reason" }
--- JSON/CSV column order for host errors.
M.ERROR_FIELDS = { "host", "error", "error_message" }

-- ----------------------------------------------------------------------------
-- small helpers

local function rtrim(s) return (s:gsub("%s+$", "")) end

-- every cell of a text table: server strings cannot reach the terminal raw
local function cell(v) return text.printable(v == nil and "" or tostring(v)) end

local function ulen(s)
  return utf8.len(s) or #s
end

local function ljust(s, w) return s .. string.rep(" ", w - ulen(s)) end
local function rjust(s, w) return string.rep(" ", w - ulen(s)) .. s end

local function lines_out(lines)
  if #lines == 0 then return "" end
  return table.concat(lines, "\n") .. "\n"
end

-- Hosts in order of first appearance; true when more than one.
local function multi_host(items)
  local first
  for _, r in ipairs(items) do
    if first == nil then first = r.host elseif r.host ~= first then return true end
  end
  return false
end

-- stable sort: by host (first appearance), then id
local function sorted(records)
  local order, out = {}, {}
  for i, r in ipairs(records) do
    if order[r.host or ""] == nil then order[r.host or ""] = i end
    out[i] = { r = r, i = i }
  end
  table.sort(out, function(a, b)
    local ha, hb = order[a.r.host or ""], order[b.r.host or ""]
    if ha ~= hb then return ha < hb end
    local ia, ib = a.r.id or -1, b.r.id or -1
    if ia ~= ib then return ia < ib end
    return a.i < b.i
  end)
  for i, x in ipairs(out) do out[i] = x.r end
  return out
end

--- A plain aligned text table (columns separated by two spaces, trailing
-- spaces trimmed).
-- @tparam {string,...} headers
-- @tparam {{string,...},...} rows cells (nil shows as empty)
-- @tparam[opt] table opts `right = {[col] = true}` right-aligned columns
-- @treturn string
function M.text_table(headers, rows, opts)
  local right = opts and opts.right or {}
  local w = {}
  for c, h in ipairs(headers) do w[c] = ulen(h) end
  for _, row in ipairs(rows) do
    for c = 1, #headers do
      local v = cell(row[c])
      if ulen(v) > w[c] then w[c] = ulen(v) end
    end
  end
  local function line(cells)
    local out = {}
    for c = 1, #headers do
      local v = cell(cells[c])
      out[c] = right[c] and rjust(v, w[c]) or ljust(v, w[c])
    end
    return rtrim(table.concat(out, "  "))
  end
  local lines = { line(headers) }
  for _, row in ipairs(rows) do lines[#lines + 1] = line(row) end
  return lines_out(lines)
end

-- ----------------------------------------------------------------------------
-- qwinsta / quser

--- Idle time exactly as quser prints it: `none` (unknown), `.` (under a
-- minute), minutes (`59`), `H:MM` (`1:00`), `D+HH:MM` (`1+01:00`).
-- @tparam ?number secs
-- @treturn string
function M.quser_idle(secs)
  if secs == nil then return "none" end
  if secs < 60 then return "." end
  local mins = math.floor(secs / 60)
  if mins < 60 then return tostring(mins) end
  local hours = mins // 60
  if hours < 24 then return string.format("%d:%02d", hours, mins % 60) end
  return string.format("%d+%02d:%02d", hours // 24, hours % 24, mins % 60)
end

--- A logon time as quser prints it (`11/26/2026 9:14 AM`, local time), or ISO.
-- @tparam ?number t epoch seconds
-- @tparam[opt] table opts `time = "windows"` (default) or `"iso"` (UTC, `2026-11-26T09:14:00Z`);
--   `utc = true` for the Windows format in UTC
-- @treturn string (empty when `t` is nil)
function M.logon_time(t, opts)
  if t == nil then return "" end
  opts = opts or {}
  if opts.time == "iso" then return json.iso(t) end
  local d = os.date(opts.utc and "!*t" or "*t", math.floor(t))
  local h = d.hour % 12
  if h == 0 then h = 12 end
  return string.format("%d/%d/%d %d:%02d %s", d.month, d.day, d.year, h, d.min, d.hour < 12 and "AM" or "PM")
end

local function username(r, opts)
  if not r.user or r.user == "" then return "" end
  return text.printable(opts.domain and record.account(r) or r.user)
end

local function host_col(recs, opts)
  if opts.host ~= nil then return opts.host end
  return multi_host(recs)
end

--- qwinsta-style table: `SESSIONNAME USERNAME ID STATE TYPE DEVICE`, laid out
-- like Windows (columns widen for longer values instead of truncating).
-- TYPE and DEVICE show the records' `driver` and `device` (read only when the
-- listing asked for them: `h:sessions{drivers = true}`); no `>` current-session
-- mark (there is no current session from Linux). A HOST column is added when
-- the records come from several hosts.
-- @tparam {table,...} records
-- @tparam[opt] table opts `domain = true` shows DOMAIN\user; `host = true|false` forces the HOST column
-- @treturn string
function M.qwinsta(records, opts)
  opts = opts or {}
  if record.is_session(records) then records = { records } end
  local recs = sorted(records)
  local show_host = host_col(recs, opts)
  local hostw = show_host and 6 or 0 -- "HOST" + gap, even with no rows
  local namew, userw, idw = 18, 22, 5
  for _, r in ipairs(recs) do
    if show_host then hostw = math.max(hostw, ulen(cell(r.host)) + 2, 6) end
    namew = math.max(namew, ulen(cell(r.name)) + 1)
    userw = math.max(userw, ulen(username(r, opts)) + 1)
    idw = math.max(idw, #tostring(r.id))
  end
  local function row(host, name, user, id, state, typ, dev)
    local s = " " .. (show_host and ljust(host, hostw) or "") .. ljust(name, namew) .. ljust(user, userw)
      .. rjust(id, idw) .. "  " .. ljust(state, 8) .. ljust(typ, 12) .. dev
    return rtrim(s)
  end
  local lines = { row("HOST", "SESSIONNAME", "USERNAME", "ID", "STATE", "TYPE", "DEVICE") }
  for _, r in ipairs(recs) do
    lines[#lines + 1] = row(cell(r.host), cell(r.name), username(r, opts), tostring(r.id),
      record.STATE_ABBREV[r.state] or tostring(r.state or ""), cell(r.driver), cell(r.device))
  end
  return lines_out(lines)
end

local EXTRA = {
  disconnected = { "DISC FOR", function(r)
    local d = record.disconnected_for(r)
    return d and M.quser_idle(d) or ""
  end },
  locked = { "LOCKED", function(r)
    if r.locked == nil then return "" end
    return r.locked and "yes" or "no"
  end },
  client = { "CLIENT", function(r) return cell(r.client) end },
  address = { "ADDRESS", function(r) return cell(r.address) end },
  time_zone = { "TIME ZONE", function(r) return cell(r.time_zone) end },
}

-- Lines of a Windows-shaped table with more columns after its last one.
local function with_extra(lines, recs, extra)
  local w = 0
  for _, l in ipairs(lines) do w = math.max(w, ulen(l)) end
  local cols = {}
  for i, name in ipairs(extra) do
    cols[i] = EXTRA[name] or error("report.quser: unknown extra column " .. tostring(name), 3)
  end
  local cells, cw = {}, {}
  for i, c in ipairs(cols) do cw[i] = ulen(c[1]) end
  for n, r in ipairs(recs) do
    cells[n] = {}
    for i, c in ipairs(cols) do
      cells[n][i] = c[2](r)
      cw[i] = math.max(cw[i], ulen(cells[n][i]))
    end
  end
  local out = {}
  for n, l in ipairs(lines) do
    local parts = { ljust(l, w) }
    for i, c in ipairs(cols) do parts[#parts + 1] = ljust(n == 1 and c[1] or cells[n - 1][i], cw[i]) end
    out[n] = rtrim(table.concat(parts, "  "))
  end
  return out
end

--- quser-style table: `USERNAME SESSIONNAME ID STATE IDLE TIME LOGON TIME`,
-- only sessions with a user, laid out like Windows.
-- @tparam {table,...} records
-- @tparam[opt] table opts `domain`, `host` as for `qwinsta`; `time = "iso"` and `utc` as for `logon_time`;
--   `extra`: more columns after LOGON TIME, from `"disconnected"` (DISC FOR: how long disconnected),
--   `"locked"` (LOCKED: yes / no / blank when unknown), `"client"`, `"address"`, `"time_zone"`
-- @treturn string
function M.quser(records, opts)
  opts = opts or {}
  if record.is_session(records) then records = { records } end
  local recs = {}
  for _, r in ipairs(sorted(records)) do
    if r.user and r.user ~= "" then recs[#recs + 1] = r end
  end
  local show_host = host_col(recs, opts)
  local hostw, userw, namew, idw = show_host and 6 or 0, 22, 18, 3
  for _, r in ipairs(recs) do
    if show_host then hostw = math.max(hostw, ulen(cell(r.host)) + 2, 6) end
    userw = math.max(userw, ulen(username(r, opts)) + 1)
    namew = math.max(namew, ulen(cell(r.name)) + 1)
    idw = math.max(idw, #tostring(r.id))
  end
  local lines = { rtrim(" " .. (show_host and ljust("HOST", hostw) or "") .. ljust("USERNAME", userw)
    .. ljust("SESSIONNAME", namew) .. rjust("ID", idw) .. "  " .. ljust("STATE", 8) .. "IDLE TIME"
    .. "  " .. "LOGON TIME") }
  for _, r in ipairs(recs) do
    lines[#lines + 1] = rtrim(" " .. (show_host and ljust(cell(r.host), hostw) or "")
      .. ljust(username(r, opts), userw) .. ljust(cell(r.name), namew) .. rjust(tostring(r.id), idw)
      .. "  " .. ljust(record.STATE_ABBREV[r.state] or tostring(r.state or ""), 8)
      .. rjust(M.quser_idle(record.idle(r)), 8) .. "   " .. M.logon_time(r.logon_time, opts))
  end
  if opts.extra and #opts.extra > 0 then lines = with_extra(lines, recs, opts.extra) end
  return lines_out(lines)
end

-- ----------------------------------------------------------------------------
-- rows for JSON / CSV

local function is_plan(x)
  local mt = getmetatable(x)
  return mt ~= nil and mt.__name == "termsrv.plan"
end

local function is_results(x)
  local mt = getmetatable(x)
  return mt ~= nil and mt.__name == "termsrv.results"
end

--- What kind of item `x` is: `"session"`, `"step"`, `"result"`, `"skipped"`,
-- `"error"` or `"other"`.
function M.kind(x)
  if record.is_session(x) then return "session" end
  if type(x) ~= "table" then return "other" end
  if x.why ~= nil and x.rule ~= nil then return "step" end
  if x.ok ~= nil or x.status ~= nil then return "result" end
  if x.reason ~= nil then return "skipped" end
  if x.err ~= nil and x.host ~= nil then return "error" end
  if x.state ~= nil and x.id ~= nil then return "session" end
  return "other"
end

local FIELDS_BY_KIND = { session = M.SESSION_FIELDS, step = M.STEP_FIELDS, result = M.RESULT_FIELDS,
                         skipped = M.SKIPPED_FIELDS, error = M.ERROR_FIELDS }

local function time_value(v, opts)
  if v == nil or type(v) ~= "number" then return v end
  if opts.time == "epoch" then return v end
  return json.iso(v)
end

local function steps_text(steps)
  if type(steps) ~= "table" then return steps end
  local out = {}
  for _, s in ipairs(steps) do
    local t = tostring(s.action) .. ":" .. (s.ok and "ok" or "failed")
    if not s.ok and s.err and s.err.code then t = t .. "(" .. s.err.code .. ")" end
    out[#out + 1] = t
  end
  return table.concat(out, " ")
end

-- One item as an ordered plain table (values JSON/CSV-ready).
local function flatten(x, fields, opts)
  local t = {}
  local err = x.err
  for _, k in ipairs(fields) do
    local v
    if k == "error" then
      v = x.error
      if v == nil and err ~= nil then v = type(err) == "table" and err.code or tostring(err) end
      if type(v) == "table" then v = v.code end
    elseif k == "error_message" then
      v = x.error_message
      if v == nil and err ~= nil then v = tostring(err) end
    elseif k == "status" then
      v = x.status
      if v == nil and x.ok ~= nil then v = x.ok and "ok" or "failed" end
    elseif k == "steps" then
      v = steps_text(x.steps)
    elseif k == "logon_time" and x.logon_time == nil and type(x.fingerprint) == "table" then
      v = time_value(x.fingerprint.logon_time, opts)
    elseif k == "duration" and type(x.duration) == "number" then
      v = math.floor(x.duration * 1000 + 0.5) / 1000
      v = math.tointeger(v) or v
    elseif k:match("_time$") then
      v = time_value(x[k], opts)
    else
      v = x[k]
      if type(v) == "table" then
        local ok, s = pcall(tostring, v)
        v = ok and s or nil
      end
    end
    t[k] = v
  end
  return t
end

local function items_of(x)
  if is_plan(x) then return x.steps, "step" end
  if record.is_session(x) then return { x }, "session" end
  if type(x) == "table" and #x == 0 and (x.ok ~= nil or x.status ~= nil) then return { x }, "result" end
  return x
end

--- Rows of `items` as plain tables in column order, and the column list.
-- @param items records, action results, plan steps, a plan, or a results object
-- @tparam[opt] table opts `fields` (column list), `time = "epoch"`
-- @treturn {table,...} rows
-- @treturn {string,...} fields
function M.rows(items, opts)
  opts = opts or {}
  local list, kind = items_of(items)
  local fields = opts.fields
  if not fields then
    kind = kind or (list[1] ~= nil and M.kind(list[1])) or (is_results(items) and "result") or "session"
    fields = FIELDS_BY_KIND[kind]
    if not fields then
      local set = {}
      for _, it in ipairs(list) do for k in pairs(it) do if type(k) == "string" then set[k] = true end end end
      fields = {}
      for k in pairs(set) do fields[#fields + 1] = k end
      table.sort(fields)
    end
  end
  local rows = {}
  for i, it in ipairs(list) do rows[i] = flatten(it, fields, opts) end
  return rows, fields
end

--- JSON Lines: one object per item, keys in the fixed column order, every
-- column present (`null` when unknown).
-- @param items as for `rows`
-- @tparam[opt] table opts as for `rows`
-- @treturn string
function M.jsonl(items, opts)
  local rows, fields = M.rows(items, opts)
  local out = {}
  for i, row in ipairs(rows) do
    local full = {}
    for _, k in ipairs(fields) do
      local v = row[k]
      if v == nil then v = json.null end
      full[k] = v
    end
    out[i] = json.encode(full, fields)
  end
  return lines_out(out)
end

--- One JSON value (array of objects) for `items`, same columns as `jsonl`.
function M.json(items, opts)
  local rows, fields = M.rows(items, opts)
  for i, row in ipairs(rows) do
    for _, k in ipairs(fields) do if row[k] == nil then row[k] = json.null end end
    rows[i] = row
  end
  return json.encode(json.array(rows), fields) .. "\n"
end

local function csv_field(v)
  if v == nil then return "" end
  local s
  if type(v) == "boolean" then s = v and "true" or "false"
  else s = text.csv_inert(text.printable(tostring(v))) end
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- CSV (RFC 4180): header row, then one row per item, same columns and order
-- as `jsonl`; fields with a comma, quote, CR or LF are quoted, quotes doubled.
-- @param items as for `rows`
-- @tparam[opt] table opts as for `rows`, plus `eol` (default `"\r\n"` as RFC 4180 says)
-- @treturn string
function M.csv(items, opts)
  opts = opts or {}
  local eol = opts.eol or "\r\n"
  local rows, fields = M.rows(items, opts)
  local out = {}
  local head = {}
  for i, k in ipairs(fields) do head[i] = csv_field(k) end
  out[1] = table.concat(head, ",")
  for _, row in ipairs(rows) do
    local cells = {}
    for i, k in ipairs(fields) do cells[i] = csv_field(row[k]) end
    out[#out + 1] = table.concat(cells, ",")
  end
  return table.concat(out, eol) .. eol
end

-- ----------------------------------------------------------------------------
-- summaries

local Summary = {}
Summary.__index = Summary
Summary.__name = "termsrv.summary"

local function host_entry(s, host)
  local e = s._by_host[host]
  if not e then
    e = { host = host }
    s._by_host[host] = e
    s.hosts[#s.hosts + 1] = e
  end
  return e
end

local function inc(t, k, n) t[k] = (t[k] or 0) + (n or 1) end

local function summarize_results(s, list, host_errors)
  s.kind = "results"
  local total = { hosts = 0, ok = 0, failed = 0, skipped = 0, total = 0, host_errors = 0 }
  for _, r in ipairs(list) do
    local e = host_entry(s, r.host or "?")
    e.ok, e.failed, e.skipped, e.total = e.ok or 0, e.failed or 0, e.skipped or 0, e.total or 0
    local st = r.status or (r.ok and "ok" or "failed")
    if st ~= "ok" and st ~= "skipped" then st = "failed" end
    inc(e, st); inc(e, "total"); inc(total, st); inc(total, "total")
  end
  for _, he in ipairs(host_errors or {}) do
    local e = host_entry(s, he.host or "?")
    e.ok, e.failed, e.skipped, e.total = e.ok or 0, e.failed or 0, e.skipped or 0, e.total or 0
    e.error = he.err
    inc(total, "host_errors")
  end
  total.hosts = #s.hosts
  s.total = total
  if total.failed == 0 and total.host_errors == 0 then s.exit_code = 0
  elseif total.ok == 0 and total.skipped == 0 then s.exit_code = 2
  else s.exit_code = 1 end
end

local function summarize_sessions(s, list)
  s.kind = "sessions"
  local total = { hosts = 0, sessions = 0, users = 0, states = {} }
  for _, r in ipairs(list) do
    local e = host_entry(s, r.host or "?")
    e.sessions = (e.sessions or 0) + 1
    e.states = e.states or {}
    inc(e.states, r.state or "unknown")
    inc(total.states, r.state or "unknown")
    total.sessions = total.sessions + 1
    if r.user and r.user ~= "" then e.users = (e.users or 0) + 1; total.users = total.users + 1 end
  end
  for _, e in ipairs(s.hosts) do e.users = e.users or 0 end
  total.hosts = #s.hosts
  s.total = total
  s.exit_code = 0
end

local function summarize_plan(s, p)
  s.kind = "plan"
  local total = { hosts = 0, steps = 0, skipped = 0, host_errors = 0, actions = {} }
  for _, h in ipairs(p.hosts or {}) do
    local e = host_entry(s, h.host)
    e.steps, e.skipped, e.actions = 0, 0, {}
  end
  for _, st in ipairs(p.steps) do
    local e = host_entry(s, st.host)
    e.steps = (e.steps or 0) + 1
    e.actions = e.actions or {}
    inc(e.actions, st.action); inc(total.actions, st.action)
    total.steps = total.steps + 1
  end
  for _, sk in ipairs(p.skipped) do
    local e = host_entry(s, sk.host)
    e.skipped = (e.skipped or 0) + 1
    total.skipped = total.skipped + 1
  end
  for _, he in ipairs(p.errors) do
    local e = host_entry(s, he.host)
    e.error = he.err
    total.host_errors = total.host_errors + 1
  end
  total.hosts = #s.hosts
  s.total = total
  s.exit_code = (total.host_errors == 0 and 0) or (total.host_errors == total.hosts and 2) or 1
end

--- Per-host and overall counts.
--
-- For action results (a results object from `plan:apply`, or a list of
-- result records): `ok`, `failed`, `skipped`, `total` per host and overall,
-- `host_errors` (hosts that could not be listed), and `exit_code` (0 all ok,
-- 1 some failures, 2 nothing succeeded). For session records: sessions,
-- users and counts by state. For a plan: steps by action, skipped, errors.
-- @param items results, records or a plan
-- @treturn termsrv.summary `{kind=, hosts={...}, total={...}, exit_code=}` with `__tostring`
function M.summary(items)
  local s = setmetatable({ hosts = {}, _by_host = {} }, Summary)
  if is_plan(items) then
    summarize_plan(s, items)
  else
    local list = items
    local kind = list[1] and M.kind(list[1])
    if kind == "session" then summarize_sessions(s, list)
    else summarize_results(s, list, items.errors) end
  end
  s._by_host = nil
  return s
end

local function counts(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = t[k] .. " " .. k end
  return table.concat(out, ", ")
end

function Summary.__tostring(s)
  local lines = {}
  local t = s.total
  for _, e in ipairs(s.hosts) do
    local line
    if s.kind == "sessions" then
      line = string.format("%s: %d session%s, %d with a user (%s)", e.host, e.sessions,
        e.sessions == 1 and "" or "s", e.users, counts(e.states))
    elseif s.kind == "plan" then
      line = string.format("%s: %d action%s%s, %d not touched", e.host, e.steps or 0,
        e.steps == 1 and "" or "s", (e.steps or 0) > 0 and (" (" .. counts(e.actions) .. ")") or "",
        e.skipped or 0)
    else
      line = string.format("%s: %d ok, %d failed, %d skipped", e.host, e.ok, e.failed, e.skipped)
    end
    if e.error then line = e.host .. ": ERROR " .. tostring(e.error) end
    lines[#lines + 1] = line
  end
  if s.kind == "sessions" then
    lines[#lines + 1] = string.format("total: %d host%s, %d sessions, %d with a user", t.hosts,
      t.hosts == 1 and "" or "s", t.sessions, t.users)
  elseif s.kind == "plan" then
    lines[#lines + 1] = string.format("total: %d host%s, %d actions, %d not touched, %d host error%s",
      t.hosts, t.hosts == 1 and "" or "s", t.steps, t.skipped, t.host_errors,
      t.host_errors == 1 and "" or "s")
  else
    lines[#lines + 1] = string.format("total: %d host%s, %d ok, %d failed, %d skipped, %d host error%s",
      t.hosts, t.hosts == 1 and "" or "s", t.ok, t.failed, t.skipped, t.host_errors,
      t.host_errors == 1 and "" or "s")
  end
  return table.concat(lines, "\n")
end

--- Plain-table view (for JSON).
function Summary:totable()
  local hosts = {}
  for i, e in ipairs(self.hosts) do
    local c = {}
    for k, v in pairs(e) do c[k] = v end
    if c.error then c.error = tostring(c.error) end
    hosts[i] = c
  end
  return { kind = self.kind, hosts = hosts, total = self.total, exit_code = self.exit_code }
end

--- CLI exit code for results: 0 all ok, 1 some failed, 2 nothing succeeded.
-- @param x a summary, or anything `summary` accepts
-- @treturn integer
function M.exit_code(x)
  if getmetatable(x) ~= Summary then x = M.summary(x) end
  return x.exit_code
end

-- ----------------------------------------------------------------------------
-- plans and results as text

local function age(secs) return secs and duration.format(secs, 2) or "-" end

local function action_text(st)
  local parts = {}
  for _, s in ipairs(st.steps or { st.action }) do
    parts[#parts + 1] = s .. ((st.grace and st.grace[s]) and ("+" .. duration.format(st.grace[s])) or "")
  end
  return table.concat(parts, ">")
end

--- A plan as text: what would be done, to whom, and which rule matched.
-- @tparam termsrv.plan p
-- @treturn string
function M.plan(p)
  local nhosts = #(p.hosts or {}) + 0
  local head = string.format("Plan%s: %d action%s on %d host%s", p.policy_name
    and string.format(" (policy %q)", p.policy_name) or "", #p.steps, #p.steps == 1 and "" or "s",
    nhosts, nhosts == 1 and "" or "s")
  if p.free_slots then head = head .. string.format(", free_slots %d per host", p.free_slots) end
  head = head .. (p.applied and "" or " -- dry run, nothing done yet (plan:apply() acts)")
  local out = { head }
  if #p.steps > 0 then
    local rows = {}
    for _, st in ipairs(p.steps) do
      rows[#rows + 1] = { st.host, tostring(st.id), record.account(st) or "-",
        record.STATE_ABBREV[st.state] or st.state or "", age(st.idle), age(st.disconnected),
        st.rule, action_text(st), st.why }
    end
    local cols = { "HOST", "ID", "USER", "STATE", "IDLE", "DISC", "RULE", "ACTION", "WHY" }
    out[#out + 1] = rtrim(M.text_table(cols, rows, { right = { [2] = true } }))
  end
  for _, h in ipairs(p.hosts or {}) do
    if h.short and h.short > 0 then
      out[#out + 1] = string.format("%s: free_slots %d requested, only %d candidate%s", h.host,
        p.free_slots, p.free_slots - h.short, (p.free_slots - h.short) == 1 and "" or "s")
    end
  end
  if #p.skipped > 0 then
    out[#out + 1] = string.format("Not touched (%d):", #p.skipped)
    for _, sk in ipairs(p.skipped) do
      out[#out + 1] = string.format("  %s #%d %s: %s", sk.host, sk.id, record.account(sk) or "-", sk.reason)
    end
  end
  if #p.errors > 0 then
    out[#out + 1] = string.format("Host errors (%d):", #p.errors)
    for _, e in ipairs(p.errors) do out[#out + 1] = "  " .. e.host .. ": " .. tostring(e.err) end
  end
  return table.concat(out, "\n") .. "\n"
end

local function detail(r)
  local d = {}
  if r.note and r.note ~= "" then d[#d + 1] = r.note end
  if r.answer then d[#d + 1] = "answer: " .. r.answer end
  if r.err then d[#d + 1] = tostring(r.err) end
  return table.concat(d, "; ")
end

-- The columns of action results: heading, cell, right-aligned.
local RESULT_COLUMNS = {
  host = { "HOST", function(r) return r.host end },
  id = { "ID", function(r) return r.id and tostring(r.id) or "" end, true },
  user = { "USER", function(r) return record.account(r) or "-" end },
  rule = { "RULE", function(r) return r.rule or "" end },
  action = { "ACTION", function(r) return r.action or "" end },
  status = { "STATUS", function(r) return r.status or (r.ok and "ok" or "failed") end },
  before = { "BEFORE", function(r) return r.before or "" end },
  after = { "AFTER", function(r) return r.after or "" end },
  time = { "TIME", function(r) return r.duration and string.format("%.1fs", r.duration) or "" end, true },
  pid = { "PID", function(r) return r.pid and tostring(r.pid) or "" end, true },
  image = { "IMAGE", function(r) return r.image or "" end },
  detail = { "DETAIL", detail },
}

--- Action result rows as a text table with the named columns (default
-- host, id, user, rule, action, status, after, time, detail; also before, pid, image).
-- @tparam {table,...} rows result records
-- @tparam[opt] {string,...} columns
-- @treturn string
function M.results_table(rows, columns)
  columns = columns or { "host", "id", "user", "rule", "action", "status", "after", "time", "detail" }
  local head, cells, right = {}, {}, {}
  for c, name in ipairs(columns) do
    local col = RESULT_COLUMNS[name] or error("report.results_table: unknown column " .. tostring(name), 2)
    head[c], right[c] = col[1], col[3]
  end
  for i, r in ipairs(rows) do
    local row = {}
    for c, name in ipairs(columns) do row[c] = RESULT_COLUMNS[name][2](r) end
    cells[i] = row
  end
  return M.text_table(head, cells, { right = right })
end

--- Action results as text, with the summary.
-- @param results a results object from `plan:apply`, or a list of result records
-- @treturn string
function M.results(results)
  local out = {}
  if #results > 0 then out[1] = rtrim(M.results_table(results)) end
  for _, e in ipairs(results.errors or {}) do
    out[#out + 1] = e.host .. ": ERROR " .. tostring(e.err)
  end
  out[#out + 1] = tostring(M.summary(results))
  return table.concat(out, "\n") .. "\n"
end

return M
