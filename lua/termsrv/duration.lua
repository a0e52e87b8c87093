--- Durations: "90m", "8h", "2d", "1h30m" <-> seconds.
--
-- Accepted forms: a non-negative Lua number (seconds), a string of digits
-- (seconds), or one or more `<number><unit>` parts with units `w` (weeks),
-- `d`, `h`, `m`, `s` (or spelled out: `min`, `mins`, `minutes`, `hr`, `hours`,
-- `days`, `sec`, ...), largest unit first, each unit at most once, spaces
-- allowed, case ignored: `"45s"`, `"90m"`, `"1h30m"`, `"1d 12h"`, `"1.5h"`,
-- `"4 hours"`. Results are integer seconds (fractions round to the
-- nearest second).
-- @module termsrv.duration

local errors = require "termsrv.error"

local M = {}

local UNITS = { w = 604800, d = 86400, h = 3600, m = 60, s = 1 }
local RANK = { w = 1, d = 2, h = 3, m = 4, s = 5 }
local ALIAS = { w = "w", wk = "w", week = "w", weeks = "w", d = "d", day = "d", days = "d",
                h = "h", hr = "h", hrs = "h", hour = "h", hours = "h",
                m = "m", min = "m", mins = "m", minute = "m", minutes = "m",
                s = "s", sec = "s", secs = "s", second = "s", seconds = "s" }

local EXPECT = "expected seconds or a duration like 45s, 90m, 8h, 2d, 1h30m"

local function round(x)
  return math.tointeger(math.floor(x + 0.5)) or math.floor(x + 0.5)
end

local function parse(v)
  if math.type(v) == "integer" then
    if v < 0 then return nil, "negative duration" end
    return v
  elseif type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "not a finite number" end
    if v < 0 then return nil, "negative duration" end
    return round(v)
  elseif type(v) ~= "string" then
    return nil, "a " .. type(v) .. " is not a duration"
  end
  local s = v:lower():gsub("^%s+", ""):gsub("%s+$", "")
  if s == "" then return nil, "empty duration" end
  if s:match("^%d+$") then return math.tointeger(tonumber(s)) end
  local total, pos, last = 0, 1, 0
  while pos <= #s do
    local num, word, nxt = s:match("^(%d+%.?%d*)%s*(%a+)%s*()", pos)
    if not num then
      num, word, nxt = s:match("^(%.%d+)%s*(%a+)%s*()", pos)
    end
    if not num then return nil, "cannot read '" .. s:sub(pos) .. "'" end
    local unit = ALIAS[word]
    if not unit then return nil, "unknown unit '" .. word .. "'" end
    if RANK[unit] <= last then return nil, "units must go from largest to smallest, each once" end
    last = RANK[unit]
    total = total + tonumber(num) * UNITS[unit]
    pos = nxt
  end
  return round(total)
end

--- Parses a duration.
-- @param v number (seconds) or string such as `"1h30m"`
-- @treturn[1] integer seconds
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"bad_duration"`, message naming the bad value
function M.parse(v)
  local secs, why = parse(v)
  if secs then return secs end
  return nil, errors.new{ code = "bad_duration",
    message = string.format("bad duration %s: %s (%s)",
      type(v) == "string" and ("'" .. v .. "'") or tostring(v), why, EXPECT) }
end

--- Parses a duration or raises (for programmer errors, e.g. in a selector).
-- @param v the value
-- @tparam[opt] string what the name shown in the message (e.g. `"min_idle"`)
-- @tparam[opt=2] integer level error level
-- @treturn integer seconds
function M.check(v, what, level)
  local secs, why = parse(v)
  if secs then return secs end
  error(string.format("%sbad duration %s: %s (%s)", what and (what .. ": ") or "",
    type(v) == "string" and ("'" .. v .. "'") or tostring(v), why, EXPECT), (level or 2) + 1)
end

--- Formats seconds compactly: `0s`, `45s`, `1h30m`, `2d`, `1d2h3m4s`.
-- Fractions are dropped; negative values keep their sign.
-- @tparam number secs
-- @tparam[opt] integer parts keep at most this many units, largest first,
--   truncating the rest (`format(40000, 2)` is `11h6m`)
-- @treturn string
function M.format(secs, parts)
  if type(secs) ~= "number" then error("duration.format: number expected, got " .. type(secs), 2) end
  local neg = secs < 0
  local n = math.floor(math.abs(secs))
  if n == 0 then return "0s" end
  local out = {}
  for _, u in ipairs{ "d", "h", "m", "s" } do
    local q = n // UNITS[u]
    if q > 0 or #out > 0 then
      if parts and #out >= parts then break end
      if q > 0 then out[#out + 1] = string.format("%d%s", q, u) else out[#out + 1] = false end
      n = n - q * UNITS[u]
    end
  end
  local t = {}
  for _, x in ipairs(out) do if x then t[#t + 1] = x end end
  return (neg and "-" or "") .. table.concat(t)
end

return M
