-- A long-running embedder that connects and closes in a loop stays flat
-- (issue #13 item 5): libsmbclient set itself up again -- and leaked --
-- each time its last context was freed; one idle context kept for the
-- process makes the setup run once. 600 connect/list/close cycles against
-- the simulator, then RSS and open descriptors compared with where they
-- were after the first 100. (Before the fix: 124 KiB over these 500. By
-- hand at 10,000 cycles without a collection per cycle, a slower growth
-- of about 50 bytes a cycle remains, not yet explained.)
local sim = require "support.sim"
local termsrv = require "termsrv"

local function rss_kib()
  for l in io.lines("/proc/self/status") do
    local v = l:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local function fds()
  local n = 0
  local p = io.popen("ls /proc/" .. require("termsrv.proc").getpid() .. "/fd")
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

describe("connect and close in a loop", function()
  local env
  setup(function() env = sim.start{ config = "spec/fixtures/sim/cli.lua" } end)
  teardown(function() sim.stop(env) end)

  it("keeps memory and descriptors flat over 600 cycles", function()
    if (package.searchpath("termsrv.core", package.cpath) or ""):find("asan") then
      pending("under ASan the allocator's own bookkeeping grows: the valgrind and plain runs measure this")
      return
    end
    local base_rss, base_fds
    for i = 1, 600 do
      local h = assert(termsrv.connect{ host = "127.0.0.1", port = env.hosts[1].port, user = "CORP\\ops",
                                        password = "Ops-Passw0rd" })
      assert(h:sessions{ times = false })
      h:close()
      -- a full collection each cycle keeps Lua's own heap at one size, so
      -- that what RSS shows is the C side
      collectgarbage()
      if i == 100 then
        collectgarbage()
        collectgarbage()
        base_rss, base_fds = rss_kib(), fds()
      end
    end
    collectgarbage()
    collectgarbage()
    local grew = rss_kib() - base_rss
    -- before the fix: about 57 bytes a cycle, 28 KiB over these 500
    assert.truthy(grew <= 12, "RSS grew by " .. grew .. " KiB over 500 cycles")
    assert.equal(base_fds, fds())
  end)
end)
