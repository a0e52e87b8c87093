-- A cleanup policy as ops teams run it at night: plain Lua, loaded in a
-- sandbox (no io, os or require). `termsrv clean --policy examples/nightly-policy.lua HOST`
-- shows what it would do; add --apply to do it.
return {
  name = "nightly",
  max_actions = 25,           -- never more than this per host in one run

  -- service accounts are never touched, whatever a rule says
  exclude = { user = { "svc_*" } },

  rules = {
    -- the classic: users closed the window instead of logging off
    { name = "stale-disconnected", select = { state = "disconnected", min_disconnected = "8h" },
      action = { "logoff", "reset" } },
    -- sessions left running and idle: warn, wait, then disconnect
    { name = "idle-active", select = { state = "active", min_idle = "90m" },
      action = { "message", "disconnect" }, grace = "10m",
      message = { title = "Maintenance",
                  text = "{user}: idle sessions on this server are disconnected in {grace}." } },
  },
}
