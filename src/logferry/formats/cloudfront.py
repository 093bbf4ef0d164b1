"""Amazon CloudFront standard (access) logs, every historic field set, and legacy RTMP.

Web distributions wrote 12, 15, 18, 19, 23, 24, 26 and (since December 2019) 33
tab-separated fields; new fields were only ever appended, so a row of ``n`` fields
carries the first ``n`` names of :data:`WEB_FIELDS`.  A ``#Fields`` header, when
present, is authoritative (this also selects the RTMP field set, :data:`RTMP_FIELDS`);
without one the field set is chosen from each row's field count.  Fields beyond the
33 known ones are kept as originals (``x-extra-1``, ...).

Fast path: rows with single tabs between non-empty fields (and no spaces) are cut with numpy
(:func:`._split.split_regular`).  Everything else (runs of spaces and tabs, as in the
AWS documentation examples and the Snowplow test rows, tab+space separators, a
trailing tab) goes through :func:`tokenize`, one line at a time.

A row is a *bad row* when it has fewer than 12 fields or when its first two fields are
not a ``YYYY-MM-DD`` date and an ``HH:MM:SS`` time: every CloudFront row starts with
them, and without a timestamp a record is of no use to any consumer.  Other values
that do not convert (status ``/200``) become null and are counted as conversion
failures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import LineChunk, decode, to_str
from ..schema import make_batch
from . import Head, Reader
from . import _fields as F
from ._segments import read_segments
from ._split import split_regular

TAB, HASH, SPACE = 9, 35, 32
ZWSP = "\u200b"
ZWSP_BYTES = ZWSP.encode()

#: the 33 fields of a standard log, in order (fields were only ever appended)
WEB_FIELDS: tuple[str, ...] = (
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)",
    "cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query",
    "cs(Cookie)", "x-edge-result-type", "x-edge-request-id", "x-host-header",
    "cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol",
    "ssl-cipher", "x-edge-response-result-type", "cs-protocol-version", "fle-status",
    "fle-encrypted-fields", "c-port", "time-to-first-byte", "x-edge-detailed-result-type",
    "sc-content-type", "sc-content-len", "sc-range-start", "sc-range-end",
)  # fmt: skip

#: field counts CloudFront has written over the years
WEB_COUNTS = (12, 15, 18, 19, 23, 24, 26, 33)
MIN_FIELDS = 12

#: legacy RTMP (streaming) distributions, discontinued end of 2020
RTMP_FIELDS: tuple[str, ...] = (
    "date", "time", "x-edge-location", "c-ip", "x-event", "sc-bytes", "x-cf-status",
    "x-cf-client-id", "cs-uri-stem", "cs-uri-query", "c-referrer", "x-page-url",
    "c-user-agent", "x-sname", "x-sname-query", "x-file-ext", "x-sid",
)  # fmt: skip
RTMP_EVENTS = ("connect", "play", "stop", "pause", "unpause", "seek", "disconnect")

#: lower-cased field name -> (canonical column, converter kind)
FIELD_MAP: dict[str, tuple[str, str]] = {
    "c-ip": ("client_ip", "str"),
    "c-port": ("client_port", "int"),
    "cs-method": ("method", "str"),
    # host: the viewer's Host header where the file has it (x-host-header, 18+ fields);
    # cs(Host) is the distribution's domain name (kept in the fields), the host of
    # older files and of lines whose x-host-header is "-"
    "x-host-header": ("host", "str"),
    "cs(host)": ("host", "str"),
    "cs-uri-stem": ("path", "str"),
    "cs-uri-query": ("query", "query"),
    "sc-status": ("status", "int"),
    "sc-bytes": ("bytes_sent", "int"),
    "cs-bytes": ("bytes_received", "int"),
    "time-taken": ("duration_ms", "seconds"),
    "time-to-first-byte": ("ttfb_ms", "seconds"),
    "cs(user-agent)": ("user_agent", "decode"),
    "c-user-agent": ("user_agent", "decode"),
    "cs(referer)": ("referer", "decode"),
    "c-referrer": ("referer", "decode"),
    "cs-protocol-version": ("protocol", "str"),
    "x-edge-result-type": ("cache_status", "str"),
    "x-edge-location": ("edge_location", "str"),
    "x-edge-request-id": ("request_id", "str"),
}

DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
TIME_RE = r"^\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
_DATE = re.compile(DATE_RE)
_TIME = re.compile(TIME_RE)
#: a date / a time as a whole (blank-separated) token anywhere in a head's text (see
#: ``Head.text``): without one, no line of it has a CloudFront date / time field (sniffing's
#: cheap proof of 0).  Each is led by a character the search finds fast, and looks behind it.
DATE_TOKEN = re.compile(r"-(?<=\s\d{4}-)\d{2}-\d{2}(?:\s|$)")
_TIME_TOKEN = re.compile(r":(?<=\s\d{2}:)\d{2}:\d{2}(?:\.\d{1,6})?(?:\s|$)")
_EDGE = re.compile(r"^[A-Z]{3}\d{1,3}(-[A-Z0-9]{1,4})?$")
_IP = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7})$")
_METHOD = re.compile(r"^[A-Z]{3,12}$")
_BYTES = re.compile(r"^(\d+|-)$")
_DOUBLE_PCT = r"%25([0-9A-Fa-f]{2})"


# --- field names -----------------------------------------------------------------------


def _clean_name(name: str) -> str:
    return name.replace(ZWSP, "").strip()


def unique_names(fields: Sequence[str]) -> list[str]:
    """Names for the struct of originals (zero-width spaces removed, duplicates numbered)."""
    return F.unique_names(_clean_name(f) for f in fields)


def web_names(n: int) -> list[str]:
    """Field names of a headerless row of ``n`` fields."""
    if n <= len(WEB_FIELDS):
        return list(WEB_FIELDS[:n])
    return [*WEB_FIELDS, *(f"x-extra-{k}" for k in range(1, n - len(WEB_FIELDS) + 1))]


def names_for(header: list[str] | None, n: int) -> list[str]:
    """Field names for a row of ``n`` fields under ``header`` (extra fields numbered)."""
    if header is None:
        return web_names(n)
    if n <= len(header):
        return header[:n]
    return [*header, *(f"x-extra-{k}" for k in range(1, n - len(header) + 1))]


# --- tokenising (slow path) ------------------------------------------------------------


def tokenize(line: str) -> list[str]:
    """Split one row: tabs when they alone separate the fields, else runs of blanks.

    CloudFront values never contain raw spaces or tabs, so a line whose tab-separated
    parts are empty or contain spaces was written with another separator (runs of
    spaces, mixed tabs and spaces, tab + space).
    """
    s = line.strip(" \t")
    if "\t" in s:
        parts = [p.strip(" ") for p in s.split("\t")]
        if all(p and " " not in p for p in parts):
            # trailing tabs of a tab-separated row are kept as empty extra fields, so
            # that writing the row back reproduces it byte for byte
            trailing = len(line) - len(line.rstrip("\t"))
            if trailing and len(parts) >= MIN_FIELDS and line.rstrip("\t") == line.strip(" \t"):
                parts += [""] * trailing
            return parts
    return s.split()


# --- reading ----------------------------------------------------------------------------


@dataclass
class _State:
    header: list[str] | None = None  # names from the last #Fields (None: headerless)
    header_line: int = 0


def _directive(state: _State, text: str, line_no: int) -> None:
    if text.startswith("#Fields:"):
        fields = [_clean_name(f) for f in text.split(":", 1)[1].split()]
        fields = [f for f in fields if f]
        if fields:
            state.header = unique_names(fields)
            state.header_line = line_no


def read(chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    """Directives in file order; the segments between them on worker threads."""
    return read_segments(chunks, ctx, _State(), _directive, _segment, replace)


def tab_counts(chunk: LineChunk, idx: np.ndarray) -> np.ndarray:
    """Number of tab bytes in each selected line (vectorised)."""
    starts = chunk.starts[idx]
    ends = chunk.ends[idx]
    lo, hi = int(starts[0]), int(ends[-1])
    tabs = np.flatnonzero(chunk.arr[lo:hi] == TAB) + lo
    return np.searchsorted(tabs, ends) - np.searchsorted(tabs, starts)


def _segment(chunk: LineChunk, idx: np.ndarray, state: _State, ctx) -> Iterator[pa.RecordBatch]:
    groups: list[tuple[list[str], np.ndarray, list[pa.Array]]] = []
    if state.header is not None:
        counts = [len(state.header)]
    else:
        tc = tab_counts(chunk, idx) + 1
        # (a few distinct counts: bincount is one pass where np.unique hashes or sorts every line)
        seen = np.flatnonzero(np.bincount(tc)) if len(tc) and int(tc.max()) < 4096 else np.unique(tc)
        counts = [int(c) for c in seen if c >= MIN_FIELDS]
    keep = F.kept_fields(ctx.options)
    kind = F.kinds_for(_kind, _target, ctx.options)
    rest = idx
    for n in counts:
        if not len(rest):
            break
        # headerless rows of RTMP's field count are told apart by a value: build them all
        rtmp_possible = state.header is None and n == len(RTMP_FIELDS)
        names = names_for(state.header, n)
        want = None if rtmp_possible else F.wanted_columns(names, kind, keep)
        types = None if want is None else F.parse_types(names, kind, keep)
        good, cols, rest = split_regular(chunk, rest, TAB, n, forbid=(SPACE,), want=want, types=types)
        if not len(good):
            continue
        str_cols = [None if c is None else to_str(c) for c in cols]
        if state.header is None and n == len(RTMP_FIELDS):
            # headerless RTMP rows have an event where web rows have a byte count
            rtmp = pc.is_in(str_cols[4], value_set=pa.array(RTMP_EVENTS)).to_numpy(zero_copy_only=False)
            if rtmp.any():
                groups.append((list(RTMP_FIELDS), good[rtmp], [c.filter(pa.array(rtmp)) for c in str_cols]))
                keep = pa.array(~rtmp)
                good, str_cols = good[~rtmp], [c.filter(keep) for c in str_cols]
        groups.append((names_for(state.header, n), good, str_cols))
    # slow path: one line at a time
    slow: dict[tuple[str, ...], tuple[list[int], list[list[str]]]] = {}
    for i in rest.tolist():
        toks = tokenize(chunk.text(i))
        if len(toks) < MIN_FIELDS:
            ctx.bad(
                chunk.first_line + i,
                chunk.line(i),
                f"{len(toks)} fields; a CloudFront row has at least {MIN_FIELDS}"
                + (f" (#Fields at line {state.header_line} names {len(state.header)})" if state.header else ""),
            )
            continue
        if state.header is None and len(toks) == len(RTMP_FIELDS) and toks[4] in RTMP_EVENTS:
            names = list(RTMP_FIELDS)
        else:
            names = names_for(state.header, len(toks))
        rows = slow.setdefault(tuple(names), ([], []))
        rows[0].append(i)
        rows[1].append(toks)
    for names, (lines, rows) in slow.items():
        cols = [pa.array([r[k] for r in rows], pa.string()) for k in range(len(names))]
        groups.append((list(names), np.array(lines, dtype=np.int64), cols))
    merged: dict[tuple[str, ...], list[tuple[np.ndarray, list[pa.Array]]]] = {}
    for names, lines, cols in groups:
        merged.setdefault(tuple(names), []).append((lines, cols))
    for names, lines, cols in _file_order_runs(merged):
        batch = build_batch(list(names), cols, chunk, lines, ctx)
        if batch is not None:
            yield batch


def _file_order_runs(merged):
    """Rows of several field layouts (e.g. a row with extra fields among ordinary ones) as
    batches in file order: one batch per run of consecutive rows of the same layout."""
    groups = []
    for names, parts in merged.items():
        if len(parts) == 1:
            lines, cols = parts[0]
        else:
            # a column not built for one part (see wanted_columns) is not wanted at all
            lines = np.concatenate([p[0] for p in parts])
            cols = [None if any(p[1][k] is None for p in parts) else F.concat_columns([p[1][k] for p in parts])
                    for k in range(len(names))]
        order = np.argsort(lines, kind="stable")
        if not np.all(order == np.arange(len(order))):
            take = pa.array(order)
            lines, cols = lines[order], [None if c is None else c.take(take) for c in cols]
        groups.append((names, lines, cols))
    if len(groups) <= 1:
        yield from groups
        return
    all_lines = np.concatenate([g[1] for g in groups])
    gid = np.concatenate([np.full(len(g[1]), i) for i, g in enumerate(groups)])
    order = np.argsort(all_lines, kind="stable")
    gid, all_lines = gid[order], all_lines[order]
    cuts = [0, *(np.flatnonzero(np.diff(gid)) + 1).tolist(), len(gid)]
    for a, b in zip(cuts[:-1], cuts[1:], strict=False):
        names, lines, cols = groups[int(gid[a])]
        i0 = int(np.searchsorted(lines, all_lines[a]))
        i1 = int(np.searchsorted(lines, all_lines[b - 1], side="right"))
        yield names, lines[i0:i1], [None if c is None else c.slice(i0, i1 - i0) for c in cols]


def valid_timestamp_rows(
    names: list[str], cols: list[pa.Array], chunk: LineChunk, lines: np.ndarray, ctx, what: str
) -> tuple[list[pa.Array], np.ndarray] | None:
    """Drop (as bad rows) rows whose date/time fields are not a date and a time."""
    i_date, i_time = names.index("date"), names.index("time")
    date, time = cols[i_date], cols[i_time]
    if F.is_typed_date_time(date, time):  # parsed by the CSV fast path: valid, or "-" (null)
        if date.null_count == 0 and time.null_count == 0:
            return cols, lines
        cols = list(cols)
        date, time = cols[i_date], cols[i_time] = F.date_time_as_text(date, time)
    try:  # fast path: every row has a well-formed date and time
        pc.cast(F.join_date_time(date, time), pa.timestamp("s"))
        if date.null_count == 0 and time.null_count == 0:
            return cols, lines
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = pc.and_(pc.match_substring_regex(date, DATE_RE), pc.match_substring_regex(time, TIME_RE))
    ok = pc.fill_null(ok, False)
    if pc.all(ok).as_py():
        return cols, lines
    okn = ok.to_numpy(zero_copy_only=False)
    for k in np.flatnonzero(~okn).tolist():
        ctx.bad(
            chunk.first_line + int(lines[k]),
            chunk.line(int(lines[k])),
            f"not a {what} row: date/time fields are {date[k].as_py()!r} {time[k].as_py()!r}",
        )
    if not okn.any():
        return None
    return [None if c is None else c.filter(ok) for c in cols], lines[okn]


def strip_zwsp(a: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring(a, ZWSP)).as_py():
        return pc.replace_substring(a, ZWSP, "")
    return a


def canonical(names: list[str], cols: list[pa.Array], zwsp: bool = True) -> tuple[dict[str, pa.Array], int]:
    """Canonical columns from CloudFront fields; returns (columns, conversion failures).

    ``zwsp``: the input may hold U+200B (legacy RTMP examples); stripped from values.
    """
    out: dict[str, pa.Array] = {}
    failed = 0
    # fields of one column in the order of FIELD_MAP: the first one's value wins, the
    # next fills where it is missing
    rank = {k: i for i, k in enumerate(FIELD_MAP)}
    pairs = sorted(zip(names, cols, strict=True), key=lambda nc: rank.get(nc[0].lower(), len(rank)))
    for name, raw in pairs:
        spec = FIELD_MAP.get(name.lower())
        if spec is None or raw is None:
            continue
        target, kind = spec
        if target in out:
            if target == "host" and out[target].null_count:
                out[target] = pc.coalesce(out[target], F.dash_null(strip_zwsp(raw) if zwsp else raw))
            continue
        col = strip_zwsp(raw) if zwsp and raw.type == pa.string() else raw
        if (common := F.convert(kind, col)) is not None:
            v, bad = common
            failed += bad
        elif kind == "decode":
            v = F.on_distinct(col, F.double_pct_decode)
        elif kind == "query":
            v = F.dash_null(col)
            if pc.any(pc.match_substring(v, "%25")).as_py():
                v = pc.replace_substring_regex(v, _DOUBLE_PCT, r"%\1")
        else:  # pragma: no cover - table typo
            raise AssertionError(kind)
        out[target] = v
    if "date" in names and "time" in names:
        date, time = cols[names.index("date")], cols[names.index("time")]
        if F.is_typed_date_time(date, time):
            out["timestamp"] = F.date_time_to_ts(date, time)
        else:
            text = F.join_date_time(date, time)
            ts = F.iso_to_ts(text)
            failed += F.count_failed(text, ts)
            out["timestamp"] = ts
    return out, failed


def build_batch(
    names: list[str], cols: list[pa.Array], chunk: LineChunk, lines: np.ndarray, ctx
) -> pa.RecordBatch | None:
    if "date" not in names or "time" not in names:
        # a #Fields header without date/time: nothing to check, nothing to time-stamp
        checked = (cols, lines)
    else:
        checked = valid_timestamp_rows(names, cols, chunk, lines, ctx, "CloudFront")
    if checked is None:
        return None
    cols, lines = checked  # already in line order (see _file_order_runs)
    zwsp = not chunk.is_ascii and ZWSP_BYTES in chunk.buf
    out, failed = canonical(names, cols, zwsp)
    if failed:
        ctx.conversion_failed(failed)
    fields = F.original_fields(names, cols, F.kept_fields(ctx.options))
    return make_batch(out, len(lines), ctx.source_file, pa.array(chunk.line_numbers(lines)), fields, on_failed=ctx.conversion_failed)


def _kind(name: str) -> str | None:
    """The converter kind of a field the canonical record is made from (see
    :data:`FIELD_MAP`; the CSV fast path may parse ``date`` and ``time``: see
    valid_timestamp_rows), None for the others."""
    n = name.lower()
    if n in ("date", "time"):
        return n
    spec = FIELD_MAP.get(n)
    return spec[1] if spec else None


def _target(name: str) -> str | None:
    """The canonical column a field makes (None for date and time, and unknown fields)."""
    spec = FIELD_MAP.get(name.lower())
    return spec[0] if spec else None


# --- detection ----------------------------------------------------------------------------


def _fields_lines(head: Head) -> list[set[str]]:
    return [
        {_clean_name(f).lower() for f in ln.split(":", 1)[1].split()}
        for ln in head.lines
        if ln.startswith("#Fields:")
    ]


def tokenize_loose(line: str) -> list[str]:
    """Like :func:`tokenize`, but tab-separated rows may hold empty fields (Tomcat ``%q``)."""
    s = line.strip(" \t")
    if "\t" in s:
        parts = [p.strip(" ") for p in s.split("\t")]
        if not any(" " in p for p in parts):
            return parts
    return s.split()


def is_tomcat_row(toks: list[str]) -> bool:
    """A Snowplow Clojure-collector Tomcat row: CloudFront layout with ``-`` as edge location."""
    return (
        MIN_FIELDS <= len(toks) <= 17
        and bool(_DATE.match(toks[0]))
        and bool(_TIME.match(toks[1]))
        and toks[2] == "-"
        and bool(_IP.match(toks[4]))
        and bool(_METHOD.match(toks[5]))
    )


def line_score(line: str) -> float:
    """How much one headerless line looks like a CloudFront web/RTMP row (0..1)."""
    toks = tokenize(line)
    if len(toks) < 2 or is_tomcat_row(toks) or is_tomcat_row(tokenize_loose(line)):
        return 0.0
    dt = bool(_DATE.match(toks[0])) + bool(_TIME.match(toks[1]))
    web = rtmp = 0
    if len(toks) >= 6:
        web = dt + sum(
            bool(rx.match(t)) for rx, t in zip((_EDGE, _BYTES, _IP, _METHOD), toks[2:6], strict=True)
        )
        rtmp = dt + bool(_EDGE.match(toks[2])) + bool(_IP.match(toks[3])) + (toks[4] in RTMP_EVENTS)
    slots = max(web, rtmp)
    full = len(toks) >= MIN_FIELDS
    if full and (slots == 6 or rtmp == 5):
        return 1.0
    if full and slots == 5:
        return 0.8  # one corrupted value (e.g. a mangled date)
    if slots >= 5:
        return 0.7  # a CloudFront row cut short
    tab_sep = "\t" in line and len(line.strip(" \t").split("\t")) == len(toks)
    if full and tab_sep and len(toks) in WEB_COUNTS:
        return 0.75 if dt == 2 else 0.3  # the right shape with odd values (test rows)
    if dt == 2:
        return 0.4 if tab_sep else 0.2
    return 0.0


def sniff(head: Head) -> float:
    fl = _fields_lines(head)
    if fl:
        names = fl[-1]
        if names & {"x-edge-location", "x-edge-request-id", "x-edge-result-type", "x-cf-status"}:
            return 0.97
        return 0.0
    data = head.data_lines
    text = head.text
    if not data or not ("\t" in text or DATE_TOKEN.search(text) or _TIME_TOKEN.search(text)):
        return 0.0  # (a line scores with a date or time field, or as tab-separated fields)
    scores = [line_score(ln) for ln in data[:64]]
    best = max(scores)
    if best == 0.0:
        return 0.0
    mean = sum(scores) / len(scores)
    if best == 1.0 and mean >= 0.75:
        return 0.96
    return round(0.97 * (0.5 * mean + 0.5 * best), 3)


READERS = {
    "cloudfront": Reader(
        "cloudfront",
        "Amazon CloudFront standard logs (12-33 fields, with or without #Fields; host from x-host-header) and legacy RTMP",
        sniff,
        read,
    ),
}

__all__ = ["READERS", "WEB_FIELDS", "RTMP_FIELDS", "tokenize", "read", "sniff", "decode"]
