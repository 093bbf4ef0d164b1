"""Fuzzing the Snowplow decoders: no crash, every input accounted for."""

from __future__ import annotations

import base64
import io
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import corpus
from logferry.compression import sniff as sniff_codec
from logferry.errors import InputError
from logferry.snowplow import Hit, decode_hit, parse_query, read_events
from logferry.snowplow.hits import CLOUDFRONT, THRIFT, TOMCAT
from logferry.snowplow.protocol import b64url_decode
from logferry.snowplow.thrift import iter_records

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

query_chars = st.text(alphabet="ae=&%25+?-_.:/xXpvA0123456789{}\"", max_size=120)
params = st.dictionaries(
    st.sampled_from(["e", "p", "aid", "tv", "ue_pr", "ue_px", "co", "cx", "dtm", "vid", "res", "se_va", "url", "tnuid"]),
    st.text(max_size=40),
    max_size=8,
)


def _check(events, bad):
    assert isinstance(events, list) and isinstance(bad, list)
    assert events or bad  # every hit gives an event or a bad reason
    for ev in events:
        assert ev["event"] in {"page_view", "page_ping", "struct", "unstruct", "transaction", "transaction_item", "ad_impression"}
    for r in bad:
        assert isinstance(r, str) and r


@FAST
@given(query_chars, st.sampled_from([CLOUDFRONT, TOMCAT, THRIFT]))
def test_query_strings(q, kind):
    parse_query(q)
    _check(*decode_hit(Hit(kind, collector_tstamp=0, method="GET", path="/i", query=q)))


@FAST
@given(params, st.sampled_from([CLOUDFRONT, TOMCAT, THRIFT]))
def test_tracker_parameters(p, kind):
    from urllib.parse import urlencode

    _check(*decode_hit(Hit(kind, method="GET", path="/i", query=urlencode(p))))


@FAST
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_base64_payloads(b):
    s = base64.urlsafe_b64encode(b).decode().rstrip("=")
    assert b64url_decode(s) == b
    # as a ue_px / cx parameter and as a Tomcat POST body
    _check(*decode_hit(Hit(CLOUDFRONT, method="GET", path="/i", query=f"e=ue&p=web&ue_px={s}&cx={s}")))
    _check(*decode_hit(Hit(TOMCAT, method="POST", path="/com.snowplowanalytics.snowplow/tp2", query="&cv=clj&nuid=-", body=s or "-")))
    _check(*decode_hit(Hit(TOMCAT, method="POST", path="/com.acme/v1", content_type="application%2Fjson", body=s or "-")))


@FAST
@given(st.text(max_size=60))
def test_invalid_base64_text(s):
    _check(*decode_hit(Hit(TOMCAT, method="POST", path="/com.snowplowanalytics.snowplow/tp2", body=s or "-")))
    _check(*decode_hit(Hit(CLOUDFRONT, method="GET", path="/i", query="e=ue&ue_px=" + s)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=12,
)


@FAST
@given(json_values)
def test_payload_data_shapes(v):
    body = json.dumps({"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": v})
    _check(*decode_hit(Hit(THRIFT, method="POST", path="/com.snowplowanalytics.snowplow/tp2", body=body)))
    _check(*decode_hit(Hit(THRIFT, method="POST", path="/com.vendor/v2", content_type="application/json", body=json.dumps(v))))


SEED = None


def _seed() -> bytes:
    global SEED
    if SEED is None:
        SEED = corpus("snowplow/enrich-2022/thrift/ThriftLoaderSpec_page_ping_get_SnowplowRawEvent.thrift.bin").read_bytes()
    return SEED


@FAST
@given(st.binary(max_size=300))
def test_thrift_random_bytes(b):
    out = list(iter_records(b))
    for raw, rec in out:
        assert isinstance(raw, bytes)
        assert isinstance(rec, str) or rec.hit is not None


@FAST
@given(st.integers(0, 4000), st.binary(min_size=1, max_size=8), st.integers(0, 1800))
@example(0, b"\x1f\x8b", 0)  # gzip magic over a raw record: a clear InputError
@example(0, b"\x1f\x8b\x08", 1000)
@example(0, b"#", 0)  # a record starting with "#" is no directive: a hit (here a bad one)
def test_thrift_mutated_records(pos, patch, cut):
    seed = _seed()
    pos %= len(seed)
    data = (seed[:pos] + patch + seed[pos + len(patch):])[: max(3, len(seed) - cut)]
    try:
        s = read_events(io.BytesIO(data))
        t = s.to_table()
    except InputError:
        # a mutation that writes compression magic (gzip, zstd...) over the first bytes
        # makes an undecodable "compressed" file: a clear error is the right answer
        assert sniff_codec(data) is not None
        return
    st_ = s.stats
    assert st_.hits >= 1 and st_.events == t.num_rows and st_.bad == len(s.bad_events)
    # every record (or text line) gave an event or a bad event
    seen = set(t.column("line_number").to_pylist()) | {b.line_number for b in s.bad_events}
    assert len(seen) == st_.hits
