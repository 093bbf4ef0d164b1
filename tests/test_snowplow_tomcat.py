"""Snowplow Clojure-collector Tomcat rows: raw fields plus canonical columns."""

from __future__ import annotations

import glob
from datetime import UTC, datetime

import pytest
from tests.conftest import CORPUS, corpus

import logferry
from logferry.formats.snowplow import TOMCAT_FIELDS

SP = "snowplow/"


def read_all(path, fmt=None):
    stream = logferry.read(path, fmt)
    rows = [r for b in stream for r in b.to_pylist()]
    return stream, {r["line_number"]: r for r in rows}


def ts(*a):
    return datetime(*a, tzinfo=UTC)


CASES = [
    # 17 fields: POST with content type and body (tp2)
    (SP + "spark-enrich/CljTomcatTp2MultiEventsSpec.line", 1, {
        "timestamp": ts(2014, 9, 8, 13, 58, 56), "client_ip": "37.157.33.178", "method": "POST",
        "host": None, "path": "/com.snowplowanalytics.snowplow/tp2", "status": 200, "bytes_sent": 0,
        "user_agent": "python-requests/2.2.1 CPython/3.3.5 Linux/3.2.0-61-generic",
        "referer": None, "edge_location": None,
        "fields": {"x-edge-location": "-", "sc-bytes": "-", "content-type": "application%2Fjson%3B+charset%3Dutf-8"},
        "body_startswith": "eyJkYXRhIjogW3siZSI6ICJwdiIsICJ0diI6ICJweS0wLjUuMCIs",
        "query_endswith": "&cv=clj-0.7.0-tom-0.1.0&nuid=f732d278-120e-4ab6-845b-c1f11cd85dc7",
    }),
    # 17 fields: webhook POST, body base64, "-" user agent
    (SP + "spark-enrich/CljTomcatHubspotEventSpec.line", 1, {
        "timestamp": ts(2014, 10, 9, 16, 28, 31), "client_ip": "255.255.255.255", "method": "POST",
        "host": "255.255.255.255", "path": "/com.hubspot/v1", "status": 404, "bytes_sent": 13,
        "user_agent": None, "query": "aid=email&cv=clj-0.6.0-tom-0.0.4&nuid=-",
        "fields": {"content-type": "application%2Fjson", "cs(Cookie)": "-", "x-edge-request-id": "-"},
        "body_startswith": "W3siZXZlbnRJZCI6MSwic3Vic2NyaXB0aW9uSWQiOjI1NDU4",
    }),
    # 15 fields, tab-separated, "+"-encoded user agent (tp1 GET)
    (SP + "spark-enrich/CljTomcatTp1SingleEventSpec.line", 1, {
        "timestamp": ts(2013, 10, 7, 19, 47, 54), "method": "GET", "path": "/i", "status": 200, "bytes_sent": 37,
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_6_8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/31.0.1650.8 Safari/537.36",
        "referer": "http://snowplowanalytics.com/blog/2012/10/31/snowplow-in-a-universal-analytics-world-"
        "what-the-new-version-of-google-analytics-means-for-companies-adopting-snowplow/",
        "query_endswith": "&cv=clj-0.5.0-tom-0.0.4&nuid=8712a379-4bcb-46ee-815d-85f26540577f",
        "nfields": 15,
    }),
    # 15 fields, runs of spaces, old collector on localhost
    (SP + "hive-etl-2013/CljTomcatFormatTest.line", 1, {
        "timestamp": ts(2012, 12, 3, 4, 49, 53), "client_ip": "127.0.0.1", "host": "localhost",
        "path": "/i", "status": 200, "bytes_sent": 37,
        "user_agent": "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:16.0) Gecko/20100101 Firefox/16.0",
        "referer": "http://yalisassoon.github.com/cl-collector-tests/async.html",
        "query_startswith": "?ev_ca=Mixes&ev_ac=Play&ev_la=MRC%2Ffabric-0503-mix",
    }),
    # 17 fields with "-" body (content type only)
    (SP + "enrich-2022/CljTomcatLoaderSpec.valid.line", 5, {
        "timestamp": ts(2013, 8, 29, 0, 18, 48), "client_ip": "37.157.33.123", "method": "GET",
        "host": "d3v6ndkyapxc2w.cloudfront.net", "bytes_sent": 830,
        "user_agent": "Mozilla/5.0 (Windows NT 5.1; rv:23.0) Gecko/20100101 Firefox/23.0",
        "fields": {"body": "-"}, "nfields": 17,
    }),
    (SP + "enrich-2022/CljTomcatLoaderSpec.valid.line", 4, {"method": "POST", "nfields": 15}),
    (SP + "spark-enrich/NullNumericFieldsSpec.line", 1, {
        "timestamp": ts(2014, 10, 11, 14, 1, 5), "client_ip": "172.31.38.31", "host": "24.209.95.109",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.6; rv:32.0) Gecko/20100101 Firefox/32.0",
        "referer": "http://www.myvideowebsite.com/embed/ab123456789?auto_start=e9&rf=cb",
    }),
]


@pytest.mark.parametrize(("rel", "line", "expected"), CASES, ids=[f"{c[0].split('/')[-1]}:{c[1]}" for c in CASES])
def test_values(rel, line, expected):
    stream, rows = read_all(corpus(rel))
    assert stream.format == "snowplow-tomcat"
    row = rows[line]
    for key, value in expected.items():
        if key == "fields":
            for name, raw in value.items():
                assert row["fields"][name] == raw, name
        elif key == "body_startswith":
            assert row["fields"]["body"].startswith(value)
        elif key == "query_startswith":
            assert row["query"].startswith(value) and row["fields"]["cs-uri-query"] == row["query"]
        elif key == "query_endswith":
            assert row["query"].endswith(value)
        elif key == "nfields":
            assert list(row["fields"]) == list(TOMCAT_FIELDS[:value])
        else:
            assert row[key] == value, key


def _tomcat_files() -> list[str]:
    out = []
    for p in glob.glob(str(CORPUS / "snowplow/**/*.line"), recursive=True):
        with open(p, errors="replace") as f:
            toks = f.readline().split()
        if len(toks) > 2 and toks[2] == "-":
            out.append(p)
    return sorted(out)


def test_every_tomcat_file_is_detected_and_read():
    files = _tomcat_files()
    if not files:
        pytest.skip("corpus not available")
    assert len(files) == 21
    for f in files:
        det = logferry.detect(f)
        assert det.format == "snowplow-tomcat", f
        assert det.confidence >= 0.95
        others = [c for n, c in det.candidates if n != "snowplow-tomcat"]
        assert not others or det.confidence - max(others) >= 0.2, (f, det.candidates)
        stream, rows = read_all(f)
        st = stream.stats
        assert st.bad == 0, f
        assert st.records == st.lines - st.directives - st.blank, f
        assert all(r["fields"]["x-edge-location"] == "-" for r in rows.values())
        assert all(r["timestamp"] is not None and r["status"] is not None for r in rows.values())


@pytest.mark.parametrize(
    ("rel", "records"),
    [
        (SP + "enrich-2022/CljTomcatLoaderSpec.valid.line", 5),
        # Snowplow rejects these for tracker-protocol reasons (GET with a body, unknown vendor
        # path); as access-log rows they are well formed: no bad rows here.
        (SP + "enrich-2022/CljTomcatLoaderSpec.invalid.line", 2),
        (SP + "spark-enrich/CljTomcatMailgunEventSpec.line", 2),
    ],
)
def test_counts(rel, records):
    stream, rows = read_all(corpus(rel))
    assert (stream.stats.records, stream.stats.bad) == (records, 0)
    assert sorted(rows) == list(range(1, records + 1))


def test_cloudfront_rows_are_not_tomcat():
    det = logferry.detect(corpus(SP + "hive-etl-2013/PageViewTest1.line"))
    assert det.format == "cloudfront"
    assert "snowplow-tomcat" not in dict(det.candidates)


def test_bad_rows_and_tabs_with_empty_query(tmp_path):
    p = tmp_path / "localhost_access_log.txt"
    good = "\t".join(
        ["2014-01-02", "03:04:05", "-", "-", "198.51.100.7", "GET", "10.0.0.1", "/i", "200", "-",
         "curl%2F7.1+%28x%29", "", "-", "-", "-"]
    )
    lines = [
        good,
        "2014-01-02 03:04:06 - 5 198.51.100.8 GET 10.0.0.1 /i",  # too few fields
        "yesterday\tnoon\t-\t1\t198.51.100.9\tGET\th\t/i\t200\t-\tua\tq=1",  # no date/time
        good.replace("03:04:05", "03:04:07"),
        "",
        "# a comment",
    ]
    p.write_text("\n".join(lines) + "\n")
    stream, rows = read_all(p, "snowplow-tomcat")
    st = stream.stats
    assert (st.records, st.bad, st.blank, st.directives) == (2, 2, 1, 1)
    assert st.records + st.bad == st.lines - st.directives - st.blank
    bad = {b.line_number: b.reason for b in stream.bad_rows}
    assert "8 fields" in bad[2]
    assert "'yesterday' 'noon'" in bad[3]
    assert rows[1]["query"] is None and rows[1]["fields"]["cs-uri-query"] == ""
    assert rows[1]["bytes_sent"] == 0 and rows[1]["user_agent"] == "curl/7.1 (x)"
    assert rows[4]["timestamp"] == ts(2014, 1, 2, 3, 4, 7)
    assert rows[4]["host"] == "10.0.0.1" and rows[4]["client_ip"] == "198.51.100.7"
