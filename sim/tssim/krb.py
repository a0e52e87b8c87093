"""Kerberos acceptor for DCE/RPC auth types 9 (SPNEGO) and 16 (raw Kerberos).

DCE style (MS-KILE 3.4.5.1): AP-REQ in the bind, our AP-REP in the
bind_ack, the client's own AP-REP in the alter_context (type 9) or the
rpc_auth_3 (type 16).  MIT krb5 through python3-gssapi does every check and
every seal (gssapi.raw.ext_dce); SPNEGO is parsed here, in its own small
DER reader, so that the client's hand-written encoder is checked by code
it does not share.  The AP-REQ may come GSS-framed (impacket, gopacket,
termsrv) or raw (MIT in DCE style).

Sealing follows Samba's gssapi_helper.c: HEADER (the auth_value) |
SIGN_ONLY (the PDU before the stub) | DATA (stub + padding) | SIGN_ONLY
(sec_trailer) when header signing was negotiated, the SIGN_ONLY pieces
EMPTY otherwise.
"""

import os

os.environ.setdefault("KRB5RCACHETYPE", "none")     # before MIT makes a context

import gssapi.raw as gr                             # noqa: E402
from gssapi.raw import ext_dce as dce               # noqa: E402
from gssapi.raw.types import RequirementFlag as F   # noqa: E402

from .ntlm import AuthError, SignatureError          # noqa: E402

AUTH_TYPE_SPNEGO, AUTH_TYPE_KRB5 = 9, 16

OID_SPNEGO = bytes.fromhex("2b0601050502")
OID_KRB5 = bytes.fromhex("2a864886f712010202")
OID_MS_KRB5 = bytes.fromhex("2a864882f712010202")
ACCEPT_COMPLETED, ACCEPT_INCOMPLETE, REJECT = 0, 1, 2


class KrbError(AuthError):
    """The acceptor refused the AP-REQ; token is MIT's KRB-ERROR (or None)."""

    def __init__(self, message, token=None, code=None):
        AuthError.__init__(self, message)
        self.token, self.code = token, code


# -- DER ----------------------------------------------------------------------

def _take(buf, pos, end, tag):
    """One element with this tag at pos: (content start, content end)."""
    if pos + 2 > end or buf[pos] != tag:
        raise AuthError("DER: expected tag 0x%02x at %d" % (tag, pos))
    n, pos = buf[pos + 1], pos + 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > end:
            raise AuthError("DER: bad length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise AuthError("DER: element overruns its parent")
    return pos, pos + n


def _hdr(tag, n):
    if n < 0x80:
        return bytes([tag, n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(body)]) + body


def _tlv(tag, content):
    return _hdr(tag, len(content)) + content


def parse_neg_token_init(tok):
    """GSS InitialContextToken with a NegTokenInit: (mech OIDs, mechToken)."""
    s, e = _take(tok, 0, len(tok), 0x60)
    if e != len(tok):
        raise AuthError("SPNEGO: trailing bytes (%d of %d): %s" % (e, len(tok), bytes(tok[:40]).hex()))
    os_, oe = _take(tok, s, e, 0x06)
    if tok[os_:oe] != OID_SPNEGO:
        raise AuthError("SPNEGO: not the SPNEGO OID")
    s, e = _take(tok, oe, e, 0xA0)
    s, e = _take(tok, s, e, 0x30)
    mechs, mech_token, pos = [], None, s
    ms, me = _take(tok, pos, e, 0xA0)
    pos = me
    ls, le = _take(tok, ms, me, 0x30)
    mech_list = bytes(tok[ms:me])        # what a mechListMIC covers
    while ls < le:
        a, b = _take(tok, ls, le, 0x06)
        mechs.append(bytes(tok[a:b]))
        ls = b
    if pos < e and tok[pos] == 0xA1:                   # reqFlags
        pos = _take(tok, pos, e, 0xA1)[1]
    if pos < e and tok[pos] == 0xA2:
        a, b = _take(tok, pos, e, 0xA2)
        c, d = _take(tok, a, b, 0x04)
        mech_token, pos = bytes(tok[c:d]), b
    if pos < e and tok[pos] == 0xA3:                   # mechListMIC
        pos = _take(tok, pos, e, 0xA3)[1]
    if pos != e:
        raise AuthError("SPNEGO: unexpected field in NegTokenInit")
    return mechs, mech_token, mech_list


def parse_neg_token_resp(tok):
    """NegTokenResp: (negState or None, responseToken or None)."""
    s, e = _take(tok, 0, len(tok), 0xA1)
    if e != len(tok):
        raise AuthError("SPNEGO: trailing bytes")
    s, e = _take(tok, s, e, 0x30)
    state, token, pos = None, None, s
    for tag in (0xA0, 0xA1, 0xA2, 0xA3):
        if pos < e and tok[pos] == tag:
            a, b = _take(tok, pos, e, tag)
            if tag == 0xA0:
                c, d = _take(tok, a, b, 0x0A)
                state = tok[c] if d == c + 1 else None
            elif tag == 0xA2:
                c, d = _take(tok, a, b, 0x04)
                token = bytes(tok[c:d])
            pos = b
    if pos != e:
        raise AuthError("SPNEGO: unexpected field in NegTokenResp")
    return state, token


def neg_token_resp(state, token=None, mech=None, mic=None):
    body = _tlv(0xA0, _tlv(0x0A, bytes([state])))
    if mech:
        body += _tlv(0xA1, _tlv(0x06, mech))
    if token:
        body += _tlv(0xA2, _tlv(0x04, token))
    if mic is not None:
        body += _tlv(0xA3, _tlv(0x04, mic))
    return _tlv(0xA1, _tlv(0x30, body))


def unframe(token):
    """A GSS-framed krb5 token (0x60, KRB5 OID, TOK_ID) as MIT's DCE style
    wants it: raw.  Anything else is returned as it is."""
    if not token or token[0] != 0x60:
        return token
    s, e = _take(token, 0, len(token), 0x60)
    a, b = _take(token, s, e, 0x06)
    if token[a:b] != OID_KRB5 or b + 2 > e:
        raise AuthError("GSS framing: not Kerberos")
    return bytes(token[b + 2:e])


# -- the security context -------------------------------------------------------

_creds = {}


def _acceptor_creds(keytab):
    if keytab not in _creds:
        _creds[keytab] = gr.acquire_cred_from({b"keytab": keytab.encode()},
                                              usage="accept").creds
    return _creds[keytab]


def _krb_code(err):
    """The Kerberos error code (MIT minor status) of a GSSError, as unsigned."""
    minor = getattr(err, "min_code", 0) or 0
    return minor & 0xFFFFFFFF


class KerberosContext:
    """One Kerberos security context on a pipe (one auth_context_id)."""

    def __init__(self, host, level, auth_type, header_sign):
        self.host, self.level, self.auth_type = host, level, auth_type
        self.header_sign = header_sign
        self.ctx = None
        self.established = False
        self.token_size = None
        self.user = self.domain = None
        self.account = None
        self.framed = None
        self.mech_list = None

    # -- legs ------------------------------------------------------------------

    def _accept(self, token):
        try:
            res = gr.accept_sec_context(token, _acceptor_creds(self.host.kerberos["keytab"]),
                                        context=self.ctx)
        except gr.GSSError as e:
            raise KrbError("Kerberos: %s" % e, getattr(e, "token", None), _krb_code(e))
        self.ctx = res.context
        return res

    def start(self, token):
        """The bind's token -> the bind_ack's."""
        inner = token
        if self.auth_type == AUTH_TYPE_SPNEGO:
            mechs, inner, self.mech_list = parse_neg_token_init(token)
            if not {OID_KRB5, OID_MS_KRB5} & set(mechs) or inner is None:
                raise KrbError("SPNEGO: no Kerberos mechanism offered")
        self.framed = bool(inner) and inner[0] == 0x60
        res = self._accept(unframe(inner))
        if not res.more_steps:
            raise KrbError("Kerberos: not a DCE-style exchange (no third leg)")
        if self.auth_type == AUTH_TYPE_SPNEGO:
            return neg_token_resp(ACCEPT_INCOMPLETE, res.token, OID_KRB5)
        return res.token

    def complete(self, token):
        """The third leg (alter_context / rpc_auth_3) -> the alter_context_resp
        token (SPNEGO) or None."""
        if self.auth_type == AUTH_TYPE_SPNEGO:
            _, token = parse_neg_token_resp(token)
            if token is None:
                raise KrbError("SPNEGO: third leg without a responseToken")
        res = self._accept(unframe(token))
        if res.more_steps:
            raise KrbError("Kerberos: more than three legs")
        if not {F.confidentiality, F.integrity, F.dce_style} <= set(res.flags):
            raise KrbError("Kerberos: not DCE style with confidentiality")
        name = gr.display_name(res.initiator_name, name_type=False).name.decode()
        self.user, _, realm = name.partition("@")
        self.domain = realm
        self.account = self.host.find_account(self.user)
        iov = dce.IOV(dce.IOVBuffer(dce.IOVBufferType.header, True, None),
                      dce.IOVBuffer(dce.IOVBufferType.data, False, b"\0" * 16),
                      std_layout=False)
        dce.wrap_iov_length(self.ctx, iov, confidential=True)
        self.token_size = len(iov[0].value or b"") or 76
        self.established = True
        if self.auth_type == AUTH_TYPE_SPNEGO:
            # mech_list_mic = true: a mechListMIC over the client's mechTypes
            # (RFC 4178 5); "bad": one with a bit flipped
            mode = self.host.kerberos.get("mech_list_mic")
            mic = None
            if mode:
                mic = bytearray(gr.get_mic(self.ctx, self.mech_list))
                if mode == "bad":
                    mic[-1] ^= 1
                mic = bytes(mic)
            return neg_token_resp(ACCEPT_COMPLETED, mic=mic)
        return None

    # -- messages --------------------------------------------------------------

    def _iov(self, token, header, body, trailer, alloc_header):
        B, T = dce.IOVBuffer, dce.IOVBufferType
        if self.header_sign:
            return dce.IOV(B(T.header, alloc_header, token), B(T.sign_only, False, header),
                           B(T.data, False, body), B(T.sign_only, False, trailer),
                           std_layout=False)
        return dce.IOV(B(T.header, alloc_header, token), B(T.data, False, body),
                       std_layout=False)

    def unprotect(self, header, body, trailer, token, privacy):
        if not privacy:
            raise SignatureError("Kerberos: only packet privacy is served")
        iov = self._iov(token, header, body, trailer, False)
        try:
            res = dce.unwrap_iov(self.ctx, iov)
        except gr.GSSError as e:
            raise SignatureError("Kerberos unwrap: %s" % e)
        if not res.encrypted:
            raise SignatureError("Kerberos: request not encrypted")
        return bytes(iov[2 if self.header_sign else 1].value)

    def protect(self, header, body, trailer, privacy):
        iov = self._iov(None, header, body, trailer, True)
        dce.wrap_iov(self.ctx, iov, confidential=True)
        token = bytes(iov[0].value)
        if len(token) != self.token_size:
            raise SignatureError("Kerberos: verifier size changed")
        return bytes(iov[2 if self.header_sign else 1].value), token
