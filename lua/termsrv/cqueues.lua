--- A fleet job inside a cqueues controller (Debian's lua-cqueues).
--
--     local cqueues = require "cqueues"
--     local drive = require "termsrv.cqueues"
--     local cq = cqueues.new()
--     cq:wrap(function()
--       drive(f:start(function(h) return h:sessions() end), {
--         result = function(r) print(r) end })
--     end)
--     assert(cq:loop())
--
-- Inside a cqueues coroutine: the coroutine sleeps in `cqueues.poll` on the
-- job's one descriptor (or its timeout) and steps the job when it wakes, so
-- the controller's other coroutines run while hosts answer. termsrv does not
-- depend on cqueues: it is required only here.
-- @module termsrv.cqueues

--- Runs `job` (from `fleet:start`) to its end from a cqueues coroutine.
-- @tparam termsrv.FleetJob job
-- @tparam[opt] table on `result(r, job)` for each host's result
-- @treturn termsrv.FleetJob the job, done (and closed)
local function drive(job, on)
  local cqueues = require "cqueues"
  on = on or {}
  -- cqueues' polling protocol: an object with pollfd, events and timeout
  local waiter = { pollfd = job:fd(), events = "r" }
  while true do
    for _, r in ipairs(job:step()) do
      if on.result then on.result(r, job) end
    end
    if job:done() then break end
    waiter.timeout = job:timeout()
    cqueues.poll(waiter, waiter.timeout)
  end
  -- the controller must forget the descriptor before it is closed
  cqueues.cancel(waiter.pollfd)
  job:close()
  return job
end

return drive
