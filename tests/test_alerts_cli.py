"""``logferry alerts``: the demo's rules find the demo's incidents; list, silence, history;
mistakes give one ``logferry: error:`` line and exit status 2 (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.test_dashboard import demo  # noqa: F401  (the demo's output folder, once per module)


def lf(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logferry.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_demo_rules_find_the_burst_and_the_gap_of_the_demo_logs(demo):
    cfg, db = demo / "logferry.toml", demo / "demo.duckdb"
    assert "[alerts.rules.server-errors]" in cfg.read_text()
    r = lf("alerts", "test", "--all", "--config", str(cfg), "--db", str(db))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    lines = out.splitlines()
    i = lines.index(next(x for x in lines if x.startswith("server-errors ")))
    # the 5xx burst from 10:30 (the first 5xx of the window that fired is a stray 500 at 10:29:13)
    assert lines[i + 1].startswith("  incident: 2024-03-01 10:29:13 - 2024-03-01 10:49:54 UTC  peak 71.23 %")
    assert "[logferry FIRING] server-errors (critical)" in lines[i + 2]
    j = lines.index(next(x for x in lines if x.startswith("site-down ")))
    # no traffic from 12:00 to 12:30: the last request before it, and the gap's end
    assert lines[j + 1].startswith("  incident: 2024-03-01 11:59:47 - 2024-03-01 12:30:00 UTC")
    assert sum(x.startswith("  incident:") for x in lines[j:j + 4]) == 1
    assert "new-broken-links (broken_links, info)" in out and "slow-pages (latency, warning)" in out
    # JSON: the same incidents, and nothing was recorded or sent (test only)
    r = lf("alerts", "test", "server-errors", "--config", str(cfg), "--db", str(db), "--json")
    data = json.loads(r.stdout)
    assert len(data["rules"]["server-errors"]["incidents"]) == 1
    assert not (demo / ".logferry" / "alerts.sqlite").exists() or "server-errors" not in lf(
        "alerts", "history", "--config", str(cfg)).stdout


def test_test_at_a_time_prints_the_notice_it_would_send(demo):
    cfg, db = demo / "logferry.toml", demo / "demo.duckdb"
    r = lf("alerts", "test", "server-errors", "--at", "2024-03-01T10:40:00Z", "--config", str(cfg), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "now (2024-03-01 10:40:00 UTC): the condition holds; would send:" in r.stdout
    assert "window:    2024-03-01 10:35:00 UTC - 2024-03-01 10:40:00 UTC" in r.stdout
    assert "dashboard: /dashboard?since=2024-03-01T10%3A" in r.stdout


def test_list_silence_history(demo, tmp_path):
    cfg = demo / "logferry.toml"
    r = lf("alerts", "silence", "site-down", "--until", "2h", "--comment", "maintenance", "--config", str(cfg))
    assert r.returncode == 0 and r.stdout.startswith("silence 1: site-down until "), r.stderr
    r = lf("alerts", "list", "--config", str(cfg), "--json")
    rows = {x["name"]: x for x in json.loads(r.stdout)["rules"]}
    assert rows["site-down"]["state"] == "silenced" and rows["server-errors"]["state"] == "ok"
    assert lf("alerts", "unsilence", "1", "--config", str(cfg)).returncode == 0
    rows = {x["name"]: x for x in json.loads(lf("alerts", "list", "--config", str(cfg), "--json").stdout)["rules"]}
    assert rows["site-down"]["state"] == "ok"
    r = lf("alerts", "history", "--config", str(cfg))
    assert r.returncode == 0 and r.stdout.startswith("ID")


@pytest.mark.parametrize("rule,msg", [
    ('kind = "errors"\nabove_pct = 5', "unknown kind (metric) 'errors'; choose one of: error_share"),
    ('kind = "error_share"\nabove_pct = 5\nwindow = "-5m"', "window: '-5m' is not a duration"),
    ('kind = "latency"\npercentile = "p90"\nabove_ms = 5', "percentile"),
    ('kind = "sql"\nquery = "DELETE FROM requests"', "must be one SELECT statement"),
    ('kind = "sql"\nquery = "SELECT 1 WHERE $site = 2"', "only $start and $end"),
    ('kind = "traffic"', "give below"),
    ('kind = "error_share"\nabove_pct = 5\nnotify = ["nope"]', "no channel named 'nope'"),
])
def test_bad_rules_are_one_error_line_exit_2(tmp_path, rule, msg):
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f"[alerts.rules.x]\n{rule}\n")
    for args in (["list"], ["test", "--all", "--db", str(tmp_path / "none.duckdb")]):
        r = lf("alerts", *args, "--config", str(cfg))
        assert r.returncode == 2 and r.stderr.startswith("logferry: error: ") and msg in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / ".logferry").exists()  # nothing written


@pytest.mark.parametrize("args,msg", [
    (["test"], "give a rule NAME or --all"),
    (["test", "nope"], "no alert rule named 'nope'"),
    (["test", "--all", "--db", "/nonexistent/x.duckdb"], "no usage database here"),
    (["silence", "server-errors", "--until", "-5m"], "--until '-5m'"),
    (["silence", "server-errors", "--until", "2001-01-01T00:00Z"], "in the past"),
    (["silence", "nope", "--until", "1h"], "no alert rule named 'nope'"),
    (["unsilence", "999"], "no silence 999"),
])
def test_command_mistakes_exit_2(tmp_path, demo, args, msg):
    state = tmp_path / "state"
    r = lf("alerts", *args, "--config", str(demo / "logferry.toml"), *(["--state", str(state)]
                                                                      if args[0] != "test" else []))
    assert r.returncode == 2 and r.stderr.startswith("logferry: error: ") and msg in r.stderr, r.stderr
    assert not state.exists()  # nothing written


def test_reading_commands_write_nothing(tmp_path, demo):
    state = tmp_path / "state"
    for args in (["list"], ["history"], ["history", "--notices"]):
        r = lf("alerts", *args, "--config", str(demo / "logferry.toml"), "--state", str(state))
        assert r.returncode == 0, r.stderr
    assert not state.exists()


def test_test_on_the_lake_finds_what_it_finds_on_the_database(demo, tmp_path):
    """``alerts test --lake``: the same incidents and notices as on the database of the
    same logs."""
    pytest.importorskip("pyiceberg")
    cfg, db, lake = demo / "logferry.toml", demo / "demo.duckdb", tmp_path / "lake"
    r = lf("ingest", str(demo / "logs"), "--lake", str(lake), "--quiet")
    assert r.returncode == 0, r.stderr
    at = ("--at", "2024-03-01T10:40:00Z")
    on_db = json.loads(lf("alerts", "test", "--all", *at, "--config", str(cfg), "--db", str(db), "--json").stdout)
    r = lf("alerts", "test", "--all", *at, "--config", str(cfg), "--lake", str(lake), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == on_db
    assert sum(len(x["incidents"]) for x in on_db["rules"].values()) >= 2
    r = lf("alerts", "test", "--all", "--config", str(cfg), "--lake", str(lake), "--db", str(db))
    assert r.returncode == 2 and r.stderr.startswith("logferry: error: give --db") and "Traceback" not in r.stderr
