"""Read any inputs and write them in another format (the engine behind ``convert``)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .reader import BadRow, ReadStats, read


@dataclass
class ConvertSummary:
    files: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    seconds: float = 0.0
    formats: dict[str, int] = field(default_factory=dict)

    def fail(self, path: str, e: Exception, on_error: Callable[[str, Exception], None] | None) -> None:
        """An input that could not be read: re-raised without ``on_error``, else recorded."""
        if on_error is None:
            raise e
        self.failed.append((path, str(e)))
        on_error(path, e)

    def count(self, stream: Any) -> None:
        """Add one input that was read to the end."""
        self.files += 1
        self.formats[stream.format] = self.formats.get(stream.format, 0) + 1
        self.add(stream.stats)

    def add(self, s: ReadStats) -> None:
        for k, v in s.__dict__.items():
            setattr(self.stats, k, getattr(self.stats, k) + v)

    def line(self) -> str:
        s = self.stats
        fmts = ", ".join(f"{k}" for k in sorted(self.formats)) or "-"
        rate = s.lines / self.seconds if self.seconds > 0 else 0
        msg = (
            f"{self.files} file(s) [{fmts}]: {s.records} records, {s.bad} bad rows "
            f"({s.lines} lines, {s.directives} directives"
            f"{f' (incl. {s.skipped} skipped entries that are not requests)' if s.skipped else ''}, {s.blank} blank"
            f"{f', {s.conversion_errors} unconvertible values' if s.conversion_errors else ''}"
            f"{f', {s.bad_omitted} bad rows counted but not kept (over the per-file cap)' if s.bad_omitted else ''}) "
            f"in {self.seconds:.2f}s ({rate:,.0f} lines/s)"
        )
        if self.failed:
            msg += f"; {len(self.failed)} input(s) unreadable"
        return msg


def bad_rows_writer(out: BinaryIO) -> Callable[[BadRow], None]:
    def write(b: BadRow) -> None:
        out.write(json.dumps(b.as_dict(), ensure_ascii=False).encode("utf-8") + b"\n")

    return write


@dataclass
class Prepared:
    """A validated conversion: target, filter and field selection."""

    to: str
    fields: list[str] | None
    where: Callable[[Any], Any] | None
    factory: Callable[..., Any]

    def writer(self, out: BinaryIO, **options: Any):
        if self.fields and not self._canonical_target():
            options = {**options, "fields": self.fields}
        return self.factory(out, **options)

    def _canonical_target(self) -> bool:
        return not hasattr(self.factory, "field_names")

    def transform(self, batch):
        if self.where is not None:
            batch = self.where(batch)
        if self.fields and self._canonical_target():
            from .transforms import select_fields

            keep = [n for n in self.fields if n in batch.schema.names]
            batch = select_fields(batch, keep)
        return batch


def prepare(to: str, fields: list[str] | str | None = None, where: str | None = None) -> Prepared:
    """Validate ``--to``, ``--fields`` and ``--where`` (raises ConfigError /
    ConversionError) without touching any input or output."""
    from .transforms import compile_where, validate_fields
    from .writers import writer_factory

    factory = writer_factory(to)
    if isinstance(fields, str):
        fields = fields.split(",")
    if fields is not None:
        fields = validate_fields(fields, to)
    pred = compile_where(where) if where else None
    return Prepared(to, fields, pred, factory)


def open_output(path: str, compress: str | None = None, *, overwrite: bool = False, named: bool = False
                ) -> tuple[BinaryIO, Callable[[], None]]:
    """Open ``path`` for writing, compressed with ``gzip``/``zstd`` (or ``none``;
    ``None`` guesses from the extension).  Returns the stream and a finisher.

    An existing file is an error unless ``overwrite``.  ``named``: a file the user named
    (``-o``: a device or a pipe is written to as it is); otherwise a file logferry names
    (never through a symlink).  Failures raise :class:`~logferry.errors.OutputError`."""
    from .outputs import create, open_for_write

    if compress is None:
        compress = "gzip" if path.endswith(".gz") else "zstd" if path.endswith(".zst") else "none"
    raw = open_for_write(path, overwrite=overwrite) if named else create(path, overwrite=overwrite)
    return wrap_compress(raw, compress, close_raw=True)


def wrap_compress(raw: BinaryIO, compress: str, *, close_raw: bool = False) -> tuple[BinaryIO, Callable[[], None]]:
    if compress in (None, "none"):
        stream: BinaryIO = raw
    elif compress == "gzip":
        try:
            # ISA-L (several times faster than zlib) on a background thread: the writer
            # hands over 1 MiB blocks and goes on encoding the next batch while they are
            # compressed (one gzip member, mtime 0; bounded queue)
            from isal import igzip_threaded

            stream = igzip_threaded.open(raw, "wb", compresslevel=1, threads=1)  # type: ignore[assignment]
        except ImportError:  # pragma: no cover
            import gzip

            stream = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)  # type: ignore[assignment]
    elif compress == "zstd":
        import zstandard

        stream = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)  # type: ignore[assignment]
    else:
        from .errors import ConfigError

        raise ConfigError(f"unknown compression {compress!r}; choose gzip, zstd or none")

    def finish() -> None:
        if stream is not raw:
            stream.close()
        raw.flush()
        if close_raw:
            raw.close()

    return stream, finish


class BackgroundWriter:
    """Runs a writer on its own thread, fed through a small bounded queue, so encoding
    and compressing the output overlaps with parsing the input.  Errors surface on the
    next ``write`` or at ``close``."""

    def __init__(self, inner: Any, depth: int = 2):
        import queue
        import threading

        self.inner = inner
        self._q: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="logferry-writer", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain after a failure
            kind, arg = item
            try:
                if kind == "write":
                    self.inner.write(arg)
                else:
                    self.inner.set_source(arg)
            except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
                self._error = e

    def _put(self, item: tuple[str, Any]) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def write(self, batch: Any) -> None:
        self._put(("write", batch))

    def set_source(self, fmt: str) -> None:
        if hasattr(self.inner, "set_source"):
            self._put(("source", fmt))

    def close(self) -> None:
        self._q.put(None)
        self._t.join()
        if self._error is not None:
            raise self._error
        self.inner.close()


def _pump(batches: Iterable[Any], fmt: str, sink: Any, prepared: Prepared) -> None:
    """Every batch, transformed (``--where``/``--fields``), into ``sink`` (told the
    source format first, for same-format round trips)."""
    if hasattr(sink, "set_source"):
        sink.set_source(fmt)
    for batch in batches:
        sink.write(prepared.transform(batch))


def convert(
    inputs: Iterable[str],
    out: BinaryIO,
    to: str = "jsonl",
    *,
    format: str | None = None,
    on_bad: Callable[[BadRow], None] | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
    options: dict[str, Any] | None = None,
    writer_options: dict[str, Any] | None = None,
    fields: list[str] | None = None,
    where: str | None = None,
) -> ConvertSummary:
    """Convert every input into one output stream; unreadable inputs are reported via
    ``on_error`` (or raised when it is None).

    ``fields`` chooses and orders the output fields (canonical column names for
    ``jsonl``/``parquet``, the target format's own field names otherwise); ``where`` is a
    :func:`logferry.transforms.compile_where` filter.  Both are checked before the
    writer is created, so a bad one raises ConversionError before any output.
    """
    from .errors import InputError

    prepared = prepare(to, fields, where)
    summary = ConvertSummary()
    t0 = time.perf_counter()
    sink = prepared.writer(out, **(writer_options or {}))
    if not getattr(sink, "needs_originals", True):
        options = {"originals": False, **(options or {})}  # readers skip what nobody writes
    writer = BackgroundWriter(sink)
    try:
        for path in inputs:
            try:
                stream = read(path, format, options=options, on_bad=on_bad)
                _pump(iter(stream), stream.format, writer, prepared)
            except InputError as e:
                summary.fail(str(path), e, on_error)
                continue
            summary.count(stream)
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def convert_to_dir(
    inputs: Iterable[str],
    prepared: Prepared,
    output_dir: str,
    *,
    compress: str | None = None,
    format: str | None = None,
    options: dict[str, Any] | None = None,
    on_bad: Callable[[BadRow], None] | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
    on_file: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> ConvertSummary:
    """Convert into files named the target format's way inside ``output_dir``: the shop
    format rotates daily into ``shopYYYYMMDD.log`` files (a header in each); every other
    format gets one file per input (``naming.default_name``, from its first record's
    time).  ``on_file`` is told every file written.

    A file that exists already is never overwritten unless ``overwrite`` (the input that
    would write it fails with an OutputError), and a symlink there is never followed."""
    import os
    from datetime import UTC, datetime

    from .errors import LogferryError, OutputError
    from .writers import naming

    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{output_dir}: cannot create the output folder: {e.strerror or e}") from e
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise OutputError(f"{output_dir}: cannot write in the output folder: permission denied")
    summary = ConvertSummary()
    written: set[str] = set()
    t0 = datetime.now(UTC)
    shop_dir = None
    if prepared.to == "shop":
        from .writers.w3c import ShopLogDirectory

        shop_dir = ShopLogDirectory(output_dir, "daily", fields=prepared.fields,
                                    existing="replace" if overwrite else "refuse")
    try:
        for n, path in enumerate(inputs, 1):
            try:
                stream = read(path, format, options=options, on_bad=on_bad)
                batches = iter(stream)
                first = next(batches, None)
                if shop_dir is not None:
                    sink, finish, name = shop_dir, None, None
                else:
                    ts = None
                    if first is not None and first.num_rows and "timestamp" in first.schema.names:
                        ts = first.column("timestamp")[0].as_py()
                    name = naming.default_name(prepared.to, ts or t0, serial=n)
                    comp = compress or ("gzip" if name.endswith(".gz") else "none")
                    if comp == "gzip" and not name.endswith(".gz"):
                        name += ".gz"
                    elif comp == "zstd":
                        name += ".zst"
                    # two inputs of one day (one second, for jsonl/parquet) get the same
                    # name: the later one is numbered rather than written over the first
                    name = _unused(os.path.join(output_dir, name), written)
                    written.add(name)
                    out, finish = open_output(name, comp, overwrite=overwrite)
                    sink = prepared.writer(out)
                if first is not None:
                    batches = itertools.chain([first], batches)
                _pump(batches, stream.format, sink, prepared)
                if finish is not None:
                    sink.close()
                    finish()
                    if on_file:
                        on_file(name)
            except LogferryError as e:
                summary.fail(str(path), e, on_error)
                continue
            summary.count(stream)
    finally:
        if shop_dir is not None:
            shop_dir.close()
            for f in shop_dir.files:
                if on_file:
                    on_file(f)
        summary.seconds = (datetime.now(UTC) - t0).total_seconds()
    return summary


def _unused(path: str, taken: set[str]) -> str:
    """``path``, or ``name-2.ext``, ``name-3.ext``, ... (the number before the extension
    and a ``.gz``/``.zst`` suffix) when it is in ``taken``."""
    import os

    if path not in taken:
        return path
    root, ext = os.path.splitext(path)
    if ext in (".gz", ".zst"):
        root, inner = os.path.splitext(root)
        ext = inner + ext
    k = 2
    while f"{root}-{k}{ext}" in taken:
        k += 1
    return f"{root}-{k}{ext}"
