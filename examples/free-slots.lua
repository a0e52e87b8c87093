#!/usr/bin/env lua5.4
-- "The number of connections to this computer is limited and all connections
-- are in use": free N session slots on a host, stalest sessions first
-- (longest disconnected, then longest idle), instead of eyeballing qwinsta.
--   lua5.4 examples/free-slots.lua HOST [N] [--apply]
-- A dry run unless --apply. Credentials as for the termsrv command; audit
-- log: $TERMSRV_AUDIT, else ./termsrv-audit.jsonl.
local here = arg[0]:match("^(.*)/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local termsrv = require "termsrv"
local credentials = require "termsrv.credentials"

local target, n, apply = nil, 1, false
for _, a in ipairs(arg) do
  if a == "--apply" then apply = true
  elseif a:match("^%d+$") and target then n = math.tointeger(tonumber(a))
  else target = a end
end
if not target or n < 1 then
  io.stderr:write("usage: free-slots.lua HOST[:PORT] [N] [--apply]\n")
  os.exit(64)
end

local creds = assert(credentials.resolve())
local label, addr = target:match("^([^=]+)=(.+)$")
local host <close>, err = termsrv.connect{ host = addr or target, name = label, user = creds.user,
  domain = creds.domain, password = creds.password, nthash = creds.nthash, kerberos = creds.kerberos }
if not host then
  io.stderr:write(tostring(err), "\n")
  os.exit(2)
end

-- A policy with free_slots and no rules: every unprotected session is a
-- candidate, the stalest N are logged off (and reset if the logoff hangs).
local plan = assert(termsrv.plan(host, { name = "free-slots", free_slots = n,
  rules = { { name = "free_slots", select = {}, action = { "logoff", "reset" } } } }))
print(plan)
if not apply then os.exit(0) end

local log <close> = assert(termsrv.audit.open(os.getenv("TERMSRV_AUDIT") or "termsrv-audit.jsonl"))
local results = plan:apply{ audit = log }
print(results)
print()
print(termsrv.report.quser(assert(host:sessions())))
os.exit(termsrv.report.exit_code(results))
