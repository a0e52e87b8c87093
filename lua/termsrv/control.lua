--- Session control: reset, logoff, disconnect, connect, message, kill,
-- shutdown -- added to host handles (`termsrv.host`).
--
-- Every session action takes a session record or an id. Given a record, it
-- first re-reads the session and refuses (`session_changed`) when the id now
-- belongs to another user or another logon, so that a cleanup never hits a
-- user who logged on again in the meantime. Each action returns a result
-- record on success, or `nil, err, result` on failure (the result record
-- then has `ok = false` and `err`). With `wait = true` the outcome is
-- confirmed by re-querying: the session is gone, or in the expected state.
-- @module termsrv.control

local errors = require "termsrv.error"
local host = require "termsrv.host"
local record = require "termsrv.record"
local Process = require("termsrv.processes").Process -- also adds host:processes, which kill uses
local printable = require("termsrv.text").printable

local Host = host.Host
local conn, now = host.conn, host.now

local M = {}

local Result = {}
Result.__index = Result
Result.__name = "termsrv.Result"
M.Result = Result

--- Field order of result records in JSON and CSV.
M.FIELDS = { "host", "id", "user", "domain", "action", "fallback", "before", "after", "answer",
             "pid", "image", "duration", "ok", "error", "rule" }

local function result_line(self)
  local what = self.pid and string.format("kill pid %d%s in session %s", self.pid,
      self.image and (" (" .. self.image .. ")") or "", tostring(self.id))
    or self.id == nil and self.action -- shutdown and friends act on the host
    or string.format("%s session %s (%s): %s -> %s", self.action, tostring(self.id),
      record.account(self) or "-", self.before or "?", self.after or "?")
  local s = string.format("%s: %s in %.2fs: %s", self.host or "?", what, self.duration or 0,
    self.ok and "ok" or ("FAILED " .. tostring(self.err)))
  if self.fallback then s = s .. " (via " .. self.fallback .. ")" end
  if self.answer then s = s .. " answer=" .. self.answer end
  return s
end

function Result:__tostring() return printable(result_line(self)) end

--- Plain table for JSON/CSV (the error as its code and message).
function Result:totable()
  local t = {}
  for _, k in ipairs(M.FIELDS) do t[k] = self[k] end
  if self.err then t.error = tostring(self.err) end
  return t
end

local sleep = require("termsrv.need").need("system").sleep
--- Sleeps `seconds` (lua-system's sleep).
M.sleep = sleep

-- Compares only what the caller's record knows: a listing made without
-- times has no logon time, and that must not look like a new logon.
local function same_logon(want, cur)
  local function ieq(a, b) return (a or ""):lower() == (b or ""):lower() end
  if not ieq(want.user, cur.user) or not ieq(want.domain, cur.domain) then return false end
  if want.logon_time and cur.logon_time and want.logon_time ~= cur.logon_time then return false end
  return true
end

local function changed(self, op, id, message)
  return nil, errors.new{ code = "session_changed", host = self.name, op = op .. " session " .. id,
    message = message .. "; nothing done", hint = "list the sessions again and decide on the new state" }
end

-- Resolves `s` (record or id) to the current state of the session. Given a
-- record, the session must still be that logon in the state the record
-- showed (`opts.any_state` lifts the state check: a user who reconnected
-- is not the stale session the caller saw), and `opts.check(fresh)`, when
-- given, must return nothing: a reason it returns refuses the action.
local function current(self, s, op, opts)
  opts = opts or {}
  local id = type(s) == "table" and s.id or s
  if math.type(id) ~= "integer" or id < 0 or id > 0xFFFFFFFF then
    error(op .. ": session record or session id (integer 0..4294967295) expected, got " .. tostring(id), 3)
  end
  local cur, err = self:session(id, { client = opts.client, locked = opts.locked })
  if not cur then return nil, errors.with(err, { op = op .. " session " .. id }) end
  if type(s) == "table" and not same_logon(s, cur) then
    return changed(self, op, id, string.format("session %d is now %s%s, not the %s seen before", id,
      record.account(cur) or "without a user",
      cur.logon_time and (" (logged on " .. os.date("!%Y-%m-%d %H:%M:%SZ", cur.logon_time) .. ")") or "",
      record.account(s) or "session"))
  end
  if type(s) == "table" and s.state and not opts.any_state and s.state ~= cur.state then
    return changed(self, op, id, string.format("session %d is %s now, not %s as seen before", id,
      tostring(cur.state), s.state))
  end
  if opts.check then
    local why = opts.check(cur)
    if why then return changed(self, op, id, string.format("session %d: %s", id, why)) end
  end
  return cur
end

-- Polls until `done(cur_or_nil, err)` holds or the deadline passes.
local function verify(self, id, done, timeout)
  local t_end = now() + (timeout or 10)
  local delay = 0.05
  repeat
    local cur, err = self:session(id)
    local state = cur and cur.state or (err and err.code == "session_not_found" and "gone") or nil
    if state and done(state) then return state end
    if now() >= t_end then
      return nil, state or (err and err.code) or "unknown"
    end
    sleep(delay)
    delay = math.min(delay * 2, 0.5)
  until false
end

-- The start of an action on session `s` (record or id): its result record
-- (`duration` holds the start time until `finish`) and the session now, or
-- nil and why not.
local function begin(self, s, op, opts)
  local r = { host = self.name, id = type(s) == "table" and s.id or s, action = op, duration = now() }
  local cur, err = current(self, s, op, opts)
  if cur then r.id, r.user, r.domain, r.before = cur.id, cur.user, cur.domain, cur.state end
  return r, cur, err
end

local function finish(self, r, err)
  r.duration = now() - r.duration
  if err then
    r.ok, r.err = false, errors.with(err, { host = self.name })
    return nil, r.err, setmetatable(r, Result)
  end
  r.ok = true
  return setmetatable(r, Result)
end

-- Failures after which the request may or may not have been carried out.
local ANSWER_LOST = { timeout = true, connection_lost = true, malformed_response = true,
  bad_signature = true, invalid_checksum = true }

-- Shared shape of reset / logoff / disconnect.
local function act(self, s, opts, spec)
  opts = opts or {}
  local op = spec.action
  local r, cur, err = begin(self, s, op, opts)
  if not cur then return finish(self, r, err) end
  if cur.kind == "listener" and not opts.listener then
    return finish(self, r, errors.new{ code = "invalid_parameter", op = op .. " session " .. cur.id,
      message = "session " .. cur.id .. " is a listener; acting on it affects every session it accepted",
      hint = "pass listener=true if that is really meant" })
  end
  local ok
  ok, err = spec.call(conn(self), cur.id)
  if not ok and spec.fallback and opts.fallback ~= false and spec.fallback_on[err.code] then
    local ok2, err2 = spec.fallback.call(conn(self), cur.id)
    if not ok2 and err2.code == "session_not_found" then
      -- the first request ended the session after all
      ok, err, r.after, r.note = true, nil, "gone", op .. " answered " .. err.code .. "; the session is gone"
    elseif ok2 then
      ok, err, r.fallback = true, nil, spec.fallback.name
    else
      err = errors.with(err, { message = err.message .. "; then " .. spec.fallback.name .. ": " ..
                                 tostring(err2.message) })
    end
  end
  if not ok and ANSWER_LOST[err.code] then
    -- The request may have been carried out: look before reporting.
    local fresh, rerr = self:session(cur.id)
    if not fresh and rerr.code == "session_not_found" and spec.expect("gone") then
      r.after, r.note = "gone", "the answer was lost (" .. err.code .. "); re-read: the session is gone"
      return finish(self, r)
    end
    r.after = fresh and fresh.state or nil
    r.state_unknown = fresh == nil
    err = errors.with(err, { message = err.message .. (fresh and ("; re-read: session still " .. fresh.state)
      or "; the session could not be re-read: its state is unknown") })
  end
  if not ok then return finish(self, r, errors.with(err, { op = op .. " session " .. cur.id })) end
  if opts.wait then
    local after, seen = verify(self, cur.id, spec.expect, opts.timeout)
    r.after = after or seen
    if not after then
      return finish(self, r, errors.new{ code = "not_verified", op = op .. " session " .. cur.id,
        message = string.format("the host accepted the %s but session %d is still %s", op, cur.id, seen),
        hint = "the session may be slow to end; check again, or reset it" })
    end
  end
  return finish(self, r)
end

local gone = function(state) return state == "gone" end

-- Failures after which logoff falls back to reset: the session is stuck, not
-- protected (access_denied and session_not_found are answers, not hangs).
local LOGOFF_FALLBACK = { timeout = true, connection_lost = true, server_error = true,
  invalid_state = true, rpc_fault = true, malformed_response = true, not_supported = true }

--- Resets a session (RpcWinStationReset: the real rwinsta). The user's
-- programs are ended without saving.
-- @param s session record or id
-- @tparam[opt] table opts `wait` (verify it is gone), `timeout` (seconds to
--   wait, default 10), `listener` (allow resetting a listener)
function Host:reset(s, opts)
  return act(self, s, opts, { action = "reset", expect = gone,
    call = function(c, id) return c:reset(id, opts and opts.wait or false) end })
end

--- Logs a session off (RpcLogoff). If the logoff fails or hangs, the session
-- is reset instead unless `fallback = false`.
-- @param s session record or id
-- @tparam[opt] table opts `wait`, `timeout`, `fallback` (default true)
function Host:logoff(s, opts)
  return act(self, s, opts, { action = "logoff", expect = gone,
    call = function(c, id) return c:logoff(id) end,
    fallback = { name = "reset", call = function(c, id) return c:reset(id, true) end },
    fallback_on = LOGOFF_FALLBACK })
end

--- Disconnects a session (RpcDisconnect): the user stays logged on.
-- @param s session record or id
-- @tparam[opt] table opts `wait`, `timeout`
function Host:disconnect(s, opts)
  return act(self, s, opts, { action = "disconnect",
    expect = function(state) return state == "disconnected" end,
    call = function(c, id) return c:disconnect(id) end })
end

--- Connects session `source` to the station of session `target` (tscon).
-- @param source session record or id (the session to move)
-- @param target session record or id (whose station it takes over)
-- @tparam[opt] string password the password of the source session's user,
--   when the caller is not that user
-- @tparam[opt] table opts `wait`, `timeout`
function Host:connect(source, target, password, opts)
  opts = opts or {}
  local r, src, err = begin(self, source, "connect")
  if not src then return finish(self, r, err) end
  local tgt
  tgt, err = current(self, target, "connect")
  if not tgt then return finish(self, r, err) end
  local ok
  ok, err = conn(self):connect(src.id, tgt.id, password)
  if not ok then return finish(self, r, errors.with(err, { op = "connect session " .. src.id })) end
  if opts.wait then
    r.after = verify(self, src.id, function(st) return st == "active" or st == "connected" end, opts.timeout)
  end
  return finish(self, r)
end

--- Message box buttons (the MessageBox style values).
M.BUTTONS = { ok = 0, okcancel = 1, abortretryignore = 2, yesnocancel = 3, yesno = 4, retrycancel = 5 }
--- Answers (MessageBox return values, IDTIMEOUT and IDASYNC).
M.ANSWERS = { [1] = "ok", [2] = "cancel", [3] = "abort", [4] = "retry", [5] = "ignore", [6] = "yes",
              [7] = "no", [32000] = "timeout", [32001] = "async" }

--- Shows a message box in a session (msg).
-- @param s session record or id
-- @tparam string title
-- @tparam string text
-- @tparam[opt] table opts `timeout` (seconds the box stays, 0 = until answered),
--   `wait` (wait for the answer; default false: returns "async"),
--   `buttons` (`"ok"`, `"okcancel"`, `"yesno"`, `"yesnocancel"`, `"retrycancel"`,
--   `"abortretryignore"`), `style` (raw MessageBox style, overrides buttons)
-- @return result record with `answer`
function Host:message(s, title, text, opts)
  if type(title) ~= "string" or type(text) ~= "string" then
    error("host:message: title and text must be strings", 2)
  end
  opts = opts or {}
  local style = opts.style or M.BUTTONS[opts.buttons or "ok"]
  if not style then error("host:message: unknown buttons '" .. tostring(opts.buttons) .. "'", 2) end
  local r, cur, err = begin(self, s, "message", opts)
  if not cur then return finish(self, r, err) end
  r.after = cur.state
  -- A wait lasts as long as the box may stay (or until answered): longer
  -- than one SMB exchange may take on this handle, so such a wait goes
  -- over a connection of its own whose timeout covers it (libsmbclient
  -- fixes a connection's timeout when it is made).
  local box = opts.timeout or 0
  local needed = opts.wait and (box > 0 and math.min(box + 15, 86400) or 86400)
  local via = self
  if needed and needed > self:call_timeout() then
    local long
    long, err = self:sibling{ timeout = needed }
    if not long then return finish(self, r, errors.with(err, { op = "message session " .. cur.id })) end
    via = long
  end
  local answer
  answer, err = conn(via):message(cur.id, title, text, style, box, opts.wait)
  if via ~= self then via:close() end
  if not answer then return finish(self, r, errors.with(err, { op = "message session " .. cur.id })) end
  r.answer = M.ANSWERS[answer] or tostring(answer)
  return finish(self, r)
end

--- Ends processes (tskill / taskkill).
-- @param target a pid, a process record, or a filter table as for
--   `processes` (at least one of `name`, `session`, `user`)
-- @tparam[opt] table opts `exit_code` (default 0)
-- @return array of result records (one per process), or nil, err
function Host:kill(target, opts)
  opts = opts or {}
  local procs
  if math.type(target) == "integer" then
    procs = { { pid = target } }
  elseif getmetatable(target) == Process then
    procs = { target }
  elseif type(target) == "table" then
    if not (target.name or target.session or target.user) then
      error("host:kill: give a pid or a filter with name, session or user", 2)
    end
    local err
    procs, err = self:processes(target)
    if not procs then return nil, err end
  else
    error("host:kill: pid, process record or filter table expected", 2)
  end
  local results, failed = {}, 0
  for _, p in ipairs(procs) do
    local r = { host = self.name, id = p.session, action = "kill", pid = p.pid, image = p.image,
                duration = now() }
    local ok, err = conn(self):kill(p.pid, opts.exit_code or 0)
    if not ok and err.code == "invalid_parameter" then
      -- Windows answers a pid it does not know like OpenProcess does:
      -- ERROR_INVALID_PARAMETER / STATUS_INVALID_PARAMETER
      err = errors.with(err, { code = "process_not_found",
        hint = "the process does not exist (any more); list the processes again" })
    end
    local res, _, res_failed = finish(self, r,
      not ok and errors.with(err, { op = "kill process " .. p.pid }) or nil)
    if not res then failed = failed + 1 end
    results[#results + 1] = res or res_failed
  end
  if #procs == 1 and failed == 1 then return nil, results[1].err, results end
  return results
end

--- Shuts the host down (shutdown /m): refuses unless `confirm = true`.
-- @tparam table opts `confirm` (must be true), and at most one of
--   `reboot`, `poweroff`, `logoff` (log every user off, keep running);
--   the default is a shutdown.
function Host:shutdown(opts)
  if type(opts) ~= "table" or opts.confirm ~= true then
    error("host:shutdown: refusing without confirm=true (this ends every session on " ..
      self.name .. ")", 2)
  end
  local n = (opts.reboot and 1 or 0) + (opts.poweroff and 1 or 0) + (opts.logoff and 1 or 0)
  if n > 1 then error("host:shutdown: choose one of reboot, poweroff, logoff", 2) end
  -- WSD_LOGOFF 1, WSD_SHUTDOWN 2, WSD_REBOOT 4, WSD_POWEROFF 8
  local flags = opts.logoff and 1 or opts.reboot and 6 or opts.poweroff and 10 or 2
  local what = opts.logoff and "logoff" or opts.reboot and "reboot"
    or opts.poweroff and "poweroff" or "shutdown"
  local r = { host = self.name, action = what, duration = now() }
  local ok, err = conn(self):shutdown(flags)
  if not ok then return finish(self, r, errors.with(err, { op = what })) end
  return finish(self, r)
end

return M
