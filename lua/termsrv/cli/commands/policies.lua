--- `termsrv clean` (a policy file) and `termsrv free-slots`: dry runs
-- unless --apply.
-- @module termsrv.cli.commands.policies

local audit = require "termsrv.cli.audit"
local output = require "termsrv.cli.output"
local plans = require "termsrv.cli.plans"
local policy = require "termsrv.policy"
local util = require "termsrv.cli.util"

local M = {}

function M.clean(ctx, args)
  if not args.policy then util.usage_error("--policy FILE is required") end
  local apply = util.apply_wanted(args)
  local pol, err = policy.load(args.policy)
  if not pol then
    output.diag(ctx, "termsrv: " .. tostring(err))
    return output.EXIT_USAGE
  end
  local path = audit.prepare(ctx, args, apply)
  if path == nil then return output.EXIT_FAILED end
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
  local results = plans.run_policy(ctx, pol, { apply = apply, audit = path,
                                               wait = (not args.no_wait) and pol.wait or false })
  return plans.finish_policy(ctx, results, pol.name, pol.free_slots, apply)
end

--- Account names free-slots never picks without --include-service-accounts.
M.SERVICE_ACCOUNTS = { "svc_*", "svc-*", "*$" }

function M.free_slots(ctx, args)
  local apply = util.apply_wanted(args)
  -- Safe by default: a disconnected session is one nobody is using; an
  -- active one, or a service account's, is picked only when asked for.
  local sel = {}
  if not args.include_active then sel.state = "disconnected" end
  if args.min_idle then
    local d, err = util.duration(args.min_idle)
    if not d then util.usage_error("--min-idle: " .. err) end
    sel.min_idle = d
  end
  local pol = {
    name = "free-slots", free_slots = args.count,
    rules = { { name = "free_slots", select = sel, action = args.action } },
  }
  local never = util.copy(args.exclude_user or {})
  if not args.include_service_accounts then
    for _, g in ipairs(M.SERVICE_ACCOUNTS) do never[#never + 1] = g end
  end
  if #never > 0 then pol.exclude = { user = never } end
  local ok, p = pcall(policy.new, pol)
  if not ok then util.usage_error(tostring(p)) end
  local path = audit.prepare(ctx, args, apply)
  if path == nil then return output.EXIT_FAILED end
  local results = plans.run_policy(ctx, p, { apply = apply, audit = path, wait = not args.no_wait })
  return plans.finish_policy(ctx, results, p.name, p.free_slots, apply)
end

return M
