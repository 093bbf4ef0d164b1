"""Vectorised building blocks shared by the writers (no per-row Python).

* :func:`data_bytes` / :func:`has_bytes`: look at the UTF-8 data of a string array with
  numpy, to skip replacement passes that would change nothing;
* :func:`format_time`: ``strftime`` through per-day and per-second-of-day lookups
  (Arrow's ``strftime`` costs about 2 us a row; a ``take`` is a few ns);
* :func:`constant`: a column holding one value in the whole batch becomes a literal;
* :func:`write_lines`: one ``binary_join_element_wise`` over columns and literal pieces
  (adjacent literals merged, newline included) per block of rows, each written as one
  Arrow buffer (no copy to ``bytes``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_US_PER_DAY = 86_400_000_000
_US_PER_S = 1_000_000


# --------------------------------------------------------------------------- string data

def _as_string(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if not (pa.types.is_string(a.type) or pa.types.is_large_string(a.type)):
        a = a.cast(pa.string())
    return a


def data_bytes(a: pa.Array) -> np.ndarray:
    """The UTF-8 bytes of a string array's values (a zero-copy numpy view)."""
    a = _as_string(a)
    if len(a) == 0 or a.buffers()[2] is None:
        return np.empty(0, np.uint8)
    dtype = np.int64 if pa.types.is_large_string(a.type) else np.int32
    offs = np.frombuffer(a.buffers()[1], dtype=dtype)
    lo, hi = int(offs[a.offset]), int(offs[a.offset + len(a)])
    return np.frombuffer(a.buffers()[2], dtype=np.uint8)[lo:hi]


def has_bytes(a: pa.Array, chars: str) -> set[str]:
    """Which of the (ASCII) ``chars`` occur anywhere in ``a`` (null slots may count too,
    which only costs a pass that changes nothing)."""
    data = data_bytes(a)
    if len(data) == 0:
        return set()
    if any(c < " " for c in chars) and int(data.min()) >= 0x20:
        chars = "".join(c for c in chars if c >= " ")  # one pass rules out all controls
    return {c for c in chars if (data == ord(c)).any()}


def control_chars(a: pa.Array) -> bool:
    """Whether any value holds a control character (U+0000..U+001F)."""
    data = data_bytes(a)
    return bool(len(data)) and int(data.min()) < 0x20


def constant(a: pa.Array) -> str | None:
    """The value of a string array whose rows all hold the same (non-null) text, else
    ``None`` (a cheap numpy check: equal lengths, then equal bytes)."""
    a = _as_string(a)
    n = len(a)
    if n == 0 or a.null_count:
        return None
    dtype = np.int64 if pa.types.is_large_string(a.type) else np.int32
    offs = np.frombuffer(a.buffers()[1], dtype=dtype)[a.offset : a.offset + n + 1]
    width = int(offs[1] - offs[0])
    if int(offs[-1] - offs[0]) != width * n:
        return None
    if width:
        lens = np.diff(offs)
        if lens.min() != width:
            return None
        rows = data_bytes(a).reshape(n, width)
        probe = rows[:: max(1, n // 16)]  # most columns differ somewhere in a few rows
        if not (probe == rows[0]).all() or not (rows == rows[0]).all():
            return None
    return a[0].as_py()


def replace_chars(a: pa.Array, table: Sequence[tuple[str, str]]) -> pa.Array:
    """Apply single-character replacements in order, skipping those that cannot match."""
    a = _as_string(a)
    singles = [old for old, _ in table if len(old) == 1 and old.isascii()]
    present = has_bytes(a, "".join(singles)) if len(singles) == len(table) else None
    for old, new in table:
        if present is not None:
            if old not in present:
                continue
        elif not pc.any(pc.match_substring(a, old)).as_py():
            continue
        a = pc.replace_substring(a, old, new)
        if present is not None:
            # the replacement may introduce characters a later rule replaces
            present |= {c for c in new if c in singles}
    return a


# --------------------------------------------------------------------------- time

_DATE_DIRECTIVES = set("YmdyjbBaAeuwUWVGgCxD")
_TIME_DIRECTIVES = set("HMS")
_DIRECTIVE = re.compile(r"%.")


def _split_format(fmt: str) -> tuple[str, str] | None:
    """Split ``fmt`` into a part that depends only on the day and a part that depends
    only on the second of the day (``"%Y-%m-%d %H:%M:%S"`` -> ``("%Y-%m-%d ", "%H:%M:%S")``),
    or ``None`` when it cannot be split that way."""
    cut = None
    for m in _DIRECTIVE.finditer(fmt):
        d = m.group()[1]
        if d == "%":
            continue
        if d in _TIME_DIRECTIVES:
            if cut is None:
                cut = m.start()
        elif d in _DATE_DIRECTIVES:
            if cut is not None:
                return None
        else:
            return None
    if cut is None:
        return fmt, ""
    return fmt[:cut], fmt[cut:]


@lru_cache(maxsize=16)
def _second_table(fmt: str) -> pa.Array:
    """``fmt`` (only %H %M %S and literals) for each of the 86,400 seconds of a day."""
    secs = pa.array(np.arange(86_400, dtype=np.int64), pa.timestamp("s", tz="UTC"))
    return pc.strftime(secs, format=fmt)


def _utc(tz: str | None) -> bool:
    return tz is None or tz.upper() in ("UTC", "Z", "+00:00", "ETC/UTC", "GMT", "ETC/GMT")


def split_times(ts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(day number, second of day, microsecond, valid mask) of a UTC timestamp array, or
    ``None`` for time zones/units this fast path does not cover."""
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    if not pa.types.is_timestamp(ts.type) or not _utc(ts.type.tz) or ts.type.unit == "ns":
        return None
    if ts.type.unit != "us":
        ts = ts.cast(pa.timestamp("us", tz=ts.type.tz))
    us = pc.fill_null(ts.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    if len(us) and us.min() < 0:
        return None  # before 1970: rounding rules differ between tools; not worth a fast path
    day, rest = np.divmod(us, _US_PER_DAY)
    sod, frac = np.divmod(rest, _US_PER_S)
    valid = np.ones(len(us), bool) if ts.null_count == 0 else ts.is_valid().to_numpy(zero_copy_only=False)
    return day, sod, frac, valid


def day_strings(day: np.ndarray, fmt: str, valid: np.ndarray | None = None, *,
                literal: bool = False) -> pa.Array | str:
    """``fmt`` (date directives only) of each day number, formatted on the distinct days
    (with ``literal``, one string when every row is the same day)."""
    mask = None if valid is None or valid.all() else ~valid
    lo, hi = (int(day.min()), int(day.max())) if len(day) else (0, 0)
    if hi - lo < 4096:  # logs cover a few days: a table over the range, no sort
        uniq, inv = np.arange(lo, hi + 1, dtype=np.int64), (day - lo)
    else:
        uniq, inv = np.unique(day, return_inverse=True)
    if len(uniq) == 1 and mask is None:
        one = pc.strftime(pa.array(uniq * 86_400, pa.timestamp("s", tz="UTC")), format=fmt)[0]
        return one.as_py() if literal else pa.repeat(one, len(day))
    starts = pa.array(uniq * 86_400, pa.timestamp("s", tz="UTC"))
    table = pc.strftime(starts, format=fmt)
    return table.take(pa.array(inv.astype(np.int32, copy=False), mask=mask))


def time_pieces(ts: pa.Array, fmt: str) -> list[pa.Array | str] | None:
    """Pieces (lookups, literals) whose concatenation is ``format_time(ts, fmt)`` (null
    rows null), or ``None`` when ``fmt``/``ts`` is outside the fast path."""
    parts = _split_format(fmt)
    split = split_times(ts) if parts is not None else None
    if split is None:
        return None
    day, sod, _, valid = split
    date_fmt, time_fmt = parts  # type: ignore[misc]
    mask = None if valid.all() else ~valid
    pieces: list[pa.Array | str] = []
    if date_fmt:
        pieces.append(day_strings(day, date_fmt, valid, literal=bool(time_fmt)))
    if time_fmt:
        pieces.append(_second_table(time_fmt).take(pa.array(sod.astype(np.int32), mask=mask)))
    return pieces


def format_time(ts: pa.Array, fmt: str) -> pa.Array:
    """``pc.strftime(ts.cast(timestamp[s]), fmt)`` for UTC timestamps: the same text (whole
    seconds, sub-seconds truncated), nulls kept, built from lookups."""
    pieces = time_pieces(ts, fmt)
    if pieces is None:
        if isinstance(ts, pa.ChunkedArray):
            ts = ts.combine_chunks()
        return pc.strftime(ts.cast(pa.timestamp("s", tz=ts.type.tz), safe=False), format=fmt)
    if len(pieces) == 1 and not isinstance(pieces[0], str):
        return pieces[0]
    return join_pieces(pieces, len(ts))


@lru_cache(maxsize=1)
def _millis_table() -> pa.Array:
    return pa.array([f"{i:03d}" for i in range(1000)])


def millis3(ts: pa.Array) -> pa.Array:
    """The millisecond of each timestamp as three digits (``"007"``), null kept."""
    split = split_times(ts)
    if split is None:
        return pc.utf8_lpad(pc.millisecond(ts).cast(pa.string()), 3, "0")
    _, _, frac, valid = split
    idx = pa.array((frac // 1000).astype(np.int32), mask=None if valid.all() else ~valid)
    return _millis_table().take(idx)


# --------------------------------------------------------------------------- lines

Piece = pa.Array | str


def merge_literals(pieces: Sequence[Piece]) -> list[Piece]:
    """Adjacent literal strings merged into one (fewer join inputs)."""
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, str):
            if not p:
                continue
            if out and isinstance(out[-1], str):
                out[-1] += p
                continue
        out.append(p)
    return out


def join_pieces(pieces: Sequence[Piece], n: int) -> pa.Array:
    """Concatenate columns and literals row-wise (a null column value makes the row null)."""
    merged = merge_literals(pieces)
    arrays = [p for p in merged if not isinstance(p, str)]
    if not arrays:
        return pa.repeat(pa.scalar("".join(merged)), n)  # type: ignore[arg-type]
    args = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in merged]
    if len(args) == 1:
        return _as_string(args[0])
    return pc.binary_join_element_wise(*args, pa.scalar("", pa.string()))


def buffer_of(lines: pa.Array) -> pa.Buffer:
    """The data of a (non-null) string array as one buffer (zero copy)."""
    lines = _as_string(lines)
    if len(lines) == 0 or lines.buffers()[2] is None:
        return pa.py_buffer(b"")
    dtype = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offs = np.frombuffer(lines.buffers()[1], dtype=dtype)
    lo, hi = int(offs[lines.offset]), int(offs[lines.offset + len(lines)])
    return lines.buffers()[2].slice(lo, hi - lo)


def join_lines(pieces: Sequence[Piece], n: int) -> pa.Buffer:
    """Row-wise concatenation of ``pieces`` with a newline after each row, as one buffer."""
    return buffer_of(join_pieces([*pieces, "\n"], n))


#: rows joined at a time: bounds the text held in memory (and the join's scratch) to a
#: few MB per block however large the batch
BLOCK_ROWS = 8192


def write_lines(out, pieces: Sequence[Piece], n: int, rows: int = BLOCK_ROWS) -> None:
    """Write the lines of ``pieces`` (newline after each row) to ``out`` block by block."""
    pieces = merge_literals([*pieces, "\n"])
    for lo in range(0, n, rows):
        m = min(rows, n - lo)
        part = [p if isinstance(p, str) else p.slice(lo, m) for p in pieces]
        out.write(memoryview(buffer_of(join_pieces(part, m))))
