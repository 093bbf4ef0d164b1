"""logferry's dashboard vs GoAccess's HTML report, side by side on the same generated logs.

    GOACCESS=/path/to/goaccess python bench/bench_report.py [--lines 2000000] [--cf-lines 2000000]
                                 [--work DIR] [--no-goaccess] [--repeat N] [--browser] [--jobs 2]

For each log (IIS W3C and CloudFront from bench/gen.py: ~20k paths in a Zipf mix, 60k client
IPs, a few dozen user agents, real referers and status mix; ``--cf-lines 0`` skips
CloudFront), each as its own process:

- ``goaccess -j 2 FILE -o report.html`` (the binary ``GOACCESS=`` names, e.g. a build of
  GoAccess 1.11, else ``goaccess`` on the PATH; ``-j`` where it has parsing threads);
- ``logferry report FILE --html`` (no database kept), and with ``--threads 1`` and
  ``--threads 2`` (``--workers``): the parallel efficiency of one file on 1 vs 2 workers
  (wall of 1 / wall of 2);
- both tools on one core (``taskset -c 0``; GoAccess with ``-j 1``) against all cores: how
  each scales with cores (wall on 1 core / wall on all), the figure that says what a
  bigger machine brings;
- ``logferry ingest FILE --db`` into a fresh database, then ``logferry report --db --html``.

Wall time, CPU time (user + sys) and peak RSS (``wait4``'s rusage of each child) are printed;
lines/s are on wall time; CPU seconds per million lines (user + sys) of ``report FILE`` are
printed beside GoAccess's.  On a shared machine wall time is noisy: compare CPU seconds too,
or use ``--repeat N`` (the fastest run of each tool is shown, with the largest peak RSS of
its runs).  ``--browser`` opens the ingest + report dashboard in headless Chromium and
prints the time to its first chart.  Not run by the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen  # noqa: E402  (bench/gen.py: deterministic IIS and CloudFront generators)

GOACCESS_FORMATS = {
    # IIS fields of gen.IIS_HEADER, in order
    "iis": ["--log-format=%d %t %^ %^ %m %U %q %^ %^ %h %u %R %v %s %^ %^ %b %^ %L",
            "--date-format=%Y-%m-%d", "--time-format=%T"],
    "cloudfront": ["--log-format=CLOUDFRONT"],
}


def run(cmd: list[str], **kw) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MiB, exit code) of one child process."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errf:  # a file, not a pipe: a chatty child cannot block
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf, **kw)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    if p.returncode:
        print(f"  ! {' '.join(cmd[:3])}... exited {p.returncode}: {err.strip()[-400:]}", file=sys.stderr)
    return dt, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, p.returncode


def warm(path: Path, logferry: list[str] | None = None) -> None:
    """Read ``path`` once so that every timed command starts with it in the page cache: a
    VM's page cache can lose a cold file in the minutes GoAccess runs, and the command after
    would then also time the disk (small reads: the children fork from this process).
    With ``logferry``, also run an untimed report of the log's first lines, so that its
    libraries (DuckDB's and Arrow's, tens of MB) are in the cache too: right after a
    GoAccess run, a report once took 23 s for 12.7 s of CPU, reading them back from disk."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    if logferry is not None:
        head = path.with_name(path.stem + "-head.log")
        if not head.exists():
            with open(path, "rb") as f, open(head, "wb") as out:
                out.writelines(itertools.islice(f, 5000))
        subprocess.run([*logferry, "report", str(head), "--html", str(head.with_suffix(".html"))],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:  # small reads: the children fork from this process (RSS)
        while b := f.read(1 << 20):
            n += b.count(b"\n")
    return n


def first_chart_seconds(html: Path) -> float:
    """Seconds from navigation to the first drawn chart of the dashboard in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1400, "height": 900})
        t = time.perf_counter()
        page.goto(html.resolve().as_uri(), wait_until="commit")
        page.wait_for_selector(".uplot canvas", timeout=60_000)
        took = time.perf_counter() - t
        b.close()
    return took


class Best:
    """The fastest successful run (wall, CPU) with the largest peak RSS of all runs."""

    def __init__(self):
        self.v: tuple[float, float, float] | None = None

    def add(self, wall: float, cpu: float, rss: float, ok: bool) -> None:
        if not ok:
            return
        if self.v is None or wall < self.v[0]:
            self.v = (wall, cpu, max(rss, self.v[2] if self.v else 0))
        else:
            self.v = (self.v[0], self.v[1], max(self.v[2], rss))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000, help="IIS log lines")
    ap.add_argument("--cf-lines", type=int, default=2_000_000, help="CloudFront log lines")
    ap.add_argument("--work", default=None, help="folder for logs and outputs (default: a temp dir)")
    ap.add_argument("--no-goaccess", action="store_true", help="logferry only")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest is shown")
    ap.add_argument("--browser", action="store_true", help="time the dashboard's first chart in Chromium")
    ap.add_argument("--jobs", type=int, default=2, help="GoAccess's parsing threads (-j), where it has them")
    ap.add_argument("--workers", type=int, default=2, help="logferry's --threads against --threads 1")
    args = ap.parse_args()
    gen.compile_logferry()
    work = Path(args.work or tempfile.mkdtemp(prefix="logferry-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    logferry = [sys.executable, "-m", "logferry.cli"]
    found = None if args.no_goaccess else gen.goaccess(args.jobs)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else None
    goaccess = found[0] if found else None
    if found:
        print(f"{found[1]} ({' '.join(goaccess)})", file=sys.stderr)

    logs = {"iis": (work / f"iis-{args.lines}.log", args.lines),
            "cloudfront": (work / f"cloudfront-{args.cf_lines}.log", args.cf_lines)}
    rows = []
    for kind, (path, n) in logs.items():
        if n <= 0:
            continue
        if not path.exists():  # in a child: this process stays small (children fork from it: RSS)
            t = time.perf_counter()
            subprocess.run([sys.executable, str(Path(gen.__file__)), kind, str(path), str(n)], check=True)
            print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr)
        lines = count_lines(path)
        db = work / f"{kind}.duckdb"
        ga, direct, single, multi, two = Best(), Best(), Best(), Best(), Best()
        ga1, direct1 = Best(), Best()  # (on one core)
        for _ in range(max(1, args.repeat)):
            if goaccess:
                warm(path)
                tg, ug, rg, cg = run([*goaccess, str(path), "--no-global-config", "--no-progress",
                                      *GOACCESS_FORMATS[kind], "-o", str(work / f"{kind}-goaccess.html")])
                print(f"{kind}: goaccess {tg:.2f} s wall / {ug:.2f} s CPU ({rg:.0f} MiB)", file=sys.stderr)
                ga.add(tg, ug, rg, cg == 0)
            warm(path, logferry)
            td, ud, rd, cd = run([*logferry, "report", str(path), "--html", str(work / f"{kind}-direct.html")])
            print(f"{kind}: logferry report FILE {td:.2f} s wall / {ud:.2f} s CPU ({rd:.0f} MiB)", file=sys.stderr)
            direct.add(td, ud, rd, cd == 0)
            if pin:
                if goaccess:
                    warm(path)
                    tg, ug, rg, cg = run([*pin, goaccess[0], str(path), "--no-global-config", "--no-progress",
                                          *GOACCESS_FORMATS[kind], "-o", str(work / f"{kind}-goaccess1.html")])
                    print(f"{kind}: goaccess on one core {tg:.2f} s wall / {ug:.2f} s CPU", file=sys.stderr)
                    ga1.add(tg, ug, rg, cg == 0)
                warm(path, logferry)
                t1, u1, r1, c1 = run([*pin, *logferry, "report", str(path), "--html", str(work / f"{kind}-core1.html")])
                print(f"{kind}: logferry report FILE on one core {t1:.2f} s wall / {u1:.2f} s CPU", file=sys.stderr)
                direct1.add(t1, u1, r1, c1 == 0)
            for n_threads, best in ((1, single), (args.workers, multi)):
                warm(path, logferry)
                t1, u1, r1, c1 = run([*logferry, "report", "--threads", str(n_threads), str(path), "--html",
                                      str(work / f"{kind}-direct{n_threads}.html")])
                print(f"{kind}: logferry report --threads {n_threads} FILE {t1:.2f} s wall / {u1:.2f} s CPU",
                      file=sys.stderr)
                best.add(t1, u1, r1, c1 == 0)
            for f in (db, Path(str(db) + ".wal")):
                f.unlink(missing_ok=True)
            warm(path, logferry)
            ti, ui, ri, ci = run([*logferry, "ingest", str(path), "--db", str(db), "--quiet"])
            tr, ur, rr, cr = run([*logferry, "report", "--db", str(db), "--html", str(work / f"{kind}-logferry.html")])
            print(f"{kind}: logferry ingest {ti:.2f} s wall / {ui:.2f} s CPU ({ri:.0f} MiB), "
                  f"report {tr:.2f} s wall / {ur:.2f} s CPU ({rr:.0f} MiB)", file=sys.stderr)
            two.add(ti + tr, ui + ur, max(ri, rr), ci == cr == 0)
        html = work / f"{kind}-logferry.html"
        chart = first_chart_seconds(html) if args.browser and html.exists() else None
        if chart is not None:
            print(f"{kind}: dashboard ({html.stat().st_size / 1e6:.1f} MB) first chart in Chromium after {chart:.2f} s",
                  file=sys.stderr)
        rows.append((kind, lines, path.stat().st_size, ga.v, direct.v, two.v, chart, single.v, multi.v,
                     ga1.v, direct1.v))

    def col(v, lines):
        return f"{v[0]:>8.2f}{v[1]:>8.2f}{lines / v[0]:>11,.0f}{v[2]:>6.0f}" if v else f"{'n/a':>8}{'':>25}"

    def sp(v, g):
        return f"{g[0] / v[0]:>5.1f}x{g[1] / v[1]:>5.1f}x" if v and g else f"{'':>12}"

    name = f"{found[1]} {' '.join(goaccess[1:])}" if found else "goaccess"
    print(f"\n{'':<24}{'wall s':>8}{'CPU s':>8}{'lines/s':>11}{'MiB':>6}  {'vs goaccess wall, CPU':>22}")
    for kind, lines, size, g, d, t, chart, one, many, g1, d1 in rows:
        print(f"{kind} ({lines:,} lines, {size / 1e6:.0f} MB)")
        print(f"  {'goaccess -o report.html':<22}{col(g, lines)}  ({name})")
        print(f"  {'logferry report FILE':<22}{col(d, lines)}  {sp(d, g):>22}")
        print(f"  {'  ... --threads 1':<22}{col(one, lines)}")
        print(f"  {f'  ... --threads {args.workers}':<22}{col(many, lines)}")
        cpm = "  ".join(f"{who} {gen.per_million(v[1], lines):.2f}" for who, v in (("goaccess", g), ("logferry", d)) if v)
        print(f"  CPU s per million lines, report FILE: {cpm}")
        if many and one:
            print(f"  one file on 1 vs {args.workers} workers (report FILE wall): {one[0] / many[0]:.2f}x")
        for who, a, b in (("goaccess", g1, g), ("logferry report FILE", d1, d)):
            if a and b:
                print(f"  {who} on 1 core vs {os.cpu_count()}: {a[0]:.2f} s / {b[0]:.2f} s wall = {a[0] / b[0]:.2f}x")
        print(f"  {'ingest + report --db':<22}{col(t, lines)}  {sp(t, g):>22}")
        if chart is not None:
            print(f"  dashboard first chart in Chromium: {chart:.2f} s")
    print(f"\n(work folder: {work}; every command is its own process; wall and CPU (user+sys) "
          f"seconds, lines/s on wall time, peak RSS of the largest process)")


if __name__ == "__main__":
    main()
