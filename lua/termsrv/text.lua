--- Text from a server, made safe to print.
--
-- User, station and client names, process images and error messages come
-- from the host -- or from an RDP client that chose its own name. Printed
-- raw, an ESC sequence in one of them could clear an admin's screen, retitle
-- the window or hide rows. `printable` shows such characters as escapes
-- instead: C0 controls and DEL as `\x1b`, C1 controls as `\x9b`, the
-- Unicode direction overrides and isolates (which reorder what is shown)
-- as `\u{202e}`, and bytes that are not UTF-8 as `\xff`. JSON output needs
-- none of this (its encoder escapes all of them); tables, CSV, diagnostics
-- and `tostring` of records and errors go through it.
-- @module termsrv.text

local M = {}

local UNSAFE_BYTES = "[%z\1-\31\127-\255]"

local function unsafe(cp)
  return cp < 0x20 or (cp >= 0x7f and cp < 0xa0) or cp == 0x061c or cp == 0x200e or cp == 0x200f
    or (cp >= 0x202a and cp <= 0x202e) or (cp >= 0x2066 and cp <= 0x2069)
end

local function escape(cp)
  if cp < 0x100 then return string.format("\\x%02x", cp) end
  return string.format("\\u{%x}", cp)
end

--- `s` with every control or reordering character shown as an escape
-- (anything but a string is returned as it is).
-- @param s
-- @return string
function M.printable(s)
  if type(s) ~= "string" or not s:find(UNSAFE_BYTES) then return s end
  if not utf8.len(s) then
    return (s:gsub(UNSAFE_BYTES, function(c) return string.format("\\x%02x", c:byte()) end))
  end
  local out = {}
  for _, cp in utf8.codes(s) do out[#out + 1] = unsafe(cp) and escape(cp) or utf8.char(cp) end
  return table.concat(out)
end

--- `printable` for each line of a text (the newlines stay).
-- @tparam string s
-- @treturn string
function M.printable_lines(s)
  if not s:find(UNSAFE_BYTES) then return s end
  return (s:gsub("[^\n]+", M.printable))
end

--- A CSV cell that a spreadsheet will not run as a formula: text starting
-- with `=`, `+`, `-` or `@` (other than a plain number) gets a leading `'`.
-- @tparam string s
-- @treturn string
function M.csv_inert(s)
  if #s > 1 and s:find("^[=+%-@]") and not s:find("^[+%-]?%d+%.?%d*$") then return "'" .. s end
  return s
end

return M
