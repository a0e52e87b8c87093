--- Cleanup plans across hosts: each host plans (and with --apply acts) in
-- its own worker, and the parent merges the plans as plain data, so that
-- they cross process boundaries.
-- @module termsrv.cli.plans

local audit = require "termsrv.cli.audit"
local hosts = require "termsrv.cli.hosts"
local output = require "termsrv.cli.output"
local plan = require "termsrv.plan"
local report = require "termsrv.report"
local util = require "termsrv.cli.util"

local M = {}

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
  local hs = {}
  for i, h in ipairs(p.hosts) do hs[i] = util.copy(h) end
  return { steps = steps, skipped = p.skipped, errors = p.errors, hosts = hs,
           policy_name = p.policy_name, free_slots = p.free_slots }
end

--- One plan (for report.plan) from the `value.plan` of every host's result.
function M.merge(results, name, free)
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

--- The plan as a table, pointing at --apply rather than plan:apply().
function M.text(p)
  local text = report.plan(p)
  return (text:gsub("%(plan:apply%(%) acts%)", "(--apply acts)"))
end

-- Handle wrapper passing command-line options to the actions a plan calls.
local function tuned(h, extra)
  local w = { name = h.name, user = h.user, domain = h.domain }
  local function with(o)
    o = o and util.copy(o) or {}
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

--- Runs a policy on every host: plans, and with `o.apply` acts and audits.
-- @tparam table o `apply`, `audit` (path), `wait`, `extra` (options for every action)
function M.run_policy(ctx, pol, o)
  return hosts.run_hosts(ctx, function(h, _)
    local target = tuned(h, o.extra or {})
    local p, perr = plan.make({ target }, pol)
    if not p then return { err = perr } end
    local v = { plan = plan_data(p) }
    if #p.errors > 0 then v.err = p.errors[1].err end
    if o.apply and #p.steps > 0 then
      local log, aerr = audit.open(o.audit)
      if o.audit and not log then v.err = aerr; return v end
      local res = p:apply{ audit = log, wait = o.wait }
      if log then log:close() end
      local rows = {}
      for i, r in ipairs(res) do rows[i] = output.result_row(r) end
      v.results = rows
    end
    return v
  end)
end

--- Shows what `run_policy` did: the merged plan of a dry run, or the
-- results of the actions; returns the exit code.
function M.finish_policy(ctx, results, name, free, apply)
  if apply then return output.finish_rows(ctx, results, "nothing to do\n") end
  local p = M.merge(results, name, free)
  output.report_host_errors(ctx, results)
  local outcomes = {}
  for i, r in ipairs(results) do outcomes[i] = output.host_err(r) and "failed" or "ok" end
  p.errors = {}
  if ctx.format == "table" then output.out(ctx, M.text(p))
  else
    output.emit(ctx, p)
    output.diag(ctx, string.format("dry run: %d action%s planned on %d host%s; --apply acts", #p.steps,
      #p.steps == 1 and "" or "s", #results, #results == 1 and "" or "s"))
  end
  return output.exit_of(outcomes)
end

return M
