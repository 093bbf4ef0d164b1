"""Small new files stored together: a folder of thousands of small logs (CloudFront writes
one gzip file per edge every few minutes) cost about ten DuckDB statements per file (its
entry, its rows, its bad rows, the end of its read, the commit) and as many manifest queries
to identify it.  While :meth:`Ingester.ingest <logferry.usage.ingester.Ingester.ingest>`
runs, the DuckDB store holds each new small file's entry, rows and bad rows here, and
writes up to :data:`BUNDLE_ROWS` rows of many files with one statement per table in one
transaction (:meth:`Bundle.write`): each file is still stored whole or not at all.

The run also indexes what identifies every file the database knows (read once when it
begins) and every file it registers: a file is looked up there, and the database is asked
only for the rows of the few files it may be (none for a new file; held ones are written
first), not three queries over the whole ``files`` table per file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..reader import BadRow
from ..schema import CANONICAL_NAMES
from ..sources import ContentIndex, KnownIndex, SourceFile
from . import db as dbm
from .reading import STREAM_SCHEMA

if TYPE_CHECKING:
    import duckdb

#: rows held before they are written (bounds the memory the held files take)
BUNDLE_ROWS = 100_000
#: files held before they are written (bounds how much a killed run must read again)
BUNDLE_FILES = 2000
#: only files up to this size join a bundle (larger ones stream their rows to DuckDB)
BUNDLE_FILE_BYTES = 4 << 20
#: a database of more files is not indexed in memory (~200 bytes a file): its runs ask it
#: about each file, and write each file by itself
INDEX_FILES = 500_000

_VIEW = "_lf_bundle"
_REQ_COLS = ", ".join(f'"{c}"' for c in CANONICAL_NAMES)
#: the ``files`` columns an entry sets (the others keep their defaults)
_ENTRY_COLS = ("file_id", "identity", "head_bytes", "head_fp", "path", "format", "compression", "size",
               "dev", "ino", "fp", "fp_len", "mtime", "bytes", "lines", "directives", "blank", "records",
               "bad_rows", "conversion_errors", "partial_tail", "first_timestamp", "last_timestamp",
               "anchor_line", "anchor_off", "header", "title", "truncated_at", "error")
_ENTRY_SCHEMA = pa.schema([
    ("file_id", pa.int32()), ("identity", pa.string()), ("head_bytes", pa.int32()),
    ("head_fp", pa.string()), ("path", pa.string()), ("format", pa.string()),
    ("compression", pa.string()), ("size", pa.int64()), ("dev", pa.uint64()), ("ino", pa.uint64()),
    ("fp", pa.string()), ("fp_len", pa.int32()), ("mtime", pa.float64()), ("bytes", pa.int64()),
    ("lines", pa.int64()), ("directives", pa.int64()), ("blank", pa.int64()), ("records", pa.int64()),
    ("bad_rows", pa.int64()), ("conversion_errors", pa.int64()), ("partial_tail", pa.bool_()),
    ("first_timestamp", pa.timestamp("us", tz="UTC")), ("last_timestamp", pa.timestamp("us", tz="UTC")),
    ("anchor_line", pa.int64()), ("anchor_off", pa.int64()), ("header", pa.binary()),
    ("title", pa.binary()), ("truncated_at", pa.int64()), ("error", pa.string()),
])
_ROWS_SCHEMA = STREAM_SCHEMA.append(pa.field("file_id", pa.int32()))


@dataclass
class Held:
    """A new file held for the next write: its entry as registered, and what its read
    stored so far (the mark is its checkpoint's or its end's)."""

    reg: dbm.Registered
    compression: str | None
    batches: list[pa.RecordBatch] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    tracker: list[pa.RecordBatch] = field(default_factory=list)  # for the Snowplow hook
    mark: Any = None  # the store's FileMark (duckstore imports this module)

    def entry(self) -> dict[str, object]:
        r, m = self.reg, self.mark
        row = {f.name: getattr(r, f.name) for f in fields(r) if f.name in _ENTRY_COLS}
        row.update(compression=self.compression, header=None, title=None, conversion_errors=0,
                   partial_tail=False, truncated_at=None, error=None)
        if m is not None:
            row.update(bytes=m.bytes, lines=m.lines, directives=m.directives, blank=m.blank,
                       records=m.records, bad_rows=m.bad_rows, anchor_line=m.anchor_line,
                       anchor_off=m.anchor_off, header=m.header, title=m.title,
                       first_timestamp=m.first_ts, last_timestamp=m.last_ts)
            if m.size is not None:  # the end of the read (not a checkpoint)
                row.update(size=m.size, conversion_errors=m.conversion_errors, partial_tail=m.partial_tail,
                           truncated_at=m.truncated_at, error=m.error)
        return row


@dataclass
class Known:
    """What identifies a registered file (for :class:`~logferry.sources.KnownIndex`)."""

    file_id: int
    path: str
    fp: str | None
    dev: int | None
    ino: int | None
    fp_len: int | None


class Bundle:
    """The new files held by a run of the ingester, and every file the database and the
    run know, indexed by what identifies them: the database is asked (for the rows, fresh)
    only about a file some of them may be, and held files such a file may be are written
    first.  The index only gains keys (a file's new name or identity is added), so it
    names every file a question may concern, and maybe a few more."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.held: dict[int, Held] = {}
        self.rows = 0
        self.places = KnownIndex([])  # by path, (device, inode), fingerprint
        self.contents = ContentIndex()  # file_ids by content
        top = 0
        for fid, path, fp, dev, ino, fp_len, hb, ident, head_fp in con.execute(
                "SELECT file_id, path, fp, dev, ino, fp_len, head_bytes, identity, head_fp FROM files").fetchall():
            top = max(top, fid)
            if fp is not None:
                self.places.add(Known(fid, path, fp, dev, ino, fp_len))
            self.contents.add(fid, hb, ident, head_fp)
        self.next_id = top + 1

    # registering ---------------------------------------------------------------------------
    def register(self, sf: SourceFile, fmt: str, ident: tuple[str, int, str]) -> dbm.Registered:
        """A new file's entry (its file_id the next one), known from now on."""
        identity, head_bytes, head_fp = ident
        reg = dbm.Registered(self.next_id, identity, head_bytes, sf.path, fmt, sf.size, 0, 0, 0, 0, 0, 0,
                             False, sf.dev, sf.ino, sf.fp, sf.fp_len, sf.mtime, 0, 0, b"", b"", None,
                             head_fp)
        self.next_id += 1
        self.places.add(reg)
        self.contents.add(reg.file_id, head_bytes, identity, head_fp)
        return reg

    def moved(self, file_id: int, sf: SourceFile, path: str | None) -> None:
        """A registered file now has ``sf``'s identity (and ``path``)."""
        self.places.add(Known(file_id, path or sf.path, sf.fp, sf.dev, sf.ino, sf.fp_len))

    def hold(self, reg: dbm.Registered, compression: str | None) -> None:
        self.held[reg.file_id] = Held(reg, compression)

    # identifying ---------------------------------------------------------------------------
    def near(self, sf: SourceFile) -> list[int]:
        """The files that may be ``sf`` (by place or head)."""
        return sorted({r.file_id for r in self.places.near(sf)})

    def same_content(self, head: bytes) -> list[tuple[int, int]]:
        """(bytes, file_id) of the files whose content starts as ``head`` does, over those bytes."""
        return self.contents.matches(head)

    # writing -------------------------------------------------------------------------------
    def add_rows(self, file_id: int, batches: list[pa.RecordBatch]) -> None:
        self.held[file_id].batches.extend(batches)
        self.rows += sum(b.num_rows for b in batches)

    def full(self) -> bool:
        return self.rows >= BUNDLE_ROWS or len(self.held) >= BUNDLE_FILES

    def drop(self, file_id: int) -> None:
        """Forget a held file (its read failed: nothing of it is stored)."""
        h = self.held.pop(file_id, None)
        if h is not None:
            self.rows -= sum(b.num_rows for b in h.batches)

    def take(self) -> dict[int, Held]:
        """The held files, no longer held."""
        held, self.held, self.rows = self.held, {}, 0
        return held

    def write(self, held: dict[int, Held], hook: Callable[..., Any] | None = None) -> None:
        """Write files taken (entries, rows, bad rows, tracker hits through the Snowplow
        ``hook``) in the caller's transaction."""
        entries = [h.entry() for h in held.values()]
        table = pa.Table.from_pylist(entries, schema=_ENTRY_SCHEMA)
        cols = ", ".join(_ENTRY_SCHEMA.names)
        self._insert(f"INSERT INTO files ({cols}, ingested_at, updated_at) SELECT {cols}, now(), now() "
                     f"FROM {_VIEW}", table)
        if any(h.batches for h in held.values()):
            self._insert(f"INSERT INTO requests ({_REQ_COLS}, file_id, line_number) "
                         f"SELECT {_REQ_COLS}, file_id, line_number FROM {_VIEW}",
                         pa.RecordBatchReader.from_batches(_ROWS_SCHEMA, _with_ids(held)))
        bad = [(fid, b) for fid, h in held.items() for b in h.bad]
        if bad:
            self._insert(f"INSERT INTO bad_rows SELECT file_id, line_number, raw, reason FROM {_VIEW}", pa.table({
                "file_id": pa.array([f for f, _ in bad], pa.int32()),
                "line_number": pa.array([b.line_number for _, b in bad], pa.int64()),
                "raw": pa.array([b.raw for _, b in bad], pa.string()),
                "reason": pa.array([b.reason for _, b in bad], pa.string()),
            }))
        for fid, h in held.items():
            for t in h.tracker:
                hook(self.con, t, fid)  # type: ignore[misc]

    def _insert(self, sql: str, data: pa.Table | pa.RecordBatchReader) -> None:
        import duckdb

        self.con.register(_VIEW, data)
        try:
            self.con.execute(sql)
        finally:
            try:
                self.con.unregister(_VIEW)
            except duckdb.Error:
                pass


def _with_ids(held: dict[int, Held]) -> Iterator[pa.RecordBatch]:
    for fid, h in held.items():
        for b in h.batches:
            yield pa.RecordBatch.from_arrays(
                [*b.columns, pa.array(np.full(b.num_rows, fid, np.int32))], schema=_ROWS_SCHEMA)

