"""logferry's own JSON lines (``convert --to jsonl``) read back as canonical batches.

Each line is an object with every canonical column, ``source_file``, ``line_number`` and
(optionally) ``fields``.  Like every reader, the batches name the file actually read and
the line in it (``source_file``/``line_number``); the record's original ``source_file``
and ``line_number`` (where the converted record came from) are kept in ``fields`` under
``origin_file`` and ``origin_line``, after the original fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from ..lines import LineChunk
from ..schema import CANONICAL, CANONICAL_NAMES, TS, make_batch
from . import Head, Reader
from . import _fields as F
from .jsonlogs import head_objects, parse_objects

#: keys that mark a line as logferry's own output when sniffing
SIGNATURE = ("timestamp", "client_ip", "method", "path", "status", "source_file", "line_number")


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _column(name: str, typ: pa.DataType, vals: list[Any], ctx) -> pa.Array:
    if typ == TS:
        raw = pa.array([_text(v) for v in vals], pa.string())
        ts = F.iso_to_ts(raw)
        failed = F.count_failed(raw, ts)
    elif pa.types.is_string(typ):
        return pa.array([_text(v) for v in vals], pa.string())
    else:
        raw = pa.array([None if v is None else str(v) for v in vals], pa.string())
        ts = F.to_int(raw, typ) if pa.types.is_integer(typ) else F.to_float(raw)
        failed = F.count_failed(raw, ts)
    if failed:
        ctx.conversion_failed(failed)
    return ts


def _fields(objs: list[dict]) -> dict[str, pa.Array]:
    keys: dict[str, None] = {}
    for o in objs:
        f = o.get("fields")
        if isinstance(f, dict):
            for k in f:
                keys.setdefault(k, None)
    out = {}
    for k in keys:
        vals = []
        for o in objs:
            f = o.get("fields")
            vals.append(_text(f.get(k)) if isinstance(f, dict) else None)
        out[k] = pa.array(vals, pa.string())
    return out


def read(chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    for chunk in chunks:
        idx, objs = parse_objects(chunk, ctx)
        if not objs:
            continue
        cols = {
            name: _column(name, typ, [o.get(name) for o in objs], ctx)
            for name, typ in CANONICAL.items()
        }
        own_lines = pa.array(chunk.line_numbers(np.array(idx, dtype=np.int64)))
        fields = _fields(objs)
        fields["origin_file"] = pa.array([_text(o.get("source_file")) for o in objs], pa.string())
        fields["origin_line"] = pa.array([_text(o.get("line_number")) for o in objs], pa.string())
        yield make_batch(cols, len(objs), ctx.source_file, own_lines, fields, on_failed=ctx.conversion_failed)


def sniff(head: Head) -> float:
    if not head.lines or not head.lines[0].lstrip().startswith("{"):
        return 0.0
    ok = 0
    objs, n = head_objects(head)
    for o in objs:
        if all(k in o for k in SIGNATURE):
            known = sum(1 for k in CANONICAL_NAMES if k in o)
            ok += known / len(CANONICAL_NAMES)
    return 0.99 * ok / n


READERS = {
    "jsonl": Reader("jsonl", "logferry's own JSON lines (convert --to jsonl) read back", sniff, read),
}
