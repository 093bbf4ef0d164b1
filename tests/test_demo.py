"""`logferry demo` end to end (its dashboard in Chromium: tests/test_dashboard.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner

from logferry.cli import app
from logferry.samples import write_samples
from logferry.usage import connect


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    r = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out, r.output


def test_samples_are_deterministic(tmp_path):
    a = write_samples(str(tmp_path / "a"))
    b = write_samples(str(tmp_path / "b"))
    assert len(a) == 5
    for x, y in zip(a, b, strict=True):
        with open(x, "rb") as fx, open(y, "rb") as fy:
            assert fx.read() == fy.read()


def test_demo_ingests_every_format_and_writes_the_report(demo):
    out, output = demo
    assert "5 files (5 new, 0 grown, 0 already ingested, 0 errors): 9,628 records, 1 bad rows" in output
    assert (out / "report.html").exists()
    con = connect(out / "demo.duckdb", read_only=True)
    try:
        rows = con.execute("SELECT format, records, bad_rows FROM files ORDER BY format").fetchall()
        assert rows == [("cdn-json", 800, 0), ("cloudfront", 2000, 0), ("csv-usage", 500, 0), ("shop", 328, 0),
                        ("w3c", 6000, 1)]
        assert con.execute("SELECT count(*), sum(total_price) FROM orders").fetchall() == [(25, Decimal("6712.8800"))]
        assert con.execute("SELECT line_number, raw FROM bad_rows").fetchall() == [
            (2006, "2024-03-01 garbled line cut by a disk-full event")]
    finally:
        con.close()
    # running it again ingests nothing new
    r = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert r.exit_code == 0 and "5 files (0 new, 0 grown, 5 already ingested, 0 errors)" in r.output
    html = (out / "report.html").read_text()
    # the dashboard (tests/test_dashboard.py opens it in Chromium): data, chart library and
    # its licence inline, a policy that forbids every request, and small enough to mail
    assert 'id="lf-data"' in html and "uPlot" in html and "The MIT License" in html
    assert "default-src 'none'" in html and "connect-src" not in html
    assert len(html.encode()) < 2_000_000


def test_demo_writes_a_config_with_one_export_job_that_runs(demo):
    """The demo's logferry.toml: one job, iis, that the CLI (and the console) can run; a
    config that is already there is kept."""
    import gzip
    import json

    out, output = demo
    cfg = out / "logferry.toml"
    assert f"config: {cfg}" in output
    r = CliRunner().invoke(app, ["export", "list", "--config", str(cfg)])
    assert r.exit_code == 0 and r.output.startswith("iis\tactive\tevery 60 min\tfile://"), r.output
    r = CliRunner().invoke(app, ["export", "run", "iis", "--once", "--config", str(cfg)])
    assert r.exit_code == 0 and "6000 records" in r.output, r.output
    (obj,) = [p for p in (out / "shipped").rglob("*") if p.is_file()]
    lines = gzip.decompress(obj.read_bytes()).splitlines()
    assert len(lines) == 6000 and json.loads(lines[0])["path"]
    cfg.write_text(cfg.read_text() + "# edited\n")
    r = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert r.exit_code == 0 and cfg.read_text().endswith("# edited\n")
