"""Server side of NTLMSSP as used by DCE/RPC (auth type 10), per MS-NLMP.

Message layouts (NEGOTIATE / CHALLENGE / AUTHENTICATE) are parsed and built
here with struct; the cryptographic primitives (MD4 via compute_nthash,
HMAC-MD5, the sign/seal key derivations) come from impacket.ntlm and RC4 from
Cryptodome, the crypto library python3-impacket itself depends on.

One NtlmContext is one security context of one connection (keyed by the
sec_trailer's auth_context_id).  Sequence numbers are kept separately for
the receive and the send direction, each starting at 0 and counted per PDU
fragment, as Windows does for connection-oriented RPC.
"""

import hmac
import hashlib
import os
import struct

from Cryptodome.Cipher import ARC4
from impacket import ntlm as imp_ntlm

SIGNATURE = b"NTLMSSP\0"

NEGOTIATE_UNICODE = 0x00000001
REQUEST_TARGET = 0x00000004
NEGOTIATE_SIGN = 0x00000010
NEGOTIATE_SEAL = 0x00000020
NEGOTIATE_NTLM = 0x00000200
NEGOTIATE_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
NEGOTIATE_ESS = 0x00080000
NEGOTIATE_TARGET_INFO = 0x00800000
NEGOTIATE_VERSION = 0x02000000
NEGOTIATE_128 = 0x20000000
NEGOTIATE_KEY_EXCH = 0x40000000
NEGOTIATE_56 = 0x80000000

# Flags the server echoes when the client asks for them (MS-NLMP 3.2.5.1.1).
ECHOED_FLAGS = (NEGOTIATE_UNICODE | REQUEST_TARGET | NEGOTIATE_SIGN | NEGOTIATE_SEAL
                | NEGOTIATE_ALWAYS_SIGN | NEGOTIATE_ESS | NEGOTIATE_VERSION
                | NEGOTIATE_128 | NEGOTIATE_KEY_EXCH | NEGOTIATE_56)

AV_EOL, AV_NB_COMPUTER, AV_NB_DOMAIN, AV_DNS_COMPUTER, AV_DNS_DOMAIN = 0, 1, 2, 3, 4
AV_FLAGS, AV_TIMESTAMP = 6, 7
AV_FLAG_MIC_PRESENT = 0x2

NTLM_REVISION_W2K3 = 15


class AuthError(Exception):
    """The AUTHENTICATE message does not prove knowledge of the password."""


class SignatureError(Exception):
    """A request's verifier does not match its contents."""


def _hmac_md5(key, data):
    return hmac.new(key, data, hashlib.md5).digest()


def _av_pairs(pairs):
    out = b""
    for av_id, value in pairs:
        out += struct.pack("<HH", av_id, len(value)) + value
    return out + struct.pack("<HH", AV_EOL, 0)


def _parse_av_pairs(blob):
    pairs = {}
    pos = 0
    while pos + 4 <= len(blob):
        av_id, length = struct.unpack_from("<HH", blob, pos)
        pos += 4
        if av_id == AV_EOL:
            break
        pairs[av_id] = blob[pos:pos + length]
        pos += length
    return pairs


def _field(msg, offset):
    """A (len, maxlen, offset) payload descriptor at `offset` of msg."""
    length, _, start = struct.unpack_from("<HHI", msg, offset)
    if start + length > len(msg):
        raise AuthError("payload field outside the message")
    return msg[start:start + length]


class NtlmContext:
    """One NTLM security context, from NEGOTIATE to sealed traffic."""

    def __init__(self, host, level):
        self.host = host
        self.level = level
        self.negotiate = b""
        self.challenge_msg = b""
        self.server_challenge = os.urandom(8)
        self.established = False
        self.user = None
        self.domain = None
        self.account = None
        self.flags = 0
        self.recv_seq = 0
        self.send_seq = 0

    # -- handshake ----------------------------------------------------------

    def challenge(self, negotiate):
        """Answer a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2)."""
        if len(negotiate) < 16 or negotiate[:8] != SIGNATURE or \
                struct.unpack_from("<I", negotiate, 8)[0] != 1:
            raise AuthError("not an NTLM NEGOTIATE message")
        self.negotiate = negotiate
        client_flags = struct.unpack_from("<I", negotiate, 12)[0]
        flags = (client_flags & ECHOED_FLAGS) | NEGOTIATE_NTLM | TARGET_TYPE_DOMAIN \
            | NEGOTIATE_TARGET_INFO | NEGOTIATE_UNICODE
        target_name = self.host.domain.encode("utf-16-le")
        dns_domain = self.host.dns_domain
        target_info = _av_pairs([
            (AV_NB_DOMAIN, self.host.domain.encode("utf-16-le")),
            (AV_NB_COMPUTER, self.host.netbios_name.encode("utf-16-le")),
            (AV_DNS_DOMAIN, dns_domain.encode("utf-16-le")),
            (AV_DNS_COMPUTER, ("%s.%s" % (self.host.netbios_name.lower(), dns_domain))
             .encode("utf-16-le")),
            # The timestamp is the host's own clock, skew included.
            (AV_TIMESTAMP, struct.pack("<Q", self.host.filetime_now())),
        ])
        major, minor, build = self.host.caps["version"]
        version = struct.pack("<BBH3xB", major, minor, build, NTLM_REVISION_W2K3) \
            if flags & NEGOTIATE_VERSION else b""
        payload_start = 48 + len(version)
        msg = SIGNATURE + struct.pack("<I", 2)
        msg += struct.pack("<HHI", len(target_name), len(target_name), payload_start)
        msg += struct.pack("<I", flags) + self.server_challenge + b"\0" * 8
        msg += struct.pack("<HHI", len(target_info), len(target_info),
                           payload_start + len(target_name))
        msg += version + target_name + target_info
        self.challenge_msg = msg
        return msg

    def authenticate(self, msg):
        """Verify an AUTHENTICATE_MESSAGE (NTLMv2 only) and derive the keys.

        Raises AuthError on anything Windows would refuse: unknown account,
        wrong password, anonymous or NTLMv1 responses, a bad MIC, or a
        client that did not negotiate extended session security.
        """
        if len(msg) < 64 or msg[:8] != SIGNATURE or struct.unpack_from("<I", msg, 8)[0] != 3:
            raise AuthError("not an NTLM AUTHENTICATE message")
        nt_response = _field(msg, 20)
        domain = _field(msg, 28).decode("utf-16-le", "replace")
        user = _field(msg, 36).decode("utf-16-le", "replace")
        encrypted_key = _field(msg, 52)
        self.flags = struct.unpack_from("<I", msg, 60)[0]
        self.user, self.domain = user, domain or self.host.domain
        if not user or len(nt_response) <= 24:
            raise AuthError("anonymous or NTLMv1 authentication refused")
        if not self.flags & NEGOTIATE_ESS:
            raise AuthError("extended session security not negotiated")
        if self.level == 6 and not self.flags & NEGOTIATE_SEAL or \
                self.level == 5 and not self.flags & NEGOTIATE_SIGN:
            raise AuthError("packet %s without NTLM %s"
                            % (("privacy", "sealing") if self.level == 6 else
                               ("integrity", "signing")))
        account = self.host.find_account(user)
        if account is None:
            raise AuthError("unknown account %s" % user)
        # NTOWFv2 is keyed with the user and domain exactly as the client sent them.
        response_key = imp_ntlm.NTOWFv2(user, account.password, domain)
        proof, blob = nt_response[:16], nt_response[16:]
        if not hmac.compare_digest(_hmac_md5(response_key, self.server_challenge + blob), proof):
            raise AuthError("wrong password for %s" % user)
        session_base_key = _hmac_md5(response_key, proof)
        if self.flags & NEGOTIATE_KEY_EXCH:
            if len(encrypted_key) != 16:
                raise AuthError("key exchange without an encrypted session key")
            exported_key = ARC4.new(session_base_key).decrypt(encrypted_key)
        else:
            exported_key = session_base_key
        client_pairs = _parse_av_pairs(blob[28:])
        mic_flags = struct.unpack("<I", client_pairs.get(AV_FLAGS, b"\0\0\0\0")[:4])[0]
        if mic_flags & AV_FLAG_MIC_PRESENT:
            if len(msg) < 88:
                raise AuthError("MIC announced but missing")
            zeroed = msg[:72] + b"\0" * 16 + msg[88:]
            expected = _hmac_md5(exported_key, self.negotiate + self.challenge_msg + zeroed)
            if not hmac.compare_digest(expected, msg[72:88]):
                raise AuthError("bad MIC")
        self._derive_keys(exported_key)
        self.account = account
        self.established = True

    def _derive_keys(self, exported_key):
        flags = self.flags
        self.client_sign_key = imp_ntlm.SIGNKEY(flags, exported_key, "Client")
        self.server_sign_key = imp_ntlm.SIGNKEY(flags, exported_key, "Server")
        # Two RC4 states for the life of the connection, never re-keyed.
        self._recv_rc4 = ARC4.new(imp_ntlm.SEALKEY(flags, exported_key, "Client"))
        self._send_rc4 = ARC4.new(imp_ntlm.SEALKEY(flags, exported_key, "Server"))

    # -- per-PDU protection (MS-NLMP 3.4.4 / 3.4.6, MS-RPCE 2.2.2.11) --------

    def _checksum(self, key, rc4, seq, signed_part):
        checksum = _hmac_md5(key, struct.pack("<I", seq) + signed_part)[:8]
        if self.flags & NEGOTIATE_KEY_EXCH:
            checksum = rc4.encrypt(checksum)
        return checksum

    def unprotect(self, header, body, trailer, token, privacy):
        """Check one request fragment; return its plaintext body (stub + pad).

        header: the PDU up to the stub, body: stub + auth pad as received,
        trailer: the 8-byte sec_trailer, token: the 16-byte verifier.
        The signature covers header + plaintext body + sec_trailer.
        """
        seq = self.recv_seq
        self.recv_seq += 1
        plain = self._recv_rc4.decrypt(body) if privacy else body
        expected = self._checksum(self.client_sign_key, self._recv_rc4, seq,
                                  header + plain + trailer)
        version, checksum, token_seq = struct.unpack("<I8sI", token)
        if version != 1 or token_seq != seq or not hmac.compare_digest(checksum, expected):
            raise SignatureError("request verifier mismatch (seq %d)" % seq)
        return plain

    def protect(self, header, body, trailer, privacy):
        """Seal and sign one response fragment; return (wire body, token)."""
        seq = self.send_seq
        self.send_seq += 1
        wire = self._send_rc4.encrypt(body) if privacy else body
        checksum = self._checksum(self.server_sign_key, self._send_rc4, seq,
                                  header + body + trailer)
        return wire, struct.pack("<I8sI", 1, checksum, seq)
