-- NTLMSSP client layer (src/ntlmssp.c) through termsrv.testkit.
--
-- Known-answer values come from MS-NLMP section 4.2 (4.2.1 common values,
-- 4.2.2.1.2 NTOWFv1, 4.2.4 NTLMv2 with ESS, KEY_EXCH and 128-bit keys).
-- Values the spec does not list (server-to-client keys, later sequence
-- numbers) were computed independently (Python hashlib/hmac and a separate
-- RC4; OpenSSL's legacy MD4) and are marked as such.

local ntlm = require("termsrv.testkit").ntlm
local rc = ntlm.rc
local F = ntlm.flags

local function unhex(s)
  s = s:gsub("%s+", "")
  return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- ASCII -> UTF-16LE
local function u16(s)
  return (s:gsub(".", "%0\0"))
end

local function same(expected, actual, what)
  assert.is_string(actual, what)
  assert.are.equal(hex(expected), hex(actual), what)
end

local function av(id, value)
  return string.pack("<I2I2", id, #value) .. value
end

-- MS-NLMP 4.2.1 common values
local USER, DOMAIN, WORKSTATION, PASSWORD = "User", "Domain", "COMPUTER", "Password"
local SERVER_CHALLENGE = unhex("01 23 45 67 89 ab cd ef")
local CLIENT_CHALLENGE = unhex("aa aa aa aa aa aa aa aa")
local RANDOM_SESSION_KEY = string.rep("\x55", 16)

-- MS-NLMP 4.2.4.3: CHALLENGE_MESSAGE
local SPEC_CHALLENGE = unhex([[
  4e 54 4c 4d 53 53 50 00 02 00 00 00 0c 00 0c 00
  38 00 00 00 33 82 8a e2 01 23 45 67 89 ab cd ef
  00 00 00 00 00 00 00 00 24 00 24 00 44 00 00 00
  06 00 70 17 00 00 00 0f 53 00 65 00 72 00 76 00
  65 00 72 00 02 00 0c 00 44 00 6f 00 6d 00 61 00
  69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00
  65 00 72 00 00 00 00 00]])

-- MS-NLMP 4.2.4.3: AUTHENTICATE_MESSAGE. It carries a Version field, so its
-- payload starts at 0x48; ours has no Version (we never negotiate it) and
-- starts at 0x40. The payload is laid out in the same order.
local SPEC_AUTHENTICATE = unhex([[
  4e 54 4c 4d 53 53 50 00 03 00 00 00 18 00 18 00
  6c 00 00 00 54 00 54 00 84 00 00 00 0c 00 0c 00
  48 00 00 00 08 00 08 00 54 00 00 00 10 00 10 00
  5c 00 00 00 10 00 10 00 d8 00 00 00 35 82 88 e2
  05 01 28 0a 00 00 00 0f 44 00 6f 00 6d 00 61 00
  69 00 6e 00 55 00 73 00 65 00 72 00 43 00 4f 00
  4d 00 50 00 55 00 54 00 45 00 52 00 86 c3 50 97
  ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa
  aa aa aa aa 68 cd 0a b8 51 e5 1c 96 aa bc 92 7b
  eb ef 6a 1c 01 01 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 aa aa aa aa aa aa aa aa 00 00 00 00
  02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00
  01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00
  00 00 00 00 00 00 00 00 c5 da d2 54 4f c9 79 90
  94 ce 1c e9 0b c9 d0 3e]])

local NTOWFV1 = unhex("a4 f4 9c 40 65 10 bd ca b6 82 4e e7 c3 0f d8 52")        -- 4.2.2.1.2
local NTOWFV2 = unhex("0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f")        -- 4.2.4.1.1
local SESSION_BASE_KEY = unhex("8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3") -- 4.2.4.1.2
local LMV2_RESPONSE = unhex([[86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19
                              aa aa aa aa aa aa aa aa]])                           -- 4.2.4.2.1
local NT_PROOF_STR = unhex("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")    -- 4.2.4.2.2
local ENCRYPTED_SESSION_KEY = unhex("c5 da d2 54 4f c9 79 90 94 ce 1c e9 0b c9 d0 3e") -- 4.2.4.2.3
local CLIENT_SEAL_KEY = unhex("59 f6 00 97 3c c4 96 0a 25 48 0a 7c 19 6e 4c 58")  -- 4.2.4.4
local CLIENT_SIGN_KEY = unhex("47 88 dc 86 1b 47 82 f3 5d 43 fd 98 fe 1a 2d 39")  -- 4.2.4.4
-- Not in the spec: MD5(0x55 * 16 || server-to-client constant incl. NUL),
-- computed with Python hashlib.
local SERVER_SIGN_KEY = unhex("d0 4d 6f 10 74 10 41 d1 d2 46 d6 41 88 d7 a8 ad")
local SERVER_SEAL_KEY = unhex("93 55 f3 a9 57 c1 58 3d 25 c4 c2 f1 1e 40 39 0e")

-- The NTLMv2 "temp" of 4.2.4 is the NtChallengeResponse of 4.2.4.3 minus
-- its first 16 bytes (NTProofStr): bytes 0x94 .. 0xd7 of the message.
local SPEC_NT_RESPONSE = SPEC_AUTHENTICATE:sub(0x84 + 1, 0x84 + 0x54)
local SPEC_TEMP = SPEC_NT_RESPONSE:sub(17)

-- A CHALLENGE_MESSAGE built field by field; with no options it is exactly
-- the 4.2.4.3 message (checked below), so each malformed variant differs
-- from a known-good message in one place only.
local function challenge(o)
  o = o or {}
  local name = o.name or u16("Server")
  local ti = o.ti or (av(2, u16("Domain")) .. av(1, u16("Server")) .. av(0, ""))
  local hdr = 56
  local name_off = o.name_off or hdr
  local ti_off = o.ti_off or (hdr + #name)
  return (o.sig or "NTLMSSP\0")
    .. string.pack("<I4", o.type or 2)
    .. string.pack("<I2I2I4", o.name_len or #name, o.name_max or o.name_len or #name, name_off)
    .. string.pack("<I4", o.flags or 0xe28a8233)
    .. (o.server_challenge or SERVER_CHALLENGE)
    .. string.rep("\0", 8)
    .. string.pack("<I2I2I4", o.ti_len or #ti, o.ti_max or o.ti_len or #ti, ti_off)
    .. unhex("06 00 70 17 00 00 00 0f")
    .. name .. ti
end

local function spec_ctx(extra)
  local args = {
    user = USER, domain = DOMAIN, workstation = WORKSTATION, password = PASSWORD,
    client_challenge = CLIENT_CHALLENGE, session_key = RANDOM_SESSION_KEY, time = 0,
  }
  for k, v in pairs(extra or {}) do args[k] = v end
  if args.nthash then args.password = nil end
  if args.password == false then args.password = nil end
  local c, err = ntlm.new(args)
  assert.is_userdata(c, "ntlm.new failed: " .. tostring(err))
  return c
end

-- A client that has completed the 4.2.4 handshake.
local function authed(extra)
  local c = spec_ctx(extra)
  assert.is_string(c:negotiate())
  local msg, err = c:authenticate(SPEC_CHALLENGE)
  assert.is_string(msg, "authenticate failed: " .. tostring(err))
  return c, msg
end

local function fields(msg)
  local function field(at)
    local len, max, off = string.unpack("<I2I2I4", msg, at + 1)
    return { data = msg:sub(off + 1, off + len), len = len, max = max, off = off }
  end
  return {
    signature = msg:sub(1, 8),
    type = string.unpack("<I4", msg, 9),
    lm = field(12), nt = field(20), domain = field(28), user = field(36),
    workstation = field(44), key = field(52),
    flags = string.unpack("<I4", msg, 61),
  }
end

local function authenticate_with(ch, extra)
  local c = spec_ctx(extra)
  c:negotiate()
  return c:authenticate(ch)
end

describe("ntlmssp #unit", function()

  describe("MS-NLMP 4.2.4 NTLMv2 known answers", function()

    it("NT hash of 'Password' is the NTOWFv1 of 4.2.2.1.2", function()
      same(NTOWFV1, ntlm.nt_hash(PASSWORD))
    end)

    it("ResponseKeyNT = NTOWFv2('Password', 'User', 'Domain') (4.2.4.1.1)", function()
      same(NTOWFV2, ntlm.ntowfv2(USER, DOMAIN, NTOWFV1))
    end)

    it("NTProofStr (4.2.4.2.2) and SessionBaseKey (4.2.4.1.2)", function()
      local proof, base = ntlm.v2_proof(NTOWFV2, SERVER_CHALLENGE, SPEC_TEMP)
      same(NT_PROOF_STR, proof)
      same(SESSION_BASE_KEY, base)
    end)

    it("our CHALLENGE builder reproduces the 4.2.4.3 CHALLENGE_MESSAGE", function()
      same(SPEC_CHALLENGE, challenge())
    end)

    it("AUTHENTICATE fields match 4.2.4.2 and 4.2.4.3 byte for byte", function()
      local _, msg = authed()
      local f = fields(msg)
      same("NTLMSSP\0", f.signature)
      assert.are.equal(3, f.type)
      same(LMV2_RESPONSE, f.lm.data, "LMv2 response (4.2.4.2.1)")
      same(SPEC_NT_RESPONSE, f.nt.data, "NTLMv2 response (4.2.4.3)")
      same(NT_PROOF_STR, f.nt.data:sub(1, 16), "NTProofStr (4.2.4.2.2)")
      same(u16(DOMAIN), f.domain.data)
      same(u16(USER), f.user.data)
      same(u16(WORKSTATION), f.workstation.data)
      same(ENCRYPTED_SESSION_KEY, f.key.data, "EncryptedRandomSessionKey (4.2.4.2.3)")
      -- the lengths are those of 4.2.4.3, and Len == MaxLen everywhere
      local spec = fields(SPEC_AUTHENTICATE)
      for _, k in ipairs({ "lm", "nt", "domain", "user", "workstation", "key" }) do
        assert.are.equal(spec[k].len, f[k].len, k)
        assert.are.equal(f[k].len, f[k].max, k)
      end
      -- same payload, in the same order; only the header is 8 bytes shorter
      same(SPEC_AUTHENTICATE:sub(0x48 + 1), msg:sub(0x40 + 1), "payload")
      assert.are.equal(#SPEC_AUTHENTICATE - 8, #msg)
      -- flags: what we asked for, as far as the server granted it
      assert.are.equal(F.CLIENT & 0xe28a8233, f.flags)
    end)

    it("the encrypted session key opens with the SessionBaseKey (KeyExchangeKey)", function()
      local _, msg = authed()
      same(RANDOM_SESSION_KEY, ntlm.rc4(SESSION_BASE_KEY, fields(msg).key.data))
    end)

    it("derives the 4.2.4.4 client keys and the matching server keys", function()
      local c = authed()
      local k = c:keys()
      same(RANDOM_SESSION_KEY, k.session)
      same(CLIENT_SEAL_KEY, k.client_seal, "client seal key (4.2.4.4)")
      same(CLIENT_SIGN_KEY, k.client_sign, "client sign key (4.2.4.4)")
      same(SERVER_SIGN_KEY, k.server_sign, "server sign key (independent)")
      same(SERVER_SEAL_KEY, k.server_seal, "server seal key (independent)")
      same(k.client_sign, k.ctx_client_sign)
      same(k.server_sign, k.ctx_server_sign)
    end)

    it("GSS_WrapEx of 'Plaintext' with SeqNum 0 (4.2.4.4)", function()
      local c = authed()
      local plain = u16("Plaintext")
      local sealed, sig = c:seal(plain, 0, #plain)
      same(unhex("54 e5 01 65 bf 19 36 dc 99 60 20 c1 81 1b 0f 06 fb 5f"), sealed)
      same(unhex("01 00 00 00 7f b3 8e c5 c5 5d 49 76 00 00 00 00"), sig)
      assert.are.equal(1, c:state().send_seq)
    end)

    it("a password given as its NT hash gives the same AUTHENTICATE", function()
      local _, by_password = authed()
      local _, by_hash = authed({ nthash = NTOWFV1 })
      same(by_password, by_hash)
    end)
  end)

  describe("NEGOTIATE", function()
    it("asks for NTLMv2 ESS, sign, seal, 128, 56 and key exchange, and nothing more", function()
      local c = spec_ctx()
      local msg = c:negotiate()
      same(unhex([[4e 54 4c 4d 53 53 50 00 01 00 00 00 35 82 08 e0
                   00 00 00 00 20 00 00 00 00 00 00 00 20 00 00 00]]), msg)
      local flags = string.unpack("<I4", msg, 13)
      for _, k in ipairs({ "UNICODE", "REQUEST_TARGET", "SIGN", "SEAL", "NTLM", "ALWAYS_SIGN",
                           "EXTENDED_SESSIONSECURITY", "N128", "KEY_EXCH", "N56" }) do
        assert.are_not.equal(0, flags & F[k], k)
      end
      assert.are.equal(0, flags & F.TARGET_INFO, "TARGET_INFO is the server's flag")
      assert.are.equal(0, flags & F.VERSION)
      assert.are.equal(flags, c:state().neg_flags)
      assert.is_true(#msg <= ntlm.NEGOTIATE_MAX)
    end)
  end)

  describe("AUTHENTICATE", function()
    it("refuses to run before NEGOTIATE or twice", function()
      local c = spec_ctx()
      local msg, err = c:authenticate(SPEC_CHALLENGE)
      assert.is_nil(msg)
      assert.are.equal(rc.EINVAL, err)
      assert.is_string(c:negotiate())
      assert.is_string(c:authenticate(SPEC_CHALLENGE))
      msg, err = c:authenticate(SPEC_CHALLENGE)
      assert.is_nil(msg)
      assert.are.equal(rc.EINVAL, err)
      msg, err = c:negotiate()
      assert.is_nil(msg)
      assert.are.equal(rc.EINVAL, err)
    end)

    it("reports a short output buffer and then works with the exact size", function()
      local _, full = authed()
      local c = spec_ctx()
      c:negotiate()
      local msg, err = c:authenticate(SPEC_CHALLENGE, #full - 1)
      assert.is_nil(msg)
      assert.are.equal(rc.ESMALL, err)
      assert.is_false(c:state().have_keys)
      same(full, c:authenticate(SPEC_CHALLENGE, #full))
    end)

    it("uses the server's MsvAvTimestamp and then sends Z(24) as LM response", function()
      local ts = 0x01d9a0b0c0d0e0f0
      local ti = av(2, u16("Domain")) .. av(7, string.pack("<I8", ts)) .. av(1, u16("Server"))
        .. av(0, "")
      local msg = assert(authenticate_with(challenge({ ti = ti })))
      local f = fields(msg)
      same(string.rep("\0", 24), f.lm.data)
      assert.are.equal(ts, string.unpack("<I8", f.nt.data, 16 + 9))
      same(ti, f.nt.data:sub(16 + 28 + 1, 16 + 28 + #ti), "target info copied as sent")
      same(string.rep("\0", 4), f.nt.data:sub(-4))
    end)

    it("without a server timestamp uses the test clock and a real LMv2", function()
      local msg = assert(authenticate_with(SPEC_CHALLENGE, { time = 0x0123456789abcdef }))
      local f = fields(msg)
      assert.are.equal(0x0123456789abcdef, string.unpack("<I8", f.nt.data, 16 + 9))
      assert.are_not.equal(string.rep("\0", 24), f.lm.data)
      same(CLIENT_CHALLENGE, f.lm.data:sub(17))
    end)

    it("outside test mode draws fresh randomness and uses the current time", function()
      local function run()
        local c = assert(ntlm.new({ user = USER, domain = DOMAIN, password = PASSWORD }))
        c:negotiate()
        local msg = assert(c:authenticate(SPEC_CHALLENGE))
        return fields(msg), c
      end
      local a, ca = run()
      local b = run()
      assert.are_not.equal(a.nt.data:sub(17 + 16, 17 + 23), b.nt.data:sub(17 + 16, 17 + 23))
      assert.are_not.equal(a.key.data, b.key.data)
      assert.are_not.equal(RANDOM_SESSION_KEY, ca:keys().session)
      local ft = string.unpack("<I8", a.nt.data, 16 + 9)
      local now = (os.time() + 11644473600) * 10000000
      assert.is_true(math.abs(ft - now) < 300 * 10000000, "timestamp near now")
      assert.are.equal("", a.workstation.data)
    end)

    it("accepts a CHALLENGE without target info (empty AV list in the blob)", function()
      local msg = assert(authenticate_with(challenge({ ti = "", flags = 0xe28a8233 & ~F.TARGET_INFO })))
      assert.are.equal(16 + 28 + 4, #fields(msg).nt.data)
    end)

    it("ignores target info the server did not flag as present", function()
      local msg = assert(authenticate_with(challenge({ flags = 0xe28a8233 & ~F.TARGET_INFO })))
      assert.are.equal(16 + 28 + 4, #fields(msg).nt.data)
    end)

    it("accepts target info of exactly NTLM_MAX_TARGET_INFO bytes", function()
      local pad = ntlm.MAX_TARGET_INFO - 4 - 4 -- one AV pair header + EOL
      local ti = av(2, string.rep("d\0", pad // 2)) .. av(0, "")
      assert.are.equal(ntlm.MAX_TARGET_INFO, #ti)
      local msg = assert(authenticate_with(challenge({ ti = ti })))
      assert.is_true(#msg <= ntlm.AUTH_MAX)
    end)

    it("fits NTLM_AUTH_MAX with the longest names and target info", function()
      local long = string.rep("a", ntlm.MAX_NAME) -- ASCII doubles in UTF-16: the worst case
      local ti = av(2, string.rep("d\0", (ntlm.MAX_TARGET_INFO - 8) // 2)) .. av(0, "")
      local msg = assert(authenticate_with(challenge({ ti = ti }),
        { user = long, domain = long, workstation = long }))
      assert.is_true(#msg <= ntlm.AUTH_MAX)
    end)

    describe("requires the server to grant", function()
      for _, k in ipairs({ "EXTENDED_SESSIONSECURITY", "SEAL", "SIGN", "KEY_EXCH", "N128", "UNICODE" }) do
        it(k, function()
          local msg, err = authenticate_with(challenge({ flags = 0xe28a8233 & ~F[k] }))
          assert.is_nil(msg)
          assert.are.equal(rc.ENOSUPP, err)
        end)
      end
      it("but not NEGOTIATE_56 once 128 is there", function()
        assert.is_string(authenticate_with(challenge({ flags = 0xe28a8233 & ~F.N56 })))
      end)
    end)
  end)

  describe("malformed CHALLENGE messages", function()
    local function rejects(ch, want)
      local c = spec_ctx()
      c:negotiate()
      local msg, err = c:authenticate(ch)
      assert.is_nil(msg)
      if want then
        assert.are.equal(want, err)
      else
        assert.is_true(err < 0)
      end
      -- a failed CHALLENGE leaves no keys behind
      assert.is_false(c:state().have_keys)
      assert.is_nil(c:keys())
    end

    it("every truncation of the 4.2.4.3 message", function()
      for n = 0, #SPEC_CHALLENGE - 1 do
        rejects(SPEC_CHALLENGE:sub(1, n), rc.EPROTO)
      end
    end)

    it("wrong signature or message type", function()
      rejects(challenge({ sig = "NTLMSSP " }), rc.EPROTO)
      rejects(challenge({ sig = "ntlmssp\0" }), rc.EPROTO)
      rejects(challenge({ type = 1 }), rc.EPROTO)
      rejects(challenge({ type = 3 }), rc.EPROTO)
      rejects(challenge({ type = 0x0102 }), rc.EPROTO)
    end)

    it("offsets past the end of the message", function()
      rejects(challenge({ ti_off = #SPEC_CHALLENGE }), rc.EPROTO)
      rejects(challenge({ ti_off = #SPEC_CHALLENGE - 0x23 }), rc.EPROTO)
      rejects(challenge({ name_off = #SPEC_CHALLENGE - 11 }), rc.EPROTO)
      rejects(challenge({ name_off = 0x10000 }), rc.EPROTO)
    end)

    it("offset + length that would overflow 32 bits", function()
      rejects(challenge({ ti_off = 0xfffffff0 }), rc.EPROTO)
      rejects(challenge({ ti_off = 0xffffffff }), rc.EPROTO)
      rejects(challenge({ name_off = 0xfffffffc }), rc.EPROTO)
    end)

    it("offsets into the fixed header", function()
      rejects(challenge({ ti_off = 0 }), rc.EPROTO)
      rejects(challenge({ name_off = 8 }), rc.EPROTO)
      rejects(challenge({ ti_off = 47 }), rc.EPROTO)
    end)

    it("a length above its MaxLen", function()
      rejects(challenge({ ti_max = 0x23 }), rc.EPROTO)
      rejects(challenge({ name_max = 2 }), rc.EPROTO)
    end)

    it("target info larger than NTLM_MAX_TARGET_INFO", function()
      local ti = av(2, string.rep("d\0", (ntlm.MAX_TARGET_INFO - 8) // 2 + 1)) .. av(0, "")
      assert.are.equal(ntlm.MAX_TARGET_INFO + 2, #ti)
      rejects(challenge({ ti = ti }), rc.EPROTO)
    end)

    it("target info without MsvAvEOL", function()
      rejects(challenge({ ti = av(2, u16("Domain")) .. av(1, u16("Server")) }), rc.EPROTO)
      rejects(challenge({ ti = av(2, u16("Domain")) .. "\0\0" }), rc.EPROTO)
    end)

    it("AV pairs that run past the target info, or a non-empty EOL", function()
      rejects(challenge({ ti = string.pack("<I2I2", 2, 40) .. u16("Domain") .. av(0, "") }), rc.EPROTO)
      rejects(challenge({ ti = av(2, u16("Domain")) .. string.pack("<I2I2", 0, 4) }), rc.EPROTO)
      rejects(challenge({ ti = av(0, "xxxx") }), rc.EPROTO)
    end)

    it("a malformed or repeated MsvAvTimestamp", function()
      rejects(challenge({ ti = av(7, "1234") .. av(0, "") }), rc.EPROTO)
      rejects(challenge({ ti = av(7, "12345678") .. av(7, "12345678") .. av(0, "") }), rc.EPROTO)
    end)

    it("random corruption of a valid message never crashes", function()
      local seed = 12345
      local function rnd(n)
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n
      end
      local results = {}
      for _ = 1, 3000 do
        local b = { SPEC_CHALLENGE:byte(1, -1) }
        for _ = 1, 1 + rnd(4) do
          b[1 + rnd(#b)] = rnd(256)
        end
        local ch = string.char(table.unpack(b))
        if rnd(4) == 0 then ch = ch:sub(1, rnd(#ch + 1)) end
        if rnd(8) == 0 then ch = ch .. string.rep("\xff", rnd(64)) end
        local msg, err = authenticate_with(ch)
        if msg then
          results.ok = (results.ok or 0) + 1
          assert.is_true(#msg <= ntlm.AUTH_MAX)
        else
          assert.is_true(err == rc.EPROTO or err == rc.ENOSUPP, tostring(err))
          results[err] = (results[err] or 0) + 1
        end
      end
      assert.is_true((results.ok or 0) > 0 and (results[rc.EPROTO] or 0) > 0)
    end)
  end)

  describe("seal and unseal", function()
    local function pair()
      local client = authed()
      return client, client:server()
    end

    -- A request-shaped PDU: 16-byte header, body, 8-byte sec_trailer.
    local function pdu(body, tag)
      local hdr = "\5\0\0\3" .. string.pack("<I4", 16 + #body + 8) .. string.rep(tag or "h", 8)
      return hdr .. body .. "\x0a\x06\x00\x00\x01\x00\x00\x00", 16, #body
    end

    it("continues the client RC4 stream and sequence (independent vectors)", function()
      local c = authed()
      local plain = u16("Plaintext")
      c:seal(plain, 0, #plain)
      -- seq 1, 4-byte header, 12-byte body, 8-byte trailer; computed with
      -- Python hmac/hashlib and a separate RC4 from the 4.2.4 session key
      local p = "\x05\x00\x00\x03hello world!\x0a\x06\x00\x00\x01\x00\x00\x00"
      local sealed, sig = c:seal(p, 4, 12)
      same(unhex("050000035ca6088c90822888e84f35720a06000001000000"), sealed)
      same(unhex("01000000704502b7912cc28801000000"), sig)
    end)

    it("unseals a server PDU (independent vector) and verifies it", function()
      local c = authed()
      local sealed = unhex("05000203356d6fc134c83d9b4db44bae0a06000001000000")
      local sig = unhex("01000000fe3376ba218aafcd00000000")
      local plain, err = c:unseal(sealed, 4, 12, sig)
      same("\x05\x00\x02\x03server reply\x0a\x06\x00\x00\x01\x00\x00\x00", plain, tostring(err))
      assert.are.equal(1, c:state().recv_seq)
    end)

    it("round-trips several PDUs each way; sequence numbers advance", function()
      local client, server = pair()
      local bodies = { "", "x", string.rep("stub", 100), "\0\1\2\3\4\5\6\7", string.rep("A", 4280) }
      for i, body in ipairs(bodies) do
        local p, off, len = pdu(body)
        local sealed, sig = client:seal(p, off, len)
        assert.are.equal(#p, #sealed)
        same(p:sub(1, off), sealed:sub(1, off), "header stays in clear")
        same(p:sub(off + len + 1), sealed:sub(off + len + 1), "trailer stays in clear")
        if len >= 4 then assert.are_not.equal(p:sub(off + 1, off + len), sealed:sub(off + 1, off + len)) end
        assert.are.equal(i - 1, string.unpack("<I4", sig, 13))
        same(p, server:unseal(sealed, off, len, sig), "server side, PDU " .. i)

        local r, roff, rlen = pdu("reply " .. body, "r")
        local rsealed, rsig = server:seal(r, roff, rlen)
        same(r, client:unseal(rsealed, roff, rlen, rsig), "client side, PDU " .. i)
      end
      local st = client:state()
      assert.are.equal(#bodies, st.send_seq)
      assert.are.equal(#bodies, st.recv_seq)
      assert.is_false(st.broken)
    end)

    it("the same plaintext seals differently each time (RC4 keeps running)", function()
      local client, server = pair()
      local p, off, len = pdu("same body same body")
      local s1, g1 = client:seal(p, off, len)
      local s2, g2 = client:seal(p, off, len)
      assert.are_not.equal(s1, s2)
      assert.are_not.equal(g1:sub(5, 12), g2:sub(5, 12))
      same(p, server:unseal(s1, off, len, g1))
      same(p, server:unseal(s2, off, len, g2))
    end)

    local function one_reply()
      local client, server = pair()
      local p, off, len = pdu("the server's answer")
      local sealed, sig = server:seal(p, off, len)
      return client, server, p, sealed, sig, off, len
    end

    local function expect_badsig(client, ...)
      local plain, err = client:unseal(...)
      assert.is_nil(plain)
      assert.are.equal(rc.EBADSIG, err)
      assert.is_true(client:state().broken)
    end

    local function poke(s, i, x)
      return s:sub(1, i - 1) .. string.char(s:byte(i) ~ x) .. s:sub(i + 1)
    end

    it("rejects a tampered body byte", function()
      local client, _, _, sealed, sig, off, len = one_reply()
      expect_badsig(client, poke(sealed, off + 3, 0x01), off, len, sig)
    end)

    it("rejects a tampered header or trailer byte (outside the encrypted region)", function()
      local client, _, _, sealed, sig, off, len = one_reply()
      expect_badsig(client, poke(sealed, 2, 0x80), off, len, sig)
      client, _, _, sealed, sig, off, len = one_reply()
      expect_badsig(client, poke(sealed, #sealed, 0x01), off, len, sig)
    end)

    it("rejects a tampered checksum, sequence number or version", function()
      for _, i in ipairs({ 5, 12, 13, 16, 1, 4 }) do
        local client, _, _, sealed, sig, off, len = one_reply()
        expect_badsig(client, sealed, off, len, poke(sig, i, 0x01))
      end
    end)

    it("rejects a replayed PDU", function()
      local client, server = pair()
      local p, off, len = pdu("first")
      local sealed, sig = server:seal(p, off, len)
      same(p, client:unseal(sealed, off, len, sig))
      expect_badsig(client, sealed, off, len, sig)
    end)

    it("rejects a replayed sequence number on a fresh PDU", function()
      local client, server = pair()
      local p, off, len = pdu("first")
      local s1, g1 = server:seal(p, off, len)
      local s2, g2 = server:seal(p, off, len)
      same(p, client:unseal(s1, off, len, g1))
      -- the second PDU relabelled with the first one's sequence number
      expect_badsig(client, s2, off, len, g2:sub(1, 12) .. g1:sub(13, 16))
    end)

    it("rejects PDUs out of order", function()
      local client, server = pair()
      local p, off, len = pdu("one")
      server:seal(p, off, len)
      local s2, g2 = server:seal(p, off, len)
      expect_badsig(client, s2, off, len, g2)
    end)

    it("rejects its own sealed PDU reflected back", function()
      local client = authed()
      local p, off, len = pdu("reflect me")
      local sealed, sig = client:seal(p, off, len)
      expect_badsig(client, sealed, off, len, sig)
    end)

    it("stays refused after a bad signature, in both directions", function()
      local client, server, p, sealed, sig, off, len = one_reply()
      expect_badsig(client, sealed, off, len, poke(sig, 6, 1))
      -- even the genuine PDU does not verify any more
      expect_badsig(client, sealed, off, len, sig)
      local out, err = client:seal(p, off, len)
      assert.is_nil(out)
      assert.are.equal(rc.EBADSIG, err)
      assert.is_userdata(server)
    end)

    it("refuses before the handshake and for regions outside the PDU, without side effects", function()
      local fresh = spec_ctx()
      local p, off, len = pdu("body")
      local out, err = fresh:seal(p, off, len)
      assert.is_nil(out)
      assert.are.equal(rc.EINVAL, err)
      out, err = fresh:unseal(p, off, len, string.rep("\0", 16))
      assert.is_nil(out)
      assert.are.equal(rc.EINVAL, err)

      local client, server = pair()
      for _, r in ipairs({ { #p + 1, 0 }, { off, #p }, { #p, 1 }, { -1, 4 }, { 4, -1 },
                           { math.maxinteger, 2 } }) do
        out, err = client:seal(p, r[1], r[2])
        assert.is_nil(out)
        assert.are.equal(rc.EINVAL, err)
        out, err = client:unseal(p, r[1], r[2], string.rep("\0", 16))
        assert.is_nil(out)
        assert.are.equal(rc.EINVAL, err)
      end
      local st = client:state()
      assert.are.equal(0, st.send_seq)
      assert.are.equal(0, st.recv_seq)
      assert.is_false(st.broken)
      -- the streams did not move: a normal exchange still works
      local sealed, sig = client:seal(p, off, len)
      same(p, server:unseal(sealed, off, len, sig))
      -- an empty body region and the whole PDU as body are both fine
      sealed, sig = client:seal(p, 0, 0)
      same(p, server:unseal(sealed, 0, 0, sig))
      sealed, sig = client:seal(p, 0, #p)
      same(p, server:unseal(sealed, 0, #p, sig))
    end)
  end)

  describe("names and passwords", function()
    it("NT hash of non-ASCII and long passwords (OpenSSL legacy MD4 as reference)", function()
      same(unhex("203be5131fa61dddd2457d29097c8143"), ntlm.nt_hash("P\xc3\xa4ssw\xc3\xb6rd\xf0\x9f\x98\x80"))
      same(unhex("a5d88229afdd1878dffe00469afba751"),
        ntlm.nt_hash(string.rep("ab\xe2\x82\xac\xf0\x9f\x98\x80", 40)))
      same(unhex("31d6cfe0d16ae931b73c59d7e0c089c0"), ntlm.nt_hash(""))
    end)

    it("upper-cases the user name for NTOWFv2 but not the domain", function()
      for _, u in ipairs({ "user", "USER", "uSeR" }) do
        same(NTOWFV2, ntlm.ntowfv2(u, DOMAIN, NTOWFV1), u)
      end
      assert.are_not.equal(hex(NTOWFV2), hex(ntlm.ntowfv2(USER, "DOMAIN", NTOWFV1)))
      assert.are_not.equal(hex(NTOWFV2), hex(ntlm.ntowfv2(USER, "domain", NTOWFV1)))
      local pairs_ = {
        { "j\xc3\xbcrgen", "J\xc3\x9cRGEN" },                     -- ü / Ü (Latin-1)
        { "\xc3\xbf", "\xc5\xb8" },                                -- ÿ / Ÿ (U+0178)
        { "\xc3\xa0\xc3\xbe", "\xc3\x80\xc3\x9e" },                -- à þ / À Þ
        { "o\xc5\x82ga", "O\xc5\x81GA" },                          -- ł / Ł (Latin Ext-A)
        { "\xc5\xbe", "\xc5\xbd" },                                -- ž / Ž
        { "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd", "\xd0\x98\xd0\x92\xd0\x90\xd0\x9d" }, -- иван
        { "\xd1\x91", "\xd0\x81" },                                -- ё / Ё
        { "\xce\xb1\xcf\x82", "\xce\x91\xce\xa3" },                -- ας / ΑΣ
      }
      for _, p in ipairs(pairs_) do
        same(ntlm.ntowfv2(p[2], DOMAIN, NTOWFV1), ntlm.ntowfv2(p[1], DOMAIN, NTOWFV1), p[1])
      end
      -- characters without a one-to-one upper case stay as they are
      local function key(u) return ntlm.ntowfv2(u, DOMAIN, NTOWFV1) end
      assert.are_not.equal(key("\xc3\x9f"), key("SS"))              -- ß
      assert.are_not.equal(key("\xc3\xb7"), key("\xc3\x97"))        -- ÷ is not a letter
    end)

    it("sends names as typed, in UTF-16LE with surrogate pairs", function()
      local msg = assert(authenticate_with(SPEC_CHALLENGE,
        { user = "j\xc3\xbcrgen", domain = "dom", workstation = "pc\xf0\x9f\x98\x80" }))
      local f = fields(msg)
      same("j\0\xfc\0r\0g\0e\0n\0", f.user.data)
      same(u16("dom"), f.domain.data)
      same("p\0c\0\x3d\xd8\x00\xde", f.workstation.data)
    end)

    it("rejects invalid UTF-8 in any name and in the password", function()
      local bad = { "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80",
                    "\x80", "a\xff", "\xf8\x88\x80\x80\x80" }
      for _, s in ipairs(bad) do
        for _, k in ipairs({ "user", "domain", "workstation", "password" }) do
          local c, err = ntlm.new({ user = "u", domain = "d", password = "p", [k] = s })
          assert.is_nil(c, k .. " " .. hex(s))
          assert.are.equal(rc.EINVAL, err)
        end
        local h, err = ntlm.nt_hash(s)
        assert.is_nil(h)
        assert.are.equal(rc.EINVAL, err)
      end
    end)

    it("limits names to NTLM_MAX_NAME bytes of UTF-8", function()
      local max = string.rep("a", ntlm.MAX_NAME)
      assert.is_userdata(ntlm.new({ user = max, domain = max, workstation = max, password = "p" }))
      for _, k in ipairs({ "user", "domain", "workstation" }) do
        local c, err = ntlm.new({ user = "u", domain = "d", password = "p", [k] = max .. "a" })
        assert.is_nil(c, k)
        assert.are.equal(rc.EINVAL, err)
      end
      local r, err = ntlm.ntowfv2(max .. "a", "d", NTOWFV1)
      assert.is_nil(r)
      assert.are.equal(rc.EINVAL, err)
    end)

    it("needs user and domain, and exactly one of password and NT hash", function()
      local cases = {
        { domain = "d", password = "p" },
        { user = "u", password = "p" },
        { user = "u", domain = "d" },
        { user = "u", domain = "d", password = "p", nthash = NTOWFV1 },
      }
      for i, args in ipairs(cases) do
        local c, err = ntlm.new(args)
        assert.is_nil(c, "case " .. i)
        assert.are.equal(rc.EINVAL, err)
      end
      assert.is_userdata(ntlm.new({ user = "u", domain = "", nthash = NTOWFV1 }))
    end)
  end)

  describe("secrets", function()
    it("never keeps the password, and drops the NT hash once keys exist", function()
      local pw = "S3cret-Passw0rd"
      local c = assert(ntlm.new({ user = USER, domain = DOMAIN, password = pw, time = 0 }))
      local h = ntlm.nt_hash(pw)
      assert.is_false(c:contains(pw))
      assert.is_false(c:contains(u16(pw)))
      assert.is_false(c:contains(u16(pw):sub(1, 8)))
      assert.is_true(c:contains(h))
      c:negotiate()
      assert(c:authenticate(SPEC_CHALLENGE))
      assert.is_false(c:contains(h))
    end)

    it("ntlm_wipe clears the whole context", function()
      local c = authed()
      local p, off, len = "0123456789abcdef", 4, 8
      c:seal(p, off, len)
      assert.is_false(c:is_zero())
      c:wipe()
      assert.is_true(c:is_zero())
      assert.is_nil(c:keys())
      local out, err = c:seal(p, off, len)
      assert.is_nil(out)
      assert.are.equal(rc.EINVAL, err)
    end)

    it("a failed init leaves nothing behind", function()
      for _, args in ipairs({
        { user = "u", domain = "\xff", password = "p" },
        { user = "u", domain = "d", password = "Passw\xc3" },
        { user = string.rep("u", 300), domain = "d", nthash = NTOWFV1 },
      }) do
        local c, err, raw = ntlm.new(args)
        assert.is_nil(c)
        assert.are.equal(rc.EINVAL, err)
        assert.is_true(raw:is_zero())
      end
    end)
  end)
end)
