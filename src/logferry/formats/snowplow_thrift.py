"""Snowplow raw Thrift records (``CollectorPayload``, legacy ``SnowplowRawEvent``).

Binary reader: records are self-delimiting TBinaryProtocol structs, plain or with the
S3 loader's ``\\n`` separators (gzip is undone before), in elephant-bird blocks (the S3
loader's LZO files, once the lzop layer is undone with python-lzo), or Base64 text with
one record per line.  Each record becomes one row: the canonical columns (collector
time, IP, method, path, query, user agent, referer, host) and every Thrift field as raw
text under its IDL name in ``fields`` (``headers`` joined with ``\\n``).  ``line_number``
is the record's 1-based position.  Decoding the tracker protocol is
:mod:`logferry.snowplow`'s job.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pyarrow as pa

from ..schema import make_batch
from . import Head, Reader

FIELD_NAMES = (
    "struct", "schema", "ipAddress", "timestamp", "encoding", "collector", "userAgent",
    "refererUri", "path", "querystring", "body", "headers", "contentType", "hostname",
    "networkUserId",
)  # fmt: skip
BATCH = 4096


def sniff(head: Head) -> float:
    from ..snowplow import thrift

    raw = head.raw
    if raw.startswith(thrift.BLOCK_MARKER):
        return 0.99
    kind = thrift._kind(raw)
    if kind is not None:
        rec = thrift.decode_one(raw) if len(raw) < 65536 else None
        if rec is None or not isinstance(rec, str):
            return 0.97
        return 0.6
    if thrift._looks_base64_lines(raw):
        return 0.9
    return 0.0


def read(stream, ctx) -> Iterator[pa.RecordBatch]:
    from ..snowplow import thrift

    data = stream.read()
    ctx.stats.bytes_read = len(data)
    rows: list[dict] = []
    lines: list[int] = []
    for n, (raw, rec) in enumerate(thrift.iter_records(data), 1):
        ctx.stats.lines += 1
        if isinstance(rec, str):
            ctx.bad(n, base64.b64encode(raw[:65536]).decode("ascii"), rec)
            continue
        rows.append(rec.fields)
        lines.append(n)
        if len(rows) >= BATCH:
            yield _batch(rows, lines, ctx)
            rows, lines = [], []
    if rows:
        yield _batch(rows, lines, ctx)


def _batch(rows: list[dict], lines: list[int], ctx) -> pa.RecordBatch:
    n = len(rows)
    col = {k: pa.array([r.get(k) for r in rows], pa.string()) for k in FIELD_NAMES}
    ts_ms = []
    for r in rows:
        t = r.get("timestamp")
        try:
            v = int(t) if t is not None else None
        except ValueError:
            v = None
        ts_ms.append(v * 1000 if v is not None and 0 <= v < 32503680000000 else None)
    method = pa.array(["POST" if r.get("body") else "GET" for r in rows], pa.string())
    columns = {
        "timestamp": pa.array(ts_ms, pa.int64()).cast(pa.timestamp("us")).cast(
            pa.timestamp("us", tz="UTC")
        ),
        "client_ip": col["ipAddress"],
        "method": method,
        "path": col["path"],
        "query": col["querystring"],
        "user_agent": col["userAgent"],
        "referer": col["refererUri"],
        "host": col["hostname"],
        "visit_id": col["networkUserId"],
    }
    return make_batch(columns, n, ctx.source_file, pa.array(lines, pa.int64()), col, on_failed=ctx.conversion_failed)


READERS = {
    "snowplow-thrift": Reader(
        "snowplow-thrift",
        "Snowplow raw Thrift records: CollectorPayload / SnowplowRawEvent (plain, gzip, base64 lines, LZO)",
        sniff,
        read,
        binary=True,
    )
}
