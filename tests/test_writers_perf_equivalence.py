"""The fast (vectorised) writer paths give exactly the text of the reference paths:
JSON lines against DuckDB's ``to_json`` (byte for byte and parsed), dates/times against
Arrow's ``strftime``, replacement passes against plain ``replace_substring``."""

from __future__ import annotations

import io
import json
import math
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import logferry
from conftest import corpus
from logferry.schema import make_batch
from logferry.writers import _vec as V
from logferry.writers import get_writer
from logferry.writers.jsonl import json_key, json_lines, json_lines_duckdb

TS = pa.timestamp("us", tz="UTC")
BASE = 1_709_251_200_000_000  # 2024-03-01T00:00:00Z in us


def nasty_batch() -> pa.RecordBatch:
    rng = np.random.default_rng(7)
    n = 64
    floats = [0.0, -0.0, 1.0, 0.1, 1.5, 12.345, 1e15, 1e16, 1e20, 1e21, 1e-7, 2.5e-5, 1e-6,
              123456789012345678.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308,
              3.0000000000000004, -42.0, 999.999, None]
    floats += list(rng.normal(0, 1e6, n - len(floats) - 8)) + list(rng.random(8) * 1e-9)
    strings = ['plain', 'a "quoted" word', "back\\slash", "tab\there", "new\nline", "cr\r",
               "\x00nul", "\x1f unit sep", "\x07bell", "\x08\x0c", "é ü 日本 \u2028 \x7f", "", None,
               '\\"both\\"', "/slash/", "emoji 🎉"]
    strings = (strings * 5)[:n]
    us = [BASE, BASE + 1, BASE + 999_999, BASE + 1_000_000, None, 0, BASE + 86_400_000_000 * 400 + 123_000,
          253402300799_000_000]  # up to 9999-12-31T23:59:59
    us = (us * 8)[:n]
    fields = pa.StructArray.from_arrays(
        [pa.array(strings, pa.string()), pa.array([f"v{i}" if i % 3 else None for i in range(n)])],
        names=['cs(User-Agent)', 'we"ird\\key'],
        mask=pa.array([i % 11 == 5 for i in range(n)]),
    )
    cols = {
        "timestamp": pa.array(us, TS),
        "client_ip": pa.array([f"10.0.0.{i}" for i in range(n)]),
        "client_port": pa.array([i if i % 4 else None for i in range(n)], pa.int32()),
        "status": pa.array([200 + i for i in range(n)], pa.int16()),
        "bytes_sent": pa.array([2**62 + i if i % 5 else -i for i in range(n)], pa.int64()),
        "duration_ms": pa.array(floats[:n], pa.float64()),
        "ttfb_ms": pa.nulls(n, pa.float64()),
        "user_agent": pa.array(strings, pa.string()),
        "site": pa.nulls(n, pa.string()),
        "flag": pa.array([bool(i % 2) if i % 3 else None for i in range(n)]),
        "naive": pa.array(us, pa.timestamp("us")),
        "berlin": pa.array(us, pa.timestamp("us", tz="Europe/Berlin")),
        "price": pa.array([Decimal("12.3400"), None] * (n // 2), pa.decimal128(18, 4)),
        "tags": pa.array([["a", 'b"'], None, []] * (n // 3) + [["z"]] * (n % 3), pa.list_(pa.string())),
        "line_number": pa.array(range(1, n + 1), pa.int64()),
        "fields": fields,
    }
    return pa.RecordBatch.from_pydict(cols)


def both(batch: pa.RecordBatch, **kw) -> tuple[list[str], list[str]]:
    return json_lines(batch, **kw).to_pylist(), json_lines_duckdb(batch, **kw).to_pylist()


def test_jsonl_matches_duckdb_on_edge_values():
    b = nasty_batch()
    fast, ref = both(b)
    assert len(fast) == 64
    assert fast == ref  # byte for byte
    rows = [json.loads(x) for x in fast]
    # parsed content equal too (re-serialised, since NaN != NaN)
    assert [json.dumps(json.loads(x)) for x in ref] == [json.dumps(r) for r in rows]
    assert list(rows[0]) == b.schema.names  # same keys, same order
    assert rows[0]["timestamp"] == "2024-03-01T00:00:00Z"
    assert rows[1]["timestamp"] == "2024-03-01T00:00:00.000001Z"
    assert rows[2]["timestamp"] == "2024-03-01T00:00:00.999999Z"
    assert rows[4]["timestamp"] is None and rows[5]["timestamp"] == "1970-01-01T00:00:00Z"
    assert rows[7]["timestamp"] == "9999-12-31T23:59:59Z"
    assert rows[1]["user_agent"] == 'a "quoted" word' and rows[6]["user_agent"] == "\x00nul"
    assert rows[12]["user_agent"] is None and rows[11]["user_agent"] == ""
    assert rows[5]["fields"] is None and rows[1]["fields"] == {"cs(User-Agent)": 'a "quoted" word', 'we"ird\\key': "v1"}
    assert rows[1]["bytes_sent"] == 2**62 + 1 and rows[0]["client_port"] is None
    assert rows[1]["price"] is None and rows[0]["price"] == 12.34 and rows[0]["tags"] == ["a", 'b"']
    assert '"duration_ms":0.0,' in fast[0] and '"duration_ms":1e21,' in fast[9]
    assert '"duration_ms":100000000000000000000.0,' in fast[8] and '"duration_ms":NaN,' in fast[14]


def test_jsonl_matches_duckdb_on_slices_and_without_fields():
    b = nasty_batch()
    for lo, ln in ((3, 20), (17, 40), (63, 1)):
        fast, ref = both(b.slice(lo, ln))
        assert fast == ref and len(fast) == ln
    fast, ref = both(b.slice(5, 30), include_fields=False)
    assert fast == ref and '"fields"' not in fast[0]


def test_jsonl_matches_duckdb_on_random_doubles():
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**63, 4000, dtype=np.int64).view(np.float64)  # any double
    vals = np.concatenate([bits, rng.normal(0, 1, 2000) * 10.0 ** rng.integers(-12, 25, 2000),
                           np.round(rng.random(2000) * 10000, 3)])
    b = pa.RecordBatch.from_pydict({"x": pa.array(vals, pa.float64())})
    fast, ref = both(b)
    assert fast == ref


def test_jsonl_matches_duckdb_on_corpus_and_shop():
    checked = 0
    for rel in ("spec-examples/shop19990907.log", "aws-cloudfront-docs/AccessLogs.md@5999c0d8_example_web_33fields.log",
                "spec-examples/20230413-181700.example-service.03495.log.gz", "spec-examples/db20240115_001.csv"):
        path = corpus_or_none(rel)
        if path is None:
            continue
        for batch in logferry.read(str(path)):
            if "shop" in rel:
                from logferry.shop import shop_column

                batch = batch.append_column("shop", shop_column(batch))
            fast, ref = both(batch)
            assert fast == ref
            checked += len(fast)
    assert checked > 0


def corpus_or_none(rel):
    try:
        return corpus(rel)
    except pytest.skip.Exception:
        return None


def test_json_key_escapes_like_duckdb():
    names = ["plain", 'q"uote', "b\\s", "t\tab", "\x01ctl", "é"]
    b = pa.RecordBatch.from_pydict({n: pa.array([1]) for n in names})
    assert json_lines(b).to_pylist() == json_lines_duckdb(b).to_pylist()
    assert json_key("\x01ctl") == '"\\u0001ctl"'


def test_jsonl_writer_bytes_are_the_lines():
    b = nasty_batch()
    out = io.BytesIO()
    w = get_writer("jsonl", out)
    w.write(b.slice(2, 10))
    w.write(b.slice(12, 0))
    w.close()
    assert out.getvalue().decode() == "".join(x + "\n" for x in json_lines_duckdb(b.slice(2, 10)).to_pylist())


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%H:%M:%S", "%d-%m-%y %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ",
                                 "%Y/%m/%d", "%d/%b/%Y:%H:%M:%S +0000", "%H:%M %Y", "%H:%M:%S %z"])
def test_format_time_matches_strftime(fmt):
    rng = np.random.default_rng(3)
    us = np.concatenate([BASE + rng.integers(0, 3 * 86_400_000_000, 500), rng.integers(0, 2**41 * 1000, 500)])
    ts = pa.array(us, TS, mask=rng.random(1000) < 0.1).slice(7, 900)
    ref = pc.strftime(ts.cast(pa.timestamp("s", tz="UTC"), safe=False), format=fmt)
    got = V.format_time(ts, fmt)
    assert got.equals(ref)
    assert got[0].as_py() == ref[0].as_py() is not None


def test_replace_chars_order_and_skips():
    a = pa.array(["50% off+more", "a b", None, "x\ty"])
    table = [("%", "%25"), ("+", "%2B"), ("\t", "%09"), (" ", "+")]
    got = V.replace_chars(a, table)
    assert got.to_pylist() == ["50%25+off%2Bmore", "a+b", None, "x%09y"]
    # a replacement that introduces a character a later rule handles
    assert V.replace_chars(pa.array(["a_b"]), [("_", " "), (" ", "+")]).to_pylist() == ["a+b"]
    assert V.has_bytes(pa.array(["abc", "d"]).slice(1), "ad") == {"d"}


def test_text_writers_same_text_for_slices():
    """Every text writer writes a sliced batch exactly like the same rows built afresh."""
    n = 30
    cols = {
        "timestamp": pa.array([BASE + i * 1_500_000 for i in range(n)], TS),
        "client_ip": pa.array([f"192.0.2.{i}" for i in range(n)]),
        "method": pa.array(["GET", "POST", None] * 10),
        "path": pa.array([f"/p a%th/{i}" for i in range(n)]),
        "query": pa.array([None, "q=1&b=2"] * 15),
        "status": pa.array([200, 404, 500] * 10, pa.int16()),
        "bytes_sent": pa.array(range(n), pa.int64()),
        "duration_ms": pa.array([i * 1.25 for i in range(n)]),
        "user_agent": pa.array(['UA "x"\ttab', "curl/8", ""] * 10),
        "host": pa.array(["example.com"] * n),
    }
    full = make_batch(cols, n, "x.log", pa.array(range(1, n + 1), pa.int64()), None)
    part = full.slice(4, 13)
    fresh = make_batch({k: v.slice(4, 13) for k, v in cols.items()}, 13, "x.log",
                       pa.array(range(5, 18), pa.int64()), None)
    for to in ("w3c", "shop", "cloudfront", "cdn-tsv", "cdn-json", "csv-usage", "jsonl"):
        outs = []
        for b in (part, fresh):
            out = io.BytesIO()
            w = get_writer(to, out)
            w.write(b)
            w.close()
            outs.append(out.getvalue())
        data = [ln for ln in outs[0].split(b"\n") if ln and not ln.startswith(b"#")]
        assert len(data) == 13 + (1 if to == "csv-usage" else 0), to
        assert outs[0].split(b"#Date")[0] == outs[1].split(b"#Date")[0], to
        assert [ln for ln in outs[0].split(b"\n") if not ln.startswith(b"#Date")] == \
            [ln for ln in outs[1].split(b"\n") if not ln.startswith(b"#Date")], to
    out = io.BytesIO()
    get_writer("cdn-tsv", out).write(part)
    first = out.getvalue().split(b"\n")[0].split(b"\t")
    assert first[0] == b"01-03-24 00:00:06.000" and first[1] == b"1709251206000"
    assert b"UA \"x\" tab" in out.getvalue()


def test_jsonl_matches_duckdb_on_constant_and_whole_number_columns():
    n = 40
    b = pa.RecordBatch.from_pydict({
        "timestamp": pa.array([BASE + i * 7_000_000 for i in range(n)], TS),  # one day
        "site": pa.array(['same "site"\\x'] * n),
        "ctl": pa.array(["same\x01"] * n),
        "empty": pa.array([""] * n),
        "port": pa.array([443] * n, pa.int32()),
        "neg": pa.array([-5] * n, pa.int64()),
        "ms": pa.array([float(i * 3) for i in range(n)]),
        "ms_null": pa.array([None if i % 3 else float(-i) for i in range(n)]),
        "big": pa.array([2.0**53 + 2 * i for i in range(n)]),
        "same_ms": pa.array([12.0] * n),
        "zero": pa.array([0.0] * (n - 1) + [-0.0]),
        "fields": pa.StructArray.from_arrays([pa.array(["GET"] * n), pa.array(["-"] * n)], names=["m", "u"]),
    })
    fast, ref = both(b)
    assert fast == ref
    row = json.loads(fast[1])
    assert row["timestamp"] == "2024-03-01T00:00:07Z" and row["site"] == 'same "site"\\x'
    assert row["ctl"] == "same\x01" and row["port"] == 443 and row["neg"] == -5 and row["ms_null"] is None
    assert '"ms":3.0,' in fast[1] and '"same_ms":12.0,' in fast[1] and '"zero":-0.0,' in fast[-1]
    assert json.loads(fast[3])["ms_null"] == -3.0 and row["fields"] == {"m": "GET", "u": "-"}


def test_constant_and_missing_fields_are_literals():
    b = make_batch({"status": pa.array([200, 200, 404], pa.int16()), "site": pa.array(["w1", "w1", "w1"])},
                   3, "x.log", pa.array([1, 2, 3], pa.int64()), None)
    cases = {
        ("w3c", ("s-computername", "sc-status", "s-sitename")): [b"- 200 w1", b"- 200 w1", b"- 404 w1"],
        ("cdn-json", ("httpResponseCode", "trigger")): [b'{"httpResponseCode":200,"trigger":"-"}'] * 2
        + [b'{"httpResponseCode":404,"trigger":"-"}'],
        ("csv-usage", ("server", "c-host")): [b"server,c-host", b'"w1","-"', b'"w1","-"', b'"w1","-"'],
    }
    for (to, fields), want in cases.items():
        out = io.BytesIO()
        w = get_writer(to, out, fields=list(fields))
        w.write(b)
        w.close()
        assert [ln for ln in out.getvalue().split(b"\n") if ln and not ln.startswith(b"#")] == want, to
