"""Connection-oriented DCE/RPC (C706 ch. 12 + MS-RPCE) over one pipe instance.

One PipeConnection serves one opened named pipe: the NPA handshake, then
message-mode traffic where every smbd message must be exactly one PDU
fragment.  It implements bind / alter_context with several presentation
contexts, NTLM security contexts (bind -> bind_ack with CHALLENGE -> auth3),
request reassembly, sealed and signed responses fragmented to the client's
max_recv_frag, the faults Windows sends, and the per-host injected faults.
"""

import itertools
import socket
import struct
import time
import uuid

from . import npa
from .ndr import BadStub, Reader
from .ntlm import AuthError, NtlmContext, SignatureError
from . import krb
from . import services as S
from . import world as W

PTYPE_REQUEST, PTYPE_RESPONSE, PTYPE_FAULT = 0, 2, 3
PTYPE_BIND, PTYPE_BIND_ACK, PTYPE_BIND_NAK = 11, 12, 13
PTYPE_ALTER, PTYPE_ALTER_RESP, PTYPE_AUTH3 = 14, 15, 16
PTYPE_CO_CANCEL, PTYPE_ORPHANED = 18, 19
PFC_FIRST_FRAG, PFC_LAST_FRAG, PFC_SUPPORT_HEADER_SIGN = 0x01, 0x02, 0x04
PFC_DID_NOT_EXECUTE, PFC_OBJECT_UUID = 0x20, 0x80

AUTH_TYPE_NONE, AUTH_TYPE_NTLM = 0, 10
AUTH_TYPE_SPNEGO, AUTH_TYPE_KRB5 = krb.AUTH_TYPE_SPNEGO, krb.AUTH_TYPE_KRB5
AUTH_LEVEL_NONE, AUTH_LEVEL_INTEGRITY, AUTH_LEVEL_PRIVACY = 1, 5, 6
NTLM_TOKEN_SIZE = 16

NDR20 = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le + struct.pack("<I", 2)
BIND_TIME_FEATURES = uuid.UUID("6cb71c2c-9812-4540-0000-000000000000").bytes_le[:8]
ZERO_SYNTAX = b"\0" * 20

# bind_nak reasons (MS-RPCE 2.2.2.5 / C706 p_reject_reason_t).
NAK_NOT_SPECIFIED, NAK_PROTOCOL_VERSION, NAK_AUTH_TYPE, NAK_INVALID_CHECKSUM = 0, 4, 8, 9
# p_cont_def_result_t / p_provider_reason_t.
ACCEPTANCE, PROVIDER_REJECTION, NEGOTIATE_ACK = 0, 2, 3
ABSTRACT_NOT_SUPPORTED, TRANSFER_NOT_SUPPORTED = 1, 2

NCA_FAULT_UNSPEC = 0x1C000001
STATUS_LOGON_FAILURE = 0xC000006D

# The simulator never sends or accepts fragments larger than this (Windows' limit).
SERVER_MAX_FRAG = 5840
MIN_FRAG = 1432
MAX_REQUEST_STUB = 1 << 20

PIPE_NAMES = {W.PIPE_LSM: "LSM_API_service", W.PIPE_TERMSRV: "TermSrv_API_service",
              W.PIPE_CTX: "Ctx_WinStation_API_service", W.PIPE_LSA: "lsass"}

_assoc_groups = itertools.count(0x5E41)


def header(ptype, flags, frag_len, auth_len, call_id):
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\0\0\0",
                       frag_len, auth_len, call_id)


class ProtocolError(Exception):
    """The client broke DCE/RPC framing; the pipe is closed."""


class PendingCall:
    """A request being reassembled from its fragments."""

    def __init__(self, call_id, ctx_id, opnum):
        self.call_id, self.ctx_id, self.opnum = call_id, ctx_id, opnum
        self.stub = bytearray()
        self.frags, self.bytes_in = 0, 0
        self.denied = None            # fault status decided on a fragment
        self.principal = None
        self.sec, self.auth_ctx = None, None
        self.level, self.auth_type = AUTH_LEVEL_NONE, AUTH_TYPE_NONE


class PipeConnection:
    def __init__(self, server, sock, pipe):
        self.server, self.sock, self.pipe = server, sock, pipe
        self.host = None
        self.info = {}
        self.contexts = {}            # p_cont_id -> Interface
        self.rejected = set()         # p_cont_ids refused at bind time
        self.security = {}            # auth_context_id -> NtlmContext
        self.handles = {}             # context handle uuid -> (kind, value)
        self.max_xmit = self.max_recv = 4280
        self.assoc_group = 0
        self.pending = None
        self.hung = False
        self.closed = False

    # -- framing ---------------------------------------------------------------

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def recv_message(self):
        head = self._recv_exact(2)
        if head is None:
            return None
        return self._recv_exact(struct.unpack("<H", head)[0])

    def send_message(self, data):
        self.sock.sendall(struct.pack("<H", len(data)) + data)

    # -- logging ---------------------------------------------------------------

    def log(self, event, **fields):
        host = self.host
        self.server.log.write(host=host.name if host else None,
                              port=host.port if host else self.info.get("server_port"),
                              pipe=self.pipe, event=event, **fields)

    def _smb_identity(self):
        user = self.info.get("smb_user")
        return "%s\\%s" % (self.info.get("smb_domain") or "", user) if user else None

    # -- main loop -------------------------------------------------------------

    def run(self):
        try:
            self.info = npa.handshake(self.sock)
            self.host = self.server.host_for_port(self.info["server_port"])
            if self.host is None:
                return
            self.log("open", smb_user=self._smb_identity(), client=self.info.get("client_addr"))
            while not self.closed:
                msg = self.recv_message()
                if msg is None:
                    break
                if self.hung:
                    continue          # a hung server reads but never answers
                self.handle(msg)
        except ProtocolError as e:
            self.log("error", detail=str(e))
        except (OSError, npa.NpaError):
            pass                        # the peer went away
        except Exception as e:          # a simulator bug: logged, the pipe is closed
            self.log("error", detail="%s: %s" % (type(e).__name__, e))
        finally:
            if self.host is not None:
                self.log("close")
            try:
                self.sock.close()
            except OSError:
                pass

    def handle(self, msg):
        if len(msg) < 16:
            raise ProtocolError("message of %d bytes is not a PDU" % len(msg))
        vers, minor, ptype, flags, drep, frag_len, auth_len, call_id = \
            struct.unpack_from("<BBBB4sHHI", msg)
        if vers != 5 or drep[0] != 0x10:
            raise ProtocolError("not a little-endian DCE/RPC v5 PDU")
        if frag_len != len(msg):
            # One SMB write must carry exactly one fragment; Windows' pipe
            # semantics make a split PDU a client bug.
            raise ProtocolError("frag_length %d but the write carried %d bytes (split or "
                                "merged PDU)" % (frag_len, len(msg)))
        if auth_len and auth_len + 8 + 16 > frag_len:
            raise ProtocolError("auth_length %d does not fit frag_length %d"
                                % (auth_len, frag_len))
        if ptype in (PTYPE_BIND, PTYPE_ALTER):
            self.on_bind(msg, ptype, minor, call_id, auth_len, flags)
        elif ptype == PTYPE_AUTH3:
            self.on_auth3(msg, call_id, auth_len)
        elif ptype == PTYPE_REQUEST:
            self.on_request(msg, flags, call_id, auth_len)
        elif ptype in (PTYPE_CO_CANCEL, PTYPE_ORPHANED):
            self.pending = None
        else:
            raise ProtocolError("unexpected PDU type %d" % ptype)

    # -- bind / alter_context ----------------------------------------------------

    def _trailer(self, msg, auth_len):
        off = len(msg) - auth_len - 8
        auth_type, level, pad, _, ctx_id = struct.unpack_from("<BBBBI", msg, off)
        return auth_type, level, pad, ctx_id, msg[off + 8:], off

    def on_bind(self, msg, ptype, minor, call_id, auth_len, flags=0):
        alter = ptype == PTYPE_ALTER
        event = "alter" if alter else "bind"
        fault = self.host.fault_for(("bind_nak",))
        if fault is not None:
            reason = fault["arg"] or NAK_NOT_SPECIFIED
            self.log("fault-injected", mode="bind_nak", call_id=call_id)
            return self._bind_nak(call_id, reason, event, len(msg))
        if minor > 1:
            return self._bind_nak(call_id, NAK_PROTOCOL_VERSION, event, len(msg))
        try:
            max_xmit, max_recv, assoc, n_ctx = struct.unpack_from("<HHIB", msg, 16)
            pos, results, accepted = 28, [], []
            for _ in range(n_ctx):
                ctx_id, n_ts = struct.unpack_from("<HB", msg, pos)
                if n_ts == 0 or pos + 24 + 20 * n_ts > len(msg) - auth_len:
                    raise struct.error("truncated context element")
                abstract = msg[pos + 4:pos + 24]
                syntaxes = [msg[pos + 24 + 20 * i:pos + 44 + 20 * i] for i in range(n_ts)]
                pos += 24 + 20 * n_ts
                results.append(self._negotiate_context(ctx_id, abstract, syntaxes, accepted))
        except struct.error:
            return self._bind_nak(call_id, NAK_NOT_SPECIFIED, event, len(msg))
        if max_recv < MIN_FRAG:
            # C706 12.6.3.1: every implementation must accept 1432-byte fragments.
            return self._bind_nak(call_id, NAK_NOT_SPECIFIED, event, len(msg))
        if not alter:
            # The server's fragments must fit what the client can receive.
            self.max_xmit = min(max_recv, SERVER_MAX_FRAG)
            self.max_recv = min(max_xmit, SERVER_MAX_FRAG)
            self.assoc_group = assoc or next(_assoc_groups)
        auth = b""
        level = AUTH_LEVEL_NONE
        auth_type = AUTH_TYPE_NONE
        header_sign = False
        if auth_len:
            auth_type, level, _, auth_ctx, token, _ = self._trailer(msg, auth_len)
            try:
                sec, out = self._bind_auth(alter, auth_type, level, auth_ctx, token, flags)
            except krb.KrbError as e:
                self.log("error", detail=str(e), call_id=call_id, krb_code=e.code)
                if e.token is None:
                    return self._bind_nak(call_id, NAK_INVALID_CHECKSUM, event, len(msg))
                # the KRB-ERROR goes back to the client, which can tell why
                sec, out = None, (krb.neg_token_resp(krb.REJECT, e.token)
                                  if auth_type == AUTH_TYPE_SPNEGO else e.token)
            except AuthError as e:
                self.log("error", detail=str(e), call_id=call_id)
                return self._bind_nak(call_id, NAK_AUTH_TYPE, event, len(msg))
            if sec is not None:
                self.security[auth_ctx] = sec
                header_sign = getattr(sec, "header_sign", False)
            auth = (auth_ctx, level, out)
        body = struct.pack("<HHI", self.max_xmit, self.max_recv, self.assoc_group)
        sec_addr = b"" if alter else b"\\PIPE\\" + PIPE_NAMES[self.pipe].encode() + b"\0"
        body += struct.pack("<H", len(sec_addr)) + sec_addr
        body += b"\0" * ((-(16 + len(body))) % 4)
        body += struct.pack("<BBH", len(results), 0, 0) + b"".join(results)
        auth_len_out = 0
        if auth and auth[2]:
            auth_ctx, level, out = auth
            pad = (-(16 + len(body))) % 4
            body += b"\0" * pad + struct.pack("<BBBBI", auth_type, level, pad, 0, auth_ctx)
            body += out
            auth_len_out = len(out)
        ack_flags = PFC_FIRST_FRAG | PFC_LAST_FRAG | (PFC_SUPPORT_HEADER_SIGN if header_sign else 0)
        pdu = header(PTYPE_ALTER_RESP if alter else PTYPE_BIND_ACK, ack_flags,
                     16 + len(body), auth_len_out, call_id) + body
        self.send_message(pdu)
        self.log(event, call_id=call_id, result="ack", auth_level=level, auth_type=auth_type,
                 header_sign=header_sign, token_in=auth_len, token_out=auth_len_out,
                 contexts=accepted, max_xmit_frag=self.max_xmit, max_recv_frag=self.max_recv,
                 bytes_in=len(msg), bytes_out=len(pdu), frags_in=1, frags_out=1)

    def _bind_auth(self, alter, auth_type, level, auth_ctx, token, flags):
        """A new security context (bind, or alter_context with a new id), or
        the next leg of a Kerberos one; returns it and the token to answer."""
        sec = self.security.get(auth_ctx)
        if alter and isinstance(sec, krb.KerberosContext) and not sec.established:
            if auth_type != sec.auth_type:
                raise AuthError("auth type changed within a context")
            out = sec.complete(token)
            self._check_principal(sec)
            return sec, out
        if auth_type == AUTH_TYPE_NTLM:
            if not self.host.ntlm:
                raise AuthError("this host refuses NTLM")
            sec = NtlmContext(self.host, level)
            return sec, sec.challenge(token)
        if auth_type in (AUTH_TYPE_SPNEGO, AUTH_TYPE_KRB5) and self.host.kerberos:
            header_sign = bool(flags & PFC_SUPPORT_HEADER_SIGN) and \
                self.host.kerberos.get("header_sign", True)
            sec = krb.KerberosContext(self.host, level, auth_type, header_sign)
            return sec, sec.start(token)
        raise AuthError("auth type %d not served" % auth_type)

    def _check_principal(self, sec):
        """The RPC principal must be the SMB user (as on a host that maps both
        to one logon); a stranger gets a context but no account: access denied."""
        smb_user = self.info.get("smb_user") or ""
        if sec.user is None or (smb_user and sec.user.lower() != smb_user.lower()):
            self.log("error", detail="Kerberos principal %s@%s is not the SMB user %s"
                     % (sec.user, sec.domain, smb_user))
            sec.account = None

    def _negotiate_context(self, ctx_id, abstract, syntaxes, accepted):
        """One p_result_t for one presentation context element."""
        iface = S.BY_SYNTAX.get(abstract)
        if abstract[:8] == BIND_TIME_FEATURES:
            # Bind time feature negotiation (MS-RPCE 3.3.1.5.3): none supported.
            return struct.pack("<HH", NEGOTIATE_ACK, 0) + ZERO_SYNTAX
        if iface is None or iface.pipe != self.pipe:
            self.rejected.add(ctx_id)
            return struct.pack("<HH", PROVIDER_REJECTION, ABSTRACT_NOT_SUPPORTED) + ZERO_SYNTAX
        if NDR20 not in syntaxes:
            self.rejected.add(ctx_id)
            return struct.pack("<HH", PROVIDER_REJECTION, TRANSFER_NOT_SUPPORTED) + ZERO_SYNTAX
        self.contexts[ctx_id] = iface
        self.rejected.discard(ctx_id)
        accepted.append({"id": ctx_id, "iface": iface.name})
        return struct.pack("<HH", ACCEPTANCE, 0) + NDR20

    def _bind_nak(self, call_id, reason, event, bytes_in):
        # provider_reject_reason, one supported version (5.0), padded to 4.
        body = struct.pack("<HBBBx", reason, 1, 5, 0)
        pdu = header(PTYPE_BIND_NAK, PFC_FIRST_FRAG | PFC_LAST_FRAG, 16 + len(body), 0,
                     call_id) + body
        self.send_message(pdu)
        self.log(event, call_id=call_id, result="nak", reason=reason, bytes_in=bytes_in,
                 bytes_out=len(pdu), frags_in=1, frags_out=1)

    def on_auth3(self, msg, call_id, auth_len):
        """rpc_auth_3 carries AUTHENTICATE (NTLM) or the client's AP-REP (raw
        Kerberos); there is never a reply.  A failed check only marks the
        context: the next request is refused."""
        if not auth_len:
            raise ProtocolError("rpc_auth_3 without auth data")
        auth_type, level, _, auth_ctx, token, _ = self._trailer(msg, auth_len)
        sec = self.security.get(auth_ctx)
        result, detail = 0, None
        if sec is None:
            result, detail = STATUS_LOGON_FAILURE, "unknown auth_context_id"
        elif auth_type != getattr(sec, "auth_type", AUTH_TYPE_NTLM):
            result, detail = STATUS_LOGON_FAILURE, "auth type changed within a context"
        else:
            try:
                if isinstance(sec, krb.KerberosContext):
                    sec.complete(token)
                    self._check_principal(sec)
                else:
                    sec.authenticate(token)
            except AuthError as e:
                result, detail = STATUS_LOGON_FAILURE, str(e)
        self.log("auth3", call_id=call_id, auth_level=level, auth_type=auth_type,
                 user="%s\\%s" % (sec.domain, sec.user) if sec and sec.user else None,
                 result=result, detail=detail, bytes_in=len(msg), bytes_out=0,
                 frags_in=1, frags_out=0)

    # -- requests --------------------------------------------------------------

    def on_request(self, msg, flags, call_id, auth_len):
        hdr_len = 24 + (16 if flags & PFC_OBJECT_UUID else 0)
        if len(msg) < hdr_len + (auth_len + 8 if auth_len else 0):
            raise ProtocolError("request shorter than its header")
        _, ctx_id, opnum = struct.unpack_from("<IHH", msg, 16)
        if flags & PFC_FIRST_FRAG:
            self.pending = PendingCall(call_id, ctx_id, opnum)
        elif self.pending is None or self.pending.call_id != call_id:
            raise ProtocolError("fragment of call %d without its first fragment" % call_id)
        call = self.pending
        call.frags += 1
        call.bytes_in += len(msg)
        stub = self._check_security(call, msg, hdr_len, auth_len)
        if stub is not None:
            call.stub += stub
            if len(call.stub) > MAX_REQUEST_STUB:
                call.denied = S.RPC_BAD_STUB_DATA
        if not flags & PFC_LAST_FRAG:
            return
        self.pending = None
        self.dispatch(call)

    def _check_security(self, call, msg, hdr_len, auth_len):
        """Authenticate one fragment; return its plaintext stub, or None after
        recording in call.denied the fault Windows would send."""
        if call.denied is not None:
            return None
        if not auth_len:
            if any(s.established for s in self.security.values()) or \
                    not self.host.allow_smb_identity:
                call.denied = S.RPC_ACCESS_DENIED
                return None
            call.principal = self.host.principal_for_smb(self.info.get("smb_user"))
            return msg[hdr_len:]
        auth_type, level, pad, auth_ctx, token, trailer_off = self._trailer(msg, auth_len)
        sec = self.security.get(auth_ctx)
        call.level, call.auth_type, call.sec, call.auth_ctx = level, auth_type, sec, auth_ctx
        if sec is None or auth_type != getattr(sec, "auth_type", AUTH_TYPE_NTLM) or \
                not sec.established or level != sec.level or sec.account is None:
            call.denied = S.RPC_ACCESS_DENIED
            return None
        if level not in (AUTH_LEVEL_INTEGRITY, AUTH_LEVEL_PRIVACY) or \
                (level < self.host.min_auth_level and not self.host.allow_smb_identity):
            call.denied = S.RPC_ACCESS_DENIED
            return None
        # NTLM verifiers have one size; a Kerberos one is whatever the
        # client's wrap made (impacket's EC differs from MIT's): GSS decides
        size_ok = auth_len >= 16 if isinstance(sec, krb.KerberosContext) else \
            auth_len == NTLM_TOKEN_SIZE
        if not size_ok or pad > trailer_off - hdr_len or pad > 15:
            call.denied = S.RPC_SEC_PKG_ERROR
            return None
        try:
            plain = sec.unprotect(msg[:hdr_len], msg[hdr_len:trailer_off],
                                  msg[trailer_off:trailer_off + 8], token,
                                  level == AUTH_LEVEL_PRIVACY)
        except SignatureError as e:
            self.log("error", detail=str(e), call_id=call.call_id)
            call.denied = S.RPC_SEC_PKG_ERROR
            return None
        call.principal = W.Principal(sec.account.name, sec.account.domain, sec.account.admin)
        return plain[:len(plain) - pad]

    def _caller(self, call):
        """For the log: the principal, else whoever tried (NTLM or SMB identity)."""
        if call.principal is not None:
            return str(call.principal)
        if call.sec is not None and call.sec.user:
            return "%s\\%s" % (call.sec.domain, call.sec.user)
        return self._smb_identity()

    def dispatch(self, call):
        started = time.time()
        fields = {"call_id": call.call_id, "opnum": call.opnum, "auth_level": call.level,
                  "auth_type": call.auth_type, "bytes_in": call.bytes_in,
                  "frags_in": call.frags, "iface": None, "method": None,
                  "user": self._caller(call)}
        iface = self.contexts.get(call.ctx_id)
        if iface is None:
            status = S.NCA_UNK_IF if call.ctx_id in self.rejected else S.NCA_INVALID_PRES_CONTEXT
            return self._fault(call, status, fields)
        fields["iface"] = iface.name
        if call.denied is not None:
            return self._fault(call, call.denied, fields)
        method = iface.method(self.host, call.opnum)
        if method is None:
            return self._fault(call, S.NCA_OP_RNG_ERROR, fields)
        name, handler = method
        fields["method"] = name
        scope = {"iface": iface.name, "opnum": call.opnum, "method": name}
        if self._inject_before(call, scope, fields):
            return
        absurd = self.host.fault_for(("absurd_count",), **scope) is not None
        ctx = S.Call(self.host, call.principal, self, iface.name, call.opnum, absurd)
        try:
            stub, result = handler(ctx, Reader(call.stub))
        except S.RpcFault as e:
            return self._fault(call, e.status, fields)
        except BadStub as e:
            fields["detail"] = str(e)
            return self._fault(call, S.RPC_BAD_STUB_DATA, fields)
        except Exception as e:          # a simulator bug: visible as a fault and in the log
            self.log("error", detail="%s: %s" % (type(e).__name__, e), call_id=call.call_id)
            return self._fault(call, NCA_FAULT_UNSPEC, fields)
        if absurd:
            self._log_injected("absurd_count", None, fields)
        messages, broken = self._build_response(call, stub, scope, fields)
        fields.update(result=result, fault=None, bytes_out=sum(len(m) for m in messages),
                      frags_out=len(messages), ms=round(1000 * (time.time() - started), 3))
        # logged before sending: a client that reads the log once it has the
        # answer must find the call there
        self.log("call", **fields)
        for m in messages:
            self.send_message(m)
        if broken:
            self.hung = True

    def _log_injected(self, mode, arg, fields):
        """A fault-injected record names the call but carries no byte or
        fragment counts: those belong to the call's own record."""
        self.log("fault-injected", mode=mode, arg=arg,
                 **{k: fields[k] for k in ("call_id", "iface", "opnum", "method", "user")})

    def _inject_before(self, call, scope, fields):
        """Faults that act before the method runs; True if the call ends here."""
        fault = self.host.fault_for(("delay", "hang", "close", "fault"), **scope)
        # arms the faults set with after=<this method> before this call is
        # answered (or closed), so a call that follows it is sure to see them
        self.host.saw(scope["method"])
        if fault is None:
            return False
        self._log_injected(fault["mode"], fault["arg"], fields)
        if fault["mode"] == "delay":
            time.sleep(fault["arg"])
            return False
        if fault["mode"] in ("hang", "close"):
            # The call arrived but gets no answer: logged with nothing sent.
            fields.update(result=None, fault=None, bytes_out=0, frags_out=0)
            self.log("call", **fields)
            if fault["mode"] == "hang":
                self.hung = True
            else:
                self.closed = True
                self.sock.shutdown(socket.SHUT_RDWR)
        else:
            self._fault(call, NCA_FAULT_UNSPEC if fault["arg"] is None else fault["arg"], fields)
        return True

    def _fault(self, call, status, fields):
        """A fault PDU.  Like Windows, faults carry no auth verifier (and so do
        not use a sequence number of the security context)."""
        flags = PFC_FIRST_FRAG | PFC_LAST_FRAG
        if status in (S.NCA_OP_RNG_ERROR, S.NCA_UNK_IF, S.NCA_INVALID_PRES_CONTEXT,
                      S.RPC_ACCESS_DENIED):
            flags |= PFC_DID_NOT_EXECUTE
        body = struct.pack("<IHBBII", 0, call.ctx_id, 0, 0, status, 0)
        pdu = header(PTYPE_FAULT, flags, 16 + len(body), 0, call.call_id) + body
        fields.update(result=None, fault=status, bytes_out=len(pdu), frags_out=1)
        self.log("call", **fields)
        self.send_message(pdu)

    def _build_response(self, call, stub, scope, fields):
        """Fragment and protect a response, applying response-side faults.
        Returns the messages to send and whether the server stops answering
        after them (a broken fragment was the last one)."""
        sec = call.sec if call.level in (AUTH_LEVEL_INTEGRITY, AUTH_LEVEL_PRIVACY) else None
        token_size = getattr(sec, "token_size", NTLM_TOKEN_SIZE)
        room = self.max_xmit - 24 - (8 + token_size if sec else 0)
        chunk = room - room % 16
        pieces = [stub[i:i + chunk] for i in range(0, len(stub), chunk)] or [b""]
        fault = self.host.fault_for(("truncated", "bad_frag_length", "wrong_call_id",
                                     "bad_signature", "flip_bit"), **scope)
        if fault is not None:
            self._log_injected(fault["mode"], fault["arg"], fields)
        call_id = call.call_id
        if fault is not None and fault["mode"] == "wrong_call_id":
            call_id += fault["arg"] or 1
        messages = []
        offset = 0
        for i, piece in enumerate(pieces):
            flags = (PFC_FIRST_FRAG if i == 0 else 0) | \
                (PFC_LAST_FRAG if i == len(pieces) - 1 else 0)
            alloc_hint = len(stub) - offset
            offset += len(piece)
            if sec is None:
                pdu = header(PTYPE_RESPONSE, flags, 24 + len(piece), 0, call_id) + \
                    struct.pack("<IHBB", alloc_hint, call.ctx_id, 0, 0) + piece
            else:
                pad = (-len(piece)) % 16
                frag_len = 24 + len(piece) + pad + 8 + token_size
                head = header(PTYPE_RESPONSE, flags, frag_len, token_size, call_id) + \
                    struct.pack("<IHBB", alloc_hint, call.ctx_id, 0, 0)
                trailer = struct.pack("<BBBBI", call.auth_type, call.level, pad, 0,
                                      call.auth_ctx)
                body, token = sec.protect(head, piece + b"\0" * pad, trailer,
                                          call.level == AUTH_LEVEL_PRIVACY)
                if fault is not None and fault["mode"] == "bad_signature":
                    token = token[:4] + bytes([token[4] ^ 0xFF]) + token[5:]
                pdu = head + body + trailer + token
            if fault is not None and fault["mode"] == "flip_bit":
                # one bit of the finished fragment, counted from its start
                # (negative: from its end): the client must reject it
                bit = int(fault["arg"] or 0)
                at = (bit // 8) % len(pdu) if bit >= 0 else len(pdu) - 1 - ((-bit - 1) // 8)
                pdu = pdu[:at] + bytes([pdu[at] ^ (1 << (abs(bit) % 8))]) + pdu[at + 1:]
            if fault is not None and fault["mode"] in ("truncated", "bad_frag_length"):
                messages.append(self._broken(pdu, fault))
                return messages, True
            messages.append(pdu)
        return messages, False

    @staticmethod
    def _broken(pdu, fault):
        """truncated: half of the fragment, its frag_length intact; bad_frag_length:
        the whole fragment with frag_length 16 bytes too large ("larger", the
        default) or cut to the bare 16-byte header ("smaller").  Either way the
        server then stops answering, as a broken peer would."""
        if fault["mode"] == "truncated":
            return pdu[:len(pdu) // 2]
        wrong = len(pdu) + 16 if (fault["arg"] or "larger") == "larger" else 16
        return pdu[:8] + struct.pack("<H", wrong) + pdu[10:]

    # -- context handles ---------------------------------------------------------

    def new_handle(self, kind, value):
        key = uuid.uuid4().bytes
        self.handles[key] = (kind, value)
        return b"\0\0\0\0" + key

    def get_handle(self, handle, kind):
        """The value behind a context handle of this connection; a closed,
        foreign or wrong-type handle is the fault Windows sends for it."""
        entry = self.handles.get(handle[4:])
        if entry is None or entry[0] != kind or handle[:4] != b"\0\0\0\0":
            raise S.RpcFault(S.NCA_CONTEXT_MISMATCH)
        return entry[1]

    def close_handle(self, handle, kind):
        self.get_handle(handle, kind)
        del self.handles[handle[4:]]
