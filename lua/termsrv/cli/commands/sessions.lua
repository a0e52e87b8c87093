--- Session verbs: `termsrv reset` (rwinsta), `logoff`, `disconnect`
-- (tsdiscon), `message` (msg) and `connect` (tscon).
-- @module termsrv.cli.commands.sessions

local audit = require "termsrv.cli.audit"
local credentials = require "termsrv.credentials"
local output = require "termsrv.cli.output"
local plans = require "termsrv.cli.plans"
local policy = require "termsrv.policy"
local util = require "termsrv.cli.util"

local M = {}

local usage_error = util.usage_error

-- Selector table from the selector options; nil when none was given.
local function selector_from(args)
  local sel, any = {}, false
  local function set(key, v)
    if v ~= nil and not (type(v) == "table" and #v == 0) then sel[key] = v; any = true end
  end
  set("user", util.list(args.user))
  set("state", util.list(args.state))
  set("station", util.list(args.station))
  if args.from_client and #args.from_client > 0 then
    local names, addrs = {}, {}
    for _, c in ipairs(args.from_client) do
      if c:match("^[%d%.%*/]+$") then addrs[#addrs + 1] = c else names[#names + 1] = c end
    end
    set("client", names)
    set("address", addrs)
  end
  for _, k in ipairs{ "min_idle", "min_disconnected" } do
    if args[k] then
      local d, err = util.duration(args[k])
      if not d then usage_error("--" .. k:gsub("_", "-") .. ": " .. err) end
      set(k, d)
    end
  end
  if args.exclude_user and #args.exclude_user > 0 then sel.exclude_users = args.exclude_user end
  if args.all_users then any = true end
  if not any then return nil end
  return sel
end

-- The sessions asked for: ids (bare numbers after the hosts, and --id) and
-- the selector of the selector options (nil without any).
local function wanted(ctx, args)
  local ids = ctx.numbers
  for _, id in ipairs(util.list(args.id)) do ids[#ids + 1] = id end
  return ids, selector_from(args)
end

-- reset, logoff, disconnect, message -----------------------------------------

-- What `message` sends: a rule's message (termsrv.policy).
local function message_of(ctx, args)
  local text = args.text
  if text == "-" then text = ctx.stdin:read("a"):gsub("\n$", "") end
  if not text or text == "" then usage_error("--text is required ('-' reads standard input)") end
  -- a wait lasts as long as the box may stay: the host's deadline too
  if args.wait and not ctx.host_timeout then
    ctx.host_timeout = (args.time or 0) > 0 and args.time + 60 or 86460
  end
  return { title = args.title, text = text, timeout = args.time, wait = args.wait, buttons = args.buttons }
end

-- Every verb takes the same path: a one-rule policy (ids are a rule matching
-- those ids), planned, re-judged and audited per action by the executor of
-- termsrv.plan. Messages go out at once and change no state: not audited.
local function session_action(action)
  return function(ctx, args)
    local ids, sel = wanted(ctx, args)
    if #ids > 0 and sel then
      usage_error("give session ids or selectors (--user, --state, ...), not both")
    end
    if #ids == 0 and not sel then
      usage_error("which sessions? give session ids, selectors (--user, --state, --min-idle, ...) "
        .. "or --all-users")
    end
    local msg = action == "message" and message_of(ctx, args) or nil
    local apply = msg ~= nil or util.apply_wanted(args)
    if #ids > 0 then
      apply = not args.dry_run
      sel = { id = ids }
    else
      if msg then -- to whoever is logged on and there to read it
        sel.state = sel.state or { "active", "connected", "idle", "shadow", "connect_query" }
        sel.user = sel.user or "?*"
        sel.include_protected = { "console", "self" }
      end
      util.compile(sel)
    end
    local pol_ok, pol = pcall(policy.new, { name = "termsrv " .. action,
      -- a message is no cleanup: no cap
      max_actions = #ids > 0 and #ids or msg and 100000 or args.max_actions or policy.DEFAULT_MAX_ACTIONS,
      rules = { { name = #ids > 0 and "command line" or action, select = sel, action = action,
                  message = msg } } })
    if not pol_ok then usage_error(tostring(pol)) end
    local path = not msg and audit.prepare(ctx, args, apply)
    if path == nil then return output.EXIT_FAILED end
    local extra = { timeout = args.wait_timeout, listener = args.listener or nil }
    if action == "logoff" and args.no_fallback then extra.fallback = false end
    local results = plans.run_policy(ctx, pol, { apply = apply, audit = path, wait = not args.no_wait,
                                                 extra = extra, ids = #ids > 0 and ids or nil })
    return plans.finish_policy(ctx, results, pol.name, nil, apply)
  end
end

M.reset = session_action("reset")
M.logoff = session_action("logoff")
M.disconnect = session_action("disconnect")
M.message = session_action("message")

-- connect ---------------------------------------------------------------------

function M.connect(ctx, args)
  if #ctx.hosts ~= 1 or #ctx.numbers ~= 2 then usage_error("connect needs HOST SOURCE TARGET") end
  local source, target = ctx.numbers[1], ctx.numbers[2]
  local password
  if args.ask_password then
    local prompt = ctx.prompt
    if prompt == nil and credentials.stdin_is_tty() then prompt = credentials.ask end
    password = prompt and prompt("Password of the user of session " .. source .. ": ", false)
    if not password then usage_error("--ask-password needs a terminal") end
  end
  local path = audit.prepare(ctx, args, true)
  if path == nil then return output.EXIT_FAILED end
  output.stream_rows(ctx)
  local results = plans.run_actions(ctx, path, function(h, runner)
    local src = h:session(source)
    local entry = plans.entry(h, "connect", "connect", "session " .. source .. " to " .. target,
                              src or { id = source })
    return { runner:act(entry, function()
      return h:connect(src or source, target, password, { wait = not args.no_wait })
    end) }
  end)
  return output.finish_rows(ctx, results)
end

return M
