"""The simulator daemon: pipe sockets, smbd instances, control channel.

Started by sim/start as `python3 -m tssim.server DIR` (in its own session).
It reads DIR/config.json (complete, ports chosen), then:

* creates the unix accounts smbd needs and puts them in one shared passdb;
* groups the hosts by the set of pipes their profile has (all three, LSM
  only for rdp-disabled, Ctx_WinStation only for legacy-only) and runs one
  smbd per group, listening on all the group's ports, with its own
  `ncalrpc dir` whose np/ directory holds only that group's sockets --
  so a missing pipe really is missing (STATUS_OBJECT_NAME_NOT_FOUND);
* serves every pipe connection in a thread, telling hosts apart by the
  local server port smbd reports in the named-pipe-auth handshake;
* answers sim/ctl on DIR/ctl.sock;
* is a child subreaper, so smbd's children that outlive their parent are
  reaped here instead of turning into zombies under a PID 1 that does not
  reap (as in some containers and VMs).

DIR/pids.json lists every process group it started (for sim/stop);
DIR/ready appears once all ports listen, DIR/error if start-up failed.
"""

import ctypes
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time

from . import calllog, control, rpc
from . import world as W

PR_SET_CHILD_SUBREAPER = 36

SMB_CONF = """[global]
	workgroup = {workgroup}
	netbios name = SIMTS{group}
	server role = standalone server
	security = user
	map to guest = never
	passdb backend = tdbsam:{dir}/passdb.tdb
	interfaces = 127.0.0.1
	bind interfaces only = yes
	smb ports = {ports}
	disable netbios = yes
	rpc start on demand helpers = no
	lock directory = {gdir}/lock
	state directory = {gdir}/state
	cache directory = {gdir}/cache
	pid directory = {gdir}/pid
	private dir = {gdir}/private
	binddns dir = {gdir}/binddns
	ncalrpc dir = {gdir}/ncalrpc
	usershare path = {gdir}/usershares
	log file = {dir}/log/smbd-{group}.log
	max log size = 0
	log level = 0
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes
"""

# Kerberos SMB logons for a standalone smbd (KERBEROS-NOTES.md 4.1): the
# service key from a keytab of its own; principal user@REALM maps to the
# unix user when REALM is this realm.
SMB_CONF_KERBEROS = """	realm = {realm}
	kerberos method = dedicated keytab
	dedicated keytab file = FILE:{keytab}
"""


class Server:
    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        self.hosts = [W.Host(h) for h in config["hosts"]]
        self.by_port = {h.port: h for h in self.hosts}
        self.log = calllog.CallLog(os.path.join(root, "calls.jsonl"))
        self.stopping = threading.Event()
        self.listeners = []
        self.smbd = []                # Popen objects (process group leaders)

    def host_for_port(self, port):
        return self.by_port.get(port)

    def find_host(self, key):
        """A host by name (any case) or by port."""
        for h in self.hosts:
            if h.name.lower() == str(key).lower() or str(h.port) == str(key):
                return h
        return None

    # -- start-up ----------------------------------------------------------------

    def groups(self):
        """Hosts grouped by the pipes they offer and the SMB settings their
        profile needs (one smbd each), in first-appearance order."""
        groups = {}
        for h in self.hosts:
            groups.setdefault((h.pipes, h.caps.get("smb", ())), []).append(h)
        return [(key[0], hosts) for key, hosts in groups.items()]

    def ensure_accounts(self):
        """Unix accounts for every configured account (created once, never
        removed: another instance may use them), then the shared passdb."""
        accounts = {}
        for h in self.hosts:
            for a in h.accounts:
                accounts.setdefault(a.name, a.password)
        conf = os.path.join(self.root, "g0", "smb.conf")
        for name, password in accounts.items():
            _ensure_unix_user(name)
            proc = subprocess.run(["pdbedit", "-s", conf, "-a", "-u", name, "-t"],
                                  input="%s\n%s\n" % (password, password), text=True,
                                  capture_output=True)
            if proc.returncode != 0:
                raise RuntimeError("pdbedit %s: %s" % (name, proc.stderr.strip()))

    def prepare_groups(self):
        for index, (pipes, hosts) in enumerate(self.groups()):
            gdir = os.path.join(self.root, "g%d" % index)
            for sub in ("lock", "state", "cache", "pid", "private", "binddns", "usershares",
                        "ncalrpc/np"):
                os.makedirs(os.path.join(gdir, sub), exist_ok=True)
            os.chmod(os.path.join(gdir, "ncalrpc", "np"), 0o700)   # smbd insists
            with open(os.path.join(gdir, "smb.conf"), "w", encoding="utf-8") as f:
                f.write(SMB_CONF.format(workgroup=hosts[0].domain, group=index, dir=self.root,
                                        gdir=gdir, ports=" ".join(str(h.port) for h in hosts)))
                for key, value in hosts[0].caps.get("smb", ()):
                    f.write("\t%s = %s\n" % (key, value))
                krb = next((h.kerberos for h in hosts if h.kerberos and
                            h.kerberos.get("smb_keytab")), None)
                if krb:
                    f.write(SMB_CONF_KERBEROS.format(realm=krb["realm"],
                                                     keytab=krb["smb_keytab"]))
                    if not any(h.ntlm for h in hosts):
                        # hosts that refuse NTLM: at the SMB logon too
                        f.write("\tntlm auth = disabled\n")
            for pipe in pipes:
                path = os.path.join(gdir, "ncalrpc", "np", pipe)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.bind(path)
                sock.listen(128)
                self.listeners.append((sock, pipe))

    def start_smbd(self):
        for index, _ in enumerate(self.groups()):
            gdir = os.path.join(self.root, "g%d" % index)
            out = open(os.path.join(self.root, "log", "smbd-%d.out" % index), "ab")
            self.smbd.append(subprocess.Popen(
                ["smbd", "-F", "--no-process-group", "-s", os.path.join(gdir, "smb.conf"),
                 "--debug-stdout", "-d", "0"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
            out.close()
        self.write_pids()

    def write_pids(self):
        _write_json(os.path.join(self.root, "pids.json"),
                    {"daemon": os.getpid(), "smbd": [p.pid for p in self.smbd]})

    def wait_listening(self, timeout=10.0):
        """Until every host port listens (read from /proc: probing with
        connect() would make smbd fork a child per port)."""
        wanted = {h.port for h in self.hosts}
        deadline = time.time() + timeout
        while time.time() < deadline:
            if wanted <= _listening_ports():
                return
            if any(p.poll() is not None for p in self.smbd):
                raise RuntimeError("smbd exited during start-up; see %s/log" % self.root)
            time.sleep(0.01)
        raise RuntimeError("smbd did not listen on every port within %gs" % timeout)

    # -- serving -------------------------------------------------------------------

    def serve_pipe(self, sock, pipe):
        while not self.stopping.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=rpc.PipeConnection(self, conn, pipe).run,
                             daemon=True).start()

    def run(self):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        threading.Thread(target=_reap_children, daemon=True).start()
        try:
            self.prepare_groups()
            for sock, pipe in self.listeners:
                threading.Thread(target=self.serve_pipe, args=(sock, pipe), daemon=True).start()
            self.ensure_accounts()
            self.start_smbd()
            self.wait_listening()
            control.start(self)
        except Exception as e:                    # reported to sim/start, which prints it
            with open(os.path.join(self.root, "error"), "w", encoding="utf-8") as f:
                f.write("%s\n" % e)
            self.shutdown()
            return 1
        _write_json(os.path.join(self.root, "ready"),
                    {"hosts": [h.describe() for h in self.hosts]})
        self.stopping.wait()
        self.shutdown()
        return 0

    def shutdown(self):
        """End smbd (each instance with all its children, by process group)."""
        self.stopping.set()
        for p in self.smbd:
            _signal_group(p.pid, signal.SIGTERM)
        deadline = time.time() + 3
        while time.time() < deadline and any(_group_alive(p.pid) for p in self.smbd):
            time.sleep(0.02)
        for p in self.smbd:
            _signal_group(p.pid, signal.SIGKILL)
        for sock, _ in self.listeners:
            sock.close()


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _ensure_unix_user(name):
    """useradd, tolerating a concurrent instance creating the same account."""
    for _ in range(20):
        try:
            pwd.getpwnam(name)
            return
        except KeyError:
            pass
        proc = subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            return
        time.sleep(0.1)         # /etc/passwd locked by another useradd
    raise RuntimeError("cannot create unix account %s: %s" % (name, proc.stderr.strip()))


def _listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":               # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def _reap_children():
    """Collect every exited child, including orphans re-parented to us."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.2)


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def main():
    root = sys.argv[1]
    sys.exit(Server(root).run())


if __name__ == "__main__":
    main()
