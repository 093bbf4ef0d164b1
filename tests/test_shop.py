from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
from tests.conftest import corpus

import logferry
from logferry.schema import make_batch
from logferry.shop import (
    PRICE,
    decode_query,
    decode_shop,
    decode_value,
    encode_field,
    encode_sub,
    revenue,
)
from logferry.writers.jsonl import JsonlWriter

SHOP = "spec-examples/shop19990907.log"


def test_seed_order_decodes():
    t = logferry.read(str(corpus(SHOP))).to_table()
    d = decode_shop(t)
    assert d.errors == []
    assert d.orders.num_rows == 1
    o = d.orders.to_pylist()[0]
    assert o["order_id"] == "shop19990907.log:16"
    assert o["line_number"] == 16
    assert o["timestamp"] == datetime(1999, 9, 7, 13, 44, 11, tzinfo=UTC)
    assert o["customer_id"] == "1001"
    assert o["total_price"] == Decimal("893.48")
    assert o["payment"] == "5"
    assert o["shipping"] == "UPS - US 2nd Day Air"
    assert d.orders.schema.field("total_price").type == PRICE
    items = d.order_items.to_pylist()
    assert [i["position"] for i in items] == [1, 2, 3]
    assert [i["product_id"] for i in items] == ["10806", "10338", "10800-1"]
    assert items[1]["product_name"] == "HealthRider Home Pro - Chrome"
    assert items[2]["category"] == "/Language Courses"
    assert [i["units"] for i in items] == [1, 1, 1]
    assert [i["net_unit_price"] for i in items] == [Decimal("150"), Decimal("543.48"), Decimal("200")]
    assert [i["net_purchase_price"] for i in items] == [Decimal("70"), Decimal("434.78"), Decimal("125")]
    assert sum(i["units"] * i["net_unit_price"] for i in items) == o["total_price"]
    assert d.order_items.schema.field("units").type == pa.int32()
    rev, margin = revenue(d)
    assert rev == Decimal("893.48")
    assert margin == Decimal("263.70")


def test_seed_events():
    d = decode_shop(logferry.read(str(corpus(SHOP))).to_table())
    ev = d.events.to_pylist()
    assert [(e["line_number"], e["shop_event"]) for e in ev] == [
        (6, "ADDBI"), (8, "ADDBI"), (9, "PROD"), (11, "PROD"), (12, "ADDBI"), (16, "ORDER")
    ]
    assert ev[2]["product_id"] == "10328"
    assert ev[2]["product_name"] == "Aiwa AM/FM Stereo"
    assert ev[2]["category"] == "/Electronics/Music"
    assert ev[2]["client_ip"] == "192.168.1.179"
    assert ev[5]["order_id"] == "shop19990907.log:16"
    assert ev[0]["order_id"] is None


def test_encoding_rules():
    assert encode_sub("Abc & 100%") == "Abc+%26+100%25"
    assert decode_value("Abc+%26+100%25") == "Abc & 100%"
    assert encode_field("a+b c%") == "a%2Bb+c%25"
    assert encode_field("x&y") == "x&y"
    assert encode_field(None) == "-"
    assert decode_value("Douglas%20Adams") == "Douglas Adams"
    # split on & before decoding: an encoded %26 stays in its sub-parameter
    q = decode_query("PROD", "7&Abc+%26+100%25&/A+%2B+B")
    assert q == {"product_id": "7", "product_name": "Abc & 100%", "category": "/A + B"}
    assert decode_query("PROD", "7&x&-")["category"] is None


def _batch(methods, queries):
    n = len(methods)
    return make_batch(
        {"method": pa.array(methods), "query": pa.array(queries),
         "customer_id": pa.array(["c"] * n)},
        n, "/logs/shop20240101.log", pa.array(range(1, n + 1)),
    )


def test_malformed_queries_are_reported_not_raised():
    b = _batch(
        ["ORDER", "PROD", "ORDER", "SEARCH", "GET", "ORDER", "ORDER"],
        ["1.5&visa&ups&1&x", "1&2", "abc&visa&ups", "Douglas+Adams", None,
         "10.12345&v&s", "20&v&s&p&n&-&two&1.0&0.5"],
    )
    d = decode_shop(b)
    assert [(e.line_number, e.event) for e in d.errors] == [
        (1, "ORDER"), (2, "PROD"), (3, "ORDER"), (6, "ORDER"), (7, "ORDER")
    ]
    assert "6 sub-parameters per position" in d.errors[0].reason
    assert "3 sub-parameters" in d.errors[1].reason
    assert "'abc'" in d.errors[2].reason
    assert "at most 4 decimals" in d.errors[3].reason
    assert "units 'two'" in d.errors[4].reason
    assert d.orders.num_rows == 0 and d.order_items.num_rows == 0
    assert d.events.num_rows == 6  # GET is not a shop event
    assert d.events.column("search_phrase").to_pylist()[3] == "Douglas Adams"


def test_order_units_and_ids():
    b = _batch(["ORDER"], ["59.90&Visa&DHL&A1&Pen&/Office&3&19.9666&10&B2&Ink&-&0&0&0"])
    d = decode_shop(b)
    assert d.errors == []
    o = d.orders.to_pylist()[0]
    assert o["order_id"] == "shop20240101.log:1"
    assert o["total_price"] == Decimal("59.9")
    it = d.order_items.to_pylist()
    assert it[0]["units"] == 3 and it[0]["net_unit_price"] == Decimal("19.9666")
    assert it[1]["category"] is None and it[1]["net_purchase_price"] == Decimal(0)


def test_jsonl_has_shop_object():
    out = io.BytesIO()
    w = JsonlWriter(out)
    for b in logferry.read(str(corpus(SHOP))):
        w.write(b)
    w.close()
    recs = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(recs) == 12
    assert recs[0]["shop"] is None
    assert recs[1]["shop"]["event"] == "ADDBI"
    assert recs[1]["shop"]["product_name"] == "Supersonic 6000 Stereo System"
    order = recs[-1]["shop"]
    assert order["total_price"] == 893.48
    assert order["shipping"] == "UPS - US 2nd Day Air"
    assert [i["product_id"] for i in order["items"]] == ["10806", "10338", "10800-1"]
    assert [i["net_unit_price"] for i in order["items"]] == [150.0, 543.48, 200.0]
