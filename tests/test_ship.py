"""Engine, rotation, naming, schedule, retention and config with a frozen clock; fault tests."""

from __future__ import annotations

import collections
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from tests.servers import servers as S
from tests.test_dest_conformance import paths_of, write_log

from logferry.config import load
from logferry.destinations import open_destination
from logferry.errors import ConfigError
from logferry.privacy import mask_ip
from logferry.ship import naming, retention
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Codec, Limits, LineRotator
from logferry.ship.schedule import Cron, Schedule, due_jobs
from logferry.ship.state import State


class Clock:
    def __init__(self, t=1_700_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def _lines(n, width=60):
    import numpy as np

    rows = [(f"r{i:06d}-" + "x" * (i * 7 % width)).encode() + b"\n" for i in range(n)]
    data = b"".join(rows)
    offs = np.zeros(n + 1, dtype=np.int64)
    offs[1:] = np.cumsum([len(r) for r in rows])
    return rows, data, offs


@pytest.mark.parametrize("codec", ["gzip", "zstd", "none"])
def test_rotation_limits_hold_exactly(codec):
    rows, data, offs = _lines(5000)
    rot = LineRotator(Limits(max_bytes=3000), Codec(codec), Clock(), piece_bytes=4096)
    objs = list(rot.add(data, offs, lambda i: i)) + list(rot.flush())
    assert all(o.size <= 3000 for o in objs), max(o.size for o in objs)
    assert sum(o.records for o in objs) == 5000
    out = b""
    for o in objs:
        d = o.data
        if codec == "gzip":
            d = gzip.decompress(d)
        elif codec == "zstd":
            import zstandard

            d = zstandard.ZstdDecompressor().stream_reader(d, read_across_frames=True).read()
        out += d
    assert out == data
    # objects are filled: all but the last within 5% of the limit
    assert min(o.size for o in objs[:-1]) > 2850


def test_rotation_single_large_record_and_records_and_age():
    big = b"y" * 5000 + b"\n"
    import numpy as np

    data = b"a\n" + big + b"b\n"
    offs = np.array([0, 2, 2 + len(big), len(data)])
    rot = LineRotator(Limits(max_bytes=1000), Codec("none"), Clock())
    objs = list(rot.add(data, offs, lambda i: i)) + list(rot.flush())
    assert [(o.records, o.size) for o in objs] == [(1, 2), (1, 5001), (1, 2)]
    rows, data, offs = _lines(25)
    rot = LineRotator(Limits(max_records=10), Codec("none"), Clock())
    objs = list(rot.add(data, offs, lambda i: i)) + list(rot.flush())
    assert [o.records for o in objs] == [10, 10, 5]
    clk = Clock()
    rot = LineRotator(Limits(max_age_secs=300), Codec("none"), clk)
    assert list(rot.add(data[: offs[3]], offs[:4], lambda i: i)) == []
    clk.t += 299
    assert list(rot.tick()) == []
    clk.t += 1
    aged = list(rot.tick())
    assert [o.records for o in aged] == [3]


def test_naming_templates_and_presets():
    ts = datetime(2023, 8, 1, 5, 51, 30, tzinfo=UTC)
    assert naming.render(naming.PRESETS["cdn"], ts, seq=3495, job="j", position="1:1",
                         service="example-service", ext=".gz") == "20230801-055130.example-service.03495.log.gz"
    assert naming.render(naming.PRESETS["csv-usage"], ts, seq=1, job="j", position="p") == "db20230801_001.csv"
    assert naming.render(naming.PRESETS["shop"], ts, seq=2, job="j", position="p") == "shop20230801-0002.log"
    a = naming.render("{job}/{uuid}{ext}", ts, seq=0, job="j", position="7:100", ext=".gz")
    assert a == naming.render("{job}/{uuid}{ext}", ts, seq=0, job="j", position="7:100", ext=".gz")
    assert a != naming.render("{job}/{uuid}{ext}", ts, seq=0, job="j", position="7:101", ext=".gz")
    for bad in ("%Y/{nope}.gz", "%Y%m%d.log", "/abs/{seq}", "{seq!r}"):
        with pytest.raises(ConfigError):
            naming.validate(bad)


def test_cron_and_interval_schedule():
    c = Cron.parse("*/15 2 * * 1-5")
    t = datetime(2024, 3, 1, 2, 14, tzinfo=UTC)  # a Friday
    assert c.next_after(t) == datetime(2024, 3, 1, 2, 15, tzinfo=UTC)
    assert c.next_after(datetime(2024, 3, 1, 2, 45, tzinfo=UTC)) == datetime(2024, 3, 4, 2, 0, tzinfo=UTC)
    assert Cron.parse("0 0 1 1 *").next_after(t) == datetime(2025, 1, 1, tzinfo=UTC)
    for bad in ("* * *", "61 * * * *", "*/0 * * * *"):
        with pytest.raises(ConfigError):
            Cron.parse(bad)
    now = 1_000_000.0
    scheds = {"a": Schedule.make(every_minutes=5), "b": Schedule.make(cron="*/10 * * * *"),
              "c": Schedule.make(every_minutes=1)}
    last = {"a": now - 299, "b": now - 3600, "c": None}
    assert due_jobs(scheds, last, now) == ["b", "c"]
    assert due_jobs(scheds, {**last, "a": now - 300}, now, stopped=frozenset({"c"})) == ["a", "b"]


def test_retention_plans():
    D = retention.DAY
    files = [retention.SourceEntry(1, "/l/a", 100 * D, 10, 10, True),
             retention.SourceEntry(2, "/l/b", 104 * D, 10, 10, True),
             retention.SourceEntry(3, "/l/c", 95 * D, 10, 8, True),  # grew since delivered
             retention.SourceEntry(4, "/l/d", 90 * D, 10, 10, False),  # not fully delivered
             retention.SourceEntry(5, "/l/e", 110 * D, 10, 10, True)]
    assert [f.path for f in retention.plan_sources(files, 7, False)] == ["/l/a"]
    assert retention.plan_sources(files, 7, True) == []

    class Obj:
        def __init__(self, n, m):
            self.name, self.mtime = n, m

    objs = [Obj("old", 1000 * D), Obj("new", 1025 * D), Obj("foreign", 900 * D)]
    # only what the job delivered, however old the rest
    assert [o.name for o in retention.plan_dest(objs, 1031 * D, 30, {"old", "new"})] == ["old"]


def test_privacy_mask():
    assert mask_ip("203.0.113.77") == "203.0.113.0"
    assert mask_ip("2001:db8:1:2::5") == "2001:db8:1::"
    assert mask_ip("::ffff:198.51.100.9") == "198.51.100.0"
    assert mask_ip("not-an-ip") is None


def test_config_errors_name_key_and_file(tmp_path):
    p = tmp_path / "logferry.toml"
    p.write_text('[jobs.a]\nsource=["x.log"]\ndest="s3://b/p"\nbogus=1\n')
    with pytest.raises(ConfigError) as e:
        load(p)
    assert f"{p}: jobs.a.bogus: unknown key" in str(e.value)
    p.write_text('[jobs.a]\nsource=["x.log"]\ndest="sftp://u@h/d"\ndest_options={password="hunter2"}\n')
    with pytest.raises(ConfigError) as e:
        load(p)
    assert "jobs.a.dest_options" in str(e.value) and "hunter2" not in str(e.value)
    p.write_text('[jobs.a]\nsource=["x.log"]\ndest="s3://b/p"\nname={template="%Y.log"}\n')
    with pytest.raises(ConfigError, match="jobs.a.name"):
        load(p)
    p.write_text('secrets_file="s.env"\n[jobs.a]\nsource=["x.log"]\ndest="ftps://u@h/d"\n'
                 'dest_options={password_secret="ftp"}\nevery_minutes=5\n')
    (tmp_path / "s.env").write_text("ftp=pa55\n")
    cfg = load(p)
    assert cfg.resolve_options("a", dict(cfg.job("a").dest_options)) == {"password": "pa55"}
    assert cfg.state_dir == tmp_path / ".logferry"


def test_rotated_file_neither_skipped_nor_resent(tmp_path):
    log = tmp_path / "logs" / "access.log"
    log.parent.mkdir()
    write_log(log, 0, 100)
    job = Job("rot", (str(tmp_path / "logs" / "access.log*"),), f"file://{tmp_path}/out",
              name_template="{seq:04d}{ext}", partial_grace_secs=0)
    st = State(tmp_path / "st")
    d = open_destination(job.dest)
    assert run_job(job, st, d).records == 100
    write_log(log, 100, 20, header=False, mode="a")
    os.rename(log, str(log) + ".1")  # rotation
    write_log(log, 120, 30)
    r = run_job(job, st, d)
    assert r.records == 50
    got = [p for o in d.list() for p in paths_of(d.get(o.name))]
    assert collections.Counter(got) == collections.Counter(f"/p/{i}" for i in range(150))


def test_stop_start_backfill_in_order(tmp_path):
    log = tmp_path / "a.log"
    write_log(log, 0, 50)
    job = Job("ss", (str(log),), f"file://{tmp_path}/out", name_template="{seq:04d}{ext}",
              limits=Limits(max_records=20))
    st = State(tmp_path / "st")
    d = open_destination(job.dest)
    assert run_job(job, st, d).records == 50
    st.set_stopped("ss", True)
    write_log(log, 50, 70, header=False, mode="a")
    assert run_job(job, st, d).status == "skipped"
    assert [o.name for o in d.list()] == ["0000.jsonl.gz", "0001.jsonl.gz", "0002.jsonl.gz"]
    st.set_stopped("ss", False)
    r = run_job(job, st, d)
    assert r.records == 70 and r.names == ["0003.jsonl.gz", "0004.jsonl.gz", "0005.jsonl.gz", "0006.jsonl.gz"]
    got = [p for o in d.list() for p in paths_of(d.get(o.name))]
    assert got == [f"/p/{i}" for i in range(120)]  # in order


def test_destination_down_then_back(tmp_path, monkeypatch):
    intake = S.DatadogIntake("k")
    monkeypatch.setenv("DD_API_KEY", "k")
    try:
        log = tmp_path / "a.log"
        write_log(log, 0, 2200)
        intake.fail_next = 4  # outage: 4 requests answered 503
        job = Job("dd", (str(log),), f"datadog://127.0.0.1:{intake.port}?tls=false", retries=6)
        sleeps = []
        st = State(tmp_path / "st")
        r = run_job(job, st, open_destination(job.dest), sleep=sleeps.append)
        assert r.status == "ok", r.error
        assert sleeps == [1.0, 2.0, 4.0, 8.0]
        got = [json.loads(i["message"])["path"] for i in intake.items]
        assert collections.Counter(got) == collections.Counter(f"/p/{i}" for i in range(2200))
        # down for longer than the retries: the run fails with the reason, nothing lost
        write_log(log, 2200, 10, header=False, mode="a")
        intake.fail_next = 100
        r = run_job(job, st, open_destination(job.dest), sleep=lambda s: None)
        assert r.status == "failed" and "HTTP 503" in r.error
        intake.fail_next = 0
        r = run_job(job, st, open_destination(job.dest), sleep=lambda s: None)
        assert r.records == 10 and len(intake.items) == 2210
    finally:
        intake.stop()


KILL_SCRIPT = r"""
import sys, time
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State
from logferry.destinations import open_destination
src, dest, state = sys.argv[1:4]
d = open_destination(dest)
orig = d.put
def slow_put(name, data):
    time.sleep(0.01)
    orig(name, data)
    time.sleep(0.01)
d.put = slow_put
job = Job("k", (src,), dest, limits=Limits(max_records=97), name_template="{seq:05d}{ext}")
run_job(job, State(state), d)
"""


def test_sigkill_at_random_points_then_rerun_exactly_once(tmp_path):
    log = tmp_path / "a.log"
    write_log(log, 0, 6000)
    script = tmp_path / "k.py"
    script.write_text(KILL_SCRIPT)
    dest = f"file://{tmp_path}/out"
    args = [sys.executable, str(script), str(log), dest, str(tmp_path / "st")]
    rnd = random.Random(7)
    from tests.test_ship_faults import _delivered_count

    for _ in range(6):
        before = _delivered_count(tmp_path / "st")
        p = subprocess.Popen(args)
        # kill inside the run (not while the interpreter starts, which takes seconds on a
        # loaded machine): after its first object, at a random point of the ones after
        end = time.time() + 60
        while _delivered_count(tmp_path / "st") <= before and p.poll() is None and time.time() < end:
            time.sleep(0.005)
        time.sleep(rnd.uniform(0.0, 0.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
    subprocess.run(args, check=True, timeout=120)
    d = open_destination(dest)
    got = [p for o in d.list() for p in paths_of(d.get(o.name))]
    assert collections.Counter(got) == collections.Counter(f"/p/{i}" for i in range(6000))
    st = State(tmp_path / "st")
    assert any(r.error == "process died during the run" for r in st.runs("k"))


def test_cli_ship_and_export_history(tmp_path):
    from click.testing import CliRunner

    from logferry.cli import app

    log = tmp_path / "a.log"
    write_log(log, 0, 40)
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["ship", str(log), "--dest", f"file://{out}", "--max-records", "15", "--name", "cdn",
            "--service", "svc", "--state", str(tmp_path / "st"), "--compress", "zstd"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "3 objects, 40 records" in r.output
    assert sorted(os.listdir(out)) == ["20240301-000000.svc.00000.log.jsonl.zst",
                                       "20240301-000015.svc.00001.log.jsonl.zst",
                                       "20240301-000030.svc.00002.log.jsonl.zst"]
    r = runner.invoke(app, args)
    assert "0 objects, 0 records" in r.output
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'state_dir="st2"\n[jobs.web]\nsource=["{log}"]\ndest="file://{tmp_path}/o2"\n'
                   f'rotate={{max_records=25}}\nname={{template="{{job}}-{{seq:03d}}{{ext}}"}}\n')
    r = runner.invoke(app, ["export", "run", "web", "--once", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", "history", "web", "--config", str(cfg), "--json"])
    h = json.loads(r.output)
    assert (h[0]["status"], h[0]["objects"], h[0]["records"]) == ("ok", 2, 40)
    r = runner.invoke(app, ["export", "show", str(h[0]["id"]), "--config", str(cfg)])
    assert "web-000.jsonl.gz\t" in r.output and "\t25\tsha256:" in r.output


def test_batch_rotator_limit_holds_when_data_gets_less_compressible():
    """Parquet sizes are estimated between renders; every object still fits max_bytes when
    highly compressible rows are followed by random ones."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from logferry.ship.rotate import BatchRotator

    def render(t):
        b = io.BytesIO()
        pq.write_table(t, b, compression="zstd")
        return b.getvalue()

    rng = np.random.default_rng(3)
    rot = BatchRotator(Limits(max_bytes=60_000), render, Clock())
    objs = []
    n = 0
    for k in range(40):
        rows = 1000
        if k < 20:
            txt = ["same-text-" + "a" * 40] * rows
        else:
            txt = [rng.bytes(30).hex() for _ in range(rows)]
        seq = list(range(n, n + rows))
        n += rows
        objs += list(rot.add(pa.table({"seq": seq, "txt": txt}), seq, [None] * rows))
    objs += list(rot.flush())
    sizes = [o.size for o in objs]
    assert all(s <= 60_000 for s in sizes), sizes
    got = [x for o in objs for x in pq.read_table(io.BytesIO(o.data)).column("seq").to_pylist()]
    assert got == list(range(40_000))
    assert [o.records for o in objs] == [len(pq.read_table(io.BytesIO(o.data))) for o in objs]


def test_rotated_and_compressed_file_is_recognised(tmp_path):
    """logrotate with `compress`: access.log -> access.log.1 -> access.log.2.gz (new inode,
    new bytes) must be neither skipped (its unsent tail is sent) nor sent twice."""
    import gzip

    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    write_log(log, 0, 100)
    job = Job("gzrot", (str(logs / "access.log*"),), f"file://{tmp_path}/out",
              name_template="{seq:04d}{ext}", partial_grace_secs=0)
    st = State(tmp_path / "st")
    d = open_destination(job.dest)
    assert run_job(job, st, d).records == 100
    write_log(log, 100, 20, header=False, mode="a")  # written after the last run...
    rotated = logs / "access.log.1.gz"
    rotated.write_bytes(gzip.compress(log.read_bytes()))  # ...then rotated and compressed
    log.unlink()
    write_log(log, 120, 30)
    r = run_job(job, st, d)
    assert r.records == 50
    assert run_job(job, st, d).records == 0  # and nothing again next time
    got = [p for o in d.list() for p in paths_of(d.get(o.name))]
    assert collections.Counter(got) == collections.Counter(f"/p/{i}" for i in range(150))


@pytest.mark.parametrize("first,n", [("good", 4), ("bad", 4), ("good", 0)])
def test_a_log_without_a_title_line_is_not_sent_again(tmp_path, first, n):
    """A combined log (no directive, no CSV title): its first line was kept as the file's
    "title" and replayed in front of each later read, so every run sent it again as a
    record numbered as the checkpoint's line (or counted it as a bad row again), and the
    next object's name and the backlog took its time as the oldest pending record's."""
    from logferry.ship.engine import next_record_time

    head = "garbage\n" if first == "bad" else \
        '10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /first HTTP/1.1" 200 1 "-" "UA"\n'
    line = '10.0.0.1 - - [02/May/2024:10:0{i}:00 +0000] "GET /p/{i} HTTP/1.1" 200 1 "-" "UA"\n'
    log = tmp_path / "access.log"
    log.write_text(head + "".join(line.format(i=i) for i in range(1, n + 1)))
    job = Job("clf", (str(log),), f"file://{tmp_path}/out", format="combined",
              name_template="{seq:04d}{ext}", partial_grace_secs=0)
    st = State(tmp_path / "st")
    d = open_destination(job.dest)
    r = run_job(job, st, d)
    assert (r.records, r.bad) == ((n, 1) if first == "bad" else (n + 1, 0))
    assert next_record_time(job, st) is None
    again = run_job(job, st, d)
    assert (again.records, again.bad, again.objects) == (0, 0, 0)
    with open(log, "a") as f:
        f.write(line.format(i=5))
    assert next_record_time(job, st) == datetime(2024, 5, 2, 10, 5, tzinfo=UTC)
    grown = run_job(job, st, d)
    assert (grown.records, grown.bad) == (1, 0)
    recs = [json.loads(x) for o in sorted(d.list(), key=lambda o: o.name)
            for x in gzip.decompress(d.get(o.name)).splitlines()]
    assert (recs[-1]["path"], recs[-1]["line_number"]) == ("/p/5", n + 2)
    assert len(recs) == len({x["line_number"] for x in recs}) == n + (1 if first == "bad" else 2)
    st.close()
