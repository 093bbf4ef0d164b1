"""Vectorised splitting of delimiter-separated lines into columns.

:func:`split_regular` finds, with numpy, the lines that hold exactly ``n`` non-empty
fields separated by single ``sep`` bytes and no quote characters, and cuts them into
``n`` binary columns without a Python loop.  The other lines are returned for the
(slow, per-line) tokenizer of the format.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..lines import LineChunk, gather

QUOTE = 34


def split_regular(
    chunk: LineChunk,
    idx: np.ndarray,
    sep: int,
    n: int,
    *,
    forbid: tuple[int, ...] = (QUOTE,),
    allow_empty: bool = False,
) -> tuple[np.ndarray, list[pa.BinaryArray], np.ndarray]:
    """Split lines ``idx`` of ``chunk`` on byte ``sep`` into ``n`` columns.

    Returns ``(good_idx, columns, other_idx)``; ``columns[k]`` holds field ``k`` of the
    lines in ``good_idx``.  ``other_idx`` are lines that need the slow path (wrong
    field count, empty fields unless ``allow_empty``, or a ``forbid`` byte).
    """
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) == 0 or n < 1:
        return idx, [pa.array([], pa.binary()) for _ in range(max(n, 0))], idx
    arr = chunk.arr
    starts = chunk.starts[idx]
    ends = chunk.ends[idx]
    lo, hi = int(starts[0]), int(ends[-1])
    window = arr[lo:hi]
    sp = np.flatnonzero(window == sep) + lo
    # separators per line
    a = np.searchsorted(sp, starts)
    b = np.searchsorted(sp, ends)
    counts = b - a
    ok = counts == n - 1
    for byte in forbid:
        fpos = np.flatnonzero(window == byte) + lo
        if len(fpos):
            ok &= (np.searchsorted(fpos, ends) - np.searchsorted(fpos, starts)) == 0
    # separators that belong to no selected line (lines we skip inside the window)
    if not allow_empty:
        ok &= ends > starts
        if len(sp):
            # empty fields: separator at line start/end, or two separators in a row
            first_sp = np.where(counts > 0, sp[np.minimum(a, len(sp) - 1)], -1)
            last_sp = np.where(counts > 0, sp[np.maximum(b - 1, 0)], -1)
            ok &= ~((counts > 0) & ((first_sp == starts) | (last_sp == ends - 1)))
            adj = np.flatnonzero(np.diff(sp) == 1)
            if len(adj):
                adj_pos = sp[adj]
                ok &= (np.searchsorted(adj_pos, ends) - np.searchsorted(adj_pos, starts)) == 0
    good = idx[ok]
    other = idx[~ok]
    m = len(good)
    if m == 0:
        return good, [pa.array([], pa.binary()) for _ in range(n)], other
    g_starts = starts[ok]
    g_ends = ends[ok]
    if n == 1:
        return good, [gather(arr, g_starts, g_ends)], other
    # separators of the good lines, in order: exactly n-1 per line
    sel = np.zeros(len(sp), dtype=bool)
    ga, gb = a[ok], b[ok]
    # mark ranges [ga, gb) -- via a difference array
    marks = np.zeros(len(sp) + 1, dtype=np.int64)
    np.add.at(marks, ga, 1)
    np.add.at(marks, gb, -1)
    sel = np.cumsum(marks[:-1]) > 0
    seps = sp[sel].reshape(m, n - 1)
    cols: list[pa.BinaryArray] = []
    for k in range(n):
        s = g_starts if k == 0 else seps[:, k - 1] + 1
        e = g_ends if k == n - 1 else seps[:, k]
        cols.append(gather(arr, s, e))
    return good, cols, other
