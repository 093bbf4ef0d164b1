"""The read loop shared by directive-driven text formats (W3C, CloudFront, ...).

Lines starting with ``#`` are directives: they are handled in file order on the calling
thread (they change the reader's state, e.g. the current ``#Fields``).  The data lines
between two directives form a *segment*, parsed by ``parse(chunk, idx, state, dctx)`` on
worker threads with a snapshot of the state taken when the segment was cut; batches and
bad rows come back in file order (see :mod:`._parallel`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from ..lines import LineChunk
from ._parallel import ordered_map

S = TypeVar("S")
HASH = 35

Parse = Callable[[LineChunk, np.ndarray, Any, Any], Iterable[pa.RecordBatch]]


def read_segments(
    chunks: Iterator[LineChunk],
    ctx,
    state: S,
    on_directive: Callable[[S, str, int], None],
    parse: Parse,
    snapshot: Callable[[S], S],
) -> Iterator[pa.RecordBatch]:
    jobs = _jobs(chunks, ctx, state, on_directive, parse, snapshot)
    for batches, dctx in ordered_map(jobs, ctx.options.get("threads")):
        dctx.replay(ctx)
        yield from batches


def _run(parse: Parse, chunk: LineChunk, idx: np.ndarray, state, dctx):
    return list(parse(chunk, idx, state, dctx)), dctx


def line_kinds(chunk: LineChunk, ctx) -> tuple[np.ndarray, np.ndarray]:
    """``(directive, data)`` masks of the chunk's lines (``#`` lines; neither blank nor
    directive); directives and blank lines are counted in ``ctx.stats``."""
    is_dir = chunk.first_bytes() == HASH
    blank = chunk.blank_mask() & ~is_dir
    ctx.stats.directives += int(is_dir.sum())
    ctx.stats.blank += int(blank.sum())
    return is_dir, ~is_dir & ~blank


def _jobs(chunks, ctx, state, on_directive, parse, snapshot):
    for chunk in chunks:
        is_dir, data = line_kinds(chunk, ctx)
        lo = 0
        for d in [*np.flatnonzero(is_dir).tolist(), len(chunk)]:
            if d > lo:
                idx = np.flatnonzero(data[lo:d]) + lo
                if len(idx):
                    yield partial(_run, parse, chunk, idx, snapshot(state), ctx.deferred())
            if d < len(chunk):
                on_directive(state, chunk.text(d).strip(), chunk.first_line + d)
            lo = d + 1
