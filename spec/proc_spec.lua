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

  -- the set of signals this process has a handler for (/proc/self/status)
  local function sigcgt(pid)
    local f = assert(io.open("/proc/" .. (pid or "self") .. "/status"))
    local mask = f:read("a"):match("SigCgt:%s*(%x+)")
    f:close()
    return mask
  end
  local function has_handler(mask, sig)
    -- the mask is hex, bit (sig - 1) from the right
    local digit = tonumber(mask:sub(#mask - (sig - 1) // 4, #mask - (sig - 1) // 4), 16)
    return (digit >> ((sig - 1) % 4)) & 1 == 1
  end

  describe("stop means stop: trap, caught, untrap", function()
    local S = proc.signals
    after_each(function()
      proc.untrap()
      proc.reset_caught()
    end)

    it("notes SIGTERM and SIGINT instead of dying, first one wins, untrap restores", function()
      local before = sigcgt()
      assert.is_nil(proc.caught())
      assert.is_true(proc.trap())
      assert.is_true(proc.trap()) -- twice is once: untrap still restores what was there first
      assert.is_true(has_handler(sigcgt(), S.TERM))
      assert.is_true(has_handler(sigcgt(), S.INT))
      os.execute("kill -TERM " .. proc.getpid())
      assert.equals(15, proc.caught())
      assert.equals(S.TERM, proc.caught())
      assert.is_true(alive(proc.getpid()))
      assert.is_true(proc.kill(proc.getpid(), S.INT))
      assert.equals(S.TERM, proc.caught()) -- the first signal is kept
      assert.is_true(proc.reset_caught())
      assert.is_nil(proc.caught())
      assert.is_true(proc.kill(proc.getpid(), S.INT))
      assert.equals(S.INT, proc.caught())
      assert.is_true(proc.untrap())
      assert.is_true(proc.untrap())
      assert.equals(before, sigcgt())
      assert.equals(S.INT, proc.caught()) -- untrap leaves the flag for the caller to read
    end)

    it("after untrap, SIGTERM kills again (checked in a worker)", function()
      local pid, fd = proc.fork(function()
        proc.trap()
        proc.untrap()
        proc.kill(proc.getpid(), proc.signals.TERM)
        proc.sleep(5)
        return "survived"
      end)
      local st = proc.wait(pid, true)
      assert.equals("", read_all(fd))
      proc.close(fd)
      assert.equals(S.TERM, st.signal)
    end)

    it("a worker of a trapped parent starts untrapped, with the flag cleared", function()
      proc.trap()
      proc.kill(proc.getpid(), S.TERM)
      assert.equals(S.TERM, proc.caught())
      -- (by what the signals do, not by /proc's SigCgt: valgrind catches every signal itself)
      local pid, fd = proc.fork(function(send)
        send(tostring(proc.caught()), true)
        proc.kill(proc.getpid(), proc.signals.INT)
        proc.sleep(5)
        return "survived"
      end)
      assert.equals("nil", read_all(fd))
      proc.close(fd)
      assert.equals(S.INT, proc.wait(pid, true).signal)
      -- and SIGTERM ends a worker at once, even sent right after fork
      pid, fd = proc.fork(function() proc.sleep(10) return "survived" end)
      assert.is_true(proc.kill(pid, S.TERM, true))
      local st = proc.wait(pid, true)
      proc.close(fd)
      assert.equals(S.TERM, st.signal)
      assert.equals(S.TERM, proc.caught()) -- the parent's own flag is untouched
    end)

    it("a trapped signal ends poll with nil, \"interrupted\", and ends sleep early", function()
      proc.trap()
      local parent = proc.getpid()
      local pid, fd = proc.fork(function()
        proc.sleep(0.2)
        proc.kill(parent, proc.signals.TERM)
        proc.sleep(10)
      end)
      local t0 = proc.clock()
      local ready, why = proc.poll({ fd }, 5)
      assert.is_nil(ready)
      assert.equals("interrupted", why)
      assert.is_true(proc.clock() - t0 < 4)
      assert.equals(S.TERM, proc.caught())
      proc.kill(pid, S.KILL, true)
      proc.wait(pid, true)
      proc.close(fd)

      proc.reset_caught()
      pid, fd = proc.fork(function()
        proc.sleep(0.2)
        proc.kill(parent, proc.signals.INT)
      end)
      t0 = proc.clock()
      local ok, err = proc.sleep(5)
      assert.is_nil(ok)
      assert.equals("interrupted", err)
      assert.is_true(proc.clock() - t0 < 4)
      assert.equals(S.INT, proc.caught())
      proc.wait(pid, true)
      proc.close(fd)
      assert.is_true(proc.sleep(0.01)) -- an uninterrupted sleep
    end)
  end)

  describe("the audit log's descriptor", function()
    local dir
    before_each(function()
      dir = tmpname()
      os.execute("mkdir -m 700 " .. dir)
    end)
    after_each(function() os.execute("rm -rf " .. dir) end)

    local function mode(path)
      local p = io.popen("stat -c %a " .. path)
      local m = p:read("l")
      p:close()
      return m
    end

    it("creates the file 0600 and appends each line in one write", function()
      local path = dir .. "/a.jsonl"
      local fd = proc.audit_open(path)
      assert.equals("integer", math.type(fd))
      assert.equals("600", mode(path))
      assert.is_true(proc.write_line(fd, "one\n"))
      assert.is_true(proc.write_line(fd, "two\n"))
      assert.is_true(proc.close_fd(fd))
      local ok, msg, errno = proc.close_fd(fd)
      assert.is_nil(ok)
      assert.matches("close: Bad file descriptor", msg)
      assert.equals(9, errno) -- EBADF
      fd = assert(proc.audit_open(path))
      assert.is_true(proc.write_line(fd, "three\n"))
      proc.close_fd(fd)
      local f = assert(io.open(path))
      assert.equals("one\ntwo\nthree\n", f:read("a"))
      f:close()
    end)

    it("refuses symlinks (the target untouched, a dangling one's never created), directories, FIFOs", function()
      local target = dir .. "/target"
      local f = assert(io.open(target, "w")); f:write("keep\n"); f:close()
      os.execute("chmod 600 " .. target)
      os.execute("ln -s " .. target .. " " .. dir .. "/link")
      local fd, code, msg = proc.audit_open(dir .. "/link")
      assert.is_nil(fd)
      assert.equals("audit_unsafe", code)
      assert.matches("symbolic link", msg)
      f = assert(io.open(target)); assert.equals("keep\n", f:read("a")); f:close()
      os.execute("ln -s " .. dir .. "/nowhere " .. dir .. "/dangling")
      fd, code, msg = proc.audit_open(dir .. "/dangling")
      assert.is_nil(fd)
      assert.equals("audit_unsafe", code)
      assert.matches("symbolic link", msg)
      assert.is_nil(io.open(dir .. "/nowhere"))
      fd, code, msg = proc.audit_open(dir)
      assert.is_nil(fd)
      assert.equals("audit_unsafe", code)
      assert.matches("directory", msg)
      os.execute("mkfifo " .. dir .. "/fifo")
      fd, code = proc.audit_open(dir .. "/fifo")
      assert.is_nil(fd)
      assert.equals("audit_unsafe", code)
      fd, code = proc.audit_open(dir .. "/no/such/dir/a")
      assert.is_nil(fd)
      assert.equals("audit_failed", code)
      assert.has_error(function() proc.audit_open("") end)
      assert.has_error(function() proc.audit_open("a\0b") end)
    end)

    it("refuses a file of another owner, or writable by group or others", function()
      local path = dir .. "/f"
      assert(io.open(path, "w")):close()
      for _, m in ipairs{ "620", "602", "666" } do
        os.execute("chmod " .. m .. " " .. path)
        local fd, code, msg = proc.audit_open(path)
        assert.is_nil(fd, m)
        assert.equals("audit_unsafe", code)
        assert.matches("writable by group or others", msg)
      end
      os.execute("chmod 600 " .. path)
      assert.is_true(proc.close_fd(assert(proc.audit_open(path))))
      os.execute("chown nobody " .. path .. " 2>/dev/null")
      if mode(path) and io.popen("stat -c %U " .. path):read("l") == "nobody" then
        local fd, code, msg = proc.audit_open(path)
        assert.is_nil(fd)
        assert.equals("audit_unsafe", code)
        assert.matches("owned by another user", msg)
      end
    end)

    it("a write that cannot complete is an error: EFBIG, or a short write", function()
      -- the file size limit (ulimit -f, SIGXFSZ ignored) is a full disk that
      -- write(2) really meets: past it EFBIG, across it a short write
      local script = dir .. "/w.lua"
      local f = assert(io.open(script, "w"))
      f:write([[
        local proc = require "termsrv.proc"
        local fd = assert(proc.audit_open(arg[1]))
        local ok, msg = proc.write_line(fd, string.rep("z", 3000) .. "\n")
        proc.close_fd(fd)
        io.write(tostring(ok), "|", tostring(msg))
      ]])
      f:close()
      local function run(path)
        local p = io.popen("trap '' XFSZ; ulimit -f 2; LUA_PATH='./lua/?.lua;;' LUA_CPATH='"
          .. (os.getenv("TERMSRV_BUILD") or "./build") .. "/?.so;;' env -u LD_PRELOAD lua5.4 "
          .. script .. " " .. path .. " 2>&1")
        local out = p:read("a")
        p:close()
        return out
      end
      local big = dir .. "/big"
      f = assert(io.open(big, "w")); f:write(string.rep("x", 2048)); f:close()
      os.execute("chmod 600 " .. big)
      assert.equals("nil|write: File too large", run(big))
      local short = run(dir .. "/empty")
      assert.matches("^nil|write: short write %(%d+ of 3001 bytes%)", short)
    end)
  end)
end)
