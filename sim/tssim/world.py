"""The simulated Windows hosts: accounts, sessions, processes and their history.

A config file (see sim/README.md) is turned into Host objects here.  All
times a Host keeps are epoch seconds *on that host's clock* (real time plus
the host's clock_offset), because clients compute idle and disconnect ages
on the server clock; 0 means "no time" (FILETIME 0 on the wire).
"""

import hashlib
import random
import re
import threading
import time

STATES = ["Active", "Connected", "ConnectQuery", "Shadow", "Disconnected",
          "Idle", "Listen", "Reset", "Down", "Init"]
STATE_ACTIVE, STATE_DISCONNECTED = 0, 4
LISTENER_BASE = 65536
# MaxInstanceCount of a listener with no limit (the registry's default for
# WinStations\RDP-Tcp\MaxInstanceCount).
UNLIMITED_INSTANCES = 0xFFFFFFFF
LISTENER_QUERY = ("ok", "denied", "invalid_class")

IDOK, IDCANCEL, IDABORT, IDRETRY, IDIGNORE, IDYES, IDNO = 1, 2, 3, 4, 5, 6, 7
IDTIMEOUT, IDASYNC = 32000, 32001
RESPONSES = {"IDOK": IDOK, "IDCANCEL": IDCANCEL, "IDABORT": IDABORT, "IDRETRY": IDRETRY,
             "IDIGNORE": IDIGNORE, "IDYES": IDYES, "IDNO": IDNO, "IDTIMEOUT": IDTIMEOUT}

# What each Windows profile offers.  "pipes" are the named pipes that exist
# (their absence is how Windows looks with RDP disabled or on 2003);
# "missing" lists (interface, opnum) pairs the version does not implement;
# "legacy_codes" says how legacy pResult values look: NTSTATUS on 2003/2008,
# HRESULT-style on 2012 R2 and later (both occur on real Windows).
PIPE_LSM, PIPE_TERMSRV, PIPE_CTX = "lsm_api_service", "termsrv_api_service", \
    "ctx_winstation_api_service"
ALL_PIPES = (PIPE_LSM, PIPE_TERMSRV, PIPE_CTX)
# \PIPE\lsarpc (MS-LSAT): every Windows has it, whatever the profile; a host's
# "lsa" setting says how it answers: "ok", "denied" (LsarOpenPolicy2 says
# access denied), "absent" (no such pipe).
PIPE_LSA = "lsarpc"
LSA_MODES = ("ok", "denied", "absent")
# "version" (major, minor, build) goes into the NTLM CHALLENGE's VERSION field.
# Success codes current Windows answers with instead of S_OK (impacket's
# notes from real hosts): the high bit clear, so success all the same.
WIN2025_SUCCESS = {"logoff": 0x10000000, "connect": 1, "disconnected": 1}

PROFILES = {
    "2008": {"pipes": ALL_PIPES, "legacy_codes": "ntstatus", "version": (6, 0, 6003),
             "missing": {("TermSrvSession", 17), ("TermSrvEnumeration", 10)}},
    "2012r2": {"pipes": ALL_PIPES, "legacy_codes": "hresult", "version": (6, 3, 9600),
               "missing": set()},
    "2019": {"pipes": ALL_PIPES, "legacy_codes": "hresult", "version": (10, 0, 17763),
             "missing": set()},
    "2022": {"pipes": ALL_PIPES, "legacy_codes": "hresult", "version": (10, 0, 20348),
             "missing": set()},
    "rdp-disabled": {"pipes": (PIPE_LSM,), "legacy_codes": "hresult",
                     "version": (10, 0, 17763), "missing": set()},
    "legacy-only": {"pipes": (PIPE_CTX,), "legacy_codes": "ntstatus", "version": (5, 2, 3790),
                    "missing": set()},
    # Windows Server 2025 / Windows 11 24H2: SMB signing required on every
    # connection (their default); "2025-encrypted" also requires SMB
    # encryption server-wide (Set-SmbServerConfiguration -EncryptData $true),
    # which covers IPC$.
    "2025": {"pipes": ALL_PIPES, "legacy_codes": "hresult", "version": (10, 0, 26100),
             "missing": set(), "smb": (("server signing", "mandatory"),),
             "success": WIN2025_SUCCESS},
    "2025-encrypted": {"pipes": ALL_PIPES, "legacy_codes": "hresult", "version": (10, 0, 26100),
                       "missing": set(), "smb": (("server signing", "mandatory"),
                                                 ("server smb encrypt", "required")),
                       "success": WIN2025_SUCCESS},
    # Windows 11 24H2 (impacket's sample from a Windows 11 host): LSM's
    # LSM_SESSIONINFO_EX_LEVEL1.LastInputTime is not a FILETIME on the host
    # clock but a small value (sent here as the time since the last input,
    # in 100 ns units: 1601-01-01 plus the idle time). "win11-rdp-disabled":
    # the same with Remote Desktop off (only the LSM pipe).
    "win11": {"pipes": ALL_PIPES, "legacy_codes": "hresult", "version": (10, 0, 26100),
              "missing": set(), "lsm_input": "relative", "success": WIN2025_SUCCESS},
    "win11-rdp-disabled": {"pipes": (PIPE_LSM,), "legacy_codes": "hresult",
                           "version": (10, 0, 26100), "missing": set(),
                           "lsm_input": "relative", "success": WIN2025_SUCCESS},
}

# Fault modes that can be injected per host (see faults in sim/README.md).
FAULT_MODES = ("hang", "close", "truncated", "bad_frag_length", "absurd_count",
               "wrong_call_id", "bad_signature", "bind_nak", "fault", "delay", "flip_bit")

WELL_KNOWN_SIDS = {"SYSTEM": "S-1-5-18", "LOCAL SERVICE": "S-1-5-19",
                   "NETWORK SERVICE": "S-1-5-20"}
# SID_NAME_USE (MS-LSAT 2.2.13)
SID_USER, SID_WELL_KNOWN_GROUP = 1, 5

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    pass


def parse_duration(value, what):
    """Seconds from a number or a string like "-5h", "-1h30m", "20m", "90s"."""
    if isinstance(value, bool):
        raise ConfigError("%s: expected a duration, got %r" % (what, value))
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    match = re.fullmatch(r"([+-]?)((?:\d+(?:\.\d+)?[smhd])+)", text)
    if not match:
        raise ConfigError("%s: bad duration %r (use e.g. -5h, -1h30m, 90s)" % (what, value))
    total = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])",
                                                              match.group(2)))
    return -total if match.group(1) == "-" else total


def parse_size(value, what):
    """Bytes from a number or "350K" / "12M" / "1G"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)B?", str(value).strip(), re.I)
    if not match:
        raise ConfigError("%s: bad size %r" % (what, value))
    return int(float(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20,
                                        "G": 1 << 30}[match.group(2).upper()])


def parse_state(value, what):
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(STATES):
        return value
    for i, name in enumerate(STATES):
        if str(value).lower() in (name.lower(), "state_" + name.lower()):
            return i
    if str(value).lower() == "disc":
        return STATE_DISCONNECTED
    raise ConfigError("%s: unknown session state %r" % (what, value))


def parse_response(value, what):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if str(value).upper() in RESPONSES:
        return RESPONSES[str(value).upper()]
    raise ConfigError("%s: unknown message response %r" % (what, value))


def sid_to_bytes(sid):
    """Binary SID (MS-DTYP 2.4.2.2) from its S-1-... string form."""
    parts = sid.split("-")
    if len(parts) < 3 or parts[0].upper() != "S":
        raise ConfigError("bad SID %r" % sid)
    subs = [int(p) for p in parts[3:]]
    return bytes([int(parts[1]), len(subs)]) + int(parts[2]).to_bytes(6, "big") + \
        b"".join(s.to_bytes(4, "little") for s in subs)


def filetime(epoch):
    """FILETIME (100 ns since 1601, UTC) of an epoch time; 0 stays 0."""
    return int((epoch + 11644473600) * 10_000_000) if epoch else 0


class Account:
    def __init__(self, name, password, domain, admin):
        self.name, self.password, self.domain, self.admin = name, password, domain, admin

    def to_json(self):
        return {"name": self.name, "domain": self.domain, "admin": self.admin}


class Principal:
    """Who is calling: an NTLM-authenticated account, or the SMB identity."""

    def __init__(self, user, domain, admin):
        self.user, self.domain, self.admin = user, domain, admin

    def __str__(self):
        return "%s\\%s" % (self.domain, self.user)

    def owns(self, session):
        return bool(session.user) and session.user.lower() == self.user.lower()

    def may_see(self, session):
        return self.admin or self.owns(session)


class Session:
    FIELDS = ("id", "name", "user", "domain", "state", "logon_time", "connect_time",
              "disconnect_time", "last_input_time", "client_name", "client_address",
              "client_build", "client_time_zone", "client_tz_bias", "locked",
              "message_response", "message_delay", "device")

    def __init__(self, **kw):
        for field in self.FIELDS:
            setattr(self, field, kw.get(field))

    def is_listener(self):
        return self.id >= LISTENER_BASE

    def to_json(self):
        out = {f: getattr(self, f) for f in self.FIELDS}
        out["state_name"] = STATES[self.state]
        return out


class Process:
    FIELDS = ("pid", "image", "session", "sid", "memory", "threads", "handles",
              "create_time", "parent")

    def __init__(self, **kw):
        for field in self.FIELDS:
            setattr(self, field, kw.get(field))

    def to_json(self):
        return {f: getattr(self, f) for f in self.FIELDS}


class Host:
    def __init__(self, spec):
        self.name = spec["name"]
        self.address = spec.get("address", "127.0.0.1")
        self.port = spec["port"]
        self.profile = spec["profile"]
        self.caps = PROFILES[self.profile]
        self.domain = spec["domain"]
        self.netbios_name = spec["netbios_name"]
        self.dns_domain = spec["dns_domain"]
        self.clock_offset = float(spec.get("clock_offset", 0))
        self.max_sessions = spec.get("max_sessions")
        self.max_instance_count = self._instances(spec.get("max_instance_count"))
        # how legacy class WinStationCreateData answers: "ok", "denied"
        # (access denied), "invalid_class" (a server that does not serve it)
        self.listener_query = spec.get("listener_query", "ok")
        if self.listener_query not in LISTENER_QUERY:
            raise ConfigError("listener_query must be one of %s, not %r"
                              % (", ".join(LISTENER_QUERY), self.listener_query))
        self.allow_smb_identity = bool(spec.get("allow_smb_identity", False))
        # counters = false: a host that offers no Terminal Services counters
        # (neither RpcGetSessionCounters nor RpcWinStationGetTermSrvCountersValue)
        self.missing = set(self.caps["missing"])
        if spec.get("counters", True) is False:
            self.missing |= {("TermSrvSession", 11), ("LegacyAPI", 45)}
        self.lsa = spec.get("lsa", "ok")
        if self.lsa not in LSA_MODES:
            raise ConfigError("lsa must be one of %s, not %r" % (", ".join(LSA_MODES), self.lsa))
        self.pipes = self.caps["pipes"] + ((PIPE_LSA,) if self.lsa != "absent" else ())
        self.min_auth_level = int(spec.get("min_auth_level", 6))
        # {"keytab": path, "header_sign": bool}: accept Kerberos binds (types 9, 16)
        self.kerberos = spec.get("kerberos") or None
        self.ntlm = bool(spec.get("ntlm", True))     # False: NTLM binds are refused
        self.accounts = [Account(a["name"], a["password"], a.get("domain", self.domain),
                                 bool(a.get("admin", False))) for a in spec["accounts"]]
        self.lock = threading.RLock()
        self.sessions = {}
        self.processes = []
        self.messages, self.shutdowns, self.killed = [], [], []
        self.faults = []
        # Generated pids, memory sizes and SIDs are stable per host name.
        self._rng = random.Random(hashlib.sha256(self.name.encode()).digest())
        self._used_pids = set()
        now = self.now()
        self.boot_time = now + parse_duration(spec.get("boot", "-12d"), "boot")
        for i, s in enumerate(spec.get("sessions", [])):
            self.add_session(s, now, "sessions[%d]" % i)
        procs = spec.get("processes", "auto")
        if procs == "auto":
            # Sessions given their own process lists keep exactly those.
            listed = {p.session for p in self.processes}
            if 0 not in listed:
                self._generate_system_processes()
            for session in self.sessions.values():
                if session.id not in listed:
                    self._generate_session_processes(session)
        else:
            for i, p in enumerate(procs):
                self.processes.append(self._process_from_spec(p, "processes[%d]" % i))
        # cumulative counters since boot (TS_COUNTER ids 1-3, 7-10); the
        # configured sessions were created, and disconnected, since boot
        users = [x for x in self.sessions.values() if x.user and not x.is_listener()]
        self.counters = {"created": len(users), "reconnected": 0,
                         "disconnected": sum(1 for x in users if x.state == STATE_DISCONNECTED),
                         "logons": len(users), "local_logons": 0, "remote_logons": len(users),
                         "session0_logons": 0}
        self.next_station = 1 + max([int(m.group(1)) for s in self.sessions.values()
                                     for m in [re.search(r"#(\d+)$", s.name or "")] if m] + [0])
        for i, f in enumerate(spec.get("faults", [])):
            self.set_fault(f, "faults[%d]" % i)

    # -- clock ---------------------------------------------------------------

    def now(self):
        return time.time() + self.clock_offset

    def filetime_now(self):
        return filetime(self.now())

    # -- accounts ------------------------------------------------------------

    def find_account(self, user):
        for account in self.accounts:
            if account.name.lower() == user.lower():
                return account
        return None

    def principal_for_smb(self, smb_user):
        """The SMB identity as a principal, for hosts that accept it."""
        account = self.find_account(smb_user or "")
        if account:
            return Principal(account.name, account.domain, account.admin)
        return Principal(smb_user or "ANONYMOUS LOGON", self.domain, False)

    def user_sid(self, user):
        if not user:
            return None
        if user.upper() in WELL_KNOWN_SIDS:
            return WELL_KNOWN_SIDS[user.upper()]
        digest = hashlib.sha256(("%s/%s" % (self.domain, user.lower())).encode()).digest()
        machine = hashlib.sha256(self.domain.upper().encode()).digest()
        subs = [int.from_bytes(machine[i:i + 4], "little") & 0x7FFFFFFF for i in (0, 4, 8)]
        rid = 1100 + int.from_bytes(digest[:2], "little") % 8000
        return "S-1-5-21-%d-%d-%d-%d" % (subs[0], subs[1], subs[2], rid)

    def lookup_sid(self, sid):
        """(domain, name, SID_NAME_USE) as this host's LSA names a SID, or
        None: well-known accounts, the per-session DWM-n / UMFD-n virtual
        accounts, and the accounts and session users of this host."""
        well_known = {v: k for k, v in WELL_KNOWN_SIDS.items()}
        if sid in well_known:
            return "NT AUTHORITY", well_known[sid], SID_WELL_KNOWN_GROUP
        m = re.match(r"^S-1-5-(90|96)-0-(\d+)$", sid)
        if m:
            if m.group(1) == "90":
                return "Window Manager", "DWM-" + m.group(2), SID_WELL_KNOWN_GROUP
            return "Font Driver Host", "UMFD-" + m.group(2), SID_USER
        with self.lock:
            users = [(a.domain, a.name) for a in self.accounts] + \
                [(s.domain, s.user) for s in self.sessions.values() if s.user]
        for domain, user in users:
            if self.user_sid(user) == sid:
                return domain, user, SID_USER
        return None

    # -- sessions ------------------------------------------------------------

    def _time(self, spec, key, default, now, what):
        """A session time from config: relative duration, "none"/false, or absolute."""
        if key + "_time" in spec:            # absolute epoch (host clock), as ctl state shows
            return float(spec[key + "_time"] or 0)
        value = spec.get(key, default)
        if value in (None, False, "none"):
            return 0.0
        return now + parse_duration(value, "%s.%s" % (what, key))

    def add_session(self, spec, now=None, what="session"):
        now = self.now() if now is None else now
        if "id" not in spec:
            raise ConfigError("%s: id is required" % what)
        sid = int(spec["id"])
        user = spec.get("user") or ""
        state = parse_state(spec.get("state", "Active" if user else "Connected"), what)
        logon = self._time(spec, "logon", "-1h" if user else None, now, what)
        connect = self._time(spec, "connect", (spec.get("logon", "-1h") if user else None),
                             now, what)
        disc_default = "-10m" if state == STATE_DISCONNECTED and user else None
        disconnect = self._time(spec, "disconnect", disc_default, now, what)
        input_default = None
        if user:
            input_default = spec.get("disconnect", "-10m") if state == STATE_DISCONNECTED \
                else "-1m"
        session = Session(
            id=sid,
            name=spec.get("name", "") or "",
            user=user,
            domain=(spec.get("domain") or self.domain) if user else "",
            state=state,
            logon_time=logon,
            connect_time=connect,
            disconnect_time=disconnect,
            last_input_time=self._time(spec, "last_input", input_default, now, what),
            client_name=spec.get("client_name", "") or "",
            client_address=spec.get("client_address", "") or "",
            client_build=int(spec.get("client_build", 19041 if spec.get("client_name") else 0)),
            # the client's time zone (TS_TIME_ZONE_INFORMATION): StandardName
            # and Bias in minutes (UTC = local time + bias); none by default
            client_time_zone=spec.get("client_time_zone", "") or "",
            client_tz_bias=int(spec.get("client_tz_bias", 0)),
            locked=bool(spec.get("locked", False)),
            message_response=parse_response(spec.get("message_response", IDOK), what),
            message_delay=float(spec.get("message_delay", 0)),
            # a serial line's device (COM1): the session came in over an
            # async transport, whose PDPARAMS carry it (qwinsta's DEVICE)
            device=spec.get("device", "") or "",
        )
        with self.lock:
            self.sessions[sid] = session
            for i, p in enumerate(spec.get("processes", [])):
                p = dict(p, session=sid)
                self.processes.append(self._process_from_spec(p, "%s.processes[%d]" % (what, i)))
        return session

    def create_session(self, spec):
        """A session appearing at run time (sim/ctl add-session, rdp-login):
        it gets the usual processes unless the spec lists its own."""
        with self.lock:
            session = self.add_session(spec, what="session")
            if session.user and not session.is_listener():
                self.counters["created"] += 1
                self.counters["logons"] += 1
                self.counters["remote_logons"] += 1
            if "processes" not in spec:
                self._generate_session_processes(session)
            return session

    def update_session(self, sid, changes):
        """Change fields of a session (e.g. a reconnect: new logon time or user);
        relative times in `changes` replace the stored absolute ones."""
        with self.lock:
            if int(changes.get("id", sid)) != sid:
                raise ConfigError("set-session cannot change a session id")
            merged = self.sessions[sid].to_json()
            merged.pop("state_name")
            for key in ("logon", "connect", "disconnect", "last_input"):
                if key in changes:
                    merged.pop(key + "_time")
            merged.update(changes)
            return self.add_session(merged, what="session %d" % sid)

    def remove_session(self, sid):
        """Logoff/reset: the session and its processes disappear."""
        with self.lock:
            self.sessions.pop(sid)
            self.processes = [p for p in self.processes if p.session != sid]

    def disconnect_session(self, sid):
        """What Windows does on disconnect: state 4, a disconnect time, and a
        blank station name (qwinsta shows disconnected sessions without one)."""
        with self.lock:
            s = self.sessions[sid]
            s.state = STATE_DISCONNECTED
            s.disconnect_time = self.now()
            s.name = ""
            self.counters["disconnected"] += 1

    def reconnected(self):
        """A disconnected session got a client again (rdp-login, tscon)."""
        with self.lock:
            self.counters["reconnected"] += 1
            self.counters["logons"] += 1
            self.counters["remote_logons"] += 1

    def counter_values(self):
        """TS_COUNTER id -> value (MS-TSTS 2.2.2.17.1): the cumulative ones
        since boot, the current ones counted now."""
        with self.lock:
            c = self.counters
            users = [s for s in self.sessions.values() if s.user and not s.is_listener()]
            return {1: c["created"], 2: c["disconnected"], 3: c["reconnected"],
                    4: sum(1 for s in users if s.state == STATE_ACTIVE),
                    5: sum(1 for s in users if s.state == STATE_DISCONNECTED),
                    6: sum(1 for s in self.sessions.values() if s.state == 2),   # ConnectQuery
                    7: c["logons"], 8: c["local_logons"], 9: c["remote_logons"],
                    10: c["session0_logons"], 11: 0, 12: len(users)}

    def winstation_driver(self, s):
        """(WdName, WdDLL) of a session's winstation driver (WDCONFIG), as
        qwinsta's TYPE shows it: rdpwd for a session connected over RDP,
        wdcon for the console; nothing for the services session, a
        disconnected session (no stack attached) or a listener -- except on
        2003, whose listeners show their driver."""
        if s.id == 0 or s.state == STATE_DISCONNECTED:
            return "", ""
        if s.is_listener():
            return ("Microsoft RDP 5.2", "rdpwd") if self.profile == "legacy-only" else ("", "")
        if (s.name or "").lower() == "console":
            return "Console", "wdcon"
        if s.client_address or s.device:
            return "Microsoft RDP 8.0", "rdpwd"
        return "", ""

    @staticmethod
    def _instances(value):
        if value is None:
            return None
        if value == "unlimited":
            return UNLIMITED_INSTANCES
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise ConfigError("max_instance_count must be an integer 0..4294967295 or "
                              "\"unlimited\", not %r" % (value,))
        return value

    def listener_create(self):
        """The RDP listener's WINSTATIONCREATE: (fEnableWinStation,
        MaxInstanceCount). The listener's own setting when the config gives
        one; else the host's max_sessions (the limit rdp_login enforces), or
        no limit at all."""
        if self.max_instance_count is not None:
            return True, self.max_instance_count
        if self.max_sessions is not None:
            return True, self.max_sessions
        return True, UNLIMITED_INSTANCES

    def connection_limit(self):
        """The limit rdp_login enforces: the smaller of max_sessions and the
        listener's MaxInstanceCount; None when neither sets one."""
        limits = [n for n in (self.max_sessions, self.max_instance_count)
                  if n is not None and n != UNLIMITED_INSTANCES]
        return min(limits) if limits else None

    def user_session_count(self):
        """Sessions that count against the connection limit: every non-listener
        session with a user logged on, whatever its state (Windows counts
        disconnected sessions too)."""
        return sum(1 for s in self.sessions.values() if s.user and not s.is_listener())

    def rdp_login(self, user, domain=None):
        """A new RDP logon attempt: reconnect the user's disconnected session if
        there is one, else create a session unless the limit is reached."""
        with self.lock:
            now = self.now()
            station = "rdp-tcp#%d" % self.next_station
            for s in sorted(self.sessions.values(), key=lambda s: s.id):
                if s.user.lower() == user.lower() and s.state == STATE_DISCONNECTED:
                    self.next_station += 1
                    s.state, s.name, s.connect_time = STATE_ACTIVE, station, now
                    s.disconnect_time, s.last_input_time = 0.0, now
                    self.reconnected()
                    return {"ok": True, "reconnected": True, "session": s.to_json()}
            limit = self.connection_limit()
            if limit is not None and self.user_session_count() >= limit:
                return {"ok": False,
                        "error": "The maximum number of connections has been exceeded"}
            self.next_station += 1
            new_id = 1 + max([s.id for s in self.sessions.values() if not s.is_listener()] + [1])
            s = self.create_session({"id": new_id, "name": station, "user": user,
                                  "domain": domain or self.domain, "state": "Active",
                                  "logon": 0, "connect": 0, "last_input": 0,
                                  "client_name": "CLIENT-%d" % new_id,
                                  "client_address": "10.0.%d.%d" % (new_id // 240,
                                                                    10 + new_id % 240)})
            return {"ok": True, "reconnected": False, "session": s.to_json()}

    # -- processes -----------------------------------------------------------

    def _new_pid(self):
        while True:
            pid = 4 * self._rng.randint(30, 4000)
            if pid not in self._used_pids:
                self._used_pids.add(pid)
                return pid

    def _process_from_spec(self, p, what):
        if "pid" not in p:
            raise ConfigError("%s: pid is required" % what)
        session_id = int(p.get("session", 0))
        owner = self.sessions.get(session_id)
        sid = p.get("sid", "auto")
        if sid == "auto":
            sid = self.user_sid(p.get("user") or (owner.user if owner else "") or "SYSTEM")
        if sid:
            sid_to_bytes(sid)   # validate early
        self._used_pids.add(int(p["pid"]))
        return Process(pid=int(p["pid"]), image=p.get("image"), session=session_id, sid=sid,
                       memory=parse_size(p.get("memory", "8M"), what),
                       threads=int(p.get("threads", 8)), handles=int(p.get("handles", 200)),
                       create_time=self.now() + parse_duration(p.get("create", "-1h"), what),
                       parent=int(p.get("parent", 0)))

    def _spawn(self, image, session, sid, mem_range, threads, created):
        self.processes.append(Process(
            pid=self._new_pid(), image=image, session=session, sid=sid,
            memory=self._rng.randint(*mem_range) * 1024, threads=threads,
            handles=self._rng.randint(80, 1500), create_time=created, parent=0))

    def _generate_system_processes(self):
        """Session 0 as on a Windows Server 2019 with the RDS role."""
        boot = self.boot_time
        self.processes.append(Process(pid=0, image=None, session=0, sid=None, memory=8192,
                                      threads=2, handles=0, create_time=0, parent=0))
        self.processes.append(Process(pid=4, image="System", session=0, sid="S-1-5-18",
                                      memory=140 * 1024, threads=150, handles=3100,
                                      create_time=boot, parent=0))
        self._used_pids.update({0, 4})
        system, local, network = (WELL_KNOWN_SIDS[k] for k in
                                  ("SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE"))
        table = [("Registry", system, (20000, 60000)), ("smss.exe", system, (900, 1300)),
                 ("csrss.exe", system, (4000, 6000)), ("wininit.exe", system, (5000, 7000)),
                 ("services.exe", system, (8000, 11000)), ("lsass.exe", system, (14000, 22000)),
                 ("fontdrvhost.exe", "S-1-5-96-0-0", (2500, 4000))]
        table += [("svchost.exe", sid, (5000, 40000)) for sid in
                  [system] * 9 + [local] * 6 + [network] * 4]
        table += [("spoolsv.exe", system, (9000, 14000)), ("MsMpEng.exe", system, (90000, 180000)),
                  ("WmiPrvSE.exe", network, (8000, 16000)), ("msdtc.exe", network, (6000, 9000)),
                  ("dllhost.exe", system, (7000, 12000)), ("vm3dservice.exe", system, (4000, 6000)),
                  ("TSGateway.exe", network, (12000, 20000)), ("conhost.exe", system, (5000, 9000))]
        for image, sid, mem in table:
            self._spawn(image, 0, sid, mem, self._rng.randint(2, 40),
                        boot + self._rng.randint(5, 90))

    def _generate_session_processes(self, session):
        """The processes Windows runs in an interactive session."""
        if session.id == 0 or session.is_listener():
            return
        n, start = session.id, session.logon_time or session.connect_time or self.boot_time
        self._spawn("csrss.exe", n, "S-1-5-18", (3000, 5000), 12, start)
        self._spawn("winlogon.exe", n, "S-1-5-18", (6000, 9000), 5, start)
        self._spawn("fontdrvhost.exe", n, "S-1-5-96-0-%d" % n, (3000, 6000), 5, start)
        self._spawn("dwm.exe", n, "S-1-5-90-0-%d" % n, (30000, 90000), 12, start)
        if not session.user:
            self._spawn("LogonUI.exe", n, "S-1-5-18", (20000, 40000), 9, start)
            return
        user_sid = self.user_sid(session.user)
        images = ["sihost.exe", "svchost.exe", "taskhostw.exe", "explorer.exe", "ctfmon.exe",
                  "RuntimeBroker.exe", "ShellExperienceHost.exe", "SearchUI.exe"]
        if session.client_name:
            images.append("rdpclip.exe")
        for image in images:
            mem = (60000, 140000) if image == "explorer.exe" else (5000, 40000)
            self._spawn(image, n, user_sid, mem, self._rng.randint(3, 60), start + 5)

    def kill_process(self, pid):
        with self.lock:
            for p in self.processes:
                if p.pid == pid:
                    self.processes.remove(p)
                    return p
        return None

    # -- faults --------------------------------------------------------------

    def set_fault(self, spec, what="fault"):
        """Add (or replace, by mode and scope) an injected fault."""
        mode = spec.get("mode")
        if mode not in FAULT_MODES:
            raise ConfigError("%s: unknown fault mode %r (one of %s)"
                              % (what, mode, ", ".join(FAULT_MODES)))
        fault = {"mode": mode, "arg": spec.get("arg"), "iface": spec.get("iface"),
                 "method": spec.get("method"), "after": spec.get("after"),
                 "opnum": None if spec.get("opnum") is None else int(spec["opnum"])}
        arg = fault["arg"]
        if mode == "delay":
            fault["arg"] = parse_duration(arg if arg is not None else 1, what)
        elif mode in ("fault", "bind_nak", "wrong_call_id", "flip_bit") and arg is not None:
            try:
                fault["arg"] = int(arg, 0) if isinstance(arg, str) else int(arg)
            except ValueError:
                raise ConfigError("%s: %s needs a number, not %r" % (what, mode, arg))
        elif mode == "bad_frag_length" and arg not in (None, "larger", "smaller"):
            raise ConfigError("%s: bad_frag_length takes 'larger' or 'smaller'" % what)
        with self.lock:
            self.faults = [f for f in self.faults
                           if (f["mode"], f["iface"], f["method"], f["opnum"]) !=
                           (mode, fault["iface"], fault["method"], fault["opnum"])]
            self.faults.append(fault)
        return fault

    def fault_for(self, modes, iface=None, opnum=None, method=None):
        """The first active fault of one of `modes` whose scope matches the call."""
        with self.lock:
            for f in self.faults:
                if f["mode"] in modes and \
                        (f["iface"] is None or f["iface"] == iface) and \
                        (f["opnum"] is None or f["opnum"] == opnum) and \
                        (f["method"] is None or f["method"] == method) and \
                        (f["after"] is None or f.get("armed")):
                    return f
        return None

    def saw(self, method):
        """Notes a call of `method`: a fault set with after=<method> acts on
        the calls that come after the next such call (not on that call)."""
        with self.lock:
            for f in self.faults:
                if f["after"] == method:
                    f["armed"] = True

    # -- reporting -----------------------------------------------------------

    def describe(self):
        return {"name": self.name, "address": self.address, "port": self.port,
                "profile": self.profile}

    def snapshot(self):
        with self.lock:
            return {
                "host": dict(self.describe(), domain=self.domain, netbios_name=self.netbios_name,
                             clock_offset=self.clock_offset, now=self.now(),
                             max_sessions=self.max_sessions,
                             max_instance_count=self.max_instance_count,
                             listener_query=self.listener_query,
                             allow_smb_identity=self.allow_smb_identity,
                             min_auth_level=self.min_auth_level,
                             accounts=[a.to_json() for a in self.accounts]),
                "sessions": [s.to_json() for s in sorted(self.sessions.values(),
                                                         key=lambda s: s.id)],
                "processes": [p.to_json() for p in self.processes],
                "messages": list(self.messages),
                "shutdowns": list(self.shutdowns),
                "killed": list(self.killed),
                "faults": list(self.faults),
                "counters": {str(k): v for k, v in self.counter_values().items()},
            }
