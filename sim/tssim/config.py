"""Reading, completing and checking a simulator config (Lua or JSON).

A Lua config is a chunk returning a table; it is turned into JSON by
lua5.4 with dkjson (the project's own JSON library), so both formats reach
the simulator as the same dict.  normalize() fills every default, checks
the values and picks free ports; the daemon then only reads the result.
"""

import json
import random
import socket
import subprocess

from . import world as W

LUA_TO_JSON = r"""
local json = require "dkjson"
local ok, conf = pcall(dofile, arg[1])
if not ok then io.stderr:write(tostring(conf), "\n") os.exit(1) end
if type(conf) ~= "table" then io.stderr:write("config must return a table\n") os.exit(1) end
io.write(json.encode(conf))
"""

DEFAULT_ACCOUNTS = [
    {"name": "ops", "password": "Ops-Passw0rd", "admin": True},
    {"name": "jdoe", "password": "Jdoe-Passw0rd", "admin": False},
    {"name": "foo", "password": "Foo-Passw0rd", "admin": False},
]

# A realistic Windows Server 2019 RDS host as qwinsta shows it.
DEFAULT_SESSIONS = [
    {"id": 0, "name": "services", "state": "Disconnected"},
    {"id": 1, "name": "console", "state": "Connected"},
    {"id": 65536, "name": "rdp-tcp", "state": "Listen"},
    {"id": 2, "name": "rdp-tcp#42", "user": "foo", "state": "Active", "logon": "-5h",
     "last_input": "-3m", "client_name": "LAPTOP-FOO", "client_address": "10.10.20.42"},
    {"id": 3, "user": "alice", "state": "Disconnected", "logon": "-7h", "disconnect": "-20m",
     "client_name": "PC-ALICE", "client_address": "10.10.20.51"},
    {"id": 4, "user": "bob", "state": "Disconnected", "logon": "-1d2h", "disconnect": "-9h",
     "client_name": "PC-BOB", "client_address": "10.10.21.17"},
    {"id": 5, "user": "carol", "state": "Disconnected", "logon": "-3d4h", "disconnect": "-3d",
     "client_name": "HOME-CAROL", "client_address": "192.168.7.23"},
    {"id": 6, "name": "rdp-tcp#57", "user": "dave", "state": "Active", "logon": "-6h",
     "last_input": "-2h", "locked": True, "client_name": "PC-DAVE",
     "client_address": "10.10.22.8"},
    {"id": 7, "name": "rdp-tcp#61", "user": "jdoe", "state": "Active", "logon": "-40m",
     "last_input": "-30s", "client_name": "PC-JDOE", "client_address": "10.10.20.77"},
    {"id": 8, "user": "svc_backup", "state": "Disconnected", "logon": "-2d", "disconnect": "-12h",
     "client_name": "BACKUP01", "client_address": "10.10.30.5"},
]

DEFAULT_HOST = {"name": "TS01", "profile": "2019", "domain": "CORP", "max_sessions": 10}

HOST_KEYS = {"name", "profile", "domain", "netbios_name", "dns_domain", "address", "port",
             "clock_offset", "max_sessions", "max_instance_count", "listener_query", "accounts",
             "allow_smb_identity", "min_auth_level", "lsa",
             "counters", "faults", "processes", "sessions", "boot", "kerberos", "ntlm"}

PORT_RANGE = (20000, 32000)      # below Linux's ephemeral range


def load_file(path):
    """The raw config table of a .lua or .json file."""
    if path.endswith(".lua"):
        proc = subprocess.run(["lua5.4", "-", path], input=LUA_TO_JSON, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise W.ConfigError("%s: %s" % (path, proc.stderr.strip()))
        return json.loads(proc.stdout)
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError as e:
            raise W.ConfigError("%s: %s" % (path, e))


def _list(value, what):
    """Lua's empty table reaches us as {} or []; both mean an empty list."""
    if value in ({}, []):
        return []
    if not isinstance(value, list):
        raise W.ConfigError("%s must be a list" % what)
    return value


def _faults(value, what):
    """faults = { {mode=..., arg=..., method=...}, ... } or the short form
    { delay = 0.5, fault = 5 }."""
    if isinstance(value, dict) and value:
        return [{"mode": k, "arg": None if v is True else v} for k, v in value.items()]
    return _list(value, what)


def normalize(raw):
    """A complete config: every host with all keys, defaults filled in."""
    if raw is None:
        raw = {"hosts": [dict(DEFAULT_HOST)]}
    if not isinstance(raw, dict) or "hosts" not in raw:
        raise W.ConfigError("config must be a table with a 'hosts' list")
    hosts, names, ports = [], set(), set()
    for i, h in enumerate(_list(raw["hosts"], "hosts")):
        what = "hosts[%d]" % (i + 1)
        if not isinstance(h, dict) or not h.get("name"):
            raise W.ConfigError("%s: name is required" % what)
        unknown = set(h) - HOST_KEYS
        if unknown:
            raise W.ConfigError("%s: unknown keys %s" % (what, ", ".join(sorted(unknown))))
        name = str(h["name"])
        if name.lower() in names:
            raise W.ConfigError("%s: duplicate host name %s" % (what, name))
        names.add(name.lower())
        profile = str(h.get("profile", "2019"))
        if profile not in W.PROFILES:
            raise W.ConfigError("%s: unknown profile %r (one of %s)"
                                % (what, profile, ", ".join(W.PROFILES)))
        if h.get("address", "127.0.0.1") != "127.0.0.1":
            raise W.ConfigError("%s: only address 127.0.0.1 is supported; hosts are told "
                                "apart by port" % what)
        domain = str(h.get("domain", "CORP")).upper()
        host = {
            "name": name, "profile": profile, "domain": domain,
            "netbios_name": str(h.get("netbios_name", name))[:15].upper(),
            "dns_domain": str(h.get("dns_domain", domain.lower() + ".example.com")),
            "address": "127.0.0.1", "port": h.get("port"),
            "clock_offset": W.parse_duration(h.get("clock_offset", 0), what + ".clock_offset"),
            "max_sessions": h.get("max_sessions"),
            "max_instance_count": h.get("max_instance_count"),
            "listener_query": h.get("listener_query", "ok"),
            "allow_smb_identity": bool(h.get("allow_smb_identity", False)),
            "lsa": h.get("lsa", "ok"),
            "min_auth_level": int(h.get("min_auth_level", 6)),
            "accounts": _list(h.get("accounts", DEFAULT_ACCOUNTS), what + ".accounts"),
            "sessions": _list(h.get("sessions", DEFAULT_SESSIONS), what + ".sessions"),
            "processes": h.get("processes", "auto"),
            "faults": _faults(h.get("faults", []), what + ".faults"),
            "boot": h.get("boot", "-12d"),
            "kerberos": _kerberos(h.get("kerberos"), what + ".kerberos"),
            "ntlm": bool(h.get("ntlm", True)),
            "counters": bool(h.get("counters", True)),
        }
        if host["processes"] != "auto":
            host["processes"] = _list(host["processes"], what + ".processes")
        if host["min_auth_level"] not in (5, 6):
            raise W.ConfigError("%s: min_auth_level must be 5 or 6" % what)
        for a in host["accounts"]:
            if not a.get("name") or a.get("password") is None:
                raise W.ConfigError("%s: every account needs name and password" % what)
        if host["port"] is not None:
            host["port"] = int(host["port"])
            if host["port"] in ports:
                raise W.ConfigError("%s: port %d used twice" % (what, host["port"]))
            ports.add(host["port"])
        # Building the host once checks sessions, processes and faults now,
        # with a readable error, instead of in the daemon.
        W.Host(dict(host, port=host["port"] or 0))
        hosts.append(host)
    if not hosts:
        raise W.ConfigError("config has no hosts")
    _check_passwords(hosts)
    _assign_ports(hosts, ports)
    return {"hosts": hosts}


def _kerberos(k, what):
    """kerberos = {keytab = PATH, header_sign = true, smb_keytab = PATH,
    realm = "CORP.TEST"}: the host accepts Kerberos binds with the keys of
    keytab (host/<fqdn>); with smb_keytab its smbd accepts Kerberos SMB
    logons too (cifs/<fqdn>; one per smbd, i.e. per pipe set)."""
    if k in (None, False, {}, []):
        return None
    if not isinstance(k, dict) or not isinstance(k.get("keytab"), str):
        raise W.ConfigError("%s: needs keytab = <path>" % what)
    unknown = set(k) - {"keytab", "header_sign", "smb_keytab", "realm", "mech_list_mic"}
    if unknown:
        raise W.ConfigError("%s: unknown keys %s" % (what, ", ".join(sorted(unknown))))
    return {"keytab": k["keytab"], "header_sign": bool(k.get("header_sign", True)),
            "smb_keytab": k.get("smb_keytab"), "realm": str(k.get("realm", "CORP.TEST")),
            "mech_list_mic": k.get("mech_list_mic")}


def _check_passwords(hosts):
    """smbd has one passdb: an account name must have one password everywhere."""
    seen = {}
    for h in hosts:
        for a in h["accounts"]:
            key = a["name"].lower()
            if seen.setdefault(key, a["password"]) != a["password"]:
                raise W.ConfigError("account %s has different passwords on different hosts; "
                                    "the one smbd needs a single password per name" % a["name"])


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _assign_ports(hosts, taken):
    for h in hosts:
        if h["port"] is not None:
            if not _port_free(h["port"]):
                raise W.ConfigError("host %s: port %d is in use" % (h["name"], h["port"]))
            continue
        for _ in range(2000):
            port = random.randint(*PORT_RANGE)
            if port not in taken and _port_free(port):
                break
        else:
            raise W.ConfigError("no free port found")
        taken.add(port)
        h["port"] = port
