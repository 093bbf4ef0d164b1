"""CSV usage logs (``dbYYYYMMDD_NNN.csv`` and the extended ``eYYYYMMDD_NNN.csv``).

The usage-DB registration engine writes a *title line* (unquoted field names, counted as
a directive, not data) followed by data lines in which every value is double-quoted and
values are separated by commas; ``-`` marks a missing value.  Date and time are
``yyyy/mm/dd`` and ``hh:mm:ss`` in the server's local time: the reader option ``tz``
(an IANA zone such as ``Asia/Tokyo`` or an offset such as ``+09:00``; default UTC) says
which.

The extended file's title line names one field fewer than its data lines carry
(``server,s-date,s-time,c-host,s-url,c-response`` over data lines with 7 values): its
data lines hold ``c-ip`` after ``c-host``, as the format description shows.  The reader
handles this explicitly: when a title has ``c-host`` but no ``c-ip`` and also names
``s-url`` or ``c-response``, lines with one value more than the title are read with
``c-ip`` inserted after ``c-host``; lines with exactly the title's count are read with
the title as written.  Without any title line the two documented layouts
(:data:`DB_FIELDS`, 19 values, and :data:`EXT_FIELDS`, 7 values) are used by count.

Canonical columns: ``site`` server, ``client_ip`` c-ip, ``method`` s-method, ``protocol``
s-protocol, ``host`` s-host, ``server_ip`` s-ip, ``path``/``query`` from s-path (or
s-url; a full URL there also gives the host when s-host is absent), ``status``
s-status, ``bytes_sent`` s-byte, ``bytes_received`` r-byte (what the remote server
sent to this server, following the design table), ``referer`` l-url, ``user_agent``
c-agent, ``duration_ms`` s-elaps (extended file: c-response), ``username`` c-user and
``user_id`` c-cookie-id (the cookie's access id names a browser across visits, not
one visit).  c-host and r-status stay in ``fields`` only.

A data line with another number of values than its layout, or with broken quoting
(a stray quote, an unterminated value), is a bad row.  ``fields`` keeps every token as
written, quotes included (``"web01"``), so a CSV usage writer can reproduce the line.

Fast path: lines shaped ``"v1","v2",...,"vn"`` with no other quotes are cut with numpy
offsets into zero-copy Arrow arrays; other lines are tokenised one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..lines import LineChunk, to_str
from ..schema import make_batch
from . import Head, Reader
from . import _fields as F
from .cdn import split_uri

QUOTE, COMMA = 34, 44

#: the CSV format log file (title line and data lines)
DB_FIELDS: tuple[str, ...] = (
    "server",
    "s-date",
    "s-time",
    "c-host",
    "c-ip",
    "s-method",
    "s-protocol",
    "s-host",
    "s-ip",
    "s-path",
    "s-status",
    "r-status",
    "s-byte",
    "r-byte",
    "l-url",
    "c-agent",
    "s-elaps",
    "c-cookie-id",
    "c-user",
)
#: the extended file's title line, as written (one name short of its data lines)
EXT_TITLE: tuple[str, ...] = ("server", "s-date", "s-time", "c-host", "s-url", "c-response")
#: the extended file's data lines
EXT_FIELDS: tuple[str, ...] = ("server", "s-date", "s-time", "c-host", "c-ip", "s-url", "c-response")

KNOWN_NAMES = frozenset((*DB_FIELDS, *EXT_FIELDS))

#: field name -> (canonical column, converter kind)
FIELD_MAP: dict[str, tuple[str, str]] = {
    "server": ("site", "str"),
    "c-ip": ("client_ip", "str"),
    "s-method": ("method", "str"),
    "s-protocol": ("protocol", "str"),
    "s-host": ("host", "str"),
    "s-ip": ("server_ip", "str"),
    "s-status": ("status", "int16"),
    "s-byte": ("bytes_sent", "int64"),
    "r-byte": ("bytes_received", "int64"),
    "l-url": ("referer", "str"),
    "c-agent": ("user_agent", "str"),
    "s-elaps": ("duration_ms", "float"),
    "c-response": ("duration_ms", "float"),
    "c-cookie-id": ("user_id", "str"),
    "c-user": ("username", "str"),
}

_NAME = r"[A-Za-z][A-Za-z0-9_()\-]*"
_TITLE_RE = re.compile(rf"^\s*{_NAME}(\s*,\s*{_NAME})+\s*$")
_DATE_RE = r"^\d{4}/\d{2}/\d{2}$"
_TIME_RE = r"^\d{1,2}:\d{2}:\d{2}$"


def title_tokens(text: str) -> list[str] | None:
    """Field names of a title line, or None when ``text`` is not one."""
    if not _TITLE_RE.match(text):
        return None
    toks = [t.strip() for t in text.split(",")]
    if sum(1 for t in toks if t in KNOWN_NAMES) < 2:
        return None
    return toks


def layouts_for(title: Sequence[str] | None) -> list[tuple[str, ...]]:
    """Data-line layouts to try, in order, under ``title`` (None: no title seen yet)."""
    if title is None:
        return [DB_FIELDS, EXT_FIELDS]
    names = tuple(title)
    if "c-host" in names and "c-ip" not in names and ("s-url" in names or "c-response" in names):
        k = names.index("c-host") + 1
        return [(*names[:k], "c-ip", *names[k:]), names]
    return [names]


def _check_tz(tz: str | None) -> str | None:
    if tz is None or tz == "":
        return None
    if not isinstance(tz, str):
        raise ConfigError(f"reader option 'tz' must be a time zone name, not {type(tz).__name__}")
    if tz.upper() in ("UTC", "Z", "GMT"):
        return None
    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("us")), tz)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ConfigError(f"reader option 'tz': unknown time zone {tz!r} (use e.g. Europe/Berlin or +09:00)") from e
    return tz


# --- reading -------------------------------------------------------------------------------


def read(chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    tz = _check_tz(ctx.options.get("tz"))
    title: tuple[str, ...] | None = None
    for chunk in chunks:
        blank = chunk.blank_mask()
        ctx.stats.blank += int(blank.sum())
        data = ~blank
        # title lines: unquoted lines of field names (normally only line 1)
        fb = chunk.first_bytes()
        cand = np.flatnonzero(data & (fb != QUOTE))
        titles: list[tuple[int, list[str]]] = []
        for i in cand.tolist():
            if chunk.ends[i] - chunk.starts[i] > 4096:
                continue
            toks = title_tokens(chunk.text(i))
            if toks is not None:
                titles.append((i, toks))
        ctx.stats.directives += len(titles)
        lo = 0
        for t, toks in [*titles, (len(chunk), None)]:
            if t > lo:
                idx = np.flatnonzero(data[lo:t]) + lo
                if len(idx):
                    yield from _segment(chunk, idx, title, tz, ctx)
            if toks is not None:
                title = tuple(toks)
            lo = t + 1


def _tokens(buf: bytes, bounds: np.ndarray) -> pa.Array:
    """Zero-copy binary array whose value ``i`` is ``buf[bounds[i]:bounds[i+1]]``."""
    off = bounds.astype(np.int32) if len(buf) < 2**31 - 1 else bounds
    typ = pa.binary() if off.dtype == np.int32 else pa.large_binary()
    return pa.Array.from_buffers(typ, len(bounds) - 1, [None, pa.py_buffer(off), pa.py_buffer(buf)])


def _count_in(pos: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.searchsorted(pos, hi) - np.searchsorted(pos, lo)


def _segment(chunk: LineChunk, idx: np.ndarray, title, tz, ctx) -> Iterator[pa.RecordBatch]:
    layouts = layouts_for(title)
    arr = chunk.arr
    starts, ends = chunk.starts[idx], chunk.ends[idx]
    # fast path, with numpy: '"v1","v2",...,"vn"' where the only quotes inside the outer
    # pair are those of n-1 non-overlapping '","' separators
    long = ends - starts >= 2
    shaped = long.copy()
    shaped[long] = (arr[starts[long]] == QUOTE) & (arr[ends[long] - 1] == QUOTE)
    in_s, in_e = starts + 1, ends - 1
    lo, hi = int(starts[0]), int(ends[-1])
    qpos = np.flatnonzero(arr[lo:hi] == QUOTE) + lo
    nq = _count_in(qpos, in_s, in_e)
    # '","' triples: a quote followed by a comma and a quote
    q_ok = qpos + 2 < len(arr)
    cand = qpos[q_ok]
    tp = cand[(arr[cand + 1] == COMMA) & (arr[cand + 2] == QUOTE)]
    t_a = np.searchsorted(tp, in_s)
    nt = np.searchsorted(tp, in_e - 2) - t_a
    overlap = tp[1:][np.diff(tp) < 3]
    n_over = _count_in(overlap, in_s, in_e - 2)
    done = np.zeros(len(idx), dtype=bool)
    for names in layouts:
        n = len(names)
        sel = shaped & (nq == 2 * (n - 1)) & (nt == n - 1) & (n_over == 0) & ~done
        m = int(sel.sum())
        if not m:
            continue
        done |= sel
        # value k spans [open_k + 1, close_k); its raw token [open_k, close_k + 1)
        opens = np.empty((m, n), dtype=np.int64)
        closes = np.empty((m, n), dtype=np.int64)
        opens[:, 0] = starts[sel]
        closes[:, -1] = ends[sel] - 1
        if n > 1:
            seps = tp[t_a[sel][:, None] + np.arange(n - 1)]
            closes[:, :-1] = seps
            opens[:, 1:] = seps + 2
        inner = np.empty((m, 2 * n), dtype=np.int64)
        inner[:, 0::2] = opens + 1
        inner[:, 1::2] = closes
        raw = np.empty((m, 2 * n), dtype=np.int64)
        raw[:, 0::2] = opens
        raw[:, 1::2] = closes + 1
        t_inner = _tokens(chunk.buf, inner.ravel())
        t_raw = _tokens(chunk.buf, raw.ravel())
        base = np.arange(0, m * 2 * n, 2 * n, dtype=np.int64)
        values = [to_str(t_inner.take(pa.array(base + 2 * k))) for k in range(n)]
        raws = [to_str(t_raw.take(pa.array(base + 2 * k))) for k in range(n)]
        yield _batch(names, values, raws, chunk.line_numbers(idx[sel]), tz, ctx)
    rest = np.flatnonzero(~done)
    if not len(rest):
        return
    # slow path: quoting the fast path does not handle ("" escapes, unquoted values, ...)
    by_layout: dict[int, tuple[list[int], list[list[str]]]] = {}
    want = " or ".join(str(len(x)) for x in layouts)
    for j in rest.tolist():
        i = int(idx[j])
        toks = split_line(chunk.text(i))
        if toks is None:
            ctx.bad(chunk.first_line + i, chunk.line(i), "broken quoting (a stray or unbalanced quote)")
            continue
        hit = next((k for k, names in enumerate(layouts) if len(names) == len(toks)), None)
        if hit is None:
            ctx.bad(chunk.first_line + i, chunk.line(i), f"{len(toks)} values, expected {want}")
            continue
        bucket = by_layout.setdefault(hit, ([], []))
        bucket[0].append(i)
        bucket[1].append(toks)
    for k, (line_idx, rows) in sorted(by_layout.items()):
        names = layouts[k]
        raws = [pa.array([r[c] for r in rows], pa.string()) for c in range(len(names))]
        values = [pa.array([unquote(r[c]) for r in rows], pa.string()) for c in range(len(names))]
        yield _batch(names, values, raws, chunk.line_numbers(np.array(line_idx, dtype=np.int64)), tz, ctx)


_TOKEN = re.compile(r'("(?:[^"]|"")*"|[^,"]*)(,|$)')


def split_line(text: str) -> list[str] | None:
    """Raw CSV tokens of one line (quotes kept), or None when the quoting is broken."""
    toks: list[str] = []
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        toks.append(m.group(1))
        if not m.group(2):
            return toks if m.end() == len(text) else None
        pos = m.end()


def unquote(token: str) -> str:
    """A quoted token without its quotes (doubled quotes undone); others as they are."""
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return token[1:-1].replace('""', '"')
    return token


def _batch(
    names: Sequence[str], cols: Sequence[pa.Array], raws: Sequence[pa.Array], line_numbers: np.ndarray, tz, ctx
) -> pa.RecordBatch:
    """``cols``: unquoted values (converted); ``raws``: the tokens as written (``fields``)."""
    n = len(line_numbers)
    originals = dict(zip(F.unique_names(names), raws, strict=True))
    by_name: dict[str, pa.Array] = {}
    for name, col in zip(names, cols, strict=True):
        by_name.setdefault(name, col)
    out: dict[str, pa.Array] = {}
    failed = 0
    for name, col in by_name.items():
        spec = FIELD_MAP.get(name)
        if spec is None:
            continue
        target, kind = spec
        if target in out:
            continue
        common = F.convert(kind, col)
        if common is None:  # pragma: no cover - table typo
            raise AssertionError(kind)
        out[target], bad = common
        failed += bad
    uri = by_name.get("s-path", by_name.get("s-url"))
    if uri is not None:
        parts = split_uri(uri)
        out["path"], out["query"] = parts["path"], parts["query"]
        if "host" not in out:
            out["host"] = parts["host"]
    date, time = by_name.get("s-date"), by_name.get("s-time")
    if date is not None and time is not None:
        ok = pc.fill_null(
            pc.and_(pc.match_substring_regex(date, _DATE_RE), pc.match_substring_regex(time, _TIME_RE)), False
        )
        text = F.join_date_time(pc.replace_substring(date, "/", "-"), time)
        text = pc.if_else(ok, text, pa.scalar(None, pa.string()))
        ts = F.local_to_utc(text, tz)
        present = pc.fill_null(pc.or_(pc.not_equal(date, F.DASH), pc.not_equal(time, F.DASH)), False)
        failed += int(pc.sum(pc.and_(present, pc.is_null(ts))).as_py() or 0)
        out["timestamp"] = ts
    if failed:
        ctx.conversion_failed(failed)
    return make_batch(out, n, ctx.source_file, pa.array(line_numbers, pa.int64()), originals, on_failed=ctx.conversion_failed)


# --- detection -----------------------------------------------------------------------------

_DATA_RE = re.compile(r'^"[^"]*","\d{4}/\d{2}/\d{2}","\d{1,2}:\d{2}:\d{2}",')
_FILE_NAME = re.compile(r"^(db|e)\d{8}_\d{3}\.csv$")


def sniff(head: Head) -> float:
    lines = head.lines[:64]
    if not lines:
        return 0.0
    hint = 0.02 if _FILE_NAME.match(head.name or "") else 0.0
    toks = title_tokens(lines[0])
    data = [ln for ln in lines if title_tokens(ln) is None]
    shaped = sum(1 for ln in data if _DATA_RE.match(ln))
    ratio = shaped / len(data) if data else 1.0
    if toks and toks[:3] == ["server", "s-date", "s-time"] and ratio >= 0.5:
        return 0.96 + hint
    if data and ratio >= 0.8:
        return 0.85 + hint
    return 0.0


READERS = {
    "csv-usage": Reader(
        "csv-usage",
        "CSV usage logs (title line, quoted values; db... and extended e... files)",
        sniff,
        read,
        options=("tz",),
    ),
}
