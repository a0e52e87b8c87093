#!/usr/bin/env lua5.4
-- quser /server:HOST, from Linux: the users with their idle time and logon
-- time, idle measured on the server's own clock.
--   TERMSRV_USER='CORP\ops' TERMSRV_PASSWORD=... lua5.4 examples/quser.lua ts01.corp
local here = arg[0]:match("^(.*)/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local termsrv = require "termsrv"

local target = arg[1] or error("usage: quser.lua HOST[:PORT]")
local host <close>, err = termsrv.connect{ host = target, user = os.getenv("TERMSRV_USER"),
  password = os.getenv("TERMSRV_PASSWORD") or error("set TERMSRV_PASSWORD") }
if not host then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local sessions = assert(host:sessions())   -- times included: one call per session
print(termsrv.report.quser(sessions))
