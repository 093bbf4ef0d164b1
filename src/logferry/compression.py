"""Decompression chosen from magic bytes, never from the file name.

Registry: name -> (magic prefix, opener).  Every opener takes a binary file object
and returns a binary file object of the decompressed stream.  Multi-member gzip
and multi-frame zstd are read to the end.  ``Prefixed`` replays bytes already read (a
sniffed head, a checkpoint's header) in front of the rest of a stream; the reader and the
source layer both read through it.
"""

from __future__ import annotations

import bz2
import io
import lzma
from collections.abc import Callable
from typing import BinaryIO

from .errors import MissingExtraError


def _gzip(f: BinaryIO) -> BinaryIO:
    try:
        from isal import igzip  # ~2x faster than the standard library

        return igzip.IGzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - isal is a dependency
        import gzip

        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]


def _zstd(f: BinaryIO) -> BinaryIO:
    return io.BufferedReader(_ZstdFrames(f), ZSTD_CHUNK)  # type: ignore[return-value]


#: compressed bytes read at a time from a zstd file
ZSTD_CHUNK = 1 << 20


class _ZstdFrames(io.RawIOBase):
    """A zstd stream's frames decompressed one after the other, and a stream that ends
    inside a frame an ``EOFError``, as a truncated gzip or bz2 file is: zstandard's
    ``stream_reader`` ended there quietly, and a truncated ``.zst`` read as a shorter log."""

    def __init__(self, f: BinaryIO):
        import zstandard

        self._f, self._zd = f, zstandard.ZstdDecompressor()
        self._obj = self._zd.decompressobj()
        self._in_frame = False  # (bytes of the current frame fed, its end not reached)
        self._out, self._at = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._at >= len(self._out):
            raw = self._f.read(ZSTD_CHUNK)
            if not raw:
                if self._in_frame:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                return 0
            self._out, self._at = self._decompress(raw), 0
        n = min(len(b), len(self._out) - self._at)
        b[:n] = memoryview(self._out)[self._at:self._at + n]
        self._at += n
        return n

    def _decompress(self, raw: bytes) -> bytes:
        parts = []
        while raw:
            if self._obj.eof:  # (the next frame)
                self._obj = self._zd.decompressobj()
            parts.append(self._obj.decompress(raw))
            self._in_frame = not self._obj.eof
            raw = self._obj.unused_data if self._obj.eof else b""
        return b"".join(parts)


def _bz2(f: BinaryIO) -> BinaryIO:
    return bz2.BZ2File(f, "rb")  # type: ignore[return-value]


def _xz(f: BinaryIO) -> BinaryIO:
    return lzma.LZMAFile(f, "rb")  # type: ignore[return-value]


def _lzo(f: BinaryIO) -> BinaryIO:
    try:
        import lzo  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("LZO-compressed input", "python-lzo", "lzo") from e
    from ._lzop import LzopReader

    return LzopReader(f)  # type: ignore[return-value]


#: name -> (magic bytes, opener)
CODECS: dict[str, tuple[bytes, Callable[[BinaryIO], BinaryIO]]] = {
    "gzip": (b"\x1f\x8b", _gzip),
    "zstd": (b"\x28\xb5\x2f\xfd", _zstd),
    "bz2": (b"BZh", _bz2),
    "xz": (b"\xfd7zXZ\x00", _xz),
    "lzo": (b"\x89LZO\x00\r\n\x1a\n", _lzo),
}

#: file extensions for writers
EXTENSIONS = {"gzip": ".gz", "zstd": ".zst", "bz2": ".bz2", "xz": ".xz", "none": ""}


def sniff(head: bytes) -> str | None:
    """Name of the codec whose magic starts ``head``, or None for plain data."""
    for name, (magic, _) in CODECS.items():
        if head.startswith(magic):
            return name
    return None


def open_decompressed(f: BinaryIO) -> tuple[BinaryIO, str | None]:
    """Wrap ``f`` (binary, readable) in the decompressor its magic bytes call for.

    Returns the readable stream and the codec name (None when not compressed).
    Works on non-seekable streams by buffering the first bytes.
    """
    if not hasattr(f, "peek"):
        f = io.BufferedReader(f)  # type: ignore[arg-type]
    head = f.peek(16)[:16]  # type: ignore[attr-defined]
    codec = sniff(head)
    if codec is None:
        return f, None
    return CODECS[codec][1](f), codec


class Prefixed(io.RawIOBase):
    """A stream that replays ``head`` before reading on from ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def peek(self, n: int = 0) -> bytes:
        """The next bytes without consuming them (lets a reader of this stream sniff it
        without wrapping it in a buffer that copies every read)."""
        if self._head:
            return bytes(self._head[: max(n, 1)])
        peek = getattr(self._rest, "peek", None)
        return peek(n) if peek is not None else b""

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                out = bytes(self._head)
                self._head = memoryview(b"")
                if n < 0:
                    return out + self._rest.read()
                more = self._rest.read(n - len(out)) if n > len(out) else b""
                return out + (more or b"")
            out = bytes(self._head[:n])
            self._head = self._head[n:]
            return out
        return self._rest.read(n)

    def readinto(self, b) -> int:  # pragma: no cover - read() is what we use
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._rest.close()
        finally:
            super().close()


def compressor(name: str, f: BinaryIO, level: int | None = None) -> BinaryIO:
    """A writable stream that compresses into ``f`` with codec ``name``."""
    if name in ("none", None):
        return f
    if name == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=f, mode="wb", compresslevel=level or 6, mtime=0)  # type: ignore[return-value]
    if name == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level or 3).stream_writer(f, closefd=False)  # type: ignore[return-value]
    if name == "bz2":
        return bz2.BZ2File(f, "wb", compresslevel=level or 9)  # type: ignore[return-value]
    raise ValueError(f"unknown compression {name!r}; choose gzip, zstd, bz2 or none")
