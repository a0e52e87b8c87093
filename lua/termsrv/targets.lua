--- Host targets: what a command-line target, a hosts file or a JSON host
-- list stands for, as host specs `{host=, port=, name=}`.
--
--     targets.specs("ts[01-40].corp")       -- 40 specs
--     targets.specs("10.0.0.0/28", 445)     -- the block's 14 host addresses
--     targets.read_hosts("farm.txt", 445)   -- one host per line, or JSON
--
-- Nothing here resolves a name or opens a connection.
-- @module termsrv.targets

local split_host = require("termsrv.host").split_host

local M = {}

--- Why `port` is no TCP port, or nil when it is one.
function M.bad_port(port)
  if math.type(port) ~= "integer" or port < 1 or port > 65535 then
    return "port must be an integer from 1 to 65535, got " .. tostring(port)
  end
end

--- One host spec from `ADDRESS[:PORT]` or `LABEL=ADDRESS[:PORT]` (an IPv6
-- address in brackets when a port follows).
-- @tparam string text
-- @tparam[opt] integer default_port the port when `text` has none
-- @tparam[opt] string label the name (default: the label in `text`, else `text`)
-- @treturn[1] table `{host=, port=, name=}`
-- @treturn[2] nil
-- @treturn[2] string why
function M.parse_host(text, default_port, label)
  if type(text) ~= "string" or text == "" then return nil, "empty host name" end
  local name, addr = text:match("^([^=]+)=(.+)$")
  local h, port = split_host(addr or text)
  if h == "" or h:find("[%s/\\%[%]]") then return nil, "bad host '" .. text .. "'" end
  if port ~= nil and M.bad_port(port) then return nil, M.bad_port(port) .. " in '" .. text .. "'" end
  return { host = h, port = port or default_port, name = label or name or text }
end

--- The most hosts one target may expand to.
M.MAX_EXPANSION = 4096

local function ipv4(a, b, c, d)
  return string.format("%d.%d.%d.%d", a, b, c, d)
end

-- "10.0.0.0/28" -> its host addresses (network and broadcast left out
-- below /31), or nil when `text` is no IPv4 CIDR block.
local function cidr(text)
  local a, b, c, d, bits, rest = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)(.*)$")
  if not a then return nil end
  local o = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
  bits = tonumber(bits)
  for _, x in ipairs(o) do if x > 255 then return nil, "bad address in '" .. text .. "'" end end
  if bits > 32 or (rest ~= "" and not rest:match("^:%d+$")) then
    return nil, "bad CIDR block '" .. text .. "'"
  end
  local size = 1 << (32 - bits)
  local first = ((o[1] << 24) | (o[2] << 16) | (o[3] << 8) | o[4]) & ~(size - 1)
  local lo, hi = first, first + size - 1
  if bits < 31 then lo, hi = lo + 1, hi - 1 end
  if hi - lo + 1 > M.MAX_EXPANSION then
    return nil, string.format("'%s' is %d addresses; at most %d per target", text, hi - lo + 1,
      M.MAX_EXPANSION)
  end
  local out = {}
  for n = lo, hi do
    out[#out + 1] = ipv4((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255) .. rest
  end
  return out
end

-- "ts[01-40].corp" -> ts01.corp ... ts40.corp (the width of a zero-padded
-- start is kept; several ranges multiply), or nil when there is no range.
local function ranges(text)
  local pre, from, to, post = text:match("^([^%[]*)%[(%d+)%-(%d+)%](.*)$")
  if not pre then
    if text:find("[%[%]]") and not text:find("^%[.*%]") then return nil, "bad range in '" .. text .. "'" end
    return nil
  end
  local a, b = tonumber(from), tonumber(to)
  if a > b then return nil, "bad range in '" .. text .. "': " .. from .. " > " .. to end
  local width = from:sub(1, 1) == "0" and #from or 0
  local tails = ranges(post)
  if tails == nil then
    local _, why = ranges(post)
    if why then return nil, why end
    tails = { post }
  end
  if (b - a + 1) * #tails > M.MAX_EXPANSION then
    return nil, string.format("'%s' is over %d hosts", text, M.MAX_EXPANSION)
  end
  local out = {}
  for n = a, b do
    for _, t in ipairs(tails) do out[#out + 1] = pre .. string.format("%0" .. width .. "d", n) .. t end
  end
  return out
end

--- The hosts one target stands for: an IPv4 CIDR block (`10.0.0.0/28`, its
-- host addresses, optionally `:PORT`) or numeric ranges in brackets
-- (`ts[01-40].corp`, `10.1.[1-2].[10-12]`); anything else is itself.
-- @tparam string text
-- @treturn[1] {string,...}
-- @treturn[2] nil
-- @treturn[2] string why
function M.expand(text)
  if type(text) ~= "string" then return nil, "host name expected" end
  local list, why = cidr(text)
  if not (list or why) then list, why = ranges(text) end
  if not (list or why) then return { text } end
  if list and #list > 1 and text:find("=", 1, true) then
    return nil, "a label names one host, not the " .. #list .. " of '" .. text .. "'"
  end
  return list, why
end

--- The host specs one target stands for: `expand`, then `parse_host` of each.
-- @tparam string text
-- @tparam[opt] integer default_port
-- @tparam[opt] string label (only for a target that is one host)
-- @treturn[1] {table,...}
-- @treturn[2] nil
-- @treturn[2] string why
function M.specs(text, default_port, label)
  local list, why = M.expand(text)
  if list and label and #list > 1 then list, why = nil, "a label names one host, not " .. #list end
  if not list then return nil, why end
  local out = {}
  for i, one in ipairs(list) do
    out[i], why = M.parse_host(one, default_port, label)
    if not out[i] then return nil, why end
  end
  return out
end

local function parse_json(text, where, default_port)
  local v, _, err = require("dkjson").decode(text)
  if type(v) ~= "table" then return nil, where .. ": bad JSON: " .. tostring(err) end
  local out = {}
  for i, e in ipairs(v) do
    local spec, why
    if type(e) == "string" then
      spec, why = M.parse_host(e, default_port)
    elseif type(e) == "table" and type(e.host or e.address) == "string" then
      local addr = e.host or e.address
      if e.port then addr = (addr:find(":", 1, true) and ("[" .. addr .. "]") or addr) .. ":" .. e.port end
      spec, why = M.parse_host(addr, default_port, type(e.name) == "string" and e.name or nil)
    else
      why = "string or {host=, port=, name=} expected"
    end
    if not spec then return nil, string.format("%s: entry %d: %s", where, i, why) end
    out[#out + 1] = spec
  end
  return out
end

local function parse_list(text, where, default_port)
  if text:match("^%s*%[") then return parse_json(text, where, default_port) end
  local out, n = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local item = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    if item ~= "" then
      local addr, label = item:match("^(%S+)%s+(%S+)$")
      local specs, why = M.specs(addr or item, default_port, label)
      if not specs then return nil, where .. ":" .. n .. ": " .. why end
      table.move(specs, 1, #specs, #out + 1, out)
    end
  end
  return out
end

--- Parses a hosts file's text: one host per line (`ADDRESS[:PORT] [LABEL]`
-- or `LABEL=ADDRESS[:PORT]`; `#` starts a comment, blank lines are
-- skipped), or a JSON array of such strings or `{host= | address=, port=, name=}`
-- objects. The command line's `--hosts` reads the same format.
-- @tparam string text
-- @tparam[opt] string source file name used in messages
-- @tparam[opt] integer default_port
-- @treturn[1] table array of host specs `{host, port, name}`
-- @treturn[2] nil
-- @treturn[2] string why (naming the line or entry)
function M.parse_hosts(text, source, default_port)
  return parse_list(text, source or "hosts", default_port)
end

--- Reads and parses a hosts file (see `parse_hosts`).
-- @treturn[1] table host specs
-- @treturn[2] nil
-- @treturn[2] string why
function M.read_hosts(path, default_port)
  local f, err = io.open(path, "r")
  if not f then return nil, "cannot read hosts file: " .. tostring(err) end
  local text = f:read("a")
  f:close()
  return parse_list(text, path, default_port)
end

return M
