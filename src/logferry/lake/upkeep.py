"""``logferry lake status | compact | expire``: what is in the lake, and its upkeep.

Compaction rewrites a partition's data files as one, keeping the rows the manifest counts
and the rows of reads younger than :data:`GRACE_SECONDS` (an ingest between its data and
its manifest commit); the rows of older uncounted reads (a run killed before its manifest
commit, a read another run made redundant) are removed.  Only rows of the read ids it saw
are replaced, so files an ingest adds meanwhile stay.  Expiry deletes the rows of days
before the cutoff (and the rollups of their hours) and the snapshots older than it; the
manifest keeps its rows, so an expired file is not ingested again.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ConfigError, InputError, first_line
from ..values import parse_duration
from .store import delete_files
from .tables import ROW_TABLES, Lake, day_column, manifest_arrow

#: an uncounted read younger than this may be an ingest still committing: left alone
GRACE_SECONDS = 3600


def parse_age(text: str, flag: str = "--older-than") -> dt.timedelta:
    """``--older-than``: a duration (``values.parse_duration``: 400d, 12h, 2w ...)."""
    try:
        age = dt.timedelta(seconds=parse_duration(text))
        dt.datetime.now(dt.UTC) - age  # (an age reaching before the year 1 is no cutoff)
        return age
    except (ValueError, OverflowError):
        raise ConfigError(f"{flag} {text!r}: use a number and a unit (s m h d w), e.g. 400d or 12h") from None


def parse_since_day(text: str) -> int:
    """``lake compact --since``: a date (ISO 8601, e.g. 2026-12-01) or an age (2d, 12h: that
    long ago), as the day (days since 1970, UTC) it falls on."""
    try:
        when = dt.datetime.now(dt.UTC) - parse_age(text)
    except ConfigError:
        try:
            when = dt.datetime.fromisoformat(text.strip())
            when = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        except (ValueError, OverflowError):  # (OverflowError: an offset carries it past the calendar)
            raise ConfigError(f"--since {text!r}: use a date (2026-12-01) or an age (2d, 12h)") from None
    return (when.date() - dt.date(1970, 1, 1)).days


def _counted(lake: Lake, manifest: pa.Table | None = None) -> pa.Table:
    """(read_id, first_line, last_line) of every read the manifest (its Arrow table, when
    read already) counts: its entries' lists of reads, flattened."""
    reads = (manifest_arrow(lake, columns=["reads"]) if manifest is None else manifest)["reads"]
    flat = pc.list_flatten(reads.combine_chunks() if reads.num_chunks else pa.array([], reads.type))
    return pa.Table.from_struct_array(flat).select(["read_id", "first_line", "last_line"]).cast(_READS)


#: a counted read's columns
_READS = pa.schema([("read_id", pa.int64()), ("first_line", pa.int64()), ("last_line", pa.int64())])


def _uncounted(lake: Lake, table: Any, counted: pa.Table, name: str) -> int:
    """How many of ``table``'s rows no counted read holds: DuckDB streams the two columns
    from the data files, as the reports read them (pyiceberg's reader held all 20M rows of
    the bench lake, ~2 GB)."""
    from ..usage.db import duck
    from .query import COUNTED_ON, _source

    con = duck()
    try:
        con.execute("CREATE SCHEMA _lake")  # (where _source copies data files that have delete files)
        q = _source(con, lake, table.scan(selected_fields=("read_id", "line_number")), name)
        con.register("m", counted)
        return con.execute(f"SELECT count(*) - count(m.read_id) FROM {q} q LEFT JOIN m ON {COUNTED_ON}").fetchall()[0][0]
    finally:
        con.close()


def status(lake: Lake) -> dict[str, Any]:
    from .tables import _redact

    w = lake.where  # (the catalog: where the lake's state is, to back up; a URI without its password)
    out: dict[str, Any] = {"location": w.location, "catalog": w.catalog_file or _redact(w.catalog_uri), "tables": {}}
    manifest = manifest_arrow(lake, columns=["lines", "records", "bad_rows", "reads"])
    counted = _counted(lake, manifest)
    orphans = 0
    for name in (*_tables(lake), "files", "rollups"):
        t = lake.table(name)
        files = t.inspect.data_files() if t.current_snapshot() is not None else None
        out["tables"][name] = {
            "snapshots": len(t.metadata.snapshots),
            "data_files": 0 if files is None else files.num_rows,
            "rows": 0 if files is None else int(pc.sum(files.column("record_count")).as_py() or 0),
            "bytes": 0 if files is None else int(pc.sum(files.column("file_size_in_bytes")).as_py() or 0),
        }
        if name in ROW_TABLES and files is not None:
            orphans += _uncounted(lake, t, counted, name)
    out.update(**_stray_totals(strays(lake)))
    out.update(files=manifest.num_rows, orphan_rows=orphans,
               **{k: int(pc.sum(manifest[k]).as_py() or 0) for k in ("lines", "records", "bad_rows")})
    return out


def _young_reads(table: Any, since: float) -> set[int]:
    """Read ids whose data were committed at ``since`` (seconds since 1970) or later."""
    ids: set[int] = set()
    for s in table.metadata.snapshots:
        v = (s.summary.additional_properties if s.summary else {}).get("logferry.read-ids")
        if v and s.timestamp_ms >= since * 1000:
            ids.update(int(x) for x in v.split(","))
    return ids


def _tables(lake: Lake) -> list[str]:
    """The row tables the lake has (one from before a table was added lacks it)."""
    return [n for n in ROW_TABLES if lake.find(n) is not None]


def _partition_filter(part: dict[str, Any], col: str | None) -> Any:
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, IsNull, LessThan

    f = []
    for name, value in part.items():
        if name == "day":
            if value is None:
                f.append(IsNull(col))
                continue
            us = _day_number(value) * 86_400_000_000
            f += [GreaterThanOrEqual(col, us), LessThan(col, us + 86_400_000_000)]
        else:
            f.append(IsNull(name) if value is None else EqualTo(name, value))
    return AlwaysTrue() if not f else f[0] if len(f) == 1 else And(*f)


def _day_number(value: Any) -> int:
    """A day partition's value (a date, or days since 1970) as days since 1970."""
    return (value - dt.date(1970, 1, 1)).days if isinstance(value, dt.date) else int(value)


def _folder(part: dict[str, Any]) -> str:
    """The folders of a partition's data files, as the ingest names them (the site's cut
    to a file name's length: pyiceberg's own names hold the whole value)."""
    from .store import day_folder, partition_folder

    if not part:  # (an unpartitioned table: rollups, files)
        return ""
    day = None if part.get("day") is None else _day_number(part["day"])
    return partition_folder(part["lake_site"], day) if "lake_site" in part else day_folder(day)


#: a data file this large is compacted already: merged with no other, rewritten only to drop rows
COMPACTED_BYTES = 64 << 20
#: partitions whose rewrites are committed together (one snapshot per table and batch)
COMMIT_PARTITIONS = 64
#: rows a rewrite writes at a time, a row group of the new file (its memory: these rows of
#: one partition, not the partition); DuckDB hands them over a quarter at a time
REWRITE_ROWS = 128 * 1024
_SLICE_ROWS = 32 * 1024
#: entries per data file of a compacted manifest, sorted by file_id: an ingest that replaces
#: an entry (a grown file's) deletes it by file_id, and pyiceberg reads and rewrites each data
#: file whose file_id bounds hold it -- one file of these rows, not the whole manifest
#: (100,000 entries in one file: +0.3 CPU s and +200 MiB for every such ingest)
MANIFEST_ROWS = 16 * 1024
#: DuckDB's settings for the manifest's sort: in memory up to 256 MB, the rest spilled to
#: a folder of the rewrite's own (a million entries: 1.4 GB held before).  One thread: on
#: two, DuckDB's sort of these rows failed for memory rather than spill (DuckDB 1.x-2.0)
SORT_SETTINGS = {"threads": 1, "memory_limit": "256MB"}


#: which rows ``q`` a rewrite keeps: a kept read's (``m``), in its line range (none: every line)
_KEPT_ON = ("q.read_id = m.read_id AND (m.first_line IS NULL OR "
            "q.line_number BETWEEN m.first_line AND m.last_line)")
#: which rollup rows a rewrite keeps: a kept read's, for its lines but the last (line_number
#: None) too (query._ROLLUP_COUNTED_ON)
_ROLLUP_KEPT_ON = ("q.read_id = m.read_id AND (m.first_line IS NULL OR q.line_number IS NULL OR "
                   "q.line_number BETWEEN m.first_line AND m.last_line)")


@dataclass
class Rewrite:
    """One partition's data files to rewrite as one, leaving out the rows of old uncounted
    reads: a task, run on a Dask worker or in this process (:func:`rewrite`)."""

    table: str
    part: dict[str, Any]  # the partition (its field names and values)
    tasks: list[Any]  # its planned data files (pyiceberg FileScanTasks, with any delete files)
    out: str  # the new data file's path
    check: bool  # one data file: rewritten only when it holds rows to leave out
    kept_on: str | None = _KEPT_ON  # which rows ``q`` a read ``m`` keeps (None: every row: files)
    chunk_rows: int | None = None  # (the manifest: sorted by file_id, a new file every this many rows)


@dataclass
class Rewritten:
    rw: Rewrite
    data_files: list[Any] = field(default_factory=list)  # the new data files' pyiceberg DataFiles
    outs: list[str] = field(default_factory=list)  # the paths written (none: no row kept, or unchanged)
    rows: int = 0  # rows read
    kept: int = 0
    unchanged: bool = False  # (a single data file with nothing to leave out: not rewritten)
    error: str | None = None  # why it could not be rewritten (nothing of it left: the partition as it was)


@dataclass
class CompactJob:
    """What every rewrite needs (sent to each worker once): the FileIO settings, the
    tables' metadata (schema, name mapping) as planned, and the reads whose rows are kept
    (:func:`_kept_reads`; each rewrite takes those of its rows' read ids)."""

    io_props: dict[str, str]
    warehouse: str
    metadata: dict[str, Any]
    reads: pa.Table  # sorted by read id
    read_ids: np.ndarray  # its read ids (a rewrite finds its reads by binary search)


def compact(lake: Lake, client: Any = None, since_day: int | None = None) -> dict[str, int]:
    """One data file per partition, without the rows of old uncounted reads; the partitions
    rewritten on the Dask ``client``'s workers (None: here), each streamed (bounded memory
    whatever the partition's size), and replaced by their files in batches of
    :data:`COMMIT_PARTITIONS` (only the data files read are replaced: files an ingest adds
    meanwhile stay).  ``since_day`` (days since 1970): only the partitions of that day and
    later, the rows without a time (their day=null partitions) and the tables without days (the
    manifest, the rollups)."""
    from .query import ReadLines
    from .tables import io_properties

    # (young: committed less than GRACE_SECONDS before the manifest was read -- not before
    # each table's plan: an ingest committing meanwhile is not in ``counted``, and the first
    # tables of a large lake can take hours)
    since = time.time() - GRACE_SECONDS
    counted = _counted(lake)
    # (the counted reads by id, for the plans' bounds checks: made once, not per table)
    reads = ReadLines(counted)
    stats = {"partitions": 0, "files_before": 0, "files_after": 0, "orphans_removed": 0}
    failed: list[Rewritten] = []
    # (the manifest and the rollups too: each run adds a data file to them, and every run and
    # report reads them whole -- 60 small files took 0.4-0.6 CPU s to read 60 manifest rows)
    for name in (*_tables(lake), "rollups", "files"):
        t = lake.table(name)
        if t.current_snapshot() is None:
            continue
        plan = _plan(t, name, reads, since_day)
        kept = _kept_reads(counted, sorted(_young_reads(t, since)))
        job = CompactJob(io_properties(), lake.where.warehouse, {name: t.metadata}, kept,
                         kept.column("read_id").to_numpy())
        if client is None:
            done: Generator[Rewritten, None, None] = (rewrite(job, rw) for rw in plan)
        else:
            shared = client.scatter(job, broadcast=True, hash=False)
            done = _results(client, deque(client.submit(rewrite, shared, rw, pure=False) for rw in plan))
        parts: set[tuple[Any, ...]] = set()
        batch: list[Rewritten] = []
        try:
            for r in done:
                if r.error is not None:
                    failed.append(r)
                elif not r.unchanged:
                    batch.append(r)
                if len(batch) >= COMMIT_PARTITIONS:
                    ready, batch = batch, []  # (handed to the commit: kept if its outcome is unknown)
                    _tally(_replace(t, ready), stats, parts)
        except BaseException:  # (a worker lost, an interrupt: the new files no commit names go)
            done.close()
            delete_files(t.io, [p for r in batch for p in r.outs])
            raise
        if batch:
            _tally(_replace(t, batch), stats, parts)
        stats["partitions"] += len(parts)
    if failed:
        f = failed[0]
        raise InputError(f"lake compact: {f.rw.table} partition {_describe(f.rw.part)} left as it is: {f.error}"
                         + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
                         + f"; {stats['partitions']} partitions compacted")
    return stats


def _describe(part: dict[str, Any]) -> str:
    """A partition as ``lake_site=..., day=YYYY-MM-DD`` (a null value: nothing after ``=``)."""
    def value(k: str, v: Any) -> Any:
        if v is None:
            return ""
        return dt.date(1970, 1, 1) + dt.timedelta(days=_day_number(v)) if k == "day" else v

    return ", ".join(f"{k}={value(k, v)}" for k, v in part.items())


def _tally(committed: list[Rewritten], stats: dict[str, int], parts: set[tuple[Any, ...]]) -> None:
    """Count committed rewrites into ``stats`` (and their partitions into ``parts``), so
    that they are let go batch by batch."""
    for r in committed:
        parts.add(tuple(sorted(r.rw.part.items())))
        stats["files_before"] += len(r.rw.tasks)
        stats["files_after"] += len(r.data_files)
        stats["orphans_removed"] += r.rows - r.kept


def _results(client: Any, futures: deque[Any]) -> Generator[Rewritten, None, None]:
    """The rewrites' results in plan order, each future let go once read (its result,
    held by a worker until then, is not kept to the end)."""
    from .ingest import _dask

    try:
        while futures:
            yield _dask(client, futures.popleft().result)
    finally:  # (closed early: the rest not run)
        if futures:
            client.cancel(list(futures))


def _plan(t: Any, name: str, reads: Any, since_day: int | None = None) -> list[Rewrite]:
    """The table's rewrites: in each partition, its small data files (under
    :data:`COMPACTED_BYTES`) together, and each file left alone (a large one, or the one
    small file) whose rows are not all known (from its bounds: :func:`query._all_counted`)
    to count -- only rewritten if it holds rows to drop.  A rewrite holds its data files
    only: the reads it keeps are found by the task (a partition's reads, taken from its
    files' read id bounds here, were the lake's every read for a file of many reads, in
    every task of the plan)."""
    import uuid

    from .query import _all_counted

    kept_on = {"files": None, "rollups": _ROLLUP_KEPT_ON}.get(name, _KEPT_ON)
    ids = {n: t.schema().find_field(n) for n in ("read_id", "line_number")} if kept_on else {}
    parts: dict[tuple[Any, ...], list[Any]] = {}
    col = day_column(name)
    if since_day is not None and col is not None:  # (the day partitions before it: not listed)
        from pyiceberg.expressions import GreaterThanOrEqual, IsNull

        # (and the rows without a time, in their site's day=null partition, of no day: compacted
        # as the manifest is, or a daily --since left it one more small file a run for ever;
        # two scans: pyiceberg's partition evaluator fails on a null day under an Or)
        tasks = [*t.scan(row_filter=GreaterThanOrEqual(col, since_day * 86_400_000_000)).plan_files(),
                 *t.scan(row_filter=IsNull(col)).plan_files()]
        tasks = list({task.file.file_path: task for task in tasks}.values())
    else:
        tasks = t.scan().plan_files()
    if name == "files":
        return _manifest_plan(t, list(tasks))
    for task in tasks:
        parts.setdefault((task.file.spec_id, *task.file.partition), []).append(task)
    plan = []
    for key, tasks in parts.items():
        part = {f.name: v for f, v in zip(t.specs()[key[0]].fields, key[1:], strict=True)}
        small = [x for x in tasks if x.file.file_size_in_bytes < COMPACTED_BYTES]
        merged = small if len(small) > 1 else []
        joined = {id(x) for x in merged}
        units = ([merged] if merged else []) + [[x] for x in tasks if id(x) not in joined]
        for unit in units:
            if len(unit) == 1 and (kept_on is None or _all_counted(unit[0], ids, reads)):
                continue  # (a manifest's file: every row is live)
            out = "/".join(x for x in (t.location().rstrip("/"), "data", _folder(part), f"{uuid.uuid4().hex}.parquet")
                           if x)  # (an unpartitioned table's: in data/)
            plan.append(Rewrite(name, part, unit, out, check=len(unit) == 1, kept_on=kept_on))
    return plan


def _manifest_plan(t: Any, tasks: list[Any]) -> list[Rewrite]:
    """The manifest's rewrite: all its data files as files of :data:`MANIFEST_ROWS`
    entries sorted by file_id, unless it is so already (no file larger, no more files than
    that takes)."""
    import uuid

    rows = sum(x.file.record_count for x in tasks)
    if all(x.file.record_count <= MANIFEST_ROWS for x in tasks) and len(tasks) <= max(1, -(-rows // MANIFEST_ROWS)):
        return []
    out = f"{t.location().rstrip('/')}/data/{uuid.uuid4().hex}.parquet"
    return [Rewrite("files", {}, tasks, out, check=False, kept_on=None, chunk_rows=MANIFEST_ROWS)]


def _kept_reads(counted: pa.Table, young: list[int]) -> pa.Table:
    """The reads whose rows a compaction keeps, as (read_id, first_line, last_line): the
    counted reads in their line ranges, the young reads' every line (null lines:
    :data:`_KEPT_ON`)."""
    young_ids = pa.array(young, pa.int64())
    whole = pa.table({"read_id": young_ids, "first_line": pa.nulls(len(young), pa.int64()),
                      "last_line": pa.nulls(len(young), pa.int64())})
    kept = pa.concat_tables([counted.filter(pc.invert(pc.is_in(counted.column("read_id"), young_ids))), whole])
    return kept.sort_by("read_id").combine_chunks()


def _reads_of(job: CompactJob, ids: list[int]) -> pa.Table:
    """The kept reads (``job.reads``) among ``ids``, by binary search in the sorted read
    ids: a rewrite's cost grows with its own reads, not the lake's."""
    want = np.unique(np.asarray(ids, np.int64))
    lo, hi = np.searchsorted(job.read_ids, want, "left"), np.searchsorted(job.read_ids, want, "right")
    n = hi - lo  # (each id's rows: none, one, or more where the manifest lists a read twice)
    at = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(n.sum())
    return job.reads.take(pa.array(at, pa.int64()))


def rewrite(job: CompactJob, rw: Rewrite) -> Rewritten:
    """A partition's data files rewritten as one (``rw.out``) without the rows of old
    uncounted reads, streamed: DuckDB reads the files (by row group, as the reports do;
    a file with delete files through pyiceberg's reader, which applies them) and hands the
    kept rows over REWRITE_ROWS at a time to the Parquet writer.  A first pass over two
    columns counts the rows and finds the reads; a single file losing nothing, or a
    partition keeping nothing, is not written."""
    from pyiceberg.io import load_file_io

    io, meta = load_file_io(job.io_props, job.warehouse), job.metadata[rw.table]
    got = Rewritten(rw)
    try:
        return _rewrite(job, rw, io, meta, got)
    except Exception as e:  # (a data file unreadable, storage refusing: this partition is left)
        delete_files(io, got.outs)
        return Rewritten(rw, error=f"{type(e).__name__}: {first_line(e)}")
    except BaseException:  # (an interrupt: nothing half-written left)
        delete_files(io, got.outs)
        raise


def _rewrite(job: CompactJob, rw: Rewrite, io: Any, meta: Any, got: Rewritten) -> Rewritten:
    from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow

    from ..usage.db import duck
    from .ranges import worker_cores

    # (with field ids: the manifest and the rollups have no name mapping, pyiceberg wrote their files)
    target = schema_to_pyarrow(meta.schema())
    con = duck()
    spill = None
    try:
        if (cores := worker_cores()) is not None:
            con.execute(f"SET threads = {cores}")
        if rw.chunk_rows:  # (the manifest sorted by file_id: spilled beyond a bound)
            spill = tempfile.mkdtemp(prefix="logferry-sort-")
            for setting, value in SORT_SETTINGS.items():
                con.execute(f"SET {setting} = ?", [value])
            con.execute("SET temp_directory = ?", [spill])
        if rw.kept_on is None:  # (every row kept: only counted)
            got.rows = kept = sum(con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]
                                  for src in _sources(con, job, io, meta, rw.tasks))
        else:
            cols, ids, kept = ("read_id", "line_number"), [], 0
            for src in _sources(con, job, io, meta, rw.tasks, cols):
                # (two aggregates, not one with a correlated EXISTS: DuckDB's would hash every row's key)
                for rid, n in con.execute(f"SELECT read_id, count(*) FROM {src} GROUP BY 1").fetchall():
                    ids.append(rid)
                    got.rows += n
            con.register("m", _reads_of(job, ids))
            for src in _sources(con, job, io, meta, rw.tasks, cols):
                kept += con.execute(f"SELECT count(*) FROM {src} q SEMI JOIN m ON {rw.kept_on}").fetchall()[0][0]
        if rw.check and kept == got.rows:
            got.unchanged = True
            return got
        if kept:
            _write(con, job, io, meta, rw, target, got)
    finally:
        con.close()
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
    got.data_files = [parquet_file_to_data_file(io, meta, p) for p in got.outs]
    return got


def _write(con: Any, job: CompactJob, io: Any, meta: Any, rw: Rewrite, target: pa.Schema, got: Rewritten) -> None:
    """The kept rows of ``rw``'s files streamed to ``rw.out`` in row groups of
    :data:`REWRITE_ROWS` (the manifest: sorted by file_id, to a new file every
    ``rw.chunk_rows``: ``rw.out`` with ``-1``, ``-2``...), each path in ``got.outs`` once begun."""
    most = rw.chunk_rows or 0
    group = min(REWRITE_ROWS, most) if most else REWRITE_ROWS
    out = w = None
    in_file = 0
    try:
        for t in _kept_groups(con, job, io, meta, rw, target, group, got):
            while t.num_rows:
                if w is None or (most and in_file >= most):
                    _close(w, out)
                    path = rw.out if not got.outs else f"{rw.out.removesuffix('.parquet')}-{len(got.outs)}.parquet"
                    got.outs.append(path)
                    out = io.new_output(path).create(overwrite=True)
                    w, in_file = pq.ParquetWriter(out, target, compression="zstd"), 0
                n = min(t.num_rows, most - in_file) if most else t.num_rows
                w.write_table(t.slice(0, n), row_group_size=group)
                in_file += n
                t = t.slice(n)
    finally:
        _close(w, out)


def _close(w: Any, out: Any) -> None:
    if w is not None:
        w.close()
        out.close()


def _kept_groups(con: Any, job: CompactJob, io: Any, meta: Any, rw: Rewrite, target: pa.Schema, group: int,
                 got: Rewritten) -> Iterator[pa.Table]:
    """The kept rows of ``rw``'s files, ``group`` rows at a time (DuckDB hands them over in
    slices; the manifest's in one query over all its files, sorted by file_id)."""
    keep = f" SEMI JOIN m ON {rw.kept_on}" if rw.kept_on else ""
    srcs = list(_sources(con, job, io, meta, rw.tasks))
    queries = ([f"SELECT q.* FROM ({' UNION ALL BY NAME '.join(f'FROM {x}' for x in srcs)}) q{keep} ORDER BY q.file_id"]
               if rw.chunk_rows else [f"SELECT q.* FROM {src} q{keep}" for src in srcs])
    held: list[pa.RecordBatch] = []
    for q in queries:
        for b in con.sql(q).to_arrow_reader(_SLICE_ROWS):
            held.append(_conform(b, target))
            got.kept += b.num_rows
            if sum(h.num_rows for h in held) >= group:
                yield pa.Table.from_batches(held, target)
                held = []
    if held:
        yield pa.Table.from_batches(held, target)


def _sources(con: Any, job: CompactJob, io: Any, meta: Any, tasks: list[Any],
             cols: tuple[str, ...] | None = None) -> Iterator[str]:
    """FROM items (each ``q``) over the rows of ``tasks``' data files, or of their ``cols``:
    one ``read_parquet`` of the files without delete files (where DuckDB reaches their
    storage), then a stream of pyiceberg's reader for each other file."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow

    from .query import filesystems, parquet_source

    plain = [t for t in tasks if not t.delete_files]
    if plain and not filesystems(con, job.io_props, [t.file.file_path for t in plain]):
        plain = []
    if plain:
        yield parquet_source([t.file.file_path.removeprefix("file://") for t in plain])
    read = {id(t) for t in plain}
    for i, task in enumerate(t for t in tasks if id(t) not in read):
        sch = meta.schema() if cols is None else meta.schema().select(*cols)
        arrow = schema_to_pyarrow(sch, include_field_ids=False)
        batches = ArrowScan(meta, io, sch, AlwaysTrue()).to_record_batches([task])
        con.register(f"_rest{i}", pa.RecordBatchReader.from_batches(arrow, (b.cast(arrow) for b in batches)))
        yield f"_rest{i}"


def _conform(b: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """A batch of DuckDB's with the table's columns and types (a column no data file of
    the partition has yet: nulls)."""
    have = set(b.schema.names)
    return pa.RecordBatch.from_arrays(
        [b.column(f.name).cast(f.type) if f.name in have else pa.nulls(b.num_rows, f.type) for f in target],
        schema=target)


def _replace(t: Any, done: list[Rewritten]) -> list[Rewritten]:
    """The rewritten data files replaced by their new ones in one snapshot; when another
    run replaced or deleted one of them meanwhile (a compaction, an expiry), each rewrite
    alone, and one that still conflicts left undone (its new file deleted).  Returns the
    rewrites committed."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    try:
        _overwrite(t, done)
        return done
    except (CommitFailedException, ValidationException):
        t.refresh()
        if len(done) > 1:
            return [r for one in done for r in _replace(t, [one])]
        delete_files(t.io, [p for r in done for p in r.outs])
        return []


def _overwrite(t: Any, done: list[Rewritten]) -> None:
    from pyiceberg.expressions import And, IsNull, Or

    day_col = day_column(done[0].rw.table)
    # The conflict scope: the rewritten files themselves (pyiceberg checks that each file the
    # overwrite deletes is still there, with no delete file added for it). Files another
    # commit adds are no conflict: an ingest's rows are of new reads, and a compaction that
    # rewrote rows of these reads deleted the files named here. So the scope is the
    # partitions' rows without a read id -- none: no data file matches it by its null count
    # -- rather than the rows of the read ids found, which an ingest's file of several
    # random read ids (its bounds spanning them) or any file (over 200 ids) matched: a busy
    # partition then failed every commit of its compaction.  (The manifest has no read id:
    # no scope, any commit meanwhile fails this one -- its commits are never rebased.)
    scope = [And(_partition_filter(r.rw.part, day_col), IsNull("read_id")) for r in done]
    with t.transaction() as tx, tx.update_snapshot().overwrite() as ov:
        if done[0].rw.kept_on is not None:
            ov.delete_by_predicate(scope[0] if len(scope) == 1 else Or(*scope))
        for r in done:
            for task in r.rw.tasks:
                ov.delete_data_file(task.file)
            for f in r.data_files:
                ov.append_data_file(f)


#: snapshots a lake keeps at least (a reader that began on one reads its files; compaction
#: reads the young reads' ids from the last hour's): ``lake expire``'s default retention
#: when its age is longer
KEEP_SNAPSHOTS = dt.timedelta(days=1)


#: a file under a table's location that no snapshot holds is a stray once it is this old
#: (``lake expire``'s default): a run writes its data files before it commits them, and
#: a compaction its rewrites
STRAY_AGE = dt.timedelta(days=3)
#: the least ``--strays-older-than``: no run takes a day between writing a file and committing it
STRAY_MIN = dt.timedelta(days=1)


def expire(lake: Lake, age: dt.timedelta, keep: dt.timedelta | None = None,
           strays_age: dt.timedelta = STRAY_AGE) -> dict[str, Any]:
    """Delete the days before now - ``age`` (the rollups' hours too, so they keep agreeing
    with the rows), then the snapshots older than ``keep`` (default: the shorter of ``age``
    and :data:`KEEP_SNAPSHOTS`) and the files only they held -- the expired days' data
    files, those a compaction replaced -- and the strays older than ``strays_age`` (files
    no snapshot holds: :func:`strays`); ``deleted``: rows per table, ``files``: files
    deleted with the snapshots, ``strays``/``stray_bytes``: strays deleted."""
    from pyiceberg.expressions import LessThan

    grace = dt.timedelta(seconds=GRACE_SECONDS)  # (compaction tells young reads by the last hour's snapshots)
    if keep is not None and keep < grace:
        raise ConfigError(f"--keep-snapshots: at least {GRACE_SECONDS // 60} minutes (lake compact tells "
                          "the reads of an ingest still committing by the last hour's snapshots)")
    if strays_age < STRAY_MIN:
        raise ConfigError(f"--strays-older-than: at least {STRAY_MIN.days} day (a run writes its data files "
                          "before it commits them)")
    now = dt.datetime.now(dt.UTC)
    cutoff = now - age
    snap_cutoff = now - (max(min(age, KEEP_SNAPSHOTS), grace) if keep is None else keep)
    day = int(dt.datetime.combine(cutoff.date(), dt.time(), dt.UTC).timestamp() * 1e6)
    expired, deleted, files = 0, {}, 0
    for name, col in [(n, day_column(n)) for n in _tables(lake)] + [("rollups", "hour")]:
        t = lake.table(name)
        if (before := t.current_snapshot()) is not None:
            with warnings.catch_warnings(), t.transaction() as tx:
                warnings.simplefilter("ignore")  # ("did not match any records": nothing that old)
                tx.delete(LessThan(col, day))
            deleted[name] = _deleted_records(lake.table(name), before.snapshot_id)
    caches: dict[str, dict[str, set[str]]] = {}
    for name in (*_tables(lake), "files", "rollups"):
        t = lake.table(name)
        cur = t.current_snapshot()
        old = [s for s in t.metadata.snapshots
               if s.timestamp_ms < snap_cutoff.timestamp() * 1000 and (cur is None or s.snapshot_id != cur.snapshot_id)]
        if old:
            kept = [s for s in t.metadata.snapshots if s not in old]
            cache = caches.setdefault(name, {})
            gone = _files_of(t, old, cache) - _files_of(t, kept, cache)
            t.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
            expired += len(old)
            delete_files(t.io, sorted(gone))  # (after the commit: no snapshot names them)
            files += len(gone)
    found = strays(lake, strays_age, caches)
    for name, paths in found.items():
        delete_files(lake.table(name).io, [p for p, _ in paths])
    return {"expired": expired, "deleted": deleted, "files": files, **_stray_totals(found)}


def strays(lake: Lake, older: dt.timedelta | None = None, caches: dict[str, dict[str, set[str]]] | None = None
           ) -> dict[str, list[tuple[str, int]]]:
    """The files under each table's location that no snapshot holds (data, delete and
    manifest files, manifest lists) and that are neither its metadata nor in its metadata
    log, ``older`` than that (None: any age), by table: (path, bytes) -- a killed run's or
    a failed compaction's data files, metadata files pyiceberg dropped from the log.  One
    listing of each table's folder, and of the folder the ingest writes its data files to
    where that is another (Glue places a table at ``WAREHOUSE/logferry.db/NAME``); each
    manifest read once (``caches``: by table)."""
    from .tables import NAMESPACE

    found: dict[str, list[tuple[str, int]]] = {}
    before = None if older is None else time.time() - older.total_seconds()
    place = _placer()
    # (the SQLite catalog, with its journal, may be kept in a table's folder: --catalog)
    catalog = "\0" if lake.where.catalog_file is None else place(os.path.abspath(lake.where.catalog_file))
    for name in (*_tables(lake), "files", "rollups"):
        t = lake.table(name)
        meta = t.metadata
        held = _files_of(t, meta.snapshots, ({} if caches is None else caches).setdefault(name, {}))
        held |= {t.metadata_location, *(m.metadata_file for m in meta.metadata_log)}
        held = {place(p) for p in held}
        roots = {place(f"{r.rstrip('/')}/"): r.rstrip("/")
                 for r in (t.location(), f"{lake.where.warehouse}/{NAMESPACE}/{name}")}
        out = list({p: (p, n) for root in roots.values() for p, n, mtime in _listing(root, lake.props)
                    if (at := place(p)) not in held and not at.startswith(catalog)
                    and (before is None or mtime < before)}.values())
        if out:
            found[name] = out
    return found


def _stray_totals(found: dict[str, list[tuple[str, int]]]) -> dict[str, int]:
    """``strays`` and ``stray_bytes`` of :func:`strays`' files."""
    return {"strays": sum(len(v) for v in found.values()), "stray_bytes": sum(n for v in found.values() for _, n in v)}


def _placer() -> Callable[[str], str]:
    """Where a file is, to compare a listed path with those the snapshots hold: a URL as
    written; a local path (with ``file://`` or not) under its folder's real path -- a lake
    is one by its real path (``tables._same_location``): ingested through a symlink to its
    folder, its data files are recorded under the symlink's path, its tables' folders under
    the real one (each folder resolved once)."""
    real = functools.cache(os.path.realpath)

    def place(path: str) -> str:
        if "://" in path and not path.startswith("file://"):
            return path
        folder, _, name = path.removeprefix("file://").rpartition("/")
        return f"{real(folder)}/{name}"

    return place


def _listing(location: str, props: dict[str, str]) -> Iterator[tuple[str, int, float]]:
    """Every file under ``location`` (a local folder or an object store URL, with the lake's
    FileIO settings ``props``): (its path as pyiceberg writes it, bytes, modification time
    in seconds since 1970)."""
    from fsspec.implementations.local import LocalFileSystem

    scheme, sep, rest = location.partition("://")
    if not sep or scheme == "file":
        fs, root, scheme = LocalFileSystem(), rest if sep else location, "file"
    else:
        from pyiceberg.io.fsspec import SCHEME_TO_FS

        fs, root = SCHEME_TO_FS[scheme](props), rest
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return
    finally:  # (fsspec shares the instance, and its listings, with DuckDB's reads of the lake)
        fs.invalidate_cache()
    for path, info in found.items():
        if info.get("type") == "file" and not path.endswith("/"):  # (not an object store's folder marker)
            yield f"{scheme}://{path}", int(info.get("size") or 0), _modified(info)


def _modified(info: dict[str, Any]) -> float:
    """A listed file's modification time (local: ``mtime``; S3: ``LastModified``; GCS:
    ``updated``); one that says none counts as new (it is never a stray)."""
    for key in ("mtime", "LastModified", "updated", "timeCreated"):
        v = info.get(key)
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, dt.datetime):
            return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()
        if isinstance(v, str):
            try:
                return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return time.time()


def _files_of(t: Any, snapshots: list[Any], cache: dict[str, set[str]]) -> set[str]:
    """The files ``snapshots`` hold: their data and delete files, manifests and manifest
    lists (each manifest read once: ``cache``)."""
    out: set[str] = set()
    for s in snapshots:
        out.add(s.manifest_list)
        for m in s.manifests(t.io):
            if m.manifest_path not in cache:
                cache[m.manifest_path] = {e.data_file.file_path for e in m.fetch_manifest_entry(t.io, discard_deleted=True)}
            out.add(m.manifest_path)
            out |= cache[m.manifest_path]
    return out


def _deleted_records(t: Any, since: int) -> int:
    """The rows the snapshots after ``since`` (a delete's) took out of table ``t``."""
    n = 0
    for s in reversed(t.metadata.snapshots):
        if s.snapshot_id == since:
            break
        got = s.summary.get if s.summary is not None else {}.get
        n += int(got("deleted-records") or 0) - int(got("added-records") or 0)
    return n
