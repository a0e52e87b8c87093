"""Unit tests of the simulator's NTLM and NDR code.

The NTLM chain is checked against Microsoft's published vectors (MS-NLMP
4.2.4: NTLMv2 authentication; 4.2.4.4: GSS_WrapEx): the server side must
accept the example AUTHENTICATE for User/Domain/Password, recover the example
session key and unseal the example "Plaintext" message with its signature.
Run:  /usr/bin/python3 -m unittest discover -s sim/tests
"""

import hashlib
import hmac
import os
import struct
import sys
import unittest

from Cryptodome.Cipher import ARC4

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tssim import ntlm  # noqa: E402
from tssim.ndr import BadStub, Reader, Writer  # noqa: E402
from tssim.world import Account  # noqa: E402

h = bytes.fromhex


class FakeHost:
    """The few Host attributes NtlmContext uses."""
    domain, netbios_name, dns_domain = "Domain", "Server", "domain.example"
    caps = {"version": (10, 0, 17763)}

    def __init__(self, password="Password"):
        self.account = Account("User", password, "Domain", True)

    def filetime_now(self):
        return 0

    def find_account(self, user):
        return self.account if user.lower() == "user" else None


# MS-NLMP 4.2.4 inputs and results
FLAGS = 0xE28A8233
SERVER_CHALLENGE = h("0123456789abcdef")
CLIENT_CHALLENGE = b"\xaa" * 8
AV_PAIRS = (struct.pack("<HH", 2, 12) + "Domain".encode("utf-16-le") +
            struct.pack("<HH", 1, 12) + "Server".encode("utf-16-le") + b"\0\0\0\0")
TEMP = b"\x01\x01" + b"\0" * 6 + b"\0" * 8 + CLIENT_CHALLENGE + b"\0" * 4 + AV_PAIRS + b"\0" * 4
NT_PROOF_STR = h("68cd0ab851e51c96aabc927bebef6a1c")
ENCRYPTED_SESSION_KEY = h("c5dad2544fc9799094ce1ce90bc9d03e")
CLIENT_SEAL_KEY = h("59f600973cc4960a25480a7c196e4c58")
CLIENT_SIGN_KEY = h("4788dc861b4782f35d43fd98fe1a2d39")
SEALED = h("54e50165bf1936dc996020c1811b0f06fb5f")
SIGNATURE = h("010000007fb38ec5c55d497600000000")
PLAINTEXT = "Plaintext".encode("utf-16-le")


def authenticate_message(nt_response, flags=FLAGS, mic=None, user="User"):
    """An AUTHENTICATE_MESSAGE with the payload after the 64-byte header
    (plus Version and MIC when a MIC is given)."""
    fields = [b"\0" * 24, nt_response, "Domain".encode("utf-16-le"),
              user.encode("utf-16-le"), "COMPUTER".encode("utf-16-le"), ENCRYPTED_SESSION_KEY]
    offset = 64 + (24 if mic is not None else 0)
    head, payload = b"", b""
    for value in fields:
        head += struct.pack("<HHI", len(value), len(value), offset + len(payload))
        payload += value
    extra = b"\x06\x01\xb1\x1d\0\0\0\x0f" + mic if mic is not None else b""
    return b"NTLMSSP\0" + struct.pack("<I", 3) + head + struct.pack("<I", flags) + extra + payload


def negotiate_message(flags=FLAGS):
    return b"NTLMSSP\0" + struct.pack("<II", 1, flags) + b"\0" * 16


class NtlmVectors(unittest.TestCase):
    def context(self, password="Password"):
        ctx = ntlm.NtlmContext(FakeHost(password), 6)
        ctx.challenge(negotiate_message())
        ctx.server_challenge = SERVER_CHALLENGE
        return ctx

    def test_example_authenticate_is_accepted_and_unseals_the_example_message(self):
        ctx = self.context()
        ctx.authenticate(authenticate_message(NT_PROOF_STR + TEMP))
        self.assertTrue(ctx.established)
        self.assertEqual(CLIENT_SIGN_KEY, ctx.client_sign_key)
        plain = ctx.unprotect(b"", SEALED, b"", SIGNATURE, privacy=True)
        self.assertEqual(PLAINTEXT, plain)

    def test_the_seal_key_is_the_published_one(self):
        ctx = self.context()
        ctx.authenticate(authenticate_message(NT_PROOF_STR + TEMP))
        self.assertEqual(ARC4.new(CLIENT_SEAL_KEY).encrypt(PLAINTEXT), SEALED)

    def test_wrong_password_and_unknown_user_are_refused(self):
        with self.assertRaises(ntlm.AuthError):
            self.context("wrong").authenticate(authenticate_message(NT_PROOF_STR + TEMP))
        with self.assertRaises(ntlm.AuthError):
            self.context().authenticate(authenticate_message(NT_PROOF_STR + TEMP, user="Nobody"))

    def test_a_tampered_signature_is_refused(self):
        ctx = self.context()
        ctx.authenticate(authenticate_message(NT_PROOF_STR + TEMP))
        bad = SIGNATURE[:4] + bytes([SIGNATURE[4] ^ 1]) + SIGNATURE[5:]
        with self.assertRaises(ntlm.SignatureError):
            ctx.unprotect(b"", SEALED, b"", bad, privacy=True)

    def test_a_mic_is_checked_when_announced(self):
        """The example response with MsvAvFlags = 2 and a MIC over the three
        messages (MS-NLMP 3.1.5.1.2), computed here independently."""
        pairs = struct.pack("<HHI", 6, 4, 2) + AV_PAIRS         # MsvAvFlags: MIC present
        temp = TEMP[:28] + pairs + b"\0" * 4
        response_key = ntlm.imp_ntlm.NTOWFv2("User", "Password", "Domain")
        proof = hmac.new(response_key, SERVER_CHALLENGE + temp, hashlib.md5).digest()
        for good in (True, False):
            ctx = self.context()
            blank = authenticate_message(proof + temp, mic=b"\0" * 16)
            base_key = hmac.new(response_key, proof, hashlib.md5).digest()
            exported = ARC4.new(base_key).decrypt(ENCRYPTED_SESSION_KEY)
            mic = hmac.new(exported, ctx.negotiate + ctx.challenge_msg + blank,
                           hashlib.md5).digest()
            if not good:
                mic = bytes([mic[0] ^ 1]) + mic[1:]
            message = authenticate_message(proof + temp, mic=mic)
            if good:
                ctx.authenticate(message)
                self.assertTrue(ctx.established)
            else:
                with self.assertRaises(ntlm.AuthError):
                    ctx.authenticate(message)

    def test_the_challenge_carries_version_and_target_info(self):
        ctx = ntlm.NtlmContext(FakeHost(), 6)
        msg = ctx.challenge(negotiate_message(FLAGS | ntlm.NEGOTIATE_VERSION))
        flags = struct.unpack_from("<I", msg, 20)[0]
        self.assertTrue(flags & ntlm.NEGOTIATE_TARGET_INFO)
        self.assertEqual(b"\x0a\x00\x63\x45", msg[48:52])         # 10.0 build 17763
        info_len, _, info_off = struct.unpack_from("<HHI", msg, 40)
        info = ntlm._parse_av_pairs(msg[info_off:info_off + info_len])
        self.assertEqual("Server".encode("utf-16-le"), info[ntlm.AV_NB_COMPUTER])
        self.assertIn(ntlm.AV_TIMESTAMP, info)


class NdrReader(unittest.TestCase):
    def test_strings_must_be_consistent_and_terminated(self):
        w = Writer()
        w.cv_wstring("abc")
        self.assertEqual("abc", Reader(w.getvalue()).cv_wstring())
        for bad in (struct.pack("<III", 4, 1, 4) + b"a\0b\0c\0\0\0",     # offset != 0
                    struct.pack("<III", 2, 0, 3) + b"a\0b\0\0\0",        # actual > max
                    struct.pack("<III", 2, 0, 2) + b"a\0b\0",            # no NUL
                    struct.pack("<III", 9, 0, 9) + b"a\0"):             # too short
            with self.assertRaises(BadStub):
                Reader(bad).cv_wstring()

    def test_ranges_and_lengths_are_enforced(self):
        with self.assertRaises(BadStub):
            Reader(struct.pack("<I", 0x8001)).ranged_u32(0, 0x8000)
        with self.assertRaises(BadStub):
            Reader(b"\0\0").u32()

    def test_primitives_are_aligned(self):
        w = Writer()
        w.u8(1)
        w.i64(2)
        self.assertEqual(16, len(w))
        r = Reader(w.getvalue())
        self.assertEqual((1, 2), (r.u8(), r.i64()))


if __name__ == "__main__":
    unittest.main()
