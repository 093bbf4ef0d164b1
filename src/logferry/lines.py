"""Split a decompressed byte stream into chunks of whole lines, with numpy offsets.

A :class:`LineChunk` holds a few MB of whole lines and the start/end offset of each
line (end excludes ``\\n`` and a trailing ``\\r``).  Readers work on these offsets with
numpy/Arrow instead of looping over lines in Python.  Line numbers are 1-based and
count every line of the decompressed file (directives and blank lines included).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import BinaryIO

import numpy as np
import pyarrow as pa

CHUNK_SIZE = 8 << 20
NL, CR = 10, 13


@dataclass
class LineChunk:
    buf: bytes
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64, exclusive, without line terminator
    first_line: int  # 1-based number of line 0
    offset: int  # stream offset of buf[0]
    end_offset: int  # stream offset just after the last consumed byte
    has_cr: bool = True  # whether buf may hold a CR (False: known not to)

    @property
    def arr(self) -> np.ndarray:
        return np.frombuffer(self.buf, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.starts)

    def line(self, i: int) -> bytes:
        return self.buf[self.starts[i] : self.ends[i]]

    def text(self, i: int) -> str:
        return decode(self.line(i))

    def line_numbers(self, idx: np.ndarray | None = None) -> np.ndarray:
        n = np.arange(len(self.starts), dtype=np.int64) if idx is None else np.asarray(idx)
        return n + self.first_line

    @cached_property
    def is_ascii(self) -> bool:
        """Whether the whole buffer is ASCII (hence valid UTF-8); one pass, remembered."""
        return self.buf.isascii()

    def first_bytes(self) -> np.ndarray:
        """First byte of every line (0 for an empty line); computed once, read-only."""
        return self._first_bytes

    @cached_property
    def _first_bytes(self) -> np.ndarray:
        arr = self.arr
        nonempty = self.ends > self.starts
        if nonempty.all():
            fb = arr[self.starts]
        else:
            fb = np.zeros(len(self.starts), dtype=np.uint8)
            fb[nonempty] = arr[self.starts[nonempty]]
        fb.flags.writeable = False
        return fb

    def blank_mask(self) -> np.ndarray:
        """Lines that are empty or hold only spaces/tabs."""
        mask = self.ends == self.starts
        # cheap path: most lines are non-empty and start with a non-space
        fb = self.first_bytes()
        maybe = ~mask & ((fb == 32) | (fb == 9))
        for i in np.flatnonzero(maybe):
            if not self.line(i).strip():
                mask[i] = True
        return mask

    def slices(self, idx: np.ndarray) -> pa.BinaryArray:
        """The selected lines as a binary array (copied)."""
        return gather(self.arr, self.starts[idx], self.ends[idx])


def decode(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("utf-8", errors="replace")


def gather(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.BinaryArray:
    """Binary array of ``arr[starts[i]:ends[i]]`` built with vectorised numpy."""
    n = len(starts)
    lengths = (ends - starts).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        data = b""
    elif n and total == int(ends[-1] - starts[0]) and np.all(starts[1:] == ends[:-1]):
        data = arr[starts[0] : ends[-1]].tobytes()
    else:
        idx = np.arange(total, dtype=np.int64)
        idx += np.repeat(starts - offsets[:-1], lengths)
        data = arr[idx].tobytes()
    if total < 2**31 - 1:
        return pa.Array.from_buffers(
            pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
        )
    return pa.Array.from_buffers(  # pragma: no cover - huge chunks only
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def to_str(a: pa.Array) -> pa.Array:
    """Binary -> string; invalid UTF-8 is replaced (U+FFFD) rather than failing.  Other
    types (numbers the CSV fast path parsed already) are returned as they are."""
    if a.type == pa.string() or not (pa.types.is_binary(a.type) or pa.types.is_large_binary(a.type)
                                     or pa.types.is_large_string(a.type)):
        return a
    s = a.view(pa.string()) if a.type == pa.binary() else a.cast(pa.string())
    try:
        s.validate(full=True)
        return s
    except pa.ArrowInvalid:
        return pa.array([None if v is None else decode(v) for v in a.to_pylist()], pa.string())


#: a line longer than this (bytes, without its terminator) is not split into pieces: it is
#: reported once, as a :class:`LongLine` (a prefix of its text, its length and SHA-256)
MAX_LINE = 16 << 20
#: bytes of a long line's text that are kept
LONG_PREFIX = 64 << 10


@dataclass
class LongLine:
    """A line longer than the maximum: what is kept of it.  It still counts as one line."""

    line_number: int
    prefix: bytes
    length: int  # bytes, without the terminator
    sha256: str  # of the whole line (hex)
    offset: int  # stream offset of its first byte
    end_offset: int  # stream offset just after it (and its terminator)


def iter_chunks(
    stream: BinaryIO,
    chunk_size: int = CHUNK_SIZE,
    *,
    first_line: int = 1,
    start_offset: int = 0,
    keep_partial: bool = True,
    max_line: int = MAX_LINE,
    on_long: Callable[[LongLine], None] | None = None,
) -> Iterator[LineChunk]:
    """Yield :class:`LineChunk`s of whole lines from a binary stream.

    ``keep_partial``: a last line without a terminator is yielded (True) or left
    unconsumed (False, for files that are still being written).

    A line longer than ``max_line`` bytes is read through (hashed, never held whole) and
    handed to ``on_long`` as one :class:`LongLine`; line numbers after it count it as one
    line.  Without ``on_long`` such a line raises :class:`~logferry.errors.InputError`.
    Memory stays bounded by ``max_line`` plus a chunk; time is linear in the input.
    """
    parts: list[bytes] = []  # an unterminated line's bytes so far (no terminator inside,
    plen = 0  # except perhaps a lone CR where two blocks met)
    line_no = first_line
    offset = start_offset
    carry = b""  # bytes read but not yet looked at (after a long line)
    while True:
        block = carry or stream.read(chunk_size)
        carry = b""
        if not block:
            if plen and keep_partial:
                chunk = make_chunk(b"".join(parts), line_no, offset)
                if plen > max_line and _has_long_line(chunk, max_line):
                    yield from _split_long(chunk, max_line, on_long)
                else:
                    yield chunk
            return
        cut = _last_terminator(block)
        if cut < 0:
            parts.append(block)
            plen += len(block)
            if plen <= max_line:
                continue
            data = b"".join(parts)
            parts, plen = [], 0
            t = _first_terminator(data)
            tail_cr = t == len(data) - 1  # the line's CR ends the block: LF may follow
            if tail_cr and t <= max_line:  # (the CR is no part of the line's length)
                parts, plen = [data], len(data)
                continue
            if t >= 0 and not tail_cr:  # a lone CR where blocks met: whole lines before it
                end = t + 2 if data[t] == CR and data[t + 1 : t + 2] == b"\n" else t + 1
                chunk = make_chunk(data[:end], line_no, offset)
                line_no += len(chunk)
                offset += end
                yield chunk
                carry = data[end:]
                continue
            long, carry = _read_long(stream, data[:-1] if tail_cr else data, line_no, offset,
                                     chunk_size, keep_partial, tail_cr)
            if long is None:
                return
            _long(on_long, max_line, long)
            line_no += 1
            offset = long.end_offset
            continue
        buf = b"".join((*parts, memoryview(block)[: cut + 1])) if parts else block[: cut + 1]
        parts = [block[cut + 1 :]] if cut + 1 < len(block) else []
        plen = len(block) - cut - 1
        chunk = make_chunk(buf, line_no, offset)
        if len(buf) > max_line and _has_long_line(chunk, max_line):
            # a long line ended in this block: the lines around it as chunks, it alone
            # through on_long
            yield from _split_long(chunk, max_line, on_long)
        else:
            yield chunk
        line_no += len(chunk)
        offset += len(buf)


def _has_long_line(chunk: LineChunk, max_line: int) -> bool:
    return bool(len(chunk) and int((chunk.ends - chunk.starts).max()) > max_line)


def _split_long(chunk: LineChunk, max_line: int, on_long) -> Iterator[LineChunk]:
    """The lines of ``chunk`` up to ``max_line`` bytes as chunks; each longer one as a
    :class:`LongLine` through ``on_long``."""
    buf, starts, ends, n = chunk.buf, chunk.starts, chunk.ends, len(chunk)
    pos = 0  # the first line not yet handed on
    for i in map(int, np.flatnonzero(ends - starts > max_line)):
        if i > pos:
            b0 = int(starts[pos])
            yield make_chunk(buf[b0 : int(starts[i])], chunk.first_line + pos, chunk.offset + b0)
        s, e = int(starts[i]), int(ends[i])
        nxt = int(starts[i + 1]) if i + 1 < n else len(buf)
        raw = memoryview(buf)[s:e]
        _long(on_long, max_line, LongLine(chunk.first_line + i, bytes(raw[:LONG_PREFIX]), e - s,
                                          hashlib.sha256(raw).hexdigest(), chunk.offset + s,
                                          chunk.offset + nxt))
        pos = i + 1
    if pos < n:
        b0 = int(starts[pos])
        yield make_chunk(buf[b0:], chunk.first_line + pos, chunk.offset + b0)


def _long(on_long, max_line: int, long: LongLine) -> None:
    if on_long is None:
        from .errors import InputError

        raise InputError(f"line {long.line_number} is longer than {max_line} bytes ({long.length} bytes)")
    on_long(long)


def _first_terminator(data: bytes) -> int:
    nl, cr = data.find(b"\n"), data.find(b"\r")
    return nl if cr < 0 else cr if nl < 0 else min(nl, cr)


def _read_long(stream: BinaryIO, head: bytes, line_no: int, offset: int, chunk_size: int,
               keep_partial: bool, pending_cr: bool = False) -> tuple[LongLine | None, bytes]:
    """Read on to the end of a line that began with ``head`` (no terminator in it),
    hashing it and keeping only a prefix.  Returns the line (None at the end of the input
    when ``keep_partial`` is false) and the bytes read after its terminator.
    ``pending_cr``: the line already ended with a CR (an LF may follow)."""
    h = hashlib.sha256(head)
    prefix = head[:LONG_PREFIX]
    length = len(head)
    while True:
        block = stream.read(chunk_size)
        if pending_cr:
            rest = block[1:] if block[:1] == b"\n" else block
            return LongLine(line_no, prefix, length, h.hexdigest(), offset,
                            offset + length + 1 + (len(block) - len(rest))), rest
        if not block:
            if not keep_partial:
                return None, b""
            return LongLine(line_no, prefix, length, h.hexdigest(), offset, offset + length), b""
        t = _first_terminator(block)
        if t < 0:
            h.update(block)
            length += len(block)
            continue
        h.update(memoryview(block)[:t])
        length += t
        if block[t] == CR and t == len(block) - 1:
            pending_cr = True
            continue
        end = t + 2 if block[t] == CR and block[t + 1 : t + 2] == b"\n" else t + 1
        return LongLine(line_no, prefix, length, h.hexdigest(), offset, offset + length + end - t), block[end:]


def _last_terminator(block: bytes) -> int:
    """Index of the last line terminator in ``block`` (-1 if none).  A CR that is the
    very last byte does not count: an LF may follow in the next block (CRLF)."""
    nl = block.rfind(b"\n")
    cut = max(nl, block.rfind(b"\r", nl + 1))  # a CR can only matter after the last LF
    if cut == len(block) - 1 and block[cut] == CR:
        nl = block.rfind(b"\n", 0, cut)
        cut = max(nl, block.rfind(b"\r", nl + 1, cut))
    return cut


def make_chunk(buf: bytes, first_line: int = 1, offset: int = 0) -> LineChunk:
    """Index the lines of ``buf`` (whole lines; a final line may lack its terminator)."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    has_cr = b"\r" in buf
    has_lone_cr = has_cr and buf.count(b"\r") != buf.count(b"\r\n")
    if has_lone_cr:
        # old Mac line endings: a CR not followed by LF ends a line too
        is_cr = arr == CR
        nxt = np.empty_like(is_cr)
        nxt[:-1] = arr[1:] == NL
        nxt[-1:] = False
        term = np.flatnonzero((arr == NL) | (is_cr & ~nxt))
    else:
        term = np.flatnonzero(arr == NL)
    n = len(term)
    last_open = len(buf) > 0 and (n == 0 or term[-1] != len(buf) - 1)
    if last_open:
        term = np.append(term, len(buf))
    starts = np.empty(len(term), dtype=np.int64)
    if len(term):
        starts[0] = 0
        starts[1:] = term[:-1] + 1
    ends = term.astype(np.int64)  # (a copy)
    if len(ends) and has_cr:
        # strip a CR before LF
        prev = ends - 1
        ok = prev >= starts
        crmask = np.zeros(len(ends), dtype=bool)
        crmask[ok] = arr[prev[ok]] == CR
        ends[crmask] -= 1
    return LineChunk(buf, starts, ends, first_line, offset, offset + len(buf), has_cr)
