#!/usr/bin/env lua5.4
-- qwinsta /server:HOST, from Linux: every session with its station, user,
-- id and state, as Windows prints it.
--   TERMSRV_USER='CORP\ops' TERMSRV_PASSWORD=... lua5.4 examples/qwinsta.lua ts01.corp
-- (run from a checkout after `make`, or with termsrv installed)
local here = arg[0]:match("^(.*)/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local termsrv = require "termsrv"

local target = arg[1] or error("usage: qwinsta.lua HOST[:PORT]")
local host <close>, err = termsrv.connect{ host = target, user = os.getenv("TERMSRV_USER"),
  password = os.getenv("TERMSRV_PASSWORD") or error("set TERMSRV_PASSWORD") }
if not host then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

-- like qwinsta: every session, listeners and services included, no times
-- needed; TYPE and DEVICE (each session's winstation driver and transport
-- device) cost two more calls per session
local sessions = assert(host:sessions{ all = true, times = false, drivers = true })
print(termsrv.report.qwinsta(sessions))
