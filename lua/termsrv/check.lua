--- The one checker of option tables: `termsrv.connect`, `termsrv.fleet`, the plan's
-- `make`, `build`, `runner` and `apply`,
-- the host methods that take options and the sandbox's limits all reject
-- an unknown key or a value of the wrong type here, with the same words.
-- Misuse raises (it is a programmer's error), at the caller of the function
-- that was given the table.
-- @module termsrv.check

local M = {}

local function names(types)
  local t = {}
  for k in pairs(types) do t[#t + 1] = tostring(k) end
  table.sort(t)
  return table.concat(t, ", ")
end

local function fits(v, want)
  local ty = type(v)
  for alt in want:gmatch("[^|]+") do
    if alt == ty or alt == "integer" and math.type(v) == "integer" then return true end
  end
  return false
end

--- Checks the option table `opts` of the function `what` against `types`.
-- Raises `WHAT: unknown option 'K' (options: ...)` for a key `types` does
-- not have, and `WHAT: option 'K' must be a T, got U` for a value of another
-- type. `nil` stands for an empty table.
-- @tparam string what who was given the options (`"termsrv.connect"`)
-- @param opts the options (a table or nil)
-- @tparam table types key -> `"string"`, `"number"`, `"integer"`, `"boolean"`,
--   `"table"`, `"function"`, or alternatives such as `"boolean|table"`
-- @tparam[opt=1] integer level where the error points: 1 is the caller of the
--   function that calls `options` (as `error`'s level 2 would be there)
-- @treturn table `opts`, or a new empty table for nil
function M.options(what, opts, types, level)
  level = (level or 1) + 2
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("%s: options table expected, got %s", what, type(opts)), level)
  end
  for k, v in pairs(opts) do
    local want = types[k]
    if not want then
      error(string.format("%s: unknown option '%s' (options: %s)", what, tostring(k), names(types)), level)
    end
    if not fits(v, want) then
      error(string.format("%s: option '%s' must be a %s, got %s", what, tostring(k), want:gsub("|", " or "),
        math.type(v) == "float" and want:find("integer", 1, true) and "float" or type(v)), level)
    end
  end
  return opts
end

return M
