-- termsrv.proc: the process primitives under termsrv.fleet. What a sweep
-- relies on: a worker's answer arrives whole, its end is seen by status and
-- signal, a deadline kill reaches everything the worker started, the
-- parent's buffers and finalisers are never replayed by a worker, and no
-- process is left behind.
local proc = require "termsrv.proc"

local function read_all(fd, timeout)
  local parts, deadline = {}, proc.clock() + (timeout or 5)
  while proc.clock() < deadline do
    proc.poll({ fd }, 0.5)
    local data = proc.read(fd)
    if data == "" then break end
    if data then parts[#parts + 1] = data end
  end
  return table.concat(parts)
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- our children, zombies included (a leak shows up as a zombie or a stray process)
local children = require("support.util").children

-- ASan (make check-asan) catches SIGSEGV itself and aborts
local SEGV_SEEN = (os.getenv("LD_PRELOAD") or ""):find("asan") and proc.signals.ABRT or proc.signals.SEGV

local function tmpname()
  local path = os.tmpname()
  os.remove(path)
  return path
end

describe("termsrv.proc", function()
  it("runs a function in a worker and returns what it sends, then its exit status", function()
    local parent = proc.getpid()
    local pid, fd = proc.fork(function(send)
      send("from " .. proc.getpid() .. " child of " .. parent)
      return "not sent twice"
    end)
    assert.is_true(math.type(pid) == "integer" and pid ~= parent)
    assert.equals("from " .. pid .. " child of " .. parent, read_all(fd))
    proc.close(fd)
    local st = proc.wait(pid, true)
    assert.equals(pid, st.pid)
    assert.equals(0, st.code)
    assert.is_nil(st.signal)
    assert.is_number(st.utime)
    assert.is_true(st.maxrss > 0)
    assert.is_false(alive(pid))
  end)

  it("sends the returned string when the function did not send", function()
    local pid, fd = proc.fork(function() return "returned" end)
    assert.equals("returned", read_all(fd))
    proc.close(fd)
    assert.equals(0, proc.wait(pid, true).code)
  end)

  it("delivers an answer larger than the pipe buffer whole", function()
    local big = string.rep("0123456789abcdef", 64 * 1024) -- 1 MiB
    local pid, fd = proc.fork(function() return big end)
    local got = read_all(fd)
    proc.close(fd)
    proc.wait(pid, true)
    assert.equals(#big, #got)
    assert.is_true(got == big)
  end)

  it("reports a worker killed by a signal, and one that exits with a code", function()
    local pid, fd = proc.fork(function() proc.kill(proc.getpid(), proc.signals.SEGV) end)
    local st = proc.wait(pid, true)
    proc.close(fd)
    assert.equals(SEGV_SEEN, st.signal)
    assert.is_nil(st.code)

    pid, fd = proc.fork(function() proc.exit(3) end)
    st = proc.wait(pid, true)
    assert.equals("", read_all(fd))
    proc.close(fd)
    assert.equals(3, st.code)
  end)

  it("does not block: read gives false while a worker is still busy, wait gives false", function()
    local pid, fd = proc.fork(function() proc.sleep(0.3) return "late" end)
    assert.is_false(proc.read(fd))
    assert.is_false(proc.wait(pid))
    local t0 = proc.clock()
    assert.same({}, proc.poll({ fd }, 0.05))
    assert.is_true(proc.clock() - t0 >= 0.04)
    assert.same({ fd }, proc.poll({ fd }, 5))
    assert.equals("late", read_all(fd))
    proc.close(fd)
    assert.equals(0, proc.wait(pid, true).code)
  end)

  it("kills the worker's whole process group, including what it started", function()
    local marker = tmpname()
    local pid, fd = proc.fork(function()
      -- a grandchild that would outlive a kill of the worker alone
      os.execute("sh -c 'echo $$ > " .. marker .. "; exec sleep 30' &")
      proc.sleep(30)
    end)
    local grandchild
    local deadline = proc.clock() + 5
    repeat
      proc.sleep(0.02)
      local f = io.open(marker)
      if f then grandchild = tonumber(f:read("l")); f:close() end
    until grandchild or proc.clock() > deadline
    assert.is_number(grandchild)
    assert.is_true(alive(grandchild))
    assert.is_true(proc.kill(pid, proc.signals.TERM, true))
    local st = proc.wait(pid, true)
    proc.close(fd)
    assert.equals(proc.signals.TERM, st.signal)
    deadline = proc.clock() + 5
    while alive(grandchild) and proc.clock() < deadline do proc.sleep(0.02) end
    assert.is_false(alive(grandchild))
    os.remove(marker)
  end)

  it("never replays the parent's buffered output nor runs its finalisers in a worker", function()
    local out = tmpname()
    local marker = tmpname()
    local f = assert(io.open(out, "w"))
    f:setvbuf("full")
    f:write("parent;")
    -- garbage with a finaliser, not yet collected: a worker's GC or exit must not run it
    local gc_marker = setmetatable({}, { __gc = function() -- luacheck: ignore 211
      local m = io.open(marker, "a")
      if m then m:write(proc.getpid(), "\n") m:close() end
    end })
    local pid, fd = proc.fork(function()
      f:write("worker;")
      f:flush()
      return "done"
    end)
    assert.equals("done", read_all(fd))
    proc.close(fd)
    proc.wait(pid, true)
    f:close()
    local text = assert(io.open(out)):read("a")
    assert.equals("parent;worker;", text)
    assert.is_nil(io.open(marker))
    os.remove(out)
  end)

  it("closes the descriptors it is told to in the worker", function()
    local pid1, fd1 = proc.fork(function() proc.sleep(0.2) return "one" end)
    local pid2, fd2 = proc.fork(function()
      local f = io.open("/proc/self/fd/" .. fd1)
      if f then f:close() return "open" end
      return "closed"
    end, { fd1 })
    assert.equals("closed", read_all(fd2))
    assert.equals("one", read_all(fd1))
    proc.close(fd1)
    proc.close(fd2)
    proc.wait(pid1, true)
    proc.wait(pid2, true)
  end)

  it("leaves no child behind once every worker is waited for", function()
    local pids = {}
    for i = 1, 5 do
      local pid, fd = proc.fork(function() return tostring(i) end)
      pids[#pids + 1] = { pid, fd }
    end
    for _, p in ipairs(pids) do
      read_all(p[2])
      proc.close(p[2])
      proc.wait(p[1], true)
    end
    assert.same({}, children())
  end)

  it("tells terminals from files, and gives a monotonic clock and resource usage", function()
    local f = io.tmpfile()
    assert.is_false(proc.isatty(f))
    f:close()
    assert.is_false(proc.isatty(f)) -- closed
    local a = proc.clock()
    local b = proc.clock()
    assert.is_true(b >= a)
    local ru = proc.rusage("self")
    assert.is_number(ru.utime)
    assert.is_number(ru.stime)
    assert.is_true(ru.maxrss > 0)
    assert.is_table(proc.rusage("children"))
    assert.has_error(function() proc.rusage("everyone") end)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() proc.fork("not a function") end)
    assert.has_error(function() proc.kill(0, 15) end)
    assert.has_error(function() proc.wait(-1) end)
    assert.has_error(function() proc.read(-1) end)
    assert.has_error(function() proc.poll({ "x" }) end)
  end)
end)
