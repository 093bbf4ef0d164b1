"""A user's mistake or the environment gives ``logferry: error: ...`` and exit status 2,
never a traceback (issue 12 item 15).  Each case runs the real command in a process.

Cases marked ``owner`` are fixed by another area (ship: the shipping commands and the
config; live: remote sources in ingest); the rest are the reader/CLI area's.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LOG = '1.2.3.4 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua"\n'


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("errors")
    (d / "access.log").write_text(LOG)
    (d / "file").write_text("a regular file, not a folder\n")
    (d / "folder").mkdir()
    db = d / "u.duckdb"
    r = subprocess.run([sys.executable, "-m", "logferry.cli", "ingest", "--db", str(db), str(d / "access.log")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    nested = d / "nested.toml"
    nested.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    return d


def owner(name: str, why: str):
    """A case another engineer fixes (kept strict: it must pass once they land)."""
    return pytest.mark.xfail(strict=True, reason=f"{name}: {why}")


def case(name: str, args: list[str], *marks):
    return pytest.param(args, id=name, marks=marks)


CASES = [
    case("report-top-negative", ["report", "--db", "{d}/u.duckdb", "--top", "-1"]),
    case("report-top-huge", ["report", "--db", "{d}/u.duckdb", "--top", "99999999999999999999"]),
    case("report-bucket-nan", ["report", "--db", "{d}/u.duckdb", "--bucket", "nan"]),
    case("report-bucket-inf", ["report", "--db", "{d}/u.duckdb", "--bucket", "inf"]),
    case("ingest-db-in-missing-folder", ["ingest", "--db", "{d}/missing/u.duckdb", "{d}/access.log"]),
    case("ingest-db-is-a-folder", ["ingest", "--db", "{d}/folder", "{d}/access.log"]),
    case("ingest-db-under-a-file", ["ingest", "--db", "{d}/file/u.duckdb", "{d}/access.log"]),
    case("report-db-not-a-database", ["report", "--db", "{d}/access.log"]),
    case("report-follow-nothing", ["report", "--follow"]),
    case("report-follow-json", ["report", "--follow", "--json", "{d}/access.log"]),
    case("report-follow-every-zero", ["report", "--follow", "--every", "0", "{d}/access.log"]),
    case("report-follow-remote", ["report", "--follow", "s3://bucket/x.log"]),
    case("sql-db-is-a-folder", ["sql", "--db", "{d}/folder", "SELECT 1"]),
    case("convert-o-in-missing-folder", ["convert", "{d}/access.log", "-o", "{d}/missing/o.jsonl"]),
    case("convert-o-is-a-folder", ["convert", "{d}/access.log", "-o", "{d}/folder"]),
    case("convert-output-dir-under-a-file", ["convert", "{d}/access.log", "--output-dir", "{d}/file/out"]),
    case("convert-output-dir-is-a-file", ["convert", "{d}/access.log", "--output-dir", "{d}/file"]),
    case("convert-bad-rows-unwritable", ["convert", "{d}/access.log", "--bad-rows", "{d}/missing/bad.jsonl"]),
    case("events-o-unwritable", ["events", "{d}/access.log", "-o", "{d}/missing/e.jsonl"]),
    # live's and ship's areas, held today by cli.main's guard for OSError (the environment)
    case("ingest-unreachable-sftp", ["ingest", "--db", "{d}/u2.duckdb", "sftp://nobody@127.0.0.1:1/x.log"]),
    case("ship-state-unwritable", ["ship", "{d}/access.log", "--dest", "file://{d}/dest", "--state", "{d}/file/st"]),
    # ship's: config.load and the engine's SourceError
    case("config-deeply-nested", ["export", "list", "--config", "{d}/nested.toml"]),
    case("ship-ftp-source", ["ship", "ftp://127.0.0.1:1/x.log", "--dest", "file://{d}/dest2", "--state", "{d}/st2"]),
    # a password in a source URL is refused before anything is opened or printed
    case("detect-url-password", ["detect", "sftp://me:hunter2@127.0.0.1:1/x.log"]),
    case("convert-url-password", ["convert", "s3://AKIAX:hunter2@bucket/x.log"]),
    case("report-url-password", ["report", "ftp://me:hunter2@127.0.0.1:1/x.log"]),
]


@pytest.mark.parametrize("args", CASES)
def test_error_is_one_line_and_exit_status_2(env, args):
    argv = [a.replace("{d}", str(env)) for a in args]
    r = subprocess.run([sys.executable, "-m", "logferry.cli", *argv], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith("logferry: error: ") or "\nlogferry: error: " in r.stderr, r.stderr
    assert "hunter2" not in r.stderr + r.stdout  # (the password of the URL cases)
