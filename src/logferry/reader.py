"""Open any input, detect its format and stream canonical record batches.

>>> stream = read("access.log")            # doctest: +SKIP
>>> for batch in stream: ...               # pyarrow.RecordBatch
>>> stream.stats.records, stream.stats.bad # doctest: +SKIP

Nothing is lost: every line that cannot be read is counted as a bad row, and
``records + bad == lines - directives - blank`` holds for every input.  Entries that
are not requests (a JSON log's other loggers, HAProxy's own messages) are *skipped*:
counted with the directives (and in ``skipped``), neither records nor bad rows.  Bad rows are
reported as :class:`BadRow` objects (file, line number, a prefix of the raw text, its full length
and SHA-256, reason) through ``on_bad`` or ``stream.bad_rows`` -- bounded, so that hostile
input cannot make them larger than itself:

* ``bad_text_bytes`` (reader option, default 4 KiB): bytes of a bad line's text kept;
* ``bad_rows_bytes`` (default 16 MiB): bad rows kept per file, each costing its kept text
  plus 128 bytes; past it bad rows are still counted (``stats.bad``, exact) but not
  reported (``stats.bad_omitted`` says how many);
* ``max_line_bytes`` (default 16 MiB): a longer line is one bad row (its first bytes kept),
  read through in bounded memory, and the lines after it keep their numbers.

One file uses every core (:mod:`.parallel`): reader option ``threads`` (default: every core;
1: one reader) and ``range_size`` (bytes per range and chunk, default 8 MiB).  Records, bad
rows, line numbers and counts are the same on any number of threads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa

from . import formats
from .compression import Prefixed, open_decompressed
from .errors import AmbiguousFormatError, InputError, UnknownFormatError
from .lines import CHUNK_SIZE, MAX_LINE, LineChunk, LongLine, decode, iter_chunks
from .sources import check_source

HEAD_BYTES = 256 << 10


@dataclass
class ReadStats:
    lines: int = 0
    directives: int = 0
    blank: int = 0
    #: of the directives: entries that are not requests (see :meth:`ReadContext.skip`)
    skipped: int = 0
    records: int = 0
    bad: int = 0
    conversion_errors: int = 0
    bytes_read: int = 0
    bad_omitted: int = 0  # bad rows counted in ``bad`` but not reported (per-file cap)

    @property
    def data_lines(self) -> int:
        return self.lines - self.directives - self.blank

    def as_dict(self) -> dict[str, int]:
        d = asdict(self)
        d["data_lines"] = self.data_lines
        return d


@dataclass
class BadRow:
    source_file: str
    line_number: int
    raw: str  # the line's text, at most ``bad_text_bytes`` of it (cut at a character)
    reason: str
    length: int = -1  # bytes of the whole line (without its terminator); -1: not known
    sha256: str = ""  # of the whole line's bytes (hex)

    @property
    def truncated(self) -> bool:
        return self.length > len(self.raw.encode("utf-8", "surrogatepass"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: bad rows as an Arrow table
BAD_ROW_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string()),
        pa.field("line_number", pa.int64()),
        pa.field("raw", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("length", pa.int64()),
        pa.field("sha256", pa.string()),
    ]
)

#: defaults of the reader options that bound bad rows (see the module docstring)
BAD_TEXT_BYTES = 4 << 10
BAD_ROWS_BYTES = 16 << 20
#: what a reported bad row costs against ``bad_rows_bytes`` besides its kept text
BAD_ROW_OVERHEAD = 128


def size_option(options: dict[str, Any] | None, key: str, default: int, name: str | None = None) -> int:
    """A byte-size reader option: an int or text like ``4096``, ``64K``, ``16M``, ``1G``
    (``name`` is what an error calls it)."""
    name = name or f"option {key}"
    v = (options or {}).get(key)
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise InputError(f"{name}: a size in bytes, not {v!r}")
    from .errors import ConfigError
    from .values import INT64_MAX, whole

    if isinstance(v, int):
        n = v
    else:
        t = str(v).strip().upper().removesuffix("B").removesuffix("I")
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
        try:
            n = whole(t[:-1] if mult > 1 else t, name) * mult  # (ASCII digits: int() takes '١٦')
        except ConfigError:
            raise InputError(f"{name}: a size in bytes like 4096, 64K or 16M, not {v!r}") from None
    if n < 0:
        raise InputError(f"{name}: must not be negative, got {v!r}")
    if n > INT64_MAX:
        raise InputError(f"{name}: at most 8 EiB, not {v!r}")
    return n


def long_line_reason(max_line: int, length: int) -> str:
    """The reason of the bad row a line longer than ``max_line`` bytes becomes."""
    return f"line longer than {max_line} bytes ({length} bytes)"


@dataclass(frozen=True)
class BadLimits:
    text: int = BAD_TEXT_BYTES
    rows: int = BAD_ROWS_BYTES
    max_line: int = MAX_LINE

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> BadLimits:
        return cls(size_option(options, "bad_text_bytes", BAD_TEXT_BYTES),
                   size_option(options, "bad_rows_bytes", BAD_ROWS_BYTES),
                   max(1, size_option(options, "max_line_bytes", MAX_LINE)))


def clip(raw: bytes | bytearray | memoryview | str, keep: int) -> tuple[str, int, int, str]:
    """A bad line's kept text: (text of at most ``keep`` bytes, cut at a character
    boundary; bytes kept; length of the whole line; SHA-256 of the whole line)."""
    b = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    length = len(b)
    digest = hashlib.sha256(b).hexdigest()
    if length > keep:
        cut = keep
        while cut > 0 and (b[cut] & 0xC0) == 0x80:  # not inside a UTF-8 sequence
            cut -= 1
        b = b[:cut]
    kept = bytes(b)
    return decode(kept), len(kept), length, digest


class _Budget:
    """The bytes of bad rows one file may still report; once a row does not fit, no
    later row is reported (the first rows in file order are the ones kept)."""

    def __init__(self, limit: int):
        self.left = limit
        self.full = False

    def take(self, cost: int) -> bool:
        if self.full or cost > self.left:
            self.full = True
            return False
        self.left -= cost
        return True


@dataclass
class ReadContext:
    """What a reader gets besides its chunks: where bad rows go, options, counters."""

    source_file: str
    options: dict[str, Any] = field(default_factory=dict)
    stats: ReadStats = field(default_factory=ReadStats)
    on_bad: Callable[[BadRow], None] | None = None

    def __post_init__(self) -> None:
        self.limits = BadLimits.from_options(self.options)
        self._budget = _Budget(self.limits.rows)
        #: long lines read but not reported yet: each is reported before the first bad
        #: row after it (chunks are read ahead of their parse), so bad rows come in file order
        self._long: list[LongLine] = []

    def bad(self, line_number: int, raw: bytes | str, reason: str, *, length: int | None = None,
            sha256: str | None = None) -> None:
        """One bad row (``length``/``sha256`` when ``raw`` is already only a prefix)."""
        self.flush_long(line_number)
        if self.on_bad is None or self._budget.full:
            self.omitted(1)
            return
        text, kept, n, digest = clip(raw, self.limits.text)
        self._replayed(line_number, text, kept, reason, n if length is None else length, sha256 or digest)

    def _replayed(self, line_number: int, text: str, kept: int, reason: str, length: int, digest: str) -> None:
        self.flush_long(line_number)
        if self.on_bad is None or not self._budget.take(kept + BAD_ROW_OVERHEAD):
            self.omitted(1)
            return
        self.stats.bad += 1
        self.on_bad(BadRow(self.source_file, int(line_number), text, reason, length, digest))

    def omitted(self, n: int) -> None:
        """``n`` more bad rows, past the cap: counted only."""
        self.stats.bad += n
        if self.on_bad is not None:
            self._budget.full = True
            self.stats.bad_omitted += n

    def bad_lines(self, chunk: LineChunk, idx, reason: str | Callable[[int], str]) -> None:
        for k, i in enumerate(idx):
            if self._budget.full and self.on_bad is not None:
                self.flush_long(chunk.first_line + int(i))
                self.omitted(len(idx) - k)
                return
            r = reason(int(i)) if callable(reason) else reason
            self.bad(chunk.first_line + int(i), chunk.line(int(i)), r)

    def long_line(self, long: LongLine) -> None:
        """A line longer than ``max_line_bytes``: one line, one bad row (reported in file
        order among the others: see :meth:`flush_long`)."""
        self.stats.lines += 1
        self.stats.bytes_read = long.end_offset
        self._long.append(long)

    def flush_long(self, before: int | None = None) -> None:
        """Report the long lines read before line ``before`` (all of them: None)."""
        while self._long and (before is None or self._long[0].line_number < before):
            long = self._long.pop(0)
            self.bad(long.line_number, long.prefix, long_line_reason(self.limits.max_line, long.length),
                     length=long.length, sha256=long.sha256)

    def conversion_failed(self, n: int) -> None:
        self.stats.conversion_errors += n

    def skip(self, n: int) -> None:
        """``n`` lines are entries that are not requests: counted with the directives."""
        self.stats.directives += n
        self.stats.skipped += n

    def deferred(self) -> DeferredContext:
        """A context for a worker thread: records side effects to replay in order."""
        return DeferredContext(self.source_file, self.options, limits=self.limits,
                               report=self.on_bad is not None, parent=self._budget)


@dataclass
class DeferredContext:
    """Collects bad rows and counters in a worker; :meth:`replay` applies them.  It keeps
    no more bad rows than one file may report (the rest it only counts), so a chunk of
    garbage costs bounded memory and time."""

    source_file: str
    options: dict[str, Any]
    bads: list[tuple[int, str, int, str, int, str]] = field(default_factory=list)
    failed: int = 0
    skipped: int = 0
    limits: BadLimits = field(default_factory=BadLimits)
    report: bool = True
    omitted: int = 0  # bad rows after the local budget ran out
    first_omitted: int | None = None  # the line of the first of them
    #: the file's budget: what is left of it now bounds this chunk's (every row of this
    #: chunk comes after the rows already replayed, so none past it could be reported)
    parent: _Budget | None = None

    def __post_init__(self) -> None:
        left = self.parent.left if self.parent is not None else self.limits.rows
        self._budget = _Budget(min(self.limits.rows, left))
        if self.parent is not None and self.parent.full:
            self._budget.full = True

    def _full(self) -> bool:
        return self._budget.full or (self.parent is not None and self.parent.full)

    def bad(self, line_number: int, raw: bytes | str, reason: str, *, length: int | None = None,
            sha256: str | None = None) -> None:
        if not self.report or self._full():
            self._omit(1, line_number)
            return
        text, kept, n, digest = clip(raw, self.limits.text)
        if not self._budget.take(kept + BAD_ROW_OVERHEAD):
            self._omit(1, line_number)
            return
        self.bads.append((int(line_number), text, kept, reason, n if length is None else length,
                          sha256 or digest))

    def bad_lines(self, chunk: LineChunk, idx, reason: str | Callable[[int], str]) -> None:
        for k, i in enumerate(idx):
            if not self.report or self._full():
                self._omit(len(idx) - k, chunk.first_line + int(i))
                return
            r = reason(int(i)) if callable(reason) else reason
            self.bad(chunk.first_line + int(i), chunk.line(int(i)), r)

    def _omit(self, n: int, line_number: int) -> None:
        if self.first_omitted is None:
            self.first_omitted = int(line_number)
        self.omitted += n

    def conversion_failed(self, n: int) -> None:
        self.failed += n

    def skip(self, n: int) -> None:
        self.skipped += n

    def replay(self, ctx: ReadContext) -> None:
        for line, text, kept, reason, length, digest in self.bads:
            ctx._replayed(line, text, kept, reason, length, digest)
        if self.omitted:
            ctx.flush_long(self.first_omitted)  # (a long line before them is charged first)
            ctx.omitted(self.omitted)
        if self.failed:
            ctx.conversion_failed(self.failed)
        if self.skipped:
            ctx.skip(self.skipped)


class _Guarded:
    """Turns decompression/IO failures in the middle of a stream into a clear
    :class:`InputError` (what was read before stays delivered)."""

    def __init__(self, stream: BinaryIO, name: str, stats: ReadStats):
        self._s, self._name, self._stats = stream, name, stats
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        try:
            b = self._s.read(n)
        except InputError:
            raise
        except Exception as e:  # zlib/bz2/lzma/zstd errors, EOFError, OSError, ...
            raise InputError(
                f"{self._name}: input is corrupt or truncated after {self._pos} bytes "
                f"({self._stats.lines} lines read): {e}"
            ) from e
        self._pos += len(b)
        return b

    def close(self) -> None:
        self._s.close()

    def __getattr__(self, name: str):
        return getattr(self._s, name)


def open_raw(path: str | os.PathLike | BinaryIO) -> BinaryIO:
    """Binary stream of a local path, an fsspec URL or an open file object."""
    if hasattr(path, "read"):
        return path  # type: ignore[return-value]
    p = os.fspath(path)  # type: ignore[arg-type]
    if p == "-":
        import sys

        return sys.stdin.buffer
    if "://" in p and not p.startswith("file://"):
        import fsspec

        check_source(p)  # (a password in it would be printed and stored)
        try:
            return fsspec.open(p, "rb").open()
        except FileNotFoundError as e:
            raise InputError(f"{p}: no such file") from e
        except ImportError as e:
            raise InputError(f"{p}: {e}") from e
    if p.startswith("file://"):
        p = p[len("file://") :]
    if os.path.isdir(p):
        raise InputError(f"{p}: is a directory, not a log file")
    from .sources import open_regular

    try:
        return open_regular(p)  # (a FIFO, device or socket is refused: it could block forever)
    except FileNotFoundError as e:
        raise InputError(f"{p}: no such file") from e
    except PermissionError as e:
        raise InputError(f"{p}: permission denied") from e


def open_input(path: str | os.PathLike | BinaryIO) -> tuple[BinaryIO, bytes, str | None]:
    """Open, decompress, and read the head.  Returns (stream from byte 0, head, codec)."""
    raw = open_raw(path)
    try:
        stream, codec = open_decompressed(raw)
        head = _read_head(stream)
    except InputError:
        raw.close()
        raise
    except Exception as e:  # zlib/isal/bz2/lzma/zstd errors, EOFError, OSError, ...
        raw.close()
        raise InputError(f"{_name(path)}: cannot decompress: {e}") from e
    return Prefixed(head, stream), head, codec  # type: ignore[return-value]


def _read_head(stream: BinaryIO) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < HEAD_BYTES:
        b = stream.read(HEAD_BYTES - size)
        if not b:
            break
        parts.append(b)
        size += len(b)
    return b"".join(parts)


def _name(path: Any) -> str:
    """The name a source is reported under: the path or URL as given."""
    if hasattr(path, "read"):
        name = getattr(path, "name", None)
        return name if isinstance(name, str) else "<stream>"
    return os.fspath(path)


@dataclass
class Detection:
    format: str
    confidence: float
    candidates: list[tuple[str, float]]
    compression: str | None = None


def detect_head(head: bytes, name: str = "", codec: str | None = None) -> Detection:
    h = formats.Head.from_bytes(head, os.path.basename(name))
    if not h.lines and not head.strip():
        raise UnknownFormatError(f"{name}: empty input, nothing to detect")
    ranked = formats.rank(h)
    if not ranked:
        if _looks_binary(head):
            raise UnknownFormatError(f"{name}: not a log file (binary content)")
        raise UnknownFormatError(
            f"{name}: not a recognised access-log format; force one with --format NAME "
            f"(see `logferry formats`)"
        )
    best = ranked[0]
    ties = [c for c in ranked if best[1] - c[1] < formats.TIE]
    if len(ties) > 1:
        raise AmbiguousFormatError(name, ties)
    return Detection(best[0], best[1], ranked, codec)


def _looks_binary(head: bytes) -> bool:
    sample = head[:4096]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    text = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13) or b >= 128)
    return text / len(sample) < 0.85


def detect(path: str | os.PathLike | BinaryIO) -> Detection:
    """Detect the format of a file from its content (compression sniffed from magic)."""
    stream, head, codec = open_input(path)
    try:
        return detect_head(head, _name(path), codec)
    finally:
        stream.close()


class RecordStream:
    """Iterable of canonical ``pyarrow.RecordBatch``es read from one input.

    After iteration, :attr:`stats` holds the counts and :attr:`bad_rows` the bad rows
    (unless an ``on_bad`` callback received them instead).
    """

    def __init__(
        self,
        path: Any,
        format: str | None = None,
        *,
        options: dict[str, Any] | None = None,
        on_bad: Callable[[BadRow], None] | None = None,
        chunk_size: int = CHUNK_SIZE,
        source_name: str | None = None,
    ):
        self.path = path
        self.source_file = source_name or _name(path)
        self.bad_rows: list[BadRow] = []
        self.ctx = ReadContext(
            self.source_file, dict(options or {}), ReadStats(), on_bad or self.bad_rows.append
        )
        from .parallel import threads_of

        # (the range size of a parallel read: the chunk size, so both read the same chunks)
        self.chunk_size = max(1, size_option(options, "range_size", chunk_size))
        self.threads = self.ctx.options["threads"] = threads_of(options)
        self._stream, head, self.compression = open_input(path)
        try:
            if format is None:
                det = detect_head(head, self.source_file, self.compression)
                self.format, self.confidence = det.format, det.confidence
            else:
                formats.get(format)
                self.format, self.confidence = format, 1.0
        except Exception:
            self._stream.close()
            raise
        self.reader = formats.get(self.format)

    @property
    def stats(self) -> ReadStats:
        return self.ctx.stats

    def _chunks(self, stream: BinaryIO) -> Iterator[LineChunk]:
        """The single reader's chunks; with several threads, a plain local file's byte
        ranges are read and indexed on them, and anything else (a decompressor) is read
        on a thread of its own (:mod:`.parallel`)."""
        from . import parallel

        max_line, on_long = self.ctx.limits.max_line, self.ctx.long_line
        if self.threads > 1:
            plain = parallel.plain_file(self._stream)
            if plain is not None:
                return parallel.range_chunks(*plain, chunk_size=self.chunk_size, threads=self.threads,
                                             max_line=max_line, on_long=on_long)
            return parallel.prefetched(
                lambda put: iter_chunks(stream, self.chunk_size, max_line=max_line, on_long=put), on_long)
        return iter_chunks(stream, self.chunk_size, max_line=max_line, on_long=on_long)

    def _counted_chunks(self, stream: BinaryIO) -> Iterator[LineChunk]:
        for chunk in self._chunks(stream):
            self.ctx.stats.lines += len(chunk)
            self.ctx.stats.bytes_read = chunk.end_offset
            yield chunk

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        stream = _Guarded(self._stream, self.source_file, self.ctx.stats)
        source = None
        try:
            if self.reader.binary:
                source = self.reader.read(stream, self.ctx)
            else:
                source = self.reader.read(self._counted_chunks(stream), self.ctx)
            for batch in source:
                if batch.num_rows:
                    if self.ctx._long:  # (its records are out: the long lines before them too)
                        import pyarrow.compute as pc

                        self.ctx.flush_long(pc.max(batch.column("line_number")).as_py() + 1)
                    self.ctx.stats.records += batch.num_rows
                    yield batch
            self.ctx.flush_long()
        finally:
            if source is not None and hasattr(source, "close"):
                source.close()  # (its workers stop reading before the file is closed)
            stream.close()

    def to_table(self) -> pa.Table:
        from .schema import CANONICAL_SCHEMA

        batches = list(self)
        if not batches:
            return CANONICAL_SCHEMA.empty_table()
        return pa.Table.from_batches(
            [b.select(CANONICAL_SCHEMA.names) for b in batches], schema=CANONICAL_SCHEMA
        )


def read(
    path: str | os.PathLike | BinaryIO,
    format: str | None = None,
    *,
    options: dict[str, Any] | None = None,
    on_bad: Callable[[BadRow], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> RecordStream:
    """Read one log (any supported format, any compression) as canonical record batches."""
    return RecordStream(path, format, options=options, on_bad=on_bad, chunk_size=chunk_size)
