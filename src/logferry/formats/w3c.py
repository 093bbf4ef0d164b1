"""W3C Extended log files (WD-logfile-960323) and their dialects.

Driven by ``#Fields``: a new header block may appear anywhere (IIS writes one after
every restart) and rows that do not fit the current header are tried against the
earlier headers of the same file before they become bad rows.  Dialects handled by the
same code, because they differ only in their field names:

* IIS 6.0-10 / HTTP Server API (``+`` for spaces, ``time-taken`` in ms; the unit of every
  dialect is in :data:`TIME_TAKEN_UNITS`), IIS 8.5 custom
  fields, IIS Advanced Logging (quoted ``<string>`` values with ``""`` escapes,
  ``date-local``/``time-local``);
* the platform export variant (``s_ip cs_method ...``, ``x_siteid x_corlid x_userid
  x_visit``; UTC, ``time_taken`` in ms);
* the e-commerce shop extension (``cs-customer-id``; ``cs-method`` is the shop event
  GET/SEARCH/PROD/ADDBI/ORDER; ``cs-uri-query`` kept raw) -- format name ``shop``;
* Oracle Web Cache, Netscaler, Incapsula, SHOUTcast and other W3C writers.

Fast path: lines with exactly the header's field count, single spaces and no quotes
are cut into columns with numpy (see :mod:`._split`).  Other lines are tokenised one
by one (quotes, tabs, runs of spaces).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import LineChunk, to_str
from ..schema import make_batch
from . import Head, Reader
from . import _fields as F
from ._segments import read_segments
from ._split import split_regular

SPACE, HASH, TAB = 32, 35, 9

# --- format knowledge as data ------------------------------------------------------
#: normalised W3C field name -> (canonical column, converter kind)
FIELD_MAP: dict[str, tuple[str, str]] = {
    "c-ip": ("client_ip", "str"),
    "c-port": ("client_port", "int"),
    "s-ip": ("server_ip", "str"),
    "s-port": ("server_port", "int"),
    "s-sitename": ("site", "str"),
    "x-siteid": ("site", "str"),
    "cs-host": ("host", "str"),
    "cs(host)": ("host", "str"),
    "cs-method": ("method", "str"),
    "cs-uri-stem": ("path", "str"),
    "cs-uri-query": ("query", "str"),
    "cs-uri": ("path", "uri"),
    "cs-version": ("protocol", "str"),
    "sc-status": ("status", "int"),
    "c-status": ("status", "int"),
    "sc-bytes": ("bytes_sent", "int"),
    "bytes": ("bytes_sent", "int"),
    "cs-bytes": ("bytes_received", "int"),
    "time-taken": ("duration_ms", "time_taken"),
    "timetakenms": ("duration_ms", "ms"),
    "cs(user-agent)": ("user_agent", "ua"),
    "cs(user agent)": ("user_agent", "ua"),
    "c-user-agent": ("user_agent", "ua"),
    "cs(referer)": ("referer", "referer"),
    "cs(referrer)": ("referer", "referer"),
    "c-referrer": ("referer", "referer"),
    "cs-username": ("username", "user"),
    "c-auth-id": ("username", "user"),
    "cs-customer-id": ("customer_id", "str"),
    "x-corlid": ("request_id", "str"),
    "x-userid": ("user_id", "str"),
    "x-visit": ("visit_id", "str"),
}

#: directive prefixes we understand (others are kept as directives and ignored)
DATE_DIRECTIVES = ("#Date:", "#Start-Date:")

TOKEN_RE = re.compile(r'"(?:[^"]|"")*"|[^\s]+')
_DATE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def normalise(name: str) -> str:
    """``cs_uri_stem`` / ``CS-URI-STEM`` / ``cs(User-Agent)`` -> lookup key."""
    name = name.replace("\u200b", "").strip().lower()
    if "(" in name:
        head, _, rest = name.partition("(")
        return head.replace("_", "-") + "(" + rest
    return name.replace("_", "-")


@dataclass
class Header:
    fields: list[str]
    line: int
    date: str | None = None  # YYYY-MM-DD from #Date / #Start-Date
    software: str = ""
    gmt_offset: str | None = None

    def __post_init__(self) -> None:
        self.norm = [normalise(f) for f in self.fields]
        self.names = F.unique_names(f.replace("\u200b", "") for f in self.fields)

    @property
    def n(self) -> int:
        return len(self.fields)


@dataclass
class State:
    headers: list[Header] = field(default_factory=list)
    date: str | None = None
    software: str = ""
    gmt_offset: str | None = None  # "#GMT-Offset: -0800" (Oracle): times are local

    @property
    def current(self) -> Header | None:
        return self.headers[-1] if self.headers else None


def parse_fields(line: str) -> list[str]:
    return line.split(":", 1)[1].split()


def _directive(state: State, text: str, line_no: int) -> None:
    if text.startswith("#Fields:"):
        fields = parse_fields(text)
        if fields:
            state.headers.append(
                Header(fields, line_no, state.date, state.software, state.gmt_offset)
            )
    elif text.startswith(DATE_DIRECTIVES):
        m = _DATE_RE.search(text)
        if m and (text.startswith("#Date:") or state.date is None):
            state.date = m.group(1)
            if state.current is not None and state.current.date is None:
                state.current.date = state.date
    elif text.startswith("#GMT-Offset:"):
        m = re.search(r"([+-])(\d{2}):?(\d{2})", text)
        state.gmt_offset = f"{m.group(1)}{m.group(2)}:{m.group(3)}" if m else None
        if state.current is not None:
            state.current.gmt_offset = state.gmt_offset
    elif text.startswith("#Software:"):
        state.software = text.split(":", 1)[1].strip()


def tokenize(line: str) -> list[str]:
    return TOKEN_RE.findall(line)


# --- reading -------------------------------------------------------------------------


def read(chunks: Iterator[LineChunk], ctx, *, dialect: str = "w3c") -> Iterator[pa.RecordBatch]:
    """Directives in file order; the segments between them on worker threads."""
    return read_segments(
        chunks,
        ctx,
        State(),
        _directive,
        partial(_segment, dialect=dialect),
        lambda st: State(list(st.headers)),
    )


def _segment(chunk: LineChunk, idx: np.ndarray, state: State, ctx, dialect: str = "w3c"):
    cur = state.current
    if cur is None:
        ctx.bad_lines(chunk, idx, "data line before any #Fields directive")
        return
    keep = F.kept_fields(ctx.options)
    kind = F.kinds_for(_kind, _target, ctx.options)
    want = F.wanted_columns(cur.names, kind, keep)
    types = F.parse_types(cur.names, kind, keep)
    good, cols, other = split_regular(chunk, idx, SPACE, cur.n, forbid=(34, TAB), want=want, types=types)
    # slow path: tokenise, match against current then earlier headers
    by_header: dict[int, tuple[list[int], list[list[str]]]] = {}
    for i in other.tolist():
        toks = tokenize(chunk.text(i))
        hit = None
        for h_i in range(len(state.headers) - 1, -1, -1):
            if state.headers[h_i].n == len(toks):
                hit = h_i
                break
        if hit is None:
            ctx.bad(
                chunk.first_line + i,
                chunk.line(i),
                f"{len(toks)} fields, but the #Fields directive at line {cur.line} "
                f"names {cur.n}" + ("" if len(state.headers) == 1 else " (and no earlier header matches)"),
            )
            continue
        rows = by_header.setdefault(hit, ([], []))
        rows[0].append(i)
        rows[1].append(toks)
    cur_i = len(state.headers) - 1
    extra = by_header.pop(cur_i, None)
    if len(good) or extra:
        str_cols = [None if c is None else to_str(c) for c in cols]
        line_idx = good
        if extra:
            str_cols = [
                None if c is None else F.concat_columns([c, pa.array([r[k] for r in extra[1]], pa.string())])
                for k, c in enumerate(str_cols)
            ]
            line_idx = np.concatenate([good, np.array(extra[0], dtype=np.int64)])
            order = np.argsort(line_idx, kind="stable")
            line_idx = line_idx[order]
            take = pa.array(order)
            str_cols = [None if c is None else c.take(take) for c in str_cols]
        yield build_batch(
            cur, str_cols, chunk.line_numbers(line_idx), ctx, dialect, quoted=bool(extra)
        )
    for h_i, (lines, rows) in sorted(by_header.items()):
        h = state.headers[h_i]
        str_cols = [pa.array([r[k] for r in rows], pa.string()) for k in range(h.n)]
        yield build_batch(h, str_cols, chunk.line_numbers(np.array(lines)), ctx, dialect, quoted=True)


#: The unit of ``time-taken`` by dialect: the first rule that matches the header block's
#: ``#Software`` (lower-cased) or its field set decides (never the values: ``1`` is one
#: second from Netscaler and one millisecond from IIS).  Rules: (what, test, unit)
#: -- what ``software`` tests a prefix or, with ``~``, a substring; ``field`` a field name.
TIME_TAKEN_UNITS: tuple[tuple[str, str, str], ...] = (
    # a unit declared in #Software, as logferry's W3C writer does
    ("software", "~time-taken in milliseconds", "ms"),
    ("software", "~time-taken in seconds", "s"),
    # logferry's W3C files from before it declared the unit were written in milliseconds
    ("software", "logferry", "ms"),
    # IIS 4-10, the HTTP Server API, IIS Advanced Logging
    ("software", "microsoft", "ms"),
    ("software", "iis", "ms"),
    # IIS's own fields (what Matomo's importer and GoAccess's W3C format key on)
    ("field", "sc-win32-status", "ms"),
    ("field", "sc-substatus", "ms"),
    # the platform export (s_ip cs_method ... time_taken, documented in milliseconds)
    ("field", "time_taken", "ms"),
)
#: every other W3C writer -- Citrix NetScaler (#Software: Netscaler Web Logging(NSWL)),
#: Oracle Web Cache, SHOUTcast, no #Software at all -- writes the W3C draft's seconds
DEFAULT_TIME_TAKEN_UNIT = "s"


def time_taken_unit(software: str, fields: list[str] | tuple[str, ...]) -> str:
    """``ms`` or ``s``: the unit of ``time-taken`` in a header block (:data:`TIME_TAKEN_UNITS`)."""
    soft = software.strip().lower()
    names = {f.replace("\u200b", "").strip().lower() for f in fields}
    for what, test, unit in TIME_TAKEN_UNITS:
        if what == "software":
            hit = test[1:] in soft if test.startswith("~") else soft.startswith(test)
        else:
            hit = test in names
        if hit:
            return unit
    return DEFAULT_TIME_TAKEN_UNIT


def _time_taken_ms(raw: pa.Array, header: Header) -> pa.Array:
    if time_taken_unit(header.software, header.fields) == "s":
        return pc.round(F.scale(raw, 1000.0), 6)
    return F.to_float(raw)


def build_batch(
    header: Header,
    cols: list[pa.Array],
    line_numbers: np.ndarray,
    ctx,
    dialect: str,
    *,
    quoted: bool = True,
) -> pa.RecordBatch:
    """Canonical batch from the string columns of one header (``quoted``: some values
    may carry W3C ``"..."`` quoting; the fast path guarantees they do not)."""
    n = len(line_numbers)
    originals = F.original_fields(header.names, cols, F.kept_fields(ctx.options))
    out: dict[str, pa.Array] = {}
    failed = 0
    by_norm = {}
    for name, col in zip(header.norm, cols, strict=True):
        if col is not None:  # None: not built (see _kind)
            by_norm.setdefault(name, col)
    for name, col in by_norm.items():
        spec = FIELD_MAP.get(name)
        if spec is None:
            continue
        target, kind = spec
        if target in out:
            continue
        if quoted:
            col = F.unquote_column(col)
        if (common := F.convert(kind, col)) is not None:
            v, bad = common
            failed += bad
        elif kind == "time_taken":
            v = _time_taken_ms(col, header)
            failed += F.count_failed(col, v)
        elif kind == "ua":
            v = F.on_distinct(col, F.plus_decode)
        elif kind == "user":
            v = F.on_distinct(col, F.plus_decode)
        elif kind == "referer":
            v = F.on_distinct(col, F.plus_decode) if dialect == "shop" else F.dash_null(col)
        elif kind == "uri":
            v = F.dash_null(col)
            parts = pc.split_pattern(v, "?", max_splits=1)
            out.setdefault("query", _query_part(parts))
            v = pc.list_element(parts, 0)
        else:  # pragma: no cover - table typo
            raise AssertionError(kind)
        out[target] = v
    ts = _timestamp(header, by_norm, n, ctx, quoted)
    if ts is not None:
        out["timestamp"] = ts
    if failed:
        ctx.conversion_failed(failed)
    return make_batch(out, n, ctx.source_file, pa.array(line_numbers), originals, on_failed=ctx.conversion_failed)


_TIME_FIELDS = frozenset({"date", "time", "date-local", "time-local"})


def _kind(name: str) -> str | None:
    """The converter kind of a field the canonical record is made from (see
    :data:`FIELD_MAP`; ``timestamp`` for the date and time fields, read as text by
    :func:`_timestamp`), None for the others."""
    n = normalise(name)
    if n in _TIME_FIELDS:
        return "timestamp"
    spec = FIELD_MAP.get(n)
    return spec[1] if spec else None


def _target(name: str) -> str | None:
    """The canonical column a field makes (None for the date and time fields, and
    unknown fields)."""
    spec = FIELD_MAP.get(normalise(name))
    return spec[0] if spec else None


def _query_part(parts: pa.Array) -> pa.Array:
    has = pc.greater(pc.list_value_length(parts), 1)
    padded = pc.if_else(has, parts, pa.scalar(["", ""], parts.type))
    q = pc.list_element(padded, 1)
    return pc.if_else(has, q, pa.scalar(None, pa.string()))


def _timestamp(
    header: Header, by_norm: dict[str, pa.Array], n: int, ctx, quoted: bool = True
) -> pa.Array | None:
    local = "date-local" in by_norm or "time-local" in by_norm
    date = by_norm.get("date-local" if local else "date")
    time = by_norm.get("time-local" if local else "time")
    if time is None:
        return None
    if quoted:
        time = F.unquote_column(time)
    if date is None:
        if header.date is None:
            return None
        date = pa.array([header.date] * n, pa.string())
    elif quoted:
        date = F.unquote_column(date)
    text = F.join_date_time(date, time)
    if header.gmt_offset and not local:
        text = pc.binary_join_element_wise(text, header.gmt_offset, "")
    tz = ctx.options.get("tz") if local else None
    ts = F.local_to_utc(text, tz) if tz else F.iso_to_ts(text)
    ctx.conversion_failed(F.count_failed(text, ts))
    return ts


# --- detection -----------------------------------------------------------------------


def _fields_lines(head: Head) -> list[list[str]]:
    return [[normalise(f) for f in parse_fields(ln)] for ln in head.lines if ln.startswith("#Fields:")]


def sniff_w3c(head: Head) -> float:
    fl = _fields_lines(head)
    if fl:
        names = set(fl[-1])
        if "x-edge-location" in names or "x-edge-request-id" in names:
            return 0.6  # CloudFront claims these with more confidence
        if "cs-customer-id" in names:
            return 0.7  # the shop dialect
        known = sum(1 for f in names if f in FIELD_MAP or f in _TIME_FIELDS)
        return 0.9 if known else 0.6
    if any(ln.startswith(("#Software:", "#Version:")) for ln in head.lines):
        return 0.4
    return 0.0


def sniff_shop(head: Head) -> float:
    fl = _fields_lines(head)
    if fl and "cs-customer-id" in fl[-1]:
        return 0.97
    return 0.0


def read_shop(chunks, ctx):
    return read(chunks, ctx, dialect="shop")


READERS = {
    "w3c": Reader("w3c", "W3C Extended / IIS 6-10 / platform export (#Fields driven; time-taken unit by dialect)", sniff_w3c, read, options=("tz",)),
    "shop": Reader("shop", "W3C shop extension (cs-customer-id, shop events)", sniff_shop, read_shop, options=("tz",)),
}
