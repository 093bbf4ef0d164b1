"""The interactive dashboard: its data (:func:`dashboard_data`) and its page (:func:`render_dashboard`).

One front end serves both uses.  ``logferry report --html`` writes the page with the data
embedded; ``logferry serve`` sends the same page with ``api`` set, and the page asks the
server for the exact numbers of every range and filter it shows.

The data holds, besides the reports of :mod:`logferry.usage.reports` (exact for the range
and filters asked), a *cube*: per time bucket (at most ~240 of them) the requests, bytes,
status classes and durations, and per dimension (paths, status codes, referrers, user
agents, CDN edges and cache statuses, sites, hours, latency bins) the counts per bucket of
its most frequent keys, the rest summed into one "other" key per bucket.  Counts add up,
so the page re-aggregates any bucket-aligned range without a server; distinct visitors and
percentiles do not, and the page shows them only for the range the data was made for.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from importlib import resources
from typing import Any

#: rows per table at most (per dimension and per report section)
ROW_CAP = 10_000
#: sites offered in the site filter at most
MAX_SITE_CHOICES = 1000
#: single slowest requests kept (the page shows those of the range it shows)
SLOWEST_CAP = 1_000
#: (bucket, key) cells kept per dimension at most; keys past the budget go to "other"
CELL_BUDGET = 40_000

# dimension: (key expression, display expression or None, source view, WHERE, [metrics]).
# The rows are grouped by the key expression, then (a few rows) by the display expression
# of it ({k}): cheaper than converting every row (a status to text, say).  A metric is
# (name, SQL aggregate over rows, how cells of it combine: "sum", "max", or "sum3", a sum
# rounded to 3 decimals, whose aggregate is the sum not yet rounded).
_DUR = [("dur_n", "count(duration_ms)", "sum"), ("dur_sum", "coalesce(sum(duration_ms), 0)", "sum3"),
        ("dur_max", "max(duration_ms)", "max")]
_COMBINE = {"sum": "sum({m})", "max": "max({m})", "sum3": "round(sum({m}), 3)"}
_REQUESTS = [("requests", "count(*)", "sum")]
#: an edge location's place: its airport (POP) code, the leading letters upper-cased
#: (CloudFront's FRA56-C1 and Cloudflare's FRA are one place); a value without any, as it is
_POP = "coalesce(nullif(upper(regexp_extract({k}, '^[A-Za-z]+')), ''), {k}, '-')"
#: dimensions whose display expression groups several values into one key (edges by place,
#: cache statuses regardless of case): per key, the values seen, most requests first
RAW_CAP = 20
GROUPED = ("edge", "cache")
DIMENSIONS: dict[str, tuple[str, str | None, str, str, list[tuple[str, str, str]]]] = {
    "status": ("status", "coalesce(CAST({k} AS VARCHAR), 'none')", "req", "true", _REQUESTS),
    "path": ("path", None, "req", "path IS NOT NULL", [
        *_REQUESTS, ("bytes", "coalesce(sum(bytes_sent), 0)", "sum"),
        ("e4", "count(*) FILTER (WHERE status BETWEEN 400 AND 499)", "sum"),
        ("e5", "count(*) FILTER (WHERE status BETWEEN 500 AND 599)", "sum"), *_DUR]),
    "missing": ("path", None, "req", "status IN (404, 410)", [
        *_REQUESTS, ("n404", "count(*) FILTER (WHERE status = 404)", "sum"),
        ("n410", "count(*) FILTER (WHERE status = 410)", "sum")]),
    "referer": ("referer", None, "req", "referer IS NOT NULL AND referer NOT IN ('', '-')", _REQUESTS),
    "agent": ("user_agent", "coalesce({k}, '')", "req", "true", _REQUESTS),
    "edge": ("edge_location", _POP, "cdn", "true", [
        *_REQUESTS, ("hits", "count(*) FILTER (WHERE is_hit)", "sum"),
        ("bytes", "coalesce(sum(bytes_sent), 0)", "sum"), ("ttfb_n", "count(ttfb_ms)", "sum"),
        ("ttfb_sum", "coalesce(sum(ttfb_ms), 0)", "sum3")]),
    "cache": ("cache_status", "lower({k})", "cdn", "true", [
        *_REQUESTS, ("hits", "count(*) FILTER (WHERE is_hit)", "sum"),
        ("bytes", "coalesce(sum(bytes_sent), 0)", "sum")]),
    "site": ("coalesce(site, host)", "coalesce({k}, '-')", "req", "true", [
        *_REQUESTS, ("bytes", "coalesce(sum(bytes_sent), 0)", "sum"),
        ("e5", "count(*) FILTER (WHERE status BETWEEN 500 AND 599)", "sum")]),
    "hour": ("__hour__", None, "req", "ts_us IS NOT NULL", _REQUESTS),
    "latency": ("__latency__", None, "req", "duration_ms >= 0", _REQUESTS),
}
#: latency bins (ms): lower bounds, as in the performance report's histogram
LATENCY_BINS = (0, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_SERIES = [
    ("requests", "count(*)"), ("bytes", "coalesce(sum(bytes_sent), 0)"),
    ("s1", "count(*) FILTER (WHERE status < 200)"),
    ("s2", "count(*) FILTER (WHERE status BETWEEN 200 AND 299)"),
    ("s3", "count(*) FILTER (WHERE status BETWEEN 300 AND 399)"),
    ("s4", "count(*) FILTER (WHERE status BETWEEN 400 AND 499)"),
    ("s5", "count(*) FILTER (WHERE status BETWEEN 500 AND 599)"),
    # (the durations per bucket: _DUR's aggregates, sums rounded as the cells' are)
    *((m, f"round({agg}, 3)" if c == "sum3" else agg) for m, agg, c in _DUR),
]
#: the series of the cube: those of _SERIES, and the distinct visitors (see _series)
_SERIES_NAMES = [*(m for m, _ in _SERIES), "visitors"]


@dataclass
class Filters:
    """What the dashboard shows: a time range [since, until) and filters (None: all)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    sites: list[str] | None = None
    status_classes: list[int] | None = None
    formats: list[str] | None = None
    bots: bool = True
    def as_dict(self) -> dict[str, Any]:
        def iso(v: dt.datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {"since": iso(self.since), "until": iso(self.until), "sites": self.sites,
                "status_classes": self.status_classes, "formats": self.formats, "bots": self.bots}


def _when(name: str, v: str | None) -> dt.datetime | None:
    from ..values import parse_time

    return None if v is None or str(v).strip() == "" else parse_time(v, name)


def _list(params: Mapping[str, Any], name: str) -> list[str] | None:
    get = getattr(params, "getlist", None)
    raw = get(name) if get else params.get(name)
    if raw is None:
        return None
    vals = raw if isinstance(raw, list | tuple) else [raw]
    out = [p.strip() for v in vals for p in str(v).split(",") if p.strip()]
    return out or None


def filters_from_query(params: Mapping[str, Any]) -> Filters:
    """Filters from query parameters ``since``, ``until`` (ISO 8601 or epoch seconds),
    ``site``, ``status`` (classes: ``4``, ``4xx`` or ``4,5``), ``format`` (each repeatable
    or comma-separated) and ``bots`` (``0``/``false``/``no`` leaves bots out)."""
    from ..errors import ConfigError
    from ..values import check_order

    get = params.get
    classes = None
    if (st := _list(params, "status")) is not None:
        classes = []
        for s in st:
            c = s.lower().rstrip("x")
            if not (len(c) == 1 and c in "12345"):
                raise ConfigError(f"status {s!r}: a status class is 1-5 (or 1xx-5xx)")
            classes.append(int(c))
    bots_raw = get("bots")
    bots = True
    if bots_raw is not None and str(bots_raw).strip() != "":
        b = str(bots_raw).strip().lower()
        if b not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"bots {bots_raw!r}: use 1 or 0")
        bots = b in ("1", "true", "yes", "on")
    f = Filters(since=_when("since", get("since")), until=_when("until", get("until")),
                sites=_list(params, "site"), status_classes=classes, formats=_list(params, "format"),
                bots=bots)
    check_order(f.since, f.until, "until must be after since")
    return f


def check_tz(tz: str) -> str:
    """``tz`` unless it is not a time zone that both Python and DuckDB know (``posixrules``,
    ``localtime`` and ``right/...`` are files of the zone database, not zones DuckDB has)."""
    from zoneinfo import ZoneInfo

    from ..errors import ConfigError

    try:
        ZoneInfo(tz)
        ok = tz in _duckdb_zones()
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        ok = False
    if not ok:
        raise ConfigError(f"--tz {tz!r}: not a time zone (e.g. UTC, Europe/Berlin)")
    return tz


@functools.cache
def _duckdb_zones() -> frozenset[str]:
    from .db import duck

    con = duck()
    try:
        return frozenset(r[0] for r in con.execute("SELECT name FROM pg_timezone_names()").fetchall())
    finally:
        con.close()


def _col(t, name: str) -> list:
    from .reports import plain_values

    return plain_values(t.column(name))


def _num(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float):
        return round(v, 3) if not v.is_integer() else int(v)
    return int(v) if not isinstance(v, int) else v


def _cube(con, step_us: int, tz: str) -> dict[str, Any]:
    rng = con.execute("SELECT min(ts_us), max(ts_us) FROM req").fetchall()[0]
    if rng[0] is None:  # no request: the same shape, empty
        dims = {name: {"keys": [], "metrics": [m[0] for m in d[4]], "tot": [[] for _ in d[4]], "cube_keys": 0,
                       "total_keys": 0,
                       "other": False, "cells": {"b": [], "k": [], "m": [[] for _ in d[4]]}}
                for name, d in DIMENSIONS.items()}
        return {"t0": None, "step": step_us // 1_000_000, "n": 0, "series": {m: [] for m in _SERIES_NAMES},
                "dims": dims, "visitor_sketch": {"p": SKETCH_P, "b": [], "r": []}}
    b0 = con.execute("SELECT _bkt(CAST(? AS BIGINT), CAST(? AS BIGINT))", [rng[0], step_us]).fetchall()[0][0]
    n = (rng[1] - b0) // step_us + 1
    bexpr = f"_fdiv(ts_us - {int(b0)}, {int(step_us)})"
    series = _series(con, bexpr, n)
    sketch = _visitor_sketch(con)
    if tz == "UTC":
        hour = "CAST(_hour(ts_us) AS INTEGER)"
    else:
        hour = f"CAST(hour(timezone('{tz}', \"timestamp\")) AS INTEGER)"  # tz checked by ZoneInfo
    lat = "CASE " + " ".join(f"WHEN duration_ms < {hi} THEN {i}" for i, hi in enumerate(LATENCY_BINS[1:])) + \
        f" ELSE {len(LATENCY_BINS) - 1} END"
    dims = {}
    for name, (key, display, view, where, metrics) in DIMENSIONS.items():
        key = hour if key == "__hour__" else lat if key == "__latency__" else key
        dims[name] = _dimension(con, bexpr, key, display, view, where, metrics, n, raw=name in GROUPED)
    return {"t0": int(b0 // 1_000_000), "step": step_us // 1_000_000, "n": int(n),
            "series": series, "dims": dims, "visitor_sketch": sketch}


def _series(con, bexpr: str, n: int) -> dict[str, list]:
    """The per-bucket series (n buckets).  The distinct visitors of each bucket are kept in
    the temp table ``_bv`` (b, visitor) for :func:`_visitor_sketch` too: one pass over the
    rows' visitor hashes for both, where a ``count(DISTINCT visitor)`` per bucket and the
    sketch's own pass each hashed them again (2M rows: 0.8 -> 0.6 CPU s)."""
    from .reports import _arrow

    con.execute(f"CREATE OR REPLACE TEMP TABLE _bv AS SELECT DISTINCT {bexpr} AS b, visitor FROM req "
                "WHERE visitor IS NOT NULL AND ts_us IS NOT NULL")
    sel = ", ".join(f"{e} AS {m}" for m, e in _SERIES)
    t = _arrow(con.sql(
        f"SELECT s.*, coalesce(v.visitors, 0) AS visitors FROM "
        f"(SELECT {bexpr} AS b, {sel} FROM req WHERE ts_us IS NOT NULL GROUP BY 1) s "
        "LEFT JOIN (SELECT b, count(*) AS visitors FROM _bv GROUP BY b) v USING (b) ORDER BY b"))
    series = {m: [0] * n for m in _SERIES_NAMES}
    series["dur_max"] = [None] * n
    bs = _col(t, "b")
    for m in _SERIES_NAMES:
        arr = series[m]
        for i, v in zip(bs, _col(t, m), strict=True):
            arr[i] = _num(v)
    return series


#: registers of the visitors' HyperLogLog sketch per bucket: 2**SKETCH_P (error ~3%)
SKETCH_P = 10


def _visitor_sketch(con) -> dict[str, Any]:
    """Per bucket with visitors, a HyperLogLog sketch of them (the visitor hash's low
    SKETCH_P bits pick a register, the next 40 bits' trailing zeros + 1 are its rank),
    as a string of one character per register (``chr(48 + rank)``): the page merges the
    buckets of a zoomed range (the maximum per register) and estimates the distinct
    visitors of that range without a server.  Made of the buckets' distinct visitors
    (``_bv``, left by :func:`_series`), which it drops."""
    import numpy as np

    from .reports import _arrow

    m = 1 << SKETCH_P
    t = _arrow(con.sql(
        f"SELECT b, reg, max(CASE WHEN w = 0 THEN 41 ELSE CAST(log2(w & -w) AS INTEGER) + 1 END) AS rank "
        f"FROM (SELECT b, CAST(visitor & {m - 1} AS INTEGER) AS reg, "
        f"CAST((visitor >> {SKETCH_P}) & {(1 << 40) - 1} AS BIGINT) AS w FROM _bv) GROUP BY b, reg"))
    con.execute("DROP TABLE _bv")
    b = t.column("b").to_numpy().astype(np.int64)
    buckets, row = np.unique(b, return_inverse=True)
    regs = np.full((len(buckets), m), 48, dtype=np.uint8)
    regs[row, t.column("reg").to_numpy()] += t.column("rank").to_numpy().astype(np.uint8)
    return {"p": SKETCH_P, "b": buckets.tolist(), "r": [r.tobytes().decode("ascii") for r in regs]}


#: the reports that take longest (in this order) on the bench logs
_LONGEST = ("top", "performance", "summary", "cdn")


def own_threads() -> int:
    """DuckDB threads for :func:`dashboard_data` on a database of its own (``report --html``).
    Its two connections each run their query on their own thread besides DuckDB's
    ``threads - 1`` workers: cores - 1 keeps every core busy without a thread more than
    cores (2M-row IIS and CloudFront databases, 2 cores: 1 thread instead of 2 takes 7-15%
    less CPU, the same JSON)."""
    from .reading import cpus

    return max(1, cpus() - 1)


def _on_two(con, params, jobs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Run ``jobs`` (name, function of a connection) on ``con`` and on a second connection
    (a cursor of it, given its own views), each taking the next job when done; returns
    the results by name.  A query keeps both cores busy only part of the time (its final
    merge, sort or window runs on one thread): two at a time fill the gaps."""
    from .reports import prepare

    todo = iter(jobs)
    lock = threading.Lock()
    failed = threading.Event()
    out: dict[str, Any] = {}

    def work(c) -> None:
        while not failed.is_set():
            with lock:
                job = next(todo, None)
            if job is None:
                return
            try:
                out[job[0]] = job[1](c)
            except BaseException:
                failed.set()  # (the other connection takes no more jobs)
                raise

    cur = con.cursor()
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="logferry-dashboard") as ex:
            second = ex.submit(lambda: (prepare(cur, replace(params)), work(cur)))
            try:
                work(con)
            finally:
                second.result()
    finally:
        cur.close()
    return out


def _dimension(con, bexpr: str, key: str, display: str | None, view: str, where: str,
               metrics: list[tuple[str, str, str]], n_buckets: int, raw: bool = False) -> dict:
    """Totals of the first ROW_CAP keys by requests, and per bucket the cells of the first keys
    that fit in CELL_BUDGET (a key has at most min(requests, buckets) cells), the rest summed
    per bucket as key -1.  One pass over the rows makes the (key, bucket) cells; the totals,
    the ranking and "other" are sums of those.  With ``raw`` (and a display expression), each
    key also lists the values it groups (``raw``: [value, requests], RAW_CAP at most)."""
    from .reports import _arrow

    names = [m for m, _, _ in metrics]
    comb = {m: _COMBINE[c].format(m=m) for m, _, c in metrics}
    raw = ", ".join(f"{agg} AS {m}" for m, agg, _ in metrics)
    cells_of = ", ".join(f"{comb[m]} AS {m}" for m in names)
    sums = ", ".join(f"sum({m}) AS {m}" if c == "sum3" else f"{comb[m]} AS {m}" for m, _, c in metrics)
    rows = f"SELECT {key} AS key, {bexpr} AS b, * FROM {view} WHERE ({where}) AND ts_us IS NOT NULL"
    kb = f"SELECT key, b, {raw} FROM ({rows}) GROUP BY key, b"
    raws = None
    if display is not None and raw:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _kb0 AS {kb}")
        raws = dict(con.execute(
            f"SELECT {display.format(k='key')} AS g, list([CAST(key AS VARCHAR), CAST(n AS VARCHAR)] "
            f"ORDER BY n DESC, key)[:{RAW_CAP}] FROM (SELECT key, sum(requests) AS n FROM _kb0 GROUP BY key) "
            "GROUP BY g").fetchall())
        kb = "SELECT * FROM _kb0"
    if display is not None:  # (a few rows: the cells)
        kb = f"SELECT {display.format(k='key')} AS key, b, {sums} FROM ({kb}) GROUP BY 1, 2"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _kb AS {kb}")
    con.execute("DROP TABLE IF EXISTS _kb0")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _rank AS SELECT key, {cells_of}, "
        f"row_number() OVER (ORDER BY sum(requests) DESC, key) AS rk FROM _kb GROUP BY key"
    )
    tot = _arrow(con.sql(f"SELECT * FROM _rank WHERE rk <= {ROW_CAP} ORDER BY rk"))
    k_cube = con.execute(
        f"SELECT coalesce(max(rk), 0) FROM (SELECT rk, sum(least(requests, {int(n_buckets)})) OVER (ORDER BY rk) AS c "
        f"FROM _rank WHERE rk <= {ROW_CAP}) WHERE c <= {CELL_BUDGET}"
    ).fetchall()[0][0]
    n_keys = con.execute("SELECT count(*) FROM _rank").fetchall()[0][0]
    cells = _arrow(con.sql(
        f"SELECT r.rk - 1 AS k, d.b, {cells_of} FROM _kb d "
        f"JOIN (SELECT key, rk FROM _rank WHERE rk <= {k_cube}) r USING (key) GROUP BY 1, 2 "
        + (f"UNION ALL SELECT -1, d.b, {cells_of} FROM _kb d "
           f"ANTI JOIN (SELECT key FROM _rank WHERE rk <= {k_cube}) r USING (key) GROUP BY 2 "
           if n_keys > k_cube else "") + "ORDER BY 2, 1"
    ))
    con.execute("DROP TABLE _rank")
    con.execute("DROP TABLE _kb")
    keys = [k if isinstance(k, int | str) else str(k) for k in _col(tot, "key")]
    out = {
        "keys": keys,
        "metrics": names,
        "tot": [_col(tot, m) for m in names],
        "cube_keys": int(k_cube),
        "total_keys": int(n_keys),
        "other": bool(n_keys > k_cube),
        "cells": {"b": _col(cells, "b"), "k": _col(cells, "k"), "m": [_col(cells, m) for m in names]},
    }
    if raws is not None:
        out["raw"] = [[[v, int(n)] for v, n in raws.get(k, [])] for k in keys]
    return out


def dashboard_data(con, filters: Filters | None = None, *, allowed_sites: list[str] | None = None,
                   tz: str = "UTC", params=None, tenant: bool = False) -> dict[str, Any]:
    """Everything the dashboard shows for ``filters``, as JSON-serialisable data.

    ``allowed_sites`` (a scoped token's sites) restricts every row to those sites and
    leaves out what is not per site (the files list, Snowplow events); ``tenant`` leaves it
    out alone (a site's report for its tenant: ``report --each-site``).  ``params`` (a
    :class:`~logferry.usage.reports.Params`) sets the uptime knobs (bucket, threshold, gap)
    and the span of a connection holding some sites' rows only (the lake's, pruned)."""
    from .reports import Params, jsonable, leave_out_lake_wide, prepare, result, run_one, selected
    from .ua import classify

    filters = filters or Filters()
    tz = check_tz(tz or "UTC")
    knobs = {} if params is None else {"bucket_minutes": params.bucket_minutes, "threshold": params.threshold,
                                       "gap_buckets": params.gap_buckets, "span": params.span}
    params = Params(since=filters.since, until=filters.until, sites=filters.sites, scope=allowed_sites,
                    status_classes=filters.status_classes, formats=filters.formats, bots=filters.bots,
                    top=ROW_CAP, **knobs)
    warnings = prepare(con, params)
    step_us = max(1, int(round(params.chart_bucket_minutes * 60))) * 1_000_000
    private = allowed_sites is not None or tenant
    reps = selected(extras=not private)
    notes: dict[str, list[str]] = {rep.name: [] for rep, _ in reps}  # (each report's warnings: in order)
    # longest first (the cube, then the reports that take longest on the bench logs), so
    # that both connections stay busy to the end
    jobs = sorted(((rep.name, partial(run_one, rep=rep, optional=optional, plain=True, warnings=notes[rep.name]))
                   for rep, optional in reps),
                  key=lambda j: _LONGEST.index(j[0]) if j[0] in _LONGEST else len(_LONGEST))
    done = _on_two(con, params, [("", lambda c: _cube(c, step_us, tz)), *jobs])
    cube = done.pop("")
    rep = result(params, warnings + [w for ws in notes.values() for w in ws],
                 {rep.name: done[rep.name] for rep, _ in reps if done[rep.name] is not None})
    # user agents: the classification of every key of the agent dimension
    agent = cube["dims"].get("agent")
    if agent is not None:
        agent["attrs"] = [list(classify(k or None)) for k in agent["keys"]]
        agent["attr_names"] = ["browser", "version", "os", "device", "bot"]
    perf = rep["reports"].get("performance", {}).get("sections", {})
    if "slowest_requests" in perf:
        perf["slowest_requests"] = perf["slowest_requests"][:SLOWEST_CAP]
    reports = {}
    for name, r in rep["reports"].items():
        reports[name] = {"title": r["title"], "columns": r["columns"], "sections": r["sections"]}
    if private:
        leave_out_lake_wide(reports)
    if allowed_sites is None:
        sites_q = ("SELECT DISTINCT coalesce(site, host) AS s FROM requests WHERE coalesce(site, host) "
                   f"IS NOT NULL ORDER BY 1 LIMIT {MAX_SITE_CHOICES}")
        sites = [s for (s,) in con.execute(sites_q).fetchall()]
    else:  # a scope is the site column's
        sites = [s for (s,) in con.execute("SELECT DISTINCT site FROM requests WHERE list_contains(?, site) "
                                           "ORDER BY 1", [list(allowed_sites)]).fetchall()]
    formats = [f for (f,) in con.execute(
        "SELECT DISTINCT format FROM files WHERE format IS NOT NULL ORDER BY 1").fetchall()]
    last = con.execute("SELECT max(\"timestamp\") FROM req").fetchall()[0][0]
    # (the cube and the sections are JSON values already, column by column: only the
    # small parts go through jsonable)
    return {
        "version": 1,
        "generated_at": rep["generated_at"],
        "tz": tz,
        "filters": jsonable(filters.as_dict()),
        "choices": jsonable({"sites": sites, "formats": formats}),
        "last_request": jsonable(last),
        "uptime_bucket_minutes": jsonable(params.bucket_minutes),
        "warnings": jsonable(rep["warnings"]),
        "cube": cube,
        "reports": reports,
    }


def document(con, params, *, html: bool, only: list[str] | None = None,
             tz: str = "UTC", title: str = "logferry report", tenant: bool = False) -> str:
    """The report of an open database as a document: the HTML dashboard (one
    self-contained page), or the reports' JSON (its text safe on a terminal).  ``tenant``:
    a site's own, what is not per site left out (``reports.leave_out_lake_wide``)."""
    import json

    from ..term import json_safe
    from .reports import jsonable, leave_out_lake_wide, run

    if html:
        con.execute(f"SET threads = {own_threads()}")  # (the command's own connection)
        f = Filters(since=params.since, until=params.until, sites=[params.site] if params.site else None,
                    bots=params.bots)
        return render_dashboard(dashboard_data(con, f, tz=tz, params=params, tenant=tenant), title=title)
    data = run(con, params, only=only, plain=True, extras=not tenant)
    if tenant:
        leave_out_lake_wide(data["reports"])
    # (the reports' sections are JSON values already: the rest goes through jsonable)
    out = {k: v if k == "reports" else jsonable(v) for k, v in data.items()}
    return json_safe(json.dumps(out, ensure_ascii=False))


# --- the page ----------------------------------------------------------------------------

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


def _static(name: str) -> str:
    return resources.files("logferry.usage").joinpath("static", name).read_text("utf-8")


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element (no '</', no '<!--', no U+2028/9)."""
    s = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_dashboard(data: dict[str, Any], *, api: str | None = None, live: bool = False,
                     status: str | None = None, title: str = "logferry report", nav: str | None = None,
                     lake: bool = False, snapshot: int | None = None) -> str:
    """One self-contained HTML page (inline script, style and data; no network unless ``api``
    is given, and then only to ``api`` and ``status``).  ``live``: the page fetches its data
    again as new lines are stored (it looks at ``status`` every second: the follower's commits,
    or with ``lake`` every 5 s the lake's snapshot, ``snapshot`` the one ``data`` was read
    from, None: none yet).
    ``nav``: markup put above the dashboard (the console's navigation, escaped by its template)."""
    from html import escape

    csp = CSP if api is None else CSP.replace("default-src 'none';", "default-src 'none'; connect-src 'self';")
    conf = {"api": api, "live": bool(live), "status": status, "title": title, "lake": bool(lake), "snapshot": snapshot}
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<meta name=\"color-scheme\" content=\"light dark\">",
        f"<title>{escape(title)}</title>",
        "<style>", _static("uPlot.min.css"), "</style><style>", _static("dashboard.css"), "</style>",
        "</head><body>", nav or "", "<div id=\"app\"><noscript>This report needs JavaScript.</noscript></div>",
        f"<script id=\"lf-data\" type=\"application/json\">{_script_json(data)}</script>",
        f"<script id=\"lf-conf\" type=\"application/json\">{_script_json(conf)}</script>",
        "<script>/*! uPlot (MIT licence, see below) */\n", _static("uPlot.iife.min.js").replace("</", "<\\/"),
        "\n/*\n", _static("uPlot.LICENSE").replace("*/", "* /"), "*/</script>",
        "<script>", _static("dashboard.js").replace("</script", "<\\/script"), "</script>",
        "</body></html>\n",
    ])


def write(data: dict[str, Any], path: str, *, title: str = "logferry report") -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_dashboard(data, title=title))
