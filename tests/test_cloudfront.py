"""CloudFront standard logs: every field set, headerless rows, RTMP, detection, bad rows."""

from __future__ import annotations

import glob
import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import CORPUS, corpus

import logferry
from logferry.formats.cloudfront import WEB_FIELDS, tokenize

AWS = "aws-cloudfront-docs/AccessLogs.md@"
SP = "snowplow/"
UA_CHROME78 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/78.0.3904.108 Safari/537.36"
)
UA_MAC34 = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_2) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/34.0.1847.131 Safari/537.36"
)


def read_all(path, fmt=None):
    stream = logferry.read(path, fmt)
    batches = list(stream)
    rows = [r for b in batches for r in b.to_pylist()]
    return stream, rows


def by_line(rows):
    return {r["line_number"]: r for r in rows}


def ts(*a):
    return datetime(*a, tzinfo=UTC)


# file, line, expected canonical values (and "fields" entries), one case per field set
CASES = [
    # 33 fields, tab-separated, with header
    (AWS + "5999c0d8_example_web_33fields.log", 3, {
        "timestamp": ts(2019, 12, 4, 21, 2, 31), "client_ip": "192.0.2.100", "client_port": 11040,
        "method": "GET", "host": "d111111abcdef8.cloudfront.net", "path": "/index.html",
        "query": None, "status": 200, "bytes_sent": 392, "bytes_received": 23,
        "duration_ms": 1.0, "ttfb_ms": 1.0, "user_agent": UA_CHROME78, "referer": None,
        "protocol": "HTTP/2.0", "cache_status": "Hit", "edge_location": "LAX1",
        "request_id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
        "fields": {"sc-content-type": "text/html", "sc-content-len": "78", "ssl-protocol": "TLSv1.2"},
    }),
    (AWS + "5999c0d8_example_web_33fields.log", 5, {  # a trailing tab: slow path
        "timestamp": ts(2019, 12, 4, 21, 2, 31), "duration_ms": 1.0, "status": 200,
        "request_id": "f37nTMVvnKvV2ZSvEsivup_c2kZ7VXzYdjC-GUQZ5qNs-89BlWazbw==",
    }),
    (AWS + "5999c0d8_example_web_33fields.log", 6, {
        "timestamp": ts(2019, 12, 13, 22, 36, 27), "edge_location": "SEA19-C1", "status": 502,
        "path": "/favicon.ico", "referer": "http://www.example.com/", "bytes_received": 675,
        "duration_ms": 102.0, "ttfb_ms": 102.0, "client_port": 25260, "cache_status": "Error",
        "protocol": "HTTP/1.1", "host": "www.example.com",
        "fields": {"x-edge-detailed-result-type": "OriginDnsError", "x-host-header": "www.example.com"},
    }),
    # 26 fields, space-separated (AWS docs example)
    (AWS + "6bde586d_example_web_26fields.log", 4, {
        "timestamp": ts(2014, 5, 23, 1, 13, 12), "edge_location": "LAX1", "bytes_sent": 2390282,
        "client_ip": "192.0.2.202", "path": "/soundtrack/happy.mp3", "status": 304,
        "query": "a=b&c=d", "referer": "www.unknownsingers.com", "duration_ms": 2.0,
        "bytes_received": None, "client_port": None, "ttfb_ms": None, "cache_status": "Hit",
        "user_agent": "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1)", "protocol": "HTTP/1.1",
        "fields": {"cs(Cookie)": "zip=50158", "fle-status": "-", "fle-encrypted-fields": "-"},
    }),
    (AWS + "6bde586d_example_web_26fields.log", 3, {
        "fields": {"fle-status": "Processed", "fle-encrypted-fields": "1"}, "cache_status": "RefreshHit",
    }),
    # 24 fields, space-separated
    (AWS + "6b5da6a2_example_web_24fields.log", 3, {
        "timestamp": ts(2014, 5, 23, 1, 13, 11), "edge_location": "FRA2", "bytes_sent": 182,
        "status": 200, "path": "/view/my/file.html", "cache_status": "RefreshHit",
        "user_agent": "Mozilla/4.0 (compatible; MSIE 5.0b1; Mac_PowerPC)", "protocol": "HTTP/1.1",
        "request_id": "MRVMF7KydIvxMWfJIglgwHQwZsbG2IhRJ07sn9AkKUFSHS9EXAMPLE==",
    }),
    # 26 fields, tabs, double-encoded user agent
    ("matomo-log-analytics/amazon_cloudfront_web.log", 3, {
        "timestamp": ts(2014, 5, 23, 1, 13, 11), "referer": "https://example.com/",
        "user_agent": "Mozilla/5.0 (Windows; U; Windows NT 6.1; de-DE) AppleWebKit/534.17 "
        "(KHTML, like Gecko) Chrome/10.0.649.0 Safari/534.17",
        "bytes_received": 217, "duration_ms": 1.0, "cache_status": "Miss",
        # host: the viewer's Host header (x-host-header); cs(Host) names the distribution
        "host": "example.com", "fields": {"cs(Host)": "d111111abcdef8.cloudfront.net"},
    }),
    # RTMP (tab + space separators, U+200B in the header and the stem)
    (AWS + "32e6ff6c_example_rtmp_17fields.log", 5, {
        "timestamp": ts(2010, 3, 12, 23, 53, 44), "edge_location": "SEA4", "client_ip": "192.0.2.4",
        "bytes_sent": 323914, "path": "rtmp://shqshne4jdp4b6.cloudfront.net/cfx/st",
        "query": "key=value", "referer": "http://player.example.com/player.swf",
        "user_agent": "LNX 10,0,32,18", "status": None, "method": None,
        "fields": {"x-event": "stop", "x-cf-status": "OK", "x-sname": "dir/other/myvideo", "x-file-ext": "flv",
                   "x-page-url": "http://www.example.com/support/jw-player-setup-wizard?example=204"},
    }),
    ("matomo-log-analytics/amazon_cloudfront_rtmp.log", 4, {
        "timestamp": ts(2010, 3, 12, 23, 51, 21), "client_ip": "192.0.2.222", "bytes_sent": 3914,
        "path": "rtmp://shqshne4jdp4b6.cloudfront.net/cfx/st", "fields": {"x-event": "play", "x-sid": "1"},
    }),
    # 12 fields, headerless, tabs
    (SP + "hive-etl-2013/DeviceTimestampTest.line", 1, {
        "timestamp": ts(2012, 5, 21, 7, 14, 47), "edge_location": "FRA2", "bytes_sent": 3343,
        "client_ip": "83.4.209.35", "host": "d3t05xllj8hhgj.cloudfront.net", "path": "/ice.png",
        "status": 200, "referer": "https://test.psybazaar.com/shop/checkout/",
        "user_agent": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:11.0) Gecko/20100101 Firefox/11.0",
        "cache_status": None, "request_id": None, "duration_ms": None,
    }),
    # 12 fields, headerless, runs of spaces
    (SP + "hive-etl-2013/PageViewTest1.line", 2, {
        "timestamp": ts(2012, 5, 24, 0, 8, 40), "edge_location": "LHR5", "bytes_sent": 3397,
        "client_ip": "74.125.17.210", "path": "/ice.png", "status": 200,
    }),
    # 12 fields, mixed tabs and spaces
    (SP + "hive-etl-2013/NoJsTrackerTest.line", 1, {
        "timestamp": ts(2012, 5, 24, 11, 35, 53), "client_ip": "99.116.172.58", "method": "GET",
        "host": "d3gs014xn8p70.cloudfront.net", "status": 200, "referer": None,
        "query": "&e=pv&page=root%20readme&url=https%3A%2F%2Fgithub.com%2Fsnowplow%2Fsnowplow&aid=snowplow&p=web&tv=no-js-0.1.0",
    }),
    # 15 fields
    (SP + "spark-enrich/Aug2013CfLineSpec.line", 1, {
        "timestamp": ts(2013, 8, 29, 0, 18, 48), "edge_location": "LAX3", "bytes_sent": 830,
        "cache_status": "Hit", "request_id": "wQ1OBZtQlGgfM_tPEJ-lIQLsdra0U-lXgmfJfwja2KAV_SfTdT3lZg==",
        "user_agent": "Mozilla/5.0 (Windows NT 5.1; rv:23.0) Gecko/20100101 Firefox/23.0",
        "referer": "http://snowplowanalytics.com/analytics/index.html", "bytes_received": None,
    }),
    # 18 fields, runs of spaces
    (SP + "spark-enrich/LateOct2013CfLineSpec.line", 1, {
        "timestamp": ts(2013, 10, 22, 0, 41, 30), "edge_location": "LHR3", "bytes_sent": 828,
        "bytes_received": 1119, "duration_ms": None, "cache_status": "Hit",
        "request_id": "wYSiKLXqmO2meYhvy7UrHoV8fFGt6jOYGY5rV2zYg05j1Qkirt83GA==",
        "fields": {"cs-protocol": "http", "x-host-header": "d10wr4jwvp55f9.cloudfront.net"},
    }),
    # 19 fields: time-taken appears
    (SP + "spark-enrich/Apr2014CfLineSpec.line", 1, {
        "timestamp": ts(2014, 4, 29, 9, 0, 54), "edge_location": "CDG51", "bytes_received": 1163,
        "duration_ms": 1.0, "user_agent": UA_MAC34, "cache_status": "Hit",
        "request_id": "cN-iKWE_3tTwxIKGkSnUOjGpmNjsDUyk4ctemoxU_zIG7Md_fH87sg==",
    }),
    # 23 fields
    (SP + "spark-enrich/WebDistributionLoader23Spec.line", 1, {
        "timestamp": ts(2014, 4, 29, 9, 0, 54), "duration_ms": 1.0, "protocol": None,
        "fields": {"x-forwarded-for": "111.111.111.111", "ssl-protocol": "TLSv1.1",
                   "x-edge-response-result-type": "Hit"},
    }),
    # 24 fields, garbage status "/200"
    (SP + "spark-enrich/Sep2016CfLineSpec.line", 1, {
        "timestamp": ts(2017, 9, 26, 10, 55, 55), "edge_location": "DUB2", "bytes_sent": 474,
        "status": None, "user_agent": "Ruby", "referer": None, "protocol": "HTTP/1.1",
        "bytes_received": 3574, "duration_ms": 1.0, "fields": {"sc-status": "/200"},
    }),
    # 26 fields
    (SP + "spark-enrich/Jan2018CfLineSpec.line", 1, {
        "timestamp": ts(2017, 9, 26, 10, 55, 55), "status": None,
        "fields": {"fle-status": "Processed", "fle-encrypted-fields": "12"},
    }),
    # 23 fields written with spaces in a tab line (a "future" row): runs of blanks win
    (SP + "spark-enrich/FutureCfLineSpec.line", 1, {
        "timestamp": ts(2015, 4, 29, 9, 0, 54), "duration_ms": 1.0, "bytes_received": 1163,
        "fields": {"x-forwarded-for": "nowarning", "ssl-protocol": "991", "x-edge-response-result-type": "test3"},
    }),
    # query: only the %25XX layer undone
    (SP + "spark-enrich/WebDistributionLoaderSpec.line", 1, {
        "user_agent": UA_MAC34, "query_startswith": "e=pp&page=Loading%20JSON%20data%20into%20Redshift%20-%20the",
    }),
]


@pytest.mark.parametrize(("rel", "line", "expected"), CASES, ids=[f"{c[0].split('/')[-1]}:{c[1]}" for c in CASES])
def test_values(rel, line, expected):
    stream, rows = read_all(corpus(rel))
    assert stream.format == "cloudfront"
    row = by_line(rows)[line]
    for key, value in expected.items():
        if key == "fields":
            for name, raw in value.items():
                assert row["fields"][name] == raw, name
        elif key == "query_startswith":
            assert row["query"].startswith(value)
        else:
            assert row[key] == value, key


# file -> (records, bad, conversion errors, bad line numbers)
COUNTS = {
    AWS + "32e6ff6c_example_rtmp_17fields.log": (6, 0, 0, []),
    AWS + "5999c0d8_example_web_33fields.log": (6, 0, 0, []),
    AWS + "6b5da6a2_example_web_24fields.log": (2, 0, 0, []),
    AWS + "6bde586d_example_rtmp_17fields.log": (6, 0, 0, []),
    AWS + "6bde586d_example_web_26fields.log": (2, 0, 0, []),
    "matomo-log-analytics/amazon_cloudfront_rtmp.log": (2, 0, 0, []),
    "matomo-log-analytics/amazon_cloudfront_web.log": (1, 0, 0, []),
    SP + "enrich-2022/CloudfrontAccessLogAdapterSpec.valid.line": (7, 0, 7, []),  # status "i"
    SP + "enrich-2022/CloudfrontAccessLogAdapterSpec.invalid.line": (0, 2, 0, [1, 2]),
    SP + "enrich-2022/CloudfrontLoaderSpec.valid.line": (4, 0, 0, []),
    SP + "hive-etl-2013/BadRowTest.line": (0, 2, 0, [2, 3]),
    SP + "hive-etl-2013/ContinueOnBadRowTest.line": (0, 2, 0, [2, 3]),
    SP + "spark-enrich/InvalidCfLinesSpec.line": (0, 2, 0, [2, 3]),
    SP + "spark-enrich/CorruptedCfLinesSpec.line": (0, 1, 0, [1]),
    SP + "spark-enrich/DiscardableCfLinesSpec.line": (0, 0, 0, []),
    SP + "spark-enrich/MasterCfSpec.line": (19, 3, 0, [4, 6, 7]),
    SP + "spark-enrich/Sep2016CfLineSpec.line": (1, 0, 1, []),
    SP + "spark-enrich/BadTrackerCfLinesSpec.line": (3, 0, 0, []),
}


@pytest.mark.parametrize("rel", sorted(COUNTS))
def test_counts_and_bad_rows(rel):
    records, bad, conv, bad_lines = COUNTS[rel]
    stream, rows = read_all(corpus(rel))
    st = stream.stats
    assert stream.format == "cloudfront"
    assert (st.records, st.bad, st.conversion_errors) == (records, bad, conv)
    assert sorted(b.line_number for b in stream.bad_rows) == bad_lines
    assert st.records + st.bad == st.lines - st.directives - st.blank
    assert len({r["line_number"] for r in rows}) == records


def test_bad_row_reasons():
    stream, _ = read_all(corpus(SP + "spark-enrich/MasterCfSpec.line"))
    bad = {b.line_number: b for b in stream.bad_rows}
    assert bad[6].raw == "NOT VALID" and "2 fields" in bad[6].reason
    assert "7 fields" in bad[7].reason and bad[7].raw.endswith("d3t05xllj8hhgj.cloudfront.net")
    assert "'20yy-05-24'" in bad[4].reason
    assert stream.stats.blank == 1 and stream.stats.directives == 2
    inv, _ = read_all(corpus(SP + "enrich-2022/CloudfrontAccessLogAdapterSpec.invalid.line"))
    reasons = {b.line_number: b.reason for b in inv.bad_rows}
    assert "3 fields" in reasons[1]
    assert "'a' 'b'" in reasons[2]


def _is_tomcat_file(p: str) -> bool:
    """Clojure-collector rows: "-" in the edge-location slot (see test_snowplow_tomcat.py)."""
    toks = Path(p).read_text(errors="replace").split("\n", 1)[0].split()
    return len(toks) > 2 and toks[2] == "-"


def _cloudfront_files() -> list[str]:
    sp = [p for p in glob.glob(str(CORPUS / "snowplow/**/*.line"), recursive=True) if not _is_tomcat_file(p)]
    aws = glob.glob(str(CORPUS / "aws-cloudfront-docs/*"))
    mat = glob.glob(str(CORPUS / "matomo-log-analytics/amazon_cloudfront_*.log"))
    return sorted(sp + aws + mat)


def test_every_cloudfront_file_is_detected_and_read():
    files = _cloudfront_files()
    if not files:
        pytest.skip("corpus not available")
    assert len(files) >= 60
    for f in files:
        det = logferry.detect(f)
        assert det.format == "cloudfront", f
        others = [c for n, c in det.candidates if n != "cloudfront"]
        assert not others or det.confidence - max(others) >= 0.2, (f, det.candidates)
        stream, _ = read_all(f)
        st = stream.stats
        assert st.records + st.bad == st.lines - st.directives - st.blank, f


@pytest.mark.parametrize(
    ("rel", "minimum"),
    [
        (AWS + "5999c0d8_example_web_33fields.log", 0.95),
        (AWS + "6bde586d_example_rtmp_17fields.log", 0.95),
        ("matomo-log-analytics/amazon_cloudfront_web.log", 0.95),
        (SP + "hive-etl-2013/PageViewTest1.line", 0.95),
        (SP + "spark-enrich/Sep2016CfLineSpec.line", 0.95),
        (SP + "spark-enrich/CorruptedCfLinesSpec.line", 0.7),
        (SP + "enrich-2022/CloudfrontAccessLogAdapterSpec.valid.line", 0.7),
        (SP + "hive-etl-2013/BadRowTest.line", 0.45),
    ],
)
def test_detection_confidence(rel, minimum):
    det = logferry.detect(corpus(rel))
    assert det.format == "cloudfront"
    assert det.confidence >= minimum
    if det.format == "cloudfront" and minimum >= 0.95:
        assert dict(det.candidates).get("w3c", 0) <= 0.6


def test_adapter_field_sets_by_count():
    """One headerless file with 12, 15, 18, 19, 23, 24 and 26 fields: names by field count."""
    stream, rows = read_all(corpus(SP + "enrich-2022/CloudfrontAccessLogAdapterSpec.valid.line"))
    r = by_line(rows)
    assert [len(r[i]["fields"]) for i in range(1, 8)] == [12, 15, 18, 19, 23, 24, 26]
    assert all(r[i]["user_agent"] == UA_MAC34 for i in r)
    assert all(r[i]["query"] == "a=b%20c" for i in r)
    assert all(r[i]["client_ip"] == "255.255.255.255" and r[i]["bytes_sent"] == 100 for i in r)
    assert r[1]["timestamp"] == ts(2013, 10, 7, 23, 35, 30)
    assert r[2]["cache_status"] == "n" and r[2]["request_id"] == "o"
    assert r[3]["bytes_received"] == 90 and r[3]["duration_ms"] is None
    assert r[4]["duration_ms"] == 1.0
    assert r[6]["protocol"] == "HTTP/2.0"
    assert r[7]["fields"]["fle-encrypted-fields"] == "12"


def _row33(i: int, *, status: str = "200", extra: tuple[str, ...] = ()) -> str:
    vals = [
        "2021-03-04", f"05:06:{i % 60:02d}", "IAD89-C3", str(1000 + i), f"203.0.113.{i % 250}",
        "GET", "d111111abcdef8.cloudfront.net", f"/img/{i}.png", status, "https://example.org/a%2520b",
        "Mozilla/5.0%2520(X11;%2520Linux%2520x86_64)", f"q={i}%2520x", "-", "Miss", f"req{i:06d}==",
        "cdn.example.org", "https", "321", "0.250", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "Miss",
        "HTTP/2.0", "-", "-", str(40000 + i), "0.125", "Miss", "image/png", "999", "-", "-",
    ]
    assert len(vals) == 33
    return "\t".join([*vals, *extra])


def test_generated_gzip_file(tmp_path):
    head = "#Version: 1.0\n#Fields: " + " ".join(WEB_FIELDS) + "\n"
    lines = [_row33(i) for i in range(2000)]
    lines[10] = _row33(10, status="000")
    lines[20] = "2021-03-04\t05:06:07\tIAD89-C3\ttruncated"
    body = head + "\n".join(lines) + "\n"
    p = tmp_path / "E2EXAMPLE.2021-03-04-05.abcdef12"  # no .gz suffix: compression from magic bytes
    raw = body.encode()
    half = len(raw) // 2
    p.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))  # two gzip members
    det = logferry.detect(p)
    assert (det.format, det.compression) == ("cloudfront", "gzip")
    assert det.confidence >= 0.95
    stream, rows = read_all(p)
    st = stream.stats
    assert (st.lines, st.directives, st.records, st.bad) == (2002, 2, 1999, 1)
    assert [b.line_number for b in stream.bad_rows] == [23]
    assert "4 fields" in stream.bad_rows[0].reason
    r = by_line(rows)
    first = r[3]
    assert first["timestamp"] == ts(2021, 3, 4, 5, 6, 0)
    assert first["edge_location"] == "IAD89-C3" and first["client_ip"] == "203.0.113.0"
    assert first["path"] == "/img/0.png" and first["bytes_sent"] == 1000 and first["bytes_received"] == 321
    assert first["duration_ms"] == 250.0 and first["ttfb_ms"] == 125.0 and first["client_port"] == 40000
    assert first["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert first["referer"] == "https://example.org/a b"
    assert first["query"] == "q=0%20x"
    assert first["protocol"] == "HTTP/2.0" and first["cache_status"] == "Miss" and first["request_id"] == "req000000=="
    assert r[13]["status"] == 0  # "000": the viewer went away
    assert r[2002]["path"] == "/img/1999.png" and r[2002]["timestamp"] == ts(2021, 3, 4, 5, 6, 19)
    assert st.conversion_errors == 0


def test_headerless_more_than_33_fields(tmp_path):
    p = tmp_path / "cf.log"
    p.write_text(_row33(1, extra=("new-a", "new-b")) + "\n" + _row33(2) + "\n")
    stream, rows = read_all(p, "cloudfront")
    assert stream.stats.records == 2 and stream.stats.bad == 0
    r = by_line(rows)
    assert r[1]["fields"]["x-extra-1"] == "new-a" and r[1]["fields"]["x-extra-2"] == "new-b"
    assert r[1]["fields"]["sc-range-end"] == "-" and r[1]["client_port"] == 40001
    assert "x-extra-1" not in r[2]["fields"] and r[2]["ttfb_ms"] == 125.0


def test_header_with_unknown_trailing_fields(tmp_path):
    p = tmp_path / "cf.log"
    p.write_text(
        "#Version: 1.0\n#Fields: " + " ".join(WEB_FIELDS) + " x-new-field\n"
        + _row33(5, extra=("zzz",)) + "\n" + _row33(6) + "\n\n"
    )
    stream, rows = read_all(p)
    assert stream.format == "cloudfront"
    st = stream.stats
    assert (st.records, st.bad, st.blank, st.directives) == (2, 0, 1, 2)
    r = by_line(rows)
    assert r[3]["fields"]["x-new-field"] == "zzz" and r[3]["bytes_sent"] == 1005
    assert r[4]["bytes_sent"] == 1006


def test_tokenize():
    assert tokenize("a\tb\tc") == ["a", "b", "c"]
    assert tokenize("a  b\t c") == ["a", "b", "c"]
    assert tokenize("2010-03-12\t 23:51:20\t SEA4") == ["2010-03-12", "23:51:20", "SEA4"]
    assert tokenize("a\tb c\td") == ["a", "b", "c", "d"]
    assert tokenize("a\tb\t\t") == ["a", "b"]
    # a full row keeps trailing tabs as empty extra fields (byte-exact round trips)
    row = "\t".join(str(i) for i in range(12))
    assert tokenize(row + "\t") == [*row.split("\t"), ""]


_DATES = ["2014-05-23", "2016-02-29", "2015-02-29", "2014-5-23", "-", "20140523", "2014-05-23T", "9999-12-31"]
_TIMES = ["01:13:11", "23:59:59", "24:00:00", "23:59:60", "1:13:11", "01:13", "01:13:11.250", "-", "25:00:00"]


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(_DATES), st.sampled_from(_TIMES)), min_size=70, max_size=90),
       clean=st.booleans())
def test_dates_and_times_typed_by_the_csv_fast_path_read_like_text(tmp_path_factory, pairs, clean):
    """Reading without originals lets Arrow's CSV parser type the date and time fields;
    records, timestamps, bad rows and their reasons are those of a full (text) read."""
    import logferry

    src = corpus("matomo-log-analytics/amazon_cloudfront_web.log")
    lines = src.read_bytes().splitlines(keepends=True)
    head = b"".join(ln for ln in lines if ln.startswith(b"#"))
    row = next(ln for ln in lines if not ln.startswith(b"#")).rstrip(b"\r\n").split(b"\t")
    if clean:
        pairs = [(d, t) for d, t in [("2014-05-23", "01:13:11"), ("2016-02-29", "23:59:59")] * 40]
    body = b"".join(b"\t".join([d.encode(), t.encode(), *row[2:]]) + b"\n" for d, t in pairs)
    path = tmp_path_factory.mktemp("cf") / "typed.log"
    path.write_bytes(head + body)
    out = {}
    for originals in (True, False):
        bad = []
        t = logferry.read(path, options={"originals": originals}, on_bad=bad.append).to_table()
        out[originals] = (t.column("timestamp").to_pylist(), t.column("line_number").to_pylist(),
                          [(b.line_number, b.reason) for b in bad])
    assert out[True] == out[False]
    if clean:
        assert len(out[False][0]) == 80 and out[False][0][1].isoformat() == "2016-02-29T23:59:59+00:00"
