--- Plain data to bytes and back: how a fleet worker hands its answer to the
-- parent process.
--
-- Values: nil, booleans, integers, floats, strings and tables of these
-- (keys: strings, numbers, booleans). Tables whose metatable is a known
-- termsrv class -- session records and lists, result records, process
-- records, error objects -- come back with their metatable, so they print and
-- behave as they did in the worker; other classes can be added with
-- `register`. Functions, userdata, threads, cycles and tables of unknown
-- classes (a host handle, say) are refused with an error naming where in the
-- value they sit. A table reached twice is written twice.
--
-- The format is private to one termsrv version talking to itself through a
-- pipe: tagged values packed with `string.pack`, never `load`ed.
-- @module termsrv.serialize

local M = {}

local MAX_DEPTH = 200
local pack, unpack = string.pack, string.unpack

-- class name (the metatable's __name) -> metatable
local classes = {}
local defaults_loaded = false

--- Lets tables with metatable `mt` cross: they are tagged with `mt.__name`
-- (which must be unique) and get `mt` back on the other side.
-- @tparam table mt a metatable with a string `__name`
function M.register(mt)
  if type(mt) ~= "table" or type(rawget(mt, "__name")) ~= "string" then
    error("serialize.register: metatable with a string __name expected", 2)
  end
  local name = rawget(mt, "__name")
  if classes[name] and classes[name] ~= mt then
    error("serialize.register: another class is already registered as '" .. name .. "'", 2)
  end
  classes[name] = mt
end

-- The built-in classes, loaded on first use so that this module stays
-- usable without the C core.
local function defaults()
  if defaults_loaded then return end
  defaults_loaded = true
  local record = require "termsrv.record"
  M.register(record.Session)
  M.register(record.List)
  M.register(require("termsrv.error").Error)
  M.register(require("termsrv.error").Status)
  local ok, control = pcall(require, "termsrv.control")
  if ok then
    M.register(control.Result)
    M.register(require("termsrv.processes").Process)
    M.register(require("termsrv.processes").ProcessList)
    M.register(require("termsrv.host").Fields)
    M.register(require("termsrv.host").Counters)
  end
end

local function path_string(path, depth)
  local parts = { "value" }
  for i = 1, depth do
    local k = path[i]
    if type(k) == "string" and k:match("^[%a_][%w_]*$") then
      parts[#parts + 1] = "." .. k
    else
      parts[#parts + 1] = "[" .. (type(k) == "string" and string.format("%q", k) or tostring(k)) .. "]"
    end
  end
  return table.concat(parts)
end

local PLAIN = " (only plain data and termsrv records can leave a worker)"

local function refuse(path, depth, what, note)
  error({ serialize = true, message = what .. " at " .. path_string(path, depth) .. (note or "") }, 0)
end

local function encode_value(v, out, path, depth, open)
  local t = type(v)
  if t == "nil" then
    out[#out + 1] = "n"
  elseif t == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif t == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = pack("<c1j", "i", v)
    else
      out[#out + 1] = pack("<c1n", "d", v)
    end
  elseif t == "string" then
    out[#out + 1] = pack("<c1s4", "s", v)
  elseif t == "table" then
    if open[v] then refuse(path, depth, "a cycle (a table that contains itself)") end
    if depth >= MAX_DEPTH then refuse(path, depth, "tables nested too deeply") end
    local mt = getmetatable(v)
    local name = ""
    if mt ~= nil then
      name = type(mt) == "table" and rawget(mt, "__name")
      if type(name) ~= "string" or classes[name] ~= mt then
        refuse(path, depth, "a table with metatable " .. (type(name) == "string" and ("'" .. name .. "'")
          or "(no __name)"), PLAIN)
      end
    end
    open[v] = true
    out[#out + 1] = pack("<c1s1", "t", name)
    for k, x in next, v do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
        path[depth + 1] = "<" .. kt .. " key>"
        refuse(path, depth + 1, "a " .. kt .. " used as a key")
      end
      path[depth + 1] = k
      encode_value(k, out, path, depth + 1, open)
      encode_value(x, out, path, depth + 1, open)
    end
    path[depth + 1] = nil
    out[#out + 1] = "e"
    open[v] = nil
  else
    refuse(path, depth, "a " .. t, PLAIN)
  end
end

--- Encodes a value.
-- @param v the value
-- @treturn[1] string
-- @treturn[2] nil
-- @treturn[2] string what could not be encoded and where, e.g.
--   `a function at value.stats.fn (only plain data ...)`
function M.encode(v)
  defaults()
  local out = {}
  local ok, err = pcall(encode_value, v, out, {}, 0, {})
  if not ok then
    if type(err) == "table" and err.serialize then return nil, err.message end
    error(err, 0)
  end
  return table.concat(out)
end

local function decode_value(s, pos, depth)
  local tag = s:sub(pos, pos)
  pos = pos + 1
  if tag == "n" then return nil, pos end
  if tag == "T" then return true, pos end
  if tag == "F" then return false, pos end
  if tag == "i" then return unpack("<j", s, pos) end
  if tag == "d" then return unpack("<n", s, pos) end
  if tag == "s" then return unpack("<s4", s, pos) end
  if tag == "t" then
    if depth >= MAX_DEPTH then error("nested too deeply", 0) end
    local name
    name, pos = unpack("<s1", s, pos)
    local t = {}
    while true do
      if pos > #s then error("truncated", 0) end
      if s:sub(pos, pos) == "e" then pos = pos + 1; break end
      local k, x
      k, pos = decode_value(s, pos, depth + 1)
      if k == nil then error("nil key", 0) end
      x, pos = decode_value(s, pos, depth + 1)
      t[k] = x
    end
    if name ~= "" then
      local mt = classes[name]
      if not mt then error("unknown class '" .. name .. "'", 0) end
      setmetatable(t, mt)
    end
    return t, pos
  end
  error(pos > #s + 1 and "truncated" or ("bad tag at byte " .. (pos - 1)), 0)
end

--- Decodes what `encode` made.
-- @tparam string s
-- @return[1] the value (which may be nil), then true
-- @treturn[2] nil
-- @treturn[2] false
-- @treturn[2] string what is wrong with `s`
function M.decode(s)
  if type(s) ~= "string" then error("serialize.decode: string expected", 2) end
  defaults()
  local ok, v, pos = pcall(decode_value, s, 1, 0)
  if not ok then
    local msg = tostring(v)
    if msg:find("data string too short", 1, true) then msg = "truncated" end
    return nil, false, "malformed data: " .. msg
  end
  if pos ~= #s + 1 then return nil, false, "malformed data: trailing bytes" end
  return v, true
end

return M
