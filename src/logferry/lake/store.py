"""The lake as the ingester's store, on a worker (or in the one process).

The ingester (``logferry.usage.ingester``) plans each file against a snapshot of the
manifest and reads it as for the DuckDB file; :class:`LakeWriter` writes its rows to
Parquet data files, one per partition (site, day) per read, and keeps what the manifest
entry will say.  Nothing becomes visible here: the driver commits (``lake/commit.py``).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..reader import BadRow
from ..sources import IDENTITY_BYTES, SourceFile, content_identity, identity_at
from ..usage.db import Registered
from ..usage.duckstore import FileMark
from ..usage.reading import CommitGroups
from .rollups import Rollup
from .tables import BAD_ROWS, REQUESTS

#: rows per Parquet row group (and the most a data file's writer buffers)
_ROW_GROUP = 128 * 1024


@dataclass
class LakeRegistered(Registered):
    """A manifest row: a registered file, the reads whose rows are its own, and what its
    last line stored (for a last line read before its end was written: record/bad/none)."""

    reads: list[dict[str, int]] = field(default_factory=list)
    last_line_rows: tuple[int, int] = (0, 0)  # (records, bad rows) at line ``lines``
    row: dict[str, Any] = field(default_factory=dict)  # the whole manifest row


@dataclass
class Pending:
    """A read done on a worker, waiting for the driver's commit."""

    path: str
    read_id: int
    first_line: int
    base: LakeRegistered | None  # the manifest entry it read on from (None: a new file)
    entry: dict[str, Any]  # the manifest row's columns that change
    mark: FileMark | None = None
    requests: list[str] = field(default_factory=list)  # data files
    bad_rows: list[str] = field(default_factory=list)
    rollups: list[str] = field(default_factory=list)
    clip_line: int | None = None  # an earlier read's last line that this read stored again
    result: Any = None  # the FileResult


class _PartWriters:
    """Parquet data files of one read: one per (site, day) partition met."""

    def __init__(self, io: Any, root: str, read_id: int):
        self.io, self.root, self.read_id = io, root, read_id
        self.open: dict[tuple[str | None, int | None], tuple[str, pq.ParquetWriter, Any]] = {}

    def write(self, batch: pa.RecordBatch) -> None:
        site = pc.coalesce(batch.column("site"), batch.column("host"))
        t = pa.Table.from_batches([batch]).append_column("lake_site", site)
        t = t.append_column("_day", pc.cast(pc.cast(t.column("timestamp"), pa.date32()), pa.int32()))
        for key in t.select(["lake_site", "_day"]).group_by(["lake_site", "_day"]).aggregate([]).to_pylist():
            k = (key["lake_site"], key["_day"])
            mask = pc.and_(_is(t.column("lake_site"), k[0]), _is(t.column("_day"), k[1]))
            part = t.filter(mask).drop_columns(["_day"])
            self._writer(k).write_table(_conform(part, self.read_id), row_group_size=_ROW_GROUP)

    def _writer(self, k: tuple[str | None, int | None]) -> pq.ParquetWriter:
        if k not in self.open:
            site = "null" if k[0] is None else urllib.parse.quote(k[0], safe="")
            day = "null" if k[1] is None else time.strftime("%Y-%m-%d", time.gmtime(k[1] * 86400))
            path = f"{self.root}/requests/data/site={site}/day={day}/{self.read_id:016x}-{len(self.open)}.parquet"
            out = self.io.new_output(path).create(overwrite=True)
            self.open[k] = (path, pq.ParquetWriter(out, REQUESTS, compression="zstd"), out)
        return self.open[k][1]

    def close(self) -> list[str]:
        for _path, w, out in self.open.values():
            w.close()
            out.close()
        return [p for p, _w, _o in self.open.values()]

    def discard(self) -> None:
        for path in self.close():
            try:
                self.io.delete(path)
            except OSError:
                pass


def _is(col: pa.ChunkedArray, value: Any) -> pa.ChunkedArray:
    return pc.is_null(col) if value is None else pc.fill_null(pc.equal(col, value), False)


def _conform(t: pa.Table, read_id: int) -> pa.Table:
    t = t.append_column("read_id", pa.array(np.full(t.num_rows, read_id, np.int64)))
    return t.select(REQUESTS.names).cast(REQUESTS)


class LakeWriter:
    """The ingester's store for a lake: manifest questions answered from a snapshot of the
    manifest, rows to data files; :attr:`done` holds the reads to commit."""

    settings: dict[str, Any] = {}
    checkpoints_commit = False  #: a checkpoint commits nothing: the driver commits whole reads

    def __init__(self, manifest: list[LakeRegistered], io: Any, root: str):
        self.known = list(manifest)
        self.io, self.root = io, root
        self.done: list[Pending] = []
        self.cur: Pending | None = None
        self._writers: _PartWriters | None = None
        self._bad: list[BadRow] = []
        self._rollup = Rollup()
        self._new = 0

    # the manifest (a snapshot) ---------------------------------------------------------------
    def known_files(self, *, local: bool | None = None) -> list[Registered]:
        return [r for r in self.known if r.fp is not None
                and (local is None or (r.dev is not None) == local)]

    def find_by_content(self, head: bytes, exclude: int | None = None) -> Registered | None:
        lengths = sorted({r.head_bytes for r in self.known if r.head_bytes <= min(len(head), IDENTITY_BYTES)},
                         reverse=True)
        for n in lengths:
            ident = identity_at(head, n)
            hits = [r for r in self.known if r.identity == ident and r.head_bytes == n and r.file_id != exclude]
            if hits:
                return min(hits, key=lambda r: r.file_id)
        return None

    def registered(self, file_id: int) -> Registered:
        reg = next(r for r in self.known if r.file_id == file_id)
        if self.cur is not None and self.cur.clip_line is not None:
            recs, bads = reg.last_line_rows  # the re-read last line's rows no longer count
            return dataclasses.replace(reg, records=reg.records - recs, bad_rows=reg.bad_rows - bads)
        return reg

    def adopt(self, file_id: int, sf: SourceFile, path: str | None = None) -> None:
        if path is None:
            return  # (a row without source identity: none in a lake)
        if file_id >= 0:
            self._open_existing(file_id)
        if self.cur is not None:
            self.cur.entry.update(path=path, dev=sf.dev, ino=sf.ino, fp=sf.fp, fp_len=sf.fp_len,
                                  mtime=sf.mtime)

    # a read --------------------------------------------------------------------------------
    def begin(self) -> None:
        self.cur = None
        self._bad = []

    def new_file(self, sf: SourceFile, fmt: str, codec: str | None, head: bytes | None) -> int:
        ident, hb = content_identity(head if head is not None else b"")
        self._new += 1
        self._start(sf.path, None, 0, dict(
            identity=ident, head_bytes=hb, path=sf.path, format=fmt, compression=codec, size=sf.size,
            dev=sf.dev, ino=sf.ino, fp=sf.fp, fp_len=sf.fp_len, mtime=sf.mtime))
        return -self._new  # the driver gives the file its file_id when it commits

    def delete_line(self, file_id: int, line: int) -> int:
        reg = next(r for r in self.known if r.file_id == file_id)
        self._start(reg.path, reg, line - 1, {})
        self.cur.clip_line = line  # type: ignore[union-attr]
        return 0 if any(reg.last_line_rows) else 1

    def _start(self, path: str, base: LakeRegistered | None, start: int, entry: dict[str, Any]) -> None:
        if self.cur is None:
            rid = secrets.randbits(63)
            self.cur = Pending(path, rid, start + 1, base, entry)
            self._writers = _PartWriters(self.io, self.root, rid)
            self._rollup = Rollup()

    def _open_existing(self, file_id: int) -> None:
        if self.cur is None:
            reg = next(r for r in self.known if r.file_id == file_id)
            start = reg.lines - 1 if reg.partial_tail and reg.lines else reg.lines
            self._start(reg.path, reg, start, {})

    def append_requests(self, run: CommitGroups, file_id: int) -> None:
        self._open_existing(file_id)
        for batch in run.group():
            self._writers.write(batch)  # type: ignore[union-attr]
            self._rollup.add(batch)

    def append_bad(self, file_id: int, rows: list[BadRow]) -> None:
        self._bad.extend(rows)

    def append_orders(self, batch: pa.RecordBatch, file_id: int) -> int:
        return 0  # (the shop's orders tables are not in the lake yet)

    def checkpoint(self, file_id: int, m: FileMark) -> None:
        pass  # a read becomes visible as a whole, when the driver commits it

    def finish(self, file_id: int, m: FileMark) -> None:
        self._open_existing(file_id)
        self.cur.mark = m  # type: ignore[union-attr]

    def commit(self) -> None:
        cur = self.cur
        if cur is None:
            return
        cur.requests = self._writers.close()  # type: ignore[union-attr]
        if self._bad:
            cur.bad_rows = [self._write_bad(cur.read_id)]
        if self._rollup.groups:
            path = f"{self.root}/rollups/data/{cur.read_id:016x}.parquet"
            self._write(self._rollup.table(cur.read_id), path)
            cur.rollups = [path]
        self.done.append(cur)
        self.cur = None

    def rollback(self) -> None:
        if self._writers is not None and self.cur is not None:
            self._writers.discard()
        self.cur = None
        self._bad = []

    def apply_settings(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        return {}

    def error_message(self, e: BaseException) -> str | None:
        return None

    def _write_bad(self, read_id: int) -> str:
        rows = self._bad
        now = int(time.time() * 1e6)
        day = time.strftime("%Y-%m-%d", time.gmtime(now / 1e6))
        t = pa.table({
            "read_id": pa.array([read_id] * len(rows), pa.int64()),
            "line_number": pa.array([b.line_number for b in rows], pa.int64()),
            "raw": pa.array([b.raw for b in rows], pa.string()),
            "reason": pa.array([b.reason for b in rows], pa.string()),
            "ingested_at": pa.array([now] * len(rows), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        }, schema=BAD_ROWS)
        path = f"{self.root}/bad_rows/data/day={day}/{read_id:016x}.parquet"
        self._write(t, path)
        self._bad = []
        return path

    def _write(self, t: pa.Table, path: str) -> None:
        with self.io.new_output(path).create(overwrite=True) as out:
            pq.write_table(t, out, compression="zstd")
