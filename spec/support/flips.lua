-- The verdicts every bit flip of a sealed response must get, shared by the
-- NTLM and Kerberos signature specs (hardening_signature_spec.lua,
-- hardening_krb_signature_spec.lua).
local assert = require "luassert"

local flips = {}

-- Bytes of the common header: fields the client checks before the seal can
-- be (version, type, flags, data representation, lengths, call id).
flips.HEADER = 16

local FRAMING = { bad_signature = true, malformed_response = true, timeout = true }

-- outcome(byte, bit) (0-based) -> code (nil = accepted), parsed. Every flip
-- must be rejected and never parsed: with bad_signature after the common
-- header (stub, padding, sec_trailer, verifier), and in it with
-- bad_signature or a framing error (malformed, or a read that waits for
-- bytes that never come when frag_length grows). Returns the count of
-- each code.
function flips.check(nbytes, outcome)
  local counts = {}
  for byte = 0, nbytes - 1 do
    for bit = 0, 7 do
      local code, parsed = outcome(byte, bit)
      local where = ("byte %d bit %d"):format(byte, bit)
      assert.is_string(code, where .. " was accepted")
      assert.is_false(parsed, where .. " reached the parser")
      if byte >= flips.HEADER then
        assert.equals("bad_signature", code, where)
      else
        assert.is_truthy(FRAMING[code], where .. ": " .. code)
      end
      counts[code] = (counts[code] or 0) + 1
    end
  end
  assert.is_true(counts.bad_signature > 8 * (nbytes - flips.HEADER))
  return counts
end

-- s with bit (0-7) of byte (1-based) flipped.
function flips.flip(s, byte, bit)
  local b = s:byte(byte) ~ (1 << bit)
  return s:sub(1, byte - 1) .. string.char(b) .. s:sub(byte + 1)
end

return flips
