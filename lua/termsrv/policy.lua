--- Cleanup policies: ordered rules, each a selector and an action.
--
-- A policy is a Lua table, or a Lua file that returns one (or sets the same
-- names as globals). Files run in a restricted environment: no `io`, `os`,
-- `require`, `load`, `debug`; available are `string`, `table`, `math`, `utf8`,
-- `pairs`, `ipairs`, `next`, `select`, `type`, `tostring`, `tonumber`,
-- `error`, `assert`, `pcall`, `print` (to stderr), `date` (`os.date`, with
-- a format of at most 1000 bytes) and `duration` (termsrv.duration).
-- Loading, and evaluating the rules and their `where` predicates, run within
-- limits a policy cannot lift or catch (memory, instructions, wall-clock
-- time, the cost of each pattern match; only regular files of bounded size
-- are read): see termsrv.sandbox. The caller sets them (`load(path, {limits
-- = ...})`, plan options). Example (`nightly.lua`):
--
--     name = "nightly"
--     max_actions = 20                       -- per host (default 50)
--     exclude = { user = { "svc_*", "robot*" } }   -- never touched by any rule
--     rules = {
--       { name = "stale", select = { state = "disconnected", min_disconnected = "8h" },
--         action = "logoff" },                -- reset is NOT implied: add it to the ladder
--       { name = "idle", select = { state = "active", min_idle = "4h" },
--         action = { "message", "disconnect", "logoff", "reset" },
--         message = { title = "Maintenance", text = "{user}: you will be signed out in {grace}." },
--         grace = "5m" },
--     }
--
-- Rule fields: `name` (default `rule<N>`), `select` (required, a selector —
-- see termsrv.select), `action` (`"logoff"`, `"reset"`, `"disconnect"`,
-- `"message"`, or a ladder: a list of those in that order of severity:
-- message, disconnect, logoff, reset), `message` (`{title=, text=, timeout=,
-- buttons=, wait=}` as for host:message, or a string; required when the
-- ladder has a message step; `{user}`, `{host}`, `{id}`, `{station}`,
-- `{rule}`, `{grace}` are replaced), `grace` (wait
-- after a ladder step before the next: one duration = after the first step,
-- or `{message = "5m", disconnect = "1h"}`; default 5m after a message that is
-- followed by another step), `description`.
--
-- Ladder semantics (see termsrv.plan): steps run in order; the ladder stops
-- as soon as the session is gone; a failed or hung step escalates to the next
-- one; after a grace period the session is re-read and the ladder stops if it
-- ended, changed hands, or no longer matches the rule (the user came back).
--
-- Policy fields: `rules`, `name`, `description`, `exclude` (selector of
-- sessions no rule may touch), `max_actions` (safety cap per host, default 50),
-- `free_slots` (N: free N slots per host, stalest first — see termsrv.plan;
-- with no rules, every unprotected session is a candidate, action logoff),
-- `wait` (verify each action by re-querying; default true).
--
-- A single-rule shorthand is accepted: `{ state = "disconnected",
-- min_disconnected = "8h", action = "logoff" }` (selector keys next to
-- `action`), or `{ select = {...}, action = "logoff" }`.
-- @module termsrv.policy

local duration = require "termsrv.duration"
local errors = require "termsrv.error"
local sandbox = require "termsrv.sandbox"
local selector = require "termsrv.select"

local M = {}

--- Default safety cap: actions per host per plan.
M.DEFAULT_MAX_ACTIONS = 50
--- Default wait after a message step followed by another step (seconds).
M.DEFAULT_GRACE = 300

--- Ladder steps in order of severity.
M.STEPS = { "message", "disconnect", "logoff", "reset" }
local RANK = { message = 1, disconnect = 2, logoff = 3, reset = 4 }

local POLICY_KEYS = { rules = true, name = true, description = true, exclude = true,
                      max_actions = true, free_slots = true, wait = true }
local RULE_KEYS = { name = true, select = true, action = true, message = true, grace = true,
                    description = true }
local MESSAGE_KEYS = { title = true, text = true, timeout = true, buttons = true, wait = true }
local BUTTONS = { ok = 1, okcancel = 1, yesno = 1, yesnocancel = 1, retrycancel = 1, abortretryignore = 1 }

local Fail = {}
local function fail(msg) error(setmetatable({ msg = msg }, Fail), 0) end

local function rule_label(i, name)
  if name then return string.format("policy rule %d (%q)", i, name) end
  return string.format("policy rule %d", i)
end

local Policy = {}
Policy.__index = Policy
Policy.__name = "termsrv.policy"

local function check_duration(where, v)
  local secs, err = duration.parse(v)
  if not secs then fail(where .. ": " .. err.message) end
  return secs
end

local function compile_selector(where, t)
  local ok, m = pcall(selector.compile, t)
  if not ok then
    fail(where .. ": " .. tostring(m):gsub("^[^:]*:%d+: ", ""):gsub("^select: ", ""))
  end
  return m
end

local function check_rule(i, r, names)
  if type(r) ~= "table" then fail(rule_label(i) .. ": table expected, got " .. type(r)) end
  if r.name ~= nil and (type(r.name) ~= "string" or r.name == "") then
    fail(rule_label(i) .. ": name: non-empty string expected")
  end
  local name = r.name or ("rule" .. i)
  local where = rule_label(i, name)
  if names[name] then fail(where .. ": name: duplicate rule name (also rule " .. names[name] .. ")") end
  names[name] = i
  for k in pairs(r) do
    if not RULE_KEYS[k] then
      fail(where .. ": unknown field '" .. tostring(k) .. "' (fields: name, select, action, message, "
        .. "grace, description)")
    end
  end
  if r.description ~= nil and type(r.description) ~= "string" then
    fail(where .. ": description: string expected")
  end
  if r.select == nil then
    fail(where .. ": select: missing (use select = {} to mean every unprotected session)")
  end
  if type(r.select) ~= "table" then fail(where .. ": select: table expected, got " .. type(r.select)) end
  local m = compile_selector(where .. ": select", r.select)

  -- action / ladder
  local steps = {}
  if type(r.action) == "string" then
    steps[1] = r.action
  elseif type(r.action) == "table" and #r.action > 0 then
    for j, s in ipairs(r.action) do steps[j] = s end
  elseif r.action == nil then
    fail(where .. ": action: missing (logoff, reset, disconnect, message, or a ladder list)")
  else
    fail(where .. ": action: string or non-empty list expected, got " .. type(r.action))
  end
  local last = 0
  for j, s in ipairs(steps) do
    if not RANK[s] then
      fail(string.format("%s: action: unknown action %s (one of message, disconnect, logoff, reset)",
        where, type(s) == "string" and ("'" .. s .. "'") or tostring(s)))
    end
    if RANK[s] <= last then
      fail(where .. ": action: a ladder goes message -> disconnect -> logoff -> reset, each at most "
        .. "once (step " .. j .. " '" .. s .. "' is out of order)")
    end
    last = RANK[s]
  end
  local has_message = steps[1] == "message"

  -- message
  local message
  if r.message ~= nil then
    if not has_message then
      fail(where .. ": message: given, but the action has no message step "
        .. "(use action = {\"message\", ...})")
    end
    local msg = r.message
    if type(msg) == "string" then msg = { text = msg } end
    if type(msg) ~= "table" then fail(where .. ": message: table {title=, text=} or string expected") end
    for k in pairs(msg) do
      if not MESSAGE_KEYS[k] then fail(where .. ": message: unknown field '" .. tostring(k) .. "'") end
    end
    if type(msg.text) ~= "string" or msg.text == "" then
      fail(where .. ": message.text: non-empty string expected")
    end
    if msg.title ~= nil and type(msg.title) ~= "string" then
      fail(where .. ": message.title: string expected")
    end
    if msg.buttons ~= nil and not BUTTONS[msg.buttons] then
      fail(where .. ": message.buttons: ok, okcancel, yesno, yesnocancel, retrycancel or abortretryignore")
    end
    if msg.wait ~= nil and type(msg.wait) ~= "boolean" then
      fail(where .. ": message.wait: boolean expected")
    end
    message = { title = msg.title or "Message from your administrator", text = msg.text,
                buttons = msg.buttons, wait = msg.wait }
    if msg.timeout ~= nil then message.timeout = check_duration(where .. ": message.timeout", msg.timeout) end
  elseif has_message then
    fail(where .. ": message: missing ({title = ..., text = ...} is required for a message step)")
  end

  -- grace
  local grace = {}
  if r.grace ~= nil then
    if #steps < 2 then
      fail(where .. ": grace: needs a ladder with a step to wait for (e.g. action = {\"message\", \""
        .. steps[1] .. "\"})")
    end
    if type(r.grace) == "table" then
      for k, v in pairs(r.grace) do
        local pos
        for j, s in ipairs(steps) do if s == k then pos = j end end
        if not pos then fail(where .. ": grace: '" .. tostring(k) .. "' is not a step of the action") end
        if pos == #steps then fail(where .. ": grace: nothing follows the last step '" .. k .. "'") end
        grace[k] = check_duration(where .. ": grace." .. k, v)
      end
    else
      grace[steps[1]] = check_duration(where .. ": grace", r.grace)
    end
  elseif has_message and #steps > 1 then
    grace.message = M.DEFAULT_GRACE
  end

  return {
    index = i, name = name, description = r.description, select = m, spec = r,
    steps = steps, action = table.concat(steps, ">"), message = message, grace = grace,
  }
end

local function check_count(key, v, min)
  if v == nil then return nil end
  if math.type(v) ~= "integer" or v < min then
    fail("policy: " .. key .. ": integer >= " .. min .. " expected, got " .. tostring(v))
  end
  return v
end

-- the single-rule shorthand
local function normalize(t)
  if t.rules ~= nil or t.action == nil then return t end
  local out, sel = {}, {}
  local rule = { action = t.action, message = t.message, grace = t.grace, name = t.rule or t.name }
  for k, v in pairs(t) do
    if POLICY_KEYS[k] and k ~= "name" then out[k] = v
    elseif k == "select" then rule.select = v
    elseif not (RULE_KEYS[k] or k == "rule") then sel[k] = v end
  end
  if rule.select == nil then rule.select = sel
  elseif next(sel) then
    local k = next(sel)
    fail("policy: unknown field '" .. tostring(k) .. "' (selector keys go inside select)")
  end
  out.name = t.name
  out.rules = { rule }
  return out
end

local function build(t)
  if type(t) ~= "table" then fail("policy: table expected, got " .. type(t)) end
  t = normalize(t)
  for k in pairs(t) do
    if not POLICY_KEYS[k] then
      fail("policy: unknown field '" .. tostring(k) .. "' (fields: rules, name, description, exclude, "
        .. "max_actions, free_slots, wait)")
    end
  end
  if t.name ~= nil and type(t.name) ~= "string" then fail("policy: name: string expected") end
  if t.description ~= nil and type(t.description) ~= "string" then
    fail("policy: description: string expected")
  end
  if t.wait ~= nil and type(t.wait) ~= "boolean" then fail("policy: wait: boolean expected") end
  local p = setmetatable({
    name = t.name, description = t.description, rules = {},
    max_actions = check_count("max_actions", t.max_actions, 0) or M.DEFAULT_MAX_ACTIONS,
    free_slots = check_count("free_slots", t.free_slots, 1),
    wait = t.wait ~= false,
  }, Policy)
  if t.exclude ~= nil then
    if type(t.exclude) ~= "table" then fail("policy: exclude: selector table expected") end
    p.exclude = compile_selector("policy: exclude", { exclude = t.exclude })
  end
  local rules = t.rules
  if rules == nil then rules = {} end
  if type(rules) ~= "table" then fail("policy: rules: list expected, got " .. type(rules)) end
  local n = 0
  for _ in pairs(rules) do n = n + 1 end
  if n ~= #rules then fail("policy: rules: a list of rule tables expected (found non-list keys)") end
  if #rules == 0 then
    if not p.free_slots then fail("policy: rules: no rules (and no free_slots)") end
    rules = { { name = "free_slots", select = {}, action = "logoff" } }
  end
  local names = {}
  for i, r in ipairs(rules) do p.rules[i] = check_rule(i, r, names) end
  -- what the plan needs to ask the host for
  for _, r in ipairs(p.rules) do
    local s = r.spec.select
    if s.client or s.address or s.exclude_clients then p.needs_client = true end
    -- the lock state costs one more call per session: ask only when used
    if s.locked ~= nil then p.needs_locked = true end
    local inc = s.include_protected
    if inc == true then p.needs_all = true
    elseif type(inc) == "table" or type(inc) == "string" then
      for _, x in ipairs(type(inc) == "table" and inc or { inc }) do
        if x == "services" or x == "listener" then p.needs_all = true end
      end
    end
  end
  return p
end

--- Builds a policy from a table; raises (level 2) with a message naming the
-- rule and the field when something is wrong.
-- @tparam table t the policy (or the single-rule shorthand)
-- @treturn termsrv.policy
function M.new(t)
  if getmetatable(t) == Policy then return t end
  local ok, p = pcall(build, t)
  if ok then return p end
  if getmetatable(p) == Fail then error(p.msg, 2) end
  error(p, 0)
end

--- True when `x` is a policy object.
function M.is_policy(x)
  return getmetatable(x) == Policy
end

local ENV_NAMES = { "rules", "name", "description", "exclude", "max_actions", "free_slots", "wait" }

local function options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("policy: options table expected, got " .. type(opts), 3) end
  return opts
end

--- Loads a policy from Lua source text (restricted environment, text only).
-- The chunk may return the policy table or set its fields as globals.
-- @tparam string src Lua source
-- @tparam[opt="=policy"] string chunkname name used in messages (e.g. `"@nightly.lua"`)
-- @tparam[opt] table opts `limits` (see termsrv.sandbox: for the load, and kept for
--   evaluating the rules)
-- @treturn[1] termsrv.policy
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"bad_policy"` (with `limit` when a limit stopped it)
function M.from_string(src, chunkname, opts)
  local limits = sandbox.limits(options(opts).limits)
  chunkname = chunkname or "=policy"
  local label = chunkname:gsub("^[@=]", "")
  if type(src) ~= "string" then error("policy.from_string: string expected, got " .. type(src), 2) end
  if #src > limits.file_size then
    return nil, errors.new{ code = "bad_policy", op = "load policy", limit = "file_size",
      message = string.format("%s: larger than %d bytes", label, limits.file_size) }
  end
  local env = sandbox.env{ date = sandbox.date, duration = duration }
  local chunk, err = load(src, chunkname, "t", env)
  if not chunk then
    return nil, errors.new{ code = "bad_policy", op = "load policy", message = err }
  end
  local ok, ret = sandbox.run(sandbox.meter(limits), chunk)
  if not ok then
    if errors.is(ret) then
      return nil, errors.with(ret, { op = "load policy",
        message = label .. ": while loading: " .. ret.message })
    end
    return nil, errors.new{ code = "bad_policy", op = "load policy", message = tostring(ret) }
  end
  local t = ret
  if t == nil then
    t = {}
    for _, k in ipairs(ENV_NAMES) do t[k] = rawget(env, k) end
  elseif type(t) ~= "table" then
    return nil, errors.new{ code = "bad_policy", op = "load policy",
      message = label .. ": the file must return a table (or set rules = {...}), got " .. type(t) }
  end
  local good, p = pcall(build, t)
  if not good then
    local msg = getmetatable(p) == Fail and p.msg or tostring(p)
    return nil, errors.new{ code = "bad_policy", op = "load policy", message = label .. ": " .. msg }
  end
  p.source, p.limits = label, limits
  return p
end

--- Loads a policy from a file, or builds it from a table. Run-time problems
-- (unreadable file, syntax error, invalid content) come back as `nil, err`.
-- Only a regular file of at most `limits.file_size` bytes is read.
-- @param src path of a Lua file, or a policy table
-- @tparam[opt] table opts `limits` (see termsrv.sandbox and `from_string`)
-- @treturn[1] termsrv.policy
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `"bad_policy"` (or `"io_error"` when the file cannot be read)
function M.load(src, opts)
  if getmetatable(src) == Policy then return src end
  opts = options(opts)
  local limits = sandbox.limits(opts.limits)
  if type(src) == "table" then
    local ok, p = pcall(build, src)
    if ok then
      p.limits = opts.limits and limits or nil
      return p
    end
    local msg = getmetatable(p) == Fail and p.msg or tostring(p)
    return nil, errors.new{ code = "bad_policy", op = "load policy", message = msg }
  end
  if type(src) ~= "string" then error("policy.load: path or table expected, got " .. type(src), 2) end
  local text, err, kind = sandbox.read_file(src, limits.file_size)
  if not text then
    if kind == "type" or kind == "size" then
      return nil, errors.new{ code = "bad_policy", op = "load policy", message = err,
        limit = kind == "size" and "file_size" or nil,
        hint = kind == "size" and "a policy is a small Lua file (the limit is file_size)"
          or "--policy takes a Lua file" }
    end
    return nil, errors.new{ code = "io_error", op = "load policy", message = err }
  end
  return M.from_string(text, "@" .. src, { limits = limits })
end

-- Policy:match inside the sandbox; `at.rule` names the rule being judged.
local function match(self, rec, ctx, at)
  if self.exclude then
    local ok, why = self.exclude:match(rec, ctx)
    if not ok and why:find("^excluded: ") then
      return nil, "excluded by policy: " .. why:gsub("^excluded: ", ""), "excluded"
    end
  end
  local best, best_why
  for _, rule in ipairs(self.rules) do
    at.rule = rule.name
    local good, ok, why, kind = pcall(rule.select.match, rule.select, rec, ctx)
    if not good then
      error(string.format("policy rule %q: select failed on %s #%s: %s", rule.name, tostring(rec.host),
        tostring(rec.id), tostring(ok)), 0)
    end
    if ok then return rule, why end
    local label = "rule " .. rule.name .. ": " .. why
    if kind == "protected" and best_why ~= "protected" then best, best_why = label, kind
    elseif kind == "excluded" and best_why ~= "protected" and best_why ~= "excluded" then
      best, best_why = label, kind
    elseif kind == "unknown" and (best_why == nil or best_why == "criteria") then
      best, best_why = label, kind
    elseif not best then best, best_why = label, kind end
  end
  return nil, best or "no rules", best_why or "criteria"
end

--- The first rule matching `rec`, with the reason. The rules and their
-- `where` predicates run within the policy's limits (termsrv.sandbox):
-- those of `meter`, shared by every call given it (a plan gives one), else a
-- fresh budget for this call. Raises when a predicate raises (a message
-- naming the rule and the session) or a limit stops it (a termsrv.Error
-- `bad_policy` with `limit`).
-- @tparam table rec a session record
-- @tparam[opt] table ctx `{ self = {user=, domain=}, now = epoch }`
-- @tparam[opt] table meter from termsrv.sandbox.meter
-- @treturn[1] table rule
-- @treturn[1] string why it matched
-- @treturn[2] nil
-- @treturn[2] string why no rule matched (the most telling reason)
-- @treturn[2] string `"protected"`, `"excluded"`, `"unknown"` (a value a rule needs
--   is not known) or `"criteria"`
function Policy:match(rec, ctx, meter)
  local at = {}
  local ok, a, b, c = sandbox.run(meter or sandbox.meter(self.limits), match, self, rec, ctx, at)
  if ok then return a, b, c end
  if errors.is(a) and a.limit then
    error(errors.with(a, { op = "match policy", host = rec.host,
      message = string.format("%s%s, session #%s: %s", self.source and (self.source .. ": ") or "",
        at.rule and string.format("policy rule %q", at.rule) or "policy exclude", tostring(rec.id),
        a.message) }), 0)
  end
  error(a, 0)
end

--- A rule by name.
function Policy:rule(name)
  for _, r in ipairs(self.rules) do if r.name == name then return r end end
  return nil
end

function Policy.__tostring(p)
  local lines = { string.format("termsrv.policy %s: %d rule%s, max_actions %d per host%s",
    p.name and string.format("%q", p.name) or "(unnamed)", #p.rules, #p.rules == 1 and "" or "s",
    p.max_actions, p.free_slots and (", free_slots " .. p.free_slots) or "") }
  if p.exclude then lines[#lines + 1] = "  exclude " .. (p.exclude.text:match("^{exclude=(.*)}$") or "") end
  for i, r in ipairs(p.rules) do
    local g = {}
    for _, s in ipairs(r.steps) do
      g[#g + 1] = s
      if r.grace[s] then g[#g + 1] = "(wait " .. duration.format(r.grace[s]) .. ")" end
    end
    lines[#lines + 1] = string.format("  %d. %s: %s -> %s", i, r.name, r.select.text, table.concat(g, " "))
  end
  return table.concat(lines, "\n")
end

return M
