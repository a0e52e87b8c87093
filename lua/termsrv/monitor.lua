--- Monitoring: session counts, plugin thresholds and output (Nagios,
-- Icinga, Checkmk), and the Prometheus text exposition format. Every
-- function here is pure: it takes session records or counts and returns
-- values or text; `termsrv check` and `termsrv metrics` do the I/O.
--
-- Thresholds follow the monitoring-plugins guidelines: a range is
-- `[@]START:END`; START defaults to 0 (and `START:` may be left out), `~`
-- is minus infinity, an empty END is infinity; a value alerts when it is
-- outside the range (the ends are inside), or inside it with a leading `@`.
-- So `10` alerts above 10 (and below 0), `10:` below 10, `~:10` above 10,
-- `10:20` outside 10..20, `@10:20` inside 10..20.
--
-- The state of several checks is the worst by the monitoring-plugins'
-- `max_state_alt` order: OK < UNKNOWN < WARNING < CRITICAL.
-- @module termsrv.monitor

local duration = require "termsrv.duration"
local record = require "termsrv.record"
local text = require "termsrv.text"

local M = {}

M.OK, M.WARNING, M.CRITICAL, M.UNKNOWN = 0, 1, 2, 3

--- State names by exit code.
M.STATE_NAMES = { [0] = "OK", "WARNING", "CRITICAL", "UNKNOWN" }

local SEVERITY = { [0] = 0, 2, 3, 1 } -- OK < UNKNOWN < WARNING < CRITICAL

--- The worse of two states (OK < UNKNOWN < WARNING < CRITICAL).
function M.worst(a, b)
  if SEVERITY[a] == nil or SEVERITY[b] == nil then error("monitor.worst: states are 0..3", 2) end
  return SEVERITY[a] >= SEVERITY[b] and a or b
end

-- ----------------------------------------------------------------------------
-- ranges and thresholds

local function number(s)
  if not s:match("^[%+%-]?%d+%.?%d*$") and not s:match("^[%+%-]?%.%d+$") then return nil end
  return tonumber(s)
end

--- Parses a threshold range.
-- @tparam string s e.g. `10`, `10:`, `~:10`, `10:20`, `@10:20`
-- @treturn[1] table `{text=, lo=, hi=, inside=}` (`lo`/`hi` may be -/+math.huge)
-- @treturn[2] nil
-- @treturn[2] string what is wrong
function M.parse_range(s)
  if type(s) ~= "string" then error("monitor.parse_range: string expected, got " .. type(s), 2) end
  local bad = "'" .. s .. "' is not a threshold range (N, N:, ~:N, N:M or @N:M)"
  local body, inside = s, false
  if body:sub(1, 1) == "@" then body, inside = body:sub(2), true end
  if body == "" then return nil, bad end
  local lo, hi
  local a, b = body:match("^([^:]*):(.*)$")
  if a then
    if a == "~" then lo = -math.huge
    elseif a == "" then lo = 0
    else lo = number(a) end
    if b == "" then hi = math.huge else hi = number(b) end
  else
    lo, hi = 0, number(body)
  end
  if lo == nil or hi == nil then return nil, bad end
  if lo > hi then return nil, "'" .. s .. "': the start of a range must not be above its end" end
  return { text = s, lo = lo, hi = hi, inside = inside }
end

--- True when `v` alerts against range `r` (nil: no threshold, never).
function M.alerts(r, v)
  if r == nil then return false end
  local within = v >= r.lo and v <= r.hi
  if r.inside then return within end
  return not within
end

--- When a range alerts, in words: `> 10`, `< 10`, `outside 10:20`, `inside 10:20`.
function M.describe(r)
  local function n(v) return string.format("%g", v) end
  if r.inside then
    return "inside " .. (r.lo == -math.huge and "~" or n(r.lo)) .. ":"
      .. (r.hi == math.huge and "" or n(r.hi))
  end
  if r.hi == math.huge then return r.lo == -math.huge and "never" or "< " .. n(r.lo) end
  if r.lo == -math.huge or r.lo == 0 then return "> " .. n(r.hi) end
  return "outside " .. n(r.lo) .. ":" .. n(r.hi)
end

--- The state of `v` against a warning and a critical range (either may be nil).
function M.threshold_state(v, warn, crit)
  if M.alerts(crit, v) then return M.CRITICAL end
  if M.alerts(warn, v) then return M.WARNING end
  return M.OK
end

-- ----------------------------------------------------------------------------
-- counting sessions

--- Counts of a host's sessions. Only user sessions count (not the console,
-- the services session nor listeners), and of those only the ones with a
-- user logged on: each holds a Remote Desktop slot whatever its state.
-- @tparam {table,...} sessions session records (with times, for the ages)
-- @tparam[opt] integer stale seconds: disconnected at least this long is stale
-- @treturn table `in_use`, `active`, `disconnected`, `stale` (nil without
--   `stale`), `unknown_age` (disconnected sessions whose age Windows did not
--   say), `idle_max` (longest idle of an active session, 0 without one),
--   `disconnected_max` (longest disconnected, 0 without one), `by_state`
--   (state name -> count)
function M.tally(sessions, stale)
  local t = { in_use = 0, active = 0, disconnected = 0, stale = stale and 0 or nil, unknown_age = 0,
              idle_max = 0, disconnected_max = 0, by_state = {} }
  for _, s in ipairs(sessions) do
    if (s.kind or record.kind(s)) == "user" and s.user and s.user ~= "" then
      t.in_use = t.in_use + 1
      t.by_state[s.state] = (t.by_state[s.state] or 0) + 1
      if s.state == "active" then
        t.active = t.active + 1
        local idle = record.idle(s)
        if idle and idle > t.idle_max then t.idle_max = idle end
      elseif s.state == "disconnected" then
        t.disconnected = t.disconnected + 1
        local age = record.disconnected_for(s)
        if age == nil then
          t.unknown_age = t.unknown_age + 1
        else
          if age > t.disconnected_max then t.disconnected_max = age end
          if stale and age >= stale then t.stale = t.stale + 1 end
        end
      end
    end
  end
  return t
end

--- Slots left of a connection limit (nil when the limit is unknown).
function M.slots_left(t, limit)
  if limit == nil then return nil end
  return math.max(0, limit - t.in_use)
end

-- ----------------------------------------------------------------------------
-- plugin output

--- The metrics a check judges, in output order: key, perfdata label, text.
M.CHECKS = {
  { key = "in_use", label = "in_use", what = "in use" },
  { key = "disconnected", label = "disconnected", what = "disconnected" },
  { key = "stale", label = "stale", what = "stale" },
  { key = "slots_left", label = "slots_left", what = "slots left" },
}

local function num(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", math.tointeger(v)) end
  return (string.format("%.6f", v):gsub("0+$", ""):gsub("%.$", ""))
end

--- One perfdata item: `'label'=value[UOM];warn;crit;min;max`, trailing
-- empty fields left out. A `'` in the label is doubled; `=` cannot be in
-- a label (Icinga refuses it) and becomes `_`.
-- @tparam table p `label`, `value`, `uom`, `warn`, `crit` (ranges or their
--   text), `min`, `max`
function M.perf_item(p)
  local label = tostring(p.label):gsub("=", "_"):gsub("'", "''"):gsub("[%c|]", "_")
  local function range_text(r) return type(r) == "table" and r.text or r end
  local fields = { "'" .. label .. "'=" .. num(p.value) .. (p.uom or ""), range_text(p.warn) or "",
                   range_text(p.crit) or "", p.min and num(p.min) or "", p.max and num(p.max) or "" }
  local n = #fields
  while n > 1 and fields[n] == "" do n = n - 1 end
  return table.concat(fields, ";", 1, n)
end

--- Judges one host's counts against the thresholds.
-- @tparam table t from `tally`
-- @tparam table opts `thresholds` (key of `CHECKS` -> `{warn=, crit=}`
--   ranges), `stale` (seconds), `slots` (the connection limit, nil when
--   unknown), `slots_from` (`"host"` when the host said it: the text adds
--   "N of M used"), `unlimited` (the host said it has no limit),
--   `slots_unknown` (why the limit is not known, for the text),
--   `prefix` (of perfdata labels, e.g. `"TS01::"`)
-- @treturn table `state`, `text` (one line), `perf` (a list of perfdata items)
function M.judge(t, opts)
  local th = opts.thresholds or {}
  local state, parts, perf = M.OK, {}, {}
  local values = { in_use = t.in_use, disconnected = t.disconnected, stale = t.stale,
                   slots_left = M.slots_left(t, opts.slots) }
  local maxes = { in_use = opts.slots, slots_left = opts.slots }
  for _, c in ipairs(M.CHECKS) do
    local v, lim = values[c.key], th[c.key] or {}
    local piece
    if v == nil then
      if c.key == "slots_left" and opts.unlimited then
        -- no limit: no slot can run out, whatever the thresholds
        piece = string.format("%d slots used, no limit (the host's listener sets none)", t.in_use)
      elseif c.key == "slots_left" then
        piece = "slots left unknown ("
          .. (opts.slots_unknown or "the connection limit is not known: --slots N") .. ")"
        if lim.warn or lim.crit then
          state = M.worst(state, M.UNKNOWN)
          piece = "UNKNOWN: " .. piece
        end
      end
    else
      local s = M.threshold_state(v, lim.warn, lim.crit)
      state = M.worst(state, s)
      if c.key == "slots_left" then
        piece = string.format("%d of %d slots left", v, opts.slots)
      else
        piece = num(v) .. " " .. c.what
      end
      local notes = {}
      if c.key == "slots_left" and opts.slots_from == "host" then
        notes[1] = string.format("%d of %d used; the host's limit", t.in_use, opts.slots)
      end
      if c.key == "stale" and opts.stale then
        notes[1] = "disconnected >= " .. duration.format(opts.stale)
      end
      if s ~= M.OK then
        notes[#notes + 1] = M.STATE_NAMES[s] .. ": " .. M.describe(s == M.CRITICAL and lim.crit or lim.warn)
      end
      if #notes > 0 then piece = piece .. " (" .. table.concat(notes, "; ") .. ")" end
      perf[#perf + 1] = M.perf_item{ label = (opts.prefix or "") .. c.label, value = v, warn = lim.warn,
                                     crit = lim.crit, min = 0, max = maxes[c.key] }
    end
    if c.key == "stale" and t.unknown_age > 0 then
      piece = (piece and piece .. ", " or "")
        .. string.format("%d disconnected of unknown age", t.unknown_age)
    end
    parts[#parts + 1] = piece
  end
  return { state = state, text = table.concat(parts, ", "), perf = perf }
end

-- Plugin text: one line each, printable, no `|` (it starts the perfdata).
local function plain(s)
  return (text.printable(tostring(s)):gsub("|", "/"))
end

--- The plugin's whole output and exit code.
-- @tparam {table,...} hosts `{name=, state=, text=, perf=}` (from `judge`,
--   or for a host that could not be asked: `state` and the error's `text`)
-- @tparam[opt] table totals `in_use`, `disconnected`, `stale` over the
--   hosts that answered (shown and graphed when there are several hosts)
-- @treturn string the output (ends with a newline)
-- @treturn integer the exit code
function M.plugin_output(hosts, totals)
  if #hosts == 0 then error("monitor.plugin_output: no hosts", 2) end
  local state = M.OK
  for _, h in ipairs(hosts) do state = M.worst(state, h.state) end
  if #hosts == 1 then
    local h = hosts[1]
    local line = "TERMSRV " .. M.STATE_NAMES[h.state] .. " - " .. plain(h.name) .. ": " .. plain(h.text)
    if h.perf and #h.perf > 0 then line = line .. " | " .. table.concat(h.perf, " ") end
    return line .. "\n", h.state
  end
  local count = { [0] = 0, 0, 0, 0 }
  for _, h in ipairs(hosts) do count[h.state] = count[h.state] + 1 end
  local parts = {}
  for _, s in ipairs{ M.CRITICAL, M.WARNING, M.UNKNOWN, M.OK } do
    if count[s] > 0 then parts[#parts + 1] = count[s] .. " " .. M.STATE_NAMES[s] end
  end
  local first = string.format("TERMSRV %s - %d hosts: %s", M.STATE_NAMES[state], #hosts,
    table.concat(parts, ", "))
  local perf = {}
  if totals then
    first = first .. string.format("; %d in use, %d disconnected", totals.in_use, totals.disconnected)
    perf[1] = M.perf_item{ label = "in_use", value = totals.in_use, min = 0 }
    perf[2] = M.perf_item{ label = "disconnected", value = totals.disconnected, min = 0 }
    if totals.stale then
      first = first .. string.format(", %d stale", totals.stale)
      perf[3] = M.perf_item{ label = "stale", value = totals.stale, min = 0 }
    end
  end
  local lines = { first }
  for _, h in ipairs(hosts) do
    lines[#lines + 1] = plain(h.name) .. ": " .. M.STATE_NAMES[h.state] .. " - " .. plain(h.text)
    for _, p in ipairs(h.perf or {}) do perf[#perf + 1] = p end
  end
  -- all perfdata after the last line of text: what Nagios, Icinga 2 and
  -- Checkmk all read (Icinga 2 takes everything after the first `|`)
  if #perf > 0 then lines[#lines] = lines[#lines] .. " | " .. table.concat(perf, " ") end
  return table.concat(lines, "\n") .. "\n", state
end

-- ----------------------------------------------------------------------------
-- Prometheus text exposition format (version 0.0.4)

-- Label values and HELP texts are UTF-8: bytes that are not become U+FFFD.
local function utf8_clean(s)
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local ok, n = pcall(utf8.codepoint, s, i)
    if ok then
      local c = utf8.char(n)
      out[#out + 1] = c
      i = i + #c
    else
      out[#out + 1] = "\u{FFFD}"
      i = i + 1
    end
  end
  return table.concat(out)
end

--- A label value escaped: `\` `"` and newline as `\\`, `\"`, `\n`.
function M.label_value(s)
  return (utf8_clean(tostring(s)):gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

local function help_text(s)
  return (utf8_clean(s):gsub("[\\\n]", { ["\\"] = "\\\\", ["\n"] = "\\n" }))
end

local function sample_value(v)
  if v ~= v then return "NaN" end
  if v == math.huge then return "+Inf" end
  if v == -math.huge then return "-Inf" end
  return num(v)
end

--- Text exposition of metric families.
-- @tparam {table,...} families `{name=, help=, type=, samples={{labels={{name, value},...}, value=},...}}`;
--   a family without samples is left out
-- @treturn string
function M.exposition(families)
  local out = {}
  for _, f in ipairs(families) do
    if not f.name:match("^[a-zA-Z_:][a-zA-Z0-9_:]*$") then
      error("monitor.exposition: bad metric name '" .. f.name .. "'", 2)
    end
    if #f.samples > 0 then
      out[#out + 1] = "# HELP " .. f.name .. " " .. help_text(f.help)
      out[#out + 1] = "# TYPE " .. f.name .. " " .. f.type
      for _, s in ipairs(f.samples) do
        local labels = {}
        for _, l in ipairs(s.labels or {}) do
          labels[#labels + 1] = l[1] .. '="' .. M.label_value(l[2]) .. '"'
        end
        out[#out + 1] = f.name .. (#labels > 0 and "{" .. table.concat(labels, ",") .. "}" or "") .. " "
          .. sample_value(s.value)
      end
    end
  end
  return #out > 0 and table.concat(out, "\n") .. "\n" or ""
end

--- The metric families of a sweep.
-- @tparam {table,...} hosts `{name=, up=, duration=, tally=, slots=, error_code=}`
--   (`tally` from `tally`, for the hosts that answered)
-- @tparam table opts `stale` (seconds)
-- @treturn {table,...} families for `exposition`
function M.families(hosts, opts)
  local F, order = {}, {}
  local function family(name, typ, help)
    F[name] = { name = name, type = typ, help = help, samples = {} }
    order[#order + 1] = F[name]
  end
  local function add(name, value, labels)
    local s = F[name].samples
    s[#s + 1] = { labels = labels, value = value }
  end
  family("termsrv_up", "gauge", "1 when the host's sessions could be listed, 0 when not.")
  family("termsrv_scrape_duration_seconds", "gauge", "Seconds it took to list the host's sessions.")
  family("termsrv_scrape_error_info", "gauge",
    "Why a host could not be listed: its termsrv error code (value always 1).")
  family("termsrv_sessions", "gauge",
    "User sessions with a user logged on, by state (each holds a Remote Desktop slot).")
  family("termsrv_sessions_stale", "gauge", "Sessions disconnected at least termsrv_stale_threshold_seconds.")
  family("termsrv_stale_threshold_seconds", "gauge", "How long a session must be disconnected to be stale.")
  family("termsrv_session_idle_seconds_max", "gauge",
    "Longest time without input of an active session (0 when none is active).")
  family("termsrv_session_disconnected_seconds_max", "gauge",
    "Longest time a session has been disconnected (0 when none is).")
  family("termsrv_sessions_unknown_age", "gauge",
    "Disconnected sessions whose disconnect time the host did not say.")
  family("termsrv_slots_used", "gauge", "Remote Desktop slots in use: sessions with a user, any state.")
  family("termsrv_slots_limit", "gauge",
    "The host's connection limit: --slots, else its RDP listener's MaxInstanceCount "
      .. "(absent when unknown or unlimited).")
  if opts.stale then add("termsrv_stale_threshold_seconds", opts.stale) end
  for _, h in ipairs(hosts) do
    local host = { { "host", h.name } }
    add("termsrv_up", h.up and 1 or 0, host)
    add("termsrv_scrape_duration_seconds", h.duration or 0, host)
    if not h.up then
      add("termsrv_scrape_error_info", 1, { { "host", h.name }, { "code", h.error_code or "error" } })
    else
      local t = h.tally
      for code = 0, 9 do
        local st = record.STATES[code]
        add("termsrv_sessions", t.by_state[st] or 0, { { "host", h.name }, { "state", st } })
      end
      if t.stale then add("termsrv_sessions_stale", t.stale, host) end
      add("termsrv_session_idle_seconds_max", t.idle_max, host)
      add("termsrv_session_disconnected_seconds_max", t.disconnected_max, host)
      add("termsrv_sessions_unknown_age", t.unknown_age, host)
      add("termsrv_slots_used", t.in_use, host)
      if h.slots then add("termsrv_slots_limit", h.slots, host) end
    end
  end
  return order
end

return M
