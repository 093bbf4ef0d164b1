"""W3C Extended / IIS writer (``--to w3c``) and the shop log writer (``--to shop``).

Header block: ``#Software``, ``#Version: 1.0``, ``#Date`` (UTC, when the block is
written) and ``#Fields``.  A new header block is written whenever the field list
changes (as the input did, for W3C input).  W3C input keeps its field list and raw
values byte for byte; other input is written with the IIS field names and IIS encoding
(``+`` for spaces in text fields, ``-`` for missing values).

``time-taken`` is written in the unit the block's dialect implies, by the same table the
reader uses (:data:`logferry.formats.w3c.TIME_TAKEN_UNITS`), and the unit is declared in
``#Software`` (``logferry X (W3C Extended; time-taken in seconds)``): seconds -- the W3C
draft's unit, which GoAccess reads with ``%T`` and Matomo's importer reads for any W3C
file that is not IIS -- unless the fields are IIS's (``sc-win32-status``, which is what
makes Matomo and GoAccess's predefined W3C format treat a file as IIS; ``sc-substatus``):
then milliseconds (GoAccess ``%L``).  A raw ``time-taken`` is kept as written where it
already holds that value.

Written from another format without ``--fields``, a column that no record of the output
has a value for (Apache logs have no duration, CloudFront no site) is left out: a
``time-taken`` of ``-`` on every line makes Matomo's importer unable to detect the file.
The lines are built as the batches come and kept in a spool (memory, then a temporary
file) until the writer closes, when the field list is known.

The shop writer follows the shop log specification: its nine fields, one space between
fields, text fields URL-encoded (space -> ``+``, ``+`` -> ``%2B``, ``%`` -> ``%25``);
``cs-uri-query`` is written as read (its sub-parameters are already encoded, ``&``
-> ``%26`` inside them -- see :func:`logferry.shop.encode_sub` to build one).
:class:`ShopLogDirectory` rotates daily, weekly or monthly into ``shopYYYYMMDD.log``
files, each starting with the header.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..formats._fields import to_float
from ..formats.w3c import time_taken_unit
from . import _text as T
from . import _vec as V
from .naming import period_start, shop_name

IIS_FIELDS = (
    "date", "time", "s-sitename", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query",
    "s-port", "cs-username", "c-ip", "cs-version", "cs(User-Agent)", "cs(Referer)",
    "cs-host", "sc-status", "sc-bytes", "cs-bytes", "time-taken",
)  # fmt: skip

SHOP_FIELDS = (
    "date", "time", "c-ip", "cs-customer-id", "cs-method", "cs-uri-stem", "cs-uri-query",
    "cs(User-Agent)", "cs(Referer)",
)  # fmt: skip


def plus(name: str) -> T.Encoder:
    """IIS text: spaces become ``+``."""
    return lambda b: pc.replace_substring(b.column(name).cast(pa.string()), " ", "+")


def shop_text(name: str) -> T.Encoder:
    """Shop text field: ``%`` -> ``%25``, ``+`` -> ``%2B``, space -> ``+`` (and line
    breaks/tabs percent-encoded so the record stays one line)."""
    table = [("%", "%25"), ("+", "%2B"), ("\t", "%09"), ("\r", "%0D"), ("\n", "%0A"), (" ", "+")]
    return lambda b: T.replace_chars(b.column(name).cast(pa.string()), table)


W3C_ENCODERS: dict[str, T.Encoder] = {
    "date": T.strftime("%Y-%m-%d"),
    "time": T.strftime("%H:%M:%S"),
    "s-sitename": plus("site"),
    "s-computername": T.const(None),
    "s-ip": T.text("server_ip"),
    "cs-method": T.text("method"),
    "cs-uri-stem": plus("path"),
    "cs-uri-query": plus("query"),
    "s-port": T.integer("server_port"),
    "cs-username": plus("username"),
    "c-ip": T.text("client_ip"),
    "c-port": T.integer("client_port"),
    "cs-version": T.text("protocol"),
    "cs(User-Agent)": plus("user_agent"),
    "cs(Referer)": plus("referer"),
    "cs(Cookie)": T.const(None),
    "cs-host": plus("host"),
    "sc-status": T.integer("status"),
    "sc-substatus": T.const(None),
    "sc-win32-status": T.const(None),
    "sc-bytes": T.integer("bytes_sent"),
    "cs-bytes": T.integer("bytes_received"),
    "time-taken": T.rounded_int("duration_ms"),
    "cs-customer-id": plus("customer_id"),
    "x-corlid": T.text("request_id"),
    "x-userid": T.text("user_id"),
    "x-visit": T.text("visit_id"),
}


#: bytes of pending lines kept in memory before the spool moves to a temporary file
SPOOL_MEMORY = 32 << 20


class W3CWriter(T.FieldWriter):
    name = "w3c"
    same_sources = frozenset({"w3c", "shop"})
    default_fields = IIS_FIELDS
    encoders = W3C_ENCODERS
    sep = " "
    extension = ".log"
    #: leave out the default fields no record has a value for (see the module docstring)
    prune = True

    def __init__(self, out: BinaryIO, *, software: str | None = None, **kw):
        super().__init__(out, **kw)
        self.software = software
        self._unit = "s"
        self._spool: tempfile.SpooledTemporaryFile | None = None
        #: per spooled batch: (offset, size, rows, the fields that hold one value on every row)
        self._index: list[tuple[int, int, int, dict[str, str]]] = []
        self._used: set[str] = set()

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if not self.prune or self.fields or self._raw(batch) is not None:
            self._flush_pending()
            super().write(batch)
            return
        fields = list(self.default_fields)
        self.begin(fields)
        literals: dict[str, str] = {}
        names: list[str] = []
        arrays: list[pa.Array] = []
        for f in fields:
            v = self.value(f, batch, None)
            if not isinstance(v, str):
                v = T._literal(v)
            if isinstance(v, str):
                literals[f] = v
            else:
                names.append(f)
                arrays.append(v.cast(pa.string()))
            if not (isinstance(v, str) and v == T.DASH):
                self._used.add(f)
        if self._spool is None:
            self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        offset = self._spool.tell()
        if names:  # one small IPC stream per batch: its columns vary with its literals
            sink = pa.BufferOutputStream()
            rb = pa.RecordBatch.from_arrays(arrays, names=names)
            with pa.ipc.new_stream(sink, rb.schema) as w:
                w.write_batch(rb)
            buf = sink.getvalue()
            self._spool.write(memoryview(buf))
        self._index.append((offset, self._spool.tell() - offset, batch.num_rows, literals))
        self.lines_written += batch.num_rows

    def _flush_pending(self) -> None:
        """Write the spooled lines under one header naming the fields that have values."""
        if self._spool is None:
            return
        fields = [f for f in self.default_fields if f in self._used] or list(self.default_fields[:2])
        self.begin(fields)
        h = self.header(fields)
        if h:
            self.out.write(h.encode("utf-8"))
        self._current = tuple(fields)
        for offset, size, rows, literals in self._index:
            cols: dict[str, pa.Array] = {}
            if size:
                self._spool.seek(offset)
                rb = pa.ipc.open_stream(pa.py_buffer(self._spool.read(size))).read_next_batch()
                cols = {n: rb.column(i) for i, n in enumerate(rb.schema.names)}
            values = [literals[f] if f in literals else cols[f] for f in fields]
            V.write_lines(self.out, self.pieces(values), rows)
        self._spool.close()
        self._spool = None
        self._index = []
        self._used = set()

    def close(self) -> None:
        self._flush_pending()
        super().close()

    def unit(self, fields: list[str]) -> str:
        """``ms`` or ``s``: the ``time-taken`` unit of a header block with these fields."""
        return time_taken_unit(self.software or "", [f.split("#", 1)[0] for f in fields])

    def begin(self, fields: list[str]) -> None:
        self._unit = self.unit(fields)

    def value(self, name: str, batch: pa.RecordBatch, raw: dict[str, pa.Array] | None) -> T.Value:
        if name.split("#", 1)[0].lower() != "time-taken" or "duration_ms" not in batch.schema.names:
            return super().value(name, batch, raw)
        ms = batch.column("duration_ms")
        enc = T.seconds("duration_ms") if self._unit == "s" else T.rounded_int("duration_ms")
        v = T.dash(enc(batch))
        if raw is not None and name in raw:  # keep what was written where it says the same
            text = raw[name].cast(pa.string())
            f = to_float(text)
            want = pc.divide(ms, 1000.0) if self._unit == "s" else ms
            same = pc.fill_null(pc.less_equal(pc.abs(pc.subtract(f, want)), 1e-6), False)
            same = pc.or_(same, pc.and_(pc.is_null(ms), pc.is_valid(text)))
            v = pc.if_else(same, pc.fill_null(text, T.DASH), v)
        return v

    @classmethod
    def field_names(cls) -> list[str]:
        return list(dict.fromkeys([*cls.default_fields, *W3C_ENCODERS]))

    def looks_same(self, names: list[str]) -> bool:
        # W3C keeps whatever field list the input had (CloudFront has its own writer)
        return self.source_format is None and not {"x-edge-location", "x-edge-request-id"} & set(names)

    def header(self, fields: list[str]) -> str:
        names = [f.split("#", 1)[0] for f in fields]
        software = self.software
        if software is None:
            dialect = "IIS" if self.unit(fields) == "ms" else "W3C Extended"
            unit = "milliseconds" if self.unit(fields) == "ms" else "seconds"
            software = f"{T.software()} ({dialect}; time-taken in {unit})"
        return (
            f"#Software: {software}\n"
            "#Version: 1.0\n"
            f"#Date: {self.clock():%Y-%m-%d %H:%M:%S}\n"
            f"#Fields: {' '.join(names)}\n"
        )


SHOP_ENCODERS: dict[str, T.Encoder] = {
    "date": T.strftime("%Y-%m-%d"),
    "time": T.strftime("%H:%M:%S"),
    "c-ip": T.text("client_ip"),
    "cs-customer-id": shop_text("customer_id"),
    "cs-method": T.text("method"),
    "cs-uri-stem": shop_text("path"),
    "cs-uri-query": T.text("query"),
    "cs(User-Agent)": shop_text("user_agent"),
    "cs(Referer)": shop_text("referer"),
    # further W3C fields the specification allows
    "s-ip": T.text("server_ip"),
    "sc-status": T.integer("status"),
    "sc-bytes": T.integer("bytes_sent"),
    "time-taken": T.rounded_int("duration_ms"),
    "cs-host": shop_text("host"),
}


class ShopWriter(W3CWriter):
    name = "shop"
    same_sources = frozenset({"shop"})
    default_fields = SHOP_FIELDS
    encoders = SHOP_ENCODERS
    prune = False  # the shop specification's nine fields, always

    @classmethod
    def field_names(cls) -> list[str]:
        return list(SHOP_ENCODERS)

    def looks_same(self, names: list[str]) -> bool:
        return "cs-customer-id" in names


class ShopLogDirectory:
    """A rotating shop log sink: ``directory/shopYYYYMMDD.log`` per period (daily,
    weekly starting Monday, monthly), each new file beginning with the header.

    Rows go to the period of ``clock()`` when a clock is given (a live shop writing as
    it goes), otherwise to the period of their own timestamp (converting old logs).
    An existing file of the same period is appended to without a second header
    (``existing="append"``); ``"refuse"`` makes it an OutputError and ``"replace"``
    writes it anew -- both never write through a symlink (``convert --output-dir``).
    """

    def __init__(self, directory: str, period: str = "daily", *, clock: Callable[[], datetime] | None = None,
                 software: str | None = None, fields=None, existing: str = "append", **kw):
        period_start(datetime(2000, 1, 1), period)  # validates the period
        self.directory = directory
        self.period = period
        self.clock = clock
        self.software = software
        self.fields = fields
        self.kw = kw
        self.existing = existing
        self.files: list[str] = []
        self._open: tuple[str, BinaryIO, ShopWriter] | None = None
        os.makedirs(directory, exist_ok=True)

    def _writer_for(self, start: datetime) -> ShopWriter:
        path = os.path.join(self.directory, shop_name(start))
        if self._open and self._open[0] == path:
            return self._open[2]
        self._close_current()
        if self.existing == "append":
            exists = os.path.exists(path) and os.path.getsize(path) > 0
            f = open(path, "ab")
        else:
            from ..outputs import create, reopen

            exists = path in self.files  # written by this run: go on after its header
            f = reopen(path) if exists else create(path, overwrite=self.existing == "replace")
        w = ShopWriter(f, software=self.software, fields=self.fields, clock=self.clock, **self.kw)
        if exists:
            w._current = tuple(self.fields or SHOP_FIELDS)  # header already there
        self._open = (path, f, w)
        if path not in self.files:
            self.files.append(path)
        return w

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if self.clock is not None:
            self._writer_for(period_start(self.clock(), self.period)).write(batch)
            return
        ts = batch.column("timestamp")
        keys = self._period_keys(ts)
        # consecutive runs of the same period keep the input order
        change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        bounds = [0, *change.tolist(), len(keys)]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            first = ts[lo].as_py()
            start = period_start(first, self.period) if first is not None else period_start(self._now(), self.period)
            self._writer_for(start).write(batch.slice(lo, hi - lo))

    def _now(self) -> datetime:
        return T.now_utc()

    def _period_keys(self, ts: pa.Array) -> np.ndarray:
        filled = pc.fill_null(ts, pa.scalar(0, ts.type))
        if self.period == "monthly":
            k = pc.add(pc.multiply(pc.year(filled), 12), pc.month(filled))
        elif self.period == "weekly":
            days = pc.divide(filled.cast(pa.int64()), 86_400_000_000)
            k = pc.divide(pc.add(days, 3), 7)  # 1970-01-01 was a Thursday
        elif self.period == "hourly":
            k = pc.divide(filled.cast(pa.int64()), 3_600_000_000)
        else:
            k = pc.divide(filled.cast(pa.int64()), 86_400_000_000)
        k = pc.if_else(pc.is_null(ts), -1, k.cast(pa.int64()))
        return k.to_numpy(zero_copy_only=False)

    def _close_current(self) -> None:
        if self._open:
            _, f, w = self._open
            w.close()
            f.close()
            self._open = None

    def close(self) -> None:
        self._close_current()
