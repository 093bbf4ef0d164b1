"""Snowplow raw Thrift records: CollectorPayload, SnowplowRawEvent, framings."""

from __future__ import annotations

import base64
import gzip
import io
import json
import struct
from datetime import UTC, datetime

import pytest

import logferry
from conftest import corpus
from logferry.errors import MissingExtraError
from logferry.snowplow import read_events
from logferry.snowplow.thrift import BLOCK_MARKER, decode_one, iter_records

T = "snowplow/enrich-2022/thrift/"
CP = T + "beam_IpLookupsEnrichmentSpec_screen_view_CollectorPayload"
PING = T + "ThriftLoaderSpec_page_ping_get_SnowplowRawEvent"
STRUCT = T + "beam_EnrichSpec_struct_event_SnowplowRawEvent"


def raw(name: str) -> bytes:
    return corpus(name + ".thrift.bin").read_bytes()


def test_collector_payload_fields():
    rec = decode_one(raw(CP))
    assert not isinstance(rec, str)
    f = rec.fields
    assert rec.struct == "CollectorPayload"
    assert f["schema"] == "iglu:com.snowplowanalytics.snowplow/CollectorPayload/thrift/1-0-0"
    assert f["ipAddress"] == "37.228.225.32"
    assert f["timestamp"] == "1527004637653"
    assert f["collector"] == "ssc-0.13.0-stdout$"
    assert f["path"] == "/com.snowplowanalytics.snowplow/tp2"
    assert f["contentType"] == "application/json"
    assert f["networkUserId"] == "10d96bc7-e400-4b29-8a41-6911ad00ee98"
    assert f["headers"].split("\n")[1] == "User-Agent: curl/7.50.3"


def test_collector_payload_event():
    s = read_events(corpus(CP + ".thrift.bin"))
    (r,) = s.to_table().to_pylist()
    assert r["event"] == "unstruct" and r["platform"] == "web"
    assert r["unstruct_event_schema"] == "iglu:com.snowplowanalytics.snowplow/screen_view/jsonschema/1-0-0"
    assert json.loads(r["unstruct_event_data"]) == {"name": "hello from Snowplow"}
    assert r["collector_tstamp"] == datetime(2018, 5, 22, 15, 57, 17, 653000, tzinfo=UTC)
    assert r["useragent"] == "curl/7.50.3" and r["user_ipaddress"] == "37.228.225.32"
    assert r["v_collector"] == "ssc-0.13.0-stdout$" and r["v_tracker"] == "tracker_version"
    assert r["network_userid"] == "10d96bc7-e400-4b29-8a41-6911ad00ee98"


def test_snowplow_raw_event_page_ping_and_struct():
    (r,) = read_events(corpus(PING + ".thrift.bin")).to_table().to_pylist()
    assert r["event"] == "page_ping" and r["platform"] == "mob" and r["app_id"] == "CFe23a"
    assert r["collector_tstamp"] == datetime(2014, 1, 28, 19, 22, 20, 40000, tzinfo=UTC)
    assert r["dvce_created_tstamp"] == datetime(2014, 1, 28, 19, 22, 18, 855000, tzinfo=UTC)
    assert r["page_title"] == "Asynchronous website/webapp examples for snowplow.js"
    assert r["user_id"] == "alex 123" and r["user_ipaddress"] == "10.0.2.2"
    assert r["useragent"] == "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:26.0) Gecko/20100101 Firefox/26.0"
    assert json.loads(r["contexts"])["user"] == {"user_type": "tester"}
    assert (r["pp_xoffset_min"], r["pp_yoffset_max"]) == (0, 0)
    (r,) = read_events(corpus(STRUCT + ".thrift.bin")).to_table().to_pylist()
    assert r["event"] == "struct" and r["se_category"] == "Mixes" and r["se_action"] == "Play"
    assert r["se_value"] == 0.0 and r["v_collector"] == "ssc-0.1.0-stdout"


@pytest.mark.parametrize(
    "name, reason",
    [
        ("ThriftLoaderSpec_parameterless_SnowplowRawEvent", "no tracker parameters (empty query string)"),
        ("ThriftLoaderSpec_tolerate_fake_tp_get_params_SnowplowRawEvent", "missing event type (no e parameter)"),
        ("ThriftLoaderSpec_unstruct_event_get_SnowplowRawEvent", "unstruct event JSON is not self-describing (no schema)"),
    ],
)
def test_bad_thrift_events(name, reason):
    s = read_events(corpus(T + name + ".thrift.bin"))
    assert s.to_table().num_rows == 0
    assert [b.reason for b in s.bad_events] == [reason]
    assert base64.b64decode(s.bad_events[0].raw) == raw(T + name)


def test_b64_files_are_the_same_records():
    for name in (CP, PING, STRUCT):
        a = read_events(corpus(name + ".thrift.bin")).to_table()
        b = read_events(corpus(name + ".b64")).to_table()
        assert a.drop_columns(["source_file"]).equals(b.drop_columns(["source_file"]))
        assert logferry.detect(corpus(name + ".b64")).format == "snowplow-thrift"
        assert logferry.detect(corpus(name + ".thrift.bin")).format == "snowplow-thrift"


def _all() -> list[bytes]:
    return [raw(n) for n in (CP, PING, STRUCT)]


def test_s3_loader_gzip_framing(tmp_path):
    p = tmp_path / "part-0001.gz"
    p.write_bytes(gzip.compress(b"".join(r + b"\n" for r in _all())))
    s = read_events(p)
    rows = s.to_table().to_pylist()
    assert [r["event"] for r in rows] == ["unstruct", "page_ping", "struct"]
    assert [r["line_number"] for r in rows] == [1, 2, 3]
    assert s.stats.hits == 3 and s.stats.bad == 0
    st = logferry.read(p)
    assert st.format == "snowplow-thrift" and st.to_table().num_rows == 3


def _blocks(records: list[bytes]) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    pb = b"\x08\x01" + b"\x12" + varint(6) + b"byte[]"
    for r in records:
        pb += b"\x1a" + varint(len(r)) + r
    return BLOCK_MARKER + struct.pack("<I", len(pb)) + pb


def test_elephant_bird_blocks():
    data = _blocks(_all()[:2]) + _blocks(_all()[2:])
    recs = [r for _, r in iter_records(data)]
    assert [r.struct for r in recs] == ["CollectorPayload", "SnowplowRawEvent", "SnowplowRawEvent"]
    bad = [r for _, r in iter_records(data[:-10])]
    assert bad[-1] == "truncated elephant-bird block"


def test_lzo_framing(tmp_path):
    pytest.importorskip("lzo", reason="python-lzo (the lzo extra) not installed")
    from logferry._lzop import write_lzop

    data = _blocks(_all())
    p = tmp_path / "2018-05-22-155717-1-2.lzo"
    p.write_bytes(write_lzop([data[:500], data[500:]]))
    rows = read_events(p).to_table().to_pylist()
    assert [r["event"] for r in rows] == ["unstruct", "page_ping", "struct"]


def test_lzo_without_python_lzo_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lzo", None)  # import lzo -> ImportError
    from logferry.compression import open_decompressed

    with pytest.raises(MissingExtraError, match=r"logferry\[lzo\]"):
        open_decompressed(io.BytesIO(b"\x89LZO\x00\r\n\x1a\n" + b"\x00" * 40))


def test_garbage_after_record_is_bad_not_lost():
    data = raw(PING) + b"\x01\x02garbage"
    out = list(iter_records(data))
    assert not isinstance(out[0][1], str)
    assert isinstance(out[1][1], str) and out[1][0] == b"\x01\x02garbage"
