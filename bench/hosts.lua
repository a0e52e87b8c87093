-- The bench fleet: BENCH_HOSTS (default 200) simulated 2019 hosts, each with
-- BENCH_SESSIONS (default 4) user sessions beside services, console and the
-- listener. One smbd serves them all, one port per host.
local n = tonumber(os.getenv("BENCH_HOSTS")) or 200
local k = tonumber(os.getenv("BENCH_SESSIONS")) or 4

local accounts = { { name = "ops", password = "Ops-Passw0rd", admin = true } }

local function sessions()
  local s = {
    { id = 0, name = "services", state = "Disconnected" },
    { id = 1, name = "console", state = "Connected" },
    { id = 65536, name = "rdp-tcp", state = "Listen" },
  }
  for i = 1, k do
    local active = i % 2 == 0
    s[#s + 1] = { id = i + 1, name = active and ("rdp-tcp#" .. i) or "", user = "user" .. i,
                  state = active and "Active" or "Disconnected", logon = "-" .. i .. "h",
                  disconnect = (not active) and ("-" .. i .. "m") or nil, last_input = "-" .. i .. "m" }
  end
  return s
end

local hosts = {}
for i = 1, n do
  hosts[i] = { name = string.format("B%04d", i), accounts = accounts, sessions = sessions() }
end
return { hosts = hosts }
