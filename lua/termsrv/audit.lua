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
-- `policy`, `rule`, `action`, `phase` (`attempt`/`outcome`), `attempt` (id),
-- `fallback` (e.g. `reset` when a logoff fell back), `before`, `after`, `ok`, `error` (code),
-- `error_message`, `duration` (seconds).
--
-- Only those fields are written, whatever the entry holds: an entry carrying
-- `password`, `nthash` or any other key is reduced to the whitelist, and
-- the values of secret-looking keys anywhere in the entry (password, hash,
-- secret, token, key, credential) are also blanked out of every string
-- written (`[REDACTED]`), in case one leaked into an error message.
--
-- Write-ahead: a run that acts writes an attempt line (`phase = "attempt"`,
-- `ok = null`, an `attempt` id) before each state-changing call, and the
-- outcome line (`phase = "outcome"`, the same `attempt` id) after it, with
-- `ok = null` and `error = "state_unknown"` when the answer was lost.
-- `pending(path)` lists the attempts without an outcome: after a crash or
-- kill -9, the actions to check by hand.
--
-- The file is opened with O_APPEND|O_CREAT|O_NOFOLLOW, mode 0600, and
-- checked on the descriptor: a symlink (even a dangling one), anything but
-- a regular file, a file of another owner, or one writable by group or
-- others is refused. Each line leaves in one write(2) and is at most
-- `MAX_LINE` bytes, so lines of concurrent writers never interleave; a
-- write that fails or is short (a full disk) is an error.
-- @module termsrv.audit

local errors = require "termsrv.error"
local json = require "termsrv.json"

local M = {}

--- The keys written, in order.
M.FIELDS = { "time", "operator", "sudo_user", "account", "host", "session", "policy", "rule", "action",
             "phase", "attempt", "fallback", "before", "after", "ok", "error", "error_message", "duration" }
--- The largest line written (bytes, newline included).
M.MAX_LINE = 16 * 1024
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

--- The local account running termsrv (`$USER`, `$LOGNAME`, else the account database's name of
-- the effective uid).
-- @treturn string
function M.operator()
  if operator_cache then return operator_cache end
  local u = os.getenv("USER") or os.getenv("LOGNAME")
  if not u or u == "" then
    u = require("termsrv.proc").username()
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
  for _, k in ipairs{ "account", "host", "policy", "rule", "action", "phase", "attempt", "fallback", "before",
                      "after" } do
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
  if err == nil and entry.state_unknown then err = "state_unknown" end
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

-- The fields that may be shortened to fit a line (the facts -- time, phase,
-- attempt, action, ok, error, session id -- never are).
local SHRINKABLE = { "error_message", "before", "after", "fallback", "rule", "policy", "account", "host",
                     "operator", "sudo_user" }
local SESSION_SHRINKABLE = { "user", "domain" }

local function longest_text(e)
  local best_t, best_k, best_n = nil, nil, 8
  local function consider(t, k)
    local v = t[k]
    if type(v) == "string" and #v > best_n then best_t, best_k, best_n = t, k, #v end
  end
  for _, k in ipairs(SHRINKABLE) do consider(e, k) end
  if type(e.session) == "table" then
    for _, k in ipairs(SESSION_SHRINKABLE) do consider(e.session, k) end
  end
  return best_t, best_k
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
  local line = json.encode(e, ORDER)
  -- one write(2) per line, bounded: halve the longest free text in turn
  -- (strings at their cap, full of characters JSON escapes six bytes
  -- wide, can add up), never the facts
  while #line + 1 > M.MAX_LINE do
    local t, k = longest_text(e)
    if not t then break end
    t[k] = t[k]:sub(1, #t[k] // 2) .. "..."
    line = json.encode(e, ORDER)
  end
  return line
end

-- ----------------------------------------------------------------------------
-- the log file

local proc = require "termsrv.proc"

local Logger = {}
Logger.__index = Logger
Logger.__name = "termsrv.audit"

local function failed(self, msg)
  return nil, errors.new{ code = "audit_failed", op = "audit",
                          message = (self.path or "audit log") .. ": " .. msg,
                          hint = "check the disk and the log's permissions" }
end

local function put(self, entry)
  local line = M.encode(entry)
  if #line + 1 > M.MAX_LINE then return failed(self, "line over " .. M.MAX_LINE .. " bytes") end
  if self.entries then
    self.entries[#self.entries + 1] = line
    self.count = self.count + 1
    return true
  end
  if not self.fd then return failed(self, "the audit log is closed") end
  local ok, err = proc.write_line(self.fd, line .. "\n")
  if not ok then return failed(self, err) end
  self.count = self.count + 1
  return true
end

--- Appends one entry (see the module doc).
-- @tparam table entry
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"audit_failed"`
function Logger:write(entry) return put(self, entry) end

local seq = 0
local hostname
local function attempt_id()
  if not hostname then
    local f = io.open("/proc/sys/kernel/hostname", "r")
    hostname = f and f:read("l") or "host"
    if f then f:close() end
  end
  seq = seq + 1
  return string.format("%s-%d-%d-%d", hostname, proc.getpid(), os.time(), seq)
end

--- Writes the attempt line of a state change, before it is made. The
-- caller must not act when this fails.
-- @tparam table entry (`ok` is written as null)
-- @treturn[1] string the attempt id, for `outcome`
-- @treturn[2] nil
-- @treturn[2] termsrv.Error
function Logger:attempt(entry)
  local e = {}
  for k, v in pairs(entry) do e[k] = v end
  e.phase, e.attempt, e.ok, e.after, e.error, e.err = "attempt", attempt_id(), nil, nil, nil, nil
  local ok, err = put(self, e)
  if not ok then return nil, err end
  return e.attempt
end

--- Writes the outcome line of the attempt `id` (`state_unknown = true` in
-- the entry: the answer was lost, ok is null).
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] termsrv.Error
function Logger:outcome(id, entry)
  local e = {}
  for k, v in pairs(entry) do e[k] = v end
  e.phase, e.attempt = "outcome", id
  if e.state_unknown then e.ok = nil end
  return put(self, e)
end

--- Closes the file (idempotent). A failure of close(2) (a write error some
-- file systems report only then) is returned, not ignored.
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"audit_failed"`
function Logger:close()
  local fd = self.fd
  if not fd then return true end
  self.fd = nil
  local ok, err = proc.close_fd(fd)
  if not ok then return failed(self, err) end
  return true
end

Logger.__close = function(self) self:close() end
Logger.__gc = Logger.__close

function Logger.__tostring(l)
  if l.entries then return string.format("termsrv.audit (memory, %d entries)", #l.entries) end
  return string.format("termsrv.audit %s (%s, %d written)", l.path, l.fd and "open" or "closed", l.count)
end

--- Opens (or creates, mode 0600) an audit log for appending.
-- @tparam string path
-- @treturn[1] termsrv.audit logger with `:write(entry)`, `:attempt(entry)`, `:outcome(id, entry)`,
--   `:close()`, to-be-closed
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"audit_unsafe"` (a symlink, not a regular file, another owner,
--   writable by others) or `"audit_failed"` (cannot create or open)
function M.open(path)
  if type(path) ~= "string" or path == "" then error("audit.open: path expected", 2) end
  local fd, code, msg = proc.audit_open(path)
  if not fd then
    local hint = code == "audit_unsafe" and "give a regular file of your own, mode 0600 (--audit FILE)"
      or "check that the directory exists and is writable"
    return nil, errors.new{ code = code, op = "audit",
                            message = path .. ": " .. msg .. "; refusing to log to it",
                            hint = hint }
  end
  return setmetatable({ path = path, fd = fd, count = 0 }, Logger)
end

--- The actions to check by hand: attempts without an outcome (after a
-- crash or kill -9), and outcomes whose state is unknown (`ok` null: the
-- answer was lost and the session could not be re-read). `source` is a
-- path or the log's text.
-- @treturn[1] {table,...} those entries (decoded; the attempt, or the unknown outcome), oldest first
-- @treturn[1] integer lines that could not be read
-- @treturn[1] {table,...} every line that could (decoded), in order
-- @treturn[2] nil
-- @treturn[2] string message
function M.pending(source)
  local text = source
  if not source:find("\n") and not source:find("^%s*{") then
    local f, err = io.open(source, "r")
    if not f then return nil, err end
    text = f:read("a")
    f:close()
  end
  local dkjson = require "dkjson"
  local attempts, order, bad, all = {}, {}, 0, {}
  for line in text:gmatch("[^\n]+") do
    local e = dkjson.decode(line)
    all[#all + 1] = type(e) == "table" and e or nil
    if type(e) ~= "table" then bad = bad + 1
    elseif e.phase == "attempt" and type(e.attempt) == "string" then
      attempts[e.attempt] = e
      order[#order + 1] = e.attempt
    elseif e.phase == "outcome" and type(e.attempt) == "string" and attempts[e.attempt] then
      attempts[e.attempt] = e.ok == nil and e or nil -- null: not known either way
    end
  end
  local out = {}
  for _, id in ipairs(order) do if attempts[id] then out[#out + 1] = attempts[id] end end
  return out, bad, all
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
