--- Preflight checks for one host: walks the path a termsrv call takes and
-- says, at the first failure, what is wrong and how to fix it.
--
-- Steps: name resolution, TCP to the SMB port, SMB authentication, IPC$ and
-- the LSM pipe, which MS-TSTS pipes exist and bind, the query right, and the
-- reset right. The reset right cannot be tested without resetting a session,
-- so it is inferred from administrator-level visibility (the account sees
-- sessions other than its own, e.g. session 0) and the result says so.
-- With Kerberos three steps come first, asked of the KDC alone: the
-- credentials (a ticket in the cache, or one got from the keytab or the
-- password), a service ticket for cifs/<host> (the SMB logon's) and one for
-- host/<host> or the `spn` option (the RPC binds').
--
--     local doctor = require "termsrv.doctor"
--     local checks = doctor.run{ host = "ts01", user = "CORP\\ops", password = pw }
--     io.write(doctor.format(checks))
--
-- A check is `{host=, step=, label=, status=, detail=, fix=}` with status
-- `"ok"`, `"warn"` (works, with a limitation), `"fail"` or `"skip"` (not
-- reached). Plain data, so checks cross process boundaries (termsrv.fleet).
-- @module termsrv.doctor

local M = {}

--- The steps, in order.
M.STEPS = { "resolve", "tcp", "smb", "ipc", "pipes", "query", "reset" }
--- The steps with Kerberos, in order.
M.KERBEROS_STEPS = { "krb_creds", "krb_cifs", "krb_host", "resolve", "tcp", "smb", "ipc", "pipes",
                     "query", "reset" }
local KRB_STEP = { krb_creds = true, krb_cifs = true, krb_host = true }

local LABELS = { resolve = "name resolution", tcp = "TCP port %d", smb = "SMB authentication",
                 ipc = "IPC$ share", pipes = "RPC pipes", query = "query right",
                 reset = "reset right", krb_creds = "Kerberos credentials",
                 krb_cifs = "ticket for the SMB logon", krb_host = "ticket for the RPC binds" }

local FIX = {
  resolve = "check the name in DNS (getent hosts NAME), add it to /etc/hosts, or give the IP address",
  refused = "nothing accepts SMB on port %d: start the Server service (LanmanServer) and allow "
    .. "'File and Printer Sharing (SMB-In)' in Windows Firewall -- termsrv needs SMB (445), not RDP (3389)",
  silent = "no answer on port %d: a firewall drops SMB or the host is down; allow 'File and Printer "
    .. "Sharing (SMB-In)' from this machine -- termsrv needs SMB (445), not RDP (3389)",
  logon = "wrong password or unknown account (Windows does not say which): check the account "
    .. "(TERMSRV_USER=DOMAIN\\user, -U), the domain (-W; a local account takes the host name), "
    .. "and the password or NT hash",
  krb_logon = "the host refused the Kerberos logon: check that the ticket is the account's (klist), "
    .. "that the host has SPNs cifs/<fqdn> and host/<fqdn> (setspn -L), that it was named by its DNS "
    .. "name, and that both clocks are in sync",
  locked = "the account is locked out, disabled or expired: unlock or re-enable it in AD / lusrmgr.msc",
  ipc = "the account may log on but not use IPC$: check 'Access this computer from the network' "
    .. "in the host's user rights, and that the Server service shares IPC$",
  no_pipes = "no Remote Desktop Services pipe answers: start the 'Remote Desktop Services' service "
    .. "(TermService); on client Windows set HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server"
    .. "\\AllowRemoteRPC = 1 (DWORD) and restart TermService",
  rpc_denied = "the host refuses remote RPC to Remote Desktop Services: set HKLM\\SYSTEM\\"
    .. "CurrentControlSet\\Control\\Terminal Server\\AllowRemoteRPC = 1 (DWORD), restart TermService",
  query = "the account lacks the query right (WINSTATION_QUERY): add %s to the host's local "
    .. "Administrators group, or grant it 'Query Information' on the RDP-Tcp listener "
    .. "(Remote Desktop Users have it by default); on client Windows also set AllowRemoteRPC = 1 under "
    .. "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server",
  reset = "%s is not an administrator on %s: reset and logoff of other users' sessions will be "
    .. "refused. Add it to the host's local Administrators group, or grant it 'Full Control' "
    .. "(Reset, Logoff, Disconnect) on the RDP-Tcp listener",
}

local PIPES = {
  { key = "lsm", name = "LSM_API_service" },
  { key = "rcm", name = "TermSrv_API_service" },
  { key = "legacy", name = "Ctx_WinStation_API_service" },
}
local ABSENT = { lsm_unavailable = true, rdp_disabled = true }

local function is_ip(s)
  return s:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or s:find(":", 1, true) ~= nil
end

local function label(step, port)
  return (LABELS[step]:format(port or 445))
end

local function account(user, domain)
  if not user then return "the account" end
  if domain and domain ~= "" then return domain .. "\\" .. user end
  return user
end

-- A full list of checks: the ones given, the rest "skip".
local function complete(spec, given)
  local out = {}
  for _, step in ipairs(spec.kerberos and M.KERBEROS_STEPS or M.STEPS) do
    local c = given[step] or { status = "skip", detail = "not checked" }
    c.host, c.step, c.label = spec.name, step, label(step, spec.port)
    out[#out + 1] = c
  end
  return out
end

local function msg(err)
  return err and (err.message or err.code) or "unknown error"
end

--- Checks from a failed connect: the step that failed, the earlier ones passed.
-- @tparam table spec `{name=, host=, port=, user=, domain=, kerberos=}`
-- @tparam table err the error object from `termsrv.connect` (or a fleet result)
-- @treturn {table,...} checks
function M.from_connect_error(spec, err)
  local code = err and err.code or "unknown"
  local port = spec.port or 445
  local given = {}
  local function pass(upto, fail_step, detail, fix)
    for _, step in ipairs(M.STEPS) do
      if step == fail_step then break end
      given[step] = { status = "ok", detail = upto[step] }
    end
    given[fail_step] = { status = "fail", detail = detail, fix = fix, code = code }
  end
  local reached = {
    resolve = is_ip(spec.host or "") and "address given" or "resolved",
    tcp = "port " .. port .. " answers",
    smb = "logged on as " .. account(spec.user, spec.domain),
  }
  local text = msg(err)
  if code == "name_not_resolved" then
    pass(reached, "resolve", text, FIX.resolve)
  elseif code == "connection_refused" then
    pass(reached, "tcp", text, FIX.refused:format(port))
  elseif (code == "timeout" or code == "host_unreachable") and (text:find("^connect") or
      code == "host_unreachable") then
    pass(reached, "tcp", text, FIX.silent:format(port))
  elseif code:match("^krb_") or (err and err.status_kind == "Kerberos") then
    -- Kerberos names its own failure: a ticket, a clock, an SPN, a key
    pass(reached, "smb", text, err.hint or FIX.krb_logon)
  elseif (code == "logon_failure" or code == "auth_failed") and spec.kerberos then
    -- no password was involved: never blame one
    pass(reached, "smb", "Kerberos logon refused for " .. account(spec.user, spec.domain), FIX.krb_logon)
  elseif code == "logon_failure" or code == "auth_failed" then
    pass(reached, "smb", "logon refused for " .. account(spec.user, spec.domain), FIX.logon)
  elseif code == "account_locked" then
    pass(reached, "smb", text, FIX.locked)
  elseif code == "access_denied" then
    pass(reached, "ipc", text, FIX.ipc)
  elseif code == "timeout" then
    pass(reached, "smb", text, "the host accepted TCP but did not answer SMB in time; check its load, "
      .. "or raise --timeout")
  elseif code == "worker_crashed" then
    pass({}, "resolve", text, "a termsrv worker process died; run doctor for this host alone")
  else
    pass(reached, "smb", text, err and err.hint or "see the message")
  end
  return complete(spec, given)
end

local function lifetime_text(s)
  if not s or s < 0 then return "no expiry" end
  if s >= 3600 then return string.format("valid %dh%02dm more", s // 3600, s % 3600 // 60) end
  return string.format("valid %dm%02ds more", s // 60, s % 60)
end

--- The Kerberos steps, asked of the KDC alone (nothing goes to the host):
-- the credentials as `termsrv.connect` gets them, then a service ticket for
-- cifs/<host> and one for host/<host> (or `kerberos.spn`).
-- @tparam table opts as for `termsrv.connect` (`host`, `user`, `password`, `kerberos`)
-- @treturn table the checks by step (`krb_creds`, `krb_cifs`, `krb_host`)
-- @treturn boolean true when one of them failed
function M.kerberos(opts)
  local core = require "termsrv.core"
  local host = require "termsrv.host"
  local name = host.split_host(opts.host, opts.port)
  local user = host.split_user(opts.user, opts.domain)
  local k = type(opts.kerberos) == "table" and opts.kerberos or {}
  local source = k.keytab and ("got from the keytab " .. k.keytab)
    or (opts.password and k.smb ~= false and not k.ccache) and "got with the password"
    or ("in the cache " .. (k.ccache or os.getenv("KRB5CCNAME") or "(the default)"))
  local given = {}
  local services = { "cifs", "host" }
  if k.smb == false then
    services = { "host" }
    given.krb_cifs = { status = "skip", detail = "the SMB logon is NTLM (kerberos.smb = false)" }
  end
  local info, err = core.kerberos_check{ host = name, user = user, password = opts.password,
    kerberos = opts.kerberos, services = services }
  if not info then
    local text = msg(err)
    given.krb_creds = { status = "fail", code = err.code,
      detail = text .. (err.status_name and (" [" .. err.status_name .. "]") or ""),
      fix = err.hint or "see the message" }
    for _, step in ipairs{ "krb_cifs", "krb_host" } do
      given[step] = given[step] or { status = "skip", detail = "not checked: no credentials" }
    end
    return given, true
  end
  given.krb_creds = { status = "ok", detail = string.format("%s, ticket %s (%s)", info.principal, source,
    lifetime_text(info.lifetime)) }
  given.principal = info.principal
  local failed = false
  for _, t in ipairs(info.tickets) do
    local step = t.service == "cifs" and "krb_cifs" or "krb_host"
    if t.ok then
      given[step] = { status = "ok", detail = t.spn }
    else
      failed = true
      given[step] = { status = "fail", code = t.err.code,
        detail = msg(t.err) .. (t.err.status_name and (" [" .. t.err.status_name .. "]") or ""),
        fix = t.err.hint or "see the message" }
    end
  end
  return given, failed
end

--- Puts the Kerberos steps (from `kerberos`) into a list of checks. When
-- one of them failed and so did the connect, the later steps were not
-- reached in a way that says anything: they become "skip".
-- @tparam {table,...} checks from `from_connect_error` or `probe` (spec with `kerberos`)
-- @tparam table kgiven the first result of `kerberos`
-- @tparam boolean kfailed its second
-- @tparam boolean connected whether the connect succeeded
-- @treturn {table,...} checks
function M.with_kerberos(checks, kgiven, kfailed, connected)
  for _, c in ipairs(checks) do
    local k = kgiven[c.step]
    if KRB_STEP[c.step] and k then
      for key, v in pairs(k) do c[key] = v end
    elseif c.step == "smb" and c.status == "ok" and kgiven.principal then
      c.detail = "logged on as " .. kgiven.principal .. " (Kerberos)"
    elseif kfailed and not connected and not KRB_STEP[c.step] then
      c.status, c.detail, c.fix, c.code = "skip", "not reached: Kerberos failed first", nil, nil
    end
  end
  return checks
end

--- Runs the steps after the logon on a connected host handle.
-- @param h a host handle (termsrv.connect)
-- @tparam[opt] table spec `{name=, host=, port=}` (defaults from the handle)
-- @treturn {table,...} checks
function M.probe(h, spec)
  spec = spec or {}
  spec = { name = spec.name or h.name, host = spec.host or h.address, port = spec.port or h.port,
           user = h.user, domain = h.domain, kerberos = spec.kerberos }
  local who = account(h.user, h.domain)
  local given = {
    resolve = { status = "ok", detail = is_ip(spec.host or "") and "address given" or "resolved" },
    tcp = { status = "ok", detail = "port " .. (spec.port or 445) .. " answers" },
    smb = { status = "ok", detail = "logged on as " .. who },
    ipc = { status = "ok", detail = "connected" },
  }

  -- pipes
  local have, absent, notes, refused = {}, {}, {}, nil
  for _, p in ipairs(PIPES) do
    local ok, err = h:probe(p.key)
    if ok then
      have[#have + 1] = p.name
    elseif ABSENT[err.code] then
      absent[p.key] = true
    else
      refused = refused or { pipe = p.name, err = err }
    end
  end
  local pipes
  if refused then
    local fix = (refused.err.code == "access_denied" or refused.err.code == "bind_refused")
      and FIX.rpc_denied or (refused.err.hint or FIX.rpc_denied)
    if refused.err.code == "auth_level_refused" then
      fix = (refused.err.hint and (refused.err.hint .. "; ") or "") .. "try --rpc-auth none or privacy"
    end
    pipes = { status = "fail", detail = refused.pipe .. ": " .. msg(refused.err), fix = fix,
              code = refused.err.code }
  elseif absent.lsm and absent.legacy then
    pipes = { status = "fail", detail = "neither LSM_API_service nor Ctx_WinStation_API_service exists",
              fix = FIX.no_pipes, code = "lsm_unavailable" }
  else
    if absent.lsm then
      notes[#notes + 1] = "no LSM_API_service (an old host): listing uses the legacy pipe"
    end
    if absent.rcm then
      notes[#notes + 1] = "no TermSrv_API_service: Remote Desktop is disabled (no client names or "
        .. "addresses, no new RDP logons; enable it with SystemPropertiesRemote.exe or fDenyTSConnections=0)"
    end
    if absent.legacy then
      notes[#notes + 1] = "no Ctx_WinStation_API_service: reset, processes, kill, shutdown and the "
        .. "server clock are unavailable (logoff still works)"
    end
    pipes = { status = #notes > 0 and "warn" or "ok", detail = table.concat(have, ", ") .. " bind",
              notes = notes }
  end
  given.pipes = pipes
  if pipes.status == "fail" then return complete(spec, given) end

  -- query right
  local list, err = h:sessions{ all = true, times = false }
  if not list then
    local fix = err.code == "access_denied" and FIX.query:format(who) or (err.hint or "see the message")
    given.query = { status = "fail", detail = msg(err), fix = fix, code = err.code }
    return complete(spec, given)
  end
  local users, others = 0, 0
  local me = (h.user or ""):lower()
  for _, s in ipairs(list) do
    if s.user and s.user ~= "" then users = users + 1 end
    if (s.user or ""):lower() ~= me then others = others + 1 end
  end
  given.query = { status = "ok", detail = string.format("%d session%s visible, %d with a user", #list,
    #list == 1 and "" or "s", users) }

  -- reset right: inferred
  if others > 0 then
    local d = "inferred, not tested: the account sees other users' sessions (administrator-level visibility)"
    given.reset = { status = absent.legacy and "warn" or "ok", detail = d,
      notes = absent.legacy and { "no legacy pipe: reset is unavailable, logoff works" } or nil }
  else
    given.reset = { status = "fail", code = "access_denied",
      detail = string.format("inferred: the account sees only its own session%s (%d), not session 0 -- "
        .. "it is not an administrator", #list == 1 and "" or "s", #list),
      fix = FIX.reset:format(who, spec.name) }
  end
  return complete(spec, given)
end

-- What `run` returns: the checks, printing as `format` shows them
local Checks = { __name = "termsrv.doctor.checks" }
Checks.__index = Checks
M.Checks = Checks
function Checks.__tostring(checks) return (M.format(checks):gsub("\n$", "")) end

--- Connects and runs every step (for scripts; the CLI goes through its host runner).
-- @tparam table opts as for `termsrv.connect`
-- @treturn {table,...} checks (print as `format` shows them)
function M.run(opts)
  local termsrv = require "termsrv"
  local host = require "termsrv.host"
  local name, port = host.split_host(opts.host, opts.port)
  local user, domain = host.split_user(opts.user, opts.domain)
  local spec = { name = opts.name or opts.host, host = name, port = port or 445, user = user,
                 domain = domain, kerberos = opts.kerberos and true or nil }
  local kgiven, kfailed
  if opts.kerberos then kgiven, kfailed = M.kerberos(opts) end
  local h, err = termsrv.connect(opts)
  local checks
  if h then
    checks = M.probe(h, spec)
    h:close()
  else
    checks = M.from_connect_error(spec, err)
  end
  if kgiven then checks = M.with_kerberos(checks, kgiven, kfailed, h ~= nil) end
  return setmetatable(checks, Checks)
end

--- True when no check failed.
function M.passed(checks)
  for _, c in ipairs(checks) do if c.status == "fail" then return false end end
  return true
end

local MARK = { ok = "✓", warn = "!", fail = "✗", skip = "-" }

--- The checks of one host as text: one line per step, the fix under the
-- first failure, and a verdict line.
-- @tparam {table,...} checks
-- @tparam[opt] table opts `ascii = true` for `+`/`!`/`x`/`-` marks; `title` (first line,
--   default the host name)
-- @treturn string
function M.format(checks, opts)
  opts = opts or {}
  local marks = opts.ascii and { ok = "+", warn = "!", fail = "x", skip = "-" } or MARK
  local out = {}
  local host = checks[1] and checks[1].host or "?"
  out[#out + 1] = opts.title or host
  local w = 0
  for _, c in ipairs(checks) do w = math.max(w, utf8.len(c.label) or #c.label) end
  local failed
  for _, c in ipairs(checks) do
    out[#out + 1] = string.format("  %s %s%s  %s", marks[c.status] or "?", c.label,
      string.rep(" ", w - (utf8.len(c.label) or #c.label)), c.detail or "")
    for _, n in ipairs(c.notes or {}) do out[#out + 1] = "      note: " .. n end
    if c.status == "fail" and not failed then
      failed = c
      if c.fix then out[#out + 1] = "      fix: " .. c.fix end
    end
  end
  if failed then
    out[#out + 1] = string.format("  %s: FAILED at %s", host, failed.label)
  else
    out[#out + 1] = string.format("  %s: ready", host)
  end
  return table.concat(out, "\n") .. "\n"
end

return M
