#!/usr/bin/env lua5.4
-- The main job in one screen: list the sessions of a host, then show what
-- the nightly cleanup policy would do to them (a dry run: nothing touched).
--   lua5.4 examples/demo.lua HOST[:PORT] [NAME]   (credentials in TERMSRV_USER / TERMSRV_PASSWORD)
-- `make demo` runs it against the simulated terminal server it starts.
local here = arg[0]:match("^(.*)/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local termsrv = require "termsrv"

local target = arg[1] or error("usage: demo.lua HOST[:PORT]")
local host <close>, err = termsrv.connect{ host = target, name = arg[2], user = os.getenv("TERMSRV_USER"),
  password = os.getenv("TERMSRV_PASSWORD") or error("set TERMSRV_PASSWORD") }
if not host then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local sessions = assert(host:sessions{ client = true })
print("== sessions on " .. host.name .. " (quser view, idle on the server's clock)\n")
print(termsrv.report.quser(sessions))
print("\n== the nightly policy, dry run: nothing is touched\n")
local plan = assert(termsrv.plan(host, here .. "/examples/nightly-policy.lua"))
print(plan)
local st = host:stats()
print(string.format("\n(%d RPC calls, %d SMB round trips after the logon)", st.rpc_calls, st.smb_round_trips))
