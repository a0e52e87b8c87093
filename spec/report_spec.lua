local report = require "termsrv.report"
local record = require "termsrv.record"
local errors = require "termsrv.error"
local json = require "termsrv.json"
local fx = require "fixtures.sessions"

local S = fx.session
local NOW = fx.NOW -- 2026-11-26T09:14:00Z

local function lines(t) return table.concat(t, "\n") .. "\n" end

describe("termsrv.report #unit", function()
  describe("qwinsta()", function()
    it("lays out the table like Windows (golden)", function()
      assert.equal(lines{
        " SESSIONNAME       USERNAME                 ID  STATE   TYPE        DEVICE",
        " services                                    0  Disc",
        " console           Administrator             1  Active",
        " rdp-tcp#42        alice                     2  Active",
        "                   bob                       3  Disc",
        "                   carol                     4  Disc",
        "                   svc_backup                5  Disc",
        "                   ops                       6  Disc",
        " rdp-tcp                                 65536  Listen",
      }, report.qwinsta(fx.typical()))
    end)

    it("abbreviates every state as Windows prints it", function()
      local recs = {}
      for code = 0, 9 do recs[#recs + 1] = S{ id = code + 10, state_code = code } end
      local out = report.qwinsta(recs)
      local states = {}
      for st in out:gmatch("%d  (%a+)\n") do states[#states + 1] = st end
      assert.same({ "Active", "Conn", "ConnQ", "Shadow", "Disc", "Idle", "Listen", "Reset", "Down",
        "Init" }, states)
    end)

    it("sorts by id, widens for long names, DOMAIN\\user on request, HOST for several hosts", function()
      local recs = {
        S{ host = "ts02", id = 3, name = "rdp-tcp#1234567890123", user = "a_very_long_user_name_x",
          domain = "CORP",
           state = "active" },
        S{ host = "ts01", id = 2, name = "", user = "bob", domain = "CORP", state = "disconnected" },
        S{ host = "ts02", id = 1, name = "console", user = "adm", domain = "TS02", state = "active" },
      }
      assert.equal(lines{
        " HOST  SESSIONNAME           USERNAME                        ID  STATE   TYPE        DEVICE",
        " ts02  console               TS02\\adm                         1  Active",
        " ts02  rdp-tcp#1234567890123 CORP\\a_very_long_user_name_x     3  Active",
        " ts01                        CORP\\bob                         2  Disc",
      }, report.qwinsta(recs, { domain = true }))
      assert.equal(lines{ " SESSIONNAME       USERNAME                 ID  STATE   TYPE        DEVICE" },
        report.qwinsta({}))
    end)
  end)

  describe("quser()", function()
    it("lays out the table like Windows, users only (golden, UTC)", function()
      assert.equal(lines{
        " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME",
        " Administrator         console             1  Active         .   11/25/2026 9:14 AM",
        " alice                 rdp-tcp#42          2  Active      3:00   11/26/2026 4:14 AM",
        " bob                                       3  Disc       10:00   11/25/2026 1:14 PM",
        " carol                                     4  Disc        8:00   11/26/2026 12:14 AM",
        " svc_backup                                5  Disc     1+06:00   11/24/2026 5:14 PM",
        " ops                                       6  Disc       12:00   11/25/2026 8:14 PM",
      }, report.quser(fx.typical(), { utc = true }))
    end)

    it("shows none for unknown idle and a blank for unknown logon time", function()
      assert.equal(lines{
        " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME",
        " x                                         7  Conn        none",
      }, report.quser({ S{ id = 7, user = "x", state = "connected", server_time = false } }))
    end)

    it("ISO logon times on request", function()
      local out = report.quser({ fx.typical()[3] }, { time = "iso" })
      assert.matches(" alice                 rdp%-tcp#42          2  Active      3:00   "
        .. "2026%-11%-26T04:14:00Z\n$", out)
    end)

    it("local time by default", function()
      local t = NOW - 5 * 3600
      local d = os.date("*t", t)
      local h = d.hour % 12 == 0 and 12 or d.hour % 12
      local want = string.format("%d/%d/%d %d:%02d %s", d.month, d.day, d.year, h, d.min, d.hour < 12
        and "AM" or "PM")
      assert.equal(want, report.logon_time(t))
      assert.truthy(report.quser({ fx.typical()[3] }):find(want, 1, true))
    end)
  end)

  it("quser_idle() matches quser exactly", function()
    local cases = { { nil, "none" }, { 0, "." }, { 59, "." }, { 60, "1" }, { 61, "1" }, { 3599, "59" },
                    { 3600, "1:00" }, { 3660, "1:01" }, { 86399, "23:59" }, { 86400, "1+00:00" },
                    { 90000, "1+01:00" }, { 10 * 86400 + 5 * 3600 + 7 * 60, "10+05:07" } }
    for _, c in ipairs(cases) do assert.equal(c[2], report.quser_idle(c[1]), tostring(c[1])) end
  end)

  it("logon_time() uses a 12-hour clock like Windows", function()
    local midnight = 1795651200 -- 2026-11-26T00:00:00Z
    assert.equal("11/26/2026 12:05 AM", report.logon_time(midnight + 300, { utc = true }))
    assert.equal("11/26/2026 11:59 AM", report.logon_time(midnight + 43140, { utc = true }))
    assert.equal("11/26/2026 12:30 PM", report.logon_time(midnight + 45000, { utc = true }))
    assert.equal("11/26/2026 1:00 PM", report.logon_time(midnight + 46800, { utc = true }))
    assert.equal("2026-11-26T00:05:00Z", report.logon_time(midnight + 300, { time = "iso" }))
    assert.equal("", report.logon_time(nil))
  end)

  describe("jsonl()", function()
    it("writes records with a fixed key order, ISO times, every key present (golden)", function()
      assert.equal('{"host":"ts01.corp","id":2,"name":"rdp-tcp#42","user":"alice","domain":"CORP",'
        .. '"state":"active",'
        .. '"state_code":0,"kind":"user","logon_time":"2026-11-26T04:14:00Z","connect_time":null,'
        .. '"disconnect_time":null,"last_input_time":null,"server_time":"2026-11-26T09:14:00Z","idle":10800,'
        .. '"disconnected":null,"locked":false,"client":"PC042","address":"10.1.2.3","time_zone":null,"driver":null,"device":null}\n',
        report.jsonl({ fx.typical()[3] }))
    end)

    it("one line per item; epoch times on request; round-trips through a JSON parser", function()
      local out = report.jsonl(fx.typical(), { time = "epoch" })
      local n = 0
      for line in out:gmatch("[^\n]+") do
        n = n + 1
        local v = assert(json.decode(line))
        assert.equal(fx.typical()[n].id, v.id)
        if v.logon_time ~= json.null then assert.equal("number", type(v.logon_time)) end
      end
      assert.equal(8, n)
      assert.equal("", report.jsonl({}))
    end)

    it("writes action results (golden)", function()
      local err = errors.new{ code = "access_denied", host = "ts01", op = "logoff", message = "access denied",
                              status = 5 }
      local res = {
        { host = "ts01", id = 3, user = "bob", action = "logoff", before = "disconnected", after = "gone",
          duration = 0.1234, ok = true },
        { host = "ts01", id = 4, user = "carol", action = "reset", before = "disconnected",
          after = "disconnected",
          duration = 2, ok = false, err = err },
      }
      assert.equal(lines{
        '{"host":"ts01","id":3,"user":"bob","domain":null,"logon_time":null,"rule":null,"action":"logoff",'
          .. '"status":"ok","ok":true,"before":"disconnected","after":"gone","error":null,'
          .. '"error_message":null,'
          .. '"duration":0.123,"answer":null,"steps":null,"note":null}',
        '{"host":"ts01","id":4,"user":"carol","domain":null,"logon_time":null,"rule":null,"action":"reset",'
          .. '"status":"failed","ok":false,"before":"disconnected","after":"disconnected",'
          .. '"error":"access_denied",'
          .. '"error_message":"ts01: logoff: access denied [0x00000005]",'
          .. '"duration":2,"answer":null,"steps":null,'
          .. '"note":null}',
      }, report.jsonl(res))
      assert.equal(report.jsonl({ res[1] }), report.jsonl(res[1]))
    end)

    it("json() gives one array with the same objects", function()
      local v = json.decode(report.json(fx.typical()))
      assert.equal(8, #v)
      assert.equal("rdp-tcp#42", v[3].name)
      assert.equal("[]\n", report.json({}))
    end)
  end)

  describe("csv()", function()
    it("writes a header and RFC 4180 rows in the JSON column order (golden)", function()
      local recs = {
        fx.typical()[3],
        S{ id = 9, name = "", user = 'o"brien, jr', domain = "CORP", state = "disconnected",
          disconnected = 60,
           client = "line1\nline2" },
      }
      assert.equal(table.concat({
        "host,id,name,user,domain,state,state_code,kind,logon_time,connect_time,disconnect_time,"
          .. "last_input_time,"
          .. "server_time,idle,disconnected,locked,client,address,time_zone,driver,device",
        "ts01.corp,2,rdp-tcp#42,alice,CORP,active,0,user,2026-11-26T04:14:00Z,,,,2026-11-26T09:14:00Z,"
          .. "10800,,false,"
          .. "PC042,10.1.2.3,,,",
        -- a newline from the server is a control character like any other: shown escaped
        'ts01.corp,9,,"o""brien, jr",CORP,disconnected,4,user,,,,,2026-11-26T09:14:00Z,,60,,line1\\x0aline2,,,,',
        "",
      }, "\r\n"), report.csv(recs))
    end)

    it("epoch times and a custom line end on request; header only for nothing", function()
      assert.equal("host,id\nts01.corp,2\n", report.csv({ fx.typical()[3] }, { fields = { "host", "id" },
        eol = "\n" }))
      assert.matches(",1795666440,", report.csv({ fx.typical()[3] }, { time = "epoch" }))
      assert.equal(0, select(2, report.csv({}):gsub("\r\n", "")) - 1)
    end)

    it("writes results with the steps summarized", function()
      local r = { host = "h", id = 1, action = "logoff>reset", status = "ok", ok = true,
                  steps = { { action = "logoff", ok = false, err = errors.new{ code = "timeout" } },
                            { action = "reset", ok = true } } }
      local out = report.csv({ r }, { eol = "\n" })
      assert.equal("h,1,,,,,logoff>reset,ok,true,,,,,,,logoff:failed(timeout) reset:ok,",
        out:match("\n(.-)\n$"))
    end)
  end)

  describe("summary()", function()
    local function res(host, status) return { host = host, id = 1, ok = status == "ok", status = status } end

    it("counts results per host and overall, with an exit code", function()
      local s = report.summary{ res("a", "ok"), res("a", "failed"), res("b", "ok"), res("b", "skipped") }
      assert.equal(2, s.total.ok)
      assert.equal(1, s.total.failed)
      assert.equal(1, s.total.skipped)
      assert.equal(1, s.exit_code)
      assert.equal("a: 1 ok, 1 failed, 0 skipped\nb: 1 ok, 0 failed, 1 skipped\n"
        .. "total: 2 hosts, 2 ok, 1 failed, 1 skipped, 0 host errors", tostring(s))
      assert.equal(0, report.exit_code{ res("a", "ok"), res("a", "skipped") })
      assert.equal(2, report.exit_code{ res("a", "failed") })
      assert.equal(0, report.exit_code{})
      local with_err = { res("a", "ok"), errors = { { host = "c", err = errors.new{ code = "host_unreachable",
        message = "down" } } } }
      local s2 = report.summary(with_err)
      assert.equal(1, s2.exit_code)
      assert.equal(1, s2.total.host_errors)
      assert.matches("c: ERROR down", tostring(s2))
      assert.equal(2, report.exit_code{ errors = { { host = "c", err = errors.new{ code = "x" } } } })
      assert.equal(1, s:totable().total.failed)
    end)

    it("counts sessions per host and state", function()
      local recs = fx.typical()
      recs[#recs + 1] = S{ host = "ts02", id = 2, user = "z", state = "active" }
      local s = report.summary(recs)
      assert.equal("sessions", s.kind)
      assert.equal("ts01.corp: 8 sessions, 6 with a user (2 active, 5 disconnected, 1 listen)\n"
        .. "ts02: 1 session, 1 with a user (1 active)\ntotal: 2 hosts, 9 sessions, 7 with a user",
          tostring(s))
    end)

    it("summarizes a plan", function()
      local plan = require "termsrv.plan"
      local p = plan.build({ { host = "ts01", self = fx.SELF, sessions = fx.typical("ts01") },
                             { host = "ts02", err = errors.new{ code = "timeout", message = "timed out" } } },
        { rules = { { name = "s", select = { state = "disconnected" }, action = "logoff" } } }, { now = NOW })
      local s = report.summary(p)
      assert.equal("plan", s.kind)
      assert.equal("ts01: 3 actions (3 logoff), 1 not touched\nts02: ERROR timed out\n"
        .. "total: 2 hosts, 3 actions, 1 not touched, 1 host error", tostring(s))
      assert.equal(1, s.exit_code)
      assert.equal(3, #select(1, report.rows(p)))
      assert.equal(3, #json.decode("[" .. report.jsonl(p):gsub("\n$", ""):gsub("\n", ",") .. "]"))
    end)
  end)

  it("results() prints one line per session and the summary", function()
    local r = {
      { host = "ts01", id = 3, user = "bob", domain = "CORP", rule = "stale", action = "logoff",
        status = "ok",
        ok = true, after = "gone", duration = 0.25 },
      { host = "ts01", id = 4, user = "carol", domain = "CORP", rule = "stale", action = "logoff",
        status = "failed",
        ok = false, duration = 12, err = errors.new{ code = "timeout", host = "ts01", op = "logoff",
        message = "timed out" } },
    }
    assert.equal(lines{
      "HOST  ID  USER        RULE   ACTION  STATUS  AFTER   TIME  DETAIL",
      "ts01   3  CORP\\bob    stale  logoff  ok      gone    0.2s",
      "ts01   4  CORP\\carol  stale  logoff  failed         12.0s  ts01: logoff: timed out",
      "ts01: 1 ok, 1 failed, 0 skipped",
      "total: 1 host, 1 ok, 1 failed, 0 skipped, 0 host errors",
    }, report.results(r))
  end)

  it("text_table() aligns columns and trims trailing spaces", function()
    assert.equal("A    BB\nxyz   1\n", report.text_table({ "A", "BB" }, { { "xyz", "1" } },
      { right = { [2] = true } }))
    assert.equal("A  B\nx\n", report.text_table({ "A", "B" }, { { "x" } }))
  end)

  it("kind() tells records, steps, results apart", function()
    assert.equal("session", report.kind(fx.typical()[1]))
    assert.equal("result", report.kind{ ok = true })
    assert.equal("step", report.kind{ why = "x", rule = "r" })
    assert.equal("other", report.kind{ a = 1 })
    assert.is_true(record.is_session(fx.typical()[1]))
  end)
end)
