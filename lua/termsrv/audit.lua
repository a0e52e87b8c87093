--- Audit log: one JSON line per state-changing action, append-only.
--
--     local audit = require "termsrv.audit"
--     local log <close> = assert(audit.open("/var/log/termsrv/audit.jsonl"))
--     plan:apply{ audit = log }
--
-- Each line has these keys, in this order (unknown = null):
-- `time` (ISO 8601 UTC), `operator` (local account running termsrv),
-- `sudo_user` (the invoking user under sudo), `account` (remote account,
-- `DOMAIN\user`), `host`, `session` (`{id, user, domain, logon_time}`),
-- `policy`, `rule`, `action`, `before`, `after`, `ok`, `error` (code),
-- `error_message`, `duration` (seconds).
--
-- Only those fields are written, whatever the entry holds: an entry carrying
-- `password`, `nthash` or any other key is reduced to the whitelist, and
-- the values of secret-looking keys anywhere in the entry (password, hash,
-- secret, token, key, credential) are also blanked out of every string
-- written (`[REDACTED]`), in case one leaked into an error message.
--
-- The file is opened in append mode and flushed after every line (one
-- `write(2)` per line). When it does not exist it is created with mode 0600
-- (through `umask 077` in a shell, since Lua cannot pass a mode to open(2)).
-- An existing file that is world-writable, or is not a regular file, is
-- refused.
-- @module termsrv.audit

local errors = require "termsrv.error"
local json = require "termsrv.json"

local M = {}

--- The keys written, in order.
M.FIELDS = { "time", "operator", "sudo_user", "account", "host", "session", "policy", "rule", "action",
             "before", "after", "ok", "error", "error_message", "duration" }
--- The keys of `session`, in order.
M.SESSION_FIELDS = { "id", "user", "domain", "logon_time" }

local ORDER = {}
for _, k in ipairs(M.FIELDS) do ORDER[#ORDER + 1] = k end
for _, k in ipairs(M.SESSION_FIELDS) do ORDER[#ORDER + 1] = k end

local MAX_STRING = 1000

local SECRET_KEY = { "pass", "pwd", "hash", "secret", "token", "key", "cred", "ticket" }

local function secret_key(k)
  if type(k) ~= "string" then return false end
  k = k:lower()
  for _, s in ipairs(SECRET_KEY) do if k:find(s, 1, true) then return true end end
  return false
end

local function collect_secrets(v, out, seen)
  if type(v) ~= "table" or seen[v] then return end
  seen[v] = true
  for k, x in pairs(v) do
    if secret_key(k) and type(x) == "string" and #x >= 4 then out[#out + 1] = x end
    collect_secrets(x, out, seen)
  end
end

local operator_cache

--- The local account running termsrv (`$USER`, `$LOGNAME`, else `id -un`).
-- @treturn string
function M.operator()
  if operator_cache then return operator_cache end
  local u = os.getenv("USER") or os.getenv("LOGNAME")
  if not u or u == "" then
    local p = io.popen("id -un 2>/dev/null")
    if p then u = p:read("l"); p:close() end
  end
  operator_cache = (u and u ~= "") and u or "unknown"
  return operator_cache
end

local function str(v, secrets)
  if v == nil then return nil end
  if type(v) ~= "string" then v = tostring(v) end
  for _, s in ipairs(secrets) do
    local i = v:find(s, 1, true)
    while i do
      v = v:sub(1, i - 1) .. "[REDACTED]" .. v:sub(i + #s)
      i = v:find(s, i + 10, true)
    end
  end
  if #v > MAX_STRING then v = v:sub(1, MAX_STRING) .. "..." end
  return v
end

local function time_text(v)
  if type(v) == "number" then return json.iso(v) end
  if type(v) == "string" then return v end
  return nil
end

local function int(v)
  if math.type(v) == "integer" then return v end
  if type(v) == "number" and v == math.floor(v) then return math.tointeger(v) end
  return nil
end

--- Reduces an entry to the whitelisted fields, with types fixed, times as
-- ISO UTC, secrets removed. Fills `time` (now) and `operator` when missing.
-- @tparam table entry
-- @treturn table a plain table holding only `FIELDS`
function M.sanitize(entry)
  if type(entry) ~= "table" then error("audit: entry table expected, got " .. type(entry), 2) end
  local secrets = {}
  collect_secrets(entry, secrets, {})
  table.sort(secrets, function(a, b) return #a > #b end)
  local e = {}
  e.time = time_text(entry.time) or json.iso(os.time())
  e.operator = str(entry.operator, secrets) or M.operator()
  local sudo = entry.sudo_user or os.getenv("SUDO_USER")
  if sudo and sudo ~= "" and sudo ~= e.operator then e.sudo_user = str(sudo, secrets) end
  for _, k in ipairs{ "account", "host", "policy", "rule", "action", "before", "after" } do
    e[k] = str(entry[k], secrets)
  end
  if type(entry.session) == "table" then
    local s = entry.session
    e.session = { id = int(s.id), user = str(s.user, secrets), domain = str(s.domain, secrets),
                  logon_time = time_text(s.logon_time) }
  end
  if type(entry.ok) == "boolean" then e.ok = entry.ok end
  local err = entry.error
  if err == nil and entry.err ~= nil then err = entry.err end
  if type(err) == "table" then
    e.error = str(err.code, secrets)
    e.error_message = str(entry.error_message or tostring(err), secrets)
  else
    e.error = str(err, secrets)
    e.error_message = str(entry.error_message, secrets)
  end
  if type(entry.duration) == "number" then
    local d = math.floor(entry.duration * 1000 + 0.5) / 1000
    e.duration = math.tointeger(d) or d
  end
  return e
end

--- One audit line (without the newline) for `entry`: sanitized, every key
-- present (null when unknown), fixed order.
-- @tparam table entry
-- @treturn string
function M.encode(entry)
  local e = M.sanitize(entry)
  for _, k in ipairs(M.FIELDS) do if e[k] == nil then e[k] = json.null end end
  if e.session ~= json.null then
    for _, k in ipairs(M.SESSION_FIELDS) do if e.session[k] == nil then e.session[k] = json.null end end
  end
  return json.encode(e, ORDER)
end

-------------------------------------------------------------------------------
-- file checks

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local has_lfs, lfs = pcall(require, "lfs")

-- { type = "file"|"other", mode = integer } or nil when the path does not exist
local function stat(path)
  if has_lfs then
    local a = lfs.attributes(path)
    if not a then return nil end
    local perm = a.permissions or ""
    local mode = 0
    for i = 1, 9 do if perm:sub(i, i) ~= "-" then mode = mode | (1 << (9 - i)) end end
    return { type = a.mode == "file" and "file" or "other", mode = mode }
  end
  local p = io.popen("stat -L -c '%a %F' -- " .. shell_quote(path) .. " 2>/dev/null")
  if not p then return nil end
  local out = p:read("a") or ""
  p:close()
  local mode, kind = out:match("^(%d+) (.-)%s*$")
  if not mode then return nil end
  return { type = (kind == "regular file" or kind == "regular empty file") and "file" or "other",
           mode = tonumber(mode, 8) }
end

local Logger = {}
Logger.__index = Logger
Logger.__name = "termsrv.audit"

--- Appends one entry (see the module doc) and flushes.
-- @tparam table entry
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"audit_failed"`
function Logger:write(entry)
  local line = M.encode(entry)
  if self.entries then
    self.entries[#self.entries + 1] = line
    return true
  end
  if not self.file then
    return nil, errors.new{ code = "audit_failed", op = "audit",
                            message = "audit log is closed: " .. self.path }
  end
  local ok, err = self.file:write(line, "\n")
  if ok then ok, err = self.file:flush() end
  if not ok then
    return nil, errors.new{ code = "audit_failed", op = "audit",
                            message = self.path .. ": " .. tostring(err) }
  end
  self.count = self.count + 1
  return true
end

--- Closes the file (idempotent).
function Logger:close()
  if self.file then self.file:close(); self.file = nil end
  return true
end

Logger.__close = Logger.close
Logger.__gc = Logger.close

function Logger.__tostring(l)
  if l.entries then return string.format("termsrv.audit (memory, %d entries)", #l.entries) end
  return string.format("termsrv.audit %s (%s, %d written)", l.path, l.file and "open" or "closed", l.count)
end

--- Opens (or creates, mode 0600) an audit log for appending.
-- @tparam string path
-- @treturn[1] termsrv.audit logger with `:write(entry)`, `:close()`, to-be-closed
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"audit_unsafe"` (world-writable or not a regular file)
--   or `"audit_failed"` (cannot create or open)
function M.open(path)
  if type(path) ~= "string" or path == "" then error("audit.open: path expected", 2) end
  local st = stat(path)
  if not st then
    local ok = os.execute("{ umask 077 && : >> " .. shell_quote(path) .. "; } 2>/dev/null")
    st = stat(path)
    if not ok or not st then
      return nil, errors.new{ code = "audit_failed", op = "audit", message = "cannot create " .. path,
                              hint = "check that the directory exists and is writable" }
    end
  end
  if st.type ~= "file" then
    return nil, errors.new{ code = "audit_unsafe", op = "audit", message = path .. " is not a regular file" }
  end
  if st.mode & 2 ~= 0 then
    return nil, errors.new{ code = "audit_unsafe", op = "audit",
      message = string.format("%s is world-writable (mode %o); refusing to log to it", path, st.mode),
      hint = "chmod o-w " .. path }
  end
  local f, err = io.open(path, "a")
  if not f then
    return nil, errors.new{ code = "audit_failed", op = "audit", message = tostring(err) }
  end
  f:setvbuf("full", 65536)
  return setmetatable({ path = path, file = f, count = 0, mode = st.mode }, Logger)
end

--- An in-memory logger (for tests and embedding): `logger.entries` holds the
-- encoded lines.
-- @treturn termsrv.audit
function M.memory()
  return setmetatable({ entries = {}, count = 0 }, Logger)
end

--- True when `x` is an audit logger.
function M.is_logger(x) return getmetatable(x) == Logger end

return M
