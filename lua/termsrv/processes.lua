--- Process listing (query process / tasklist), with owner names through LSA
-- -- `processes` added to host handles (`termsrv.host`).
--
-- A listing names each process's account by the host's own LSA
-- (`\PIPE\lsarpc`, one lookup per listing); where LSA is denied, absent, or
-- does not know a SID, by the well-known SIDs and the session owners. The
-- list's `names_from()` says which. Ending processes is `Host:kill`
-- (`termsrv.control`).
-- @module termsrv.processes

local host = require "termsrv.host"
local record = require "termsrv.record"
local select_mod = require "termsrv.select"
local printable = require("termsrv.text").printable

local Host, conn = host.Host, host.conn

local M = {}

local WELL_KNOWN = { ["S-1-5-18"] = "NT AUTHORITY\\SYSTEM", ["S-1-5-19"] = "NT AUTHORITY\\LOCAL SERVICE",
  ["S-1-5-20"] = "NT AUTHORITY\\NETWORK SERVICE" }

-- Per-session virtual accounts: S-1-5-90-0-<n> is DWM-<n>, S-1-5-96-0-<n> UMFD-<n>.
local function well_known(sid)
  if WELL_KNOWN[sid] then return WELL_KNOWN[sid] end
  local n = sid:match("^S%-1%-5%-90%-0%-(%d+)$")
  if n then return "Window Manager\\DWM-" .. n end
  n = sid:match("^S%-1%-5%-96%-0%-(%d+)$")
  if n then return "Font Driver Host\\UMFD-" .. n end
end

local Process = {}
Process.__index = Process
Process.__name = "termsrv.Process"
M.Process = Process

-- what h:processes() returns: prints one process a line
local ProcessList = { __name = "termsrv.processes" }
ProcessList.__index = ProcessList
M.ProcessList = ProcessList
-- where each list's account names came from (kept off the array itself,
-- which stays a plain sequence for JSON and comparisons)
local NAMES_OF = setmetatable({}, { __mode = "k" })

--- Where the account names of a process list came from.
-- @treturn string `"lsa"` (the host's LSA named every SID), `"lsa+guess"`
--   (LSA, and for the SIDs it did not know the well-known table and the
--   session owners) or `"guess"` (LSA failed: those alone)
-- @treturn[opt] termsrv.Error what LSA answered, when it failed
function ProcessList:names_from()
  local t = NAMES_OF[self] or {}
  return t.source, t.err
end

function ProcessList.__tostring(l)
  local lines = {}
  for i, p in ipairs(l) do lines[i] = tostring(p) end
  return #lines > 0 and table.concat(lines, "\n") or "(no processes)"
end
M.PROCESS_FIELDS = { "host", "pid", "ppid", "image", "session", "account", "sid", "memory",
  "peak_memory", "threads", "handles", "create_time", "cpu_seconds" }

function Process:__tostring()
  return printable(string.format("%-20s %-6d %-7d %-24s %8d K", self.account or self.sid or "-", self.session,
    self.pid, self.image or "(none)", (self.memory or 0) // 1024))
end

--- Plain table for JSON/CSV.
function Process:totable()
  local t = {}
  for _, k in ipairs(M.PROCESS_FIELDS) do t[k] = self[k] end
  return t
end

-- An account pattern read as the session selectors read it
-- (select.account_matcher), applied to a process's `DOMAIN\\user`.
local function account_matcher(pattern)
  local f = select_mod.account_matcher(pattern)
  return function(account)
    if not account then return false end
    local ad, au = account:match("^(.*)\\(.*)$")
    if not ad then ad, au = "", account end
    return f(au, ad)
  end
end

-- Account names without LSA: well-known SIDs, and for each session the SID
-- most of its processes run as is its logged-on user.
local function guessed_accounts(procs, sessions)
  local by_session = {}
  for _, p in ipairs(procs) do
    if p.sid and not well_known(p.sid) then
      local counts = by_session[p.session] or {}
      counts[p.sid] = (counts[p.sid] or 0) + 1
      by_session[p.session] = counts
    end
  end
  local names = {}
  for _, s in ipairs(sessions or {}) do
    local counts = by_session[s.id]
    if counts and s.user then
      local best, n = nil, 0
      for sid, k in pairs(counts) do if k > n then best, n = sid, k end end
      names[best] = names[best] or record.account(s)
    end
  end
  return function(sid) return sid and (well_known(sid) or names[sid]) end
end

-- Failures that will not change on this handle: not asked again.
local LSA_FINAL = { lsa_unavailable = true, access_denied = true, bind_refused = true,
  auth_level_refused = true, not_supported = true }

-- The host's own names for every distinct SID of the listing, through
-- \PIPE\lsarpc in one lookup (LsarOpenPolicy2, LsarLookupSids2, LsarClose):
-- sid -> "DOMAIN\name", or nil, err when LSA is unavailable or denied.
local function lsa_accounts(self, procs)
  local failed = rawget(self, "_lsa_err")
  if failed then return nil, failed end
  local sids, seen = {}, {}
  for _, p in ipairs(procs) do
    if p.sid and not seen[p.sid] then seen[p.sid] = true; sids[#sids + 1] = p.sid end
  end
  if #sids == 0 then return {} end
  local names, err = conn(self):lookup_sids(sids)
  if not names then
    err = select(2, host.fail(self, err, "name process owners"))
    if LSA_FINAL[err.code] then rawset(self, "_lsa_err", err) end
    return nil, err
  end
  local out = {}
  for i, sid in ipairs(sids) do
    local n = names[i]
    if n then out[sid] = n.domain ~= "" and (n.domain .. "\\" .. n.name) or n.name end
  end
  return out
end

-- sid -> account: LSA's names, and for what LSA did not name (or all, when
-- LSA failed) the well-known table and the session owners. Also says where
-- the names came from ("lsa", "lsa+guess", "guess") and LSA's error.
local function accounts(self, procs)
  local named, lsa_err = lsa_accounts(self, procs)
  local missing = not named
  for _, p in ipairs(procs) do
    if named and p.sid and not named[p.sid] and not well_known(p.sid) then missing = true end
  end
  local guess = function(sid) return sid and well_known(sid) end
  if missing then
    local sessions = self:sessions{ times = false }
    guess = guessed_accounts(procs, sessions)
  end
  local source = not named and "guess" or missing and "lsa+guess" or "lsa"
  return function(sid) return sid and (named and named[sid] or guess(sid)) end, source, lsa_err
end

--- Lists processes (query process / tasklist).
-- @tparam[opt] table filter `session` (id), `user` (account: `"dave"`, `"d*"` match the user
--   part, `"CORP\\d*"` the domain too, as the session selectors do), `name` (image glob,
--   e.g. `"chrome*.exe"`); both case-insensitive
-- @return array of process records: pid, ppid, image, session, sid, account
--   (the host's name for the SID through LSA, `\PIPE\lsarpc`, in one lookup
--   for the listing; where LSA is denied or absent, or does not know a SID,
--   the well-known SID table and the session owners), memory (working set,
--   bytes), peak_memory, threads, handles, create_time, cpu_seconds; the
--   list's `names_from()` says where the names came from.
function Host:processes(filter)
  filter = filter or {}
  if type(filter) ~= "table" then error("host:processes: filter table expected, got " .. type(filter), 2) end
  if filter.session ~= nil then host.check_id(filter.session, "host:processes: session", 3) end
  for _, k in ipairs{ "user", "name" } do
    if filter[k] ~= nil and type(filter[k]) ~= "string" then
      error("host:processes: " .. k .. ": glob string expected, got " .. type(filter[k]), 2)
    end
  end
  local raw, err = conn(self):processes()
  if not raw then return host.fail(self, err, "list processes") end
  local account, source, lsa_err = accounts(self, raw)
  local user_ok = filter.user and account_matcher(filter.user)
  local name_ok = filter.name and select_mod.glob(filter.name)
  local out = {}
  for _, p in ipairs(raw) do
    p.host = self.name
    p.account = account(p.sid)
    if (filter.session == nil or p.session == filter.session)
      and (not name_ok or (p.image and name_ok(p.image)))
      and (not user_ok or user_ok(p.account)) then
      out[#out + 1] = setmetatable(p, Process)
    end
  end
  NAMES_OF[out] = { source = source, err = lsa_err }
  return setmetatable(out, ProcessList)
end

return M
