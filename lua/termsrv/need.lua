--- Loads the Lua modules termsrv depends on, or says how to install them.
--
-- A missing dependency is an installation problem, not a bug: instead of
-- Lua's list of searched paths it raises one line that names the package,
-- which `bin/termsrv` prints without a traceback.
-- @module termsrv.need

local M = {}

--- Where each dependency comes from: the Debian package and the rock.
M.PACKAGES = {
  dkjson = { debian = "lua-dkjson", rock = "dkjson" },
  argparse = { debian = "lua-argparse", rock = "argparse" },
  lfs = { debian = "lua-filesystem", rock = "luafilesystem" },
  system = { debian = "lua-system", rock = "luasystem" },
}

--- The start of every message `need` raises (so callers can recognise one).
M.PREFIX = "termsrv needs the Lua module "

--- `require(name)`, or an error saying which package to install.
-- Only a module that is not found gets that message; a module that is found
-- but fails to load raises its own error.
-- @tparam string name one of the keys of `PACKAGES`
-- @return the module
function M.need(name)
  local pkg = M.PACKAGES[name]
  if not pkg then error("termsrv.need: unknown dependency " .. tostring(name), 2) end
  local ok, mod = pcall(require, name)
  if ok then return mod end
  if type(mod) == "string" and mod:find("module '" .. name .. "' not found", 1, true) then
    error(string.format("%s%s: install %s (Debian) or luarocks install %s",
      M.PREFIX, name, pkg.debian, pkg.rock), 0)
  end
  error(mod, 0)
end

return M
