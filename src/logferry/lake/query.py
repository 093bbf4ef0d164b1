"""A DuckDB connection over the lake's last committed snapshot: the usage database's own
tables (``files``, ``requests``, ``bad_rows``, and empty shop tables), so every report and
``sql`` query runs on it unchanged.

The manifest's reads are read first (into ``_lake.reads``); they say which rows count (a
read's rows in its line range), so rows committed after them -- an ingest still committing,
a run killed before its manifest commit -- are not seen.  ``files`` is a view of the
manifest's data files: a query reads the columns it names (a lake of a year of small log
files registers millions; a site's report reads their format, lines and counts only).

The other tables are views that read the data files in place: pyiceberg plans the scan
(``requests`` pruned to ``site`` -- the partition site, or a host -- and ``since``/
``until``, the day partitions and the files' column bounds) and DuckDB reads the planned
Parquet files with ``read_parquet``, joined to the counted reads.  Files in object storage
(s3://, gs://) are read through fsspec (s3fs, gcsfs) with the lake's FileIO settings,
registered with DuckDB (its own httpfs extension is not needed).  A scan with delete files
(written by another engine in merge-on-read mode; logferry and pyiceberg write
copy-on-write) is copied through pyiceberg's reader, which applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from .tables import Lake

if TYPE_CHECKING:
    import duckdb

#: which rows ``q`` of a table's data files count: a counted read's (``m``), in its line range
COUNTED_ON = "q.read_id = m.read_id AND q.line_number BETWEEN m.first_line AND m.last_line"
_COUNTED = f"JOIN _lake.reads m ON {COUNTED_ON}"
#: which rollup rows ``q`` count: a counted read's, for its lines but the last (line_number
#: None) or for that last line while the read's range still holds it
_ROLLUP_COUNTED_ON = ("q.read_id = m.read_id AND (q.line_number IS NULL OR "
                      "q.line_number BETWEEN m.first_line AND m.last_line)")
#: the requests scan's filters (one row, set with parameters): what pyiceberg's row filter keeps
_PRUNED = ("CROSS JOIN _lake.filter f WHERE (f.site IS NULL OR q.lake_site = f.site OR q.host = f.site) "
           "AND (f.since IS NULL OR q.\"timestamp\" >= f.since) AND (f.until IS NULL OR q.\"timestamp\" < f.until)")


@dataclass
class LakeScan:
    """What a DuckDB connection over the lake's rows is made of, planned where the catalog
    is: each table's data files to read in place (the manifest's ``files``; ``requests``
    pruned to the filters), the filters and, for a site, the span of every site.  :func:`open_scan` opens
    it here or on a Dask worker, which needs only the data files' storage (``props``: the
    FileIO settings); the data files that have delete files, or that DuckDB cannot reach
    (``copied``: a table's pyiceberg scan and tasks), are read through pyiceberg, here only."""

    props: dict[str, str]
    site: str | None = None
    since: str | None = None
    until: str | None = None
    tables: dict[str, list[str]] = field(default_factory=dict)
    copied: dict[str, tuple[Any, list[Any]]] = field(default_factory=dict)
    snowplow: list[str] = field(default_factory=list)  # (Snowplow's tables the lake has rows of)
    span: tuple[Any, Any] | None = None


def connect_lake(lake: Lake, params: Any = None, *, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database over the lake's rows for the report ``params``'
    filters (None: every row); pruned to a site, ``params.span`` gets the whole span."""
    lake = lake.reader()  # (each table loaded once, at the snapshot first seen)
    scan = plan_scan(lake, params)
    con = open_scan(scan, lake, memory_limit=memory_limit)
    if params is not None and params.site is not None:
        params.span = scan.span = _span(con, lake, _span_scan(lake, scan))
    return con


def plan_scan(lake: Lake, params: Any = None, manifest: LakeScan | None = None) -> LakeScan:
    """The :class:`LakeScan` of ``params``' filters (the manifest's data files those of
    ``manifest``, when planned already): pyiceberg plans each table's scan, ``requests``
    pruned to the site (the partition site, or a host) and ``since``/``until`` (the day
    partitions and the files' column bounds)."""
    site, since, until = (params.site, params.since, params.until) if params is not None else (None,) * 3
    prune = _prune(site, since, until)  # (--since/--until checked here)
    scan = LakeScan(lake.props, site, *(None if v is None else str(v) for v in (since, until)))
    manifest = plan_manifest(lake) if manifest is None else manifest
    scan.tables.update(manifest.tables)
    scan.copied.update(manifest.copied)
    _plan_table(scan, "requests", lake.table("requests").scan(row_filter=prune))
    for name in ("bad_rows", "orders", "order_items", "events", "bad_events"):
        table = lake.find(name)
        if table is None:  # (a lake from before the table)
            continue
        if _plan_table(scan, name, table.scan()) and name in _SNOWPLOW:
            scan.snowplow.append(name)
        elif name in _SNOWPLOW:  # (the database creates Snowplow's tables with its first event)
            del scan.tables[name]
    return scan


def _plan_table(scan: LakeScan, name: str, table_scan: Any) -> list[Any]:
    """A table's planned data files into ``scan``: read in place, or copied (those with
    delete files, or all where no fsspec file system reaches the storage)."""
    tasks = list(table_scan.plan_files())
    scan.tables[name], copied = _split(tasks, scan.props)
    if copied:
        scan.copied[name] = (table_scan, copied)
    return tasks


def _split(tasks: list[Any], props: dict[str, str]) -> tuple[list[str], list[Any]]:
    """The paths of the data files DuckDB reads in place, and the tasks copied through
    pyiceberg's reader: those with delete files, or all where no fsspec file system (of
    the FileIO settings ``props``) reaches their storage."""
    copied = [t for t in tasks if t.delete_files] if filesystems(None, props, [t.file.file_path for t in tasks]) \
        else tasks
    gone = {id(t) for t in copied}
    return [t.file.file_path.removeprefix("file://") for t in tasks if id(t) not in gone], copied


def parquet_source(paths: list[str]) -> str:
    """A FROM item reading the Parquet data files ``paths`` in place.  No Hive
    partitioning: the data files' folders are named site=.../day=..., and DuckDB would take
    a row's site from its folder -- the partition site, the host where a row has no site --
    instead of the row's own column."""
    import duckdb

    return f"read_parquet({duckdb.ConstantExpression(paths)}, union_by_name = true, hive_partitioning = false)"


def _from(con: duckdb.DuckDBPyConnection, name: str, paths: list[str], copied: tuple[Any, list[Any]] | None) -> str:
    """A FROM item over a table's rows: its ``paths`` read in place, and the ``copied``
    (pyiceberg scan, tasks) through pyiceberg's reader into ``_lake.NAME`` (none there:
    an empty table of the scan's columns)."""
    if copied is None:
        return parquet_source(paths)
    _copy(con, *copied, f"_lake.{name}")
    return f"(SELECT * FROM {parquet_source(paths)} UNION ALL BY NAME FROM _lake.{name})" if paths else f"_lake.{name}"


def open_scan(scan: LakeScan, lake: Lake | None = None, *, memory_limit: str | None = None
              ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database with the usage database's tables over the rows of
    ``scan`` (its copied data files read through ``lake``'s pyiceberg: where it is only)."""
    from ..usage.db import duck, migrate

    con = duck()
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET TimeZone = 'UTC'")
    # every report query reads the same data files again: their Parquet footers are parsed
    # once per connection, not once per query (a site's report: 15% less CPU). Data files
    # never change in place, and the cache goes with the connection's database.
    con.execute("SET parquet_metadata_cache = true")
    migrate(con)
    con.execute("CREATE SCHEMA _lake")
    con.execute("CREATE TABLE _lake.filter AS SELECT CAST(? AS VARCHAR) AS site, CAST(? AS TIMESTAMPTZ) "
                "AS since, CAST(? AS TIMESTAMPTZ) AS until", [scan.site, scan.since, scan.until])
    if not filesystems(con, scan.props, [p for paths in scan.tables.values() for p in paths]):
        raise ConfigError("the lake's data files: no file system here reaches their storage")
    _manifest(con, scan)
    for name, paths in scan.tables.items():
        if name == "files":
            continue
        if name in scan.snowplow:
            con.register("_lake_empty", _SNOWPLOW[name]().empty_table())
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _lake_empty")
            con.unregister("_lake_empty")
        if not paths and name not in scan.copied:
            continue  # (no data file: the database's empty table)
        if name in scan.copied and lake is None:
            raise ValueError("a LakeScan with copied data files opens where its lake is")
        src = _from(con, name, paths, scan.copied.get(name))
        _view(con, name, f"{src} q {_COUNTED}" + (f" {_PRUNED}" if name == "requests" else ""))
    return con


def _span_scan(lake: Lake, scan: LakeScan) -> Any:
    """The scan of every site's requests in the span's since/until (their timestamps)."""
    return lake.table("requests").scan(row_filter=_prune(None, scan.since, scan.until),
                                       selected_fields=("timestamp", "read_id", "line_number"))


def plan_manifest(lake: Lake) -> LakeScan:
    """A scan of the manifest alone (its data files planned once for many sites' scans)."""
    scan = LakeScan(lake.props)
    _plan_table(scan, "files", lake.table("files").scan())
    return scan


def sites_and_span(lake: Lake, params: Any, manifest: LakeScan) -> tuple[list[str], tuple[Any, Any] | None]:
    """Every site the lake counts (:func:`counted_sites`) and the span :func:`connect_lake`
    gives a site's report (every site's rows in since/until; None without a site), from one
    connection over the ``manifest`` (:func:`plan_manifest`): once for many sites."""
    scan = LakeScan(lake.props, None, *(None if v is None else str(v) for v in (params.since, params.until)),
                    tables=dict(manifest.tables), copied=dict(manifest.copied))
    con = open_scan(scan, lake)
    try:
        sites = counted_sites(con, lake)
        return sites, (_span(con, lake, _span_scan(lake, scan)) if sites else None)
    finally:
        con.close()


def _events_schema() -> pa.Schema:
    from ..snowplow import EVENTS_SCHEMA

    return EVENTS_SCHEMA.append(pa.field("file_id", pa.int64()))


def _bad_events_schema() -> pa.Schema:
    from ..reader import BAD_ROW_SCHEMA

    return BAD_ROW_SCHEMA.append(pa.field("file_id", pa.int64()))


#: Snowplow's tables as logferry.snowplow.ingest_hook creates them in the usage database
_SNOWPLOW = {"events": _events_schema, "bad_events": _bad_events_schema}


def _manifest(con: duckdb.DuckDBPyConnection, scan: LakeScan) -> None:
    """The manifest's reads into ``_lake.reads`` (read once: every query joins them), and
    ``files`` a view of its data files (no data file: the database's empty table)."""
    paths = scan.tables.get("files", [])
    if not paths and "files" not in scan.copied:
        con.execute("CREATE TABLE _lake.reads (file_id BIGINT, read_id BIGINT, first_line BIGINT, last_line BIGINT)")
        return
    src = _from(con, "files", paths, scan.copied.get("files"))
    con.execute("CREATE TABLE _lake.reads AS SELECT file_id, r.read_id, r.first_line, r.last_line "
                f"FROM (SELECT file_id, unnest(reads) AS r FROM {src} q)")
    _view(con, "files", f"{src} q", own_ids=True)


def _view(con: duckdb.DuckDBPyConnection, table: str, source: str, own_ids: bool = False) -> None:
    """Replace the usage database's ``table`` by a view of ``source`` (``q``: the data
    files' rows, ``m``: their read; ``own_ids``: the file_id is the rows' own, no read
    joined) with the table's columns and types."""
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                       [table]).fetchall()
    # (a column the data files do not have -- written before it was added, and not one of
    # them since: null, as pyiceberg reads it)
    have = {r[0] for r in con.execute(f"DESCRIBE SELECT q.* FROM {source}").fetchall()}
    sel = ", ".join(f'CAST({"m" if n == "file_id" and not own_ids else "q"}."{n}" AS {t}) AS "{n}"'
                    if n == "file_id" or n in have
                    else f'CAST(NULL AS {t}) AS "{n}"' for n, t in cols)
    con.execute(f"DROP TABLE {table}")
    con.execute(f"CREATE VIEW {table} AS SELECT {sel} FROM {source}")


def _source(con: duckdb.DuckDBPyConnection, lake: Lake, scan: Any, name: str, tasks: list[Any] | None = None) -> str:
    """A FROM item with ``scan``'s rows (of its planned ``tasks``, when planned already):
    the data files read in place, those :func:`_split` copies through pyiceberg's reader,
    which applies their deletes (none at all: an empty table)."""
    tasks = list(scan.plan_files()) if tasks is None else tasks
    paths, copied = _split(tasks, lake.props)
    filesystems(con, lake.props, paths)
    return _from(con, name, paths, (scan, copied) if copied or not paths else None)


def _copy(con: duckdb.DuckDBPyConnection, scan: Any, tasks: list[Any], table: str) -> None:
    """``tasks``' rows (their deletes applied) into ``table``, through pyiceberg's reader."""
    from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow

    schema = schema_to_pyarrow(scan.projection())
    batches = ArrowScan(scan.table_metadata, scan.io, scan.projection(), scan.row_filter,
                        scan.case_sensitive).to_record_batches(tasks)
    con.register("_lake_scan", pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in batches)))
    try:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM _lake_scan")
    finally:
        con.unregister("_lake_scan")


def filesystems(con: duckdb.DuckDBPyConnection | None, props: dict[str, str], paths: list[str]) -> bool:
    """Register with DuckDB (``con``; None: only say whether there are) the fsspec file
    systems (pyiceberg's, with the lake's FileIO settings ``props``) of the ``paths`` in
    object storage; False where there is none."""
    schemes = {p.split("://", 1)[0] for p in paths if "://" in p} - {"file"}
    if not schemes:
        return True
    try:
        from pyiceberg.io.fsspec import SCHEME_TO_FS
    except ImportError:  # pragma: no cover - fsspec comes with the s3/gcs extras
        return False
    if not schemes <= SCHEME_TO_FS.keys():
        return False
    have = set() if con is None else set(con.list_filesystems())
    for scheme in schemes:
        fs = SCHEME_TO_FS[scheme](props)
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        if scheme not in protocols:
            return False
        if not protocols & have and con is not None:
            con.register_filesystem(fs)
            have |= protocols
    return True


def _span(con: duckdb.DuckDBPyConnection, lake: Lake, scan: Any) -> tuple[Any, Any]:
    """The span of every site's counted rows in since/until (SPAN_SQL's), reading as little
    as it can: the timestamp bounds of the data files whose rows all count
    (:func:`_counted_whole`) and lie wholly in since/until; of the other files, the counted
    rows of those whose bounds reach beyond the span found so far (a file within it cannot
    change it): first the file reaching earliest and the one reaching latest, then the
    files still beyond."""
    from ..usage.reports import SPAN_SQL, _arrow

    for name in ("since", "until"):
        con.execute(f"SET VARIABLE {name} = (SELECT {name} FROM _lake.filter)")
    window = con.execute("SELECT epoch_us(since), epoch_us(until) FROM _lake.filter").fetchall()[0]
    ids = {n: scan.table_metadata.schema().find_field(n) for n in ("timestamp", "read_id", "line_number")}
    planned = [(t, _bounds(t, ids["timestamp"], window)) for t in scan.plan_files()]
    one = {id(t): _one_read(t, ids) for t, b in planned if b is not None and b != () and b[2]}
    # (the reads of those files only: a lake of many small files holds millions)
    reads = ReadLines(_arrow(con.sql(
        "SELECT read_id, first_line, last_line FROM _lake.reads WHERE read_id IN (SELECT unnest(CAST(? AS BIGINT[])))",
        params=[sorted({o[0] for o in one.values() if o is not None})])))
    span: list[int] = []  # epoch microseconds of counted rows in since/until
    rest: list[tuple[Any, tuple[int, int, bool] | None]] = []  # (file, its bounds) to read if need be
    for t, b in planned:
        if _counted_whole(one.get(id(t)), reads):
            span += b[:2]
        elif b != ():
            rest.append((t, b))
    known = [(t, b) for t, b in rest if b is not None]
    ends = {id(t): t for t, _b in (min(known, key=lambda x: x[1][0]), max(known, key=lambda x: x[1][1]))} \
        if known else {}
    for i, pick in enumerate((lambda t: id(t) in ends, lambda t: id(t) not in ends)):
        tasks = [t for t in _beyond(rest, span) if pick(t)]
        if tasks:
            span += _counted_span(con, lake, scan, tasks, f"span{i}")
    table = "(SELECT make_timestamp(x)::TIMESTAMPTZ AS \"timestamp\" FROM unnest(CAST(? AS BIGINT[])) AS b(x))"
    return con.execute(SPAN_SQL.format(table=table), [span]).fetchall()[0]


def _beyond(rest: list[tuple[Any, Any]], span: list[int]) -> list[Any]:
    """The files of ``rest`` whose bounds reach beyond ``span`` (or are not known)."""
    lo, hi = (min(span), max(span)) if span else (None, None)
    return [t for t, b in rest if b is None or lo is None or b[0] < lo or b[1] > hi]


def _counted_span(con: duckdb.DuckDBPyConnection, lake: Lake, scan: Any, tasks: list[Any], name: str) -> list[int]:
    """The epoch microseconds of the first and last counted rows in since/until of the
    ``tasks``' data files (none: [])."""
    src = _source(con, lake, scan, name, tasks)
    row = con.execute(f"SELECT epoch_us(min(t)), epoch_us(max(t)) FROM (SELECT q.\"timestamp\" AS t FROM {src} q "
                      f"{_COUNTED}) CROSS JOIN _lake.filter f WHERE (f.since IS NULL OR t >= f.since) "
                      "AND (f.until IS NULL OR t < f.until)").fetchall()[0]
    return [x for x in row if x is not None]


def _bounds(task: Any, fld: Any, window: tuple[int | None, int | None]) -> tuple[int, int, bool] | tuple[()] | None:
    """A data file's ``timestamp`` bounds (epoch microseconds) cut to since/until, and
    whether they lie wholly in it; () when no row of the file is in it (or none has a
    time), None when the file has no bounds (no statistics) or has delete files."""
    from pyiceberg.conversions import from_bytes

    f = task.file
    lo, hi = (f.lower_bounds or {}).get(fld.field_id), (f.upper_bounds or {}).get(fld.field_id)
    if task.delete_files:
        return None
    if lo is None or hi is None:
        return () if (f.null_value_counts or {}).get(fld.field_id) == f.record_count else None
    lo, hi = from_bytes(fld.field_type, lo), from_bytes(fld.field_type, hi)
    since, until = window
    cut = (lo if since is None else max(lo, since), hi if until is None else min(hi, until - 1))
    return () if cut[0] > cut[1] else (*cut, cut == (lo, hi))


def _one_read(task: Any, ids: dict[str, Any]) -> tuple[int, int, int] | None:
    """A data file's read and line bounds (read_id, first line, last line) when its rows
    are all one read's (its ``read_id`` bounds are equal); None for a compacted file of
    several reads, one with delete files or without the statistics."""
    from pyiceberg.conversions import from_bytes

    f = task.file
    if task.delete_files:
        return None
    lo, hi = f.lower_bounds or {}, f.upper_bounds or {}
    got = {}
    for name in ("read_id", "line_number"):
        fid = ids[name].field_id
        if fid not in lo or fid not in hi:
            return None
        got[name] = (from_bytes(ids[name].field_type, lo[fid]), from_bytes(ids[name].field_type, hi[fid]))
    (rid, rid_hi), (first, last) = got["read_id"], got["line_number"]
    return (rid, first, last) if rid == rid_hi else None


def _counted_whole(one: tuple[int, int, int] | None, reads: ReadLines) -> bool:
    """Whether every row of a data file of one read (:func:`_one_read`) counts: a read the
    manifest counts (``reads``: its line range by read id), in that read's line range (a re-read last line, which the manifest stopped counting in
    the earlier read, falls outside it)."""
    if one is None:
        return False
    rid, first, last = one
    lines = reads.get(rid)
    return lines is not None and lines[0] <= first and last <= lines[1]


class ReadLines:
    """The counted reads' line ranges by read id (a table of read_id, first_line,
    last_line), held as sorted arrays: a lake of many small files counts millions of
    reads, and a dict of them took ~200 bytes each."""

    def __init__(self, counted: pa.Table):
        ids = counted.column("read_id").to_numpy()
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.first = counted.column("first_line").to_numpy()[order]
        self.last = counted.column("last_line").to_numpy()[order]

    def get(self, rid: int) -> tuple[int, int] | None:
        i = int(np.searchsorted(self.ids, rid))
        if i < len(self.ids) and self.ids[i] == rid:
            return int(self.first[i]), int(self.last[i])
        return None


def _all_counted(task: Any, ids: dict[str, Any], reads: ReadLines) -> bool:
    """Whether every row of a data file counts (:func:`_one_read`, :func:`_counted_whole`)."""
    return _counted_whole(_one_read(task, ids), reads)


def _prune(site: str | None, since: Any, until: Any) -> Any:
    """The scan's row filter: partitions and data files that cannot hold a row of the
    report are not read (the report's own SQL applies the exact filters)."""
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, LessThan, Or

    f: Any = AlwaysTrue()
    if site is not None:
        f = Or(EqualTo("lake_site", site), EqualTo("host", site))
    for name, val, op in (("since", since, GreaterThanOrEqual), ("until", until, LessThan)):
        if val is None:
            continue
        f = And(f, op("timestamp", _us(name, val)))
    return f


def _us(name: str, val: Any) -> int:
    """``--since``/``--until`` as epoch microseconds, read as the reports read them (UTC
    unless an offset is given)."""
    import duckdb

    from ..usage.db import duck

    con = duck()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute("SELECT epoch_us(CAST(? AS TIMESTAMPTZ))", [str(val)]).fetchall()[0][0]
    except duckdb.Error as e:
        raise ConfigError(f"--{name} {val!r}: not a date/time (use ISO 8601, e.g. 2024-03-01T12:00)") from e
    finally:
        con.close()


def counted_sites(con: duckdb.DuckDBPyConnection, lake: Lake) -> list[str]:
    """Every site (site, else host) of the rollup rows a lake connection's manifest counts."""
    t = lake.table("rollups").scan(selected_fields=("lake_site", "read_id", "line_number")).to_arrow()
    con.register("_lake_rollups", t)
    try:
        return [s for (s,) in con.execute(
            f"SELECT DISTINCT q.lake_site FROM _lake_rollups q SEMI JOIN _lake.reads m ON {_ROLLUP_COUNTED_ON} "
            "WHERE q.lake_site IS NOT NULL ORDER BY 1").fetchall()]
    finally:
        con.unregister("_lake_rollups")


def rollup_rows(lake: Lake, params: Any) -> list[dict[str, Any]]:
    """The rollup rows the manifest counts, for ``params``' site and hours (an hour counts
    when it starts in [since, until))."""
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, LessThan

    from ..usage.db import duck

    con = duck()
    con.execute("SET TimeZone = 'UTC'")
    f: Any = AlwaysTrue() if params.site is None else EqualTo("lake_site", params.site)
    for name, val, op in (("since", params.since, GreaterThanOrEqual), ("until", params.until, LessThan)):
        if val is not None:
            f = And(f, op("hour", _us(name, val)))
    con.register("_files", lake.table("files").scan(selected_fields=("reads",)).to_arrow())
    t = lake.table("rollups").scan(row_filter=f).to_arrow()
    con.register("q", t.select(["read_id", "line_number"]).append_column(
        "_i", pa.array(np.arange(t.num_rows, dtype=np.int64))))
    keep = con.execute("WITH m AS (SELECT r.read_id, r.first_line, r.last_line FROM "
                       "(SELECT unnest(reads) AS r FROM _files)) "
                       f"SELECT q._i FROM q SEMI JOIN m ON {_ROLLUP_COUNTED_ON} ORDER BY q._i").fetchnumpy()["_i"]
    con.close()
    t = t.take(pa.array(keep, pa.int64()))
    rows = t.cast(pa.schema([pa.field("hour", pa.int64()) if x.name == "hour" else x for x in t.schema]))
    return rows.to_pylist()
