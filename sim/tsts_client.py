"""An MS-TSTS client on python3-impacket, used by the simulator's self-test.

The transport, DCE/RPC, NTLM (packet privacy) and the NDR engine are
impacket's -- a client the project did not write.  The structure
declarations below are written from the IDL in MS-TSTS section 6 for
impacket's NDR engine, independently of the simulator's hand-written
encoders in tssim/services.py, so that the two must agree on the wire.
impacket 0.10 ships no tsts.py.
"""

import hashlib
import hmac
import struct

from impacket.dcerpc.v5 import rpcrt, transport
from impacket.dcerpc.v5.dtypes import BOOL, BOOLEAN, DWORD, LONG, LPWSTR, ULONG, USHORT, \
    WSTR, LARGE_INTEGER
from impacket.dcerpc.v5.ndr import NDRCALL, NDRPOINTER, NDRSTRUCT, NDRUNION, \
    NDRUniConformantArray, NDRUniFixedArray
from impacket.uuid import uuidtup_to_bin

TERMSRV_ENUMERATION = uuidtup_to_bin(("88143fd0-c28d-4b2b-8fef-8d882f6a9390", "1.0"))
TERMSRV_SESSION = uuidtup_to_bin(("484809d6-4239-471b-b5bc-61df8c23ac48", "1.0"))
RCM_PUBLIC = uuidtup_to_bin(("bde95fdf-eee0-45de-9e12-e5a61cd0d4fe", "1.0"))
LEGACY_API = uuidtup_to_bin(("5ca4a760-ebb1-11cf-8611-00a0245420ed", "1.0"))

PIPE_LSM, PIPE_TERMSRV, PIPE_CTX = "LSM_API_service", "TermSrv_API_service", \
    "Ctx_WinStation_API_service"

FAULT_CODES = {name: code for code, name in rpcrt.rpc_status_codes.items()}


# -- common types ------------------------------------------------------------

class CONTEXT_HANDLE(NDRSTRUCT):
    structure = (("Data", "20s=b''"),)

    def getAlignment(self):
        return 4


def _fixed_wchars(count):
    class FixedWchars(NDRUniFixedArray):
        def getDataLen(self, data, offset=0):
            return 2 * count

        def getAlignment(self):
            return 2
    FixedWchars.__name__ = "WCHAR_%d" % count
    return FixedWchars


WCHAR_18, WCHAR_21, WCHAR_33 = _fixed_wchars(18), _fixed_wchars(21), _fixed_wchars(33)


def wchars(field):
    """A fixed WCHAR[] field as text (up to the first NUL)."""
    return field.decode("utf-16-le").split("\0")[0]


class BYTE_ARRAY(NDRUniConformantArray):
    item = "c"


class PBYTE_ARRAY(NDRPOINTER):
    referent = (("Data", BYTE_ARRAY),)


class WCHAR_ARRAY(NDRUniConformantArray):
    item = "<H"


class GUID_BYTES(NDRUniFixedArray):
    def getDataLen(self, data, offset=0):
        return 16

    def getAlignment(self):
        return 4


# -- TermSrvEnumeration ------------------------------------------------------

class SESSIONENUM_LEVEL1(NDRSTRUCT):
    structure = (("SessionId", LONG), ("State", LONG), ("Name", WCHAR_33))


class SESSIONENUM_LEVEL2(NDRSTRUCT):
    structure = (("SessionId", LONG), ("State", LONG), ("Name", WCHAR_33), ("Source", ULONG),
                 ("bFullDesktop", BOOL), ("SessionType", GUID_BYTES))


class SessionInfo(NDRUNION):
    commonHdr = (("tag", DWORD),)
    union = {1: ("SessionEnum_Level1", SESSIONENUM_LEVEL1),
             2: ("SessionEnum_Level2", SESSIONENUM_LEVEL2)}


class SESSIONENUM(NDRSTRUCT):
    structure = (("Level", DWORD), ("Data", SessionInfo))


class SESSIONENUM_ARRAY(NDRUniConformantArray):
    item = SESSIONENUM


class PSESSIONENUM_ARRAY(NDRPOINTER):
    referent = (("Data", SESSIONENUM_ARRAY),)


class EXECENVDATA_LEVEL1(NDRSTRUCT):
    structure = (("ExecEnvId", LONG), ("State", LONG), ("SessionName", WCHAR_33))


class EXECENVDATA_LEVEL2(NDRSTRUCT):
    structure = (("ExecEnvId", LONG), ("State", LONG), ("SessionName", WCHAR_33),
                 ("AbsSessionId", LONG), ("HostName", WCHAR_33), ("UserName", WCHAR_33),
                 ("DomainName", WCHAR_33), ("FarmName", WCHAR_33))


class ExecEnvData(NDRUNION):
    commonHdr = (("tag", DWORD),)
    union = {1: ("ExecEnvEnum_Level1", EXECENVDATA_LEVEL1),
             2: ("ExecEnvEnum_Level2", EXECENVDATA_LEVEL2)}


class EXECENVDATA(NDRSTRUCT):
    structure = (("Level", DWORD), ("Data", ExecEnvData))


class EXECENVDATA_ARRAY(NDRUniConformantArray):
    item = EXECENVDATA


class PEXECENVDATA_ARRAY(NDRPOINTER):
    referent = (("Data", EXECENVDATA_ARRAY),)


class RpcOpenEnum(NDRCALL):
    opnum = 0
    structure = ()


class RpcOpenEnumResponse(NDRCALL):
    structure = (("phEnum", CONTEXT_HANDLE), ("ErrorCode", ULONG))


class RpcCloseEnum(NDRCALL):
    opnum = 1
    structure = (("phEnum", CONTEXT_HANDLE),)


class RpcCloseEnumResponse(NDRCALL):
    structure = (("phEnum", CONTEXT_HANDLE), ("ErrorCode", ULONG))


class RpcGetEnumResult(NDRCALL):
    opnum = 5
    structure = (("hEnum", CONTEXT_HANDLE), ("Level", DWORD))


class RpcGetEnumResultResponse(NDRCALL):
    structure = (("ppSessionEnumResult", PSESSIONENUM_ARRAY), ("pEntries", ULONG),
                 ("ErrorCode", ULONG))


class RpcGetAllSessions(NDRCALL):
    opnum = 10
    structure = (("pLevel", ULONG),)


class RpcGetAllSessionsResponse(NDRCALL):
    structure = (("pLevel", ULONG), ("ppSessionData", PEXECENVDATA_ARRAY), ("pcEntries", ULONG),
                 ("ErrorCode", ULONG))


# -- TermSrvSession ----------------------------------------------------------

class RpcOpenSession(NDRCALL):
    opnum = 0
    structure = (("SessionId", LONG),)


class RpcOpenSessionResponse(NDRCALL):
    structure = (("phSession", CONTEXT_HANDLE), ("ErrorCode", ULONG))


class RpcCloseSession(NDRCALL):
    opnum = 1
    structure = (("phSession", CONTEXT_HANDLE),)


class RpcCloseSessionResponse(NDRCALL):
    structure = (("phSession", CONTEXT_HANDLE), ("ErrorCode", ULONG))


class RpcConnect(NDRCALL):
    opnum = 2
    structure = (("hSession", CONTEXT_HANDLE), ("TargetSessionId", LONG), ("szPassword", WSTR))


class RpcConnectResponse(NDRCALL):
    structure = (("ErrorCode", ULONG),)


class RpcDisconnect(NDRCALL):
    opnum = 3
    structure = (("hSession", CONTEXT_HANDLE),)


class RpcDisconnectResponse(NDRCALL):
    structure = (("ErrorCode", ULONG),)


class RpcLogoff(NDRCALL):
    opnum = 4
    structure = (("hSession", CONTEXT_HANDLE),)


class RpcLogoffResponse(NDRCALL):
    structure = (("ErrorCode", ULONG),)


class RpcGetUserName(NDRCALL):
    opnum = 5
    structure = (("hSession", CONTEXT_HANDLE),)


class RpcGetUserNameResponse(NDRCALL):
    structure = (("pszUserName", LPWSTR), ("pszDomain", LPWSTR), ("ErrorCode", ULONG))


class RpcGetState(NDRCALL):
    opnum = 7
    structure = (("hSession", CONTEXT_HANDLE),)


class RpcGetStateResponse(NDRCALL):
    structure = (("plState", LONG), ("ErrorCode", ULONG))


class RpcShowMessageBox(NDRCALL):
    opnum = 9
    structure = (("hSession", CONTEXT_HANDLE), ("szTitle", WSTR), ("szMessage", WSTR),
                 ("ulStyle", ULONG), ("ulTimeout", ULONG), ("bDoNotWait", BOOL))


class RpcShowMessageBoxResponse(NDRCALL):
    structure = (("pulResponse", ULONG), ("ErrorCode", ULONG))


class RpcGetTimes(NDRCALL):
    opnum = 10
    structure = (("hSession", CONTEXT_HANDLE),)


class RpcGetTimesResponse(NDRCALL):
    structure = (("pConnectTime", LARGE_INTEGER), ("pDisconnectTime", LARGE_INTEGER),
                 ("pLogonTime", LARGE_INTEGER), ("ErrorCode", ULONG))


class LSMSESSIONINFORMATION(NDRSTRUCT):
    structure = (("pszUserName", LPWSTR), ("pszDomain", LPWSTR), ("pszTerminalName", LPWSTR),
                 ("SessionState", LONG), ("DesktopLocked", BOOL), ("ConnectTime", LARGE_INTEGER),
                 ("DisconnectTime", LARGE_INTEGER), ("LogonTime", LARGE_INTEGER))


class RpcGetSessionInformation(NDRCALL):
    opnum = 12
    structure = (("SessionId", LONG),)


class RpcGetSessionInformationResponse(NDRCALL):
    structure = (("pSessionInfo", LSMSESSIONINFORMATION), ("ErrorCode", ULONG))


class LSM_SESSIONINFO_EX_LEVEL1(NDRSTRUCT):
    structure = (("SessionState", LONG), ("SessionFlags", LONG), ("SessionName", WCHAR_33),
                 ("DomainName", WCHAR_18), ("UserName", WCHAR_21),
                 ("ConnectTime", LARGE_INTEGER), ("DisconnectTime", LARGE_INTEGER),
                 ("LogonTime", LARGE_INTEGER), ("LastInputTime", LARGE_INTEGER),
                 ("ProtocolDataSize", ULONG), ("ProtocolData", PBYTE_ARRAY))


class LSM_SESSIONINFO_EX(NDRUNION):
    commonHdr = (("tag", DWORD),)
    union = {1: ("LSM_SessionInfo_Level1", LSM_SESSIONINFO_EX_LEVEL1)}


class LSMSESSIONINFORMATION_EX(NDRSTRUCT):
    structure = (("Level", DWORD), ("Data", LSM_SESSIONINFO_EX))


class RpcGetSessionInformationEx(NDRCALL):
    opnum = 17
    structure = (("SessionId", LONG), ("Level", DWORD))


class RpcGetSessionInformationExResponse(NDRCALL):
    structure = (("LSMSessionInfoExPtr", LSMSESSIONINFORMATION_EX), ("ErrorCode", ULONG))


# -- RCMPublic ---------------------------------------------------------------

class RpcGetClientData(NDRCALL):
    opnum = 0
    structure = (("SessionId", ULONG),)


class RpcGetClientDataResponse(NDRCALL):
    structure = (("ppBuff", PBYTE_ARRAY), ("pOutBuffByteLen", ULONG), ("ErrorCode", ULONG))


class RpcGetLastInputTime(NDRCALL):
    opnum = 3
    structure = (("SessionId", ULONG),)


class RpcGetLastInputTimeResponse(NDRCALL):
    structure = (("pLastInputTime", LARGE_INTEGER), ("ErrorCode", ULONG))


class SIN_ZERO(NDRUniFixedArray):
    def getDataLen(self, data, offset=0):
        return 8


class SIN6_ADDR(NDRUniFixedArray):
    def getDataLen(self, data, offset=0):
        return 16


class IPV4_ADDRESS(NDRSTRUCT):
    structure = (("sin_port", USHORT), ("in_addr", ULONG), ("sin_zero", SIN_ZERO))


class IPV6_ADDRESS(NDRSTRUCT):
    structure = (("sin6_port", USHORT), ("sin6_flowinfo", ULONG), ("sin6_addr", SIN6_ADDR),
                 ("sin6_scope_id", ULONG))


class REMOTE_ADDRESS_UNION(NDRUNION):
    commonHdr = (("tag", USHORT),)
    union = {2: ("ipv4", IPV4_ADDRESS), 23: ("ipv6", IPV6_ADDRESS)}


class RCM_REMOTEADDRESS(NDRSTRUCT):
    structure = (("sin_family", USHORT), ("u", REMOTE_ADDRESS_UNION))


class RpcGetRemoteAddress(NDRCALL):
    opnum = 4
    structure = (("SessionId", ULONG),)


class RpcGetRemoteAddressResponse(NDRCALL):
    structure = (("pRemoteAddress", RCM_REMOTEADDRESS), ("ErrorCode", ULONG))


# -- Legacy IcaApi -----------------------------------------------------------

class RpcWinStationOpenServer(NDRCALL):
    opnum = 0
    structure = ()


class RpcWinStationOpenServerResponse(NDRCALL):
    structure = (("pResult", ULONG), ("phServer", CONTEXT_HANDLE), ("ReturnValue", BOOLEAN))


class RpcWinStationCloseServerEx(NDRCALL):
    opnum = 60
    structure = (("phServer", CONTEXT_HANDLE),)


class RpcWinStationCloseServerExResponse(NDRCALL):
    structure = (("phServer", CONTEXT_HANDLE), ("pResult", ULONG), ("ReturnValue", BOOLEAN))


class RpcWinStationEnumerate(NDRCALL):
    opnum = 3
    structure = (("hServer", CONTEXT_HANDLE), ("pEntries", ULONG), ("pLogonId", PBYTE_ARRAY),
                 ("pByteCount", ULONG), ("pIndex", ULONG))


class RpcWinStationEnumerateResponse(NDRCALL):
    structure = (("pResult", ULONG), ("pEntries", ULONG), ("pLogonId", PBYTE_ARRAY),
                 ("pByteCount", ULONG), ("pIndex", ULONG), ("ReturnValue", BOOLEAN))


class RpcWinStationQueryInformation(NDRCALL):
    opnum = 5
    structure = (("hServer", CONTEXT_HANDLE), ("LogonId", DWORD),
                 ("WinStationInformationClass", DWORD), ("pWinStationInformation", PBYTE_ARRAY),
                 ("WinStationInformationLength", DWORD))


class RpcWinStationQueryInformationResponse(NDRCALL):
    structure = (("pResult", ULONG), ("pWinStationInformation", PBYTE_ARRAY),
                 ("pReturnLength", DWORD), ("ReturnValue", BOOLEAN))


class RpcWinStationSendMessage(NDRCALL):
    opnum = 7
    structure = (("hServer", CONTEXT_HANDLE), ("LogonId", DWORD), ("pTitle", WCHAR_ARRAY),
                 ("TitleLength", DWORD), ("pMessage", WCHAR_ARRAY), ("MessageLength", DWORD),
                 ("Style", DWORD), ("Timeout", DWORD), ("DoNotWait", BOOLEAN))


class RpcWinStationSendMessageResponse(NDRCALL):
    structure = (("pResult", ULONG), ("pResponse", DWORD), ("ReturnValue", BOOLEAN))


class RpcWinStationDisconnect(NDRCALL):
    opnum = 13
    structure = (("hServer", CONTEXT_HANDLE), ("LogonId", DWORD), ("bWait", BOOLEAN))


class RpcWinStationDisconnectResponse(NDRCALL):
    structure = (("pResult", ULONG), ("ReturnValue", BOOLEAN))


class RpcWinStationReset(NDRCALL):
    opnum = 14
    structure = (("hServer", CONTEXT_HANDLE), ("LogonId", DWORD), ("bWait", BOOLEAN))


class RpcWinStationResetResponse(NDRCALL):
    structure = (("pResult", ULONG), ("ReturnValue", BOOLEAN))


class RpcWinStationShutdownSystem(NDRCALL):
    opnum = 15
    structure = (("hServer", CONTEXT_HANDLE), ("ClientLogonId", DWORD),
                 ("ShutdownFlags", DWORD))


class RpcWinStationShutdownSystemResponse(NDRCALL):
    structure = (("pResult", ULONG), ("ReturnValue", BOOLEAN))


class RpcWinStationTerminateProcess(NDRCALL):
    opnum = 37
    structure = (("hServer", CONTEXT_HANDLE), ("ProcessId", DWORD), ("ExitCode", DWORD))


class RpcWinStationTerminateProcessResponse(NDRCALL):
    structure = (("pResult", ULONG), ("ReturnValue", BOOLEAN))


class TS_UNICODE_STRING(NDRSTRUCT):
    structure = (("Length", USHORT), ("MaximumLength", USHORT), ("Buffer", LPWSTR))


class TS_SYS_PROCESS_INFORMATION(NDRSTRUCT):
    structure = (("NextEntryOffset", ULONG), ("NumberOfThreads", ULONG),
                 ("SpareLi1", LARGE_INTEGER), ("SpareLi2", LARGE_INTEGER),
                 ("SpareLi3", LARGE_INTEGER), ("CreateTime", LARGE_INTEGER),
                 ("UserTime", LARGE_INTEGER), ("KernelTime", LARGE_INTEGER),
                 ("ImageName", TS_UNICODE_STRING), ("BasePriority", LONG),
                 ("UniqueProcessId", DWORD), ("InheritedFromUniqueProcessId", DWORD),
                 ("HandleCount", ULONG), ("SessionId", ULONG), ("SpareUl3", ULONG),
                 ("PeakVirtualSize", ULONG), ("VirtualSize", ULONG), ("PageFaultCount", ULONG),
                 ("PeakWorkingSetSize", ULONG), ("WorkingSetSize", ULONG),
                 ("QuotaPeakPagedPoolUsage", ULONG), ("QuotaPagedPoolUsage", ULONG),
                 ("QuotaPeakNonPagedPoolUsage", ULONG), ("QuotaNonPagedPoolUsage", ULONG),
                 ("PagefileUsage", ULONG), ("PeakPagefileUsage", ULONG),
                 ("PrivatePageCount", ULONG))


class PTS_SYS_PROCESS_INFORMATION(NDRPOINTER):
    referent = (("Data", TS_SYS_PROCESS_INFORMATION),)


class TS_ALL_PROCESSES_INFO(NDRSTRUCT):
    structure = (("pTsProcessInfo", PTS_SYS_PROCESS_INFORMATION), ("SizeOfSid", DWORD),
                 ("pSid", PBYTE_ARRAY))


class TS_ALL_PROCESSES_INFO_ARRAY(NDRUniConformantArray):
    item = TS_ALL_PROCESSES_INFO


class PTS_ALL_PROCESSES_INFO_ARRAY(NDRPOINTER):
    referent = (("Data", TS_ALL_PROCESSES_INFO_ARRAY),)


class RpcWinStationGetAllProcesses(NDRCALL):
    opnum = 43
    structure = (("hServer", CONTEXT_HANDLE), ("Level", ULONG), ("pNumberOfProcesses", ULONG))


class RpcWinStationGetAllProcessesResponse(NDRCALL):
    structure = (("pResult", ULONG), ("pNumberOfProcesses", ULONG),
                 ("ppTsAllProcessesInfo", PTS_ALL_PROCESSES_INFO_ARRAY),
                 ("ReturnValue", BOOLEAN))


# -- helpers -----------------------------------------------------------------

def wstr(text):
    """An NDR [string] WCHAR* value (impacket wants the NUL included)."""
    value = WSTR()
    value["Data"] = text + "\0"
    return value


def sid_text(raw):
    """S-1-... form of a binary SID."""
    if not raw:
        return None
    count = raw[1]
    subs = struct.unpack("<%dI" % count, raw[8:8 + 4 * count])
    return "S-%d-%d" % (raw[0], int.from_bytes(raw[2:8], "big")) + \
        "".join("-%d" % s for s in subs)


class Client:
    """Opens pipes on one simulated host with impacket, one bind per pipe."""

    def __init__(self, port, user, password, domain, level=6, timeout=5, max_recv_frag=None,
                 rpc_password=None, krb_ccache=None, krb_spn=None):
        self.port, self.user, self.password, self.domain = port, user, password, domain
        self.level, self.timeout, self.max_recv_frag = level, timeout, max_recv_frag
        self.rpc_password = rpc_password      # RPC-level NTLM password, if not the SMB one
        # RPC-level Kerberos (SPNEGO, impacket's own Kerberos code): the
        # service ticket for krb_spn from that ccache; the SMB logon stays NTLM
        self.krb_ccache, self.krb_spn = krb_ccache, krb_spn

    def connect(self, pipe, iface, bogus_binds=0):
        rpctransport = transport.DCERPCTransportFactory(r"ncacn_np:127.0.0.1[\pipe\%s]" % pipe)
        rpctransport.set_dport(self.port)
        rpctransport.set_connect_timeout(self.timeout)
        rpctransport.set_credentials(self.user, self.password, self.domain)
        dce = rpctransport.get_dce_rpc()
        if self.rpc_password is not None:
            dce.set_credentials(self.user, self.rpc_password, self.domain)
        if self.krb_ccache:
            from impacket.krb5.ccache import CCache
            cache = CCache.loadFile(self.krb_ccache)
            principal = cache.principal.prettyPrint().decode()
            user, _, realm = principal.partition("@")
            cred = cache.getCredential(self.krb_spn)
            if cred is None:
                raise rpcrt.DCERPCException("no ticket for %s in %s" % (self.krb_spn, self.krb_ccache))
            dce.set_credentials(user, "", realm, TGS=cred.toTGS(self.krb_spn))
            dce.set_auth_type(rpcrt.RPC_C_AUTHN_GSS_NEGOTIATE)
        dce.set_auth_level(self.level)
        dce.connect()
        checker = ResponseChecker(dce)
        if self.max_recv_frag:
            _bind_with_max_recv(dce, iface, self.max_recv_frag, bogus_binds)
        else:
            dce.bind(iface, bogus_binds=bogus_binds)
        checker.after_bind()
        return dce


class ResponseChecker:
    """Checks what impacket's client does not: that each response fragment is
    exactly frag_length bytes, answers the call_id that was sent, and carries
    a valid NTLM verifier (impacket decrypts responses but never verifies
    the server's signature).  A failed check raises DCERPCException.

    The verifier is checked without re-implementing the seal: impacket runs
    its server RC4 handle over the body (giving the plaintext) and then over
    8 checksum bytes of its own; that second call reveals the keystream, which
    decrypts the checksum received on the wire."""

    def __init__(self, dce):
        self.dce = dce
        self.transport = dce.get_rpc_transport()
        self.sent_call_id = None
        self.raw = None
        self.plain = None
        self.seq = 0
        send, recv = self.transport.send, self.transport.recv

        def checked_send(data, *args, **kwargs):
            if data[2] in (0, 11, 14):                # request, bind, alter_context
                self.sent_call_id = struct.unpack_from("<I", data, 12)[0]
            return send(data, *args, **kwargs)

        def checked_recv(*args, **kwargs):
            data = recv(*args, **kwargs)
            frag_len, _, call_id = struct.unpack_from("<HHI", data, 8)
            if len(data) > frag_len:
                raise rpcrt.DCERPCException("fragment of %d bytes claims frag_length %d"
                                            % (len(data), frag_len))
            if self.sent_call_id is not None and call_id != self.sent_call_id:
                raise rpcrt.DCERPCException("response call_id %d, request call_id %d"
                                            % (call_id, self.sent_call_id))
            self.raw = data
            return data

        self.transport.send, self.transport.recv = checked_send, checked_recv

    def after_bind(self):
        name = "_DCERPC_v5__serverSealingHandle"
        handle = getattr(self.dce, name, None)
        if not callable(handle):
            return                                    # no packet-level security
        self.sign_key = getattr(self.dce, "_DCERPC_v5__serverSigningKey")
        privacy = getattr(self.dce, "_DCERPC_v5__auth_level") == \
            rpcrt.RPC_C_AUTHN_LEVEL_PKT_PRIVACY

        def tee(data):
            out = handle(data)
            if privacy and self.plain is None:
                self.plain = out                      # the decrypted body
            else:
                keystream = bytes(a ^ b for a, b in zip(data, out))
                self._verify(keystream)
            return out

        setattr(self.dce, name, tee)
        self._privacy = privacy

    def _verify(self, keystream):
        raw, plain, seq = self.raw, self.plain, self.seq
        self.plain, self.seq = None, seq + 1
        auth_len = struct.unpack_from("<H", raw, 10)[0]
        trailer = len(raw) - auth_len - 8
        body = plain if self._privacy else raw[24:trailer]
        signed = raw[:24] + body + raw[trailer:trailer + 8]
        expected = hmac.new(self.sign_key, struct.pack("<I", seq) + signed,
                            hashlib.md5).digest()[:8]
        wire = raw[trailer + 12:trailer + 20]
        received = bytes(a ^ b for a, b in zip(wire, keystream))
        if received != expected or struct.unpack_from("<I", raw, trailer + 20)[0] != seq:
            raise rpcrt.DCERPCException("bad response verifier (seq %d)" % seq)


def _bind_with_max_recv(dce, iface, max_recv, bogus_binds):
    """impacket always offers max_recv_frag 4280; a smaller one tests the
    server's fragmentation, so the bind PDU class is swapped for the call."""
    original = rpcrt.MSRPCBind

    class SmallBind(original):
        def __init__(self, *a, **kw):
            original.__init__(self, *a, **kw)
            self["max_rfrag"] = max_recv
    rpcrt.MSRPCBind = SmallBind
    try:
        dce.bind(iface, bogus_binds=bogus_binds)
    finally:
        rpcrt.MSRPCBind = original

