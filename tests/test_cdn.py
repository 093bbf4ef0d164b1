"""CDN transaction logs (Qwilt-style): cdn-tsv and cdn-json readers."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest

import logferry
from conftest import corpus
from logferry.formats.cdn import CDN_FIELDS, CDN_FIELDS_SP

UTC = dt.UTC
TSV = "spec-examples/20230413-181700.example-service.03495.log.gz"
JSONL = "spec-examples/20230413-181700.example-service.03496.log.gz"


def read_all(path, **kw):
    s = logferry.read(path, **kw)
    rows = [r for b in s for r in b.to_pylist()]
    return s, rows


def sample_lines(rel: str) -> list[str]:
    return gzip.decompress(corpus(rel).read_bytes()).decode().splitlines()


# --- the documented field order -----------------------------------------------------------


def test_field_order_is_data():
    assert len(CDN_FIELDS) == 50
    assert CDN_FIELDS[:3] == ("startTime", "startTimeEpochMilli", "durationMilli")
    assert CDN_FIELDS[-2:] == ("SSL-Cipher", "uri")
    assert CDN_FIELDS_SP[-2:] == ("downstreamSystemId", "upstreamSystemId")
    assert len(set(CDN_FIELDS)) == 50
    # the sample's JSON keys are exactly the documented order
    keys = list(json.loads(sample_lines(JSONL)[0]))
    assert tuple(keys) == CDN_FIELDS


# --- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rel", "fmt"), [(TSV, "cdn-tsv"), (JSONL, "cdn-json")])
def test_detect_samples(rel, fmt):
    det = logferry.detect(corpus(rel))
    assert det.format == fmt
    assert det.confidence >= 0.9
    assert det.compression == "gzip"
    others = [c for n, c in det.candidates if n != fmt]
    assert all(det.confidence - c >= 0.1 for c in others), det.candidates


def test_detect_does_not_depend_on_the_file_name(tmp_path):
    for rel, fmt in [(TSV, "cdn-tsv"), (JSONL, "cdn-json")]:
        p = tmp_path / "whatever.txt"
        p.write_bytes(gzip.decompress(corpus(rel).read_bytes()))
        assert logferry.detect(p).format == fmt


# --- values from the samples -------------------------------------------------------------


def check_sample_rows(rows):
    assert len(rows) == 3
    r1, r2, r3 = rows
    assert r1["timestamp"] == dt.datetime(2023, 4, 13, 18, 17, 2, 883000, tzinfo=UTC)
    assert r1["client_ip"] == "$0:1$7PLOwpcQM7p789G4pWAw3+KvaPA="  # obfuscated, kept
    assert r1["client_port"] == 49222
    assert (r1["server_ip"], r1["server_port"]) == ("211.94.171.32", 443)
    assert r1["site"] == "c7081-acme-live"
    assert (r1["host"], r1["path"], r1["query"]) == ("qb1.my-cdn.com", "/some/path/seg-1.mp4", None)
    assert (r1["method"], r1["protocol"], r1["status"]) == ("GET", "HTTP/1.1", 200)
    assert (r1["bytes_sent"], r1["bytes_received"]) == (853222, 853393)
    assert (r1["duration_ms"], r1["ttfb_ms"]) == (52.0, 300.0)
    assert r1["user_agent"].startswith("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X)")
    assert r1["referer"] == "https://www.geeksforgeeks.org/"
    assert (r1["cache_status"], r1["edge_location"]) == ("hit", "UK")
    assert r1["request_id"] == "10000000397c92e9-88108992-592"
    assert r1["line_number"] == 1

    assert r2["timestamp"] == dt.datetime(2023, 4, 13, 18, 17, 3, 120000, tzinfo=UTC)
    assert (r2["client_ip"], r2["client_port"]) == ("203.0.113.7", 51514)
    assert (r2["status"], r2["bytes_sent"], r2["bytes_received"]) == (503, 795, 0)
    assert (r2["duration_ms"], r2["ttfb_ms"]) == (640.0, 610.0)
    assert (r2["user_agent"], r2["referer"]) == ("curl/8.4.0", None)
    assert (r2["cache_status"], r2["edge_location"]) == ("miss", "DE")
    assert r2["path"] == "/live/index.m3u8"

    assert r3["timestamp"] == dt.datetime(2023, 4, 13, 18, 17, 4, 1000, tzinfo=UTC)
    assert (r3["method"], r3["protocol"], r3["status"]) == ("HEAD", "HTTP/2", 403)
    assert (r3["server_ip"], r3["server_port"]) == (None, None)  # "-" is null
    assert (r3["user_agent"], r3["cache_status"], r3["request_id"]) == (None, None, None)
    assert (r3["edge_location"], r3["duration_ms"]) == ("FR", 0.0)
    assert r3["line_number"] == 3


def test_tsv_sample_values():
    s, rows = read_all(corpus(TSV))
    assert s.format == "cdn-tsv"
    assert (s.stats.lines, s.stats.records, s.stats.bad, s.stats.conversion_errors) == (3, 3, 0, 0)
    check_sample_rows(rows)
    f = rows[1]["fields"]
    assert f["requestRange"] == "bytes=0-1023"
    assert f["originHostNames"] == "origin1.com,origin2.com,origin3.com"
    assert f["httpMethod"] == "get"  # raw text kept
    assert rows[2]["fields"]["serverIp"] == "-"
    assert list(f) == list(CDN_FIELDS)


def test_json_sample_values_match_tsv():
    s, rows = read_all(corpus(JSONL))
    assert s.format == "cdn-json"
    assert (s.stats.lines, s.stats.records, s.stats.bad, s.stats.conversion_errors) == (3, 3, 0, 0)
    check_sample_rows(rows)
    _, tsv_rows = read_all(corpus(TSV))
    canon = list(logferry.CANONICAL)
    assert [[r[c] for c in canon] for r in rows] == [[r[c] for c in canon] for r in tsv_rows]
    assert rows[0]["fields"]["startTimeEpochMilli"] == "1681409822883"
    assert rows[0]["fields"]["fetchedBytes"] == "853393"


# --- field-selected exports -----------------------------------------------------------------

CUSTOM = ["startTimeEpochMilli", "clientIp", "httpMethod", "uri", "httpResponseCode", "sentBytes", "CacheStatus"]


def write_custom(tmp_path):
    p = tmp_path / "custom.tsv"
    p.write_text(
        "1700000000123\t192.0.2.1\tpost\thttps://cdn.example.org/a/b.ts?token=x%20y&n=1\t206\t1024\tmiss\n"
        "1700000001000\t2001:db8::1\tget\t/rel/path\t-\t-\texpired\n"
    )
    return p


@pytest.mark.parametrize("fields", [CUSTOM, ",".join(CUSTOM)])
def test_custom_field_order(tmp_path, fields):
    p = write_custom(tmp_path)
    s, rows = read_all(p, format="cdn-tsv", options={"fields": fields})
    assert (s.stats.records, s.stats.bad) == (2, 0)
    a, b = rows
    assert a["timestamp"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert (a["client_ip"], a["method"], a["status"], a["bytes_sent"]) == ("192.0.2.1", "POST", 206, 1024)
    assert (a["host"], a["path"], a["query"]) == ("cdn.example.org", "/a/b.ts", "token=x%20y&n=1")
    assert a["cache_status"] == "miss"
    assert a["site"] is None and a["duration_ms"] is None
    assert list(a["fields"]) == CUSTOM
    assert (b["client_ip"], b["host"], b["path"], b["status"], b["bytes_sent"]) == (
        "2001:db8::1", None, "/rel/path", None, None,
    )
    assert b["timestamp"] == dt.datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC)


def test_custom_order_without_option_is_bad_rows_with_a_hint(tmp_path):
    p = write_custom(tmp_path)
    s, _ = read_all(p, format="cdn-tsv")
    assert (s.stats.records, s.stats.bad) == (0, 2)
    assert "7 tab-separated fields, expected 50" in s.bad_rows[0].reason
    assert "fields" in s.bad_rows[0].reason


def test_header_line_sets_the_order_and_is_a_directive(tmp_path):
    p = tmp_path / "with-header.tsv"
    p.write_text("\t".join(CUSTOM) + "\n" + write_custom(tmp_path).read_text())
    s, rows = read_all(p, format="cdn-tsv")
    assert (s.stats.lines, s.stats.directives, s.stats.records, s.stats.bad) == (3, 1, 2, 0)
    assert [r["line_number"] for r in rows] == [2, 3]
    assert rows[0]["status"] == 206


def test_start_time_fallback_is_day_month_year(tmp_path):
    p = tmp_path / "st.tsv"
    p.write_text("13-04-23 18:17:02.883\t203.0.113.9\n31-12-24 23:59:59.5\t-\n32-13-24 99:00:00\tx\n")
    s, rows = read_all(p, format="cdn-tsv", options={"fields": ["startTime", "clientIp"]})
    assert [r["timestamp"] for r in rows] == [
        dt.datetime(2023, 4, 13, 18, 17, 2, 883000, tzinfo=UTC),
        dt.datetime(2024, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        None,
    ]
    assert s.stats.conversion_errors == 1
    assert rows[1]["client_ip"] is None


def test_bad_fields_option():
    with pytest.raises(logferry.ConfigError):
        list(logferry.read(corpus(TSV), format="cdn-tsv", options={"fields": ["a", "a"]}))
    with pytest.raises(logferry.ConfigError):
        list(logferry.read(corpus(TSV), format="cdn-tsv", options={"fields": ""}))


def test_service_provider_layout_preset(tmp_path):
    line = sample_lines(TSV)[1].split("\t")
    sp = line[:-1] + ["sys-down-7", "sys-up-9"]
    p = tmp_path / "sp.tsv"
    p.write_text("\t".join(sp) + "\n")
    s, _ = read_all(p, format="cdn-tsv")
    assert (s.stats.records, s.stats.bad) == (0, 1)  # 51 fields are not the default layout
    s, rows = read_all(p, format="cdn-tsv", options={"fields": "service-provider"})
    assert (s.stats.records, s.stats.bad) == (1, 0)
    assert rows[0]["fields"]["upstreamSystemId"] == "sys-up-9"
    assert rows[0]["status"] == 503 and rows[0]["path"] is None


# --- bad rows ----------------------------------------------------------------------------------


def test_tsv_mangled_copy_exact_bad_rows(tmp_path):
    l1, l2, l3 = sample_lines(TSV)
    cols = l3.split("\t")
    status_garbage = "\t".join([*cols[:10], "abc", *cols[11:]])
    lines = [
        l1,
        l2.replace("\t", " ", 1),  # one separator lost: 49 fields
        "",
        l3 + "\textra",  # 51 fields
        "hello world",
        status_garbage,  # converts with a null status, still a record
        l1[:40],  # truncated
    ]
    p = tmp_path / "mangled.log.gz"
    p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    s, rows = read_all(p, format="cdn-tsv")
    assert (s.stats.lines, s.stats.blank, s.stats.records, s.stats.bad) == (7, 1, 2, 4)
    assert [r["line_number"] for r in rows] == [1, 6]
    assert [b.line_number for b in s.bad_rows] == [2, 4, 5, 7]
    assert s.bad_rows[0].reason.startswith("49 tab-separated fields, expected 50")
    assert s.bad_rows[1].reason.startswith("51 tab-separated fields")
    assert s.bad_rows[2].raw == "hello world"
    assert rows[1]["status"] is None and rows[1]["client_ip"] == "198.51.100.77"
    assert s.stats.conversion_errors == 1
    assert logferry.detect(p).format == "cdn-tsv"


def test_json_mangled_copy_exact_bad_rows(tmp_path):
    l1, l2, l3 = sample_lines(JSONL)
    obj = json.loads(l2)
    obj["httpResponseCode"] = "x"
    obj["myExtra"] = {"a": 1}
    lines = [
        l1,
        l2[:100],  # truncated
        "[1, 2, 3]",
        '{"foo": 1}',
        "   ",
        json.dumps(obj),
        '{"clientIp": "192.0.2.44", "uri": "http://h.example/x?y=1"}',
        l3,
    ]
    p = tmp_path / "mangled.json"
    p.write_text("\n".join(lines) + "\n")
    s, rows = read_all(p, format="cdn-json")
    assert (s.stats.lines, s.stats.blank, s.stats.records, s.stats.bad) == (8, 1, 4, 3)
    assert [r["line_number"] for r in rows] == [1, 6, 7, 8]
    assert [b.line_number for b in s.bad_rows] == [2, 3, 4]
    assert "not valid JSON" in s.bad_rows[0].reason
    assert "not an object" in s.bad_rows[1].reason
    assert "without any CDN" in s.bad_rows[2].reason
    r6, r7 = rows[1], rows[2]
    assert r6["status"] is None and s.stats.conversion_errors == 1
    assert r6["fields"]["myExtra"] == '{"a":1}'
    assert (r7["client_ip"], r7["host"], r7["path"], r7["query"]) == ("192.0.2.44", "h.example", "/x", "y=1")
    assert r7["timestamp"] is None
