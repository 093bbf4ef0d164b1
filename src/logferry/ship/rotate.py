"""Rotation: cut a stream of encoded records into objects, a new one when ``max_bytes``,
``max_age_secs`` or ``max_records`` is reached, whichever comes first.

The limits hold exactly.  Line formats are compressed in pieces of about
``PIECE_BYTES`` of text, each piece a complete gzip member / zstd frame (a multi-member
file is a valid gzip/zstd file), so the size of an object is known exactly after every
piece and no object exceeds ``max_bytes`` unless a single record alone is larger.
Near the limit a piece that does not fit is halved until it does (down to one record).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PIECE_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_bytes: int | None = None
    max_age_secs: float | None = None
    max_records: int | None = None

    def __post_init__(self) -> None:
        for k in ("max_bytes", "max_age_secs", "max_records"):
            v = getattr(self, k)
            if v is not None and v <= 0:
                raise ValueError(f"{k} must be positive, got {v}")

    def within(self, max_bytes: int | None = None, max_records: int | None = None) -> Limits:
        """These limits capped by a destination's own (None: no cap)."""

        def cap(mine: int | None, theirs: int | None) -> int | None:
            return mine if theirs is None else min(mine or theirs, theirs)

        return Limits(cap(self.max_bytes, max_bytes), self.max_age_secs, cap(self.max_records, max_records))


class Codec:
    """Encode a piece of text as a self-contained compressed unit."""

    def __init__(self, name: str, level: int | None = None):
        self.name = name
        if name == "gzip":
            from isal import igzip

            lvl = 1 if level is None else level
            self.encode: Callable[[bytes], bytes] = lambda b: igzip.compress(b, lvl, mtime=0)
            self.ext = ".gz"
        elif name == "zstd":
            import zstandard

            c = zstandard.ZstdCompressor(level=3 if level is None else level)
            self.encode = c.compress
            self.ext = ".zst"
        elif name in ("none", None):
            self.name = "none"
            self.encode = bytes
            self.ext = ""
        else:
            raise ValueError(f"unknown compression {name!r}; choose gzip, zstd or none")


@dataclass
class Mark:
    """Where the last record of an object came from (opaque to the rotator)."""

    value: Any


@dataclass
class Obj:
    """A finished object: its bytes, record count and the marks of its first/last record."""

    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    records: int = 0
    raw_bytes: int = 0
    opened_at: float = 0.0
    first: Any = None
    last: Any = None
    first_ts: Any = None

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


class LineRotator:
    """Feed record lines (``data`` + ``offsets``, one mark per record); get finished objects.

    ``header`` (bytes, e.g. W3C directives or a CSV title line) starts every object.
    ``clock`` returns seconds (injected; tests freeze it).
    """

    def __init__(
        self,
        limits: Limits,
        codec: Codec,
        clock: Callable[[], float],
        *,
        piece_bytes: int = PIECE_BYTES,
    ):
        self.limits = limits
        self.codec = codec
        self.clock = clock
        self.piece_bytes = piece_bytes
        self.cur: Obj | None = None
        self.header = b""

    # -- helpers -------------------------------------------------------------------
    def _open(self, mark: Any, ts: Any) -> Obj:
        o = Obj(opened_at=self.clock(), first=mark, first_ts=ts)
        if self.header:
            enc = self.codec.encode(self.header)
            o.parts.append(enc)
            o.size += len(enc)
            o.raw_bytes += len(self.header)
        return o

    def _aged(self, o: Obj) -> bool:
        a = self.limits.max_age_secs
        return a is not None and o.records > 0 and self.clock() - o.opened_at >= a

    def _full(self, o: Obj) -> bool:
        mr = self.limits.max_records
        return mr is not None and o.records >= mr

    def set_header(self, header: bytes) -> Iterator[Obj]:
        """A new header: the open object is finished (its header no longer applies)."""
        if header != self.header:
            if self.cur is not None and self.cur.records:
                yield self.cur
                self.cur = None
            elif self.cur is not None:
                self.cur = None
            self.header = header

    def add(
        self,
        data: bytes,
        offsets: np.ndarray,
        marks: Callable[[int], Any],
        timestamps: Callable[[int], Any] = lambda i: None,
    ) -> Iterator[Obj]:
        """Add ``len(offsets)-1`` records: record ``i`` is ``data[offsets[i]:offsets[i+1]]``.
        ``marks(i)`` describes where record ``i`` came from (checkpoint material)."""
        n = len(offsets) - 1
        i = 0
        mb = self.limits.max_bytes
        mr = self.limits.max_records
        while i < n:
            if self.cur is not None and self._aged(self.cur):
                yield self.cur
                self.cur = None
            if self.cur is None:
                self.cur = self._open(marks(i), timestamps(i))
            cur = self.cur
            # a piece of about piece_bytes of text, within the record budget
            stop = int(np.searchsorted(offsets, offsets[i] + self.piece_bytes, side="right")) - 1
            j = max(i + 1, min(n, stop))
            if mr is not None:
                j = min(j, i + (mr - cur.records))
            while True:
                piece = data[offsets[i] : offsets[j]]
                enc = self.codec.encode(piece)
                if mb is None or cur.size + len(enc) <= mb or cur.records == 0 and j - i == 1:
                    cur.parts.append(enc)
                    cur.size += len(enc)
                    cur.records += j - i
                    cur.raw_bytes += len(piece)
                    cur.last = marks(j - 1)
                    i = j
                    break
                if j - i > 1:
                    j = i + (j - i) // 2
                    continue
                # one record does not fit in a non-empty object: finish it
                yield cur
                self.cur = None
                break
            if self.cur is not None and (
                self._full(self.cur) or (mb is not None and self.cur.size >= mb)
            ):
                yield self.cur
                self.cur = None

    def tick(self) -> Iterator[Obj]:
        """Finish the open object if it is too old (call between reads)."""
        if self.cur is not None and self._aged(self.cur):
            yield self.cur
            self.cur = None

    def flush(self) -> Iterator[Obj]:
        if self.cur is not None and self.cur.records:
            yield self.cur
        self.cur = None


class BatchRotator:
    """Rotation for binary writers (Parquet): an object is rendered from whole Arrow
    tables; when ``max_bytes`` is exceeded the row count is found by bisection."""

    def __init__(self, limits: Limits, render: Callable[[Any], bytes], clock: Callable[[], float]):
        self.limits = limits
        self.render = render
        self.clock = clock
        self.rows: list[Any] = []  # list of (table slice)
        self.marks: list[Any] = []
        self.ts: list[Any] = []
        self.opened_at = 0.0
        self.ratio: float | None = None  # rendered bytes per Arrow byte, from the last render

    def add(self, table, marks: list[Any], timestamps: list[Any]) -> Iterator[Obj]:
        import pyarrow as pa

        if not self.rows:
            self.opened_at = self.clock()
        self.rows.append(table)
        self.marks.extend(marks)
        self.ts.extend(timestamps)
        mr = self.limits.max_records
        mb = self.limits.max_bytes
        while True:
            total = sum(t.num_rows for t in self.rows)
            if mr is not None and total >= mr:
                yield from self._emit(mr)
                continue
            if mb is not None and total:
                # rendering the whole pending table on every add would be quadratic: render
                # only once the size estimated from the last render nears the limit
                raw = sum(t.nbytes for t in self.rows)
                if self.ratio is not None and raw * self.ratio < mb * 0.7:
                    break
                whole = pa.concat_tables(self.rows)
                data = self.render(whole)
                self.ratio = len(data) / max(1, raw)
                if len(data) > mb and total > 1:
                    yield from self._emit(self._fit(whole))
                    continue
            break
        a = self.limits.max_age_secs
        if a is not None and self.rows and self.clock() - self.opened_at >= a:
            yield from self.flush()

    def _fit(self, whole) -> int:
        lo, hi = 1, whole.num_rows - 1  # largest k in [1, n) whose render fits
        best = 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if len(self.render(whole.slice(0, mid))) <= self.limits.max_bytes:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best

    def _emit(self, k: int) -> Iterator[Obj]:
        import pyarrow as pa

        whole = pa.concat_tables(self.rows)
        head, rest = whole.slice(0, k), whole.slice(k)
        data = self.render(head)
        o = Obj([data], len(data), k, 0, self.opened_at, self.marks[0], self.marks[k - 1], self.ts[0])
        self.rows = [rest] if rest.num_rows else []
        self.marks = self.marks[k:]
        self.ts = self.ts[k:]
        self.opened_at = self.clock()
        yield o

    def tick(self) -> Iterator[Obj]:
        a = self.limits.max_age_secs
        if a is not None and self.rows and self.clock() - self.opened_at >= a:
            yield from self.flush()

    def flush(self) -> Iterator[Obj]:
        import pyarrow as pa

        mb = self.limits.max_bytes
        while self.rows:
            n = sum(t.num_rows for t in self.rows)
            if mb is not None and n > 1:
                whole = pa.concat_tables(self.rows)
                if len(self.render(whole)) > mb:  # the estimate let it grow past the limit
                    yield from self._emit(self._fit(whole))
                    continue
            yield from self._emit(n)
            break
