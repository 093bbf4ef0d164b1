"""Split a decompressed byte stream into chunks of whole lines, with numpy offsets.

A :class:`LineChunk` holds a few MB of whole lines and the start/end offset of each
line (end excludes ``\\n`` and a trailing ``\\r``).  Readers work on these offsets with
numpy/Arrow instead of looping over lines in Python.  Line numbers are 1-based and
count every line of the decompressed file (directives and blank lines included).
"""

from __future__ import annotations

from collections.abc import Iterator
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


def iter_chunks(
    stream: BinaryIO,
    chunk_size: int = CHUNK_SIZE,
    *,
    first_line: int = 1,
    start_offset: int = 0,
    keep_partial: bool = True,
) -> Iterator[LineChunk]:
    """Yield :class:`LineChunk`s of whole lines from a binary stream.

    ``keep_partial``: a last line without a terminator is yielded (True) or left
    unconsumed (False, for files that are still being written).
    """
    rest = b""
    line_no = first_line
    offset = start_offset
    while True:
        block = stream.read(chunk_size)
        if not block:
            if rest and keep_partial:
                chunk = make_chunk(rest, line_no, offset)
                yield chunk
            return
        cut = _last_terminator(block)
        if cut < 0:
            rest = rest + block
            if len(rest) < MAX_LINE:
                continue
            buf, rest = rest, b""  # absurdly long line: split it rather than grow forever
        else:
            buf = b"".join((rest, memoryview(block)[: cut + 1])) if rest else block[: cut + 1]
            rest = block[cut + 1 :]
        chunk = make_chunk(buf, line_no, offset)
        line_no += len(chunk)
        offset += len(buf)
        yield chunk


#: a "line" longer than this is cut into pieces (bounded memory on garbage input)
MAX_LINE = 64 << 20


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
