"""Reusable, vectorised converters from raw text columns to canonical types.

Each takes and returns ``pyarrow`` arrays and never loops over rows in Python except
on the (small) dictionary of distinct values.  Values that cannot be converted become
null; :func:`count_failed` tells the caller how many.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote, unquote_to_bytes

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import TS

DASH = "-"


def dash_null(a: pa.Array, nulls: tuple[str, ...] = (DASH,)) -> pa.Array:
    """``-`` (or the given markers) -> null."""
    if a.type != pa.string():
        a = a.cast(pa.string())
    if len(nulls) == 1:
        mask = pc.equal(a, nulls[0])
    else:
        mask = pc.is_in(a, value_set=pa.array(list(nulls), pa.string()))
    if not pc.any(mask).as_py():
        return a
    return pc.if_else(mask, pa.scalar(None, pa.string()), a)


def empty_null(a: pa.Array) -> pa.Array:
    return dash_null(a, ("",))


_INT_RE = r"^\s*[+-]?\d+\s*$"
_NUM_RE = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"


def _safe_cast(a: pa.Array, typ: pa.DataType, pattern: str) -> pa.Array:
    try:
        return pc.cast(a, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = pc.match_substring_regex(a, pattern)
    a = pc.if_else(ok, a, pa.scalar(None, pa.string()))
    a = pc.utf8_trim_whitespace(a)
    try:
        return pc.cast(a, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # out of range values: convert one by one (rare)
        out = []
        for v in a.to_pylist():
            try:
                out.append(None if v is None else pa.scalar(int(float(v)) if pa.types.is_integer(typ) else float(v), typ).as_py())
            except (ValueError, OverflowError, pa.ArrowInvalid):
                out.append(None)
        return pa.array(out, typ)


def to_int(a: pa.Array, typ: pa.DataType = pa.int64()) -> pa.Array:
    """Text -> integer; ``-`` and garbage -> null."""
    if pa.types.is_integer(a.type):
        return a.cast(typ, safe=False)
    return _safe_cast(dash_null(a), typ, _INT_RE)


def to_float(a: pa.Array) -> pa.Array:
    if pa.types.is_floating(a.type) or pa.types.is_integer(a.type):
        return a.cast(pa.float64())
    return _safe_cast(dash_null(a), pa.float64(), _NUM_RE)


#: integer converter kinds and their types
_INT_KINDS = {"int": pa.int64(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64()}


def convert(kind: str, raw: pa.Array) -> tuple[pa.Array, int] | None:
    """``raw`` through one of the converter kinds the readers share, with the number of
    values that did not convert (see :func:`count_failed`); ``None`` for a kind the
    reader converts itself.

    ``str``: ``-`` is null; ``int`` (int64), ``int16``, ``int32``, ``int64``: integers;
    ``float`` and ``ms``: numbers (milliseconds as they are); ``seconds``: seconds ->
    milliseconds.
    """
    if kind == "str":
        return dash_null(raw), 0
    if kind in _INT_KINDS:
        v = to_int(raw, _INT_KINDS[kind])
    elif kind in ("float", "ms", "seconds"):
        v = to_float(raw)
    else:
        return None
    failed = count_failed(raw, v)
    if kind == "seconds":
        v = pc.round(pc.multiply(v, 1000.0), 6)
    return v, failed


def scale(a: pa.Array, factor: float) -> pa.Array:
    return pc.multiply(to_float(a), factor)


def count_failed(raw: pa.Array, converted: pa.Array) -> int:
    """Values present in ``raw`` (not null, not ``-``) that became null."""
    present = pc.and_(pc.is_valid(raw), pc.not_equal(raw, DASH)) if raw.type == pa.string() else pc.is_valid(raw)
    lost = pc.and_(present, pc.is_null(converted))
    return int(pc.sum(lost).as_py() or 0)


_ISO_RE = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$"


def iso_to_ts(a: pa.Array) -> pa.Array:
    """``YYYY-MM-DD[ T]HH:MM[:SS[.f]]`` (UTC unless an offset is given) -> timestamp[us, UTC]."""
    if a.type == TS:
        return a
    a = dash_null(a)
    try:
        return _cast_ts(a)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = pc.match_substring_regex(a, _ISO_RE)
    a = pc.if_else(ok, a, pa.scalar(None, pa.string()))
    try:
        return _cast_ts(a)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = []
        for v in a.to_pylist():
            try:
                out.append(None if v is None else _cast_ts(pa.array([v])).to_pylist()[0])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                out.append(None)
        return pa.array(out, TS)


def no_rollover(ts: pa.Array, day_text: pa.Array) -> pa.Array:
    """``strptime`` rolls impossible dates over (``29/Feb/2001`` -> March 1st; Arrow's
    ISO-8601 cast rejects them instead): null every timestamp whose day of month differs
    from the day that was written."""
    written = to_int(day_text)
    same = pc.equal(pc.day(ts), written)
    if pc.all(pc.fill_null(same, True)).as_py():
        return ts
    return pc.if_else(pc.fill_null(same, True), ts, pa.scalar(None, ts.type))


def _cast_ts(a: pa.Array) -> pa.Array:
    try:  # common case: naive "YYYY-MM-DD HH:MM:SS[.f]" meaning UTC
        return pc.cast(pc.cast(a, pa.timestamp("us")), TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # pad HH:MM to HH:MM:SS so Arrow's ISO-8601 parser accepts it
    if pc.any(pc.match_substring_regex(a, r"[ T]\d{2}:\d{2}$")).as_py():
        a = pc.replace_substring_regex(a, r"([ T]\d{2}:\d{2})$", r"\1:00")
    has_tz = pc.any(pc.match_substring_regex(a, r"(Z|[+-]\d{2}:?\d{2})$")).as_py()
    if has_tz:
        return pc.cast(a, TS)
    return pc.cast(pc.cast(a, pa.timestamp("us")), TS)


def join_date_time(date: pa.Array, time: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(date, time, " ")


def local_to_utc(ts_naive_text: pa.Array, tz: str | None) -> pa.Array:
    """Local wall-clock text ``YYYY-MM-DD HH:MM:SS`` in zone ``tz`` -> UTC timestamps."""
    if not tz or tz.upper() in ("UTC", "Z", "GMT"):
        return iso_to_ts(ts_naive_text)
    naive = iso_to_ts(ts_naive_text).cast(pa.timestamp("us"))
    return pc.assume_timezone(naive, tz, ambiguous="earliest", nonexistent="earliest").cast(TS)


def epoch_to_ts(a: pa.Array, unit: str) -> pa.Array:
    """Epoch numbers (``s``, ``ms``, ``us``, ``ns``; may be fractional) -> timestamp[us, UTC]."""
    factor = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}[unit]
    if pa.types.is_integer(a.type) and unit in ("ms", "us", "s"):
        us = pc.multiply(a.cast(pa.int64()), int(factor))
    else:
        f = to_float(a)
        us = pc.cast(pc.round(pc.multiply(f, factor)), pa.int64(), safe=False)
    return us.cast(pa.timestamp("us")).cast(TS)


def on_distinct(a: pa.Array, fn: Callable[[str], str | None]) -> pa.Array:
    """Apply a Python function to each *distinct* value (user agents repeat a lot)."""
    if len(a) == 0:
        return a
    d = pc.dictionary_encode(a)
    dictionary = d.dictionary
    mapped = pa.array([fn(v) for v in dictionary.to_pylist()], pa.string())
    return pc.take(mapped, d.indices)


_PCT = re.compile(r"%[0-9A-Fa-f]{2}")


def plus_decode(v: str | None) -> str | None:
    """IIS style: ``+`` -> space; percent-escapes decoded only when present."""
    if v is None or v == DASH:
        return None
    v = v.replace("+", " ")
    if "%" in v and _PCT.search(v):
        v = unquote(v)
    return v


def pct_decode(v: str | None) -> str | None:
    if v is None or v == DASH:
        return None
    if "%" in v:
        return unquote(v)
    return v


_DOUBLE = re.compile(r"%25([0-9A-Fa-f]{2})")


def double_pct_decode(v: str | None) -> str | None:
    """CloudFront: undo double encoding (``%2520`` -> ``%20``) then percent-decode."""
    if v is None or v == DASH:
        return None
    if "%" not in v:
        return v
    v = _DOUBLE.sub(r"%\1", v)
    return unquote_to_bytes(v).decode("utf-8", errors="replace")


def dash_if_null(a: pa.Array) -> pa.Array:
    return pc.fill_null(a.cast(pa.string()), DASH)


def quoted_unescape(v: str) -> str:
    """W3C ``<string>`` quoting removed (``""`` inside becomes ``"``); unquoted values unchanged."""
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1].replace('""', '"')
    return v


def unquote_column(a: pa.Array) -> pa.Array:
    """Strip W3C string quoting from every value that has it (vectorised check first)."""
    if not pc.any(pc.starts_with(a, '"')).as_py():
        return a
    return on_distinct(a, lambda v: None if v is None else quoted_unescape(v))


def np_take_strings(a: pa.Array, idx: np.ndarray) -> pa.Array:
    return pc.take(a, pa.array(idx, pa.int64()))


def unique_names(names) -> list[str]:
    """Names for the struct of original fields: a repeated name gets ``#2``, ``#3``, ..."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


_ALL = ("true", "all", "yes", "1")
_NONE = ("false", "none", "no", "0", "")


def kept_fields(options) -> frozenset[str] | None:
    """The reader option ``originals``: which original fields a batch's ``fields`` struct
    holds.  Absent or true: all of them (``None``); false: none (no ``fields`` column);
    a list of names, or comma-separated text: those (case-insensitive).

    Readers that honour it (W3C, shop, CloudFront) build only the columns they need for
    the canonical record and these fields (``ingest`` and Parquet output do not keep the
    originals, so they skip that work); other readers keep them all.
    """
    v = options.get("originals", True) if options else True
    if v is None or v is True:
        return None
    if v is False:
        return frozenset()
    if isinstance(v, str):
        if v.strip().lower() in _ALL:
            return None
        if v.strip().lower() in _NONE:
            return frozenset()
        v = v.split(",")
    return frozenset(x.strip().lower() for x in v if x.strip())


def wanted_columns_option(options) -> frozenset[str] | None:
    """The reader option ``columns``: the canonical columns the consumer reads (``None``,
    absent: all).  Readers that honour it (W3C, shop, CloudFront) may leave the others
    null: they do not build the fields those are made from (unless kept as originals)."""
    v = options.get("columns") if options else None
    if v is None:
        return None
    return frozenset(v.split(",") if isinstance(v, str) else v)


def kinds_for(kind_of, target_of, options):
    """``kind_of`` (field name -> converter kind, None: not read) limited to the fields of the
    canonical columns the reader option ``columns`` names (``target_of``: field name -> the
    canonical column it makes, None for fields of no one column, such as a date)."""
    wanted = wanted_columns_option(options)
    if wanted is None:
        return kind_of

    def kind(name: str) -> str | None:
        target = target_of(name)
        return None if target is not None and target not in wanted else kind_of(name)

    return kind


def wanted_columns(names: list[str], kind_of, keep: frozenset[str] | None) -> set[int] | None:
    """Indices of the fields to build: those the canonical record is made from (the
    reader's ``kind_of(name)`` names a converter kind for them) and those kept as
    originals (``None``: every field)."""
    if keep is None:
        return None
    return {k for k, name in enumerate(names) if kind_of(name) is not None or name.lower() in keep}


def original_fields(names, cols, keep: frozenset[str] | None) -> dict[str, pa.Array] | None:
    """The ``fields`` struct's members (``None``: no ``fields`` column)."""
    if keep is None:
        return dict(zip(names, cols, strict=True))
    kept = {n: c for n, c in zip(names, cols, strict=True) if c is not None and n.lower() in keep}
    return kept or None


#: converter kinds whose raw text Arrow's CSV parser may read as a number directly (and,
#: for readers that say so, ``YYYY-MM-DD`` dates and ``HH:MM:SS`` times)
_TYPED_KINDS = {"int": pa.int64(), "ms": pa.float64(), "seconds": pa.float64(),
                "date": pa.date32(), "time": pa.time32("s")}


def parse_types(names: list[str], kind_of, keep: frozenset[str] | None) -> dict[int, pa.DataType] | None:
    """Fields to parse straight into typed values (see ``split_regular(types=...)``): those
    whose converter kind (``kind_of(name)``) takes a plain number, date or time, unless
    kept as originals (which are raw text)."""
    if keep is None:
        return None
    out = {}
    for k, name in enumerate(names):
        typ = _TYPED_KINDS.get(kind_of(name) or "")
        if typ is not None and name.lower() not in keep:
            out[k] = typ
    return out or None


def concat_columns(parts: list[pa.Array]) -> pa.Array:
    """Concatenate one column's parts; a part already parsed as numbers is turned back to
    text when another part is text (the converters read either)."""
    if len({p.type for p in parts}) > 1:
        parts = [p if p.type == pa.string() else p.cast(pa.string()) for p in parts]
    return pa.concat_arrays(parts)


def is_typed_date_time(date: pa.Array, time: pa.Array) -> bool:
    """Whether the CSV fast path parsed a date and a time field already."""
    return pa.types.is_date32(date.type) and pa.types.is_time32(time.type)


def date_time_to_ts(date: pa.Array, time: pa.Array) -> pa.Array:
    """date32 + time32[s] (UTC) -> timestamp[us, UTC], with integer arithmetic."""
    days = date.cast(pa.int32()).cast(pa.int64())
    secs = time.cast(pa.int32()).cast(pa.int64())
    us = pc.add(pc.multiply(days, 86_400_000_000), pc.multiply(secs, 1_000_000))
    return us.cast(TS)


def date_time_as_text(date: pa.Array, time: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Typed date/time columns back to their text (``-``, parsed as null, again ``-``)."""
    return (pc.fill_null(date.cast(pa.string()), DASH), pc.fill_null(time.cast(pa.string()), DASH))
