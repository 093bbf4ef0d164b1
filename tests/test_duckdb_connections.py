"""Every DuckDB connection logferry opens goes through ``usage.db.duck``: DuckDB's progress
bar (drawn on standard output during a statement of over two seconds, default on) would
otherwise land in the middle of ``--json`` and ``sql`` output."""

from __future__ import annotations

import re
from pathlib import Path

import logferry
from logferry.usage.db import connect, connect_shared

SRC = Path(logferry.__file__).parent


def test_the_usage_database_connections_have_no_progress_bar(tmp_path):
    db = tmp_path / "u.duckdb"
    con = connect(db)
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    assert con.cursor().execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    con.close()
    ro = connect_shared(str(db))
    assert ro.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    ro.close()


def test_no_module_opens_duckdb_but_through_duck():
    raw = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
           for i, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(r"\bduckdb\.connect\(", line) and not line.lstrip().startswith("#")]
    assert raw == ["usage/db.py:" + str(_duck_line())]


def _duck_line() -> int:
    lines = (SRC / "usage" / "db.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def duck("))
    return next(i for i in range(start, len(lines)) if "duckdb.connect(" in lines[i]) + 1
