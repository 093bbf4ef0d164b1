"""Issue 25: while a follower writes the usage database, other logferry commands read it
(real processes: ``ingest --follow`` and ``report --db`` / ``sql --db``)."""

from __future__ import annotations

import json
import signal
import subprocess

from tests.servers.servers import Child
from tests.test_follow import LOGFERRY, clf, rows, wait_for
from tests.test_follow_exactly_once import Cli


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LOGFERRY, *args], capture_output=True, text=True, timeout=120)


def _count(db) -> int:
    r = _run("sql", "--db", str(db), "--json", "select count(*) AS n from requests")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[0])["n"]


def test_report_and_sql_read_the_database_while_a_follower_writes_it(tmp_path):
    log, db = tmp_path / "access.log", tmp_path / "usage.duckdb"
    written = 20
    log.write_bytes(b"".join(clf(0, n) for n in range(1, written + 1)))
    cli = Cli(db, str(log), "--commit-every", "0.3")
    try:
        wait_for(lambda: cli.saw("new file"), timeout=60)
        counts = []
        for _ in range(6):
            with log.open("ab") as f:  # the log grows between the reads
                f.write(b"".join(clf(0, n) for n in range(written + 1, written + 31)))
            written += 30
            rep = _run("report", "--db", str(db), "--json")
            assert rep.returncode == 0, rep.stderr
            json.loads(rep.stdout)
            counts.append(_count(db))
            assert counts[-1] <= written
        assert counts == sorted(counts) and counts[-1] > counts[0], counts
        wait_for(lambda: _count(db) == written, timeout=60)  # at most a commit interval late
    finally:
        cli.stop(signal.SIGTERM)
    assert len(rows(db)) == written


def test_a_read_only_open_waits_for_the_writer_then_fails_with_one_line(tmp_path, monkeypatch):
    """A process holding the file for writing longer than LOCK_WAIT: one error line, exit 2."""
    from logferry.usage import db as dbm

    db = tmp_path / "usage.duckdb"
    dbm.connect(db).close()
    holder = subprocess.Popen([*LOGFERRY[:2], "import duckdb, sys, time\nc = duckdb.connect(sys.argv[1])\n"
                               "print('held', flush=True)\ntime.sleep(60)", str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run([*LOGFERRY[:2], "import logferry.usage.db as d\nd.LOCK_WAIT = 0.5\n"
                            "from logferry.cli import main\nmain()", "sql", "--db", str(db), "select 1"],
                           capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 2
    assert r.stderr.startswith("logferry: error: ") and "Traceback" not in r.stderr
    assert "held the usage database" in r.stderr and len(r.stderr.splitlines()) == 1


def test_the_console_s_dashboard_reads_a_database_another_process_follows(tmp_path):
    """``serve --db X`` while ``ingest --follow --db X`` runs elsewhere: /api/report answers."""
    from fastapi.testclient import TestClient

    from logferry.web.app import create_app
    from logferry.web.console import Console
    from logferry.web.tokens import TokenStore

    log, db = tmp_path / "access.log", tmp_path / "usage.duckdb"
    log.write_bytes(b"".join(clf(0, n) for n in range(1, 11)))
    cfg = tmp_path / "logferry.toml"
    cfg.write_text("")
    console = Console(cfg, tmp_path / "state", db)
    store = TokenStore(console.state_dir)
    client = TestClient(create_app(console, store))
    headers = {"Authorization": f"Bearer {store.create()[1]}"}
    cli = Cli(db, str(log), "--commit-every", "0.3")
    try:
        wait_for(lambda: cli.saw("new file"), timeout=60)
        for k in range(5):
            with log.open("ab") as f:
                f.write(b"".join(clf(0, n) for n in range(11 + 10 * k, 21 + 10 * k)))
            r = client.get("/api/report", headers=headers)
            assert r.status_code == 200, r.text
    finally:
        cli.stop(signal.SIGTERM)
        console.stop.set()
    assert len(rows(db)) == 60


def test_the_console_opens_the_database_this_process_already_reads(tmp_path):
    """serve --follow between two commits: the alert rules hold a read-only instance; the
    dashboard's open joins it rather than failing on DuckDB's configuration clash."""
    from logferry.usage.db import connect, connect_shared

    db = tmp_path / "usage.duckdb"
    connect(db).close()
    reader = connect(db, read_only=True)
    try:
        con = connect_shared(db)
        assert con.execute("SELECT count(*) FROM files").fetchall() == [(0,)]
        con.close()
    finally:
        reader.close()


def test_report_and_sql_read_the_database_while_a_follower_reads_standard_input(tmp_path):
    """``ingest --follow -`` fed by a pipe opens the file only to commit, as for files:
    ``report --db`` and ``sql`` in other processes succeed while it runs, and see the
    lines at most a commit interval late; every line is stored once when the pipe ends."""
    db = tmp_path / "usage.duckdb"
    written = 0
    with Child("ingest", "--follow", "--db", str(db), "--commit-every", "0.2", "-", stdin=subprocess.PIPE) as p:
        counts = []
        for _ in range(5):
            p.p.stdin.write(b"".join(clf(0, n) for n in range(written + 1, written + 21)))
            p.p.stdin.flush()
            written += 20
            wait_for(lambda w=written: db.exists() and _count(db) == w, timeout=60)
            rep = _run("report", "--db", str(db), "--json")
            assert rep.returncode == 0, rep.stderr
            counts.append(json.loads(rep.stdout)["reports"]["summary"]["sections"]["totals"][0]["requests"])
        assert counts == [20, 40, 60, 80, 100]
        assert p.p.poll() is None  # still following while the others read
        p.p.stdin.close()
        rc = p.wait(timeout=60)
    err = p.text
    assert rc == 0, err
    assert "Could not set lock" not in err and "100 lines stored" in err, err
    assert len(rows(db)) == written == 100
