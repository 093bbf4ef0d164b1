"""JSON access logs (nginx, Traefik, Caddy, Cloudflare) and logferry's own jsonl read back."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json

import pytest

import logferry
from conftest import check_invariant, corpus, rows
from logferry.convert import convert

UTC = dt.UTC
M = "matomo-log-analytics/"




FILES = [
    (M + "nginx_json.log", "nginx-json", 2),
    (M + "traefik_json.log", "traefik-json", 1),
    (M + "caddy_json.log", "caddy-json", 3),
    ("lnav/logfile_cloudflare.1", "cloudflare-json", 15),
    ("lnav/logfile_cloudflare.json", "cloudflare-json", 1),
]


@pytest.mark.parametrize(("rel", "fmt", "records"), FILES)
def test_detected_and_read(rel, fmt, records):
    det = logferry.detect(corpus(rel))
    assert det.format == fmt
    if len(det.candidates) > 1:
        assert det.candidates[0][1] - det.candidates[1][1] >= 0.04
    s, r = rows(corpus(rel))
    check_invariant(s)
    assert (s.stats.records, s.stats.bad, s.stats.conversion_errors) == (records, 0, 0)
    assert [x["line_number"] for x in r] == list(range(1, records + 1))


def test_nginx_json_matomo():
    _, r = rows(corpus(M + "nginx_json.log"))
    row = r[0]
    assert row["timestamp"] == dt.datetime(2013, 10, 10, 14, 52, tzinfo=UTC)  # +02:00
    assert (row["client_ip"], row["host"]) == ("1.2.3.4", "www.piwik.org")
    assert row["path"] == "/piwik.php"
    assert row["query"].startswith("action_name=Clearcode%20-%20Web")
    assert row["query"].endswith("cookie=1&res=1680x1050")
    assert (row["status"], row["bytes_sent"]) == (200, 192)
    assert row["duration_ms"] == pytest.approx(0.008)  # generation_time_milli is ms
    assert row["referer"] == "http://clearcode.cc/"
    assert row["user_agent"].endswith("Chrome/24.0.1312.57 Safari/537.17")
    # originals: JSON text per top-level key ("200" the string stays distinguishable from 192)
    assert row["fields"]["status"] == '"200"'
    assert row["fields"]["length"] == "192"
    assert row["fields"]["idsite"] == "1"
    assert json.loads(row["fields"]["path"]).startswith("/piwik.php?action_name=")


def test_traefik_json():
    _, (row,) = rows(corpus(M + "traefik_json.log"))
    assert row["timestamp"] == dt.datetime(2023, 8, 11, 11, 39, 21, 773360, tzinfo=UTC)
    assert (row["client_ip"], row["client_port"]) == ("1.2.3.4", 52458)
    assert (row["method"], row["path"], row["query"]) == ("GET", "/my/app/auth", "id=1234&user=dude")
    assert (row["protocol"], row["host"]) == ("HTTP/1.1", "localhost")
    assert (row["status"], row["bytes_sent"], row["bytes_received"]) == (200, 15, 0)
    assert row["duration_ms"] == pytest.approx(10002.425284)  # Duration is ns
    assert row["user_agent"] == "Prometheus/2.40.5"
    assert row["referer"] == "www.example.com"
    assert row["username"] is None  # "-"
    assert json.loads(row["fields"]["ServiceURL"])["Host"] == "apache:80"
    assert row["fields"]["OriginStatus"] == "504"


def test_caddy_json():
    _, r = rows(corpus(M + "caddy_json.log"))
    first, _, third = r
    assert first["timestamp"] == dt.datetime(2023, 12, 23, 23, 17, 54, 815561, tzinfo=UTC)
    assert (first["client_ip"], first["client_port"], first["host"]) == ("1.2.3.4", 64985, "example.com")
    assert (first["method"], first["path"], first["protocol"]) == ("GET", "/beta/", "HTTP/2.0")
    assert (first["status"], first["bytes_sent"]) == (200, 3609)
    assert first["duration_ms"] == pytest.approx(1.335486)  # duration is seconds
    assert first["user_agent"] == "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0"
    assert first["referer"] is None
    assert first["username"] is None  # ""
    assert third["path"] == "/beta/assets/index-HIcRLzdf.js"
    assert third["duration_ms"] == pytest.approx(242.570094)
    assert third["referer"] == "https://example.com/beta/"
    assert third["bytes_sent"] == 217912
    assert json.loads(first["fields"]["request"])["tls"]["server_name"] == "example.com"
    assert first["fields"]["logger"] == '"http.log.access"'


def test_cloudflare_ns_epoch():
    _, r = rows(corpus("lnav/logfile_cloudflare.1"))
    row = r[0]
    assert row["timestamp"] == dt.datetime(2024, 4, 10, 23, 0, 0, 100000, tzinfo=UTC)
    assert row["duration_ms"] == pytest.approx(23.0)
    assert (row["client_ip"], row["host"], row["method"], row["path"]) == (
        "89.163.242.206",
        "www.example.com",
        "GET",
        "/",
    )
    assert (row["status"], row["bytes_sent"], row["protocol"]) == (200, 12480, "HTTP/2")
    assert (row["cache_status"], row["edge_location"], row["request_id"]) == ("miss", "SEA", "87a1b2c3d4e5f001")
    assert row["referer"] is None  # ""
    assert [x["method"] for x in r].count("POST") == 2
    assert r[8]["status"] == 502
    assert r[8]["duration_ms"] == pytest.approx(300.0)
    assert r[12]["method"] == "DELETE" and r[12]["status"] == 204
    assert r[14]["timestamp"] == dt.datetime(2024, 4, 10, 23, 0, 44, 995000, tzinfo=UTC)
    assert r[0]["fields"]["EdgeStartTimestamp"] == "1712790000100000000"


def test_cloudflare_rfc3339():
    _, (row,) = rows(corpus("lnav/logfile_cloudflare.json"))
    assert row["timestamp"] == dt.datetime(2022, 10, 30, 0, 0, 2, tzinfo=UTC)
    assert row["duration_ms"] == 0.0
    assert (row["client_ip"], row["host"], row["method"], row["path"]) == (
        "87.226.160.250",
        "www.ripe.net",
        "HEAD",
        "/",
    )
    assert (row["status"], row["bytes_sent"], row["bytes_received"]) == (301, 570, 567)
    assert row["user_agent"] is None
    assert row["server_ip"] is None  # OriginIP ""
    assert row["request_id"] == "761fde4e984e5ab2"
    assert row["fields"]["EdgeStartTimestamp"] == '"2022-10-30T00:00:02Z"'
    assert row["fields"]["CacheTieredFill"] == "false"


def test_bad_lines_blank_lines_and_gzip(tmp_path):
    good = (corpus("lnav/logfile_cloudflare.1").read_text().splitlines())[:3]
    text = "\n".join([good[0], "", "not json {", "[1, 2]", '"a string"', good[1], "   ", good[2]]) + "\n"
    p = tmp_path / "cf.log.gz"
    p.write_bytes(gzip.compress(text.encode()))
    s, r = rows(p)
    assert s.format == "cloudflare-json"
    assert s.compression == "gzip"
    check_invariant(s)
    assert (s.stats.records, s.stats.bad, s.stats.blank, s.stats.lines) == (3, 3, 2, 8)
    assert [x["line_number"] for x in r] == [1, 6, 8]
    assert [b.line_number for b in s.bad_rows] == [3, 4, 5]
    assert s.bad_rows[0].reason.startswith("not JSON")
    assert "list" in s.bad_rows[1].reason and "str" in s.bad_rows[2].reason
    assert s.bad_rows[0].raw == "not json {"


def test_nginx_json_common_key_names(tmp_path):
    lines = [
        {
            "time_local": "10/Oct/2000:13:55:36 -0700",
            "remote_addr": "203.0.113.9",
            "remote_user": "-",
            "request": "GET /x/y?z=1 HTTP/1.1",
            "status": 404,
            "body_bytes_sent": 0,
            "request_time": "0.250",
            "http_referer": "",
            "http_user_agent": "curl/8.0",
            "http_x_forwarded_for": "198.51.100.1, 10.0.0.1",
        },
        {
            "time_iso8601": "2024-01-02T03:04:05+00:00",
            "remote_addr": "2001:db8::1",
            "request_method": "POST",
            "request_uri": "/api",
            "status": "201",
            "body_bytes_sent": "12",
            "request_time": 1.5,
            "http_user_agent": "x",
        },
    ]
    p = tmp_path / "n.log"
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    det = logferry.detect(p)
    assert det.format == "nginx-json"
    s, (a, b) = rows(p)
    assert a["timestamp"] == dt.datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert (a["method"], a["path"], a["query"], a["protocol"]) == ("GET", "/x/y", "z=1", "HTTP/1.1")
    assert (a["status"], a["bytes_sent"], a["duration_ms"]) == (404, 0, 250.0)
    assert a["referer"] is None and a["username"] is None
    assert a["fields"]["http_x_forwarded_for"] == '"198.51.100.1, 10.0.0.1"'
    assert b["timestamp"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (b["client_ip"], b["method"], b["path"], b["status"], b["bytes_sent"]) == ("2001:db8::1", "POST", "/api", 201, 12)
    assert b["duration_ms"] == 1500.0
    assert b["fields"]["time_local"] is None  # key absent on this line


# --- logferry's own jsonl ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    [
        "elastic-beats-filebeat-nginx/test.log",
        M + "haproxy.log",
        M + "elb.log",
        M + "caddy_json.log",
        "lnav/logfile_cloudflare.1",
        "lnav/logfile_bad_access_log.0",
    ],
)
def test_jsonl_round_trip(tmp_path, rel):
    src = corpus(rel)
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as fh:
        summary = convert([str(src)], fh, "jsonl")
    det = logferry.detect(out)
    assert det.format == "jsonl"
    back = logferry.read(out)
    t = back.to_table()
    check_invariant(back)
    assert back.stats.bad == 0 and back.stats.conversion_errors == 0
    orig = logferry.read(src).to_table()
    assert t.num_rows == summary.stats.records == orig.num_rows
    # every canonical column survives exactly; source_file/line_number name the jsonl
    # file that was read, the origin is kept in fields
    canon = list(logferry.CANONICAL)
    assert t.select(canon).equals(orig.select(canon))
    assert t.column("source_file").unique().to_pylist() == [str(out)]
    assert t.column("line_number").to_pylist() == list(range(1, t.num_rows + 1))
    first = next(iter(logferry.read(out)))
    orig_first = next(iter(logferry.read(src)))
    f, of = first.column("fields").to_pylist()[0], orig_first.column("fields").to_pylist()[0]
    assert f.pop("origin_file") == str(src)
    assert int(f.pop("origin_line")) == orig_first.column("line_number")[0].as_py()
    # (a field the line lacks is null in the reader's struct and left out of the JSON)
    assert {k: v for k, v in f.items() if v is not None} == {k: v for k, v in of.items() if v is not None}


def test_jsonl_bad_and_foreign_lines(tmp_path):
    src = corpus(M + "s3.log")
    buf = io.BytesIO()
    convert([str(src)], buf, "jsonl")
    good = buf.getvalue().decode().strip()
    rec = json.loads(good)
    assert rec["timestamp"] == "2012-02-10T21:42:07Z"
    no_origin = dict(rec)
    del no_origin["source_file"], no_origin["line_number"]
    no_origin["status"] = "abc"
    p = tmp_path / "x.jsonl"
    p.write_text("\n".join([good, "{broken", json.dumps(no_origin), ""]) + "\n")
    s, r = rows(p)
    assert s.format == "jsonl"
    check_invariant(s)
    assert (s.stats.records, s.stats.bad, s.stats.blank) == (2, 1, 1)
    assert s.bad_rows[0].line_number == 2 and s.bad_rows[0].source_file == str(p)
    assert r[0]["source_file"] == str(p) and r[0]["line_number"] == 1
    assert r[0]["fields"]["origin_file"] == str(src) and r[0]["fields"]["origin_line"] == "1"
    # without origin keys: no origin in fields
    assert r[1]["source_file"] == str(p) and r[1]["line_number"] == 3
    assert r[1]["fields"]["origin_file"] is None
    assert r[1]["status"] is None and s.stats.conversion_errors == 1
    assert r[1]["timestamp"] == dt.datetime(2012, 2, 10, 21, 42, 7, tzinfo=UTC)
    assert r[1]["user_agent"] == r[0]["user_agent"]
    assert r[0]["fields"]["operation"] == "WEBSITE.GET.OBJECT"


def test_cloudflare_start_and_end_far_apart_read_without_error(tmp_path):
    """EdgeEndTimestamp - EdgeStartTimestamp beyond 2**53 us (found by fuzzing: a
    mangled nanosecond stamp) used to stop the read in an int -> float cast."""
    line = ('{"ClientIP":"203.0.113.45","ClientRequestMethod":"POST","ClientRequestURI":"/v1",'
            '"EdgeResponseStatus":502,"EdgeStartTimestamp":1712790015600000000,'
            '"EdgeEndTimestamp":%d,"EdgeResponseBytes":128}\n')
    path = tmp_path / "cf.json"
    path.write_text(line % 12790015900000000 + line % 1712790015900000000)
    s, r = rows(path, format="cloudflare-json")
    assert len(r) == 2 and s.stats.bad == 0
    assert r[1]["duration_ms"] == 300.0 and abs(r[0]["duration_ms"]) > 2**53 / 1000
