-- A sealed Kerberos response with any one bit flipped is rejected before
-- anything parses it: the Kerberos twin of hardening_signature_spec.lua.
-- The response is genuine: the core's client binds the LSM pipe with
-- Kerberos (a service ticket that sim/krbworld forged into a ccache) over
-- the memory transport, whose server is MIT's GSS acceptor in this process
-- (the world's keytab); the server seals a real RpcGetSessionInformationEx
-- answer the simulator gave (fuzz/seeds/tsts_parse). Every flipped copy
-- goes to the client's receive path on the association as the bind left
-- it (termsrv.fuzzkit krb_flips, fuzz/krbflip.c). SPNEGO (auth type 9)
-- and raw Kerberos (16), both with header signing.
local kit = require "termsrv.fuzzkit"
local sim = require "support.sim"
local util = require "support.util"
local flips = require "support.flips"

local SPN = "host/ts01.corp.test@CORP.TEST"
local STUB = "fuzz/seeds/tsts_parse/sim-w2012-n-info_ex"
local dir, world, stub

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  local out, ok, _, err = sim.run{ sim.root .. "/sim/krbworld", dir }
  assert(ok, "sim/krbworld failed: " .. tostring(err))
  local ccache, keytab = out:match("^([^\n]+)\n([^\n]+)\n")
  world = { ccache = ccache, keytab = keytab }
  -- the seed's first byte picks the parser (fuzz_tsts_parse)
  stub = assert(util.slurp(STUB)):sub(2)
end)
teardown(function()
  if dir then os.execute("rm -rf " .. util.quote(dir)) end
end)

local function krb_flips(raw)
  local r, err = kit.krb_flips{ ccache = world.ccache, keytab = world.keytab, spn = SPN, raw = raw,
    ctx = 1, opnum = 17, parser = "info_ex", stub = stub }
  assert(r, err)
  assert.is_nil(r.violation)
  return r
end

for _, mech in ipairs{ { name = "SPNEGO", raw = false, auth_type = 9 },
                       { name = "raw Kerberos", raw = true, auth_type = 16 } } do
  describe("a sealed Kerberos response (" .. mech.name .. ")", function()
    local r
    setup(function() r = krb_flips(mech.raw) end)

    it("is a real one: the server verified our request, the client verifies and parses the answer", function()
      assert.equals(mech.auth_type, r.auth_type)
      assert.is_true(r.header_sign)
      assert.is_true(r.request_ok)
      -- the control comes after every flip: rejected copies left the
      -- security context as it was
      assert.is_false(r.control)
      assert.is_true(r.control_parsed)
      assert.is_nil(r.parse_code)
      -- header, stub, auth padding, sec_trailer, verifier
      assert.equals(24 + #stub + (16 - #stub % 16) % 16 + 8 + r.sig_len, #r.resp)
    end)

    it("with any one bit flipped is rejected, and never parsed", function()
      assert.equals(8 * #r.resp, #r.codes)
      assert.equals(0, r.flip_parses)
      flips.check(#r.resp, function(byte, bit)
        -- krb_flips counts parser runs, not per flip: none in all of them
        return r.codes[8 * byte + bit + 1] or nil, false
      end)
    end)

    it("replayed is rejected (GSS sequence numbers)", function()
      assert.equals("bad_signature", r.replay)
    end)
  end)
end
