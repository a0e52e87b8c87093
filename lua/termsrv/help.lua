--- Help at the REPL: the functions of a module and the methods of an object,
-- one line each, from the reference's doc comments.
--
--     > termsrv.help()          -- the modules, and what to ask about
--     > termsrv.help(h)         -- the methods of a host handle (a record, list, plan...)
--     > termsrv.help(termsrv.select)
--     > termsrv.help("Host:sessions")
--
-- The text comes from lua/termsrv/helpdata.lua, which `make doc` generates
-- with LDoc from the same comments as the HTML reference, so it works from
-- an installed tree, where there is no LDoc.
-- @module termsrv.help

local data = require "termsrv.helpdata"

local M = {}

--- The documented class of each kind of object, by its metatable's `__name`:
-- the prefix of its methods in the reference and the modules documenting them.
M.CLASSES = {
  ["termsrv.Host"] = { "Host", "termsrv.host", "termsrv.control", "termsrv.processes" },
  ["termsrv.session"] = { "Session", "termsrv.record" },
  ["termsrv.sessions"] = { "List", "termsrv.record" },
  ["termsrv.plan"] = { "Plan", "termsrv.plan" },
  ["termsrv.plan.step"] = { "Step", "termsrv.plan" },
  ["termsrv.results"] = { "Results", "termsrv.plan" },
  ["termsrv.Result"] = { "Result", "termsrv.control" },
  ["termsrv.Process"] = { "Process", "termsrv.processes" },
  ["termsrv.processes"] = { "ProcessList", "termsrv.processes" },
  ["termsrv.doctor.checks"] = { "Checks", "termsrv.doctor" },
  ["termsrv.Fleet"] = { "Fleet", "termsrv.fleet" },
  ["termsrv.FleetJob"] = { "Job", "termsrv.fleet" },
  ["termsrv.FleetResult"] = { "Result", "termsrv.fleet" },
  ["termsrv.audit"] = { "Logger", "termsrv.audit" },
  ["termsrv.Error"] = { "Error", "termsrv.error" },
  ["termsrv.FleetResults"] = { "FleetResults", "termsrv.fleet" },
  ["termsrv.Conn"] = { "Conn", "termsrv.core" },
  ["termsrv.policy"] = { "Policy", "termsrv.policy" },
  ["termsrv.selector"] = { "Matcher", "termsrv.select" },
  ["termsrv.Progress"] = { "Progress", "termsrv.progress" },
  ["termsrv.summary"] = { "Summary", "termsrv.report" },
  ["termsrv.status"] = { "Status", "termsrv.error" },
  ["termsrv.fields"] = { "Fields", "termsrv.host" },
}

-- The documented item `name` of module `mod`, or nil.
local function item(mod, name)
  local m = data[mod]
  if not m then return nil end
  for _, it in ipairs(m.items) do
    if it[1] == name then return it end
  end
end

-- Documented functions by value, over the modules loaded so far: a function
-- exported under another name (`termsrv.connect` is `termsrv.host.connect`,
-- a record's `account` is `termsrv.record.account`) has its doc found here.
local function by_value()
  local index = {}
  for mod, m in pairs(data) do
    local t = package.loaded[mod]
    if type(t) == "table" then
      for _, it in ipairs(m.items) do
        local v = not it[1]:find("[.:]") and rawget(t, it[1])
        if type(v) == "function" and not index[v] then index[v] = { mod, it } end
      end
    end
  end
  return index
end

-- The name under which `t` is loaded, if it is one of termsrv's modules.
local function module_name(t)
  for name, v in pairs(package.loaded) do
    if v == t and type(name) == "string" and (name == "termsrv" or name:find("^termsrv%.")) then
      return name
    end
  end
end

-- The functions of a table, and of its metatable's __index table: sorted names.
local function functions(t, methods)
  local names, seen = {}, {}
  local function add(tbl)
    for k, v in pairs(tbl) do
      if type(k) == "string" and type(v) == "function" and not k:find("^__") and not seen[k] then
        seen[k] = true
        names[#names + 1] = k
      end
    end
  end
  if type(t) == "table" then add(t) end
  if methods then add(methods) end
  table.sort(names)
  return names
end

-- The methods table of an object: its metatable, and the __index table.
local function class_of(x)
  local mt = getmetatable(x)
  if type(mt) ~= "table" then return nil end
  local class = M.CLASSES[rawget(mt, "__name")]
  if not class then return nil end
  local methods = {}
  for k, v in pairs(mt) do methods[k] = v end
  if type(rawget(mt, "__index")) == "table" then
    for k, v in pairs(mt.__index) do methods[k] = v end
  end
  return class, methods
end

--- What the reference says about each function of `x`: a module table or an
-- object of one of `CLASSES`.
-- @param x a module (`termsrv`, `termsrv.select`...) or an object (handle, record, plan...)
-- @treturn {table,...} `{name, args, summary}` for each function (summary nil: undocumented),
--   sorted by name
-- @treturn string the module's or the class's name
-- @treturn ?table the class: `{prefix, module...}` (one of `CLASSES`)
function M.entries(x)
  local index = by_value()
  local class, methods = class_of(x)
  local mod = not class and module_name(x)
  if not class and not mod then return nil, nil end
  local out = {}
  local names = class and functions(nil, methods) or functions(x)
  for _, name in ipairs(names) do
    local it
    local v = class and methods[name] or rawget(x, name)
    if class then
      for i = 2, #class do
        it = it or item(class[i], class[1] .. ":" .. name) or item(class[i], class[1] .. "." .. name)
      end
    else
      it = item(mod, name)
    end
    if not it and index[v] then it = index[v][2] end
    local sep = class and ":" or "."
    out[#out + 1] = { (class and class[1] or mod) .. sep .. name, it and it[3] or "", it and it[4] }
  end
  return out, class and class[1] or mod, class
end

local function write(out, s) out:write(s, "\n") end

--- Prints help: with no argument the modules; for a module its functions,
-- for an object its methods, for a name (`"termsrv.select"`, `"Host:sessions"`)
-- that entry; one line each.
-- @param[opt] x a module, an object, or a name
-- @tparam[opt=io.stdout] file out where to print
function M.show(x, out)
  out = out or io.stdout
  if x == nil then
    write(out, "termsrv " .. tostring(require("termsrv.core").version) .. ": modules "
      .. "(termsrv.help(module) or termsrv.help(object) lists the functions and methods)")
    local names = {}
    for name in pairs(data) do
      if not name:find("^termsrv%.cli") then names[#names + 1] = name end
    end
    table.sort(names)
    for _, name in ipairs(names) do write(out, string.format("  %-20s %s", name, data[name].summary)) end
    return
  end
  if type(x) == "string" then
    if data[x] then
      local ok, mod = pcall(require, x)
      if ok and type(mod) == "table" then return M.show(mod, out) end
      write(out, x .. ": " .. data[x].summary)
      return
    end
    local found = false
    for mod, m in pairs(data) do
      for _, it in ipairs(m.items) do
        if it[1] == x or (mod .. "." .. it[1]) == x then
          write(out, string.format("%s%s  (%s)  %s", it[1], it[3], mod, it[4]))
          found = true
        end
      end
    end
    if not found then write(out, "no help for " .. x .. " (termsrv.help() lists the modules)") end
    return
  end
  local entries, name, class = M.entries(x)
  if not entries then
    write(out, "no help for " .. tostring(x) .. " (a " .. type(x) .. "); termsrv.help() lists the modules")
    return
  end
  if class then
    write(out, name .. " (" .. table.concat(class, ", ", 2) .. ")")
  else
    write(out, name .. ": " .. data[name].summary)
  end
  local width = 0
  for _, e in ipairs(entries) do width = math.max(width, #e[1] + #e[2]) end
  if #entries == 0 then write(out, "  (no methods; print it to see it)") end
  for _, e in ipairs(entries) do
    write(out, string.format("  %-" .. width .. "s  %s", e[1] .. e[2], e[3] or "(undocumented)"))
  end
end

return M
