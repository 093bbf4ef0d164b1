"""Benchmark of the usage lake: ingest with 1 and 2 Dask workers (and in one process),
a per-site report from the lake, the rollups report; peak RSS and the lake's size.

    uv run python bench/bench_lake.py                       # ~100 files, 20M lines, 20 sites (1M rows each)
    uv run python bench/bench_lake.py --files 4 --lines 5000   # a smoke run
    uv run python bench/bench_lake.py --reports-only WORK/lake     # the report steps on a lake made before

Generated IIS logs (bench/gen.py), one site per file in turn (W3SVC1..N), each file its
own traffic (a different seed).  Every ingest starts from an empty lake.  Figures are
wall seconds of the command, lines per second, and the peak RSS of the largest process
(the driver or a worker: children's maximum).  Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import gen  # noqa: E402

LOGFERRY = [sys.executable, "-c", "import sys; from logferry.cli import main; sys.argv[0] = 'logferry'; main()"]


def make_logs(work: Path, files: int, lines: int, sites: int) -> list[str]:
    out = []
    (work / "logs").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        p = work / "logs" / f"u_ex{i:04d}.log"
        if not p.exists():
            tmp = gen.iis(work / "logs" / "tmp.log", lines, seed=i + 1)
            p.write_text(tmp.read_text().replace(" W3SVC1 ", f" W3SVC{i % sites + 1} "))
            tmp.unlink()
        out.append(str(p))
    return out


def cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def timed(args: list[str]) -> tuple[float, str, float]:
    """(wall seconds, stdout, CPU seconds of the command and the processes it waited for)."""
    t0, c0 = time.perf_counter(), cpu()
    r = subprocess.run(LOGFERRY + args, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"logferry {' '.join(args[:2])}... exited {r.returncode}: {r.stderr[-800:]}")
    return dt, r.stdout, cpu() - c0


def alone(args: list[str]) -> tuple[float, str, float, float]:
    """(wall seconds, stderr, CPU seconds, peak RSS in MiB) of one command on its own
    (``wait4``'s rusage of the child, not the largest of every child so far)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(LOGFERRY + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    _pid, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        sys.exit(f"logferry {' '.join(args[:2])}... exited {p.returncode}: {err[-800:]}")
    return time.perf_counter() - t0, err, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


#: a warm process (imports, rules and caches paid by a first round): the second round's
#: wall and CPU seconds of W3SVC1's report JSON on a lake connection, and of the console's
#: /api/report data (UsageSource.dashboard: the dashboard's cube and reports)
WARM = """
import json, resource, sys, time
from logferry.usage.dashboard import Filters
from logferry.usage.reports import Params, run
from logferry.usage.source import UsageSource

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def report():
    p = Params(site="W3SVC1")
    with src.connect(p) as con:
        run(con, p, plain=True)

def on_table():
    # the same reports on the site's rows copied into a DuckDB table first, the copy not
    # counted: what the report SQL costs without reading Parquet (the floor of any lake layout)
    p = Params(site="W3SVC1")
    with src.connect(p) as con:
        con.execute("SET memory_limit = '2GB'")
        con.execute("CREATE TABLE _m AS SELECT * FROM requests; DROP VIEW requests; "
                    "ALTER TABLE _m RENAME TO requests")
        t, c = time.perf_counter(), cpu()
        run(con, p, plain=True)
        return [time.perf_counter() - t, cpu() - c]

src, out = UsageSource.lake(sys.argv[1]), {}
for name, work in (("report", report), ("dashboard", lambda: src.dashboard(Filters(sites=["W3SVC1"])))):
    work()
    t, c = time.perf_counter(), cpu()
    work()
    out[name] = [time.perf_counter() - t, cpu() - c]
out["table"] = on_table()
print(json.dumps(out))
"""


def site_reports(lake: str, rows: int) -> None:
    """W3SVC1's report from the lake: the command (cold: a new process), the same in a warm
    process and the console's data for the site; then the rollups report."""
    dt, _, c = timed(["report", "--lake", lake, "--site", "W3SVC1", "--json"])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"report --lake --site W3SVC1 ({rows:,} rows): {dt:.2f} s (CPU {c:.2f} s; peak RSS so far {rss:,.0f} MiB)")
    r = subprocess.run([sys.executable, "-c", WARM, lake], capture_output=True, text=True, check=True)
    w = json.loads(r.stdout)
    print(f"  warm process: report JSON {w['report'][0]:.2f} s (CPU {w['report'][1]:.2f} s); console "
          f"/api/report data (dashboard) {w['dashboard'][0]:.2f} s (CPU {w['dashboard'][1]:.2f} s)")
    print(f"  the same report's queries on the site's rows in a DuckDB table (copy not counted): "
          f"{w['table'][0]:.2f} s (CPU {w['table'][1]:.2f} s)")
    dt, _, c = timed(["report", "--lake", lake, "--rollups", "--json"])
    print(f"report --lake --rollups (every site): {dt:.2f} s (CPU {c:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--lines", type=int, default=200_000, help="lines per file")
    ap.add_argument("--sites", type=int, default=20)
    ap.add_argument("--workers", default="0,1,2", help="worker counts to try (0: one process, no Dask)")
    ap.add_argument("--work", default=None, help="folder for logs and lakes (default: a temp dir)")
    ap.add_argument("--reports-only", metavar="LAKE", default=None,
                    help="only the per-site report steps, on this lake (read, not written)")
    a = ap.parse_args()
    gen.compile_logferry()
    if a.reports_only:
        site_reports(a.reports_only, a.files * a.lines // a.sites)
        return
    work = Path(a.work or tempfile.mkdtemp(prefix="bench-lake-"))
    logs = make_logs(work, a.files, a.lines, a.sites)
    total = a.files * a.lines
    print(f"{a.files} files, {total:,} lines, {a.sites} sites in {work}")
    lake = work / "lake"
    for n in (int(x) for x in a.workers.split(",")):
        shutil.rmtree(lake, ignore_errors=True)
        dt, out, c = timed(["ingest", *logs, "--lake", str(lake), "--json", "--quiet",
                            *(["--workers", str(n)] if n else [])])
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        s = json.loads(out)
        what = f"{n} worker{'s' if n > 1 else ''}" if n else "one process"
        print(f"ingest, {what:>11}: {dt:7.2f} s  {total / dt:>11,.0f} lines/s; CPU {c:6.1f} s = "
              f"{total / c:,.0f} lines per CPU second (records {s['records']:,}; peak RSS so far {rss:,.0f} MiB)")
    st = json.loads(timed(["lake", "status", str(lake), "--json"])[1])
    size = sum(t["bytes"] for t in st["tables"].values())
    print(f"lake: {size / 2**20:,.1f} MiB in {sum(t['data_files'] for t in st['tables'].values())} data files "
          f"({size / total:.1f} bytes per line); log bytes {sum(os.path.getsize(p) for p in logs) / 2**20:,.1f} MiB")
    site_reports(str(lake), total // a.sites)
    dt, err, c, rss = alone(["lake", "compact", str(lake)])
    print(f"lake compact (one process): {dt:.2f} s (CPU {c:.2f} s, peak RSS {rss:,.0f} MiB): {err.strip()}")
    dt, _, c = timed(["report", "--lake", str(lake), "--site", "W3SVC1", "--json"])
    print(f"  report --lake --site W3SVC1 after it: {dt:.2f} s (CPU {c:.2f} s)")
    (work / "db.duckdb").unlink(missing_ok=True)  # (a --work folder kept from a run before)
    dt, _, c = timed(["ingest", *logs, "--db", str(work / "db.duckdb"), "--quiet"])
    print(f"for comparison, ingest --db: {dt:.2f} s, CPU {c:.1f} s = {total / c:,.0f} lines per CPU second")
    dt, _, c = timed(["report", "--db", str(work / "db.duckdb"), "--site", "W3SVC1", "--json"])
    print(f"for comparison, report --db --site W3SVC1 on that file: {dt:.2f} s (CPU {c:.2f} s)")
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
