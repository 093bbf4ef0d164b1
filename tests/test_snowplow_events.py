"""Snowplow tracker events decoded from real collector lines (shared corpus)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import logferry
from conftest import CORPUS, corpus
from logferry.snowplow import ingest_hook, parse_query, pct_decode, read_events
from logferry.snowplow.protocol import b64url_decode, fix_pcts

SNOW = CORPUS / "snowplow"
REPORTS = Path(__file__).resolve().parent.parent / "src/logferry/snowplow/reports"


def ts(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def events(rel: str):
    s = read_events(corpus(f"snowplow/{rel}"))
    rows = s.to_table().to_pylist()
    return rows, s


def one(rel: str) -> dict:
    rows, s = events(rel)
    assert len(rows) == 1 and s.stats.bad == 0, s.bad_events
    return rows[0]


# --- pure decoding ---------------------------------------------------------


def test_percent_decoding_fixes():
    assert fix_pcts("a%2520b") == "a%20b"
    assert pct_decode("Mozilla/5.0%2520(Windows%2520NT)", plus=False) == "Mozilla/5.0 (Windows NT)"
    assert pct_decode("Analytics%") == "Analytics"  # trailing cut escape dropped
    assert pct_decode("x%2") == "x"
    assert pct_decode("a+b%2Bc") == "a b+c"
    assert pct_decode("100%zz") == "100%zz"  # invalid escape kept literally
    assert pct_decode("%CE%A7") == "Χ"
    assert pct_decode("%FF") == "\ufffd"


def test_parse_query():
    assert parse_query("?e=pv&page=A%2520B&&x&=y&url=http%253A%252F%252Fa.b%252F") == [
        ("e", "pv"),
        ("page", "A B"),
        ("x", ""),
        ("url", "http://a.b/"),
    ]
    assert parse_query("-") == []
    assert parse_query("a=%2520", double=False) == [("a", "%20")]


def test_b64url():
    assert b64url_decode("am9obitzbWl0aA") == b"john+smith"
    assert b64url_decode("eyJhIjoxfQ==") == b'{"a":1}'
    assert b64url_decode("_-8") == b"\xff\xef"
    for bad in ("a", "ab$c", "abcde"):
        with pytest.raises(ValueError):
            b64url_decode(bad)


# --- CloudFront rows, 2012-2018 field sets ---------------------------------


def test_cloudfront_2012_page_view_double_encoded():
    rows, s = events("hive-etl-2013/PageViewTest1.line")
    assert s.stats.events == 2 and s.stats.bad == 0
    r = rows[0]
    assert r["event"] == "page_view"
    assert r["platform"] == "web"
    assert r["collector_tstamp"] == ts(2012, 5, 24, 11, 35, 53)
    assert r["page_title"] == "Tarot cards - Psychic Bazaar"
    assert r["page_url"] == "http://www.psychicbazaar.com/2-tarot-cards/genre/all/type/all?p=5"
    assert r["page_referrer"] == "http://www.psychicbazaar.com/2-tarot-cards/genre/all/type/all?p=4"
    assert r["useragent"] == "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:12.0) Gecko/20100101 Firefox/12.0"
    assert r["user_ipaddress"] == "99.116.172.58"
    assert r["domain_userid"] == "288112e0a5003be2"
    assert (r["dvce_screenwidth"], r["dvce_screenheight"]) == (1366, 768)
    assert r["br_features_pdf"] is True and r["br_features_quicktime"] is False
    assert r["v_collector"] == "cloudfront" and r["line_number"] == 1
    assert rows[1]["user_ipaddress"] == "74.125.17.210" and rows[1]["line_number"] == 2


def test_cloudfront_aug2013_trailing_percent_and_device_time():
    r = one("spark-enrich/Aug2013CfLineSpec.line")
    assert r["event"] == "page_view"
    assert r["app_id"] == "snowplowweb"
    assert r["name_tracker"] == "main"
    assert r["v_tracker"] == "js-0.12.0"
    assert r["page_title"] == "Introduction - Snowplow Analytics%"
    assert r["dvce_created_tstamp"] == ts(2013, 8, 29, 0, 19, 17, 970000)
    assert r["collector_tstamp"] == ts(2013, 8, 29, 0, 18, 48)
    assert r["os_timezone"] == "America/Los_Angeles"
    assert r["page_referrer"].startswith("http://www.metacrawler.com/search/web?fcoid=417")
    assert (r["br_viewwidth"], r["br_viewheight"]) == (1024, 635)


def test_cloudfront_2016_and_2018_field_sets():
    r = one("spark-enrich/Jan2018CfLineSpec.line")  # 26 fields
    assert r["event"] == "page_view" and r["platform"] == "srv" and r["app_id"] == "sp"
    assert r["event_id"] == "2e9069a1-3f11-4770-b549-d8531c9f612e"
    assert r["v_tracker"] == "rb-0.5.2" and r["useragent"] == "Ruby"
    assert r["collector_tstamp"] == ts(2017, 9, 26, 10, 55, 55)
    assert r["dvce_created_tstamp"] == ts(2017, 9, 26, 10, 55, 55, 307000)
    r = one("spark-enrich/Sep2016CfLineSpec.line")  # 24 fields
    assert r["event"] == "page_view" and r["v_tracker"] == "rb-0.5.2"
    rows, s = events("enrich-2022/CloudfrontLoaderSpec.valid.line")
    assert [r["event"] for r in rows] == ["page_view", "page_view", "page_ping", "page_view"]
    assert rows[1]["useragent"] == (
        "Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/31.0.1650.57 Safari/537.36"
    )
    assert rows[1]["os_timezone"] == "Asia/Shanghai"
    assert rows[3]["event_id"] == "e3793bd1-fcf5-4fbb-bf4c-f0315a5821c3"
    assert rows[3]["name_tracker"] == "sb-cf-pv"
    assert rows[3]["collector_tstamp"] == ts(2016, 7, 1, 13, 17, 26)


def test_cloudfront_struct_transaction_and_items():
    r = one("spark-enrich/StructEventCfLineSpec.line")
    assert r["event"] == "struct"
    assert (r["se_category"], r["se_action"], r["se_label"], r["se_property"]) == (
        "ecomm", "add-to-basket", "Χαριτίνη", "1",
    )  # fmt: skip
    assert r["se_value"] == pytest.approx(35708.23)
    r = one("spark-enrich/TransactionCfLineSpec.line")
    assert r["event"] == "transaction" and r["tr_orderid"] == "order-123"
    assert r["tr_affiliation"] == "psychicbazaar"
    assert (r["tr_total"], r["tr_tax"], r["tr_shipping"]) == (8000.0, 200.0, 50.0)
    assert (r["tr_city"], r["tr_state"], r["tr_country"]) == ("London", "England", "UK")
    r = one("spark-enrich/TransactionItemCfLineSpec.line")
    assert r["event"] == "transaction_item"
    assert (r["ti_orderid"], r["ti_sku"], r["ti_name"], r["ti_category"]) == (
        "order-123", "PBZ1001", "Blue t-shirt", "APPAREL",
    )  # fmt: skip
    assert (r["ti_price"], r["ti_quantity"]) == (2000.0, 2)
    r = one("spark-enrich/CurrencyConversionTransactionSpec.line")
    assert r["tr_currency"] == "USD" and r["v_collector"] == "clj-0.3.0-tom-0.0.2"


def test_legacy_rows_without_event_type():
    r = one("hive-etl-2013/NoEventTypeTest.line")
    assert r["event"] == "page_view" and r["page_title"] == "Tarot cards - Psychic Bazaar"
    r = one("hive-etl-2013/StructEventTest.line")  # e=ev, ev_* names
    assert r["event"] == "struct" and r["se_category"] == "Mixes" and r["se_label"] == "MRC/fabric-0503-mix"
    r = one("hive-etl-2013/UriStemTest.line".replace("UriStemTest", "UriFallbackTest"))
    assert r["event"] == "struct" and r["collector_path"] == "/ice.png"
    assert r["page_url"] == "https://test.psybazaar.com/shop/checkout/"  # from the collector Referer
    r = one("hive-etl-2013/IpOverrideTest.line")
    assert r["user_ipaddress"] == "201.211.231.241"
    r = one("hive-etl-2013/TabTest.line")
    assert r["page_title"] == "    TEST PAGE    "  # tabs: four spaces, as Snowplow's enrichment writes them


def test_unstruct_and_contexts():
    r = one("spark-enrich/UnstructEventCfLineSpec.line")
    assert r["event"] == "unstruct"
    assert r["unstruct_event_schema"] == (
        "iglu:com.snowplowanalytics.snowplow.input-adapters/segment_webhook_config/jsonschema/1-0-0"
    )
    data = json.loads(r["unstruct_event_data"])
    assert data["vendor"] == "Χαριτίνη NEW Unicode test"
    assert data["name"] == "alex+test@snowplowanalytics.com"
    r64 = one("spark-enrich/UnstructEventBase64CfLineSpec.line")
    assert r64["unstruct_event_schema"] == r["unstruct_event_schema"]
    assert json.loads(r64["unstruct_event_data"])["vendor"] == data["vendor"]
    r = one("spark-enrich/LateOct2013CfLineSpec.line")  # co, double-encoded
    ctx = json.loads(r["contexts"])
    assert ctx[0]["schema"] == "iglu:com.snowplowanalytics.snowplow/uri_redirect/jsonschema/1-0-0"
    assert ctx[0]["data"]["uri"] == "http://snowplowanalytics.com/"
    r = one("spark-enrich/WebDistributionLoaderSpec.line")  # cx, legacy plain JSON
    assert json.loads(r["contexts"]) == {"page": {"url": "blog"}}


# --- Clojure collector (Tomcat) ----------------------------------------------


def test_tomcat_get_and_tnuid():
    r = one("spark-enrich/CljTomcatTp1TnuidSpec.line")
    assert r["event"] == "page_view"
    assert r["network_userid"] == "a3923850-5a06-11e4-8ed6-0800200c9a66"
    assert r["v_collector"] == "clj-0.5.0-tom-0.0.4"
    assert r["useragent"] == (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_6_8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/31.0.1650.8 Safari/537.36"
    )
    assert r["collector_tstamp"] == ts(2013, 10, 7, 19, 47, 54)
    r = one("hive-etl-2013/UserIdsTest.line")
    assert r["user_id"] == "alex@snowplowanalytics.com"
    assert r["network_userid"] == "7fc17b64-b202-46e4-8d3a-4d144edf2b23"
    assert r["useragent"] == "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:16.0) Gecko/20100101 Firefox/16.0"


def test_tomcat_post_tp2_several_events():
    rows, s = events("spark-enrich/CljTomcatTp2MultiEventsSpec.line")
    assert s.stats.hits == 1 and s.stats.events == 3 and s.stats.bad == 0
    assert [r["event"] for r in rows] == ["page_view", "struct", "struct"]
    assert all(r["line_number"] == 1 for r in rows)
    assert rows[0]["event_id"] == "a91a31bc-593b-481f-869a-9d822000ee86"
    assert rows[0]["page_url"] == "http://www.example.com"
    assert rows[0]["platform"] == "pc" and rows[0]["v_tracker"] == "py-0.5.0"
    assert rows[0]["dvce_created_tstamp"] == ts(2014, 9, 8, 13, 58, 56, 783000)
    assert (rows[1]["se_category"], rows[1]["se_action"]) == ("my_category", "my_action")
    assert (rows[2]["se_category"], rows[2]["se_action"]) == ("another_category", "another_action")
    for r in rows:
        assert r["collector_tstamp"] == ts(2014, 9, 8, 13, 58, 56)
        assert r["network_userid"] == "f732d278-120e-4ab6-845b-c1f11cd85dc7"
        assert r["useragent"] == "python-requests/2.2.1 CPython/3.3.5 Linux/3.2.0-61-generic"
        assert r["v_collector"] == "clj-0.7.0-tom-0.1.0"
        assert r["user_ipaddress"] == "37.157.33.178"


@pytest.mark.parametrize(
    "rel, app, schema, key, value",
    [
        ("CljTomcatMailchimpEventSpec", "email", "iglu:com.mailchimp/subscribe/jsonschema/1-0-0", ("data", "email"), "agentsmith@snowplowtest.com"),
        ("CljTomcatPagerdutyEventSpec", "crons", "iglu:com.pagerduty/incident_resolve/jsonschema/1-0-0", ("data", "incident", "id"), "P850PWC"),
        ("CljTomcatSendgridEventSpec", "email", "iglu:com.sendgrid/processed/jsonschema/3-0-0", ("email",), "example@test.com"),
        ("CljTomcatPingdomEventSpec", "uptime", "iglu:com.pingdom/incident_assign/jsonschema/1-0-0", ("message", "checkname"), "Webhooks_Test"),
        ("CljTomcatCallrailEventSpec", "bnb", "iglu:com.callrail/call_complete/jsonschema/1-0-0", ("callercity",), "BAKERSFIELD"),
        ("CljTomcatHubspotEventSpec", "email", "iglu:com.hubspot/contact_creation/jsonschema/1-0-0", ("portalId",), 4737818),
        ("CljTomcatStatusGatorEventSpec", None, "iglu:com.statusgator/status_change/jsonschema/1-0-0", ("current_status",), "warn"),
    ],
)
def test_webhooks(rel, app, schema, key, value):
    rows, s = events(f"spark-enrich/{rel}.line")
    assert s.stats.bad == 0 and len(rows) >= 1
    r = rows[0]
    assert r["event"] == "unstruct" and r["platform"] == "srv" and r["app_id"] == app
    assert r["unstruct_event_schema"] == schema
    d = json.loads(r["unstruct_event_data"])
    for k in key:
        d = d[k]
    assert d == value


def test_webhook_mailgun_form_and_multipart():
    rows, s = events("spark-enrich/CljTomcatMailgunEventSpec.line")
    assert [r["unstruct_event_schema"] for r in rows] == [
        "iglu:com.mailgun/delivered/jsonschema/1-0-0",
        "iglu:com.mailgun/dropped/jsonschema/1-0-0",
    ]
    assert rows[0]["network_userid"] == "856c2ed4-addc-45f5-bfe3-027256cf0057"
    assert json.loads(rows[1]["unstruct_event_data"])["Message-Id"].startswith("<20130503192659")


# --- bad events --------------------------------------------------------------


@pytest.mark.parametrize(
    "rel, reasons",
    [
        ("spark-enrich/BadTrackerCfLinesSpec.line", ["unknown platform: mobile", "unknown event type: lol", "unknown event type: lol; invalid JSON in ue_px (after base64)"]),
        ("spark-enrich/CorruptedCfLinesSpec.line", ["row matches no format: no valid date and time in the first two fields"]),
        ("spark-enrich/InvalidCfLinesSpec.line", ["row matches no format: 2 fields, a collector row has at least 12", "row matches no format: 7 fields, a collector row has at least 12"]),
        ("enrich-2022/CloudfrontLoaderSpec.invalid_post.line", ["CloudFront collector rows must be GET requests, not POST"]),
        ("enrich-2022/CljTomcatLoaderSpec.invalid.line", ["request body on a GET request (only POSTs carry a body)", "not a tracker path: /com.sendgrid-api-v3"]),
        ("enrich-2022/CloudfrontAccessLogAdapterSpec.invalid.line", ["row matches no format: 3 fields, a collector row has at least 12", "row matches no format: no valid date and time in the first two fields"]),
        ("hive-etl-2013/BadRowTest.line", ["row matches no format: 2 fields, a collector row has at least 12", "row matches no format: 7 fields, a collector row has at least 12"]),
    ],
)
def test_bad_event_reasons(rel, reasons):
    rows, s = events(rel)
    assert rows == []
    assert [b.reason for b in s.bad_events] == reasons
    assert all(b.raw.strip() for b in s.bad_events)
    assert s.stats.bad == len(reasons)


def test_master_file_every_line_accounted_for():
    rows, s = events("spark-enrich/MasterCfSpec.line")
    st = s.stats
    assert (st.lines, st.directives, st.blank, st.hits) == (25, 2, 1, 22)
    # line 8 (/not-ice.png) is ordinary traffic: a CloudFront access-log event
    assert (st.events, st.bad) == (16, 6)
    good_lines = {r["line_number"] for r in rows}
    bad_lines = {b.line_number for b in s.bad_events}
    assert good_lines | bad_lines == set(range(1, 26)) - {5, 24, 25}
    assert not good_lines & bad_lines
    assert [b.line_number for b in s.bad_events] == [1, 2, 3, 4, 6, 7]
    (access,) = [r for r in rows if r["line_number"] == 8]
    assert access["unstruct_event_schema"] == "iglu:com.amazon.aws.cloudfront/wd_access_log/jsonschema/1-0-0"


def _all_snowplow_files():
    return sorted(p for p in SNOW.rglob("*") if p.is_file() and p.suffix in (".line", ".bin", ".b64"))


def test_every_corpus_file_read_and_accounted_for():
    files = _all_snowplow_files()
    if not files:
        pytest.skip("Snowplow corpus not available")
    assert len(files) >= 80
    total_events = 0
    for p in files:
        s = read_events(p)
        rows = s.to_table().to_pylist()
        st = s.stats
        assert st.hits == st.lines - st.directives - st.blank, p
        lines = {r["line_number"] for r in rows} | {b.line_number for b in s.bad_events}
        assert len(lines) == st.hits, p  # every data line gave an event or a bad event
        assert st.events == len(rows) and st.bad == len(s.bad_events)
        for r in rows:
            assert r["event"] in {"page_view", "page_ping", "struct", "unstruct", "transaction", "transaction_item"}
            assert r["collector_tstamp"] is not None, p
        total_events += len(rows)
    assert total_events == 111  # 102 tracker events + 9 CloudFront access-log events


# --- usage database hook and reports ------------------------------------------


def test_ingest_hook_on_raw_reader_batches():
    con = duckdb.connect()
    added = 0
    for i, rel in enumerate(
        [
            "spark-enrich/MasterCfSpec.line",
            "spark-enrich/CljTomcatTp2MultiEventsSpec.line",
            "spark-enrich/CljTomcatMailchimpEventSpec.line",
            "enrich-2022/thrift/beam_IpLookupsEnrichmentSpec_screen_view_CollectorPayload.thrift.bin",
        ]
    ):
        for batch in logferry.read(corpus(f"snowplow/{rel}")):
            added += ingest_hook(con, batch, i + 1)
    assert added == 15 + 3 + 1 + 1
    got = con.sql("SELECT event, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
    assert dict(got) == {"page_ping": 6, "page_view": 5, "struct": 3, "transaction": 1, "transaction_item": 1, "unstruct": 4}
    assert con.sql("SELECT count(*) FROM events WHERE file_id = 2").fetchall()[0][0] == 3
    bad = con.sql("SELECT line_number, reason FROM bad_events ORDER BY line_number").fetchall()
    assert bad == [(1, "unknown platform: mobile"), (2, "unknown event type: lol"), (3, "unknown event type: lol; invalid JSON in ue_px (after base64)")]
    # line 8 (/not-ice.png) is ordinary traffic for the usage database, not a bad event
    # the reports are plain SELECTs over events
    counts = con.sql((REPORTS / "event_counts.sql").read_text()).fetchall()
    assert sum(c[3] for c in counts) == 20
    assert ("2014-09-08", "(none)", "struct", 2) in [(str(d), a, e, n) for d, a, e, n in counts]
    top = con.sql((REPORTS / "top_pages.sql").read_text()).fetchall()
    assert top[0][1] >= 1
    rows = con.sql((REPORTS / "unstruct_schemas.sql").read_text()).to_arrow_table().to_pylist() if hasattr(duckdb.DuckDBPyRelation, "to_arrow_table") else con.sql((REPORTS / "unstruct_schemas.sql").read_text()).fetch_arrow_table().to_pylist()
    schemas = {r["schema"]: r["events"] for r in rows}
    assert schemas["iglu:com.mailchimp/subscribe/jsonschema/1-0-0"] == 1
    assert schemas["iglu:com.snowplowanalytics.snowplow/screen_view/jsonschema/1-0-0"] == 1


def test_ingest_hook_ignores_other_formats():
    con = duckdb.connect()
    p = corpus("aws-cloudfront-docs")
    n = 0
    for f in sorted(p.iterdir()):
        try:
            for batch in logferry.read(f):
                n += ingest_hook(con, batch, 1)
        except logferry.LogferryError:
            continue
    assert n == 0
    assert con.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'").fetchall()[0][0] == 0


# --- CLI -------------------------------------------------------------------------


def test_events_cli_jsonl_and_parquet(tmp_path):
    from logferry.cli import app

    out = tmp_path / "ev.jsonl"
    bad = tmp_path / "bad.jsonl"
    src = str(corpus("snowplow/spark-enrich/MasterCfSpec.line"))
    r = CliRunner().invoke(app, ["events", src, "-o", str(out), "--bad-rows", str(bad)])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 16
    assert lines[0]["v_tracker"] == "com.amazon.aws.cloudfront/wd_access_log"  # line 8
    assert lines[1]["event"] == "page_view" and lines[1]["collector_tstamp"] == "2013-08-29T00:18:48Z"
    assert len(bad.read_text().splitlines()) == 6
    pq_out = tmp_path / "ev.parquet"
    r = CliRunner().invoke(app, ["events", src, "--to", "parquet", "-o", str(pq_out)])
    assert r.exit_code == 0, r.output
    import pyarrow.parquet as pq

    t = pq.read_table(pq_out)
    assert t.num_rows == 16 and "se_category" in t.column_names
