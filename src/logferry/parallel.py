"""One file, every core: a plain local file read in byte ranges on worker threads.

The single reader (:func:`~logferry.lines.iter_chunks`) reads blocks of ``chunk_size``
bytes at offsets 0, R, 2R, ... and cuts each block after its last line terminator.  Where
a block is cut depends only on that block's bytes, so every block can be cut on its own:
*range* k runs from just after the last terminator before block k to the last terminator
in block k (empty when block k holds none: a line longer than a range belongs to the range
where it ends).  A worker reads its range with ``os.pread`` and indexes its lines (numpy):
both release the GIL, and so does most of parsing (measured: a W3C/IIS chunk's parse holds
it for about 3% of its time, CloudFront's 11%), so the workers are threads, not processes,
which would pay for copying every batch back.

The caller gets exactly the single reader's chunks and long lines, in file order, and
numbers their lines as it goes (:func:`range_chunks`); directives (W3C ``#Fields``, which
may change mid-file) are therefore applied by the format's reader in file order as before,
and each segment is parsed with the directives in force at its start.  Gzip and other
compressed inputs are decompressed once, on a thread of their own (:func:`prefetched`),
while the chunks before are parsed.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from .formats._parallel import default_threads, ordered_map
from .lines import LineChunk, LongLine, _last_terminator, iter_chunks

#: bytes of a block's end searched first for its last terminator (the whole block if none)
_TAIL = 64 << 10


class _RangeFile:
    """Reads a file from ``pos`` on with ``os.pread``, each read ending at the next block
    boundary (``start + k * block``), as the single reader's reads of a file do."""

    def __init__(self, fd: int, pos: int, start: int, block: int):
        self.fd, self.pos, self.start, self.block = fd, pos, start, block

    def read(self, n: int = -1) -> bytes:
        grid = self.start + ((self.pos - self.start) // self.block + 1) * self.block
        data = os.pread(self.fd, grid - self.pos, self.pos)
        self.pos += len(data)
        return data


def _cut_after(fd: int | Callable[[int, int], bytes], lo: int, hi: int) -> int:
    """The offset just after the last terminator of block ``[lo, hi)`` (the single
    reader's cut), or -1 when it holds none.  ``fd``: a file descriptor, or a function
    reading (bytes, offset) as ``os.pread`` does (an object in storage: ranged reads)."""
    pread = fd if callable(fd) else partial(os.pread, fd)
    if hi - lo > _TAIL:
        tail = pread(_TAIL, hi - _TAIL)
        c = _last_terminator(tail)
        if c >= 0:
            return hi - _TAIL + c + 1
    c = _last_terminator(pread(hi - lo, lo))
    return lo + c + 1 if c >= 0 else -1


def _range_start(fd: int | Callable[[int, int], bytes], start: int, k: int, block: int) -> int:
    """Where range ``k`` starts: after the last terminator of the blocks before it."""
    for j in range(k - 1, -1, -1):
        lo = start + j * block
        cut = _cut_after(fd, lo, lo + block)
        if cut >= 0:
            return cut
    return start


def _read_range(fd: int, start: int, size: int, k: int, block: int, max_line: int) -> list:
    """The chunks and long lines of range ``k``, lines numbered from 1."""
    lo = start + k * block
    hi = lo + block
    s = _range_start(fd, start, k, block)
    if hi >= size:
        end = None  # the last range reads on to the end (a growing file: as far as it goes)
    else:
        end = _cut_after(fd, lo, hi)
        if end < 0:
            return []  # no line ends in this block: a later range holds them
    out: list[LineChunk | LongLine] = []
    chunks = iter_chunks(_RangeFile(fd, s, start, block), block, start_offset=s,
                         max_line=max_line, on_long=out.append)
    for chunk in chunks:
        if end is not None and chunk.offset >= end:
            break
        out.append(chunk)
        if end is not None and chunk.end_offset >= end:
            break
    return [x for x in out if end is None or x.offset < end]


def range_chunks(fd: int, size: int, *, start: int = 0, chunk_size: int, threads: int | None = None,
                 max_line: int, on_long: Callable[[LongLine], None] | None = None,
                 first_line: int = 1) -> Iterator[LineChunk]:
    """The chunks :func:`~logferry.lines.iter_chunks` would yield for the file ``fd``
    read from ``start`` (a line start), its ranges read on ``threads`` threads; long
    lines go to ``on_long`` at the same points of the sequence."""
    block = max(1, chunk_size)
    n = max(1, -(-(size - start) // block))
    jobs = (partial(_read_range, fd, start, size, k, block, max_line) for k in range(n))
    line = first_line
    for items in ordered_map(jobs, threads):
        for it in items:
            if isinstance(it, LongLine):
                it.line_number = line
                line += 1
                if on_long is None:
                    from .errors import InputError

                    raise InputError(f"line {line - 1} is longer than {max_line} bytes ({it.length} bytes)")
                on_long(it)
            else:
                it.first_line = line
                line += len(it)
                yield it


def plain_file(stream: Any) -> tuple[int, int] | None:
    """``(fd, size)`` when ``stream`` (a reader's stream: the head it replays, then the
    rest) is a regular local file read from its first byte, else None."""
    import io
    import stat

    head, raw = getattr(stream, "_head", None), getattr(stream, "_rest", None)
    if head is None or not isinstance(raw, (io.BufferedReader, io.FileIO)):
        return None
    try:
        fd = raw.fileno()
        st = os.fstat(fd)
        at = raw.tell() - len(head)
    except (OSError, ValueError):
        return None
    return (fd, st.st_size) if stat.S_ISREG(st.st_mode) and at == 0 else None


def threads_of(options: dict[str, Any] | None) -> int:
    """The ``threads`` reader option (workers reading one file); default: every core."""
    v = (options or {}).get("threads")
    if v is None or v == "":
        return default_threads()
    try:
        n = int(v)
    except (TypeError, ValueError):
        from .errors import InputError

        raise InputError(f"option threads: a number of threads, not {v!r}") from None
    if n < 1:
        from .errors import InputError

        raise InputError(f"option threads: at least 1, got {v!r}")
    return n


def prefetched(make: Callable[[Callable[[LongLine], None]], Iterator[LineChunk]],
               on_long: Callable[[LongLine], None], depth: int = 2) -> Iterator[LineChunk]:
    """The chunks of ``make(on_long)`` made on a thread of their own (a decompressor's
    work beside the parsers'), at most ``depth`` ahead.  Long lines and errors reach the
    caller at the point of the sequence where they arose, on the caller's thread."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def run() -> None:
        try:
            for c in make(put):
                if stop.is_set():
                    return
                put(c)
            put(done)
        except BaseException as e:  # handed to the consumer
            put((done, e))

    t = threading.Thread(target=run, name="logferry-decompress", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, tuple):
                raise item[1]
            if isinstance(item, LongLine):
                on_long(item)
                continue
            yield item
    finally:
        # (not joined: it may be waiting on a pipe; once the stream is closed under it, it
        # sees ``stop`` and ends)
        stop.set()
