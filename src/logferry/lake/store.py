"""The lake as the ingester's store, on a worker (or in the one process).

The ingester (``logferry.usage.ingester``) plans each file against a snapshot of the
manifest and reads it as for the DuckDB file; :class:`LakeWriter` writes its rows (the
requests, the shop's orders and Snowplow's events among them) to Parquet data files, one
per table and partition (site, day), and keeps what the manifest entry will say.  Nothing
becomes visible here: the driver commits (``lake/commit.py``).

A task of many small files (a CloudFront bucket: thousands of files of a few hundred
lines) holds its reads' rows (:attr:`LakeWriter.hold`) and writes them together
(:meth:`LakeWriter.write_held`): one data file per table and partition for up to
:data:`HOLD_BYTES` of rows, each row still carrying its own read's id, so the manifest
counts every read's rows as before.  The reads sharing data files are returned, and
committed, together.  A read holding more than :data:`HOLD_READ_BYTES` writes its own
files from then on (a large file streams as it always did).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..reader import BAD_ROW_SCHEMA, BadRow
from ..sources import (
    SourceFile,
    content_identity,
)
from ..usage.db import Registered
from ..usage.duckstore import FileMark, _snowplow_hook
from ..usage.reading import CommitGroups
from ..usage.results import FileResult
from .manifest import Entries, LakeRegistered, NotSent
from .rollups import Rollup, reads_table
from .tables import day_column, schema

#: rows per Parquet row group (and the most a data file's writer buffers)
_ROW_GROUP = 128 * 1024
_TS = pa.timestamp("us", tz="UTC")


@dataclass
class Pending:
    """A read done on a worker, waiting for the driver's commit."""

    path: str
    read_id: int
    first_line: int
    base: LakeRegistered | None  # the manifest entry it read on from (None: a new file)
    entry: dict[str, Any]  # the manifest row's columns that change
    mark: FileMark | None = None
    data: dict[str, list[str]] = field(default_factory=dict)  # table -> its data files
    clip_line: int | None = None  # an earlier read's last line that this read stored again
    result: Any = None  # the FileResult
    ranges: list[dict[str, int]] = field(default_factory=list)  # a ranged file's other reads


#: rows (Arrow bytes) a task holds before writing its reads' rows together: one data file
#: per table and partition for them all (~100,000 requests)
HOLD_BYTES = 32 << 20
#: a read holding more than this writes its own data files from then on (~25,000 requests)
HOLD_READ_BYTES = 8 << 20


@dataclass
class _Held:
    """A read done, its rows held for :meth:`LakeWriter.write_held`."""

    read: Pending
    rows: dict[str, list[pa.Table]]  # table -> the read's rows (conformed: with its read id)
    bad: dict[str, list[BadRow]]


#: Parquet writers a read keeps open per table (each holds its buffers and compressor, ~1 MB)
_OPEN_WRITERS = 32


class _PartWriters:
    """Parquet data files of one read (or of held reads) into ``table``: one per (site, day) partition met, at
    most :data:`_OPEN_WRITERS` open at once -- the one written to longest ago is finished
    when another is needed, and its partition gets another file if more rows come (a log
    of thousands of hosts without a site: 3,000 took 4 GB and 32 s with a writer each)."""

    def __init__(self, io: Any, root: str, name: int, table: str):
        self.io, self.root, self.name, self.table = io, root, name, table
        self.schema, self.day = schema(table), day_column(table)
        self.open: dict[tuple[str | None, int | None], tuple[str, pq.ParquetWriter, Any]] = {}
        self.done: list[str] = []  # the files finished early
        self.made = 0

    def write(self, t: pa.Table) -> None:
        """Rows of the table, conformed to its schema (:func:`_conform`)."""
        t = t.append_column("_day", pc.cast(pc.cast(t.column(self.day), pa.date32()), pa.int32()))
        keys = ["lake_site", "_day"]
        if t.select(keys).group_by(keys).aggregate([]).num_rows > 1:  # (one sort, then a slice each:
            # a filter per partition over the whole batch grows with partitions x rows)
            t = t.take(pc.sort_indices(t, [(k, "ascending") for k in keys]))  # (stable: lines in order)
        t = t.append_column("_i", pa.array(np.arange(t.num_rows, dtype=np.int64)))
        for g in t.select([*keys, "_i"]).group_by(keys).aggregate([("_i", "min"), ("_i", "count")]).to_pylist():
            part = t.slice(g["_i_min"], g["_i_count"]).drop_columns(["_day", "_i"])
            self._writer((g["lake_site"], g["_day"])).write_table(part, row_group_size=_ROW_GROUP)

    def _writer(self, k: tuple[str | None, int | None]) -> pq.ParquetWriter:
        if k in self.open:
            self.open[k] = self.open.pop(k)  # (the last written to, last in line to finish)
            return self.open[k][1]
        if len(self.open) >= _OPEN_WRITERS:
            self.done.append(_finish(*self.open.pop(next(iter(self.open)))))
        path = f"{self.root}/{self.table}/data/{partition_folder(*k)}/{self.name:016x}-{self.made}.parquet"
        self.made += 1
        out = self.io.new_output(path).create(overwrite=True)
        self.open[k] = (path, pq.ParquetWriter(out, self.schema, compression="zstd"), out)
        return self.open[k][1]

    def close(self) -> list[str]:
        self.done += [_finish(*v) for v in self.open.values()]
        self.open = {}
        return self.done

    def discard(self) -> None:
        delete_files(self.io, self.close())


def delete_files(io: Any, paths: list[str]) -> None:
    """Delete data files never committed (one that cannot be deleted is left: no table
    names it)."""
    for path in paths:
        try:
            io.delete(path)
        except OSError:
            pass


def _finish(path: str, w: pq.ParquetWriter, out: Any) -> str:
    w.close()
    out.close()
    return path


#: longest site part of a data file's folder name (file systems allow 255 bytes a name, S3
#: 1,024 a key; a site is a Host header where a row has no site: as long as a client likes)
_FOLDER_CHARS = 96


def partition_folder(site: str | None, day: int | None) -> str:
    """The folders of a (site, day) partition's data files (``day``: days since 1970)."""
    return f"site={site_folder(site)}/{day_folder(day)}"


def day_folder(day: int | None) -> str:
    return "day=null" if day is None else time.strftime("day=%Y-%m-%d", time.gmtime(day * 86400))


def site_folder(site: str | None) -> str:
    """The folder name of a site's partition: the site quoted (no ``/``, ``..`` or control
    character left), a long one cut and told apart by a digest of the whole.  Only a
    location: the partition's value is the rows' own ``lake_site``."""
    if site is None:
        return "null"
    q = urllib.parse.quote(site, safe="")
    if len(q) <= _FOLDER_CHARS:
        return q
    cut = q[:_FOLDER_CHARS - 18]
    cut = cut[:cut.rfind("%")] if "%" in cut[-2:] else cut  # (not in the middle of an escape)
    return f"{cut}~{hashlib.sha256(site.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def _conform(t: pa.Table, read_id: int | pa.Array, schema: pa.Schema) -> pa.Table:
    """``t``'s rows with their read's id (one, or one a row), as the table's schema has them."""
    ids = pa.array(np.full(t.num_rows, read_id, np.int64)) if isinstance(read_id, int) else read_id
    t = t.append_column("read_id", ids)
    return t.select(schema.names).cast(schema)


def _with_site(t: pa.Table) -> pa.Table:
    """A canonical batch's rows with their partition site (the site, else the host)."""
    return t.append_column("lake_site", pc.coalesce(t.column("site"), t.column("host")))


def _site_of(batch: pa.RecordBatch, lines: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The partition site of the ``batch`` rows at ``lines`` (an order's, an event's)."""
    site = pc.coalesce(batch.column("site"), batch.column("host"))
    return pc.take(site, pc.index_in(lines, value_set=batch.column("line_number")))


class LakeWriter:
    """The ingester's store for a lake: manifest questions answered from a snapshot of the
    manifest, rows to data files; :attr:`done` holds the reads to commit."""

    settings: dict[str, Any] = {}
    checkpoints_commit = False  #: a checkpoint commits nothing: the driver commits whole reads
    relabel: Callable[[str], str] | None = None  #: a bad row's reason as the whole file's read says it
    snowplow_hook = _snowplow_hook()  #: (not None: the reader hands tracker hits to append_tracker)
    hold = False  #: a read's rows are held for :meth:`write_held` (False: each read writes its own files)

    def __init__(self, manifest: Entries | list[LakeRegistered], io: Any, root: str):
        self.known = manifest if isinstance(manifest, Entries) else Entries(manifest)
        self.io, self.root = io, root
        self.done: list[Pending] = []
        self.cur: Pending | None = None
        self._parts: dict[str, _PartWriters] = {}  # the current read's, by table
        self._bad: dict[str, list[BadRow]] = {"bad_rows": [], "bad_events": []}
        self._rollup = Rollup()
        self._rows: dict[str, list[pa.Table]] = {}  # the current read's rows held, by table
        self._rows_bytes = 0
        self.held: list[_Held] = []  # reads done whose rows are held
        self.held_bytes = 0
        self._new = 0
        self.not_sent: NotSent | None = None  # the last file's head's content group, not sent

    # the manifest (a snapshot) ---------------------------------------------------------------
    def known_files(self, *, local: bool | None = None, near: SourceFile | None = None) -> list[Registered]:
        rows = self.known.sources.near(near) if near is not None else self.known.sources.known
        return [r for r in rows if local is None or (r.dev is not None) == local]

    def find_by_content(self, head: bytes, exclude: int | None = None) -> Registered | None:
        try:
            return self.known.same_content(head, exclude)
        except NotSent as e:
            self.not_sent = e  # (whatever the ingester makes of the error: the task asks again)
            raise

    def _known(self, file_id: int) -> LakeRegistered:
        return self.known.by_id[file_id]

    def registered(self, file_id: int) -> Registered:
        reg = self._known(file_id)
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
        self._bad = {k: [] for k in self._bad}
        self._rows, self._rows_bytes = {}, 0

    def new_file(self, sf: SourceFile, fmt: str, codec: str | None, head: bytes | None) -> int:
        ident, hb, prefix = content_identity(head if head is not None else b"")
        self._new += 1
        self._start(sf.path, None, 0, dict(
            identity=ident, head_bytes=hb, head_fp=prefix, path=sf.path, format=fmt, compression=codec, size=sf.size,
            dev=sf.dev, ino=sf.ino, fp=sf.fp, fp_len=sf.fp_len, mtime=sf.mtime))
        return -self._new  # the driver gives the file its file_id when it commits

    def delete_line(self, file_id: int, line: int) -> int:
        reg = self._known(file_id)
        self._start(reg.path, reg, line - 1, {})
        self.cur.clip_line = line  # type: ignore[union-attr]
        return 0 if any(reg.last_line_rows) else 1

    def _start(self, path: str, base: LakeRegistered | None, start: int, entry: dict[str, Any]) -> None:
        if self.cur is None:
            rid = secrets.randbits(63)
            self.cur = Pending(path, rid, start + 1, base, entry)
            self._parts = {}
            self._rows, self._rows_bytes = {}, 0
            self._rollup = Rollup()

    def _put(self, table: str, t: pa.Table) -> None:
        """Rows of the current read into ``table`` (with their ``lake_site``): held while
        :attr:`hold` and the read holds at most :data:`HOLD_READ_BYTES`, else written to
        the read's own data files (from then on: ``_parts`` says so)."""
        t = _conform(t, self.cur.read_id, schema(table))  # type: ignore[union-attr]
        if not self.hold or self._parts:
            self._part(table).write(t)
            return
        self._rows.setdefault(table, []).append(t)
        self._rows_bytes += t.nbytes
        if self._rows_bytes > HOLD_READ_BYTES:
            rows, self._rows, self._rows_bytes = self._rows, {}, 0
            for name, ts in rows.items():
                for x in ts:
                    self._part(name).write(x)
                    if name == "requests":  # (a held read's rollups are the held reads', at once)
                        self._rollup.add(x)

    def _part(self, table: str) -> _PartWriters:
        if table not in self._parts:
            self._parts[table] = _PartWriters(self.io, self.root, self.cur.read_id, table)  # type: ignore[union-attr]
        return self._parts[table]

    def _open_existing(self, file_id: int) -> None:
        if self.cur is None:
            reg = self._known(file_id)
            start = reg.lines - 1 if reg.partial_tail and reg.lines else reg.lines
            self._start(reg.path, reg, start, {})

    def append_requests(self, run: CommitGroups, file_id: int) -> None:
        self._open_existing(file_id)
        for batch in run.group():
            held = self.hold and not self._parts  # (its rollups: write_held's, or here as it goes)
            self._put("requests", _with_site(pa.Table.from_batches([batch])))
            if not held:
                self._rollup.add(batch)

    def append_bad(self, file_id: int, rows: list[BadRow]) -> None:
        if self.relabel is not None:  # (a range of a file: its reasons in the file's numbering)
            rows = [dataclasses.replace(b, reason=self.relabel(b.reason)) for b in rows]
        self._bad["bad_rows"].extend(rows)

    def append_orders(self, batch: pa.RecordBatch, file_id: int) -> int:
        """The shop's orders and their items of a batch's ORDER lines; returns how many."""
        from ..shop import decode_shop

        dec = decode_shop(batch)
        orders = dec.orders.append_column("lake_site", _site_of(batch, dec.orders.column("line_number")))
        if orders.num_rows:
            self._put("orders", orders)
        items = dec.order_items
        if items.num_rows:
            at = pc.index_in(items.column("order_id"), value_set=orders.column("order_id"))
            for name in ("line_number", "timestamp", "lake_site"):
                items = items.append_column(name, pc.take(orders.column(name), at))
            self._put("order_items", items)
        return orders.num_rows

    def append_tracker(self, batch: pa.RecordBatch, file_id: int) -> None:
        """Snowplow's events of a batch's tracker hits (and its bad events)."""
        from ..snowplow import decode_batch

        events, bad = decode_batch(batch)
        if events is not None:
            t = pa.Table.from_batches([events])
            self._put("events", t.append_column("lake_site", _site_of(batch, t.column("line_number"))))
        self._bad["bad_events"].extend(bad)

    def checkpoint(self, file_id: int, m: FileMark) -> None:
        pass  # a read becomes visible as a whole, when the driver commits it

    def finish(self, file_id: int, m: FileMark) -> None:
        self._open_existing(file_id)
        self.cur.mark = m  # type: ignore[union-attr]

    def commit(self) -> None:
        cur = self.cur
        if cur is None:
            return
        if self.hold and not self._parts:  # (written with the other held reads: write_held)
            self.held.append(_Held(cur, self._rows, self._bad))
            self.held_bytes += self._rows_bytes
        else:
            cur.data = {table: w.close() for table, w in self._parts.items()}
            rollup = None if self._rollup.empty else self._rollup.table(cur.read_id)
            cur.data.update(self._write_rest(cur.read_id, [(cur.read_id, self._bad)], rollup))
        self._bad = {k: [] for k in self._bad}
        self._rows, self._rows_bytes = {}, 0
        self.done.append(cur)
        self.cur = None

    def write_held(self) -> None:
        """Write the held reads' rows together: one data file per table and partition, one
        of bad rows (and bad events), one of rollups; each held read's ``data`` lists them
        all, so they are committed together.  A write that fails (storage refusing) leaves
        nothing: each held read is then an error, with nothing to commit."""
        held, self.held, self.held_bytes = self.held, [], 0
        if not held:
            return
        name, parts, data, rollup = secrets.randbits(63), {}, {}, None
        try:
            for table in dict.fromkeys(t for h in held for t in h.rows):
                rows = pa.concat_tables([x for h in held for x in h.rows.get(table, ())])
                parts[table] = _PartWriters(self.io, self.root, name, table)
                parts[table].write(rows)
                data[table] = parts[table].close()
                if table == "requests":
                    rollup = reads_table(rows)
            data.update(self._write_rest(name, [(h.read.read_id, h.bad) for h in held], rollup))
        except Exception as e:
            for w in parts.values():
                w.discard()
            delete_files(self.io, [f for fs in data.values() for f in fs])
            for h in held:
                _failed(h.read, f"{type(e).__name__}: {e}")
            return
        for h in held:
            h.read.data = data

    def _write_rest(self, name: int, bad: list[tuple[int, dict[str, list[BadRow]]]],
                    rollup: pa.Table | None) -> dict[str, list[str]]:
        """The bad rows (by read id) and the rollups of one read or of held reads, each
        table's in one data file named by ``name``: table -> [its path]."""
        data = {}
        for table in ("bad_rows", "bad_events"):
            rows = [(rid, b) for rid, got in bad for b in got[table]]
            if rows:
                data[table] = [self._write_bad(table, name, rows)]
        if rollup is not None and rollup.num_rows:
            data["rollups"] = [f"{self.root}/rollups/data/{name:016x}.parquet"]
            self._write(rollup, data["rollups"][0])
        return data

    def rollback(self) -> None:
        if self.cur is not None:
            for w in self._parts.values():
                w.discard()
        self._parts = {}
        self.cur = None
        self._bad = {k: [] for k in self._bad}
        self._rows, self._rows_bytes = {}, 0

    def apply_settings(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        return {}

    def error_message(self, e: BaseException) -> str | None:
        return None

    def _write_bad(self, table: str, name: int, rows: list[tuple[int, BadRow]]) -> str:
        """Bad rows (or bad events), each with its read's id, as one data file in today's
        partition."""
        now = int(time.time() * 1e6)
        day = time.strftime("%Y-%m-%d", time.gmtime(now / 1e6))
        t = pa.Table.from_pylist([b.as_dict() for _, b in rows], schema=BAD_ROW_SCHEMA)
        t = t.append_column("ingested_at", pa.array(np.full(t.num_rows, now, np.int64)).cast(_TS))
        path = f"{self.root}/{table}/data/day={day}/{name:016x}.parquet"
        self._write(_conform(t, pa.array([r for r, _ in rows], pa.int64()), schema(table)), path)
        return path

    def _write(self, t: pa.Table, path: str) -> None:
        with self.io.new_output(path).create(overwrite=True) as out:
            pq.write_table(t, out, compression="zstd")


def _failed(read: Pending, message: str) -> None:
    """A held read whose rows could not be written: an error, nothing to commit."""
    path = read.result.path if isinstance(read.result, FileResult) else read.path
    read.mark, read.data = None, {}
    read.result = FileResult(path, "error", message=message)
