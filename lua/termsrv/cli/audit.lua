--- The audit log of command-line runs that act.
-- @module termsrv.cli.audit

local audit = require "termsrv.audit"
local hosts = require "termsrv.cli.hosts"
local output = require "termsrv.cli.output"
local util = require "termsrv.cli.util"

local M = {}

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

-- Checks that the audit log can be written before anything is done;
-- workers open it again themselves (one append per line, O_APPEND).
local function check(ctx, args)
  local path, err = audit_path(ctx, args)
  if err then return nil, err end
  if not path then return false end
  local log, aerr = audit.open(path)
  if not log then return nil, tostring(aerr) end
  log:close()
  return path
end

--- The audit log of a run, checked in the parent: its path, or false when
-- there is none to write (`--no-audit`, or `acts` false: the run only
-- plans); nil when it cannot be written, after saying why on stderr.
function M.prepare(ctx, args, acts)
  if not acts then return false end
  local path, err = check(ctx, args)
  if path == nil then output.diag(ctx, "termsrv: audit log: " .. err) end
  return path
end

--- Opens the log prepared by `prepare` (nil when there is none).
function M.open(path)
  if not path then return nil end
  return audit.open(path)
end

--- The audit entry of a result row of `termsrv CMD` on host handle `h`.
function M.entry(h, r, cmd, rule)
  return { account = util.account_text(h.user, h.domain), host = h.name,
    session = { id = r.id, user = r.user, domain = r.domain, logon_time = r.logon_time },
    policy = "termsrv " .. cmd, rule = rule, action = r.action, before = r.before, after = r.after,
    ok = r.ok, err = r.err, duration = r.duration }
end

--- Runs `act(h) -> result row, audit entry` once on every host, with one
-- audit line per host, and shows the rows and the summary; returns the exit
-- code. For the commands that act on a host once: connect, shutdown.
function M.act_once(ctx, args, act)
  local path = M.prepare(ctx, args, true)
  if path == nil then return output.EXIT_FAILED end
  local results = hosts.run_hosts(ctx, function(h)
    local log, aerr = M.open(path)
    if path and not log then return { err = aerr } end
    local row, entry = act(h)
    if log then
      log:write(entry)
      log:close()
    end
    return { results = { row } }
  end)
  return output.finish_rows(ctx, results)
end

return M
