-- A response whose NTLM signature does not verify is rejected with
-- `bad_signature` and never reaches a parser. The responses are real ones:
-- sealed conversations captured from the simulator (fuzz/seeds/rpc_sealed),
-- replayed through the DCE/RPC engine with the capture's fixed NTLM keys
-- (termsrv.fuzzkit), one bit flipped at a time. The same rejection end to
-- end, through smbd, is in spec/faults_spec.lua (bad_signature, and
-- bad_signature on an answer that would not even parse).
local kit = require "termsrv.fuzzkit"
local lfs = require "lfs"
local flips = require "support.flips"

local DIR = "fuzz/seeds/rpc_sealed/"

local function read(path) return assert(require("support.util").slurp(path)) end

-- Splits a pipe's server stream into its PDUs.
local function pdus(stream)
  local list, off = {}, 1
  while off + 15 <= #stream do
    local len = string.unpack("<I2", stream, off + 8)
    list[#list + 1] = stream:sub(off, off + len - 1)
    off = off + len
  end
  return list
end

local flip = flips.flip

-- The captured LSM conversations: config byte, bind_ack, then responses.
local function lsm_streams()
  local out = {}
  for name in lfs.dir(DIR) do
    if name:match("%-lsm$") then
      local s = read(DIR .. name)
      out[#out + 1] = { name = name, cfg = s:sub(1, 1), pdus = pdus(s:sub(2)) }
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- A captured bind_ack + RpcGetAllSessions response that parses, and one of a
-- multi-fragment response (any parser).
local single, multi
setup(function()
  for _, s in ipairs(lsm_streams()) do
    if not single and #s.pdus >= 2 and s.pdus[2]:byte(3) == 2 then
      local r = kit.engine(s.cfg .. s.pdus[1] .. s.pdus[2], true, "all_sessions")
      if r.steps[2] and not r.steps[2].code and not r.steps[2].parse_code then single = s end
    end
  end
  for name in lfs.dir(DIR) do
    if not multi and name:sub(1, 1) ~= "." then
      local s = read(DIR .. name)
      local list = pdus(s:sub(2))
      for i = 2, #list - 1 do
        -- a response fragment without PFC_LAST_FRAG, followed by the rest of its call
        if not multi and list[i]:byte(3) == 2 and list[i]:byte(4) & 2 == 0 and list[i]:byte(4) & 1 == 1 then
          local last = i
          while list[last]:byte(4) & 2 == 0 do last = last + 1 end
          multi = { name = name, cfg = s:sub(1, 1), before = table.concat(list, "", 1, i - 1),
                    frags = { table.unpack(list, i, last) }, calls = i - 1 }
        end
      end
    end
  end
  assert(single, "no sealed RpcGetAllSessions response among the seeds of " .. DIR)
  assert(multi, "no sealed multi-fragment response among the seeds of " .. DIR)
end)

describe("a sealed response", function()
  it("verifies and parses as captured (the control)", function()
    local r = kit.engine(single.cfg .. single.pdus[1] .. single.pdus[2], true, "all_sessions")
    assert.is_nil(r.violation)
    assert.is_nil(r.steps[1].code)
    assert.is_nil(r.steps[2].code)
    assert.is_true(r.steps[2].parsed)
    assert.is_nil(r.steps[2].parse_code)
    assert.equals(1, r.parses)
  end)

  it("with any one bit flipped is rejected, and never parsed", function()
    local resp = single.pdus[2]
    local prefix = single.cfg .. single.pdus[1]
    flips.check(#resp, function(byte, bit)
      local r = kit.engine(prefix .. flip(resp, byte + 1, bit), true, "all_sessions")
      assert.is_nil(r.violation)
      local step = r.steps[2]
      assert.is_table(step, ("byte %d bit %d"):format(byte, bit))
      assert.equals(0, r.parses)
      return step.code, step.parsed
    end)
  end)

  it("leaves the connection unusable: nothing after a bad signature is read", function()
    local resp = single.pdus[2]
    local r = kit.engine(single.cfg .. single.pdus[1] .. flip(resp, #resp - 3, 0) .. resp, true, "all_sessions")
    assert.equals("bad_signature", r.steps[2].code)
    assert.equals(2, #r.steps)
  end)
end)

describe("a sealed multi-fragment response", function()
  local function run(frags)
    local r = kit.engine(multi.cfg .. multi.before .. table.concat(frags), true, "processes")
    assert.is_nil(r.violation)
    return r.steps[multi.calls + 1], r
  end

  it("verifies fragment by fragment (the control)", function()
    local step = run(multi.frags)
    assert.is_nil(step.code)
    assert.is_true(step.parsed)
  end)

  it("with one bit flipped in any fragment is rejected whole, and never parsed", function()
    for i, frag in ipairs(multi.frags) do
      for _, at in ipairs{ 17, #frag // 2, #frag - 20, #frag } do
        local frags = { table.unpack(multi.frags) }
        frags[i] = flip(frag, at, 3)
        local step = run(frags)
        local where = ("fragment %d byte %d"):format(i, at - 1)
        assert.equals("bad_signature", step.code, where)
        assert.is_false(step.parsed, where)
      end
    end
  end)

  it("with a fragment left out or repeated is rejected (sequence numbers)", function()
    local n = #multi.frags
    local frags = { table.unpack(multi.frags) }
    table.remove(frags, n - 1 > 1 and n - 1 or 1)
    if #frags >= 1 then
      local step = run(frags)
      assert.is_string(step.code)
      assert.is_false(step.parsed)
    end
    frags = { table.unpack(multi.frags) }
    local first = multi.frags[1]
    -- the first fragment again, replayed as a middle one
    table.insert(frags, 2, first:sub(1, 3) .. string.char(first:byte(4) & ~1) .. first:sub(5))
    local step = run(frags)
    assert.equals("bad_signature", step.code)
    assert.is_false(step.parsed)
  end)
end)
