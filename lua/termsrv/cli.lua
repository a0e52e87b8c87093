--- The `termsrv` command line: `cli.main(argv, env[, io]) -> exit code`.
--
-- bin/termsrv is a thin launcher around this module; everything is here
-- (and in termsrv.cli.*) so that the command line can be tested in-process
-- as well as through the executable. `main` never calls `os.exit`.
--
-- Exit codes: 0 everything worked, 1 some hosts or sessions failed, 2 all
-- failed (or nothing could start: no credentials, audit log unusable), 64
-- usage error. A host counts as failed when it could not be reached or
-- listed, or when every action on it failed; as partly failed when some
-- actions (or some per-session reads) failed. `check` is a monitoring
-- plugin instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage errors too).
--
-- Output: tables, JSON Lines or CSV on stdout (`--format`); per-host errors
-- and other diagnostics on stderr, one line each; summaries of actions
-- last (stdout for tables, stderr for JSON and CSV so that stdout stays data).
--
-- The parts: termsrv.cli.options (the grammar), .hosts (host specs, running
-- on every host), .output (formats, exit codes), .audit, .plans (policies
-- across hosts), .util, and one module per group of commands in
-- termsrv.cli.commands.
-- @module termsrv.cli

local credentials = require "termsrv.credentials"
local hosts = require "termsrv.cli.hosts"
local options = require "termsrv.cli.options"
local output = require "termsrv.cli.output"
local util = require "termsrv.cli.util"

local listings = require "termsrv.cli.commands.listings"
local sessions = require "termsrv.cli.commands.sessions"
local processes = require "termsrv.cli.commands.processes"
local policies = require "termsrv.cli.commands.policies"
local audit = require "termsrv.cli.audit"
local doctor = require "termsrv.cli.commands.doctor"
local shutdown = require "termsrv.cli.commands.shutdown"
local monitor = require "termsrv.cli.commands.monitor"

local M = {}

M.EXIT_OK, M.EXIT_PARTIAL, M.EXIT_FAILED, M.EXIT_USAGE =
  output.EXIT_OK, output.EXIT_PARTIAL, output.EXIT_FAILED, output.EXIT_USAGE

--- Where runs that apply log by default:
-- when neither `--audit` nor `TERMSRV_AUDIT` says.
M.DEFAULT_AUDIT = "$XDG_STATE_HOME/termsrv/audit.jsonl (~/.local/state/termsrv/audit.jsonl)"

M.run_hosts = hosts.run_hosts
M.build_parser = options.build_parser

-- Every command is `fn(ctx, args) -> exit code`. ctx: `stdout`, `stderr`,
-- `stdin`, `getenv`, `prompt`, `fleet` (from `main`'s arguments); `format`,
-- `hosts`, `numbers` (ids or pids after the hosts), `jobs`, `host_timeout`,
-- `creds`, `connect` (termsrv.connect options) from `setup`.
local COMMANDS = {
  sessions = listings.sessions,
  users = listings.users,
  reset = sessions.reset,
  logoff = sessions.logoff,
  disconnect = sessions.disconnect,
  message = sessions.message,
  connect = sessions.connect,
  processes = processes.processes,
  kill = processes.kill,
  clean = policies.clean,
  ["free-slots"] = policies.free_slots,
  doctor = doctor.doctor,
  shutdown = shutdown.shutdown,
  check = monitor.check,
  metrics = monitor.metrics,
}

-- Monitoring plugins: whatever keeps them from checking (usage, no
-- credentials, an internal error) is UNKNOWN, exit 3, with a status line
-- on stdout (what Nagios shows), never exit 64 or 2.
local PLUGINS = { check = true }

-- Commands that take numbers (session ids, pids) after the hosts.
local TAKES_NUMBERS = { reset = true, logoff = true, disconnect = true, message = true, kill = true,
                        connect = true }

local function setup(ctx, args, numbers_allowed)
  ctx.format = args.format or "table"
  ctx.hosts, ctx.numbers = hosts.targets(ctx, args, numbers_allowed)
  ctx.jobs = args.jobs or 1
  ctx.host_timeout = args.host_timeout
  local prompt = ctx.prompt
  if args.no_prompt then prompt = false end
  local creds, err = credentials.resolve{ account = args.account, domain = args.account_domain,
    file = args.credentials, kerberos = args.kerberos, getenv = ctx.getenv, prompt = prompt }
  if not creds then return nil, err end
  -- the secret is in this process (and in every worker it forks) from now on
  if creds.password or creds.nthash then require("termsrv.proc").protect() end
  ctx.creds = creds
  local kerberos = creds.kerberos or nil
  if kerberos and (args.keytab or args.principal or args.spn) then
    if args.keytab and not args.principal then
      util.usage_error("--keytab needs --principal")
    end
    kerberos = { keytab = args.keytab, principal = args.principal, spn = args.spn }
  elseif args.keytab or args.principal or args.spn then
    util.usage_error("--keytab, --principal and --spn go with -k")
  end
  ctx.connect = { user = creds.user, domain = creds.domain, password = creds.password,
    nthash = creds.nthash, kerberos = kerberos, timeout = args.timeout,
    connect_timeout = args.connect_timeout, rpc_auth = args.rpc_auth }
  return true
end

local function getenv_of(env)
  if env == nil then return os.getenv end
  if type(env) == "function" then return env end
  return function(k) return env[k] end
end

--- Runs the command line.
-- @tparam {string,...} argv the arguments (without the program name)
-- @tparam[opt] table env environment variables (name -> value; default the process environment)
-- @tparam[opt] table streams `stdout`, `stderr`, `stdin` (objects with `write`/`read`), and
--   `prompt` (function(label, echo) -> answer, or false: never ask; default asks on the terminal)
-- @treturn integer exit code
function M.main(argv, env, streams)
  streams = streams or {}
  local ctx = { stdout = streams.stdout or io.stdout, stderr = streams.stderr or io.stderr,
                stdin = streams.stdin or io.stdin, getenv = getenv_of(env) }
  if streams.prompt ~= nil then ctx.prompt = streams.prompt end
  local parser = options.build_parser()
  local args, stop = options.parse(parser, argv)
  if stop then
    if stop.help then
      ctx.stdout:write(stop.help:get_help(), "\n")
      return M.EXIT_OK
    end
    if stop.parser and PLUGINS[stop.parser._name] then
      ctx.stderr:write(stop.parser:get_usage(), "\n")
      return monitor.unknown(ctx, "usage: " .. tostring(stop.msg))
    elseif stop.parser then
      ctx.stderr:write(stop.parser:get_usage(), "\n\ntermsrv: ", stop.msg, "\n")
    else
      ctx.stderr:write("termsrv: ", stop.msg, "\n")
    end
    return M.EXIT_USAGE
  end
  if args.version then
    local v = "?"
    local okv, core = pcall(require, "termsrv.core")
    if okv and type(core) == "table" then v = tostring(core.version) end
    ctx.stdout:write("termsrv ", v, "\n")
    return M.EXIT_OK
  end
  local cmd = args.command
  if not cmd then
    ctx.stderr:write(parser:get_usage(), "\n\ntermsrv: a command is required\n")
    return M.EXIT_USAGE
  end
  local okr, code = xpcall(function()
    if cmd == "audit" then -- reads a local file: no hosts, no credentials
      ctx.format = args.format or "table"
      return audit.command(ctx, args)
    end
    local good, err = setup(ctx, args, TAKES_NUMBERS[cmd] or false)
    if not good then
      if PLUGINS[cmd] then return monitor.unknown(ctx, err) end
      output.diag(ctx, "termsrv: " .. tostring(err))
      return M.EXIT_FAILED
    end
    return COMMANDS[cmd](ctx, args)
  end, function(e)
    if util.is_usage_error(e) then return e end
    return { internal = tostring(e), trace = debug.traceback("", 2) }
  end)
  if okr then return code end
  if PLUGINS[cmd] then
    if not util.is_usage_error(code) and ctx.getenv("TERMSRV_DEBUG") then
      ctx.stderr:write(code.trace, "\n")
    end
    return monitor.unknown(ctx, util.is_usage_error(code) and "usage: " .. code.msg
      or code.internal:find("interrupted!", 1, true) and "interrupted"
      or "internal error: " .. code.internal)
  end
  if util.is_usage_error(code) then
    ctx.stderr:write(options.usage(parser, cmd), "\n\ntermsrv: ", code.msg, "\n")
    return M.EXIT_USAGE
  end
  if code.internal:find("interrupted!", 1, true) then
    -- Ctrl-C while nothing was acting (listing, planning): nothing to undo
    ctx.stderr:write("termsrv: interrupted; no action was running\n")
    return 130
  end
  ctx.stderr:write("termsrv: internal error: ", code.internal, "\n")
  if ctx.getenv("TERMSRV_DEBUG") then ctx.stderr:write(code.trace, "\n") end
  return M.EXIT_FAILED
end

return M
