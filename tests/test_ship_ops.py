"""Operating export jobs from the CLI: `logferry run` (the scheduler, on a frozen clock, and
SIGTERM in a real process), `logferry prune` (source and destination retention) end to end."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from tests.test_dest_conformance import paths_of, s3, write_log  # noqa: F401  (fixture)
from tests.test_ship_faults import _delivered_count

from logferry.cli import app
from logferry.destinations import open_destination
from logferry.ship import cli as ship_cli
from logferry.ship.engine import Job, Stop, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State

DAY = 86400.0


def _ts(s: str) -> float:
    return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()


class FrozenClock:
    """The scheduler's clock and sleep: time moves only when the scheduler sleeps."""

    def __init__(self, t: float, end: float | None = None):
        self.t = t
        self.end = end
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        assert s >= 0
        self.t += s
        self.slept += s
        if self.end is not None and self.t >= self.end:
            os.kill(os.getpid(), signal.SIGTERM)  # what an operator does to `logferry run`


@pytest.fixture
def restore_sigterm():
    old = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, old)


def _history(cfg, job):
    r = CliRunner().invoke(app, ["export", "history", job, "--config", str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    return list(reversed(json.loads(r.output)))


def test_run_scheduler_frozen_clock(tmp_path, monkeypatch, restore_sigterm):
    log = tmp_path / "a.log"
    write_log(log, 0, 30)
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(
        f'[jobs.five]\nsource=["{log}"]\ndest="file://{tmp_path}/o5"\nevery_minutes=5\n'
        f'[jobs.ten]\nsource=["{log}"]\ndest="file://{tmp_path}/o10"\ncron="*/10 * * * *"\n'
        f'[jobs.halted]\nsource=["{log}"]\ndest="file://{tmp_path}/oh"\nevery_minutes=1\n'
        f'[jobs.manual]\nsource=["{log}"]\ndest="file://{tmp_path}/om"\n'
    )
    runner = CliRunner()
    assert runner.invoke(app, ["export", "stop", "halted", "--config", str(cfg)]).exit_code == 0
    t0 = _ts("2024-03-01T00:03:00")
    clk = FrozenClock(t0, end=t0 + 31 * 60)
    monkeypatch.setattr(ship_cli, "clock", clk)
    monkeypatch.setattr(ship_cli, "sleep", clk.sleep)
    r = runner.invoke(app, ["run", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert r.output.rstrip().endswith("scheduler: stopped cleanly")
    # every 5 minutes from the start (00:03 ... 00:33); the cron job on the tens; the stopped and the
    # unscheduled job never
    five = _history(cfg, "five")
    assert [h["started"] - t0 for h in five] == [0, 300, 600, 900, 1200, 1500, 1800]
    assert [(h["status"], h["records"]) for h in five] == [("ok", 30)] + [("ok", 0)] * 6
    ten = _history(cfg, "ten")
    assert [h["started"] for h in ten] == [_ts("2024-03-01T00:10:00"), _ts("2024-03-01T00:20:00"),
                                           _ts("2024-03-01T00:30:00")]
    assert _history(cfg, "halted") == [] and _history(cfg, "manual") == []
    assert not os.path.exists(tmp_path / "oh")
    # no busy loop: the scheduler slept the whole time away, in steps
    assert clk.slept == pytest.approx(31 * 60, abs=0.5)

    # restarted later, the scheduler keeps the rhythm from history and backfills new lines
    write_log(log, 30, 12, header=False, mode="a")
    clk2 = FrozenClock(t0 + 31 * 60, end=t0 + 41 * 60)
    monkeypatch.setattr(ship_cli, "clock", clk2)
    monkeypatch.setattr(ship_cli, "sleep", clk2.sleep)
    r = runner.invoke(app, ["run", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    five = _history(cfg, "five")
    assert [h["started"] - t0 for h in five[7:]] == [2100, 2400]
    assert [h["records"] for h in five[7:]] == [12, 0]
    assert [h["started"] for h in _history(cfg, "ten")[3:]] == [_ts("2024-03-01T00:40:00")]
    d = open_destination(f"file://{tmp_path}/o5")
    got = [p for o in d.list() for p in paths_of(d.get(o.name))]
    assert got == [f"/p/{i}" for i in range(42)]


def test_stop_request_finishes_the_object_in_flight(tmp_path):
    """The stop request arrives while object 3 is being put: object 3 is completed and
    recorded, nothing after it is sent, and the next run continues right after it."""
    log = tmp_path / "a.log"
    write_log(log, 0, 1000)
    dest = open_destination(f"file://{tmp_path}/out")
    stop = Stop()
    real_put = dest.put
    puts = []

    def put(name, data):
        puts.append(name)
        if len(puts) == 3:
            stop.set()  # SIGTERM during the upload
        real_put(name, data)

    dest.put = put
    job = Job("j", (str(log),), dest.url, limits=Limits(max_records=100), name_template="{seq:03d}{ext}")
    st = State(tmp_path / "st")
    r = run_job(job, st, dest, stop=stop, clock=lambda: 1e12)
    assert (r.status, r.objects, r.records) == ("stopped", 3, 300)
    assert puts == ["000.jsonl.gz", "001.jsonl.gz", "002.jsonl.gz"]
    assert [p for o in dest.list() for p in paths_of(dest.get(o.name))] == [f"/p/{i}" for i in range(300)]
    assert st.files("j")[0].line == 3 + 300  # 3 directive lines + the delivered records
    dest.put = real_put
    r2 = run_job(job, st, dest, clock=lambda: 1e12)
    assert (r2.status, r2.records, r2.names[0]) == ("ok", 700, "003.jsonl.gz")
    assert [p for o in dest.list() for p in paths_of(dest.get(o.name))] == [f"/p/{i}" for i in range(1000)]


def test_run_sigterm_exits_cleanly(tmp_path):
    """`logferry run` in a real process gets SIGTERM in the middle of a run: exit code 0,
    the run is recorded as stopped, the destination holds exactly the recorded objects (no
    temporary file), their lines are a gap-free prefix of the source, and the next run
    delivers the rest, each line once."""
    n = 30_000
    log = tmp_path / "a.log"
    write_log(log, 0, n)
    out = tmp_path / "out"
    state = tmp_path / "st"
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'state_dir="{state}"\n[jobs.web]\nsource=["{log}"]\ndest="file://{out}"\n'
                   f'every_minutes=60\nrotate={{max_records=100}}\nname={{template="{{seq:05d}}{{ext}}"}}\n')
    p = subprocess.Popen([sys.executable, "-m", "logferry.cli", "run", "--config", str(cfg)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.time() + 60
    while _delivered_count(state) < 5 and time.time() < end and p.poll() is None:
        time.sleep(0.005)
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    assert "web: run 1 stopped:" in stdout and stdout.rstrip().endswith("scheduler: stopped cleanly")
    st = State(state)
    run = st.runs("web")[0]
    objs = st.objects(job="web")
    assert run.status == "stopped" and run.error is None and 5 <= run.objects < n // 100
    assert sorted(os.listdir(out)) == [o.name for o in objs] == [f"{i:05d}.jsonl.gz" for i in range(len(objs))]
    assert all(os.path.getsize(out / o.name) == o.size for o in objs)
    d = open_destination(f"file://{out}")
    got = [x for o in d.list() for x in paths_of(d.get(o.name))]
    assert got == [f"/p/{i}" for i in range(run.records)]
    assert st.files("web")[0].line == 3 + run.records
    st.close()
    r = CliRunner().invoke(app, ["export", "run", "web", "--once", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    got = [x for o in d.list() for x in paths_of(d.get(o.name))]
    assert got == [f"/p/{i}" for i in range(n)]


def _set_mtime(path, t):
    os.utime(path, (t, t))


def test_prune_sources_and_destination_frozen_clock(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    now = _ts("2024-03-20T12:00:00")
    ages = {"a": 10, "b": 8, "c": 1, "d": 0, "e": 9}  # days before the newest file
    for k, name in enumerate(ages):
        write_log(logs / f"{name}.log", k * 100, 100)
    out = tmp_path / "out"
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'[jobs.web]\nsource=["{logs}/*.log"]\ndest="file://{out}"\nrotate={{max_records=100}}\n'
                   f'name={{template="{{seq:03d}}{{ext}}"}}\nretention={{source_days=7, dest_days=30}}\n')
    newest = now - 2 * DAY

    def age_files():
        for name, age in ages.items():
            _set_mtime(logs / f"{name}.log", newest - age * DAY)

    age_files()
    monkeypatch.setattr(ship_cli, "clock", lambda: now)
    runner = CliRunner()

    def cli(*a):
        r = runner.invoke(app, [*a, "--config", str(cfg)])
        assert r.exit_code == 0, r.output
        return r.output

    assert "5 objects, 500 records" in cli("export", "run", "web", "--once")
    # e.log grows after delivery (and keeps an old mtime): not fully delivered
    write_log(logs / "e.log", 900, 5, header=False, mode="a")
    age_files()
    # objects delivered 31 and 29 days before the frozen "now"
    objs = sorted(os.listdir(out))
    assert objs == ["000.jsonl.gz", "001.jsonl.gz", "002.jsonl.gz", "003.jsonl.gz", "004.jsonl.gz"]
    _set_mtime(out / objs[0], now - 31 * DAY)
    _set_mtime(out / objs[1], now - 29 * DAY)
    for o in objs[2:]:
        _set_mtime(out / o, now - 1 * DAY)

    dry = cli("prune", "--dry-run")
    assert dry.splitlines() == [f"web: would delete source {logs}/a.log", f"web: would delete source {logs}/b.log",
                                "web: would prune 000.jsonl.gz"]
    assert sorted(os.listdir(logs)) == ["a.log", "b.log", "c.log", "d.log", "e.log"]

    # while the job's last run failed, no source file is deleted at all
    os.rename(out, tmp_path / "out.saved")
    (tmp_path / "out").write_text("not a directory")
    write_log(logs / "d.log", 500, 3, header=False, mode="a")
    age_files()
    r = runner.invoke(app, ["export", "run", "web", "--once", "--config", str(cfg)])
    assert r.exit_code == 1 and "failed" in r.output
    assert _history(cfg, "web")[-1]["status"] == "failed"
    assert "delete source" not in runner.invoke(app, ["prune", "--config", str(cfg), "--dry-run"]).output
    os.remove(tmp_path / "out")
    os.rename(tmp_path / "out.saved", out)
    assert "1 objects, 8 records" in cli("export", "run", "web", "--once")  # e's 5 + d's 3
    age_files()

    # e.log is fully delivered now: it goes too (files in the order they were first seen)
    assert cli("prune").splitlines() == [f"web: delete source {logs}/{x}.log" for x in "aeb"] + [
        "web: prune 000.jsonl.gz"]
    assert sorted(os.listdir(logs)) == ["c.log", "d.log"]
    assert sorted(os.listdir(out)) == ["001.jsonl.gz", "002.jsonl.gz", "003.jsonl.gz", "004.jsonl.gz", "005.jsonl.gz"]
    st = State(tmp_path / ".logferry")
    assert [f.path.rsplit("/", 1)[1] for f in st.files("web")] == ["c.log", "d.log"]
    assert [o.name for o in st.objects(job="web") if o.pruned] == ["000.jsonl.gz"]
    st.close()
    # pruning again finds nothing; the next run neither re-sends nor misses anything
    assert cli("prune") == ""
    assert "0 objects, 0 records" in cli("export", "run", "web", "--once")


def test_prune_s3_destination(request, tmp_path, monkeypatch):
    """dest_days against the S3 server: its LastModified times, a clock frozen 29 and 31
    days later."""
    srv = request.getfixturevalue("s3")
    srv.make_bucket("prune-me")
    for k, v in (("AWS_ENDPOINT_URL", srv.endpoint), ("AWS_ACCESS_KEY_ID", "test"),
                 ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    log = tmp_path / "a.log"
    write_log(log, 0, 50)
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'[jobs.s3j]\nsource=["{log}"]\ndest="s3://prune-me/x"\nrotate={{max_records=20}}\n'
                   f'name={{template="{{seq:02d}}{{ext}}"}}\nretention={{dest_days=30}}\n')
    runner = CliRunner()
    t = time.time()
    monkeypatch.setattr(ship_cli, "clock", lambda: t)
    assert runner.invoke(app, ["export", "run", "s3j", "--once", "--config", str(cfg)]).exit_code == 0
    d = open_destination("s3://prune-me/x")
    assert [o.name for o in d.list()] == ["00.jsonl.gz", "01.jsonl.gz", "02.jsonl.gz"]
    monkeypatch.setattr(ship_cli, "clock", lambda: t + 29 * DAY)
    assert runner.invoke(app, ["prune", "--config", str(cfg)]).output == ""
    monkeypatch.setattr(ship_cli, "clock", lambda: t + 31 * DAY)
    r = runner.invoke(app, ["prune", "--config", str(cfg), "--job", "s3j"])
    assert r.exit_code == 0 and r.output.splitlines() == [f"s3j: prune {i:02d}.jsonl.gz" for i in range(3)]
    assert d.list() == []
    assert collections.Counter(o.pruned for o in State(tmp_path / ".logferry").objects(job="s3j")) == {1: 3}
