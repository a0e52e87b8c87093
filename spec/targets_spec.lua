-- What a target, a hosts file or a JSON host list stands for.
local targets = require "termsrv.targets"

describe("termsrv.targets #unit", function()
  it("parses ADDRESS[:PORT] and LABEL=ADDRESS[:PORT], with a default port", function()
    assert.same({ host = "ts01", port = 445, name = "ts01" }, targets.parse_host("ts01", 445))
    assert.same({ host = "10.0.0.5", port = 4451, name = "10.0.0.5:4451" }, targets.parse_host("10.0.0.5:4451", 445))
    assert.same({ host = "10.0.0.5", port = 4451, name = "TS05" }, targets.parse_host("TS05=10.0.0.5:4451"))
    assert.same({ host = "::1", port = 4451, name = "[::1]:4451" }, targets.parse_host("[::1]:4451"))
    assert.same({ host = "ts01", name = "ts01" }, targets.parse_host("ts01"))
    assert.is_nil(targets.parse_host("a/b"))
    assert.matches("port must be an integer from 1 to 65535", select(2, targets.parse_host("ts01:99999")))
  end)

  it("parses hosts files: comments, blank lines, labels, CRLF, JSON", function()
    assert.same({
      { host = "ts01", name = "ts01" },
      { host = "10.0.0.5", port = 4451, name = "10.0.0.5:4451" },
      { host = "fe80::1", port = 445, name = "[fe80::1]:445" },
      { host = "ts02.corp.example.com", name = "ts02.corp.example.com" },
    }, targets.parse_hosts("ts01\n  10.0.0.5:4451  # lab\n\n# ts99\n[fe80::1]:445\r\nts02.corp.example.com"))
    assert.same({}, targets.parse_hosts("# nothing\n\n"))
    assert.same({ { host = "ts01", port = 445, name = "ts01" }, { host = "ts02", port = 4451, name = "TS02" },
                  { host = "10.1.1.1", port = 445, name = "X" } },
      targets.parse_hosts("# farm\nts01\n\nts02:4451   TS02  # the second\nX=10.1.1.1\n", nil, 445))
    assert.same({ { host = "ts01", port = 445, name = "ts01" }, { host = "127.0.0.1", port = 12, name = "B" } },
      targets.parse_hosts('[ "ts01", {"name": "B", "address": "127.0.0.1", "port": 12} ]', nil, 445))
    assert.equal("farm.txt:2: bad host 'bad/host'", select(2, targets.parse_hosts("ok\nbad/host\n", "farm.txt")))
    assert.matches("hosts:1: port must be", select(2, targets.parse_hosts("ts01:99999")))
    assert.matches("cannot read hosts file", select(2, targets.read_hosts("/nonexistent/hosts")))
  end)

  it("expands CIDR blocks and numeric ranges, in hosts files and targets", function()
    assert.same({ "10.0.0.1", "10.0.0.2" }, targets.expand("10.0.0.0/30"))
    assert.same({ "10.0.0.4:4451", "10.0.0.5:4451" }, targets.expand("10.0.0.4/31:4451"))
    assert.same({ "10.0.0.9" }, targets.expand("10.0.0.9/32"))
    assert.equal(14, #targets.expand("192.168.1.0/28"))
    assert.same({ "ts08.corp", "ts09.corp", "ts10.corp" }, targets.expand("ts[08-10].corp"))
    assert.same({ "ts8", "ts9", "ts10" }, targets.expand("ts[8-10]"))
    assert.same({ "r1a1", "r1a2", "r2a1", "r2a2" }, targets.expand("r[1-2]a[1-2]"))
    assert.same({ "[fe80::1]:445" }, targets.expand("[fe80::1]:445"))
    assert.same({ "ts01" }, targets.expand("ts01"))
    for _, bad in ipairs{ "10.0.0.0/33", "300.0.0.0/24", "10.0.0.0/8", "ts[9-1]", "ts[1-2", "ts[1-99999]",
                          "L=ts[1-2]" } do
      local list, why = targets.expand(bad)
      assert.is_nil(list, bad)
      assert.is_string(why, bad)
    end
    local list = assert(targets.parse_hosts("ts[1-2]  # two\n10.0.0.0/31 \n"))
    assert.same({ "ts1", "ts2", "10.0.0.0", "10.0.0.1" }, { list[1].name, list[2].name, list[3].name, list[4].name })
    assert.matches("hosts:1: a label names one host", select(2, targets.parse_hosts("ts[1-2] LABEL\n")))
  end)

  it("gives the specs of one target, with the default port", function()
    assert.same({ { host = "ts1", port = 445, name = "ts1" }, { host = "ts2", port = 445, name = "ts2" } },
      targets.specs("ts[1-2]", 445))
    assert.same({ { host = "10.0.0.5", port = 4451, name = "A" } }, targets.specs("10.0.0.5:4451", 445, "A"))
    assert.matches("a label names one host, not 2", select(2, targets.specs("ts[1-2]", 445, "A")))
    assert.matches("bad host 'a/b'", select(2, targets.specs("a/b")))
  end)
end)
