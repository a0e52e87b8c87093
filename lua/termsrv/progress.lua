--- A one-line progress display for sweeps over many hosts.
--
--     local progress = require "termsrv.progress"
--     local p = progress.new{ total = #hosts }     -- shown only when stderr is a terminal
--     for ... do p:add(ok) end                     -- one finished host
--     p:finish()                                   -- the summary line; returns the summary
--
-- The line (on stderr, rewritten in place) reads
-- `[ 120/200] 3 failed  28.4 hosts/s  12 running  ETA 3s`. Nothing at all is
-- written when the stream is not a terminal (a pipe, a file, a CI log), so
-- output meant for other programs stays clean; the summary is still returned.
-- Call `p:clear()` before printing to the same terminal and the next `p:draw()`
-- puts the line back; `termsrv.fleet` does this around each result it hands
-- out.
-- @module termsrv.progress

local M = {}

local Progress = {}
Progress.__index = Progress
Progress.__name = "termsrv.Progress"

local function clock_fn()
  return require("termsrv.need").need("system").monotime
end

--- True when `stream` (default io.stderr) is a terminal.
function M.is_terminal(stream)
  return require("termsrv.proc").isatty(stream or io.stderr)
end

--- Seconds as `4s`, `2m05s`, `1h02m`.
function M.format_duration(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%dh%02dm", s // 3600, (s % 3600) // 60)
end

--- The summary as one line: `200 hosts in 7.1s: 197 ok, 3 failed (28.2 hosts/s)`.
-- @tparam table s `total`, `ok`, `failed`, `seconds` (a fleet summary)
function M.summary_line(s)
  local rate = s.seconds > 0 and (s.ok + s.failed) / s.seconds or 0
  local line = string.format("%d host%s in %.1fs: %d ok, %d failed (%.1f hosts/s)", s.total,
    s.total == 1 and "" or "s", s.seconds, s.ok, s.failed, rate)
  if s.ok + s.failed < s.total then
    line = line .. string.format(", %d not done", s.total - s.ok - s.failed)
  end
  return line
end

--- Makes a progress display.
-- @tparam table opts `total` (hosts to do), `stream` (default io.stderr),
--   `enabled` (default: whether `stream` is a terminal), `interval`
--   (seconds between redraws, default 0.1), `clock` (a function giving
--   seconds; default the monotonic clock)
function M.new(opts)
  opts = opts or {}
  if math.type(opts.total) ~= "integer" or opts.total < 0 then
    error("progress.new: integer total expected", 2)
  end
  local stream = opts.stream or io.stderr
  local enabled = opts.enabled
  if enabled == nil then enabled = M.is_terminal(stream) end
  local clock = opts.clock or clock_fn()
  return setmetatable({ total = opts.total, done = 0, ok = 0, failed = 0, running = 0,
    stream = stream, enabled = enabled and true or false, interval = opts.interval or 0.1,
    clock = clock, started = clock(), drawn_at = nil, shown = false }, Progress)
end

--- Counts one finished host (ok = true when it succeeded) and redraws,
-- unless `quiet`.
function Progress:add(ok, quiet)
  self.done = self.done + 1
  if ok then self.ok = self.ok + 1 else self.failed = self.failed + 1 end
  if not quiet then self:draw() end
end

--- Sets how many hosts are in flight (shown on the line).
function Progress:set_running(n)
  self.running = n
end

--- The current line (without the carriage return).
function Progress:line()
  local elapsed = self.clock() - self.started
  local rate = elapsed > 0 and self.done / elapsed or 0
  local width = #tostring(self.total)
  local parts = { string.format("[%" .. width .. "d/%d]", self.done, self.total) }
  if self.failed > 0 then parts[#parts + 1] = self.failed .. " failed" end
  parts[#parts + 1] = string.format("%.1f hosts/s", rate)
  if self.running > 0 then parts[#parts + 1] = self.running .. " running" end
  if self.done < self.total then
    parts[#parts + 1] = "ETA " .. (rate > 0 and M.format_duration((self.total - self.done) / rate) or "?")
  end
  parts[#parts + 1] = M.format_duration(elapsed)
  return table.concat(parts, "  ")
end

--- Redraws the line (at most every `interval` seconds unless `force`).
function Progress:draw(force)
  if not self.enabled then return end
  local now = self.clock()
  if not force and self.shown and self.drawn_at and now - self.drawn_at < self.interval then return end
  self.drawn_at = now
  self.shown = true
  self.stream:write("\r\27[K", self:line())
  self.stream:flush()
end

--- Erases the line, so that the caller can print to the terminal.
function Progress:clear()
  if not (self.enabled and self.shown) then return end
  self.shown = false
  self.stream:write("\r\27[K")
  self.stream:flush()
end

--- The summary so far: `{total, ok, failed, seconds}`.
function Progress:summary()
  return { total = self.total, ok = self.ok, failed = self.failed,
           seconds = self.clock() - self.started }
end

--- Erases the line and writes the summary line (only when enabled).
-- @treturn table the summary
function Progress:finish()
  local s = self:summary()
  if self.enabled then
    self:clear()
    self.stream:write(M.summary_line(s), "\n")
    self.stream:flush()
  end
  return s
end

Progress.__tostring = function(p) return "termsrv.Progress(" .. p:line() .. ")" end

M.Progress = Progress
return M
