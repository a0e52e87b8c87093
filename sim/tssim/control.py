"""The control channel behind sim/ctl: one JSON request line, one JSON reply.

Request: {"cmd": "...", "args": [...]}.  Reply: {"ok": true, "result": ...}
or {"ok": false, "error": "..."} when the command itself is wrong (unknown
host, bad arguments).  A refused rdp-login is a *result*
({"ok": false, "error": "The maximum number of connections has been
exceeded"}), not a control error.
"""

import json
import os
import socket
import threading

from . import world as W

USAGE = """commands:
  hosts
  state HOST
  add-session HOST JSON
  set-session HOST ID JSON
  remove-session HOST ID
  rdp-login HOST USER [DOMAIN]
  set-fault HOST MODE [ARG] [method=NAME] [opnum=N] [iface=NAME] [after=METHOD]
  clear-faults HOST [MODE]
  clear-log
HOST is a host name or its port."""


class UsageError(Exception):
    pass


def _json_arg(text, what):
    try:
        value = json.loads(text)
    except ValueError as e:
        raise UsageError("%s: invalid JSON (%s)" % (what, e))
    if not isinstance(value, dict):
        raise UsageError("%s must be a JSON object" % what)
    return value


def _arg_value(text):
    """A fault argument: a number when it looks like one, else the text."""
    for convert in (int, lambda t: int(t, 16), float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def execute(server, cmd, args):
    def host_arg():
        if not args:
            raise UsageError("%s needs a HOST" % cmd)
        host = server.find_host(args[0])
        if host is None:
            raise UsageError("no host %r (hosts: %s)"
                             % (args[0], ", ".join(h.name for h in server.hosts)))
        return host

    def need(n):
        if len(args) < n:
            raise UsageError("%s needs %d arguments\n%s" % (cmd, n, USAGE))

    if cmd == "hosts":
        return [h.describe() for h in server.hosts]
    if cmd == "clear-log":
        server.log.clear()
        return {"ok": True}
    host = host_arg()
    if cmd == "state":
        return host.snapshot()
    if cmd == "add-session":
        need(2)
        spec = _json_arg(args[1], "session")
        with host.lock:
            if int(spec.get("id", -1)) in host.sessions:
                raise UsageError("session %s exists; use set-session" % spec["id"])
            return host.create_session(spec).to_json()
    if cmd in ("set-session", "remove-session"):
        need(2 if cmd == "remove-session" else 3)
        sid = int(args[1])
        with host.lock:
            if sid not in host.sessions:
                raise UsageError("no session %d on %s" % (sid, host.name))
            if cmd == "remove-session":
                host.remove_session(sid)
                return {"ok": True}
            return host.update_session(sid, _json_arg(args[2], "changes")).to_json()
    if cmd == "rdp-login":
        need(2)
        return host.rdp_login(args[1], args[2] if len(args) > 2 else None)
    if cmd == "set-fault":
        need(2)
        spec = {"mode": args[1]}
        for extra in args[2:]:
            key, sep, value = extra.partition("=")
            if sep and key in ("method", "opnum", "iface", "after"):
                spec[key] = value
            elif "arg" not in spec:
                spec["arg"] = _arg_value(extra)
            else:
                raise UsageError("unexpected argument %r" % extra)
        return host.set_fault(spec)
    if cmd == "clear-faults":
        with host.lock:
            host.faults = [f for f in host.faults if len(args) > 1 and f["mode"] != args[1]]
        return {"ok": True}
    raise UsageError("unknown command %r\n%s" % (cmd, USAGE))


def _serve_client(server, conn):
    with conn, conn.makefile("rw", encoding="utf-8") as stream:
        try:
            request = json.loads(stream.readline())
            reply = {"ok": True, "result": execute(server, request["cmd"], request["args"])}
        except (UsageError, W.ConfigError, KeyError, ValueError, TypeError) as e:
            reply = {"ok": False, "error": str(e)}
        stream.write(json.dumps(reply) + "\n")


def start(server):
    path = os.path.join(server.root, "ctl.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(16)

    def loop():
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=_serve_client, args=(server, conn), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
