"""Ingest + full report vs GoAccess's HTML report, on the same generated logs.

    python bench/bench_report.py [--lines 2000000] [--cf-lines 1000000] [--work DIR]

For each log (IIS W3C, CloudFront): ``logferry ingest`` into a fresh database, then
``logferry report --html`` (every report), each as its own process; then ``goaccess``
producing its HTML report from the same file.  Wall time and peak RSS (``wait4``'s
ru_maxrss of each child) are printed side by side.  Not run by the test suite; needs the
Debian package ``goaccess`` for the comparison column.
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


def run(cmd: list[str], **kw) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, exit code) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode:
        print(f"  ! {' '.join(cmd[:3])}... exited {p.returncode}: {err.strip()[-400:]}", file=sys.stderr)
    return dt, usage.ru_maxrss / 1024, p.returncode


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while b := f.read(1 << 24):
            n += b.count(b"\n")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000, help="IIS log lines")
    ap.add_argument("--cf-lines", type=int, default=1_000_000, help="CloudFront log lines")
    ap.add_argument("--work", default=None, help="folder for logs and outputs (default: a temp dir)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="logferry-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    logferry = [sys.executable, "-m", "logferry.cli"]
    goaccess = shutil.which("goaccess")

    logs = {"iis": (work / f"iis-{args.lines}.log", gen.iis, args.lines),
            "cloudfront": (work / f"cloudfront-{args.cf_lines}.log", gen.cloudfront, args.cf_lines)}
    rows = []
    for kind, (path, make, n) in logs.items():
        if not path.exists():
            t = time.perf_counter()
            make(path, n)
            print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr)
        lines = count_lines(path)
        db = work / f"{kind}.duckdb"
        for f in (db, Path(str(db) + ".wal")):
            f.unlink(missing_ok=True)
        ti, ri, ci = run([*logferry, "ingest", str(path), "--db", str(db), "--quiet"])
        tr, rr, cr = run([*logferry, "report", "--db", str(db), "--html", str(work / f"{kind}-logferry.html")])
        lf = (ti + tr, max(ri, rr))
        print(f"{kind}: logferry ingest {ti:.2f} s ({ri:.0f} MiB), report {tr:.2f} s ({rr:.0f} MiB)"
              + ("" if ci == cr == 0 else "  [FAILED]"), file=sys.stderr)
        ga = None
        if goaccess:
            tg, rg, cg = run([goaccess, str(path), "--no-global-config", "--no-progress",
                              *GOACCESS_FORMATS[kind], "-o", str(work / f"{kind}-goaccess.html")])
            ga = (tg, rg) if cg == 0 else None
        rows.append((kind, lines, path.stat().st_size, lf, ga))

    print(f"\n{'log':<11}{'lines':>11}{'MB':>7} | {'logferry s':>10}{'lines/s':>11}{'RSS MiB':>9} | "
          f"{'goaccess s':>10}{'lines/s':>10}{'RSS MiB':>9} | {'speed-up':>8}")
    for kind, lines, size, (t, r), ga in rows:
        g = f"{ga[0]:>10.2f}{lines / ga[0]:>10,.0f}{ga[1]:>9.0f}" if ga else f"{'n/a':>10}{'':>10}{'':>9}"
        sp = f"{ga[0] / t:>7.1f}x" if ga else ""
        print(f"{kind:<11}{lines:>11,}{size / 1e6:>7.0f} | {t:>10.2f}{lines / t:>11,.0f}{r:>9.0f} | {g} | {sp}")
    print(f"\n(work folder: {work}; logferry = ingest + every report as HTML, "
          f"goaccess = its HTML report; peak RSS of the largest process)")


if __name__ == "__main__":
    main()
