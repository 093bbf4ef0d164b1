"""The e-commerce shop extension of W3C logs: decode shop events from ``cs-method`` and
``cs-uri-query`` (see the shop log specification in ``shared/seeds``).

=========  ===================================================================
cs-method  cs-uri-query
=========  ===================================================================
GET        ``-`` (an ordinary page view; not a shop event)
SEARCH     the search phrase
PROD       ``Product_ID&Name&Category`` (a product view)
ADDBI      ``Product_ID&Name&Category`` (added to the basket)
ORDER      ``TotalPrice&Payment&Shipping`` then per position
           ``&Product_ID&Name&Category&Units&NetUnitPrice&NetPurchasePrice``
=========  ===================================================================

Sub-parameters are split on ``&`` first and then URL-decoded (``+`` -> space, ``%XX``),
so an encoded ``%26`` stays inside its sub-parameter.  A category ``-`` means "none".
Prices keep their decimals exactly: :class:`decimal.Decimal` in Python,
``decimal128(18, 4)`` in Arrow (the specification allows up to four decimals).

:func:`decode_shop` takes canonical batches (``method``, ``query``, ``timestamp``,
``customer_id``, ``client_ip``, ``source_file``, ``line_number``) and returns three
tables -- events, orders, order items -- plus the list of malformed shop queries
(never raised, never dropped silently).  Only the (rare) shop-event rows reach the
Python decoding path; everything else is selected with ``pyarrow.compute``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.compute as pc

PRICE = pa.decimal128(18, 4)
SHOP_EVENTS = ("SEARCH", "PROD", "ADDBI", "ORDER")

EVENTS_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("customer_id", pa.string()),
        ("client_ip", pa.string()),
        ("shop_event", pa.string()),
        ("search_phrase", pa.string()),
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("category", pa.string()),
        ("order_id", pa.string()),
    ]
)
ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("customer_id", pa.string()),
        ("total_price", PRICE),
        ("payment", pa.string()),
        ("shipping", pa.string()),
    ]
)
ITEMS_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("position", pa.int32()),
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("category", pa.string()),
        ("units", pa.int32()),
        ("net_unit_price", PRICE),
        ("net_purchase_price", PRICE),
    ]
)

#: the ``shop`` object added to JSON lines records of shop input
ITEM_STRUCT = pa.struct([f for f in ITEMS_SCHEMA if f.name != "order_id"])
SHOP_STRUCT = pa.struct(
    [
        ("event", pa.string()),
        ("search_phrase", pa.string()),
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("category", pa.string()),
        ("order_id", pa.string()),
        ("total_price", PRICE),
        ("payment", pa.string()),
        ("shipping", pa.string()),
        ("items", pa.list_(ITEM_STRUCT)),
    ]
)

_PRICE_RE = re.compile(r"^-?\d{1,14}(?:\.\d{1,4})?$")
_PCT_RE = re.compile(r"%[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class ShopError:
    source_file: str
    line_number: int
    event: str
    reason: str
    query: str | None


@dataclass
class ShopDecoded:
    events: pa.Table
    orders: pa.Table
    order_items: pa.Table
    errors: list[ShopError] = field(default_factory=list)


# --------------------------------------------------------------------------- encoding

def decode_value(v: str | None) -> str | None:
    """One field or sub-parameter: ``+`` -> space, ``%XX`` decoded; ``-``/empty -> None."""
    if v is None or v == "-" or v == "":
        return None
    v = v.replace("+", " ")
    if "%" in v and _PCT_RE.search(v):
        v = unquote(v, errors="replace")
    return v


def encode_field(v: str | None) -> str:
    """A shop text field: space -> ``+``, ``+`` -> ``%2B``, ``%`` -> ``%25`` (and any other
    whitespace or control character percent-encoded so the line stays one line)."""
    if v is None or v == "":
        return "-"
    return _encode(v, "")


def encode_sub(v: str | None) -> str:
    """A ``cs-uri-query`` sub-parameter: like :func:`encode_field` plus ``&`` -> ``%26``."""
    if v is None or v == "":
        return "-"
    return _encode(v, "&")


def _encode(v: str, extra: str) -> str:
    out = []
    for ch in v:
        if ch == " ":
            out.append("+")
        elif ch in "+%" or ch in extra or ord(ch) < 33 or ch == "\x7f":
            out.append(quote(ch, safe=""))
        else:
            out.append(ch)
    return "".join(out)


def format_price(d: Decimal | None) -> str:
    """A price as written in the log: plain decimal notation, at most four decimals."""
    if d is None:
        return "-"
    return format(d, "f")


def parse_price(s: str | None) -> Decimal:
    if s is None or not _PRICE_RE.match(s):
        raise ValueError(f"price {s!r} is not a decimal number with at most 4 decimals")
    return Decimal(s)


def order_id(source_file: str, line_number: int) -> str:
    """Deterministic order id: ``<basename of source file>:<line number>``."""
    return f"{os.path.basename(source_file or '-')}:{line_number}"


# --------------------------------------------------------------------------- decoding

def decode_query(event: str, query: str | None) -> dict[str, Any]:
    """Decode one shop query; raises ValueError with a reason when malformed.

    Returns keys ``search_phrase`` / ``product_id``, ``product_name``, ``category`` /
    ``total_price``, ``payment``, ``shipping``, ``items`` (list of dicts).
    """
    if event == "SEARCH":
        return {"search_phrase": decode_value(query)}
    if query is None or query == "-":
        raise ValueError(f"{event} without a query")
    parts = query.split("&")
    if event in ("PROD", "ADDBI"):
        if len(parts) != 3:
            raise ValueError(f"{event} needs 3 sub-parameters (Product_ID&Name&Category), got {len(parts)}")
        pid, name, cat = (decode_value(p) for p in parts)
        if pid is None:
            raise ValueError(f"{event} without a product id")
        return {"product_id": pid, "product_name": name, "category": cat}
    if event == "ORDER":
        if len(parts) < 3 or (len(parts) - 3) % 6:
            raise ValueError(
                f"ORDER needs TotalPrice&Payment&Shipping followed by 6 sub-parameters per "
                f"position, got {len(parts)} sub-parameters"
            )
        total = parse_price(parts[0])
        items = []
        for k in range(3, len(parts), 6):
            pid, name, cat, units, unit_price, purchase = parts[k : k + 6]
            pos = (k - 3) // 6 + 1
            if not re.fullmatch(r"-?\d{1,9}", units):
                raise ValueError(f"ORDER position {pos}: units {units!r} is not an integer")
            try:
                up, pp = parse_price(unit_price), parse_price(purchase)
            except ValueError as e:
                raise ValueError(f"ORDER position {pos}: {e}") from None
            items.append(
                {
                    "position": pos,
                    "product_id": decode_value(pid),
                    "product_name": decode_value(name),
                    "category": decode_value(cat),
                    "units": int(units),
                    "net_unit_price": up,
                    "net_purchase_price": pp,
                }
            )
        return {
            "total_price": total,
            "payment": decode_value(parts[1]),
            "shipping": decode_value(parts[2]),
            "items": items,
        }
    raise ValueError(f"unknown shop event {event!r}")


def _col(batch: pa.RecordBatch | pa.Table, name: str, typ: pa.DataType) -> pa.Array:
    if name in batch.schema.names:
        c = batch.column(name)
        if isinstance(c, pa.ChunkedArray):
            c = c.combine_chunks()
        return c
    return pa.nulls(batch.num_rows, typ)


def _raw_query(batch: pa.RecordBatch) -> pa.Array:
    """The raw ``cs-uri-query`` text: from the original fields when present (exact), else
    the canonical ``query`` column."""
    if "fields" in batch.schema.names:
        st = batch.column("fields")
        names = [st.type.field(i).name for i in range(st.type.num_fields)]
        for n in names:
            if n.lower() in ("cs-uri-query", "cs_uri_query"):
                return st.field(n)
    return _col(batch, "query", pa.string())


def shop_rows(batch: pa.RecordBatch) -> tuple[pa.Array, list[dict[str, Any]], list[ShopError]]:
    """Indices of the shop-event rows of ``batch`` and one decoded dict per such row."""
    method = _col(batch, "method", pa.string())
    mask = pc.fill_null(pc.is_in(method, value_set=pa.array(SHOP_EVENTS)), False)
    idx = pc.indices_nonzero(mask)
    if len(idx) == 0:
        return idx, [], []
    events = pc.take(method, idx).to_pylist()
    queries = pc.take(_raw_query(batch), idx).to_pylist()
    files = pc.take(_col(batch, "source_file", pa.string()), idx).to_pylist()
    lines = pc.take(_col(batch, "line_number", pa.int64()), idx).to_pylist()
    rows: list[dict[str, Any]] = []
    errors: list[ShopError] = []
    cache: dict[tuple[str, str | None], dict[str, Any] | str] = {}
    for ev, q, f, ln in zip(events, queries, files, lines, strict=True):
        key = (ev, q)
        hit = cache.get(key)
        if hit is None:
            try:
                hit = decode_query(ev, q)
            except ValueError as e:
                hit = str(e)
            cache[key] = hit
        row: dict[str, Any] = {"event": ev}
        if isinstance(hit, str):
            errors.append(ShopError(f or "", int(ln or 0), ev, hit, q))
        else:
            row.update(hit)
            if ev == "ORDER":
                row["order_id"] = order_id(f, int(ln or 0))
        rows.append(row)
    return idx, rows, errors


def decode_shop(batch: pa.RecordBatch | pa.Table) -> ShopDecoded:
    """Decode every shop event of ``batch`` (a canonical batch or table).

    Malformed PROD/ADDBI/ORDER queries do not raise: the event row is kept (with nulls
    for what could not be decoded, and no order) and the problem is listed in
    ``.errors`` with file, line number and reason.
    """
    if isinstance(batch, pa.Table):
        batches = batch.combine_chunks().to_batches()
        parts = [decode_shop(b) for b in batches]
        if not parts:
            return ShopDecoded(EVENTS_SCHEMA.empty_table(), ORDERS_SCHEMA.empty_table(), ITEMS_SCHEMA.empty_table())
        return ShopDecoded(
            pa.concat_tables([p.events for p in parts]),
            pa.concat_tables([p.orders for p in parts]),
            pa.concat_tables([p.order_items for p in parts]),
            [e for p in parts for e in p.errors],
        )
    idx, rows, errors = shop_rows(batch)

    def take(name: str, typ: pa.DataType) -> pa.Array:
        return pc.take(_col(batch, name, typ), idx).cast(typ)

    base = {
        "source_file": take("source_file", pa.string()),
        "line_number": take("line_number", pa.int64()),
        "timestamp": take("timestamp", pa.timestamp("us", tz="UTC")),
        "customer_id": take("customer_id", pa.string()),
        "client_ip": take("client_ip", pa.string()),
    }
    ev_cols = dict(base)
    ev_cols["shop_event"] = pa.array([r["event"] for r in rows], pa.string())
    for name in ("search_phrase", "product_id", "product_name", "category", "order_id"):
        ev_cols[name] = pa.array([r.get(name) for r in rows], pa.string())
    events = pa.Table.from_pydict(ev_cols, schema=EVENTS_SCHEMA)

    order_pos = [i for i, r in enumerate(rows) if "order_id" in r]
    sel = pa.array(order_pos, pa.int64())
    orders = pa.Table.from_pydict(
        {
            "order_id": pa.array([rows[i]["order_id"] for i in order_pos], pa.string()),
            "source_file": pc.take(base["source_file"], sel),
            "line_number": pc.take(base["line_number"], sel),
            "timestamp": pc.take(base["timestamp"], sel),
            "customer_id": pc.take(base["customer_id"], sel),
            "total_price": pa.array([rows[i]["total_price"] for i in order_pos], PRICE),
            "payment": pa.array([rows[i]["payment"] for i in order_pos], pa.string()),
            "shipping": pa.array([rows[i]["shipping"] for i in order_pos], pa.string()),
        },
        schema=ORDERS_SCHEMA,
    )
    items = [
        {"order_id": rows[i]["order_id"], **it} for i in order_pos for it in rows[i]["items"]
    ]
    order_items = pa.Table.from_pylist(items, schema=ITEMS_SCHEMA)
    return ShopDecoded(events, orders, order_items, errors)


def shop_column(batch: pa.RecordBatch) -> pa.Array:
    """A ``shop`` struct column for ``batch`` (null on rows that are not shop events):
    event, search phrase, product, order totals and the order lines as a list."""
    idx, rows, _ = shop_rows(batch)
    n = batch.num_rows
    if not rows:
        return pa.nulls(n, SHOP_STRUCT)
    values = []
    for r in rows:
        v = {k: r.get(k) for k in ("search_phrase", "product_id", "product_name", "category",
                                    "order_id", "total_price", "payment", "shipping")}
        v["event"] = r["event"]
        v["items"] = r.get("items")
        values.append(v)
    arr = pa.array(values, SHOP_STRUCT)
    import numpy as np

    where = np.full(n, -1, dtype=np.int64)
    where[idx.to_numpy()] = np.arange(len(rows))
    take_idx = pa.array(where, mask=where < 0)
    return pc.take(arr, take_idx)


def revenue(decoded: ShopDecoded) -> tuple[Decimal, Decimal]:
    """(sum of units * net unit price, sum of units * (net unit price - net purchase
    price)) over all order lines -- exact decimals."""
    rev, margin = Decimal(0), Decimal(0)
    for it in decoded.order_items.to_pylist():
        rev += it["units"] * it["net_unit_price"]
        margin += it["units"] * (it["net_unit_price"] - it["net_purchase_price"])
    return rev, margin
