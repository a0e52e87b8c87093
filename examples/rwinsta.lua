#!/usr/bin/env lua5.4
-- rwinsta /server:HOST, from Linux: reset sessions (RpcWinStationReset, the
-- real one) and confirm that they are gone.
--   TERMSRV_USER='CORP\ops' TERMSRV_PASSWORD=... lua5.4 examples/rwinsta.lua ts01.corp 3 rdp-tcp#42
-- Each target is a session id or a station name, as rwinsta takes them.
-- Credentials: TERMSRV_USER plus TERMSRV_PASSWORD or TERMSRV_NTHASH, or a
-- credentials file (TERMSRV_CREDENTIALS), else a prompt on the terminal.
-- Exit: 0 all reset, 1 some failed, 2 none (as the termsrv command).
local here = arg[0]:match("^(.*)/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local termsrv = require "termsrv"
local credentials = require "termsrv.credentials"

local target = arg[1]
if not target or not arg[2] then
  io.stderr:write("usage: rwinsta.lua HOST[:PORT] ID|STATION...\n")
  os.exit(64)
end

local creds = assert(credentials.resolve())
local host <close>, err = termsrv.connect{ host = target, user = creds.user, domain = creds.domain,
  password = creds.password, nthash = creds.nthash, kerberos = creds.kerberos }
if not host then
  io.stderr:write(tostring(err), "\n")
  os.exit(2)
end

-- One listing to turn station names into sessions. Acting on the record
-- (not the bare id) makes reset refuse if the id now belongs to someone else.
local sessions = assert(host:sessions{ all = true, times = false })
local by_id, by_station = {}, {}
for _, s in ipairs(sessions) do
  by_id[s.id] = s
  if s.name ~= "" then by_station[s.name:lower()] = s end
end

local ok, failed = 0, 0
for i = 2, #arg do
  local want = arg[i]
  local s = by_id[math.tointeger(tonumber(want))] or by_station[want:lower()]
  if not s then
    io.stderr:write(host.name, ": no session ", want, "\n")
    failed = failed + 1
  else
    local res, rerr = host:reset(s, { wait = true })
    if res then
      ok = ok + 1
      print(res) -- "ts01: reset session 3 (CORP\alice): disconnected -> gone in 0.02s: ok"
    else
      failed = failed + 1
      io.stderr:write(tostring(rerr), "\n")
    end
  end
end
os.exit(failed == 0 and 0 or ok == 0 and 2 or 1)
