"""Alerts live: ``logferry serve --follow`` on a growing log; a 5xx burst appended reaches
the webhook receiver after the follower's next commit (the rules are evaluated right
after each commit, not only every ``every``), and the incident is in the history."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from tests.servers.alerting import WebhookSink
from tests.servers.servers import Serve, until

HEAD = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
        "#Fields: date time cs-method cs-uri-stem c-ip cs-host sc-status time-taken\n")


def _lines(n: int, status: int, end: datetime) -> str:
    """``n`` requests in the minute before ``end`` (wall-clock time: the rules look at now)."""
    return "".join(f"{end - timedelta(seconds=50 - i * 50 / n):%Y-%m-%d %H:%M:%S} GET /p 192.0.2.1 "
                   f"www.example.com {status} 20\n" for i in range(n))


def test_a_burst_appended_to_a_followed_log_is_notified(tmp_path):
    hook = WebhookSink()
    log = tmp_path / "u_ex.log"
    log.write_text(HEAD + _lines(20, 200, datetime.now(UTC)))
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f"""
[alerts]
every = "1h"   # only the first evaluation and those after commits happen during the test

[alerts.channels.hook]
type = "webhook"
url = "{hook.url}/alerts"

[alerts.rules.burst]
kind = "error_share"
above_pct = 30
window = "5m"
min_requests = 10
severity = "critical"
""")
    db = tmp_path / "usage.duckdb"
    srv = Serve(tmp_path, "--config", str(cfg), "--db", str(db), "--follow", str(log))
    try:
        tok = (tmp_path / ".logferry" / "console-token").read_text().strip()
        import httpx

        c = httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {tok}"}, timeout=30)
        until(lambda: (c.get("/api/status").json()["follower"] or {}).get("lines") == 20)
        until(lambda: c.get("/api/alerts").json()["rules"][0]["evaluated"] is not None)
        time.sleep(0.5)
        assert hook.requests == []  # the clean traffic fires nothing
        with open(log, "a") as f:
            f.write(_lines(30, 503, datetime.now(UTC)))
        until(lambda: hook.received(), timeout=60)
        [r] = hook.received()
        body = r["json"]
        assert r["path"] == "/alerts" and body["rule"] == "burst" and body["event"] == "firing"
        assert body["value"] == 60.0 and body["severity"] == "critical"
        assert body["link"].startswith(srv.base + "/dashboard?since=")
        rc, out = srv.stop(timeout=120)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
        hook.stop()
    assert rc == 0 and "Traceback" not in out, out
    h = subprocess.run([sys.executable, "-m", "logferry.cli", "alerts", "history", "--notices", "--json",
                        "--config", str(cfg)], capture_output=True, text=True, timeout=120)
    [n] = json.loads(h.stdout)
    assert (n["rule"], n["event"], n["channel"], n["status"]) == ("burst", "firing", "hook", "sent")


def test_logferry_run_evaluates_the_rules_of_alerts_db(tmp_path):
    """``logferry run`` with rules and no export job: evaluates on [alerts] db at start and
    every ``every``; SIGTERM stops it cleanly."""
    import signal

    from logferry.usage import connect, ingest

    hook = WebhookSink()
    log = tmp_path / "u_ex.log"
    now = datetime.now(UTC)
    log.write_text(HEAD + _lines(10, 200, now - timedelta(minutes=1)) + _lines(30, 503, now))
    con = connect(tmp_path / "usage.duckdb")
    ingest(con, [str(log)])
    con.close()
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'[alerts]\ndb = "usage.duckdb"\n[alerts.channels.h]\ntype = "teams"\nurl = "{hook.url}"\n'
                   '[alerts.rules.burst]\nkind = "error_share"\nabove_pct = 30\nmin_requests = 10\n')
    p = subprocess.Popen([sys.executable, "-m", "logferry.cli", "run", "--config", str(cfg)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        until(lambda: hook.received(), timeout=60)
        assert hook.received()[0]["json"]["title"].startswith("[logferry FIRING] burst (warning)")
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
        hook.stop()
    assert p.returncode == 0 and "Traceback" not in out, out


def test_serve_and_run_evaluate_the_rules_on_the_lake(tmp_path):
    """With no [alerts] db, ``serve --lake`` evaluates the rules on the lake's last snapshot,
    and ``logferry run`` on the config's [lake]: a 5xx burst in the lake is notified."""
    import signal

    import pytest

    pytest.importorskip("pyiceberg")
    hook = WebhookSink()
    log = tmp_path / "u_ex.log"
    now = datetime.now(UTC)
    log.write_text(HEAD + _lines(10, 200, now - timedelta(minutes=1)) + _lines(30, 503, now))
    old = tmp_path / "u_ex_old.log"  # (days before any rule's window: the scan leaves it out)
    old.write_text(HEAD + _lines(50, 200, now - timedelta(days=9)))
    r = subprocess.run([sys.executable, "-m", "logferry.cli", "ingest", str(log), str(old), "--lake",
                        str(tmp_path / "lake"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rules = ('[alerts.channels.h]\ntype = "webhook"\nurl = "{url}"\n'
             '[alerts.rules.burst]\nkind = "error_share"\nabove_pct = 30\nmin_requests = 10\n')
    cfg = tmp_path / "serve.toml"
    cfg.write_text(rules.format(url=hook.url + "/serve"))
    srv = Serve(tmp_path, "--config", str(cfg), "--lake", str(tmp_path / "lake"))
    try:
        until(lambda: hook.received(), timeout=60)
        [n] = hook.received()
        assert n["path"] == "/serve" and n["json"]["rule"] == "burst" and n["json"]["value"] == 75.0
    finally:
        rc, out = srv.stop(timeout=120)
    assert rc == 0 and "Traceback" not in out, out
    cfg = tmp_path / "run.toml"
    cfg.write_text('state_dir = "run-state"\n[lake]\npath = "lake"\n' + rules.format(url=hook.url + "/run"))
    p = subprocess.Popen([sys.executable, "-m", "logferry.cli", "run", "--config", str(cfg)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        until(lambda: any(x["path"] == "/run" for x in hook.received()), timeout=60)
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
        hook.stop()
    assert p.returncode == 0 and "Traceback" not in out, out


def test_a_lake_scan_for_the_rules_starts_a_day_before_the_earliest_they_read():
    from logferry.alerts.rules import AlertsCfg as Alerts
    from logferry.alerts.runner import _scan

    rules = Alerts.model_validate({"rules": {
        "e": {"kind": "error_share", "above_pct": 5, "window": "10m"},
        "t": {"kind": "traffic", "below": 0.5, "window": "1h", "compare": "last_week"}}}).rules
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
    assert _scan(rules, now).since == datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # (a week and an hour, a day more)
    rules["q"] = Alerts.model_validate({"rules": {"q": {"kind": "sql", "query": "SELECT 1 AS value"}}}).rules["q"]
    assert _scan(rules, now).since is None
