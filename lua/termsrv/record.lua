--- Session records: the one shape every layer of termsrv passes around.
--
-- A record is a plain Lua table (index it, copy it, encode it) with this
-- module's metatable, which gives `tostring(rec)` one qwinsta-style line.
-- Fields (nil means "Windows did not say" or "not applicable"):
--
--  * `host` (string, as the user named it), `id` (integer, >= 65536 = listener)
--  * `name` station name (`""` when Windows shows none), `user`, `domain`
--  * `state` (lower-case name, see `STATES`), `state_code` (0..9)
--  * `logon_time`, `connect_time`, `disconnect_time`, `last_input_time`,
--    `server_time` (integer UTC epoch seconds; `server_time` is the server's clock)
--  * `idle` (seconds since last input), `disconnected` (seconds since disconnect,
--    disconnected sessions only), `locked` (boolean), `client`, `address`,
--    `time_zone` (the client's, e.g. `"W. Europe Standard Time (UTC+01:00)"`),
--    `idle_unknown` (why idle is not known, when the host does not say it)
--  * `driver`, `device`: qwinsta's TYPE and DEVICE, the session's winstation
--    driver (`"rdpwd"`, `"wdcon"`) and transport device (read on request only)
--  * `kind`: `"services"`, `"console"`, `"listener"` or `"user"` (filled by `session`)
-- @module termsrv.record

local M = {}

--- State names by WINSTATIONSTATECLASS code (index 0..9).
M.STATES = { [0] = "active", "connected", "connect_query", "shadow", "disconnected",
             "idle", "listen", "reset", "down", "init" }

--- State code by name (inverse of `STATES`).
M.STATE_CODES = {}
for code = 0, 9 do M.STATE_CODES[M.STATES[code]] = code end

--- The abbreviations qwinsta/quser print for each state.
M.STATE_ABBREV = { active = "Active", connected = "Conn", connect_query = "ConnQ", shadow = "Shadow",
                   disconnected = "Disc", idle = "Idle", listen = "Listen", reset = "Reset",
                   down = "Down", init = "Init" }

--- Field order used by JSON and CSV output of records.
M.FIELDS = { "host", "id", "name", "user", "domain", "state", "state_code", "kind",
             "logon_time", "connect_time", "disconnect_time", "last_input_time", "server_time",
             "idle", "disconnected", "locked", "client", "address", "time_zone", "driver", "device" }

--- The client's time zone as one string: its standard name and UTC offset
-- (`Bias` is minutes with UTC = local time + bias), e.g. `"Pacific Standard
-- Time (UTC-08:00)"`; nil without one.
-- @tparam[opt] table tz `{ name =, bias = }` as the core reads it
function M.time_zone(tz)
  if not tz then return nil end
  local off = -(tz.bias or 0)
  local m = math.abs(off)
  local text = string.format("UTC%s%02d:%02d", off < 0 and "-" or "+", m // 60, m % 60)
  if tz.name and tz.name ~= "" then return tz.name .. " (" .. text .. ")" end
  return text
end

--- Session ids from this value up are listeners.
M.LISTENER_ID = 65536

local Session = {}
Session.__index = Session
Session.__name = "termsrv.session"
M.Session = Session

--- The kind of a session record (see the module doc).
-- @tparam table t a record (or a table with the same fields)
-- @treturn string `"services"`, `"console"`, `"listener"` or `"user"`
function M.kind(t)
  local name = type(t.name) == "string" and t.name:lower() or ""
  if t.id == 0 or name == "services" then return "services" end
  if name == "console" then return "console" end
  if (math.type(t.id) == "integer" and t.id >= M.LISTENER_ID) or t.state == "listen" then
    return "listener"
  end
  return "user"
end

--- Makes `t` a session record: sets the metatable and fills `kind`.
-- `state` is derived from `state_code` when only the code is given.
-- @tparam table t the fields listed in the module doc
-- @treturn table t
function M.session(t)
  if type(t) ~= "table" then error("record.session: table expected, got " .. type(t), 2) end
  if t.state == nil and math.type(t.state_code) == "integer" then t.state = M.STATES[t.state_code] end
  if t.state_code == nil and t.state then t.state_code = M.STATE_CODES[t.state] end
  t.kind = M.kind(t)
  return setmetatable(t, Session)
end

--- True when `x` is a session record.
function M.is_session(x)
  return getmetatable(x) == Session
end

local TYPES = {
  host = "string", id = "integer", name = "string", user = "string", domain = "string",
  state = "string", state_code = "integer", kind = "string",
  logon_time = "integer", connect_time = "integer", disconnect_time = "integer",
  last_input_time = "integer", server_time = "integer", idle = "integer", disconnected = "integer",
  locked = "boolean", client = "string", address = "string", client_unknown = "boolean",
  time_zone = "string", idle_unknown = "string", driver = "string", device = "string",
}

--- Checks a record against the contract (for tests and debugging).
-- @tparam table t
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] string what is wrong
function M.validate(t)
  if type(t) ~= "table" then return nil, "not a table" end
  for _, k in ipairs{ "host", "id", "name", "state" } do
    if t[k] == nil then return nil, "missing field '" .. k .. "'" end
  end
  for k, ty in pairs(TYPES) do
    local v = t[k]
    if v ~= nil then
      local got = ty == "integer" and math.type(v) or type(v)
      if got ~= ty then return nil, string.format("field '%s': %s expected, got %s", k, ty, got) end
    end
  end
  if M.STATE_CODES[t.state] == nil then return nil, "unknown state '" .. tostring(t.state) .. "'" end
  if t.state_code ~= nil and M.STATES[t.state_code] ~= t.state then
    return nil, "state_code " .. t.state_code .. " does not match state '" .. t.state .. "'"
  end
  return true
end

--- `DOMAIN\user`, `user`, or nil when no user is logged on.
-- @tparam table t a record
-- @treturn ?string
function M.account(t)
  if not t.user or t.user == "" then return nil end
  if t.domain and t.domain ~= "" and not t.user:find("\\", 1, true) then return t.domain .. "\\" .. t.user end
  return t.user
end

--- Seconds since last input: `idle`, else computed from the server clock, else nil.
function M.idle(t)
  if t.idle then return t.idle end
  if t.last_input_time and t.server_time then return math.max(0, t.server_time - t.last_input_time) end
  return nil
end

--- Seconds since disconnect for a disconnected session, else nil.
function M.disconnected_for(t)
  if t.state ~= "disconnected" then return nil end
  if t.disconnected then return t.disconnected end
  if t.disconnect_time and t.server_time then return math.max(0, t.server_time - t.disconnect_time) end
  return nil
end

--- Seconds since logon, on the server clock (or `now` when the server time is unknown).
-- @tparam table t a record
-- @tparam[opt] integer now epoch seconds used when `server_time` is nil
-- @treturn ?integer
function M.logon_age(t, now)
  if not t.logon_time then return nil end
  local ref = t.server_time or now
  if not ref then return nil end
  return math.max(0, ref - t.logon_time)
end

--- The fingerprint that identifies one logon: `{host, id, user, domain, logon_time}`.
function M.fingerprint(t)
  return { host = t.host, id = t.id, user = t.user, domain = t.domain, logon_time = t.logon_time }
end

local function ieq(a, b)
  if a == nil or b == nil then return a == b end
  return a:lower() == b:lower()
end

--- True when `a` and `b` are the same logon (same id, user, domain and logon time;
-- names compare case-insensitively).
function M.same_logon(a, b)
  return a.id == b.id and ieq(a.user, b.user) and ieq(a.domain, b.domain)
     and a.logon_time == b.logon_time
end

--- Plain copy (no metatable) with the fields of `FIELDS`.
function M.totable(t)
  local out = {}
  for _, k in ipairs(M.FIELDS) do out[k] = t[k] end
  return out
end

Session.totable = M.totable
Session.account = M.account
Session.fingerprint = M.fingerprint

local function age(secs)
  return require("termsrv.duration").format(secs, 2)
end

--- One line: `ts01.corp  #2  rdp-tcp#42  CORP\alice  Disc  idle 1h30m  disc 9h  client PC042 (10.1.2.3)`.
function Session.__tostring(t)
  local parts = { t.host or "?", "#" .. tostring(t.id) }
  if t.name and t.name ~= "" then parts[#parts + 1] = t.name end
  parts[#parts + 1] = M.account(t) or "-"
  parts[#parts + 1] = M.STATE_ABBREV[t.state] or tostring(t.state)
  if t.kind and t.kind ~= "user" then parts[#parts + 1] = "(" .. t.kind .. ")" end
  local idle = M.idle(t)
  if idle then parts[#parts + 1] = "idle " .. age(idle) end
  local disc = M.disconnected_for(t)
  if disc then parts[#parts + 1] = "disc " .. age(disc) end
  if t.locked then parts[#parts + 1] = "locked" end
  if t.client or t.address then
    parts[#parts + 1] = "client " .. (t.client or "?") .. (t.address and (" (" .. t.address .. ")") or "")
  end
  return require("termsrv.text").printable(table.concat(parts, "  "))
end

local List = {}
List.__index = List
List.__name = "termsrv.sessions"
List.__tostring = function(l) return (require("termsrv.report").qwinsta(l):gsub("\n$", "")) end
M.List = List

--- Marks an array of records so that the REPL prints it as a qwinsta table.
-- @tparam table t array of records
-- @treturn table t
function M.list(t)
  return setmetatable(t, List)
end

return M
