rockspec_format = "3.0"
package = "termsrv"
version = "scm-1"
-- `luarocks make` builds from a checkout and ignores `source`; `luarocks
-- build termsrv-scm-1.rockspec` clones main. A release's rockspec is this
-- file with a version and a tag, made by `make rockspec VERSION=X.Y.Z`
-- (luarocks new_version ... --tag=vX.Y.Z) in rockspecs/ (README "Install").
source = { url = "git+https://github.com/termsrv/termsrv.git" }
description = {
  summary = "List and clean up Remote Desktop sessions on Windows hosts from Linux",
  detailed = [[
    qwinsta, quser, rwinsta, logoff, tsdiscon, tscon, msg, query process,
    tskill and shutdown /m from Lua 5.4: a C core speaks MS-TSTS over SMB
    named pipes (libsmbclient, NTLM packet privacy); a Lua layer adds
    cleanup policies with dry runs, reports, an audit log and fleet sweeps.
  ]],
  license = "MIT",
}
-- luarocks cannot see Debian's Lua packages: with lua-dkjson and
-- lua-argparse installed by apt, build with --deps-mode=none (README "Install").
dependencies = { "lua >= 5.4, < 5.5", "dkjson >= 2.5", "argparse >= 0.7", "luafilesystem >= 1.8",
                 "luasystem >= 0.2" }
external_dependencies = {
  SMBCLIENT = { header = "samba-4.0/libsmbclient.h", library = "smbclient" },
  NETTLE = { header = "nettle/arcfour.h", library = "nettle" },
  GSSAPI = { header = "gssapi/gssapi_ext.h", library = "gssapi_krb5" },   -- MIT krb5 (libkrb5-dev)
}
build = {
  type = "builtin",
  modules = {
    ["termsrv.core"] = {
      sources = { "src/errors.c", "src/ndr.c", "src/ntlmssp.c", "src/rpcsec.c", "src/spnego.c",
                  "src/krb5sec.c", "src/dcerpc.c", "src/smbpipe.c", "src/rpcpipe.c",
                  "src/tsts.c", "src/lsat.c", "src/sandbox.c", "src/lua_core.c" },
      defines = { "_DEFAULT_SOURCE" },
      libraries = { "smbclient", "nettle", "gssapi_krb5" },
      incdirs = { "$(SMBCLIENT_INCDIR)/samba-4.0", "$(NETTLE_INCDIR)", "$(GSSAPI_INCDIR)" },
      libdirs = { "$(SMBCLIENT_LIBDIR)", "$(NETTLE_LIBDIR)", "$(GSSAPI_LIBDIR)" },
    },
    ["termsrv"] = "lua/termsrv/init.lua",
    ["termsrv.error"] = "lua/termsrv/error.lua",
    ["termsrv.host"] = "lua/termsrv/host.lua",
    ["termsrv.control"] = "lua/termsrv/control.lua",
    ["termsrv.processes"] = "lua/termsrv/processes.lua",
    ["termsrv.record"] = "lua/termsrv/record.lua",
    ["termsrv.duration"] = "lua/termsrv/duration.lua",
    ["termsrv.sandbox"] = "lua/termsrv/sandbox.lua",
    ["termsrv.select"] = "lua/termsrv/select.lua",
    ["termsrv.policy"] = "lua/termsrv/policy.lua",
    ["termsrv.plan"] = "lua/termsrv/plan.lua",
    ["termsrv.report"] = "lua/termsrv/report.lua",
    ["termsrv.audit"] = "lua/termsrv/audit.lua",
    ["termsrv.check"] = "lua/termsrv/check.lua",
    ["termsrv.json"] = "lua/termsrv/json.lua",
    ["termsrv.need"] = "lua/termsrv/need.lua",
    ["termsrv.help"] = "lua/termsrv/help.lua",
    ["termsrv.helpdata"] = "lua/termsrv/helpdata.lua",
    ["termsrv.fleet"] = "lua/termsrv/fleet.lua",
    ["termsrv.targets"] = "lua/termsrv/targets.lua",
    ["termsrv.progress"] = "lua/termsrv/progress.lua",
    ["termsrv.serialize"] = "lua/termsrv/serialize.lua",
    ["termsrv.text"] = "lua/termsrv/text.lua",
    ["termsrv.luv"] = "lua/termsrv/luv.lua",
    ["termsrv.cqueues"] = "lua/termsrv/cqueues.lua",
    ["termsrv.monitor"] = "lua/termsrv/monitor.lua",
    ["termsrv.cli"] = "lua/termsrv/cli.lua",
    ["termsrv.cli.util"] = "lua/termsrv/cli/util.lua",
    ["termsrv.cli.options"] = "lua/termsrv/cli/options.lua",
    ["termsrv.cli.output"] = "lua/termsrv/cli/output.lua",
    ["termsrv.cli.hosts"] = "lua/termsrv/cli/hosts.lua",
    ["termsrv.cli.audit"] = "lua/termsrv/cli/audit.lua",
    ["termsrv.cli.plans"] = "lua/termsrv/cli/plans.lua",
    ["termsrv.cli.stop"] = "lua/termsrv/cli/stop.lua",
    ["termsrv.cli.commands.listings"] = "lua/termsrv/cli/commands/listings.lua",
    ["termsrv.cli.commands.sessions"] = "lua/termsrv/cli/commands/sessions.lua",
    ["termsrv.cli.commands.processes"] = "lua/termsrv/cli/commands/processes.lua",
    ["termsrv.cli.commands.policies"] = "lua/termsrv/cli/commands/policies.lua",
    ["termsrv.cli.commands.doctor"] = "lua/termsrv/cli/commands/doctor.lua",
    ["termsrv.cli.commands.shutdown"] = "lua/termsrv/cli/commands/shutdown.lua",
    ["termsrv.cli.commands.monitor"] = "lua/termsrv/cli/commands/monitor.lua",
    ["termsrv.doctor"] = "lua/termsrv/doctor.lua",
    ["termsrv.credentials"] = "lua/termsrv/credentials.lua",
    -- fork/poll/wait for fleet sweeps: its own module, no libsmbclient
    ["termsrv.proc"] = { sources = { "src/proc.c" }, defines = { "_DEFAULT_SOURCE" } },
  },
  install = { bin = { termsrv = "bin/termsrv" } },
}
test = { type = "command", command = "make test" }
