-- The hand-written DER of src/spnego.c (SPNEGO for DCE/RPC auth type 9, GSS
-- framing, KRB-ERROR), byte for byte and against malformed input. The same
-- code meets the simulator's own Python parser in spec/kerberos_spec.lua
-- and libFuzzer in fuzz/fuzz_spnego.c.
local kit = require("termsrv.testkit").spnego

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function unhex(h) return (h:gsub("%s", ""):gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end

local KRB5 = "2a864886f712010202"
local MS_KRB5 = "2a864882f712010202"

describe("SPNEGO NegTokenInit #unit", function()
  it("frames the AP-REQ (KRB5 OID, TOK_ID 01 00) and offers MS-KRB5 then KRB5", function()
    local tok, mechtypes = kit.init_token("\x6e\x00")
    assert.equals(unhex("603b 06062b0601050502 a031 302f a018 3016 0609" .. MS_KRB5 .. "0609" .. KRB5
      .. "a213 0411 600f 0609" .. KRB5 .. "0100 6e00"), tok)
    assert.equals(unhex("3016 0609" .. MS_KRB5 .. "0609" .. KRB5), mechtypes)
  end)

  it("uses long-form lengths, shortest form, for a real-sized AP-REQ", function()
    local ap = "\x6e" .. string.rep("x", 1151)
    local tok = kit.init_token(ap)
    -- 60 82 LL LL: the outer length covers exactly what follows
    assert.equals("608204", hex(tok:sub(1, 3)))
    assert.equals(#tok - 4, tok:byte(3) * 256 + tok:byte(4))
    assert.equals(ap, tok:sub(-#ap))
  end)
end)

describe("SPNEGO NegTokenResp #unit", function()
  it("round-trips a responseToken (the third leg)", function()
    for _, n in ipairs{ 0, 1, 93, 127, 128, 255, 256, 70000 } do
      local t = string.rep("\x6f", n)
      local r = assert(kit.parse_resp(kit.resp_token(t)), "length " .. n)
      assert.equals(t, r.token)
      assert.equals(-1, r.state)
    end
  end)

  it("reads negState, supportedMech, responseToken and mechListMIC", function()
    local r = assert(kit.parse_resp(unhex("a11d 301b a003 0a0101 a10b 0609" .. KRB5 .. "a203 0401aa a302 0400")))
    assert.same({ state = 1, krb5 = true, token = "\xaa", mic = "" }, r)
    assert.same({ state = 2, krb5 = false }, kit.parse_resp(unhex("a107 3005 a003 0a0102")))
  end)

  it("refuses what is not well-formed DER or not Kerberos", function()
    local bad = {
      "",                                          -- empty
      "a107 3005 a003 0a0102 00",                  -- trailing byte
      "a1 8107 3005 a003 0a0102",                  -- long form where short is due
      "a107 3005 a003 0a0104",                     -- negState out of range
      "a108 3006 a004 0a020001",                   -- negState of two bytes
      "a10e 300c a10a 06082b06010401823702",       -- supportedMech NTLM (truncated OID on purpose)
      "a10f 300d a10b 06092b0601040182370202",     -- supportedMech NTLM
      "a10a 3008 a203 0401aa a003 0a0101",         -- fields out of order
      "a108 3006 a203 0401aa",                     -- inner length past the end
      "a1 84ffffffff 30",                          -- absurd length
      "a0 03 300100",                              -- a NegTokenInit tag
    }
    for _, h in ipairs(bad) do assert.is_nil(kit.parse_resp(unhex(h)), h) end
  end)
end)

describe("GSS framing and KRB-ERROR #unit", function()
  it("unframes a KRB5 token and refuses other OIDs", function()
    local inner, tok = kit.unframe(unhex("6011 0609" .. KRB5 .. "0200 6f02 0000"))
    assert.equals(unhex("6f02 0000"), inner)
    assert.equals(0x0200, tok)
    assert.is_nil(kit.unframe(unhex("6011 0609" .. MS_KRB5 .. "0200 6f02 0000")))
    assert.is_nil(kit.unframe(unhex("600b 0609" .. KRB5)))  -- no TOK_ID
  end)

  it("reads the error-code of a KRB-ERROR, MIT's own and a minimal one", function()
    local f = assert(io.open("fuzz/seeds/spnego/krb-error-raw", "rb"))
    local mit = f:read("a")
    f:close()
    -- MIT frames it (TOK_ID 03 00) when the AP-REQ did not decrypt
    local inner, tok = assert(kit.unframe(mit))
    assert.equals(0x0300, tok)
    assert.equals(31, kit.krb_error(inner))  -- KRB_AP_ERR_BAD_INTEGRITY, the wrong-key seed
    assert.is_nil(kit.krb_error(mit))
    local min = unhex("7e29 3027 a003020105 a10302011e a411180f32303236313230323030303030305a"
      .. "a503020100 a603020125")
    assert.equals(37, kit.krb_error(min))   -- KRB_AP_ERR_SKEW
    assert.is_nil(kit.krb_error(min:sub(1, -2)))
    assert.is_nil(kit.krb_error(unhex("7e05 3003 a0 01 05")))
  end)
end)

describe("Kerberos statuses #unit", function()
  it("each failure the notes list has its own code, name and hint", function()
    local termsrv = require "termsrv"
    local want = {
      [0x96C73AC3] = { "krb_no_ticket", "KRB5_FCC_NOFILE" },
      [0x96C73A20] = { "krb_ticket_expired", "KRB5KRB_AP_ERR_TKT_EXPIRED" },
      [0x96C73A25] = { "krb_clock_skew", "KRB5KRB_AP_ERR_SKEW" },
      [0x96C73A07] = { "krb_unknown_spn", "KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN" },
      [0x96C73A9C] = { "krb_kdc_unreachable", "KRB5_KDC_UNREACH" },
      [0x96C73A0E] = { "krb_etype", "KRB5KDC_ERR_ETYPE_NOSUPP" },
      [0x96C73A29] = { "krb_wrong_key", "KRB5KRB_AP_ERR_MODIFIED" },
    }
    for status, w in pairs(want) do
      local s = assert(termsrv.strerror(status, "kerberos"), w[2])
      assert.same({ w[1], w[2], "Kerberos" }, { s.code, s.name, s.kind })
      assert.is_true(#s.hint > 20)
      assert.not_matches("wrong password", s.hint)
    end
  end)
end)
