-- One listing of one deep host for bench/deep.py, as its own process:
--
--   lua5.4 bench/deep.lua VIEW HOST PORT USER DOMAIN PASSWORD [CONNECTIONS]
--
-- VIEW: "qwinsta" (sessions{ times = false }) or "quser" (sessions{}, the
-- per-session details over CONNECTIONS connections at once, default 8).
-- Prints one JSON line: sessions listed, the handle's own counters.
local termsrv = require "termsrv"
local json = require "dkjson"

local view, host, port, user, domain, password, conns = table.unpack(arg)
if not (view and host and port and user and domain and password) then
  io.stderr:write("usage: deep.lua qwinsta|quser HOST PORT USER DOMAIN PASSWORD [CONNECTIONS]\n")
  os.exit(2)
end
local h = assert(termsrv.connect{ host = host, port = tonumber(port), user = user, domain = domain,
  password = password, detail_connections = tonumber(conns) or 8 })
local list = assert(h:sessions(view == "qwinsta" and { times = false } or {}))
local st = h:stats()
h:close()
io.write(json.encode{ n = #list, smb_round_trips = st.smb_round_trips, rpc_calls = st.rpc_calls,
  errors = list.errors and #list.errors or 0 }, "\n")
