-- MS-TSTS response parsers on byte vectors laid out from the IDL (MS-TSTS
-- section 6) and the structure pages (2.2.2.x) under NDR 2.0 rules.
local kit = require "termsrv.testkit"
local parse = kit.tsts.parse

local function u16(s, units)  -- fixed WCHAR[units], NUL padded
  local out = s:gsub(".", "%0\0")
  return out .. string.rep("\0", 2 * units - #out)
end
local function pad4(b) return b .. string.rep("\0", (4 - #b % 4) % 4) end
local function cv(s)           -- conformant varying string with its NUL
  local n = #s + 1
  return string.pack("<I4I4I4", n, 0, n) .. u16(s, n)
end

local function level2(execenv, state, station, id, user, domain)
  local e = string.pack("<I4I4", 2, 2) .. string.pack("<i4i4", execenv, state) .. u16(station, 33)
  e = pad4(e) .. string.pack("<i4", id) .. u16("TS01", 33) .. u16(user, 33) .. u16(domain, 33) .. u16("", 33)
  return e
end

describe("RpcGetAllSessions (EXECENVDATA level 2) #unit", function()
  local stub = string.pack("<I4I4I4", 2, 0x20000, 2)
    .. level2(0, 0, "rdp-tcp#42", 2, "foo", "CORP")
    .. level2(1, 4, "", 5, "alice", "CORP")
  stub = pad4(stub) .. string.pack("<I4I4", 2, 0)

  it("gives id (AbsSessionId), state, station, user and domain of each session", function()
    local s, hr = parse("all_sessions", stub)
    assert.equals(0, hr)
    assert.equals(2, #s)
    assert.same({ 2, 0, "rdp-tcp#42", "foo", "CORP" }, { s[1].id, s[1].state, s[1].name, s[1].user, s[1].domain })
    assert.same({ 5, 4, "", "alice" }, { s[2].id, s[2].state, s[2].name, s[2].user })
  end)

  it("refuses absurd counts, truncation and a count that disagrees with pcEntries", function()
    local absurd = string.pack("<I4I4I4", 2, 0x20000, 0x7fffffff) .. stub:sub(13)
    assert.is_nil((parse("all_sessions", absurd)))
    for cut = 1, #stub - 1, 37 do
      local r, err = parse("all_sessions", stub:sub(1, cut))
      assert.is_nil(r)
      assert.equals("malformed_response", err.code)
    end
    local wrong = stub:sub(1, -9) .. string.pack("<I4I4", 3, 0)
    assert.is_nil((parse("all_sessions", wrong)))
  end)

  it("returns the HRESULT of a failed call with a NULL array", function()
    local s, hr = parse("all_sessions", string.pack("<I4I4I4I4", 2, 0, 0, 0x80070005))
    assert.same({}, s)
    assert.equals(0x80070005, hr)
  end)
end)

describe("RpcGetEnumResult (SESSIONENUM level 1) #unit", function()
  it("reads ids, states and names", function()
    local function el(id, state, name)
      return pad4(string.pack("<I4I4i4i4", 1, 1, id, state) .. u16(name, 33))
    end
    local stub = string.pack("<I4I4", 0x20000, 3) .. el(0, 4, "services") .. el(1, 1, "console")
      .. el(65536, 6, "rdp-tcp") .. string.pack("<I4I4", 3, 0)
    local s, hr = parse("enum_result", stub)
    assert.equals(0, hr)
    assert.same({ 0, 1, 65536 }, { s[1].id, s[2].id, s[3].id })
    assert.same({ "services", "console", "rdp-tcp" }, { s[1].name, s[2].name, s[3].name })
    assert.equals(6, s[3].state)
  end)
end)

describe("RpcGetSessionInformationEx level 1 #unit", function()
  it("reads state, flags, names and the four FILETIMEs", function()
    local stub = string.pack("<I4I4", 1, 1) .. string.pack("<i4i4", 4, 0) .. u16("", 33)
      .. u16("CORP", 18) .. u16("alice", 21) -- ends at 160: the times are 8-aligned
      .. string.pack("<I8I8I8I8", 11, 22, 33, 44) .. string.pack("<I4I4", 0, 0) .. string.pack("<I4", 0)
    local s, hr = parse("info_ex", stub)
    assert.equals(0, hr)
    assert.same({ 4, 0, "alice", "CORP", 11, 22, 33, 44 },
      { s.state, s.flags, s.user, s.domain, s.connect_time, s.disconnect_time, s.logon_time, s.last_input_time })
  end)

  it("reports a failure HRESULT without parsing zeroed out-parameters", function()
    local _, hr = parse("info_ex", string.rep("\0", 200) .. string.pack("<I4", 0x80071B6E))
    assert.equals(0x80071B6E, hr)
  end)
end)

describe("RpcGetSessionInformation (opnum 12) #unit", function()
  it("reads the struct and its deferred strings", function()
    local stub = string.pack("<I4I4I4i4I4I4", 0x20000, 0x20004, 0x20008, 0, 1, 0)
      .. string.pack("<I8I8I8", 5, 0, 7) .. pad4(cv("bob")) .. pad4(cv("CORP")) .. pad4(cv("rdp-tcp#3"))
      .. string.pack("<I4", 0)
    local s, hr = parse("info12", stub)
    assert.equals(0, hr)
    assert.same({ "bob", "CORP", "rdp-tcp#3", 0, 5, 7 }, { s.user, s.domain, s.name, s.flags, s.connect_time, s.logon_time })
  end)

  it("refuses a string whose actual count exceeds its maximum", function()
    local bad = string.pack("<I4I4I4", 2, 0, 9) .. u16("x", 9)
    local stub = string.pack("<I4I4I4i4I4I4", 0x20000, 0, 0, 0, 0, 0) .. string.pack("<I8I8I8", 0, 0, 0)
      .. bad .. string.pack("<I4", 0)
    assert.is_nil((parse("info12", stub)))
  end)
end)

-- WINSTATIONINFORMATION (2.2.2.20) after a VARDATA_WIRE, offsets derived in src/tsts.c
local function winstation_info(t)
  local w = string.pack("<I4", t.state) .. u16(t.name, 33) .. "\0\0" .. string.pack("<I4", t.id) .. "\0\0\0\0"
    .. string.pack("<I8I8I8I8", t.connect, t.disconnect, t.input, t.logon)
    .. string.rep("\0", 1012) .. u16(t.domain, 18) .. u16(t.user, 21) .. "\0\0\0\0\0\0"
    .. string.pack("<I8", t.now)
  assert(#w == 1216)
  return string.pack("<I2I2", 1216, 4) .. w
end

describe("RpcWinStationQueryInformation, class WinStationInformation #unit", function()
  it("reads state, name, user, times and the server's current time", function()
    local buf = winstation_info{ state = 4, name = "", id = 7, connect = 1, disconnect = 2, input = 3,
                                 logon = 4, domain = "CORP", user = "carol", now = 99 }
    local stub = string.pack("<I4I4I4", 0, 0x20000, #buf) .. buf .. string.pack("<I4B", #buf, 1)
    local s, status, ok = parse("query_info8", stub)
    assert.is_true(ok)
    assert.equals(0, status)
    assert.same({ 7, 4, "carol", "CORP", 1, 2, 3, 4, 99 }, { s.id, s.state, s.user, s.domain, s.connect_time,
      s.disconnect_time, s.last_input_time, s.logon_time, s.current_time })
  end)

  it("returns FALSE and pResult for a failed query", function()
    local stub = string.pack("<I4I4I4", 0xC00A0015, 0, 0) .. string.pack("<B", 0)
    local _, status, ok = parse("query_info8", stub)
    assert.is_false(ok)
    assert.equals(0xC00A0015, status)
  end)

  it("refuses a buffer shorter than the structure", function()
    local stub = string.pack("<I4I4I4", 0, 0x20000, 8) .. string.pack("<I2I2", 1216, 4) .. "abcd"
      .. string.pack("<I4B", 8, 1)
    assert.is_nil((parse("query_info8", stub)))
  end)
end)

-- MS-TSTS 3.7.4.1.6, class WinStationCreateData (0): the buffer is a
-- WINSTATIONCREATE (6.5 winsta.h: { ULONG fEnableWinStation : 1; ULONG
-- MaxInstanceCount; }, 8 bytes: the bit field in the ULONG @0, bit 0, the
-- count @4).
describe("RpcWinStationQueryInformation, WinStationCreateData (WINSTATIONCREATE) #unit", function()
  local function stub(flags, max, returned, ok)
    return string.pack("<I4I4I4", 0, 0x20000, 8) .. string.pack("<I4I4", flags, max)
      .. string.pack("<I4B", returned or 8, ok == false and 0 or 1)
  end

  it("reads fEnableWinStation (bit 0 of the first ULONG) and MaxInstanceCount", function()
    local c, status, ok = parse("query_create", stub(1, 10))
    assert.is_true(ok)
    assert.equals(0, status)
    assert.same({ enabled = true, max_instance_count = 10 }, c)
    -- the other 31 bits of the bit field's ULONG are not the flag
    assert.same({ enabled = false, max_instance_count = 0xFFFFFFFF },
      (parse("query_create", stub(0xFFFFFFFE, 0xFFFFFFFF))))
  end)

  it("the exact bytes of a vector", function()
    local bytes = "\0\0\0\0" .. "\0\0\2\0" .. "\8\0\0\0" .. "\1\0\0\0" .. "\7\0\0\0" .. "\8\0\0\0" .. "\1"
    assert.same({ enabled = true, max_instance_count = 7 }, (parse("query_create", bytes)))
  end)

  it("returns FALSE and pResult for a failed query, reading no structure", function()
    local c, status, ok = parse("query_create", string.pack("<I4I4I4B", 0xC0000022, 0, 0, 0))
    assert.is_false(ok)
    assert.equals(0xC0000022, status)
    assert.same({}, c)
  end)

  it("refuses a short buffer, a ReturnLength short of the structure, a NULL buffer and truncation", function()
    local short = string.pack("<I4I4I4", 0, 0x20000, 4) .. string.pack("<I4", 1) .. string.pack("<I4B", 4, 1)
    assert.is_nil((parse("query_create", short)))
    -- TRUE with ReturnLength 0: our zero-filled buffer came back unsaid; not "0 instances"
    assert.is_nil((parse("query_create", stub(0, 0, 0))))
    assert.is_nil((parse("query_create", string.pack("<I4I4I4B", 0, 0, 8, 1))))
    local full = stub(1, 10)
    for cut = 0, #full - 1 do
      assert.is_nil((parse("query_create", full:sub(1, cut))), "cut at " .. cut)
    end
    -- a conformance larger than the bytes present
    assert.is_nil((parse("query_create", string.pack("<I4I4I4", 0, 0x20000, 0x7fffffff) .. full:sub(13))))
  end)
end)

describe("RpcWinStationEnumerate (LOGONID array) #unit", function()
  it("reads ids, names and states, and the next index", function()
    local function logonid(id, name, state) return string.pack("<I4", id) .. u16(name, 33) .. "\0\0" .. string.pack("<I4", state) end
    local buf = logonid(0, "services", 4) .. logonid(2, "rdp-tcp#42", 0)
    local stub = string.pack("<I4I4I4I4", 0, 2, 0x20000, #buf) .. buf .. string.pack("<I4I4B", #buf, 2, 1)
    local s, status, ok = parse("legacy_enum", stub)
    assert.is_true(ok)
    assert.equals(0, status)
    assert.equals(2, s.index)
    assert.same({ 0, 2 }, { s[1].id, s[2].id })
    assert.same({ "services", "rdp-tcp#42" }, { s[1].name, s[2].name })
  end)

  it("refuses an entry count larger than the buffer", function()
    local stub = string.pack("<I4I4I4I4", 0, 5, 0x20000, 76) .. string.rep("\0", 76) .. string.pack("<I4I4B", 76, 0, 1)
    assert.is_nil((parse("legacy_enum", stub)))
  end)
end)

describe("RpcWinStationGetAllProcesses (TS_ALL_PROCESSES_INFO) #unit", function()
  local sid = string.pack("<BB", 1, 5) .. "\0\0\0\0\0\5" .. string.pack("<I4I4I4I4I4", 21, 1, 2, 3, 1001)
  local function info(pid, session, name_ref, name_len)
    local t = string.pack("<I4I4", 0, 7) .. string.rep("\0", 48) .. string.pack("<I2I2I4", name_len, name_len, name_ref)
      .. string.pack("<i4I4I4I4I4", 8, pid, 4, 50, session) .. string.rep("\0", 52)
    assert(#t == 136)
    return t
  end
  local stub = string.pack("<I4I4I4I4", 0, 2, 0x20000, 2)
    .. string.pack("<I4I4I4", 0x20004, 0, 0)            -- Idle: no SID
    .. string.pack("<I4I4I4", 0x20008, #sid, 0x2000c)    -- explorer.exe with a SID
  -- 40 bytes so far: the first TS_SYS_PROCESS_INFORMATION is 8-aligned already
  stub = stub .. info(0, 0, 0, 0)
  stub = stub .. info(4242, 2, 0x20010, 24) .. string.pack("<I4I4I4", 12, 0, 12) .. u16("explorer.exe", 12)
  stub = stub .. string.pack("<I4", #sid) .. sid .. "\1"

  it("reads processes, including the NULL image name and NULL SID of Idle", function()
    local p, status, ok = parse("processes", stub)
    assert.is_true(ok)
    assert.equals(0, status)
    assert.equals(2, #p)
    assert.is_nil(p[1].image)
    assert.is_nil(p[1].sid)
    assert.same({ 4242, 2, "explorer.exe", "S-1-5-21-1-2-3-1001", 50 },
      { p[2].pid, p[2].session, p[2].image, p[2].sid, p[2].handles })
  end)

  it("refuses absurd counts and truncation anywhere", function()
    local absurd = string.pack("<I4I4I4I4", 0, 0x7fffffff, 0x20000, 0x7fffffff) .. stub:sub(17)
    assert.is_nil((parse("processes", absurd)))
    for cut = 1, #stub - 1, 11 do
      assert.is_nil((parse("processes", stub:sub(1, cut))))
    end
  end)
end)

describe("RCMPublic #unit", function()
  it("reads the IPv4 client address of RpcGetRemoteAddress", function()
    local stub = string.pack("<I2I2", 2, 2) .. string.pack(">I2", 51234) .. "\0\0" .. "\10\1\2\3" .. string.rep("\0", 8)
      .. string.pack("<I4", 0)
    local c, hr = parse("remote_address", stub)
    assert.equals(0, hr)
    assert.equals("10.1.2.3", c.address)
    assert.equals(51234, c.port)
  end)

  it("reads the client name from RpcGetClientData's WINSTATIONCLIENT", function()
    local blob = string.pack("<I4", 0) .. u16("PC-ALICE", 21) .. string.rep("\0", 200)
    local stub = pad4(string.pack("<I4I4", 0x20000, #blob) .. blob) .. string.pack("<I4I4", #blob, 0)
    local c, hr = parse("client_data", stub)
    assert.equals(0, hr)
    assert.equals("PC-ALICE", c.name)
  end)
end)

describe("SID strings #unit", function()
  it("formats well-known and domain SIDs, refuses malformed ones", function()
    assert.equals("S-1-5-18", kit.tsts.sid(string.pack("<BB", 1, 1) .. "\0\0\0\0\0\5" .. string.pack("<I4", 18)))
    assert.is_nil(kit.tsts.sid("\1\9\0\0\0\0\0\5"))
    assert.is_nil(kit.tsts.sid("\2\0\0\0\0\0\0\5"))
  end)
end)

-- MS-TSTS 3.7.4.1.6, class WinStationWd (3): VARDATA_WIRE {Size = 300,
-- Offset = 4} then WDCONFIG (2.2.2.27) in its C layout: WdName[33] @0,
-- WdDLL[33] @66, WsxDLL[33] @132, (2 pad) WdFlag @200, WdInputBufferLength
-- @204, CfgDLL[33] @208, WdPrefix[13] @274; 300 bytes.
describe("RpcWinStationQueryInformation, WinStationWd (WDCONFIG) #unit", function()
  local function wdconfig(name, dll, flag)
    return u16(name, 33) .. u16(dll, 33) .. u16("rdpwsx", 33) .. "\0\0" .. string.pack("<I4I4", flag, 2048)
      .. u16("RDPCFGEX.DLL", 33) .. u16("RDP", 13)
  end
  local function stub(buf, returned, ok)
    return string.pack("<I4I4I4", 0, 0x20000, #buf) .. buf .. string.pack("<I4B", returned or #buf, ok == false and 0 or 1)
  end
  local full = string.pack("<I2I2", 300, 4) .. wdconfig("Microsoft RDP 8.0", "rdpwd", 0x36)

  it("reads WdName, WdDLL (qwinsta's TYPE) and WdFlag", function()
    assert.equals(304, #full)
    local d, status, ok = parse("query_wd", stub(full))
    assert.is_true(ok)
    assert.equals(0, status)
    assert.same({ "Microsoft RDP 8.0", "rdpwd", 0x36 }, { d.wd_name, d.wd_dll, d.wd_flag })
  end)

  it("follows the VARDATA_WIRE offset", function()
    local moved = string.pack("<I2I2", 300, 8) .. "\0\0\0\0" .. wdconfig("Console", "wdcon", 0)
    assert.equals("wdcon", (parse("query_wd", stub(moved))).wd_dll)
  end)

  it("gives pResult and the size needed for a failed query", function()
    local d, status, ok = parse("query_wd", string.pack("<I4I4I4B", 0x8007007A, 0, 304, 0))
    assert.is_false(ok)
    assert.equals(0x8007007A, status)
    assert.equals(304, d.returned)
  end)

  it("refuses a short structure, an offset past the buffer, a ReturnLength short of it, truncation", function()
    assert.is_nil((parse("query_wd", stub(string.pack("<I2I2", 200, 4) .. full:sub(5)))))
    assert.is_nil((parse("query_wd", stub(string.pack("<I2I2", 300, 8) .. full:sub(5)))))
    assert.is_nil((parse("query_wd", stub(string.pack("<I2I2", 300, 0) .. full:sub(5)))))
    assert.is_nil((parse("query_wd", stub(full, 4))))
    local s = stub(full)
    for cut = 0, #s - 1, 7 do assert.is_nil((parse("query_wd", s:sub(1, cut))), "cut at " .. cut) end
  end)
end)

-- Class WinStationPd (4): VARDATA_WIRE {sizeof(PDCONFIG2) = 168, 12},
-- PDPARAMSWIRE {SdClass, {Size, Offset}} @4, PDCONFIG2 @12 (PdName[33] @0,
-- SdClass @68, PdDLL[33] @72, 8 ULONGs), the PDPARAMS union at its Offset:
-- ASYNCCONFIG DeviceName[129] @0, NETWORKCONFIG NetworkName[129] @4.
describe("RpcWinStationQueryInformation, WinStationPd (PDCONFIG2 + PDPARAMS) #unit", function()
  local function buffer(sd, name, dll, device)
    local pdconfig2 = u16(name, 33) .. "\0\0" .. string.pack("<I4", sd) .. u16(dll, 33) .. "\0\0"
      .. string.pack("<I4I4I4I4I4I4I4", 0x4A, 530, 6, 100, 50, 3389, 0)
    assert(#pdconfig2 == 168)
    local union
    if sd == 3 then union = u16(device, 129) .. string.rep("\0", 564 - 258)
    else union = "\0\0\0\0" .. u16(device, 129) .. string.rep("\0", 564 - 262) end
    return string.pack("<I2I2I4I2I2", 168, 12, sd, 564, 180) .. pdconfig2 .. union .. "\0\0\0\0"
  end
  local function stub(buf, returned)
    return string.pack("<I4I4I4", 0, 0x20000, #buf) .. buf .. string.pack("<I4B", returned or #buf, 1)
  end

  it("an async transport names its device (qwinsta's DEVICE)", function()
    local b = buffer(3, "async", "tdasync", "COM1")
    assert.equals(748, #b)
    local d, status, ok = parse("query_pd", stub(b))
    assert.is_true(ok)
    assert.equals(0, status)
    assert.same({ 3, "async", "tdasync", "COM1" }, { d.sd_class, d.pd_name, d.pd_dll, d.device })
  end)

  it("a network transport: PdDLL tdtcp and NETWORKCONFIG's (unused, empty) NetworkName", function()
    local d = parse("query_pd", stub(buffer(2, "tcp", "tdtcp", "")))
    assert.same({ 2, "tcp", "tdtcp", "" }, { d.sd_class, d.pd_name, d.pd_dll, d.device })
  end)

  it("SdNone: no device is read", function()
    local b = buffer(0, "", "", "")
    assert.equals("", (parse("query_pd", stub(b:sub(1, 12 + 168)))).device)
  end)

  it("refuses a PDPARAMS past the buffer, a short PDCONFIG2, and truncation", function()
    local b = buffer(3, "async", "tdasync", "COM1")
    assert.is_nil((parse("query_pd", stub(b:sub(1, 8) .. string.pack("<I2I2", 564, 600) .. b:sub(13)))))
    assert.is_nil((parse("query_pd", stub(b:sub(1, 8) .. string.pack("<I2I2", 100, 180) .. b:sub(13)))))
    assert.is_nil((parse("query_pd", stub(string.pack("<I2I2", 100, 12) .. b:sub(5)))))
    assert.is_nil((parse("query_pd", stub(b, 100))))
    local s = stub(b)
    for cut = 0, #s - 1, 11 do assert.is_nil((parse("query_pd", s:sub(1, cut))), "cut at " .. cut) end
  end)
end)

-- TS_COUNTER (2.2.2.17) in NDR: {dwCounterID @0, boolean bResult @4,
-- dwValue @8, LARGE_INTEGER startTime @16}, 24 bytes, 8-aligned after the
-- conformance. RpcGetSessionCounters: MaxCount, (pad) array, HRESULT;
-- RpcWinStationGetTermSrvCountersValue: pResult, MaxCount, array, BOOLEAN.
describe("TS_COUNTER arrays (RpcGetSessionCounters, RpcWinStationGetTermSrvCountersValue) #unit", function()
  local function counter(id, known, value)
    return string.pack("<I4B", id, known and 1 or 0) .. "\0\0\0" .. string.pack("<I4", value) .. "\0\0\0\0"
      .. string.rep("\0", 8)
  end
  local array = counter(1, true, 17) .. counter(0, false, 0) .. counter(3, true, 2)

  it("LSM: the value of each counter asked for; an unknown one is false", function()
    local stub = string.pack("<I4", 3) .. "\0\0\0\0" .. array .. string.pack("<I4", 0)
    local c, hr, ok = parse("counters", stub, { 1, 99, 3 })
    assert.equals(0, hr)
    assert.is_true(ok)
    assert.same({ [1] = 17, [99] = false, [3] = 2 }, c)
  end)

  it("legacy: pResult, the array and the BOOLEAN", function()
    local stub = string.pack("<I4I4", 0, 3) .. array .. "\1"
    local c, status, ok = parse("legacy_counters", stub, { 1, 99, 3 })
    assert.equals(0, status)
    assert.is_true(ok)
    assert.same({ [1] = 17, [99] = false, [3] = 2 }, c)
    local _, st, okf = parse("legacy_counters", string.pack("<I4I4", 0xC0000022, 3) .. array .. "\0", { 1, 99, 3 })
    assert.is_false(okf)
    assert.equals(0xC0000022, st)
  end)

  it("the exact bytes of a vector", function()
    local bytes = "\1\0\0\0" .. "\0\0\0\0" .. "\1\0\0\0" .. "\1\0\0\0" .. "\9\0\0\0" .. "\0\0\0\0"
      .. "\0\0\0\0\0\0\0\0" .. "\0\0\0\0"
    assert.same({ [1] = 9 }, (parse("counters", bytes, { 1 })))
  end)

  it("gives the HRESULT of a failed LSM call", function()
    local c, hr, ok = parse("counters", string.pack("<I4", 0x80070005), { 1 })
    assert.equals(0x80070005, hr)
    assert.is_false(ok) -- and no counter from an answer that failed
    assert.same({}, c)
  end)

  it("refuses a count other than asked, a known counter in the wrong place, truncation", function()
    local stub = string.pack("<I4", 3) .. "\0\0\0\0" .. array .. string.pack("<I4", 0)
    assert.is_nil((parse("counters", string.pack("<I4", 2) .. stub:sub(5), { 1, 99, 3 })))
    assert.is_nil((parse("counters", stub, { 1, 99, 4 })))
    assert.is_nil((parse("counters", string.pack("<I4", 0x7fffffff) .. stub:sub(5), { 1, 99, 3 })))
    for cut = 1, #stub - 1, 5 do
      local r = parse("counters", stub:sub(1, cut), { 1, 99, 3 })
      assert.is_nil(r, "cut at " .. cut)
    end
  end)
end)
