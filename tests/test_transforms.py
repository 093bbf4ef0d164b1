from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from logferry.errors import ConversionError
from logferry.schema import make_batch
from logferry.transforms import compile_where, select_fields, validate_fields


def _batch() -> pa.RecordBatch:
    ts = [datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
          datetime(2024, 3, 1, 0, 0, 0, tzinfo=UTC),
          datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC),
          datetime(2024, 3, 2, 0, 0, 0, tzinfo=UTC),
          None]
    cols = {
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "status": pa.array([200, 404, 500, 503, None], pa.int16()),
        "site": pa.array(["W3SVC1", "W3SVC1", "W3SVC2", None, "W3SVC1"]),
        "host": pa.array(["a.example", "b.example", "a.example", "a.example", None]),
        "path": pa.array(["/api/v1", "/index.html", "/api", "/static/x.js", None]),
        "method": pa.array(["GET", "HEAD", "POST", "GET", "GET"]),
        "username": pa.array([None, "bob", None, "eve", None]),
    }
    return make_batch(cols, 5, "f.log", pa.array([1, 2, 3, 4, 5]))


def lines(expr: str) -> list[int]:
    return compile_where(expr)(_batch()).column("line_number").to_pylist()


def test_status_class_and_ranges():
    assert lines("status=5xx") == [3, 4]
    assert lines("status = 4xx") == [2]
    assert lines("status!=5xx") == [1, 2]
    assert lines("status>=500") == [3, 4]
    assert lines("status in 400..500") == [2, 3]
    assert lines("status<400") == [1]


def test_site_host_path_time():
    assert lines("site=W3SVC1") == [1, 2, 5]
    assert lines("host==a.example and status=5xx") == [3, 4]
    assert lines("path^=/api") == [1, 3]
    assert lines("path~=.htm") == [2]
    assert lines("timestamp>=2024-03-01T00:00:00Z") == [2, 3, 4]
    assert lines("timestamp>=2024-03-01 and timestamp<2024-03-02T00:00:00Z") == [2, 3]
    assert lines("timestamp<=2024-03-01T02:00:00+02:00") == [1, 2]
    assert lines("timestamp in 2024-03-01..2024-03-01T12:00:00Z") == [2, 3]


def test_lists_nulls_and_quotes():
    assert lines("method in (GET, HEAD) and status in 200..499") == [1, 2]
    assert lines("username=-") == [1, 3, 5]
    assert lines("username!=-") == [2, 4]
    assert lines("path^='/static/'") == [4]
    assert lines("STATUS=5xx".lower() + " AND site=W3SVC2") == [3]


@pytest.mark.parametrize(
    "expr,needle",
    [
        ("", "empty"),
        ("nosuch=1", "unknown column 'nosuch'"),
        ("status=abc", "integer"),
        ("status^=5", "text column"),
        ("status>5xx", "status class"),
        ("timestamp>=yesterday", "ISO 8601"),
        ("status=500 or status=404", "expected 'and'"),
        ("status", "unexpected end"),
        ("status in 1", "unexpected end"),
        ("status in (1, 2", "unexpected end"),
        ("status = (", "expected a value"),
        ("status=\"5", "cannot parse"),
    ],
)
def test_bad_expressions(expr, needle):
    with pytest.raises(ConversionError) as ei:
        compile_where(expr)
    assert needle in str(ei.value)


def test_select_and_validate_fields():
    b = select_fields(_batch(), ["status", "path"])
    assert b.schema.names == ["status", "path"]
    assert b.column(0).to_pylist() == [200, 404, 500, 503, None]
    with pytest.raises(ConversionError, match="valid fields: .*timestamp"):
        select_fields(_batch(), ["nope"])
    assert validate_fields(["status", " path "], "jsonl") == ["status", "path"]
    with pytest.raises(ConversionError) as ei:
        validate_fields(["status", "bogus"], "jsonl")
    assert "'bogus'" in str(ei.value) and "client_ip" in str(ei.value)
    with pytest.raises(ConversionError, match="twice"):
        validate_fields(["status", "status"], "jsonl")
