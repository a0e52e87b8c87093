-- Simulator hosts that fuzz/capture.sh records seeds from: every Windows
-- profile, and the injected faults whose answers are complete PDUs (the
-- transport failures -- hang, close, truncation -- cannot be replayed from
-- a byte stream and are left to the fuzzers). Each host is captured once
-- with NTLM packet privacy ("-p" hosts) and once on the SMB identity ("-n"
-- hosts), on hosts of its own, because the script's actions change state.
local hosts = {}
-- Hosts whose process list is not the point get a short one, with each
-- shape the decoder meets (NULL image and SID, well-known and user SIDs),
-- which keeps their conversations small; the Windows profiles keep the
-- generated list of about 130 processes (a response of several fragments).
local FEW = {
  { pid = 0, image = nil, sid = nil },
  { pid = 4, image = "System", session = 0, sid = "auto", user = "SYSTEM" },
  { pid = 688, image = "svchost.exe", session = 0, sid = "S-1-5-20", threads = 7 },
  { pid = 5120, image = "explorer.exe", session = 2, sid = "auto", memory = "80M", create = "-5h" },
}
local function add(name, spec)
  for _, auth in ipairs{ "p", "n" } do
    local h = { name = name .. "-" .. auth, allow_smb_identity = true }
    for k, v in pairs(spec) do h[k] = v end
    hosts[#hosts + 1] = h
  end
end
add("w2019", { profile = "2019" })
add("w2022", { profile = "2022" })
add("w2012", { profile = "2012r2", processes = FEW })
add("w2008", { profile = "2008" })
add("legacy", { profile = "legacy-only" })
add("nordp", { profile = "rdp-disabled" })
add("naked", { processes = FEW, faults = { { mode = "bind_nak", arg = 2 } } })
add("denied", { processes = FEW, faults = { { mode = "fault", arg = 5, method = "RpcWinStationGetAllProcesses" } } })
add("faulty", { processes = FEW, faults = { { mode = "fault", arg = 0x1C010002, method = "RpcGetAllSessions" } } })
add("absurd", { processes = FEW, faults = { { mode = "absurd_count" } } })
add("callid", { processes = FEW, faults = { { mode = "wrong_call_id", method = "RpcGetSessionInformationEx" } } })
add("badsig", { processes = FEW, faults = { { mode = "bad_signature", method = "RpcGetAllSessions" } } })
return { hosts = hosts }
