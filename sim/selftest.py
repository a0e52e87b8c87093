#!/usr/bin/python3
"""Drive a running simulator with impacket's DCE/RPC client (the self-test).

    /usr/bin/python3 sim/selftest.py --port P --user U --password PW [options] OP [OP ...]

Prints a JSON array with one object per OP: {"op": ..., "ok": true, ...}
or {"op": ..., "ok": false, "error": ..., "fault": N | "smb_status": N |
"timeout": true}.  Every OP opens its own pipe(s) with NTLM at the chosen
level (default 6, packet privacy), like impacket's tstool does.

OPs (IDs are session ids):
  sessions[:LEVEL]      RpcGetAllSessions (default level 2)
  enum[:LEVEL]          RpcOpenEnum / RpcGetEnumResult / RpcCloseEnum
  legacy-enum[:BYTES]   RpcWinStationEnumerate, paged with a BYTES buffer
  info:ID               RpcOpenSession + GetSessionInformationEx/Times/UserName/State,
                        and RpcGetSessionInformation
  query:ID              RpcWinStationQueryInformation class 8, decoded by offsets
  create:ID[:LENGTH]    RpcWinStationQueryInformation class 0 (WINSTATIONCREATE, 8 bytes)
  client:ID             RCMPublic GetClientData / GetRemoteAddress / GetLastInputTime
  logoff:ID  disconnect:ID  connect:SRC:DST[:PASSWORD]  message:ID:TITLE:TEXT[:nowait]
  reset:ID  legacy-disconnect:ID  legacy-message:ID:TITLE:TEXT[:nowait]
  processes[:COUNT]  kill:PID  shutdown:FLAGS
  opnum:PIPE:OPNUM      an empty request for OPNUM (PIPE = lsm|termsrv|ctx)
  stale-handle  foreign-handle  bad-stub  bad-request-signature  call-context:CTX_ID
  split-write
  bogus-bind  multi-context  alter-context
"""

import argparse
import json
import re
import socket
import struct
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import logging                                          # noqa: E402
from impacket import LOG                                # noqa: E402
from impacket.dcerpc.v5 import rpcrt                    # noqa: E402
from impacket.nmb import NetBIOSTimeout                 # noqa: E402
from impacket.smbconnection import SessionError         # noqa: E402

import tsts_client as T                                 # noqa: E402

PIPES = {"lsm": (T.PIPE_LSM, T.TERMSRV_ENUMERATION), "termsrv": (T.PIPE_TERMSRV, T.RCM_PUBLIC),
         "ctx": (T.PIPE_CTX, T.LEGACY_API)}
LOGONID_SIZE = 76
WSI_CLASS, WSI_BUFFER = 8, 1220
EPOCH_AS_FILETIME = 116444736000000000


def epoch(filetime):
    """FILETIME -> epoch seconds (0 stays 0, "none")."""
    return (filetime - EPOCH_AS_FILETIME) / 1e7 if filetime else 0


def pointee(parent, name):
    """The referent of pointer field `name` of an impacket NDR object, or None."""
    ptr = parent.fields[name]
    return ptr.fields["Data"] if ptr.fields.get("ReferentID") else None


def items(parent, name):
    """The elements of a pointer-to-conformant-array field ([] for NULL)."""
    array = pointee(parent, name)
    return array.fields["Data"] if array is not None else []


def text(parent, name):
    """A [string] WCHAR* field as text, None for NULL."""
    value = pointee(parent, name)
    return value["Data"].rstrip("\0") if value is not None else None


def blob(parent, name):
    """A pointer to a conformant byte array as bytes, None for NULL."""
    array = pointee(parent, name)
    return b"".join(array.fields["Data"]) if array is not None else None


def arm(item):
    """The arm of the non-encapsulated union in a {Level; union Data} element."""
    union = item.fields["Data"]
    return next(v for k, v in union.fields.items() if k != "tag")


def request(dce, req):
    # Error results are data here: legacy calls end in a BOOLEAN, and a
    # failing HRESULT is what a test wants to see, not an exception.
    return dce.request(req, checkError=False)


# -- listing ---------------------------------------------------------------------

def op_sessions(c, level="2"):
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    req = T.RpcGetAllSessions()
    req["pLevel"] = int(level)
    resp = request(dce, req)
    out = []
    for item in items(resp, "ppSessionData"):
        a = arm(item)
        s = {"id": a["ExecEnvId"], "state": a["State"], "name": T.wchars(a["SessionName"]),
             "level": item["Level"]}
        if item["Level"] == 2:
            s.update(abs_id=a["AbsSessionId"], host=T.wchars(a["HostName"]),
                     user=T.wchars(a["UserName"]), domain=T.wchars(a["DomainName"]))
        out.append(s)
    return {"hresult": resp["ErrorCode"], "level": resp["pLevel"], "count": resp["pcEntries"],
            "sessions": out}


def op_enum(c, level="1"):
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    handle = request(dce, T.RpcOpenEnum())["phEnum"]
    req = T.RpcGetEnumResult()
    req["hEnum"] = handle
    req["Level"] = int(level)
    resp = request(dce, req)
    out = []
    for item in items(resp, "ppSessionEnumResult"):
        a = arm(item)
        s = {"id": a["SessionId"], "state": a["State"], "name": T.wchars(a["Name"]),
             "level": item["Level"]}
        if item["Level"] == 2:
            s.update(source=a["Source"], full_desktop=a["bFullDesktop"],
                     type=a["SessionType"].hex())
        out.append(s)
    close = T.RpcCloseEnum()
    close["phEnum"] = handle
    closed = request(dce, close)
    return {"hresult": resp["ErrorCode"], "count": resp["pEntries"], "sessions": out,
            "close_hresult": closed["ErrorCode"]}


def open_server(c):
    dce = c.connect(T.PIPE_CTX, T.LEGACY_API)
    resp = request(dce, T.RpcWinStationOpenServer())
    return dce, resp["phServer"]


def close_server(dce, handle):
    req = T.RpcWinStationCloseServerEx()
    req["phServer"] = handle
    return request(dce, req)["pResult"]


def op_legacy_enum(c, byte_count=str(4 * LOGONID_SIZE)):
    dce, handle = open_server(c)
    sessions, index, calls = [], 0, 0
    while True:
        req = T.RpcWinStationEnumerate()
        req["hServer"] = handle
        req["pEntries"] = 0xFFFFFFFF
        req["pLogonId"] = b"\0" * int(byte_count)
        req["pByteCount"] = int(byte_count)
        req["pIndex"] = index
        resp = request(dce, req)
        calls += 1
        if not resp["ReturnValue"] or resp["pResult"] != 0:
            break
        raw = blob(resp, "pLogonId")
        for i in range(resp["pEntries"]):
            sid, name, state = struct.unpack_from("<I66s2xI", raw, i * LOGONID_SIZE)
            sessions.append({"id": sid, "name": T.wchars(name), "state": state})
        index = resp["pIndex"]
    return {"sessions": sessions, "calls": calls, "final_result": resp["pResult"],
            "final_return": resp["ReturnValue"], "close_result": close_server(dce, handle)}


# -- per-session queries -----------------------------------------------------------

def open_session(dce, sid):
    req = T.RpcOpenSession()
    req["SessionId"] = int(sid)
    resp = request(dce, req)
    return resp["phSession"], resp["ErrorCode"]


def _with_handle(dce, cls, handle):
    req = cls()
    req["hSession"] = handle
    return request(dce, req)


def op_info(c, sid):
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_SESSION)
    out = {}
    req = T.RpcGetSessionInformationEx()
    req["SessionId"] = int(sid)
    req["Level"] = 1
    resp = request(dce, req)
    a = arm(resp.fields["LSMSessionInfoExPtr"])
    out["ex"] = {"hresult": resp["ErrorCode"], "state": a["SessionState"],
                 "flags": a["SessionFlags"] & 0xFFFFFFFF, "name": T.wchars(a["SessionName"]),
                 "domain": T.wchars(a["DomainName"]), "user": T.wchars(a["UserName"]),
                 "connect": epoch(a["ConnectTime"]), "disconnect": epoch(a["DisconnectTime"]),
                 "logon": epoch(a["LogonTime"]), "last_input": epoch(a["LastInputTime"]),
                 "protocol_data": a["ProtocolDataSize"]}
    req = T.RpcGetSessionInformation()
    req["SessionId"] = int(sid)
    resp = request(dce, req)
    info = resp.fields["pSessionInfo"]
    out["info"] = {"hresult": resp["ErrorCode"], "user": text(info, "pszUserName"),
                   "domain": text(info, "pszDomain"), "station": text(info, "pszTerminalName"),
                   "state": info["SessionState"], "locked": info["DesktopLocked"],
                   "connect": epoch(info["ConnectTime"]), "logon": epoch(info["LogonTime"]),
                   "disconnect": epoch(info["DisconnectTime"])}
    handle, hr = open_session(dce, sid)
    out["open_hresult"] = hr
    if hr == 0:
        resp = _with_handle(dce, T.RpcGetTimes, handle)
        out["times"] = {"connect": epoch(resp["pConnectTime"]), "hresult": resp["ErrorCode"],
                        "disconnect": epoch(resp["pDisconnectTime"]),
                        "logon": epoch(resp["pLogonTime"])}
        resp = _with_handle(dce, T.RpcGetUserName, handle)
        out["user_name"] = {"user": text(resp, "pszUserName"), "domain": text(resp, "pszDomain"),
                            "hresult": resp["ErrorCode"]}
        resp = _with_handle(dce, T.RpcGetState, handle)
        out["state"] = {"state": resp["plState"], "hresult": resp["ErrorCode"]}
        close = T.RpcCloseSession()
        close["phSession"] = handle
        out["close_hresult"] = request(dce, close)["ErrorCode"]
    return out


def op_query(c, sid):
    """Class 8, decoded with the offsets documented in sim/README.md."""
    dce, handle = open_server(c)
    req = T.RpcWinStationQueryInformation()
    req["hServer"] = handle
    req["LogonId"] = int(sid)
    req["WinStationInformationClass"] = WSI_CLASS
    req["pWinStationInformation"] = b"\0" * WSI_BUFFER
    req["WinStationInformationLength"] = WSI_BUFFER
    resp = request(dce, req)
    out = {"result": resp["pResult"], "return": resp["ReturnValue"],
           "return_length": resp["pReturnLength"]}
    if resp["ReturnValue"]:
        b = blob(resp, "pWinStationInformation")
        size, offset = struct.unpack_from("<HH", b, 0)
        i = b[offset:]

        def q(o):
            return epoch(struct.unpack_from("<q", i, o)[0])
        out.update(size=size, offset=offset, state=struct.unpack_from("<I", i, 0)[0],
                   name=T.wchars(i[4:70]), logon_id=struct.unpack_from("<I", i, 72)[0],
                   connect=q(80), disconnect=q(88), last_input=q(96), logon=q(104),
                   domain=T.wchars(i[1124:1160]), user=T.wchars(i[1160:1202]),
                   current_time=q(1208))
    close_server(dce, handle)
    return out


def op_create(c, sid, length="8"):
    """Class 0 (WinStationCreateData): WINSTATIONCREATE, MS-TSTS 6.5:
    { ULONG fEnableWinStation : 1; ULONG MaxInstanceCount; }, 8 bytes."""
    dce, handle = open_server(c)
    req = T.RpcWinStationQueryInformation()
    req["hServer"] = handle
    req["LogonId"] = int(sid)
    req["WinStationInformationClass"] = 0
    req["pWinStationInformation"] = b"\0" * int(length)
    req["WinStationInformationLength"] = int(length)
    resp = request(dce, req)
    out = {"result": resp["pResult"], "return": resp["ReturnValue"],
           "return_length": resp["pReturnLength"]}
    if resp["ReturnValue"]:
        flags, count = struct.unpack_from("<II", blob(resp, "pWinStationInformation"), 0)
        out.update(enabled=flags & 1, max_instance_count=count)
    close_server(dce, handle)
    return out


def op_client(c, sid):
    dce = c.connect(T.PIPE_TERMSRV, T.RCM_PUBLIC)
    out = {}
    req = T.RpcGetClientData()
    req["SessionId"] = int(sid)
    resp = request(dce, req)
    data = blob(resp, "ppBuff")
    out["client_data"] = {"hresult": resp["ErrorCode"], "length": resp["pOutBuffByteLen"],
                          "size": len(data) if data else 0,
                          "client_name": T.wchars(data[4:46]) if data else None,
                          "client_address": T.wchars(data[1196:1258]) if data else None}
    req = T.RpcGetRemoteAddress()
    req["SessionId"] = int(sid)
    resp = request(dce, req)
    addr = resp.fields["pRemoteAddress"]
    out["remote_address"] = {"hresult": resp["ErrorCode"], "family": addr["sin_family"]}
    if addr["sin_family"] == 2:
        ipv4 = addr.fields["u"].fields["ipv4"]
        out["remote_address"]["address"] = socket.inet_ntoa(struct.pack("<I", ipv4["in_addr"]))
        out["remote_address"]["port"] = struct.unpack(">H", struct.pack("<H",
                                                                         ipv4["sin_port"]))[0]
    req = T.RpcGetLastInputTime()
    req["SessionId"] = int(sid)
    resp = request(dce, req)
    out["last_input"] = {"hresult": resp["ErrorCode"], "time": epoch(resp["pLastInputTime"])}
    return out


# -- actions ---------------------------------------------------------------------

def _session_action(c, cls, sid, **fields):
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_SESSION)
    handle, hr = open_session(dce, sid)
    if hr != 0:
        return {"open_hresult": hr}
    req = cls()
    req["hSession"] = handle
    for key, value in fields.items():
        req[key] = value
    return {"open_hresult": hr, "response": request(dce, req)}


def op_logoff(c, sid):
    out = _session_action(c, T.RpcLogoff, sid)
    return {"open_hresult": out["open_hresult"],
            "hresult": out["response"]["ErrorCode"] if "response" in out else None}


def op_disconnect(c, sid):
    out = _session_action(c, T.RpcDisconnect, sid)
    return {"open_hresult": out["open_hresult"],
            "hresult": out["response"]["ErrorCode"] if "response" in out else None}


def op_connect(c, source, target, password=""):
    out = _session_action(c, T.RpcConnect, source, TargetSessionId=int(target),
                          szPassword=T.wstr(password))
    return {"open_hresult": out["open_hresult"],
            "hresult": out["response"]["ErrorCode"] if "response" in out else None}


def op_message(c, sid, title, text, mode="wait"):
    out = _session_action(c, T.RpcShowMessageBox, sid, szTitle=T.wstr(title),
                          szMessage=T.wstr(text), ulStyle=0, ulTimeout=30,
                          bDoNotWait=1 if mode == "nowait" else 0)
    resp = out.get("response")
    return {"open_hresult": out["open_hresult"], "hresult": resp["ErrorCode"] if resp else None,
            "response": resp["pulResponse"] if resp else None}


def _legacy_session_op(c, cls, sid):
    dce, handle = open_server(c)
    req = cls()
    req["hServer"] = handle
    req["LogonId"] = int(sid)
    req["bWait"] = 1
    resp = request(dce, req)
    close_server(dce, handle)
    return {"result": resp["pResult"], "return": resp["ReturnValue"]}


def op_reset(c, sid):
    return _legacy_session_op(c, T.RpcWinStationReset, sid)


def op_legacy_disconnect(c, sid):
    return _legacy_session_op(c, T.RpcWinStationDisconnect, sid)


def op_legacy_message(c, sid, title, text, mode="wait"):
    dce, handle = open_server(c)
    req = T.RpcWinStationSendMessage()
    req["hServer"] = handle
    req["LogonId"] = int(sid)
    req["pTitle"] = list(struct.unpack("<%dH" % len(title), title.encode("utf-16-le")))
    req["TitleLength"] = len(title)
    req["pMessage"] = list(struct.unpack("<%dH" % len(text), text.encode("utf-16-le")))
    req["MessageLength"] = len(text)
    req["Style"] = 0
    req["Timeout"] = 30
    req["DoNotWait"] = 1 if mode == "nowait" else 0
    resp = request(dce, req)
    return {"result": resp["pResult"], "return": resp["ReturnValue"],
            "response": resp["pResponse"]}


def op_processes(c, count="32768"):
    dce, handle = open_server(c)
    req = T.RpcWinStationGetAllProcesses()
    req["hServer"] = handle
    req["Level"] = 0
    req["pNumberOfProcesses"] = int(count)
    resp = request(dce, req)
    procs = []
    for item in items(resp, "ppTsAllProcessesInfo"):
        info = pointee(item, "pTsProcessInfo")
        image = None
        if info is not None and text(info.fields["ImageName"], "Buffer") is not None:
            # Length counts bytes; the buffer may carry more (see sim/README.md).
            name = info.fields["ImageName"]
            raw = pointee(name, "Buffer")["Data"].encode("utf-16-le")
            image = raw[:name["Length"]].decode("utf-16-le").rstrip("\0")
        sid = blob(item, "pSid") or b""
        procs.append({"pid": info["UniqueProcessId"] if info else None, "image": image,
                      "session": info["SessionId"] if info else None,
                      "working_set": info["WorkingSetSize"] if info else None,
                      "threads": info["NumberOfThreads"] if info else None,
                      "sid": T.sid_text(sid), "sid_size": item["SizeOfSid"]})
    return {"result": resp["pResult"], "return": resp["ReturnValue"],
            "count": resp["pNumberOfProcesses"], "processes": procs}


def op_kill(c, pid):
    dce, handle = open_server(c)
    req = T.RpcWinStationTerminateProcess()
    req["hServer"] = handle
    req["ProcessId"] = int(pid)
    req["ExitCode"] = 1
    resp = request(dce, req)
    return {"result": resp["pResult"], "return": resp["ReturnValue"]}


def op_shutdown(c, flags):
    dce, handle = open_server(c)
    req = T.RpcWinStationShutdownSystem()
    req["hServer"] = handle
    req["ClientLogonId"] = 0
    req["ShutdownFlags"] = int(flags, 0)
    resp = request(dce, req)
    return {"result": resp["pResult"], "return": resp["ReturnValue"]}


# -- protocol edge cases ---------------------------------------------------------------

def op_opnum(c, pipe, opnum):
    name, iface = PIPES[pipe]
    dce = c.connect(name, iface)
    dce.call(int(opnum), b"")
    return {"stub": dce.recv().hex()}


def op_stale_handle(c):
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    handle = request(dce, T.RpcOpenEnum())["phEnum"]
    close = T.RpcCloseEnum()
    close["phEnum"] = handle
    request(dce, close)
    req = T.RpcGetEnumResult()
    req["hEnum"] = handle
    req["Level"] = 1
    return {"response": request(dce, req)["ErrorCode"]}


def op_foreign_handle(c):
    first = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    handle = request(first, T.RpcOpenEnum())["phEnum"]
    second = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    req = T.RpcGetEnumResult()
    req["hEnum"] = handle
    req["Level"] = 1
    return {"response": request(second, req)["ErrorCode"]}


def op_bad_stub(c):
    """RpcOpenSession with a 2-byte stub (a LONG needs 4)."""
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_SESSION)
    dce.call(0, b"\x02\x00")
    return {"stub": dce.recv().hex()}


def op_bad_request_signature(c):
    """A request whose NTLM checksum was altered on the way."""
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    transport = dce.get_rpc_transport()
    send = transport.send

    def tamper(data, *args, **kwargs):
        if data[2] == 0:                 # request: the checksum is token bytes 4..12
            data = data[:-12] + bytes([data[-12] ^ 0xFF]) + data[-11:]
        return send(data, *args, **kwargs)

    transport.send = tamper
    req = T.RpcGetAllSessions()
    req["pLevel"] = 1
    return {"count": request(dce, req)["pcEntries"]}


def op_call_context(c, ctx_id):
    """A call on presentation context ctx_id after a bind that offered two
    unknown interfaces (contexts 0 and 1, refused) and TermSrvEnumeration (2)."""
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION, bogus_binds=2)
    dce.set_ctx_id(int(ctx_id))
    req = T.RpcGetAllSessions()
    req["pLevel"] = 1
    return {"count": request(dce, req)["pcEntries"]}


def op_split_write(c):
    """One request PDU written in two SMB writes: a client bug the server
    must not paper over (it logs the error and closes the pipe)."""
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    transport = dce.get_rpc_transport()
    pdu = struct.pack("<BBBB4sHHIIHH", 5, 0, 0, 3, b"\x10\0\0\0", 28, 0, 99, 4, 0, 10) + \
        struct.pack("<I", 1)
    transport.send(pdu[:16])
    transport.send(pdu[16:])
    return {"reply": transport.recv().hex()}


def op_bogus_bind(c):
    """Two unknown abstract syntaxes and the real one in one bind: the unknown
    contexts are refused (impacket skips their results), the real one works."""
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION, bogus_binds=2)
    req = T.RpcGetAllSessions()
    req["pLevel"] = 1
    return {"count": request(dce, req)["pcEntries"]}


def op_multi_context(c):
    """One bind carrying TermSrvEnumeration (context 0) and TermSrvSession
    (context 1), then a call on each context over the same pipe and the same
    security context.  impacket binds one interface at a time and derives
    the auth_context_id from the context id, so both are patched for the op."""
    original_bind, original_trailer = rpcrt.MSRPCBind, rpcrt.SEC_TRAILER

    class TwoContextBind(original_bind):
        def addCtxItem(self, item):
            original_bind.addCtxItem(self, item)
            extra = rpcrt.CtxItem()
            extra["ContextID"] = item["ContextID"] + 1
            extra["TransItems"] = 1
            extra["AbstractSyntax"] = T.TERMSRV_SESSION
            extra["TransferSyntax"] = item["TransferSyntax"]
            original_bind.addCtxItem(self, extra)

    class OneSecurityContext(original_trailer):
        def __setitem__(self, key, value):
            original_trailer.__setitem__(self, key, 79231 if key == "auth_ctx_id" else value)

    rpcrt.MSRPCBind, rpcrt.SEC_TRAILER = TwoContextBind, OneSecurityContext
    try:
        dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
        req = T.RpcGetAllSessions()
        req["pLevel"] = 1
        count = request(dce, req)["pcEntries"]
        dce.set_ctx_id(1)
        handle, hr = open_session(dce, 2)
    finally:
        rpcrt.MSRPCBind, rpcrt.SEC_TRAILER = original_bind, original_trailer
    return {"count": count, "open_hresult": hr}


def op_alter_context(c):
    """bind TermSrvEnumeration, then alter_context adds TermSrvSession on the
    same pipe (impacket runs a second NTLM exchange for it)."""
    dce = c.connect(T.PIPE_LSM, T.TERMSRV_ENUMERATION)
    session_dce = dce.alter_ctx(T.TERMSRV_SESSION)
    _, hr = open_session(session_dce, 2)
    req = T.RpcGetAllSessions()
    req["pLevel"] = 1
    return {"count": request(dce, req)["pcEntries"], "open_hresult": hr}


OPS = {name[3:].replace("_", "-"): fn for name, fn in globals().items()
       if name.startswith("op_")}


def fault_number(exc):
    """The RPC fault status behind an impacket DCERPCException, if any."""
    text = str(exc.error_string or exc)
    if isinstance(exc.error_code, int):
        return exc.error_code
    if text in T.FAULT_CODES:
        return T.FAULT_CODES[text]
    match = re.search(r"status code: ([0-9a-f]{8})", text)
    return int(match.group(1), 16) if match else None


def run(client, spec):
    name, *args = spec.split(":")
    try:
        result = OPS[name](client, *args)
        return dict({"op": spec, "ok": True}, **result)
    except rpcrt.DCERPCException as e:
        return {"op": spec, "ok": False, "error": str(e.error_string or e),
                "fault": fault_number(e)}
    except SessionError as e:
        return {"op": spec, "ok": False, "error": str(e), "smb_status": e.getErrorCode()}
    except (socket.timeout, NetBIOSTimeout, TimeoutError) as e:
        return {"op": spec, "ok": False, "error": "timeout: %s" % e, "timeout": True}
    except Exception as e:          # a broken response is a result the tests look at
        return {"op": spec, "ok": False, "error": "%s: %s" % (type(e).__name__, e)}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("TERMSRV_SIM_PORT", 0)))
    parser.add_argument("--user", default=os.environ.get("TERMSRV_SIM_USER"))
    parser.add_argument("--password", default=os.environ.get("TERMSRV_SIM_PASSWORD"))
    parser.add_argument("--domain", default=os.environ.get("TERMSRV_SIM_DOMAIN", ""))
    parser.add_argument("--rpc-password", help="a different password for the RPC-level NTLM "
                        "than for the SMB session")
    parser.add_argument("--level", type=int, default=6,
                        help="RPC auth level: 1 none, 5 integrity, 6 privacy (default)")
    parser.add_argument("--timeout", type=float, default=5)
    parser.add_argument("--max-recv-frag", type=int)
    parser.add_argument("--kerberos-ccache", help="bind with Kerberos (SPNEGO) using the service "
                        "ticket in this ccache (impacket's Kerberos; SMB stays NTLM)")
    parser.add_argument("--kerberos-spn", default="host/ts01.corp.test@CORP.TEST")
    parser.add_argument("ops", nargs="+", metavar="OP")
    opts = parser.parse_args()
    LOG.setLevel(logging.CRITICAL)
    client = T.Client(opts.port, opts.user, opts.password, opts.domain, opts.level,
                      opts.timeout, opts.max_recv_frag, opts.rpc_password,
                      opts.kerberos_ccache, opts.kerberos_spn)
    print(json.dumps([run(client, op) for op in opts.ops]))


if __name__ == "__main__":
    main()
