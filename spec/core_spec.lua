-- The core path end to end: termsrv.connect and host:sessions through the
-- real smbd to the simulated terminal server, on every Windows profile, and
-- every failure a user meets on the way in, each with its own code.
local sim = require "support.sim"
local termsrv = require "termsrv"

local env, port

local function connect(host, over)
  local opts = { host = "127.0.0.1", port = port[host], user = env.domain .. "\\" .. env.user,
                 password = env.password, timeout = 5, name = host }
  for k, v in pairs(over or {}) do opts[k] = v end
  return termsrv.connect(opts)
end

local function by_id(list)
  local t = {}
  for _, s in ipairs(list) do t[s.id] = s end
  return t
end

local function near(expected, actual, slack)
  assert(actual, "value missing")
  assert(actual >= expected and actual <= expected + (slack or 120),
    string.format("expected about %d, got %d", expected, actual))
end

setup(function()
  env = sim.start{ config = "spec/fixtures/sim/core.lua" }
  port = env.ports
end)
teardown(function() sim.stop(env) end)

describe("listing sessions", function()
  local h, list
  setup(function()
    h = assert(connect("TS01"))
    list = assert(h:sessions())
  end)
  teardown(function() h:close() end)

  it("returns the users, stations and states qwinsta shows", function()
    local s = by_id(list)
    assert.same({ "rdp-tcp#42", "foo", "CORP", "active" }, { s[2].name, s[2].user, s[2].domain, s[2].state })
    assert.same({ "", "alice", "disconnected" }, { s[3].name, s[3].user, s[3].state })
    assert.equals("carol", s[5].user)
    assert.equals("console", s[1].kind)
    for _, r in ipairs(list) do assert.is_true(termsrv.record.validate(r)) end
  end)

  it("hides the services session and listeners unless all=true", function()
    local s = by_id(list)
    assert.is_nil(s[0])
    assert.is_nil(s[65536])
    local all = by_id(assert(h:sessions{ all = true, times = false }))
    assert.equals("services", all[0].kind)
    assert.equals("listener", all[65536].kind)
    assert.equals("listen", all[65536].state)
  end)

  it("computes idle and disconnected ages on the server's clock, three hours ahead of ours", function()
    local s = by_id(list)
    near(3 * 3600, s[2].server_time - os.time(), 10)
    assert.equals("server", s[2].clock)
    near(3 * 60, s[2].idle)
    near(20 * 60, s[3].disconnected)
    near(9 * 3600, s[4].disconnected)
    near(3 * 86400, s[5].disconnected)
    near(2 * 3600, s[6].idle)
    near(5 * 3600, s[2].server_time - s[2].logon_time)
    assert.is_nil(s[2].disconnect_time)  -- never disconnected: Windows reports no time
  end)

  it("tells locked desktops when asked (one more call per session)", function()
    local s = by_id(assert(h:sessions{ locked = true }))
    assert.is_true(s[6].locked)
    assert.is_false(s[2].locked)
  end)

  it("prints a record as a qwinsta row and a listing as a qwinsta table", function()
    local s = by_id(list)
    assert.matches("rdp%-tcp#42", tostring(s[2]))
    local text = tostring(list)
    assert.matches("SESSIONNAME%s+USERNAME%s+ID%s+STATE", text)
    assert.matches("rdp%-tcp#42%s+foo%s+2%s+Active", text)
  end)

  it("reads one session by id, and says when there is none", function()
    local r = assert(h:session(4))
    assert.same({ 4, "bob", "disconnected" }, { r.id, r.user, r.state })
    local none, err = h:session(4242)
    assert.is_nil(none)
    assert.equals("session_not_found", err.code)
    assert.equals("TS01", err.host)
  end)

  it("adds the client name and address when asked", function()
    local s = by_id(assert(h:sessions{ client = true }))
    assert.same({ "LAPTOP-FOO", "10.10.20.42" }, { s[2].client, s[2].address })
  end)

  it("lists without per-session calls when times are not wanted (one RPC call)", function()
    sim.clear_log(env)
    local l = assert(h:sessions{ times = false })
    assert.equals("all_sessions", l.method)
    assert.equals(1, #sim.calls(env, { event = "call", host = "TS01" }))
    assert.is_nil(l[1].idle)
  end)
end)

describe("Windows versions", function()
  it("2008: enumerates with RpcOpenEnum/RpcGetEnumResult and reads details without opnum 17", function()
    local h <close> = assert(connect("TS08"))
    local list = assert(h:sessions())
    assert.equals("enum", list.method)
    assert.equals("foo", by_id(list)[2].user)
    -- details through LSM only: opnum 17 is refused, opnum 12 answers
    local r = assert(h:session(3, { source = "auto" }))
    assert.equals("alice", r.user)
    sim.clear_log(env)
    local r12 = assert(h:session(4, { source = "lsm_ex" }) or h:session(4, { source = "lsm" }))
    assert.equals("bob", r12.user)
  end)

  it("2008: falls back from opnum 17 to opnum 12 and remembers it", function()
    local h <close> = assert(connect("TS08"))
    local conn = h._c
    local info = assert(conn:info(3, "auto"))
    assert.equals("legacy", info.source)
    local none, err = conn:info(3, "lsm_ex")
    assert.is_nil(none)
    assert.equals("not_supported", err.code)
    info = assert(conn:info(3, "lsm"))
    assert.equals("alice", info.user)
  end)

  it("legacy-only (2003): lists through RpcWinStationEnumerate, users from WinStationInformation", function()
    local h <close> = assert(connect("TS03"))
    local list = assert(h:sessions())
    assert.equals("legacy", list.method)
    local s = by_id(list)
    assert.same({ "foo", "active" }, { s[2].user, s[2].state })
    assert.same({ "alice", "disconnected" }, { s[3].user, s[3].state })
    assert.is_false(h:pipes().lsm)
  end)

  it("RDP disabled: listing still works through LSM; client data and legacy calls say rdp_disabled", function()
    local h <close> = assert(connect("TSRD"))
    local list = assert(h:sessions{ client = true })
    local s = by_id(list)
    assert.equals("foo", s[2].user)
    assert.equals("local", s[2].clock) -- no legacy pipe: no server clock
    assert.is_not_nil(s[2].logon_time)
    assert.is_nil(s[2].client)
    local ok, err = h:probe("legacy")
    assert.is_nil(ok)
    assert.equals("rdp_disabled", err.code)
    assert.matches("Remote Desktop", err.hint)
  end)

  it("2022: the one-call listing", function()
    local h <close> = assert(connect("TS22"))
    assert.equals("all_sessions", assert(h:sessions()).method)
  end)
end)

describe("failures on the way in", function()
  local function fails(code, host, over)
    local h, err = connect(host, over)
    if h then
      local list
      list, err = h:sessions()
      h:close()
      assert.is_nil(list, "expected a failure")
    end
    assert.equals(code, err.code)
    assert.is_string(err.hint)
    assert.is_truthy(tostring(err):find(err.host or "", 1, true))
    return err
  end

  it("refused port", function()
    local err = fails("connection_refused", "TS01", { port = 1 })
    assert.matches("445", err.hint)
  end)

  it("a host that accepts TCP but never speaks SMB times out within the timeout", function()
    local socket = require "socket"
    local silent = assert(socket.bind("127.0.0.1", 0))
    local _, p = silent:getsockname()
    local t0 = socket.gettime()
    fails("timeout", "TS01", { port = tonumber(p), timeout = 1 })
    assert.is_true(socket.gettime() - t0 < 4)
    silent:close()
  end)

  it("a host with no route to it", function()
    -- deterministic only inside a network namespace of our own, with no
    -- route but loopback: needs root and iproute2 (as CI has), and the
    -- plain build (a sanitizer build cannot load without its preload)
    local core_so = "build/termsrv/core.so"
    if not io.open(core_so) or not os.execute("[ \"$(id -u)\" = 0 ] && command -v ip >/dev/null") then
      pending("needs root, iproute2 and " .. core_so)
      return
    end
    local ns = "tsrv" .. tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
    assert(os.execute("ip netns add " .. ns))
    local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS ip netns exec " .. ns .. " lua5.4 -e '"
      .. "package.cpath=\"./build/?.so;\"..package.cpath package.path=\"./lua/?.lua;./lua/?/init.lua;\"..package.path "
      .. "local _, e = require(\"termsrv\").connect{host=\"198.51.100.7\", user=\"a\", password=\"b\", "
      .. "connect_timeout=2} print(e.code, e.hint)' 2>&1")
    local out = p:read("a")
    p:close()
    os.execute("ip netns del " .. ns)
    assert.matches("^host_unreachable\t.*445", out)
  end)

  it("a name that does not resolve", function()
    fails("name_not_resolved", "TS01", { host = "no-such-host.invalid" })
  end)

  it("wrong password and unknown user: logon_failure (Windows does not tell them apart)", function()
    local err = fails("logon_failure", "TS01", { password = "Not-The-Pw-9x" })
    assert.is_nil(tostring(err):find("Not-The-Pw-9x", 1, true))
    fails("logon_failure", "TS01", { user = "nobody" })
  end)

  it("Kerberos without a ticket says so, quietly; with a password and rpc_auth = privacy it falls back to NTLM", function()
    -- no KDC here: what can be checked is that the flag reaches libsmbclient,
    -- the failure names Kerberos, and libsmbclient's own notices stay off stderr
    local script = string.format([[
      package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
      package.cpath = "./build/?.so;" .. package.cpath
      local t = require "termsrv"
      local _, e = t.connect{ host = "127.0.0.1", port = %d, user = %q, kerberos = true,
                               rpc_auth = "none", timeout = 3 }
      io.write(e.code, "|", e.message, "\n")
      local h = assert(t.connect{ host = "127.0.0.1", port = %d, user = %q, kerberos = true,
                                   password = %q, rpc_auth = "privacy", timeout = 3 })
      io.write(#assert(h:sessions{ times = false }), "\n")]], port.TS01, env.domain .. "\\" .. env.user,
      port.TS01, env.domain .. "\\" .. env.user, env.password)
    local errpath = os.tmpname()
    local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS KRB5CCNAME=/nonexistent/cc TERMSRV_BUILD=build "
      .. "lua5.4 - 2>" .. errpath .. " <<'EOS'\n" .. script .. "\nEOS")
    local out = p:read("a")
    p:close()
    local errf = io.open(errpath)
    local stderr = errf:read("a")
    errf:close()
    os.remove(errpath)
    assert.matches("^logon_failure|[^\n]*Kerberos logon refused[^\n]*kinit", out)
    assert.matches("\n%d+\n$", out)
    assert.equals("", stderr)
  end)

  it("a non-admin sees only its own sessions", function()
    local h <close> = assert(connect("TS01", { user = env.nonadmin_user, password = env.nonadmin_password }))
    local list = assert(h:sessions())
    assert.equals(1, #list)
    assert.equals(env.nonadmin_user, list[1].user)
  end)

  it("bind refused", function()
    fails("bind_refused", "TSNAK")
  end)

  it("an RPC fault, with the raw status and its name", function()
    local err = fails("rpc_fault", "TSFLT")
    assert.equals(0x6F7, err.status)
    assert.equals("RPC_X_BAD_STUB_DATA", err.status_name)
  end)

  it("a malformed response", function()
    fails("malformed_response", "TSBAD")
  end)

  it("each failure is one readable line naming host, raw code and fix", function()
    local err = fails("bind_refused", "TSNAK")
    local line = tostring(err)
    assert.is_nil(line:find("\n"))
    assert.matches("^TSNAK: ", line)
    assert.matches("%[", line)
    assert.matches("hint: ", line)
  end)
end)

describe("handles", function()
  it("close themselves with <close> and can be closed twice", function()
    local h = assert(connect("TS01"))
    do local _ <close> = h end
    h:close()
    assert.has_error(function() h:sessions() end)
    assert.matches("closed", tostring(h))
  end)
end)

describe("bad input", function()
  it("raises at the caller for malformed credentials, before anything is sent", function()
    local base = { host = "127.0.0.1", port = 1, user = "ops" }
    local function with(t) local o = {} for k, v in pairs(base) do o[k] = v end for k, v in pairs(t) do o[k] = v end return o end
    assert.has_error(function() termsrv.connect(with{ nthash = "abc" }) end, "termsrv.connect: nthash must be 32 hexadecimal digits")
    assert.has_error(function() termsrv.connect(with{ nthash = ("g"):rep(32) }) end)
    assert.has_error(function() termsrv.connect(with{ password = "\255\254" }) end, "termsrv.connect: password is not valid UTF-8")
    assert.has_error(function() termsrv.connect(with{ password = ("x"):rep(300) }) end)
    assert.has_error(function() termsrv.connect(with{ password = "a", nthash = ("0"):rep(32) }) end)
    assert.has_error(function() termsrv.connect(with{ pasword = "typo" }) end,
      "termsrv.connect: unknown option 'pasword' (options: connect_timeout, detail_connections, domain, host, "
      .. "kerberos, max_frag, name, nthash, password, port, rpc_auth, timeout, user)")
    assert.has_error(function() termsrv.connect{ user = "ops", password = "x" } end, "termsrv.connect: 'host' is required")
  end)
end)
