"""Reports: one ``.sql`` file per report, run by a small runner.

A report file holds statements separated by marker comments::

    -- setup                     (optional, run first, no output: temp tables)
    -- section: NAME             (a SELECT whose rows are the section NAME)

Every report reads the temp views of ``_views.sql`` (``req``, ``shop_req``, ``ord``,
``items``, ``cdn``), which apply the filters held in DuckDB variables (``since``,
``until``, ``sites``, ``classes``, ``formats``; bots through the ``_bots`` table) -- so a report never formats SQL with user input.  Extra reports
found in ``logferry/snowplow/reports/*.sql`` (when that package is installed) are run
the same way after the built-in ones.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

#: built-in reports, in output order
REPORTS: tuple[str, ...] = (
    "summary", "status", "performance", "not_found", "uptime", "cdn", "shop", "top",
)
TITLES = {
    "summary": "Summary",
    "status": "Status codes and errors",
    "performance": "Performance",
    "not_found": "Unavailable links (404/410)",
    "uptime": "Uptime",
    "cdn": "CDN",
    "shop": "Shop",
    "top": "Top pages, referrers and agents",
}

_MARK = re.compile(r"^--\s*(setup|section:\s*(?P<name>[A-Za-z0-9_]+))\s*$", re.M)
#: chart bucket candidates, minutes: the smallest giving at most _MAX_POINTS points
_CHART_BUCKETS = (1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080)
_MAX_POINTS = 240
#: at most this many uptime buckets (larger buckets are chosen for longer spans)
MAX_UPTIME_BUCKETS = 20_000
#: ``requests`` columns no report and no dashboard panel reads: ``report FILE`` has its
#: readers leave them out of its temporary database (less to parse and store); a test
#: checks that no report's SQL names one of them
UNREAD_COLUMNS = frozenset({"client_port", "server_ip", "server_port", "protocol", "bytes_received",
                            "username", "request_id", "visit_id", "user_id"})
#: DuckDB buffer limit of `logferry report` (aggregations spill to disk beyond it, so the
#: report's memory does not grow with the database)
REPORT_MEMORY_LIMIT = "256MB"


@dataclass
class ReportSQL:
    name: str
    title: str
    description: str
    setup: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)


def parse(name: str, text: str, title: str | None = None) -> ReportSQL:
    """Split a report file into its description, setup statements and sections."""
    marks = list(_MARK.finditer(text))
    head = text[: marks[0].start()] if marks else text
    desc = " ".join(
        ln[2:].strip() for ln in head.splitlines() if ln.startswith("--")
    ).strip()
    rep = ReportSQL(name, title or TITLES.get(name, name.replace("_", " ").title()), desc)
    if not marks:  # a plain query file: one section named after the report
        body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--"))
        body = body.strip().rstrip(";").strip()
        if body:
            rep.sections.append((name.split("_", 1)[-1] if name.startswith("snowplow_") else name, body))
        return rep
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end():end].strip().rstrip(";").strip()
        if not body:
            continue
        if m.group("name"):
            rep.sections.append((m.group("name"), body))
        else:
            rep.setup.extend(_split_statements(body))
    return rep


def _split_statements(sql: str) -> list[str]:
    """Statements of a script (report SQL has no ';' inside strings; comments dropped)."""
    code = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.sql").read_text("utf-8")


def builtin(name: str) -> ReportSQL:
    if name not in REPORTS:
        raise KeyError(f"unknown report {name!r}; reports: {', '.join(REPORTS)}")
    return parse(name, _read(name))


def extra_reports() -> list[ReportSQL]:
    """Reports shipped by optional packages (``logferry/snowplow/reports/*.sql``)."""
    out: list[ReportSQL] = []
    try:
        # (found, not imported: the package's modules are not needed to read its SQL files)
        spec = importlib.util.find_spec("logferry.snowplow")
        if spec is None or not spec.submodule_search_locations:
            return out
        base = Path(next(iter(spec.submodule_search_locations))) / "reports"
        entries = sorted(base.iterdir(), key=lambda p: p.name) if base.is_dir() else []
    except (ModuleNotFoundError, ImportError, FileNotFoundError, NotADirectoryError, TypeError):
        return out
    for p in entries:
        if p.name.endswith(".sql") and not p.name.startswith("_"):
            stem = p.name[:-4]
            out.append(parse(f"snowplow_{stem}", p.read_text("utf-8"),
                             f"Snowplow: {stem.replace('_', ' ')}"))
    return out


@dataclass
class Params:
    """Report filters and knobs (all optional)."""

    since: str | dt.datetime | None = None
    until: str | dt.datetime | None = None
    site: str | None = None
    #: only these sites (a filter: site or host column), status classes (4 for 4xx) and formats
    sites: list[str] | None = None
    status_classes: list[int] | None = None
    formats: list[str] | None = None
    #: False leaves bots (logferry.usage.ua) out of every report
    bots: bool = True
    #: a site scope (a console token's sites): only rows whose site column is one of them
    #: -- never the Host header a client sends; rows of a log without a site are outside it
    scope: list[str] | None = None
    bucket_minutes: float = 5.0
    threshold: float = 0.5
    gap_buckets: int = 3
    top: int = 20
    chart_bucket_minutes: float | None = None  # None: chosen from the time span
    #: (epoch seconds of the first and last request in since/until) when the connection
    #: holds only some sites' rows (the lake's scan pruned to ``site``): the buckets are
    #: then chosen from the whole span, as on the database.  Not part of :meth:`as_dict`.
    span: tuple[float | None, float | None] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since), "until": _iso(self.until), "site": self.site,
            "sites": self.sites, "status_classes": self.status_classes, "formats": self.formats,
            "bots": self.bots,
            "bucket_minutes": self.bucket_minutes, "threshold": self.threshold,
            "gap_buckets": self.gap_buckets, "top": self.top,
            "chart_bucket_minutes": self.chart_bucket_minutes,
        }


#: bounds of the report knobs (a year of minutes; rows of a top-N section)
MAX_BUCKET_MINUTES = 366 * 1440
MAX_GAP_BUCKETS = 1_000_000
MAX_TOP = 1_000_000


def check_params(params: Params) -> None:
    """ConfigError unless every knob is a finite number in its range (the flags' names) and
    ``since`` is before ``until``; times given as text are parsed (``values.parse_time``)."""
    from ...values import check_order, number, parse_time, whole

    for name in ("since", "until"):
        v = getattr(params, name)
        setattr(params, name, None if v is None or v == "" else parse_time(v, f"--{name}"))
    check_order(params.since, params.until)
    number(params.bucket_minutes, "--bucket (minutes)", 0, MAX_BUCKET_MINUTES, lo_open=True)
    number(params.threshold, "--threshold", 0, 1, lo_open=True)
    whole(params.gap_buckets, "--gap", 0, MAX_GAP_BUCKETS)
    whole(params.top, "--top", 0, MAX_TOP)
    if params.chart_bucket_minutes is not None:
        number(params.chart_bucket_minutes, "chart bucket (minutes)", 0, MAX_BUCKET_MINUTES, lo_open=True)


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.datetime | dt.date) else v


def _seconds(minutes: float) -> int:
    return max(1, int(round(minutes * 60)))


def _interval(minutes: float) -> str:
    return f"{_seconds(minutes)} seconds"


#: the time span (epoch seconds) of the rows of a table in since/until
SPAN_SQL = (
    "SELECT epoch(min(\"timestamp\")), epoch(max(\"timestamp\")) FROM {table} "
    "WHERE (getvariable('since') IS NULL OR \"timestamp\" >= getvariable('since')) "
    "AND (getvariable('until') IS NULL OR \"timestamp\" < getvariable('until'))"
)


def prepare(con: duckdb.DuckDBPyConnection, params: Params) -> list[str]:
    """Set the variables and create the views every report reads; returns warnings."""
    warnings: list[str] = []
    check_params(params)
    con.execute("SET TimeZone = 'UTC'")
    for name in ("since", "until"):
        con.execute(f"SET VARIABLE {name} = CAST(? AS TIMESTAMPTZ)", [getattr(params, name)])
    sites = params.sites
    if params.site is not None:
        sites = [params.site] if sites is None else [s for s in sites if s == params.site]
    con.execute("SET VARIABLE sites = CAST(? AS VARCHAR[])", [sites])
    con.execute("SET VARIABLE scope = CAST(? AS VARCHAR[])", [params.scope])
    con.execute("SET VARIABLE classes = CAST(? AS INTEGER[])", [params.status_classes])
    con.execute("SET VARIABLE formats = CAST(? AS VARCHAR[])", [params.formats])
    from ..ua import register

    register(con)
    con.execute("CREATE OR REPLACE TEMP TABLE _bots AS SELECT user_agent FROM _ua WHERE is_bot AND ?",
                [not params.bots])
    lo, hi = params.span or con.execute(SPAN_SQL.format(table="requests")).fetchall()[0]
    span_min = ((hi - lo) / 60) if lo is not None else 0.0
    bucket = params.bucket_minutes
    if span_min / bucket > MAX_UPTIME_BUCKETS:
        bucket = next((b for b in _CHART_BUCKETS if span_min / b <= MAX_UPTIME_BUCKETS),
                      math.ceil(span_min / MAX_UPTIME_BUCKETS))
        warnings.append(
            f"uptime: {params.bucket_minutes:g}-minute buckets over {span_min / 1440:.0f} days would make "
            f"more than {MAX_UPTIME_BUCKETS:,} buckets; using {bucket:g}-minute buckets"
        )
        params.bucket_minutes = bucket
    con.execute(f"SET VARIABLE bucket = INTERVAL '{_interval(bucket)}'")
    con.execute(f"SET VARIABLE bucket_us = CAST({_seconds(bucket) * 1_000_000} AS BIGINT)")
    con.execute("SET VARIABLE threshold = CAST(? AS DOUBLE)", [params.threshold])
    con.execute("SET VARIABLE gap_buckets = CAST(? AS INTEGER)", [params.gap_buckets])
    con.execute("SET VARIABLE top = CAST(? AS INTEGER)", [params.top])
    for stmt in _split_statements(_read("_views")):
        con.execute(stmt)
    chart = params.chart_bucket_minutes
    if chart is None:
        chart = next((b for b in _CHART_BUCKETS if span_min / b <= _MAX_POINTS),
                     math.ceil(span_min / _MAX_POINTS))
        params.chart_bucket_minutes = chart
    con.execute(f"SET VARIABLE chart_bucket = INTERVAL '{_interval(chart)}'")
    con.execute(f"SET VARIABLE chart_bucket_us = CAST({_seconds(chart) * 1_000_000} AS BIGINT)")
    return warnings


def _arrow(rel: duckdb.DuckDBPyRelation, con: duckdb.DuckDBPyConnection | None = None):
    """``rel``'s rows as an Arrow table; with ``con``, through :func:`roomy`."""
    f = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return f() if con is None else roomy(con, f)


def roomy(con: duckdb.DuckDBPyConnection, work: Any) -> Any:
    """``work()`` on ``con``; when it does not fit the connection's memory limit, once more
    under :func:`roomy_limit`, then the limit as it was.  Aggregates spill to disk, but
    exact percentiles hold every value of their group (20M latencies: ~256 MiB at once)
    and a dashboard's cube over tens of millions of rows outgrows 256 MB: a report on a big
    database would otherwise fail."""
    try:
        return work()
    except duckdb.OutOfMemoryException:
        pass
    old = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{roomy_limit()}'")
    try:
        return work()
    except duckdb.OutOfMemoryException as e:
        from ...errors import ResourceError

        raise ResourceError(f"a report query needs more memory than {roomy_limit()} (a quarter of this "
                            f"machine's): {str(e).splitlines()[0]}") from None
    finally:
        con.execute(f"SET memory_limit = '{old}'")


def roomy_limit() -> str:
    """A quarter of the machine's memory (at least 1 GB): the limit a report query that
    does not fit :data:`REPORT_MEMORY_LIMIT` gets for its second try."""
    import os

    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{max(1024, total // 4 // 2**20)}MB"


def run_report(con: duckdb.DuckDBPyConnection, rep: ReportSQL, plain: bool = False) -> dict[str, Any]:
    """The sections of ``rep`` as lists of row dicts; with ``plain``, of JSON values only
    (what :func:`jsonable` would make of them, converted column by column)."""
    for stmt in rep.setup:
        con.execute(stmt)
    sections: dict[str, list[dict[str, Any]]] = {}
    columns: dict[str, list[str]] = {}
    for name, sql in rep.sections:
        t = _arrow(con.sql(sql), con)
        columns[name] = t.column_names
        sections[name] = plain_rows(t) if plain else t.to_pylist()
    return {"title": rep.title, "description": rep.description, "columns": columns,
            "sections": sections}


def run(con: duckdb.DuckDBPyConnection, params: Params | None = None,
        only: list[str] | None = None, extras: bool = True, plain: bool = False) -> dict[str, Any]:
    """Run the reports (all, or ``only`` these) and return them as plain data (with
    ``plain``, the sections' values are JSON values already: see :func:`plain_rows`)."""
    params = params or Params()
    warnings = prepare(con, params)
    out: dict[str, Any] = {}
    for rep, optional in selected(only, extras):
        res = run_one(con, rep, optional, plain, warnings)
        if res is not None:
            out[rep.name] = res
    return result(params, warnings, out)


def leave_out_lake_wide(reports: dict[str, Any]) -> None:
    """Take out of ``reports`` (by name, each with its ``sections``) what is not per site:
    the files and formats of the whole database or lake (other tenants' log names) and the
    totals' files, lines and bad rows -- a report for one tenant (a scoped console token's,
    ``report --each-site``).  (The extra reports, e.g. Snowplow's, are not per site either:
    not run for one.)"""
    summary = reports.get("summary", {}).get("sections", {})
    summary.pop("files", None)
    summary.pop("formats", None)
    for row in summary.get("totals", []):
        for k in ("files", "lines", "bad_rows"):
            row.pop(k, None)


def selected(only: list[str] | None = None, extras: bool = True) -> list[tuple[ReportSQL, bool]]:
    """The reports :func:`run` runs, in output order, each with whether it is optional
    (an extra report, skipped when its tables do not exist)."""
    reps = [(builtin(n), False) for n in (list(only) if only else REPORTS)]
    if extras and not only:
        reps += [(rep, True) for rep in extra_reports()]
    return reps


def run_one(con: duckdb.DuckDBPyConnection, rep: ReportSQL, optional: bool, plain: bool,
            warnings: list[str]) -> dict[str, Any] | None:
    """One report of :func:`selected`; an optional (extra) one is None when its tables do
    not exist (no such data was ingested) or when it failed (said in ``warnings``)."""
    if not optional:
        return run_report(con, rep, plain)
    try:
        return run_report(con, rep, plain)
    except duckdb.CatalogException:
        return None
    except duckdb.Error as e:
        warnings.append(f"{rep.name}: skipped ({str(e).splitlines()[0]})")
        return None


def result(params: Params, warnings: list[str], reports: dict[str, Any]) -> dict[str, Any]:
    """What :func:`run` returns."""
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "params": params.as_dict(),
        "warnings": warnings,
        "reports": reports,
    }


def plain_rows(t) -> list[dict[str, Any]]:
    """The rows of the Arrow table ``t`` as dicts of JSON values, equal to ``jsonable(
    t.to_pylist())`` but converted per column by Arrow (a dashboard's sections hold tens
    of thousands of values, and tz-aware timestamps would make pyarrow import pandas)."""
    cols = {name: plain_values(t.column(name)) for name in t.column_names}
    names = list(cols)
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols.values(), strict=True)] if names else []


def plain_values(col) -> list[Any]:
    """One Arrow column as a list of JSON values (see :func:`plain_rows`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ty = col.type
    if pa.types.is_decimal(ty):
        if ty.scale == 0:
            try:
                return pc.cast(col, pa.int64()).to_pylist()
            except pa.ArrowInvalid:  # past 64 bits: Python ints
                return [None if v is None else int(v) for v in col.to_pylist()]
        # (through text: a direct cast divides by the scale and may miss the nearest double)
        return pc.cast(pc.cast(col, pa.string()), pa.float64()).to_pylist()
    if pa.types.is_floating(ty):
        vals = col.to_pylist()
        return [None if v != v else v for v in vals] if pc.any(pc.is_nan(col)).as_py() else vals
    if pa.types.is_timestamp(ty) and ty.tz in ("UTC", "Etc/UTC", "+00:00") and ty.unit in ("s", "us"):
        return _iso_utc(col, ty.unit).to_pylist()
    if pa.types.is_integer(ty) or pa.types.is_string(ty) or pa.types.is_large_string(ty) \
            or pa.types.is_boolean(ty) or pa.types.is_null(ty):
        return col.to_pylist()
    return [jsonable(v) for v in col.to_pylist()]


def _iso_utc(col, unit: str):
    """ISO 8601 text of UTC timestamps as ``datetime.isoformat`` writes it
    (``2024-03-01T10:00:00+00:00``, with ``.ffffff`` only when there are microseconds).
    (No Python value is handed to pyarrow here: converting one makes it import pandas.)"""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.strftime(pc.cast(col, pa.timestamp(unit)), format="%Y-%m-%dT%H:%M:%S")
    if unit == "us":  # %S writes the fraction of the unit: none when it is zero
        text = pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="")
    return pc.replace_substring_regex(text, pattern="$", replacement="+00:00")


#: a byte as DuckDB writes it in a BLOB's text: printable ASCII as it is, but for the
#: backslash and quotes, the others as ``\xHH``
_BLOB_BYTES = [chr(b) if 32 <= b < 127 and chr(b) not in "\\'\"" else f"\\x{b:02X}" for b in range(256)]


def blob_text(v: bytes | bytearray | memoryview) -> str:
    """A BLOB value as DuckDB casts it to text (``CAST(text AS BLOB)`` gives it back)."""
    return "".join([_BLOB_BYTES[b] for b in bytes(v)])


def jsonable(v: Any) -> Any:
    """JSON-friendly value: timestamps as ISO 8601, decimals as numbers, BLOBs as DuckDB's
    text of them (``sql --json`` of ``files.header`` was a traceback)."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, Decimal):
        if v == v.to_integral_value() and v.as_tuple().exponent >= 0:
            return int(v)  # sums of integers (HUGEINT)
        return float(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, float) and v != v:  # NaN
        return None
    if isinstance(v, bytes | bytearray | memoryview):
        return blob_text(v)
    return v
