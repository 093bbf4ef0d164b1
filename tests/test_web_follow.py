"""`logferry serve --follow PATH... --db DB` (contract 6): the follower runs in a thread of
the console process; lines appended to a followed log reach the dashboard's data, the
status route reports the follower, and SIGTERM stops both cleanly.  A FIFO the followed glob
matches is skipped, and the status says so (issue 22 item 9: the follower hung on it while
the status said running)."""

from __future__ import annotations

import os

import httpx
from tests.servers.servers import Serve, until
from tests.test_dest_conformance import write_log


def test_serve_follow_feeds_the_dashboard(tmp_path):
    log = tmp_path / "live.log"
    write_log(log, 0, 30)
    os.mkfifo(tmp_path / "pipe.log")
    db = tmp_path / "usage.duckdb"
    srv = Serve(tmp_path, "--config", str(tmp_path / "logferry.toml"), "--db", str(db),
                "--follow", str(tmp_path / "*.log"))
    try:
        tok = (tmp_path / ".logferry" / "console-token").read_text().strip()
        c = httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {tok}"}, timeout=30)

        def requests_seen():
            r = c.get("/api/report")
            if r.status_code != 200:
                return -1
            tot = r.json()["reports"]["summary"]["sections"]["totals"][0]
            return tot.get("requests", -1)

        until(lambda: requests_seen() == 30)
        write_log(log, 30, 12, header=False, mode="a")
        until(lambda: requests_seen() == 42)
        st = c.get("/api/status").json()["follower"]
        assert st["lines"] >= 42 and st["last_line_at"] and st["files"] == 1 and st["running"]
        assert st["errors"] == {str(tmp_path / "pipe.log"): f"{tmp_path / 'pipe.log'}: not a regular file "
                                                             "(a FIFO), skipped"}
        page = c.get("/dashboard")
        assert page.status_code == 200 and '"live":true' in page.text
        # a token scoped to a site: not the paths, errors and counts, which are every site's
        from logferry.web.tokens import TokenStore

        raw = TokenStore(tmp_path / ".logferry").create(["www.example.com"])[1]
        mine = httpx.get(srv.base + "/api/status", headers={"Authorization": f"Bearer {raw}"}).json()["follower"]
        assert mine == {"running": True, "commits": st["commits"], "last_line_at": st["last_line_at"]}
        rc, out = srv.stop(timeout=120)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
    assert rc == 0, out
    assert "stopped cleanly" in out and "Traceback" not in out
