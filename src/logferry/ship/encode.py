"""Encode and rotate: a run's records become objects.

An encoder takes record batches, each with the marks of where its records came from
(:class:`Marks`), and gives finished objects (:class:`~.rotate.Obj`) as the rotation
limits are reached.  :func:`encoder_for` chooses it once per run, from the job and the
destination: a line format is encoded as lines and compressed in pieces
(:class:`LineEncoder`), a binary one (Parquet) rendered from whole tables
(:class:`TableEncoder`).  A destination that takes records rather than files (Datadog)
says so with ``records_only`` and brings its own limits (``max_object_bytes``,
``max_object_records``): it gets JSON lines, uncompressed, within both its limits and
the job's.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LogferryError
from .rotate import BatchRotator, Codec, Limits, LineRotator, Obj


class Marks:
    """Where each record of a batch came from, ``(file id, line)`` (checkpoint material),
    and its time (for the object's name)."""

    def __init__(self, batch: pa.RecordBatch, file_id: int):
        self.file_id = file_id
        self.lines = batch.column("line_number").to_numpy()
        self.times = batch.column("timestamp")

    def at(self, i: int) -> tuple[int, int]:
        return (self.file_id, int(self.lines[i]))

    def time(self, i: int) -> Any:
        return self.times[i].as_py()


class Encoder(Protocol):
    ext: str  # the objects' file name extension (format + compression)

    def add(self, batch: pa.RecordBatch, marks: Marks) -> Iterator[Obj]:
        """Objects finished by these records, or by the open one's age."""

    def flush(self) -> Iterator[Obj]:
        """The last, partly filled object."""


class LineEncoder:
    """Lines (``encode(batch) -> (header, data, offsets)``) cut into objects by a
    :class:`~.rotate.LineRotator`, compressed in self-contained pieces."""

    def __init__(self, encode: Callable[[pa.RecordBatch], tuple[bytes, Any, np.ndarray]],
                 codec: Codec, limits: Limits, clock: Callable[[], float], ext: str):
        self.encode = encode
        self.rotator = LineRotator(limits, codec, clock)
        self.ext = ext

    def add(self, batch: pa.RecordBatch, marks: Marks) -> Iterator[Obj]:
        header, data, offsets = self.encode(batch)
        rot = self.rotator
        return _chain(rot.set_header(header), rot.add(data, offsets, marks.at, marks.time), rot.tick())

    def flush(self) -> Iterator[Obj]:
        return self.rotator.flush()


class TableEncoder:
    """Whole tables rendered by a binary writer (``render(table) -> bytes``) and cut into
    objects by a :class:`~.rotate.BatchRotator`."""

    def __init__(self, render: Callable[[pa.Table], bytes], limits: Limits, clock: Callable[[], float],
                 ext: str):
        self.rotator = BatchRotator(limits, render, clock)
        self.ext = ext

    def add(self, batch: pa.RecordBatch, marks: Marks) -> Iterator[Obj]:
        n = batch.num_rows
        where = list(zip([marks.file_id] * n, marks.lines.tolist(), strict=True))
        objs = self.rotator.add(pa.Table.from_batches([batch]), where, marks.times.to_pylist())
        return _chain(objs, self.rotator.tick())

    def flush(self) -> Iterator[Obj]:
        return self.rotator.flush()


def encoder_for(job: Any, dest: Any, clock: Callable[[], float]) -> Encoder:
    """The encoder of a run of ``job`` (a :class:`~.engine.Job`) to ``dest``: the job's
    format and compression within the job's limits capped by the destination's; JSON
    lines, uncompressed, for a destination that takes records."""
    from ..writers import writer_factory

    records = bool(getattr(dest, "records_only", False))
    to = "jsonl" if records else job.to
    limits = job.limits.within(getattr(dest, "max_object_bytes", None),
                               getattr(dest, "max_object_records", None))
    factory = writer_factory(to)
    ext = getattr(factory, "extension", "") or ""
    if getattr(factory, "binary", False):
        # a field selection is written as chosen, when the writer can (its own writes
        # the whole canonical schema)
        render = (getattr(factory, "selection", None) if job.fields else None) or _rendered_by(factory)
        return TableEncoder(render, limits, clock, ext)
    codec = Codec("none" if records else job.compress)
    if to == "jsonl":
        include_fields = not job.fields

        def encode(batch: pa.RecordBatch) -> tuple[bytes, Any, np.ndarray]:
            return (b"", *encode_jsonl(batch, include_fields))
    else:
        def encode(batch: pa.RecordBatch) -> tuple[bytes, Any, np.ndarray]:
            return encode_generic(to, batch, {})
    return LineEncoder(encode, codec, limits, clock, ext + codec.ext)


def _rendered_by(factory: Callable[..., Any]) -> Callable[[pa.Table], bytes]:
    def render(table: pa.Table) -> bytes:
        buf = io.BytesIO()
        w = factory(buf)
        for b in table.to_batches():
            w.write(b)
        w.close()
        return buf.getvalue()

    return render


def encode_jsonl(batch: pa.RecordBatch, include_fields: bool) -> tuple[bytes, np.ndarray]:
    """JSON lines of a batch: (bytes, offsets[n+1]) -- vectorised."""
    from ..writers.jsonl import json_lines

    arr = json_lines(batch, include_fields=include_fields)
    return _lines_buffer(arr)


def _lines_buffer(arr: pa.Array) -> tuple[bytes, np.ndarray]:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    ls = pa.large_string()
    arr = pc.binary_join_element_wise(arr.cast(ls), pa.scalar("", ls), pa.scalar("\n", ls))
    _, offs, data = arr.buffers()
    o = np.frombuffer(offs, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    base = int(o[0])
    # a view of the Arrow buffer, not a copy (the rotator slices and compresses it)
    raw = memoryview(data)[base : int(o[-1])] if data is not None else b""
    return raw, (o - base)


def encode_generic(to: str, batch: pa.RecordBatch, options: dict[str, Any]) -> tuple[bytes, bytes, np.ndarray]:
    """Render a batch with any line writer; returns (header, lines, offsets)."""
    from ..writers import get_writer

    buf = io.BytesIO()
    w = get_writer(to, buf, **options)
    w.write(batch)
    w.close()
    out = buf.getvalue()
    if not out:
        return b"", b"", np.zeros(1, dtype=np.int64)
    arr = np.frombuffer(out, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    ends = nl + 1
    if len(out) and out[-1:] != b"\n":
        ends = np.append(ends, len(out))
    starts = np.concatenate([[0], ends[:-1]])
    k = len(starts) - batch.num_rows
    if k < 0:
        raise LogferryError(f"writer {to} wrote fewer lines than records; it cannot be rotated by line")
    cut = int(starts[k]) if k < len(starts) else len(out)
    header = out[:cut]
    offsets = np.concatenate([starts[k:], [len(out)]]).astype(np.int64) - cut
    return header, out[cut:], offsets


def _chain(*its: Iterator[Obj]) -> Iterator[Obj]:
    for it in its:
        yield from it
