--- Stable-order JSON for everything termsrv writes (reports, plans, audit log).
--
-- A thin layer over dkjson. Object keys come out in a fixed order: first the
-- keys named in `order` (in that order), then every other key sorted by name.
-- So the same value always gives the same bytes, which golden tests and `diff`
-- rely on. Numbers are written with Lua's `tostring` (integers stay exact).
-- Tables with a metatable that has `totable` (error objects, plans) are
-- converted through it first.
-- @module termsrv.json

local dkjson = require("termsrv.need").need("dkjson")

local M = {}

--- The JSON `null` value (use it to emit a key whose value is unknown).
M.null = dkjson.null

local ARRAY_MT = { __jsontype = "array" }
local OBJECT_MT = { __jsontype = "object" }

--- Marks `t` as a JSON array, so that an empty table encodes as `[]`.
-- @tparam[opt] table t
-- @treturn table t
function M.array(t) return setmetatable(t or {}, ARRAY_MT) end

--- Marks `t` as a JSON object, so that an empty table encodes as `{}`.
-- @tparam[opt] table t
-- @treturn table t
function M.object(t) return setmetatable(t or {}, OBJECT_MT) end

-- Plain copy of `v`: objects with a `totable` method are converted, other
-- metatables are dropped (except the array/object markers above).
local function plain(v, seen)
  if type(v) ~= "table" or v == M.null then return v end
  if seen[v] then error("json: cycle in value", 3) end
  local mt = getmetatable(v)
  if mt == ARRAY_MT or mt == OBJECT_MT then
    seen[v] = true
    local t = {}
    for k, x in pairs(v) do t[k] = plain(x, seen) end
    seen[v] = nil
    return setmetatable(t, mt)
  end
  if mt and type(v.totable) == "function" then
    return plain(v:totable(), seen)
  end
  seen[v] = true
  local t = {}
  for k, x in pairs(v) do t[k] = plain(x, seen) end
  seen[v] = nil
  return t
end

local function collect_keys(v, set)
  if type(v) ~= "table" then return end
  for k, x in pairs(v) do
    if type(k) == "string" then set[k] = true end
    collect_keys(x, set)
  end
end

--- Encodes `value` as one line of JSON.
-- @param value any JSON-able Lua value
-- @tparam[opt] {string,...} order keys to write first, in this order (applies to nested objects too)
-- @treturn string
function M.encode(value, order)
  local v = plain(value, {})
  local set = {}
  collect_keys(v, set)
  local keyorder, listed = {}, {}
  for _, k in ipairs(order or {}) do
    if not listed[k] then keyorder[#keyorder + 1] = k; listed[k] = true end
  end
  local rest = {}
  for k in pairs(set) do if not listed[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do keyorder[#keyorder + 1] = k end
  local s, err = dkjson.encode(v, { keyorder = keyorder })
  if not s then error("json: " .. tostring(err), 2) end
  return s
end

--- Decodes a JSON text.
-- @tparam string s
-- @return the value, or `nil, message`
function M.decode(s)
  local v, _, err = dkjson.decode(s, 1, M.null)
  if err then return nil, err end
  return v
end

--- ISO 8601 UTC text for an epoch time (`2026-11-26T09:14:00Z`), nil for nil.
-- @tparam[opt] number t epoch seconds
-- @treturn ?string
function M.iso(t)
  if t == nil then return nil end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

return M
