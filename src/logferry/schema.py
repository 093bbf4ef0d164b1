"""The canonical record: column names and Arrow types every reader fills.

Every reader produces ``pyarrow.RecordBatch``es whose first columns are exactly
:data:`CANONICAL` (in this order, with these types), followed by ``source_file``,
``line_number`` and ``fields`` (a struct of the original fields, raw text, under their
source names).  Units are normalised: milliseconds, bytes, UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TS = pa.timestamp("us", tz="UTC")

#: canonical column -> Arrow type (order is the output order)
CANONICAL: dict[str, pa.DataType] = {
    "timestamp": TS,
    "client_ip": pa.string(),
    "client_port": pa.int32(),
    "server_ip": pa.string(),
    "server_port": pa.int32(),
    "site": pa.string(),
    "host": pa.string(),
    "method": pa.string(),
    "path": pa.string(),
    "query": pa.string(),
    "protocol": pa.string(),
    "status": pa.int16(),
    "bytes_sent": pa.int64(),
    "bytes_received": pa.int64(),
    "duration_ms": pa.float64(),
    "ttfb_ms": pa.float64(),
    "user_agent": pa.string(),
    "referer": pa.string(),
    "username": pa.string(),
    "cache_status": pa.string(),
    "edge_location": pa.string(),
    "request_id": pa.string(),
    "visit_id": pa.string(),
    "user_id": pa.string(),
    "customer_id": pa.string(),
}

#: columns every batch carries after the canonical ones
META: dict[str, pa.DataType] = {
    "source_file": pa.string(),
    "line_number": pa.int64(),
}

CANONICAL_SCHEMA = pa.schema([pa.field(n, t) for n, t in {**CANONICAL, **META}.items()])
CANONICAL_NAMES = tuple(CANONICAL)


def make_batch(
    columns: Mapping[str, pa.Array | None],
    n: int,
    source_file: str,
    line_numbers: pa.Array,
    fields: pa.StructArray | Mapping[str, pa.Array] | None = None,
    *,
    on_failed: Callable[[int], None] | None = None,
) -> pa.RecordBatch:
    """Assemble a canonical batch of ``n`` rows.

    ``columns`` maps canonical names to arrays (missing names become null columns,
    arrays are cast to the canonical type; a value the type cannot hold, such as a status
    of 99999, a duration that is not a finite number, or a time outside years 1-9999,
    becomes null and is counted through ``on_failed``).  ``fields`` are the
    original fields.
    """
    unknown = set(columns) - set(CANONICAL)
    if unknown:
        raise KeyError(f"not canonical columns: {sorted(unknown)}")
    arrays: list[pa.Array] = []
    for name, typ in CANONICAL.items():
        arr = columns.get(name)
        if arr is None:
            arrays.append(pa.nulls(n, typ))
        else:
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if arr.type != typ:
                arr = cast_or_null(arr, typ, on_failed)
            if pa.types.is_floating(typ):
                arr = finite_or_null(arr, on_failed)
            elif typ == TS:
                arr = datetime_range_or_null(arr, on_failed)
            arrays.append(arr)
    arrays.append(repeat_string(source_file, n))
    arrays.append(line_numbers.cast(pa.int64()))
    names = [*CANONICAL, *META]
    if fields is not None:
        if not isinstance(fields, pa.StructArray):
            fields = struct_of(fields, n)
        arrays.append(fields)
        names.append("fields")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def cast_or_null(arr: pa.Array, typ: pa.DataType, on_failed: Callable[[int], None] | None = None) -> pa.Array:
    """``arr`` cast to ``typ``; values out of the type's range become null (counted)."""
    try:
        return arr.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if pa.types.is_integer(typ) and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        info = np.iinfo(typ.to_pandas_dtype())
        fits = pc.and_(pc.greater_equal(arr, info.min), pc.less_equal(arr, info.max))
        fits = pc.and_(fits, pc.equal(arr, pc.floor(arr))) if pa.types.is_floating(arr.type) else fits
        return _null_where(arr, fits, on_failed).cast(typ)
    # anything else: value by value (rare)
    values = []
    for v in arr.to_pylist():
        try:
            values.append(None if v is None else pa.scalar(v).cast(typ).as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values.append(None)
    out = pa.array(values, typ)
    lost = out.null_count - arr.null_count
    if on_failed is not None and lost:
        on_failed(lost)
    return out


def _null_where(arr: pa.Array, ok: pa.Array, on_failed: Callable[[int], None] | None) -> pa.Array:
    """``arr`` with the values where ``ok`` is false as null, counted through ``on_failed``
    (``ok`` null -- a null value -- keeps the value)."""
    bad = pc.invert(pc.fill_null(ok, True))
    lost = int(pc.sum(bad).as_py() or 0)
    if not lost:
        return arr
    if on_failed is not None:
        on_failed(lost)
    return pc.if_else(bad, pa.scalar(None, arr.type), arr)


def finite_or_null(arr: pa.Array, on_failed: Callable[[int], None] | None = None) -> pa.Array:
    """Floats with infinities and NaNs (``inf`` in a log, or an overflow when scaling) as
    null: no JSON can hold them, and no report can use them."""
    return _null_where(arr, pc.is_finite(arr), on_failed)


#: epoch microseconds of 0001-01-01T00:00:00Z and of 9999-12-31T23:59:59.999999Z
_TS_MIN_US, _TS_MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999


def datetime_range_or_null(arr: pa.Array, on_failed: Callable[[int], None] | None = None) -> pa.Array:
    """Timestamps outside years 1-9999 as null: no web server logged them, and neither
    Python's datetime nor ISO-8601 text (JSON, reports) can carry them."""
    us = arr.cast(pa.int64())
    mm = pc.min_max(us)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if lo is None or (lo >= _TS_MIN_US and hi <= _TS_MAX_US):
        return arr
    return _null_where(arr, pc.and_(pc.greater_equal(us, _TS_MIN_US), pc.less_equal(us, _TS_MAX_US)), on_failed)


def repeat_string(value: str, n: int) -> pa.Array:
    """A string array of ``n`` times ``value``, built from buffers (no Python list)."""
    raw = value.encode("utf-8")
    if len(raw) * n >= 2**31:  # pragma: no cover - beyond int32 offsets
        return pa.array([value] * n, pa.string())
    offsets = (np.arange(n + 1, dtype=np.int64) * len(raw)).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw * n)])


def struct_of(fields: Mapping[str, pa.Array], n: int) -> pa.StructArray:
    """A struct array from name -> array (empty mapping gives an empty struct)."""
    if not fields:
        return pa.array([{}] * n, pa.struct([]))
    names = list(fields)
    arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in fields.values()]
    return pa.StructArray.from_arrays(arrays, names=names)


def empty_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=CANONICAL_SCHEMA)
