--- `termsrv shutdown` (shutdown /m): every session on the hosts ends.
-- @module termsrv.cli.commands.shutdown

local audit = require "termsrv.cli.audit"
local output = require "termsrv.cli.output"
local util = require "termsrv.cli.util"

local M = {}

function M.shutdown(ctx, args)
  local what = args.reboot and "reboot" or args.poweroff and "poweroff" or args.logoff and "logoff"
    or "shutdown"
  if not args.yes then
    util.usage_error(what .. " ends every session on " .. #ctx.hosts .. " host"
      .. (#ctx.hosts == 1 and "" or "s") .. "; add --yes to confirm")
  end
  return audit.act_once(ctx, args, function(h)
    local r, e, res = h:shutdown{ confirm = true, reboot = args.reboot, poweroff = args.poweroff,
                                  logoff = args.logoff }
    r = r or res or { host = h.name, action = what, ok = false, err = e }
    local row = output.result_row(r)
    local entry = audit.entry(h, row, "shutdown", what)
    entry.session = nil
    return row, entry
  end)
end

return M
