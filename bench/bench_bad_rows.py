"""Hostile input benchmark (issue 12 items 8, 9): bad rows never amplify their input.

    python bench/bench_bad_rows.py [--mib 256] [--out bench/out]

Makes two gzip files and runs ``logferry convert FILE -o out.jsonl --bad-rows bad.jsonl``
and ``logferry ship FILE --dest file://...`` on each, as separate processes:

* ``nul``: an IIS header, one record, N MiB of NUL bytes (one line), one record -- a
  small gzip (about 1 MB for 256 MiB) that once made a 1.6 GB bad-rows file;
* ``garbage``: N MiB of short garbage lines (a few million bad rows).

It prints wall time, MiB/s of decompressed input, peak RSS and the size of the bad-rows
file: time grows linearly with N and the bad-rows file stays under the per-file cap
(16 MiB by default).  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HEAD = (
    b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
    b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
    b"cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n"
)
REC = b"2024-01-01 00:00:01 10.0.0.1 GET /a - 80 - 1.2.3.4 UA - 200 0 0 5\r\n"


def make(out: Path, mib: int) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {"nul": out / f"nul-{mib}.log.gz", "garbage": out / f"garbage-{mib}.log.gz"}
    if not files["nul"].exists():
        with gzip.open(files["nul"], "wb", compresslevel=6) as f:
            f.write(HEAD + REC)
            block = b"\0" * (1 << 20)
            for _ in range(mib):
                f.write(block)
            f.write(b"\r\n" + REC)
    if not files["garbage"].exists():
        line = b"\x00garbage \xff\xfe not a log line at all\r\n"
        block = line * ((1 << 20) // len(line))
        with gzip.open(files["garbage"], "wb", compresslevel=6) as f:
            f.write(HEAD + REC)
            for _ in range(mib):
                f.write(block)
    return files


def run(cmd: list[str]) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
    if os.waitstatus_to_exitcode(status):
        print(f"  ! {' '.join(cmd[:3])}... failed: {err[-300:]}", file=sys.stderr)
    return dt, ru.ru_maxrss / 1024, err.splitlines()[-1] if err else ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--out", default="bench/out")
    a = ap.parse_args()
    out = Path(a.out)
    exe = str(Path(sys.executable).with_name("logferry"))
    for kind, src in make(out, a.mib).items():
        bad = out / f"{kind}.bad.jsonl"
        dt, rss, line = run([exe, "convert", str(src), "-o", str(out / f"{kind}.jsonl"), "--bad-rows", str(bad)])
        print(f"convert {kind:8} {a.mib} MiB ({src.stat().st_size / 1e6:.1f} MB gz): {dt:6.1f} s "
              f"{a.mib / dt:7.1f} MiB/s  peak {rss:6.0f} MB  bad rows file {bad.stat().st_size / 1e6:7.2f} MB")
        print(f"  {line}")
        state, dest = out / f"{kind}.state", out / f"{kind}.dest"
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        dt, rss, line = run([exe, "ship", str(src), "--dest", dest.resolve().as_uri(), "--state", str(state)])
        sbad = state / "ship.bad.jsonl"
        size = sbad.stat().st_size / 1e6 if sbad.exists() else 0.0
        print(f"ship    {kind:8} {a.mib} MiB: {dt:6.1f} s {a.mib / dt:7.1f} MiB/s  peak {rss:6.0f} MB  "
              f"bad rows file {size:7.2f} MB")


if __name__ == "__main__":
    main()
