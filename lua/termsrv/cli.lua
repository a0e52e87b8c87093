--- The `termsrv` command line: `cli.main(argv, env[, io]) -> exit code`.
--
-- bin/termsrv is a thin launcher around this module; everything is here so
-- that the command line can be tested in-process as well as through the
-- executable. `main` never calls `os.exit`.
--
-- Exit codes: 0 everything worked, 1 some hosts or sessions failed, 2 all
-- failed (or nothing could start: no credentials, audit log unusable), 64
-- usage error. A host counts as failed when it could not be reached or
-- listed, or when every action on it failed; as partly failed when some
-- actions (or some per-session reads) failed.
--
-- Output: tables, JSON Lines or CSV on stdout (`--format`); per-host errors
-- and other diagnostics on stderr, one line each; summaries of actions
-- last (stdout for tables, stderr for JSON and CSV so that stdout stays data).
-- @module termsrv.cli

local argparse = require "argparse"
local audit = require "termsrv.audit"
local credentials = require "termsrv.credentials"
local doctor = require "termsrv.doctor"
local duration = require "termsrv.duration"
local errors = require "termsrv.error"
local json = require "termsrv.json"
local plan = require "termsrv.plan"
local policy = require "termsrv.policy"
local record = require "termsrv.record"
local report = require "termsrv.report"
local selector = require "termsrv.select"

local M = {}

M.EXIT_OK, M.EXIT_PARTIAL, M.EXIT_FAILED, M.EXIT_USAGE = 0, 1, 2, 64

--- Where `--apply` runs log when neither `--audit` nor `TERMSRV_AUDIT` says.
M.DEFAULT_AUDIT = "$XDG_STATE_HOME/termsrv/audit.jsonl (~/.local/state/termsrv/audit.jsonl)"

local Usage = {}
Usage.__index = Usage
local function usage_error(msg) error(setmetatable({ msg = msg }, Usage), 0) end

-------------------------------------------------------------------------------
-- small helpers

local function now()
  local ok, system = pcall(require, "system")
  if ok and type(system) == "table" and system.monotime then return system.monotime() end
  return os.time()
end

local function posint(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then return nil, "'" .. tostring(s) .. "' is not a positive integer" end
  return n
end

local function nonneg(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 0 then return nil, "'" .. tostring(s) .. "' is not a non-negative integer" end
  return n
end

local function seconds(s)
  local n = tonumber(s)
  if n and n > 0 then return n end
  local d = duration.parse(s)
  if d and d > 0 then return d end
  return nil, "'" .. tostring(s) .. "' is not a positive number of seconds (or a duration like 30s, 2m)"
end

local function dur(s)
  local d, err = duration.parse(s)
  if not d then return nil, err.message end
  return d
end

local function list(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  return { v }
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function account_text(user, domain)
  if not user then return nil end
  if domain and domain ~= "" then return domain .. "\\" .. user end
  return user
end

-------------------------------------------------------------------------------
-- hosts

local function split_hostport(s)
  local h, p = s:match("^%[(.+)%]:(%d+)$")
  if not h then h, p = s:match("^([^:]+):(%d+)$") end
  if h then return h, tonumber(p) end
  return s:match("^%[(.+)%]$") or s, nil
end

--- One host spec from `ADDRESS[:PORT]` or `LABEL=ADDRESS[:PORT]`.
-- @tparam string text
-- @tparam[opt] integer default_port
-- @tparam[opt] string label
-- @treturn[1] table `{host=, port=, name=}`
-- @treturn[2] nil
-- @treturn[2] string message
function M.parse_host(text, default_port, label)
  if type(text) ~= "string" or text == "" then return nil, "empty host name" end
  local name, addr = text:match("^([^=]+)=(.+)$")
  addr = addr or text
  local host, port = split_hostport(addr)
  if not host or host == "" or host:find("[%s/\\]") then return nil, "bad host '" .. text .. "'" end
  if port and (port < 1 or port > 65535) then return nil, "bad port in '" .. text .. "'" end
  return { host = host, port = port or default_port or 445, name = label or name or text }
end

--- Host specs from the text of a hosts file: one host per line
-- (`ADDRESS[:PORT] [LABEL]` or `LABEL=ADDRESS[:PORT]`, `#` comments), or a
-- JSON array of strings or `{name=, host= | address=, port=}` objects.
-- @tparam string text
-- @tparam[opt] integer default_port
-- @tparam[opt="hosts file"] string where for messages
-- @treturn[1] {table,...}
-- @treturn[2] nil
-- @treturn[2] string message
function M.parse_hosts_file(text, default_port, where)
  where = where or "hosts file"
  local out = {}
  if text:match("^%s*%[") then
    local v, _, err = require("dkjson").decode(text)
    if type(v) ~= "table" then return nil, where .. ": bad JSON: " .. tostring(err) end
    for i, e in ipairs(v) do
      local spec, perr
      if type(e) == "string" then
        spec, perr = M.parse_host(e, default_port)
      elseif type(e) == "table" and type(e.host or e.address) == "string" then
        local addr = e.host or e.address
        if e.port then addr = (addr:find(":", 1, true) and ("[" .. addr .. "]") or addr) .. ":" .. e.port end
        spec, perr = M.parse_host(addr, default_port, e.name)
      else
        perr = "entry " .. i .. ": string or {host=, port=, name=} expected"
      end
      if not spec then return nil, where .. ": " .. perr end
      out[#out + 1] = spec
    end
    return out
  end
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" then
      local addr, label = line:match("^(%S+)%s+(%S+)$")
      local spec, err = M.parse_host(addr or line, default_port, label)
      if not spec then return nil, string.format("%s, line %d: %s", where, n, err) end
      out[#out + 1] = spec
    end
  end
  return out
end

-------------------------------------------------------------------------------
-- running a function on every host

local function fleet_module()
  local ok, m = pcall(require, "termsrv.fleet")
  if not ok then return nil end
  if type(m) == "function" then return m end
  if type(m) == "table" then
    local mt = getmetatable(m)
    if mt and mt.__call then return function(...) return m(...) end end
    if type(m.new) == "function" then return m.new end
    if type(m.fleet) == "function" then return m.fleet end
  end
  return nil
end

-- Error objects that crossed a process boundary as plain tables get their
-- metatable back, so that tostring() gives the usual one line.
local function revive(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return v end
  seen[v] = true
  if getmetatable(v) == nil and type(v.code) == "string" and (v.message ~= nil or v.op ~= nil) then
    setmetatable(v, errors.Error)
  end
  for _, x in pairs(v) do revive(x, seen) end
  return v
end

--- Runs `fn(h, spec)` on every host of `ctx.hosts` with a connected handle.
-- With `ctx.jobs > 1` and termsrv.fleet installed, hosts run in parallel
-- worker processes; otherwise one after another in this process. Either way a
-- failing host never stops the others, and the results come back in the
-- order the hosts were given: `{host=, spec=, ok=, value=, err=, duration=}`.
-- `fn` must return plain data (records keep their metatables) and not raise;
-- a value with `err` marks the host as failed.
-- @tparam table ctx `hosts`, `connect` (termsrv.connect options without host),
--   `jobs`, `host_timeout`, `progress`
-- @tparam function fn
-- @treturn {table,...}
function M.run_hosts(ctx, fn)
  local hosts = ctx.hosts
  local by_name, out = {}, {}
  for i, spec in ipairs(hosts) do by_name[spec.name] = i end
  -- the session-control methods must be on host handles before workers fork
  local termsrv = require "termsrv"
  local make = (ctx.jobs or 1) > 1 and #hosts > 1
  if make then
    if ctx.fleet == nil then make = fleet_module() else make = ctx.fleet end
    if not make then ctx.fleet_error = "termsrv.fleet is not available" end
  end
  if make then
    local opts = { hosts = hosts, parallel = ctx.jobs, connect = ctx.connect,
                   connect_timeout = ctx.connect.connect_timeout, progress = ctx.progress }
    if ctx.host_timeout then opts.timeout = ctx.host_timeout end
    local ok, f = pcall(make, opts)
    if ok and f then
      local ok2, results = pcall(f.run, f, fn)
      if ok2 and type(results) == "table" then
        for _, r in ipairs(results) do
          local i = math.type(r.index) == "integer" and hosts[r.index] and r.index or by_name[r.host]
          if i and not out[i] then
            out[i] = { host = r.host, spec = hosts[i], ok = r.ok, value = revive(r.value),
                       err = revive(r.err), duration = r.duration }
          end
        end
        for i, spec in ipairs(hosts) do
          if not out[i] then
            out[i] = { host = spec.name, spec = spec, ok = false, err = errors.new{ code = "worker_crashed",
              host = spec.name, op = "fleet", message = "no result for this host" } }
          end
        end
        ctx.used_fleet = true
        return out
      end
      ctx.fleet_error = tostring(results)
    else
      ctx.fleet_error = tostring(f)
    end
    out = {}
  end
  for i, spec in ipairs(hosts) do
    local o = copy(ctx.connect)
    o.host, o.port, o.name = spec.host, spec.port, spec.name
    local t0 = now()
    -- connect raises on options it cannot use (e.g. --kerberos with --rpc-auth privacy)
    local okc, h, err = pcall(termsrv.connect, o)
    if not okc then
      h, err = nil, errors.new{ code = "invalid_parameter", host = spec.name, op = "connect",
                                message = tostring(h):gsub("^[^:]*:%d+: ", "") }
    end
    local r = { host = spec.name, spec = spec }
    if not h then
      r.ok, r.err = false, err
    else
      local ok, v = pcall(fn, h, spec)
      if ok then
        r.ok, r.value = true, v
      else
        r.ok, r.err = false, errors.new{ code = "internal", host = spec.name, op = "termsrv",
                                          message = tostring(v) }
      end
      h:close()
    end
    r.duration = now() - t0
    out[i] = r
  end
  return out
end

-- The error of a host result (connect failure, or the operation's own).
local function host_err(r)
  if not r.ok then return r.err end
  if type(r.value) == "table" and r.value.err then return r.value.err end
  return nil
end

-- 0 when every outcome is "ok", 2 when all are "failed", else 1.
local function exit_of(outcomes)
  local ok, failed = 0, 0
  for _, o in ipairs(outcomes) do
    if o == "ok" then ok = ok + 1 elseif o == "failed" then failed = failed + 1 end
  end
  if ok == #outcomes then return M.EXIT_OK end
  if failed == #outcomes then return M.EXIT_FAILED end
  return M.EXIT_PARTIAL
end

-- Outcome of a host from its result rows: all ok / some failed / all failed.
local function outcome_of(rows)
  local ok, failed = 0, 0
  for _, x in ipairs(rows) do
    local st = x.status or (x.ok and "ok" or "failed")
    if st == "failed" then failed = failed + 1 elseif st == "ok" then ok = ok + 1 end
  end
  if failed == 0 then return "ok" end
  if ok == 0 then return "failed" end
  return "partial"
end

-------------------------------------------------------------------------------
-- output

local function out(ctx, s) ctx.stdout:write(s) end

-- One line per diagnostic (a worker's script error carries a traceback:
-- shown only with TERMSRV_DEBUG).
local function diag(ctx, s)
  s = tostring(s)
  if not (ctx.getenv and ctx.getenv("TERMSRV_DEBUG")) then s = s:gsub("\n.*$", "") end
  ctx.stderr:write(s, "\n")
end

local function emit(ctx, items, text_fn, fields)
  local fmt = ctx.format
  local opts = fields and { fields = fields } or nil
  if fmt == "json" then out(ctx, report.jsonl(items, opts))
  elseif fmt == "csv" then out(ctx, report.csv(items, opts))
  else out(ctx, text_fn(items)) end
end

local function report_host_errors(ctx, results)
  for _, r in ipairs(results) do
    local e = host_err(r)
    if e then
      if getmetatable(e) == errors.Error then
        if e.host == nil then e = errors.with(e, { host = r.host }) end
        if e.code == "timeout" and e.op == "fleet" then
          e = errors.with(e, { hint = "the host or the network is slow or hung; raise --host-timeout "
            .. "if it is only slow" })
        end
      end
      diag(ctx, tostring(e))
    end
  end
end

-- the summary line(s) of action results; to stdout for tables, else stderr
local function summary(ctx, rows, host_errors, nhosts)
  local ok, failed, skipped = 0, 0, 0
  for _, r in ipairs(rows) do
    local st = r.status or (r.ok and "ok" or "failed")
    if st == "ok" then ok = ok + 1
    elseif st == "skipped" then skipped = skipped + 1
    else failed = failed + 1 end
  end
  local line = string.format("total: %d host%s, %d ok, %d failed, %d skipped, %d host error%s", nhosts,
    nhosts == 1 and "" or "s", ok, failed, skipped, host_errors, host_errors == 1 and "" or "s")
  if ctx.format == "table" then out(ctx, line .. "\n") else diag(ctx, line) end
end

local RESULT_HEAD = { "HOST", "ID", "USER", "ACTION", "STATUS", "BEFORE", "AFTER", "TIME", "DETAIL" }

local function results_table(rows)
  if #rows == 0 then return "" end
  local cells = {}
  for _, r in ipairs(rows) do
    local detail = r.note or ""
    if r.answer then detail = (detail ~= "" and (detail .. "; ") or "") .. "answer: " .. r.answer end
    if r.err then detail = (detail ~= "" and (detail .. "; ") or "") .. tostring(r.err) end
    cells[#cells + 1] = { r.host, r.id and tostring(r.id) or "", record.account(r) or "-", r.action or "",
      r.status or (r.ok and "ok" or "failed"), r.before or "", r.after or "",
      r.duration and string.format("%.1fs", r.duration) or "", detail }
  end
  return report.text_table(RESULT_HEAD, cells, { right = { [2] = true, [8] = true } })
end

-- A result record (control.lua) or plan result as a plain row.
local function result_row(r)
  local t = {}
  for _, k in ipairs{ "host", "id", "user", "domain", "logon_time", "rule", "action", "status", "ok",
                      "before", "after", "err", "duration", "answer", "note", "pid", "image" } do
    t[k] = r[k]
  end
  if t.status == nil then t.status = r.ok and "ok" or "failed" end
  if r.fallback then t.note = (t.note and (t.note .. "; ") or "") .. "via " .. r.fallback end
  if type(r.steps) == "table" then
    local steps = {}
    for i, s in ipairs(r.steps) do steps[i] = { action = s.action, ok = s.ok, err = s.err } end
    t.steps = steps
  end
  return t
end

-------------------------------------------------------------------------------
-- audit

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function audit_path(ctx, args)
  if args.no_audit then return nil end
  if args.audit then return args.audit end
  local p = ctx.getenv("TERMSRV_AUDIT")
  if p and p ~= "" then return p end
  local state = ctx.getenv("XDG_STATE_HOME")
  if not state or state == "" then
    local home = ctx.getenv("HOME")
    if not home or home == "" then return nil, "no HOME: give --audit FILE or set TERMSRV_AUDIT" end
    state = home .. "/.local/state"
  end
  local dir = state .. "/termsrv"
  os.execute("umask 077 && mkdir -p " .. shell_quote(dir) .. " 2>/dev/null")
  return dir .. "/audit.jsonl"
end

-- Checks in the parent that the audit log can be written before anything is
-- done; workers open it again themselves (one append per line, O_APPEND).
local function prepare_audit(ctx, args)
  local path, err = audit_path(ctx, args)
  if err then return nil, err end
  if not path then return false end
  local log, aerr = audit.open(path)
  if not log then return nil, tostring(aerr) end
  log:close()
  return path
end

local function open_audit(path)
  if not path then return nil end
  return audit.open(path)
end

local function audit_entry(h, r, cmd, rule)
  return { account = account_text(h.user, h.domain), host = h.name,
    session = { id = r.id, user = r.user, domain = r.domain, logon_time = r.logon_time },
    policy = "termsrv " .. cmd, rule = rule, action = r.action, before = r.before, after = r.after,
    ok = r.ok, err = r.err, duration = r.duration }
end

-------------------------------------------------------------------------------
-- the parser

local HOSTS_HELP = "Hosts: NAME, ADDRESS[:PORT], or LABEL=ADDRESS[:PORT] (LABEL names the host in output)."

local function add_common(cmd, o)
  o = o or {}
  cmd:add_help(false)
  cmd:flag("-h --help", "Show this help and exit.")
  cmd:group("Hosts",
    cmd:option("--hosts", "Read hosts from FILE: one per line (ADDRESS[:PORT] [LABEL], # comments) "
      .. "or a JSON array."):argname("FILE"):count("*"),
    cmd:option("-j --jobs", "Work on N hosts at a time (uses termsrv.fleet when N > 1).", "1")
      :argname("N"):convert(posint),
    cmd:option("--host-timeout", "With -j: give up on a host after SECS in all (default 60).")
      :argname("SECS"):convert(seconds))
  cmd:group("Account (the secret comes from TERMSRV_PASSWORD / TERMSRV_NTHASH, a credentials file, "
      .. "or a prompt)",
    cmd:option("-U --account", "Account: user, DOMAIN\\user or user@domain (default $TERMSRV_USER).")
      :argname("USER"),
    cmd:option("-W --account-domain", "Domain of the account (default $TERMSRV_DOMAIN)."):argname("DOMAIN"),
    cmd:option("--credentials", "Credentials file (username/password/domain/nthash = ...; mode 600; "
      .. "default $TERMSRV_CREDENTIALS)."):argname("FILE"),
    cmd:flag("-k --kerberos", "Use the Kerberos ticket cache (KRB5CCNAME) instead of a password."),
    cmd:flag("--no-prompt", "Never ask on the terminal; fail when no secret is configured."))
  cmd:group("Connection",
    cmd:option("--port", "SMB port (default 445)."):argname("PORT"):convert(posint),
    cmd:option("--timeout", "Seconds per SMB exchange (default 20)."):argname("SECS"):convert(seconds),
    cmd:option("--connect-timeout", "Seconds to establish TCP (default 5)."):argname("SECS"):convert(seconds),
    cmd:option("--rpc-auth", "RPC authentication: privacy (default) or none (rely on SMB identity).")
      :choices{ "privacy", "none" })
  if not o.no_format then
    cmd:group("Output",
      cmd:option("--format", "Output: table, json (JSON Lines) or csv (RFC 4180).", "table")
        :choices{ "table", "json", "csv" })
  end
end

local function add_selectors(cmd, what)
  cmd:group("Which sessions (" .. what .. ")",
    cmd:option("--id", "Session id (also as a bare number after the hosts)."):argname("ID")
      :count("*"):convert(nonneg),
    cmd:option("--user", "Sessions of this user (glob; DOMAIN\\user allowed)."):argname("GLOB"):count("*"),
    cmd:option("--state", "Sessions in this state (active, disc, ...)."):count("*"),
    cmd:option("--station", "Sessions on this station (glob, e.g. rdp-tcp#*)."):argname("GLOB"):count("*"),
    cmd:option("--from-client", "Sessions from this client name or address (glob or CIDR).")
      :argname("GLOB"):count("*"),
    cmd:option("--min-idle", "Idle at least this long (90m, 8h, 2d)."):argname("DURATION"),
    cmd:option("--min-disconnected", "Disconnected at least this long."):argname("DURATION"),
    cmd:option("--exclude-user", "Never these users (glob)."):argname("GLOB"):count("*"),
    cmd:flag("--all-users", "Every user session except the console and your own."))
end

local function add_apply(cmd, bulk_only)
  cmd:group("Safety",
    cmd:flag("--apply", bulk_only and "Act. Without it this is a dry run: nothing is touched."
      or "Act on selected sessions (selectors are a dry run without it; explicit ids act at once)."),
    cmd:flag("-n --dry-run", "Show what would be done; touch nothing."),
    cmd:option("--audit", "Append the audit log here (default $TERMSRV_AUDIT, else "
      .. "${XDG_STATE_HOME:-~/.local/state}/termsrv/audit.jsonl)."):argname("FILE"),
    cmd:flag("--no-audit", "Do not write an audit log."))
end

local function build_parser()
  local p = argparse("termsrv")
    :description("List and clean up Remote Desktop sessions on Windows hosts (qwinsta, quser, rwinsta, "
      .. "logoff, tsdiscon, tscon, msg, query process, tskill, shutdown /m) over SMB (TCP 445).")
    :epilog("Credentials: TERMSRV_USER (DOMAIN\\user), TERMSRV_DOMAIN, TERMSRV_PASSWORD or TERMSRV_NTHASH, "
      .. "TERMSRV_CREDENTIALS=FILE, or --credentials FILE; otherwise asked on the terminal. "
      .. "Secrets are never taken from the command line.\n"
      .. "Exit codes: 0 all ok, 1 some hosts or sessions failed, 2 all failed, 64 usage.\n"
      .. "Run 'termsrv COMMAND --help' for the options of a command.")
    :add_help(false)
    :command_target("command")
    :require_command(false)
    :help_max_width(100)
  p:flag("-h --help", "Show this help and exit.")
  p:flag("--version", "Show the version and exit.")

  local c = p:command("sessions", "List sessions, like qwinsta /server:HOST.")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:flag("--all", "Include the services session and listeners.")
  c:flag("--client", "Add client name and address (one more call per session).")
  c:flag("--no-times", "Skip per-session times in JSON/CSV (one RPC call per host; the table never "
    .. "needs them).")
  c:option("--state", "Only sessions in this state."):count("*")
  c:option("--user", "Only sessions of this user (glob)."):argname("GLOB"):count("*")
  c:flag("-D --show-domain", "Show DOMAIN\\user.")
  add_common(c)

  c = p:command("users", "List user sessions, like quser /server:HOST.")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:option("--state", "Only sessions in this state."):count("*")
  c:option("--user", "Only sessions of this user (glob)."):argname("GLOB"):count("*")
  c:flag("-D --show-domain", "Show DOMAIN\\user.")
  c:flag("--iso", "Logon times as ISO 8601 UTC.")
  c:flag("--utc", "Logon times in UTC (Windows format).")
  add_common(c)

  for _, a in ipairs{
    { "reset", "Reset sessions, like rwinsta: the session ends at once, unsaved work is lost." },
    { "logoff", "Log sessions off (falls back to reset if the logoff hangs, unless --no-fallback)." },
    { "disconnect", "Disconnect sessions, like tsdiscon: the user stays logged on." },
  } do
    c = p:command(a[1], a[2]):epilog("Session ids given explicitly act at once (like rwinsta); "
      .. "selectors (--user, --state, ...) only show a plan unless --apply is given.")
    c:argument("target", "Hosts, then session ids. " .. HOSTS_HELP):args("*"):argname("HOST|ID")
    add_selectors(c, "ids act at once, selectors need --apply")
    add_apply(c)
    c:group("Action",
      c:flag("--wait", "Verify that the action took effect (the default)."),
      c:flag("--no-wait", "Do not verify that the action took effect."),
      c:option("--wait-timeout", "Seconds to wait for verification (default 10)."):argname("SECS")
        :convert(seconds),
      c:option("--max-actions", "At most N sessions per host (default 50)."):argname("N"):convert(posint),
      c:flag("--listener", "Allow acting on a listener (ends every session it accepted)."))
    if a[1] == "logoff" then c:flag("--no-fallback", "Never fall back to reset.") end
    add_common(c)
  end

  c = p:command("message", "Show a message box in sessions, like msg.")
    :epilog("Messages are sent at once, to ids or to every session the selectors match "
      .. "(disconnected sessions are skipped unless --state says otherwise).")
  c:argument("target", "Hosts, then session ids. " .. HOSTS_HELP):args("*"):argname("HOST|ID")
  add_selectors(c, "sent at once")
  c:group("Message",
    c:option("--title", "Title of the box.", "Message from your administrator"),
    c:option("--text", "The message ('-' reads it from standard input)."),
    c:option("--time", "Seconds the box stays, like msg /TIME (0 = until answered)."):argname("SECS")
      :convert(nonneg),
    c:flag("--wait", "Wait for the user's answer."),
    c:option("--buttons", "Buttons of the box.", "ok")
      :choices{ "ok", "okcancel", "yesno", "yesnocancel", "retrycancel", "abortretryignore" })
  add_common(c)

  c = p:command("processes", "List processes, like query process / tasklist /s.")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:option("--session", "Only this session."):argname("ID"):convert(nonneg)
  c:option("--user", "Only processes of this account (glob, e.g. *alice)."):argname("GLOB")
  c:option("--name", "Only this image name (glob, e.g. chrome*.exe)."):argname("GLOB")
  add_common(c)

  c = p:command("kill", "End processes, like tskill / taskkill /s.")
    :epilog("PIDs given explicitly are ended at once; --name/--session/--user only show what would "
      .. "be ended unless --apply is given. Session 0 and Windows' critical processes are never "
      .. "matched by a filter (name them by PID, or --session 0).")
  c:argument("target", "Hosts, then PIDs. " .. HOSTS_HELP):args("*"):argname("HOST|PID")
  c:option("--name", "Processes with this image name (glob)."):argname("GLOB")
  c:option("--session", "Processes in this session."):argname("ID"):convert(nonneg)
  c:option("--user", "Processes of this account (glob)."):argname("GLOB")
  add_apply(c)
  add_common(c)

  c = p:command("clean", "Apply a cleanup policy (a Lua file): a dry run unless --apply.")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:option("--policy", "The policy file (see termsrv.policy)."):argname("FILE")
  add_apply(c, true)
  c:flag("--no-wait", "Do not verify that each action took effect.")
  add_common(c)

  c = p:command("free-slots", "Free N session slots per host, stalest sessions first: "
    .. "for 'the number of connections to this computer is limited'. A dry run unless --apply.")
  c:argument("count", "How many slots to free per host."):convert(posint):argname("N")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:option("--action", "How to free a slot (disconnecting does not free one).", "logoff")
    :choices{ "logoff", "reset" }
  c:flag("--only-disconnected", "Consider only disconnected sessions.")
  c:option("--min-idle", "Consider only sessions idle (or disconnected) at least this long.")
    :argname("DURATION")
  c:option("--exclude-user", "Never these users (glob)."):argname("GLOB"):count("*")
  add_apply(c, true)
  c:flag("--no-wait", "Do not verify that each action took effect.")
  add_common(c)

  c = p:command("doctor", "Check the path to each host and say what to fix: name, TCP 445, SMB logon, "
    .. "IPC$, pipes, query right, reset right.")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:flag("--ascii", "Marks +/!/x/- instead of ✓/!/✗/-.")
  add_common(c)

  c = p:command("shutdown", "Shut hosts down, reboot them, or log every user off (shutdown /m).")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:mutex(
    c:flag("--reboot", "Restart."),
    c:flag("--poweroff", "Power off."),
    c:flag("--logoff", "Log every user off and keep running."))
  c:flag("--yes", "Required: confirms that every session on the hosts ends.")
  c:option("--audit", "Audit log (see reset --help)."):argname("FILE")
  c:flag("--no-audit", "Do not write an audit log.")
  add_common(c)

  c = p:command("connect", "Connect session SOURCE to the station of session TARGET, like tscon.")
  c:argument("target", "HOST SOURCE TARGET"):args(3):argname{ "HOST", "SOURCE", "TARGET" }
  c:flag("--ask-password", "Ask for the password of SOURCE's user (needed unless you are that user).")
  c:flag("--no-wait", "Do not verify the new state.")
  c:option("--audit", "Audit log (see reset --help)."):argname("FILE")
  c:flag("--no-audit", "Do not write an audit log.")
  add_common(c, { no_format = false })
  return p
end

M.build_parser = build_parser

-------------------------------------------------------------------------------
-- setting up a run

-- Splits positional targets into host specs and integers (ids / pids).
local function targets(args, ctx, numbers_allowed)
  local hosts, nums = {}, {}
  local port = args.port
  for _, t in ipairs(list(args.target)) do
    if t:match("^%d+$") then
      if not numbers_allowed then usage_error("'" .. t .. "' is not a host name") end
      nums[#nums + 1] = math.tointeger(tonumber(t))
    else
      local spec, err = M.parse_host(t, port)
      if not spec then usage_error(err) end
      hosts[#hosts + 1] = spec
    end
  end
  for _, path in ipairs(list(args.hosts)) do
    local f, err = io.open(path, "r")
    if not f then usage_error("cannot read hosts file: " .. tostring(err)) end
    local text = f:read("a")
    f:close()
    local specs, perr = M.parse_hosts_file(text, port, path)
    if not specs then usage_error(perr) end
    for _, s in ipairs(specs) do hosts[#hosts + 1] = s end
  end
  if #hosts == 0 then usage_error("no hosts: give HOST... or --hosts FILE") end
  local seen, uniq = {}, {}
  for _, s in ipairs(hosts) do
    if seen[s.name] then
      diag(ctx, "termsrv: " .. s.name .. " is given twice; using it once")
    else
      seen[s.name] = true
      uniq[#uniq + 1] = s
    end
  end
  return uniq, nums
end

local function setup(ctx, args, numbers_allowed)
  ctx.format = args.format or "table"
  ctx.hosts, ctx.numbers = targets(args, ctx, numbers_allowed)
  ctx.jobs = args.jobs or 1
  ctx.host_timeout = args.host_timeout
  local prompt = ctx.prompt
  if args.no_prompt then prompt = false end
  local creds, err = credentials.resolve{ account = args.account, domain = args.account_domain,
    file = args.credentials, kerberos = args.kerberos, getenv = ctx.getenv, prompt = prompt }
  if not creds then return nil, err end
  ctx.creds = creds
  ctx.connect = { user = creds.user, domain = creds.domain, password = creds.password,
    nthash = creds.nthash, kerberos = creds.kerberos or nil, timeout = args.timeout,
    connect_timeout = args.connect_timeout, rpc_auth = args.rpc_auth }
  return true
end

local function compile(sel)
  local ok, m = pcall(selector.compile, sel)
  if not ok then usage_error(tostring(m):gsub("^[^:]*:%d+: ", "")) end
  return m
end

-- Selector table from the selector options; nil when none was given.
local function selector_from(args)
  local sel, any = {}, false
  local function set(key, v)
    if v ~= nil and not (type(v) == "table" and #v == 0) then sel[key] = v; any = true end
  end
  set("user", list(args.user))
  set("state", list(args.state))
  set("station", list(args.station))
  if args.from_client and #args.from_client > 0 then
    local names, addrs = {}, {}
    for _, c in ipairs(args.from_client) do
      if c:match("^[%d%.%*/]+$") then addrs[#addrs + 1] = c else names[#names + 1] = c end
    end
    set("client", names)
    set("address", addrs)
  end
  for _, k in ipairs{ "min_idle", "min_disconnected" } do
    if args[k] then
      local d, err = dur(args[k])
      if not d then usage_error("--" .. k:gsub("_", "-") .. ": " .. err) end
      set(k, d)
    end
  end
  if args.exclude_user and #args.exclude_user > 0 then sel.exclude_users = args.exclude_user end
  if args.all_users then any = true end
  if not any then return nil end
  return sel
end

-------------------------------------------------------------------------------
-- plans across hosts (plain data, so that they cross process boundaries)

local PlanMT = { __name = "termsrv.plan" }
PlanMT.__index = PlanMT
PlanMT.__len = function(p) return #p.steps end

local STEP_KEYS = { "host", "id", "user", "domain", "station", "state", "kind", "logon_time", "idle",
                    "disconnected", "client", "address", "fingerprint", "rule", "action", "steps", "grace",
                    "why" }

local function plan_data(p)
  local steps = {}
  for i, st in ipairs(p.steps) do
    local t = {}
    for _, k in ipairs(STEP_KEYS) do t[k] = st[k] end
    steps[i] = t
  end
  local hosts = {}
  for i, h in ipairs(p.hosts) do hosts[i] = copy(h) end
  return { steps = steps, skipped = p.skipped, errors = p.errors, hosts = hosts,
           policy_name = p.policy_name, free_slots = p.free_slots }
end

local function merge_plans(results, name, free)
  local p = setmetatable({ steps = {}, skipped = {}, errors = {}, hosts = {}, policy_name = name,
                           free_slots = free }, PlanMT)
  for _, r in ipairs(results) do
    local v = r.ok and r.value
    if v and v.plan then
      for _, k in ipairs{ "steps", "skipped", "errors", "hosts" } do
        for _, x in ipairs(v.plan[k] or {}) do p[k][#p[k] + 1] = x end
      end
    end
  end
  return p
end

local function plan_text(p)
  local text = report.plan(p)
  return (text:gsub("%(plan:apply%(%) acts%)", "(--apply acts)"))
end

-- Handle wrapper passing command-line options to the actions a plan calls.
local function tuned(h, extra)
  local w = { name = h.name, user = h.user, domain = h.domain }
  local function with(o)
    o = o and copy(o) or {}
    for k, v in pairs(extra) do if o[k] == nil then o[k] = v end end
    return o
  end
  function w.sessions(_, o) return h:sessions(o) end
  function w.session(_, id, o) return h:session(id, o) end
  function w.reset(_, s, o) return h:reset(s, with(o)) end
  function w.logoff(_, s, o) return h:logoff(s, with(o)) end
  function w.disconnect(_, s, o) return h:disconnect(s, with(o)) end
  function w.message(_, s, title, text, o) return h:message(s, title, text, o) end
  return w
end

-- Runs a policy on every host: plan, and with `apply` act and audit.
local function run_policy(ctx, pol, o)
  local results = M.run_hosts(ctx, function(h, _)
    local target = tuned(h, o.extra or {})
    local p, perr = plan.make({ target }, pol)
    if not p then return { err = perr } end
    local v = { plan = plan_data(p) }
    if #p.errors > 0 then v.err = p.errors[1].err end
    if o.apply and #p.steps > 0 then
      local log, aerr = open_audit(o.audit)
      if o.audit and not log then v.err = aerr; return v end
      local res = p:apply{ audit = log, wait = o.wait }
      if log then log:close() end
      local rows = {}
      for i, r in ipairs(res) do rows[i] = result_row(r) end
      v.results = rows
    end
    return v
  end)
  return results
end

local function finish_policy(ctx, results, name, free, apply)
  local p = merge_plans(results, name, free)
  local host_errors = 0
  local outcomes = {}
  report_host_errors(ctx, results)
  for i, r in ipairs(results) do
    local e = host_err(r)
    if e then
      host_errors = host_errors + 1
      outcomes[i] = "failed"
    else
      outcomes[i] = apply and outcome_of(r.value.results or {}) or "ok"
    end
  end
  if not apply then
    p.errors = {}
    if ctx.format == "table" then out(ctx, plan_text(p))
    else
      emit(ctx, p)
      diag(ctx, string.format("dry run: %d action%s planned on %d host%s; --apply acts", #p.steps,
        #p.steps == 1 and "" or "s", #results, #results == 1 and "" or "s"))
    end
    return exit_of(outcomes)
  end
  local rows = {}
  for _, r in ipairs(results) do
    for _, x in ipairs(r.ok and r.value and r.value.results or {}) do rows[#rows + 1] = x end
  end
  if ctx.format == "table" then
    if #rows == 0 then out(ctx, "nothing to do\n") else out(ctx, results_table(rows)) end
  else
    emit(ctx, setmetatable(rows, { __name = "termsrv.results" }), nil, report.RESULT_FIELDS)
  end
  summary(ctx, rows, host_errors, #results)
  return exit_of(outcomes)
end

-------------------------------------------------------------------------------
-- commands

local commands = {}

-- listings -------------------------------------------------------------------

local function listing(ctx, args, opts)
  local filter
  local sel = {}
  if #list(args.state) > 0 then sel.state = args.state end
  if #list(args.user) > 0 then sel.user = args.user end
  if next(sel) then
    sel.include_protected = true
    filter = compile(sel)
  end
  local results = M.run_hosts(ctx, function(h)
    local l, err = h:sessions(opts)
    if not l then return { err = err } end
    local keep = {}
    for _, s in ipairs(l) do
      if not filter or filter:match(s) then keep[#keep + 1] = s end
    end
    return { sessions = keep, problems = l.errors }
  end)
  report_host_errors(ctx, results)
  local all, outcomes = {}, {}
  for i, r in ipairs(results) do
    if host_err(r) then
      outcomes[i] = "failed"
    else
      for _, s in ipairs(r.value.sessions) do all[#all + 1] = s end
      local problems = r.value.problems or {}
      for _, e in ipairs(problems) do diag(ctx, tostring(e)) end
      outcomes[i] = #problems > 0 and "partial" or "ok"
    end
  end
  return all, exit_of(outcomes)
end

local SESSION_CLIENT_HEAD = { "SESSIONNAME", "USERNAME", "ID", "STATE", "IDLE", "CLIENT", "ADDRESS" }

local function sessions_with_client(recs, multi, domain)
  local head, rows = {}, {}
  if multi then head[1] = "HOST" end
  for _, h in ipairs(SESSION_CLIENT_HEAD) do head[#head + 1] = h end
  for _, r in ipairs(recs) do
    local idle = record.idle(r)
    local row = {}
    if multi then row[1] = r.host end
    for _, v in ipairs{ r.name or "", (domain and record.account(r) or r.user) or "", tostring(r.id),
      record.STATE_ABBREV[r.state] or r.state or "", idle and report.quser_idle(idle) or "",
      r.client or "", r.address or "" } do
      row[#row + 1] = v
    end
    rows[#rows + 1] = row
  end
  return report.text_table(head, rows, { right = { [multi and 4 or 3] = true } })
end

function commands.sessions(ctx, args)
  -- the qwinsta table shows no times: skip the per-session call for it
  local times = not args.no_times and (ctx.format ~= "table" or args.client)
  local recs, code = listing(ctx, args, { all = args.all, times = times, client = args.client })
  if code == M.EXIT_FAILED then return code end
  local multi = #ctx.hosts > 1
  emit(ctx, recs, function(items)
    if args.client then return sessions_with_client(items, multi, args.show_domain) end
    return report.qwinsta(items, { host = multi, domain = args.show_domain })
  end)
  return code
end

function commands.users(ctx, args)
  local all, code = listing(ctx, args, { all = false, times = true })
  local recs = record.list{}
  for _, r in ipairs(all) do
    if r.user and r.user ~= "" then recs[#recs + 1] = r end
  end
  if code == M.EXIT_FAILED then return code end
  local multi = #ctx.hosts > 1
  emit(ctx, recs, function(items)
    return report.quser(items, { host = multi, domain = args.show_domain, time = args.iso and "iso" or nil,
                                 utc = args.utc })
  end)
  return code
end

-- session actions ------------------------------------------------------------

local function direct_actions(ctx, args, action, ids, audit_path_)
  local cmd = action
  local results = M.run_hosts(ctx, function(h)
    local log, aerr = open_audit(audit_path_)
    if audit_path_ and not log then return { err = aerr } end
    local rows, stop = {}, nil
    for _, id in ipairs(ids) do
      if stop then
        rows[#rows + 1] = { host = h.name, id = id, action = action, status = "skipped", ok = false,
                            err = stop, note = "not attempted: the audit log failed" }
      else
        local o = { wait = not args.no_wait, timeout = args.wait_timeout, listener = args.listener }
        if action == "logoff" and args.no_fallback then o.fallback = false end
        local r, err, res = h[action](h, id, o)
        r = r or res or { host = h.name, id = id, action = action, ok = false, err = err }
        local row = result_row(r)
        rows[#rows + 1] = row
        if log then
          local ok, werr = log:write(audit_entry(h, row, cmd, "id " .. id))
          if not ok then stop = werr end
        end
      end
    end
    if log then log:close() end
    return { results = rows }
  end)
  return results
end

local function finish_rows(ctx, results)
  report_host_errors(ctx, results)
  local rows, outcomes, host_errors = {}, {}, 0
  for i, r in ipairs(results) do
    if host_err(r) then
      host_errors = host_errors + 1
      outcomes[i] = "failed"
    end
    for _, x in ipairs(r.ok and r.value and r.value.results or {}) do rows[#rows + 1] = x end
    if not outcomes[i] then outcomes[i] = outcome_of(r.value.results or {}) end
  end
  if ctx.format == "table" then
    out(ctx, results_table(rows))
  else
    emit(ctx, setmetatable(rows, { __name = "termsrv.results" }), nil, report.RESULT_FIELDS)
  end
  summary(ctx, rows, host_errors, #results)
  return exit_of(outcomes)
end

-- Dry run for explicit ids: what each id is now, and what would be done.
local function explicit_plan(ctx, action, ids)
  local results = M.run_hosts(ctx, function(h)
    local steps, errs = {}, {}
    for _, id in ipairs(ids) do
      local s, err = h:session(id)
      if s then
        steps[#steps + 1] = { host = h.name, id = id, user = s.user, domain = s.domain, station = s.name,
          state = s.state, kind = s.kind, logon_time = s.logon_time, idle = record.idle(s),
          disconnected = record.disconnected_for(s), rule = "command line", action = action,
          steps = { action }, why = "session id given" }
      else
        errs[#errs + 1] = { host = h.name, err = err }
      end
    end
    local v = { plan = { steps = steps, skipped = {}, errors = errs,
                         hosts = { { host = h.name, steps = #steps, skipped = 0 } } } }
    if #errs > 0 then v.partial = #steps > 0; v.err = errs[1].err end
    return v
  end)
  report_host_errors(ctx, results)
  local p = merge_plans(results, "termsrv " .. action)
  local outcomes = {}
  for i, r in ipairs(results) do
    outcomes[i] = host_err(r) and (r.ok and r.value.partial and "partial" or "failed") or "ok"
  end
  p.errors = {}
  if ctx.format == "table" then out(ctx, plan_text(p)) else emit(ctx, p) end
  return exit_of(outcomes)
end

local function session_action(action)
  return function(ctx, args)
    local ids = ctx.numbers
    for _, id in ipairs(list(args.id)) do ids[#ids + 1] = id end
    local sel = selector_from(args)
    if #ids > 0 and sel then
      usage_error("give session ids or selectors (--user, --state, ...), not both")
    end
    if #ids == 0 and not sel then
      usage_error("which sessions? give session ids, selectors (--user, --state, --min-idle, ...) "
        .. "or --all-users")
    end
    if args.dry_run and args.apply then usage_error("--dry-run and --apply contradict each other") end
    if #ids > 0 then
      if args.dry_run then return explicit_plan(ctx, action, ids) end
      local path, err = prepare_audit(ctx, args)
      if path == nil then diag(ctx, "termsrv: audit log: " .. err); return M.EXIT_FAILED end
      return finish_rows(ctx, direct_actions(ctx, args, action, ids, path or nil))
    end
    compile(sel)
    local pol_ok, pol = pcall(policy.new, { name = "termsrv " .. action,
      max_actions = args.max_actions or policy.DEFAULT_MAX_ACTIONS,
      rules = { { name = action, select = sel, action = action } } })
    if not pol_ok then usage_error(tostring(pol)) end
    local apply = args.apply and not args.dry_run
    local path
    if apply then
      local err
      path, err = prepare_audit(ctx, args)
      if path == nil then diag(ctx, "termsrv: audit log: " .. err); return M.EXIT_FAILED end
    end
    local extra = { timeout = args.wait_timeout, listener = args.listener or nil }
    if action == "logoff" and args.no_fallback then extra.fallback = false end
    local results = run_policy(ctx, pol, { apply = apply, audit = path or nil, wait = not args.no_wait,
                                           extra = extra })
    return finish_policy(ctx, results, pol.name, nil, apply)
  end
end

commands.reset = session_action("reset")
commands.logoff = session_action("logoff")
commands.disconnect = session_action("disconnect")

function commands.message(ctx, args)
  local ids = ctx.numbers
  for _, id in ipairs(list(args.id)) do ids[#ids + 1] = id end
  local sel = selector_from(args)
  if #ids > 0 and sel then usage_error("give session ids or selectors, not both") end
  if #ids == 0 and not sel then usage_error("which sessions? give session ids, selectors or --all-users") end
  local text = args.text
  if text == "-" then text = ctx.stdin:read("a"):gsub("\n$", "") end
  if not text or text == "" then usage_error("--text is required ('-' reads standard input)") end
  local m
  if sel then
    if not sel.state then sel.state = { "active", "connected", "idle", "shadow", "connect_query" } end
    sel.include_protected = { "console", "self" }
    m = compile(sel)
  end
  local needs_times = sel and (sel.min_idle or sel.min_disconnected)
  local results = M.run_hosts(ctx, function(h)
    local targets_ = {}
    if m then
      local l, err = h:sessions{ times = needs_times and true or false,
                                 client = (sel.client or sel.address) and true or false }
      if not l then return { err = err } end
      for _, s in ipairs(l) do
        if s.user and m:match(s, { self = { user = h.user, domain = h.domain } }) then
          targets_[#targets_ + 1] = s
        end
      end
    else
      targets_ = ids
    end
    local rows = {}
    for _, s in ipairs(targets_) do
      local r, err, res = h:message(s, args.title, text, { timeout = args.time, wait = args.wait,
                                                            buttons = args.buttons })
      r = r or res or { host = h.name, id = type(s) == "table" and s.id or s, action = "message",
                        ok = false, err = err }
      rows[#rows + 1] = result_row(r)
    end
    return { results = rows }
  end)
  return finish_rows(ctx, results)
end

-- processes ------------------------------------------------------------------

local PROC_HEAD = { "USERNAME", "ID", "PID", "PPID", "IMAGE", "MEM" }

local function proc_table(procs, multi, verb)
  local head, rows = {}, {}
  if verb then head[1] = "ACTION" end
  if multi then head[#head + 1] = "HOST" end
  for _, h in ipairs(PROC_HEAD) do head[#head + 1] = h end
  for _, p in ipairs(procs) do
    local row = {}
    if verb then row[1] = verb end
    if multi then row[#row + 1] = p.host end
    for _, v in ipairs{ p.account or p.sid or "-", tostring(p.session), tostring(p.pid),
      p.ppid and tostring(p.ppid) or "", p.image or "",
      p.memory and (tostring(p.memory // 1024) .. " K") or "" } do
      row[#row + 1] = v
    end
    rows[#rows + 1] = row
  end
  local base = (verb and 1 or 0) + (multi and 1 or 0)
  return report.text_table(head, rows, { right = { [base + 2] = true, [base + 3] = true, [base + 4] = true,
                                                   [base + 6] = true } })
end

local function sort_procs(procs)
  table.sort(procs, function(a, b)
    if a.session ~= b.session then return (a.session or -1) < (b.session or -1) end
    return a.pid < b.pid
  end)
  return procs
end

local function collect_procs(ctx, results)
  report_host_errors(ctx, results)
  local all, outcomes = {}, {}
  for i, r in ipairs(results) do
    if host_err(r) then outcomes[i] = "failed" else
      for _, p in ipairs(sort_procs(r.value.processes)) do all[#all + 1] = p end
      outcomes[i] = "ok"
    end
  end
  return all, outcomes
end

local PROCESS_FIELDS = { "host", "pid", "ppid", "image", "session", "account", "sid", "memory",
  "peak_memory", "threads", "handles", "create_time", "cpu_seconds" }

function commands.processes(ctx, args)
  local results = M.run_hosts(ctx, function(h)
    local procs, err = h:processes{ session = args.session, user = args.user, name = args.name }
    if not procs then return { err = err } end
    return { processes = procs }
  end)
  local all, outcomes = collect_procs(ctx, results)
  local code = exit_of(outcomes)
  if code == M.EXIT_FAILED then return code end
  emit(ctx, all, function(items) return proc_table(items, #ctx.hosts > 1) end, PROCESS_FIELDS)
  return code
end

-- Never matched by a filter: what Windows cannot live without.
local CRITICAL = { ["system"] = true, ["smss.exe"] = true, ["csrss.exe"] = true, ["wininit.exe"] = true,
  ["winlogon.exe"] = true, ["services.exe"] = true, ["lsass.exe"] = true, ["svchost.exe"] = true,
  ["lsm.exe"] = true, ["dwm.exe"] = true, ["fontdrvhost.exe"] = true, ["registry"] = true,
  ["memory compression"] = true, ["system idle process"] = true }

local KILL_FIELDS = { "host", "pid", "image", "id", "action", "status", "ok", "error", "error_message",
                      "duration" }

function commands.kill(ctx, args)
  local pids = ctx.numbers
  local filtered = args.name or args.session or args.user
  if #pids > 0 and filtered then usage_error("give PIDs or --name/--session/--user, not both") end
  if #pids == 0 and not filtered then usage_error("which processes? give PIDs or --name/--session/--user") end
  if args.dry_run and args.apply then usage_error("--dry-run and --apply contradict each other") end
  local act = (#pids > 0 and not args.dry_run) or (filtered and args.apply and not args.dry_run)
  local path
  if act then
    local err
    path, err = prepare_audit(ctx, args)
    if path == nil then diag(ctx, "termsrv: audit log: " .. err); return M.EXIT_FAILED end
  end
  local results = M.run_hosts(ctx, function(h)
    local procs
    if #pids > 0 then
      local all, err = h:processes()
      if not all then
        if act then
          all = {}
        else
          return { err = err }
        end
      end
      local by_pid = {}
      for _, p in ipairs(all) do by_pid[p.pid] = p end
      procs = {}
      for _, pid in ipairs(pids) do procs[#procs + 1] = by_pid[pid] or { pid = pid, host = h.name } end
    else
      local all, err = h:processes{ session = args.session, user = args.user, name = args.name }
      if not all then return { err = err } end
      procs = {}
      for _, p in ipairs(all) do
        if (p.session ~= 0 or args.session == 0) and not CRITICAL[(p.image or ""):lower()] then
          procs[#procs + 1] = p
        end
      end
    end
    if not act then return { processes = procs } end
    local log, aerr = open_audit(path)
    if path and not log then return { err = aerr } end
    local rows, stop = {}, nil
    for _, p in ipairs(procs) do
      local row
      if stop then
        row = { host = h.name, pid = p.pid, image = p.image, id = p.session, action = "kill",
                status = "skipped", ok = false, err = stop }
      else
        local res, err, list_ = h:kill(p.pid)
        local r = res and res[1] or (list_ and list_[1]) or { host = h.name, pid = p.pid, action = "kill",
                                                               ok = false, err = err }
        row = result_row(r)
        row.image, row.id = row.image or p.image, row.id or p.session
        if log then
          local e = audit_entry(h, row, "kill", string.format("pid %d%s", p.pid,
            p.image and (" (" .. p.image .. ")") or ""))
          e.session = p.session and { id = p.session } or nil
          local ok, werr = log:write(e)
          if not ok then stop = werr end
        end
      end
      rows[#rows + 1] = row
    end
    if log then log:close() end
    return { results = rows }
  end)
  if not act then
    local all, outcomes = collect_procs(ctx, results)
    emit(ctx, all, function(items)
      if #items == 0 then return "no matching processes\n" end
      return proc_table(items, #ctx.hosts > 1, "would kill") .. string.format(
        "dry run: %d process%s would be ended; --apply acts\n", #items, #items == 1 and "" or "es")
    end, PROCESS_FIELDS)
    return exit_of(outcomes)
  end
  report_host_errors(ctx, results)
  local rows, outcomes, host_errors = {}, {}, 0
  for i, r in ipairs(results) do
    if host_err(r) then host_errors = host_errors + 1; outcomes[i] = "failed" else
      for _, x in ipairs(r.value.results) do rows[#rows + 1] = x end
      outcomes[i] = outcome_of(r.value.results)
    end
  end
  if ctx.format == "table" then
    local cells = {}
    for _, r in ipairs(rows) do
      cells[#cells + 1] = { r.host, tostring(r.pid), r.image or "", r.id and tostring(r.id) or "",
        r.status, r.err and tostring(r.err) or "" }
    end
    if #cells > 0 then
      out(ctx, report.text_table({ "HOST", "PID", "IMAGE", "ID", "STATUS", "DETAIL" }, cells,
        { right = { [2] = true, [4] = true } }))
    end
  else
    emit(ctx, rows, nil, KILL_FIELDS)
  end
  summary(ctx, rows, host_errors, #results)
  return exit_of(outcomes)
end

-- policies -------------------------------------------------------------------

function commands.clean(ctx, args)
  if not args.policy then usage_error("--policy FILE is required") end
  if args.dry_run and args.apply then usage_error("--dry-run and --apply contradict each other") end
  local pol, err = policy.load(args.policy)
  if not pol then
    diag(ctx, "termsrv: " .. tostring(err))
    return M.EXIT_USAGE
  end
  local apply = args.apply and not args.dry_run
  local path
  if apply then
    local aerr
    path, aerr = prepare_audit(ctx, args)
    if path == nil then diag(ctx, "termsrv: audit log: " .. aerr); return M.EXIT_FAILED end
  end
  if apply and not ctx.host_timeout then
    -- ladders wait out their grace periods inside the worker: give it that long
    local longest = 0
    for _, r in ipairs(pol.rules) do
      local sum = 0
      for _, secs in pairs(r.grace or {}) do sum = sum + secs end
      if sum > longest then longest = sum end
    end
    if longest > 0 then ctx.host_timeout = longest + 120 end
  end
  local results = run_policy(ctx, pol, { apply = apply, audit = path or nil,
                                         wait = (not args.no_wait) and pol.wait or false })
  return finish_policy(ctx, results, pol.name, pol.free_slots, apply)
end

commands["free-slots"] = function(ctx, args)
  if args.dry_run and args.apply then usage_error("--dry-run and --apply contradict each other") end
  local sel = {}
  if args.only_disconnected then sel.state = "disconnected" end
  if args.min_idle then
    local d, err = dur(args.min_idle)
    if not d then usage_error("--min-idle: " .. err) end
    sel.min_idle = d
  end
  local pol = {
    name = "free-slots", free_slots = args.count,
    rules = { { name = "free_slots", select = sel, action = args.action } },
  }
  if args.exclude_user and #args.exclude_user > 0 then pol.exclude = { user = args.exclude_user } end
  local ok, p = pcall(policy.new, pol)
  if not ok then usage_error(tostring(p)) end
  local apply = args.apply and not args.dry_run
  local path
  if apply then
    local err
    path, err = prepare_audit(ctx, args)
    if path == nil then diag(ctx, "termsrv: audit log: " .. err); return M.EXIT_FAILED end
  end
  local results = run_policy(ctx, p, { apply = apply, audit = path or nil, wait = not args.no_wait })
  return finish_policy(ctx, results, p.name, p.free_slots, apply)
end

-- doctor, shutdown, connect --------------------------------------------------

local CHECK_FIELDS = { "host", "step", "label", "status", "detail", "fix" }

function commands.doctor(ctx, args)
  local results = M.run_hosts(ctx, function(h, spec)
    return { checks = doctor.probe(h, spec) }
  end)
  local all, outcomes = {}, {}
  for i, r in ipairs(results) do
    local checks
    if r.ok and r.value and r.value.checks then
      checks = r.value.checks
    else
      local spec = r.spec
      checks = doctor.from_connect_error({ name = spec.name, host = spec.host, port = spec.port,
        user = ctx.creds.user, domain = ctx.creds.domain }, r.err)
    end
    outcomes[i] = doctor.passed(checks) and "ok" or "failed"
    if ctx.format == "table" then
      local spec = r.spec
      local where = spec.host:find(":", 1, true) and ("[" .. spec.host .. "]") or spec.host
      local title = string.format("%s (%s:%d) as %s", spec.name, where, spec.port,
        account_text(ctx.creds.user, ctx.creds.domain) or "(kerberos ticket)")
      out(ctx, doctor.format(checks, { ascii = args.ascii, title = title }))
    else
      for _, c in ipairs(checks) do
        local row = {}
        for _, k in ipairs(CHECK_FIELDS) do row[k] = c[k] end
        if c.notes and #c.notes > 0 then
          row.detail = (row.detail or "") .. " (" .. table.concat(c.notes, "; ") .. ")"
        end
        all[#all + 1] = row
      end
    end
  end
  if ctx.format ~= "table" then emit(ctx, all, nil, CHECK_FIELDS) end
  return exit_of(outcomes)
end

function commands.shutdown(ctx, args)
  local what = args.reboot and "reboot" or args.poweroff and "poweroff" or args.logoff and "logoff"
    or "shutdown"
  if not args.yes then
    usage_error(what .. " ends every session on " .. #ctx.hosts .. " host" .. (#ctx.hosts == 1 and "" or "s")
      .. "; add --yes to confirm")
  end
  local path, err = prepare_audit(ctx, args)
  if path == nil then diag(ctx, "termsrv: audit log: " .. err); return M.EXIT_FAILED end
  local results = M.run_hosts(ctx, function(h)
    local log, aerr = open_audit(path or nil)
    if path and not log then return { err = aerr } end
    local r, e, res = h:shutdown{ confirm = true, reboot = args.reboot, poweroff = args.poweroff,
                                  logoff = args.logoff }
    r = r or res or { host = h.name, action = what, ok = false, err = e }
    local row = result_row(r)
    if log then
      local entry = audit_entry(h, row, "shutdown", what)
      entry.session = nil
      log:write(entry)
      log:close()
    end
    return { results = { row } }
  end)
  return finish_rows(ctx, results)
end

function commands.connect(ctx, args)
  if #ctx.hosts ~= 1 or #ctx.numbers ~= 2 then usage_error("connect needs HOST SOURCE TARGET") end
  local source, target = ctx.numbers[1], ctx.numbers[2]
  local password
  if args.ask_password then
    local prompt = ctx.prompt
    if prompt == nil and credentials.stdin_is_tty() then prompt = credentials.ask end
    password = prompt and prompt("Password of the user of session " .. source .. ": ", false)
    if not password then usage_error("--ask-password needs a terminal") end
  end
  local path, err = prepare_audit(ctx, args)
  if path == nil then diag(ctx, "termsrv: audit log: " .. err); return M.EXIT_FAILED end
  local results = M.run_hosts(ctx, function(h)
    local log, aerr = open_audit(path or nil)
    if path and not log then return { err = aerr } end
    local r, e, res = h:connect(source, target, password, { wait = not args.no_wait })
    r = r or res or { host = h.name, id = source, action = "connect", ok = false, err = e }
    local row = result_row(r)
    if log then
      log:write(audit_entry(h, row, "connect", "session " .. source .. " to " .. target))
      log:close()
    end
    return { results = { row } }
  end)
  return finish_rows(ctx, results)
end

-------------------------------------------------------------------------------
-- main

local function getenv_of(env)
  if env == nil then return os.getenv end
  if type(env) == "function" then return env end
  return function(k) return env[k] end
end

local HelpRequest = {}

--- Runs the command line.
-- @tparam {string,...} argv the arguments (without the program name)
-- @tparam[opt] table env environment variables (name -> value; default the process environment)
-- @tparam[opt] table streams `stdout`, `stderr`, `stdin` (objects with `write`/`read`), and
--   `prompt` (function(label, echo) -> answer, or false: never ask; default asks on the terminal),
--   `fleet` (constructor used for `-j` > 1 instead of termsrv.fleet; false: never use a fleet)
-- @treturn integer exit code
function M.main(argv, env, streams)
  streams = streams or {}
  local ctx = { stdout = streams.stdout or io.stdout, stderr = streams.stderr or io.stderr,
                stdin = streams.stdin or io.stdin, getenv = getenv_of(env), fleet = streams.fleet }
  if streams.prompt ~= nil then ctx.prompt = streams.prompt end
  local parser = build_parser()
  local help_for
  local function mark_help(p)
    for _, o in ipairs(p._options) do
      if o._name == "-h" then o:action(function() help_for = p; error(HelpRequest) end) end
    end
    for _, c in ipairs(p._commands or {}) do mark_help(c) end
  end
  mark_help(parser)
  local perr
  local ok, args = pcall(parser._parse, parser, argv, function(p, msg)
    perr = { parser = p, msg = msg }
    error(perr, 0)
  end)
  if help_for then
    ctx.stdout:write(help_for:get_help(), "\n")
    return M.EXIT_OK
  end
  if perr then
    ctx.stderr:write(perr.parser:get_usage(), "\n\ntermsrv: ", perr.msg, "\n")
    return M.EXIT_USAGE
  end
  if not ok then
    ctx.stderr:write("termsrv: ", tostring(args), "\n")
    return M.EXIT_USAGE
  end
  if args.version then
    local v = "?"
    local okv, core = pcall(require, "termsrv.core")
    if okv and type(core) == "table" then v = tostring(core.version) end
    ctx.stdout:write("termsrv ", v, "\n")
    return M.EXIT_OK
  end
  if not args.command then
    ctx.stderr:write(parser:get_usage(), "\n\ntermsrv: a command is required\n")
    return M.EXIT_USAGE
  end
  local cmd = args.command
  local okr, code = xpcall(function()
    local numbers = cmd == "reset" or cmd == "logoff" or cmd == "disconnect" or cmd == "message"
      or cmd == "kill" or cmd == "connect"
    local good, err = setup(ctx, args, numbers)
    if not good then
      diag(ctx, "termsrv: " .. tostring(err))
      return M.EXIT_FAILED
    end
    return commands[cmd](ctx, args)
  end, function(e)
    if getmetatable(e) == Usage then return e end
    return { internal = tostring(e), trace = debug.traceback("", 2) }
  end)
  if okr then
    if ctx.fleet_error then
      diag(ctx, "termsrv: -j " .. ctx.jobs .. ": " .. ctx.fleet_error .. "; ran one host at a time")
    end
    return code
  end
  if getmetatable(code) == Usage then
    local sub
    for _, c in ipairs(parser._commands) do if c._name == cmd then sub = c end end
    ctx.stderr:write((sub or parser):get_usage(), "\n\ntermsrv: ", code.msg, "\n")
    return M.EXIT_USAGE
  end
  ctx.stderr:write("termsrv: internal error: ", code.internal, "\n")
  if ctx.getenv("TERMSRV_DEBUG") then ctx.stderr:write(code.trace, "\n") end
  return M.EXIT_FAILED
end

-- for tests
M._commands = commands
M._revive = revive
M._json = json

return M
