"""Re-export (`logferry export rerun JOB --since --until`): a one-off run of a past range
that leaves the job's checkpoint alone, delivers every record of the range once as objects
of its own names (never over the originals), is marked in history, and works on a stopped
job too; how far behind a job is (`export list`)."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner
from tests.test_dest_conformance import paths_of, write_log

from logferry.cli import app
from logferry.ship.state import State


def setup_job(tmp_path, n=100, extra=""):
    log = tmp_path / "logs" / "a.log"
    log.parent.mkdir(exist_ok=True)
    write_log(str(log), 0, n)  # one line a second from 2024-03-01T00:00:00Z
    os.utime(log, (1e9, 1e9))  # (old: its last line is not held back as unfinished)
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'state_dir = "state"\n[jobs.web]\nsource = ["{log}"]\ndest = "file://{tmp_path}/out"\n'
                   f'name = {{ template = "{{job}}-{{seq:04d}}{{ext}}" }}\n{extra}')
    return log, cfg


def cli(cfg, *args):
    return CliRunner().invoke(app, [*args, "--config", str(cfg)])


def objects(tmp_path):
    out = tmp_path / "out"
    return {p.name: paths_of(p.read_bytes()) for p in sorted(out.iterdir())}


def checkpoint(tmp_path):
    st = State(tmp_path / "state")
    try:
        return [(f.line, f.anchor_off, f.eof) for f in st.files("web")], st.next_seq("web")
    finally:
        st.close()


def test_rerun_delivers_the_range_once_and_leaves_the_checkpoint(tmp_path):
    log, cfg = setup_job(tmp_path, extra="rotate = { max_records = 7 }\n")
    r = cli(cfg, "export", "run", "web", "--once")
    assert r.exit_code == 0, r.output
    originals = objects(tmp_path)
    before = checkpoint(tmp_path)
    r = cli(cfg, "export", "rerun", "web", "--since", "2024-03-01T00:00:30Z", "--until", "2024-03-01T00:01:00+00:00")
    assert r.exit_code == 0, r.output
    assert "web: re-export 2 ok: 5 objects, 30 records" in r.output
    now = objects(tmp_path)
    assert {k: v for k, v in now.items() if k in originals} == originals  # none overwritten
    new = {k: v for k, v in now.items() if k not in originals}
    assert sorted(new) == [f"web-{i:04d}-rerun-2.jsonl.gz" for i in range(5)]
    assert [p for k in sorted(new) for p in new[k]] == [f"/p/{i}" for i in range(30, 60)]  # once, in order
    assert checkpoint(tmp_path) == before
    # the job goes on from its own checkpoint: new lines only
    write_log(str(log), 100, 5, header=False, mode="a")
    os.utime(log, (1e9, 1e9))
    r = cli(cfg, "export", "run", "web", "--once")
    assert "web: run 3 ok: 1 objects, 5 records" in r.output
    # history marks it; show says what it covered
    r = cli(cfg, "export", "history", "web")
    rows = [ln.split("\t") for ln in r.output.splitlines()]
    assert rows[0][:5] == ["RUN", "JOB", "KIND", "START", "END"]
    assert [(x[0], x[2]) for x in rows[1:]] == [("3", "run"), ("2", "re-export"), ("1", "run")]
    r = cli(cfg, "export", "show", "2")
    assert r.output.startswith("run 2 job web re-export 2024-03-01T00:00:30Z .. 2024-03-01T00:01:00Z ok")
    h = json.loads(cli(cfg, "export", "history", "web", "--json").output)
    assert [x["kind"] for x in h] == [None, "rerun", None]


def test_rerun_of_a_stopped_job_and_mistakes(tmp_path):
    log, cfg = setup_job(tmp_path)
    assert cli(cfg, "export", "stop", "web").exit_code == 0
    r = cli(cfg, "export", "rerun", "web", "--since", "2024-03-01", "--until", "2024-03-01T00:00:10")
    assert r.exit_code == 0 and "re-export 1 ok: 1 objects, 10 records" in r.output, r.output
    assert list(objects(tmp_path).values()) == [[f"/p/{i}" for i in range(10)]]
    assert "stopped" in cli(cfg, "export", "list").output  # still stopped
    assert checkpoint(tmp_path)[1] == 0
    for since, until, msg in (("yesterday", "2024-03-02", "--since 'yesterday': not an ISO 8601 time"),
                              ("2024-03-02", "2024-03-01", "must be later than since")):
        r = cli(cfg, "export", "rerun", "web", "--since", since, "--until", until)
        assert r.exit_code == 2 and r.output.count("\n") == 1 and msg in r.output, r.output
    r = cli(cfg, "export", "rerun", "nope", "--since", "2024-03-01", "--until", "2024-03-02")
    assert r.exit_code == 2 and "no job named 'nope'" in r.output
    assert len(objects(tmp_path)) == 1


def test_export_list_shows_the_last_delivery_and_how_far_behind(tmp_path):
    log, cfg = setup_job(tmp_path)
    listed = json.loads(cli(cfg, "export", "list", "--json").output)[0]
    assert listed["backlog"]["files"] == 1 and listed["backlog"]["bytes"] == log.stat().st_size
    assert listed["backlog"]["oldest"] == "2024-03-01T00:00:00Z" and listed["last_delivery"] is None
    cli(cfg, "export", "run", "web", "--once")
    cli(cfg, "export", "run", "web", "--once")  # nothing new: 0 objects
    listed = json.loads(cli(cfg, "export", "list", "--json").output)[0]
    assert listed["last_run"] == 2 and listed["last_delivery"]["id"] == 1  # the real delivery
    assert listed["last_delivery"]["records"] == 100
    assert listed["backlog"]["files"] == 0 and listed["backlog"]["text"] == "up to date"
    size = log.stat().st_size
    write_log(str(log), 100, 20, header=False, mode="a")
    os.utime(log, (1e9, 1e9))
    b = json.loads(cli(cfg, "export", "list", "--json").output)[0]["backlog"]
    assert b["files"] == 1 and b["bytes"] == log.stat().st_size - size
    assert b["oldest"] == "2024-03-01T00:01:40Z" and b["age_secs"] > 86400
    text = cli(cfg, "export", "list").output
    assert "delivered: " in text and "run 1" in text
    assert "behind: 1 file, 1.9 kB behind; oldest undelivered line 10" in text  # (days old)


def test_the_oldest_undelivered_line_is_the_first_record_the_next_run_delivers(tmp_path):
    """The backlog's oldest record is the one the next run's first object is named after
    (engine.next_record_time): after the checkpoint and through the job's filters."""
    from logferry.config import load
    from logferry.ship.engine import next_record_time
    from logferry.ship.status import backlog

    log, cfg = setup_job(tmp_path, extra='filter = { since = "2024-03-01T00:00:30Z" }\n')
    job = load(cfg).engine_job("web")
    st = State(tmp_path / "state")
    try:
        b = backlog(job, st)
        assert (b.files, b.bytes) == (1, log.stat().st_size)
        assert b.oldest is not None and b.oldest.isoformat() == "2024-03-01T00:00:30+00:00"
        assert next_record_time(job, st) == b.oldest
    finally:
        st.close()
    cli(cfg, "export", "run", "web", "--once")
    assert list(objects(tmp_path).values())[0][0] == "/p/30"


def test_export_start_run_catches_up_at_once(tmp_path):
    log, cfg = setup_job(tmp_path)
    cli(cfg, "export", "run", "web", "--once")
    cli(cfg, "export", "stop", "web")
    write_log(str(log), 100, 3, header=False, mode="a")
    os.utime(log, (1e9, 1e9))
    r = cli(cfg, "export", "start", "web", "--run")
    assert r.exit_code == 0 and r.output.splitlines() == [
        "web: started", "web: run 2 ok: 1 objects, 3 records, " + r.output.split("records, ")[1].splitlines()[0]]
    assert "backfill" in cli(cfg, "export", "history", "web").output.splitlines()[1]
