"""Following a log that grows by 50,000 lines/s (issue 16): does the follower keep up?

    python bench/bench_follow.py [--rate 50000] [--seconds 30] [--commit-every 2] [--dashboard]
                                 [--rotate-every 0] [--work DIR]

A writer process appends IIS lines (bench/gen.py's generator) to ``access.log`` at
``--rate`` lines per second, in 20 ms ticks; with ``--rotate-every S`` it renames the log
every S seconds and goes on in a new one (the follower reads the old one to its end).  This
process runs ``logferry.usage.follow.Follower`` on a thread and samples, every second, how
many lines are committed against how many the writer has written by then (the lag).
``--dashboard`` also computes the served dashboard's data (``dashboard_data``, what
``GET /api/report`` answers) every 5 s on the same database instance, as an open
``logferry serve --follow`` dashboard does.  At the end the writer stops and the time the
follower needs to catch up is measured.  Printed: lines written and stored (they must be
equal), the largest lag (lines and seconds), catch-up time, commits, and the CPU the
follower (and the dashboard) used, as cores (CPU seconds per wall second).
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen  # noqa: E402


def writer(log: Path, pool: Path, rate: int, seconds: float, rotate_every: float) -> None:
    """Append the pool's lines to ``log`` at ``rate`` lines/s (each new log starts with the
    W3C header).  Prints the number of data lines written."""
    data = pool.read_bytes()
    header = gen.IIS_HEADER.encode()
    body = data[len(header):]
    starts = [0]
    pos = body.find(b"\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = body.find(b"\n", pos + 1)
    n_pool = len(starts) - 1
    f = open(log, "ab")
    f.write(header)
    written = 0
    t0 = time.monotonic()
    last_rot = t0
    gen_no = 0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        want = min(int((now - t0) * rate), n_pool)
        if want > written:
            f.write(body[starts[written]:starts[want]])
            f.flush()
            written = want
        if rotate_every and now - last_rot >= rotate_every:
            gen_no += 1
            os.rename(log, f"{log}.{gen_no}")
            f.close()
            f = open(log, "ab")
            f.write(header)
            f.flush()
            last_rot = now
        time.sleep(0.02)
    f.close()
    print(written, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--commit-every", type=float, default=2.0)
    ap.add_argument("--dashboard", action="store_true")
    ap.add_argument("--rotate-every", type=float, default=0.0)
    ap.add_argument("--work")
    ap.add_argument("--writer", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.writer:
        log, pool, rate, seconds, rot = a.writer
        writer(Path(log), Path(pool), int(rate), float(seconds), float(rot))
        return

    from logferry.usage.db import connect
    from logferry.usage.follow import Follower

    work = Path(a.work or tempfile.mkdtemp(prefix="lf-follow-"))
    work.mkdir(parents=True, exist_ok=True)
    pool = work / "pool.log"
    need = int(a.rate * a.seconds) + 1
    print(f"generating {need:,} IIS lines in {pool} ...", flush=True)
    gen.iis(pool, need)
    log = work / "access.log"
    for p in work.glob("access.log*"):
        p.unlink()
    db = work / "follow.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        if p.exists():
            p.unlink()

    con = connect(db)  # the dashboard's connection; the follower shares the instance
    f = Follower(db, [str(log)] + ([str(log) + ".*"] if a.rotate_every else []), commit_every=a.commit_every)
    stop = threading.Event()
    ft = threading.Thread(target=f.run, args=(stop,), name="follower")
    ft.start()
    while not f.status()["running"]:
        time.sleep(0.05)

    dash_times: list[float] = []
    dash_stop = threading.Event()

    def dashboard() -> None:
        from logferry.usage.dashboard import Filters, dashboard_data

        c = connect(db)
        while not dash_stop.wait(5.0):
            t = time.perf_counter()
            dashboard_data(c, Filters())
            dash_times.append(time.perf_counter() - t)
        c.close()

    if a.dashboard:
        dt = threading.Thread(target=dashboard, name="dashboard")
        dt.start()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    w = subprocess.Popen([sys.executable, __file__, "--writer", str(log), str(pool), str(a.rate), str(a.seconds),
                          str(a.rotate_every)], stdout=subprocess.PIPE, text=True)
    max_lag = 0
    samples = []
    while w.poll() is None:
        time.sleep(1.0)
        el = time.monotonic() - t0
        expected = min(int(el * a.rate), need)
        got = f.status()["lines"]
        lag = max(expected - got, 0)
        max_lag = max(max_lag, lag)
        samples.append((el, got, lag))
    written = int(w.stdout.read().strip() or 0)
    t_end = time.monotonic()
    while f.status()["lines"] < written and time.monotonic() - t_end < 120:
        time.sleep(0.05)
    catch_up = time.monotonic() - t_end
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    dash_stop.set()
    if a.dashboard:
        dt.join()
    stop.set()
    ft.join()
    stored = con.execute("SELECT count(*), count(DISTINCT (file_id, line_number)) FROM requests").fetchall()[0]
    bad = con.execute("SELECT count(*) FROM bad_rows").fetchall()[0][0]
    con.close()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    st = f.status()
    rot = f", rotating every {a.rotate_every:g} s" if a.rotate_every else ""
    print(f"rate {a.rate:,} lines/s for {a.seconds:g} s, commit every {a.commit_every:g} s{rot}"
          f"{', dashboard data every 5 s' if a.dashboard else ''}")
    print(f"written {written:,} lines; stored {stored[0]:,} ({stored[1]:,} distinct), {bad:,} bad rows"
          f" -> {'OK' if stored[0] == stored[1] == written and not bad else 'MISMATCH'}")
    print(f"largest lag {max_lag:,} lines ({max_lag / a.rate:.2f} s of input); caught up {catch_up:.2f} s "
          f"after the writer stopped; {st['commits']} commits")
    print(f"follower{' + dashboard' if a.dashboard else ''} CPU {cpu:.1f} s in {wall:.1f} s wall = "
          f"{cpu / wall:.2f} cores")
    if dash_times:
        print(f"dashboard_data: {len(dash_times)} calls, median {sorted(dash_times)[len(dash_times) // 2]:.2f} s, "
              f"max {max(dash_times):.2f} s")
    print("lag samples (s, stored, lag):", " ".join(f"{e:.0f}:{lag}" for e, _, lag in samples[::5]))


if __name__ == "__main__":
    main()
