"""Samba's "named pipe auth" (NPA) handshake on the unix socket smbd opens.

When a client opens \\PIPE\\X on IPC$, smbd 4.17 connects to
<ncalrpc dir>/np/<x lower-cased> and sends a named_pipe_auth_req
(librpc/idl/named_pipe_auth.idl): a big-endian u32 length, then NDR with
the magic "NPAM", the level (7 in 4.17, 8 in newer Samba) twice (field and
union switch), and named_pipe_auth_req_info7: transport, remote client
name/address/port, local server name/address/port and the SMB session's
auth_session_info_transport.  NDR offsets count from the length field.

The simulator needs the local server port (which simulated host was
dialled), the client address (for the log) and the SMB account (for hosts
that authorise by the SMB identity).  The account is read from the first two
NDR strings of the session info (auth_user_info.account_name and
domain_name); the rest of that large structure is not decoded.
"""

import struct

FILE_TYPE_MESSAGE_MODE_PIPE = 2
DEVICE_STATE = 0x05FF         # what Samba's own rpc daemons answer
ALLOCATION_SIZE = 4096
LEVELS = (7, 8)


class NpaError(Exception):
    pass


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise NpaError("peer closed during the handshake")
        buf += chunk
    return bytes(buf)


def _ndr_string(blob, pos):
    """An NDR [string] char* pointee: u32 max, u32 offset, u32 actual, bytes."""
    pos += (-pos) % 4
    maximum, offset, actual = struct.unpack_from("<III", blob, pos)
    if offset != 0 or actual > maximum or pos + 12 + actual > len(blob):
        raise NpaError("bad string in the NPA request")
    text = blob[pos + 12:pos + 12 + actual].split(b"\0")[0].decode("utf-8", "replace")
    return text, pos + 12 + actual


def _printable_strings(blob, pos):
    """NDR strings (max == actual, offset 0, NUL-terminated printable text)
    found at 4-aligned positions from pos onwards, in order."""
    found = []
    pos += (-pos) % 4
    while pos + 12 <= len(blob):
        maximum, offset, actual = struct.unpack_from("<III", blob, pos)
        text = blob[pos + 12:pos + 12 + actual]
        if maximum == actual and offset == 0 and 1 < actual <= 256 and \
                len(text) == actual and text[-1] == 0 and \
                all(0x20 <= c < 0x7F for c in text[:-1]):
            found.append(text[:-1].decode())
            pos += 12 + actual + (-(12 + actual)) % 4
        else:
            pos += 4
    return found


def handshake(sock):
    """Read the request, answer it (message-mode pipe), return what we learnt:
    dict(level, client_addr, client_port, server_addr, server_port, smb_user,
    smb_domain)."""
    try:
        return _handshake(sock)
    except struct.error as e:
        raise NpaError("truncated NPA request: %s" % e)


def _handshake(sock):
    (length,) = struct.unpack(">I", _recv_exact(sock, 4))
    if length > 1 << 20:
        raise NpaError("NPA request too large")
    blob = struct.pack(">I", length) + _recv_exact(sock, length)
    if blob[4:8] != b"NPAM":
        raise NpaError("not an NPA request")
    level, switch = struct.unpack_from("<II", blob, 8)
    if level not in LEVELS or switch != level:
        raise NpaError("unsupported NPA level %d" % level)
    ptr_rcn, ptr_rca = struct.unpack_from("<II", blob, 20)
    (client_port,) = struct.unpack_from("<H", blob, 28)
    ptr_lsn, ptr_lsa = struct.unpack_from("<II", blob, 32)
    (server_port,) = struct.unpack_from("<H", blob, 40)
    strings, pos = [], 48
    for ptr in (ptr_rcn, ptr_rca, ptr_lsn, ptr_lsa):
        text = None
        if ptr:
            text, pos = _ndr_string(blob, pos)
        strings.append(text)
    account = _printable_strings(blob, pos)
    info = {"level": level, "client_addr": strings[1], "client_port": client_port,
            "server_addr": strings[3], "server_port": server_port,
            "smb_user": account[0] if account else None,
            "smb_domain": account[1] if len(account) > 1 else None}
    # named_pipe_auth_rep: the hyper allocation_size is 8-aligned counting
    # from the length field, hence the 4 zero bytes before it.
    body = b"NPAM" + struct.pack("<IIHH4xQI", level, level, FILE_TYPE_MESSAGE_MODE_PIPE,
                                 DEVICE_STATE, ALLOCATION_SIZE, 0)
    sock.sendall(struct.pack(">I", len(body)) + body)
    return info
