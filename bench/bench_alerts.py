"""Time of one evaluation of every default alert rule on the bench database.

    python bench/bench_alerts.py [--lines 2000000] [--work DIR] [--repeat 5] [--replay]

Generates bench/gen.py's IIS log (``--lines`` lines, one day) and ingests it into
``WORK/alerts-N.duckdb`` once (both kept for the next run), then evaluates the default
rules -- the four ``logferry demo`` writes (5xx share, site down, p95 latency, new broken
links) -- at the data's last instant, one query per rule, ``--repeat`` times; prints each
rule's time and the total (the fastest of the repeats).  Target: all of them in under
200 ms on the 2M-row database.  ``--replay`` also times a replay of the whole day minute
by minute (what ``logferry alerts test --all`` does).  Not run by the test suite.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen  # noqa: E402


def database(lines: int, work: Path) -> Path:
    from logferry.usage import connect, ingest

    db = work / f"alerts-{lines}.duckdb"
    if db.exists():
        return db
    log = work / f"u_ex-{lines}.log"
    if not log.exists():
        gen.iis(log, lines)
    con = connect(db)
    s = ingest(con, [str(log)])
    con.close()
    print(f"ingested {s.records} records into {db}", file=sys.stderr)
    return db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "logferry-bench")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--replay", action="store_true")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)

    from logferry.alerts.demo import DEMO_RULES
    from logferry.alerts.engine import data_range, evaluate, replay
    from logferry.alerts.rules import AlertsCfg
    from logferry.alerts.store import Store
    from logferry.usage.db import connect

    rules = AlertsCfg.model_validate({"rules": DEMO_RULES}).rules
    con = connect(database(a.lines, a.work), read_only=True)
    n = con.execute("SELECT count(*) FROM requests").fetchall()[0][0]
    lo, hi = data_range(con)
    best: dict[str, float] = {}
    store = Store()  # (the state a scheduler keeps between evaluations)
    for _ in range(a.repeat):
        for name, rule in rules.items():
            t0 = time.perf_counter()
            evaluate({name: rule}, con, hi / 1e6, store)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    print(f"{n} rows; one evaluation of each default rule (fastest of {a.repeat}):")
    for name, dt in best.items():
        print(f"  {name:<18} {dt * 1000:8.1f} ms")
    total = sum(best.values())
    print(f"  {'all rules':<18} {total * 1000:8.1f} ms  (target < 200 ms: {'met' if total < 0.2 else 'NOT met'})")
    if a.replay:
        t0 = time.perf_counter()
        notices = replay(rules, con, lo, hi, 60, Store())
        print(f"replay of {(hi - lo) / 3.6e9:.1f} h minute by minute: {time.perf_counter() - t0:.2f} s, "
              f"{len(notices)} notices")


if __name__ == "__main__":
    main()
