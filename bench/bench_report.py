"""Ingest + full report vs GoAccess's HTML report, on the same generated logs.

    python bench/bench_report.py [--lines 2000000] [--cf-lines 1000000] [--work DIR] [--no-goaccess] [--repeat N]

For each log (IIS W3C, CloudFront; ``--cf-lines 0`` skips CloudFront): ``logferry ingest``
into a fresh database, then ``logferry report --html`` (every report), each as its own
process; then ``goaccess`` producing its HTML report from the same file.  Wall time, CPU
time (user + sys) and peak RSS (``wait4``'s rusage of each child) are printed side by
side.  On a shared machine wall time is noisy: compare CPU seconds too, or use
``--repeat N`` (every tool runs N times, alternating; the fastest run of each is shown,
with the largest peak RSS of its runs).
Not run by the test suite; needs the Debian package ``goaccess`` for the comparison column.
"""

from __future__ import annotations

import argparse
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


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:  # small reads: the children fork from this process (RSS)
        while b := f.read(1 << 20):
            n += b.count(b"\n")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000, help="IIS log lines")
    ap.add_argument("--cf-lines", type=int, default=1_000_000, help="CloudFront log lines")
    ap.add_argument("--work", default=None, help="folder for logs and outputs (default: a temp dir)")
    ap.add_argument("--no-goaccess", action="store_true", help="logferry only")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest is shown")
    args = ap.parse_args()
    gen.compile_logferry()
    work = Path(args.work or tempfile.mkdtemp(prefix="logferry-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    logferry = [sys.executable, "-m", "logferry.cli"]
    goaccess = None if args.no_goaccess else shutil.which("goaccess")

    logs = {"iis": (work / f"iis-{args.lines}.log", gen.iis, args.lines),
            "cloudfront": (work / f"cloudfront-{args.cf_lines}.log", gen.cloudfront, args.cf_lines)}
    rows = []
    for kind, (path, make, n) in logs.items():
        if n <= 0:
            continue
        if not path.exists():
            t = time.perf_counter()
            make(path, n)
            print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr)
        lines = count_lines(path)
        db = work / f"{kind}.duckdb"
        lf = ga = None
        for _ in range(max(1, args.repeat)):
            for f in (db, Path(str(db) + ".wal")):
                f.unlink(missing_ok=True)
            ti, ui, ri, ci = run([*logferry, "ingest", str(path), "--db", str(db), "--quiet"])
            tr, ur, rr, cr = run([*logferry, "report", "--db", str(db), "--html", str(work / f"{kind}-logferry.html")])
            print(f"{kind}: logferry ingest {ti:.2f} s wall / {ui:.2f} s CPU ({ri:.0f} MiB), "
                  f"report {tr:.2f} s wall / {ur:.2f} s CPU ({rr:.0f} MiB)"
                  + ("" if ci == cr == 0 else "  [FAILED]"), file=sys.stderr)
            if ci == cr == 0:  # the fastest run; the largest peak RSS of all runs
                lf = (ti + tr, ui + ur, max(ri, rr)) if lf is None or ti + tr < lf[0] else lf
                lf = (lf[0], lf[1], max(lf[2], ri, rr))
            if goaccess:
                tg, ug, rg, cg = run([goaccess, str(path), "--no-global-config", "--no-progress",
                                      *GOACCESS_FORMATS[kind], "-o", str(work / f"{kind}-goaccess.html")])
                print(f"{kind}: goaccess {tg:.2f} s wall / {ug:.2f} s CPU ({rg:.0f} MiB)", file=sys.stderr)
                if cg == 0:
                    ga = (tg, ug, rg) if ga is None or tg < ga[0] else ga
                    ga = (ga[0], ga[1], max(ga[2], rg))
        rows.append((kind, lines, path.stat().st_size, lf, ga))

    print(f"\n{'log':<11}{'lines':>11}{'MB':>6} | {'logferry':>8}{'CPU s':>7}{'lines/s':>11}{'RSS MiB':>8} | "
          f"{'goaccess':>8}{'CPU s':>7}{'lines/s':>9}{'RSS MiB':>8} | {'speed-up wall':>13}{'CPU':>6}")
    for kind, lines, size, lf, ga in rows:
        g = (f"{ga[0]:>8.2f}{ga[1]:>7.2f}{lines / ga[0]:>9,.0f}{ga[2]:>8.0f}" if ga
             else f"{'n/a':>8}{'':>7}{'':>9}{'':>8}")
        if lf is None:
            print(f"{kind:<11}{lines:>11,}{size / 1e6:>6.0f} | {'FAILED':>8}{'':>26} | {g} |")
            continue
        t, u, r = lf
        sp = f"{ga[0] / t:>12.1f}x{ga[1] / u:>5.1f}x" if ga else ""
        print(f"{kind:<11}{lines:>11,}{size / 1e6:>6.0f} | {t:>8.2f}{u:>7.2f}{lines / t:>11,.0f}{r:>8.0f} | {g} | {sp}")
    print(f"\n(work folder: {work}; logferry = ingest + every report as HTML (two processes), "
          f"goaccess = its HTML report; wall and CPU (user+sys) seconds, lines/s on wall time, "
          f"peak RSS of the largest process)")


if __name__ == "__main__":
    main()
