-- Run by spec/leak_spec.lua in a fresh interpreter, so that what the loop
-- does to memory is not hidden in holes an earlier spec left in the heap:
--   lua5.4 spec/support/leak_loop.lua PORT CYCLES WARMUP list|bare
-- connects to 127.0.0.1:PORT CYCLES times (listing the sessions with
-- "list"), and prints "rss_kib_at_warmup rss_kib_at_end fds_at_warmup
-- fds_at_end heap_at_warmup heap_at_end" (heap: C heap bytes in use). Lua's garbage is collected in full at the same points, so
-- that what RSS shows between them is the C side.
local termsrv = require "termsrv"
local heap = require("termsrv.testkit").heap
local port, cycles, warmup, mode = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), arg[4]

-- the file is closed here, not left to the collector (io.lines stays open
-- when its loop is left early), so that it never shows in fds()
local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s+(%d+)"))
end

local function fds()
  local n = 0
  local p = io.popen("ls /proc/" .. require("termsrv.proc").getpid() .. "/fd")
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

local base_rss, base_fds, base_heap
for i = 1, cycles do
  local h = assert(termsrv.connect{ host = "127.0.0.1", port = port, user = "CORP\\ops",
                                    password = "Ops-Passw0rd" })
  if mode == "list" then
    local list = assert(h:sessions{ times = false })
    assert(#list == 1, "one session expected")
  end
  h:close()
  if i % 100 == 0 then collectgarbage() end
  if i == warmup then
    collectgarbage()
    base_rss, base_fds, base_heap = rss_kib(), fds(), heap.in_use()
  end
end
collectgarbage()
collectgarbage()
print(base_rss, rss_kib(), base_fds, fds(), base_heap, heap.in_use())
