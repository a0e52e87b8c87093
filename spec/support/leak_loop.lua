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

-- how many descriptors are open, and what they are (for the message when
-- the count grew). Read in this process: a listing by a child (popen) sees
-- the parent's end of its own pipe, or not, depending on who runs first.
local lfs = require "lfs"
local function fds()
  local n, what = 0, {}
  for f in lfs.dir("/proc/self/fd") do
    if f ~= "." and f ~= ".." then
      local a = lfs.symlinkattributes("/proc/self/fd/" .. f)
      n, what[#what + 1] = n + 1, f .. " " .. tostring(a and a.target)
    end
  end
  return n, table.concat(what, ", ")
end

-- Descriptors are the most of five cycles in a row, at the warm-up and at
-- the end, in case one is open or not at a given moment; a descriptor kept
-- per cycle grows the count by hundreds.
local base_rss, base_heap
local base_fds, end_fds, base_what, end_what = 0, 0, "", ""
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
    base_rss, base_heap = rss_kib(), heap.in_use()
  end
  if i >= warmup and i < warmup + 5 then
    local n, what = fds()
    if n > base_fds then base_fds, base_what = n, what end
  end
  if i > cycles - 5 then
    local n, what = fds()
    if n > end_fds then end_fds, end_what = n, what end
  end
end
collectgarbage()
collectgarbage()
print(base_rss, rss_kib(), base_fds, end_fds, base_heap, heap.in_use())
print("descriptors at the warm-up: " .. base_what)
print("descriptors at the end: " .. end_what)
