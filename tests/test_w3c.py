"""W3C Extended / IIS / platform export / shop reader on real and crafted logs."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip

import pytest
import zstandard

import logferry
from conftest import check_invariant, corpus, rows

UTC = dt.UTC




def test_iis6_matomo_line():
    s, r = rows(corpus("matomo-log-analytics/iis.log"))
    check_invariant(s)
    assert s.format == "w3c"
    (row,) = r
    assert row["timestamp"] == dt.datetime(2012, 4, 1, 0, 0, 13, tzinfo=UTC)
    assert row["client_ip"] == "1.2.3.4"
    assert row["server_ip"] == "5.6.7.8"
    assert row["site"] == "W3SVC834221556"
    assert row["host"] == "example.com"
    assert row["method"] == "GET"
    assert row["path"] == "/foo/bar"
    assert row["query"] == "topCat1=divinity&submit=Search"
    assert row["server_port"] == 80
    assert row["username"] == "theuser"
    assert row["protocol"] == "HTTP/1.1"
    assert row["status"] == 200
    assert row["bytes_sent"] == 27028
    assert row["bytes_received"] == 214
    assert row["duration_ms"] == 1687.0
    assert row["user_agent"] == (
        "Mozilla/5.0 (X11; U; Linux i686; en-US; rv:1.9.2.7) Gecko/20100722 Firefox/3.6.7"
    )
    # the quoted cookie (with spaces) is one field, kept raw
    assert row["fields"]["cs(Cookie)"].startswith('"ASP.NET_SessionId=sldfkjs;')
    assert row["line_number"] == 5


def test_fields_change_mid_file_and_earlier_header_match():
    s, r = rows(corpus("elastic-beats-filebeat-iis/test.log"))
    check_invariant(s)
    assert s.stats.bad == 0
    assert [x["line_number"] for x in r] == [5, 10, 15, 16, 17]
    assert r[1]["site"] == "W3SVC1" and r[1]["host"] == "example.com"
    assert r[1]["bytes_sent"] == 123 and r[1]["bytes_received"] == 456
    assert r[1]["duration_ms"] == 789.0
    assert r[2]["protocol"] == "HTTP/1.1" and r[2]["client_ip"] == "81.2.69.143"
    # line 16 has 15 fields: it matches the *first* header (no s-sitename), not the last
    assert r[3]["timestamp"] == dt.datetime(2018, 12, 31, 12, 52, 33, tzinfo=UTC)
    assert r[3]["server_ip"] == "10.44.0.136"
    assert r[3]["status"] == 401
    assert r[3]["query"].startswith("redirect:${%23req")
    assert "s-sitename" not in r[3]["fields"]


def test_advanced_logging_quoted_fields_and_local_time():
    s, r = rows(corpus("lnav/logfile_w3c.3"))
    check_invariant(s)
    assert s.stats.blank == 3 and s.stats.directives == 4 and s.stats.records == 3
    assert r[0]["timestamp"] == dt.datetime(2012, 8, 15, 17, 0, 0, 363000, tzinfo=UTC)
    assert r[0]["client_ip"] == "70.95.0.0"  # quotes removed
    assert r[0]["host"] == "xzy.example.com"
    assert r[0]["duration_ms"] == 109.0  # TimeTakenMS custom field
    assert r[0]["referer"].startswith("http://example.com/Search/SearchResults.pg?")
    assert r[1]["client_ip"] is None and r[1]["referer"] is None
    assert r[1]["status"] == 301
    # "" escapes inside a quoted value: sc-substatus is not a number -> null, counted
    assert r[2]["fields"]["sc-substatus"] == '" ""garbage"" w/ spaces "'
    assert r[2]["status"] == 404
    # a time zone for date-local/time-local
    s2, r2 = rows(corpus("lnav/logfile_w3c.3"), options={"tz": "America/Los_Angeles"})
    assert r2[0]["timestamp"] == dt.datetime(2012, 8, 16, 0, 0, 0, 363000, tzinfo=UTC)


def test_mismatched_row_is_a_bad_row_with_reason():
    bad = []
    s = logferry.read(corpus("lnav/logfile_w3c.5"), on_bad=bad.append)
    assert list(s) == []
    check_invariant(s)
    assert s.stats.bad == 1 and len(bad) == 1
    assert bad[0].line_number == 2
    assert bad[0].raw.startswith("2015-01-13 00:32:17 100.79.192.81 GET /robots.txt")
    assert "17 fields" in bad[0].reason and "names 6" in bad[0].reason


def test_date_directive_supplies_the_date_and_repeated_headers():
    s, r = rows(corpus("lnav/logfile_w3c.2"))
    check_invariant(s)
    assert len(r) == 14 and s.stats.directives == 8
    assert r[0]["timestamp"] == dt.datetime(2000, 10, 9, 16, 44, 49, tzinfo=UTC)
    assert r[-1]["timestamp"] == dt.datetime(2000, 10, 10, 16, 48, 5, tzinfo=UTC)
    assert r[0]["method"] == "[2]USER" and r[0]["path"] == "anonymous"
    assert r[0]["status"] == 331


def test_oracle_gmt_offset_and_cs_uri():
    s, r = rows(corpus("lnav/logfile_w3c.1"))
    check_invariant(s)
    (row,) = r
    assert row["timestamp"] == dt.datetime(2001, 10, 31, 8, 0, 18, tzinfo=UTC)  # -0800
    assert row["username"] == "DMS.user"
    assert row["bytes_sent"] == 350
    assert row["user_agent"] == "Mozilla/4.5 [en] (WinNT; I)"
    assert row["referer"] == "http://www.oracle.com/nl/partner/content.html"


def test_raw_utf8_user_agent():
    s, r = rows(corpus("lnav/logfile_w3c.6"))
    assert r[0]["user_agent"].startswith("ÄÖÜäöü\\ßßßMözillä/5.0 (compatible; bingbot/2.0;")
    assert r[0]["status"] == 404 and r[0]["duration_ms"] == 283.0


def test_iis85_big_file_repeated_headers():
    s, r = rows(corpus("lnav/logfile_w3c_big.0"))
    check_invariant(s)
    assert s.stats.bad == 0
    assert s.stats.records == len(r) > 100
    assert all(x["status"] is not None for x in r)
    assert r[0]["duration_ms"] == 283.0 and r[1]["duration_ms"] == 157.0


def test_platform_export_dialect():
    s, r = rows(corpus("spec-examples/kibo-webservice-20240301.log"))
    check_invariant(s)
    assert s.format == "w3c"
    assert len(r) == 5
    first = r[0]
    assert first["timestamp"] == dt.datetime(2024, 3, 1, 0, 0, 3, tzinfo=UTC)
    assert first["server_ip"] == "10.1.2.3" and first["server_port"] == 443
    assert first["site"] == "12345"
    assert first["request_id"] == "0f8fad5bd9cb469fa16570867728950e"
    assert first["visit_id"] == "7c9e6679742540de944be07fc1f90ae7"
    assert first["user_id"] is None
    assert first["user_agent"] == "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
    assert first["duration_ms"] == 84.0
    assert r[3]["status"] == 503 and r[3]["duration_ms"] == 30012.0
    assert r[4]["username"] == "shopper@example.com"
    assert r[4]["user_id"] == "3f2504e04f8911d39a0c0305e82c3301"


def test_shop_dialect():
    s, r = rows(corpus("spec-examples/shop19990907.log"))
    check_invariant(s)
    assert s.format == "shop"
    assert len(r) == 12
    assert [x["method"] for x in r].count("ADDBI") == 3
    assert r[1]["customer_id"] == "1001"
    assert r[1]["query"] == "10806&Supersonic+6000+Stereo+System&/Electronics/Music"
    assert r[-1]["method"] == "ORDER" and r[-1]["path"] == "/OrderConfirmation"
    assert r[-1]["timestamp"] == dt.datetime(1999, 9, 7, 13, 44, 11, tzinfo=UTC)


IIS = (
    b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
    b"#Date: 2024-01-02 03:04:05\r\n"
    b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
    b"cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n"
)


def iis_line(i: int, status: int = 200) -> bytes:
    return (
        f"2024-01-02 03:04:{i % 60:02d} 10.0.0.1 GET /p/{i} q={i} 443 - 192.0.2.{i % 250} "
        f"Mozilla/5.0+(X11) - {status} 0 0 {i}\r\n"
    ).encode()


@pytest.mark.parametrize("codec", ["none", "gzip", "gzip-multi", "bz2", "zstd"])
def test_compression_sniffed_from_magic_not_name(tmp_path, codec):
    body = IIS + b"".join(iis_line(i) for i in range(50))
    if codec == "gzip":
        data = gzip.compress(body)
    elif codec == "gzip-multi":
        data = gzip.compress(body[:300]) + gzip.compress(body[300:])
    elif codec == "bz2":
        data = bz2.compress(body)
    elif codec == "zstd":
        data = zstandard.ZstdCompressor().compress(body)
    else:
        data = body
    p = tmp_path / "u_ex240102.log"  # the name says nothing about compression
    p.write_bytes(data)
    s, r = rows(p)
    check_invariant(s)
    assert s.compression == (None if codec == "none" else codec.split("-")[0])
    assert len(r) == 50
    assert [x["line_number"] for x in r] == list(range(5, 55))
    assert r[49]["path"] == "/p/49" and r[49]["duration_ms"] == 49.0


def test_small_chunks_give_identical_results(tmp_path):
    body = IIS + b"".join(iis_line(i, 200 + i % 3) for i in range(500))
    body += b"garbage line\r\n" + IIS + b"".join(iis_line(i) for i in range(7))
    p = tmp_path / "x.log"
    p.write_bytes(body)
    big = logferry.read(p).to_table()
    s = logferry.read(p, chunk_size=997)
    small = s.to_table()
    assert big.equals(small)
    assert s.stats.bad == 1 and s.stats.records == 507
    check_invariant(s)


def test_headerless_data_before_fields_is_bad(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"#Version: 1.0\n2024-01-01 00:00:00 GET /\n#Fields: date time cs-method cs-uri-stem\n2024-01-01 00:00:01 GET /a\n")
    bad = []
    s = logferry.read(p, format="w3c", on_bad=bad.append)
    r = [x for b in s for x in b.to_pylist()]
    assert len(r) == 1 and r[0]["path"] == "/a"
    assert bad[0].line_number == 2 and "before any #Fields" in bad[0].reason
    check_invariant(s)


def test_lone_cr_line_endings(tmp_path):
    p = tmp_path / "mac.log"
    p.write_bytes(IIS.replace(b"\r\n", b"\r") + iis_line(1).replace(b"\r\n", b"\r") + iis_line(2).rstrip())
    s, r = rows(p)
    assert [x["path"] for x in r] == ["/p/1", "/p/2"]
    check_invariant(s)


def test_bad_numbers_become_null_and_are_counted(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(IIS + iis_line(1).replace(b" 200 ", b" abc ") + b"2024-13-45 99:99:99 10.0.0.1 GET / - 443 - 1.2.3.4 UA - 200 0 0 5\r\n")
    s, r = rows(p)
    assert r[0]["status"] is None and r[1]["timestamp"] is None
    assert s.stats.conversion_errors == 2
    assert s.stats.bad == 0


@pytest.mark.parametrize("originals", [True, False])
def test_numbers_out_of_the_canonical_range_become_null_not_a_crash(tmp_path, originals):
    """A status of 99999 or a port beyond 2**31 cannot be an int16/int32: the value is
    null and counted as unconvertible; the row is kept (both split paths)."""
    rows = [f"2024-03-01 00:00:{i % 60:02d} GET /x {99999 if i == 5 else 200} {2**40 if i == 7 else 443} 12"
            for i in range(100)]
    path = tmp_path / "u_ex.log"
    path.write_text("#Fields: date time cs-method cs-uri-stem sc-status s-port sc-bytes\n" + "\n".join(rows) + "\n")
    s = logferry.read(path, options={"originals": originals})
    t = s.to_table()
    assert t.num_rows == 100 and s.stats.bad == 0
    assert t.column("status").to_pylist()[4:7] == [200, None, 200]
    assert t.column("server_port").to_pylist()[6:9] == [443, None, 443]
    assert s.stats.conversion_errors == 2


def test_cast_or_null_counts_what_does_not_fit():
    import pyarrow as pa

    from logferry.schema import cast_or_null

    lost = []
    out = cast_or_null(pa.array([1.0, 2.5, 70000.0, None, -3.0]), pa.int16(), lost.append)
    assert out.type == pa.int16() and out.to_pylist() == [1, None, None, None, -3] and lost == [2]
    assert cast_or_null(pa.array([5, 6]), pa.int16(), lost.append).to_pylist() == [5, 6] and lost == [2]


@pytest.mark.parametrize("originals", [True, False])
def test_durations_that_are_not_finite_become_null(tmp_path, originals):
    """``inf``/``nan`` are no duration (and no JSON can hold them): null, counted."""
    rows = [f"2024-03-01 00:00:{i % 60:02d} GET /x 200 {'inf' if i == 3 else 'nan' if i == 4 else 15}"
            for i in range(100)]
    path = tmp_path / "u_ex.log"
    path.write_text("#Software: Microsoft Internet Information Services 10.0\n"
                    "#Fields: date time cs-method cs-uri-stem sc-status time-taken\n" + "\n".join(rows) + "\n")
    s = logferry.read(path, options={"originals": originals})
    t = s.to_table()
    assert t.num_rows == 100 and t.column("duration_ms").to_pylist()[2:6] == [15.0, None, None, 15.0]
    assert s.stats.conversion_errors == 2
