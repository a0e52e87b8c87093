rockspec_format = "3.0"
package = "termsrv"
version = "0.1.0-1"
source = {
   url = "git+https://github.com/termsrv/termsrv.git",
   tag = "v0.1.0"
}
description = {
   summary = "List and clean up Remote Desktop sessions on Windows hosts from Linux",
   detailed = [[
    qwinsta, quser, rwinsta, logoff, tsdiscon, tscon, msg, query process,
    tskill and shutdown /m from Lua 5.4: a C core speaks MS-TSTS over SMB
    named pipes (libsmbclient, NTLM packet privacy); a Lua layer adds
    cleanup policies with dry runs, reports, an audit log and fleet sweeps.
  ]],
   license = "MIT"
}
dependencies = {
   "lua >= 5.4, < 5.5",
   "dkjson >= 2.5",
   "argparse >= 0.7",
   "luafilesystem >= 1.8",
   "luasystem >= 0.2"
}
external_dependencies = {
   GSSAPI = {
      header = "gssapi/gssapi_ext.h",
      library = "gssapi_krb5"
   },
   NETTLE = {
      header = "nettle/arcfour.h",
      library = "nettle"
   },
   SMBCLIENT = {
      header = "samba-4.0/libsmbclient.h",
      library = "smbclient"
   }
}
build = {
   type = "builtin",
   modules = {
      termsrv = "lua/termsrv/init.lua",
      ["termsrv.audit"] = "lua/termsrv/audit.lua",
      ["termsrv.check"] = "lua/termsrv/check.lua",
      ["termsrv.cli"] = "lua/termsrv/cli.lua",
      ["termsrv.cli.audit"] = "lua/termsrv/cli/audit.lua",
      ["termsrv.cli.commands.doctor"] = "lua/termsrv/cli/commands/doctor.lua",
      ["termsrv.cli.commands.listings"] = "lua/termsrv/cli/commands/listings.lua",
      ["termsrv.cli.commands.monitor"] = "lua/termsrv/cli/commands/monitor.lua",
      ["termsrv.cli.commands.policies"] = "lua/termsrv/cli/commands/policies.lua",
      ["termsrv.cli.commands.processes"] = "lua/termsrv/cli/commands/processes.lua",
      ["termsrv.cli.commands.sessions"] = "lua/termsrv/cli/commands/sessions.lua",
      ["termsrv.cli.commands.shutdown"] = "lua/termsrv/cli/commands/shutdown.lua",
      ["termsrv.cli.hosts"] = "lua/termsrv/cli/hosts.lua",
      ["termsrv.cli.options"] = "lua/termsrv/cli/options.lua",
      ["termsrv.cli.output"] = "lua/termsrv/cli/output.lua",
      ["termsrv.cli.plans"] = "lua/termsrv/cli/plans.lua",
      ["termsrv.cli.stop"] = "lua/termsrv/cli/stop.lua",
      ["termsrv.cli.util"] = "lua/termsrv/cli/util.lua",
      ["termsrv.control"] = "lua/termsrv/control.lua",
      ["termsrv.processes"] = "lua/termsrv/processes.lua",
      ["termsrv.core"] = {
         defines = {
            "_DEFAULT_SOURCE"
         },
         incdirs = {
            "$(SMBCLIENT_INCDIR)/samba-4.0",
            "$(NETTLE_INCDIR)",
            "$(GSSAPI_INCDIR)"
         },
         libdirs = {
            "$(SMBCLIENT_LIBDIR)",
            "$(NETTLE_LIBDIR)",
            "$(GSSAPI_LIBDIR)"
         },
         libraries = {
            "smbclient",
            "nettle",
            "gssapi_krb5"
         },
         sources = {
            "src/errors.c",
            "src/ndr.c",
            "src/ntlmssp.c",
            "src/rpcsec.c",
            "src/spnego.c",
            "src/krb5sec.c",
            "src/dcerpc.c",
            "src/smbpipe.c",
            "src/rpcpipe.c",
            "src/tsts.c",
            "src/lsat.c",
            "src/sandbox.c",
            "src/lua_core.c"
         }
      },
      ["termsrv.cqueues"] = "lua/termsrv/cqueues.lua",
      ["termsrv.credentials"] = "lua/termsrv/credentials.lua",
      ["termsrv.doctor"] = "lua/termsrv/doctor.lua",
      ["termsrv.duration"] = "lua/termsrv/duration.lua",
      ["termsrv.error"] = "lua/termsrv/error.lua",
      ["termsrv.fleet"] = "lua/termsrv/fleet.lua",
    ["termsrv.targets"] = "lua/termsrv/targets.lua",
      ["termsrv.help"] = "lua/termsrv/help.lua",
      ["termsrv.helpdata"] = "lua/termsrv/helpdata.lua",
      ["termsrv.host"] = "lua/termsrv/host.lua",
      ["termsrv.json"] = "lua/termsrv/json.lua",
      ["termsrv.luv"] = "lua/termsrv/luv.lua",
      ["termsrv.monitor"] = "lua/termsrv/monitor.lua",
      ["termsrv.need"] = "lua/termsrv/need.lua",
      ["termsrv.plan"] = "lua/termsrv/plan.lua",
      ["termsrv.policy"] = "lua/termsrv/policy.lua",
      ["termsrv.proc"] = {
         defines = {
            "_DEFAULT_SOURCE"
         },
         sources = {
            "src/proc.c"
         }
      },
      ["termsrv.progress"] = "lua/termsrv/progress.lua",
      ["termsrv.record"] = "lua/termsrv/record.lua",
      ["termsrv.report"] = "lua/termsrv/report.lua",
      ["termsrv.sandbox"] = "lua/termsrv/sandbox.lua",
      ["termsrv.select"] = "lua/termsrv/select.lua",
      ["termsrv.serialize"] = "lua/termsrv/serialize.lua",
      ["termsrv.text"] = "lua/termsrv/text.lua"
   },
   install = {
      bin = {
         termsrv = "bin/termsrv"
      }
   }
}
test = {
   type = "command",
   command = "make test"
}
