"""Snowplow Clojure-collector rows (Tomcat access log written by ``SnowplowAccessLogValve``).

The valve imitates the CloudFront layout so that the same enrichment could load both:
``date time - %b %a %m %h %U %s referer user-agent query - - - content-type body``
(tab-separated; 12 fields for collectors up to 0.6.0, 15 with the three ``-``
placeholders, 17 with the request content type and the URL-safe base64 body of POSTs).
The edge-location slot is always ``-``, the user agent is URL-encoded with ``+`` for
spaces, and the query ends with ``&cv=clj-<version>&nuid=<network user id>``.

This reader yields the raw fields (all of them, under the CloudFront-style names of
:data:`TOMCAT_FIELDS`) plus the canonical columns.  Decoding the Snowplow tracker
protocol in the query or the body is done elsewhere (``logferry.snowplow``).

Like the CloudFront reader it tolerates runs of spaces/tabs between fields.  A row is a
bad row when it has fewer than 12 or more than 17 fields, or when it does not start with
a date and a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import LineChunk, to_str
from ..schema import make_batch
from . import Head, Reader
from . import _fields as F
from ._segments import line_kinds
from ._split import split_regular
from .cloudfront import (
    DATE_TOKEN,
    SPACE,
    TAB,
    _file_order_runs,
    is_tomcat_row,
    strip_zwsp,
    tokenize_loose,
    valid_timestamp_rows,
)

TOMCAT_FIELDS: tuple[str, ...] = (
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)",
    "cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query",
    "cs(Cookie)", "x-edge-result-type", "x-edge-request-id", "content-type", "body",
)  # fmt: skip
MIN_FIELDS, MAX_FIELDS = 12, len(TOMCAT_FIELDS)
WHAT = "Clojure-collector Tomcat"


def read(chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    for chunk in chunks:
        idx = np.flatnonzero(line_kinds(chunk, ctx)[1])
        if len(idx):
            yield from _lines(chunk, idx, ctx)


def _lines(chunk: LineChunk, idx: np.ndarray, ctx) -> Iterator[pa.RecordBatch]:
    groups: dict[int, list[tuple[np.ndarray, list[pa.Array]]]] = {}
    rest = idx
    for n in (MAX_FIELDS, 15, MIN_FIELDS):
        if not len(rest):
            break
        good, cols, rest = split_regular(chunk, rest, TAB, n, forbid=(SPACE,), allow_empty=True)
        if len(good):
            groups.setdefault(n, []).append((good, [to_str(c) for c in cols]))
    slow: dict[int, tuple[list[int], list[list[str]]]] = {}
    for i in rest.tolist():
        toks = tokenize_loose(chunk.text(i))
        if not MIN_FIELDS <= len(toks) <= MAX_FIELDS:
            ctx.bad(
                chunk.first_line + i,
                chunk.line(i),
                f"{len(toks)} fields; a {WHAT} row has {MIN_FIELDS} to {MAX_FIELDS}",
            )
            continue
        rows = slow.setdefault(len(toks), ([], []))
        rows[0].append(i)
        rows[1].append(toks)
    for n, (lines, rows) in slow.items():
        cols = [pa.array([r[k] for r in rows], pa.string()) for k in range(n)]
        groups.setdefault(n, []).append((np.array(lines, dtype=np.int64), cols))
    merged = {TOMCAT_FIELDS[:n]: parts for n, parts in groups.items()}
    for names, lines, cols in _file_order_runs(merged):
        batch = build_batch(list(names), cols, chunk, lines, ctx)
        if batch is not None:
            yield batch


def build_batch(names: list[str], cols: list[pa.Array], chunk: LineChunk, lines: np.ndarray, ctx):
    checked = valid_timestamp_rows(names, cols, chunk, lines, ctx, WHAT)
    if checked is None:
        return None
    cols, lines = checked  # already in line order (see _file_order_runs)
    f = dict(zip(names, cols, strict=True))
    failed = 0
    text = F.join_date_time(f["date"], f["time"])
    ts = F.iso_to_ts(text)
    failed += F.count_failed(text, ts)
    status = F.to_int(f["sc-status"])
    failed += F.count_failed(f["sc-status"], status)
    # Tomcat %b writes "-" for a zero-byte body
    raw_bytes = pc.if_else(pc.equal(f["sc-bytes"], "-"), "0", f["sc-bytes"])
    nbytes = F.to_int(raw_bytes)
    failed += F.count_failed(raw_bytes, nbytes)
    out = {
        "timestamp": ts,
        "client_ip": F.dash_null(f["c-ip"]),
        "method": F.dash_null(f["cs-method"]),
        "host": F.empty_null(F.dash_null(f["cs(Host)"])),
        "path": F.dash_null(strip_zwsp(f["cs-uri-stem"])),
        "query": F.empty_null(F.dash_null(f["cs-uri-query"])),
        "status": status,
        "bytes_sent": nbytes,
        "referer": F.empty_null(F.dash_null(f["cs(Referer)"])),
        # URLEncoder.encode: "+" is a space, "%XX" a byte of UTF-8
        "user_agent": F.empty_null(F.on_distinct(f["cs(User-Agent)"], F.plus_decode)),
    }
    if failed:
        ctx.conversion_failed(failed)
    return make_batch(out, len(lines), ctx.source_file, pa.array(chunk.line_numbers(lines)), f, on_failed=ctx.conversion_failed)


def sniff(head: Head) -> float:
    if any(ln.startswith("#Fields:") for ln in head.lines):
        return 0.0
    data = head.data_lines[:64]
    if not data or not DATE_TOKEN.search(head.text):  # (a Tomcat row starts with a date)
        return 0.0
    hits = sum(1 for ln in data if is_tomcat_row(tokenize_loose(ln)))
    if not hits:
        return 0.0
    clj = any("cv=clj-" in ln for ln in data)
    if hits * 2 >= len(data):
        return 0.97 if clj else 0.96
    return 0.8


READERS = {
    "snowplow-tomcat": Reader(
        "snowplow-tomcat",
        "Snowplow Clojure-collector Tomcat access log (CloudFront-like, 12/15/17 fields), raw fields",
        sniff,
        read,
    ),
}
