"""One query per rule: the rule's measure at one or many instants (``steps``).

Every kind is a SQL text (data, below) over the usage database's ``requests`` table with
parameters only.  ``steps`` are the evaluation instants in epoch microseconds; the window
of step ``t`` is ``[t - window, t)``.  Live evaluation asks for one step, a replay for every
step of a time range -- the same query, so what a replay finds is what live evaluation
would have found.  The rows come back one per step:
``(t, value, holds, first_us, last_us, details)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError
from ..term import safe
from .rules import show_duration

#: the rows of a rule's ``sites`` (``$sites``; NULL: every row): their site column, or with
#: ``$hosts`` (``match = "site_or_host"``) their Host header -- which the client chooses:
#: a rule matching the site column only is one no other tenant's clients can set off or
#: show their requests in (the rules a site-scoped console token sees)
SITE_MATCH = ("($sites::VARCHAR[] IS NULL OR list_contains($sites::VARCHAR[], site) "
              "OR ($hosts::BOOLEAN AND list_contains($sites::VARCHAR[], host)))")


def site_params(rule: Any) -> dict[str, Any]:
    """:data:`SITE_MATCH`'s parameters for ``rule``."""
    return {"sites": list(rule.sites) or None, "hosts": rule.match == "site_or_host"}

#: the rule's requests: time range (zone maps prune the rest), sites, optional path prefix
_BASE = f"""
s AS (SELECT unnest($steps::BIGINT[]) AS t),
r AS (SELECT epoch_us("timestamp") AS us, status, duration_ms, path, referer FROM requests
      WHERE "timestamp" >= make_timestamptz($lo::BIGINT) AND "timestamp" < make_timestamptz($hi::BIGINT)
        AND {SITE_MATCH}
        AND ($prefix::VARCHAR IS NULL OR starts_with(path, $prefix::VARCHAR)))
"""

#: "the last request before instant X": the requests in buckets of at most a minute (and
#: at most the window), first and last of each; the last bucket starting before X holds it.
#: (An ASOF join on the few buckets instead of on every request: no sort of the table.)  When
#: the window after X is empty that bucket ends before X, so its ``hi`` is that request
#: (otherwise ``hi`` may be a request of the window: site_down does not hold then anyway).
_BUCKETS = """
, b AS (SELECT min(us) AS lo, max(us) AS hi FROM r GROUP BY us // least($w, 60000000))"""

SQL: dict[str, str] = {
    # value: share (%) of the class among the window's requests
    "error_share": """
SELECT s.t, count(r.us) AS n, count(r.us) FILTER (WHERE r.status // 100 = $cls) AS bad,
       min(r.us) FILTER (WHERE r.status // 100 = $cls), max(r.us) FILTER (WHERE r.status // 100 = $cls)
FROM s LEFT JOIN r ON r.us >= s.t - $w AND r.us < s.t GROUP BY s.t ORDER BY s.t""",
    # value: the percentile of duration_ms
    "latency": """
SELECT s.t, count(r.duration_ms) AS n, quantile_cont(r.duration_ms, $q),
       min(r.us) FILTER (WHERE r.duration_ms > $above), max(r.us) FILTER (WHERE r.duration_ms > $above)
FROM s LEFT JOIN r ON r.us >= s.t - $w AND r.us < s.t GROUP BY s.t ORDER BY s.t""",
    # value: minutes since the last request (the one before the window, within lookback)
    "site_down": _BUCKETS + """
, c AS (SELECT s.t, count(r.us) AS n FROM s LEFT JOIN r ON r.us >= s.t - $w AND r.us < s.t GROUP BY s.t)
SELECT c.t, c.n, b.hi FROM c ASOF LEFT JOIN b ON c.t - $w - 1 >= b.lo ORDER BY c.t""",
    # value: how many paths broke; details: each path, its hits and referers.  Only where
    # the database has requests from before the window (within the baseline): at the start
    # of the data every path would look new
    "broken_links": _BUCKETS + """
, nf AS (SELECT us, path, referer FROM r WHERE status IN (404, 410)),
win AS (SELECT s.t, nf.path, count(*) AS hits, min(nf.us) AS f, max(nf.us) AS l,
               list(DISTINCT nf.referer ORDER BY nf.referer) FILTER (WHERE nf.referer NOT IN ('-', '')) AS refs
        FROM s JOIN nf ON nf.us >= s.t - $w AND nf.us < s.t GROUP BY s.t, nf.path HAVING count(*) > $min_hits),
old AS (SELECT DISTINCT win.t, win.path FROM win JOIN nf ON nf.path = win.path
        AND nf.us >= win.t - $w - $baseline AND nf.us < win.t - $w),
new AS (SELECT * FROM win ANTI JOIN old USING (t, path))
SELECT s.t, count(new.path), min(new.f), max(new.l),
       list({'path': new.path, 'hits': new.hits, 'referers': new.refs[:3]} ORDER BY new.hits DESC, new.path)
         FILTER (WHERE new.path IS NOT NULL)
FROM s ASOF LEFT JOIN b ON s.t - $w - 1 >= b.lo
LEFT JOIN new ON new.t = s.t AND b.hi >= s.t - $w - $baseline
GROUP BY s.t ORDER BY s.t""",
    # value: requests in the window / requests in the same window a day or a week before
    "traffic": """
, c AS (SELECT s.t, count(r.us) AS n FROM s LEFT JOIN r ON r.us >= s.t - $w AND r.us < s.t GROUP BY s.t),
p AS (SELECT s.t, count(r.us) AS n FROM s LEFT JOIN r
      ON r.us >= s.t - $off - $w AND r.us < s.t - $off GROUP BY s.t)
SELECT c.t, c.n, p.n FROM c JOIN p USING (t) ORDER BY c.t""",
}

_Q = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_OFFSET = {"yesterday": 86400, "last_week": 7 * 86400}
US = 1_000_000


@dataclass
class Observation:
    """A rule's measure at one instant."""

    t: int  # evaluation instant, epoch microseconds
    value: float | None
    holds: bool
    first: int | None = None  # the evidence's first and last instants in the window
    last: int | None = None
    details: Any = None


def ts(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / US, UTC)


def _params(rule, steps: list[int]) -> tuple[dict[str, Any], int]:
    """The kind's parameters and how far before the first window its query reads."""
    w = int(rule.window * US)
    p: dict[str, Any] = {"w": w}
    extra = 0
    if rule.kind == "error_share":
        p["cls"] = int(rule.class_[0])
    elif rule.kind == "latency":
        p |= {"q": _Q[rule.percentile], "above": rule.above_ms}
    elif rule.kind == "site_down":
        extra = int(rule.lookback * US)
    elif rule.kind == "broken_links":
        extra = int(rule.baseline * US)
        p |= {"min_hits": rule.min_hits, "baseline": extra}
    elif rule.kind == "traffic":
        extra = _OFFSET[rule.compare] * US
        p["off"] = extra
    return p, extra


def reach(rule) -> float:
    """How far before an evaluation instant the rule reads, in seconds (not ``sql``)."""
    return _params(rule, [0])[1] / US + rule.window


def measure(con, rule, steps: list[int]) -> list[Observation]:
    """The rule at each of ``steps`` (epoch microseconds, ascending): one query."""
    if rule.kind == "sql":
        return [_sql_step(con, rule, t) for t in steps]
    p, extra = _params(rule, steps)
    p |= {"steps": steps, "lo": steps[0] - p["w"] - extra, "hi": steps[-1],
          **site_params(rule), "prefix": getattr(rule, "path_prefix", None)}
    rows = con.execute("WITH " + _BASE + SQL[rule.kind], p).fetchall()
    return [JUDGE[rule.kind](rule, row) for row in rows]


def _error_share(rule, row) -> Observation:
    t, n, bad, f, l_ = row
    v = round(100.0 * bad / n, 2) if n else None
    return Observation(t, v, bool(n >= rule.min_requests and v is not None and v > rule.above_pct), f, l_,
                       {"requests": n, "matching": bad})


def _latency(rule, row) -> Observation:
    t, n, q, f, l_ = row
    v = None if q is None else round(q, 1)
    return Observation(t, v, bool(n >= rule.min_requests and v is not None and v > rule.above_ms), f, l_,
                       {"requests": n})


def _site_down(rule, row) -> Observation:
    t, n, before = row
    recent = before is not None and before >= t - int((rule.window + rule.lookback) * US)
    v = round((t - before) / 60e6, 1) if before is not None else None
    return Observation(t, v, bool(n == 0 and recent), before, t, {"requests": n})


def _broken(rule, row) -> Observation:
    t, n, f, l_, paths = row
    return Observation(t, n, n > 0, f, l_, {"paths": paths or []})


def _traffic(rule, row) -> Observation:
    t, n, prev = row
    v = round(n / prev, 3) if prev else None
    holds = bool(prev >= rule.min_requests and v is not None and (
        (rule.below is not None and v < rule.below) or (rule.above is not None and v > rule.above)))
    return Observation(t, v, holds, t - int(rule.window * US), t, {"requests": n, "before": prev})


JUDGE = {"error_share": _error_share, "latency": _latency, "site_down": _site_down,
         "broken_links": _broken, "traffic": _traffic}

#: what a rule's value means, and its threshold, for notices
UNITS = {"error_share": "%", "latency": "ms", "site_down": "min", "broken_links": "paths",
         "traffic": "x", "sql": "rows"}


def threshold(rule) -> str:
    k = rule.kind
    if k == "error_share":
        return f"{rule.class_} share > {rule.above_pct:g}% (at least {rule.min_requests} requests)"
    if k == "latency":
        where = f" on {safe(rule.path_prefix)}*" if rule.path_prefix else ""  # (a title: one line of text)
        return f"{rule.percentile} > {rule.above_ms:g} ms{where} (at least {rule.min_requests} requests)"
    if k == "site_down":
        return f"no request for {show_duration(rule.window)}"
    if k == "broken_links":
        return f"a new path answering 404/410 more than {rule.min_hits} times"
    if k == "traffic":
        parts = ([f"< {rule.below:g}x"] if rule.below is not None else []) + (
            [f"> {rule.above:g}x"] if rule.above is not None else [])
        return f"requests {' or '.join(parts)} of {rule.compare.replace('_', ' ')} (at least {rule.min_requests})"
    return "the query returns rows"


# --- the free SQL rule ------------------------------------------------------------------------

_SQL_WRAP = f"""WITH requests AS (
  SELECT * FROM main.requests
  WHERE "timestamp" >= $start AND "timestamp" < $end AND {SITE_MATCH})
SELECT * FROM ({{q}}) LIMIT 20"""


def _sql_step(con, rule, t: int) -> Observation:
    import duckdb

    start = t - int(rule.window * US)
    p = {"start": ts(start), "end": ts(t), **site_params(rule)}
    try:
        rel = con.execute(_SQL_WRAP.format(q=rule.query), p)
        cols = [d[0] for d in rel.description]
        rows = rel.fetchall()
    except duckdb.Error as e:
        raise ConfigError(f"sql rule: the query failed: {str(e).splitlines()[0]}") from None
    details = [dict(zip(cols, (_plain(v) for v in r), strict=True)) for r in rows[:5]]
    return Observation(t, len(rows), bool(rows), start, t, {"rows": details})


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)
