--- Error objects returned as the second value of failed calls.
--
-- Every run-time failure in termsrv comes back as `nil, err`, where `err` is
-- a table with a stable `code` a script can branch on, and enough context
-- for a person to act: what failed (`op`), on which `host`, the raw `status`
-- number as Windows or the transport reported it, its symbolic `status_name`,
-- and a `hint`. `tostring(err)` gives one readable line.
-- The C core builds its errors with this same metatable (it requires this
-- module when it is loaded), so errors from both layers look alike.
-- @module termsrv.error

local M = {}

local Error = {}
Error.__index = Error
Error.__name = "termsrv.Error"

local function hex(n)
  if math.type(n) ~= "integer" then return tostring(n) end
  return string.format("0x%08X", n & 0xFFFFFFFF)
end

--- The metatable of what `termsrv.strerror` returns: it prints as one line,
-- `access_denied: access denied [Win32 0x00000005 ERROR_ACCESS_DENIED] (hint: ...)`.
M.Status = { __name = "termsrv.status" }
function M.Status.__tostring(t)
  return string.format("%s: %s [%s %s %s]%s", t.code, t.message, t.kind, hex(t.status), t.name,
    t.hint and (" (hint: " .. t.hint .. ")") or "")
end

--- One line: `host: op: message [0xSTATUS NAME] (hint: ...)`.
function Error.__tostring(e)
  local parts = {}
  if e.host then parts[#parts + 1] = e.host .. ": " end
  if e.op then parts[#parts + 1] = e.op .. ": " end
  parts[#parts + 1] = e.message or e.code or "error"
  if e.status ~= nil and e.status_kind == "errno" then
    -- a Linux errno means nothing as hex to a Windows admin: its name says it
    parts[#parts + 1] = " [" .. (e.status_name or ("errno " .. e.status)) .. "]"
  elseif e.status ~= nil then
    parts[#parts + 1] = " [" .. hex(e.status) .. (e.status_name and (" " .. e.status_name) or "") .. "]"
  elseif e.status_name then
    parts[#parts + 1] = " [" .. e.status_name .. "]"
  end
  if e.hint and e.hint ~= "" then parts[#parts + 1] = " (hint: " .. e.hint .. ")" end
  -- messages quote server strings (user names, station names)
  return require("termsrv.text").printable(table.concat(parts))
end

--- Plain-table view, for JSON output and logs.
function Error:totable()
  return { code = self.code, message = self.message, host = self.host, op = self.op,
           status = self.status, status_name = self.status_name, hint = self.hint }
end

M.Error = Error

--- Makes an error object from a table of fields (code is required).
-- @tparam table t fields: code, message, host, op, status, status_name, hint
function M.new(t)
  assert(type(t) == "table" and type(t.code) == "string", "error.new: code expected")
  return setmetatable(t, Error)
end

--- True when `x` is an error object.
function M.is(x)
  return getmetatable(x) == Error
end

--- Copy of `e` with some fields replaced (e.g. to add the host or op).
function M.with(e, fields)
  local t = {}
  for k, v in pairs(e) do t[k] = v end
  for k, v in pairs(fields) do t[k] = v end
  return setmetatable(t, Error)
end

return M
