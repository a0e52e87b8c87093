-- Helpers shared by the command-line specs (spec/cli_*_spec.lua,
-- spec/examples_spec.lua): the simulator's accounts, small file helpers, a
-- scratch directory, and running a command in an environment of its own.
--
--   local support = require "support.cli"
--   local TMP = support.scratch()                -- support.rmdir(TMP) at teardown
--   local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC" } }
--   local code, out, err = run({ "sessions", host }, support.ADMIN)

local sim = require "support.sim"

local M = {}

M.BIN = sim.root .. "/bin/termsrv"
M.ADMIN = { TERMSRV_USER = "CORP\\ops", TERMSRV_PASSWORD = "Ops-Passw0rd" }
M.NONADMIN = { TERMSRV_USER = "CORP\\jdoe", TERMSRV_PASSWORD = "Jdoe-Passw0rd" }

-- Every variable that changes what termsrv does without a command-line
-- option: a run that unsets them all sees none of the caller's settings.
M.TERMSRV_VARS = { "TERMSRV_USER", "TERMSRV_PASSWORD", "TERMSRV_NTHASH", "TERMSRV_DOMAIN",
                   "TERMSRV_CREDENTIALS", "TERMSRV_AUDIT", "XDG_STATE_HOME" }

local util = require "support.util"
M.q, M.slurp, M.spit = util.quote, util.slurp, util.spit

-- A copy of `a` with the fields of `b` over it.
function M.with(a, b)
  local t = {}
  for k, v in pairs(a) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

-- A new empty directory.
function M.scratch()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. M.q(dir))
  return dir
end

function M.rmdir(dir) os.execute("rm -rf " .. M.q(dir)) end

-- Session id -> user of the sessions with a user on a host of the simulator.
function M.users_of(env, host)
  local t = {}
  for _, s in ipairs(sim.state(env, host).sessions) do if s.user ~= "" then t[s.id] = s.user end end
  return t
end

-- A function run(args, vars, stdin) -> exit code, stdout, stderr that runs
-- `o.command` (default bin/termsrv) with `args` under `env`: without the
-- variables `o.unset`, with `o.set` ("NAME=value", fixed) and then `vars`
-- (name -> value), stdin from the file `stdin` (default /dev/null, so that
-- nothing ever prompts), in the directory `o.cwd` when given.
function M.runner(o)
  local command = o.command or { M.BIN }
  return function(args, vars, stdin)
    local parts = { "env" }
    for _, k in ipairs(o.unset or {}) do
      parts[#parts + 1] = "-u"
      parts[#parts + 1] = k
    end
    for _, kv in ipairs(o.set or {}) do parts[#parts + 1] = kv end
    for k, v in pairs(vars or {}) do parts[#parts + 1] = k .. "=" .. v end
    for _, a in ipairs(command) do parts[#parts + 1] = a end
    for _, a in ipairs(args) do parts[#parts + 1] = a end
    for i, p in ipairs(parts) do parts[i] = M.q(p) end
    local errfile = os.tmpname()
    local line = table.concat(parts, " ") .. " <" .. M.q(stdin or "/dev/null") .. " 2>" .. M.q(errfile)
    if o.cwd then line = "cd " .. M.q(o.cwd) .. " && " .. line end
    local p = assert(io.popen(line))
    local out = p:read("a")
    local _, _, code = p:close()
    local err = M.slurp(errfile) or ""
    os.remove(errfile)
    return code, out, err
  end
end

-- Like `runner`, but in the background: spawn(args, vars) starts bin/termsrv
-- and returns its pid (bin/termsrv itself, to signal) and a function that
-- waits for it and gives exit code, stdout, stderr.
function M.spawner(o)
  return function(args, vars)
    local parts = { "env" }
    for _, k in ipairs(o.unset or {}) do parts[#parts + 1] = "-u " .. M.q(k) end
    for _, kv in ipairs(o.set or {}) do parts[#parts + 1] = M.q(kv) end
    for k, v in pairs(vars or {}) do parts[#parts + 1] = M.q(k .. "=" .. v) end
    parts[#parts + 1] = M.q(M.BIN)
    for _, a in ipairs(args) do parts[#parts + 1] = M.q(a) end
    local base = os.tmpname()
    local line = table.concat(parts, " ") .. " </dev/null >" .. M.q(base .. ".out") .. " 2>" .. M.q(base .. ".err")
    -- `env ... bin/termsrv` execs, so $! is bin/termsrv itself
    local script = line .. " & echo $! > " .. M.q(base .. ".pid") .. "; wait $!; echo $? > " .. M.q(base .. ".rc")
    os.execute("sh -c " .. M.q(script) .. " >/dev/null 2>&1 &")
    local pid
    for _ = 1, 100 do
      pid = tonumber(M.slurp(base .. ".pid") or "")
      if pid then break end
      os.execute("sleep 0.05")
    end
    assert(pid, "no pid")
    return pid, function()
      for _ = 1, 600 do
        local rc = M.slurp(base .. ".rc")
        if rc and rc:match("%d") then
          local out, err = M.slurp(base .. ".out") or "", M.slurp(base .. ".err") or ""
          for _, x in ipairs{ ".rc", ".out", ".err", ".pid", "" } do os.remove(base .. x) end
          return tonumber(rc:match("%d+")), out, err
        end
        os.execute("sleep 0.1")
      end
      error("bin/termsrv did not end")
    end
  end
end

return M
