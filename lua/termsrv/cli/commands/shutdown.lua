--- `termsrv shutdown` (shutdown /m): every session on the hosts ends.
-- @module termsrv.cli.commands.shutdown

local audit = require "termsrv.cli.audit"
local output = require "termsrv.cli.output"
local plans = require "termsrv.cli.plans"
local util = require "termsrv.cli.util"

local M = {}

function M.shutdown(ctx, args)
  local what = args.reboot and "reboot" or args.poweroff and "poweroff" or args.logoff and "logoff"
    or "shutdown"
  if not args.yes then
    util.usage_error(what .. " ends every session on " .. #ctx.hosts .. " host"
      .. (#ctx.hosts == 1 and "" or "s") .. "; add --yes to confirm")
  end
  local path = audit.prepare(ctx, args, true)
  if path == nil then return output.EXIT_FAILED end
  output.stream_rows(ctx)
  local results = plans.run_actions(ctx, path, function(h, runner)
    return { runner:act(plans.entry(h, "shutdown", what, what), function()
      return h:shutdown{ confirm = true, reboot = args.reboot, poweroff = args.poweroff,
                         logoff = args.logoff }
    end) }
  end)
  return output.finish_rows(ctx, results)
end

return M
