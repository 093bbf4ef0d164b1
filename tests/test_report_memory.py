"""Exact percentiles hold every value of their group in memory (DuckDB cannot spill
them), so on a big database the performance report did not fit `report`'s 256 MB and
`report --db` printed a DuckDB OutOfMemoryException traceback (20M rows). A query that
does not fit runs once more with a quarter of the machine's memory; past that, one line."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from logferry.cli import app
from logferry.usage import reports
from logferry.usage.reports import _arrow

Q = "SELECT quantile_cont(x, [0.5, 0.9]) AS q FROM range(2000000) t(x)"


def test_a_query_over_the_limit_runs_again_with_more_and_the_limit_comes_back():
    con = duckdb.connect()
    con.execute("SET memory_limit = '8MB'")
    with pytest.raises(duckdb.OutOfMemoryException):  # (the query does not fit 8 MB)
        _arrow(con.sql(Q))
    assert _arrow(con.sql(Q), con).to_pylist() == [{"q": [999999.5, 1799999.1]}]
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit.endswith("MiB") and 7 <= float(limit.split()[0]) <= 8


def test_a_report_that_does_not_fit_even_then_is_one_line_and_exit_2(tmp_path, monkeypatch):
    from logferry.usage import connect

    db = tmp_path / "u.duckdb"
    con = connect(db)
    con.execute("""INSERT INTO requests (file_id, "timestamp", path, status, duration_ms, line_number)
                   SELECT 1, TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_microseconds(x), '/p' || (x % 7), 200,
                          x % 5000, x FROM range(1500000) t(x)""")
    con.close()
    monkeypatch.setattr(reports, "REPORT_MEMORY_LIMIT", "8MB")
    monkeypatch.setattr(reports, "roomy_limit", lambda: "9MB")
    r = CliRunner().invoke(app, ["report", "--db", str(db), "--json", "--only", "performance"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.output.startswith("logferry: error: a report query needs more memory")
    monkeypatch.setattr(reports, "roomy_limit", lambda: "1024MB")  # the second try fits
    r = CliRunner().invoke(app, ["report", "--db", str(db), "--json", "--only", "performance"])
    assert r.exit_code == 0, r.output
    assert '"requests": 1500000' in r.output


def test_a_dashboard_that_does_not_fit_runs_again_with_more():
    """serve --lake's dashboard over every site of a 20M-row lake ran out of memory in the
    cube (in-memory connection, 256 MB): UsageSource runs it again with more."""
    from logferry.usage.reports import roomy

    con = duckdb.connect()
    con.execute("SET memory_limit = '8MB'")
    calls = []

    def work():
        calls.append(1)
        return _arrow(con.sql(Q)).to_pylist()

    assert roomy(con, work) == [{"q": [999999.5, 1799999.1]}] and len(calls) == 2
