--- A fleet job inside a luv event loop (Debian's lua-luv).
--
--     local uv = require "luv"
--     local termsrv = require "termsrv"
--     local watch = require "termsrv.luv"
--     local f = termsrv.fleet{ hosts = "farm.txt", connect = { ... } }
--     watch(uv, f:start(function(h) return h:sessions() end), {
--       result = function(r) print(r) end,            -- as each host finishes
--       done = function(job) print(#job.results .. " hosts") end,
--     })
--     uv.run()                                          -- the loop stays free
--
-- One poll handle on `job:fd()` and one timer for `job:timeout()`: the
-- loop runs the job's non-blocking `step` when a worker speaks or a
-- deadline is due, and is never blocked by a host. termsrv does not depend
-- on luv: the caller passes its `uv`.
-- @module termsrv.luv

--- Drives `job` (from `fleet:start`) in `uv`'s loop.
-- @param uv the luv module
-- @tparam termsrv.FleetJob job
-- @tparam[opt] table on `result(r, job)` for each host's result, `done(job)` once all are in
-- @treturn table `{job=, cancel=function(reason)}`; cancel stops the sweep (see `Job:cancel`)
local function watch(uv, job, on)
  on = on or {}
  local poll, timer = uv.new_poll(job:fd()), uv.new_timer()
  local w = { job = job }
  local finished = false
  local function pump()
    if finished then return end
    for _, r in ipairs(job:step()) do
      if on.result then on.result(r, job) end
    end
    if job:done() then
      finished = true
      poll:stop()
      poll:close()
      timer:stop()
      timer:close()
      job:close()
      if on.done then on.done(job) end
      return
    end
    local t = job:timeout()
    timer:stop()
    timer:start(math.max(1, math.ceil((t or 0.1) * 1000)), 0, pump)
  end
  function w.cancel(reason)
    job:cancel(reason)
    pump()
  end
  poll:start("r", function() pump() end)
  -- results that came with start
  timer:start(0, 0, pump)
  return w
end

return watch
