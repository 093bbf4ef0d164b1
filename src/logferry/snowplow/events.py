"""Events as Arrow tables: reading collector logs, and the usage-database hook."""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ..lines import decode
from ..reader import BAD_ROW_SCHEMA, BadRow, _name, open_input
from ..schema import TS
from . import thrift
from .hits import TRACKER_PATH_RE, Hit, decode_hit
from .protocol import COLUMNS
from .rows import batch_kind, hits_from_batch, parse_line

#: a log directive (``#Version: 1.0``, ``#Fields: ...``); any other line starting with
#: ``#`` -- say, a binary record whose first byte is one -- is a line to decode or report
_DIRECTIVE = re.compile(r"#[A-Za-z][A-Za-z-]*:")

_TYPES = {
    "string": pa.string(),
    "ts": TS,
    "int32": pa.int32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
}
#: the events table: Snowplow atomic columns, then where each event came from
EVENTS_SCHEMA = pa.schema(
    [pa.field(n, _TYPES[t]) for n, t in COLUMNS.items()]
    + [pa.field("source_file", pa.string()), pa.field("line_number", pa.int64())]
)
BAD_SCHEMA = BAD_ROW_SCHEMA
BATCH_LINES = 4096
MAX_RAW = 65536


@dataclass
class EventStats:
    lines: int = 0  # lines (text) or records (Thrift) read
    directives: int = 0
    blank: int = 0
    hits: int = 0  # data lines / records: each gives >= 1 event or bad event
    events: int = 0
    bad: int = 0
    bad_hits: int = 0  # hits that gave no event at all
    conversion_errors: int = 0  # values not kept as sent (a lone surrogate -> U+FFFD)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def events_batch(events: list[dict[str, Any]], source_file: str, line_numbers: list[int]) -> pa.RecordBatch:
    cols = []
    for f in EVENTS_SCHEMA:
        if f.name == "source_file":
            cols.append(pa.array([source_file] * len(events), pa.string()))
        elif f.name == "line_number":
            cols.append(pa.array(line_numbers, pa.int64()))
        else:
            cols.append(pa.array([e.get(f.name) for e in events], f.type))
    return pa.RecordBatch.from_arrays(cols, schema=EVENTS_SCHEMA)


@dataclass
class EventStream:
    """Iterable of event ``RecordBatch``es from one file; bad events in :attr:`bad_events`."""

    path: Any
    on_bad: Callable[[BadRow], None] | None = None
    stats: EventStats = field(default_factory=EventStats)
    bad_events: list[BadRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.source_file = _name(self.path)
        self.format: str | None = None

    def _bad(self, line_number: int, raw: str, reason: str) -> None:
        self.stats.bad += 1
        row = BadRow(self.source_file, line_number, raw[:MAX_RAW], reason)
        (self.on_bad or self.bad_events.append)(row)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        stream, head, _codec = open_input(self.path)
        try:
            if thrift.looks_like_thrift(head):
                self.format = "snowplow-thrift"
                yield from self._thrift(stream)
            else:
                self.format = "snowplow-text"
                yield from self._text(stream)
        finally:
            stream.close()

    def to_table(self) -> pa.Table:
        return pa.Table.from_batches(list(self), schema=EVENTS_SCHEMA)

    def _emit(self, hit: Hit, line_number: int, raw: str, events: list, lines: list) -> None:
        evs, bad = decode_hit(hit)
        for ev in evs:
            self.stats.conversion_errors += ev.pop("_conversion_errors", 0)
            events.append(ev)
            lines.append(line_number)
        for reason in bad:
            self._bad(line_number, raw, reason)
        if not evs:
            self.stats.bad_hits += 1

    def _flush(self, events: list, lines: list) -> Iterator[pa.RecordBatch]:
        if events:
            self.stats.events += len(events)
            yield events_batch(events, self.source_file, lines)
            events.clear()
            lines.clear()

    def _text(self, stream: BinaryIO) -> Iterator[pa.RecordBatch]:
        events: list[dict[str, Any]] = []
        lines: list[int] = []
        st = self.stats
        for n, raw in enumerate(io.BufferedReader(stream, 1 << 20), 1):  # type: ignore[arg-type]
            st.lines = n
            text = decode(raw.rstrip(b"\r\n"))
            if not text.strip():
                st.blank += 1
                continue
            if _DIRECTIVE.match(text):
                st.directives += 1
                continue
            st.hits += 1
            hit = parse_line(text)
            if isinstance(hit, str):
                self._bad(n, text, hit)
                st.bad_hits += 1
            else:
                self._emit(hit, n, text, events, lines)
            if len(lines) >= BATCH_LINES:
                yield from self._flush(events, lines)
        yield from self._flush(events, lines)

    def _thrift(self, stream: BinaryIO) -> Iterator[pa.RecordBatch]:
        events: list[dict[str, Any]] = []
        lines: list[int] = []
        st = self.stats
        data = stream.read()
        for n, (raw, rec) in enumerate(thrift.iter_records(data), 1):
            st.lines = st.hits = n
            raw_text = base64.b64encode(raw[:MAX_RAW]).decode("ascii") if raw else ""
            if isinstance(rec, str):
                self._bad(n, raw_text, rec)
                st.bad_hits += 1
            else:
                self._emit(rec.hit, n, raw_text, events, lines)
            if len(lines) >= BATCH_LINES:
                yield from self._flush(events, lines)
        yield from self._flush(events, lines)


def read_events(
    path: str | os.PathLike | BinaryIO, *, on_bad: Callable[[BadRow], None] | None = None
) -> EventStream:
    """Tracker events of one raw collector log (text or Thrift, any compression).

    Iterate the result for ``pyarrow.RecordBatch``es (schema :data:`EVENTS_SCHEMA`);
    afterwards ``.stats`` has the counts and ``.bad_events`` the bad events (unless
    ``on_bad`` received them).
    """
    return EventStream(path, on_bad)


# ---------------------------------------------------------------------------
# canonical batches (any reader) -> events


def decode_batch(batch: pa.RecordBatch) -> tuple[pa.RecordBatch | None, list[BadRow]]:
    """Events of the tracker-path rows of a canonical batch from a Snowplow-capable reader.

    Returns (events batch or None, bad events).  Batches from other readers, and rows on
    other paths (ordinary traffic in the same CloudFront log), give nothing.
    """
    kind = batch_kind(batch)
    if kind is None or batch.num_rows == 0:
        return None, []
    names = batch.schema.names
    path = batch.column(names.index("path")) if "path" in names else None
    if path is not None and path.null_count < len(path):
        mask = pc.fill_null(pc.match_substring_regex(path, TRACKER_PATH_RE), False)
        if not pc.any(mask).as_py():
            return None, []
        if not pc.all(mask).as_py():
            batch = batch.filter(mask)
    src = batch.column(names.index("source_file")).to_pylist() if "source_file" in names else None
    line_nos = batch.column(names.index("line_number")).to_pylist()
    fields = batch.column(names.index("fields"))
    events: list[dict[str, Any]] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    source = src[0] if src else ""
    for i, hit in enumerate(hits_from_batch(batch, kind)):
        evs, reasons = decode_hit(hit)
        events.extend(evs)
        lines.extend([line_nos[i]] * len(evs))
        if reasons:
            raw = "\t".join("-" if v is None else str(v) for v in _struct_values(fields[i]))
            for r in reasons:
                bad.append(BadRow(source, int(line_nos[i]), raw[:MAX_RAW], r))
    ev_batch = events_batch(events, source, lines) if events else None
    return ev_batch, bad


def _struct_values(s: pa.StructScalar) -> list[Any]:
    return [v.as_py() for v in s.values()]


def ingest_hook(con: Any, batch: pa.RecordBatch, file_id: Any) -> int:
    """Append the Snowplow events of ``batch`` to ``events`` (and bad ones to ``bad_events``).

    ``con`` is a DuckDB connection; tables are created when missing and carry ``file_id``.
    Returns the number of events added.  Batches that hold no tracker rows cost one
    schema check (and one vectorised path match).
    """
    evs, bad = decode_batch(batch)
    if evs is None and not bad:
        return 0
    n = 0
    if evs is not None:
        tbl = pa.Table.from_batches([evs]).append_column(
            "file_id", pa.array([file_id] * evs.num_rows)
        )
        _append(con, "events", tbl)
        n = evs.num_rows
    if bad:
        tbl = pa.Table.from_pylist([b.as_dict() for b in bad], schema=BAD_SCHEMA).append_column(
            "file_id", pa.array([file_id] * len(bad))
        )
        _append(con, "bad_events", tbl)
    return n


def _append(con: Any, table: str, tbl: pa.Table) -> None:
    view = f"_logferry_snowplow_{table}"
    con.register(view, tbl)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM {view} LIMIT 0")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {view}")
    finally:
        con.unregister(view)
