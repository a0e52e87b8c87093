--- Cleanup plans across hosts: each host plans (and, told to apply, acts) in
-- its own worker, and the parent merges the plans as plain data, so that
-- they cross process boundaries.
-- @module termsrv.cli.plans

local audit = require "termsrv.cli.audit"
local errors = require "termsrv.error"
local fleet = require "termsrv.fleet"
local hosts = require "termsrv.cli.hosts"
local output = require "termsrv.cli.output"
local plan = require "termsrv.plan"
local record = require "termsrv.record"
local report = require "termsrv.report"
local stop = require "termsrv.cli.stop"
local util = require "termsrv.cli.util"

local M = {}

local PlanMT = { __name = "termsrv.plan", __len = function(p) return #p.steps end }

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

-- One plan (for report.plan) from the `value.plan` of every host's result.
local function merge(results, name, free)
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

-- Ids asked for that the plan neither acts on nor skips: asked about one
-- by one, so that the error is the host's own (no such session, or one
-- this account may not see: access denied).
local function missing_ids(h, p, ids)
  local seen, errs = {}, {}
  for _, l in ipairs{ p.steps, p.skipped } do for _, st in ipairs(l) do seen[st.id] = true end end
  for _, id in ipairs(ids) do
    if not seen[id] then
      local s, err = h:session(id)
      if s then
        err = errors.new{ code = "session_changed", host = h.name, op = "session " .. id,
          message = "session " .. id .. " was not listed, and now is: nothing done",
          hint = "run the command again" }
      end
      errs[#errs + 1] = { id = id, err = err }
    end
  end
  return errs
end

--- Runs a policy on every host: plans, and with `o.apply` acts and audits
-- (write-ahead: an attempt line before each action, its outcome after).
-- A SIGINT or SIGTERM stops the run: no action starts after it, the one in
-- flight finishes and is audited; `ctx.stopped` then holds the signal.
-- @tparam table ctx the command's context (hosts, output, credentials)
-- @tparam table pol the policy (termsrv.policy)
-- @tparam table o `apply`, `audit` (path), `wait`, `extra` (options for every action),
--   `slots` (a function(h) -> a host's slots, read before planning: kept in `value.slots`),
--   `ids` (the session ids given on the command line: listed with services and listeners,
--   and reported when absent)
function M.run_policy(ctx, pol, o)
  local trapped = o.apply and stop.begin(ctx)
  if o.apply then output.stream_rows(ctx) else
    output.stream(ctx, report.STEP_FIELDS, "step",
      function(r) return r.ok and r.value and r.value.plan and r.value.plan.steps or {} end,
      function(r) output.report_host_errors(ctx, { r }) end)
  end
  local results = hosts.run_hosts(ctx, function(h)
    local stopped = o.apply and fleet.trap() -- the worker's own trap (and the host's deadline)
    -- the host's slots before anything is done (free-slots --slots)
    local slots = o.slots and o.slots(h) or nil
    local p, perr = plan.make({ h }, pol, { all = o.ids ~= nil or nil })
    if not p then return { err = perr } end
    local v = { plan = plan_data(p), slots = slots, err = p.errors[1] and p.errors[1].err }
    local missing = o.ids and missing_ids(h, p, o.ids) or {}
    -- named ids are judged one by one: what else the account sees does not matter
    if o.ids then for _, hi in ipairs(v.plan.hosts) do hi.partial = nil end end
    for _, m in ipairs(missing) do v.plan.errors[#v.plan.errors + 1] = { host = h.name, err = m.err } end
    if not o.apply then
      if #missing > 0 then v.err, v.partial = v.err or missing[1].err, #p.steps > 0 end
      return v
    end
    v.results = {}
    if #p.steps > 0 then
      local log, aerr = audit.open(o.audit)
      if o.audit and not log then v.err = aerr; return v end
      -- each finished session goes to the parent at once: a worker ended at
      -- its deadline or by a stop still reports what it did
      local res = p:apply{ audit = log, wait = o.wait, stop = stopped, progress = fleet.note,
                           action_opts = o.extra }
      if log then log:close() end
      table.move(res, 1, #res, 1, v.results)
      v.stopped, v.audit_error = res.stopped, res.audit_error
    end
    for _, m in ipairs(missing) do
      v.results[#v.results + 1] = { host = h.name, id = m.id, action = pol.rules[1].action, status = "failed",
                                    ok = false, err = m.err }
    end
    return v
  end)
  if trapped then stop.finish(ctx, results) end
  return results
end

--- Runs `act(h, runner) -> rows | nil, err` on every host for the actions that are not
-- session rules (kill, connect, shutdown): the same runner as a plan's, so
-- the same write-ahead audit and the same stop; returns the host results.
function M.run_actions(ctx, path, act)
  local trapped = stop.begin(ctx)
  local results = hosts.run_hosts(ctx, function(h)
    local stopped = fleet.trap()
    local log, aerr = audit.open(path)
    if path and not log then return { err = aerr } end
    local runner = plan.runner{ audit = log, stop = stopped }
    local rows, err = act(h, runner, fleet.note)
    if log then log:close() end
    if not rows then return { err = err } end
    return { results = rows, stopped = runner.stopped, audit_error = runner.audit_error }
  end)
  if trapped then stop.finish(ctx, results) end
  return results
end

--- The audit entry of `termsrv COMMAND` doing `action` on host handle `h`
-- (`session`: a record or `{id=}`).
function M.entry(h, command, action, rule, session)
  return { account = record.account(h), host = h.name, policy = "termsrv " .. command,
    rule = rule, action = action, before = session and session.state,
    session = session and { id = session.id, user = session.user, domain = session.domain,
                            logon_time = session.logon_time } }
end

-- What a plan could not see or meet: a host where the account sees only
-- its own sessions, free_slots = N that a host cannot meet. Says so; exit 1
-- at least.
local function short_of(ctx, results, free, code)
  for _, r in ipairs(results) do
    for _, h in ipairs(r.ok and r.value and r.value.plan and r.value.plan.hosts or {}) do
      if h.partial then
        output.diag(ctx, "termsrv: " .. h.host .. ": " .. h.partial .. "; sessions of other users were "
          .. "not judged (hint: run as an account in the host's Administrators group)")
        if code == output.EXIT_OK then code = output.EXIT_PARTIAL end
      end
      if free and h.short and h.short > 0 then
        output.diag(ctx, string.format("termsrv: %s: cannot free %d slot%s: only %d candidate%s ("
          .. "disconnected, not protected)", h.host, free, free == 1 and "" or "s", free - h.short,
          free - h.short == 1 and "" or "s"))
        if code == output.EXIT_OK then code = output.EXIT_PARTIAL end
      end
    end
  end
  return code
end

-- A policy that fails while its rules are evaluated (a predicate that
-- raises, a sandbox limit) is a bad policy, as when it fails to load: exit 64.
local function bad_policy(results, code)
  if code > output.EXIT_FAILED then return code end
  for _, r in ipairs(results) do
    local e = output.host_err(r)
    if type(e) == "table" and e.code == "bad_policy" then return output.EXIT_USAGE end
  end
  return code
end

--- Writes what a policy run did (or, without `apply`, the merged plan) and
-- returns the exit code.
function M.finish_policy(ctx, results, name, free, apply)
  if apply then
    local code = short_of(ctx, results, free, output.finish_rows(ctx, results, { empty = "nothing to do\n" }))
    return bad_policy(results, code)
  end
  local p = merge(results, name, free)
  local outcomes = {}
  for i, r in ipairs(results) do outcomes[i] = output.host_err(r) and "failed" or "ok" end
  p.errors = {}
  if ctx.format == "table" then -- it points at --apply rather than plan:apply()
    output.out(ctx, (report.plan(p):gsub("%(plan:apply%(%) acts%)", "(--apply acts)")))
  else
    if not ctx.streamed then output.emit(ctx, p) end
    output.diag(ctx, string.format("dry run: %d action%s planned on %d host%s; --apply acts", #p.steps,
      #p.steps == 1 and "" or "s", #results, #results == 1 and "" or "s"))
  end
  return bad_policy(results, short_of(ctx, results, free, output.exit_of(outcomes)))
end

return M
