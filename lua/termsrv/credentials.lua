--- Credentials for the command line: from the environment, a credentials
-- file, or a prompt on the terminal -- never from an option carrying the
-- secret (a command line is visible to every local user in `ps`).
--
-- Sources, highest priority first, field by field:
--
--  * account name: `--account` (`-U`), the `username` of a file named with
--    `--credentials`, `TERMSRV_USER`, the `username` of the file named by
--    `TERMSRV_CREDENTIALS`; `DOMAIN\user` and `user@domain` are accepted
--    everywhere; else asked on the terminal
--  * domain: `--account-domain` (`-W`), the domain part of the account name,
--    the `--credentials` file's `domain`, `TERMSRV_DOMAIN`, the
--    `TERMSRV_CREDENTIALS` file's `domain`
--  * secret: with `--kerberos` none is needed (the ticket cache is used);
--    else the `--credentials` file, then `TERMSRV_PASSWORD` or
--    `TERMSRV_NTHASH`, then the `TERMSRV_CREDENTIALS` file, then a prompt on
--    the terminal (no echo)
--
-- So the command line beats the environment, and `TERMSRV_CREDENTIALS` is
-- ignored when `--credentials` is given.
--
-- Credentials file format (smbclient's authentication file plus `nthash`):
--
--     # comments start with # or ;
--     username = CORP\ops
--     password = the rest of the line, spaces and # included
--     domain   = CORP
--     nthash   = 8846F7EAEE8FB117AD06BDD830B7586C   (instead of password)
--
-- The file must not be readable or writable by group or others (`chmod 600`).
-- @module termsrv.credentials

local errors = require "termsrv.error"

local M = {}

local KEYS = { username = "user", user = "user", password = "password", domain = "domain",
               workgroup = "domain", nthash = "nthash" }

local function fail(code, message, hint)
  return nil, errors.new{ code = code, op = "credentials", message = message, hint = hint }
end

--- An NT hash in canonical form (32 upper-case hex digits), or nil.
-- Accepts impacket's `LMHASH:NTHASH` form too (the LM part is ignored).
-- @tparam string s
-- @treturn ?string
function M.nthash(s)
  if type(s) ~= "string" then return nil end
  s = s:gsub("^%s+", ""):gsub("%s+$", "")
  local nt = s:match("^%x*:(%x+)$") or s
  if #nt ~= 32 or nt:find("%X") then return nil end
  return nt:upper()
end

--- Parses the text of a credentials file.
-- @tparam string text
-- @tparam[opt="credentials file"] string label used in messages
-- @treturn[1] table `{user=, domain=, password=, nthash=}` (fields that were given)
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `bad_credentials` (the message names the line, never the value)
function M.parse(text, label)
  label = label or "credentials file"
  local out = {}
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if not (line:match("^%s*$") or line:match("^%s*[#;]")) then
      local key, value = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
      if not key then
        return fail("bad_credentials", string.format("%s, line %d: expected 'key = value'", label, n))
      end
      local field = KEYS[key:lower()]
      if not field then
        return fail("bad_credentials", string.format(
          "%s, line %d: unknown key '%s' (keys: username, password, domain, nthash)", label, n, key))
      end
      out[field] = value
    end
  end
  if out.nthash then
    local h = M.nthash(out.nthash)
    if not h then
      return fail("bad_credentials", label .. ": nthash must be 32 hexadecimal digits")
    end
    out.nthash = h
  end
  if out.password and out.nthash then
    return fail("bad_credentials", label .. ": give password or nthash, not both")
  end
  return out
end

local lfs = require("termsrv.need").need("lfs")

-- "rwxr-x---" style permissions and the file type, or nil when missing.
local function perms(path)
  local a = lfs.attributes(path)
  if not a then return nil end
  return a.permissions, a.mode
end

--- Reads a credentials file, refusing one that group or others can access.
-- @tparam string path
-- @treturn[1] table as for `parse`
-- @treturn[2] nil
-- @treturn[2] termsrv.Error code `bad_credentials` or `credentials_unsafe`
function M.read(path)
  local p, kind = perms(path)
  if not p then
    return fail("bad_credentials", "cannot read credentials file " .. path .. ": no such file")
  end
  if kind ~= "file" then
    return fail("bad_credentials", "credentials file " .. path .. " is not a regular file")
  end
  local g, o = p:sub(4, 6), p:sub(7, 9)
  local octal = 0
  for i = 1, 9 do if p:sub(i, i) ~= "-" then octal = octal | (1 << (9 - i)) end end
  if g:find("[rw]") or o:find("[rw]") then
    local who = {}
    if (g .. o):find("r") then who[#who + 1] = "readable" end
    if (g .. o):find("w") then who[#who + 1] = "writable" end
    return fail("credentials_unsafe", string.format(
      "credentials file %s is %s by %s (mode %04o); refusing to use it", path, table.concat(who, " and "),
      (g:find("[rw]") and o:find("[rw]")) and "group and others" or (g:find("[rw]") and "group" or "others"),
      octal), "chmod 600 " .. path)
  end
  local f, err = io.open(path, "r")
  if not f then return fail("bad_credentials", "cannot read credentials file: " .. tostring(err)) end
  local text = f:read("a") or ""
  f:close()
  return M.parse(text, path)
end

--- Splits `DOMAIN\user` or `user@domain`.
-- @treturn string user
-- @treturn ?string domain
function M.split(account)
  local d, u = account:match("^([^\\]+)\\(.+)$")
  if d then return u, d end
  u, d = account:match("^([^@]+)@(.+)$")
  if u then return u, d end
  return account, nil
end

local function run_quiet(cmd)
  local ok = os.execute(cmd .. " 2>/dev/null")
  return ok == true or ok == 0
end

--- True when standard input is a terminal.
function M.stdin_is_tty()
  return require("termsrv.proc").isatty(io.stdin) == true
end

--- Asks on the controlling terminal; `echo = false` hides the input.
-- @tparam string label the question
-- @tparam boolean echo
-- @treturn ?string the answer (nil when there is no terminal or input ended)
function M.ask(label, echo)
  local tty = io.open("/dev/tty", "r+")
  if not tty then return nil end
  -- echo off before the question appears, so nothing typed after it shows
  if not echo then run_quiet("stty -echo < /dev/tty") end
  tty:write(label)
  tty:flush()
  local ok, line = pcall(tty.read, tty, "l")
  if not echo then
    run_quiet("stty echo < /dev/tty")
    tty:write("\n")
  end
  tty:close()
  if not ok then error(line, 0) end
  return line
end

--- Resolves the credentials for a run (see the module doc for the order).
-- @tparam table o `account`, `domain`, `file` (from the command line),
--   `kerberos` (boolean), `getenv` (function(name) -> value; default os.getenv),
--   `prompt` (function(label, echo) -> answer, or false for no prompting;
--   default: ask on the terminal when standard input is one)
-- @treturn[1] table `{user=, domain=, password= | nthash= | kerberos=true, source=}`
--   (`source` says where the secret came from, for messages)
-- @treturn[2] nil
-- @treturn[2] termsrv.Error codes `bad_credentials`, `credentials_unsafe`, `no_credentials`
function M.resolve(o)
  o = o or {}
  local getenv = o.getenv or os.getenv
  local function env(name)
    local v = getenv(name)
    if v == "" then return nil end
    return v
  end
  -- The command line beats the environment; a file named on the command
  -- line counts as command line, the one TERMSRV_CREDENTIALS names as
  -- environment (and is ignored when --credentials is given).
  local cli_file, env_file = nil, {}
  if o.file then
    local err
    cli_file, err = M.read(o.file)
    if not cli_file then return nil, err end
  end
  local env_path = not o.file and env("TERMSRV_CREDENTIALS") or nil
  if env_path then
    local err
    env_file, err = M.read(env_path)
    if not env_file then return nil, err end
  end
  cli_file = cli_file or {}

  local c = {}
  local user = o.account or cli_file.user or env("TERMSRV_USER") or env_file.user
  local udomain
  if user then user, udomain = M.split(user) end
  c.domain = o.domain or udomain or cli_file.domain or env("TERMSRV_DOMAIN") or env_file.domain

  if o.kerberos then
    -- the ticket cache; a password configured (never asked for) gets a
    -- ticket in memory, or serves --rpc-auth privacy (NTLM when asked for)
    c.user, c.kerberos, c.source = user, true, "kerberos"
    local pw = cli_file.password or getenv("TERMSRV_PASSWORD") or env_file.password
    if pw and pw ~= "" then c.password = pw end
    return c
  end

  -- the secret
  if cli_file.password or cli_file.nthash then
    c.password, c.nthash, c.source = cli_file.password, cli_file.nthash, o.file
  elseif env("TERMSRV_PASSWORD") and env("TERMSRV_NTHASH") then
    return fail("bad_credentials", "both TERMSRV_PASSWORD and TERMSRV_NTHASH are set; keep one")
  elseif getenv("TERMSRV_PASSWORD") then
    c.password, c.source = getenv("TERMSRV_PASSWORD"), "TERMSRV_PASSWORD"
  elseif env("TERMSRV_NTHASH") then
    c.nthash = M.nthash(env("TERMSRV_NTHASH"))
    if not c.nthash then return fail("bad_credentials", "TERMSRV_NTHASH must be 32 hexadecimal digits") end
    c.source = "TERMSRV_NTHASH"
  elseif env_file.password or env_file.nthash then
    c.password, c.nthash, c.source = env_file.password, env_file.nthash, env_path
  end

  local prompt = o.prompt
  if prompt == nil then
    prompt = M.stdin_is_tty() and M.ask or false
  end
  if not user and prompt then
    user = prompt("Account (DOMAIN\\user): ", true)
    if user and user ~= "" then
      local d
      user, d = M.split(user)
      c.domain = o.domain or d or c.domain
    else
      user = nil
    end
  end
  if not user then
    return fail("no_credentials", "no account name given",
      "set TERMSRV_USER=DOMAIN\\user, use -U/--account, or a credentials file (--credentials FILE)")
  end
  c.user = user
  if not (c.password or c.nthash) then
    local pw = prompt and prompt(string.format("Password for %s%s: ",
      c.domain and (c.domain .. "\\") or "", user), false)
    if not pw then
      return fail("no_credentials", "no password or NT hash for " .. user,
        "set TERMSRV_PASSWORD or TERMSRV_NTHASH, use --credentials FILE (mode 600), "
        .. "or run on a terminal to be asked")
    end
    c.password, c.source = pw, "prompt"
  end
  return c
end

return M
