"""Reading benchmark (issue 2): logferry vs DuckDB read_csv vs GoAccess, side by side.

    GOACCESS=/path/to/goaccess python bench/bench_read.py [--lines 2000000] [--out bench/out] [--repeat N]

Generates an IIS (W3C) and a CloudFront log of N lines, then runs on each file, as
separate processes so that peak RSS is measured per tool:

* ``logferry convert FILE --to parquet``     (read + canonical conversion + Parquet)
* DuckDB ``read_csv`` of the same file -> Parquet (all columns as text)
* GoAccess producing its HTML report from the same file (the binary ``GOACCESS=`` names,
  else ``goaccess`` on the PATH; with ``-j 2`` where it has parsing threads)
* ``logferry convert --threads 1`` and ``--threads 2`` (``--workers``): the parallel
  efficiency of one file on 1 vs 2 workers (wall of 1 / wall of 2)

and prints wall time, lines/s, CPU seconds per million lines (user + sys) and peak RSS.  It also runs logferry on a quarter of the
file to show that memory does not grow with input size.  ``--repeat N`` runs every
command N times, alternating, and shows the fastest run of each (wall time on a shared
machine varies by a quarter from run to run).  Not part of the test suite.
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

sys.path.insert(0, str(Path(__file__).parent))
import gen  # noqa: E402

GOACCESS = {
    # field order of bench/gen.py
    "iis": [
        "--log-format=%d %t %^ %^ %m %U %q %^ %^ %h %u %R %v %s %^ %^ %b %^ %L",
        "--date-format=%Y-%m-%d",
        "--time-format=%T",
    ],
    "cloudfront": [
        "--log-format=%d\\t%t\\t%^\\t%b\\t%h\\t%m\\t%^\\t%U\\t%s\\t%R\\t%u\\t%q\\t%^\\t%C\\t%^\\t%v\\t%^\\t%^\\t%T\\t%~",
        "--date-format=%Y-%m-%d",
        "--time-format=%T",
    ],
}

DUCK = {
    "iis": "delim=' ', header=false, skip=4, all_varchar=true, quote='', escape=''",
    "cloudfront": "delim='\\t', header=false, skip=2, all_varchar=true, quote='', escape=''",
}


def run(cmd: list[str]) -> tuple[float, float, int, float]:
    """Run a command; return (seconds, peak RSS MB, exit code, CPU seconds)."""
    t0 = time.perf_counter()
    # (stderr to a file: a command printing more than a pipe holds, e.g. a line per file of
    # a folder, would wait on a pipe nobody reads while this waits for it to end)
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(f"  ! {' '.join(cmd[:3])}... exited {code}: {err.strip()[-300:]}", file=sys.stderr)
    return dt, ru.ru_maxrss / 1024, code, ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    ap.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest is shown")
    ap.add_argument("--jobs", type=int, default=2, help="GoAccess's parsing threads (-j), where it has them")
    ap.add_argument("--workers", type=int, default=2, help="logferry's --threads against --threads 1")
    args = ap.parse_args()
    found = gen.goaccess(args.jobs)
    if found:
        print(f"{found[1]} ({' '.join(found[0])})", file=sys.stderr)
    gen.compile_logferry()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = args.lines
    rows = []
    for kind in ("iis", "cloudfront"):
        src = out / f"{kind}-{n}.log"
        if not src.exists():
            print(f"generating {src} ...", file=sys.stderr)
            getattr(gen, kind)(src, n)
        small = out / f"{kind}-{n // 4}.log"
        if not small.exists():
            getattr(gen, kind)(small, n // 4)
        size_mb = src.stat().st_size / 1e6
        lf = [sys.executable, "-m", "logferry.cli", "convert", "--to", "parquet", "--overwrite", "-o"]
        sql = (
            f"COPY (SELECT * FROM read_csv('{src}', {DUCK[kind]})) "
            f"TO '{out / (kind + '-duckdb.parquet')}' (FORMAT parquet)"
        )
        cmds = [
            ("logferry convert --to parquet", n, [*lf, str(out / f"{kind}.parquet"), str(src)]),
            ("  ... --threads 1", n, [*lf, str(out / f"{kind}-1.parquet"), "--threads", "1", str(src)]),
            (f"  ... --threads {args.workers}", n,
             [*lf, str(out / f"{kind}-n.parquet"), "--threads", str(args.workers), str(src)]),
            *([("  ... on one core (taskset)", n, ["taskset", "-c", "0", *lf, str(out / f"{kind}-1.parquet"), str(src)])]
              if shutil.which("taskset") else []),
            (f"logferry (1/4 file: {n // 4} lines)", n // 4, [*lf, str(out / f"{kind}-small.parquet"), str(small)]),
            ("duckdb read_csv -> parquet", n, [sys.executable, "-c", f"import duckdb; duckdb.sql({sql!r})"]),
        ]
        if found:
            cmds.append((f"{found[1]} {' '.join(found[0][1:])} -> html", n,
                         [*found[0], str(src), *GOACCESS[kind], "--no-global-config",
                          "-o", str(out / f"{kind}-goaccess.html")]))
        best: dict[str, tuple[float, float, float]] = {}
        for _ in range(max(1, args.repeat)):
            for tool, _lines, cmd in cmds:
                t, rss, code, cpu = run(cmd)
                if code == 0:  # fastest run (and its CPU); the largest peak RSS of all runs
                    old = best.get(tool, (t, rss, cpu))
                    fast = min((t, cpu), (old[0], old[2]))
                    best[tool] = (fast[0], max(rss, old[1]), fast[1])
        for tool, lines, _cmd in cmds:
            t, rss, cpu = best.get(tool, (float("nan"),) * 3)
            rows.append((kind, tool if tool in best else f"{tool} (failed)", lines, t, rss, cpu))
        if not found:
            rows.append((kind, "goaccess: not found (set GOACCESS=)", n, float("nan"), float("nan"), float("nan")))
        one, many = best.get("  ... --threads 1"), best.get(f"  ... --threads {args.workers}")
        if one and many:
            print(f"{kind}: one file on 1 vs {args.workers} workers (convert wall): {one[0] / many[0]:.2f}x",
                  file=sys.stderr)
        print(f"{kind}: {size_mb:.0f} MB", file=sys.stderr)
    print(f"{'file':<11} {'tool':<42} {'lines':>9} {'seconds':>8} {'lines/s':>11} {'CPU s/M lines':>14} "
          f"{'peak RSS MB':>12}")
    for kind, tool, lines, t, rss, cpu in rows:
        rate = lines / t if t == t and t > 0 else float("nan")
        print(f"{kind:<11} {tool:<42} {lines:>9} {t:>8.2f} {rate:>11,.0f} {gen.per_million(cpu, lines):>14.2f} "
              f"{rss:>12.0f}")


if __name__ == "__main__":
    main()
