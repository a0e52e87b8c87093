#!/usr/bin/env lua5.4
-- The classic cleanup: log off sessions that have been disconnected for
-- longer than a threshold, on many hosts. A dry run unless --apply; every
-- action goes to an audit log; a host that cannot be reached is reported
-- and the others go on.
--   lua5.4 examples/cleanup-disconnected.lua [--apply] [--older 8h] [--keep 'svc_*']... HOST...
-- Credentials as for the termsrv command (TERMSRV_USER, TERMSRV_PASSWORD, ...);
-- audit log: $TERMSRV_AUDIT, else ./termsrv-audit.jsonl.
local here = arg[0]:match("^(.*)/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local termsrv = require "termsrv"
local credentials = require "termsrv.credentials"

local apply, older, keep, targets = false, "8h", {}, {}
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--apply" then apply = true
  elseif a == "--older" then i = i + 1; older = arg[i]
  elseif a == "--keep" then i = i + 1; keep[#keep + 1] = arg[i]
  else targets[#targets + 1] = a end
  i = i + 1
end
if #targets == 0 then
  io.stderr:write("usage: cleanup-disconnected.lua [--apply] [--older 8h] [--keep GLOB]... HOST...\n")
  os.exit(64)
end

local creds = assert(credentials.resolve())
local hosts, unreachable = {}, 0
for _, t in ipairs(targets) do
  local label, addr = t:match("^([^=]+)=(.+)$") -- NAME=ADDRESS[:PORT] names the host in the output
  local h, err = termsrv.connect{ host = addr or t, name = label, user = creds.user, domain = creds.domain,
    password = creds.password, nthash = creds.nthash, kerberos = creds.kerberos }
  if h then hosts[#hosts + 1] = h else
    unreachable = unreachable + 1
    io.stderr:write(tostring(err), "\n")
  end
end

-- Logoff first; a session stuck in logoff is reset (the second ladder step).
-- The console, the services session and our own sessions are protected.
local policy = {
  name = "cleanup-disconnected",
  exclude = #keep > 0 and { user = keep } or nil,
  rules = {
    { name = "stale", select = { state = "disconnected", min_disconnected = older },
      action = { "logoff", "reset" } },
  },
}
local plan = assert(termsrv.plan(hosts, policy))
print(plan) -- what would happen, and why; nothing touched yet

local code = unreachable == 0 and 0 or (#hosts == 0 and 2 or 1)
if apply and #plan > 0 then
  local log <close> = assert(termsrv.audit.open(os.getenv("TERMSRV_AUDIT") or "termsrv-audit.jsonl"))
  local results = plan:apply{ audit = log }
  print(results) -- one line per session, then the summary
  local rc = termsrv.report.exit_code(results)
  if rc > code then code = rc end
end
for _, h in ipairs(hosts) do h:close() end
os.exit(code)
