"""MS-LSAT on \\PIPE\\lsarpc: the three calls a client needs to name the
owners of processes (LsarOpenPolicy2, LsarLookupSids2, LsarClose).

Handlers follow services.py's conventions: (Call, Reader) -> (stub, result).
Layouts are NDR 2.0 of the MS-LSAT / MS-LSAD IDL, in parameter order.
"""

import struct

from .ndr import BadStub, Writer
from . import world as W

STATUS_SUCCESS = 0
STATUS_SOME_NOT_MAPPED = 0x00000107
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_NONE_MAPPED = 0xC0000073
SID_UNKNOWN = 8
MAX_SIDS = 20480           # range() of LSAPR_SID_ENUM_BUFFER.Entries


def open_policy2(call, r):
    """LsarOpenPolicy2([in, unique, string] SystemName, [in]
    PLSAPR_OBJECT_ATTRIBUTES, [in] DesiredAccess, [out] LSAPR_HANDLE):
    handle @0, NTSTATUS @20."""
    if r.u32():
        r.cv_wstring(256)                 # SystemName: ignored, as Windows does
    length, root, name, _attrs, sd, qos = (r.u32() for _ in range(6))
    if length != 24 or root or name or sd:
        raise BadStub("LSAPR_OBJECT_ATTRIBUTES: Length %d, pointers must be NULL" % length)
    if qos:                               # SECURITY_QUALITY_OF_SERVICE: 8 bytes
        r.u32()
        r.take(4)
    r.u32()                               # DesiredAccess
    w = Writer()
    if call.host.lsa == "denied":
        w.context_handle(b"\0" * 20)
        w.u32(STATUS_ACCESS_DENIED)
        return w.getvalue(), STATUS_ACCESS_DENIED
    w.context_handle(call.conn.new_handle("lsa_policy", None))
    w.u32(STATUS_SUCCESS)
    return w.getvalue(), STATUS_SUCCESS


def close(call, r):
    """LsarClose([in, out] LSAPR_HANDLE*): zeroed handle @0, NTSTATUS @20."""
    call.conn.close_handle(r.context_handle(), "lsa_policy")
    w = Writer()
    w.context_handle(b"\0" * 20)
    w.u32(STATUS_SUCCESS)
    return w.getvalue(), STATUS_SUCCESS


def _read_sid(r):
    """An RPC_SID pointee: the sub-authority count as the conformance, then
    the SID (revision, count, 48-bit authority, sub-authorities)."""
    count = r.u32()
    rev, n = r.u8(), r.u8()
    if rev != 1 or n != count or n > 15:
        raise BadStub("bad RPC_SID (revision %d, %d/%d sub-authorities)" % (rev, n, count))
    auth = int.from_bytes(r.take(6), "big")
    subs = struct.unpack("<%dI" % n, r.take(4 * n))
    return "S-1-%d" % auth + "".join("-%d" % s for s in subs)


def _unicode_string(w, text):
    """RPC_UNICODE_STRING's fixed part: Length, MaximumLength (bytes), Buffer
    (the struct is 4-aligned: it holds a pointer)."""
    n = len(text.encode("utf-16-le"))
    w.align(4)
    w.u16(n)
    w.u16(n)
    return w.referent(bool(text))


def _unicode_buffer(w, text):
    encoded = text.encode("utf-16-le")
    w.u32(len(encoded) // 2)
    w.u32(0)
    w.u32(len(encoded) // 2)
    w.raw(encoded)


def lookup_sids2(call, r):
    """LsarLookupSids2(PolicyHandle, [in] PLSAPR_SID_ENUM_BUFFER, [out]
    PLSAPR_REFERENCED_DOMAIN_LIST*, [in, out] PLSAPR_TRANSLATED_NAMES_EX,
    LookupLevel (16 bits), [in, out] MappedCount, LookupOptions,
    ClientRevision).

    Response: ReferencedDomains (referent; Entries, Domains referent,
    MaxEntries; the LSAPR_TRUST_INFORMATION array and, per domain, its name
    buffer and SID), TranslatedNames (Entries, Names referent; the
    LSAPR_TRANSLATED_NAME_EX array of {Use (16 bits), Name, DomainIndex,
    Flags}, then the name buffers), MappedCount, NTSTATUS."""
    call.conn.get_handle(r.context_handle(), "lsa_policy")
    entries = r.ranged_u32(0, MAX_SIDS)
    sids = []
    if r.u32():
        if r.u32() != entries:
            raise BadStub("SidInfo conformance differs from Entries")
        refs = [r.u32() for _ in range(entries)]
        sids = [_read_sid(r) if ref else None for ref in refs]
    elif entries:
        raise BadStub("Entries without SidInfo")
    r.u32()
    if r.u32():
        raise BadStub("TranslatedNames must come in empty")
    r.u16()                               # LookupLevel
    r.u32()                               # MappedCount
    r.u32()                               # LookupOptions
    r.u32()                               # ClientRevision
    names, domains = [], []               # domains: [(name, sid)]
    for sid in sids:
        found = call.host.lookup_sid(sid) if sid else None
        if found is None:
            names.append((SID_UNKNOWN, "", -1))
            continue
        domain, name, use = found
        domain_sid = sid.rsplit("-", 1)[0]
        keys = [d[0] for d in domains]
        if domain not in keys:
            domains.append((domain, domain_sid))
            keys.append(domain)
        names.append((use, name, keys.index(domain)))
    mapped = sum(1 for n in names if n[0] != SID_UNKNOWN)
    status = STATUS_SUCCESS if mapped == len(names) else \
        STATUS_NONE_MAPPED if mapped == 0 else STATUS_SOME_NOT_MAPPED
    w = Writer()
    w.referent(True)
    w.u32(len(domains))
    if w.referent(bool(domains)):
        w.u32(len(domains))     # MaxEntries
        w.u32(len(domains))
        for name, _ in domains:
            _unicode_string(w, name)
            w.referent(True)
        for name, dsid in domains:
            if name:
                _unicode_buffer(w, name)
            raw = W.sid_to_bytes(dsid)
            w.u32(raw[1])
            w.raw(raw)
    else:
        w.u32(0)                # MaxEntries
    w.u32(len(names))
    if w.referent(bool(names)):
        w.u32(len(names))
        for use, name, index in names:
            w.u16(use)
            _unicode_string(w, name)
            w.u32(index & 0xFFFFFFFF)
            w.u32(0)
        for use, name, index in names:
            if name:
                _unicode_buffer(w, name)
    w.u32(mapped)
    w.u32(status)
    return w.getvalue(), status


METHODS = {
    0: ("LsarClose", close),
    44: ("LsarOpenPolicy2", open_policy2),
    57: ("LsarLookupSids2", lookup_sids2),
}
