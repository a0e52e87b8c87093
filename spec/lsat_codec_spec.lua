-- MS-LSAT codec (src/lsat.c) on byte vectors laid out from the IDL of
-- LsarOpenPolicy2, LsarLookupSids2 and LsarClose under NDR 2.0 rules.
local kit = require "termsrv.testkit"
local lsat = kit.lsat

local function w(s) return (s:gsub(".", "%0\0")) end   -- ASCII as UTF-16LE
local function pad4(b) return b .. string.rep("\0", (4 - #b % 4) % 4) end
local HANDLE = string.rep("\0", 4) .. string.rep("\x5a", 16)

-- the answer to a lookup of S-1-5-18 and an unknown SID: one domain
-- (NT AUTHORITY, S-1-5), SYSTEM (SidTypeWellKnownGroup) and SidTypeUnknown
local function answer(o)
  o = o or {}
  local b = string.pack("<I4", 0x20000)                           -- ReferencedDomains
    .. string.pack("<I4I4I4", 1, 0x20004, 1)                      -- Entries, Domains, MaxEntries
    .. string.pack("<I4", 1)                                       -- conformance
    .. string.pack("<I2I2I4I4", 24, 24, 0x20008, 0x2000c)         -- Name, Sid
    .. string.pack("<I4I4I4", 12, 0, o.domain_actual or 12) .. w("NT AUTHORITY")
    .. string.pack("<I4", 0) .. "\1\0\0\0\0\0\0\5"                 -- S-1-5
    .. string.pack("<I4I4", o.names or 2, 0x20010)                -- TranslatedNames
    .. string.pack("<I4", o.names or 2)
    .. string.pack("<I2I2I2I2I4i4I4", 5, 0, 12, 12, 0x20014, o.index or 0, 0)
    .. string.pack("<I2I2I2I2I4i4I4", 8, 0, 0, 0, 0, -1, 0)
  b = pad4(b .. string.pack("<I4I4I4", 6, 0, 6) .. w("SYSTEM"))
  return b .. string.pack("<I4I4", o.mapped or 1, 0x107) .. (o.tail or "")
end

describe("SIDs", function()
  it("parses the string form into the binary SID, and refuses what is not a SID", function()
    assert.equals("\1\1\0\0\0\0\0\5\18\0\0\0", lsat.sid("S-1-5-18"))
    assert.equals("\1\2\0\0\0\0\0\5\90\0\0\0\0\0\0\0", lsat.sid("S-1-5-90-0"))
    for _, bad in ipairs{ "S-1-5-", "S-2-5-18", "S-1-x", "S-1-5-18 ", "S-1-5-4294967296",
      "S-1-281474976710656", "S-1-5" .. string.rep("-1", 16) } do
      assert.is_nil(lsat.sid(bad), bad)
    end
  end)
end)

describe("requests", function()
  it("LsarOpenPolicy2: NULL SystemName, empty object attributes (Length 24), the access mask", function()
    assert.equals(string.pack("<I4I4I4I4I4I4I4I4", 0, 24, 0, 0, 0, 0, 0, 0x800),
      lsat.open_policy2_request(0x800))
  end)

  it("LsarLookupSids2: the SID array with its conformances, empty names, level 1, revision 1", function()
    local want = HANDLE .. string.pack("<I4I4I4I4I4", 2, 0x20000, 2, 0x20004, 0x20008)
      .. string.pack("<I4", 1) .. "\1\1\0\0\0\0\0\5\18\0\0\0"
      .. string.pack("<I4", 2) .. "\1\2\0\0\0\0\0\5\90\0\0\0\3\0\0\0"
      .. string.pack("<I4I4I2xxI4I4I4", 0, 0, 1, 0, 0, 1)
    assert.equals(want, lsat.lookup_request(HANDLE, { "S-1-5-18", "S-1-5-90-3" }))
  end)
end)

describe("LsarLookupSids2 answer", function()
  it("names each SID asked, in order, with its domain; an unknown SID stays unmapped", function()
    local names, status = assert(lsat.parse("lookup_sids2", answer(), 2))
    assert.equals(0x107, status)                       -- STATUS_SOME_NOT_MAPPED
    assert.same({ name = "SYSTEM", domain = "NT AUTHORITY", use = 5 }, names[1])
    assert.is_false(names[2])
    assert.equals(1, names.mapped)
  end)

  it("refuses every truncation of a good answer", function()
    local good = answer()
    for n = 0, #good - 1 do
      local ok, err = lsat.parse("lookup_sids2", good:sub(1, n), 2)
      assert.is_nil(ok, "length " .. n)
      assert.equals("malformed_response", err.code)
    end
  end)

  it("refuses counts and indexes that do not fit what was asked or sent", function()
    local cases = {
      { answer(), 1 },                          -- two names for one SID asked
      { answer{ index = 1 }, 2 },               -- DomainIndex past the domain list
      { answer{ index = -2 }, 2 },
      { answer{ domain_actual = 13 }, 2 },      -- actual count past the maximum
      { answer{ mapped = 3 }, 2 },              -- more mapped than names
      { answer{ tail = "\0\0\0\0" }, 2 },       -- bytes after the status
    }
    for i, c in ipairs(cases) do
      local ok, err = lsat.parse("lookup_sids2", c[1], c[2])
      assert.is_nil(ok, "case " .. i)
      assert.equals("malformed_response", err.code)
    end
  end)

  it("takes an answer without domains or names (STATUS_NONE_MAPPED with nothing named)", function()
    local b = string.pack("<I4I4I4I4", 0x20000, 0, 0, 0) .. string.pack("<I4I4I4I4", 0, 0, 0, 0xC0000073)
    local names, status = assert(lsat.parse("lookup_sids2", b, 3))
    assert.equals(0xC0000073, status)
    assert.same({ false, false, false }, { names[1], names[2], names[3] })
  end)
end)

describe("LsarOpenPolicy2 and LsarClose answers", function()
  it("are a handle and an NTSTATUS, nothing more and nothing less", function()
    local h, st = assert(lsat.parse("open_policy2", HANDLE .. string.pack("<I4", 0)))
    assert.same({ HANDLE, 0 }, { h, st })
    local _, st2 = assert(lsat.parse("open_policy2", HANDLE .. string.pack("<I4", 0xC0000022)))
    assert.equals(0xC0000022, st2)
    assert.is_nil(lsat.parse("open_policy2", HANDLE))
    assert.is_nil(lsat.parse("close", HANDLE .. "\0\0\0\0\0"))
    assert(lsat.parse("close", string.rep("\0", 24)))
  end)
end)

describe("the fuzz seeds (fuzz/seeds/lsat_parse, simulator answers)", function()
  it("each parses cleanly, and the lookups name what the simulator named", function()
    local kinds = { [0] = "open_policy2", "lookup_sids2", "close" }
    local n = 0
    for name in require("lfs").dir("fuzz/seeds/lsat_parse") do
      if name:sub(1, 1) ~= "." then
        local bytes = assert(require("support.util").slurp("fuzz/seeds/lsat_parse/" .. name))
        local result, status = lsat.parse(kinds[bytes:byte(1) % 3], bytes:sub(3), bytes:byte(2))
        assert.is_truthy(result, name)
        if name:match("all%-mapped") then
          assert.equals(0, status)
          assert.same({ name = "SYSTEM", domain = "NT AUTHORITY", use = 5 }, result[1])
        elseif name:match("none%-mapped") then
          assert.same({ 0xC0000073, false, false }, { status, result[1], result[2] })
        end
        n = n + 1
      end
    end
    assert.is_true(n >= 6)
  end)
end)
