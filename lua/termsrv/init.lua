--- termsrv: list and clean up Remote Desktop sessions on Windows hosts.
--
--     local termsrv = require "termsrv"
--     local h <close> = assert(termsrv.connect{ host = "ts01", user = "CORP\\ops",
--                                              password = os.getenv("TS_PASSWORD") })
--     print(h:sessions())
--
-- @module termsrv

local host = require "termsrv.host"
local core = require "termsrv.core"
require "termsrv.control" -- adds the session-control methods to host handles
require "termsrv.processes" -- and host:processes

local M = {
  version = core.version,
  connect = host.connect,
  error = require "termsrv.error",
  record = require "termsrv.record",
}

--- What a status number means: `{code, name, message, hint, kind, status}` or nil.
-- @tparam integer status NTSTATUS, HRESULT, Win32 error or RPC fault number
-- @tparam[opt] string kind `"ntstatus"`, `"hresult"`, `"win32"`, `"fault"`,
--   `"bind_nak"`, `"errno"`; by default guessed from the number's shape
function M.strerror(status, kind)
  if math.type(status) ~= "integer" then error("termsrv.strerror: integer expected", 2) end
  local t = core.strerror(status, kind)
  return t and setmetatable(t, M.error.Status)
end

-- The policy layer is loaded on first use, so a script that only lists
-- sessions does not pay for it.
local lazy = { select = "termsrv.select", policy = "termsrv.policy", plan_module = "termsrv.plan",
               report = "termsrv.report", audit = "termsrv.audit", duration = "termsrv.duration",
               json = "termsrv.json", fleet = "termsrv.fleet", targets = "termsrv.targets" }
setmetatable(M, { __name = "termsrv", __index = function(t, k)
  local mod = lazy[k]
  if mod then
    local v = require(mod)
    rawset(t, k, v)
    return v
  end
end, __tostring = function() return "termsrv " .. M.version .. " (termsrv.help() lists the modules)" end })

--- Builds a cleanup plan (nothing is touched): see `termsrv.plan`.
function M.plan(hosts, policy, opts)
  return require("termsrv.plan").make(hosts, policy, opts)
end

--- Prints the functions of a module or the methods of an object, one line
-- each: see `termsrv.help`.
-- @param[opt] x a module, an object (host handle, record, plan...), or a name
-- @tparam[opt=io.stdout] file out where to print
function M.help(x, out)
  return require("termsrv.help").show(x, out)
end

return M
