-- The one option checker (termsrv.check): every option table of the
-- library is refused the same way for an unknown key or a wrong type.
local check = require "termsrv.check"

describe("termsrv.check.options #unit", function()
  local TYPES = { name = "string", n = "integer", k = "boolean|table", t = "number" }

  it("returns the table, or an empty one for nil", function()
    local o = { name = "x", n = 3, k = true, t = 1.5 }
    assert.equals(o, check.options("f", o, TYPES))
    assert.same({}, check.options("f", nil, TYPES))
    assert.same({ k = {} }, check.options("f", { k = {} }, TYPES))
  end)

  it("names an unknown key and the ones there are", function()
    assert.has_error(function() check.options("f", { nmae = "x" }, TYPES) end,
      "f: unknown option 'nmae' (options: k, n, name, t)")
  end)

  it("names a wrong type, alternatives and integers included", function()
    assert.has_error(function() check.options("f", { name = 1 }, TYPES) end,
      "f: option 'name' must be a string, got number")
    assert.has_error(function() check.options("f", { k = "yes" }, TYPES) end,
      "f: option 'k' must be a boolean or table, got string")
    assert.has_error(function() check.options("f", { n = 2.5 }, TYPES) end,
      "f: option 'n' must be a integer, got float")
    assert.has_error(function() check.options("f", "all", TYPES) end, "f: options table expected, got string")
  end)

  it("points at the caller of the checked function", function()
    local function api(opts) check.options("api", opts, TYPES) end
    local ok, err = pcall(function() api({ bad = 1 }) end)
    assert.is_false(ok)
    assert.matches("^spec/check_spec.lua:%d+: api: unknown option 'bad'", err)
  end)

  it("serves connect, fleet, the host methods and the sandbox with the same words", function()
    local termsrv = require "termsrv"
    assert.has_error(function() termsrv.connect{ host = "h", password = "x", tiemout = 1 } end)
    local _, e1 = pcall(termsrv.connect, { host = "h", password = "x", tiemout = 1 })
    local _, e2 = pcall(termsrv.fleet, { hosts = {}, tiemout = 1 })
    local _, e3 = pcall(require("termsrv.sandbox").limits, { tiem = 1 })
    local _, e4 = pcall(termsrv.connect, { host = "h", password = "x", kerberos = { spm = "x" } })
    for _, e in ipairs{ e1, e2, e3, e4 } do assert.matches(": unknown option '%a+' %(options: ", e) end
    local _, e5 = pcall(termsrv.connect, { host = "h", password = 5 })
    assert.matches("termsrv.connect: option 'password' must be a string, got number", e5, 1, true)
    local host = require "termsrv.host"
    local fake = setmetatable({ _c = {} }, host.Host)
    assert.has_error(function() fake:sessions{ driver = true } end,
      "host:sessions: unknown option 'driver' (options: all, client, drivers, locked, method, source, times)")
  end)
end)
