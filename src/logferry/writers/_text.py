"""Shared machinery of the field-based text writers (W3C/IIS, shop, CloudFront, CDN,
CSV usage).

A writer has an ordered list of *output fields* (source field names of its format).
Each value comes from one of two places:

* **same format**: when the batch was read from the format being written (the convert
  engine says so with :meth:`FieldWriter.set_source`, or the original field names all
  belong to the target format), the raw text in the ``fields`` struct is written as it
  was read -- byte for byte -- and the input's field list is kept;
* **another format**: the value is built from the canonical columns with the target's
  encoder (vectorised with ``pyarrow.compute``), ``-`` for missing values.

Lines are assembled with one ``binary_join_element_wise`` per batch (separators and
constant fields passed as literals, the newline included) and written as one buffer;
no per-row Python.  Dates and times come from lookups (:mod:`._vec`), replacement
passes run only when a numpy scan of the data finds the character.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import BinaryIO, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from ..errors import ConversionError
from . import _vec as V

Encoder = Callable[[pa.RecordBatch], pa.Array]
DASH = "-"
#: a column of values or one literal for every row
Value = pa.Array | str


# --------------------------------------------------------------------------- encoders

def col(batch: pa.RecordBatch, name: str) -> pa.Array:
    return batch.column(name)


def text(name: str) -> Encoder:
    return lambda b: b.column(name).cast(pa.string())


def integer(name: str) -> Encoder:
    return lambda b: b.column(name).cast(pa.int64()).cast(pa.string())


def rounded_int(name: str) -> Encoder:
    """A float column written as a whole number (milliseconds)."""
    return lambda b: pc.round(b.column(name)).cast(pa.int64(), safe=False).cast(pa.string())


def seconds3(name: str) -> Encoder:
    """Milliseconds written as seconds with millisecond precision (``0.082``)."""

    def enc(b: pa.RecordBatch) -> pa.Array:
        ms = pc.round(b.column(name)).cast(pa.int64(), safe=False)
        whole = pc.divide(ms, 1000).cast(pa.string())
        frac = pc.utf8_lpad(pc.abs(pc.subtract(ms, pc.multiply(pc.divide(ms, 1000), 1000))).cast(pa.string()), 3, "0")
        return pc.binary_join_element_wise(whole, frac, ".")

    return enc


def seconds(name: str) -> Encoder:
    """Milliseconds written as seconds, to the microsecond, without trailing zeros
    (``82.0`` -> ``0.082``, ``1000.0`` -> ``1``, ``1500.0`` -> ``1.5``)."""

    def enc(b: pa.RecordBatch) -> pa.Array:
        us = pc.round(pc.multiply(b.column(name).cast(pa.float64()), 1000.0)).cast(pa.int64(), safe=False)
        neg = pc.less(us, 0)
        us = pc.abs(us)
        whole = pc.divide(us, 1_000_000)
        frac = pc.utf8_rtrim(pc.utf8_lpad(pc.subtract(us, pc.multiply(whole, 1_000_000)).cast(pa.string()), 6, "0"), "0")
        text = pc.if_else(pc.equal(frac, ""), whole.cast(pa.string()),
                          pc.binary_join_element_wise(whole.cast(pa.string()), frac, "."))
        return pc.if_else(neg, pc.binary_join_element_wise("-", text, ""), text)

    return enc


def strftime(fmt: str, name: str = "timestamp") -> Encoder:
    """Format a timestamp (UTC); ``%S`` gives whole seconds (sub-seconds truncated)."""
    return lambda b: V.format_time(b.column(name), fmt)


_JSON_ESC = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]


def json_string(a: Value) -> Value:
    """Each string as a JSON string literal (quotes and escapes), vectorised."""
    if isinstance(a, str):
        return json_string(pa.array([a]))[0].as_py()
    a = replace_chars(a.cast(pa.string()), _JSON_ESC)
    if V.control_chars(a):
        a = pc.replace_substring_regex(a, r"[\x00-\x1f]", " ")
    return pc.binary_join_element_wise('"', a, '"', "")


class Const:
    """An encoder whose value is the same on every row (written as a literal)."""

    def __init__(self, value: str | None):
        self.value = value

    def __call__(self, b: pa.RecordBatch) -> pa.Array:
        if self.value is None:
            return pa.nulls(b.num_rows, pa.string())
        return pa.repeat(pa.scalar(self.value), b.num_rows)


def const(value: str | None) -> Encoder:
    return Const(value)


def replace_chars(a: Value, table: Sequence[tuple[str, str]]) -> Value:
    if isinstance(a, str):
        for old, new in table:
            a = a.replace(old, new)
        return a
    return V.replace_chars(a, table)


def dash(a: Value) -> Value:
    """Nulls and empty strings -> ``-``."""
    if isinstance(a, str):
        return a or DASH
    a = V._as_string(a)
    if len(a) and _has_empty(a):
        a = pc.if_else(pc.equal(a, ""), pa.scalar(None, pa.string()), a)
    return pc.fill_null(a, DASH) if a.null_count else a


def _literal(a: pa.Array) -> Value:
    same = V.constant(a)
    return a if same is None else same


def _has_empty(a: pa.Array) -> bool:
    dtype = np.int64 if pa.types.is_large_string(a.type) else np.int32
    offs = np.frombuffer(a.buffers()[1], dtype=dtype)[a.offset : a.offset + len(a) + 1]
    return bool((offs[1:] == offs[:-1]).any())


def lines_bytes(lines: pa.Array) -> bytes:
    """The text of a string array as one buffer, each value followed by a newline
    (no per-row Python: the Arrow data buffer is sliced)."""
    if len(lines) == 0:
        return b""
    nl = pc.binary_join_element_wise(pc.fill_null(lines, ""), "", "\n")
    if isinstance(nl, pa.ChunkedArray):
        nl = nl.combine_chunks()
    if nl.type == pa.large_string():
        dtype = np.int64
    else:
        nl = nl.cast(pa.string())
        dtype = np.int32
    offs = np.frombuffer(nl.buffers()[1], dtype=dtype)[nl.offset : nl.offset + len(nl) + 1]
    return nl.buffers()[2][int(offs[0]) : int(offs[-1])].to_pybytes()


def now_utc() -> datetime:
    return datetime.now(UTC)


def software() -> str:
    return f"logferry {__version__}"


# --------------------------------------------------------------------------- base class

class FieldWriter:
    """Base of the text writers.  Subclasses set the class attributes and may override
    :meth:`header` and :meth:`join`."""

    #: --to name
    name: ClassVar[str] = ""
    #: reader names whose ``fields`` are this format's raw fields
    same_sources: ClassVar[frozenset[str]] = frozenset()
    #: output fields when writing another format
    default_fields: ClassVar[tuple[str, ...]] = ()
    #: field name -> encoder from canonical columns
    encoders: ClassVar[dict[str, Encoder]] = {}
    sep: ClassVar[str] = " "
    extension: ClassVar[str] = ".log"
    binary: ClassVar[bool] = False

    def __init__(self, out: BinaryIO, *, fields: Sequence[str] | None = None,
                 source_format: str | None = None, clock: Callable[[], datetime] | None = None,
                 **_: object):
        self.out = out
        self.fields = list(fields) if fields else None
        if self.fields:
            self.check_fields(self.fields)
        self.source_format = source_format
        self.clock = clock or now_utc
        self._current: tuple[str, ...] | None = None
        self.lines_written = 0

    # ---- field lists ----
    @classmethod
    def field_names(cls) -> list[str]:
        return list(dict.fromkeys([*cls.default_fields, *cls.encoders]))

    @classmethod
    def check_fields(cls, names: Sequence[str]) -> None:
        valid = cls.field_names()
        bad = [n for n in names if n not in valid]
        if bad:
            raise ConversionError(
                f"--to {cls.name} cannot hold field(s) {', '.join(map(repr, bad))}; "
                f"valid fields: {', '.join(valid)}"
            )

    def set_source(self, fmt: str | None) -> None:
        """Tell the writer which reader produced the next batches."""
        self.source_format = fmt

    def _raw(self, batch: pa.RecordBatch) -> dict[str, pa.Array] | None:
        if "fields" not in batch.schema.names:
            return None
        st = batch.column("fields")
        names = [st.type.field(i).name for i in range(st.type.num_fields)]
        if not names:
            return None
        if self.source_format is not None:
            same = self.source_format in self.same_sources
        else:
            same = self.looks_same(names)
        if not same:
            return None
        return {n: st.field(i) for i, n in enumerate(names)}

    def looks_same(self, names: list[str]) -> bool:
        known = set(self.field_names())
        return all(n.split("#", 1)[0] in known for n in names)

    def output_fields(self, raw: dict[str, pa.Array] | None) -> list[str]:
        if self.fields:
            return self.fields
        if raw is not None:
            return list(raw)
        return list(self.default_fields)

    def value(self, name: str, batch: pa.RecordBatch, raw: dict[str, pa.Array] | None) -> Value:
        """The text of field ``name`` on every row: an array, or one string when it is the
        same on every row (a constant or missing field)."""
        if raw is not None and name in raw:
            v = raw[name].cast(pa.string())
            return pc.fill_null(v, DASH) if v.null_count else v
        enc = self.encoders.get(name.split("#", 1)[0])
        if enc is None:
            return DASH
        if isinstance(enc, Const):
            return DASH if enc.value is None else dash(enc.value)
        return dash(enc(batch))

    # ---- output ----
    def begin(self, fields: list[str]) -> None:
        """Called with the output fields before a batch's values are built."""

    def header(self, fields: list[str]) -> str:
        return ""

    def pieces(self, values: list[Value]) -> list[Value]:
        """The pieces of a line (columns and literals) without the newline."""
        out: list[Value] = []
        for i, v in enumerate(values):
            if i:
                out.append(self.sep)
            out.append(v)
        return out

    def join(self, values: list[Value]) -> pa.Array:
        n = next((len(v) for v in values if not isinstance(v, str)), 0)
        return V.join_pieces(self.pieces(values), n)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        raw = self._raw(batch)
        fields = self.output_fields(raw)
        self.begin(fields)
        values = [self.value(f, batch, raw) for f in fields]
        # a column that holds one value on every row (site, server, date...) is a literal
        values = [v if isinstance(v, str) else _literal(v) for v in values]
        key = tuple(fields)
        if key != self._current:
            h = self.header(fields)
            if h:
                self.out.write(h.encode("utf-8"))
            self._current = key
        V.write_lines(self.out, self.pieces(values), batch.num_rows)
        self.lines_written += batch.num_rows

    def close(self) -> None:
        if self._current is None and self.fields is not None or (self._current is None and self.default_fields):
            # an empty output still gets a header, so it is a valid file of the format
            h = self.header(self.fields or list(self.default_fields))
            if h:
                self.out.write(h.encode("utf-8"))
                self._current = tuple(self.fields or self.default_fields)
