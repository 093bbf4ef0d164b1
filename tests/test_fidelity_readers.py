"""Issue 17 (readers) and issue 12 item 6: lines written here from each format's own
documentation (AWS's ELB/ALB access-log pages, HAProxy's "Log formats" chapter, Caddy's
and Traefik's log docs, Apache's mod_log_config, the W3C draft, IIS and NetScaler's
W3C logging, CloudFront's standard-log fields)."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys

import pytest

import logferry
from conftest import check_invariant
from logferry.formats.w3c import time_taken_unit
from logferry.reader import detect_head

UTC = dt.UTC


def read(text: str, fmt: str | None = None):
    data = text.encode("utf-8")
    if fmt is None:
        fmt = detect_head(data, "t").format
    s = logferry.read(io.BytesIO(data), fmt)
    out = [r for b in s for r in b.to_pylist()]
    check_invariant(s)
    return s, out


# --- ALB / classic ELB ------------------------------------------------------------------

ALB_TAIL = (
    ' "curl/8.0" - - arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/tg/0123456789abcdef'
    ' "Root=1-65000000-0123456789abcdef01234567" {sni} "-" 0 2024-05-01T10:00:00.000000Z "forward"'
    ' "-" "-" "10.0.0.5:80" "200" "-" "-"'
)


def test_alb_host_comes_from_the_request_url_not_the_sni():
    plain = (
        "http 2024-05-01T10:00:00.123456Z app/web/0123456789abcdef 198.51.100.7:50000 10.0.0.5:80"
        ' 0.001 0.020 0.000 200 200 120 512 "GET http://shop.example.org:80/cart?x=1 HTTP/1.1"'
        + ALB_TAIL.format(sni='"-"')
    )
    tls = (
        "https 2024-05-01T10:00:01.000000Z app/web/0123456789abcdef 198.51.100.8:50001 10.0.0.5:80"
        ' 0.001 0.020 0.000 200 200 120 512 "GET https://www.example.org:443/ HTTP/2.0"'
        + ALB_TAIL.format(sni='"sni.example.net"')
    )
    s, r = read(plain + "\n" + tls + "\n")
    assert s.format == "alb" and s.stats.bad == 0
    assert [x["host"] for x in r] == ["shop.example.org", "www.example.org"]
    assert (r[0]["path"], r[0]["query"]) == ("/cart", "x=1")
    # the SNI stays in the original fields
    assert [x["fields"]["domain_name"] for x in r] == ['"-"', '"sni.example.net"']


def test_classic_elb_lines_from_before_the_user_agent_fields():
    old = (
        "2014-03-01T12:00:00.000001Z my-elb 198.51.100.1:4000 10.0.0.1:80 0.000020 0.004000 0.000030"
        ' 200 200 0 1024 "GET http://www.example.com:80/index.html HTTP/1.1"'
    )
    no_backend = (
        "2014-03-01T12:00:01.000001Z my-elb 198.51.100.2:4001 - -1 -1 -1 504 0 0 0"
        ' "GET http://www.example.com:80/slow HTTP/1.1"'
    )
    new = old.replace("12:00:00", "12:00:02") + ' "Mozilla/5.0 (X11)" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2'
    text = old + "\n" + no_backend + "\n"
    assert detect_head(text.encode(), "elb.log").format == "elb"
    s, r = read(text + new + "\n")
    assert s.format == "elb" and (s.stats.records, s.stats.bad) == (3, 0)
    assert r[0]["timestamp"] == dt.datetime(2014, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    assert (r[0]["status"], r[0]["bytes_sent"], r[0]["host"], r[0]["path"]) == (200, 1024, "www.example.com", "/index.html")
    assert r[0]["duration_ms"] == pytest.approx(4.05)
    assert r[0]["user_agent"] is None and r[0]["fields"]["ssl_protocol"] is None
    assert (r[1]["status"], r[1]["server_ip"], r[1]["duration_ms"]) == (504, None, None)
    assert r[2]["user_agent"] == "Mozilla/5.0 (X11)" and r[2]["fields"]["ssl_protocol"] == "TLSv1.2"
    assert s.stats.conversion_errors == 0


# --- HAProxy ------------------------------------------------------------------------------

HAP = (
    '192.0.2.10:51000 [01/May/2024:10:00:00.250] web~ app/srv1 10/0/1/20/{tt} 200 1500 - - ---- '
    '3/3/1/1/0 0/0 "GET /index.html HTTP/1.1"'
)


def test_haproxy_rfc3339_syslog_prefix_and_logasap_total():
    lines = [
        "May  1 10:00:01 lb1 haproxy[123]: " + HAP.format(tt="31"),
        "2024-05-01T10:00:01+02:00 lb1 haproxy[123]: " + HAP.format(tt="32"),
        "2024-05-01T10:00:01.123456Z lb1 haproxy[123]: " + HAP.format(tt="33"),
        HAP.format(tt="+34"),  # option logasap: the total so far
        "2024-05-01T10:00:01+02:00 lb1 haproxy[123]: " + HAP.format(tt="+35"),
    ]
    text = "\n".join(lines) + "\n"
    assert detect_head(text.encode(), "h").format == "haproxy"
    s, r = read(text)
    assert (s.stats.records, s.stats.bad, s.stats.conversion_errors) == (5, 0, 0)
    assert [x["duration_ms"] for x in r] == [31.0, 32.0, 33.0, 34.0, 35.0]
    assert all(x["timestamp"] == dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC) for x in r)
    assert r[1]["fields"]["syslog_time"] == "2024-05-01T10:00:01+02:00"
    assert r[3]["fields"]["timers"] == "10/0/1/20/+34"


def test_haproxy_tcp_lines_and_own_messages():
    text = "\n".join([
        "May  1 10:00:00 lb1 haproxy[123]: Proxy web started.",
        "May  1 10:00:02 lb1 haproxy[123]: " + HAP.format(tt="31"),
        # option tcplog
        "May  1 10:00:03 lb1 haproxy[123]: 192.0.2.11:51001 [01/May/2024:10:00:02.000] db db/pg1 1/0/998 4096 -- 1/1/1/1/0 0/0",
        # a connection error and process events: HAProxy's own messages, not requests
        "May  1 10:00:04 lb1 haproxy[123]: 192.0.2.12:51002 [01/May/2024:10:00:04.000] web/1: SSL handshake failure",
        "May  1 10:00:05 lb1 haproxy[123]: Server app/srv1 is DOWN, reason: Layer4 timeout.",
        "May  1 10:00:06 lb1 haproxy[123]: Stopping frontend web in 0 ms.",
        # still a bad row: a request line whose accept date is empty
        "May  1 10:00:07 lb1 haproxy[123]: 192.0.2.13:51003 [] web app/srv1 1/0/1/2/4 200 10 - - ---- 1/1/1/1/0 0/0 \"GET / HTTP/1.1\"",
    ]) + "\n"
    s, r = read(text)
    assert s.format == "haproxy"
    assert (s.stats.records, s.stats.bad, s.stats.skipped) == (2, 1, 4)
    assert s.stats.directives == 4  # skipped entries count with the directives
    tcp = r[1]
    assert (tcp["client_ip"], tcp["site"], tcp["bytes_sent"], tcp["duration_ms"], tcp["status"]) == (
        "192.0.2.11", "db", 4096, 998.0, None)
    assert s.bad_rows[0].line_number == 7


# --- JSON logs: entries that are not requests ---------------------------------------------------


def test_caddy_entries_of_other_loggers_are_skipped():
    access = (
        '{"level":"info","ts":1714557600.5,"logger":"http.log.access.log0","msg":"handled request",'
        '"request":{"remote_ip":"192.0.2.1","remote_port":"5000","client_ip":"192.0.2.1","proto":"HTTP/2.0",'
        '"method":"GET","host":"example.org","uri":"/a?b=1","headers":{"User-Agent":["curl/8"]}},'
        '"bytes_read":0,"user_id":"","duration":0.25,"size":10,"status":200}'
    )
    text = "\n".join([
        access,
        '{"level":"debug","ts":1714557600.6,"logger":"http.handlers.reverse_proxy","msg":"selected upstream",'
        '"dial":"app:8080","total_upstreams":1}',
        '{"level":"info","ts":1714557600.7,"logger":"tls.cache.maintenance","msg":"started background certificate maintenance"}',
        '{"level":"info","ts":1714557600.8,"msg":"serving initial configuration"}',
        access.replace("log0", "log1"),
    ]) + "\n"
    s, r = read(text)
    assert s.format == "caddy-json"
    assert (s.stats.records, s.stats.bad, s.stats.skipped, s.stats.directives) == (2, 0, 3, 3)
    assert [x["line_number"] for x in r] == [1, 5]
    assert (r[0]["path"], r[0]["query"], r[0]["duration_ms"], r[0]["status"]) == ("/a", "b=1", 250.0, 200)



def test_convert_summary_names_the_skipped_entries(tmp_path):
    src = tmp_path / "caddy.log"
    src.write_text(SURROGATE_LINES["caddy-json"].replace("\\ud800x", "x").replace("\\udfff", "a") + "\n"
                   '{"level":"debug","ts":1714557600.6,"logger":"http.handlers.reverse_proxy","msg":"selected upstream"}\n')
    p = subprocess.run([sys.executable, "-m", "logferry.cli", "convert", str(src), "--to", "jsonl", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "1 records, 0 bad rows (2 lines, 1 directives (incl. 1 skipped entries that are not requests)" in p.stderr


def test_traefik_and_nginx_json_messages_are_skipped():
    traefik = (
        '{"ClientAddr":"192.0.2.1:5000","ClientHost":"192.0.2.1","DownstreamStatus":200,"Duration":1500000,'
        '"RequestMethod":"GET","RequestPath":"/x","RequestHost":"example.org","StartUTC":"2024-05-01T10:00:00Z",'
        '"RouterName":"web@docker"}'
    )
    text = traefik + '\n{"level":"info","msg":"Configuration loaded from flags.","time":"2024-05-01T10:00:00Z"}\n'
    s, r = read(text, "traefik-json")
    assert (s.stats.records, s.stats.bad, s.stats.skipped) == (1, 0, 1)
    assert r[0]["duration_ms"] == 1.5
    nginx = (
        '{"time_iso8601":"2024-05-01T10:00:00+00:00","remote_addr":"192.0.2.1","request":"GET / HTTP/1.1",'
        '"status":"200","body_bytes_sent":"5","http_user_agent":"curl/8"}\n'
        '{"time_iso8601":"2024-05-01T10:00:01+00:00","message":"worker process started"}\n'
    )
    s, r = read(nginx, "nginx-json")
    assert (s.stats.records, s.stats.bad, s.stats.skipped) == (1, 0, 1)


# --- a lone surrogate escape in any JSON log (issue 12 item 6) ----------------------------------

SURROGATE_LINES = {
    "nginx-json": '{"time_iso8601":"2024-05-01T10:00:00+00:00","remote_addr":"192.0.2.1","request":"GET / HTTP/1.1",'
                  '"status":200,"body_bytes_sent":5,"http_user_agent":"evil\\udfff"}',
    "caddy-json": '{"level":"info","ts":1714557600.5,"logger":"http.log.access","msg":"handled request",'
                  '"request":{"remote_ip":"192.0.2.1","method":"GET","host":"h","uri":"/\\ud800x",'
                  '"headers":{"User-Agent":["a\\udfff"]}},"status":200,"size":1,"duration":0.1}',
    "traefik-json": '{"ClientAddr":"192.0.2.1:5000","ClientHost":"192.0.2.1","RequestMethod":"GET",'
                    '"RequestPath":"/\\udfff","DownstreamStatus":200,"Duration":1000,"StartUTC":"2024-05-01T10:00:00Z"}',
    "cloudflare-json": '{"ClientIP":"192.0.2.1","ClientRequestMethod":"GET","ClientRequestURI":"/",'
                       '"ClientRequestUserAgent":"\\udfff","EdgeStartTimestamp":1714557600000000000,'
                       '"EdgeEndTimestamp":1714557600002000000,"EdgeResponseStatus":200,"RayID":"8f00000000000000"}',
    "cdn-json": '{"startTime":"01-05-24 10:00:00.000","startTimeEpochMilli":1714557600000,"durationMilli":52,'
                '"siteName":"s","clientIp":"192.0.2.1","httpResponseCode":200,"sentBytes":3,"userAgent":"x\\udfff"}',
}


@pytest.mark.parametrize("fmt", sorted(SURROGATE_LINES))
def test_lone_surrogate_becomes_replacement_character(fmt, tmp_path):
    good = SURROGATE_LINES[fmt].replace("\\udfff", "ok").replace("\\ud800", "")
    text = SURROGATE_LINES[fmt] + "\n" + good + "\n"
    s, r = read(text, fmt)
    assert (s.stats.records, s.stats.bad) == (2, 0)
    assert s.stats.conversion_errors >= 1
    values = [v for v in (r[0]["user_agent"], r[0]["path"]) if v]
    assert any("\ufffd" in v for v in values), values
    assert all("\ufffd" not in (v or "") for v in (r[1]["user_agent"], r[1]["path"]))
    # convert prints no traceback; the row is in the output
    src = tmp_path / f"in.{fmt}.log"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    p = subprocess.run([sys.executable, "-m", "logferry.cli", "convert", str(src), "-f", fmt, "--to", "jsonl", "-o", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    # ingest keeps the file's rows
    from logferry.usage.db import connect
    from logferry.usage.ingester import ingest

    con = connect(tmp_path / "u.duckdb")
    try:
        summary = ingest(con, [str(src)])
        assert [f.status for f in summary.files] == ["new"]
        assert (summary.files[0].records, summary.files[0].bad_rows) == (2, 0)
    finally:
        con.close()


# --- combined ----------------------------------------------------------------------------


def test_combined_bare_dash_referer_and_agent_and_a_cut_last_field():
    base = '192.0.2.1 - - [01/May/2024:10:00:00 +0200] "GET /p HTTP/1.1" 200 5'
    text = "\n".join([
        base + ' "-" "curl/8"',
        base + " - -",  # unquoted dashes (an Apache/nginx config without the quotes)
        base + ' "https://ref.example/" "Mozilla/5.0 (X11; Lin',  # agent cut at the end of the line
        base + ' "https://ref.example/pa',  # referer cut, no agent
    ]) + "\n"
    assert detect_head(text.encode(), "a.log").format == "combined"
    s, r = read(text)
    assert (s.stats.records, s.stats.bad) == (4, 0)
    assert (r[1]["referer"], r[1]["user_agent"]) == (None, None)
    assert (r[2]["referer"], r[2]["user_agent"]) == ("https://ref.example/", "Mozilla/5.0 (X11; Lin")
    assert (r[3]["referer"], r[3]["user_agent"]) == ("https://ref.example/pa", None)
    assert s.stats.conversion_errors == 2  # the two cut fields
    assert all(x["status"] == 200 and x["path"] == "/p" for x in r)


# --- W3C time-taken ------------------------------------------------------------------------

W3C_BODY = "#Fields: date time c-ip cs-method cs-uri-stem sc-status time-taken\n2024-05-01 10:00:00 192.0.2.1 GET / 200 {v}\n"


@pytest.mark.parametrize(("head", "value", "ms"), [
    ("#Software: Netscaler Web Logging(NSWL)\n", "1", 1000.0),  # NetScaler: integer seconds
    ("#Software: Netscaler Web Logging(NSWL)\n", "0.25", 250.0),
    ("#Software: Oracle9iAS Web Cache/2.0.0.2.0\n", "2", 2000.0),
    ("", "3", 3000.0),  # no #Software: the W3C draft's seconds
    ("#Software: Microsoft Internet Information Services 10.0\n", "15", 15.0),
    ("#Software: Microsoft HTTP Server API 2.0\n", "15", 15.0),
    ("#Software: IIS Advanced Logging Module\n", "15", 15.0),
    ("#Software: logferry 1.0 (W3C Extended; time-taken in seconds)\n", "0.082", 82.0),
    ("#Software: logferry 1.0 (IIS; time-taken in milliseconds)\n", "82", 82.0),
    ("#Software: logferry 0.1.0\n", "82", 82.0),  # written before the unit was declared: ms
])
def test_w3c_time_taken_unit_follows_the_dialect(head, value, ms):
    s, r = read("#Version: 1.0\n" + head + W3C_BODY.format(v=value), "w3c")
    assert r[0]["duration_ms"] == pytest.approx(ms)


def test_w3c_time_taken_unit_table():
    assert time_taken_unit("", ["date", "time", "sc-win32-status", "time-taken"]) == "ms"  # IIS fields, no #Software
    assert time_taken_unit("", ["date", "time", "s_ip", "time_taken"]) == "ms"  # the platform export
    assert time_taken_unit("Netscaler Web Logging(NSWL)", ["date", "time", "time-taken"]) == "s"
    assert time_taken_unit("SHOUTcast", ["c-ip", "date", "time"]) == "s"


def test_netscaler_corpus_file_reads_seconds(corpus_path):
    s = logferry.read(corpus_path("matomo-log-analytics/netscaler.log"))
    r = [x for b in s for x in b.to_pylist()]
    assert s.format == "w3c" and r
    assert r[0]["fields"]["time-taken"] == "1" and r[0]["duration_ms"] == 1000.0


# --- CloudFront host -------------------------------------------------------------------------


def test_cloudfront_host_is_the_viewer_host_header():
    fields = ("date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
              "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header "
              "cs-protocol cs-bytes time-taken")
    row = ("2024-05-01\t10:00:00\tFRA56-P1\t512\t192.0.2.1\tGET\td111111abcdef8.cloudfront.net\t/a\t200\t-\t"
           "curl/8\t-\t-\tHit\tabc==\t{host}\thttps\t100\t0.010")
    text = f"#Version: 1.0\n#Fields: {fields}\n" + row.format(host="www.example.org") + "\n" + row.format(host="-") + "\n"
    s, r = read(text)
    assert s.format == "cloudfront"
    assert [x["host"] for x in r] == ["www.example.org", "d111111abcdef8.cloudfront.net"]
    assert r[0]["fields"]["cs(Host)"] == "d111111abcdef8.cloudfront.net"


def test_ship_delivers_a_json_log_with_a_lone_surrogate(tmp_path):
    from logferry.destinations import open_destination
    from logferry.ship.engine import Job, run_job
    from logferry.ship.state import State

    src = tmp_path / "caddy.log"
    line = SURROGATE_LINES["caddy-json"]
    src.write_text(line + "\n" + line.replace("\\udfff", "ok") + "\n", encoding="utf-8")
    out = tmp_path / "out"
    d = open_destination(f"file://{out}")
    job = Job("caddy", (str(src),), f"file://{out}", compress="none")
    res = run_job(job, State(tmp_path / "st"), d)
    assert res.status == "ok", res
    objs = d.list()
    lines = [ln for o in objs for ln in d.get(o.name).decode("utf-8").splitlines()]
    assert len(lines) == 2 and "\ufffd" in lines[0]
