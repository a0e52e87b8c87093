--- Selectors: which sessions a rule, a command or a script means.
--
-- A selector is a plain table of criteria; a session matches when it meets
-- every criterion given, none of the exclusions, and is not protected.
--
--     local selector = require "termsrv.select"
--     local m = selector.compile{ state = "disconnected", min_disconnected = "8h",
--                                 exclude_users = { "svc_*" } }
--     local ok, why = m(rec, { self = { user = "ops", domain = "CORP" } })
--
-- Criteria (a list means "any of"):
--
--  * `state`: state name(s) (`"disconnected"`, or the qwinsta abbreviation `"Disc"`)
--  * `id`: session id(s); naming an id also lifts protection for that id
--  * `user`, `domain`: name(s) or globs (`*`, `?`), case-insensitive; a `user`
--    pattern with a backslash (`"CORP\\a*"`) matches domain and user
--  * `station`: station name(s)/globs (the record's `name`)
--  * `client`: client machine name(s)/globs; `address`: client IP globs or
--    IPv4 CIDR blocks (`"10.1.0.0/16"`)
--  * `host`: host name globs (useful in multi-host policies)
--  * `min_idle`, `min_disconnected`, `min_logon_age`: durations (`"90m"`, `"8h"`,
--    `"1h30m"`, seconds); boundaries are inclusive (idle exactly 8h matches `"8h"`)
--  * `locked`: true or false
--  * `where`: `function(rec, ctx) return bool[, reason] end`
--
-- Exclusions: `exclude_users`, `exclude_stations`, `exclude_clients` (client
-- name or address, globs/CIDR), `exclude_ids`, and `exclude` = a selector (or a
-- list of selectors) whose matches are excluded.
--
-- Protected sessions are never matched unless the selector names them:
-- the services session (`"services"`), the console (`"console"`), listeners
-- (`"listener"`) and the caller's own sessions (`"self"`: sessions of
-- `ctx.self.user`/`ctx.self.domain`, the account termsrv authenticated as).
-- Lift protection with `include_protected = { "console", ... }` (or `true`
-- for all four), or by naming the session id in `id`.
--
-- A session whose needed field is unknown (nil) does not match that criterion.
-- @module termsrv.select

local duration = require "termsrv.duration"
local record = require "termsrv.record"

local M = {}

-- ----------------------------------------------------------------------------
-- case folding and globs

-- Upper-case to lower-case for the letters Windows names commonly use:
-- ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic.
local function fold_cp(c)
  if c < 0x80 then
    if c >= 0x41 and c <= 0x5A then return c + 32 end
  elseif c >= 0xC0 and c <= 0xDE and c ~= 0xD7 then return c + 32
  elseif c >= 0x100 and c <= 0x137 then return c | 1
  elseif c >= 0x139 and c <= 0x148 then return (c % 2 == 1) and c + 1 or c
  elseif c >= 0x14A and c <= 0x177 then return c | 1
  elseif c == 0x178 then return 0xFF
  elseif c >= 0x179 and c <= 0x17E then return (c % 2 == 1) and c + 1 or c
  elseif c >= 0x391 and c <= 0x3AB and c ~= 0x3A2 then return c + 32
  elseif c >= 0x400 and c <= 0x40F then return c + 80
  elseif c >= 0x410 and c <= 0x42F then return c + 32
  end
  return c
end

--- Case-folds a name the way Windows compares account names (ASCII, Latin,
-- Greek, Cyrillic); invalid UTF-8 falls back to ASCII lower-casing.
-- @tparam string s
-- @treturn string
function M.fold(s)
  if not s:find("[\128-\255]") then return s:lower() end
  local ok, out = pcall(function()
    local t = {}
    for _, c in utf8.codes(s) do t[#t + 1] = utf8.char(fold_cp(c)) end
    return table.concat(t)
  end)
  return ok and out or s:lower()
end
local fold = M.fold

--- Compiles a glob (`*` any run, `?` one character, everything else literal,
-- case-insensitive) into a function `f(string) -> bool`.
-- @tparam string glob
-- @treturn function
function M.glob(glob)
  local g = fold(glob)
  if not g:find("[%*%?]") then
    return function(s) return s ~= nil and fold(s) == g end
  end
  local parts = { "^" }
  for _, c in utf8.codes(g) do
    local ch = utf8.char(c)
    if ch == "*" then parts[#parts + 1] = ".-"
    elseif ch == "?" then parts[#parts + 1] = "[\0-\127\192-\255][\128-\191]*"
    else parts[#parts + 1] = (ch:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end
  end
  parts[#parts + 1] = "$"
  local pat = table.concat(parts)
  return function(s) return s ~= nil and fold(s):find(pat) ~= nil end
end

-- ----------------------------------------------------------------------------
-- IPv4 CIDR

local function ipv4(s)
  if type(s) ~= "string" then return nil end
  s = s:gsub("^::[fF][fF][fF][fF]:", "")
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return (a << 24) | (b << 16) | (c << 8) | d
end

local function cidr(spec)
  local addr, bits = spec:match("^([%d%.]+)/(%d+)$")
  local base = ipv4(addr)
  bits = tonumber(bits)
  if not base or not bits or bits > 32 then return nil end
  local mask = bits == 0 and 0 or ((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF)
  return function(s)
    local ip = ipv4(s)
    return ip ~= nil and (ip & mask) == (base & mask)
  end
end

-- ----------------------------------------------------------------------------
-- validation helpers: programmer errors are raised as a marked table and
-- turned into a message at the caller of `compile` (so the position is right)

local Fail = {}

local function fail(where, msg)
  error(setmetatable({ msg = "select: " .. (where and (where .. ": ") or "") .. msg }, Fail), 0)
end

local function list_of(v, key, check)
  if type(v) ~= "table" then v = { v } end
  if #v == 0 then fail(nil, key .. ": empty list") end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then fail(nil, key .. ": expected a value or a list of values") end
  for i, x in ipairs(v) do check(x, key .. (#v > 1 and ("[" .. i .. "]") or "")) end
  return v
end

local function check_string(x, key)
  if type(x) ~= "string" then fail(nil, key .. ": string expected, got " .. type(x)) end
  if x == "" then fail(nil, key .. ": empty string (use \"*\" for any)") end
end

local function check_id(x, key)
  if math.type(x) ~= "integer" or x < 0 then
    fail(nil, key .. ": session id (non-negative integer) expected, got " .. tostring(x))
  end
end

local ABBREV_TO_STATE = {}
for name, ab in pairs(record.STATE_ABBREV) do
  ABBREV_TO_STATE[ab:lower()] = name
  ABBREV_TO_STATE[name] = name
end
ABBREV_TO_STATE["connectquery"] = "connect_query"

local function state_names()
  local t = {}
  for code = 0, 9 do t[#t + 1] = record.STATES[code] end
  return table.concat(t, ", ")
end

local PROTECTED = { services = true, console = true, listener = true, self = true }

-- edit distance for "did you mean"
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- ----------------------------------------------------------------------------
-- criteria

local function show(list)
  local t = {}
  for i, x in ipairs(list) do t[i] = type(x) == "string" and ("'" .. x .. "'") or tostring(x) end
  return #t == 1 and t[1] or ("{" .. table.concat(t, ", ") .. "}")
end

-- A matcher true when any of the tests `fs` holds; it also returns the
-- pattern text (from `list`) that matched.
local function any_of(fs, list)
  return function(s)
    if s == nil then return false end
    for i, f in ipairs(fs) do if f(s) then return true, list[i] end end
    return false
  end
end

-- Returns a function(s) -> bool, and the pattern text that matched.
local function name_matcher(list)
  local fs = {}
  for i, g in ipairs(list) do fs[i] = M.glob(g) end
  return any_of(fs, list)
end

local function address_matcher(list)
  local fs = {}
  for i, g in ipairs(list) do
    if g:find("/", 1, true) then
      fs[i] = cidr(g)
      if not fs[i] then fail(nil, "bad IPv4 CIDR block '" .. g .. "' (expected e.g. 10.1.0.0/16)") end
    else
      fs[i] = M.glob(g)
    end
  end
  return any_of(fs, list)
end

--- One account pattern, the way every command and the library read it:
-- `alice` or `a*` (the user part, any domain), `CORP\\a*` (domain too),
-- `alice@corp.example` (a UPN: its domain matches the NetBIOS domain or the
-- first label of a DNS one); globs `*` `?`, case-insensitive beyond ASCII.
-- Raises on a pattern with an empty part.
-- @tparam string pattern
-- @treturn function `f(user, domain) -> bool`
function M.account_matcher(pattern)
  local d, u = pattern:match("^(.*)\\(.*)$")
  if not d then u, d = pattern:match("^([^@]+)@(.+)$") end
  if d and (d == "" or u == "") then
    fail(nil, "user: bad pattern '" .. pattern .. "' (expected user, DOMAIN\\user or user@domain)")
  end
  local fu = M.glob(u or pattern)
  if not d then return function(user) return fu(user) end end
  local fd, fd1 = M.glob(d), d:find(".", 1, true) and M.glob(d:match("^[^.]+"))
  return function(user, domain)
    return fu(user) and (fd(domain or "") or (fd1 and fd1(domain or "")) or false)
  end
end

-- user patterns (see account_matcher) for session records
local function user_matcher(list)
  local fs = {}
  for i, g in ipairs(list) do
    local f = M.account_matcher(g)
    fs[i] = function(rec) return f(rec.user, rec.domain) end
  end
  return function(rec)
    if rec.user == nil or rec.user == "" then return false end
    for i, f in ipairs(fs) do if f(rec) then return true, list[i] end end
    return false
  end
end

local fmt = duration.format

local function who(rec)
  return record.account(rec) or "no user"
end

-- Each builder takes the validated value and returns a test function
-- test(rec, ctx) -> bool, reason.
local BUILD = {}

function BUILD.state(v)
  local set, names = {}, {}
  for _, s in ipairs(list_of(v, "state", check_string)) do
    local name = ABBREV_TO_STATE[s:lower()]
    if not name then fail(nil, "state: unknown state '" .. s .. "' (one of " .. state_names() .. ")") end
    if not set[name] then set[name] = true; names[#names + 1] = name end
  end
  local want = table.concat(names, "|")
  return function(rec)
    if rec.state == nil then return false, "state unknown" end
    if set[rec.state] then return true, "state " .. rec.state end
    return false, "state " .. rec.state .. " is not " .. want
  end
end

function BUILD.id(v)
  local set, ids = {}, list_of(v, "id", check_id)
  for _, id in ipairs(ids) do set[id] = true end
  return function(rec)
    if set[rec.id] then return true, "id " .. rec.id end
    return false, "id " .. tostring(rec.id) .. " is not " .. show(ids)
  end, set
end

function BUILD.user(v)
  local list = list_of(v, "user", check_string)
  local f = user_matcher(list)
  return function(rec)
    if rec.user == nil or rec.user == "" then
      return false, "no user logged on (user " .. show(list) .. ")"
    end
    local ok, pat = f(rec)
    if ok then return true, "user " .. who(rec) .. " ~ '" .. pat .. "'" end
    return false, "user " .. who(rec) .. " does not match " .. show(list)
  end
end

local function field_criterion(key, field, label, build)
  return function(v)
    local list = list_of(v, key, check_string)
    local f = (build or name_matcher)(list)
    return function(rec)
      local val = rec[field]
      if val == nil or (val == "" and field ~= "name") then
        return false, label .. " unknown (" .. key .. " " .. show(list) .. ")"
      end
      local ok, pat = f(val)
      if ok then return true, label .. " '" .. val .. "' ~ '" .. pat .. "'" end
      return false, label .. " '" .. val .. "' does not match " .. show(list)
    end
  end
end

BUILD.domain = field_criterion("domain", "domain", "domain")
BUILD.station = field_criterion("station", "name", "station")
BUILD.client = field_criterion("client", "client", "client")
BUILD.address = field_criterion("address", "address", "address", address_matcher)
BUILD.host = field_criterion("host", "host", "host")

local function min_criterion(key, label, get)
  return function(v)
    local min, err = duration.parse(v)
    if not min then fail(nil, key .. ": " .. err.message) end
    local want = fmt(min)
    return function(rec, ctx)
      -- unknown: the getter has no value to judge (not a value that fails)
      local val, why, unknown = get(rec, ctx)
      if val == nil then
        return false, why or (label .. " unknown (" .. key .. " " .. want .. ")"),
          (why == nil or unknown) and "unknown" or nil
      end
      if val >= min then return true, label .. " " .. fmt(val) .. " >= " .. want end
      return false, label .. " " .. fmt(val) .. " < " .. want .. " (" .. key .. ")"
    end
  end
end

BUILD.min_idle = min_criterion("min_idle", "idle", function(rec)
  local idle = record.idle(rec)
  if idle == nil and rec.idle_unknown then
    return nil, "idle unknown: " .. rec.idle_unknown .. " (min_idle)", true
  end
  return idle
end)
BUILD.min_disconnected = min_criterion("min_disconnected", "disconnected", function(rec)
  if rec.state ~= "disconnected" then
    return nil, "not disconnected (state " .. tostring(rec.state) .. ", min_disconnected)"
  end
  return record.disconnected_for(rec)
end)
BUILD.min_logon_age = min_criterion("min_logon_age", "logged on", function(rec, ctx)
  return record.logon_age(rec, ctx and ctx.now or os.time())
end)

function BUILD.locked(v)
  if type(v) ~= "boolean" then fail(nil, "locked: true or false expected, got " .. type(v)) end
  return function(rec)
    if rec.locked == nil then return false, "lock state unknown (locked " .. tostring(v) .. ")" end
    if rec.locked == v then return true, v and "locked" or "not locked" end
    return false, rec.locked and "locked (locked false)" or "not locked (locked true)"
  end
end

function BUILD.where(v)
  if type(v) ~= "function" then fail(nil, "where: function expected, got " .. type(v)) end
  return function(rec, ctx)
    local ok, why = v(rec, ctx)
    if ok then return true, "where: " .. (why and tostring(why) or "true") end
    return false, "where: " .. (why and tostring(why) or "false")
  end
end

-- exclusions: test(rec) -> true, reason when the record is excluded
local EXCLUDE = {}

function EXCLUDE.exclude_users(v)
  local list = list_of(v, "exclude_users", check_string)
  local f = user_matcher(list)
  return function(rec)
    local ok, pat = f(rec)
    if ok then return true, "user " .. who(rec) .. " ~ exclude_users '" .. pat .. "'" end
    return false
  end
end

function EXCLUDE.exclude_stations(v)
  local list = list_of(v, "exclude_stations", check_string)
  local f = name_matcher(list)
  return function(rec)
    local ok, pat = f(rec.name)
    if ok then return true, "station '" .. rec.name .. "' ~ exclude_stations '" .. pat .. "'" end
    return false
  end
end

function EXCLUDE.exclude_clients(v)
  local list = list_of(v, "exclude_clients", check_string)
  local fname, faddr = name_matcher(list), address_matcher(list)
  return function(rec)
    -- fail safe: a session whose client could not be read may be the one
    -- the exclusion protects
    if rec.client_unknown then return true, "client unknown (could not be read): exclude_clients" end
    local ok, pat = fname(rec.client)
    if ok then return true, "client '" .. rec.client .. "' ~ exclude_clients '" .. pat .. "'" end
    ok, pat = faddr(rec.address)
    if ok then return true, "address " .. rec.address .. " ~ exclude_clients '" .. pat .. "'" end
    return false
  end
end

function EXCLUDE.exclude_ids(v)
  local set = {}
  for _, id in ipairs(list_of(v, "exclude_ids", check_id)) do set[id] = true end
  return function(rec)
    if set[rec.id] then return true, "id " .. rec.id .. " in exclude_ids" end
    return false
  end
end

-- the order criteria are tested in, and so the order of reasons
local ORDER = { "host", "id", "state", "user", "domain", "station", "client", "address",
                "locked", "min_idle", "min_disconnected", "min_logon_age", "where" }
local EXCLUDE_ORDER = { "exclude_ids", "exclude_users", "exclude_stations", "exclude_clients" }

local KNOWN = { include_protected = true, exclude = true }
for _, k in ipairs(ORDER) do KNOWN[k] = true end
for _, k in ipairs(EXCLUDE_ORDER) do KNOWN[k] = true end

local function suggest(key)
  local best, bd = nil, 4
  for k in pairs(KNOWN) do
    local d = distance(key, k)
    if d < bd then best, bd = k, d end
  end
  return best and (" (did you mean '" .. best .. "'?)") or ""
end

-- ----------------------------------------------------------------------------
-- own session

local GENERIC_DOMAINS = { ["."] = true, localhost = true, workgroup = true, builtin = true }

local function split_account(user, domain)
  if type(user) ~= "string" or user == "" then return nil end
  local d, u = user:match("^(.*)\\(.*)$")
  if d then return u, d end
  local u2, d2 = user:match("^([^@]+)@(.+)$")
  if u2 then return u2, domain or d2 end
  return user, domain
end

local function same_domain(a, b)
  if a == nil or b == nil or a == "" or b == "" then return true end
  a, b = fold(a), fold(b)
  if GENERIC_DOMAINS[a] or GENERIC_DOMAINS[b] then return true end
  if a == b then return true end
  -- "corp.example" vs "CORP": compare the first DNS label
  return (a:match("^[^.]+")) == (b:match("^[^.]+"))
end

--- True when `rec` is a session of the account in `self` (`{user=, domain=}`;
-- `user` may also be `DOMAIN\user` or a UPN). Errs on the side of "yes":
-- an unknown or generic domain, or the same first DNS label, counts as the same.
-- @tparam table rec a record
-- @tparam ?table self
-- @treturn boolean
function M.is_self(rec, self)
  if type(self) ~= "table" or rec.user == nil or rec.user == "" then return false end
  local u, d = split_account(self.user, self.domain)
  if not u then return false end
  return fold(u) == fold(rec.user) and same_domain(d, rec.domain)
end

--- Why `rec` is protected, or nil: `"services"`, `"console"`, `"listener"` or `"self"`.
-- @tparam table rec a record
-- @tparam[opt] table ctx `{ self = {user=, domain=} }`
-- @treturn ?string
function M.protection(rec, ctx)
  local kind = rec.kind or record.kind(rec)
  if kind ~= "user" then return kind end
  if ctx and M.is_self(rec, ctx.self) then return "self" end
  return nil
end

-- ----------------------------------------------------------------------------
-- compile

local Matcher = {}
Matcher.__index = Matcher
Matcher.__name = "termsrv.selector"

--- Tests a record. Returns `true, reason` or `false, reason, why` where `why`
-- is `"criteria"`, `"unknown"` (a value a criterion needs is not known, e.g.
-- the idle time of a host that does not report it), `"excluded"` or `"protected"`.
-- @tparam table rec a record
-- @tparam[opt] table ctx `{ self = {user=, domain=}, now = epoch }`
function Matcher:match(rec, ctx)
  local reasons = {}
  for _, test in ipairs(self._tests) do
    local ok, why, unknown = test(rec, ctx)
    if not ok then return false, why, unknown or "criteria" end
    reasons[#reasons + 1] = why
  end
  for _, test in ipairs(self._excludes) do
    local hit, why = test(rec, ctx)
    if hit then return false, "excluded: " .. why, "excluded" end
  end
  local prot = M.protection(rec, ctx)
  if prot and not self._include[prot] and not (self._ids and self._ids[rec.id]) then
    local hint = ({ services = "the services session", console = "the console session",
                    listener = "a listener", self = "own session (the account termsrv runs as)" })[prot]
    return false, string.format("protected: %s (add include_protected = {\"%s\"} or name the id)",
      hint, prot), "protected"
  end
  if #reasons == 0 then reasons[1] = "no criteria" end
  if prot then reasons[#reasons + 1] = "protection lifted (" .. prot .. ")" end
  return true, table.concat(reasons, "; ")
end

Matcher.__call = Matcher.match

function Matcher.__tostring(m)
  return "termsrv.selector " .. m.text
end

local function describe(t)
  if getmetatable(t) == Matcher then return t.text end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    local s
    if k == "exclude" and type(v) == "table" then
      if getmetatable(v) ~= Matcher and #v > 0 then
        local items = {}
        for i, x in ipairs(v) do items[i] = describe(x) end
        s = "{" .. table.concat(items, ", ") .. "}"
      else
        s = describe(v)
      end
    elseif type(v) == "table" then
      local items = {}
      for i, x in ipairs(v) do items[i] = type(x) == "string" and string.format("%q", x) or tostring(x) end
      s = "{" .. table.concat(items, ", ") .. "}"
    elseif type(v) == "string" then s = string.format("%q", v)
    elseif type(v) == "function" then s = "<function>"
    else s = tostring(v) end
    parts[#parts + 1] = k .. "=" .. s
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local compile

compile = function(t, nested)
  if getmetatable(t) == Matcher then return t end
  if t == nil then t = {} end
  if type(t) ~= "table" then fail(nil, "selector table expected, got " .. type(t)) end
  for k in pairs(t) do
    if type(k) ~= "string" or not KNOWN[k] then
      fail(nil, "unknown key '" .. tostring(k) .. "'" .. (type(k) == "string" and suggest(k) or ""))
    end
  end
  local m = setmetatable({ spec = t, _tests = {}, _excludes = {}, _include = {}, text = describe(t) },
    Matcher)
  for _, k in ipairs(ORDER) do
    if t[k] ~= nil then
      local test, extra = BUILD[k](t[k])
      m._tests[#m._tests + 1] = test
      if k == "id" then m._ids = extra end
    end
  end
  for _, k in ipairs(EXCLUDE_ORDER) do
    if t[k] ~= nil then m._excludes[#m._excludes + 1] = EXCLUDE[k](t[k]) end
  end
  if t.exclude ~= nil then
    if type(t.exclude) ~= "table" then
      fail(nil, "exclude: selector table expected, got " .. type(t.exclude))
    end
    local subs = t.exclude
    if getmetatable(subs) == Matcher or #subs == 0 then subs = { subs } end
    for _, sub in ipairs(subs) do
      local sm = compile(sub, true)
      m._excludes[#m._excludes + 1] = function(rec, ctx)
        local ok, why = sm:match(rec, ctx)
        if ok then return true, "exclude " .. sm.text .. " (" .. why .. ")" end
        return false
      end
    end
  end
  local inc = t.include_protected
  if inc ~= nil then
    if nested then fail(nil, "include_protected is not allowed inside exclude") end
    if inc == true then
      for k in pairs(PROTECTED) do m._include[k] = true end
    elseif inc ~= false then
      for _, p in ipairs(list_of(inc, "include_protected", check_string)) do
        if not PROTECTED[p] then
          fail(nil, "include_protected: unknown '" .. p .. "' (one of services, console, listener, self)")
        end
        m._include[p] = true
      end
    end
  end
  if nested then
    -- inside `exclude`, protection is irrelevant: match on the criteria only
    for k in pairs(PROTECTED) do m._include[k] = true end
  end
  return m
end

--- Compiles and validates a selector table (raises on unknown keys, wrong
-- types, bad durations, bad states, bad CIDR blocks). A compiled matcher is
-- returned unchanged.
-- @tparam ?table t the selector
-- @treturn termsrv.selector callable `m(rec, ctx) -> bool, reason[, why]`
function M.compile(t)
  local ok, m = pcall(compile, t, false)
  if ok then return m end
  if getmetatable(m) == Fail then error(m.msg, 2) end
  error(m, 0)
end

--- True when `x` is a compiled selector.
function M.is_selector(x)
  return getmetatable(x) == Matcher
end

--- The records of `records` that match `sel`.
-- @tparam {table,...} records
-- @tparam table sel a selector table or compiled selector
-- @tparam[opt] table ctx
-- @treturn {table,...} an array (a `record.list`)
function M.filter(records, sel, ctx)
  local m = M.is_selector(sel) and sel or M.compile(sel)
  local out = {}
  for _, rec in ipairs(records) do
    if m:match(rec, ctx) then out[#out + 1] = rec end
  end
  return record.list(out)
end

--- Every record with the outcome for it: `{ {record=, match=, reason=, why=}, ... }`.
-- @tparam {table,...} records
-- @tparam table sel
-- @tparam[opt] table ctx
function M.explain(records, sel, ctx)
  local m = M.is_selector(sel) and sel or M.compile(sel)
  local out = {}
  for _, rec in ipairs(records) do
    local ok, reason, why = m:match(rec, ctx)
    out[#out + 1] = { record = rec, match = ok, reason = reason, why = why }
  end
  return out
end

return M
