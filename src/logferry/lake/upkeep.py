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
import time
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..values import parse_duration
from .commit import manifest_rows
from .tables import ROW_TABLES, Lake, day_column

#: an uncounted read younger than this may be an ingest still committing: left alone
GRACE_SECONDS = 3600


def parse_age(text: str) -> dt.timedelta:
    """``--older-than``: a duration (``values.parse_duration``: 400d, 12h, 2w ...)."""
    try:
        age = dt.timedelta(seconds=parse_duration(text))
        dt.datetime.now(dt.UTC) - age  # (an age reaching before the year 1 is no cutoff)
        return age
    except (ValueError, OverflowError):
        raise ConfigError(f"--older-than {text!r}: use a number and a unit (s m h d w), e.g. 400d or 12h") from None


def _counted(lake: Lake, rows: list[dict[str, Any]] | None = None) -> pa.Table:
    """(read_id, first_line, last_line) of every read the manifest (its ``rows``, when
    read already) counts."""
    reads = [r for row in (manifest_rows(lake) if rows is None else rows) for r in row["reads"] or []]
    return pa.Table.from_pylist(reads, pa.schema([("read_id", pa.int64()), ("first_line", pa.int64()),
                                                  ("last_line", pa.int64())]))


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


def _is_counted(rows: pa.Table, counted: pa.Table) -> pa.Array:
    """Which of ``rows`` (read_id, line_number) a counted read holds."""
    from ..usage.db import duck
    from ..usage.reports import _arrow
    from .query import COUNTED_ON

    con = duck()
    con.register("q", rows.select(["read_id", "line_number"]).append_column(
        "_i", pa.array(np.arange(rows.num_rows, dtype=np.int64))))
    con.register("m", counted)
    hit = _arrow(con.sql(f"SELECT bool_or(m.read_id IS NOT NULL) AS hit FROM q LEFT JOIN m ON {COUNTED_ON} "
                         "GROUP BY q._i ORDER BY q._i"))
    con.close()
    return hit.column("hit").combine_chunks()


def status(lake: Lake) -> dict[str, Any]:
    from .tables import _redact

    w = lake.where  # (the catalog: where the lake's state is, to back up; a URI without its password)
    out: dict[str, Any] = {"location": w.location, "catalog": w.catalog_file or _redact(w.catalog_uri), "tables": {}}
    manifest = manifest_rows(lake)
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
    out.update(files=len(manifest), orphan_rows=orphans,
               **{k: sum(r[k] for r in manifest) for k in ("lines", "records", "bad_rows")})
    return out


def _young_reads(table: Any) -> set[int]:
    """Read ids whose data were committed less than GRACE_SECONDS ago."""
    since = (time.time() - GRACE_SECONDS) * 1000
    ids: set[int] = set()
    for s in table.metadata.snapshots:
        v = (s.summary.additional_properties if s.summary else {}).get("logferry.read-ids")
        if v and s.timestamp_ms >= since:
            ids.update(int(x) for x in v.split(","))
    return ids


def compact(lake: Lake) -> dict[str, int]:
    """One data file per partition, without the rows of old uncounted reads."""
    counted = _counted(lake)
    stats = {"partitions": 0, "files_before": 0, "files_after": 0, "orphans_removed": 0}
    for name in _tables(lake):
        t = lake.table(name)
        if t.current_snapshot() is None:
            continue
        for part in t.inspect.partitions().column("partition").to_pylist():
            _compact_partition(t, part, day_column(name), counted, stats)
    return stats


def _tables(lake: Lake) -> list[str]:
    """The row tables the lake has (one from before a table was added lacks it)."""
    return [n for n in ROW_TABLES if lake.find(n) is not None]


def _partition_filter(part: dict[str, Any], col: str | None) -> Any:
    from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, IsNull, LessThan

    f = []
    for field, value in part.items():
        if field == "day":
            if value is None:
                f.append(IsNull(col))
                continue
            us = _day_number(value) * 86_400_000_000
            f += [GreaterThanOrEqual(col, us), LessThan(col, us + 86_400_000_000)]
        else:
            f.append(IsNull(field) if value is None else EqualTo(field, value))
    return f[0] if len(f) == 1 else And(*f)


def _day_number(value: Any) -> int:
    """A day partition's value (a date, or days since 1970) as days since 1970."""
    return (value - dt.date(1970, 1, 1)).days if isinstance(value, dt.date) else int(value)


def _folder(part: dict[str, Any]) -> str:
    """The folders of a partition's data files, as the ingest names them (the site's cut
    to a file name's length: pyiceberg's own names hold the whole value)."""
    from .store import day_folder, partition_folder

    day = None if part.get("day") is None else _day_number(part["day"])
    return partition_folder(part["lake_site"], day) if "lake_site" in part else day_folder(day)


def _compact_partition(t: Any, part: dict[str, Any], day_col: str | None, counted: pa.Table,
                       stats: dict[str, int]) -> None:
    import uuid

    import pyarrow.parquet as pq
    from pyiceberg.expressions import And, In

    where = _partition_filter(part, day_col)
    # (the young reads of the snapshot scanned: a commit rebased onto an ingest's data files
    # leaves ``t`` holding them, before that ingest's manifest commit)
    young = _young_reads(t)
    scan = t.scan(row_filter=where)
    tasks = list(scan.plan_files())
    rows = scan.to_arrow()
    keep = pc.or_(_is_counted(rows, counted), pc.is_in(rows.column("read_id"), pa.array(sorted(young), pa.int64())))
    removed = rows.num_rows - int(pc.sum(keep).as_py() or 0)
    if len(tasks) <= 1 and not removed or not rows.num_rows:
        return
    ids = pc.unique(rows.column("read_id")).to_pylist()
    kept = rows.filter(keep)
    path = f"{t.location().rstrip('/')}/data/{_folder(part)}/{uuid.uuid4().hex}.parquet"
    if kept.num_rows:
        with t.io.new_output(path).create() as out:
            pq.write_table(kept, out, compression="zstd")
    with warnings.catch_warnings(), t.transaction() as tx:
        warnings.simplefilter("ignore")  # ("did not match any records": a partition of old uncounted rows only)
        tx.delete(And(where, In("read_id", ids)))
        if kept.num_rows:
            tx.add_files([path], check_duplicate_files=False)
    stats["partitions"] += 1
    stats["files_before"] += len(tasks)
    stats["files_after"] += 1
    stats["orphans_removed"] += removed


def expire(lake: Lake, age: dt.timedelta) -> dict[str, Any]:
    """Delete the days before now - ``age`` (the rollups' hours too, so they keep agreeing
    with the rows) and the snapshots older than that; ``deleted``: rows per table."""
    from pyiceberg.expressions import LessThan

    cutoff = dt.datetime.now(dt.UTC) - age
    day = int(dt.datetime.combine(cutoff.date(), dt.time(), dt.UTC).timestamp() * 1e6)
    expired, deleted = 0, {}
    for name, col in [(n, day_column(n)) for n in _tables(lake)] + [("rollups", "hour")]:
        t = lake.table(name)
        if (before := t.current_snapshot()) is not None:
            with warnings.catch_warnings(), t.transaction() as tx:
                warnings.simplefilter("ignore")  # ("did not match any records": nothing that old)
                tx.delete(LessThan(col, day))
            deleted[name] = _deleted_records(lake.table(name), before.snapshot_id)
    for name in (*_tables(lake), "files", "rollups"):
        t = lake.table(name)
        cur = t.current_snapshot()
        old = [s.snapshot_id for s in t.metadata.snapshots
               if s.timestamp_ms < cutoff.timestamp() * 1000 and (cur is None or s.snapshot_id != cur.snapshot_id)]
        if old:
            t.maintenance.expire_snapshots().by_ids(old).commit()
            expired += len(old)
    return {"expired": expired, "deleted": deleted}


def _deleted_records(t: Any, since: int) -> int:
    """The rows the snapshots after ``since`` (a delete's) took out of table ``t``."""
    n = 0
    for s in reversed(t.metadata.snapshots):
        if s.snapshot_id == since:
            break
        got = s.summary.get if s.summary is not None else {}.get
        n += int(got("deleted-records") or 0) - int(got("added-records") or 0)
    return n
