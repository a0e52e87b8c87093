"""MS-TSTS server methods: request decoding, behaviour, response encoding.

Each handler gets a Call (host, caller, connection, injected-fault flags)
and a strict NDR Reader positioned at the start of the request stub, and
returns (stub bytes, result) where result is the HRESULT / NTSTATUS /
pResult value placed in the stub (logged as "result").  Stub layouts follow
the IDL of MS-TSTS section 6 in parameter order; offsets are relative to the
start of the stub, which is 8-aligned on the wire.

Return conventions (MS-TSTS 3): LSM and RCM methods return an HRESULT as
the last 4 bytes; legacy methods return pResult plus a BOOLEAN as the last
byte.  Windows raises RPC faults only for transport-level errors (unknown
opnum, bad context handle, bad stub data); everything else is a result code.
"""

import ipaddress
import struct
import time
import uuid

from .ndr import BadStub, Writer
from . import lsa
from . import world as W

# HRESULTs (LSM, RCM, and legacy pResult on 2012 R2 and later).
S_OK = 0
S_FALSE = 1
E_ACCESSDENIED = 0x80070005
E_INVALIDARG = 0x80070057
HR_FILE_NOT_FOUND = 0x80070002           # RpcOpenSession: no such session (seen by impacket)
HR_CTX_WINSTATION_NOT_FOUND = 0x80071B6E  # ERROR_CTX_WINSTATION_NOT_FOUND
HR_INVALID_STATE = 0x8007139F
HR_LOGON_FAILURE = 0x8007052E
HR_INSUFFICIENT_BUFFER = 0x8007007A

# NTSTATUS (legacy pResult on 2003/2008).
STATUS_SUCCESS = 0
STATUS_NO_MORE_ENTRIES = 0x8000001A
STATUS_INVALID_INFO_CLASS = 0xC0000003
STATUS_INVALID_CID = 0xC000000B
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_BUFFER_TOO_SMALL = 0xC0000023
STATUS_CTX_WINSTATION_NOT_FOUND = 0xC00A0015

# RPC fault statuses (MS-RPCE 2.2.2.8 / 3.1.1.5.5).
NCA_OP_RNG_ERROR = 0x1C010002
NCA_UNK_IF = 0x1C010003
NCA_CONTEXT_MISMATCH = 0x1C00001A
NCA_INVALID_PRES_CONTEXT = 0x1C00001C
RPC_ACCESS_DENIED = 0x00000005
RPC_SEC_PKG_ERROR = 0x00000721
RPC_BAD_STUB_DATA = 0x000006F7

ABSURD_COUNT = 0x7FFFFFFF

# Legacy pResult values per profile style (see world.PROFILES).
LEGACY_CODES = {
    "ntstatus": {"not_found": STATUS_CTX_WINSTATION_NOT_FOUND, "denied": STATUS_ACCESS_DENIED,
                 "invalid": STATUS_INVALID_PARAMETER, "too_small": STATUS_BUFFER_TOO_SMALL,
                 "no_process": STATUS_INVALID_CID},
    "hresult": {"not_found": HR_CTX_WINSTATION_NOT_FOUND, "denied": E_ACCESSDENIED,
                "invalid": E_INVALIDARG, "too_small": HR_INSUFFICIENT_BUFFER,
                "no_process": E_INVALIDARG},
}

# Session type GUIDs of SESSIONENUM_LEVEL2 (MS-TSTS note <47>).
SESSION_TYPE_SERVICES = uuid.UUID("88f5767d-d13f-404d-a348-8b8e030294a9").bytes_le
SESSION_TYPE_DESKTOP = uuid.UUID("0f0a4bf8-8362-435d-938c-222a518a8b78").bytes_le

NULL_HANDLE = b"\0" * 20


class RpcFault(Exception):
    def __init__(self, status):
        super().__init__("fault 0x%08x" % status)
        self.status = status


class Call:
    """One decoded request as the handlers see it."""

    def __init__(self, host, principal, conn, iface, opnum, absurd=False):
        self.host, self.principal, self.conn = host, principal, conn
        self.iface, self.opnum, self.absurd = iface, opnum, absurd

    def count(self, n):
        """An array count as sent; the absurd_count fault inflates it."""
        return ABSURD_COUNT if self.absurd else n

    def visible_sessions(self):
        """Sessions the caller may see, in Windows' order (listeners last);
        others are skipped silently, as MS-TSTS 3.3.4.3.6 says."""
        return sorted((s for s in self.host.sessions.values() if self.principal.may_see(s)),
                      key=lambda s: (s.is_listener(), s.id))

    def legacy(self, key):
        return LEGACY_CODES[self.host.caps["legacy_codes"]][key]

    def session_access(self, sid):
        """'ok', 'not_found' or 'denied' for acting on / querying a session."""
        session = self.host.sessions.get(sid)
        if session is None:
            return "not_found", None
        if not self.principal.may_see(session):
            return "denied", session
        return "ok", session


def _ft(epoch):
    return W.filetime(epoch)


def _wchars(raw):
    """A counted WCHAR array as text, up to its first NUL."""
    return raw.decode("utf-16-le", "replace").split("\0")[0]


def _hresult_for(status):
    return {"not_found": HR_CTX_WINSTATION_NOT_FOUND, "denied": E_ACCESSDENIED}[status]


# ---------------------------------------------------------------------------
# TermSrvEnumeration (88143fd0-c28d-4b2b-8fef-8d882f6a9390) -- LSM pipe
# ---------------------------------------------------------------------------

def open_enum(call, r):
    """RpcOpenEnum: no parameters on the wire (trailing bytes are ignored,
    as Windows ignores the 20 bogus bytes impacket sends).
    Response: ENUM_HANDLE @0, HRESULT @20."""
    w = Writer()
    w.context_handle(call.conn.new_handle("enum", None))
    w.u32(S_OK)
    return w.getvalue(), S_OK


def close_enum(call, r):
    """RpcCloseEnum([in,out] ENUM_HANDLE): zeroed handle @0, HRESULT @20."""
    call.conn.close_handle(r.context_handle(), "enum")
    w = Writer()
    w.context_handle(NULL_HANDLE)
    w.u32(S_OK)
    return w.getvalue(), S_OK


def _write_session_enum_arm(w, s, level):
    """SESSIONENUM_LEVEL1 {LONG SessionId; LONG State; WCHAR Name[33]} and, at
    level 2, {ULONG Source; BOOL bFullDesktop; GUID SessionType} after it.
    The same first three fields make EXECENVDATA_LEVEL1/2's head."""
    w.u32(s.id)
    w.u32(s.state)
    w.fixed_wchars(s.name, 33)
    if level == 2:
        w.u32(0)                                    # Source: 0 = local
        desktop = s.id != 0 and not s.is_listener()
        w.u32(1 if desktop else 0)                  # bFullDesktop
        w.align(4)
        w.raw(SESSION_TYPE_SERVICES if s.id == 0 else
              SESSION_TYPE_DESKTOP if desktop else b"\0" * 16)


def get_enum_result(call, r):
    """RpcGetEnumResult(hEnum, [out] ppSessionEnumResult, Level, [out] pEntries).

    Response: u32 referent, u32 MaxCount N, N x SESSIONENUM {u32 Level,
    u32 union switch, arm} (84 bytes each at level 1, 108 at level 2),
    u32 pEntries, HRESULT.  Levels above 2 are served as level 2."""
    call.conn.get_handle(r.context_handle(), "enum")
    level = r.u32()
    w = Writer()
    if level < 1:
        w.referent(False)
        w.u32(0)
        w.u32(E_INVALIDARG)
        return w.getvalue(), E_INVALIDARG
    level = min(level, 2)
    with call.host.lock:
        sessions = call.visible_sessions()
        w.referent(True)
        w.u32(call.count(len(sessions)))
        for s in sessions:
            w.u32(level)
            w.u32(level)
            _write_session_enum_arm(w, s, level)
    w.u32(call.count(len(sessions)))
    w.u32(S_OK)
    return w.getvalue(), S_OK


def get_all_sessions(call, r):
    """RpcGetAllSessions([in,out] pLevel, [out] ppSessionData, [out] pcEntries).

    Request: u32 Level.  Response: u32 Level (as served), u32 referent,
    u32 MaxCount N, N x EXECENVDATA {u32 Level, u32 switch, arm}, u32 N,
    HRESULT.  Level 1 arm = ExecEnvId, State, SessionName[33] (84-byte
    elements); level 2 adds AbsSessionId, HostName[33], UserName[33],
    DomainName[33], FarmName[33] (352-byte elements)."""
    level = r.u32()
    w = Writer()
    if level < 1:
        w.u32(level)
        w.referent(False)
        w.u32(0)
        w.u32(E_INVALIDARG)
        return w.getvalue(), E_INVALIDARG
    level = min(level, 2)
    w.u32(level)
    with call.host.lock:
        sessions = call.visible_sessions()
        w.referent(True)
        w.u32(call.count(len(sessions)))
        for s in sessions:
            w.u32(level)
            w.u32(level)
            w.u32(s.id)
            w.u32(s.state)
            w.fixed_wchars(s.name, 33)
            if level == 2:
                w.u32(s.id)                             # AbsSessionId
                w.fixed_wchars(call.host.netbios_name, 33)
                w.fixed_wchars(s.user, 33)
                w.fixed_wchars(s.domain, 33)
                w.fixed_wchars("", 33)                  # FarmName
    w.u32(call.count(len(sessions)))
    w.u32(S_OK)
    return w.getvalue(), S_OK


# ---------------------------------------------------------------------------
# TermSrvSession (484809d6-4239-471b-b5bc-61df8c23ac48) -- LSM pipe
# ---------------------------------------------------------------------------

def open_session(call, r):
    """RpcOpenSession(LONG SessionId): SESSION_HANDLE @0, HRESULT @20.
    The session must exist and not be a listener; no permission is needed
    to open it (each later method checks its own right)."""
    sid = r.i32()
    w = Writer()
    with call.host.lock:
        session = call.host.sessions.get(sid)
        if session is None or session.is_listener():
            w.context_handle(NULL_HANDLE)
            w.u32(HR_FILE_NOT_FOUND)
            return w.getvalue(), HR_FILE_NOT_FOUND
    w.context_handle(call.conn.new_handle("session", sid))
    w.u32(S_OK)
    return w.getvalue(), S_OK


def close_session(call, r):
    call.conn.close_handle(r.context_handle(), "session")
    w = Writer()
    w.context_handle(NULL_HANDLE)
    w.u32(S_OK)
    return w.getvalue(), S_OK


def _session_from_handle(call, r):
    """(status, session) for a SESSION_HANDLE parameter; a session that
    vanished after RpcOpenSession is 'not_found'."""
    sid = call.conn.get_handle(r.context_handle(), "session")
    return call.session_access(sid)


def _hresult_only(hr):
    return struct.pack("<I", hr), hr


def _success(call, what):
    """The success code the host's profile answers `what` with: S_OK, or
    what current Windows sends instead (impacket's notes from real hosts:
    0x10000000 for a logoff; S_FALSE, 1, for connect and for disconnecting
    a session that already is)."""
    return call.host.caps.get("success", {}).get(what, S_OK)


def rpc_connect(call, r):
    """RpcConnect(hSession, LONG TargetSessionId, [string] szPassword) -> HRESULT.

    Like tscon: the session of hSession is attached to the client currently
    connected to the target station; it becomes Active with the target's
    station name and client, and the target is disconnected (if a user is
    logged on there) or discarded (a login screen).  Connecting a session
    of another user (an administrator can) needs that user's password,
    checked when the user is a configured account."""
    with call.host.lock:
        status, source = _session_from_handle(call, r)
        target_id = r.i32()
        password = r.cv_wstring()
        if status != "ok":
            return _hresult_only(_hresult_for(status))
        target = call.host.sessions.get(target_id)
        if target is None or target.is_listener() or target.id == source.id:
            return _hresult_only(HR_FILE_NOT_FOUND if target is None else E_INVALIDARG)
        if target.user and not call.principal.may_see(target):
            return _hresult_only(E_ACCESSDENIED)
        account = call.host.find_account(source.user)
        if not call.principal.owns(source) and account is not None and \
                account.password != password:
            return _hresult_only(HR_LOGON_FAILURE)
        now = call.host.now()
        source.name, source.client_name, source.client_address = \
            target.name, target.client_name, target.client_address
        if source.state == W.STATE_DISCONNECTED:
            call.host.reconnected()
        source.state, source.connect_time, source.disconnect_time = W.STATE_ACTIVE, now, 0.0
        source.last_input_time = now
        if target.user:
            call.host.disconnect_session(target.id)
        else:
            call.host.remove_session(target.id)
    return _hresult_only(_success(call, "connect"))


def rpc_disconnect(call, r):
    """RpcDisconnect(hSession) -> HRESULT.  Only a connected session can be
    disconnected (ERROR_INVALID_STATE otherwise)."""
    with call.host.lock:
        status, session = _session_from_handle(call, r)
        if status != "ok":
            return _hresult_only(_hresult_for(status))
        if session.state == W.STATE_DISCONNECTED and _success(call, "disconnected") != S_OK:
            return _hresult_only(_success(call, "disconnected"))
        if session.state == W.STATE_DISCONNECTED or session.id == 0:
            return _hresult_only(HR_INVALID_STATE)
        call.host.disconnect_session(session.id)
    return _hresult_only(S_OK)


def rpc_logoff(call, r):
    """RpcLogoff(hSession) -> HRESULT; the session and its processes go away.
    Session 0 (services) cannot be logged off."""
    with call.host.lock:
        status, session = _session_from_handle(call, r)
        if status != "ok":
            return _hresult_only(_hresult_for(status))
        if session.id == 0:
            return _hresult_only(HR_INVALID_STATE)
        call.host.remove_session(session.id)
    return _hresult_only(_success(call, "logoff"))


def get_user_name(call, r):
    """RpcGetUserName(hSession, [out,string] pszUserName, [out,string] pszDomain).
    Response: referent + CV string (user), referent + CV string (domain),
    HRESULT; both pointers NULL on failure."""
    w = Writer()
    with call.host.lock:
        status, session = _session_from_handle(call, r)
        if status != "ok":
            hr = _hresult_for(status)
            w.referent(False)
            w.referent(False)
        else:
            hr = S_OK
            for text in (session.user, session.domain):
                w.referent(True)
                w.cv_wstring(text)
    w.u32(hr)
    return w.getvalue(), hr


def get_terminal_name(call, r):
    """RpcGetTerminalName(hSession, [out,string] pszTerminalName)."""
    w = Writer()
    with call.host.lock:
        status, session = _session_from_handle(call, r)
        hr = S_OK if status == "ok" else _hresult_for(status)
        if w.referent(status == "ok"):
            w.cv_wstring(session.name)
    w.u32(hr)
    return w.getvalue(), hr


def get_state(call, r):
    """RpcGetState(hSession, [out] LONG plState): state @0, HRESULT @4."""
    w = Writer()
    with call.host.lock:
        status, session = _session_from_handle(call, r)
        hr = S_OK if status == "ok" else _hresult_for(status)
        w.u32(session.state if status == "ok" else 0)
    w.u32(hr)
    return w.getvalue(), hr


def is_desktop_locked(call, r):
    """RpcIsSessionDesktopLocked(hSession): S_OK when locked, S_FALSE if not."""
    with call.host.lock:
        status, session = _session_from_handle(call, r)
        if status != "ok":
            return _hresult_only(_hresult_for(status))
        return _hresult_only(S_OK if session.locked else S_FALSE)


def _message_response(session, do_not_wait):
    """What the user "clicked": IDASYNC when the caller does not wait,
    IDTIMEOUT when nobody is connected to see it, else the configured answer."""
    if do_not_wait:
        return W.IDASYNC
    if session.state == W.STATE_DISCONNECTED:
        return W.IDTIMEOUT
    return session.message_response


def _record_message(call, session, title, text, style, timeout, do_not_wait, via):
    response = _message_response(session, do_not_wait)
    call.host.messages.append({
        "ts": call.host.now(), "session": session.id, "user": session.user,
        "title": title, "message": text, "style": style, "timeout": timeout,
        "do_not_wait": bool(do_not_wait), "response": response, "method": via,
        "caller": str(call.principal)})
    return response


def show_message_box(call, r):
    """RpcShowMessageBox(hSession, [string] szTitle, [string] szMessage,
    ULONG ulStyle, ULONG ulTimeout, [out] pulResponse, BOOL bDoNotWait).
    Response: pulResponse @0, HRESULT @4."""
    with call.host.lock:
        status, session = _session_from_handle(call, r)
        title = r.cv_wstring()
        text = r.cv_wstring()
        style, timeout, do_not_wait = r.u32(), r.u32(), r.u32()
        w = Writer()
        delay = 0
        if status != "ok" or not session.user:
            hr = _hresult_for(status) if status != "ok" else HR_INVALID_STATE
            w.u32(0)
        else:
            hr = S_OK
            w.u32(_record_message(call, session, title, text, style, timeout, do_not_wait,
                                  "RpcShowMessageBox"))
            delay = 0 if do_not_wait else session.message_delay
    if hr == S_OK and delay:
        # the user reads the box and answers after a while (outside the
        # host's lock: the host goes on answering other calls meanwhile)
        time.sleep(min(delay, timeout) if timeout else delay)
    w.u32(hr)
    return w.getvalue(), hr


def get_times(call, r):
    """RpcGetTimes(hSession): hyper ConnectTime @0, DisconnectTime @8,
    LogonTime @16 (FILETIME, 0 = none), HRESULT @24."""
    w = Writer()
    with call.host.lock:
        status, s = _session_from_handle(call, r)
        ok = status == "ok"
        for t in ((s.connect_time, s.disconnect_time, s.logon_time) if ok else (0, 0, 0)):
            w.i64(_ft(t))
    hr = S_OK if ok else _hresult_for(status)
    w.u32(hr)
    return w.getvalue(), hr


def get_session_information(call, r):
    """RpcGetSessionInformation(LONG SessionId, [ref,out] PLSMSESSIONINFORMATION).

    Response (struct aligned 8): @0 referent pszUserName, @4 referent
    pszDomain, @8 referent pszTerminalName, @12 LONG SessionState,
    @16 BOOL DesktopLocked, @20 pad, @24 hyper ConnectTime, @32
    DisconnectTime, @40 LogonTime, then the three CV strings, then HRESULT.
    On failure the structure is all zero (NULL strings)."""
    sid = r.i32()
    w = Writer()
    with call.host.lock:
        status, s = call.session_access(sid)
        ok = status == "ok"
        for _ in range(3):
            w.referent(ok)
        w.u32(s.state if ok else 0)
        w.u32(1 if ok and s.locked else 0)
        for t in ((s.connect_time, s.disconnect_time, s.logon_time) if ok else (0, 0, 0)):
            w.i64(_ft(t))
        if ok:
            for text in (s.user, s.domain, s.name):
                w.cv_wstring(text)
    hr = S_OK if ok else _hresult_for(status)
    w.u32(hr)
    return w.getvalue(), hr


def session_flags(s):
    """LSM_SESSIONINFO_EX_LEVEL1.SessionFlags: 0 locked, 1 unlocked,
    0xFFFFFFFF (unknown) for a session without a user."""
    if not s.user:
        return 0xFFFFFFFF
    return 0 if s.locked else 1


def _lsm_last_input(host, s):
    """LastInputTime as this profile's LSM sends it: an absolute FILETIME on
    the host clock, or (Windows 11, "lsm_input": "relative") the time since
    the last input in 100 ns units."""
    if host.caps.get("lsm_input") == "relative" and s.last_input_time:
        return max(1, int((host.now() - s.last_input_time) * 10_000_000))
    return _ft(s.last_input_time)


def get_session_information_ex(call, r):
    """RpcGetSessionInformationEx(LONG SessionId, DWORD Level=1, [ref,out]
    PLSMSESSIONINFORMATION_EX).

    Response: @0 u32 Level, @4 u32 union switch, @8 LSM_SESSIONINFO_EX_LEVEL1:
    @8 SessionState, @12 SessionFlags, @16 SessionName[33], @82
    DomainName[18], @118 UserName[21], @160 ConnectTime, @168
    DisconnectTime, @176 LogonTime, @184 LastInputTime (absolute FILETIME on
    the host clock; relative on Windows 11, see _lsm_last_input), @192 ProtocolDataSize (0), @196 ProtocolData referent
    (NULL), @200 HRESULT.  Failures keep the layout with a zeroed arm."""
    sid = r.i32()
    level = r.u32()
    w = Writer()
    w.u32(1)
    w.u32(1)
    with call.host.lock:
        status, s = call.session_access(sid)
        ok = status == "ok" and level == 1
        w.u32(s.state if ok else 0)
        w.u32(session_flags(s) if ok else 0)
        w.fixed_wchars(s.name if ok else "", 33)
        w.fixed_wchars(s.domain if ok else "", 18)
        w.fixed_wchars(s.user if ok else "", 21)
        times = (s.connect_time, s.disconnect_time, s.logon_time) if ok else (0, 0, 0)
        for t in times:
            w.i64(_ft(t))
        w.i64(_lsm_last_input(call.host, s) if ok else 0)
    w.u32(0)
    w.referent(False)
    hr = S_OK if ok else (E_INVALIDARG if status == "ok" else _hresult_for(status))
    w.u32(hr)
    return w.getvalue(), hr


# ---------------------------------------------------------------------------
# RCMPublic (bde95fdf-eee0-45de-9e12-e5a61cd0d4fe) -- TermSrv pipe
# ---------------------------------------------------------------------------

# WINSTATIONCLIENT (MS-TSTS 2.2.2.19) in memory layout, 2296 bytes; only the
# fields the simulator fills are listed (offset, kind, length in characters).
CLIENT_SIZE = 2296
CLIENT_FIELDS = {"ClientName": (4, 21), "Domain": (46, 18), "UserName": (82, 21),
                 "ClientAddress": (1196, 31)}
CLIENT_ADDRESS_FAMILY_OFFSET = 1192
CLIENT_RESOLUTION_OFFSET = 1258           # HRes, VRes, ColorDepth (u16 each)
CLIENT_BUILD_OFFSET = 2012
# TS_TIME_ZONE_INFORMATION (2.2.2.19.1) at 2048: Bias, StandardName[32],
# StandardDate (TS_SYSTEMTIME, 16 bytes), StandardBias, DaylightName[32],
# DaylightDate, DaylightBias
CLIENT_TIME_ZONE_OFFSET = 2048


def winstation_client(s):
    blob = bytearray(CLIENT_SIZE)
    struct.pack_into("<I", blob, 0, 0x4)                      # fMouse
    values = {"ClientName": s.client_name, "Domain": s.domain, "UserName": s.user,
              "ClientAddress": s.client_address}
    for field, (offset, chars) in CLIENT_FIELDS.items():
        encoded = values[field].encode("utf-16-le")[:2 * (chars - 1)]
        blob[offset:offset + len(encoded)] = encoded
    family = 23 if ":" in s.client_address else 2
    struct.pack_into("<I", blob, CLIENT_ADDRESS_FAMILY_OFFSET, family)
    struct.pack_into("<HHH", blob, CLIENT_RESOLUTION_OFFSET, 1920, 1080, 32)
    struct.pack_into("<I", blob, CLIENT_BUILD_OFFSET, s.client_build)
    if s.client_time_zone:
        tz = CLIENT_TIME_ZONE_OFFSET
        struct.pack_into("<i", blob, tz, s.client_tz_bias)
        name = s.client_time_zone.encode("utf-16-le")[:62]
        blob[tz + 4:tz + 4 + len(name)] = name
        struct.pack_into("<i", blob, tz + 84, 0)                  # StandardBias
        daylight = s.client_time_zone.replace("Standard", "Daylight").encode("utf-16-le")[:62]
        blob[tz + 88:tz + 88 + len(daylight)] = daylight
        struct.pack_into("<i", blob, tz + 168, -60 if s.client_tz_bias else 0)  # DaylightBias
    return bytes(blob)


def _rcm_session(call, sid, need_client):
    status, s = call.session_access(sid)
    if status == "ok" and need_client and not s.client_address:
        status = "not_found"        # no client connected through RCM
    return status, s


def get_client_data(call, r):
    """RpcGetClientData(ULONG SessionId, [out, size_is(,*len)] ppBuff, [out] len).
    Response: u32 referent, u32 MaxCount, WINSTATIONCLIENT bytes, u32
    pOutBuffByteLen, HRESULT; NULL and 0 when the session has no client."""
    sid = r.u32()
    w = Writer()
    with call.host.lock:
        status, s = _rcm_session(call, sid, True)
        if status == "ok":
            blob = winstation_client(s)
            w.referent(True)
            w.conformant_bytes(blob)
            w.u32(len(blob))
            hr = S_OK
        else:
            w.referent(False)
            w.u32(0)
            hr = _hresult_for(status)
    w.u32(hr)
    return w.getvalue(), hr


def get_last_input_time(call, r):
    """RpcGetLastInputTime(ULONG SessionId, [out] hyper): FILETIME @0, HRESULT @8."""
    sid = r.u32()
    w = Writer()
    with call.host.lock:
        status, s = _rcm_session(call, sid, False)
        w.i64(_ft(s.last_input_time) if status == "ok" else 0)
    hr = S_OK if status == "ok" else _hresult_for(status)
    w.u32(hr)
    return w.getvalue(), hr


def _write_remote_address(w, address):
    """RCM_REMOTEADDRESS: u16 sin_family, u16 union switch, then (union
    aligned 4) IPv4: u16 port @4, ULONG in_addr @8 (bytes in network
    order), 8 zero bytes @12; IPv6: u16 port @4, ULONG flowinfo @8,
    16 address bytes @12, ULONG scope_id @28.  Port bytes are in network
    order too: the structure is a sockaddr marshalled as NDR."""
    ip = ipaddress.ip_address(address) if address else ipaddress.IPv4Address(0)
    family = 23 if ip.version == 6 else 2
    w.u16(family)
    w.u16(family)
    w.align(4)
    w.raw(struct.pack(">H", 3389 if address else 0))
    w.align(4)
    if family == 2:
        w.raw(ip.packed + b"\0" * 8)
    else:
        w.u32(0)
        w.raw(ip.packed)
        w.u32(0)


def get_remote_address(call, r):
    """RpcGetRemoteAddress(ULONG SessionId, [out] PRCM_REMOTEADDRESS):
    20 bytes for IPv4 (32 for IPv6), then HRESULT."""
    sid = r.u32()
    w = Writer()
    with call.host.lock:
        status, s = _rcm_session(call, sid, True)
        _write_remote_address(w, s.client_address if status == "ok" else "")
    hr = S_OK if status == "ok" else _hresult_for(status)
    w.u32(hr)
    return w.getvalue(), hr


# ---------------------------------------------------------------------------
# Legacy IcaApi (5ca4a760-ebb1-11cf-8611-00a0245420ed) -- Ctx_WinStation pipe
# ---------------------------------------------------------------------------

def _legacy(w, result, ok):
    """pResult was written by the caller where IDL places it; the BOOLEAN
    return value is the last byte of every legacy response."""
    w.u8(1 if ok else 0)
    return w.getvalue(), result


def _legacy_simple(result):
    w = Writer()
    w.u32(result)
    return _legacy(w, result, result in (STATUS_SUCCESS, STATUS_NO_MORE_ENTRIES))


def open_server(call, r):
    """RpcWinStationOpenServer: pResult @0, SERVER_HANDLE @4, BOOLEAN @24."""
    w = Writer()
    w.u32(STATUS_SUCCESS)
    w.context_handle(call.conn.new_handle("server", None))
    return _legacy(w, STATUS_SUCCESS, True)


def close_server(call, r):
    """RpcWinStationCloseServer(hServer): pResult, BOOLEAN."""
    call.conn.close_handle(r.context_handle(), "server")
    return _legacy_simple(STATUS_SUCCESS)


def close_server_ex(call, r):
    """RpcWinStationCloseServerEx([in,out] phServer): zeroed handle @0,
    pResult @20, BOOLEAN @24."""
    call.conn.close_handle(r.context_handle(), "server")
    w = Writer()
    w.context_handle(NULL_HANDLE)
    w.u32(STATUS_SUCCESS)
    return _legacy(w, STATUS_SUCCESS, True)


LOGONID_SIZE = 76   # SessionId @0, WinStationName[33] @4, pad @70, State @72


def logonid(s):
    name = s.name.encode("utf-16-le")[:64]
    return struct.pack("<I66s2xI", s.id, name, s.state)


def enumerate_sessions(call, r):
    """RpcWinStationEnumerate(hServer, [out] pResult, [in,out] pEntries,
    [in,out,unique,size_is(*pByteCount)] pLogonId, [in,out] pByteCount,
    [in,out] pIndex).

    Request: handle, u32 entries wanted (0xFFFFFFFF = as many as fit),
    u32 referent + u32 MaxCount (= ByteCount) + bytes, u32 ByteCount,
    u32 Index (0 first).  Response: pResult, u32 entries returned, referent +
    MaxCount + the caller's ByteCount bytes holding that many 76-byte
    LOGONID records, u32 ByteCount (unchanged), u32 next Index, BOOLEAN.
    Once every session was returned: TRUE with STATUS_NO_MORE_ENTRIES."""
    call.conn.get_handle(r.context_handle(), "server")
    wanted = r.u32()
    buf = r.unique_bytes()
    byte_count = r.u32()
    index = r.u32()
    if buf is not None and len(buf) != byte_count:
        raise BadStub("pLogonId conformance does not match *pByteCount")
    w = Writer()
    with call.host.lock:
        sessions = call.visible_sessions()
        if buf is None:
            result, n, ok = call.legacy("invalid"), 0, False
        elif index >= len(sessions):
            result, n, ok = STATUS_NO_MORE_ENTRIES, 0, True
        else:
            n = min(len(sessions) - index, wanted, byte_count // LOGONID_SIZE)
            result, ok = (STATUS_SUCCESS, True) if n else (call.legacy("too_small"), False)
        out = bytearray(buf or b"")
        for i, s in enumerate(sessions[index:index + n]):
            out[i * LOGONID_SIZE:(i + 1) * LOGONID_SIZE] = logonid(s)
    w.u32(result)
    w.u32(call.count(n) if n else 0)
    if w.referent(buf is not None):
        w.conformant_bytes(bytes(out))
    w.u32(byte_count)
    w.u32(index + n)
    return _legacy(w, result, ok)


# WINSTATIONINFORMATION (MS-TSTS 2.2.2.20) as returned for class 8: a
# VARDATA_WIRE {u16 Size, u16 Offset=4} and the structure in its Windows
# memory layout right after it.  Offsets below are within the structure
# (add 4 for the offset in the returned buffer); see sim/README.md.
WSI_CLASS = 8
PROTOCOLCOUNTERS_SIZE = 460      # 14 ULONGs, 2 USHORTs, a union of ULONG[100]
CACHE_STATISTICS_SIZE = 84       # 2 USHORTs, a union of ULONG[20]
PROTOCOLSTATUS_SIZE = 2 * PROTOCOLCOUNTERS_SIZE + CACHE_STATISTICS_SIZE + 2 * 4   # 1012
WSI_SIZE = 1216
WSI_OFFSETS = {"ConnectState": 0, "WinStationName": 4, "LogonId": 72, "ConnectTime": 80,
               "DisconnectTime": 88, "LastInputTime": 96, "LogonTime": 104, "Status": 112,
               "Domain": 112 + PROTOCOLSTATUS_SIZE, "UserName": 1160, "CurrentTime": 1208}


def winstation_information(host, s):
    info = bytearray(WSI_SIZE)
    o = WSI_OFFSETS
    struct.pack_into("<I", info, o["ConnectState"], s.state)
    info[o["WinStationName"]:o["WinStationName"] + 64] = \
        s.name.encode("utf-16-le")[:64].ljust(64, b"\0")
    struct.pack_into("<I", info, o["LogonId"], s.id)
    for field, t in (("ConnectTime", s.connect_time), ("DisconnectTime", s.disconnect_time),
                     ("LastInputTime", s.last_input_time), ("LogonTime", s.logon_time),
                     ("CurrentTime", host.now())):
        struct.pack_into("<q", info, o[field], _ft(t))
    # PROTOCOLSTATUS: Output and Input PROTOCOLCOUNTERS carry ProtocolType at
    # +56 (2 = RDP) for remote sessions; counters stay zero.
    protocol = 2 if s.client_address else 0
    for counters in (o["Status"], o["Status"] + PROTOCOLCOUNTERS_SIZE):
        struct.pack_into("<H", info, counters + 56, protocol)
    for field, chars, text in (("Domain", 18, s.domain), ("UserName", 21, s.user)):
        encoded = text.encode("utf-16-le")[:2 * (chars - 1)]
        info[o[field]:o[field] + len(encoded)] = encoded
    return struct.pack("<HH", WSI_SIZE, 4) + bytes(info)


# WINSTATIONCREATE (MS-TSTS 6.5 winsta.h) for class WinStationCreateData (0,
# MS-TSTS 3.7.4.1.6): { ULONG fEnableWinStation : 1; ULONG MaxInstanceCount; }
# in its C layout: the bit field in the ULONG at 0 (bit 0), the count at 4.
CREATE_CLASS = 0
WINSTATIONCREATE_SIZE = 8


def create_data(host):
    """The listener's WINSTATIONCREATE.  Every session of the host answers
    with the RDP listener's (sessions inherit their listener's settings)."""
    enabled, max_instances = host.listener_create()
    return struct.pack("<II", 1 if enabled else 0, max_instances)


# WDCONFIG (MS-TSTS 2.2.2.27) for class WinStationWd (3) in its C layout:
# WdName[33] @0, WdDLL[33] @66, WsxDLL[33] @132, (2 pad) WdFlag @200,
# WdInputBufferLength @204, CfgDLL[33] @208, WdPrefix[13] @274; 300 bytes,
# after a VARDATA_WIRE {Size = 300, Offset = 4}.
WD_CLASS = 3
WDCONFIG_SIZE = 300
WDF_RDP = 0x2 | 0x4 | 0x10 | 0x20     # shadow source/target, TSHARE, dynamic reconnect


def winstation_wd(host, s):
    name, dll = host.winstation_driver(s)
    wd = bytearray(WDCONFIG_SIZE)
    rdp = dll == "rdpwd"
    for offset, chars, text in ((0, 33, name), (66, 33, dll), (132, 33, "rdpwsx" if rdp else ""),
                                (208, 33, "RDPCFGEX.DLL" if rdp else ""),
                                (274, 13, "RDP" if rdp else "")):
        encoded = text.encode("utf-16-le")[:2 * (chars - 1)]
        wd[offset:offset + len(encoded)] = encoded
    struct.pack_into("<II", wd, 200, WDF_RDP if rdp else 0, 2048 if dll else 0)
    return struct.pack("<HH", WDCONFIG_SIZE, 4) + bytes(wd)


# Class WinStationPd (4): VARDATA_WIRE {Size = sizeof(PDCONFIG2), Offset =
# 12}, PDPARAMSWIRE {SdClass, VARDATA_WIRE {sizeof(PDPARAMS) - 4, 180}},
# PDCONFIG2 @12 and the PDPARAMS union @180 (MS-TSTS 3.7.4.1.6).
# PDCONFIG2 (2.2.2.26.1): PdName[33] @0, (pad) SdClass @68, PdDLL[33] @72,
# (pad) PdFlag @140, OutBufLength, OutBufCount, OutBufDelay,
# InteractiveDelay, PortNumber @160, KeepAliveTimeout @164; 168 bytes.
# PDPARAMS (2.2.2.21): SdClass + the largest arm, ASYNCCONFIG (DeviceName[129]
# @0, ModemName[129] @258, 4 ULONGs, a bit field, FLOWCONTROLCONFIG (20),
# CONNECTCONFIG (8): 564 bytes); NETWORKCONFIG is LanAdapter @0,
# NetworkName[129] @4 ("not used"), Flags @264.
PD_CLASS = 4
PDCONFIG2_SIZE = 168
PDPARAMS_SIZE = 4 + 564
PD_BUFFER_SIZE = 4 + 8 + PDCONFIG2_SIZE + PDPARAMS_SIZE    # 748
SD_NONE, SD_NETWORK, SD_ASYNC = 0, 2, 3


def winstation_pd(host, s):
    _, dll = host.winstation_driver(s)
    if s.device and dll:
        sd, pd_name, pd_dll = SD_ASYNC, "async", "tdasync"
    elif dll == "rdpwd":
        sd, pd_name, pd_dll = SD_NETWORK, "tcp", "tdtcp"
    else:
        sd, pd_name, pd_dll = SD_NONE, "", ""
    params_off = 12 + PDCONFIG2_SIZE
    blob = bytearray(PD_BUFFER_SIZE)
    struct.pack_into("<HH", blob, 0, PDCONFIG2_SIZE, 12)
    struct.pack_into("<IHH", blob, 4, sd, PDPARAMS_SIZE - 4, params_off)
    for offset, text in ((12, pd_name), (12 + 72, pd_dll)):
        encoded = text.encode("utf-16-le")[:64]
        blob[offset:offset + len(encoded)] = encoded
    struct.pack_into("<I", blob, 12 + 68, sd)
    if sd != SD_NONE:
        struct.pack_into("<IIIIIII", blob, 12 + 140, 0x4A, 530, 6, 100, 50,
                         3389 if sd == SD_NETWORK else 0, 0)
    if sd == SD_ASYNC:
        encoded = s.device.encode("utf-16-le")[:256]
        blob[params_off:params_off + len(encoded)] = encoded
        struct.pack_into("<I", blob, params_off + 516, 115200)          # BaudRate
    return bytes(blob)


def query_information(call, r):
    """RpcWinStationQueryInformation(hServer, [out] pResult, LogonId, Class,
    [in,out,unique,size_is(Length)] pWinStationInformation, [range(0,0x8000)]
    Length, [out] pReturnLength).

    Classes served: 8 (WinStationInformation): 1220 bytes (VARDATA_WIRE +
    WINSTATIONINFORMATION); 0 (WinStationCreateData): WINSTATIONCREATE, 8
    bytes (see create_data); 3 (WinStationWd): 304 bytes (winstation_wd);
    4 (WinStationPd): 748 bytes (winstation_pd).  Response: pResult,
    referent + MaxCount (= Length) + Length bytes, u32 ReturnLength,
    BOOLEAN.  A short buffer gets STATUS_BUFFER_TOO_SMALL (its 2012 R2+
    HRESULT) and ReturnLength the size needed; other classes
    STATUS_INVALID_INFO_CLASS."""
    call.conn.get_handle(r.context_handle(), "server")
    sid = r.u32()
    info_class = r.u32()
    buf = r.unique_bytes()
    length = r.ranged_u32(0, 0x8000)
    if buf is not None and len(buf) != length:
        raise BadStub("buffer conformance does not match WinStationInformationLength")
    sizes = {CREATE_CLASS: WINSTATIONCREATE_SIZE, WSI_CLASS: 4 + WSI_SIZE,
             WD_CLASS: 4 + WDCONFIG_SIZE, PD_CLASS: PD_BUFFER_SIZE}
    encoders = {CREATE_CLASS: lambda s: create_data(call.host),
                WSI_CLASS: lambda s: winstation_information(call.host, s),
                WD_CLASS: lambda s: winstation_wd(call.host, s),
                PD_CLASS: lambda s: winstation_pd(call.host, s)}
    needed = sizes.get(info_class, 0)
    out = bytearray(buf or b"")
    with call.host.lock:
        status, s = call.session_access(sid)
        if info_class not in sizes or \
                (info_class == CREATE_CLASS and call.host.listener_query == "invalid_class"):
            result, returned = STATUS_INVALID_INFO_CLASS, 0
        elif status != "ok":
            result, returned = call.legacy(status), 0
        elif info_class == CREATE_CLASS and call.host.listener_query == "denied":
            result, returned = call.legacy("denied"), 0
        elif buf is None or length < needed:
            result, returned = call.legacy("too_small"), needed
        elif info_class == CREATE_CLASS and length != needed:
            # 3.7.4.1.6: the length MUST be sizeof(WINSTATIONCREATE)
            result, returned = call.legacy("invalid"), 0
        else:
            out[:needed] = encoders[info_class](s)
            result, returned = STATUS_SUCCESS, needed
    w = Writer()
    w.u32(result)
    if w.referent(buf is not None):
        w.conformant_bytes(bytes(out))
    w.u32(returned)
    return _legacy(w, result, result == STATUS_SUCCESS)


# TS_COUNTER (MS-TSTS 2.2.2.17) in NDR: TS_COUNTER_HEADER {DWORD
# dwCounterID @0; boolean bResult @4}, DWORD dwValue @8, LARGE_INTEGER
# startTime @16 (always 0); 24 bytes, aligned 8.
TS_COUNTER_SIZE = 24


def _read_counters(r):
    """The [in,out,size_is(n)] TS_COUNTER array: MaxCount, then the
    elements (8-aligned); only the ids matter on the way in."""
    count = r.u32()
    if count > 0x1000:
        raise BadStub("pCounter: absurd conformance %d" % count)
    r.align(8)
    ids = []
    for _ in range(count):
        ids.append(r.u32())
        r.take(TS_COUNTER_SIZE - 4)
    return ids


def _write_counters(w, host, ids):
    values = host.counter_values()
    w.u32(len(ids))
    w.align(8)
    for cid in ids:
        known = cid in values
        # an unknown id comes back as 0 with bResult FALSE (2.2.2.17.1)
        w.u32(cid if known else 0)
        w.u8(1 if known else 0)
        w.align(4)
        w.u32(values.get(cid, 0))
        w.i64(0)


def get_session_counters(call, r):
    """RpcGetSessionCounters([in,out,size_is(uEntries)] PTS_COUNTER pCounter,
    ULONG uEntries) -> HRESULT (TermSrvSession opnum 11).  The conformance
    comes first on the wire, uEntries after the array.  No permission is
    needed (3.3.4.1.12)."""
    ids = _read_counters(r)
    if r.u32() != len(ids):
        raise BadStub("uEntries does not match the pCounter conformance")
    w = Writer()
    _write_counters(w, call.host, ids)
    w.u32(S_OK)
    return w.getvalue(), S_OK


def get_termsrv_counters(call, r):
    """RpcWinStationGetTermSrvCountersValue(hServer, [out] pResult,
    [range(0,0x1000)] dwEntries, [in,out,size_is(dwEntries)] PTS_COUNTER)
    (legacy opnum 45).  Response: pResult, the array, BOOLEAN."""
    call.conn.get_handle(r.context_handle(), "server")
    count = r.ranged_u32(0, 0x1000)
    ids = _read_counters(r)
    if len(ids) != count:
        raise BadStub("pCounter conformance does not match dwEntries")
    w = Writer()
    w.u32(STATUS_SUCCESS)
    _write_counters(w, call.host, ids)
    return _legacy(w, STATUS_SUCCESS, True)


def send_message(call, r):
    """RpcWinStationSendMessage(hServer, [out] pResult, LogonId,
    [size_is(TitleLength)] PWCHAR pTitle, TitleLength, [size_is(MessageLength)]
    PWCHAR pMessage, MessageLength, Style, Timeout, [out] pResponse,
    BOOLEAN DoNotWait).  Lengths are character counts (the NDR conformance),
    range 0..1024.  Response: pResult @0, pResponse @4, BOOLEAN @8."""
    call.conn.get_handle(r.context_handle(), "server")
    sid = r.u32()
    title_max = r.u32()
    title = r.take(2 * title_max)
    if r.ranged_u32(0, 1024) != title_max:
        raise BadStub("pTitle conformance does not match TitleLength")
    message_max = r.u32()
    message = r.take(2 * message_max)
    if r.ranged_u32(0, 1024) != message_max:
        raise BadStub("pMessage conformance does not match MessageLength")
    style, timeout, do_not_wait = r.u32(), r.u32(), r.u8()
    w = Writer()
    with call.host.lock:
        status, s = call.session_access(sid)
        if status == "ok" and s.user:
            result = STATUS_SUCCESS
            response = _record_message(call, s, _wchars(title), _wchars(message), style,
                                       timeout, do_not_wait, "RpcWinStationSendMessage")
        else:
            result = call.legacy(status if status != "ok" else "invalid")
            response = 0
    w.u32(result)
    w.u32(response)
    return _legacy(w, result, result == STATUS_SUCCESS)


def _legacy_session_action(call, r, action):
    """Shared shape of Disconnect(13) and Reset(14): hServer, LogonId,
    BOOLEAN bWait -> pResult, BOOLEAN."""
    call.conn.get_handle(r.context_handle(), "server")
    sid = r.u32()
    r.u8()                              # bWait: the simulator acts at once
    with call.host.lock:
        status, s = call.session_access(sid)
        if status != "ok":
            return _legacy_simple(call.legacy(status))
        return _legacy_simple(action(s))


def winstation_disconnect(call, r):
    def act(s):
        if s.state == W.STATE_DISCONNECTED or s.id == 0 or s.is_listener():
            return call.legacy("invalid")
        call.host.disconnect_session(s.id)
        return STATUS_SUCCESS
    return _legacy_session_action(call, r, act)


def winstation_reset(call, r):
    """Reset logs the session off.  Resetting a listener disconnects the
    sessions that came in through it (MS-TSTS note <184>); session 0
    cannot be reset."""
    def act(s):
        if s.id == 0:
            return call.legacy("denied")
        if s.is_listener():
            for other in list(call.host.sessions.values()):
                if other.name.lower().startswith(s.name.lower() + "#"):
                    call.host.disconnect_session(other.id)
            return STATUS_SUCCESS
        call.host.remove_session(s.id)
        return STATUS_SUCCESS
    return _legacy_session_action(call, r, act)


def shutdown_system(call, r):
    """RpcWinStationShutdownSystem(hServer, ClientLogonId, ShutdownFlags):
    recorded, not performed.  Needs an administrator."""
    call.conn.get_handle(r.context_handle(), "server")
    client_logon_id, flags = r.u32(), r.u32()
    if not call.principal.admin:
        return _legacy_simple(call.legacy("denied"))
    with call.host.lock:
        call.host.shutdowns.append({"ts": call.host.now(), "flags": flags,
                                    "client_logon_id": client_logon_id,
                                    "caller": str(call.principal)})
    return _legacy_simple(STATUS_SUCCESS)


def terminate_process(call, r):
    """RpcWinStationTerminateProcess(hServer, ProcessId, ExitCode).  The
    process disappears; a non-admin may only kill processes of its own
    sessions; System (4) and the Idle process (0) cannot be killed."""
    call.conn.get_handle(r.context_handle(), "server")
    pid, exit_code = r.u32(), r.u32()
    with call.host.lock:
        proc = next((p for p in call.host.processes if p.pid == pid), None)
        if proc is None:
            return _legacy_simple(call.legacy("no_process"))
        owner = call.host.sessions.get(proc.session)
        allowed = pid not in (0, 4) and (call.principal.admin or
                                         (owner is not None and call.principal.owns(owner)))
        if not allowed:
            return _legacy_simple(call.legacy("denied"))
        call.host.kill_process(pid)
        call.host.killed.append({"ts": call.host.now(), "pid": pid, "image": proc.image,
                                 "session": proc.session, "exit_code": exit_code,
                                 "caller": str(call.principal)})
    return _legacy_simple(STATUS_SUCCESS)


TS_SYS_PROCESS_INFORMATION_SIZE = 136


def _write_process_info(w, p):
    """TS_SYS_PROCESS_INFORMATION (NDR, SIZE_T = 4 bytes), aligned 8:
    @0 NextEntryOffset, @4 NumberOfThreads, @8/16/24 SpareLi1-3, @32
    CreateTime, @40 UserTime, @48 KernelTime, @56 ImageName {u16 Length,
    u16 MaximumLength, u32 Buffer referent}, @64 BasePriority, @68
    UniqueProcessId, @72 InheritedFromUniqueProcessId, @76 HandleCount, @80
    SessionId, @84 SpareUl3, @88 PeakVirtualSize, @92 VirtualSize, @96
    PageFaultCount, @100 PeakWorkingSetSize, @104 WorkingSetSize, @108..@132
    quota/pagefile/private counters; 136 bytes."""
    w.align(8)
    start = len(w)
    w.u32(0)
    w.u32(p.threads)
    for _ in range(3):
        w.i64(0)
    w.i64(_ft(p.create_time))
    cpu = p.threads * 150_000                       # a plausible CPU time
    w.i64(cpu * 3)                                    # UserTime (100 ns)
    w.i64(cpu)                                        # KernelTime
    name_bytes = len(p.image.encode("utf-16-le")) if p.image else 0
    w.u16(name_bytes)
    w.u16(name_bytes + 2 if p.image else 0)
    w.referent(bool(p.image))
    w.u32(8 if p.pid else 0)                          # BasePriority
    w.u32(p.pid)
    w.u32(p.parent)
    w.u32(p.handles)
    w.u32(p.session)
    w.u32(0)
    memory = p.memory
    for value in (memory * 3, memory * 2, memory // 4096, memory + memory // 8, memory,
                  memory // 40, memory // 50, memory // 200, memory // 250,
                  memory // 2, memory // 2 + memory // 8, memory // 2):
        w.u32(min(value, 0xFFFFFFFF))
    assert len(w) - start == TS_SYS_PROCESS_INFORMATION_SIZE


def get_all_processes(call, r):
    """RpcWinStationGetAllProcesses(hServer, [out] pResult, Level (must be 0),
    [in,out] BOUNDED_ULONG *pNumberOfProcesses, [out, size_is(,*pNumber)]
    PTS_ALL_PROCESSES_INFO *ppTsAllProcessesInfo).

    Response: pResult, u32 N, u32 referent, u32 MaxCount N, N x
    TS_ALL_PROCESSES_INFO {referent pTsProcessInfo, u32 SizeOfSid, referent
    pSid}, then per element, depth first: the TS_SYS_PROCESS_INFORMATION
    (aligned 8), its ImageName buffer (MaxCount = MaximumLength, Offset 0,
    ActualCount = Length: the byte lengths used as WCHAR counts, as the IDL
    says, so 2 x Length bytes follow: the name, a NUL, zero fill), and the
    SID bytes (MaxCount + SizeOfSid bytes).  NULL ImageName for the Idle
    process, NULL pSid where Windows has none.  BOOLEAN last.  At most the
    requested number of processes; only those of sessions the caller may
    see (MS-TSTS 3.7.4.1.22)."""
    call.conn.get_handle(r.context_handle(), "server")
    level = r.u32()
    wanted = r.ranged_u32(0, 0x8000)
    w = Writer()
    if level != 0:
        w.u32(call.legacy("invalid"))
        w.u32(0)
        w.referent(False)
        return _legacy(w, call.legacy("invalid"), False)
    with call.host.lock:
        visible = {s.id for s in call.visible_sessions()}
        procs = [p for p in call.host.processes
                 if call.principal.admin or p.session in visible][:wanted]
    w.u32(STATUS_SUCCESS)
    w.u32(call.count(len(procs)))
    if w.referent(bool(procs)):
        w.u32(call.count(len(procs)))
        sids = [W.sid_to_bytes(p.sid) if p.sid else b"" for p in procs]
        for sid in sids:
            w.referent(True)
            w.u32(len(sid))
            w.referent(bool(sid))
        for p, sid in zip(procs, sids):
            _write_process_info(w, p)
            if p.image:
                encoded = p.image.encode("utf-16-le")
                length = len(encoded)
                w.u32(length + 2)                   # MaxCount = MaximumLength
                w.u32(0)
                w.u32(length)                       # ActualCount = Length
                w.raw((encoded + b"\0\0").ljust(2 * length, b"\0"))
            if sid:
                w.align(4)
                w.conformant_bytes(sid)
    return _legacy(w, STATUS_SUCCESS, True)


# ---------------------------------------------------------------------------
# Interface table
# ---------------------------------------------------------------------------

class Interface:
    def __init__(self, name, uuid_str, pipe, methods, version=(1, 0)):
        self.name = name
        self.uuid = uuid.UUID(uuid_str)
        self.syntax = self.uuid.bytes_le + struct.pack("<HH", *version)
        self.pipe = pipe
        self.methods = methods

    def method(self, host, opnum):
        """(name, handler) or None if this Windows version lacks the opnum."""
        if (self.name, opnum) in host.missing:
            return None
        return self.methods.get(opnum)


INTERFACES = [
    Interface("TermSrvEnumeration", "88143fd0-c28d-4b2b-8fef-8d882f6a9390", W.PIPE_LSM, {
        0: ("RpcOpenEnum", open_enum),
        1: ("RpcCloseEnum", close_enum),
        5: ("RpcGetEnumResult", get_enum_result),
        10: ("RpcGetAllSessions", get_all_sessions),
    }),
    Interface("TermSrvSession", "484809d6-4239-471b-b5bc-61df8c23ac48", W.PIPE_LSM, {
        0: ("RpcOpenSession", open_session),
        1: ("RpcCloseSession", close_session),
        2: ("RpcConnect", rpc_connect),
        3: ("RpcDisconnect", rpc_disconnect),
        4: ("RpcLogoff", rpc_logoff),
        5: ("RpcGetUserName", get_user_name),
        6: ("RpcGetTerminalName", get_terminal_name),
        7: ("RpcGetState", get_state),
        8: ("RpcIsSessionDesktopLocked", is_desktop_locked),
        9: ("RpcShowMessageBox", show_message_box),
        10: ("RpcGetTimes", get_times),
        11: ("RpcGetSessionCounters", get_session_counters),
        12: ("RpcGetSessionInformation", get_session_information),
        17: ("RpcGetSessionInformationEx", get_session_information_ex),
    }),
    # Bindable (Windows hosts it on the LSM pipe) but no method is simulated.
    Interface("TermSrvNotification", "11899a43-2b68-4a76-92e3-a3d6ad8c26ce", W.PIPE_LSM, {}),
    Interface("RCMPublic", "bde95fdf-eee0-45de-9e12-e5a61cd0d4fe", W.PIPE_TERMSRV, {
        0: ("RpcGetClientData", get_client_data),
        3: ("RpcGetLastInputTime", get_last_input_time),
        4: ("RpcGetRemoteAddress", get_remote_address),
    }),
    Interface("LegacyAPI", "5ca4a760-ebb1-11cf-8611-00a0245420ed", W.PIPE_CTX, {
        0: ("RpcWinStationOpenServer", open_server),
        1: ("RpcWinStationCloseServer", close_server),
        3: ("RpcWinStationEnumerate", enumerate_sessions),
        5: ("RpcWinStationQueryInformation", query_information),
        7: ("RpcWinStationSendMessage", send_message),
        13: ("RpcWinStationDisconnect", winstation_disconnect),
        14: ("RpcWinStationReset", winstation_reset),
        15: ("RpcWinStationShutdownSystem", shutdown_system),
        37: ("RpcWinStationTerminateProcess", terminate_process),
        43: ("RpcWinStationGetAllProcesses", get_all_processes),
        45: ("RpcWinStationGetTermSrvCountersValue", get_termsrv_counters),
        60: ("RpcWinStationCloseServerEx", close_server_ex),
    }),
    # MS-LSAT, version 0.0 (on every Windows, RDP or not)
    Interface("lsarpc", "12345778-1234-abcd-ef00-0123456789ab", W.PIPE_LSA, lsa.METHODS,
              version=(0, 0)),
]

BY_SYNTAX = {i.syntax: i for i in INTERFACES}
