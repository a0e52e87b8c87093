--- The command-line grammar (argparse): commands, options, help texts.
-- @module termsrv.cli.options

local argparse = require("termsrv.need").need("argparse")
local duration = require "termsrv.duration"
local monitor = require "termsrv.monitor"

local M = {}

-- ----------------------------------------------------------------------------
-- converters

-- Plain decimal integers only: "0x10", "1e3" or "+5" are refused rather
-- than read as something the user may not have meant.
local function int_in(s, lo, hi, what)
  local n = type(s) == "string" and s:match("^%d+$") and #s <= 12 and math.tointeger(tonumber(s))
  if not n or n < lo or n > hi then
    return nil, string.format("'%s' is not %s (a plain decimal integer from %d to %d)", tostring(s), what,
      lo, hi)
  end
  return n
end

local function posint(s) return int_in(s, 1, 0x7FFFFFFF, "a positive integer") end
local function nonneg(s) return int_in(s, 0, 0xFFFFFFFF, "a session id") end
local function box_seconds(s) return int_in(s, 0, 86400, "a number of seconds") end
local function port(s) return int_in(s, 1, 65535, "a port") end
local function jobs(s) return int_in(s, 1, 4096, "a number of parallel workers") end
local function slots(s) return int_in(s, 1, 1000000, "a number of slots") end

local function duration_opt(s)
  local d, err = duration.parse(s)
  if not d then return nil, "'" .. tostring(s) .. "': " .. err.message end
  return d
end

local function range(s) return monitor.parse_range(s) end

-- Seconds: a positive, finite number of at most a day (a typo like 1e400
-- or 1e-9 must not quietly become a default).
local MIN_SECONDS, MAX_SECONDS = 0.001, 86400
local function seconds(s)
  local n = tonumber(s)
  if not n then
    local d = duration.parse(s)
    n = d
  end
  if n and n == n and n >= MIN_SECONDS and n <= MAX_SECONDS then return n end
  return nil, "'" .. tostring(s) .. "' is not a number of seconds from 0.001 to 86400 "
    .. "(or a duration like 30s, 2m)"
end

-- ----------------------------------------------------------------------------
-- option groups

local HOSTS_HELP = "Hosts: NAME, ADDRESS[:PORT], or LABEL=ADDRESS[:PORT] (LABEL names the host in output)."

local function add_common(cmd, no_format)
  cmd:add_help(false)
  cmd:flag("-h --help", "Show this help and exit.")
  cmd:group("Hosts",
    cmd:option("--hosts", "Read hosts from FILE: one per line (ADDRESS[:PORT] [LABEL], # comments) "
      .. "or a JSON array."):argname("FILE"):count("*"),
    cmd:option("-j --jobs", "Work on N hosts at a time in worker processes (-j 1, or one host: "
      .. "in this process).", "8")
      :argname("N"):convert(jobs),
    cmd:option("--host-timeout", "Give up on a host after SECS in all (default 60; in this "
      .. "process no call starts after it, nor lasts longer).")
      :argname("SECS"):convert(seconds))
  cmd:group("Account (the secret comes from TERMSRV_PASSWORD / TERMSRV_NTHASH, a credentials file, "
      .. "or a prompt)",
    cmd:option("-U --account", "Account: user, DOMAIN\\user or user@domain (default $TERMSRV_USER).")
      :argname("USER"),
    cmd:option("-W --account-domain", "Domain of the account (default $TERMSRV_DOMAIN)."):argname("DOMAIN"),
    cmd:option("--credentials", "Credentials file (username/password/domain/nthash = ...; mode 600; "
      .. "default $TERMSRV_CREDENTIALS)."):argname("FILE"),
    cmd:flag("-k --kerberos", "Kerberos for the SMB logon and the RPC binds: the ticket cache "
      .. "(KRB5CCNAME), or a ticket got with the configured password, or --keytab."),
    cmd:option("--keytab", "With -k: get the tickets for the SMB logon and the RPC binds from this "
      .. "keytab (no kinit, KRB5CCNAME untouched); needs --principal.")
      :argname("FILE"),
    cmd:option("--principal", "With -k: the Kerberos principal (user@REALM) of --keytab or the password.")
      :argname("NAME"),
    cmd:option("--spn", "With -k: the host's RPC service principal (default host/<host as given>).")
      :argname("SPN"),
    cmd:flag("--no-prompt", "Never ask on the terminal; fail when no secret is configured."))
  cmd:group("Connection",
    cmd:option("--port", "SMB port (default 445)."):argname("PORT"):convert(port),
    cmd:option("--timeout", "Seconds per SMB exchange (default 20)."):argname("SECS"):convert(seconds),
    cmd:option("--connect-timeout", "Seconds to establish TCP (default 5)."):argname("SECS"):convert(seconds),
    cmd:option("--rpc-auth", "RPC authentication: kerberos (default with -k), privacy (NTLM; the "
      .. "default otherwise, and the fallback with -k) or none (rely on SMB identity).")
      :choices{ "kerberos", "privacy", "none" })
  if no_format then return end
  cmd:group("Output",
    cmd:option("--format", "Output: table, json (JSON Lines) or csv (RFC 4180).", "table")
      :choices{ "table", "json", "csv" })
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

-- ----------------------------------------------------------------------------
-- the parser

--- The parser of the whole command line.
function M.build_parser()
  local p = argparse("termsrv")
    :description("List and clean up Remote Desktop sessions on Windows hosts (qwinsta, quser, rwinsta, "
      .. "logoff, tsdiscon, tscon, msg, query process, tskill, shutdown /m) over SMB (TCP 445).")
    :epilog("Credentials: TERMSRV_USER (DOMAIN\\user), TERMSRV_DOMAIN, TERMSRV_PASSWORD or TERMSRV_NTHASH, "
      .. "TERMSRV_CREDENTIALS=FILE, or --credentials FILE; otherwise asked on the terminal. "
      .. "Secrets are never taken from the command line.\n"
      .. "Exit codes: 0 all ok, 1 some hosts or sessions failed, 2 all failed, 64 usage "
      .. "(check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).\n"
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
  c:flag("--client", "Add client name, address and time zone (one more call per session).")
  c:flag("--slots", "Say how many of each host's slots are used, of the limit the host itself says "
    .. "(its RDP listener's MaxInstanceCount: one more call per host).")
  c:flag("--no-times", "Skip per-session times in JSON/CSV (one RPC call per host; the table never "
    .. "needs them).")
  c:flag("--drivers", "Fill the TYPE and DEVICE columns: each session's winstation driver (rdpwd, "
    .. "wdcon) and transport device (two more calls per session, on the legacy pipe).")
  c:flag("--counter", "Show the hosts' Terminal Services counters instead, like qwinsta /counter: "
    .. "sessions created, disconnected, reconnected since boot, logons, and sessions now (one call "
    .. "per host).")
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
  c:flag("--client", "Add CLIENT, ADDRESS and TIME ZONE columns (one more call per session).")
  c:flag("--locked", "Add a LOCKED column: is the desktop locked (one more call per session).")
  c:flag("--disconnected", "Add a DISC FOR column: how long each session has been disconnected.")
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
      :convert(box_seconds),
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
  c:option("--policy-limit", "A limit of the policy sandbox, for loading the policy and for each host's "
    .. "plan: memory=SIZE (64M), instructions=N (20000000), time=DURATION (2s), file-size=SIZE (1M), "
    .. "pattern=N (1e7)."):argname("NAME=VALUE"):count("*")
  add_apply(c, true)
  c:flag("--no-wait", "Do not verify that each action took effect.")
  add_common(c)

  c = p:command("free-slots", "Free N session slots per host, stalest sessions first: "
    .. "for 'the number of connections to this computer is limited'. A dry run unless --apply.")
  c:argument("count", "How many slots to free per host."):convert(posint):argname("N")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:option("--action", "How to free a slot (disconnecting does not free one).", "logoff")
    :choices{ "logoff", "reset" }
  c:flag("--include-active", "Also consider sessions that are not disconnected (a user may be working "
    .. "in them); by default only disconnected sessions are candidates.")
  c:flag("--include-service-accounts", "Also consider service and machine accounts (svc_*, svc-*, *$), "
    .. "which are never candidates by default.")
  c:option("--min-idle", "Consider only sessions idle (or disconnected) at least this long.")
    :argname("DURATION")
  c:option("--exclude-user", "Never these users (glob)."):argname("GLOB"):count("*")
  c:flag("--slots", "Also say how many of each host's slots were in use before, of the limit the host "
    .. "itself says (its RDP listener's MaxInstanceCount: two more calls per host).")
  add_apply(c, true)
  c:flag("--no-wait", "Do not verify that each action took effect.")
  add_common(c)

  c = p:command("audit", "Show the audit log; --pending: only the actions attempted without a recorded "
    .. "outcome (after a crash or kill -9: check those by hand). Exit 1 when some are pending.")
  c:flag("--pending", "Only attempts without an outcome.")
  c:option("--audit", "The audit log (default $TERMSRV_AUDIT, else "
    .. "${XDG_STATE_HOME:-~/.local/state}/termsrv/audit.jsonl)."):argname("FILE")
  c:option("--format", "Output: table or json (JSON Lines).", "table"):choices{ "table", "json" }

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

  c = p:command("check", "Monitoring plugin (Nagios, Icinga, Checkmk): sessions in use, disconnected, "
    .. "stale, and slots left, against thresholds. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    :epilog("RANGE is a monitoring-plugins threshold range: N alerts above N (or below 0), N: below N, "
      .. "~:N above N, N:M outside N..M, @N:M inside N..M. A host that cannot be reached or logged on "
      .. "to, or that times out (--host-timeout, default 30 s here), is UNKNOWN unless --error-state "
      .. "critical. Several hosts: a summary line, then one line per host; the worst state wins "
      .. "(OK < UNKNOWN < WARNING < CRITICAL). Usage errors exit 3 (UNKNOWN).")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:group("Thresholds",
    c:option("--warning-in-use", "Sessions with a user (active, disconnected, any state): warning range.")
      :argname("RANGE"):convert(range),
    c:option("--critical-in-use", "... critical range."):argname("RANGE"):convert(range),
    c:option("--warning-disconnected", "Disconnected sessions: warning range.")
      :argname("RANGE"):convert(range),
    c:option("--critical-disconnected", "... critical range."):argname("RANGE"):convert(range),
    c:option("--warning-stale", "Stale sessions (see --stale): warning range.")
      :argname("RANGE"):convert(range),
    c:option("--critical-stale", "... critical range."):argname("RANGE"):convert(range),
    c:option("--warning-slots-left", "Slots left of the limit (e.g. 2: warns below 2): warning range.")
      :argname("RANGE"):convert(range),
    c:option("--critical-slots-left", "... critical range."):argname("RANGE"):convert(range))
  c:group("Counting",
    c:option("--stale", "Disconnected at least this long is stale (default 8h).", "8h")
      :argname("DURATION"):convert(duration_opt),
    c:option("--slots", "The host's connection limit. Without it the host is asked (its RDP "
      .. "listener's MaxInstanceCount, one more call); where it does not say, slots left are unknown: "
      .. "termsrv does not guess.")
      :argname("N"):convert(slots),
    c:option("--error-state", "State of a host that cannot be asked (unreachable, logon refused, "
      .. "timeout): unknown (default) or critical.", "unknown"):choices{ "unknown", "critical" })
  add_common(c, true)

  c = p:command("metrics", "Prometheus metrics (text exposition format) of sessions by host and state, "
    .. "stale sessions, ages, slots, up and scrape duration.")
    :epilog("With --output FILE the metrics are written to a temporary file in FILE's directory and "
      .. "renamed over FILE (node_exporter's textfile collector never reads half a file). "
      .. "Exit 0 all hosts up, 1 some down, 2 all down or the file could not be written; "
      .. "down hosts are in the output as termsrv_up 0.")
  c:argument("target", HOSTS_HELP):args("*"):argname("HOST")
  c:option("--stale", "Disconnected at least this long is stale (default 8h).", "8h")
    :argname("DURATION"):convert(duration_opt)
  c:option("--slots", "The hosts' connection limit, exported as termsrv_slots_limit; without it each "
    .. "host's own (its RDP listener's MaxInstanceCount), absent where the host does not say or has none.")
    :argname("N"):convert(slots)
  c:option("-o --output", "Write to FILE atomically (temp file + rename) instead of standard output.")
    :argname("FILE")
  add_common(c, true)

  c = p:command("connect", "Connect session SOURCE to the station of session TARGET, like tscon.")
  c:argument("target", "HOST SOURCE TARGET"):args(3):argname{ "HOST", "SOURCE", "TARGET" }
  c:flag("--ask-password", "Ask for the password of SOURCE's user (needed unless you are that user).")
  c:flag("--no-wait", "Do not verify the new state.")
  c:option("--audit", "Audit log (see reset --help)."):argname("FILE")
  c:flag("--no-audit", "Do not write an audit log.")
  add_common(c)
  return p
end

local HelpRequest = {}

--- Parses `argv` (without the program name) with a parser from `build_parser`.
-- `-h` wins over everything else on its command line, missing arguments too.
-- @treturn[1] table the arguments
-- @treturn[2] nil
-- @treturn[2] table `{help = parser}` (the command whose help was asked
--   for), `{parser =, msg =}` (a usage error), or `{msg =}` (anything else
--   the parser raised)
function M.parse(parser, argv)
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
    -- argparse reads "-1" as an option: say what is wrong with the number
    local neg = type(msg) == "string" and msg:match("^unknown option '(%-%.?%d[^']*)'")
    if neg then
      msg = "'" .. neg .. "': negative numbers are not accepted (session ids and pids are plain decimal "
        .. "0..4294967295; timeouts are positive)"
    end
    perr = { parser = p, msg = msg }
    error(perr, 0)
  end)
  if help_for then return nil, { help = help_for } end
  if perr then return nil, perr end
  if not ok then return nil, { msg = tostring(args) } end
  return args
end

--- The usage text of `command` (of the whole program when nil or unknown).
function M.usage(parser, command)
  local sub
  for _, c in ipairs(parser._commands) do if c._name == command then sub = c end end
  return (sub or parser):get_usage()
end

return M
