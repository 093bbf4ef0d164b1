"""`logferry serve --follow PATH... --db DB` (contract 6): the follower runs in a thread of
the console process; lines appended to a followed log reach the dashboard's data, the
status route reports the follower, and SIGTERM stops both cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
from tests.servers.servers import free_port, wait_port
from tests.test_dest_conformance import write_log


def test_serve_follow_feeds_the_dashboard(tmp_path):
    log = tmp_path / "live.log"
    write_log(log, 0, 30)
    db = tmp_path / "usage.duckdb"
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "logferry.cli", "serve", "--config", str(tmp_path / "logferry.toml"),
                          "--port", str(port), "--db", str(db), "--follow", str(log)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert "login?token=" in p.stdout.readline()
        wait_port(port)
        tok = (tmp_path / ".logferry" / "console-token").read_text().strip()
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {tok}"}, timeout=30)

        def requests_seen():
            r = c.get("/api/report")
            if r.status_code != 200:
                return -1
            tot = r.json()["reports"]["summary"]["sections"]["totals"][0]
            return tot.get("requests", -1)

        def until(fn, timeout=90):
            end = time.time() + timeout
            while time.time() < end:
                if fn():
                    return
                time.sleep(0.2)
            raise AssertionError("never")

        until(lambda: requests_seen() == 30)
        write_log(log, 30, 12, header=False, mode="a")
        until(lambda: requests_seen() == 42)
        st = c.get("/api/status").json()["follower"]
        assert st["lines"] >= 42 and st["last_line_at"] and st["files"] == 1
        page = c.get("/dashboard")
        assert page.status_code == 200 and '"live":true' in page.text
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    assert "stopped cleanly" in out and "Traceback" not in out
