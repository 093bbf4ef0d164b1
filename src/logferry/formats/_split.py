"""Vectorised splitting of delimiter-separated lines into columns.

:func:`split_regular` finds, with numpy, the lines that hold exactly ``n`` fields
separated by single ``sep`` bytes (no empty fields, no quote characters) and cuts them
into ``n`` columns without a Python loop over rows:

* the byte offsets of every field and separator become one monotonic offsets array, so the
  chunk's own buffer is viewed zero-copy as an Arrow array of alternating
  ``field, separator, field, ..., field, gap`` tokens;
* column ``k`` is then an Arrow ``take`` of every ``2n``-th token.

The other lines are returned for the (slow, per-line) tokenizer of the format.

The common case -- a run of consecutive lines that all qualify -- is first tried with one
call of Arrow's C++ CSV parser (quoting off), about twice as fast as the numpy cut; any
doubt (a field count off, an empty field, a CR, a forbidden byte, invalid UTF-8) sends the
run to the numpy path above, so both give the same columns.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from ..lines import CR, LineChunk, gather

QUOTE = 34
#: fewer lines than this are not worth a CSV parser call
_CSV_MIN_LINES = 64


def _any_byte(buf: bytes, byte: int, lo: int, hi: int) -> bool:
    return buf.find(bytes((byte,)), lo, hi) != -1


def split_regular(
    chunk: LineChunk,
    idx: np.ndarray,
    sep: int,
    n: int,
    *,
    forbid: tuple[int, ...] = (QUOTE,),
    allow_empty: bool = False,
    want: Collection[int] | None = None,
    types: Mapping[int, pa.DataType] | None = None,
) -> tuple[np.ndarray, list[pa.Array | None], np.ndarray]:
    """Split lines ``idx`` of ``chunk`` on byte ``sep`` into ``n`` columns.

    Returns ``(good_idx, columns, other_idx)``; ``columns[k]`` holds field ``k`` of the
    lines in ``good_idx`` (``string`` when the bytes are valid UTF-8, else ``binary``).
    ``other_idx`` are lines that need the slow path (wrong field count, empty fields
    unless ``allow_empty``, or a ``forbid`` byte).  With ``want``, only those columns are
    built and the others are ``None`` (the lines are still checked field by field).
    Columns named in ``types`` (numbers) may come back already of that type, ``-`` as
    null, when Arrow's CSV parser reads them; else as text: callers convert either.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) == 0 or n < 1:
        return idx, _empty(n), idx
    fast = _split_csv(chunk, idx, sep, n, forbid, allow_empty, want, types)
    if fast is not None:
        return idx, fast, idx[:0]
    buf = chunk.buf
    arr = chunk.arr
    starts = chunk.starts[idx]
    ends = chunk.ends[idx]
    lo, hi = int(starts[0]), int(ends[-1])
    window = arr[lo:hi]
    sp = np.flatnonzero(window == sep)
    sp += lo
    a = np.searchsorted(sp, starts)
    b = np.searchsorted(sp, ends)
    counts = b - a
    ok = counts == n - 1
    for byte in forbid:
        if _any_byte(buf, byte, lo, hi):
            fpos = np.flatnonzero(window == byte) + lo
            ok &= (np.searchsorted(fpos, ends) - np.searchsorted(fpos, starts)) == 0
    if not allow_empty:
        ok &= ends > starts
        if len(sp):
            has = counts > 0
            first_sp = sp[np.minimum(a, len(sp) - 1)]
            last_sp = sp[np.maximum(b - 1, 0)]
            ok &= ~(has & ((first_sp == starts) | (last_sp == ends - 1)))
            adj = sp[:-1][np.diff(sp) == 1]
            if len(adj):
                ok &= (np.searchsorted(adj, ends) - np.searchsorted(adj, starts)) == 0
    all_ok = bool(ok.all())
    good = idx if all_ok else idx[ok]
    other = idx[:0] if all_ok else idx[~ok]
    m = len(good)
    if m == 0:
        return good, _empty(n), other
    g_starts = starts if all_ok else starts[ok]
    g_ends = ends if all_ok else ends[ok]
    text = _is_text(chunk, int(g_starts[0]), int(g_ends[-1]))
    if n == 1:
        col = gather(arr, g_starts, g_ends)
        return good, [col.view(pa.string()) if text else col], other
    if all_ok and len(sp) == m * (n - 1):
        seps = sp  # every separator in the window belongs to the (all good) lines
    else:
        seps = _select(sp, a[ok], b[ok])
    seps = seps.reshape(m, n - 1)
    bounds = np.empty((m, 2 * n), dtype=np.int64)
    bounds[:, 0] = g_starts
    bounds[:, 1 : 2 * n - 1 : 2] = seps
    bounds[:, 2 : 2 * n - 1 : 2] = seps
    bounds[:, 2 : 2 * n - 1 : 2] += 1
    bounds[:, 2 * n - 1] = g_ends
    return good, columns_from_bounds(buf, bounds, text, want), other


def _split_csv(
    chunk: LineChunk, idx: np.ndarray, sep: int, n: int, forbid: tuple[int, ...], allow_empty: bool,
    want: Collection[int] | None = None,
    types: Mapping[int, pa.DataType] | None = None,
) -> list[pa.Array | None] | None:
    """The common case in one call of Arrow's CSV parser (C++, no quoting): consecutive
    lines, none holding a ``forbid`` byte or a CR, each with exactly ``n`` fields (and no
    empty one unless ``allow_empty``), all valid UTF-8.  ``None`` when any of that does
    not hold (or a ``types`` column holds something else than a number or ``-``): the
    caller then sorts the lines out itself."""
    m = len(idx)
    if n < 2 or m < _CSV_MIN_LINES or int(idx[-1]) - int(idx[0]) + 1 != m:
        return None
    buf = chunk.buf
    lo, hi = int(chunk.starts[idx[0]]), int(chunk.ends[idx[-1]])
    for byte in (*forbid, CR) if chunk.has_cr else forbid:
        if _any_byte(buf, byte, lo, hi):
            return None
    if not allow_empty and _has_empty_field(chunk, idx, sep, lo, hi):
        return None
    names = [str(k) for k in range(n)]
    # the parser checks every row's field count, but builds only the wanted columns
    built = list(range(n)) if want is None else sorted(set(want))
    column_types = dict.fromkeys(names, pa.string())
    typed = {k for k in (types or {}) if k in built}
    for k in typed:
        column_types[names[k]] = types[k]  # type: ignore[index]
    try:
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(buf).slice(lo, hi - lo)),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False,
                                          block_size=max(hi - lo + 1, 1 << 16)),
            parse_options=pcsv.ParseOptions(delimiter=chr(sep), quote_char=False, escape_char=False,
                                            double_quote=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types=column_types, null_values=["-"],
                                                strings_can_be_null=False,
                                                # (ASCII, checked in one pass, is valid UTF-8)
                                                check_utf8=not chunk.is_ascii,
                                                # (an empty list would mean every column)
                                                include_columns=[names[k] for k in built or [0]]),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a row with another field count, bytes that are not UTF-8, not a number
    if table.num_rows != m:
        return None
    # (with nothing built, the parser built column 0 anyway: not returned)
    got = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns][: len(built)]
    cols: list[pa.Array | None] = [None] * n
    for k, c in zip(built, got, strict=True):
        cols[k] = c
    return cols


def _empty(n: int) -> list[pa.Array | None]:
    return [pa.array([], pa.string()) for _ in range(max(n, 0))]


def _has_empty_field(chunk: LineChunk, idx: np.ndarray, sep: int, lo: int, hi: int) -> bool:
    """Whether one of the consecutive lines ``idx`` (spanning ``buf[lo:hi]``) has an empty field: two
    separators in a row (looked for as 16-bit words at even and odd offsets, several
    times faster than ``bytes.find``), or one at a line's start or end."""
    buf, arr = chunk.buf, chunk.arr
    i0 = int(idx[0])  # (the lines are consecutive: slices, not copies)
    s, e = chunk.starts[i0 : i0 + len(idx)], chunk.ends[i0 : i0 + len(idx)]
    if (e == s).any() or (arr[s] == sep).any() or (arr[e - 1] == sep).any():
        return True
    pair = np.uint16(0x0101 * sep)
    for off in (lo, lo + 1):
        words = np.frombuffer(buf, np.uint16, count=max(hi - off, 0) // 2, offset=off)
        if (words == pair).any():
            return True
    return False


def take_columns(
    buf: bytes, starts: list[np.ndarray], ends: list[np.ndarray], text: bool = True
) -> list[pa.Array]:
    """Columns ``k`` of ``buf[starts[k][i]:ends[k][i]]`` for rows ``i``.

    The ranges of one row must be increasing and not overlap, and rows must follow each
    other in the buffer.  Then the boundaries of every field, separator and gap form one
    monotonic offsets array, so the buffer is viewed zero-copy as one Arrow array of
    alternating ``field, separator, ..., field, gap`` tokens, and column ``k`` is an
    Arrow ``take`` of every ``2n``-th token.
    """
    n = len(starts)
    m = len(starts[0])
    bounds = np.empty((m, 2 * n), dtype=np.int64)
    for k in range(n):
        bounds[:, 2 * k] = starts[k]
        bounds[:, 2 * k + 1] = ends[k]
    return columns_from_bounds(buf, bounds, text)


def columns_from_bounds(
    buf: bytes, bounds: np.ndarray, text: bool = True, want: Collection[int] | None = None
) -> list[pa.Array | None]:
    """:func:`take_columns` with the boundaries already laid out as an ``(m, 2n)`` array
    (row ``i``: start and end of field 0, start and end of field 1, ...); with ``want``,
    the other columns are ``None``."""
    m, n = bounds.shape[0], bounds.shape[1] // 2
    flat = bounds.ravel()
    if flat[-1] >= 2**31 - 1:  # pragma: no cover - chunks are a few MB
        typ, off = pa.large_binary(), flat
    else:
        typ, off = pa.binary(), flat.astype(np.int32)
    if text:
        typ = pa.string() if typ == pa.binary() else pa.large_string()
    tokens = pa.Array.from_buffers(typ, len(flat) - 1, [None, pa.py_buffer(off), pa.py_buffer(buf)])
    base = np.arange(0, m * 2 * n, 2 * n, dtype=np.int64)
    cols: list[pa.Array | None] = []
    for k in range(n):
        if want is not None and k not in want:
            cols.append(None)
            continue
        col = tokens.take(pa.array(base + 2 * k))
        if typ in (pa.large_binary(), pa.large_string()):  # pragma: no cover
            col = col.cast(pa.string() if text else pa.binary())
        cols.append(col)
    return cols


def _select(sp: np.ndarray, ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """Separators whose index lies in one of the ranges [ga[i], gb[i])."""
    marks = np.bincount(ga, minlength=len(sp) + 1)[: len(sp) + 1] - np.bincount(
        gb, minlength=len(sp) + 1
    )[: len(sp) + 1]
    return sp[np.cumsum(marks[:-1]) > 0]


def _is_text(chunk: LineChunk, lo: int, hi: int) -> bool:
    """Whether ``chunk.buf[lo:hi]`` is valid UTF-8 (at once when the whole chunk is ASCII,
    which the chunk remembers; else the range is checked)."""
    if chunk.is_ascii or hi <= lo:
        return True
    buf = chunk.buf
    b = bytes(memoryview(buf)[lo:hi]) if lo or hi != len(buf) else buf
    if b.isascii():
        return True
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
