-- termsrv.monitor: threshold ranges, counting, plugin output and the
-- Prometheus exposition, as pure functions with exact expected text.

local monitor = require "termsrv.monitor"
local record = require "termsrv.record"

local function S(t) t.host = t.host or "TS01"; t.name = t.name or ""; return record.session(t) end

-- the sessions of spec/fixtures/sim/cli.lua's TS01, as a listing returns them
local SESSIONS = {
  S{ id = 1, name = "console", state = "connected" },
  S{ id = 2, name = "rdp-tcp#42", user = "foo", state = "active", idle = 180 },
  S{ id = 3, user = "alice", state = "disconnected", idle = 1200, disconnected = 1200 },
  S{ id = 4, user = "bob", state = "disconnected", idle = 32400, disconnected = 32400 },
  S{ id = 5, user = "carol", state = "disconnected", idle = 259200, disconnected = 259200 },
  S{ id = 6, name = "rdp-tcp#57", user = "dave", state = "active", idle = 7200 },
  S{ id = 7, name = "rdp-tcp#61", user = "jdoe", state = "active", idle = 30 },
}

describe("termsrv.monitor #unit", function()
  describe("parse_range / alerts (monitoring-plugins guidelines)", function()
    local R = function(s) return assert(monitor.parse_range(s)) end
    local function alerting(s, values)
      local out = {}
      for _, v in ipairs(values) do out[#out + 1] = monitor.alerts(R(s), v) end
      return out
    end
    local V = { -1, 0, 9, 10, 11, 20, 21 }

    it("N: outside 0..N", function()
      assert.same({ true, false, false, false, true, true, true }, alerting("10", V))
    end)
    it("N: below N", function()
      assert.same({ true, true, true, false, false, false, false }, alerting("10:", V))
    end)
    it("~:N: above N", function()
      assert.same({ false, false, false, false, true, true, true }, alerting("~:10", V))
    end)
    it("N:M: outside N..M, the ends inside", function()
      assert.same({ true, true, true, false, false, false, true }, alerting("10:20", V))
    end)
    it("@N:M: inside N..M, the ends included", function()
      assert.same({ false, false, false, true, true, true, false }, alerting("@10:20", V))
    end)
    it(":N is 0:N, decimals and signs work", function()
      assert.same({ text = ":5", lo = 0, hi = 5, inside = false }, R(":5"))
      assert.same({ text = "-1.5:2.5", lo = -1.5, hi = 2.5, inside = false }, R("-1.5:2.5"))
      assert.same({ text = "@~:3", lo = -math.huge, hi = 3, inside = true }, R("@~:3"))
    end)
    it("refuses what is not a range", function()
      for _, bad in ipairs{ "", "@", "x", "1:x", "1e3", "0x10", "5:1", "1:2:3", "~", "10 ", " 10", "inf" } do
        local r, err = monitor.parse_range(bad)
        assert.is_nil(r, bad)
        assert.truthy(err:find("^'"), bad)
      end
      assert.equal("'5:1': the start of a range must not be above its end", select(2, monitor.parse_range("5:1")))
    end)
    it("describes when it alerts", function()
      assert.equal("> 10", monitor.describe(R("10")))
      assert.equal("< 10", monitor.describe(R("10:")))
      assert.equal("> 10", monitor.describe(R("~:10")))
      assert.equal("outside 10:20", monitor.describe(R("10:20")))
      assert.equal("inside 10:20", monitor.describe(R("@10:20")))
      assert.equal("inside ~:3", monitor.describe(R("@~:3")))
    end)
    it("threshold_state: critical before warning", function()
      assert.equal(monitor.OK, monitor.threshold_state(3, R("5"), R("8")))
      assert.equal(monitor.WARNING, monitor.threshold_state(6, R("5"), R("8")))
      assert.equal(monitor.CRITICAL, monitor.threshold_state(9, R("5"), R("8")))
      assert.equal(monitor.OK, monitor.threshold_state(9, nil, nil))
    end)
    it("worst: OK < UNKNOWN < WARNING < CRITICAL", function()
      assert.equal(monitor.UNKNOWN, monitor.worst(monitor.OK, monitor.UNKNOWN))
      assert.equal(monitor.WARNING, monitor.worst(monitor.UNKNOWN, monitor.WARNING))
      assert.equal(monitor.CRITICAL, monitor.worst(monitor.CRITICAL, monitor.UNKNOWN))
      assert.has_error(function() monitor.worst(0, 4) end)
    end)
  end)

  describe("tally", function()
    it("counts user sessions with a user: in use, by state, stale, the longest ages", function()
      local t = monitor.tally(SESSIONS, 8 * 3600)
      assert.same({ in_use = 6, active = 3, disconnected = 3, stale = 2, unknown_age = 0, idle_max = 7200,
                    disconnected_max = 259200, by_state = { active = 3, disconnected = 3 } }, t)
    end)
    it("never counts the console, services, listeners or sessions without a user", function()
      local t = monitor.tally({ S{ id = 0, name = "services", state = "disconnected" },
        S{ id = 1, name = "console", user = "admin", state = "active", idle = 99999 },
        S{ id = 65536, name = "rdp-tcp", state = "listen" }, S{ id = 9, state = "connected" } }, 60)
      assert.same({ in_use = 0, active = 0, disconnected = 0, stale = 0, unknown_age = 0, idle_max = 0,
                    disconnected_max = 0, by_state = {} }, t)
    end)
    it("a disconnected session without an age is counted apart, never as stale", function()
      local t = monitor.tally({ S{ id = 3, user = "x", state = "disconnected" } }, 0)
      assert.equal(0, t.stale)
      assert.equal(1, t.unknown_age)
      assert.equal(1, t.disconnected)
    end)
    it("slots left: nil when the limit is unknown, never below 0", function()
      local t = monitor.tally(SESSIONS, 60)
      assert.is_nil(monitor.slots_left(t, nil))
      assert.equal(4, monitor.slots_left(t, 10))
      assert.equal(0, monitor.slots_left(t, 5))
    end)
  end)

  describe("perfdata and plugin output", function()
    local R = function(s) return assert(monitor.parse_range(s)) end

    it("perf_item: 'label'=value[UOM];warn;crit;min;max, trailing empty fields dropped", function()
      assert.equal("'in_use'=6;10;20;0;30",
        monitor.perf_item{ label = "in_use", value = 6, warn = R("10"), crit = R("20"), min = 0, max = 30 })
      assert.equal("'stale'=2;;1:;0", monitor.perf_item{ label = "stale", value = 2, crit = R("1:"), min = 0 })
      assert.equal("'t'=0.25s", monitor.perf_item{ label = "t", value = 0.25, uom = "s" })
      assert.equal("'O''Brien::x_y'=1", monitor.perf_item{ label = "O'Brien::x=y", value = 1 })
    end)

    local TH = { in_use = { warn = R("5"), crit = R("8") }, stale = { crit = R("1") },
                 slots_left = { warn = R("5:"), crit = R("2:") } }

    it("judge: every metric, the thresholds crossed, perfdata with min and max", function()
      local j = monitor.judge(monitor.tally(SESSIONS, 28800), { thresholds = TH, stale = 28800, slots = 10 })
      assert.equal(monitor.CRITICAL, j.state)
      assert.equal("6 in use (WARNING: > 5), 3 disconnected, 2 stale (disconnected >= 8h; CRITICAL: > 1), "
        .. "4 of 10 slots left (WARNING: < 5)", j.text)
      assert.same({ "'in_use'=6;5;8;0;10", "'disconnected'=3;;;0", "'stale'=2;;1;0", "'slots_left'=4;5:;2:;0;10" },
        j.perf)
    end)

    it("judge: an unknown limit is said, has no perfdata, and is UNKNOWN only when thresholded", function()
      local t = monitor.tally(SESSIONS, 28800)
      local j = monitor.judge(t, { stale = 28800, prefix = "TS01::" })
      assert.equal(monitor.OK, j.state)
      assert.equal("6 in use, 3 disconnected, 2 stale (disconnected >= 8h), slots left unknown "
        .. "(the connection limit is not known: --slots N)", j.text)
      assert.same({ "'TS01::in_use'=6;;;0", "'TS01::disconnected'=3;;;0", "'TS01::stale'=2;;;0" }, j.perf)
      j = monitor.judge(t, { stale = 28800, thresholds = { slots_left = { warn = R("2:") } } })
      assert.equal(monitor.UNKNOWN, j.state)
      assert.matches("UNKNOWN: slots left unknown", j.text, 1, true)
    end)

    it("one host: one line, perfdata after |", function()
      local text, code = monitor.plugin_output{ { name = "TS01", state = monitor.WARNING, text = "6 in use",
        perf = { "'in_use'=6;5;;0" } } }
      assert.equal("TERMSRV WARNING - TS01: 6 in use | 'in_use'=6;5;;0\n", text)
      assert.equal(1, code)
    end)

    it("several hosts: a summary line, a line per host, all perfdata after the last", function()
      local text, code = monitor.plugin_output({
        { name = "TS01", state = monitor.OK, text = "2 in use", perf = { "'TS01::in_use'=2;;;0" } },
        { name = "DOWN", state = monitor.UNKNOWN, text = "connect: refused | see\nthis" },
        { name = "TS02", state = monitor.CRITICAL, text = "9 in use", perf = { "'TS02::in_use'=9;;8;0" } },
      }, { in_use = 11, disconnected = 1, stale = 0 })
      assert.equal(2, code)
      assert.equal("TERMSRV CRITICAL - 3 hosts: 1 CRITICAL, 1 UNKNOWN, 1 OK; 11 in use, 1 disconnected, 0 stale\n"
        .. "TS01: OK - 2 in use\n"
        .. "DOWN: UNKNOWN - connect: refused / see\\x0athis\n"
        .. "TS02: CRITICAL - 9 in use | 'in_use'=11;;;0 'disconnected'=1;;;0 'stale'=0;;;0 "
        .. "'TS01::in_use'=2;;;0 'TS02::in_use'=9;;8;0\n", text)
    end)

    it("several hosts, none answered: no totals and no perfdata", function()
      local text, code = monitor.plugin_output({ { name = "a", state = monitor.UNKNOWN, text = "timeout" },
        { name = "b", state = monitor.CRITICAL, text = "refused" } }, nil)
      assert.equal(2, code)
      assert.equal("TERMSRV CRITICAL - 2 hosts: 1 CRITICAL, 1 UNKNOWN\na: UNKNOWN - timeout\nb: CRITICAL - refused\n", text)
    end)

    it("UNKNOWN loses to WARNING, wins over OK", function()
      local _, code = monitor.plugin_output{ { name = "a", state = 3, text = "x" }, { name = "b", state = 1, text = "y" } }
      assert.equal(1, code)
      _, code = monitor.plugin_output{ { name = "a", state = 0, text = "x" }, { name = "b", state = 3, text = "y" } }
      assert.equal(3, code)
    end)
  end)

  describe("Prometheus exposition", function()
    it("HELP and TYPE once per family, labels escaped, families without samples left out", function()
      local text = monitor.exposition{
        { name = "x_total", type = "counter", help = "A \\ help\nline.", samples = {
          { labels = { { "host", 'a"b\\c\nd' } }, value = 3 }, { labels = { { "host", "e" } }, value = 0.5 } } },
        { name = "empty", type = "gauge", help = "none", samples = {} },
        { name = "y", type = "gauge", help = "y.", samples = { { value = 1 / 0 }, { value = 12 } } },
      }
      assert.equal('# HELP x_total A \\\\ help\\nline.\n# TYPE x_total counter\n'
        .. 'x_total{host="a\\"b\\\\c\\nd"} 3\nx_total{host="e"} 0.5\n'
        .. "# HELP y y.\n# TYPE y gauge\ny +Inf\ny 12\n", text)
      assert.equal("", monitor.exposition{})
      assert.has_error(function() monitor.exposition{ { name = "bad-name", type = "gauge", help = "", samples = {} } } end)
    end)

    it("bytes that are not UTF-8 become U+FFFD in label values", function()
      assert.equal("a\u{FFFD}b\u{e9}", monitor.label_value("a\xffb\u{e9}"))
    end)

    it("families: up and duration for every host, the rest only for hosts that answered", function()
      local fams = monitor.families({
        { name = "TS01", up = true, duration = 0.125, slots = 10, tally = monitor.tally(SESSIONS, 28800) },
        { name = "DOWN", up = false, duration = 0.001, error_code = "connection_refused" },
      }, { stale = 28800 })
      local text = monitor.exposition(fams)
      local function lines(name)
        local t = {}
        for l in text:gmatch("[^\n]+") do if l:match("^" .. name .. "[{ ]") then t[#t + 1] = l end end
        return table.concat(t, "\n")
      end
      assert.equal('termsrv_up{host="TS01"} 1\ntermsrv_up{host="DOWN"} 0', lines("termsrv_up"))
      assert.equal('termsrv_scrape_duration_seconds{host="TS01"} 0.125\n'
        .. 'termsrv_scrape_duration_seconds{host="DOWN"} 0.001', lines("termsrv_scrape_duration_seconds"))
      assert.equal('termsrv_scrape_error_info{host="DOWN",code="connection_refused"} 1',
        lines("termsrv_scrape_error_info"))
      assert.equal('termsrv_sessions{host="TS01",state="active"} 3\n'
        .. 'termsrv_sessions{host="TS01",state="connected"} 0\n'
        .. 'termsrv_sessions{host="TS01",state="connect_query"} 0\n'
        .. 'termsrv_sessions{host="TS01",state="shadow"} 0\n'
        .. 'termsrv_sessions{host="TS01",state="disconnected"} 3\n'
        .. 'termsrv_sessions{host="TS01",state="idle"} 0\n'
        .. 'termsrv_sessions{host="TS01",state="listen"} 0\n'
        .. 'termsrv_sessions{host="TS01",state="reset"} 0\n'
        .. 'termsrv_sessions{host="TS01",state="down"} 0\n'
        .. 'termsrv_sessions{host="TS01",state="init"} 0', lines("termsrv_sessions"))
      assert.equal('termsrv_sessions_stale{host="TS01"} 2', lines("termsrv_sessions_stale"))
      assert.equal("termsrv_stale_threshold_seconds 28800", lines("termsrv_stale_threshold_seconds"))
      assert.equal('termsrv_session_idle_seconds_max{host="TS01"} 7200', lines("termsrv_session_idle_seconds_max"))
      assert.equal('termsrv_session_disconnected_seconds_max{host="TS01"} 259200',
        lines("termsrv_session_disconnected_seconds_max"))
      assert.equal('termsrv_slots_used{host="TS01"} 6', lines("termsrv_slots_used"))
      assert.equal('termsrv_slots_limit{host="TS01"} 10', lines("termsrv_slots_limit"))
      -- every family has its HELP and TYPE before its samples, once
      local seen = {}
      for name in text:gmatch("# TYPE (%S+) gauge\n") do
        assert.is_nil(seen[name], name)
        seen[name] = true
        assert.matches("# HELP " .. name .. " [^\n]+\n# TYPE " .. name .. " gauge\n", text)
      end
      assert.is_true(seen.termsrv_slots_limit)
    end)

    it("no slots limit without one: termsrv_slots_limit is absent, not 0", function()
      local text = monitor.exposition(monitor.families({ { name = "TS01", up = true, duration = 0.1,
        tally = monitor.tally(SESSIONS, 60) } }, { stale = 60 }))
      assert.is_nil(text:find("termsrv_slots_limit", 1, true))
      assert.truthy(text:find('termsrv_slots_used{host="TS01"} 6', 1, true))
    end)
  end)
end)
