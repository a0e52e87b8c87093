--- `termsrv clean` (a policy file) and `termsrv free-slots`: dry runs
-- unless --apply.
-- @module termsrv.cli.commands.policies

local audit = require "termsrv.cli.audit"
local listings = require "termsrv.cli.commands.listings"
local output = require "termsrv.cli.output"
local plans = require "termsrv.cli.plans"
local policy = require "termsrv.policy"
local util = require "termsrv.cli.util"

local M = {}

local SIZE_UNITS = { [""] = 1, k = 1024, m = 1024 * 1024, g = 1024 * 1024 * 1024 }

local function size(v)
  local num, unit = v:lower():match("^(%d+)([kmg]?)i?b?$")
  return num and math.tointeger(tonumber(num) * SIZE_UNITS[unit]) or nil
end

local function count(v)
  local n = tonumber(v)
  return n and n >= 1 and n < 2^53 and n == math.floor(n) and math.tointeger(n) or nil
end

local LIMITS = {
  memory = { "memory", size, "a size such as 64M or 512K" },
  instructions = { "instructions", count, "a positive integer such as 50000000 or 5e7" },
  time = { "time", function(v)
    local d = tonumber(v) or util.duration(v) -- seconds, fractions too, or a duration
    return d and d > 0 and d < math.huge and d or nil
  end, "seconds or a duration such as 5s or 1m" },
  ["file-size"] = { "file_size", size, "a size such as 1M" },
  pattern = { "pattern", function(v) local n = tonumber(v) return n and n >= 1 and n < math.huge and n end,
              "a number such as 1e8" },
}

--- The policy sandbox's limits from --policy-limit NAME=VALUE options (nil: the defaults).
function M.policy_limits(list)
  list = util.list(list)
  if #list == 0 then return nil end
  local limits = {}
  for _, item in ipairs(list) do
    local name, value = item:match("^([%w_-]+)=(.+)$")
    local spec = name and LIMITS[name:gsub("_", "-")] or nil
    if not spec then
      util.usage_error("--policy-limit: NAME=VALUE expected, NAME one of memory, instructions, time, "
        .. "file-size, pattern (got '" .. item .. "')")
    end
    local v = spec[2](value)
    if not v then util.usage_error("--policy-limit " .. name .. ": " .. spec[3] .. " expected, got '" .. value
      .. "'") end
    limits[spec[1]] = v
  end
  return limits
end

function M.clean(ctx, args)
  if not args.policy then util.usage_error("--policy FILE is required") end
  local apply = util.apply_wanted(args)
  local pol, err = policy.load(args.policy, { limits = M.policy_limits(args.policy_limit) })
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
  local slots
  if args.slots then
    listings.slot_status(ctx)
    slots = function(h) return (listings.host_slots(h)) end
  end
  local results = plans.run_policy(ctx, p, { apply = apply, audit = path, wait = not args.no_wait,
                                             slots = slots })
  local code = plans.finish_policy(ctx, results, p.name, p.free_slots, apply)
  if args.slots and ctx.format == "table" then listings.slot_lines(ctx, results, "before") end
  return code
end

return M
