"""Issue 17 (Snowplow) and issue 12 item 6 (a tracker POST body): events as Snowplow's
adapters and enrichment make them, from hits written here after the tracker protocol,
the webhook vendors' payload docs and CloudFront's access-log field list."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from logferry.snowplow.events import read_events
from logferry.snowplow.hits import CLOUDFRONT, THRIFT, TOMCAT, Hit, decode_hit

TS = 1_714_557_600_000_000  # 2024-05-01T10:00:00Z


def hit(kind=THRIFT, **kw) -> Hit:
    return Hit(kind, collector_tstamp=TS, ip="192.0.2.1", useragent="curl/8", **kw)


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# vendor path, content type, body (None: query only), query
WEBHOOKS = [
    ("/com.mailchimp/v1", FORM, "type=subscribe&fired_at=2024-05-01+10%3A00%3A00&data%5Bemail%5D=a%40example.org", None),
    ("/com.mandrill/v1", FORM, "mandrill_events=" + "%5B%7B%22event%22%3A%22send%22%2C%22ts%22%3A1714557600%7D%5D", None),
    ("/com.pagerduty/v1", JSON, '{"messages":[{"type":"incident.trigger","data":{"incident":{"id":"P1"}}}]}', None),
    ("/com.pingdom/v1", None, None, "message=%7B%22check%22%3A%221%22%2C%22action%22%3A%22assign%22%7D"),
    ("/com.sendgrid/v3", JSON, '[{"email":"a@example.org","event":"processed","timestamp":1714557600}]', None),
    ("/com.olark/v1", FORM, "data=%7B%22kind%22%3A%22Conversation%22%2C%22id%22%3A%22c1%22%7D", None),
    ("/com.callrail/v1", None, None, "answered=true&callercity=Lyon&duration=4"),
    ("/com.hubspot/v1", JSON, '[{"eventId":1,"subscriptionType":"contact.creation","portalId":7}]', None),
    ("/com.marketo/v1", JSON, '{"name":"webhook for A","step":6,"campaign":{"id":160}}', None),
    ("/com.statusgator/v1", FORM, "service_name=Amazon+S3&current_status=warn", None),
    ("/com.unbounce/v1", FORM, "page_id=p1&page_url=https%3A%2F%2Fexample.org%2F&data.json=%7B%22email%22%3A%5B%22a%40example.org%22%5D%7D", None),
]


@pytest.mark.parametrize(("path", "ctype", "body", "query"), WEBHOOKS, ids=[w[0] for w in WEBHOOKS])
def test_webhook_v_tracker_as_snowplows_adapters_set_it(path, ctype, body, query):
    vendor, version = path.strip("/").split("/")
    evs, bad = decode_hit(hit(method="POST" if body else "GET", path=path, query=query, content_type=ctype, body=body))
    assert bad == [] and evs
    assert {e["v_tracker"] for e in evs} == {f"{vendor}-{version}"}
    assert all(e["event"] == "unstruct" and e["platform"] == "srv" for e in evs)
    # a tv the caller puts in the query string does not replace the adapter's
    evs, _ = decode_hit(hit(method="POST" if body else "GET", path=path, content_type=ctype, body=body,
                            query=(query + "&" if query else "") + "tv=evil-1"))
    assert {e["v_tracker"] for e in evs} == {f"{vendor}-{version}"}


def test_iglu_webhook_v_tracker():
    evs, bad = decode_hit(hit(method="GET", path="/com.snowplowanalytics.iglu/v1",
                              query="schema=iglu%3Acom.acme%2Fping%2Fjsonschema%2F1-0-0&n=1"))
    assert bad == [] and evs[0]["v_tracker"] == "com.snowplowanalytics.iglu-v1"


# --- CloudFront rows that are not tracker hits ------------------------------------------------

CF12 = ("2024-05-01\t10:00:00\tFRA56-P1\t512\t192.0.2.7\tGET\td111111abcdef8.cloudfront.net\t/img/a.png\t200\t"
        "https://www.example.org/page%3Fx%3D1\tMozilla/5.0%2520(X11;%2520Linux)\tv=2%2520b")
CF19 = CF12 + "\t-\tHit\tabc123==\twww.example.org\thttps\t300\t0.004"
CF33 = (CF19 + "\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tHit\tHTTP/2.0\t-\t-\t50000\t0.003\tHit\timage/png\t480\t-\t-")


def test_cloudfront_access_log_events(tmp_path):
    src = tmp_path / "cf.log"
    src.write_text("#Version: 1.0\n" + "\n".join([CF12, CF19, CF33]) + "\n")
    s = read_events(src)
    rows = s.to_table().to_pylist()
    assert (s.stats.events, s.stats.bad) == (3, 0)
    for r in rows:
        assert (r["event"], r["platform"], r["v_tracker"]) == ("unstruct", "srv", "com.amazon.aws.cloudfront/wd_access_log")
        assert r["page_url"] == "https://www.example.org/page%3Fx%3D1"  # the Referer as logged
        assert r["useragent"] == "Mozilla/5.0 (X11; Linux)" and r["user_ipaddress"] == "192.0.2.7"
    assert [r["unstruct_event_schema"].rsplit("/", 1)[1] for r in rows] == ["1-0-0", "1-0-3", "1-0-6"]
    d12, d19, d33 = (json.loads(r["unstruct_event_data"]) for r in rows)
    assert d12 == {
        "dateTime": "2024-05-01T10:00:00Z", "xEdgeLocation": "FRA56-P1", "scBytes": 512, "cIp": "192.0.2.7",
        "csMethod": "GET", "csHost": "d111111abcdef8.cloudfront.net", "csUriStem": "/img/a.png", "scStatus": "200",
        "csReferer": "https://www.example.org/page%3Fx%3D1", "csUserAgent": "Mozilla/5.0 (X11; Linux)",
        "csUriQuery": "v=2%20b",
    }
    assert (d19["csCookie"], d19["xHostHeader"], d19["csBytes"], d19["timeTaken"]) == (None, "www.example.org", 300, 0.004)
    assert len(d33) == 25 and d33["csProtocolVersion"] == "HTTP/2.0" and d33["fleEncryptedFields"] is None


def test_cloudfront_access_log_bad_rows():
    f = CF12.split("\t")
    evs, bad = decode_hit(Hit(CLOUDFRONT, collector_tstamp=TS, path=f[7], method="GET", access_log=f[:3] + ["lots"] + f[4:]))
    assert evs == [] and bad == ["scBytes: cannot convert [lots] to an integer"]
    evs, bad = decode_hit(Hit(CLOUDFRONT, collector_tstamp=TS, path=f[7], method="GET", access_log=f + ["x"]))
    assert evs == [] and bad == ["access log row of 13 fields, expected 12, 15, 18, 19, 23, 24, 26 or more"]


# --- tabs and page_url ---------------------------------------------------------------------------

TRACKER_Q = ("e=se&se_ca=shop&se_ac=add%09to%09cart&page=A%09B&tv=js-3.0&p=web"
             "&url=https%3A%2F%2Fshop.example%2Fa%2520b%3Fq%3D%25C3%25A9%26t%3D%2509")


@pytest.mark.parametrize("kind", [TOMCAT, THRIFT])
def test_tabs_become_four_spaces_and_page_url_keeps_its_encoding(kind):
    (ev,), bad = decode_hit(hit(kind, method="GET", path="/i", query=TRACKER_Q, referer="https://ref.example/"))
    assert bad == []
    assert (ev["se_action"], ev["page_title"]) == ("add    to    cart", "A    B")
    assert ev["page_url"] == "https://shop.example/a%20b?q=%C3%A9&t=%09"


def test_cloudfront_page_url_keeps_its_encoding():
    # a decoded space or non-ASCII letter is encoded again: the URL as the tracker sent it
    q = "e=pv&tv=js-3.0&p=web&url=https%3A%2F%2Fshop.example%2Fa%2520b%3Fq%3D%25C3%25A9"
    (ev,), bad = decode_hit(Hit(CLOUDFRONT, collector_tstamp=TS, method="GET", path="/i", query=q))
    assert bad == [] and ev["page_url"] == "https://shop.example/a%20b?q=%C3%A9"


# --- a lone surrogate escape in a tracker POST body (issue 12 item 6) -------------------------------

BODY = ('{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":['
        '{"e":"pv","tv":"js-3.0","p":"web","page":"bad \\udfff title","url":"https://ex.example/"},'
        '{"e":"pv","tv":"js-3.0","p":"web","page":"fine","url":"https://ex.example/b"}]}')


def tomcat_post_line(body: str) -> str:
    b64 = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return ("2024-05-01\t10:00:00\t-\t-\t192.0.2.1\tPOST\t-\t/com.snowplowanalytics.snowplow/tp2\t200\t-\t"
            "curl%2F8\t&cv=clj-1.1.0-tom-0.2.0&nuid=5a9b2f7c-8a8d-4b8e-9c1f-6f5f1e2d3c4b\t-\t-\t-\t"
            f"application%2Fjson\t{b64}\n")


def test_surrogate_in_post_body_becomes_replacement_character(tmp_path):
    src = tmp_path / "clj.log"
    src.write_text(tomcat_post_line(BODY))
    s = read_events(src)
    rows = s.to_table().to_pylist()
    assert [r["page_title"] for r in rows] == ["bad \ufffd title", "fine"]
    assert (s.stats.bad, s.stats.conversion_errors) == (0, 1)
    # events and convert print no traceback
    for args in (["events", str(src), "-o", str(tmp_path / "ev.jsonl")],
                 ["convert", str(src), "--to", "jsonl", "-o", str(tmp_path / "c.jsonl")]):
        p = subprocess.run([sys.executable, "-m", "logferry.cli", *args], capture_output=True, text=True)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "1 unconvertible values" in subprocess.run(
        [sys.executable, "-m", "logferry.cli", "events", str(src), "-o", str(tmp_path / "ev2.jsonl")],
        capture_output=True, text=True).stderr
    # ingest keeps the file's row and its events
    from logferry.usage.db import connect
    from logferry.usage.ingester import ingest

    con = connect(tmp_path / "u.duckdb")
    try:
        summary = ingest(con, [str(src)])
        assert [(f.status, f.records, f.bad_rows) for f in summary.files] == [("new", 1, 0)]
        titles = sorted(r[0] for r in con.execute("SELECT page_title FROM events").fetchall())
        assert titles == ["bad \ufffd title", "fine"]
    finally:
        con.close()
