"""Fault tests against real servers: S3 (moto) and SFTP (OpenSSH) behind a proxy that can be
cut (refused connections, connections reset in the middle of an upload), and SIGKILL at
random points of `logferry ship` runs against S3 and file://, each followed by a re-run.
Every check compares the delivered lines with the source lines by content."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from tests.servers import servers as S
from tests.test_dest_conformance import paths_of, s3, sshd, write_log  # noqa: F401  (fixtures)

from logferry.destinations import open_destination
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State

CLOCK = lambda: 1_750_000_000.0  # noqa: E731  frozen


def _expected(n, start=0):
    return collections.Counter(f"/p/{i}" for i in range(start, start + n))


def _delivered(dest):
    return collections.Counter(p for o in dest.list() for p in paths_of(dest.get(o.name)))


@pytest.fixture(params=["s3", "sftp"])
def proxied(request, tmp_path, monkeypatch):
    """(kind, proxy, url, options, direct destination that bypasses the proxy)."""
    kind = request.param
    if kind == "s3":
        srv = request.getfixturevalue("s3")
        proxy = S.CutProxy(srv.port)
        bucket = f"out{abs(hash(tmp_path)) % 10**8}"
        srv.make_bucket(bucket)
        for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
        url, opts = f"s3://{bucket}/logs", {}
        direct = open_destination(url, {"endpoint_url": srv.endpoint})
        leftovers = lambda: []  # noqa: E731  (a reset PUT stores nothing)
    else:
        srv = request.getfixturevalue("sshd")
        proxy = S.CutProxy(srv.port)
        kh = tmp_path / "known_hosts"
        kind_, key = open(srv.known_hosts).read().split()[1:3]
        kh.write_text(f"[127.0.0.1]:{proxy.port} {kind_} {key}\n")
        root = os.path.join(srv.root, tmp_path.name)
        url = f"sftp://{srv.user}@127.0.0.1:{proxy.port}{root}"
        opts = {"key_file": srv.key, "known_hosts": str(kh), "timeout": 5}
        direct = open_destination(f"sftp://{srv.user}@127.0.0.1:{srv.port}{root}",
                                  {"key_file": srv.key, "known_hosts": srv.known_hosts})

        def leftovers():
            return sorted(n for n in os.listdir(root) if n.endswith(".part"))
    yield kind, proxy, url, opts, direct, leftovers
    proxy.stop()
    direct.close()


def test_destination_down_then_back_exactly_once(proxied, tmp_path):
    kind, proxy, url, opts, direct, leftovers = proxied
    log = tmp_path / "access.log"
    write_log(log, 0, 3000)
    job = Job("out", (str(log),), url, opts, limits=Limits(max_bytes=9000),
              name_template="{seq:05d}{ext}", retries=4)
    st = State(tmp_path / "state")

    # 1. the server is unreachable when the run starts and comes back during the backoff
    proxy.down()
    sleeps: list[float] = []

    def sleep_then_up(s):
        sleeps.append(s)
        if len(sleeps) == 2:
            proxy.up()

    dest = open_destination(url, opts)  # connecting is part of the first put
    r1 = run_job(job, st, dest, clock=CLOCK, sleep=sleep_then_up)
    assert r1.status == "ok", r1.error
    assert sleeps == [1.0, 2.0]
    assert r1.records == 3000 and r1.objects >= 4
    assert _delivered(direct) == _expected(3000)

    # 2. the connection is reset in the middle of an upload and the server stays away
    #    for longer than the retries: the run fails, with the reason in history
    write_log(log, 3000, 3000, header=False, mode="a")
    proxy.cut_after = proxy.sent + 25_000
    r2 = run_job(job, st, dest, clock=CLOCK, sleep=lambda s: None)
    assert r2.status == "failed"
    assert "gave up after 5 attempts" in r2.error
    assert st.runs("out", failed_only=True)[0].error == r2.error
    assert not proxy.is_up
    # the checkpoint is consistent with what the server holds: every object recorded as
    # delivered is there with its size, nothing else is
    recorded = {o.name: o.size for o in st.objects(job="out")}
    assert {o.name: o.size for o in direct.list()} == recorded
    assert 3000 < sum(o.records for o in st.objects(job="out")) < 6000

    # 3. the server is back: the next run delivers the rest, every line exactly once
    proxy.up()
    r3 = run_job(job, st, dest, clock=CLOCK, sleep=lambda s: None)
    assert r3.status == "ok", r3.error
    assert r1.records + r2.records + r3.records == 6000
    assert _delivered(direct) == _expected(6000)
    assert {o.name: o.size for o in direct.list()} == {o.name: o.size for o in st.objects(job="out")}
    assert leftovers() == []
    dest.close()
    st.close()


SHIP = [sys.executable, "-m", "logferry.cli", "ship"]


def _delivered_count(state) -> int:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{state}/state.sqlite?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM objects").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _kill_loop(args, env, state, rnd, kills, jitter):
    """Start the run and SIGKILL it after a random number (1-4) of further objects were
    delivered plus a random fraction of the time one object takes -- so kills land before a
    put, during it, and between the put and the checkpoint -- ``kills`` times; then run it
    to the end."""
    for _ in range(kills):
        base = _delivered_count(state)
        want = base + rnd.randint(1, 4)
        p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 30
        while _delivered_count(state) < want and p.poll() is None and time.time() < end:
            time.sleep(0.005)
        time.sleep(rnd.uniform(0.0, jitter))
        p.send_signal(signal.SIGKILL)
        p.wait()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_sigkill_during_ship_then_rerun(kind, tmp_path, request, monkeypatch):
    """`logferry ship` is SIGKILLed at random points, then run to the end: the lines at the
    destination are exactly the source lines (by content; none missing, none twice)."""
    log = tmp_path / "access.log"
    n = 20_000
    write_log(log, 0, n)
    env = dict(os.environ)
    if kind == "s3":
        srv = request.getfixturevalue("s3")
        bucket = f"kill{abs(hash(tmp_path)) % 10**8}"
        srv.make_bucket(bucket)
        for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(k, v)
            env[k] = v
        env["AWS_ENDPOINT_URL"] = srv.endpoint
        url = f"s3://{bucket}/k"
        direct = open_destination(url, {"endpoint_url": srv.endpoint})
    else:
        url = f"file://{tmp_path}/out"
        direct = open_destination(url)
    kills = 4 if kind == "s3" else 3
    # a put takes ~50 ms against moto and ~1 ms into a directory: smaller objects and a
    # shorter jitter for file:// so the kills land inside the run there too
    per_obj, jitter = (500, 0.05) if kind == "s3" else (100, 0.004)
    state = tmp_path / "state"
    args = SHIP + [str(log), "--dest", url, "--state", str(state), "--max-records", str(per_obj),
                   "--name", "{seq:05d}{ext}", "--job", "k"]
    done = _kill_loop(args, env, state, random.Random(11 if kind == "s3" else 5), kills, jitter)
    assert _delivered(direct) == _expected(n)
    st = State(state)
    runs = st.runs("k")
    killed = [r for r in runs if r.error == "process died during the run"]
    assert len(killed) == kills
    # every kill landed in the middle of a run that had delivered objects
    assert all(r.objects > 0 for r in killed)
    assert runs[0].status == "ok" and "0 bad lines" in done.stdout
    recorded = {o.name: o.size for o in st.objects(job="k")}
    assert {o.name: o.size for o in direct.list()} == recorded
    assert sum(o.records for o in st.objects(job="k")) == n
    st.close()
    # and a rerun sends nothing
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert "0 objects, 0 records" in again.stdout
