"""Inputs of a shipping job: expand paths/globs/URLs, identify files, read on from a checkpoint.

A file's identity is (device, inode, head fingerprint) locally and (path, head
fingerprint) on object stores: a renamed/rotated file keeps its identity (and its
checkpoint), a file whose head changed (truncated and rewritten, inode reused) is new.
The fingerprint is the SHA-256 of the first ``FP_BYTES`` bytes (fewer while the file is
smaller; it is recomputed over the stored length to compare).

Checkpoints are line numbers in the decompressed file plus an *anchor* (a byte offset
known to start a line, with its line number) so a growing plain file is read on with a
seek rather than from the start, and the directive lines (W3C ``#Fields`` ...) in force
at the checkpoint, which are put in front of the remainder so the reader can parse it.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import InputError

FP_BYTES = 1024
#: formats whose first line is a title line that applies to the whole file
TITLE_FORMATS = frozenset({"csv-usage", "csv"})


@dataclass
class SourceFile:
    path: str  # local path or URL
    size: int
    mtime: float
    dev: int | None
    ino: int | None
    fp: str
    fp_len: int
    remote: bool = False
    compressed: bool = False  # gzip/zstd/bz2/xz magic: possibly a rotated-then-compressed log


def _fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def content_fingerprint(path: str, length: int) -> str | None:
    """Fingerprint of the first ``length`` *decompressed* bytes of a local compressed file
    (None when that many bytes cannot be read): how ``access.log`` is recognised after
    logrotate renamed and compressed it to ``access.log.1.gz`` (new inode, new bytes)."""
    from .compression import open_decompressed

    try:
        with open(path, "rb") as raw:
            stream, codec = open_decompressed(raw)
            head = stream.read(length) if codec else b""
    except (OSError, EOFError, ValueError):
        return None
    return _fingerprint(head) if codec and len(head) == length else None


def fingerprint_of(path: str, length: int, remote: bool = False) -> str:
    with _open_raw(path, remote) as f:
        return _fingerprint(f.read(length))


def _open_raw(path: str, remote: bool) -> BinaryIO:
    if remote:
        fs, p, _ = _remote_fs(path)
        return fs.open(p, "rb")
    return open(path, "rb")


def expand(patterns: list[str], known: dict[str, tuple[int, float, str, int]] | None = None
           ) -> list[SourceFile]:
    """Every file matching ``patterns`` (local globs, ``file://``, or fsspec URLs with
    globs: ``s3://bucket/logs/*.gz``), sorted by (mtime, path).

    ``known`` maps a remote object's URL to the (size, mtime, fingerprint, fingerprint
    length) recorded for it: an object listed with the same size and modification time
    is not read again (object stores replace objects whole, so it is unchanged)."""
    out: dict[str, SourceFile] = {}
    for pat in patterns:
        if pat.startswith("file://"):
            pat = pat[len("file://"):]
        if "://" in pat:
            for sf in _expand_remote(pat, known or {}):
                out.setdefault(sf.path, sf)
            continue
        matches = glob.glob(os.path.expanduser(pat), recursive=True) if glob.has_magic(pat) else [pat]
        for m in matches:
            if os.path.isdir(m):
                continue
            try:
                st = os.stat(m)
            except FileNotFoundError:
                if not glob.has_magic(pat):
                    raise InputError(f"{m}: no such file") from None
                continue
            n = min(st.st_size, FP_BYTES)
            try:
                with open(m, "rb") as f:
                    head = f.read(n)
            except PermissionError as e:
                raise InputError(f"{m}: permission denied") from e
            from .compression import sniff

            out.setdefault(
                os.path.abspath(m),
                SourceFile(os.path.abspath(m), st.st_size, st.st_mtime, st.st_dev, st.st_ino,
                           _fingerprint(head), len(head), compressed=sniff(head) is not None),
            )
    return sorted(out.values(), key=lambda s: (s.mtime, s.path))


def _remote_fs(url: str):
    """The fsspec filesystem of ``url``; S3 honours the AWS environment (endpoint included)
    as the s3:// destination does.  Listings are never served from a cache."""
    import fsspec

    proto = url.split("://", 1)[0].lower()
    if proto == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        kw = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
        fs, path = fsspec.core.url_to_fs(url, **kw)
    else:
        fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    return fs, path, proto


def _expand_remote(pat: str, known: dict[str, tuple[int, float, str, int]]) -> list[SourceFile]:
    from datetime import datetime

    fs, path, proto = _remote_fs(pat)
    if glob.has_magic(path):
        found = fs.glob(path, detail=True)
    else:
        try:
            found = {path: fs.info(path)}
        except FileNotFoundError:
            raise InputError(f"{pat}: no such object") from None
    res = []
    for p, info in sorted(found.items()):
        if info.get("type") == "directory":
            continue
        url = p if "://" in p else f"{proto}://{p}"
        size = int(info.get("size") or 0)
        mt = info.get("mtime") or info.get("LastModified") or info.get("updated") or 0
        if hasattr(mt, "timestamp"):
            mt = mt.timestamp()
        elif isinstance(mt, str):
            try:
                mt = datetime.fromisoformat(mt.replace("Z", "+00:00")).timestamp()
            except ValueError:
                mt = 0
        k = known.get(url)
        if k is not None and k[0] == size and k[1] == float(mt):
            fp, fp_len = k[2], k[3]
        else:
            with fs.open(p, "rb") as f:
                head = f.read(min(size, FP_BYTES))
            fp, fp_len = _fingerprint(head), len(head)
        res.append(SourceFile(url, size, float(mt), None, None, fp, fp_len, True))
    return res


def same_file(sf: SourceFile, dev, ino, path: str, fp: str, fp_len: int) -> bool:
    """Does ``sf`` (seen now) hold the file recorded as (dev, ino, path, fp/fp_len)?"""
    if sf.remote or dev is None:
        if sf.path != path:
            return False
    elif (sf.dev, sf.ino) != (dev, ino):
        return False
    if sf.size < fp_len:
        return False  # truncated: a new file in the same place
    if sf.fp_len == fp_len:
        return sf.fp == fp
    return fingerprint_of(sf.path, fp_len, sf.remote) == fp


class Tracker(io.RawIOBase):
    """Wraps the decompressed stream handed to a reader: counts lines, remembers line
    anchors (offset of a line start + its number) and directive lines (``#...``)."""

    def __init__(self, stream: BinaryIO, prefix: bytes, first_line: int, first_off: int,
                 directives: list[tuple[int, bytes]]):
        self._s = stream
        self._prefix = prefix
        self.prefix_lines = prefix.count(b"\n")
        self.line = first_line - 1  # lines completed so far (file numbering)
        self.off = first_off  # file offset of the next byte from the stream
        self.anchors: list[tuple[int, int]] = [(first_line - 1, first_off)]
        self.directives = list(directives)
        self._at_line_start = True
        self.saw_lone_cr = False
        self.title: bytes | None = None
        self.base = first_line - 1
        self.hold_partial = False
        self.held = b""
        self._out = bytearray()
        self._carry = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if not self._out:
            self._fill(len(b))
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        del self._out[:n]
        return n

    def _fill(self, want: int) -> None:
        if self._prefix:
            self._out += self._prefix
            self._prefix = b""
            return
        while True:
            data = self._s.read(max(want, 1 << 16))
            if not data:
                if self._carry:
                    if self.hold_partial:
                        self.held = bytes(self._carry)  # an unfinished last line: next run
                    else:
                        self._scan(bytes(self._carry))
                        self._out += self._carry
                    self._carry = bytearray()
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                self._carry += data  # (appended: a long line is not copied again per read)
                continue
            if self._carry:
                cut += len(self._carry)
                data = bytes(self._carry) + data
                self._carry = bytearray()
            if cut + 1 < len(data):
                self._carry += data[cut + 1 :]
                data = data[: cut + 1]
            self._scan(data)
            self._out += data
            return

    def _scan(self, data: bytes) -> None:
        if self.title is None and self.off == 0:
            nl = data.find(b"\n")
            self.title = data[: nl + 1] if nl >= 0 else data
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            self.saw_lone_cr = True
        # directive lines starting in this block
        pos = 0 if self._at_line_start else -1
        line_before = self.line
        if pos == 0 and data[:1] == b"#":
            self._directive(data, 0, line_before + 1)
        start = 0
        while True:
            k = data.find(b"\n#", start)
            if k < 0:
                break
            ln = line_before + data.count(b"\n", 0, k + 1) + 1
            self._directive(data, k + 1, ln)
            start = k + 1
        nls = data.count(b"\n")
        self.line += nls
        last = data.rfind(b"\n")
        if last >= 0:
            self.anchors.append((self.line, self.off + last + 1))
            if len(self.anchors) > 4096:
                self.anchors = self.anchors[::2]
        self._at_line_start = data.endswith(b"\n")
        self.off += len(data)

    def _directive(self, data: bytes, at: int, line_no: int) -> None:
        end = data.find(b"\n", at)
        text = data[at:] if end < 0 else data[at : end + 1]
        if end < 0:
            text += b"\n"  # a directive cut by the block end: keep what we have
        self.directives.append((line_no, text))
        if len(self.directives) > 2048:
            self.directives = _compact(self.directives, self.directives[-1][0])

    def state_at(self, line: int) -> tuple[int, int, bytes]:
        """(anchor line, anchor offset, directive header) for a checkpoint after ``line``."""
        best = (0, 0)
        for a in self.anchors:
            if a[0] <= line and a[0] >= best[0]:
                best = a
        hdr = b"".join(t for _, t in _compact(self.directives, line))
        return best[0], best[1], hdr

    def close(self) -> None:
        try:
            self._s.close()
        finally:
            super().close()


def _compact(directives: list[tuple[int, bytes]], upto: int) -> list[tuple[int, bytes]]:
    """The directive lines in force at line ``upto``: the last of each kind (``#Fields:``,
    ``#Software:``...), in file order."""
    last: dict[bytes, tuple[int, bytes]] = {}
    for ln, text in directives:
        if ln <= upto:
            kind = text.split(b":", 1)[0].strip()
            last.pop(kind, None)
            last[kind] = (ln, text)
    return sorted(last.values())


def open_from(path: str, remote: bool, line: int, anchor_line: int, anchor_off: int,
              header: bytes, title: bytes | None, hold_partial: bool = False) -> Tracker:
    """A stream for the reader that resumes after ``line``: the directive header (and a
    title line) first, then the file from line ``line + 1``.  The tracker numbers lines as
    the file does; reader line numbers are mapped back with :func:`map_lines`."""
    from .compression import open_decompressed

    raw = _open_raw(path, remote)
    stream, codec = open_decompressed(raw)
    off, ln = 0, 0
    if codec is None and anchor_off and anchor_line <= line:
        # seek on the stream we were given back: it may be a buffer around ``raw`` (remote
        # files have no peek), and dropping that buffer would close ``raw``
        try:
            if not stream.seekable():
                raise OSError("not seekable")
            stream.seek(anchor_off)
            off, ln = anchor_off, anchor_line
        except (OSError, ValueError):
            stream.close()
            raw = _open_raw(path, remote)
            stream, codec = open_decompressed(raw)
    # skip to after `line`, collecting directives on the way
    directives: list[tuple[int, bytes]] = [(0, h + b"\n") for h in header.split(b"\n") if h]
    rest = b""
    need = line - ln
    buf = b""
    while need > 0:
        block = stream.read(1 << 20)
        if not block:
            break
        cnt = block.count(b"\n")
        if cnt < need:
            _collect_directives(block, ln, directives, rest)
            rest = block[block.rfind(b"\n") + 1 :] if cnt else rest + block
            need -= cnt
            ln += cnt
            off += len(block)
            continue
        # find the position after the need-th newline
        pos = -1
        for _ in range(need):
            pos = block.find(b"\n", pos + 1)
        _collect_directives(block[: pos + 1], ln, directives, rest)
        buf = block[pos + 1 :]
        off += pos + 1
        ln += need
        need = 0
    hdr = b"".join(t for _, t in _compact(directives, ln))
    prefix = b""
    if title and line > 0 and not title.startswith(b"#"):
        prefix += title if title.endswith(b"\n") else title + b"\n"
    if line > 0:
        prefix += hdr
    t = Tracker(_Chain(buf, stream), prefix, ln + 1, off, _compact(directives, ln))
    t.hold_partial = hold_partial
    if line > 0 and title:
        t.title = title
    return t


def _collect_directives(block: bytes, line_before: int, out: list, rest: bytes) -> None:
    if not rest and block[:1] == b"#":
        end = block.find(b"\n")
        out.append((line_before + 1, block[: end + 1]))
    start = 0
    while True:
        k = block.find(b"\n#", start)
        if k < 0:
            break
        end = block.find(b"\n", k + 1)
        if end < 0:
            break
        out.append((line_before + block.count(b"\n", 0, k + 1) + 1, block[k + 1 : end + 1]))
        start = k + 1


class _Chain(io.RawIOBase):
    def __init__(self, first: bytes, rest: BinaryIO):
        self._first = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._first:
            if n < 0 or n >= len(self._first):
                out, self._first = self._first, b""
                return out
            out, self._first = self._first[:n], self._first[n:]
            return out
        return self._rest.read(n)

    def readinto(self, b) -> int:
        d = self.read(len(b))
        b[: len(d)] = d
        return len(d)

    def close(self) -> None:
        self._rest.close()
        super().close()


def iter_blocks(f: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while True:
        b = f.read(size)
        if not b:
            return
        yield b
