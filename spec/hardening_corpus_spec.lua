-- The fuzz harnesses as tests: the seed corpora (real simulator answers,
-- fuzz/seeds) replayed through the C core over the memory transport of
-- fuzz/memtransport.c, and hostile answers no real server sends. Under `make
-- check` the same runs are watched by ASan/UBSan and valgrind.
--
-- termsrv.fuzzkit (fuzz/kit.c) reports each step of a run; it also checks
-- the error contract on every failure (one of the documented codes, and a
-- description) and reports a broken promise as `violation`.
local kit = require "termsrv.fuzzkit"
local lfs = require "lfs"

local SEEDS = "fuzz/seeds/"

local function read(path) return assert(require("support.util").slurp(path)) end

local function seeds(target)
  local list = {}
  for name in lfs.dir(SEEDS .. target) do
    if name:sub(1, 1) ~= "." then list[#list + 1] = name end
  end
  table.sort(list)
  assert.is_true(#list > 0, "no seeds in " .. SEEDS .. target)
  return list
end

local function outcome(steps)
  local t = {}
  for i, s in ipairs(steps) do t[i] = s.name .. "=" .. (s.code or "ok") end
  return table.concat(t, " ")
end

local function clean(r, what)
  assert.is_nil(r.violation, what)
end

-- DCE/RPC PDUs built by hand (little-endian, C706 12.6).
local function pdu(ptype, flags, call_id, body, auth_len)
  return string.pack("<BBBBI4I2I2I4", 5, 0, ptype, flags, 0x10, 16 + #body, auth_len or 0, call_id) .. body
end

-- A bind_ack accepting `nres` contexts (default 1), laid out as the
-- simulator sends it.
local function bind_ack(call_id, nres)
  nres = nres or 1
  local sec = "\\PIPE\\LSM_API_service\0"
  local body = string.pack("<I2I2I4I2", 4280, 4280, 0x5E41, #sec) .. sec
  body = body .. ("\0"):rep((4 - (16 + #body) % 4) % 4) .. string.pack("<BBI2", nres, 0, 0)
  for _ = 1, nres do body = body .. string.pack("<I2I2", 0, 0) .. ("\0"):rep(20) end
  return pdu(12, 3, call_id, body)
end

local function response(call_id, flags, stub)
  return pdu(2, flags, call_id, string.pack("<I4I2BB", #stub, 0, 0, 0) .. stub)
end

describe("the seed corpora #unit", function()
  it("replay every conversation captured from the simulator step for step", function()
    local n = 0
    for line in io.lines("fuzz/replay.expect") do
      local label, expected = line:match("^(%S+) (.*)$")
      local seed = read(SEEDS .. "tsts_client/" .. label)
      local r = kit.client(seed)
      clean(r, label)
      assert.equals(expected, outcome(r.steps), label)
      assert.equals(#seed - 1, r.consumed, label .. ": every byte the server sent is read")
      n = n + 1
    end
    assert.is_true(n >= 20, "conversations in fuzz/replay.expect")
  end)

  it("run every seed of every fuzz target to a clean result", function()
    for _, name in ipairs(seeds("rpc_stream")) do
      clean(kit.engine(read(SEEDS .. "rpc_stream/" .. name), false), name)
    end
    for _, name in ipairs(seeds("rpc_sealed")) do
      local r = kit.engine(read(SEEDS .. "rpc_sealed/" .. name), true)
      clean(r, name)
      if not name:match("naked") then
        assert.is_nil(r.steps[1].code, name .. ": the sealed bind replays")
      end
    end
    -- whole conversations, including inputs the fuzzers once broke the
    -- error contract with (regress-*)
    for _, name in ipairs(seeds("tsts_client")) do
      clean(kit.client(read(SEEDS .. "tsts_client/" .. name)), name)
    end
    local ntlm = require("termsrv.testkit").ntlm
    for _, name in ipairs(seeds("ntlm_challenge")) do
      local ctx = assert(ntlm.new{ user = "ops", domain = "CORP", password = "pw",
        client_challenge = ("\170"):rep(8), session_key = ("\85"):rep(16) })
      assert(ctx:negotiate())
      local msg, rc = ctx:authenticate(read(SEEDS .. "ntlm_challenge/" .. name))
      assert.is_truthy(msg or rc == ntlm.rc.EPROTO or rc == ntlm.rc.ENOSUPP, name)
      if name:match("^sim%-") then assert.is_string(msg, name .. ": the simulator's challenge is accepted") end
    end
    for _, name in ipairs(seeds("tsts_parse")) do
      local bytes = read(SEEDS .. "tsts_parse/" .. name)
      local parser = kit.parsers[bytes:byte(1) % #kit.parsers + 1]
      local code = kit.parse(parser, bytes:sub(2))
      if not name:match("absurd") then assert.is_nil(code, name .. " parses") end
    end
  end)

  it("end every conversation cut short with timeouts, and nothing else", function()
    for _, label in ipairs{ "sim-w2019-p", "sim-w2019-n", "sim-legacy-p", "sim-w2008-n" } do
      local seed = read(SEEDS .. "tsts_client/" .. label)
      local full = kit.client(seed).steps
      for k = 1, 24 do
        local cut = 1 + (#seed - 1) * k // 25
        local r = kit.client(seed:sub(1, cut))
        clean(r, label)
        assert.equals(#full, #r.steps)
        -- a step the client answers from what it already knows (a pipe it
        -- found absent) keeps its answer; every other one times out
        local timeouts = 0
        for j = 1, #full do
          local got, want = outcome{ r.steps[j] }, outcome{ full[j] }
          if got ~= want then
            assert.equals("timeout", r.steps[j].code, ("%s cut at %d, step %s"):format(label, cut, full[j].name))
            timeouts = timeouts + 1
          end
        end
        assert.is_true(timeouts > 0, label .. " cut at " .. cut .. " still completes")
      end
    end
  end)
end)

describe("the DCE/RPC engine facing a hostile server #unit", function()
  local function call_result(stream, nctx)
    local r = kit.engine(string.char((nctx or 1) - 1) .. stream, false)
    clean(r)
    assert.is_nil(r.steps[1].code, "bind")
    return r.steps[2]
  end

  it("accepts the hand-made answers (the control for the cases below)", function()
    local s = call_result(bind_ack(1) .. response(2, 3, "\1\2\3\4"))
    assert.is_nil(s.code)
    assert.equals(4, s.len)
  end)

  it("refuses a fragment longer than it advertised it can receive", function()
    local s = call_result(bind_ack(1) .. response(2, 3, ("x"):rep(5000)))
    assert.equals("malformed_response", s.code)
  end)

  it("refuses a frag_length below the header size and one that cannot hold auth_length", function()
    local short = bind_ack(1) .. string.pack("<BBBBI4I2I2I4", 5, 0, 2, 3, 0x10, 8, 0, 2)
    assert.equals("malformed_response", call_result(short).code)
    local auth = bind_ack(1) .. string.pack("<BBBBI4I2I2I4", 5, 0, 2, 3, 0x10, 40, 30, 2) .. ("\0"):rep(24)
    assert.equals("malformed_response", call_result(auth).code)
  end)

  it("refuses a verifier on a response to an unauthenticated call", function()
    local body = string.pack("<I4I2BB", 0, 0, 0, 0) .. ("\0"):rep(8 + 16)
    local s = call_result(bind_ack(1) .. pdu(2, 3, 2, body, 16))
    assert.equals("malformed_response", s.code)
  end)

  it("refuses fragments out of order (a middle fragment first)", function()
    assert.equals("malformed_response", call_result(bind_ack(1) .. response(2, 2, "abcd")).code)
    assert.equals("malformed_response",
      call_result(bind_ack(1) .. response(2, 1, "ab") .. response(2, 3, "cd")).code)
  end)

  it("refuses big-endian data and other protocol versions", function()
    local be = bind_ack(1) .. response(2, 3, "abcd"):gsub("^(....)\x10", "%1\x00")
    assert.equals("malformed_response", call_result(be).code)
    local v4 = bind_ack(1) .. "\4" .. response(2, 3, "abcd"):sub(2)
    assert.equals("malformed_response", call_result(v4).code)
  end)

  it("stops a response that never ends at 16 MiB: response_too_large", function()
    local chunk = ("z"):rep(4280 - 24)
    local frags = { bind_ack(1), response(2, 1, chunk) }
    local more = response(2, 0, chunk)
    for _ = 1, (16 * 1024 * 1024) // #chunk + 1 do frags[#frags + 1] = more end
    local s = call_result(table.concat(frags))
    assert.equals("response_too_large", s.code)
  end)

  it("reads a fault PDU too short to hold a status as an RPC fault", function()
    local s = call_result(bind_ack(1) .. pdu(3, 3, 2, "\0\0"))
    assert.equals("rpc_fault", s.code)
  end)

  it("refuses a bind_ack with more results than contexts, or none", function()
    local r = kit.engine("\1" .. bind_ack(1, 1), false)     -- two contexts asked, one result
    assert.equals("malformed_response", r.steps[1].code)
    r = kit.engine("\0" .. bind_ack(1, 0), false)
    assert.equals("malformed_response", r.steps[1].code)
    r = kit.engine("\0" .. bind_ack(1, 5), false)
    assert.equals("malformed_response", r.steps[1].code)
  end)

  it("takes a bind_nak with any reason as bind_refused", function()
    for _, reason in ipairs{ 0, 2, 9, 77, 0xFFFF } do
      local r = kit.engine("\0" .. pdu(13, 3, 1, string.pack("<I2", reason)), false)
      clean(r)
      assert.equals(reason == 9 and "auth_failed" or "bind_refused", r.steps[1].code)
      assert.equals(reason, r.steps[1].status)
    end
  end)

  it("refuses an answer to another call id", function()
    assert.equals("malformed_response", call_result(bind_ack(1) .. response(7, 3, "abcd")).code)
    local r = kit.engine("\0" .. bind_ack(9), false)
    assert.equals("malformed_response", r.steps[1].code)
  end)
end)

describe("the MS-TSTS decoders facing absurd counts #unit", function()
  it("refuse counts larger than the bytes present, before allocating", function()
    local big = { 0x7FFFFFFF, 0xFFFFFFFF, 0x10001 }
    for _, n in ipairs(big) do
      -- RpcGetAllSessions: level, referent, count, ... entries, HRESULT
      assert.equals("malformed_response", kit.parse("all_sessions", string.pack("<I4I4I4I4I4", 2, 0x20000, n, n, 0)))
      assert.equals("malformed_response", kit.parse("enum_result", string.pack("<I4I4I4I4", 0x20000, n, n, 0)))
      assert.equals("malformed_response",
        kit.parse("processes", string.pack("<I4I4I4I4", 0, n, 0x20000, n) .. ("\0"):rep(64)))
      -- RpcWinStationEnumerate: pResult, entries, referent, conformance, buffer...
      assert.equals("malformed_response",
        kit.parse("legacy_enum", string.pack("<I4I4I4I4", 0, n, 0x20000, 76) .. ("\0"):rep(76)
          .. string.pack("<I4I4B", 76, 0, 1)))
    end
  end)

  it("refuse strings longer than their maximum and offsets past it", function()
    -- RpcGetSessionInformation: three string referents, state, locked, times...
    local head = string.pack("<I4I4I4I4I4", 0x20000, 0, 0, 4, 0) .. ("\0"):rep(4) .. ("\0"):rep(24)
    assert.equals("malformed_response", kit.parse("info12", head .. string.pack("<I4I4I4", 4, 0, 9) .. ("a\0"):rep(9)))
    assert.equals("malformed_response", kit.parse("info12", head .. string.pack("<I4I4I4", 4, 2, 2) .. ("a\0"):rep(2)))
  end)
end)
