"""One run of a job at a time (issue 12, item 1) and the job's tenants (`sites`).

Real processes against moto (S3): two `logferry ship` runs started together, and a run
started while another is SIGKILLed in the middle of its run; every record is in the bucket
exactly once.  The lock itself: the error of a busy job, --wait, a killed holder's lock
taken over, `running()`, `export run` exiting 75 and the scheduler skipping a busy job."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from click.testing import CliRunner
from tests.test_dest_conformance import paths_of, s3, write_log  # noqa: F401  (fixture)
from tests.test_ship_faults import _delivered_count

from logferry.cli import app
from logferry.destinations import open_destination
from logferry.errors import ConfigError
from logferry.ship import cli as ship_cli
from logferry.ship.engine import Job, Stop, run_job
from logferry.ship.lock import EXIT_BUSY, JobRunning, job_lock, running
from logferry.ship.state import State

SHIP = [sys.executable, "-m", "logferry.cli", "ship"]


@pytest.fixture
def bucket(request, tmp_path, monkeypatch):
    """(url, env for subprocesses, a direct destination)."""
    srv = request.getfixturevalue("s3")
    name = f"lock{abs(hash(tmp_path)) % 10**8}"
    srv.make_bucket(name)
    env = dict(os.environ)
    for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                 ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", srv.endpoint)):
        monkeypatch.setenv(k, v)
        env[k] = v
    url = f"s3://{name}/l"
    d = open_destination(url)
    yield url, env, d
    d.close()


def _counts(dest) -> collections.Counter:
    return collections.Counter(p for o in dest.list() for p in paths_of(dest.get(o.name)))


def _expected(n: int) -> collections.Counter:
    return collections.Counter(f"/p/{i}" for i in range(n))


def test_two_runs_started_together_deliver_each_record_once(bucket, tmp_path):
    url, env, direct = bucket
    log = tmp_path / "access.log"
    n = 6000
    write_log(log, 0, n)
    state = tmp_path / "state"
    args = SHIP + [str(log), "--dest", url, "--state", str(state), "--max-records", "300",
                   "--name", "{seq:05d}{ext}", "--job", "twice"]
    ps = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for _ in range(2)]
    outs = [(p.wait(120), *p.communicate()) for p in ps]
    codes = sorted(c for c, _, _ in outs)
    assert codes == [0, EXIT_BUSY], outs
    busy = next(err for c, _, err in outs if c == EXIT_BUSY)
    winner_pid = next(p.pid for p, (c, _, _) in zip(ps, outs, strict=True) if c == 0)
    assert busy.startswith(f"logferry: error: job twice is already running (pid {winner_pid} since 20")
    assert "Traceback" not in busy
    assert _counts(direct) == _expected(n)

    # with --wait, both runs succeed; the second one finds nothing new
    write_log(log, n, 3000, header=False, mode="a")
    ps = [subprocess.Popen(args + ["--wait", "60"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [(p.wait(120), *p.communicate()) for p in ps]
    assert [c for c, _, _ in outs] == [0, 0], outs
    records = sorted(int(out.split(" records")[0].rsplit(" ", 1)[1]) for _, out, _ in outs)
    assert records == [0, 3000]
    assert _counts(direct) == _expected(n + 3000)
    st = State(state)
    assert {o.name: o.size for o in direct.list()} == {o.name: o.size for o in st.objects(job="twice")}
    st.close()


def test_run_started_while_another_is_sigkilled(bucket, tmp_path):
    """B starts (waiting) while A is in the middle of its run; A is SIGKILLed; B takes the
    lock over and finishes the job: every record exactly once."""
    url, env, direct = bucket
    log = tmp_path / "access.log"
    n = 20_000
    write_log(log, 0, n)
    state = tmp_path / "state"
    args = SHIP + [str(log), "--dest", url, "--state", str(state), "--max-records", "500",
                   "--name", "{seq:05d}{ext}", "--job", "k"]
    a = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 60
    while _delivered_count(state) < 3 and a.poll() is None and time.time() < end:
        time.sleep(0.005)
    assert a.poll() is None, "the first run ended before it could be killed"
    info = running(state, "k")
    assert info is not None and info["pid"] == a.pid
    b = subprocess.Popen(args + ["--wait", "60"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert b.poll() is None  # waiting for A's lock
    a.send_signal(signal.SIGKILL)
    a.wait()
    out, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    assert _counts(direct) == _expected(n)
    st = State(state)
    runs = st.runs("k")
    assert [r.status for r in reversed(runs)] == ["failed", "ok"]
    assert runs[1].error == "process died during the run" and runs[1].objects >= 3
    assert sum(o.records for o in st.objects(job="k")) == n
    assert {o.name: o.size for o in direct.list()} == {o.name: o.size for o in st.objects(job="k")}
    st.close()
    assert running(state, "k") is None


def test_lock_busy_wait_and_running(tmp_path):
    assert running(tmp_path, "j") is None
    with job_lock(tmp_path, "j") as held:
        info = running(tmp_path, "j")
        assert info == held and info["pid"] == os.getpid()
        t0 = time.monotonic()
        with pytest.raises(JobRunning) as e:
            with job_lock(tmp_path, "j", wait=0.3):
                pass
        assert time.monotonic() - t0 >= 0.3
        assert (e.value.job, e.value.pid) == ("j", os.getpid())
        assert str(e.value).startswith(f"job j is already running (pid {os.getpid()} since 20")
        with job_lock(tmp_path, "other"):  # another job is not affected
            pass
    assert running(tmp_path, "j") is None

    # a second run that waits gets the lock as soon as the first one ends
    got = []
    with job_lock(tmp_path, "j"):
        t = threading.Thread(target=lambda: got.append(job_lock(tmp_path, "j", wait=10).__enter__()))
        t.start()
        time.sleep(0.3)
        assert not got
    t.join(5)
    assert got and got[0]["pid"] == os.getpid()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from logferry.ship.lock import job_lock
        with job_lock({str(tmp_path)!r}, "j"):
            print("held", flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    assert running(tmp_path, "j")["pid"] == p.pid
    with pytest.raises(JobRunning):
        with job_lock(tmp_path, "j"):
            pass
    p.send_signal(signal.SIGKILL)
    p.wait()
    # the file still names the dead holder, but the lock is free
    assert json.loads((tmp_path / "j.lock").read_text())["pid"] == p.pid
    assert running(tmp_path, "j") is None
    with job_lock(tmp_path, "j") as held:
        assert held["pid"] == os.getpid()


def test_run_job_raises_job_running_and_records_nothing(tmp_path):
    log = tmp_path / "a.log"
    write_log(log, 0, 10)
    job = Job("j", (str(log),), f"file://{tmp_path}/out")
    st = State(tmp_path / "state")
    dest = open_destination(job.dest)
    with job_lock(tmp_path / "state", "j"):
        with pytest.raises(JobRunning):
            run_job(job, st, dest, stop=Stop())
    assert st.runs("j") == []
    assert run_job(job, st, dest).records == 10
    st.close()


def _config(tmp_path, **extra) -> str:
    log = tmp_path / "a.log"
    write_log(log, 0, 20)
    cfg = tmp_path / "logferry.toml"
    lines = [f'[jobs.web]\nsource=["{log}"]\ndest="file://{tmp_path}/out"\nevery_minutes=5']
    lines += [f"{k}={json.dumps(v)}" for k, v in extra.items()]
    cfg.write_text("\n".join(lines) + "\n")
    return str(cfg)


def test_export_run_busy_exits_75_and_scheduler_skips(tmp_path, capsys):
    cfg = _config(tmp_path)
    state = tmp_path / ".logferry"
    runner = CliRunner()
    with job_lock(state, "web"):
        r = runner.invoke(app, ["export", "run", "web", "--once", "--config", cfg])
        assert r.exit_code == EXIT_BUSY, r.output
        assert f"logferry: error: job web is already running (pid {os.getpid()} since" in r.output

        # the scheduler skips the busy job, says so, and goes on
        from logferry.config import load
        from logferry.ship.schedule import Schedule

        stop = Stop()
        t = [1_750_000_000.0]

        def sleep(s):
            t[0] += s
            stop.set()

        r = runner.invoke(app, ["export", "history", "web", "--config", cfg, "--json"])
        assert json.loads(r.output) == []
        capsys.readouterr()
        ship_cli.scheduler_loop(load(cfg), {"web": Schedule.make(5)}, stop,
                                clock=lambda: t[0], sleep=sleep)
        said = capsys.readouterr().err
        assert "web: skipped: job web is already running" in said
    r = runner.invoke(app, ["export", "run", "web", "--once", "--config", cfg])
    assert r.exit_code == 0, r.output
    assert "20 records" in r.output


def test_sites_filter_records_and_tenants(tmp_path):
    log = tmp_path / "sites.log"
    rows = "".join(f"2024-03-01 00:00:{i:02d} {s} GET /{s}/{i} 200\n"
                   for i, s in enumerate(["A", "B", "C", "A", "-", "B"]))
    log.write_text("#Software: IIS\n#Fields: date time s-sitename cs-method cs-uri-stem sc-status\n" + rows)
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'[jobs.t]\nsource=["{log}"]\ndest="file://{tmp_path}/out"\nsites=["A","B"]\n')
    from logferry.config import load

    job = load(cfg).engine_job("t")
    assert job.sites == ("A", "B")
    st = State(tmp_path / "state")
    dest = open_destination(job.dest)
    res = run_job(job, st, dest)
    assert res.status == "ok" and res.records == 4
    got = sorted(p for o in dest.list() for p in paths_of(dest.get(o.name)))
    assert got == ["/A/0", "/A/3", "/B/1", "/B/5"]
    st.close()
    cfg.write_text(f'[jobs.t]\nsource=["{log}"]\ndest="file://{tmp_path}/out"\nsites="A"\n')
    with pytest.raises(ConfigError, match="sites"):
        load(cfg)


@pytest.mark.parametrize("name", ["..", "../../x", "/abs", "a/b", "", "-x", "a\x1bb", "x" * 65])
def test_job_names_are_slugs(tmp_path, name):
    with pytest.raises(ConfigError, match="job name"):
        Job(name, ("a.log",), "file:///tmp/x")
    with pytest.raises(ConfigError):
        job_lock(tmp_path, name).__enter__()


def test_limits_of_the_lock_option(tmp_path):
    r = CliRunner().invoke(app, ["ship", "x.log", "--dest", f"file://{tmp_path}", "--wait", "-1"])
    assert r.exit_code == 2 and "--wait" in r.output
