"""A DuckDB connection over the lake's last committed snapshot: the usage database's own
tables (``files``, ``requests``, ``bad_rows``, and empty shop tables), so every report and
``sql`` query runs on it unchanged.

The manifest is read first; its ``reads`` say which rows count (a read's rows in its line
range), so rows committed after it -- an ingest still committing, a run killed before its
manifest commit -- are not seen.  ``requests`` is scanned with the partitions pruned to
``site`` (the partition site, or a host) and ``since``/``until`` (the day partitions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import ConfigError
from ..schema import CANONICAL_NAMES
from .tables import FILES, Lake

if TYPE_CHECKING:
    import duckdb

_COLS = ", ".join(f'q."{c}"' for c in CANONICAL_NAMES)
_FILE_COLS = ", ".join(f'"{f.name}"' for f in FILES if f.name != "reads")


def connect_lake(lake: Lake, params: Any = None, *, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database holding the lake's rows for the report ``params``'
    filters (None: every row); pruned to a site, ``params.span`` gets the whole span."""
    site, since, until = (params.site, params.since, params.until) if params is not None else (None,) * 3
    import duckdb

    from ..usage.db import migrate

    con = duckdb.connect(":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    files = lake.table("files").scan().to_arrow()
    con.register("_lake_files", files)
    con.execute(f"INSERT INTO files ({_FILE_COLS}) SELECT {_FILE_COLS} FROM _lake_files")
    con.execute("CREATE TEMP TABLE _lake_reads AS SELECT file_id, r.read_id, r.first_line, r.last_line "
                "FROM (SELECT file_id, unnest(reads) AS r FROM _lake_files)")
    con.unregister("_lake_files")
    requests = lake.table("requests")
    rows = requests.scan(row_filter=_prune(con, site, since, until)).to_arrow_batch_reader()
    _load(con, "requests", f"{_COLS}, m.file_id, q.line_number", rows)
    if site is not None:
        params.span = _span(con, requests.scan(row_filter=_prune(con, None, since, until),
                                               selected_fields=("timestamp", "read_id", "line_number")),
                            since, until)
    bad = lake.table("bad_rows").scan().to_arrow_batch_reader()
    _load(con, "bad_rows", "m.file_id, q.line_number, q.raw, q.reason", bad)
    con.execute("DROP TABLE _lake_reads")
    return con


def _load(con: duckdb.DuckDBPyConnection, table: str, cols: str, reader: Any) -> None:
    """Rows of ``reader`` whose read the manifest lists, in its line range."""
    con.register("_lake_scan", reader)
    try:
        con.execute(f"INSERT INTO {table} SELECT {cols} FROM _lake_scan q JOIN _lake_reads m "
                    "ON q.read_id = m.read_id AND q.line_number BETWEEN m.first_line AND m.last_line")
    finally:
        con.unregister("_lake_scan")


def _span(con: duckdb.DuckDBPyConnection, scan: Any, since: Any, until: Any) -> tuple[Any, Any]:
    """The span of every site's counted rows in since/until (one column read)."""
    from ..usage.reports import SPAN_SQL

    con.execute("SET VARIABLE since = CAST(? AS TIMESTAMPTZ)", [None if since is None else str(since)])
    con.execute("SET VARIABLE until = CAST(? AS TIMESTAMPTZ)", [None if until is None else str(until)])
    con.register("_lake_scan", scan.to_arrow_batch_reader())
    try:
        return con.execute(SPAN_SQL.format(table="(SELECT q.* FROM _lake_scan q JOIN _lake_reads m ON "
                                           "q.read_id = m.read_id AND q.line_number BETWEEN m.first_line "
                                           "AND m.last_line)")).fetchall()[0]
    finally:
        con.unregister("_lake_scan")


def _prune(con: duckdb.DuckDBPyConnection, site: str | None, since: Any, until: Any) -> Any:
    """The scan's row filter: partitions and data files that cannot hold a row of the
    report are not read (the report's own SQL applies the exact filters)."""
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, LessThan, Or

    f: Any = AlwaysTrue()
    if site is not None:
        f = Or(EqualTo("lake_site", site), EqualTo("host", site))
    for name, val, op in (("since", since, GreaterThanOrEqual), ("until", until, LessThan)):
        if val is None:
            continue
        f = And(f, op("timestamp", _us(con, name, val)))
    return f


def _us(con: duckdb.DuckDBPyConnection, name: str, val: Any) -> int:
    """``--since``/``--until`` as epoch microseconds, read as the reports read them."""
    import duckdb

    try:
        return con.execute("SELECT epoch_us(CAST(? AS TIMESTAMPTZ))", [str(val)]).fetchall()[0][0]
    except duckdb.Error as e:
        raise ConfigError(f"--{name} {val!r}: not a date/time (use ISO 8601, e.g. 2024-03-01T12:00)") from e


def rollup_rows(lake: Lake, params: Any) -> list[dict[str, Any]]:
    """The rollup rows the manifest counts, for ``params``' site and hours (an hour counts
    when it starts in [since, until))."""
    import duckdb
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, LessThan

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    f: Any = AlwaysTrue() if params.site is None else EqualTo("lake_site", params.site)
    for name, val, op in (("since", params.since, GreaterThanOrEqual), ("until", params.until, LessThan)):
        if val is not None:
            f = And(f, op("hour", _us(con, name, val)))
    reads = {r["read_id"] for row in lake.table("files").scan(selected_fields=("reads",)).to_arrow()
             .column("reads").to_pylist() for r in row or []}
    t = lake.table("rollups").scan(row_filter=f).to_arrow()
    return [r for r in t.cast(pa.schema([pa.field("hour", pa.int64()) if x.name == "hour" else x
                                         for x in t.schema])).to_pylist() if r["read_id"] in reads]
