-- A small fleet: one host per Windows profile plus hosts with special settings.
-- Used by spec/sim_spec.lua; start it with  sim/start --config sim/configs/fleet.lua
-- Times are relative to each host's own clock: "-5h" = five hours ago.

local accounts = {
  { name = "ops", password = "Ops-Passw0rd", admin = true },
  { name = "jdoe", password = "Jdoe-Passw0rd", admin = false },
}

-- A compact session set: services, console, the listener, two users.
local function sessions()
  return {
    { id = 0, name = "services", state = "Disconnected" },
    { id = 1, name = "console", state = "Connected" },
    { id = 65536, name = "rdp-tcp", state = "Listen" },
    { id = 2, name = "rdp-tcp#3", user = "foo", state = "Active", logon = "-2h",
      last_input = "-5m", client_name = "PC-FOO", client_address = "10.1.0.2" },
    { id = 3, user = "jdoe", state = "Disconnected", logon = "-1d", disconnect = "-8h",
      client_name = "PC-JDOE", client_address = "10.1.0.3" },
  }
end

return {
  hosts = {
    { name = "TS19", profile = "2019", accounts = accounts, sessions = sessions() },
    { name = "TS08", profile = "2008", accounts = accounts, sessions = sessions() },
    { name = "TS12", profile = "2012r2", accounts = accounts, sessions = sessions() },
    { name = "TS22", profile = "2022", accounts = accounts, sessions = sessions() },
    { name = "NORDP", profile = "rdp-disabled", accounts = accounts, sessions = sessions() },
    { name = "W2K3", profile = "legacy-only", domain = "OLDCORP", accounts = accounts,
      sessions = sessions() },
    -- authorises by the SMB identity when the bind carries no RPC authentication
    { name = "OPEN", allow_smb_identity = true, accounts = accounts, sessions = sessions() },
    -- its clock runs two hours ahead of real time
    { name = "SKEW", clock_offset = "2h", accounts = accounts, sessions = sessions() },
    -- accepts packet integrity (level 5) as well as privacy
    { name = "SIGN", min_auth_level = 5, accounts = accounts, sessions = sessions() },
    -- two user sessions already: one more RDP logon hits the limit
    { name = "FULL", max_sessions = 2, accounts = accounts, sessions = sessions() },
    -- a slow host: every RpcGetAllSessions takes 0.3 s
    { name = "SLOW", accounts = accounts, sessions = sessions(),
      faults = { { mode = "delay", arg = 0.3, method = "RpcGetAllSessions" } } },
  },
}
