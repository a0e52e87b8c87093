-- DCE/RPC engine over an in-memory transport: what the client writes, and
-- how it treats well-formed, fragmented, faulty and hostile server PDUs.
local kit = require "termsrv.testkit"
local rpc = kit.tsts.rpc

local function hdr(ptype, flags, frag_len, auth_len, call_id)
  return string.pack("<BBBBBBBBI2I2I4", 5, 0, ptype, flags, 0x10, 0, 0, 0, frag_len, auth_len, call_id)
end

-- bind_ack accepting n contexts (results given as a list of 0 / 2)
local function bind_ack(call_id, results, max_recv)
  local body = string.pack("<I2I2I4", max_recv or 4280, max_recv or 4280, 0x1234)
  local addr = "\\PIPE\\lsm_api_service\0"
  body = body .. string.pack("<I2", #addr) .. addr
  while (16 + #body) % 4 ~= 0 do body = body .. "\0" end
  body = body .. string.pack("<BBI2", #results, 0, 0)
  for _, r in ipairs(results) do
    body = body .. string.pack("<I2I2", r, r == 0 and 0 or 1) .. string.rep("\0", 20)
  end
  return hdr(12, 3, 16 + #body, 0, call_id) .. body
end

local function response(call_id, stub, flags)
  local body = string.pack("<I4I2BB", #stub, 0, 0, 0) .. stub
  return hdr(2, flags or 3, 16 + #body, 0, call_id) .. body
end

local function fault(call_id, status)
  local body = string.pack("<I4I2BBI4I4", 32, 0, 0, 0, status, 0)
  return hdr(3, 3, 16 + #body, 0, call_id) .. body
end

describe("DCE/RPC bind #unit", function()
  it("writes the unauthenticated bind of MS-TSTS.md 8.2 byte for byte", function()
    local r = rpc{ responses = bind_ack(1, { 0 }), ifaces = { "enum" } }
    local expect = table.concat({
      "05000b0310000000480000000100000", "0b810b81000000000010000000000010",
      "0d03f14888dc22b4b8fef8d882f6a9390010000000", "45d888aeb1cc9119fe808002b10486002000000" })
    assert.is_true(r.bound)
    assert.equals(72, #r.written[1])
    assert.equals(expect, (r.written[1]:gsub(".", function(c) return string.format("%02x", c:byte()) end)))
  end)

  it("offers several contexts in one bind and records which were accepted", function()
    local r = rpc{ responses = bind_ack(1, { 0, 2 }), ifaces = { "enum", "session" } }
    assert.is_true(r.bound)
    assert.same({ true, false }, r.ctx_ok)
    assert.equals(2, r.written[1]:byte(25)) -- n_context_elem
  end)

  it("fails with bind_refused on bind_nak and on all contexts rejected", function()
    local nak = hdr(13, 3, 18, 0, 1) .. string.pack("<I2", 4)
    local r = rpc{ responses = nak }
    assert.is_false(r.bound)
    assert.equals("bind_refused", r.bind_error)
    r = rpc{ responses = bind_ack(1, { 2 }) }
    assert.equals("bind_refused", r.bind_error)
  end)

  it("rejects a bind_ack with the wrong call_id or a tiny max_recv_frag", function()
    assert.equals("malformed_response", rpc{ responses = bind_ack(7, { 0 }) }.bind_error)
    assert.equals("malformed_response", rpc{ responses = bind_ack(1, { 0 }, 100) }.bind_error)
  end)

  it("takes the server's max_recv_frag as its sending limit", function()
    local r = rpc{ responses = bind_ack(1, { 0 }, 2048) }
    assert.equals(2048, r.max_xmit)
  end)
end)

describe("DCE/RPC calls #unit", function()
  it("sends a request with context id, opnum and alloc_hint, and returns the stub", function()
    local stub = "\1\0\0\0"
    local r = rpc{ responses = bind_ack(1, { 0, 0 }) .. response(2, "answer!!"), ifaces = { "enum", "session" },
                   calls = { { ctx = 1, opnum = 17, stub = stub } } }
    assert.equals("answer!!", r.results[1].stub)
    local req = r.written[2]
    local ptype, flags, flen, alen, call_id, hint, ctx, opnum =
      string.unpack("<xxBBxxxxI2I2I4I4I2I2", req)
    assert.same({ 0, 3, 28, 0, 2, 4, 1, 17 }, { ptype, flags, flen, alen, call_id, hint, ctx, opnum })
  end)

  it("fragments a large request at the negotiated size", function()
    local big = string.rep("x", 5000)
    local r = rpc{ responses = bind_ack(1, { 0 }, 2048) .. response(2, "ok"),
                   calls = { { opnum = 1, stub = big } } }
    assert.equals("ok", r.results[1].stub)
    assert.equals(4, #r.written) -- bind + 3 fragments
    local total = 0
    for i = 2, 4 do
      local f = r.written[i]
      local flags, flen = string.unpack("<xxxBxxxxI2", f)
      assert.is_true(flen <= 2048)
      assert.equals(i == 2 and 1 or (i == 4 and 2 or 0), flags)
      total = total + flen - 24
    end
    assert.equals(5000, total)
  end)

  it("reassembles a multi-fragment response", function()
    local resp = response(2, "part1-", 1) .. response(2, "part2-", 0) .. response(2, "part3", 2)
    local r = rpc{ responses = bind_ack(1, { 0 }) .. resp, calls = { { opnum = 5 } } }
    assert.equals("part1-part2-part3", r.results[1].stub)
  end)

  it("maps fault PDUs to named errors and keeps the connection usable", function()
    local r = rpc{ responses = bind_ack(1, { 0 }) .. response(2, "ok") .. fault(3, 0x1C010002) .. response(4, "again"),
                   calls = { { opnum = 1 }, { opnum = 17 }, { opnum = 1 } } }
    assert.equals("ok", r.results[1].stub)
    assert.equals("not_supported", r.results[2].err)
    assert.equals(0x1C010002, r.results[2].status)
    assert.equals("again", r.results[3].stub)
    assert.is_false(r.broken)
  end)

  it("treats access denied on the first call after the bind as an authentication failure", function()
    local r = rpc{ responses = bind_ack(1, { 0 }) .. fault(2, 5), calls = { { opnum = 10 } } }
    assert.equals("auth_failed", r.results[1].err)
  end)

  it("refuses a response with another call_id and stops using the connection", function()
    local r = rpc{ responses = bind_ack(1, { 0 }) .. response(9, "x") .. response(3, "y"),
                   calls = { { opnum = 1 }, { opnum = 1 } } }
    assert.equals("malformed_response", r.results[1].err)
    assert.equals("connection_lost", r.results[2].err)
    assert.is_true(r.broken)
  end)

  it("refuses fragments larger than it advertised, without reading them", function()
    local big = response(2, string.rep("z", 5000))
    local r = rpc{ responses = bind_ack(1, { 0 }) .. big, calls = { { opnum = 1 } } }
    assert.equals("malformed_response", r.results[1].err)
    assert.is_true(r.broken)
  end)

  it("refuses a frag_length below the header size and a truncated stream", function()
    local bad = hdr(2, 3, 8, 0, 2)
    local r = rpc{ responses = bind_ack(1, { 0 }) .. bad, calls = { { opnum = 1 } } }
    assert.equals("malformed_response", r.results[1].err)
    local cut = response(2, "abcdef"):sub(1, 26)
    r = rpc{ responses = bind_ack(1, { 0 }) .. cut, calls = { { opnum = 1 } } }
    assert.equals("timeout", r.results[1].err)
    assert.is_true(r.broken)
  end)

  it("refuses a first fragment without FIRST_FRAG and unknown PDU types", function()
    local r = rpc{ responses = bind_ack(1, { 0 }) .. response(2, "x", 2), calls = { { opnum = 1 } } }
    assert.equals("malformed_response", r.results[1].err)
    r = rpc{ responses = bind_ack(1, { 0 }) .. hdr(17, 3, 16, 0, 2), calls = { { opnum = 1 } } }
    assert.equals("malformed_response", r.results[1].err)
  end)

  it("refuses a call on a context the server rejected", function()
    local r = rpc{ responses = bind_ack(1, { 0, 2 }), ifaces = { "enum", "session" },
                   calls = { { ctx = 1, opnum = 0 } } }
    assert.equals("bind_refused", r.results[1].err)
  end)
end)
