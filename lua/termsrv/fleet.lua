--- Fleet sweeps: the same work on many hosts at once.
--
--     local termsrv = require "termsrv"
--     local f = termsrv.fleet{ hosts = "hosts.txt", parallel = 32, timeout = 30,
--                              connect = { user = "CORP\\ops", password = pw } }
--     for r in f:each(function(h) return h:sessions() end) do
--       if r.ok then print(r.value) else print(r.err) end
--     end
--
-- Every host gets its own worker process, forked from this one: libsmbclient
-- blocks, and the C core serialises all its calls behind one mutex, so
-- threads would take turns while processes really overlap their network
-- waits (bench/README.md has the figures). At most `parallel` workers live at
-- a time. A worker connects, runs the function with the host handle, sends
-- the return value back over a pipe, logs off and leaves with `_exit`, never
-- running this process's finalisers. A host that hangs is ended at its
-- deadline (SIGTERM to the worker's process group, SIGKILL after a grace
-- period) and reported as `timeout`; a worker that dies is reported as
-- `worker_crashed`. Neither stops the sweep, and every worker is reaped.
--
-- Results stream back in the order hosts finish. `each` keeps nothing per
-- finished host, so memory stays flat however long the host list is.
-- @module termsrv.fleet

local proc = require "termsrv.proc"
local errors = require "termsrv.error"
local serialize = require "termsrv.serialize"
local progress = require "termsrv.progress"
local targets = require "termsrv.targets"
local hostmod = require "termsrv.host"
require "termsrv.control" -- workers act on sessions too: reset, logoff...
require "termsrv.processes" -- and list processes

local M = {}

local Fleet = {}
Fleet.__index = Fleet
Fleet.__name = "termsrv.Fleet"
M.Fleet = Fleet

--- One host's outcome: `host` (its name), `ok`, `value` (what the function
-- returned), `err` (an error object when not ok), `duration` (seconds, from
-- the worker's start to its answer, or to its end when it gave none), `index`
-- (position in the host list), `spec` (`{host, port, name}`), `cpu` (the
-- worker's CPU seconds) and `maxrss` (its peak memory in KiB).
local Result = {}
Result.__index = Result
Result.__name = "termsrv.FleetResult"
M.Result = Result

function Result:__tostring()
  if self.ok then
    return string.format("%s: ok in %.2fs", self.host, self.duration or 0)
  end
  return string.format("%s: FAILED in %.2fs: %s", self.host, self.duration or 0, tostring(self.err))
end

local DEFAULTS = { parallel = 16, timeout = 60, connect_timeout = 5, grace = 1,
                   max_result = 64 * 1024 * 1024, fork = true }
local MAX_PARALLEL = 4096

local OPTION_TYPES = { hosts = "table|string", parallel = "number", timeout = "number",
  connect_timeout = "number", connect = "table", progress = "boolean", grace = "number",
  max_result = "number", stop = "function", stop_grace = "number", fork = "boolean" }

-- what `connect` may hold (termsrv.connect's options, minus the per-host ones)
local CONNECT_TYPES = { user = "string", domain = "string", password = "string", nthash = "string",
  kerberos = "boolean|table", timeout = "number", connect_timeout = "number", rpc_auth = "string",
  max_frag = "number" }

-- what a host given as a table may hold: where it is, and credentials that
-- differ from the fleet's
local SPEC_TYPES = { host = "string", port = "number", name = "string", user = "string",
  domain = "string", password = "string", nthash = "string", kerberos = "boolean|table",
  rpc_auth = "string", max_frag = "number" }

local function check_types(t, types, what, level)
  require("termsrv.check").options(what, t, types, level)
end

local function host_specs(hosts, level)
  if type(hosts) == "string" then
    local list, why = targets.read_hosts(hosts)
    if not list then error("termsrv.fleet: " .. why, level + 1) end
    return list
  end
  local out = {}
  for i, h in ipairs(hosts) do
    local what = "termsrv.fleet: hosts[" .. i .. "]"
    if type(h) == "string" then
      local specs, why = targets.specs(h)
      if not specs then error(what .. ": " .. why, level + 1) end
      table.move(specs, 1, #specs, #out + 1, out)
    elseif type(h) == "table" then
      check_types(h, SPEC_TYPES, what, level + 1)
      if not h.host or h.host == "" then error(what .. ": 'host' is required", level + 1) end
      local parsed, why = targets.parse_host(h.host)
      if not parsed then error(what .. ": " .. why, level + 1) end
      local spec = {}
      for k, v in pairs(h) do spec[k] = v end
      spec.host = parsed.host
      spec.port = h.port or parsed.port
      if spec.port ~= nil and targets.bad_port(spec.port) then
        error(what .. ": " .. targets.bad_port(spec.port), level + 1)
      end
      spec.name = h.name or h.host
      out[#out + 1] = spec
    else
      error(what .. ": string or table expected, got " .. type(h), level + 1)
    end
  end
  local n = 0
  for _ in pairs(hosts) do n = n + 1 end
  if n ~= #hosts then error("termsrv.fleet: hosts must be an array (a list without holes)", level + 1) end
  return out
end

local function has_secret(t)
  return t.password ~= nil or t.nthash ~= nil or t.kerberos ~= nil
end

--- Makes a fleet (nothing is contacted yet).
-- @tparam table opts `hosts` (array of `"host[:port]"` strings or tables
--   `{host=, port=, name=, user=, domain=, password= | nthash= | kerberos=}`,
--   or the name of a hosts file), `parallel` (workers at a time, default 16),
--   `timeout` (wall seconds per host, default 60), `connect_timeout`
--   (seconds, default 5), `connect` (termsrv.connect options shared by all
--   hosts: user, domain, password / nthash / kerberos, timeout, rpc_auth,
--   max_frag), `progress` (nil: only when stderr is a terminal), `grace`
--   (seconds between SIGTERM and SIGKILL at a deadline, default 1),
--   `max_result` (bytes a worker may send back, default 64 MiB),
--   `stop` (function giving a reason, e.g. a caught signal, once the sweep must stop: no
--   worker starts after it, and live ones get SIGTERM), `stop_grace` (seconds a stopped
--   worker has to report before SIGKILL, default 10), `fork` (default true; false: the
--   hosts run one after another in this process, with the same results and errors; the
--   deadline holds between calls: none starts after it, and no call may take longer than
--   `timeout`, so one in flight at the deadline ends within that much more)
-- @treturn Fleet
function M.new(opts)
  if type(opts) ~= "table" then error("termsrv.fleet: options table expected", 2) end
  check_types(opts, OPTION_TYPES, "termsrv.fleet", 2)
  if opts.hosts == nil then error("termsrv.fleet: 'hosts' is required", 2) end
  local self = setmetatable({}, Fleet)
  for k, v in pairs(DEFAULTS) do self[k] = opts[k] == nil and v or opts[k] end
  if math.type(self.parallel) ~= "integer" or self.parallel < 1 or self.parallel > MAX_PARALLEL then
    error("termsrv.fleet: parallel must be an integer from 1 to " .. MAX_PARALLEL, 2)
  end
  for _, k in ipairs{ "timeout", "connect_timeout", "max_result" } do
    local v = self[k]
    if v ~= v or v <= 0 then error("termsrv.fleet: " .. k .. " must be positive", 2) end
  end
  if self.grace ~= self.grace or self.grace < 0 then error("termsrv.fleet: grace must not be negative", 2) end
  self.stop, self.stop_grace = opts.stop, opts.stop_grace
  local connect = {}
  if opts.connect then
    check_types(opts.connect, CONNECT_TYPES, "termsrv.fleet: connect", 2)
    for k, v in pairs(opts.connect) do connect[k] = v end
  end
  if connect.connect_timeout == nil then connect.connect_timeout = self.connect_timeout end
  local RPC_AUTH = { kerberos = true, privacy = true, ntlm = true, none = true }
  if connect.rpc_auth ~= nil and not RPC_AUTH[connect.rpc_auth] then
    error('termsrv.fleet: connect.rpc_auth must be "kerberos", "privacy" (NTLM), "ntlm" or "none"', 2)
  end
  self.connect = connect
  self.hosts = host_specs(opts.hosts, 2)
  for i, spec in ipairs(self.hosts) do
    if not (has_secret(spec) or has_secret(connect)) then
      error(string.format("termsrv.fleet: no credentials for hosts[%d] (%s): give connect = "
        .. "{ password= | nthash= | kerberos=true }", i, spec.name), 2)
    end
  end
  self.progress = opts.progress
  return self
end

function Fleet:__len() return #self.hosts end

function Fleet:__tostring()
  return string.format("termsrv.Fleet(%d hosts, parallel %d, timeout %gs)", #self.hosts, self.parallel,
    self.timeout)
end

-- ---- the worker side ----------------------------------------------------------

local function connect_options(self, spec)
  local o = {}
  for k, v in pairs(self.connect) do o[k] = v end
  -- credentials given with the host replace the fleet's as a whole
  if has_secret(spec) then o.password, o.nthash, o.kerberos = nil, nil, nil end
  for k in pairs(SPEC_TYPES) do
    if spec[k] ~= nil then o[k] = spec[k] end
  end
  return o
end

local function public_spec(spec)
  return { host = spec.host, port = spec.port, name = spec.name }
end

-- A host that was stopped at its deadline, having reported what it did.
local function deadline_error(name, timeout)
  return errors.new{ code = "timeout", host = name, op = "fleet", message = string.format(
    "stopped at its deadline (%gs); it reported what it had done", timeout),
    hint = "raise --host-timeout / timeout= if the host is only slow" }
end

local function script_error(spec, message, traceback)
  return errors.new{ code = "script_error", host = spec.name, op = "run",
    message = tostring(message), traceback = traceback }
end

-- keeps a raised error as it was, with the traceback beside it
local function on_error(e)
  return { raised = e, traceback = debug.traceback(nil, 2) }
end

-- Runs in the worker: connect, call fn, send the answer, log off.
-- Worker-to-parent pieces: a tag ("n" progress note, "a" the answer), the
-- length in 8 hex digits, the bytes. A piece cut short (a worker killed
-- while writing) is dropped by the parent.
local function frame(tag, data) return string.format("%s%08x", tag, #data) .. data end

local function unframe(data)
  local notes, answer, i = {}, nil, 1
  while i + 8 <= #data do
    local tag, len = data:sub(i, i), tonumber(data:sub(i + 1, i + 8), 16)
    if not len or (tag ~= "n" and tag ~= "a") or i + 8 + len > #data then break end
    local piece = data:sub(i + 9, i + 8 + len)
    if tag == "a" then answer = piece else notes[#notes + 1] = piece end
    i = i + 9 + len
  end
  return answer, notes
end

-- the send of this process when it is a worker (see M.note), and the
-- handle of a host run in this process (whose deadline M.trap's stop asks)
local current_send, current_host

local function work(self, spec, fn, args, send)
  local t0 = proc.clock()
  current_send = send
  local o = connect_options(self, spec)
  if self.fork then
    -- os.exit would run this process's finalisers (the parent's handles,
    -- copied into the worker): leave without them
    os.exit = function(code) -- luacheck: ignore 122
      proc.exit(code == true and 0 or code == false and 1 or math.tointeger(code) or 0)
    end
  else
    -- no worker to end at the deadline: no call may outlast it alone, and
    -- none starts after it (the handle's deadline)
    o.timeout = math.min(o.timeout or 20, self.timeout)
  end
  local answer
  local ok, h, err = pcall(hostmod.connect, o)
  if not ok then
    h, err = nil, errors.new{ code = "invalid_parameter", host = spec.name, op = "connect",
      message = tostring(h) }
  end
  if not h then
    answer = { ok = false, err = err }
  else
    if not self.fork then
      h:set_deadline(math.max(self.timeout - (proc.clock() - t0), 0.001))
      current_host = h
    end
    local r = table.pack(xpcall(fn, on_error, h, public_spec(spec), table.unpack(args, 1, args.n)))
    current_host = nil
    if not r[1] then
      local e = r[2].raised
      if not self.fork and type(e) == "string" and e:find("interrupted!", 1, true) then
        -- Ctrl-C in this process ends the sweep, not just this host
        current_send = nil
        h:close()
        error(e, 0)
      end
      answer = { ok = false, err = errors.is(e) and e or script_error(spec, e, r[2].traceback) }
    elseif r[2] == nil and r[3] ~= nil then
      local e = r[3]
      answer = { ok = false, err = errors.is(e) and e
        or (type(e) == "table" and type(e.code) == "string") and errors.with(e, {}) or script_error(spec, e) }
    else
      answer = { ok = true, value = r[2] }
    end
    if h:past_deadline() then
      -- as a worker stopped at its deadline: what it did is in the value
      answer.ok, answer.err = false, deadline_error(spec.name, self.timeout)
    end
  end
  answer.finished = proc.clock() -- the parent may be busy when it reads this
  -- the value is encoded on its own, so that a refusal names its place in
  -- what fn returned
  local data, why = serialize.encode(answer.value)
  if data then
    answer.value = data
    data, why = serialize.encode(answer)
  end
  if not data then
    data = assert(serialize.encode{ ok = false, finished = answer.finished, err = errors.new{
      code = "not_serializable", host = spec.name, op = "send result",
      message = "cannot send the result back: " .. why,
      hint = "return plain data (tables, strings, numbers, booleans) or termsrv records" } })
  end
  send(frame("a", data))
  current_send = nil
  if h then h:close() end
end

--- In a worker: sends `value` (plain data) to the parent at once, as
-- progress of this host -- the results of actions as they are made, so
-- that a worker ended at its deadline or by a stop still reports what it
-- did (`r.notes` of its result). Outside a worker it does nothing.
function M.note(value)
  if not current_send then return false end
  local data = serialize.encode(value)
  if not data then return false end
  current_send(frame("n", data), true)
  return true
end

-- ---- the parent side ----------------------------------------------------------

local function fleet_error(w, code, message, extra)
  local e = errors.new{ code = code, host = w.spec.name, op = "fleet", message = message }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local SIGNAL_NAMES = {}
for name, n in pairs(proc.signals) do SIGNAL_NAMES[n] = "SIG" .. name end

-- The outcome of a worker that has exited, from its answer and its status.
local function outcome(self, w, status)
  local r = { host = w.spec.name, index = w.index, spec = public_spec(w.spec),
              duration = proc.clock() - w.started }
  if status then
    r.cpu = status.utime + status.stime
    r.maxrss = status.maxrss
  end
  local data, pieces = unframe(table.concat(w.chunks))
  data = data or ""
  if #pieces > 0 then
    r.notes = {}
    for _, p in ipairs(pieces) do
      local v, good = serialize.decode(p)
      if good then r.notes[#r.notes + 1] = v end
    end
  end
  local answer, ok, why
  if #data > 0 and not w.too_large then
    answer, ok, why = serialize.decode(data)
    if ok and type(answer) ~= "table" then ok, why = false, "not a table" end
    if ok and answer.value ~= nil then
      if type(answer.value) ~= "string" then
        ok, why = false, "value not encoded"
      else
        answer.value, ok, why = serialize.decode(answer.value)
      end
    end
  end
  if ok then
    -- a worker that answered and was then ended (in its logoff, at the
    -- deadline) still answered
    r.ok, r.value, r.err = answer.ok == true, answer.value, answer.err
    if type(answer.finished) == "number" and answer.finished >= w.started then
      r.duration = answer.finished - w.started
    end
    if w.timed_out and r.ok and (answer.finished or math.huge) >= w.deadline then
      -- it answered only because the deadline's SIGTERM stopped it: the
      -- host did not finish its work (what it did is in r.value)
      r.ok, r.err = false, deadline_error(w.spec.name, self.timeout)
    end
  elseif w.too_large then
    r.ok, r.err = false, fleet_error(w, "response_too_large", string.format(
      "the worker's result exceeds %d bytes; worker ended", self.max_result))
  elseif w.stopped then
    r.ok, r.err = false, fleet_error(w, "stopped", "the run was stopped; the worker ended before it reported",
      { hint = "its audit attempt lines say what it may have done" })
  elseif w.timed_out then
    r.ok, r.err = false, fleet_error(w, "timeout", string.format(
      "no result within %gs; worker ended", self.timeout),
      { hint = "the host or the network is slow or hung; raise timeout= if it is only slow" })
  elseif #data > 0 then
    r.ok, r.err = false, fleet_error(w, "worker_crashed", "malformed result from the worker: "
      .. tostring(why))
  elseif status and status.signal then
    local name = SIGNAL_NAMES[status.signal]
    r.ok, r.err = false, fleet_error(w, "worker_crashed", string.format("worker killed by signal %d%s%s",
      status.signal, name and (" (" .. name .. ")") or "", status.core and ", core dumped" or ""),
      { status = status.signal, status_name = name })
  else
    local code = status and status.code
    r.ok, r.err = false, fleet_error(w, "worker_crashed", code == proc.WORKER_FAILED
      and "worker failed before sending a result (see its message on stderr)"
      or string.format("worker exited with status %s before sending a result", tostring(code)),
      { status = code })
  end
  return setmetatable(r, Result)
end

-- What a sweep runs: `fn`, or the host method it names.
local function fn_of(fn, what)
  if type(fn) == "string" then
    local name = fn
    return function(h, _, ...)
      local m = h[name]
      if type(m) ~= "function" then error("host handles have no method '" .. name .. "'", 0) end
      return m(h, ...)
    end
  end
  if type(fn) ~= "function" then
    error(what .. ": function or host method name expected, got " .. type(fn), 3)
  end
  return fn
end

local Sweep = {}
Sweep.__index = Sweep

-- Closes a worker's pipe (and takes it out of the job's epoll set first).
function Sweep:close_fd(w)
  if not w.fd then return end
  if self.ep then proc.epoll_del(self.ep, w.fd) end
  proc.close(w.fd)
  w.fd = nil
end

-- Ends every live worker and reaps it (also used when the loop is left early).
function Sweep:close()
  -- a copy of this object inside a worker must not touch its siblings
  if proc.getpid() ~= self.owner then return end
  for pid, w in pairs(self.live) do
    proc.kill(pid, proc.signals.KILL, true)
    self:close_fd(w)
    proc.wait(pid, true)
    self.live[pid] = nil
  end
  self.nlive = 0
  if self.ep then proc.close(self.ep); self.ep = nil end
  if self.display then self.display:clear() end
end
Sweep.__close = Sweep.close
Sweep.__gc = Sweep.close

function Sweep:start_one()
  local spec = self.fleet.hosts[self.next]
  if not self.fleet.fork then
    local w = { spec = spec, index = self.next, started = proc.clock(), chunks = {} }
    self.next = self.next + 1
    work(self.fleet, spec, self.fn, self.args, function(data) w.chunks[#w.chunks + 1] = data end)
    self.queue[#self.queue + 1] = outcome(self.fleet, w, nil)
    return true
  end
  local close = { self.ep }
  for _, w in pairs(self.live) do
    if w.fd then close[#close + 1] = w.fd end
  end
  local fleet, fn, args = self.fleet, self.fn, self.args
  local pid, fd = proc.fork(function(send) work(fleet, spec, fn, args, send) end, close)
  if not pid then return false, fd end
  if self.ep then proc.epoll_add(self.ep, fd) end
  local now = proc.clock()
  self.live[pid] = { pid = pid, fd = fd, spec = spec, index = self.next, started = now,
    deadline = now + fleet.timeout, chunks = {}, size = 0 }
  self.nlive = self.nlive + 1
  self.next = self.next + 1
  return true
end

-- Once `stop()` gives a reason: no worker starts any more (the hosts left
-- get a `stopped` result), and each live one is sent SIGTERM, which a
-- worker that acts traps to finish its in-flight action and report; it is
-- killed `stop_grace` seconds later if it has not.
function Sweep:check_stop()
  if self.stopped or not (self.fleet.stop or self.cancelled) then return self.stopped end
  local why = self.cancelled or self.fleet.stop()
  if not why then return nil end
  self.stopped = why
  local now = proc.clock()
  for pid, w in pairs(self.live) do
    if not w.term_at then
      proc.kill(pid, proc.signals.TERM, true)
      w.term_at, w.stopped = now, true
      w.kill_at = now + (self.fleet.stop_grace or 10)
    end
  end
  while self.next <= #self.fleet.hosts do self:unstarted("stopped", "not started: the run was stopped") end
  return why
end

-- The result of the next host, which gets no worker.
function Sweep:unstarted(code, message)
  local spec = self.fleet.hosts[self.next]
  self.queue[#self.queue + 1] = setmetatable({ host = spec.name, index = self.next, spec = public_spec(spec),
    ok = false, duration = 0, not_started = code == "stopped" or nil,
    err = errors.new{ code = code, host = spec.name, op = "fleet", message = message } }, Result)
  self.next = self.next + 1
end

function Sweep:fill()
  if self:check_stop() then return end
  local total = #self.fleet.hosts
  while self.nlive < self.fleet.parallel and self.next <= total do
    if not self.fleet.fork then self:start_one() return end -- one host per result
    local ok, err = self:start_one()
    if not ok then
      if self.nlive > 0 then return end -- out of processes: wait for some to end
      self:unstarted("worker_failed", "cannot start a worker: " .. tostring(err))
    end
  end
end

-- Reads what a worker's pipe holds; marks the end of it.
function Sweep:drain(w)
  while w.fd do
    local data = proc.read(w.fd)
    if data == false then return end
    if data == nil or data == "" then
      self:close_fd(w)
      return
    end
    w.size = w.size + #data
    if w.size > self.fleet.max_result then
      w.too_large, w.chunks = true, {}
      proc.kill(w.pid, proc.signals.KILL, true)
      self:close_fd(w)
      return
    end
    w.chunks[#w.chunks + 1] = data
  end
end

function Sweep:reap(w, status)
  if w.fd then self:drain(w) end
  self:close_fd(w)
  self.live[w.pid] = nil
  self.nlive = self.nlive - 1
  self.queue[#self.queue + 1] = outcome(self.fleet, w, status)
end

-- Seconds until the sweep has something to do even if no pipe speaks (a
-- deadline, a grace period, a worker to reap), and the pipes to watch.
function Sweep:wake()
  local now = proc.clock()
  local fds, wake, pending_exit = {}, math.huge, false
  for _, w in pairs(self.live) do
    if w.fd then fds[#fds + 1] = w.fd else pending_exit = true end
    wake = math.min(wake, w.kill_at or w.term_at or w.deadline)
  end
  if self.nlive > 0 then wake = math.min(wake, self.check_all_at) end
  local timeout = math.max(0, wake - now)
  if pending_exit then timeout = math.min(timeout, 0.005) end
  if self.display and self.display.enabled then timeout = math.min(timeout, 0.25) end
  if self.fleet.stop then timeout = math.min(timeout, 0.2) end
  return timeout, fds
end

-- One round: wait (at most `max_wait` seconds) for pipes or deadlines, read,
-- enforce deadlines, reap.
function Sweep:step(max_wait)
  local timeout, fds = self:wake()
  if max_wait then timeout = math.min(timeout, max_wait) end
  local ready = proc.poll(fds, timeout) or {} -- nil: a signal came; check_stop looks at it
  local by_fd = {}
  for _, w in pairs(self.live) do
    if w.fd then by_fd[w.fd] = w end
  end
  for _, fd in ipairs(ready) do
    local w = by_fd[fd]
    if w then self:drain(w) end
  end
  local now = proc.clock()
  -- a worker's end of file means it exited, unless something it started
  -- still holds the pipe: look at every worker now and then as well
  local all = now >= self.check_all_at
  if all then self.check_all_at = now + 0.5 end
  for pid, w in pairs(self.live) do
    if all or not w.fd or w.kill_at then
      local status = proc.wait(pid)
      if status then self:reap(w, status) end
    end
    if self.live[pid] then
      if w.kill_at and now >= w.kill_at and w.kill_at ~= math.huge then
        proc.kill(pid, proc.signals.KILL, true)
        w.kill_at = math.huge -- sent; now only the reaping is left
      elseif not w.term_at and now >= w.deadline then
        w.timed_out = true
        proc.kill(pid, proc.signals.TERM, true)
        w.term_at = now
        w.kill_at = now + self.fleet.grace
      end
    end
  end
  if self.display then self.display:set_running(self.nlive) end
end

-- The next finished host's result, counted.
function Sweep:pop()
  local r = table.remove(self.queue, 1)
  if r.ok then self.ok = self.ok + 1 else self.failed = self.failed + 1 end
  return r
end

function Sweep:next_result()
  if self.display then self.display:draw() end
  while true do
    self:fill()
    if #self.queue > 0 then
      local r = self:pop()
      if self.display then
        self.display:add(r.ok, true)
        self.display:clear() -- the caller may print now; the line returns on the next call
      end
      return r
    end
    if self.nlive == 0 then
      if not self.finished then
        self.finished = true
        self.seconds = proc.clock() - self.started
        if self.display then self.display:finish() end
      end
      return nil
    end
    self:step()
    self:check_stop()
    if self.display then self.display:draw() end
  end
end

local function new_sweep(self, fn, ...)
  -- finalisers of objects already unreachable here must not run in a worker
  -- (it would shut down connections this process may still share)
  collectgarbage()
  return setmetatable({ fleet = self, fn = fn, args = table.pack(...), live = {}, nlive = 0,
    next = 1, queue = {}, ok = 0, failed = 0, started = proc.clock(), check_all_at = 0,
    owner = proc.getpid() }, Sweep)
end

--- Runs `fn` on every host, `parallel` at a time, and iterates over the
-- results as hosts finish: `for r in f:each(fn) do ... end`.
-- fn(host, spec, ...) runs in a worker with a connected host handle (`spec`
-- is `{host, port, name}`); its first return value comes back as `r.value`
-- (plain data; session, result and process records and error objects keep
-- their metatables). Returning `nil, err` or raising makes the host fail
-- (`r.err`; a raised error or a message string has code `script_error`).
-- fn may also be the name of a host method, called with the extra
-- arguments: `f:each("sessions", { all = true })`.
-- Leaving the loop early (break, error) ends the workers still running.
-- @treturn function iterator (plus the state, control and closing values of
--   a generic for)
function Fleet:each(fn, ...)
  local sweep = new_sweep(self, fn_of(fn, "fleet:each"), ...)
  local show = self.progress
  if show ~= false then
    sweep.display = progress.new{ total = #self.hosts, enabled = show }
    if not sweep.display.enabled then sweep.display = nil end
  end
  local function iter() return sweep:next_result() end
  return iter, nil, nil, sweep
end

-- What run returns prints as one line per host, then the summary.
local RunResults = { __name = "termsrv.FleetResults" }
function RunResults.__tostring(rs)
  local lines = {}
  for i, r in ipairs(rs) do lines[i] = tostring(r) end
  local s = rs.summary
  lines[#lines + 1] = string.format("%d host%s: %d ok, %d failed in %.2fs", s.total,
    s.total == 1 and "" or "s", s.ok, s.failed, s.seconds)
  return table.concat(lines, "\n")
end

--- Runs `fn` on every host (see `each`) and returns all results, in the
-- order the hosts finished, with `results.summary = {total, ok, failed, seconds}`.
function Fleet:run(fn, ...)
  local results = {}
  local iter, _, _, sweep = self:each(fn_of(fn, "fleet:run"), ...)
  local sweep_close <close> = sweep -- luacheck: ignore 211
  for r in iter do results[#results + 1] = r end
  results.summary = { total = #self.hosts, ok = sweep.ok, failed = sweep.failed,
                      seconds = sweep.seconds or (proc.clock() - sweep.started) }
  return setmetatable(results, RunResults)
end

-- ---- without blocking: a job for an event loop ------------------------------

local Job = {}
Job.__index = Job
Job.__name = "termsrv.FleetJob"
M.Job = Job

--- Starts `fn` on every host (as `each` does) and returns at once with a
-- job for the caller's event loop: watch `job:fd()` for readability and
-- call `job:step()` when it is readable or when `job:timeout()` seconds have
-- passed; each step returns the results that finished since the last one
-- and never blocks. `job:cancel()` stops the sweep like a caught signal: no
-- worker starts any more and live ones get SIGTERM (a worker that acts and
-- trapped it -- `fleet.trap()` -- finishes its in-flight action, audits it
-- and reports; others end at once), and is killed `stop_grace` seconds later.
-- `job:close()` (also `<close>` and the garbage collector) kills and reaps
-- whatever still runs. The hosts run in workers even with `fork = false`.
-- termsrv.luv wraps this for luv.
-- @treturn termsrv.FleetJob
function Fleet:start(fn, ...)
  local sweep = new_sweep(self, fn_of(fn, "fleet:start"), ...)
  if not self.fork then
    -- an event loop must not wait for a host: this process cannot run one
    local copy = setmetatable({ fork = true }, { __index = self })
    sweep.fleet = copy
  end
  local ep, err = proc.epoll()
  if not ep then error("fleet:start: " .. tostring(err), 2) end
  sweep.ep = ep
  sweep:fill() -- the first workers start now; their results come with the first step
  return setmetatable({ sweep = sweep, results = {} }, Job)
end

--- The descriptor to watch for readability (an epoll descriptor holding
-- every live worker's pipe; nil once the job is closed).
function Job:fd() return self.sweep.ep end

--- Seconds after which `step` is due even if `fd` stays quiet (a deadline,
-- a grace period, a worker to reap); 0 when results are waiting; nil when
-- the job is done.
function Job:timeout()
  local s = self.sweep
  if #s.queue > 0 or (s.nlive < s.fleet.parallel and s.next <= #s.fleet.hosts and not s.stopped) then
    return 0
  end
  if s.nlive == 0 then return nil end
  return (s:wake())
end

--- Reads what the workers sent, enforces deadlines, reaps, starts workers;
-- never blocks. Returns the results finished since the last step (also
-- kept in `job.results`, in the order they finished).
-- @treturn {FleetResult,...}
function Job:step()
  local s = self.sweep
  local out = {}
  if not s.ep then return out end
  s:fill()
  if s.nlive > 0 then s:step(0) end
  s:check_stop()
  s:fill()
  while #s.queue > 0 do
    out[#out + 1] = s:pop()
    self.results[#self.results + 1] = out[#out]
  end
  if s.nlive == 0 and s.next > #s.fleet.hosts and not s.seconds then
    s.seconds = proc.clock() - s.started
  end
  return out
end

--- True once every host has a result.
function Job:done()
  local s = self.sweep
  return s.nlive == 0 and #s.queue == 0 and s.next > #s.fleet.hosts
end

--- Stops the sweep (see `start`); `reason` is what the results say (default "cancelled").
function Job:cancel(reason)
  self.sweep.cancelled = reason or "cancelled"
  self.sweep:check_stop()
end

--- Kills and reaps every worker still running; idempotent.
function Job:close() self.sweep:close() end
Job.__close = Job.close
Job.__gc = Job.close

function Job:__tostring()
  local s = self.sweep
  return string.format("termsrv.FleetJob(%d of %d hosts done, %d running%s)", #self.results,
    #s.fleet.hosts, s.nlive, s.cancelled and ", cancelled" or "")
end

--- In a worker: traps SIGTERM and SIGINT from now on, so that a stop
-- (job:cancel(), a deadline, the caller's `stop`) lets the work finish its
-- in-flight action instead of dying in it; returns the function a plan's
-- `apply{stop = ...}` (or any loop) asks before each action. For a host run
-- in this process (`fork = false`) that function also gives `"deadline"`
-- once the host's deadline has passed.
-- @treturn function giving the caught signal (or "deadline"), or nil
function M.trap()
  proc.trap()
  return function()
    return proc.caught() or (current_host and current_host:past_deadline() and "deadline") or nil
  end
end

setmetatable(M, { __call = function(_, opts) return M.new(opts) end })

return M
