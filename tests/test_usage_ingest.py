"""Usage database ingest: files once by content, grown files by their new lines, bad rows kept."""

from __future__ import annotations

import gzip
import shutil
from decimal import Decimal

import pytest

from logferry.sources import content_identity as fingerprint
from logferry.usage import connect, ingest

SHOP = "spec-examples/shop19990907.log"


def q(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "u.duckdb")
    yield c
    c.close()


def test_shop_example_registers_file_requests_and_orders(con, corpus_path):
    src = corpus_path(SHOP)
    s = ingest(con, [str(src)])
    assert [f.status for f in s.files] == ["new"]
    assert (s.records, s.bad_rows) == (12, 0)
    row = q(con, "SELECT file_id, path, format, lines, directives, blank, records, bad_rows, bytes, "
                 "identity, partial_tail FROM files")
    ident = fingerprint(src.read_bytes())[0]
    assert row == [(1, str(src), "shop", 16, 4, 0, 12, 0, 1397, ident, False)]
    assert q(con, "SELECT min(line_number), max(line_number), count(*), count(DISTINCT file_id) FROM requests") == [
        (5, 16, 12, 1)
    ]
    assert q(con, "SELECT method, path, client_ip, customer_id, CAST(\"timestamp\" AS VARCHAR) FROM requests "
                  "WHERE line_number = 16") == [
        ("ORDER", "/OrderConfirmation", "192.168.1.179", "1001", "1999-09-07 13:44:11+00")
    ]
    assert q(con, "SELECT file_id, line_number, customer_id, total_price, shipping FROM orders") == [
        (1, 16, "1001", Decimal("893.4800"), "UPS - US 2nd Day Air")
    ]
    assert q(con, "SELECT position, product_id, product_name, category, units, net_unit_price, "
                  "net_purchase_price FROM order_items ORDER BY position") == [
        (1, "10806", "Supersonic 6000 Stereo System", "/Electronics/Music", 1, Decimal("150.0000"), Decimal("70.0000")),
        (2, "10338", "HealthRider Home Pro - Chrome", "/Sports/Equipment", 1, Decimal("543.4800"), Decimal("434.7800")),
        (3, "10800-1", "French Language Courses", "/Language Courses", 1, Decimal("200.0000"), Decimal("125.0000")),
    ]


def test_reingest_same_content_any_name_adds_nothing(con, corpus_path, tmp_path):
    src = corpus_path(SHOP)
    ingest(con, [str(src)])
    copy = tmp_path / "renamed.log"
    shutil.copy(src, copy)
    gz = tmp_path / "packed.log.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    s = ingest(con, [str(src), str(copy), str(gz)])
    assert [f.status for f in s.files] == ["duplicate", "duplicate", "unchanged"]
    assert s.records == 0 and s.bad_rows == 0
    assert "already ingested" in s.files[0].message
    assert f"same content as {src}" in s.files[1].message
    assert q(con, "SELECT count(*) FROM files") == [(1,)]
    assert q(con, "SELECT count(*) FROM requests") == [(12,)]
    assert q(con, "SELECT count(*) FROM orders") == [(1,)]
    assert q(con, "SELECT count(*) FROM order_items") == [(3,)]


def test_grown_file_adds_only_new_lines_and_rereads_a_cut_last_line(con, corpus_path, tmp_path):
    data = corpus_path(SHOP).read_bytes()
    live = tmp_path / "live.log"
    cut = data.index(b"/ViewBookmarks") + 5  # line 10 cut in the middle
    live.write_bytes(data[:cut])
    s1 = ingest(con, [str(live)])
    assert s1.files[0].status == "new"
    assert (s1.records, s1.bad_rows) == (5, 1)  # lines 5-9, and the cut line 10 is a bad row for now
    assert q(con, "SELECT lines, records, bad_rows, partial_tail FROM files") == [(10, 5, 1, True)]
    assert q(con, "SELECT line_number, raw FROM bad_rows") == [(10, "1999-09-07 13:43:16 192.168.1.179 1001 GET /View")]

    live.write_bytes(data)  # the writer finished the line and appended more
    s2 = ingest(con, [str(live)])
    assert s2.files[0].status == "grown"
    assert (s2.records, s2.bad_rows) == (7, 0)  # lines 10-16
    assert q(con, "SELECT count(*), count(DISTINCT line_number), min(line_number), max(line_number) FROM requests") == [
        (12, 12, 5, 16)
    ]
    assert q(con, "SELECT path FROM requests WHERE line_number = 10") == [("/ViewBookmarks",)]
    assert q(con, "SELECT count(*) FROM bad_rows") == [(0,)]
    assert q(con, "SELECT file_id, lines, records, bad_rows, partial_tail, bytes, ingests FROM files") == [
        (1, 16, 12, 0, False, 1397, 2)
    ]
    assert q(con, "SELECT total_price FROM orders") == [(Decimal("893.4800"),)]
    assert ingest(con, [str(live)]).files[0].status == "duplicate"

    # appending to a file larger than the 64 KiB fingerprint keeps its identity too
    big = tmp_path / "big.log"
    header = data[: data.index(b"1999-09-07 13:41:41")]
    body = b"".join(
        b"1999-09-07 14:%02d:%02d 10.0.0.%d - GET /p%d - - -\n" % (i // 60 % 60, i % 60, i % 250, i) for i in range(3000)
    )
    big.write_bytes(header + body)
    assert ingest(con, [str(big)]).records == 3000
    big.write_bytes(header + body + b"1999-09-07 15:00:00 10.0.0.1 - GET /late - - -\n")
    s3 = ingest(con, [str(big)])
    assert (s3.files[0].status, s3.records) == ("grown", 1)
    assert q(con, "SELECT line_number, path FROM requests WHERE path = '/late'") == [(3005, "/late")]


def test_bad_rows_are_kept_with_line_and_reason(con, tmp_path):
    log = tmp_path / "u_ex1.log"
    log.write_text(
        "#Software: Microsoft Internet Information Services 10.0\n"
        "#Fields: date time c-ip cs-method cs-uri-stem sc-status time-taken\n"
        "2024-03-01 10:00:00 10.0.0.1 GET /a 200 12\n"
        "\n"
        "garbled\n"
        "2024-03-01 10:00:01 10.0.0.2 GET /b 404 7\n"
    )
    s = ingest(con, [str(log)])
    assert (s.records, s.bad_rows, s.files[0].format) == (2, 1, "w3c")
    (lines, directives, blank, records, bad), = q(con, "SELECT lines, directives, blank, records, bad_rows FROM files")
    assert (lines, directives, blank, records, bad) == (6, 2, 1, 2, 1)
    assert records + bad == lines - directives - blank
    ((fid, line, raw, reason),) = q(con, "SELECT file_id, line_number, raw, reason FROM bad_rows")
    assert (fid, line, raw) == (1, 5, "garbled")
    assert reason
    assert q(con, "SELECT path, status, duration_ms FROM requests ORDER BY line_number") == [
        ("/a", 200, 12.0), ("/b", 404, 7.0)
    ]


def test_folders_and_globs_are_expanded_and_errors_do_not_stop_the_run(con, corpus_path, tmp_path):
    src = corpus_path(SHOP)
    d = tmp_path / "logs" / "sub"
    d.mkdir(parents=True)
    shutil.copy(src, d / "a.log")
    (tmp_path / "logs" / "empty.log").write_bytes(b"")
    s = ingest(con, [str(tmp_path / "logs")])
    assert sorted((f.path.split("/")[-1], f.status) for f in s.files) == [("a.log", "new"), ("empty.log", "error")]
    s2 = ingest(con, [str(tmp_path / "logs" / "**" / "*.log")])
    assert sorted(f.status for f in s2.files) == ["duplicate", "error"]
    assert q(con, "SELECT count(*) FROM requests") == [(12,)]


def test_remote_urls_through_fsspec(con, corpus_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/logs/shop.log", corpus_path(SHOP).read_bytes())
    s = ingest(con, ["memory://bucket/logs/*.log"])
    assert [(f.path, f.status, f.records) for f in s.files] == [("memory:///bucket/logs/shop.log", "new", 12)]
    fs.rm("/bucket/logs/shop.log")


def test_checkpoints_commit_progress_and_keep_counts_exact(con, corpus_path, tmp_path, monkeypatch):
    import importlib

    ingest_mod = importlib.import_module("logferry.usage.ingester")

    monkeypatch.setattr(ingest_mod, "_COMMIT_ROWS", 1)  # a checkpoint after every batch
    data = corpus_path(SHOP).read_bytes()
    header = data[: data.index(b"1999-09-07 13:41:41")]
    big = tmp_path / "ckpt.log"
    body = b"".join(b"1999-09-07 14:00:%02d 10.0.0.%d - GET /p%d - - -\n" % (i % 60, i % 250, i) for i in range(2000))
    big.write_bytes(header + body + b"broken\n" + body)
    s = ingest(con, [str(big)])
    assert (s.records, s.bad_rows) == (4000, 1)
    assert q(con, "SELECT lines, records, bad_rows, bytes FROM files") == [(4005, 4000, 1, len(header + body) * 2 - len(header) + 7)]
    assert q(con, "SELECT count(*), count(DISTINCT line_number) FROM requests") == [(4000, 4000)]
    assert q(con, "SELECT line_number, raw FROM bad_rows") == [(2005, "broken")]


def test_a_log_and_its_grown_copy_stay_known_on_every_later_run(con, corpus_path, tmp_path):
    """A small log and a longer one that starts with all of it (its grown copy): the first
    run registers them once; later runs, in any order, add nothing."""
    data = corpus_path(SHOP).read_bytes()
    short = tmp_path / "short.log"
    short.write_bytes(data[: data.index(b"1999-09-07 13:43:16")])  # header + 5 entries
    longer = tmp_path / "longer.log"
    longer.write_bytes(data)
    s = ingest(con, [str(short), str(longer)])
    assert [f.status for f in s.files] == ["new", "grown"]
    assert s.records == 12
    for order in ([short, longer], [longer, short], [short], [longer]):
        again = ingest(con, [str(p) for p in order])
        assert again.records == 0 and again.bad_rows == 0, [f.message for f in again.files]
        assert all(f.status in ("unchanged", "duplicate") for f in again.files)
    assert q(con, "SELECT count(*), count(DISTINCT line_number) FROM requests") == [(12, 12)]
    assert q(con, "SELECT count(*) FROM files") == [(1,)]


@pytest.mark.parametrize("copies", [1, 70])  # 70: long enough for the CSV fast path
def test_times_outside_years_1_to_9999_are_null_and_reports_still_run(tmp_path, corpus_path, copies):
    """Year 0 is a valid Arrow/DuckDB time but not a Python datetime nor ISO-8601 text:
    such a time is null and counted, the row is kept, ingest and every report run."""
    import json

    from click.testing import CliRunner

    import logferry
    from logferry.cli import app

    src = corpus_path("matomo-log-analytics/amazon_cloudfront_web.log")
    lines = src.read_bytes().splitlines(keepends=True)
    head = b"".join(ln for ln in lines if ln.startswith(b"#"))
    row = next(ln for ln in lines if not ln.startswith(b"#")).rstrip(b"\r\n").split(b"\t")
    odd = b"\t".join([b"0000-01-01", b"00:00:00", *row[2:]]) + b"\n"
    ok = b"\t".join([b"2014-05-23", b"01:13:11", *row[2:]]) + b"\n"
    log = tmp_path / "E2ABC.2014-05-23-01.log"
    log.write_bytes(head + (odd + ok) * copies)
    s = logferry.read(log)
    t = s.to_table()
    assert t.num_rows == 2 * copies and t.column("timestamp").null_count == copies
    assert s.stats.conversion_errors == copies
    db = tmp_path / "u.duckdb"
    r = CliRunner().invoke(app, ["ingest", str(log), "--db", str(db), "--quiet"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["report", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["reports"]["summary"]["sections"]["totals"][0]["requests"] == 2 * copies


def test_the_public_ingest_stays_the_function_once_its_module_is_imported():
    # the module is usage/ingester.py: a submodule named like the function would replace
    # the package's ``ingest`` with itself as soon as anything imported it
    import importlib

    importlib.import_module("logferry.usage.ingester")
    importlib.import_module("logferry.usage.follow")
    from logferry.usage import ingest

    assert callable(ingest) and ingest.__name__ == "ingest"


def test_ingest_names_a_failing_path_once(tmp_path):
    from click.testing import CliRunner

    from logferry.cli import app

    bad, junk, missing = tmp_path / "bad.bin", tmp_path / "junk.log", tmp_path / "missing.log"
    bad.write_bytes(b"not a log\x00\x01 binary\n")
    junk.write_text("garbage\n")
    r = CliRunner().invoke(app, ["ingest", "--db", str(tmp_path / "u.duckdb"), str(bad), str(junk), str(missing)])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ": error: " in ln]
    assert len(lines) == 3
    for p, ln in zip((bad, junk, missing), lines, strict=True):
        assert ln.startswith(f"{p}: error: ") and ln.count(str(p)) == 1, ln
