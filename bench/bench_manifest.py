"""Benchmark of the lake's ingest driver against a large manifest: a lake whose ``files``
table holds N synthetic entries (a year of a CDN's small log files registers hundreds of
thousands), then each command as its own process: CPU seconds (user + sys), wall seconds
and its peak RSS (``wait4``).

    uv run python bench/bench_manifest.py                    # 100,000 entries
    uv run python bench/bench_manifest.py --entries 1000000 --repeat 2

Steps: ``ingest`` of one new 300-line IIS file, the same file again (known: nothing to
read), a grown file (its entry replaced), ``lake status``, a site's report and a ``sql``
query of ``files``; ``lake compact`` (the manifest as
files of sorted entries); a grown file again after it.  The same steps on a lake of one
entry give the floor (process start, imports, catalog).  Not a test: run it on a quiet
machine; compare code versions by running it on each, alternating.
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

LOGFERRY = [sys.executable, "-c", "import sys; from logferry.cli import main; sys.argv[0] = 'logferry'; main()"]


def alone(args: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one logferry command in its own process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(LOGFERRY + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    _pid, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"logferry {' '.join(args[:2])}... failed: {err[-800:]}")
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def synthesize(lake: str, n: int) -> None:
    """``n`` more manifest entries, copies of the lake's first with their own file id,
    path, inode, digests and read (an id no data file holds: none of their rows count),
    appended as one data file written with the table's field ids
    (as ``lake compact`` writes the manifest)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow

    from logferry.lake.cli import open_lake

    t = open_lake(lake, None).table("files")
    have = t.scan().to_arrow()
    first = have.slice(0, 1)
    rng = np.random.default_rng(1)
    start = max(have["file_id"].to_pylist()) + 1
    ids = np.arange(start, start + n, dtype=np.int64)
    lines = first["lines"][0].as_py()
    read = pa.StructArray.from_arrays(
        [pa.array(rng.integers(1, 2**62, n)), pa.array(np.ones(n, np.int64)), pa.array(np.full(n, lines, np.int64))],
        names=["read_id", "first_line", "last_line"])
    digests = [pa.array(np.char.mod("%016x", rng.integers(0, 2**62, n)).astype(object) * 4, pa.string())
               for _ in range(3)]
    own = {"file_id": pa.array(ids), "path": pa.array(np.char.mod("/bench/logs/f%d.log", ids).astype(object)),
           "ino": pa.array(ids + 10**9), "identity": digests[0], "fp": digests[1], "head_fp": digests[2],
           "reads": pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), read)}
    target = schema_to_pyarrow(t.schema())
    cols = [own[f.name] if f.name in own else first.column(f.name).take(np.zeros(n, np.int64)) for f in target]
    table = pa.Table.from_arrays([c.cast(f.type) for c, f in zip(cols, target, strict=True)], schema=target)
    path = f"{t.location().removeprefix('file://')}/data/bench-{n}.parquet"
    pq.write_table(table, path, compression="zstd")
    with t.transaction() as tx, tx.update_snapshot().fast_append() as fa:
        fa.append_data_file(parquet_file_to_data_file(t.io, t.metadata, f"file://{path}"))


def steps(work: Path, lake: str, label: str, repeat: int) -> None:
    logs = work / "logs"
    grown = logs / f"grown-{label}.log"
    gen.iis(grown, 300, seed=7)
    tail = b"".join(grown.read_bytes().splitlines(keepends=True)[-5:])
    alone(["ingest", str(grown), "--lake", lake])
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for r in range(repeat):
        new = logs / f"new-{label}-{r}.log"
        gen.iis(new, 300, seed=100 + r)
        rows.setdefault("ingest of a new file", []).append(alone(["ingest", str(new), "--lake", lake]))
        rows.setdefault("the same file again (known)", []).append(alone(["ingest", str(new), "--lake", lake]))
        with open(grown, "ab") as f:
            f.write(tail)
        rows.setdefault("a grown file", []).append(alone(["ingest", str(grown), "--lake", lake]))
        rows.setdefault("lake status", []).append(alone(["lake", "status", lake]))
        rows.setdefault("report --lake --site W3SVC1 --json", []).append(
            alone(["report", "--lake", lake, "--site", "W3SVC1", "--json"]))
        rows.setdefault("sql --lake: files by format", []).append(
            alone(["sql", "--lake", lake, "SELECT format, count(*), sum(lines) FROM files GROUP BY 1"]))
    rows["lake compact"] = [alone(["lake", "compact", lake])]
    for _ in range(repeat):
        with open(grown, "ab") as f:
            f.write(tail)
        rows.setdefault("a grown file, after compact", []).append(alone(["ingest", str(grown), "--lake", lake]))
    for name, got in rows.items():
        cpu = ", ".join(f"{c:.2f}" for _, c, _ in got)
        rss = ", ".join(f"{m:.0f}" for *_, m in got)
        print(f"  {name:<36} CPU s {cpu:<20} peak RSS MiB {rss:<16} (wall {min(w for w, _, _ in got):.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="where the lakes go (default: a temporary folder)")
    ap.add_argument("--synthesize", nargs=2, metavar=("LAKE", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.synthesize:
        synthesize(a.synthesize[0], int(a.synthesize[1]))
        return
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-manifest-"))
    (work / "logs").mkdir(parents=True, exist_ok=True)
    try:
        for label, n in (("floor", 0), ("big", a.entries)):
            lake = str(work / f"lake-{label}")
            seed = work / "logs" / f"seed-{label}.log"
            gen.iis(seed, 200, seed=3)
            alone(["ingest", str(seed), "--lake", lake])
            t0 = time.perf_counter()
            if n:  # (in a process of its own: a child forked from a large process counts its pages)
                subprocess.run([sys.executable, __file__, "--synthesize", lake, str(n)], check=True)
            print(f"a lake of {n + 1:,} manifest entries (made in {time.perf_counter() - t0:.1f} s):")
            steps(work, lake, label, a.repeat)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
