--- The policy sandbox: limits on what a policy's code may use, and the
-- restricted environment it runs in (termsrv.policy loads policies with it,
-- and evaluates rules and `where` predicates under it).
--
-- Limits (`limits` tables: any of these keys; the rest take the defaults):
--
--  * `memory` (bytes, default 64 MiB): how much the Lua heap may grow while
--    the policy's code runs. Counted by the state's allocator (termsrv.core),
--    so it holds inside every C function too; past it an allocation fails
--    and the run ends.
--  * `instructions` (default 20 million): Lua VM instructions.
--  * `time` (seconds, default 2): wall-clock time, from the start of the load
--    (or of the plan) to the end.
--  * `file_size` (bytes, default 1 MiB): the largest policy file read; only
--    regular files are read (a directory, a FIFO or /dev/zero is refused).
--  * `pattern` (default 1e7, about 10 ms): the largest worst-case cost of one call of
--    `string.find`, `match`, `gmatch` or `gsub` (see below).
--
-- A limit, once reached, cannot be caught: the count hook raises on every
-- instruction from then on, and the library functions of the environment
-- (`string`, `table`, `math`, `utf8`, `tostring`, `pcall`, `print`, and the
-- caller's extras) check the limits before they run, so a `pcall` in the
-- policy only unwinds one level at a time; the run returns a `bad_policy`
-- error with `limit` = `"memory"`, `"instructions"` or `"time"`. A load gets
-- one budget; a plan gets one per host for all the rules and predicates it
-- evaluates (`Policy:match` without a meter: one per call). Instructions are
-- charged 1000 at a time, when the hook runs; the clock is read then, at the
-- start of every run and at every library call.
--
-- Pattern functions run in C, where no hook can stop them, and Lua's
-- matcher backtracks: `("a"):rep(40):find(("a*"):rep(40) .. "b")` would run
-- for ages. Inside the sandbox each call first bounds its cost: (subject
-- length + 1) for every `*`, `+` or `-` item, 2 for every `?`, times the
-- subject length again unless anchored with `^`, times the pattern length
-- plus the subject length for every `%b` and back-reference. A call whose
-- bound passes `pattern` is refused with an error (nothing runs); plain finds
-- cost subject times pattern length. The string methods (`s:find(...)`) are
-- the same functions while sandboxed code runs. `string.rep` of an empty
-- string, `table.move` over more than 2^22 slots, `table.sort` with a C
-- function as comparator (loops in C that allocate nothing), `table.sort`
-- of more than 100000 elements and `date` formats over 1000 bytes (`date`)
-- are refused as well.
--
-- Not contained: CPU time inside one C call below these bounds (at most
-- about 0.1 s at the default memory cap: a pattern call up to about 10 ms,
-- copying or scanning tens of MiB), the output a policy prints (it goes to
-- stderr), and anything a caller passes into the environment.
-- @module termsrv.sandbox

local core = require "termsrv.core"
local errors = require "termsrv.error"

local M = {}

--- The default limits.
M.DEFAULTS = { memory = 64 * 1024 * 1024, instructions = 20000000, time = 2, file_size = 1024 * 1024,
               pattern = 1e7 }

local LIMIT_KEYS = { memory = "number", instructions = "number", time = "number", file_size = "number",
                     pattern = "number" }
local MAX_FILE = 64 * 1024 * 1024
local MAX_MOVE = 1 << 22
local MAX_SORT = 100000 -- sorting 2 million numbers is 1.5 s in one C call

--- Checks and completes a limits table (raises on a bad one).
-- @tparam[opt] table t some of `memory`, `instructions`, `time`, `file_size`, `pattern`
-- @treturn table every limit
function M.limits(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then error("sandbox: limits: table expected, got " .. type(t), 2) end
  local l = {}
  for k, v in pairs(M.DEFAULTS) do l[k] = v end
  require("termsrv.check").options("sandbox: limits", t, LIMIT_KEYS)
  for k, v in pairs(t) do l[k] = v end
  local function int(k, min, max)
    local v = math.tointeger(l[k])
    if not v or v < min or (max and v > max) then
      error(string.format("sandbox: limits: %s: integer %s expected, got %s", k,
        max and (min .. ".." .. max) or (">= " .. min), tostring(l[k])), 3)
    end
    l[k] = v
  end
  int("memory", 1)
  int("instructions", 1)
  int("file_size", 0, MAX_FILE)
  for _, k in ipairs{ "time", "pattern" } do
    local v = l[k]
    if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
      error("sandbox: limits: " .. k .. ": positive finite number expected, got " .. tostring(v), 2)
    end
  end
  return l
end

--- A fresh budget: what one load, or one plan, may use.
-- @tparam[opt] table limits as for `limits`
-- @treturn table a meter for `run` (its fields `used`, `peak`, `instructions`, `tripped`
--   say what was spent)
function M.meter(limits)
  local l = M.limits(limits)
  local now = core.sandbox_clock()
  return { memory = l.memory, used = 0, instructions = l.instructions, deadline = now + l.time,
           limits = l, started = now }
end

-- ----------------------------------------------------------------------------
-- the restricted library

local check = core.sandbox_check
local byte, find, match, gmatch, gsub, rep = string.byte, string.find, string.match, string.gmatch,
  string.gsub, string.rep
local active -- the meter of the innermost running sandbox

--- `f` behind a check of the limits: past one, calling it raises.
function M.guard(f)
  return function(...)
    check()
    return f(...)
  end
end

-- Where the bracket class starting at `i` ends (Lua's classEnd); n + 1
-- when it does not (the real function then raises "malformed pattern").
local function set_end(p, i, n)
  local j = i + 1
  if byte(p, j) == 94 then j = j + 1 end -- ^
  repeat
    if j > n then return n + 1 end
    local c = byte(p, j)
    j = j + 1
    if c == 37 and j <= n then j = j + 1 end -- %]
  until byte(p, j) == 93
  return j + 1
end

local QUANT = { [42] = "star", [43] = "star", [45] = "star", [63] = "opt" } -- * + - ?

-- What makes a pattern costly: repetition items (each one multiplies the
-- work by the subject length), optional items, %b and back-references.
local function analyze(p, is_gmatch)
  local n = #p
  local a = { anchored = false, star = 0, opt = 0, linear = 0, len = n }
  local i = 1
  if not is_gmatch and byte(p, 1) == 94 then a.anchored, i = true, 2 end
  local function quant(j)
    local q = QUANT[byte(p, j)]
    if q then a[q] = a[q] + 1 return j + 1 end
    return j
  end
  while i <= n do
    local c = byte(p, i)
    if c == 40 or c == 41 then i = i + 1           -- ( )
    elseif c == 36 and i == n then i = i + 1       -- final $
    elseif c == 37 then                            -- %
      local d = byte(p, i + 1)
      if d == 98 then a.linear, i = a.linear + 1, i + 4               -- %bxy
      elseif d == 102 then                                            -- %f[set]
        if byte(p, i + 2) ~= 91 then break end
        i = set_end(p, i + 2, n)
      elseif d and d >= 48 and d <= 57 then a.linear, i = a.linear + 1, i + 2 -- %1
      else i = quant(i + 2) end
    elseif c == 91 then i = quant(set_end(p, i, n)) -- [set]
    else i = quant(i + 1) end
  end
  return a
end

--- The worst-case cost bound of matching `pattern` on a subject of `n`
-- bytes (see the module doc).
-- @tparam string pattern
-- @tparam integer n subject length
-- @tparam[opt] string kind `"plain"` (a plain find) or `"gmatch"` (`^` is no anchor)
-- @treturn number
function M.pattern_cost(pattern, n, kind)
  if kind == "plain" then return (n + 1) * (#pattern + 1) end
  local a = analyze(pattern, kind == "gmatch")
  local starts = a.anchored and 1 or (n + 1)
  return starts * (n + 1.0) ^ a.star * 2.0 ^ a.opt * (a.len + 1 + a.linear * (n + 1))
end

local function as_text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  return nil
end

-- Raises (at the caller of the string function) when the call could cost
-- more than the pattern limit; else nothing. Bad arguments are left to the
-- real function.
local function admit(name, s, p, kind)
  s, p = as_text(s), as_text(p)
  if not s or not p then return end
  local limit = active and active.limits.pattern or M.DEFAULTS.pattern
  local c = M.pattern_cost(p, #s, kind)
  if c > limit then
    error(string.format("string.%s: pattern too costly in a policy (up to %.3g steps on a %d-byte subject, "
      .. "the limit is %.3g): anchor it with ^, use fewer repetitions (* + - ?), a shorter subject, or a "
      .. "plain find",
      name, c, #s, limit), 3)
  end
end

local S = {}
for k, f in pairs(string) do S[k] = f end
function S.find(s, p, init, plain)
  admit("find", s, p, plain and "plain" or nil)
  return find(s, p, init, plain)
end
function S.match(s, p, init)
  admit("match", s, p)
  return match(s, p, init)
end
function S.gmatch(s, p, init)
  admit("gmatch", s, p, "gmatch")
  return gmatch(s, p, init)
end
function S.gsub(s, p, repl, n)
  admit("gsub", s, p)
  return gsub(s, p, repl, n)
end
function S.rep(s, n, sep)
  -- an empty result of any length is a loop in C that allocates nothing
  if s == "" and (sep == nil or sep == "") and math.tointeger(n) then return "" end
  return rep(s, n, sep)
end

local tmove, tsort = table.move, table.sort
local T = {}
for k, f in pairs(table) do T[k] = f end
function T.move(a1, f, e, t, a2)
  local fi, ei = math.tointeger(f), math.tointeger(e)
  if fi and ei and ei - fi >= MAX_MOVE then
    error(string.format("table.move: %d slots is too many in a policy (at most %d)", ei - fi + 1, MAX_MOVE),
      2)
  end
  return tmove(a1, f, e, t, a2)
end
function T.sort(t, comp)
  if type(comp) == "function" and debug.getinfo(comp, "S").what == "C" then
    error("table.sort: the comparator must be a Lua function in a policy", 2)
  end
  if type(t) == "table" and #t > MAX_SORT then
    error(string.format("table.sort: %d elements is too many in a policy (at most %d)", #t, MAX_SORT), 2)
  end
  return tsort(t, comp)
end

--- `os.date` with a format of at most 1000 bytes (one conversion of a
-- larger one is a C loop as long as the format).
function M.date(fmt, t)
  if type(fmt) == "string" and #fmt > 1000 then
    error(string.format("date: a %d-byte format is too long in a policy (at most 1000)", #fmt), 2)
  end
  return os.date(fmt, t)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function guarded(t)
  local g = {}
  for k, v in pairs(t) do g[k] = type(v) == "function" and M.guard(v) or v end
  return g
end

-- the string methods while sandboxed code runs
local METHODS = guarded(S)
local TABLE, UTF8 = guarded(T), guarded(utf8)

-- print: to stderr, so that it never mixes with the output (JSON Lines...)
local function print_stderr(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  io.stderr:write(table.concat(t, "\t", 1, t.n), "\n")
end

--- A fresh restricted environment: `string`, `table`, `math`, `utf8` (copies
-- of the restricted libraries, which a policy may change without effect on
-- the process), `pairs`, `ipairs`, `next`, `select`, `type`, `tostring`,
-- `tonumber`, `error`, `assert`, `pcall`, `print` (to stderr); plus `extra`
-- (name -> value; functions, and functions in tables, are guarded).
-- @tparam[opt] table extra
-- @treturn table
function M.env(extra)
  local env = {
    string = copy(METHODS), table = copy(TABLE), math = guarded(math), utf8 = copy(UTF8),
    pairs = pairs, ipairs = ipairs, next = next, select = select, type = type,
    tostring = M.guard(tostring), tonumber = tonumber, error = error, assert = assert,
    pcall = M.guard(pcall), print = M.guard(print_stderr),
  }
  for k, v in pairs(extra or {}) do
    if type(v) == "function" then env[k] = M.guard(v)
    elseif type(v) == "table" then env[k] = guarded(v)
    else env[k] = v end
  end
  return env
end

-- ----------------------------------------------------------------------------
-- running

local string_mt = getmetatable("")

local function mib(n)
  if n % (1024 * 1024) == 0 then return string.format("%d MiB", n // (1024 * 1024)) end
  if n % 1024 == 0 then return string.format("%d KiB", n // 1024) end
  return string.format("%d bytes", n)
end

--- What ended a run whose meter tripped, as one phrase.
function M.describe(meter)
  local l = meter.limits
  if meter.tripped == "memory" then return "memory limit reached (" .. mib(l.memory) .. ")" end
  if meter.tripped == "time" then
    return string.format("time limit reached (%g s; an endless loop?)", l.time)
  end
  return string.format("instruction budget spent (%d instructions; an endless loop?)", l.instructions)
end

--- Runs `f(...)` under the meter's limits, in the restricted string methods.
-- @tparam table meter from `meter` (spent by the run)
-- @tparam function f
-- @return `true, results...`, or `false, err`: the value `f` raised, or, when
--   a limit ended the run, a termsrv.Error `bad_policy` with `limit` (the
--   meter's `tripped`)
function M.run(meter, f, ...)
  if type(meter) ~= "table" or not meter.limits then error("sandbox.run: meter expected", 2) end
  if type(f) ~= "function" then error("sandbox.run: function expected, got " .. type(f), 2) end
  local saved_index, saved_active = string_mt.__index, active
  string_mt.__index, active = METHODS, meter
  local r = table.pack(pcall(core.sandbox_run, meter, f, ...))
  string_mt.__index, active = saved_index, saved_active
  if not r[1] then error(r[2], 0) end
  if not r[2] and meter.tripped then
    return false, errors.new{ code = "bad_policy", limit = meter.tripped, message = M.describe(meter),
      hint = "a policy runs within limits (memory, instructions, time): fix the policy, or raise the limit" }
  end
  return table.unpack(r, 2, r.n)
end

--- Reads a policy file: a regular file of at most `max` bytes.
-- @tparam string path
-- @tparam integer max bytes
-- @treturn[1] string the text
-- @treturn[2] nil
-- @treturn[2] string what is wrong
-- @treturn[2] string `"open"`, `"read"` (errno), `"type"` (not a regular file), `"size"`
function M.read_file(path, max)
  return core.sandbox_read(path, max)
end

return M
