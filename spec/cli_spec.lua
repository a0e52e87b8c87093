-- The termsrv command line against the simulator: golden outputs (table,
-- JSON Lines, CSV), exit codes, usage errors, --help, host lists and
-- credentials. bin/termsrv runs as a subprocess, as a user runs it.

local sim = require "support.sim"
local support = require "support.cli"
local cli = require "termsrv.cli"
local credentials = require "termsrv.credentials"
local dkjson = require "dkjson"

local BIN, ADMIN, NONADMIN = support.BIN, support.ADMIN, support.NONADMIN
local NTHASH_OPS = "16204771B3C5242BAD892D54D91EE64C" -- MD4(UTF-16LE("Ops-Passw0rd"))
local q, spit, with = support.q, support.spit, support.with

local TMP = support.scratch()

-- Runs bin/termsrv with only the TERMSRV_* variables given; stdin is
-- /dev/null (so nothing ever prompts), TZ is UTC, HOME is a scratch dir.
-- Returns exit code, stdout, stderr.
local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP .. "/home" } }

-- Ages move with the clock: mask them (keys of JSON lines, columns of CSV).
local VOLATILE = { "disconnect_time", "last_input_time", "server_time", "idle", "disconnected", "duration" }

local function mask_json(text)
  for _, k in ipairs(VOLATILE) do
    text = text:gsub('"' .. k .. '":"[^"]*"', '"' .. k .. '":#'):gsub('"' .. k .. '":[%d.]+', '"' .. k .. '":#')
  end
  return text
end

local function mask_csv(text)
  local lines = {}
  for line in text:gmatch("([^\r\n]*)\r\n") do lines[#lines + 1] = line end
  local head = {}
  for k in lines[1]:gmatch("[^,]+") do head[#head + 1] = k end
  local mask = {}
  for i, k in ipairs(head) do for _, v in ipairs(VOLATILE) do if k == v then mask[i] = true end end end
  for n = 2, #lines do
    local cells, i = {}, 0
    for c in (lines[n] .. ","):gmatch("([^,]*),") do
      i = i + 1
      cells[i] = (mask[i] and c ~= "") and "#" or c
    end
    lines[n] = table.concat(cells, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

describe("termsrv CLI", function()
  local env, hosts_json, ts01, ts02

  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/cli.lua" }
    hosts_json = env.hosts_file
    ts01 = "TS01=127.0.0.1:" .. env.hosts[1].port
    ts02 = "TS02=127.0.0.1:" .. env.hosts[2].port
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  describe("golden outputs", function()
    it("sessions: the qwinsta table", function()
      local code, out, err = run({ "sessions", ts01 }, ADMIN)
      assert.equal("", err)
      assert.equal(0, code)
      assert.equal(table.concat({
        " SESSIONNAME       USERNAME                 ID  STATE   TYPE        DEVICE",
        " console                                     1  Conn",
        " rdp-tcp#42        foo                       2  Active",
        "                   alice                     3  Disc",
        "                   bob                       4  Disc",
        "                   carol                     5  Disc",
        " rdp-tcp#57        dave                      6  Active",
        " rdp-tcp#61        jdoe                      7  Active",
      }, "\n") .. "\n", out)
    end)

    it("sessions on several hosts (hosts file): a HOST column, hosts in the order given", function()
      local code, out = run({ "sessions", "--hosts", hosts_json, "--all", "-D" }, ADMIN)
      assert.equal(0, code)
      assert.equal(table.concat({
        " HOST  SESSIONNAME       USERNAME                 ID  STATE   TYPE        DEVICE",
        " TS01  services                                    0  Disc",
        " TS01  console                                     1  Conn",
        " TS01  rdp-tcp#42        CORP\\foo                  2  Active",
        " TS01                    CORP\\alice                3  Disc",
        " TS01                    CORP\\bob                  4  Disc",
        " TS01                    CORP\\carol                5  Disc",
        " TS01  rdp-tcp#57        CORP\\dave                 6  Active",
        " TS01  rdp-tcp#61        CORP\\jdoe                 7  Active",
        " TS01  rdp-tcp                                 65536  Listen",
        " TS02  services                                    0  Disc",
        " TS02  console                                     1  Conn",
        " TS02  rdp-tcp#7         CORP\\erin                 2  Active",
        " TS02                    CORP\\bob                  3  Disc",
        " TS02  rdp-tcp                                 65536  Listen",
      }, "\n") .. "\n", out)
    end)

    it("users: the quser table, idle and logon times exactly", function()
      local code, out = run({ "users", ts01, ts02 }, ADMIN)
      assert.equal(0, code)
      assert.equal(table.concat({
        " HOST  USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME",
        " TS01  foo                   rdp-tcp#42          2  Active         3   11/26/2026 8:00 AM",
        " TS01  alice                                     3  Disc          20   11/26/2026 9:00 AM",
        " TS01  bob                                       4  Disc        9:00   11/25/2026 8:00 AM",
        " TS01  carol                                     5  Disc     3+00:00   11/23/2026 8:00 AM",
        " TS01  dave                  rdp-tcp#57          6  Active      2:00   11/26/2026 8:30 AM",
        " TS01  jdoe                  rdp-tcp#61          7  Active         .   11/26/2026 10:00 AM",
        " TS02  erin                  rdp-tcp#7           2  Active        10   11/26/2026 8:00 AM",
        " TS02  bob                                       3  Disc     1+00:00   11/26/2026 6:00 AM",
      }, "\n") .. "\n", out)
    end)

    it("users --disconnected --locked --client: quser's columns, then DISC FOR, LOCKED, CLIENT, ADDRESS, TIME ZONE", function()
      local code, out = run({ "users", ts01, "--client", "--locked", "--disconnected", "--user", "foo",
                              "--user", "bob" }, ADMIN)
      assert.equal(0, code)
      assert.equal(table.concat({
        " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME          DISC FOR  LOCKED"
          .. "  CLIENT      ADDRESS      TIME ZONE",
        " foo                   rdp-tcp#42          2  Active         3   11/26/2026 8:00 AM            no    "
          .. "  LAPTOP-FOO  10.10.20.42",
        " bob                                       4  Disc        9:00   11/25/2026 8:00 AM  9:00      no    "
          .. "  PC-BOB      10.10.21.17",
      }, "\n") .. "\n", out)
    end)

    it("users --format json: JSON Lines, fixed key order, null for unknown", function()
      local code, out = run({ "users", ts01, "--format", "json", "--state", "disc" }, ADMIN)
      assert.equal(0, code)
      assert.equal(table.concat({
        '{"host":"TS01","id":3,"name":"","user":"alice","domain":"CORP","state":"disconnected","state_code":4,'
          .. '"kind":"user","logon_time":"2026-11-26T09:00:00Z","connect_time":"2026-11-26T09:00:00Z",'
          .. '"disconnect_time":#,"last_input_time":#,"server_time":#,"idle":#,"disconnected":#,'
          .. '"locked":null,"client":null,"address":null,"time_zone":null,"driver":null,"device":null}',
        '{"host":"TS01","id":4,"name":"","user":"bob","domain":"CORP","state":"disconnected","state_code":4,'
          .. '"kind":"user","logon_time":"2026-11-25T08:00:00Z","connect_time":"2026-11-25T08:00:00Z",'
          .. '"disconnect_time":#,"last_input_time":#,"server_time":#,"idle":#,"disconnected":#,'
          .. '"locked":null,"client":null,"address":null,"time_zone":null,"driver":null,"device":null}',
        '{"host":"TS01","id":5,"name":"","user":"carol","domain":"CORP","state":"disconnected","state_code":4,'
          .. '"kind":"user","logon_time":"2026-11-23T08:00:00Z","connect_time":"2026-11-23T08:00:00Z",'
          .. '"disconnect_time":#,"last_input_time":#,"server_time":#,"idle":#,"disconnected":#,'
          .. '"locked":null,"client":null,"address":null,"time_zone":null,"driver":null,"device":null}',
        -- every host's status record follows its records: "no sessions" is not "could not ask"
        '{"type":"host","host":"TS01","ok":true,"error":null,"message":null,"hint":null,"duration":#,'
          .. '"records":3}',
      }, "\n") .. "\n", mask_json(out))
      -- the masked ages are what the sim was told, on its own clock
      local bob = assert(dkjson.decode(out:match("[^\n]*\"bob\"[^\n]*")))
      assert.near(9 * 3600, bob.disconnected, 30)
      assert.equal(bob.idle, bob.disconnected)
    end)

    it("sessions --format csv: RFC 4180, CRLF, one header row, a type column, a status row per host", function()
      local code, out = run({ "sessions", ts02, "--format", "csv", "--client" }, ADMIN)
      assert.equal(0, code)
      assert.truthy(out:find("\r\n", 1, true))
      assert.equal(table.concat({
        "type,host,id,name,user,domain,state,state_code,kind,logon_time,connect_time,disconnect_time,"
          .. "last_input_time,server_time,idle,disconnected,locked,client,address,time_zone,driver,device,ok,"
          .. "error,message,hint,duration,records",
        "session,TS02,1,console,,,connected,1,console,,,,,#,,,,,,,,,,,,,,",
        "session,TS02,2,rdp-tcp#7,erin,CORP,active,0,user,2026-11-26T08:00:00Z,2026-11-26T08:00:00Z,,#,#,#,,,"
          .. "PC-ERIN,10.20.0.5,,,,,,,,,",
        "session,TS02,3,,bob,CORP,disconnected,4,user,2026-11-26T06:00:00Z,2026-11-26T06:00:00Z,#,#,#,#,#,,,"
          .. ",,,,,,,,,",
        "host,TS02,,,,,,,,,,,,,,,,,,,,,true,,,,#,3",
      }, "\n") .. "\n", mask_csv(out))
    end)

    it("sessions --client: client name and address columns", function()
      local code, out = run({ "sessions", ts01, "--client", "--user", "foo", "--user", "dave" }, ADMIN)
      assert.equal(0, code)
      assert.equal(table.concat({
        "SESSIONNAME  USERNAME  ID  STATE   IDLE  CLIENT      ADDRESS",
        "rdp-tcp#42   foo        2  Active  3     LAPTOP-FOO  10.10.20.42",
        "rdp-tcp#57   dave       6  Active  2:00  PC-DAVE     10.10.22.8",
      }, "\n") .. "\n", out)
    end)

    it("an empty listing on several hosts still has its header (tables) or its status records", function()
      local code, out = run({ "sessions", ts01, ts02, "--user", "nobody" }, ADMIN)
      assert.equal(0, code)
      assert.equal(" HOST  SESSIONNAME       USERNAME                 ID  STATE   TYPE        DEVICE\n", out)
      code, out = run({ "users", ts01, "--user", "nobody", "--format", "json" }, ADMIN)
      assert.equal(0, code)
      assert.equal('{"type":"host","host":"TS01","ok":true,"error":null,"message":null,"hint":null,'
        .. '"duration":#,"records":0}\n', mask_json(out))
    end)
  end)

  describe("targets", function()
    it("takes an IP address (with its port) before session ids", function()
      local code, out, err = run({ "logoff", "127.0.0.1:" .. env.hosts[1].port, "4", "-n" }, ADMIN)
      assert.equal(0, code, err)
      assert.matches("logoff", out)
      assert.matches("bob", out)
    end)

    it("expands CIDR blocks and [01-40] ranges; a label on several hosts is refused", function()
      local port = env.hosts[1].port
      -- the simulator listens on 127.0.0.1 only: .2 is refused, and says so
      local code, out, err = run({ "users", "127.0.0.0/30:" .. port, "--user", "erin", "--format", "json" }, ADMIN)
      assert.equal(1, code, err)
      local hosts = {}
      for line in out:gmatch("[^\n]+") do
        local r = assert(dkjson.decode(line))
        if r.type == "host" then hosts[#hosts + 1] = r.host .. "=" .. tostring(r.ok) end
      end
      table.sort(hosts)
      -- .0 and .3 are the block's network and broadcast addresses
      assert.same({ "127.0.0.1:" .. port .. "=true", "127.0.0.2:" .. port .. "=false" }, hosts)
      local _
      code, _, err = run({ "users", "X=ts[1-3]" }, ADMIN)
      assert.equal(64, code)
      assert.matches("a label names one host", err)
      code, _, err = run({ "users", "10.0.0.0/8" }, ADMIN)
      assert.equal(64, code)
      assert.matches("16777214 addresses; at most 4096", err)
    end)
  end)

  describe("exit codes", function()
    it("0 when every host answers, 1 when some fail, 2 when all fail; errors on stderr, one line each", function()
      local code, _, err = run({ "sessions", ts01, ts02 }, ADMIN)
      assert.equal(0, code)
      assert.equal("", err)

      local out
      code, out, err = run({ "sessions", ts01, "DOWN=127.0.0.1:1" }, ADMIN)
      assert.equal(1, code)
      assert.truthy(out:find("TS01  rdp-tcp#42", 1, true))
      local lines = {}
      for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal(1, #lines)
      assert.matches("^DOWN: connect: .*connection refused", lines[1])

      code, out, err = run({ "users", "DOWN=127.0.0.1:1", "nonexistent.invalid" }, ADMIN)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("^DOWN: connect: .*\nnonexistent.invalid: connect: resolve", err)
    end)

    it("0 for a non-admin listing: it sees its own session only, and says so", function()
      local code, out, err = run({ "users", ts01 }, NONADMIN)
      assert.equal(0, code)
      assert.equal("termsrv: TS01: the account sees only its own sessions (not an administrator of TS01)\n", err)
      assert.matches("^ USERNAME[^\n]*\n jdoe +rdp%-tcp#61 +7 +Active[^\n]*\n$", out)
    end)

    it("2 for a wrong password, and the password is never echoed", function()
      local code, out, err = run({ "sessions", ts01 }, with(ADMIN, { TERMSRV_PASSWORD = "Wr0ng-Secret-xyz" }))
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("logon", err)
      assert.is_nil(err:find("Wr0ng-Secret-xyz", 1, true))
    end)

    it("64 for usage errors, with the usage line of the command", function()
      for _, args in ipairs{
        { "sessions" },                              -- no hosts
        { "sessions", ts01, "--bogus" },             -- unknown option
        { "frobnicate", ts01 },                      -- unknown command
        {},                                          -- no command
        { "sessions", ts01, "-j", "0" },             -- bad number
        { "sessions", ts01, "--format", "xml" },     -- bad choice
        { "reset", ts01 },                           -- which sessions?
        { "reset", ts01, "3", "--user", "bob" },     -- ids and selectors
        { "reset", ts01, "--user", "bob", "--apply", "--dry-run" },
        { "reset", ts01, "--state", "sleepy" },      -- bad state
        { "reset", ts01, "--all-users", "--min-idle", "soon" },
        { "free-slots", "zero", ts01 },
        { "shutdown", ts01 },                        -- no --yes
        { "sessions", ts01, "--password", "x" },     -- secrets are not options
        { "sessions", "--hosts", TMP .. "/no-such-file" },
      } do
        local code, out, err = run(args, ADMIN)
        assert.equal(64, code, table.concat(args, " ") .. ": " .. err)
        assert.equal("", out)
        assert.matches("^Usage: termsrv", err)
        assert.matches("\ntermsrv: [^\n]+\n$", err)
      end
    end)

    it("a bad policy file is a usage error that names the problem", function()
      spit(TMP .. "/bad-policy.lua", "rules = { { select = { state = 'disc' }, action = 'explode' } }\n")
      local code, _, err = run({ "clean", ts01, "--policy", TMP .. "/bad-policy.lua" }, ADMIN)
      assert.equal(64, code)
      assert.matches("unknown action 'explode'", err)
    end)
  end)

  describe("--help", function()
    local COMMANDS = { "sessions", "users", "reset", "logoff", "disconnect", "message", "processes", "kill",
                       "clean", "free-slots", "doctor", "shutdown", "connect" }

    it("exists on every subcommand and exits 0", function()
      for _, c in ipairs(COMMANDS) do
        local code, out, err = run({ c, "--help" })
        assert.equal(0, code, c)
        assert.equal("", err)
        assert.matches("^Usage: termsrv " .. c:gsub("%-", "%%-"), out)
        assert.truthy(out:find("--format", 1, true), c)
      end
      local code, out = run({ "--help" })
      assert.equal(0, code)
      for _, c in ipairs(COMMANDS) do assert.truthy(out:find("\n   " .. c .. " ", 1, true), c) end
      assert.truthy(out:find("Exit codes: 0 all ok, 1 some hosts or sessions failed, 2 all failed, 64 usage",
        1, true))
    end)

    it("--version works from the checkout, also through a symlink and from another directory", function()
      local code, out = run({ "--version" })
      assert.equal(0, code)
      assert.matches("^termsrv %d+%.%d+", out)
      local link = TMP .. "/termsrv-link"
      local abs = BIN
      if abs:sub(1, 1) ~= "/" then
        local p = io.popen("pwd")
        abs = p:read("l") .. "/" .. BIN
        p:close()
      end
      os.execute("ln -sf " .. q(abs) .. " " .. q(link))
      local p = io.popen("cd / && " .. q(link) .. " --version 2>&1")
      assert.matches("^termsrv %d+%.%d+", p:read("a"))
      p:close()
    end)

    it("no command defines an option twice", function()
      for _, c in ipairs(cli.build_parser()._commands) do
        local seen = {}
        for _, o in ipairs(c._options) do
          for _, a in ipairs(o._aliases) do
            assert.is_nil(seen[a], c._name .. " " .. a)
            seen[a] = true
          end
        end
      end
    end)

    it("wins over missing arguments (-h with nothing else)", function()
      local code, out = run({ "reset", "-h" })
      assert.equal(0, code)
      assert.matches("Session ids given explicitly act at once", out)
    end)
  end)

  describe("hosts", function()
    it("takes positional hosts and --hosts files together, each host once", function()
      spit(TMP .. "/farm.txt", "127.0.0.1:" .. env.hosts[2].port .. " TS02\n")
      local code, out, err = run({ "users", ts01, "--hosts", TMP .. "/farm.txt", ts01, "--user", "bob" }, ADMIN)
      assert.equal(0, code)
      assert.matches("TS01 is given twice", err)
      assert.matches("\n TS01  bob .*\n TS02  bob ", out)
    end)

    it("-j N without termsrv.fleet runs one host at a time and says so", function()
      local fleet_installed = pcall(require, "termsrv.fleet")
      local code, out, err = run({ "sessions", ts01, ts02, "-j", "4" }, ADMIN)
      assert.equal(0, code)
      assert.matches("TS02  rdp%-tcp#7", out)
      if not fleet_installed then assert.matches("termsrv.fleet is not available; ran one host at a time", err) end
    end)
  end)

  describe("credentials", function()
    it("parses smbclient-style files", function()
      local c = assert(credentials.parse("# ops account\nusername = CORP\\ops\n; note\npassword =  p#ss w0rd \n"
        .. "domain=CORP\n"))
      assert.same({ user = "CORP\\ops", password = "p#ss w0rd", domain = "CORP" }, c)
      c = assert(credentials.parse("username = ops\nnthash = aad3b435b51404eeaad3b435b51404ee:" .. NTHASH_OPS:lower()))
      assert.equal(NTHASH_OPS, c.nthash)
      local _, err = credentials.parse("username = ops\npassword = secret-one\nnthash = 123\n")
      assert.equal("bad_credentials", err.code)
      assert.is_nil(tostring(err):find("secret-one", 1, true))
      _, err = credentials.parse("user: ops\n")
      assert.matches("line 1: expected 'key = value'", err.message)
      _, err = credentials.parse("passwd = x\n")
      assert.matches("unknown key 'passwd'", err.message)
    end)

    it("resolves field by field: command line, then environment, then TERMSRV_CREDENTIALS", function()
      spit(TMP .. "/a.cred", "username = A\\alice\npassword = pw-a\n", "600")
      spit(TMP .. "/b.cred", "username = bob\ndomain = B\nnthash = " .. NTHASH_OPS .. "\n", "600")
      local function vars(t) return function(k) return t[k] end end
      local c = assert(credentials.resolve{ getenv = vars{ TERMSRV_USER = "E\\eve", TERMSRV_PASSWORD = "pw-e" },
                                            prompt = false })
      assert.same({ user = "eve", domain = "E", password = "pw-e", source = "TERMSRV_PASSWORD" }, c)
      c = assert(credentials.resolve{ file = TMP .. "/a.cred", prompt = false,
                                      getenv = vars{ TERMSRV_USER = "E\\eve", TERMSRV_PASSWORD = "pw-e" } })
      assert.same({ "alice", "A", "pw-a" }, { c.user, c.domain, c.password })
      c = assert(credentials.resolve{ account = "ops", domain = "CORP", file = TMP .. "/a.cred", prompt = false,
                                      getenv = vars{} })
      assert.same({ "ops", "CORP", "pw-a" }, { c.user, c.domain, c.password })
      c = assert(credentials.resolve{ prompt = false, getenv = vars{ TERMSRV_CREDENTIALS = TMP .. "/b.cred" } })
      assert.same({ "bob", "B", NTHASH_OPS }, { c.user, c.domain, c.nthash })
      c = assert(credentials.resolve{ prompt = false, getenv = vars{ TERMSRV_CREDENTIALS = TMP .. "/b.cred",
                                                                    TERMSRV_PASSWORD = "pw-e" } })
      assert.same({ "bob", "pw-e" }, { c.user, c.password })
      c = assert(credentials.resolve{ kerberos = true, prompt = false, getenv = vars{ TERMSRV_USER = "ops@CORP" } })
      assert.same({ user = "ops", domain = "CORP", kerberos = true, source = "kerberos" }, c)
      local _, err = credentials.resolve{ prompt = false, getenv = vars{ TERMSRV_USER = "ops",
        TERMSRV_PASSWORD = "x", TERMSRV_NTHASH = NTHASH_OPS } }
      assert.equal("bad_credentials", err.code)
    end)

    it("takes account and password from the environment; DOMAIN\\user and user@domain", function()
      local code = run({ "users", ts01 }, { TERMSRV_USER = "ops@CORP", TERMSRV_PASSWORD = "Ops-Passw0rd" })
      assert.equal(0, code)
      code = run({ "users", ts01 }, { TERMSRV_USER = "ops", TERMSRV_DOMAIN = "CORP",
                                      TERMSRV_PASSWORD = "Ops-Passw0rd" })
      assert.equal(0, code)
      code = run({ "users", ts01, "-U", "ops", "-W", "CORP" }, { TERMSRV_PASSWORD = "Ops-Passw0rd" })
      assert.equal(0, code)
    end)

    it("accepts an NT hash instead of a password (environment and file)", function()
      local code, out = run({ "users", ts01 }, { TERMSRV_USER = "CORP\\ops", TERMSRV_NTHASH = NTHASH_OPS })
      assert.equal(0, code)
      assert.matches("carol", out)
      spit(TMP .. "/hash.cred", "username = CORP\\ops\nnthash = " .. NTHASH_OPS .. "\n", "600")
      code = run({ "users", ts01, "--credentials", TMP .. "/hash.cred" })
      assert.equal(0, code)
      code = run({ "users", ts01 }, { TERMSRV_CREDENTIALS = TMP .. "/hash.cred" })
      assert.equal(0, code)
      local _, err
      code, _, err = run({ "users", ts01 }, { TERMSRV_USER = "CORP\\ops", TERMSRV_NTHASH = "nothex" })
      assert.equal(2, code)
      assert.matches("32 hexadecimal digits", err)
    end)

    it("refuses a credentials file readable by group or others, with the fix", function()
      spit(TMP .. "/open.cred", "username = CORP\\ops\npassword = Ops-Passw0rd\n", "644")
      local code, out, err = run({ "users", ts01, "--credentials", TMP .. "/open.cred" })
      assert.equal(2, code)
      assert.equal("", out)
      assert.equal("termsrv: credentials: credentials file " .. TMP .. "/open.cred is readable by group and "
        .. "others (mode 0644); refusing to use it (hint: chmod 600 " .. TMP .. "/open.cred)\n", err)
      spit(TMP .. "/group.cred", "username = CORP\\ops\npassword = Ops-Passw0rd\n", "640")
      code, out, err = run({ "users", ts01 }, { TERMSRV_CREDENTIALS = TMP .. "/group.cred" })
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("readable by group %(mode 0640%)", err)
      assert.is_nil(err:find("Ops-Passw0rd", 1, true))
    end)

    it("a file named on the command line wins over the environment", function()
      spit(TMP .. "/good.cred", "username = CORP\\ops\npassword = Ops-Passw0rd\n", "600")
      local code = run({ "users", ts01, "--credentials", TMP .. "/good.cred" },
        { TERMSRV_USER = "CORP\\ops", TERMSRV_PASSWORD = "wrong" })
      assert.equal(0, code)
    end)

    it("without a terminal and without a secret, says where to put one", function()
      local code, _, err = run({ "users", ts01 }, { TERMSRV_USER = "CORP\\ops" })
      assert.equal(2, code)
      assert.matches("no password or NT hash for ops", err)
      assert.matches("TERMSRV_PASSWORD", err)
      code, _, err = run({ "users", ts01 }, {})
      assert.equal(2, code)
      assert.matches("no account name given", err)
    end)

    it("prompts on a real terminal without echo, and the password never shows", function()
      -- a pseudo-terminal driven like a person: wait for the question, then type
      local driver = TMP .. "/type-password.py"
      spit(driver, table.concat({
        "import os, pty, select, sys, time",
        "pid, fd = pty.fork()",
        "if pid == 0:",
        "    os.execvp(sys.argv[2], sys.argv[2:])",
        "buf, sent, deadline = b'', False, time.time() + 20",
        "while time.time() < deadline:",
        "    if select.select([fd], [], [], 0.1)[0]:",
        "        try:",
        "            data = os.read(fd, 4096)",
        "        except OSError:",
        "            break",
        "        if not data:",
        "            break",
        "        buf += data",
        "        if not sent and b'Password for' in buf:",
        "            os.write(fd, sys.argv[1].encode() + b'\\n')",
        "            sent = True",
        "_, status = os.waitpid(pid, 0)",
        "sys.stdout.buffer.write(buf)",
        "sys.exit(os.waitstatus_to_exitcode(status))",
      }, "\n") .. "\n")
      local cmd = table.concat({ "env", "-u", "TERMSRV_PASSWORD", "-u", "TERMSRV_NTHASH", "-u", "TERMSRV_CREDENTIALS",
        q("TERMSRV_USER=CORP\\ops"), "TZ=UTC", "/usr/bin/python3", q(driver), "Ops-Passw0rd", q(BIN), "users", q(ts01),
        "--user", "carol" }, " ")
      local p = assert(io.popen(cmd .. " </dev/null"))
      local out = p:read("a"):gsub("\r", "")
      local _, _, code = p:close()
      assert.equal(0, code, out)
      assert.matches("^Password for CORP\\ops: \n USERNAME", out)
      assert.matches("\n carol +5 +Disc", out)
      assert.is_nil(out:find("Ops-Passw0rd", 1, true))
    end)

    it("asks on the terminal when it can: the account with echo, the password without", function()
      local asked = {}
      local function prompt(label, echo)
        asked[#asked + 1] = { label = label, echo = echo }
        if echo then return "CORP\\ops" end
        return "Ops-Passw0rd"
      end
      local out, err = {}, {}
      local code = cli.main({ "users", ts01, "--user", "carol" }, { TZ = "UTC" },
        { stdout = { write = function(_, ...) for _, s in ipairs{ ... } do out[#out + 1] = s end end },
          stderr = { write = function(_, ...) for _, s in ipairs{ ... } do err[#err + 1] = s end end },
          prompt = prompt })
      assert.equal(0, code, table.concat(err))
      assert.same({ { label = "Account (DOMAIN\\user): ", echo = true },
                    { label = "Password for CORP\\ops: ", echo = false } }, asked)
      assert.matches("carol", table.concat(out))
      -- --no-prompt turns it off
      asked = {}
      code = cli.main({ "users", ts01, "--no-prompt" }, { TERMSRV_USER = "CORP\\ops" },
        { stdout = { write = function() end }, stderr = { write = function() end }, prompt = prompt })
      assert.equal(2, code)
      assert.same({}, asked)
    end)
  end)

  describe("in-process", function()
    local function capture()
      local buf = {}
      return buf, { write = function(_, ...) for _, s in ipairs{ ... } do buf[#buf + 1] = tostring(s) end end }
    end

    it("cli.main returns the exit code and writes to the given streams", function()
      local out, o = capture()
      local err, e = capture()
      local code = cli.main({ "sessions", ts01, "--format", "json", "--user", "carol" }, ADMIN,
        { stdout = o, stderr = e, prompt = false })
      assert.equal(0, code, table.concat(err))
      local rec = assert(dkjson.decode(table.concat(out)))
      assert.equal("carol", rec.user)
      assert.equal(5, rec.id)
      local _, o2 = capture()
      code = cli.main({ "sessions" }, ADMIN, { stdout = o2, stderr = e, prompt = false })
      assert.equal(64, code)
    end)
  end)
end)
