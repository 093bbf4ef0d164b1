"""Reading lzop streams (the container hadoop-lzo and the Snowplow S3 loader write).

The container is parsed here; each block is decompressed with python-lzo (the ``lzo``
extra).  Layout (big-endian): magic, header (version, method, flags, mode, mtime, name,
checksum, optional extra field), then blocks ``[uncompressed len][compressed len]
[checksums per flags][data]`` until an uncompressed length of 0.  Checksums are not
verified (the codec itself fails on corrupt blocks).
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

MAGIC = b"\x89LZO\x00\r\n\x1a\n"
F_ADLER32_D = 0x1
F_ADLER32_C = 0x2
F_H_EXTRA_FIELD = 0x40
F_CRC32_D = 0x100
F_CRC32_C = 0x200
F_H_FILTER = 0x800


class LzopReader(io.RawIOBase):
    """A readable stream of the decompressed content of an lzop file object."""

    def __init__(self, f: BinaryIO):
        import lzo

        self._lzo = lzo
        self._f = f
        self._buf = b""
        self._eof = False
        self._flags = self._header()

    def _read(self, n: int) -> bytes:
        b = self._f.read(n)
        if b is None or len(b) != n:
            raise EOFError("truncated lzop stream")
        return b

    def _u(self, fmt: str) -> int:
        return struct.unpack(">" + fmt, self._read(struct.calcsize(fmt)))[0]

    def _header(self) -> int:
        if self._read(9) != MAGIC:
            raise ValueError("not an lzop stream")
        version = self._u("H")
        self._u("H")  # library version
        if version >= 0x0940:
            self._u("H")  # version needed to extract
        method = self._u("B")
        if method not in (1, 2, 3):
            raise ValueError(f"unsupported lzop method {method}")
        if version >= 0x0940:
            self._u("B")  # level
        flags = self._u("I")
        if flags & F_H_FILTER:
            self._u("I")
        self._u("I")  # mode
        self._u("I")  # mtime low
        if version >= 0x0940:
            self._u("I")  # mtime high
        self._read(self._u("B"))  # name
        self._u("I")  # header checksum
        if flags & F_H_EXTRA_FIELD:
            self._read(self._u("I"))
            self._u("I")
        return flags

    def _block(self) -> bytes:
        dst_len = self._u("I")
        if dst_len == 0:
            self._eof = True
            return b""
        src_len = self._u("I")
        if src_len > dst_len or dst_len > 64 << 20:
            raise ValueError("corrupt lzop block header")
        fl = self._flags
        if fl & F_ADLER32_D:
            self._u("I")
        if fl & F_CRC32_D:
            self._u("I")
        if src_len < dst_len:
            if fl & F_ADLER32_C:
                self._u("I")
            if fl & F_CRC32_C:
                self._u("I")
        data = self._read(src_len)
        if src_len == dst_len:
            return data
        try:
            return self._lzo.decompress(data, False, dst_len)
        except self._lzo.error as e:
            raise ValueError(f"corrupt lzop block: {e}") from e

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf and not self._eof:
            self._buf = self._block()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            super().close()


def write_lzop(chunks: list[bytes]) -> bytes:
    """A minimal lzop file of ``chunks`` (one block each; for tests and tools)."""
    import lzo

    head = struct.pack(">HHHBBI", 0x1030, 0x2080, 0x0940, 1, 5, 0)
    head += struct.pack(">III", 0o100644, 0, 0) + b"\x00"
    out = [MAGIC, head, struct.pack(">I", 0)]
    for c in chunks:
        comp = lzo.compress(c, 1, False)
        if len(comp) >= len(c):
            comp = c
        out.append(struct.pack(">II", len(c), len(comp)) + comp)
    out.append(struct.pack(">I", 0))
    return b"".join(out)
