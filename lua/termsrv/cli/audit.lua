--- The audit log of command-line runs that act.
-- @module termsrv.cli.audit

local audit = require "termsrv.audit"
local output = require "termsrv.cli.output"

local M = {}

-- mkdir -p with mode 0700 for every directory it creates (the state
-- directory holds who acted on which sessions)
local function mkdir_private(dir)
  local proc = require "termsrv.proc"
  local path = dir:sub(1, 1) == "/" and "" or "."
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    if not proc.mkdir(path, tonumber("700", 8)) then return end
  end
end

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
  mkdir_private(dir)
  return dir .. "/audit.jsonl"
end

--- The audit log of a run, checked in the parent (workers open it again
-- themselves: one append per line, O_APPEND): its path, or false when there
-- is none to write (`--no-audit`, or `acts` false: the run only plans); nil
-- when it cannot be written, after saying why on stderr.
function M.prepare(ctx, args, acts)
  if not acts then return false end
  local path, err = audit_path(ctx, args)
  if path then
    local log
    log, err = audit.open(path)
    if log then log:close() return path end
  elseif not err then
    return false
  end
  output.diag(ctx, "termsrv: audit log: " .. tostring(err))
  return nil
end

--- Opens the log prepared by `prepare` (nil when there is none).
function M.open(path)
  if not path then return nil end
  return audit.open(path)
end

--- The `termsrv audit` command: the log's lines as a table.
-- `termsrv audit [--pending] [--audit FILE]`; with --pending only the
-- actions to check by hand: attempts without an outcome (after a crash, a
-- kill -9) and outcomes of unknown state. Exit 0 when none is pending, 1
-- when some are.
function M.command(ctx, args)
  local path, err = audit_path(ctx, args)
  if not path then
    output.diag(ctx, "termsrv: audit: " .. tostring(err or "--no-audit: no log to read"))
    return output.EXIT_USAGE
  end
  local f, ferr = io.open(path, "r")
  if not f then
    output.diag(ctx, "termsrv: audit: " .. tostring(ferr))
    return output.EXIT_FAILED
  end
  local text = f:read("a")
  f:close()
  local pending, bad, all = audit.pending(text)
  local rows = args.pending and pending or all
  if ctx.format == "table" then
    local cells = {}
    for _, e in ipairs(rows) do
      local s = type(e.session) == "table" and e.session or {}
      cells[#cells + 1] = { tostring(e.time or ""), tostring(e.host or ""), s.id and tostring(s.id) or "",
        s.user and ((s.domain and s.domain ~= "" and (s.domain .. "\\") or "") .. s.user) or "",
        tostring(e.action or ""), tostring(e.phase or ""),
        e.ok == true and "ok" or e.ok == false and "failed" or (e.phase == "attempt" and "?" or "unknown"),
        tostring(e.error or "") }
    end
    if #cells > 0 then
      output.out(ctx, require("termsrv.report").text_table({ "TIME", "HOST", "ID", "USER", "ACTION", "PHASE",
        "OK", "ERROR" }, cells, { right = { [3] = true } }))
    end
  else
    for _, e in ipairs(rows) do output.out(ctx, require("termsrv.json").encode(e) .. "\n") end
  end
  if bad > 0 then output.diag(ctx, string.format("termsrv: audit: %d unreadable line%s in %s", bad,
    bad == 1 and "" or "s", path)) end
  if #pending > 0 then
    output.diag(ctx, string.format("termsrv: %d action%s attempted without a recorded outcome "
      .. "or of unknown outcome: check %s by hand", #pending, #pending == 1 and "" or "s",
      #pending == 1 and "it" or "them"))
    return output.EXIT_PARTIAL
  end
  return output.EXIT_OK
end

return M
