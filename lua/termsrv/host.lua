--- Host handles: one SMB logon to one Windows host, and everything termsrv
-- does on it. Made by `termsrv.connect`.
--
-- A handle owns one libsmbclient connection; the pipes behind it
-- (LSM_API_service, TermSrv_API_service, Ctx_WinStation_API_service) are
-- opened and bound the first time a call needs them and then reused.
-- Handles close themselves: `local h <close> = termsrv.connect{...}`.
-- @module termsrv.host

local check = require "termsrv.check"
local core = require "termsrv.core"
local errors = require "termsrv.error"
local record = require "termsrv.record"

local M = {}

-- Per-session details of a deep host over several connections at once.
M.DETAIL_CONNECTIONS = 8
M.MAX_DETAIL_CONNECTIONS = 32
-- a connection of its own pays off from this many sessions: a logon and
-- the legacy pipe cost about 12 round trips, a session's details 3
M.DETAIL_CHUNK = 8
-- handle -> { opts = connect options, max = connections }
local SIBLINGS = setmetatable({}, { __mode = "k" })

local Host = {}
Host.__index = Host
Host.__name = "termsrv.Host"
M.Host = Host

-- monotonic seconds, for durations of calls (os.clock would count CPU only)
local now = require("termsrv.need").need("system").monotime

--- Splits `DOMAIN\user` or `user@domain`.
local function split_user(user, domain)
  if not user then return nil, domain end
  local d, u = user:match("^([^\\]+)\\(.+)$")
  if d then return u, domain or d end
  u, d = user:match("^([^@]+)@(.+)$")
  if u then return u, domain or d end
  return user, domain
end

--- Splits `host:port` (IPv6 literals in brackets: `[::1]:445`).
local function split_host(spec, port)
  local h, p = spec:match("^%[(.+)%]:(%d+)$")
  if not h then h, p = spec:match("^([^:]+):(%d+)$") end
  if h then return h, tonumber(p) end
  return spec:match("^%[(.+)%]$") or spec, port
end

--- A session id or pid as the core takes it: an integer 0..2^32-1 (a float
-- only when it is exactly such an integer, e.g. 2.0). Anything else raises
-- at `level` (as error's: 2 is the caller of check_id): 2^32+2 must not wrap
-- onto session 2, nor 2^53 onto 0; "3" is not taken for 3.
-- @treturn integer
function M.check_id(id, what, level)
  local n = type(id) == "number" and math.tointeger(id)
  if not n or n < 0 or n > 0xFFFFFFFF then
    error(string.format("%s: session id (integer 0..4294967295) expected, got %s", what,
      id ~= id and "NaN" or math.type(id) == "float" and string.format("%.17g", id) or tostring(id)),
      level or 2)
  end
  return n
end

-- Timeouts in seconds: finite, at least a millisecond, at most a day. NaN,
-- infinities, negatives, zero and typos like 1e9 raise instead of quietly
-- becoming a default.
M.MAX_TIMEOUT = 86400
local function check_timeout(k, v)
  if v ~= nil and not (v >= 0.001 and v <= M.MAX_TIMEOUT) then
    error(string.format("termsrv.connect: option '%s' must be a number of seconds from 0.001 to %d, got %s",
      k, M.MAX_TIMEOUT, v ~= v and "NaN" or tostring(v)), 3)
  end
end

local CONNECT_KEYS = { host = "string", port = "number", user = "string", domain = "string",
  password = "string", nthash = "string", kerberos = "boolean|table", timeout = "number",
  connect_timeout = "number", rpc_auth = "string", max_frag = "number", name = "string",
  detail_connections = "number" }
local KERBEROS_KEYS = { ccache = "string", keytab = "string", principal = "string", spn = "string",
  auth_type = "string", smb = "boolean" }
local RPC_AUTH = { kerberos = true, privacy = true, ntlm = true, none = true }

-- `kerberos` is `true` or a table of Kerberos options.
local function check_kerberos(k)
  if type(k) ~= "table" then return end
  check.options("termsrv.connect: kerberos", k, KERBEROS_KEYS, 2)
  if k.auth_type ~= nil and k.auth_type ~= "spnego" and k.auth_type ~= "krb5" then
    error('termsrv.connect: kerberos.auth_type must be "spnego" (9) or "krb5" (16)', 3)
  end
  if k.keytab and not k.principal then
    error("termsrv.connect: kerberos.keytab needs kerberos.principal", 3)
  end
end

--- Connects to a host.
-- @tparam table opts `host` (name, address, or `host:port`), `port` (445),
--   `user` (`user`, `DOMAIN\user` or `user@domain`), `domain`, one of `password`,
--   `nthash` (32 hex digits) or `kerberos` (`true`: the ticket cache, a
--   password if given; or a table `{ccache=, keytab=, principal=, spn=
--   ("host/<fqdn>[@REALM]", default host/<host>), auth_type = "spnego" (9,
--   default) | "krb5" (16), smb = false (SMB logon by NTLM password, only the
--   RPC binds by Kerberos)}`), `timeout` (seconds per SMB
--   exchange, default 20), `connect_timeout` (seconds, default 5),
--   `rpc_auth` (`"kerberos"` with `kerberos`, else `"privacy"` (NTLM; also
--   `"ntlm"`): ask for `"privacy"` to fall back to NTLM, or `"none"` to rely on
--   the SMB identity),
--   `max_frag` (largest RPC fragment to accept, default 4280), `name` (label
--   used in records and errors; default the host as given),
--   `detail_connections` (a listing with many sessions reads their details
--   over up to this many connections at once, each a forked process with a
--   logon of its own, at least 8 sessions each; default 8, 1: one after
--   another on this handle only).
-- @treturn[1] Host
-- @treturn[2] nil
-- @treturn[2] termsrv.Error
function M.connect(opts)
  if opts == nil then error("termsrv.connect: options table expected, got nil", 2) end
  check.options("termsrv.connect", opts, CONNECT_KEYS)
  check_kerberos(opts.kerberos)
  if not opts.host or opts.host == "" then error("termsrv.connect: 'host' is required", 2) end
  check_timeout("timeout", opts.timeout)
  check_timeout("connect_timeout", opts.connect_timeout)
  if opts.rpc_auth ~= nil and not RPC_AUTH[opts.rpc_auth] then
    error('termsrv.connect: rpc_auth must be "kerberos", "privacy" (NTLM), "ntlm" or "none"', 2)
  end
  if not (opts.password or opts.nthash or opts.kerberos) then
    error("termsrv.connect: give password=, nthash= or kerberos=true", 2)
  end
  if opts.password and opts.nthash then error("termsrv.connect: give password= or nthash=, not both", 2) end
  if opts.nthash and not opts.nthash:match("^" .. ("%x"):rep(32) .. "$") then
    error("termsrv.connect: nthash must be 32 hexadecimal digits", 2)
  end
  for _, k in ipairs{ "host", "name", "user", "domain", "password" } do
    -- C strings end at a NUL: "pass\0word" would quietly become "pass"
    if type(opts[k]) == "string" and opts[k]:find("\0", 1, true) then
      error("termsrv.connect: " .. k .. " contains a NUL byte", 2)
    end
  end
  for _, k in ipairs{ "user", "domain", "password" } do
    -- libsmbclient takes credentials in 256-byte buffers and would cut them
    if opts[k] and #opts[k] > 255 then error("termsrv.connect: " .. k .. " is longer than 255 bytes", 2) end
    -- NTLM hashes UTF-16: the text must be valid UTF-8 to convert
    if opts[k] and not utf8.len(opts[k]) then error("termsrv.connect: " .. k .. " is not valid UTF-8", 2) end
  end
  local conns = opts.detail_connections
  if conns ~= nil and not (math.type(conns) == "integer" or conns == math.floor(conns))
    or conns ~= nil and (conns < 1 or conns > M.MAX_DETAIL_CONNECTIONS) then
    error("termsrv.connect: detail_connections must be an integer from 1 to " .. M.MAX_DETAIL_CONNECTIONS, 2)
  end
  local hostname, port = split_host(opts.host, opts.port)
  local user, domain = split_user(opts.user, opts.domain)
  local label = opts.name or opts.host
  -- the secret is in this process now: no core file, no same-uid ptrace
  if opts.password or opts.nthash then require("termsrv.proc").protect() end
  local c, err = core.connect{
    host = hostname, port = port, user = user, domain = domain or "",
    password = opts.password, nthash = opts.nthash, kerberos = opts.kerberos,
    timeout = opts.timeout, connect_timeout = opts.connect_timeout,
    rpc_auth = opts.rpc_auth, max_frag = opts.max_frag,
  }
  if not c then return nil, errors.with(err, { host = label, op = "connect" }) end
  local h = setmetatable({ name = label, address = hostname, port = port or 445,
                           user = user, domain = domain, _c = c }, Host)
  conns = math.tointeger(conns or M.DETAIL_CONNECTIONS)
  -- what a detail worker or a long message wait needs to log on again
  -- (kept out of the handle's fields, so that it is never printed,
  -- serialised or copied)
  local again = {}
  for k, v in pairs(opts) do again[k] = v end
  again.detail_connections = 1
  SIBLINGS[h] = { opts = again, max = conns }
  return h
end

-- Past its deadline a handle asks the host nothing more: each call of the
-- connection answers `timeout` at once (one in flight ends at its own).
local LOCAL_CALLS = { stats = true, pipes = true }
local function expired(self, c, d)
  return setmetatable({}, { __index = function(_, name)
    if LOCAL_CALLS[name] then return function(_, ...) return c[name](c, ...) end end
    return function()
      return nil, errors.new{ code = "timeout", host = self.name, op = name, message = string.format(
        "the host's deadline (%gs) has passed; not asked", d.seconds),
        hint = "raise --host-timeout / timeout= if the host is only slow" }
    end
  end })
end

local function conn(self)
  local c = rawget(self, "_c")
  if not c then error("termsrv: host handle is closed", 3) end
  local d = rawget(self, "_deadline")
  if d and now() >= d.at then return expired(self, c, d) end
  return c
end

--- Gives the handle a deadline `seconds` from now: after it, every call
-- fails at once with `timeout` (a call in flight still ends at the
-- connection's own `timeout`). The fleet sets it on a host it runs in this
-- process.
-- @tparam number seconds
function Host:set_deadline(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds <= 0 then
    error("host:set_deadline: positive number of seconds expected", 2)
  end
  self._deadline = { at = now() + seconds, seconds = seconds }
end

--- True once the deadline of `set_deadline` has passed.
function Host:past_deadline()
  local d = rawget(self, "_deadline")
  return d ~= nil and now() >= d.at
end

--- Seconds one call on this handle may take before it times out (the
-- connection's `timeout`, default 20).
function Host:call_timeout()
  local sib = SIBLINGS[self]
  return sib and sib.opts.timeout or 20
end

--- A second handle to the same host with the same account, its options
-- changed by `changes` (e.g. a longer `timeout` for one call that waits
-- on a person). The caller closes it.
-- @tparam table changes connect options to override
-- @treturn[1] termsrv.Host
-- @treturn[2] nil
-- @treturn[2] termsrv.Error
function Host:sibling(changes)
  local sib = SIBLINGS[self]
  if not sib then error("host:sibling: the handle is closed", 2) end
  local o = {}
  for k, v in pairs(sib.opts) do o[k] = v end
  for k, v in pairs(changes or {}) do o[k] = v end
  return M.connect(o)
end

--- Closes the handle (idempotent).
function Host:close()
  local c = rawget(self, "_c")
  SIBLINGS[self] = nil
  if c then
    self._c = nil
    c:close()
  end
end
Host.__close = Host.close
Host.__gc = Host.close

function Host:__tostring()
  return string.format("termsrv.Host(%s as %s%s%s)", self.name,
    self.domain and self.domain ~= "" and (self.domain .. "\\") or "", self.user or "?",
    rawget(self, "_c") and "" or ", closed")
end

local function fail(self, err, op)
  return nil, errors.with(err, { host = self.name, op = op })
end

local function blank(s)
  if s == nil or s == "" then return nil end
  return s
end

-- Fills the per-session details (times, server clock, lock state) into rec.
local function merge_info(rec, info)
  for _, k in ipairs{ "logon_time", "connect_time", "disconnect_time", "last_input_time",
                      "server_time", "locked", "last_input_not_absolute" } do
    if info[k] ~= nil then rec[k] = info[k] end
  end
  if rec.user == nil then
    rec.user, rec.domain = blank(info.user), blank(info.domain)
  end
  if (rec.name == nil or rec.name == "") and info.name then rec.name = info.name end
  rec.state_code = info.state_code or rec.state_code
  rec.state = record.STATES[rec.state_code]
  rec.source = info.source
end

-- Windows 11's LSM reports the last input not as a time on the server clock
-- (a small, relative value whose meaning is not documented): never an idle
-- from it. The legacy query (class 8, with the server's clock) has the real
-- one; without the legacy pipe idle is unknown, and rec.idle_unknown says why.
-- Returns an error for the listing's problems when the legacy query failed.
local function real_last_input(c, rec)
  if not rec.last_input_not_absolute then return nil end
  rec.last_input_not_absolute, rec.last_input_time = nil, nil
  local info, err
  if c:pipes().legacy == false then
    err = { code = "rdp_disabled" }
  else
    info, err = c:info(rec.id, "legacy")
  end
  if info then
    rec.last_input_time, rec.server_time = info.last_input_time, info.server_time or rec.server_time
    return nil
  end
  if err.code == "session_not_found" then return nil end
  rec.idle_unknown = "the host's LSM reports the last input as no time on its clock (Windows 11) and "
    .. (err.code == "rdp_disabled" and "it has no legacy TermSrv pipe to ask"
        or ("the legacy query failed (" .. tostring(err.code) .. ")"))
  return err.code ~= "rdp_disabled" and err or nil
end

-- Ages on the server's clock; without it (no legacy pipe) on ours, and the
-- record says so in `clock`.
local function ages(rec)
  local ref = rec.server_time
  rec.clock = ref and "server" or "local"
  ref = ref or os.time()
  if rec.last_input_time then rec.idle = math.max(0, ref - rec.last_input_time) end
  if rec.state == "disconnected" and rec.disconnect_time then
    rec.disconnected = math.max(0, ref - rec.disconnect_time)
  end
end

-- The legacy details (our default: they carry the server's clock) do not
-- say whether the desktop is locked; the LSM ones do, at one more call.
local function lock_state(c, id)
  local info, err = c:info(id, "lsm_ex")
  if not info and err.code == "not_supported" then info, err = c:info(id, "lsm") end
  if not info then return nil, err end
  return info.locked
end

local function has_user(rec)
  return rec.kind ~= "listener" and rec.kind ~= "services"
end

-- Details of the sessions `ids`, `fetch(conn, id)` each (-> info or nil,
-- err): id -> { info = } or { err = }. Many of them go over several
-- connections at once: this handle reads one share, forked workers (a logon
-- each) the others, all at the same time.
local function details(self, c, ids, fetch)
  local out = {}
  local sib = SIBLINGS[self]
  local n = sib and sib.max > 1 and math.max(1, math.min(sib.max, #ids // M.DETAIL_CHUNK)) or 1
  local shares = {}
  for i = 1, n do shares[i] = {} end
  for i, id in ipairs(ids) do
    local share = shares[(i - 1) % n + 1]
    share[#share + 1] = id
  end
  local proc = n > 1 and require "termsrv.proc"
  local serialize = n > 1 and require "termsrv.serialize"
  local workers = {}
  for w = 2, n do
    local mine = shares[w]
    local close = {}
    for _, x in ipairs(workers) do close[#close + 1] = x.fd end
    local pid, fd = proc.fork(function(send)
      local got = {}
      local h, err = M.connect(sib.opts)
      for _, id in ipairs(mine) do
        local info
        if h then info, err = fetch(h._c, id) end
        got[#got + 1] = { id = id, info = info, err = not info and err or nil }
        -- a host that fails one (other than a session gone) fails the rest
        if not info and err.code ~= "session_not_found" and h then h:close(); h = nil end
      end
      if h then h:close() end
      send(assert(serialize.encode(got)))
    end, close)
    if pid then
      workers[#workers + 1] = { pid = pid, fd = fd, ids = mine, chunks = {} }
    else
      for _, id in ipairs(mine) do shares[1][#shares[1] + 1] = id end -- do it here instead
    end
  end
  for _, id in ipairs(shares[1]) do
    local info, err = fetch(c, id)
    out[id] = { info = info, err = not info and err or nil }
  end
  -- collect: a worker ends within its calls' own timeouts; past this
  -- deadline it is ended, and its sessions get an error
  if #workers > 0 then
    local opts = sib.opts
    local longest = 0
    for _, w in ipairs(workers) do longest = math.max(longest, #w.ids) end
    local deadline = proc.clock() + (opts.connect_timeout or 5) + (opts.timeout or 20) * (longest + 8)
    local open = #workers
    while open > 0 do
      local fds = {}
      for _, w in ipairs(workers) do if w.fd then fds[#fds + 1] = w.fd end end
      local left = deadline - proc.clock()
      local ready = left > 0 and proc.poll(fds, left)
      if not ready or #ready == 0 and proc.clock() >= deadline then break end -- late, or a signal
      for _, w in ipairs(workers) do
        if w.fd then
          local data = proc.read(w.fd)
          while data and data ~= "" do
            w.chunks[#w.chunks + 1] = data
            data = proc.read(w.fd)
          end
          if data == "" or data == nil then
            proc.close(w.fd)
            w.fd = nil
            open = open - 1
          end
        end
      end
    end
    for _, w in ipairs(workers) do
      if w.fd then
        proc.kill(w.pid, proc.signals.KILL, true)
        proc.close(w.fd)
        w.fd, w.late = nil, true
      end
      proc.wait(w.pid, true)
      local got, ok = serialize.decode(table.concat(w.chunks))
      if ok and type(got) == "table" then
        for _, r in ipairs(got) do out[r.id] = { info = r.info, err = r.err } end
      end
      for _, id in ipairs(w.ids) do
        if not out[id] or not (out[id].info or errors.is(out[id].err) or type(out[id].err) == "table") then
          out[id] = { err = errors.new{ code = w.late and "timeout" or "connection_lost", host = self.name,
            message = w.late and "the detail worker for this session did not answer in time"
              or "the detail worker for this session ended without an answer" } }
        end
      end
    end
  end
  return out
end

local SESSIONS_OPTS = { all = "boolean", times = "boolean", client = "boolean", locked = "boolean",
  drivers = "boolean", method = "string", source = "string" }

--- Lists the sessions of the host.
-- One RPC call (RpcGetAllSessions) gives ids, stations, users and states;
-- `times` adds one call per session for logon/connect/disconnect/last-input
-- times and the server's clock; `client` adds the client name and address.
-- @tparam[opt] table opts `all` (include the services session and listeners;
--   default false), `times` (default true), `client` (default false),
--   `locked` (read whether each desktop is locked: one more call per session),
--   `drivers` (qwinsta's TYPE and DEVICE: each session's winstation driver and
--   transport device, two more calls per session on the legacy pipe),
--   `method` (`"auto"`, `"all_sessions"`, `"enum"`, `"legacy"`),
--   `source` (`"auto"`, `"legacy"`, `"lsm_ex"`, `"lsm"`: where details come from)
-- @treturn[1] table array of session records (prints as a qwinsta table);
--   `list.errors` holds per-session failures that did not stop the listing
-- @treturn[2] nil
-- @treturn[2] termsrv.Error
function Host:sessions(opts)
  opts = check.options("host:sessions", opts, SESSIONS_OPTS)
  local c = conn(self)
  local raw, method = c:list(opts.method)
  if not raw then return fail(self, method, "list sessions") end
  local out, problems = {}, {}
  local times = opts.times ~= false
  -- Listing paths without users (enum, legacy) need the details call
  -- anyway for a user session; do it once for both purposes.
  local recs, ids = {}, {}
  for i, r in ipairs(raw) do
    local rec = record.session{ host = self.name, id = r.id, name = r.name or "",
      state_code = r.state_code, user = blank(r.user), domain = blank(r.domain) }
    recs[i] = rec
    if has_user(rec) and (times or r.user == nil) then
      ids[#ids + 1] = rec.id
    end
  end
  local got = #ids > 0 and details(self, c, ids, function(cc, id) return cc:info(id, opts.source) end) or {}
  for i, r in ipairs(raw) do
    local rec = recs[i]
    if opts.all or has_user(rec) then
      local d = got[rec.id]
      if d then
        local info, err = d.info, d.err
        if info then
          merge_info(rec, info)
          rec.kind = record.kind(rec)
          local lerr = real_last_input(c, rec)
          if lerr then
            problems[#problems + 1] = errors.with(lerr, { host = self.name,
              op = "read the last input of session " .. r.id })
          end
        elseif err.code == "session_not_found" then
          rec = nil -- logged off between the listing and now
        else
          problems[#problems + 1] = errors.with(err, { host = self.name,
            op = "read details of session " .. r.id })
        end
      end
      if rec and opts.locked and has_user(rec) and rec.locked == nil then
        local lock, err = lock_state(c, rec.id)
        if lock ~= nil then
          rec.locked = lock
        elseif err and err.code ~= "session_not_found" then
          problems[#problems + 1] = errors.with(err, { host = self.name,
            op = "read the lock state of session " .. r.id })
        end
      end
      if rec then
        if times then ages(rec) end
        out[#out + 1] = rec
      end
    end
  end
  if opts.client then
    for _, rec in ipairs(out) do
      -- Windows keeps the last client of a disconnected session: read it
      -- too, so that client rules judge every session they may act on.
      if has_user(rec) then
        local cl, err = c:client(rec.id)
        if cl then
          rec.client, rec.address, rec.time_zone = cl.name, cl.address, record.time_zone(cl.time_zone)
        elseif err.code == "rdp_disabled" then
          for _, r in ipairs(out) do if has_user(r) and r.client == nil then r.client_unknown = true end end
          break -- no TermSrv pipe: no client data for anyone
        elseif err.code ~= "session_not_found" then
          rec.client_unknown = true
          problems[#problems + 1] = errors.with(err, { host = self.name,
            op = "read client of session " .. rec.id })
        end
      end
    end
  end
  if opts.drivers and #out > 0 then
    -- (a deep host's over several connections at once, as the details)
    local want = {}
    for i, rec in ipairs(out) do want[i] = rec.id end
    local drv = details(self, c, want, function(cc, id) return cc:drivers(id) end)
    for _, rec in ipairs(out) do
      local d = drv[rec.id] or {}
      if d.info then
        rec.driver, rec.device = blank(d.info.wd_dll), blank(d.info.device)
      elseif d.err and d.err.code == "rdp_disabled" then
        problems[#problems + 1] = errors.with(d.err, { host = self.name,
          op = "read the drivers of the sessions (TYPE, DEVICE)" })
        break -- no legacy pipe: no drivers for anyone
      elseif d.err and d.err.code ~= "session_not_found" then
        problems[#problems + 1] = errors.with(d.err, { host = self.name,
          op = "read the drivers of session " .. rec.id })
      end
    end
  end
  local list = record.list(out)
  list.method = method
  -- Windows lists only what the caller may see, silently (MS-TSTS
  -- 3.3.4.3.6); the services session 0 is always there for an admin.
  local sees_all = false
  for _, r in ipairs(raw) do if r.id == 0 then sees_all = true break end end
  if not sees_all and #raw > 0 then
    list.partial = "the account sees only its own sessions (not an administrator of " .. self.name .. ")"
  elseif #raw == 0 then
    list.partial = "the host listed no session at all (not even the services session): "
      .. "the account may not see them"
  end
  if #problems > 0 then list.errors = problems end
  return list
end

--- One session by id, with its times.
-- @tparam integer id
-- @tparam[opt] table opts `client` (add client name and address), `locked`, `source`
-- @treturn[1] table a session record
-- @treturn[2] nil
-- @treturn[2] termsrv.Error (`session_not_found` when there is no such session)
function Host:session(id, opts)
  id = M.check_id(id, "host:session", 3)
  opts = check.options("host:session", opts, { client = "boolean", locked = "boolean", source = "string" })
  local c = conn(self)
  local info, err = c:info(id, opts.source)
  if not info then return fail(self, err, "read session " .. id) end
  local rec = record.session{ host = self.name, id = id, name = info.name or "",
    state_code = info.state_code }
  merge_info(rec, info)
  rec.kind = record.kind(rec)
  real_last_input(c, rec)
  ages(rec)
  if opts.client and has_user(rec) then
    local cl = c:client(id)
    if cl then
      rec.client, rec.address, rec.time_zone = cl.name, cl.address, record.time_zone(cl.time_zone)
    else
      rec.client_unknown = true
    end
  end
  if opts.locked and rec.locked == nil and has_user(rec) then rec.locked = lock_state(c, id) end
  return rec
end

--- The host's current time (UTC epoch seconds) from its own clock.
function Host:server_time()
  local t, err = conn(self):server_time(0)
  if t == nil and err then return fail(self, err, "read the server clock") end
  return t
end

-- TS_COUNTER ids (MS-TSTS 2.2.2.17.1) by the names `Host:counters` gives them.
M.COUNTERS = {
  { "created", 1 },           -- TERMSRV_TOTAL_SESSIONS: sessions created since boot
  { "disconnected", 2 },      -- TERMSRV_DISC_SESSIONS: disconnections since boot
  { "reconnected", 3 },       -- TERMSRV_RECON_SESSIONS: reconnections since boot
  { "active", 4 },            -- TERMSRV_CURRENT_ACTIVE_SESSIONS: active now
  { "disconnected_now", 5 },  -- TERMSRV_CURRENT_DISC_SESSIONS: disconnected now
  { "pending", 6 },           -- TERMSRV_PENDING_SESSIONS: connections pending now
  { "logons", 7 },            -- TERMSRV_SUCC_TOTAL_LOGONS: successful logons since boot
  { "local_logons", 8 },      -- TERMSRV_SUCC_LOCAL_LOGONS
  { "remote_logons", 9 },     -- TERMSRV_SUCC_REMOTE_LOGONS
  { "session0_logons", 10 },  -- TERMSRV_SUCC_SESSION0_LOGONS
  { "terminating", 11 },      -- TERMSRV_CURRENT_TERMINATING_SESSIONS: terminating now
  { "logged_on", 12 },        -- TERMSRV_CURRENT_LOGGEDON_SESSIONS: logged on now
}

local COUNTERS_LINE = { __name = "termsrv.counters" }
M.Counters = COUNTERS_LINE
function COUNTERS_LINE.__tostring(t)
  local parts = {}
  for _, c in ipairs(M.COUNTERS) do
    if t[c[1]] ~= nil then parts[#parts + 1] = c[1] .. "=" .. t[c[1]] end
  end
  return (t.host and t.host .. ": " or "") .. table.concat(parts, " ")
end

--- The host's Terminal Services counters (what `qwinsta /counter` shows):
-- sessions created, disconnected and reconnected since the host started,
-- successful logons, and how many sessions are active, disconnected,
-- pending, terminating and logged on now. One call: RpcGetSessionCounters
-- on the LSM pipe, else the legacy RpcWinStationGetTermSrvCountersValue
-- (MS-TSTS 3.3.4.1.12, 3.7.4.1.24; no permission is needed).
-- @treturn[1] table `host`, `via` (`"lsm"` or `"legacy"`) and the counters
--   of `COUNTERS` by name (integers; a counter the host does not keep is nil)
-- @treturn[2] nil
-- @treturn[2] termsrv.Error `not_supported` when the host offers no counters
function Host:counters()
  local ids = {}
  for i, c in ipairs(M.COUNTERS) do ids[i] = c[2] end
  local got, via = conn(self):counters(ids)
  if not got then return fail(self, via, "read the counters") end
  local out = setmetatable({ host = self.name, via = via }, COUNTERS_LINE)
  for _, c in ipairs(M.COUNTERS) do
    if got[c[2]] then out[c[1]] = got[c[2]] end
  end
  return out
end

-- MaxInstanceCount values that mean "no limit". MS-TSTS does not name one;
-- 0xFFFFFFFF is the registry's default for WinStations\RDP-Tcp
-- MaxInstanceCount, and the "Limit number of connections" policy documents
-- 999999 as "unlimited" (terminalserver.admx, TS_MAX_CON_POLICY).
M.UNLIMITED_INSTANCES = { [0xFFFFFFFF] = true, [999999] = true }

-- The listener whose limit counts: the RDP listener (RDP-Tcp) if the host
-- lists one, else the lowest listener id.
local function pick_listener(list)
  local best
  for _, r in ipairs(list) do
    if r.id >= 65536 then
      if (r.name or ""):lower() == "rdp-tcp" then return r end
      if not best or r.id < best.id then best = r end
    end
  end
  return best
end

--- What the host itself says about its connection limit: its RDP
-- listener's MaxInstanceCount (WINSTATIONCREATE, legacy
-- RpcWinStationQueryInformation class WinStationCreateData (0) on the
-- listener's session id, MS-TSTS 3.7.4.1.6). One call on the legacy pipe
-- (and its OpenServer if not open yet), plus a listing unless `opts` gives
-- the listener.
-- @tparam[opt] table opts `listener` (the listener's session id) or
--   `sessions` (a listing with listeners: `h:sessions{all = true}`)
-- @treturn[1] table `limit` (integer, nil when `unlimited`), `unlimited`,
--   `enabled` (fEnableWinStation), `max_instance_count` (as sent),
--   `listener` (id), `listener_name`, `source` (`"listener"`)
-- @treturn[2] nil
-- @treturn[2] termsrv.Error where Windows did not say: `no_listener` (none
--   visible: not an administrator, or no RDP listener), `rdp_disabled` (no
--   legacy pipe), `access_denied`, `not_supported` (the class is refused) ...
function Host:capacity(opts)
  opts = check.options("host:capacity", opts, { listener = "number", sessions = "table" })
  local c = conn(self)
  local id, name = opts.listener, nil
  if id == nil then
    local list = opts.sessions
    if list == nil then
      local raw, err = c:list()
      if not raw then return fail(self, err, "list sessions to find the listener") end
      list = raw
    end
    local l = pick_listener(list)
    if not l then
      return nil, errors.new{ code = "no_listener", host = self.name, op = "read the connection limit",
        message = "the host lists no listener session, so it does not say its connection limit",
        hint = "an administrator of the host sees the RDP-Tcp listener; or give the limit (--slots N)" }
    end
    id, name = l.id, l.name
  end
  id = M.check_id(id, "host:capacity", 3)
  local cd, err = c:create_data(id)
  if not cd then return fail(self, err, "read the connection limit of listener " .. id) end
  local n = cd.max_instance_count
  local unlimited = M.UNLIMITED_INSTANCES[n] == true
  return { limit = not unlimited and n or nil, unlimited = unlimited, enabled = cd.enabled,
           max_instance_count = n, listener = id, listener_name = blank(name), source = "listener" }
end

-- h:stats() and h:pipes() print as one line of `name=value`, sorted by name.
local FIELDS_LINE = { __name = "termsrv.fields" }
M.Fields = FIELDS_LINE -- (they cross from fleet workers: termsrv.serialize registers it)
function FIELDS_LINE.__tostring(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. tostring(t[k]) end
  return table.concat(keys, " ")
end

--- Which pipes the host has (true/false; absent key = not tried yet).
-- Prints as one line of `name=value`.
function Host:pipes()
  return setmetatable(conn(self):pipes(), FIELDS_LINE)
end

--- Opens and binds one pipe without calling anything on it (for checks).
-- @tparam string pipe `"lsm"` (LSM_API_service), `"rcm"` (TermSrv_API_service)
--   or `"legacy"` (Ctx_WinStation_API_service)
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] termsrv.Error (`rdp_disabled` / `lsm_unavailable` when the pipe is absent)
function Host:probe(pipe)
  local ok, err = conn(self):probe(pipe)
  if not ok then return fail(self, err, "probe pipe " .. pipe) end
  return true
end

--- Counters of this handle: SMB opens/reads/writes, RPC binds/calls/fragments.
-- Prints as one line of `name=value`.
function Host:stats()
  return setmetatable(conn(self):stats(), FIELDS_LINE)
end

--- Splits `DOMAIN\user` or `user@domain`: user, domain.
M.split_user = split_user
--- Splits `host:port` (IPv6 literals in brackets): host, port.
M.split_host = split_host
--- The clock for durations of calls (lua-system's monotonic `monotime`).
M.now = now
--- The connection (`termsrv.core` Conn) of a handle; raises when it is closed.
M.conn = conn
--- `nil, err` with the handle's name and the operation added to the error.
M.fail = fail

return M
