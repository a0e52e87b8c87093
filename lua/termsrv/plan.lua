--- Plans: what a policy would do to which sessions, then doing it safely.
--
--     local plan = require "termsrv.plan"
--     local p = plan.make({ host1, host2 }, "nightly.lua" or policy_table)
--     print(p)                         -- the dry run: nothing touched yet
--     local results = p:apply{ audit = assert(audit.open("/var/log/termsrv.jsonl")) }
--     print(results)                   -- one line per session + summary
--
-- Building a plan only reads records. `plan:apply` acts through the host
-- handle API (`host:logoff(rec, opts)`, ...), always passing the record that
-- was planned, so the host layer re-checks the session just before acting and
-- refuses (`session_changed`) when the id now belongs to another logon.
--
-- Ordering: per host (in the order given), stalest first: disconnected
-- sessions by longest disconnected, then the others by longest idle; ties by
-- earlier logon, then lower id. `max_actions` keeps the first N per host;
-- `free_slots` = N keeps the first N candidates per host (and never more than
-- `max_actions`).
--
-- Ladders (action = {"message", "disconnect", "logoff", "reset"}): steps run
-- in order; a message to a disconnected session is skipped (nobody would see
-- it), and so is its grace; a disconnect of a disconnected session is
-- skipped; the ladder stops as soon as the session is gone; a failed or hung
-- step (logoff that returns but leaves the session in place) escalates to the
-- next step; after each grace period the session is re-read and the ladder
-- stops (skipped) if it changed hands or no longer matches the rule, and ends
-- (ok) if the user logged off. Grace periods of all sessions run concurrently:
-- every message goes out first, then one wait, then the next steps.
--
-- Waiting: `opts.sleep(seconds)` and `opts.clock()` are injectable. The
-- defaults use lua-system (`system.sleep`, `system.monotime`: a real sleep,
-- no busy-wait). A `sleep` that returns early makes the waits shorter (a no-op
-- sleep skips them), it never loops.
-- @module termsrv.plan

local check = require "termsrv.check"
local errors = require "termsrv.error"
local policy = require "termsrv.policy"
local record = require "termsrv.record"
local sandbox = require "termsrv.sandbox"

-- the options of build, make and apply (termsrv.check)
local BUILD_OPTS = { now = "number", free_slots = "integer|boolean", max_actions = "integer",
  limits = "table" }
local MAKE_OPTS = { all = "boolean", client = "boolean", locked = "boolean" }
for k, v in pairs(BUILD_OPTS) do MAKE_OPTS[k] = v end

local APPLY_OPTS = { audit = "table", stop = "function", hosts = "table", wait = "boolean",
  sleep = "function", clock = "function", progress = "function", action_opts = "table",
  audit_messages = "boolean" }

local M = {}

local Plan = {}
Plan.__index = Plan
Plan.__name = "termsrv.plan"

local Step = {}
Step.__index = Step
Step.__name = "termsrv.plan.step"

local Results = {}
Results.__index = Results
Results.__name = "termsrv.results"

local function report() return require "termsrv.report" end

-- ----------------------------------------------------------------------------
-- ordering

local function nil_last(a, b, desc)
  if a == nil then return false end
  if b == nil then return true end
  if desc then return a > b end
  return a < b
end

--- Comparator for "stalest first" (the free-slots and max_actions order):
-- disconnected before others; longest disconnected; longest idle; earliest
-- logon; lowest id. Unknown values sort after known ones.
-- @tparam table a record
-- @tparam table b record
-- @treturn boolean true when `a` goes first
function M.stalest_first(a, b)
  local ga = a.state == "disconnected" and 1 or 2
  local gb = b.state == "disconnected" and 1 or 2
  if ga ~= gb then return ga < gb end
  if ga == 1 then
    local da, db = record.disconnected_for(a), record.disconnected_for(b)
    if da ~= db then return nil_last(da, db, true) end
  end
  local ia, ib = record.idle(a), record.idle(b)
  if ia ~= ib then return nil_last(ia, ib, true) end
  if a.logon_time ~= b.logon_time then return nil_last(a.logon_time, b.logon_time, false) end
  return (a.id or 0) < (b.id or 0)
end

-- ----------------------------------------------------------------------------
-- build

local function ensure_record(rec, host)
  if record.is_session(rec) and rec.host ~= nil then return rec end
  local t = {}
  for k, v in pairs(rec) do t[k] = v end
  if t.host == nil then t.host = host end
  return record.session(t)
end

-- Why a session no rule selects is listed among the skipped ones: it would
-- be selected but for its protection, an exclusion, or a value not known.
local SKIP_SHOWN = { protected = true, excluded = true, unknown = true }

local function skipped_entry(rec, reason, why, rule)
  return { host = rec.host, id = rec.id, user = rec.user, domain = rec.domain, logon_time = rec.logon_time,
           state = rec.state, rule = rule, reason = reason, why = why }
end

local function make_step(rec, rule, reason, self, pol)
  return setmetatable({
    host = rec.host, id = rec.id, user = rec.user, domain = rec.domain, station = rec.name,
    state = rec.state, kind = rec.kind, logon_time = rec.logon_time,
    idle = record.idle(rec), disconnected = record.disconnected_for(rec),
    client = rec.client, address = rec.address,
    fingerprint = { id = rec.id, user = rec.user, domain = rec.domain, logon_time = rec.logon_time },
    rule = rule.name, action = rule.action, steps = table.move(rule.steps, 1, #rule.steps, 1, {}),
    grace = rule.grace, message = rule.message, why = reason, record = rec, self = self, _rule = rule,
    _policy = pol,
  }, Step)
end

local function check_entry(i, e)
  if type(e) ~= "table" then error("plan.build: entries[" .. i .. "]: table expected", 4) end
  if type(e.host) ~= "string" then error("plan.build: entries[" .. i .. "].host: string expected", 4) end
  if e.err == nil and type(e.sessions) ~= "table" then
    error("plan.build: entries[" .. i .. "].sessions: array of records expected", 4)
  end
  if e.self ~= nil and type(e.self) ~= "table" then
    error("plan.build: entries[" .. i .. "].self: table {user=, domain=} expected", 4)
  end
end

local function build(entries, pol, opts)
  if type(entries) ~= "table" then
    error("plan.build: array of entries expected, got " .. type(entries), 3)
  end
  opts = opts or {}
  local now = opts.now or os.time()
  local free = pol.free_slots
  if opts.free_slots ~= nil then free = opts.free_slots or nil end
  if free ~= nil and (math.type(free) ~= "integer" or free < 1) then
    error("plan.build: free_slots: integer >= 1 expected", 3)
  end
  local cap = opts.max_actions or pol.max_actions
  local p = setmetatable({
    steps = {}, skipped = {}, errors = {}, hosts = {}, policy = pol, policy_name = pol.name,
    created = now, free_slots = free, max_actions = cap, _handles = {},
  }, Plan)
  for i, e in ipairs(entries) do
    check_entry(i, e)
    if e.handle then p._handles[e.host] = e.handle end
    if e.err ~= nil then
      p.errors[#p.errors + 1] = { host = e.host, err = e.err }
    else
      local ctx = { self = e.self, now = now, host = e.host }
      -- one budget per host for every rule and predicate evaluated
      local meter = sandbox.meter(opts.limits or pol.limits)
      local cands = {}
      local hinfo = { host = e.host, sessions = #e.sessions, steps = 0, skipped = 0, partial = e.partial }
      p.hosts[#p.hosts + 1] = hinfo
      local function skip(rec, reason, why, rule)
        p.skipped[#p.skipped + 1] = skipped_entry(rec, reason, why, rule)
        hinfo.skipped = hinfo.skipped + 1
      end
      for _, raw in ipairs(e.sessions) do
        local rec = ensure_record(raw, e.host)
        local good, rule, reason, why = pcall(pol.match, pol, rec, ctx, meter)
        if not good then
          if type(rule) == "string" and rule:find("interrupted!", 1, true) then error(rule, 0) end
          return nil, errors.is(rule) and rule or errors.new{ code = "bad_policy", op = "match policy",
            host = e.host, message = tostring(rule) }
        end
        if rule then
          cands[#cands + 1] = { rec = rec, rule = rule, reason = reason }
        elseif SKIP_SHOWN[why] and rec.user and rec.user ~= "" then
          skip(rec, reason, why)
        end
      end
      table.sort(cands, function(a, b) return M.stalest_first(a.rec, b.rec) end)
      local limit = math.min(cap, free or cap)
      for n, c in ipairs(cands) do
        if n <= limit then
          p.steps[#p.steps + 1] = make_step(c.rec, c.rule, c.reason, e.self, pol)
          hinfo.steps = hinfo.steps + 1
        else
          local reason, why
          if free and n > free and free <= cap then
            local s = free == 1 and "" or "s"
            reason = string.format("not needed: the %d stalest session%s free%s the %d slot%s asked for",
              free, s, free == 1 and "s" or "", free, s)
            why = "not_needed"
          else
            reason, why = string.format("over max_actions (%d) for this host", cap), "capped"
          end
          skip(c.rec, reason, why, c.rule.name)
        end
      end
      if free and #cands < free then hinfo.short = free - #cands end
    end
  end
  return p
end

--- Builds a plan from session records; touches nothing.
-- @tparam {table,...} entries `{ {host = "ts01", self = {user=, domain=}, sessions = {records}}, ... }`
--   (`self` is the account termsrv runs as on that host, whose sessions are protected;
--   an entry may carry `err` instead of `sessions` for a host that could not be listed,
--   and `handle` = the host handle `apply` should use)
-- @param pol a policy object, a policy table (see termsrv.policy), or the single-rule shorthand
-- @tparam[opt] table opts `now` (epoch, default `os.time()`), `free_slots` (override; `false` turns it off),
--   `max_actions` (override), `limits` (the policy sandbox's, for the rules and `where`
--   predicates: one budget per host; see termsrv.sandbox; default the policy's)
-- @treturn[1] termsrv.plan `{steps=, skipped=, errors=, hosts=, ...}`; `#plan` is the number of steps
-- @treturn[2] nil
-- @treturn[2] termsrv.Error `bad_policy` when a predicate raises or a limit stops it
function M.build(entries, pol, opts)
  check.options("plan.build", opts, BUILD_OPTS)
  local ok, p = pcall(policy.new, pol)
  if not ok then error(p, 2) end
  return build(entries, p, opts)
end

local function call(h, method, ...)
  local f = h[method]
  if type(f) ~= "function" then
    return nil, errors.new{ code = "unsupported", host = h.name, op = method,
                            message = "the host handle has no " .. method .. "()" }
  end
  local ok, a, b, c = pcall(f, h, ...)
  if not ok then
    -- Ctrl-C in a plain interpreter raises "interrupted!": that stops the run
    if type(a) == "string" and a:find("interrupted!", 1, true) then error(a, 0) end
    return nil, errors.new{ code = "internal", host = h.name, op = method, message = tostring(a) }
  end
  return a, b, c -- a verb's failure is nil, err, result: the result says what is known
end

--- Lists sessions on live host handles and builds the plan. A host that
-- fails to list goes into `plan.errors` (`{host=, err=}`) and the others go on.
-- @tparam {host,...} hosts host handles (or one handle)
-- @param pol policy object, table, or path of a policy file
-- @tparam[opt] table opts as for `build`, plus `client` / `all` to force those listing options
-- @treturn[1] termsrv.plan
-- @treturn[2] nil
-- @treturn[2] termsrv.Error when `pol` is a path that cannot be loaded, or as for `build`
function M.make(hosts, pol, opts)
  opts = check.options("plan.make", opts, MAKE_OPTS)
  local p
  if type(pol) == "string" then
    local err
    p, err = policy.load(pol, { limits = opts.limits })
    if not p then return nil, err end
  else
    local ok
    ok, p = pcall(policy.new, pol)
    if not ok then error(p, 2) end
  end
  if type(hosts) ~= "table" then error("plan.make: host handles expected, got " .. type(hosts), 2) end
  if hosts.sessions ~= nil then hosts = { hosts } end
  local entries = {}
  for i, h in ipairs(hosts) do
    local name = h.name or ("host" .. i)
    local list, err = call(h, "sessions", {
      all = opts.all or p.needs_all or false, times = true, client = opts.client or p.needs_client or false,
      locked = opts.locked or p.needs_locked or false })
    if type(list) == "table" then
      entries[#entries + 1] = { host = name, self = { user = h.user, domain = h.domain },
                                sessions = list, handle = h, partial = list.partial }
    else
      entries[#entries + 1] = { host = name, handle = h,
        err = err or errors.new{ code = "internal", host = name, op = "sessions",
                                 message = "sessions() returned neither sessions nor an error" } }
    end
  end
  return build(entries, p, opts)
end

-- ----------------------------------------------------------------------------
-- plan objects

function Plan.__len(p) return #p.steps end

function Plan.__tostring(p)
  return (report().plan(p):gsub("\n$", ""))
end

--- Plain-table view for JSON: steps and skipped entries as report rows (ISO
-- times), host errors as `{host, error, error_message}`.
function Plan:totable()
  local rep = report()
  local errs = {}
  for i, e in ipairs(self.errors) do
    errs[i] = { host = e.host, error = type(e.err) == "table" and e.err.code or tostring(e.err),
                error_message = tostring(e.err) }
  end
  local hosts = {}
  for i, h in ipairs(self.hosts) do
    hosts[i] = { host = h.host, sessions = h.sessions, steps = h.steps, skipped = h.skipped, short = h.short,
                 partial = h.partial }
  end
  local json = require "termsrv.json"
  return {
    policy = self.policy_name, created = json.iso(self.created), free_slots = self.free_slots,
    max_actions = self.max_actions, hosts = json.array(hosts),
    steps = json.array((rep.rows(self.steps, { fields = rep.STEP_FIELDS }))),
    skipped = json.array((rep.rows(self.skipped, { fields = rep.SKIPPED_FIELDS }))),
    errors = json.array(errs),
  }
end

-- `t` as JSON, its keys in the order of the name lists given, one after another.
local function ordered_json(t, ...)
  local order = {}
  for _, l in ipairs{ ... } do table.move(l, 1, #l, #order + 1, order) end
  return require("termsrv.json").encode(t, order)
end

--- The plan as one JSON text (fixed key order).
-- @treturn string
function Plan:tojson()
  local rep = report()
  return ordered_json(self:totable(), { "policy", "created", "free_slots", "max_actions", "host", "sessions",
    "hosts", "steps", "skipped", "short", "errors" }, rep.STEP_FIELDS, rep.SKIPPED_FIELDS, rep.ERROR_FIELDS)
end

function Step.__tostring(s)
  return string.format("%s #%d %s: %s (rule %s: %s)", s.host, s.id, record.account(s) or "-", s.action,
    s.rule, s.why)
end

--- Plain-table view of a step (report columns, ISO times).
function Step:totable()
  local rep = report()
  return (rep.rows({ self }, { fields = rep.STEP_FIELDS }))[1]
end

-- ----------------------------------------------------------------------------
-- the runner: how every state change is made

local Runner = {}
Runner.__index = Runner
Runner.__name = "termsrv.plan.runner"

--- A runner makes state changes the one safe way: no change starts once
-- the run must stop; an attempt entry is audited before it and its outcome
-- after it; when the attempt cannot be written, nothing more is done. Plans
-- use one per `apply`; the command line uses one for kill, connect and
-- shutdown.
-- @tparam[opt] table opts `audit` (a logger from termsrv.audit: `open(path)` or `memory()`),
--   `stop` (function giving a reason, such as a signal number, once the run must stop)
-- @treturn termsrv.plan.runner with `:act(entry, fn)`, `:stopping()`, and after the run
--   `.stopped` (the stop reason), `.audit_error` (an outcome that could not be written)
function M.runner(opts)
  opts = check.options("plan.runner", opts, { audit = "table", stop = "function" }, 2)
  local sink = opts.audit
  if sink ~= nil and not (type(sink) == "table" and sink.attempt and sink.outcome) then
    error("opts.audit: a logger with :attempt and :outcome expected (termsrv.audit.open or .memory)", 3)
  end
  return setmetatable({ sink = sink, stop = opts.stop }, Runner)
end

--- The error that stops every further change (a stop, a failed audit
-- write), or nil while changes may go on.
function Runner:stopping()
  if self.halt then return self.halt end
  local why = self.stop and self.stop()
  if why then
    self.stopped = why
    self.halt = errors.new{ code = "stopped", op = "apply", message = "stopped"
      .. (math.type(why) == "integer" and (" by signal " .. why) or (": " .. tostring(why))) }
  end
  return self.halt
end

-- A result row `t`, with what it lacks from the audit entry and from `base`.
local function fill(t, entry, base)
  t.host, t.action = t.host or entry.host, t.action or entry.action
  if t.id == nil then t.id = entry.session and entry.session.id end
  for k, v in pairs(base or {}) do if t[k] == nil then t[k] = v end end
  return t
end

-- The result of a change that was not made: skipped after a stop, failed
-- when the audit log refused its attempt line.
local function not_attempted(entry, halt, base)
  return fill({ ok = false, status = halt.code == "stopped" and "skipped" or "failed", err = halt,
                not_attempted = true }, entry, base)
end

--- Makes one state change: `fn()` returns what a host verb returns -- a
-- result record (`ok`, `after`, `err`, `fallback`, `state_unknown`,
-- `duration`), or `nil, err[, result]`. `entry` is the audit entry (host,
-- session, action, ...); `audit = false` in it skips the audit. `base`
-- fills what the result lacks (e.g. `pid`, `image`).
-- @treturn table the result row (with `status`); `not_attempted = true` when the run
--   had stopped or the attempt could not be audited
function Runner:act(entry, fn, base)
  local halt = self:stopping()
  if halt then return not_attempted(entry, halt, base) end
  local sink = entry.audit ~= false and self.sink
  entry.audit = nil
  local attempt
  if sink then
    local aerr
    attempt, aerr = sink:attempt(entry)
    if not attempt then
      self.halt = errors.new{ code = "audit_failed", op = "audit", message = "cannot write the audit log: "
        .. tostring(type(aerr) == "table" and aerr.message or aerr),
        hint = "nothing was done: fix the audit log and run again" }
      return not_attempted(entry, self.halt, base)
    end
  end
  local res, err, failed = fn()
  res = fill(type(res) == "table" and res or type(failed) == "table" and failed or { ok = false,
    err = err or errors.new{ code = "internal", host = entry.host, op = entry.action,
                             message = entry.action .. " returned no result" } }, entry, base)
  if res.ok == nil then res.ok = res.err == nil end
  if res.status == nil then res.status = res.ok and "ok" or "failed" end
  if sink then
    local e = {}
    for k, v in pairs(entry) do e[k] = v end
    e.time, e.after, e.ok, e.duration, e.fallback = os.time(), res.after, res.ok, res.duration, res.fallback
    e.before, e.err, e.state_unknown = res.before or entry.before, res.err, res.state_unknown
    local ok, oerr = sink:outcome(attempt, e)
    if not ok then
      local sid = entry.session and entry.session.id
      self.audit_error = errors.new{ code = "audit_failed", op = "audit", host = entry.host, message =
        string.format("the outcome of %s on %s%s could not be written to the audit log: %s", entry.action,
          tostring(entry.host), sid and (" session " .. sid) or "", tostring(oerr)),
        hint = "its attempt line is there; check by hand what it did" }
      self.halt = self.audit_error
    end
  end
  return res
end

-- ----------------------------------------------------------------------------
-- apply

local system = require("termsrv.need").need("system")


--- The default clock (monotonic seconds, lua-system's `monotime`).
function M.default_clock()
  return system.monotime()
end

--- The default sleep (lua-system's `sleep`).
function M.default_sleep(secs)
  if secs <= 0 then return end
  system.sleep(secs)
end

local STATE_CHANGING = { disconnect = true, logoff = true, reset = true }

local function expand(text, step, grace)
  local vals = { user = step.user or "", host = step.host or "", id = tostring(step.id),
                 station = step.station or "", rule = step.rule or "",
                 grace = grace and require("termsrv.duration").format(grace) or "" }
  return (text:gsub("{(%w+)}", function(k) return vals[k] end))
end

local function err_code(res)
  return res and type(res.err) == "table" and res.err.code or nil
end

-- The rule that planned a step, judged again on a fresh record: nil when it
-- still selects the session, else why not. The first matching rule must be
-- the planned one (an exclusion or an earlier rule now wins otherwise).
local function rematcher(st)
  local pol = st._policy
  if not pol then return nil end
  return function(fresh)
    local rule, why = pol:match(fresh, { self = st.self, now = os.time(), host = st.host })
    if rule == st._rule then return nil end
    if rule then return "now matches rule " .. rule.name .. ", not " .. st.rule end
    return "no longer matches: " .. why
  end
end

--- Runs the plan. Every action gets the planned record, so the host layer
-- re-reads the session just before acting and refuses when it is another
-- logon, is no longer in the planned state (a user who reconnected), or no
-- longer matches the rule that planned it (a user who typed).
-- @tparam[opt] table opts
--   `audit` (a logger from termsrv.audit): before each state-changing
--   call (disconnect, logoff, reset; messages too with `audit_messages = true`) an attempt
--   entry (`phase = "attempt"`, `ok = nil`); after it the outcome (`phase = "outcome"`).
--   When an attempt cannot be written, that action and every later one is not done;
--   when an outcome cannot be written, `results.audit_error` says so;
--   `stop` (function returning a reason, e.g. a signal number, once the run must stop:
--   no action starts after it); `hosts` (handles, as an array or a name -> handle map;
--   default: those `make` used); `wait` (verify each action; default the policy's `wait`, true);
--   `sleep`, `clock` (see the module doc); `progress` (function(result) called as each session finishes);
--   `action_opts` (options every action gets unless it sets them, e.g. `timeout`, `listener`, `fallback`)
-- @treturn termsrv.results array of result records `{host, id, user, domain, logon_time, rule,
--   action, status ("ok"|"failed"|"skipped"), ok, before, after, err, duration, answer, steps, note}`,
--   with `.errors` (host errors of the plan), `.summary` (report.summary), `.stopped`
--   (the stop reason, when stopped) and `.audit_error`
function Plan:apply(opts)
  opts = check.options("plan:apply", opts, APPLY_OPTS)
  local clock = opts.clock or M.default_clock
  local sleep = opts.sleep or M.default_sleep
  local wait = opts.wait
  if wait == nil then wait = self.policy.wait ~= false end
  local handles = {}
  for k, v in pairs(self._handles) do handles[k] = v end
  if opts.hosts then
    for k, h in pairs(opts.hosts) do
      if math.type(k) == "integer" then handles[h.name] = h else handles[k] = h end
    end
  end
  local pol = self.policy
  local results = setmetatable({ errors = self.errors, plan = self }, Results)
  local runner = M.runner{ audit = opts.audit, stop = opts.stop }

  -- One call that may change state: attempt line, the call (the host layer
  -- re-reads and re-judges the session first), outcome line.
  local function act(job, method, args, vopts)
    local st = job.step
    local entry = { time = os.time(), account = st.self and record.account(st.self), host = st.host,
      session = st.fingerprint, policy = self.policy_name, rule = st.rule, action = method,
      before = job.current.state }
    entry.audit = (STATE_CHANGING[method] or opts.audit_messages) and true or false
    local res = runner:act(entry, function()
      vopts.check = not job.moved and rematcher(st) or nil
      vopts.client, vopts.locked = pol.needs_client, pol.needs_locked
      for k, v in pairs(opts.action_opts or {}) do if vopts[k] == nil then vopts[k] = v end end
      local t0 = clock()
      args[#args + 1] = vopts
      local r, err, failed = call(job.handle, method, job.current, table.unpack(args))
      r = type(r) == "table" and r or failed
      if type(r) == "table" then
        r.before = r.before or job.current.state
        r.duration = r.duration or (clock() - t0)
      end
      return r, err
    end)
    if res.not_attempted then return res end
    local steps = job.result.steps
    steps[#steps + 1] = { action = res.action, ok = res.ok, err = res.err, after = res.after }
    job.result.duration = job.result.duration + (tonumber(res.duration) or 0)
    if res.answer ~= nil then job.result.answer = res.answer end
    if res.fallback then
      job.result.fallback = res.fallback
      job.notes[#job.notes + 1] = "via " .. res.fallback
    end
    if res.note then job.notes[#job.notes + 1] = res.note end
    return res
  end

  local function finish(job, status, after, err, note)
    local r = job.result
    if note then job.notes[#job.notes + 1] = note end
    r.status, r.ok, r.after, r.err = status, status == "ok", after, err
    r.note = #job.notes > 0 and table.concat(job.notes, "; ") or nil
    r.duration = math.floor(r.duration * 1000 + 0.5) / 1000
    job.done = true
    if opts.progress then opts.progress(r) end
  end

  -- The outcome of a step that found the session changed or gone: true
  -- when the job is finished by it.
  local function ended(job, res, step)
    local code = err_code(res)
    if res.not_attempted then
      -- stopped: skipped; the audit log failed: the run failed, though nothing was done
      finish(job, (job.acted or res.err.code ~= "stopped") and "failed" or "skipped", nil, res.err,
        "not attempted")
    elseif code == "session_changed" then
      finish(job, "skipped", nil, res.err, res.err.message)
    elseif code == "session_not_found" then
      finish(job, job.acted and "ok" or "skipped", "gone", nil,
        job.acted and ("session ended before " .. step) or "session already gone")
    else
      return false
    end
    return true
  end

  -- Step: a message. In a ladder a disconnected session's is skipped (nobody
  -- would see it before the next step); a rule that only sends messages
  -- sends them where its selector says.
  local function message_step(job, grace, has_next)
    local st, cur = job.step, job.current
    local why = (not cur.user or cur.user == "") and "no user"
      or (has_next and cur.state == "disconnected") and "session is disconnected"
    if why then
      job.notes[#job.notes + 1] = "message skipped: " .. why
      if not has_next then finish(job, "skipped", cur.state) return "done" end
      return "no_grace"
    end
    local m = st.message or { title = "", text = "" }
    local res = act(job, "message", { expand(m.title, st, grace), expand(m.text, st, grace) },
      { timeout = m.timeout or grace or 60, wait = m.wait or false, buttons = m.buttons })
    if ended(job, res, "message") then return "done" end
    if res.ok then job.acted = true else
      job.notes[#job.notes + 1] = "message failed (" .. tostring(err_code(res)) .. ")"
    end
    job.last = res
  end

  -- Step: disconnect / logoff / reset; a failure or a hang escalates to the
  -- next step of the ladder, if any.
  local function change_step(job, step, has_next)
    local st, cur = job.step, job.current
    local res
    if step == "disconnect" and cur.state == "disconnected" then
      job.notes[#job.notes + 1] = "already disconnected"
      res = { ok = true, after = "disconnected", action = "disconnect", skipped = true }
    else
      res = act(job, step, {}, { wait = wait })
    end
    if ended(job, res, step) then return "done" end
    job.last = res
    if res.ok then -- with wait, the verb has seen the state follow (not_verified otherwise)
      if not res.skipped then job.acted = true end
      if res.after == "gone" or step ~= "disconnect" then finish(job, "ok", res.after) return "done" end
      job.current = setmetatable({ state = res.after or "disconnected" }, { __index = cur })
      job.moved = true -- later steps act on the state this one made, not on the rule
      return
    end
    if res.after and res.after ~= cur.state then
      -- escalating from the state this step left (a logoff that hangs)
      job.current = setmetatable({ state = res.after }, { __index = cur })
      job.moved = true
    end
    if not has_next then finish(job, "failed", res.after, res.err) return "done" end
    job.notes[#job.notes + 1] = (err_code(res) == "not_verified" and (step .. " did not finish (still "
      .. tostring(res.after) .. ")") or (step .. " failed (" .. tostring(err_code(res)) .. ")"))
      .. ", escalating to " .. st.steps[job.i]
  end

  -- Runs a job's steps until it finishes or waits out a grace period.
  local function advance(job)
    local st = job.step
    if not job.handle then
      finish(job, "failed", nil, errors.new{ code = "no_handle", host = st.host, op = "apply",
        message = "no host handle for " .. st.host, hint = "plan.make(hosts, ...) or apply{hosts = ...}" })
      return
    end
    while true do
      if runner:stopping() then ended(job, { not_attempted = true, err = runner.halt }) return end
      local step = st.steps[job.i]
      if step == nil then -- ran out of steps: the last step decides
        local last = job.last
        if last and last.ok then finish(job, job.acted and "ok" or "skipped", last.after)
        else finish(job, "failed", last and last.after, last and last.err) end
        return
      end
      local has_next = st.steps[job.i + 1] ~= nil
      local grace = st.grace and st.grace[step]
      job.i = job.i + 1
      local r
      if step == "message" then r = message_step(job, grace, has_next)
      else r = change_step(job, step, has_next) end
      if r == "done" then return end
      if r ~= "no_grace" and grace and has_next then
        job.ready_at = clock() + grace
        return
      end
    end
  end

  local jobs = {}
  local start = clock()
  for i, st in ipairs(self.steps) do
    jobs[i] = { step = st, i = 1, ready_at = start, current = st.record, handle = handles[st.host],
      notes = {},
      result = { host = st.host, id = st.id, user = st.user, domain = st.domain, logon_time = st.logon_time,
                 rule = st.rule, action = st.action, before = st.state, duration = 0, steps = {} } }
  end
  -- Grace periods of all sessions run concurrently: each job runs until it
  -- waits, then the earliest waiting one goes on.
  local floor = -math.huge
  while true do
    local any, next_at = false, nil
    for _, job in ipairs(jobs) do
      if not job.done then
        if runner.halt or job.ready_at <= math.max(clock(), floor) then advance(job) end
        if not job.done then
          any = true
          if next_at == nil or job.ready_at < next_at then next_at = job.ready_at end
        end
      end
    end
    if not any then break end
    local dt = next_at - clock()
    if dt > 0 and not runner:stopping() then sleep(dt) end -- a signal ends the sleep early
    floor = next_at
  end

  for i, job in ipairs(jobs) do results[i] = job.result end
  results.stopped, results.audit_error = runner.stopped, runner.audit_error
  self.applied = true
  results.summary = report().summary(results)
  return results
end

function Results.__tostring(r)
  return (report().results(r):gsub("\n$", ""))
end

--- Plain-table view: `{results = rows, summary = ...}` (report columns, ISO times).
function Results:totable()
  local rep = report()
  local json = require "termsrv.json"
  return { results = json.array((rep.rows(self, { fields = rep.RESULT_FIELDS }))),
           summary = self.summary and self.summary:totable() }
end

--- The results and summary as one JSON text (fixed key order).
-- @treturn string
function Results:tojson()
  local rep = report()
  return ordered_json(self:totable(), { "results", "summary" }, rep.RESULT_FIELDS,
    { "kind", "hosts", "total", "exit_code", "failed", "skipped", "host_errors" })
end

--- True when `x` is a plan.
function M.is_plan(x) return getmetatable(x) == Plan end

return M
