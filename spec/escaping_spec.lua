-- Server strings cannot reach the terminal raw, nor a spreadsheet as a
-- formula. A hostile host -- or an RDP client that picks its own client
-- name -- controls user, station and client names: an ESC sequence in one
-- of them must not clear the admin's screen or hide rows. Runs bin/termsrv
-- against the simulator with such names.
local sim = require "support.sim"
local support = require "support.cli"
local dkjson = require "dkjson"
local text = require "termsrv.text"

local ADMIN = support.ADMIN
local TMP = support.scratch()
local run = support.runner{ unset = support.TERMSRV_VARS, set = { "TZ=UTC", "HOME=" .. TMP } }

local CLEAR = "\27[2J\27]0;owned\7"        -- clear the screen, retitle the window
local CSI8 = "\194\155" .. "8m"            -- C1 CSI (U+009B) as UTF-8: hide what follows
local RLO = "\226\128\174"                 -- U+202E RIGHT-TO-LEFT OVERRIDE
local RAW = { "\27", "\7", "\194\155", RLO }

local function has_raw(s)
  for _, r in ipairs(RAW) do if s:find(r, 1, true) then return r end end
  return nil
end

describe("server strings on the terminal", function()
  local env, host

  setup(function()
    env = sim.start{ config = "spec/fixtures/sim/full.lua" }
    local h = env.hosts[1]
    host = "TS01=127.0.0.1:" .. h.port
    -- a client build: the simulator reports client data only for sessions an RDP client made
    local function client(id, name)
      sim.ctl(env, "set-session", h.name, id, dkjson.encode{ client_name = name, client_build = 19041,
                                                             client_address = "10.0.0.9" })
    end
    client(3, "PC" .. CLEAR .. "X")
    sim.ctl(env, "set-session", h.name, 2, dkjson.encode{ name = "rdp" .. CSI8 .. "-tcp#1" })
    client(4, '=HYPERLINK("x")') -- client names hold at most 20 characters
    client(5, "gpj." .. RLO .. "exe")
  end)
  teardown(function()
    sim.stop(env)
    support.rmdir(TMP)
  end)

  it("tables show control and reordering characters as escapes, aligned", function()
    for _, args in ipairs{ { "sessions", host, "--client" }, { "sessions", host, "--all" },
                           { "users", host } } do
      local code, out, err = run(args, ADMIN)
      assert.equal(0, code, err)
      assert.is_nil(has_raw(out), table.concat(args, " "))
      assert.is_nil(has_raw(err))
    end
    local _, out = run({ "sessions", host, "--client" }, ADMIN)
    assert.truthy(out:find("PC\\x1b[2J\\x1b]0;owned\\x07X", 1, true), out)
    assert.truthy(out:find("gpj.\\u{202e}exe", 1, true), out)
    -- the escaped cells are measured as printed: every row's ID ends under the heading's
    local head = out:match("^[^\n]+")
    local _, id_end = head:find("ID")
    for line in out:gmatch("\n([^\n]+)") do
      assert.matches("^%d $", line:sub(id_end, id_end + 1), line)
    end
  end)

  it("CSV cells are escaped and cannot start a formula; JSON keeps the exact name", function()
    local code, out = run({ "sessions", host, "--client", "--format", "csv" }, ADMIN)
    assert.equal(0, code)
    assert.is_nil(has_raw(out))
    assert.truthy(out:find([[,"'=HYPERLINK(""x"")",]], 1, true), out)
    code, out = run({ "sessions", host, "--client", "--format", "json" }, ADMIN)
    assert.equal(0, code)
    assert.is_nil(has_raw(out)) -- JSON escapes them itself (\u001b, \u009b, \u202e)
    local names = {}
    for line in out:gmatch("[^\n]+") do
      local r = dkjson.decode(line)
      if r.type ~= "host" then names[r.id] = r.client end
    end
    assert.equal("PC" .. CLEAR .. "X", names[3])
    assert.equal("gpj." .. RLO .. "exe", names[5])
  end)

  it("errors and records print escaped (the REPL, diagnostics)", function()
    local errors = require "termsrv.error"
    local record = require "termsrv.record"
    local e = errors.new{ code = "session_changed", host = "TS01",
                          message = "session 6 is now da" .. CLEAR .. "ve" }
    assert.is_nil(has_raw(tostring(e)))
    assert.matches("da\\x1b%[2J", tostring(e))
    local r = record.session{ host = "TS01", id = 6, user = "da" .. CSI8 .. "ve", state = "active" }
    assert.is_nil(has_raw(tostring(r)))
  end)
end)

describe("termsrv.text", function()
  it("escapes C0, DEL, C1, direction overrides and bytes that are not UTF-8; leaves the rest", function()
    assert.equal("a\\x1b[31mb\\x7f", text.printable("a\27[31mb\127"))
    assert.equal("\\x9b1m", text.printable("\194\1551m"))
    assert.equal("x\\u{202e}y\\u{2066}", text.printable("x" .. RLO .. "y\226\129\166"))
    assert.equal("\\xff\\xfeok", text.printable("\255\254ok"))
    assert.equal("CORP\\Åsa 日本", text.printable("CORP\\Åsa 日本"))
    assert.equal(5, text.printable(5))
    assert.equal("a\nb\\x1b", text.printable_lines("a\nb\27"))
  end)

  it("makes formula-leading CSV cells inert, not numbers", function()
    assert.equal("'=1+1", text.csv_inert("=1+1"))
    assert.equal("'@SUM(A1)", text.csv_inert("@SUM(A1)"))
    assert.equal("'+cmd", text.csv_inert("+cmd"))
    assert.equal("-5", text.csv_inert("-5"))
    assert.equal("-", text.csv_inert("-"))
    assert.equal("plain", text.csv_inert("plain"))
  end)
end)
