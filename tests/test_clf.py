"""Apache/Nginx common/combined and the CLF-shaped formats (vhost, OVH, Gandi, S3, ELB, ALB,
HAProxy) on real corpus lines, plus a few crafted lines for escaping and chunking."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip

import pytest

import logferry
from conftest import check_invariant, corpus, rows
from logferry.formats import clf

UTC = dt.UTC
M = "matomo-log-analytics/"
CHROME17 = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/535.11 (KHTML, like Gecko) "
    "Chrome/17.0.963.56 Safari/535.11"
)
T_2012 = dt.datetime(2012, 2, 10, 21, 42, 7, tzinfo=UTC)  # [10/Feb/2012:16:42:07 -0500]




# file, format, records, bad, directives, blank
FILES = [
    (M + "common.log", "common", 1, 0, 0, 0),
    (M + "common.log.gz", "common", 1, 0, 0, 0),
    (M + "common.log.bz2", "common", 1, 0, 0, 0),
    (M + "custom_regex_custom_date.log", "common", 1, 0, 0, 0),
    (M + "common_vhost.log", "vhost-common", 1, 0, 0, 0),
    (M + "common_complete.log", "vhost-combined", 1, 0, 0, 0),
    (M + "common_encoding_big5.log", "vhost-combined", 1, 0, 0, 0),
    (M + "static_ignores.log", "vhost-combined", 4, 0, 0, 0),
    (M + "ncsa_extended.log", "combined", 1, 0, 0, 0),
    (M + "icecast2.log", "combined", 1, 0, 0, 0),
    (M + "logs_to_tests.log", "combined", 4, 0, 1, 1),
    (M + "gandi.log", "gandi", 2, 0, 0, 0),
    (M + "ovh.log", "ovh", 1, 0, 0, 0),
    (M + "s3.log", "s3-access", 1, 0, 0, 0),
    (M + "elb.log", "elb", 2, 0, 1, 0),
    (M + "alb.log", "alb", 1, 0, 0, 0),
    (M + "haproxy.log", "haproxy", 1, 0, 0, 0),
    ("lnav/logfile_access_log.0", "combined", 3, 0, 0, 0),
    ("lnav/logfile_access_log.1", "combined", 1, 0, 0, 0),
    ("lnav/logfile_bad_access_log.0", "combined", 2, 1, 0, 0),
    ("lnav/logfile_shop_access_log.0", "combined", 1000, 0, 0, 0),
    ("elastic-beats-filebeat-nginx/test.log", "combined", 10, 0, 0, 0),
    ("elastic-examples/apache_logs", "combined", 10000, 0, 0, 0),
]


@pytest.mark.parametrize(("rel", "fmt", "records", "bad", "directives", "blank"), FILES)
def test_corpus_file_detected_and_counted(rel, fmt, records, bad, directives, blank):
    path = corpus(rel)
    det = logferry.detect(path)
    assert det.format == fmt
    # a clear margin over the runner-up (ties within 0.02 are errors)
    if len(det.candidates) > 1:
        assert det.candidates[0][1] - det.candidates[1][1] >= 0.04
    s, r = rows(path)
    assert s.format == fmt
    check_invariant(s)
    assert (s.stats.records, s.stats.bad, s.stats.directives, s.stats.blank) == (
        records,
        bad,
        directives,
        blank,
    )
    assert len(r) == records
    assert len(s.bad_rows) == bad


def test_common_line_all_compressions():
    s, (row,) = rows(corpus(M + "common.log"))
    assert s.compression is None
    assert row["timestamp"] == T_2012
    assert row["client_ip"] == "1.2.3.4"
    assert row["username"] == "theuser"
    assert (row["method"], row["path"], row["query"], row["protocol"]) == ("GET", "/", None, "HTTP/1.0")
    assert (row["status"], row["bytes_sent"]) == (301, 368)
    assert row["user_agent"] is None and row["referer"] is None
    assert row["line_number"] == 1
    assert row["fields"]["time"] == "[10/Feb/2012:16:42:07 -0500]"
    assert row["fields"]["request"] == '"GET / HTTP/1.0"'
    assert row["fields"]["ident"] == "-"
    # the compressed samples hold other lines (-0700 offsets)
    s, (row,) = rows(corpus(M + "common.log.gz"))
    assert s.compression == "gzip"
    assert row["timestamp"] == dt.datetime(2012, 2, 10, 23, 42, 7, tzinfo=UTC)
    assert (row["client_ip"], row["username"], row["method"], row["path"]) == ("1.2.3.5", "admin", "POST", "/form")
    assert (row["status"], row["bytes_sent"]) == (200, 145)
    s, (row,) = rows(corpus(M + "common.log.bz2"))
    assert s.compression == "bz2"
    assert row["timestamp"] == dt.datetime(2012, 2, 19, 23, 42, 7, tzinfo=UTC)
    assert (row["client_ip"], row["username"], row["method"], row["path"]) == ("1.2.3.7", "theboss", "POST", "/")
    assert (row["status"], row["bytes_sent"]) == (200, 444)


def test_vhost_variants():
    _, (row,) = rows(corpus(M + "common_vhost.log"))
    assert (row["site"], row["host"], row["client_ip"]) == ("www.example.com", "www.example.com", "1.2.3.4")
    assert (row["status"], row["bytes_sent"], row["timestamp"]) == (301, 368, T_2012)
    _, (row,) = rows(corpus(M + "common_complete.log"))
    assert row["host"] == "www.example.com"
    assert row["user_agent"] == CHROME17
    assert row["referer"] is None
    assert row["fields"]["referer"] == '"-"'


def test_static_ignores_four_users():
    _, r = rows(corpus(M + "static_ignores.log"))
    assert [x["path"] for x in r] == ["/", "/robots.txt", "/image.png", "/font.woff2"]
    assert [x["client_ip"] for x in r] == ["1.2.3.4", "2.2.3.4", "3.2.3.4", "4.2.3.4"]
    assert [x["username"] for x in r] == ["theuser", "auser", "myuser", "nouser"]
    assert r[0]["timestamp"] == dt.datetime(2012, 2, 10, 21, 41, 7, tzinfo=UTC)
    assert r[3]["timestamp"] == dt.datetime(2012, 2, 10, 21, 44, 7, tzinfo=UTC)
    assert r[2]["user_agent"].endswith("Chrome/17.2.963.56 Safari/535.11")


def test_big5_request_is_replaced_not_fatal():
    s, (row,) = rows(corpus(M + "common_encoding_big5.log"))
    assert "\ufffd" in row["path"]
    assert row["path"].startswith("/")
    assert row["method"] == "GET" and row["protocol"] == "HTTP/1.0"
    assert row["status"] == 301
    assert s.stats.bad == 0


def test_icecast_trailing_duration_kept_as_extra():
    _, (row,) = rows(corpus(M + "icecast2.log"))
    assert row["user_agent"] == CHROME17
    assert row["fields"]["extra"] == "1807"
    assert row["status"] == 301


def test_gandi_duration_seconds_to_ms():
    _, r = rows(corpus(M + "gandi.log"))
    assert [x["duration_ms"] for x in r] == [0.0, 0.0]
    assert r[1]["client_ip"] == "125.125.125.125"
    assert r[1]["username"] is None
    assert r[1]["referer"] == "https://www.example.com/"
    assert r[1]["user_agent"] == "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.13; rv:90.0) Gecko/20100101 Firefox/90.0"
    assert (r[1]["status"], r[1]["bytes_sent"], r[1]["protocol"]) == (200, 1124, "HTTP/1.1")
    assert r[0]["fields"]["duration"] == "(0 s)"
    assert r[0]["site"] == "www.example.com"


def test_ovh_vhost_in_ident_position():
    _, (row,) = rows(corpus(M + "ovh.log"))
    assert (row["client_ip"], row["host"], row["username"]) == ("1.2.3.4", "www.example.com", "theuser")
    assert row["timestamp"] == T_2012
    assert row["protocol"] == "HTTP/1.1"


def test_logs_to_tests_query_comment_blank_and_dash_bytes():
    s, r = rows(corpus(M + "logs_to_tests.log"))
    assert [x["line_number"] for x in r] == [1, 2, 3, 6]
    assert r[0]["timestamp"] == dt.datetime(2013, 2, 5, 7, 1, 26, tzinfo=UTC)
    assert r[0]["path"] == "/piwik.php"
    assert r[0]["query"].startswith("action_name=Clearcode%20-%20Web%20and%20Mobile")
    assert r[0]["query"].endswith("&cookie=1&res=1680x1050")
    assert r[0]["referer"] == "http://clearcode.cc/"
    last = r[3]
    assert last["timestamp"] == dt.datetime(2013, 10, 28, 23, 48, 46, tzinfo=UTC)
    assert (last["method"], last["status"], last["bytes_sent"]) == ("HEAD", 403, None)
    assert last["user_agent"] is None
    assert s.stats.conversion_errors == 0


def test_custom_date_read_with_null_timestamp_and_counted():
    s, (row,) = rows(corpus(M + "custom_regex_custom_date.log"))
    assert row["timestamp"] is None
    assert row["fields"]["time"] == "[February - 10, 2012:16:42:07]"
    assert (row["client_ip"], row["status"], row["bytes_sent"]) == ("1.2.3.4", 301, 368)
    assert s.stats.conversion_errors == 1


def test_s3_access_log():
    _, (row,) = rows(corpus(M + "s3.log"))
    assert row["timestamp"] == T_2012
    assert (row["client_ip"], row["site"]) == ("1.2.3.4", "www.example.com")
    assert row["username"] == "arn:aws:iam::179580289999:user/phillip.boss"
    assert row["request_id"] == "EB3502676500C6BE"
    assert (row["method"], row["path"], row["protocol"]) == ("GET", "/index", "HTTP/1.1")
    assert (row["status"], row["bytes_sent"], row["duration_ms"]) == (200, 368, 10.0)
    assert row["user_agent"] == CHROME17
    assert row["fields"]["operation"] == "WEBSITE.GET.OBJECT"
    assert row["fields"]["turn_around_time"] == "9"


def test_elb_http_and_tcp_lines():
    s, r = rows(corpus(M + "elb.log"))
    assert s.stats.directives == 1
    http, tcp = r
    assert http["timestamp"] == dt.datetime(2015, 5, 13, 23, 39, 43, 945958, tzinfo=UTC)
    assert (http["client_ip"], http["client_port"]) == ("1.2.3.4", 2817)
    assert (http["server_ip"], http["server_port"]) == ("10.0.0.1", 80)
    assert http["site"] == "my-loadbalancer"
    assert (http["method"], http["host"], http["path"]) == ("GET", "www.example.com", "/path/index.html")
    assert (http["status"], http["bytes_received"], http["bytes_sent"]) == (200, 0, 57)
    assert http["duration_ms"] == pytest.approx(0.086 + 1.048 + 1.337)
    assert http["user_agent"] == CHROME17
    # the TCP listener line: no HTTP request, no status -- a record with nulls, not a crash
    assert tcp["line_number"] == 3
    assert (tcp["client_ip"], tcp["client_port"]) == ("192.168.131.39", 2817)
    assert tcp["method"] is None and tcp["path"] is None and tcp["status"] is None
    assert (tcp["bytes_received"], tcp["bytes_sent"]) == (82, 305)
    assert tcp["duration_ms"] == pytest.approx(1.138)
    assert tcp["fields"]["request"] == '"- - - "'
    assert s.stats.conversion_errors == 0


def test_alb_line():
    _, (row,) = rows(corpus(M + "alb.log"))
    assert row["timestamp"] == dt.datetime(2020, 1, 1, 0, 55, 4, 127531, tzinfo=UTC)
    assert (row["client_ip"], row["client_port"], row["server_ip"]) == ("1.2.3.4", 2817, "10.0.0.1")
    assert row["host"] == "www.example.com"
    assert row["site"] == "app/my-alb/abcdef"
    assert row["request_id"] == "Root=1-abcdef123-abcdef123"
    assert (row["status"], row["bytes_received"], row["bytes_sent"]) == (200, 225, 24950)
    assert row["duration_ms"] == pytest.approx(103.0)
    assert row["fields"]["type"] == "https"
    assert row["fields"]["target_status_code_list"] == '"200"'


def test_haproxy_line_and_tz_option():
    _, (row,) = rows(corpus(M + "haproxy.log"))
    assert row["timestamp"] == dt.datetime(2018, 9, 25, 6, 5, 27, 584000, tzinfo=UTC)
    assert (row["client_ip"], row["client_port"]) == ("4.3.2.1", 55008)
    assert (row["method"], row["path"], row["protocol"]) == ("POST", "/user/", "HTTP/1.1")
    assert (row["status"], row["bytes_sent"], row["duration_ms"]) == (200, 7456, 72.0)
    assert row["site"] == "ft_https~"
    assert row["fields"]["backend_server"] == "bk_https/abc"
    assert row["fields"]["process"] == "haproxy[6801]"
    _, (row,) = rows(corpus(M + "haproxy.log"), options={"tz": "Europe/Paris"})
    assert row["timestamp"] == dt.datetime(2018, 9, 25, 4, 5, 27, 584000, tzinfo=UTC)


def test_lnav_access_logs():
    _, r = rows(corpus("lnav/logfile_access_log.0"))
    assert [x["status"] for x in r] == [200, 404, 200]
    assert [x["bytes_sent"] for x in r] == [134, 46210, 78929]
    assert r[1]["path"] == "/vmw/vSphere/default/vmkboot.gz"
    assert r[0]["timestamp"] == dt.datetime(2009, 7, 20, 22, 59, 26, tzinfo=UTC)
    assert r[0]["user_agent"] == "gPXE/0.9.7"
    _, (row,) = rows(corpus("lnav/logfile_access_log.1"))
    assert row["fields"]["request"] == '"-"'
    assert (row["method"], row["path"], row["status"], row["bytes_sent"]) == (None, None, 400, 0)


def test_lnav_bad_access_log_exactly_one_bad_row():
    s, r = rows(corpus("lnav/logfile_bad_access_log.0"))
    assert [x["line_number"] for x in r] == [1, 3]
    (bad,) = s.bad_rows
    assert bad.line_number == 2
    assert bad.raw.startswith("192.168.202.254 [20/Jul/2009:22:59:29 +0000]")
    assert "combined" in bad.reason
    assert bad.source_file.endswith("logfile_bad_access_log.0")


def test_shop_access_log_trailing_forwarded_for():
    s, r = rows(corpus("lnav/logfile_shop_access_log.0"))
    first = r[0]
    assert first["timestamp"] == dt.datetime(2019, 1, 22, 0, 26, 14, tzinfo=UTC)  # +0330
    assert first["client_ip"] == "54.36.149.41"
    assert first["path"].startswith("/filter/27|13%20%D9%85")
    assert first["path"].endswith(",p53")
    assert (first["status"], first["bytes_sent"]) == (200, 30577)
    assert first["user_agent"] == "Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)"
    assert first["fields"]["extra"] == '"-"'
    last = r[-1]
    assert last["line_number"] == 1000
    assert last["client_ip"] == "89.47.79.75"
    assert last["path"] == "/static/images/search-category-arrow.png"
    assert last["referer"] == "https://znbl.ir/static/bundle-bundle_site_head.css"
    assert sum(1 for x in r if x["fields"]["extra"] == '"103.28.132.65"') == 13
    assert sum(1 for x in r if x["status"] == 200) == 938
    assert sum(x["bytes_sent"] for x in r) == 18963364


def test_filebeat_nginx_forwarded_lists_ipv6_unix_and_garbage():
    s, r = rows(corpus("elastic-beats-filebeat-nginx/test.log"))
    assert [x["client_ip"] for x in r] == [
        "10.0.0.2",
        "172.17.0.1",
        "10.0.0.2",
        "81.2.69.143",
        "10.5.102.222",
        "2a02:cf40:10ff:f00f:0000:0000:0:8000",
        "127.0.0.1",
        "unix:",
        "localhost",
        "localhost",
    ]
    # the raw list stays in fields
    assert r[0]["fields"]["remote_host"] == "10.0.0.2, 10.0.0.1, 127.0.0.1"
    assert r[4]["fields"]["remote_host"] == '"10.5.102.222, 175.16.199.1, 204.246.1.1" 10.2.1.185'
    assert r[5]["fields"]["remote_host"] == "2a02:cf40:10ff:f00f:0000:0000:0:8000, 10.225.192.17 10.2.2.121"
    assert r[0]["timestamp"] == dt.datetime(2016, 12, 7, 10, 5, 7, tzinfo=UTC)  # +0100
    assert (r[4]["path"], r[4]["query"]) == ("/assets/xxxx", "q=100")
    assert r[4]["user_agent"] == "Amazon CloudFront"
    # empty and garbage requests: records with null method/path
    for x, raw in ((r[6], '""'), (r[7], '"hello"')):
        assert x["fields"]["request"] == raw
        assert x["method"] is None and x["path"] is None and x["protocol"] is None
        assert x["status"] == 400
    assert r[7]["bytes_sent"] == 173
    assert r[1]["fields"]["extra"] == '"-"'
    assert s.stats.conversion_errors == 0


def test_apache_logs_10000_lines(tmp_path):
    path = corpus("elastic-examples/apache_logs")
    s, r = rows(path, chunk_size=256 << 10)  # several chunks
    check_invariant(s)
    assert s.stats.lines == 10000
    assert len(r) == 10000 and not s.bad_rows
    # line 8899's user agent is cut off (no closing quote): read as written (as GoAccess
    # and Elastic's examples read it) and counted as a conversion issue
    cut = r[8898]
    assert cut["line_number"] == 8899
    assert cut["user_agent"] == "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html"
    assert cut["fields"]["user_agent"] == '"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html'
    assert [x["line_number"] for x in r] == list(range(1, 10001))
    first, last = r[0], r[-1]
    assert first["timestamp"] == dt.datetime(2015, 5, 17, 10, 5, 3, tzinfo=UTC)
    assert first["client_ip"] == "83.149.9.216"
    assert first["path"] == "/presentations/logstash-monitorama-2013/images/kibana-search.png"
    assert (first["status"], first["bytes_sent"]) == (200, 203023)
    assert first["referer"] == "http://semicomplete.com/presentations/logstash-monitorama-2013/"
    assert last["timestamp"] == dt.datetime(2015, 5, 20, 21, 5, 15, tzinfo=UTC)
    assert (last["client_ip"], last["path"], last["query"]) == ("46.105.14.53", "/blog/tags/puppet", "flav=rss20")
    assert (last["status"], last["bytes_sent"]) == (200, 14872)
    assert last["user_agent"] == "UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/"
    assert all(x["timestamp"] is not None for x in r)
    assert s.stats.conversion_errors == 1
    # the same file gzip- and bz2-compressed reads identically
    data = path.read_bytes()
    for name, blob in (("a.gz", gzip.compress(data)), ("a.bz2", bz2.compress(data))):
        p = tmp_path / name
        p.write_bytes(blob)
        s2, r2 = rows(p)
        assert s2.format == "combined"
        assert (s2.stats.records, s2.stats.bad) == (10000, 0)
        assert r2[-1]["path"] == "/blog/tags/puppet"


# --- crafted lines: escaping, odd layouts, mixed variants ------------------------------------


def _write(tmp_path, text: bytes, name="x.log"):
    p = tmp_path / name
    p.write_bytes(text)
    return p


def test_apache_escapes_in_request_and_user_agent(tmp_path):
    line = (
        b'10.1.1.1 - j\\x20doe [01/Jan/2024:00:00:00 +0000] "GET /a\\"b?q=1 HTTP/1.1" 200 5 '
        b'"http://r/\\\\x" "Agent \\"quoted\\" caf\\xc3\\xa9\\ttab"\n'
    )
    _, (row,) = rows(_write(tmp_path, line), format="combined")
    assert row["path"] == '/a"b'
    assert row["query"] == "q=1"
    assert row["user_agent"] == 'Agent "quoted" café\ttab'
    assert row["referer"] == "http://r/\\x"
    assert row["username"] == "j doe"
    assert row["fields"]["user_agent"] == '"Agent \\"quoted\\" caf\\xc3\\xa9\\ttab"'


def test_combined_tolerates_common_lines_and_marks_junk_bad(tmp_path):
    text = (
        b'1.1.1.1 - - [01/Jan/2024:00:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "ua"\n'
        b'1.1.1.2 - - [01/Jan/2024:00:00:01 +0000] "GET /b HTTP/1.1" 200 -\n'
        b"\n"
        b"garbage line\n"
        b'1.1.1.3 - - [01/Jan/2024:00:00:02 +0000] "GET /c HTTP/1.1" abc 1 "-" "ua"\n'
        b'1.1.1.4 - - [01/Jan/2024:00:00:03 +0000] "GET /d HTTP/1.1" 200 3 "-" "ua"'
    )
    s, r = rows(_write(tmp_path, text), format="combined")
    check_invariant(s)
    assert [x["path"] for x in r] == ["/a", "/b", "/d"]
    assert [x["line_number"] for x in r] == [1, 2, 6]
    assert r[1]["bytes_sent"] is None and r[1]["user_agent"] is None
    assert [b.line_number for b in s.bad_rows] == [4, 5]
    assert (s.stats.blank, s.stats.bad) == (1, 2)


def test_absolute_url_and_connect_requests():
    parts = clf.split_request(
        __import__("pyarrow").array(
            ["GET http://h.example:8080/p/q?x=1 HTTP/1.0", "CONNECT h.example:443 HTTP/1.1", "GET https://h HTTP/2.0", "-", None]
        )
    )
    assert parts["host"].to_pylist() == ["h.example", None, "h", None, None]
    assert parts["path"].to_pylist() == ["/p/q", "h.example:443", "/", None, None]
    assert parts["query"].to_pylist() == ["x=1", None, None, None, None]
    assert parts["method"].to_pylist() == ["GET", "CONNECT", "GET", None, None]
    assert parts["protocol"].to_pylist() == ["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", None, None]


def test_invalid_utf8_anywhere_never_crashes(tmp_path):
    line = b'1.1.1.1 - - [01/Jan/2024:00:00:00 +0000] "GET /\xff\xfe HTTP/1.1" 200 1 "-" "ua\xc3"\n'
    s, r = rows(_write(tmp_path, line * 3), format="combined")
    row = r[2]
    assert row["line_number"] == 3
    assert row["path"] == "/\ufffd\ufffd"
    assert row["user_agent"] == "ua\ufffd"
    assert s.stats.records == 3


def test_common_and_vhost_common_do_not_tie_on_crafted_file(tmp_path):
    text = b'www.x.org 1.1.1.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1\n' * 5
    det = logferry.detect(_write(tmp_path, text))
    assert det.format == "vhost-common"


def test_crlf_and_lone_cr_line_endings(tmp_path):
    src = corpus("lnav/logfile_access_log.0").read_bytes()
    ref = rows(corpus("lnav/logfile_access_log.0"))[1]
    for name, sep in (("crlf.log", b"\r\n"), ("cr.log", b"\r")):
        p = _write(tmp_path, src.replace(b"\n", sep), name)
        s, r = rows(p, format="combined")
        check_invariant(s)
        assert s.stats.bad == 0
        assert [x["user_agent"] for x in r] == ["gPXE/0.9.7"] * 3
        assert [x["bytes_sent"] for x in r] == [x["bytes_sent"] for x in ref]
        assert [x["fields"]["user_agent"] for x in r] == ['"gPXE/0.9.7"'] * 3
        assert all(x["fields"]["extra"] is None for x in r)


def test_clf_time_fast_path_offsets_and_impossible_dates():
    import datetime as _dt

    import pyarrow as _pa

    from logferry.formats.clf import clf_time

    u = _dt.UTC
    got = clf_time(
        _pa.array(["[10/Oct/2000:13:55:36 -0700]", "[31/Dec/2000:23:59:59 -0130]", "[05/Feb/2013:07:01:26 +0000]"])
    ).to_pylist()
    assert got == [
        _dt.datetime(2000, 10, 10, 20, 55, 36, tzinfo=u),
        _dt.datetime(2001, 1, 1, 1, 29, 59, tzinfo=u),
        _dt.datetime(2013, 2, 5, 7, 1, 26, tzinfo=u),
    ]
    # an impossible date is null, never rolled over to March 1st; odd shapes still parse
    got = clf_time(_pa.array(["[29/Feb/2001:13:55:36 +0000]", "[1/Jan/2000:00:00:00 +0100]", "[x]"])).to_pylist()
    assert got == [None, _dt.datetime(1999, 12, 31, 23, 0, tzinfo=u), None]
