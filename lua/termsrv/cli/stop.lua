--- Stop means stop: SIGINT and SIGTERM during a run that acts.
--
-- While a run acts, both signals are trapped (termsrv.proc): the handler
-- only notes the signal, so that no `pcall` can swallow it and no action is
-- cut in half. The executor asks `caught()` before every action and starts
-- none after a signal; the fleet starts no worker and passes SIGTERM on to
-- the live ones, which finish their in-flight action, audit it and report.
-- The run then exits 128 + the signal (130 for Ctrl-C, 143 for SIGTERM).
-- @module termsrv.cli.stop

local proc = require "termsrv.proc"

local M = {}

--- Traps SIGINT and SIGTERM; with `ctx`, the run's `ctx.stop` asks for them.
function M.begin(ctx)
  proc.trap()
  if ctx then ctx.stop = M.caught end
  return true
end

--- The signal caught since `begin`, or nil.
function M.caught() return proc.caught() end

--- Ends the trap of `begin`; a signal caught is left in `ctx.stopped`.
function M.finish(ctx)
  local sig = proc.caught()
  proc.untrap()
  ctx.stop = nil
  if sig then ctx.stopped = sig end
end

--- The name of a signal number ("SIGINT").
function M.name(sig)
  for k, n in pairs(proc.signals) do if n == sig then return "SIG" .. k end end
  return "signal " .. tostring(sig)
end

return M
