-- `termsrv check` (a monitoring plugin) and `termsrv metrics` (Prometheus
-- text exposition), end to end: bin/termsrv against the simulator through
-- the real smbd. Every exit code of check is produced and its perfdata
-- parsed; the metrics pass `promtool check metrics` (Debian's prometheus).

local sim = require "support.sim"
local support = require "support.cli"

local ADMIN, NONADMIN = support.ADMIN, support.NONADMIN
local q, slurp, spit = support.q, support.slurp, support.spit

local TMP = support.scratch()
local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP } }

local function have(cmd) return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true end
local PROMTOOL = have("promtool")

-- Perfdata after the first `|` of a plugin's output: label ->
-- {value=, uom=, warn=, crit=, min=, max=}; labels are quoted ('' is a quote).
local function perfdata(out)
  local p = assert(out:match("|%s*(.-)%s*$"), "no perfdata in: " .. out)
  local items, i = {}, 1
  while i <= #p do
    i = p:find("%S", i)
    if not i then break end
    local label
    if p:sub(i, i) == "'" then
      local buf, j = {}, i + 1
      while true do
        local c = p:sub(j, j)
        assert(c ~= "", "unterminated label in: " .. p)
        if c == "'" and p:sub(j + 1, j + 1) == "'" then buf[#buf + 1] = "'"; j = j + 2
        elseif c == "'" then break
        else buf[#buf + 1] = c; j = j + 1 end
      end
      label, i = table.concat(buf), j + 1
    else
      local j = assert(p:find("=", i, true))
      label, i = p:sub(i, j - 1), j
    end
    local rest = assert(p:match("^=(%S+)", i), "no =value after '" .. label .. "' in: " .. p)
    i = i + 1 + #rest
    local f = {}
    for x in (rest .. ";"):gmatch("([^;]*);") do f[#f + 1] = x end
    assert(#f <= 5, rest)
    local value, uom = f[1]:match("^(%-?[%d%.]+)([%a%%]*)$")
    assert(value, "bad value in " .. rest)
    assert(items[label] == nil, "label twice: " .. label)
    items[label] = { value = tonumber(value), uom = uom, warn = f[2] or "", crit = f[3] or "", min = f[4] or "",
                     max = f[5] or "" }
  end
  return items
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- promtool's verdict on a text: ok, what it said
local function promtool(text)
  local f = TMP .. "/check.prom"
  spit(f, text)
  local p = io.popen("promtool check metrics < " .. q(f) .. " 2>&1")
  local said = p:read("a")
  local ok = p:close()
  return ok == true, said
end

-- sample lines of one metric as "labels value" strings, in order
local function samples(text, name)
  local t = {}
  for l in text:gmatch("[^\n]+") do
    local rest = l:match("^" .. name .. "(.*)$")
    if rest and (rest:sub(1, 1) == "{" or rest:sub(1, 1) == " ") then t[#t + 1] = rest:gsub("^ ", "") end
  end
  return t
end

describe("termsrv check and metrics", function()
  local env, TS01, hosts_file

  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/monitor.lua" }
    TS01 = "TS01=127.0.0.1:" .. env.ports.TS01
    hosts_file = env.hosts_file
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  describe("check", function()
    it("OK (exit 0): one status line with every count, slots left unknown, perfdata", function()
      local code, out, err = run({ "check", TS01 }, ADMIN)
      assert.equal("", err)
      assert.equal(0, code)
      assert.equal("TERMSRV OK - TS01: 6 in use, 3 disconnected, 2 stale (disconnected >= 8h), slots left unknown "
        .. "(the host does not say its connection limit: information class not supported "
        .. "[STATUS_INVALID_INFO_CLASS]; give it with --slots N) | 'in_use'=6;;;0 'disconnected'=3;;;0 'stale'=2;;;0\n",
        out)
      local p = perfdata(out)
      assert.same({ value = 6, uom = "", warn = "", crit = "", min = "0", max = "" }, p.in_use)
      assert.equal(3, p.disconnected.value)
      assert.equal(2, p.stale.value)
      assert.is_nil(p.slots_left) -- never guessed
    end)

    it("WARNING (exit 1): in use above the warning range, thresholds in the perfdata", function()
      local code, out = run({ "check", TS01, "--warning-in-use", "5", "--critical-in-use", "8" }, ADMIN)
      assert.equal(1, code)
      assert.matches("^TERMSRV WARNING %- TS01: 6 in use %(WARNING: > 5%), 3 disconnected, ", out)
      assert.same({ value = 6, uom = "", warn = "5", crit = "8", min = "0", max = "" }, perfdata(out).in_use)
    end)

    it("CRITICAL (exit 2): a session going stale on the host crosses the critical range", function()
      local args = { "check", TS01, "--stale", "8h", "--warning-stale", "~:1", "--critical-stale", "2" }
      local code, out = run(args, ADMIN)
      assert.equal(1, code) -- 2 stale: above the warning range ~:1, inside the critical 0..2
      assert.equal(2, perfdata(out).stale.value)
      sim.ctl(env, "set-session", "TS01", 3, { disconnect = "-10h" }) -- alice's 20 minutes become 10 hours
      finally(function() sim.ctl(env, "set-session", "TS01", 3, { disconnect = "-20m" }) end)
      code, out = run(args, ADMIN)
      assert.equal(2, code)
      assert.matches("^TERMSRV CRITICAL %- TS01: 6 in use, 3 disconnected, 3 stale %(disconnected >= 8h; "
        .. "CRITICAL: > 2%)", out)
      assert.same({ value = 3, uom = "", warn = "~:1", crit = "2", min = "0", max = "" }, perfdata(out).stale)
      -- --stale moves the line: nothing is disconnected 4 days
      code, out = run({ "check", TS01, "--stale", "4d", "--critical-stale", "0" }, ADMIN)
      assert.equal(0, code)
      assert.equal(0, perfdata(out).stale.value)
    end)

    it("slots left only from --slots: value, thresholds and the limit as max", function()
      local code, out = run({ "check", TS01, "--slots", "8", "--warning-slots-left", "3:",
                              "--critical-slots-left", "2:" }, ADMIN)
      assert.equal(1, code) -- 2 left: below 3, not below 2
      assert.matches("2 of 8 slots left %(WARNING: < 3%)", out)
      local p = perfdata(out)
      assert.same({ value = 2, uom = "", warn = "3:", crit = "2:", min = "0", max = "8" }, p.slots_left)
      assert.equal("8", p.in_use.max)
      code, out = run({ "check", TS01, "--slots", "6", "--critical-slots-left", "1:" }, ADMIN)
      assert.equal(2, code)
      assert.matches("0 of 6 slots left %(CRITICAL: < 1%)", out)
      -- a threshold on slots with no known limit cannot be judged
      code, out = run({ "check", TS01, "--critical-slots-left", "1:" }, ADMIN)
      assert.equal(3, code)
      assert.matches("^TERMSRV UNKNOWN %- TS01: .*UNKNOWN: slots left unknown", out)
    end)

    it("UNKNOWN (exit 3): unreachable host, refused logon, a partial view; CRITICAL with --error-state", function()
      local code, out = run({ "check", "DOWN=127.0.0.1:1" }, ADMIN)
      assert.equal(3, code)
      assert.matches("^TERMSRV UNKNOWN %- DOWN: connect: [^\n]*connection refused[^\n]*\n$", out)
      code, out = run({ "check", "DOWN=127.0.0.1:1", "--error-state", "critical" }, ADMIN)
      assert.equal(2, code)
      assert.matches("^TERMSRV CRITICAL %- DOWN: connect: ", out)
      code, out = run({ "check", TS01 }, support.with(ADMIN, { TERMSRV_PASSWORD = "wrong" }))
      assert.equal(3, code)
      assert.matches("^TERMSRV UNKNOWN %- TS01: connect: [^\n]*SMB logon refused", out)
      -- an account that sees only its own sessions would count too few
      code, out = run({ "check", TS01 }, NONADMIN)
      assert.equal(3, code)
      assert.matches("^TERMSRV UNKNOWN %- TS01: list sessions: the account sees only its own sessions", out)
    end)

    it("UNKNOWN (exit 3), not 64, for bad options and missing credentials, with a status line", function()
      for _, c in ipairs{
        { { "check", TS01, "--warning-in-use", "5:1" }, "^TERMSRV UNKNOWN %- usage: .*'5:1': the start of a range" },
        { { "check", TS01, "--critical-stale", "x" }, "^TERMSRV UNKNOWN %- usage: .*'x' is not a threshold range" },
        { { "check", TS01, "--stale", "soon" }, "^TERMSRV UNKNOWN %- usage: .*soon" },
        { { "check", TS01, "--slots", "0" }, "^TERMSRV UNKNOWN %- usage: .*a number of slots" },
        { { "check", TS01, "--bogus" }, "^TERMSRV UNKNOWN %- usage: unknown option '%-%-bogus'\n$" },
        { { "check" }, "^TERMSRV UNKNOWN %- usage: no hosts" },
        { { "check", TS01, "--format", "json" }, "^TERMSRV UNKNOWN %- usage: unknown option '%-%-format'" },
      } do
        local code, out = run(c[1], ADMIN)
        assert.equal(3, code, table.concat(c[1], " "))
        assert.matches(c[2], out)
      end
      local code, out = run({ "check", TS01, "--no-prompt" }, { TERMSRV_USER = "CORP\\ops" })
      assert.equal(3, code)
      assert.matches("^TERMSRV UNKNOWN %- credentials: no password", out)
      -- the other commands keep their usage exit code
      assert.equal(64, (run({ "sessions", TS01, "--bogus" }, ADMIN)))
    end)

    it("several hosts: summary line, a line per host in order, the worst state, all perfdata at the end",
      function()
        local code, out, err = run({ "check", "--hosts", hosts_file, "DOWN=127.0.0.1:1", "-j", "3",
                                     "--warning-in-use", "5", "--slots", "10" }, ADMIN)
        assert.equal("", err)
        assert.equal(1, code) -- WARNING beats UNKNOWN (monitoring-plugins' max_state_alt)
        local l = lines(out)
        assert.equal(4, #l)
        assert.equal("TERMSRV WARNING - 3 hosts: 1 WARNING, 1 UNKNOWN, 1 OK; 8 in use, 4 disconnected, 3 stale", l[1])
        -- hosts on the command line come first, then those of --hosts files
        assert.matches("^DOWN: UNKNOWN %- connect: [^|]*connection refused[^|]*$", l[2])
        assert.matches("^TS01: WARNING %- 6 in use %(WARNING: > 5%), 3 disconnected, 2 stale .*4 of 10 slots left$", l[3])
        assert.matches("^TS02: OK %- 2 in use, 1 disconnected, 1 stale .*8 of 10 slots left | 'in_use'=8;;;0 ", l[4])
        assert.is_nil(l[1]:find("|", 1, true)) -- the first line has no perfdata: Icinga 2 reads all after a |
        local p = perfdata(out)
        assert.equal(8, p.in_use.value)
        assert.equal(4, p.disconnected.value)
        assert.equal(3, p.stale.value)
        assert.same({ value = 6, uom = "", warn = "5", crit = "", min = "0", max = "10" }, p["TS01::in_use"])
        assert.equal(4, p["TS01::slots_left"].value)
        assert.equal(1, p["TS02::stale"].value)
        assert.equal(8, p["TS02::slots_left"].value)
        assert.is_nil(p["DOWN::in_use"])
      end)

    it("a hung host is UNKNOWN at --host-timeout; the other host is still checked", function()
      sim.ctl(env, "set-fault", "TS02", "hang", "method=RpcGetAllSessions")
      finally(function() sim.ctl(env, "clear-faults", "TS02") end)
      local t0 = os.time()
      local code, out = run({ "check", "--hosts", hosts_file, "-j", "2", "--host-timeout", "1" }, ADMIN)
      assert.is_true(os.time() - t0 <= 5)
      assert.equal(3, code)
      local l = lines(out)
      assert.equal("TERMSRV UNKNOWN - 2 hosts: 1 UNKNOWN, 1 OK; 6 in use, 3 disconnected, 2 stale", l[1])
      assert.matches("^TS01: OK %- 6 in use", l[2])
      assert.matches("^TS02: UNKNOWN %- fleet: no result within 1s", l[3])
    end)
  end)

  it("check --help and metrics --help exit 0 and describe the thresholds and the output", function()
    local code, out = run({ "check", "--help" })
    assert.equal(0, code)
    assert.matches("^Usage: termsrv check ", out)
    for _, o in ipairs{ "--warning-in-use", "--critical-in-use", "--warning-disconnected", "--critical-disconnected",
                        "--warning-stale", "--critical-stale", "--warning-slots-left", "--critical-slots-left",
                        "--stale", "--slots", "--error-state", "--hosts", "--jobs", "@N:M" } do
      assert.truthy(out:find(o, 1, true), o)
    end
    code, out = run({ "metrics", "--help" })
    assert.equal(0, code)
    assert.matches("^Usage: termsrv metrics ", out)
    assert.truthy(out:find("--output", 1, true))
    code, out = run({ "--help" })
    assert.equal(0, code)
    assert.truthy(out:find("\n   check ", 1, true) and out:find("\n   metrics ", 1, true))
  end)

  describe("metrics", function()
    local ODD = 'odd"x\\y=127.0.0.1:' -- a label needing escapes

    it("passes promtool check metrics; up, sessions by state, stale, ages, slots; exit 1 with a host down",
      function()
        if not PROMTOOL then
          pending("promtool is not installed (Debian package prometheus, see .ci/install-deps)")
          return
        end
        local code, out, err = run({ "metrics", "--hosts", hosts_file, "DOWN=127.0.0.1:1", ODD .. env.ports.TS02,
                                     "-j", "2", "--slots", "10" }, ADMIN)
        assert.equal(1, code)
        assert.matches("^DOWN: connect: ", err)
        local ok, said = promtool(out)
        assert.is_true(ok, said .. "\n" .. out)
        assert.equal("", said)
        assert.same({ '{host="DOWN"} 0', '{host="odd\\"x\\\\y"} 1', '{host="TS01"} 1', '{host="TS02"} 1' },
          samples(out, "termsrv_up"))
        assert.same({ '{host="DOWN",code="connection_refused"} 1' }, samples(out, "termsrv_scrape_error_info"))
        local by_state = samples(out, "termsrv_sessions")
        assert.equal(30, #by_state) -- 10 states for each of the 3 hosts that answered
        assert.equal('{host="TS01",state="active"} 3', by_state[11])
        assert.equal('{host="TS01",state="disconnected"} 3', by_state[15])
        assert.same({ '{host="odd\\"x\\\\y"} 1', '{host="TS01"} 2', '{host="TS02"} 1' },
          samples(out, "termsrv_sessions_stale"))
        assert.same({ "28800" }, samples(out, "termsrv_stale_threshold_seconds"))
        assert.same({ '{host="odd\\"x\\\\y"} 2', '{host="TS01"} 6', '{host="TS02"} 2' },
          samples(out, "termsrv_slots_used"))
        assert.same({ '{host="odd\\"x\\\\y"} 10', '{host="TS01"} 10', '{host="TS02"} 10' },
          samples(out, "termsrv_slots_limit"))
        -- ages on the host's clock: TS01's carol's 3 days, dave's 2 hours of idle
        local disc = tonumber(samples(out, "termsrv_session_disconnected_seconds_max")[2]:match(" (%S+)$"))
        assert.is_true(disc >= 259200 and disc < 259200 + 60, tostring(disc))
        local idle = tonumber(samples(out, "termsrv_session_idle_seconds_max")[2]:match(" (%S+)$"))
        assert.is_true(idle >= 7200 and idle < 7200 + 60, tostring(idle))
        for _, s in ipairs(samples(out, "termsrv_scrape_duration_seconds")) do
          local v = tonumber(s:match(" (%S+)$"))
          assert.is_true(v >= 0 and v < 10, s)
        end
        -- without --slots the limit is absent, not guessed
        code, out = run({ "metrics", TS01 }, ADMIN)
        assert.equal(0, code)
        assert.is_nil(out:find("termsrv_slots_limit", 1, true))
        assert.is_true((promtool(out)))
      end)

    it("--output writes atomically: a new file by rename, no temporary left, the old one kept on failure",
      function()
        local dir = TMP .. "/textfile"
        os.execute("mkdir -p " .. q(dir))
        local file = dir .. "/termsrv.prom"
        spit(file, "old\n")
        local before = io.popen("stat -c %i " .. q(file)):read("l")
        local code, out, err = run({ "metrics", "--hosts", hosts_file, "--output", file }, ADMIN)
        assert.equal("", err)
        assert.equal(0, code)
        assert.equal("", out)
        local text = slurp(file)
        assert.matches('\ntermsrv_up{host="TS02"} 1\n', text)
        assert.are_not.equal(before, io.popen("stat -c %i " .. q(file)):read("l")) -- renamed over, not rewritten
        assert.equal("termsrv.prom\n", io.popen("ls -A " .. q(dir)):read("a"))
        if PROMTOOL then assert.is_true((promtool(text))) end
        -- readable by the collector, which runs as another user: the usual mode, 0666 less the umask
        local umask022 = support.runner{ unset = support.TERMSRV_VARS,
          command = { "sh", "-c", 'umask 022 && exec "$0" "$@"', support.BIN } }
        code = umask022({ "metrics", TS01, "--output", file }, ADMIN)
        assert.equal(0, code)
        assert.equal("644", io.popen("stat -c %a " .. q(file)):read("l"))
        text = slurp(file)
        -- a directory that does not exist: exit 2, said on stderr
        local missing = TMP .. "/missing/termsrv.prom"
        code, out, err = run({ "metrics", TS01, "--output", missing }, ADMIN)
        assert.equal(2, code)
        assert.equal("", out)
        assert.matches("^termsrv: write " .. missing:gsub("%p", "%%%0") .. ": ", err)
        code, out, err = run({ "metrics", TS01, "--output", dir .. "/" }, ADMIN)
        assert.equal(2, code)
        assert.equal("", out)
        assert.matches("is not a file name", err)
        -- the rename fails (FILE is a directory): exit 2, the temporary file is removed
        os.execute("mkdir -p " .. q(dir .. "/sub.prom/x"))
        code, out, err = run({ "metrics", TS01, "--output", dir .. "/sub.prom" }, ADMIN)
        assert.equal("", out)
        assert.equal(2, code)
        assert.matches("^termsrv: write ", err)
        assert.equal("sub.prom\ntermsrv.prom\n", io.popen("ls -A " .. q(dir)):read("a"))
        assert.equal(text, slurp(file))
      end)

    it("every host down: exit 2, still a valid file saying so", function()
      local code, out = run({ "metrics", "DOWN=127.0.0.1:1" }, ADMIN)
      assert.equal(2, code)
      assert.same({ '{host="DOWN"} 0' }, samples(out, "termsrv_up"))
      if PROMTOOL then assert.is_true((promtool(out))) end
    end)
  end)
  -- The README's Monitoring section, run as written: its paths and macros
  -- replaced by the test's, nothing else.
  describe("README's Monitoring section", function()
    local section = assert(slurp(sim.root .. "/README.md"):match("\n## Monitoring\n(.-)\n## "))
    local function credfile()
      local f = TMP .. "/termsrv.cred"
      spit(f, "username = CORP\\ops\npassword = Ops-Passw0rd\n")
      os.execute("chmod 600 " .. q(f))
      return f
    end
    local sh = function(line) return support.runner{ unset = support.TERMSRV_VARS, command = { "sh", "-c", line } }{} end
    local function plain(s) return (s:gsub("%p", "%%%0")) end

    it("the Nagios command definition, with its service's arguments, checks a host", function()
      local line = assert(section:match("\n%s*command_line%s+([^\n]+)"))
      local args = {}
      for a in (assert(section:match("\n%s*check_command%s+check_termsrv([^\n]*)")) .. "!"):gmatch("!([^!]*)") do
        args[#args + 1] = a
      end
      assert.equal(6, #args) -- 5 arguments, and the empty tail
      line = line:gsub(plain("/usr/local/bin/termsrv"), support.BIN):gsub(plain("/etc/nagios4/termsrv.cred"), credfile())
        :gsub(plain("$HOSTNAME$"), "ts01"):gsub(plain("$HOSTADDRESS$"), "127.0.0.1:" .. env.ports.TS01)
        :gsub("%$ARG(%d)%$", function(n) return args[tonumber(n)] end)
      assert.is_nil(line:find("$", 1, true), line)
      local code, out, err = sh(line)
      assert.equal("", err)
      assert.equal(0, code)
      assert.matches("^TERMSRV OK %- ts01: 6 in use, 3 disconnected, 2 stale %(disconnected >= 8h%), 4 of 10 slots left | ",
        out)
      local p = perfdata(out)
      assert.same({ value = 4, uom = "", warn = "3:", crit = "1:", min = "0", max = "10" }, p.slots_left)
      assert.same({ value = 2, uom = "", warn = "2", crit = "5", min = "0", max = "" }, p.stale)
    end)

    it("the node_exporter textfile cron line writes a file promtool accepts", function()
      local cron = assert(section:match("\n(%*/5 [^\n]+)"))
      local when, user, command = cron:match("^(%S+ %S+ %S+ %S+ %S+) (%S+) (.+)$")
      assert.equal("*/5 * * * *", when)
      assert.equal("prometheus", user)
      local dir = TMP .. "/node-exporter"
      os.execute("mkdir -p " .. q(dir))
      command = command:gsub(plain("/usr/local/bin/termsrv"), support.BIN):gsub(plain("/etc/termsrv/farm.txt"), hosts_file)
        :gsub(plain("/etc/termsrv/metrics.cred"), credfile()):gsub(plain("/var/lib/prometheus/node-exporter"), dir)
      local code, out, err = sh(command)
      assert.equal("", err)
      assert.equal("", out)
      assert.equal(0, code)
      local text = assert(slurp(dir .. "/termsrv.prom"))
      assert.same({ '{host="TS01"} 1', '{host="TS02"} 1' }, samples(text, "termsrv_up"))
      assert.same({ '{host="TS01"} 10', '{host="TS02"} 10' }, samples(text, "termsrv_slots_limit"))
      if not PROMTOOL then
        pending("promtool is not installed (Debian package prometheus, see .ci/install-deps)")
        return
      end
      local ok, said = promtool(text)
      assert.is_true(ok, said)
    end)
  end)
end)
