--- `termsrv doctor`: checks the path to each host, step by step.
-- @module termsrv.cli.commands.doctor

local doctor = require "termsrv.doctor"
local hosts = require "termsrv.cli.hosts"
local output = require "termsrv.cli.output"
local record = require "termsrv.record"

local M = {}

local CHECK_FIELDS = { "host", "step", "label", "status", "detail", "fix" }

function M.doctor(ctx, args)
  local kerberos = ctx.connect.kerberos and true or nil
  local results = hosts.run_hosts(ctx, function(h, spec)
    return { checks = doctor.probe(h, { name = spec.name, host = spec.host, port = spec.port,
      kerberos = kerberos }) }
  end)
  local all, outcomes = {}, {}
  for i, r in ipairs(results) do
    local spec = r.spec
    local checks
    local connected = r.ok and r.value and r.value.checks
    if connected then
      checks = r.value.checks
    else
      checks = doctor.from_connect_error({ name = spec.name, host = spec.host, port = spec.port,
        user = ctx.creds.user, domain = ctx.creds.domain, kerberos = kerberos }, r.err)
    end
    if kerberos then
      -- the Kerberos steps ask the KDC only: here, after the host's run
      local opts = {}
      for k, v in pairs(ctx.connect) do opts[k] = v end
      opts.host, opts.port = spec.host, spec.port
      local kgiven, kfailed = doctor.kerberos(opts)
      checks = doctor.with_kerberos(checks, kgiven, kfailed, connected and true or false)
    end
    outcomes[i] = doctor.passed(checks) and "ok" or "failed"
    if ctx.format == "table" then
      local where = spec.host:find(":", 1, true) and ("[" .. spec.host .. "]") or spec.host
      local title = string.format("%s (%s:%d) as %s", spec.name, where, spec.port,
        record.account(ctx.creds) or "(kerberos ticket)")
      output.out(ctx, doctor.format(checks, { ascii = args.ascii, title = title }))
    else
      for _, c in ipairs(checks) do
        local row = {}
        for _, k in ipairs(CHECK_FIELDS) do row[k] = c[k] end
        if c.notes and #c.notes > 0 then
          row.detail = (row.detail or "") .. " (" .. table.concat(c.notes, "; ") .. ")"
        end
        all[#all + 1] = row
      end
    end
  end
  if ctx.format ~= "table" then output.emit(ctx, all, nil, CHECK_FIELDS) end
  return output.exit_of(outcomes)
end

return M
