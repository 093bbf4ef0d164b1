"""Quiet logs: `serve` and `ship` print logferry's lines only -- no library INFO chatter
(asyncssh's connection log) and no library deprecation notices (cryptography's about
asyncssh's DSA, botocore's); a destination that is down is one line per retry."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.servers.servers import Serve, until
from tests.test_dest_conformance import sshd, write_log  # noqa: F401  (fixture)


def test_serve_runs_an_sftp_job_without_library_chatter(sshd, tmp_path):  # noqa: F811
    import httpx

    log = tmp_path / "a.log"
    write_log(str(log), 0, 20)
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'state_dir = "state"\n[jobs.sftp]\nsource = ["{log}"]\n'
                   f'dest = "sftp://{sshd.user}@127.0.0.1:{sshd.port}{sshd.root}/{tmp_path.name}"\n'
                   f'dest_options = {{ key_file = "{sshd.key}", known_hosts = "{sshd.known_hosts}" }}\n')
    srv = Serve(tmp_path, "--config", str(cfg))
    try:
        tok = (tmp_path / "state" / "console-token").read_text().strip()
        c = httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {tok}"}, timeout=30)
        assert c.post("/api/jobs/sftp/run").status_code == 202
        until(lambda: (rs := c.get("/api/runs?job=sftp").json()["runs"]) and rs[0]["status"] == "ok")
    finally:
        rc, out = srv.stop()
    assert rc == 0, out
    lines = out.splitlines()
    assert any(ln.startswith("logferry.web: sftp: run 1 ok") for ln in lines), out
    assert not [ln for ln in lines if ln.startswith(("asyncssh", "sshfs", "botocore"))], out
    assert "Warning" not in out


def test_ship_says_a_down_destination_once_per_retry(tmp_path):
    from tests.servers.servers import free_port

    log = tmp_path / "a.log"
    write_log(str(log), 0, 5)
    port = free_port()  # nothing listens there
    r = subprocess.run([sys.executable, "-m", "logferry.cli", "ship", str(log), "--dest",
                        f"ftps://u@127.0.0.1:{port}/x", "--state", str(tmp_path / "st"),
                        "--retries", "2", "--timeout", "2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    err = r.stderr.splitlines()
    assert len(err) == 3, r.stderr
    assert err[0].startswith("ship: ") and err[0].endswith("; retry 1 of 2 in 1.0s") and "refused" in err[0]
    assert err[1].endswith("; retry 2 of 2 in 2.0s")
    assert err[2].startswith("ship: error: ") and "gave up after 3 attempts" in err[2]


def test_a_retry_line_shows_a_servers_answer_as_text(tmp_path):
    """The engine's retry line (a log record) holds the destination's answer, the server's
    text: an escape sequence in it (a terminal title, a screen clear) reached the
    operator's terminal raw -- every log line is made safe as term.safe makes text."""
    from tests.servers.servers import DatadogIntake

    intake = DatadogIntake("k")
    intake.fail_next, intake.fail_body = 5, "down\x1b]0;PWNED\x07\x1b[2J\u202e".encode()
    try:
        log = tmp_path / "a.log"
        write_log(str(log), 0, 5)
        r = subprocess.run([sys.executable, "-m", "logferry.cli", "ship", str(log), "--dest",
                            f"datadog://127.0.0.1:{intake.port}?tls=false", "--state", str(tmp_path / "st"),
                            "--retries", "1"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "DD_API_KEY": "k"})
    finally:
        intake.stop()
    err = r.stderr.splitlines()
    assert r.returncode == 1 and len(err) == 2, r.stderr
    assert err[0].endswith("HTTP 503 down\\x1b]0;PWNED\\x07\\x1b[2J\\u202e; retry 1 of 1 in 1.0s"), err[0]
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr and "\u202e" not in r.stderr


def test_ingest_on_local_dask_workers_prints_only_its_own_lines(tmp_path):
    """``ingest --lake --workers 2``: Dask's scheduler, nanny and client logged every step at
    INFO on stderr (State start, Register worker, Closing Nanny, ... ~35 lines around the
    command's own two)."""
    log = tmp_path / "a.log"
    write_log(str(log), 0, 5)
    r = subprocess.run([sys.executable, "-m", "logferry.cli", "ingest", str(log), "--lake", str(tmp_path / "lake"),
                        "--workers", "2"], capture_output=True, text=True, timeout=300)
    err = r.stderr.splitlines()
    assert r.returncode == 0 and err[0].startswith(f"{log}: new file"), r.stderr
    assert len([x for x in err if x.startswith("1 files (1 new")]) == 1
    # (a worker's heartbeat meeting the scheduler's shutdown may still log an ERROR: Dask's)
    chatter = ("State start", "Scheduler at", "Register worker", "Start Nanny", "Closing Nanny", "Lost all workers",
               "jupyter-server-proxy", "Receive client connection")
    assert [x for x in chatter if x in r.stderr] == [], r.stderr


def test_library_deprecation_warnings_are_not_shown():
    code = """
import sys, warnings
sys.argv = ["logferry", "formats"]
from logferry import cli
try:
    cli.main()
except SystemExit:
    pass
from cryptography.utils import CryptographyDeprecationWarning
warnings.warn_explicit("DSA is deprecated", CryptographyDeprecationWarning, "misc.py", 32,
                       module="asyncssh.crypto.misc")
warnings.warn_explicit("old call", DeprecationWarning, "client.py", 1, module="botocore.client")
warnings.warn("logferry's own warning", UserWarning)
"""
    r = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "logferry's own warning" in r.stderr
    assert "DSA" not in r.stderr and "old call" not in r.stderr


def test_a_gcs_error_is_one_line_without_a_library_traceback(tmp_path):
    """gcsfs logs a refused request with its traceback (logger.exception) before it raises;
    the engine says the error itself, in one line."""
    import http.server
    import threading

    class Refuse(http.server.BaseHTTPRequestHandler):
        def _no(self):
            body = b'{"error": {"code": 400, "message": "no such thing"}}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _no

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    log = tmp_path / "a.log"
    write_log(str(log), 0, 5)
    try:
        r = subprocess.run([sys.executable, "-m", "logferry.cli", "ship", str(log), "--dest", "gs://logs/x",
                            "--endpoint-url", f"http://127.0.0.1:{srv.server_address[1]}", "--state",
                            str(tmp_path / "st"), "--retries", "0"], capture_output=True, text=True, timeout=60)
    finally:
        srv.shutdown()
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "gcsfs" not in r.stderr, r.stderr
    assert r.stderr.splitlines()[-1].startswith("ship: error: gs: "), r.stderr
