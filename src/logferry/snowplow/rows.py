"""Raw collector rows -> :class:`~logferry.snowplow.hits.Hit`.

Two sources:

* text lines as the CloudFront and Clojure collectors wrote them, split the way
  Snowplow's loaders split them (runs of whitespace: every field is URL-encoded, so tabs
  and the spaces of hand-made test lines both work) -- :func:`parse_line`;
* the ``fields`` struct of canonical batches from the ``cloudfront``, ``snowplow-tomcat``
  and ``snowplow-thrift`` readers -- :func:`hits_from_batch`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from .hits import CLOUDFRONT, THRIFT, TOMCAT, Hit

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _tstamp(date: str, time: str) -> int | None:
    if not _DATE.match(date) or not _TIME.match(time):
        return None
    try:
        dt = datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (dt - _EPOCH) // _US


def parse_line(line: str) -> Hit | str:
    """One CloudFront or Clojure-collector row -> a Hit, or the reason it matches no format."""
    f = line.split()
    n = len(f)
    if n < 12:
        return f"row matches no format: {n} fields, a collector row has at least 12"
    ts = _tstamp(f[0], f[1])
    if ts is None:
        return "row matches no format: no valid date and time in the first two fields"
    # (both collectors' rows have these fields in the same places)
    common = dict(collector_tstamp=ts, ip=f[4], method=f[5], path=f[7], referer=f[9], useragent=f[10],
                  query=f[11])
    if f[2] == "-":  # Tomcat writes a literal "-" where CloudFront has the edge location
        if n not in (12, 15, 16, 17):
            return f"row matches no format: {n} fields in a Clojure-collector row (12, 15 or 17)"
        return Hit(TOMCAT, **common, content_type=f[15] if n > 15 else None, body=f[16] if n > 16 else None)
    return Hit(CLOUDFRONT, **common, access_log=f)


# ---------------------------------------------------------------------------
# canonical batches from the raw readers

#: name of a raw field in each reader's ``fields`` struct -> Hit attribute
_CF_FIELDS = {
    "c-ip": "ip",
    "cs-method": "method",
    "cs-uri-stem": "path",
    "cs-uri-query": "query",
    "cs(Referer)": "referer",
    "cs(User-Agent)": "useragent",
}
_TOMCAT_FIELDS = {**_CF_FIELDS, "content-type": "content_type", "body": "body"}
_THRIFT_FIELDS = {
    "ipAddress": "ip",
    "path": "path",
    "querystring": "query",
    "refererUri": "referer",
    "userAgent": "useragent",
    "contentType": "content_type",
    "body": "body",
    "networkUserId": "network_userid",
    "collector": "collector",
}

#: every raw field the functions below read (what ingest asks readers to keep)
RAW_FIELDS = frozenset({*_TOMCAT_FIELDS, *_THRIFT_FIELDS, "x-edge-location"})


def batch_kind(batch: pa.RecordBatch) -> str | None:
    """Which collector's rows a canonical batch holds (from its raw field names), or None."""
    if "fields" not in batch.schema.names:
        return None
    t = batch.schema.field("fields").type
    if not pa.types.is_struct(t):
        return None
    names = {t.field(i).name for i in range(t.num_fields)}
    if {"querystring", "collector"} <= names:
        return THRIFT
    if {"cs-uri-stem", "cs-uri-query"} <= names:
        if "body" in names or "content-type" in names:
            return TOMCAT
        if "x-edge-location" in names:
            return CLOUDFRONT
    return None


def hits_from_batch(batch: pa.RecordBatch, kind: str) -> list[Hit]:
    """Hits of a canonical batch of ``kind`` (timestamps from its ``timestamp`` column)."""
    fields: pa.StructArray = batch.column(batch.schema.get_field_index("fields"))
    mapping = {THRIFT: _THRIFT_FIELDS, TOMCAT: _TOMCAT_FIELDS}.get(kind, _CF_FIELDS)
    cols: dict[str, list[Any]] = {}
    for raw_name, attr in mapping.items():
        try:
            cols[attr] = fields.field(raw_name).cast(pa.string()).to_pylist()
        except KeyError:
            continue
    ts = batch.column(batch.schema.get_field_index("timestamp"))
    ts_us = ts.cast(pa.int64()).to_pylist() if ts.null_count < len(ts) else [None] * len(ts)
    if "method" not in cols and "method" in batch.schema.names:
        cols["method"] = batch.column(batch.schema.get_field_index("method")).to_pylist()
    edge = None
    if kind == CLOUDFRONT and "x-edge-location" in {f.name for f in fields.type}:
        # Clojure-collector rows without a body column look like CloudFront ones, but
        # have a literal "-" for the edge location
        edge = fields.field("x-edge-location").to_pylist()
    hits = []
    for i in range(batch.num_rows):
        h = Hit(TOMCAT if edge is not None and edge[i] == "-" else kind, collector_tstamp=ts_us[i])
        for attr, values in cols.items():
            setattr(h, attr, values[i])
        if kind == THRIFT and h.method is None:
            h.method = "POST" if h.body else "GET"
        hits.append(h)
    return hits
