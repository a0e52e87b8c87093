--- Small helpers shared by the command-line modules.
-- @module termsrv.cli.util

local duration = require "termsrv.duration"
local selector = require "termsrv.select"

local M = {}

-- A usage error unwinds to `cli.main`, which prints the command's usage line
-- with the message and exits 64.
local Usage = {}
Usage.__index = Usage

--- Raises a usage error (exit 64) with the message `msg`.
function M.usage_error(msg) error(setmetatable({ msg = msg }, Usage), 0) end

--- Whether an error value was raised by `usage_error`.
function M.is_usage_error(e) return getmetatable(e) == Usage end

--- `--apply` unless `--dry-run`; both at once is a usage error.
function M.apply_wanted(args)
  if args.dry_run and args.apply then M.usage_error("--dry-run and --apply contradict each other") end
  return args.apply and not args.dry_run
end

--- A duration option (90m, 8h, 2d) in seconds, or nil and the parser's message.
function M.duration(s)
  local d, err = duration.parse(s)
  if not d then return nil, err.message end
  return d
end

--- A selector table compiled; a bad one is a usage error.
function M.compile(sel)
  local ok, m = pcall(selector.compile, sel)
  if not ok then M.usage_error(tostring(m):gsub("^[^:]*:%d+: ", "")) end
  return m
end

--- An option given any number of times as a list (nil: empty).
function M.list(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  return { v }
end

--- A shallow copy of `t`.
function M.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return M
