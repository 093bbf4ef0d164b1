"""JSON lines: one object per record with every canonical column, ``source_file``,
``line_number`` and the original fields under ``fields``.

Shop input (a ``cs-customer-id`` field) also gets a ``shop`` object on every record that
is a shop event: ``event``, ``search_phrase``, ``product_id``, ``product_name``,
``category``, ``order_id``, ``total_price``, ``payment``, ``shipping`` and ``items`` (the
order lines as a list); prices are exact decimals.  ``shop=True/False`` forces it.

Serialisation runs in DuckDB (vectorised), not in a Python loop: timestamps become
ISO-8601 UTC strings ending in ``Z``, integers stay integers, nulls stay null.
"""

from __future__ import annotations

import threading
from typing import BinaryIO

import duckdb
import pyarrow as pa

_local = threading.local()


def _con() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        con.execute("SET threads=2")
        _local.con = con
    return con


def _ts(col: str) -> str:
    return (
        f"CASE WHEN \"{col}\" IS NULL THEN NULL "
        f"WHEN microsecond(\"{col}\") % 1000000 = 0 "
        f"THEN strftime(\"{col}\", '%Y-%m-%dT%H:%M:%SZ') "
        f"ELSE strftime(\"{col}\", '%Y-%m-%dT%H:%M:%S.%fZ') END"
    )


def json_lines(batch: pa.RecordBatch, *, include_fields: bool = True) -> pa.Array:
    """One JSON text per row of ``batch`` (a string array)."""
    parts = []
    for name in batch.schema.names:
        if name == "fields" and not include_fields:
            continue
        typ = batch.schema.field(name).type
        expr = _ts(name) if pa.types.is_timestamp(typ) else '"' + name.replace('"', '""') + '"'
        ident = '"' + name.replace('"', '""') + '"'
        parts.append(f"{ident} := {expr}")
    if not parts:
        return pa.array([], pa.string())
    sql = f"SELECT to_json(struct_pack({', '.join(parts)}))::VARCHAR AS j FROM b"
    con = _con()
    b = batch  # noqa: F841 - referenced by name in SQL
    con.register("b", batch)
    try:
        return con.sql(sql).fetch_arrow_table().column(0).combine_chunks()
    finally:
        con.unregister("b")


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
        lines = json_lines(batch, include_fields=self.include_fields)
        if len(lines):
            from ._text import lines_bytes

            self.out.write(lines_bytes(lines))

    def close(self) -> None:
        pass
