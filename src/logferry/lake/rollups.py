"""Rollups, computed at ingest: per site and hour, requests by status class, bytes sent,
distinct visitors as a HyperLogLog sketch and latency as a fixed log-scale histogram --
all mergeable, so a view over every tenant and any span of hours reads a few rows per
site-hour instead of the requests.

Exact: requests, the status classes, bytes (sums of exact counts).  Approximate, with
the error stated in every report (:data:`BOUNDS`):

* visitors: the reports' visitor (one client IP + user agent on one UTC day, the same
  64-bit hash) counted with a HyperLogLog of 2^11 one-byte registers: relative standard
  error 1.04 / sqrt(2048) = 2.3% (linear counting below 5,120, where it is smaller);
* latency percentiles (``duration_ms``): 8 buckets per doubling from 1 microsecond, the
  estimate the geometric middle of the bucket holding rank ceil(q * n): within
  2^(1/16) - 1 = 4.4% of the nearest-rank percentile (the value of that rank).  The exact
  report interpolates between the two values around q * (n - 1), one rank apart: where
  values are dense they are a bucket apart at most (2^(3/16) - 1 = 13.9%); where they are
  sparse (a handful of requests) the two can be far apart and so can the estimate.

A rollup row carries the read that stored its rows, and counts only when the manifest
lists that read (exactly once, as the requests).  A read's last line has rollup rows of
its own, with its line number: a line read before its end was written is read again by
the next ingest, the manifest then clips the earlier read's line range before it, and the
earlier read's row for that line stops counting -- as its rows in the exact tables do.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .tables import HLL_PRECISION as P
from .tables import ROLLUP_CLASSES as CLASSES
from .tables import ROLLUPS

M = 1 << P
NB = 256  #: latency buckets: bucket k holds [2^(k/8), 2^((k+1)/8)) microseconds (0: below 2^(1/8))
PER_DOUBLING = 8
BOUNDS = {
    "visitors_relative_standard_error": round(1.04 / math.sqrt(M), 4),
    "latency_relative_error": round(2 ** (1 / (2 * PER_DOUBLING)) - 1, 4),
    "latency_relative_error_interpolated": round(2 ** (3 / (2 * PER_DOUBLING)) - 1, 4),
}

#: a rollup row's site-hour: (name, SQL) of its key columns
_SITE_HOUR = (("lake_site", "coalesce(site, host)"), ("from_host", "site IS NULL"),
              ("hour", 'epoch_us("timestamp") // 3600000000'))
#: ... of several reads' rows: a read's last line apart (its line number; NULL for the others)
_READ_SITE_HOUR = (("read_id", "read_id"), ("line", "CASE WHEN line_number = max(line_number) OVER "
                                                    "(PARTITION BY read_id) THEN line_number END"), *_SITE_HOUR)
#: per row of a batch: its group (by ``{keys}``), the visitor's hash, the latency bucket
_ROW_SQL = f"""
SELECT *, dense_rank() OVER (ORDER BY {{names}}) - 1 AS gid FROM (
SELECT {{keys}},
       CASE WHEN status BETWEEN 100 AND 599 THEN status // 100 ELSE 6 END AS cls,
       coalesce(bytes_sent, 0) AS bytes,
       "timestamp" IS NOT NULL AS has_v,
       coalesce(hash((epoch_us("timestamp") - ((epoch_us("timestamp") % 86400000000) + 86400000000)
                      % 86400000000) // 86400000000, coalesce(client_ip, ''), coalesce(user_agent, '')),
                0) AS v,
       CASE WHEN duration_ms > 0 THEN least({NB - 1}, greatest(0,
            floor(log2(duration_ms * 1000) * {PER_DOUBLING})::INTEGER)) ELSE -1 END AS lat
FROM batch)
"""


#: each thread's in-memory DuckDB (one thread) for the batches it rolls up: opening one
#: per read cost more than rolling up a small file's rows
_DUCK = threading.local()


def _con() -> Any:
    con = getattr(_DUCK, "con", None)
    if con is None:
        from ..usage.db import duck

        con = _DUCK.con = duck(config={"threads": 1})
    return con


class Rollup:
    """The rollup rows of one read, added to a batch at a time."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str | None, bool, int | None], dict[str, Any]] = {}
        self.last: pa.Table | None = None  # the rows of the highest line yet (the read's last, at its end)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """A batch's rows (the last line's held back: :meth:`table` rolls it up alone)."""
        t = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if self.last is not None:  # (a read's rows held before it wrote its own: with the table's types)
            t = pa.concat_tables([self.last, t], promote_options="permissive")
        line = t.column("line_number")
        last = pc.fill_null(pc.equal(line, pc.max(line)), False)
        self.last = t.filter(last)
        self._add(t.filter(pc.invert(last)))

    def _add(self, t: pa.Table) -> None:
        if not t.num_rows:
            return
        keys, sums = _groups(t, _SITE_HOUR)
        for i, k in enumerate(keys):
            g = self.groups.get(k)
            if g is None:
                g = self.groups[k] = {"requests": 0, "classes": np.zeros(6, np.int64), "bytes_sent": 0,
                                      "hll": np.zeros(M, np.uint8), "latency": np.zeros(NB, np.int64)}
            for name in ("requests", "classes", "bytes_sent", "latency"):
                g[name] += sums[name][i]
            np.maximum(g["hll"], sums["hll"][i], out=g["hll"])

    @property
    def empty(self) -> bool:
        return not self.groups and self.last is None

    def table(self, read_id: int) -> pa.Table:
        """The read's rollup rows: its lines but the last, then the last line's own."""
        rows = self._rows(read_id, None)
        if self.last is not None and self.last.num_rows:
            tail = Rollup()
            tail._add(self.last)
            rows += tail._rows(read_id, self.last.column("line_number")[0].as_py())
        return _table(rows)

    def _rows(self, read_id: int, line: int | None) -> list[dict[str, Any]]:
        return [_row(read_id, line, site, host, h, g) for (site, host, h), g in self.groups.items()]


def reads_table(t: pa.Table) -> pa.Table:
    """The rollup rows of several reads' requests ``t`` (with their ``read_id``) at once,
    as each read's :class:`Rollup` would give them (a task's small files: one DuckDB query
    for them all, not two a file)."""
    if not t.num_rows:
        return _table([])
    keys, sums = _groups(t, _READ_SITE_HOUR)
    return _table([_row(rid, line, site, host, h, {n: v[i] for n, v in sums.items()})
                   for i, (rid, line, site, host, h) in enumerate(keys)])


def _groups(t: pa.Table, keys: tuple[tuple[str, str], ...]) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """``t``'s rows grouped by ``keys`` (name, SQL): each group's key values, and the sums
    of the groups, in the same order (arrays: requests, classes, bytes_sent, hll, latency)."""
    from ..usage.reports import _arrow

    con = _con()
    con.register("batch", t)
    names = [name for name, _ in keys]
    t = _arrow(con.sql(_ROW_SQL.format(keys=", ".join(f"{sql} AS {name}" for name, sql in keys),
                                       names=", ".join(names))))
    con.unregister("batch")
    first = t.group_by("gid").aggregate([(n, "min") for n in names]).sort_by("gid")
    found = [tuple(r) for r in zip(*(first.column(f"{n}_min").to_pylist() for n in names), strict=True)]
    c = {n: t.column(n).to_numpy(zero_copy_only=False) for n in ("gid", "cls", "bytes", "has_v", "v", "lat")}
    gid, n = c["gid"].astype(np.int64), len(found)
    bytes_sent = np.zeros(n, np.int64)
    np.add.at(bytes_sent, gid, c["bytes"].astype(np.int64))
    hll = np.zeros((n, M), np.uint8)
    has_v = c["has_v"].astype(bool)
    idx, rank = _registers(c["v"][has_v].astype(np.uint64))
    np.maximum.at(hll, (gid[has_v], idx), rank)
    lat = c["lat"].astype(np.int64)
    return found, {
        "requests": np.bincount(gid, minlength=n), "bytes_sent": bytes_sent, "hll": hll,
        "classes": np.bincount(gid * 6 + c["cls"].astype(np.int64) - 1, minlength=n * 6).reshape(n, 6),
        "latency": np.bincount(gid[lat >= 0] * NB + lat[lat >= 0], minlength=n * NB).reshape(n, NB)}


def _row(read_id: int, line: int | None, site: Any, host: Any, h: Any, g: dict[str, Any]) -> dict[str, Any]:
    return {"lake_site": site, "from_host": host, "hour": None if h is None else int(h) * 3_600_000_000,
            "read_id": read_id, "line_number": line, "requests": int(g["requests"]),
            **dict(zip(CLASSES, (int(x) for x in g["classes"]), strict=True)),
            "bytes_sent": int(g["bytes_sent"]), "visitors": g["hll"].tobytes(), "latency": g["latency"].tolist()}


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema(
        [pa.field("hour", pa.int64()) if f.name == "hour" else f for f in ROLLUPS])).cast(ROLLUPS)


def _registers(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Register index (the hash's top P bits) and rank (1 + leading zeros of the rest)."""
    idx = (v >> np.uint64(64 - P)).astype(np.int64)
    rest = v & np.uint64((1 << (64 - P)) - 1)
    bits = np.zeros(rest.shape, np.int64)
    nz = rest > 0
    bits[nz] = np.frexp(rest[nz].astype(np.float64))[1]  # bit length (exact below 2^53)
    return idx, (64 - P + 1 - bits).astype(np.uint8)


def estimate(registers: np.ndarray) -> float:
    """HyperLogLog's estimate, with linear counting for small counts."""
    alpha = 0.7213 / (1 + 1.079 / M)
    e = alpha * M * M / float(np.sum(np.ldexp(1.0, -registers.astype(np.int64))))
    zeros = int(np.count_nonzero(registers == 0))
    if e <= 2.5 * M and zeros:
        return M * math.log(M / zeros)
    return e


def percentile(hist: np.ndarray, q: float) -> float | None:
    """The q-quantile of the histogram, in milliseconds (None: no latency)."""
    n = int(hist.sum())
    if not n:
        return None
    k = int(np.searchsorted(np.cumsum(hist), max(1, math.ceil(q * n))))
    return 2 ** ((k + 0.5) / PER_DOUBLING) / 1000


def report(lake: Any, params: Any, scope: list[str] | None = None) -> dict[str, Any]:
    """Every site (or ``params.site``) in ``params``' hours, from the counted rollups;
    ``scope``: a token's sites only, as its reports see them (rows whose site column is
    one of them: not a host of that name in rows without a site, nor a rollup written
    before rollups said which it was)."""
    import datetime as dt

    from ..usage.reports import result
    from .query import rollup_rows

    rows = rollup_rows(lake, params)
    if scope is not None:
        rows = [r for r in rows if r["from_host"] is False and r["lake_site"] in scope]
    sites: dict[Any, dict[str, Any]] = {}
    for r in rows:
        s = sites.setdefault(r["lake_site"], {"requests": 0, "bytes_sent": 0, "hll": np.zeros(M, np.uint8),
                                              "latency": np.zeros(NB, np.int64),
                                              **dict.fromkeys(CLASSES, 0)})
        for k in ("requests", "bytes_sent", *CLASSES):
            s[k] += r[k]
        np.maximum(s["hll"], np.frombuffer(r["visitors"], np.uint8), out=s["hll"])
        s["latency"] += np.asarray(r["latency"], np.int64)
    out = [_site_row(site, s) for site, s in sorted(sites.items(), key=lambda x: (x[0] is None, x[0] or ""))]
    data = result(params, _hour_warnings(params), {})
    data.pop("reports")
    data.update(bounds=BOUNDS, exact=["requests", *CLASSES, "bytes_sent"],
                approximate=["visitors", "p50_ms", "p90_ms", "p99_ms"], sites=out,
                hours=len({r["hour"] for r in rows}))
    data["generated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return data


def _hour_warnings(params: Any) -> list[str]:
    """A --since/--until inside an hour: the rollups count whole hours (those that start in
    [since, until)), so say so -- a half-hour range read no rows and said nothing."""
    from .query import _us

    off = [f"--{n}" for n in ("since", "until")
           if getattr(params, n) is not None and _us(n, getattr(params, n)) % 3_600_000_000]
    return [f"{' and '.join(off)} not on the hour: the rollups count the whole hours that start in "
            "[since, until)"] if off else []


def _site_row(site: Any, s: dict[str, Any]) -> dict[str, Any]:
    lat = s["latency"]
    return {"site": site, "requests": s["requests"], **{c: s[c] for c in CLASSES},
            "bytes_sent": s["bytes_sent"], "visitors": min(round(estimate(s["hll"])), s["requests"]),
            **{f"p{int(q * 100)}_ms": _round(percentile(lat, q)) for q in (0.5, 0.9, 0.99)}}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
