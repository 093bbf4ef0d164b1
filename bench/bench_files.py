"""Benchmark of many small files, as CloudFront delivers them (one gzip file per edge and
few minutes): `logferry ingest` of a folder of N small gzip files against the same lines
in one file, a second ingest of the folder (every file known: nothing to add), and
`logferry report FOLDER --json`; GoAccess on the same lines where it is installed.

    uv run python bench/bench_files.py                     # 3,000 files of 200 lines
    uv run python bench/bench_files.py --files 300 --lines 50    # a smoke run

The per-file figure is (folder - one file) / files: what a file costs beyond its lines.
Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import gen  # noqa: E402
from bench_read import run  # noqa: E402

LOGFERRY = [sys.executable, "-c", "import sys; from logferry.cli import main; sys.argv[0] = 'logferry'; main()"]


def make(work: Path, files: int, lines: int) -> tuple[Path, Path]:
    """The folder of ``files`` gzip files (CloudFront's two header lines each) and the one
    file holding the same lines."""
    folder, one = work / "cf", work / "one.log"
    if folder.is_dir() and len(list(folder.iterdir())) == files and one.exists():
        return folder, one
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    big = gen.cloudfront(work / "all.log", files * lines)
    with open(big, "rb") as f, open(one, "wb") as out:
        head = [next(f), next(f)]
        out.writelines(head)
        for i in range(files):
            body = [next(f) for _ in range(lines)]
            out.writelines(body)
            with gzip.open(folder / f"E2ABCDEF.2024-03-01-00.{i:08x}.gz", "wb", compresslevel=6) as g:
                g.writelines(head + body)
    big.unlink()
    return folder, one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--lines", type=int, default=200, help="lines per file")
    ap.add_argument("--work", default=None, help="folder for the logs (default: a temp dir)")
    a = ap.parse_args()
    gen.compile_logferry()
    work = Path(a.work or tempfile.mkdtemp(prefix="bench-files-"))
    folder, one = make(work, a.files, a.lines)
    total = a.files * a.lines
    print(f"{a.files:,} gzip files of {a.lines} lines ({total:,} lines) in {folder}")
    rows = []
    for db in ("f.duckdb", "o.duckdb"):
        (work / db).unlink(missing_ok=True)
    for name, cmd in (
        ("ingest FOLDER", ["ingest", str(folder), "--db", str(work / "f.duckdb")]),
        ("ingest FOLDER again (all known)", ["ingest", str(folder), "--db", str(work / "f.duckdb")]),
        ("ingest ONE FILE (same lines)", ["ingest", str(one), "--db", str(work / "o.duckdb")]),
        ("report FOLDER --json", ["report", str(folder), "--json"]),
        ("report ONE FILE --json", ["report", str(one), "--json"]),
    ):
        dt, rss, code, cpu = run(LOGFERRY + cmd)
        rows.append((name, dt, cpu, rss))
    found = gen.goaccess()
    if found:
        gz = sorted(str(p) for p in folder.iterdir())
        dt, rss, code, cpu = run([*found[0], "--log-format=CLOUDFRONT", "-o", str(work / "g.html"), *gz])
        rows.append((f"goaccess FOLDER ({found[1]})", dt, cpu, rss))
    print(f"{'':40s} {'wall s':>8s} {'CPU s':>8s} {'files/s':>9s} {'MiB':>6s}")
    for name, dt, cpu, rss in rows:
        print(f"{name:40s} {dt:8.2f} {cpu:8.2f} {a.files / dt:9.0f} {rss:6.0f}")
    per = {n: (dt, cpu) for n, dt, cpu, _ in rows}
    f, o = per["ingest FOLDER"], per["ingest ONE FILE (same lines)"]
    print(f"per file beyond its lines, ingest: {1000 * (f[0] - o[0]) / a.files:.1f} ms wall, "
          f"{1000 * (f[1] - o[1]) / a.files:.1f} ms CPU; a known file: "
          f"{1000 * per['ingest FOLDER again (all known)'][1] / a.files:.1f} ms CPU")


if __name__ == "__main__":
    main()
