-- Small helpers every spec needs: shell quoting, reading and writing files,
-- and this process's children (a spec that forks checks none is left behind).
local M = {}

--- A string quoted for sh.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- The whole content of a file (binary), or nil when it cannot be opened.
function M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Writes a file; `mode` (e.g. "600") is applied with chmod.
function M.spit(path, text, mode)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  if mode then os.execute("chmod " .. mode .. " " .. M.quote(path)) end
end

--- Pids of this process's children, zombies included: PID 1 in our sandbox
-- does not reap orphans, so a worker we forgot shows up here.
function M.children()
  local me = tonumber(M.slurp("/proc/self/stat"):match("^(%d+)"))
  local out = {}
  for entry in require("lfs").dir("/proc") do
    if entry:match("^%d+$") then
      local status = M.slurp("/proc/" .. entry .. "/status")
      if status and tonumber(status:match("PPid:%s*(%d+)")) == me then out[#out + 1] = tonumber(entry) end
    end
  end
  return out
end

return M
