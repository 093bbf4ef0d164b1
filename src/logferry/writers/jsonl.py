"""JSON lines: one object per record with every canonical column, ``source_file``,
``line_number`` and the original fields under ``fields``.

Shop input (a ``cs-customer-id`` field) also gets a ``shop`` object on every record that
is a shop event: ``event``, ``search_phrase``, ``product_id``, ``product_name``,
``category``, ``order_id``, ``total_price``, ``payment``, ``shipping`` and ``items`` (the
order lines as a list); prices are exact decimals.  ``shop=True/False`` forces it.

Serialisation is vectorised with Arrow compute, column by column: each column becomes
the JSON text of its values (strings quoted and escaped only where a scan finds
something to escape, numbers cast, timestamps from per-day/per-second lookups), and one
``binary_join_element_wise`` per batch puts them between the literal ``"key":`` parts.
The text is the one DuckDB's ``to_json`` gives -- timestamps are ISO-8601 UTC strings
ending in ``Z`` (fractional seconds only when present), integers stay integers, floats
keep a ``.0``, nulls stay null -- and the rare values and types this fast path does not
cover (exponents, NaN, control characters, decimals, lists, nested structs) are handed
to DuckDB itself (:func:`json_lines_duckdb`, the reference implementation).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _vec as V

_local = threading.local()
Piece = V.Piece
NULL = "null"


def _con() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        from ..usage.db import duck

        con = duck()
        con.execute("SET TimeZone='UTC'")
        con.execute("SET threads=2")
        _local.con = con
    return con


def _arrow(rel: duckdb.DuckDBPyRelation) -> pa.Table:
    fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return fetch()


def _ts(col: str) -> str:
    return (
        f"CASE WHEN \"{col}\" IS NULL THEN NULL "
        f"WHEN microsecond(\"{col}\") % 1000000 = 0 "
        f"THEN strftime(\"{col}\", '%Y-%m-%dT%H:%M:%SZ') "
        f"ELSE strftime(\"{col}\", '%Y-%m-%dT%H:%M:%S.%fZ') END"
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text_members(t: pa.DataType) -> bool:
    """A struct of text members only (the original fields as written)."""
    return pa.types.is_struct(t) and all(
        pa.types.is_string(t.field(i).type) or pa.types.is_large_string(t.field(i).type) for i in range(t.num_fields))


def _present(name: str, t: pa.DataType) -> str:
    """The original fields as a map of the members each row has (see :func:`_original_fields`)."""
    if not _text_members(t) or not t.num_fields:
        return _ident(name)
    entries = ", ".join("{'k': '" + t.field(i).name.replace("'", "''") + "', 'v': " + _ident(name) + "."
                        + _ident(t.field(i).name) + "}" for i in range(t.num_fields))
    return (f"CASE WHEN {_ident(name)} IS NULL THEN NULL ELSE "
            f"map_from_entries(list_filter([{entries}], lambda x: x.v IS NOT NULL)) END")


def json_lines_duckdb(batch: pa.RecordBatch, *, include_fields: bool = True) -> pa.Array:
    """One JSON text per row, serialised by DuckDB's ``to_json`` (the reference the
    vectorised :func:`json_lines` reproduces; also its fallback for odd columns)."""
    parts = []
    for name in batch.schema.names:
        if name == "fields" and not include_fields:
            continue
        typ = batch.schema.field(name).type
        expr = _ts(name) if pa.types.is_timestamp(typ) else _present(name, typ) if name == "fields" else _ident(name)
        parts.append(f"{_ident(name)} := {expr}")
    if not parts:
        return pa.array([], pa.string())
    sql = f"SELECT to_json(struct_pack({', '.join(parts)}))::VARCHAR AS j FROM b"
    con = _con()
    con.register("b", batch)
    try:
        return _arrow(con.sql(sql)).column(0).combine_chunks()
    finally:
        con.unregister("b")


def _duck_values(a: pa.Array) -> pa.Array:
    """The JSON text of each value of ``a`` by DuckDB (null stays null)."""
    con = _con()
    tbl = pa.table({"v": a})
    expr = _ts("v") if pa.types.is_timestamp(a.type) else "v"
    con.register("jv", tbl)
    try:
        out = _arrow(con.sql(f"SELECT to_json({expr})::VARCHAR AS j FROM jv")).column(0)
    finally:
        con.unregister("jv")
    return out.combine_chunks().cast(pa.string())


def _patch(text: pa.Array, a: pa.Array, mask: pa.Array) -> pa.Array:
    """Rows of ``text`` where ``mask`` is set, replaced by DuckDB's text for ``a``."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return text
    return pc.replace_with_mask(text, mask, _duck_values(a.filter(mask)))


# --------------------------------------------------------------------------- keys

_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@lru_cache(maxsize=4096)
def json_key(name: str) -> str:
    """``name`` as a JSON string (the escapes DuckDB writes: short forms, ``\\u00XX``)."""
    out = []
    for ch in name:
        if ch in _ESC:
            out.append(_ESC[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# --------------------------------------------------------------------------- values

def _nullable(text: pa.Array, a: pa.Array) -> list[Piece]:
    """``text`` with the rows where ``a`` is null written ``null``."""
    if a.null_count:
        text = pc.fill_null(text, NULL) if text.null_count else pc.if_else(a.is_valid(), text, NULL)
    return [text]


def _string(a: pa.Array) -> list[Piece]:
    a = V._as_string(a)
    same = V.constant(a)
    if same is not None:
        return [json_key(same)]
    present = V.has_bytes(a, '\\"')
    esc = a
    if "\\" in present:
        esc = pc.replace_substring(esc, "\\", "\\\\")
    if '"' in present:
        esc = pc.replace_substring(esc, '"', '\\"')
    if V.control_chars(a):
        quoted = pc.binary_join_element_wise('"', esc, '"', "")
        quoted = _patch(quoted, a, pc.match_substring_regex(a, r"[\x00-\x1f]"))
        return _nullable(quoted, a)
    if a.null_count:
        return _nullable(pc.binary_join_element_wise('"', esc, '"', ""), a)
    return ['"', esc, '"']


def _integer(a: pa.Array) -> list[Piece]:
    if not a.null_count and not pa.types.is_boolean(a.type):
        lo, hi = pc.min_max(a).values()
        if lo == hi:
            return [str(lo.as_py())]
    return _nullable(a.cast(pa.string()), a)


def _float(a: pa.Array) -> list[Piece]:
    if not pa.types.is_float64(a.type):
        a = a.cast(pa.float64())
    x = a.to_numpy(zero_copy_only=False) if not a.null_count else pc.fill_null(a, 0.0).to_numpy()
    if (np.abs(x) < 2.0**53).all() and (np.trunc(x) == x).all() and not np.signbit(x[x == 0]).any():
        # whole numbers (durations in ms, mostly): the integer digits and ".0", as DuckDB
        return _integer(a.cast(pa.int64())) + [".0"] if not a.null_count else \
            _nullable(pc.binary_join_element_wise(a.cast(pa.int64()).cast(pa.string()), ".0", ""), a)
    s = a.cast(pa.string())
    if V.has_bytes(s, "eEin"):
        odd = pc.match_substring_regex(s, "[eEin]")
        plain = pc.and_kleene(pc.invert(pc.match_substring(s, ".")), pc.invert(odd))
        s = pc.if_else(plain, pc.binary_join_element_wise(s, ".0", ""), s)
        s = _patch(s, a, odd)
    else:
        s = pc.if_else(pc.match_substring(s, "."), s, pc.binary_join_element_wise(s, ".0", ""))
    return _nullable(s, a)


def _timestamp(a: pa.Array) -> list[Piece] | None:
    split = V.split_times(a)
    if split is None:
        return None
    day, sod, frac, valid = split
    mask = None if valid.all() else ~valid
    pieces: list[Piece] = ['"', V.day_strings(day, "%Y-%m-%dT", valid, literal=True)]
    pieces.append(V._second_table("%H:%M:%S").take(pa.array(sod.astype(np.int32), mask=mask)))
    has_frac = frac != 0
    if mask is not None:
        has_frac &= valid
    if has_frac.any():
        digits = pc.utf8_lpad(pa.array(frac).cast(pa.string()), 6, "0")
        pieces.append(pc.if_else(pa.array(has_frac), pc.binary_join_element_wise(".", digits, ""), ""))
    pieces.append('Z"')
    if mask is None:
        return pieces
    return [pc.fill_null(V.join_pieces(pieces, len(a)), NULL)]


def _struct(a: pa.StructArray) -> list[Piece] | None:
    t = a.type
    for i in range(t.num_fields):
        ct = t.field(i).type
        if not (pa.types.is_string(ct) or pa.types.is_large_string(ct) or pa.types.is_integer(ct)
                or pa.types.is_floating(ct) or pa.types.is_boolean(ct) or pa.types.is_null(ct)):
            return None
    pieces: list[Piece] = ["{"]
    for i in range(t.num_fields):
        pieces.append(("," if i else "") + json_key(t.field(i).name) + ":")
        pieces += value_pieces(a.field(i))  # type: ignore[arg-type]
    pieces.append("}")
    if not a.null_count:
        return pieces
    if a.null_count == len(a):
        return [NULL]
    return [pc.if_else(a.is_valid(), V.join_pieces(pieces, len(a)), NULL)]


def value_pieces(a: pa.Array) -> list[Piece]:
    """Pieces (columns, literals) whose row-wise concatenation is the JSON text of each
    value of ``a`` -- never null (a null value is ``null``)."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    t = a.type
    if len(a) == 0:
        return []
    if a.null_count == len(a):
        return [NULL]
    out: list[Piece] | None = None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        out = _string(a)
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        out = _integer(a)
    elif pa.types.is_floating(t):
        out = _float(a)
    elif pa.types.is_timestamp(t):
        out = _timestamp(a)
    elif pa.types.is_struct(t):
        out = _struct(a)  # type: ignore[arg-type]
    if out is None:
        out = [pc.fill_null(_duck_values(a), NULL)]
    return out


def _original_fields(a: pa.Array) -> list[Piece]:
    """The original fields as an object of the members each row has: a member that is null
    is one the line lacks (a field written as JSON null is the text ``null``), and it is left
    out rather than written as null because another line of the same batch has it -- the
    output does not depend on where batches begin."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    n, t = len(a), a.type
    if not _text_members(t) or not n or not any(a.field(i).null_count for i in range(t.num_fields)):
        return value_pieces(a)
    members = [pc.if_else(a.field(i).is_valid(),
                          V.join_pieces(["," + json_key(t.field(i).name) + ":", *value_pieces(a.field(i))], n), "")
               for i in range(t.num_fields)]
    body = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*members, ""), 1)  # (the first comma off)
    out = pc.binary_join_element_wise("{", body, "}", "")
    return [out if not a.null_count else pc.if_else(a.is_valid(), out, NULL)]


def json_pieces(batch: pa.RecordBatch, *, include_fields: bool = True) -> list[Piece]:
    """The pieces of each row's JSON object (see :func:`value_pieces`)."""
    pieces: list[Piece] = []
    for i, name in enumerate(batch.schema.names):
        if name == "fields" and not include_fields:
            continue
        pieces.append(("," if pieces else "{") + json_key(name) + ":")
        pieces += _original_fields(batch.column(i)) if name == "fields" else value_pieces(batch.column(i))
    if pieces:
        pieces.append("}")
    return pieces


def json_lines(batch: pa.RecordBatch, *, include_fields: bool = True) -> pa.Array:
    """One JSON text per row of ``batch`` (a string array)."""
    pieces = json_pieces(batch, include_fields=include_fields)
    if not pieces:
        return pa.array([], pa.string())
    return V.join_pieces(pieces, batch.num_rows)


def _is_shop(batch: pa.RecordBatch) -> bool:
    if "fields" not in batch.schema.names or "method" not in batch.schema.names:
        return False
    t = batch.schema.field("fields").type
    return any(t.field(i).name.lower() in ("cs-customer-id", "cs_customer_id") for i in range(t.num_fields))


class JsonlWriter:
    """``--to jsonl``: canonical columns + source_file + line_number (+ ``fields``)."""

    extension = ".jsonl"
    binary = False

    def __init__(
        self, out: BinaryIO, *, include_fields: bool = True, shop: bool | None = None, **_: object
    ):
        self.out = out
        self.include_fields = include_fields
        self.shop = shop

    def write(self, batch: pa.RecordBatch) -> None:
        if "shop" not in batch.schema.names and (
            self.shop or (self.shop is None and _is_shop(batch))
        ):
            from ..shop import shop_column

            batch = batch.append_column("shop", shop_column(batch))
        if batch.num_rows == 0:
            return
        pieces = json_pieces(batch, include_fields=self.include_fields)
        if pieces:
            V.write_lines(self.out, pieces, batch.num_rows)

    def close(self) -> None:
        pass
