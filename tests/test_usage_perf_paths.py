"""The fast paths of the usage database: streaming ingest in commit groups (bad-row flushes,
reader errors mid-file, the prefetch thread) and the integer time maths of the reports."""

from __future__ import annotations

import datetime as dt
import gzip
import importlib

import pytest

from logferry.usage import connect, ingest
from logferry.usage.reports import Params, _arrow, run

ingest_mod = importlib.import_module("logferry.usage.ingester")

HEADER = (
    "#Software: Microsoft Internet Information Services 10.0\n"
    "#Fields: date time cs-method cs-uri-stem c-ip cs(User-Agent) sc-status time-taken\n"
)


def q(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


def qt(con, sql):
    """Rows as tuples through Arrow (timestamps with time zone need no pytz)."""
    return [tuple(r.values()) for r in _arrow(con.sql(sql)).to_pylist()]


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "u.duckdb")
    yield c
    c.close()


def _line(i: int) -> str:
    return f"2024-03-01 10:{i // 60 % 60:02d}:{i % 60:02d} GET /p{i % 7} 10.0.{i % 3}.1 UA/{i % 2} 200 {i % 100}\n"


def test_many_bad_rows_flush_inside_a_group_and_counts_stay_exact(con, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_mod, "_BAD_FLUSH", 10)  # the group stops to flush bad rows
    body = "".join(_line(i) if i % 4 else f"broken line {i}\n" for i in range(400))
    p = tmp_path / "bad.log"
    p.write_text(HEADER + body)
    s = ingest(con, [str(p)])
    assert (s.records, s.bad_rows, s.lines) == (300, 100, 402)
    assert q(con, "SELECT count(*), min(line_number), max(line_number) FROM bad_rows") == [(100, 3, 399)]
    assert q(con, "SELECT raw, reason FROM bad_rows WHERE line_number = 3") == [
        ("broken line 0", "3 fields, but the #Fields directive at line 2 names 8")]
    assert q(con, "SELECT count(*), count(DISTINCT line_number) FROM requests") == [(300, 300)]
    assert q(con, "SELECT lines, records, bad_rows FROM files") == [(402, 300, 100)]


def test_checkpointed_groups_and_a_truncated_gzip_say_what_was_committed(con, tmp_path, monkeypatch):
    """Issue 12 item 3: a truncated gzip, after some commit groups, keeps every readable
    line; the summary and `files` say what was committed (counts exact), the file is
    marked truncated at a byte, a re-run adds nothing, and the complete file, when it
    appears, is read on from where it stopped."""
    monkeypatch.setattr(ingest_mod, "_COMMIT_ROWS", 1)  # commit after every batch
    full = (HEADER + "".join(_line(i) for i in range(400_000))).encode()  # > 2 read chunks
    gz = gzip.compress(full, compresslevel=1)
    p = tmp_path / "cut.log.gz"
    p.write_bytes(gz[: len(gz) * 3 // 4])
    s = ingest(con, [str(p)])
    [f] = s.files
    assert f.status == "truncated" and "truncated at byte" in f.message
    (lines, records, bad, directives, blank, nbytes, cut, partial), = q(
        con, "SELECT lines, records, bad_rows, directives, blank, bytes, truncated_at, partial_tail FROM files")
    assert (f.records, f.bad_rows) == (records, bad) and s.records == records  # what was committed
    assert 200_000 < records < 400_000
    assert records + bad == lines - directives - blank and directives == 2
    assert cut == nbytes == f.truncated_at and 0 < cut < len(full)
    assert full[:cut].count(b"\n") == lines - partial  # every readable line is in
    assert q(con, "SELECT count(*), max(line_number) FROM requests") == [(records, lines - bad)]
    again = ingest(con, [str(p)])
    assert [x.status for x in again.files] == ["duplicate"] and "truncated at byte" in again.files[0].message
    # the whole file later: only the lines after where it stopped are added
    p.write_bytes(gzip.compress(full, compresslevel=1))
    s = ingest(con, [str(p)])
    assert [f.status for f in s.files] == ["grown"]
    assert q(con, "SELECT count(*), count(DISTINCT line_number), max(line_number) FROM requests") == [
        (400_000, 400_000, 400_002)]
    assert q(con, "SELECT lines, records, bad_rows, truncated_at FROM files") == [(400_002, 400_000, 0, None)]


def test_a_database_failure_is_that_files_error_and_the_next_files_go_on(con, tmp_path):
    """Issue 12 item 7: an error on the DuckDB side ends that file's background reader (no
    thread left behind), rolls that file back and is reported for it; the files after it
    are ingested, and the summary counts the error (the CLI exits 1)."""
    import threading

    p = tmp_path / "a.log"
    p.write_text(HEADER + "".join(_line(i) for i in range(5000)))
    ok = tmp_path / "b.log"
    ok.write_text(HEADER.replace("cs-uri-stem", "cs-uri-stem cs-uri-query")
                  + "".join(_line(i).replace(" 10.0.", " q=1 10.0.", 1) for i in range(50)))
    con.execute("ALTER TABLE requests ALTER COLUMN query SET NOT NULL")  # a.log has no query
    before = {t.name for t in threading.enumerate()}
    s = ingest(con, [str(p), str(ok)])
    assert [(f.status, f.records) for f in s.files] == [("error", 0), ("new", 50)]
    assert "NOT NULL constraint failed: requests.query" in s.files[0].message
    assert s.errors == 1
    assert q(con, "SELECT count(*), count(DISTINCT file_id) FROM requests") == [(50, 1)]
    assert q(con, "SELECT path FROM files") == [(str(ok),)]
    left = {t.name for t in threading.enumerate()} - before
    assert "logferry-ingest-read" not in left


def test_settings_are_put_back_after_ingest(con, tmp_path):
    p = tmp_path / "a.log"
    p.write_text(HEADER + _line(1))
    con.execute("SET threads = 3")
    ingest(con, [str(p)])
    assert q(con, "SELECT current_setting('threads'), current_setting('preserve_insertion_order')") == [
        (3, True)]


def test_report_buckets_match_time_bucket_and_visitors_by_day(con, tmp_path):
    # 7-minute uptime buckets (not dividing an hour) and a week chart bucket: the integer
    # bucket maths must give exactly what DuckDB's time_bucket gives (origin 2000-01-03).
    rows = ["1999-12-31 23:59:59", "2000-01-02 00:00:00", "2000-01-03 00:06:59",
            "2000-01-03 00:07:00", "2024-03-01 10:00:00", "2024-03-01 10:00:00"]
    body = "".join(f"{t} GET /x 1.1.1.1 UA 200 5\n" for t in rows)
    p = tmp_path / "t.log"
    p.write_text(HEADER + body)
    ingest(con, [str(p)])
    data = run(con, Params(bucket_minutes=7, chart_bucket_minutes=10080))
    got = [r["bucket"] for r in data["reports"]["status"]["sections"]["errors_over_time"]]
    want = [r[0] for r in qt(con, "SELECT DISTINCT time_bucket(INTERVAL 7 days, \"timestamp\") b FROM requests "
                                 "ORDER BY b")]
    assert got == want and got[0] == dt.datetime(1999, 12, 27, tzinfo=dt.UTC)
    # 24 years of 7-minute buckets are too many: 12-hour buckets are used instead
    assert data["params"]["bucket_minutes"] == 720 and "using 720-minute buckets" in data["warnings"][0]
    up = [r for r in data["reports"]["uptime"]["sections"]["buckets"] if r["requests"]]
    want_up = qt(con, "SELECT time_bucket(INTERVAL 720 minutes, \"timestamp\") b, count(*) FROM requests "
                      "GROUP BY b ORDER BY b")
    assert [(r["bucket"], r["requests"]) for r in up] == want_up
    assert [r[0].strftime("%Y-%m-%d %H:%M") for r in want_up] == [
        "1999-12-31 12:00", "2000-01-02 00:00", "2000-01-03 00:00", "2024-03-01 00:00"]
    # and 7-minute buckets over a short span
    data7 = run(con, Params(since="2000-01-02", until="2000-01-04", bucket_minutes=7), only=["uptime"])
    up7 = [(r["bucket"].strftime("%Y-%m-%d %H:%M"), r["requests"])
           for r in data7["reports"]["uptime"]["sections"]["buckets"] if r["requests"]]
    assert up7 == [("2000-01-01 23:58", 1), ("2000-01-03 00:00", 1), ("2000-01-03 00:07", 1)]
    assert qt(con, "SELECT strftime(time_bucket(INTERVAL 7 minutes, TIMESTAMPTZ '2000-01-02 00:00:00+00'), "
                   "'%Y-%m-%d %H:%M')") == [("2000-01-01 23:58",)]
    # one IP + agent on 4 different UTC days: 4 visitors; hours of day from epoch maths
    t = data["reports"]["summary"]["sections"]["totals"][0]
    assert (t["requests"], t["visitors"]) == (6, 4)
    hourly = {r["hour"]: r["requests"] for r in data["reports"]["top"]["sections"]["hourly"] if r["requests"]}
    assert hourly == {23: 1, 0: 3, 10: 2}


def test_histogram_bins_edges_and_odd_durations(con, tmp_path):
    durations = ["0", "9", "10", "99", "100", "2500", "9999", "10000", "123456", "-", "-5"]
    body = "".join(f"2024-03-01 10:00:{i:02d} GET /x 1.1.1.1 UA 200 {d}\n" for i, d in enumerate(durations))
    p = tmp_path / "h.log"
    p.write_text(HEADER + body)
    ingest(con, [str(p)])
    data = run(con, Params(), only=["performance"])
    hist = {r["label"]: r["requests"] for r in data["reports"]["performance"]["sections"]["histogram"]}
    assert hist == {"<10 ms": 2, "10-25 ms": 1, "25-50 ms": 0, "50-100 ms": 1, "100-250 ms": 1,
                    "250-500 ms": 0, "0.5-1 s": 0, "1-2.5 s": 0, "2.5-5 s": 1, "5-10 s": 1, ">=10 s": 2}
    o = data["reports"]["performance"]["sections"]["overall"][0]
    assert (o["requests"], o["max_ms"], o["p50_ms"]) == (10, 123456.0, 99.5)


def test_snowplow_hits_reach_the_hook_through_ingest(con, corpus_path):
    """Only tracker rows are handed to the Snowplow hook, after each commit group: the
    events are the same as the hook gives on the raw reader batches."""
    pytest.importorskip("logferry.snowplow")
    files = [str(corpus_path(f"snowplow/{rel}")) for rel in (
        "spark-enrich/MasterCfSpec.line",
        "spark-enrich/CljTomcatTp2MultiEventsSpec.line",
        "spark-enrich/CljTomcatMailchimpEventSpec.line",
        "enrich-2022/thrift/beam_IpLookupsEnrichmentSpec_screen_view_CollectorPayload.thrift.bin",
    )]
    s = ingest(con, files)
    assert [f.status for f in s.files] == ["new"] * 4
    got = dict(q(con, "SELECT event, count(*) FROM events GROUP BY 1 ORDER BY 1"))
    assert got == {"page_ping": 6, "page_view": 5, "struct": 3, "transaction": 1, "transaction_item": 1,
                   "unstruct": 4}
    assert q(con, "SELECT count(*) FROM events WHERE file_id = 2") == [(3,)]
    assert q(con, "SELECT line_number, reason FROM bad_events ORDER BY line_number") == [
        (1, "unknown platform: mobile"), (2, "unknown event type: lol"),
        (3, "unknown event type: lol; invalid JSON in ue_px (after base64)")]
    # the ordinary (non-tracker) line of the CloudFront file is a request like any other
    assert q(con, "SELECT count(*) FROM requests WHERE file_id = 1 AND path = '/not-ice.png'") == [(1,)]
