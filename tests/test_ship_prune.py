"""`prune` with dest_days (issue 12, item 4): only objects the job's history says it
delivered are deleted; files logferry never wrote and other jobs' objects stay."""

from __future__ import annotations

import os

from click.testing import CliRunner
from tests.test_dest_conformance import write_log

from logferry.cli import app
from logferry.ship import cli as ship_cli

DAY = 86400.0


def _delivered(tmp_path, lines: int, other: bool = False):
    """A log of ``lines`` lines delivered by job ``web`` (10 records per object, dest_days=30)
    and, with ``other``, by job ``other`` (30 per object, no retention) into the same folder."""
    log = tmp_path / "a.log"
    write_log(log, 0, lines)
    out = tmp_path / "out"
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(
        f'[jobs.web]\nsource=["{log}"]\ndest="file://{out}"\nrotate={{max_records=10}}\n'
        f'name={{template="web-{{seq:03d}}{{ext}}"}}\nretention={{dest_days=30}}\n'
        + (f'[jobs.other]\nsource=["{log}"]\ndest="file://{out}"\nrotate={{max_records=30}}\n'
           f'name={{template="other-{{seq:03d}}{{ext}}"}}\n' if other else ""))
    for job in ("web", "other") if other else ("web",):
        r = CliRunner().invoke(app, ["export", "run", job, "--once", "--config", str(cfg)])
        assert r.exit_code == 0, r.output
    return out, cfg


def test_prune_deletes_only_what_the_job_delivered(tmp_path, monkeypatch):
    out, cfg = _delivered(tmp_path, 30, other=True)
    runner = CliRunner()
    # files logferry never wrote, old ones too, at the top and in a folder
    (out / "keep").mkdir()
    (out / "keep" / "precious.db").write_text("x")
    (out / "README").write_text("x")
    (out / "web-999.jsonl.gz").write_text("looks like ours, is not")
    now = 1_800_000_000.0
    for p in out.rglob("*"):
        if p.is_file():
            os.utime(p, (now - 90 * DAY, now - 90 * DAY))
    monkeypatch.setattr(ship_cli, "clock", lambda: now)
    r = runner.invoke(app, ["prune", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [f"web: prune web-{i:03d}.jsonl.gz" for i in range(3)]
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == ["README", "keep/precious.db", "other-000.jsonl.gz", "web-999.jsonl.gz"]
    assert runner.invoke(app, ["prune", "--config", str(cfg)]).output == ""


def test_prune_leaves_a_job_alone_while_its_run_is_in_flight(tmp_path, monkeypatch):
    """prune takes the job's lock: with a run in flight (the lock held) nothing of that job
    is deleted, it says so and exits 75 (try again); the next prune does the work."""
    from logferry.ship.lock import job_lock

    out, cfg = _delivered(tmp_path, 20)
    runner = CliRunner()
    now = 1_800_000_000.0
    for p in out.rglob("*"):
        os.utime(p, (now - 90 * DAY, now - 90 * DAY))
    monkeypatch.setattr(ship_cli, "clock", lambda: now)
    with job_lock(tmp_path / ".logferry", "web"):  # (the state folder next to the config)
        r = runner.invoke(app, ["prune", "--config", str(cfg)])
        assert r.exit_code == 75, r.output
        assert r.output.startswith("web: not pruned: job web is already running (pid ")
        assert sorted(p.name for p in out.iterdir()) == ["web-000.jsonl.gz", "web-001.jsonl.gz"]
        r = runner.invoke(app, ["prune", "--dry-run", "--config", str(cfg)])  # (changes nothing: allowed)
        assert r.exit_code == 0 and r.output.count("would prune") == 2
    r = runner.invoke(app, ["prune", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert list(out.iterdir()) == []
