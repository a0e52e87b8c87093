"""A small, strict NDR 2.0 (little-endian) reader and writer.

The simulator encodes and decodes every MS-TSTS stub by hand with these two
classes instead of a generic NDR engine: each encoder in services.py spells
out the wire layout it produces, in IDL order, so the layout is reviewable
against the spec line by line.  The reader is deliberately strict (bounds,
conformance and range checks) because Windows answers malformed stub data
with the fault RPC_X_BAD_STUB_DATA, and the simulator must do the same.
"""

import struct


class BadStub(Exception):
    """Malformed stub data; the server answers fault 0x6F7."""


class Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def align(self, n):
        self.pos += (-self.pos) % n

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise BadStub("stub too short: need %d bytes at %d of %d"
                          % (n, self.pos, len(self.data)))
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def _prim(self, fmt, size):
        self.align(size)
        return struct.unpack(fmt, self.take(size))[0]

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return self._prim("<H", 2)

    def u32(self):
        return self._prim("<I", 4)

    def i32(self):
        return self._prim("<i", 4)

    def i64(self):
        return self._prim("<q", 8)

    def ranged_u32(self, lo, hi):
        """A [range(lo, hi)] parameter: out of range is bad stub data."""
        value = self.u32()
        if not lo <= value <= hi:
            raise BadStub("value %d outside range(%d, %d)" % (value, lo, hi))
        return value

    def context_handle(self):
        """20-byte context handle: u32 attributes + 16-byte UUID."""
        self.align(4)
        return self.take(20)

    def cv_wstring(self, max_chars=None):
        """[string] WCHAR*: conformant varying string, NUL-terminated."""
        maximum = self.u32()
        offset = self.u32()
        actual = self.u32()
        if offset != 0 or actual > maximum or actual == 0:
            raise BadStub("inconsistent string counts %d/%d/%d" % (maximum, offset, actual))
        if max_chars is not None and maximum > max_chars:
            raise BadStub("string longer than %d characters" % max_chars)
        raw = self.take(2 * actual)
        if raw[-2:] != b"\0\0":
            raise BadStub("string not NUL-terminated")
        return raw[:-2].decode("utf-16-le", "replace")

    def unique_bytes(self):
        """[unique, size_is(n)] CHAR*: referent id, MaxCount, bytes (None if NULL)."""
        if self.u32() == 0:
            return None
        maximum = self.u32()
        return self.take(maximum)


class Writer:
    """Builds a stub; referent ids are unique per stub, as Windows does."""

    def __init__(self):
        self.buf = bytearray()
        self._next_ref = 0x00020000

    def __len__(self):
        return len(self.buf)

    def getvalue(self):
        return bytes(self.buf)

    def align(self, n):
        self.buf += b"\0" * ((-len(self.buf)) % n)

    def raw(self, data):
        self.buf += data

    def u8(self, v):
        self.buf.append(v & 0xFF)

    def u16(self, v):
        self.align(2)
        self.buf += struct.pack("<H", v & 0xFFFF)

    def u32(self, v):
        self.align(4)
        self.buf += struct.pack("<I", v & 0xFFFFFFFF)

    def i64(self, v):
        self.align(8)
        self.buf += struct.pack("<q", v)

    def referent(self, present=True):
        """A unique/full pointer: a fresh referent id, or 0 for NULL."""
        if not present:
            self.u32(0)
            return False
        self.u32(self._next_ref)
        self._next_ref += 4
        return True

    def fixed_wchars(self, text, count):
        """WCHAR name[count]: NUL-padded, truncated to count-1 characters."""
        encoded = text.encode("utf-16-le")[:2 * (count - 1)]
        self.align(2)
        self.buf += encoded + b"\0" * (2 * count - len(encoded))

    def cv_wstring(self, text):
        """[string] WCHAR*: MaxCount, Offset 0, ActualCount, chars + NUL."""
        encoded = text.encode("utf-16-le") + b"\0\0"
        n = len(encoded) // 2
        self.u32(n)
        self.u32(0)
        self.u32(n)
        self.buf += encoded

    def conformant_bytes(self, data, count=None):
        """[size_is(n)] BYTE*: MaxCount then the bytes; count overrides MaxCount."""
        self.u32(len(data) if count is None else count)
        self.buf += data

    def context_handle(self, handle):
        self.align(4)
        self.buf += handle
