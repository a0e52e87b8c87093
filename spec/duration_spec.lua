local duration = require "termsrv.duration"

describe("termsrv.duration #unit", function()
  describe("parse()", function()
    local cases = {
      { "90m", 5400 }, { "8h", 28800 }, { "2d", 172800 }, { "1h30m", 5400 }, { "45s", 45 },
      { "1w", 604800 }, { "1d 12h", 129600 }, { "1H30M", 5400 }, { "  8h ", 28800 }, { "1.5h", 5400 },
      { ".5m", 30 }, { "4 hours", 14400 }, { "30 min", 1800 }, { "2 days 1 hr", 176400 },
      { "3600", 3600 }, { "0", 0 }, { "0s", 0 }, { "1d2h3m4s", 93784 },
    }
    for _, c in ipairs(cases) do
      it("reads " .. string.format("%q", c[1]), function()
        local v = duration.parse(c[1])
        assert.equal(c[2], v)
        assert.equal("integer", math.type(v))
      end)
    end

    it("takes numbers as seconds", function()
      assert.equal(60, duration.parse(60))
      assert.equal(2, duration.parse(1.6))
      assert.equal(0, duration.parse(0))
    end)

    it("rejects bad input with an error naming the value", function()
      local bad = { "8x", "", "h", "1h30", "30m1h", "1h1h", "-5m", "abc", "1 h 2", "8hourz", "1h 1hour" }
      for _, b in ipairs(bad) do
        local v, err = duration.parse(b)
        assert.is_nil(v, b)
        assert.equal("bad_duration", err.code)
        assert.truthy(err.message:find("'" .. b .. "'", 1, true), err.message)
      end
      local v, err = duration.parse(-1)
      assert.is_nil(v)
      assert.matches("negative", err.message)
      assert.is_nil((duration.parse(true)))
      assert.is_nil((duration.parse(0 / 0)))
      assert.is_nil((duration.parse(math.huge)))
    end)
  end)

  describe("check()", function()
    it("returns seconds", function() assert.equal(300, duration.check("5m", "grace")) end)
    it("raises naming the field and the value", function()
      assert.has_error(function() duration.check("5x", "grace") end,
        "grace: bad duration '5x': unknown unit 'x' (expected seconds or a duration like 45s, 90m, 8h, 2d, "
          .. "1h30m)")
    end)
  end)

  describe("format()", function()
    local cases = { { 0, "0s" }, { 45, "45s" }, { 60, "1m" }, { 5400, "1h30m" }, { 28800, "8h" },
                    { 172800, "2d" }, { 93784, "1d2h3m4s" }, { 3600.9, "1h" }, { -90, "-1m30s" } }
    for _, c in ipairs(cases) do
      it(tostring(c[1]) .. " -> " .. c[2], function() assert.equal(c[2], duration.format(c[1])) end)
    end
    it("keeps at most N units when asked", function()
      assert.equal("11h6m", duration.format(40000, 2))
      assert.equal("1d", duration.format(86460, 2))
      assert.equal("1h", duration.format(3601, 2))
    end)
    it("round-trips", function()
      for _, s in ipairs{ 1, 59, 61, 3599, 3600, 86399, 90061, 1234567 } do
        assert.equal(s, duration.parse(duration.format(s)))
      end
    end)
    it("raises on a non-number", function()
      assert.has_error(function() duration.format("1h") end, "duration.format: number expected, got string")
    end)
  end)
end)
