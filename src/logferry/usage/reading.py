"""Reading a file for the ingester: its new lines as Arrow batches, parsed ahead on a
background thread, cut into commit groups, with the bad rows put aside.

Nothing here knows the store: :class:`FileRead` opens a file where the manifest says its
new lines start (``logferry.sources.open_from``) and parses them; :class:`CommitGroups`
hands the batches to the store a group at a time and keeps the file's counters.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ..reader import BadRow, RecordStream, open_raw
from ..schema import CANONICAL
from ..sources import SourceFile, open_from

#: batches parsed ahead of the store by the prefetch thread: enough (16 x ~10k rows, some
#: 40 MB) for parsing to go on while DuckDB writes and commits a group -- with 2, both
#: sides waited on each other for a third of the time (2M IIS lines: 5.3 -> 4.0 s)
_PREFETCH = 16
#: bytes of log per read chunk (one batch): the reader's memory is a few chunks, and
#: 2 MiB costs no more CPU than the reader's 8 MiB default (measured on 2M IIS lines)
_CHUNK_SIZE = 2 << 20
#: formats that never carry Snowplow tracker hits: the Snowplow hook is not called for them
#: (it costs about 2 s per million IIS rows just to find nothing)
_NO_TRACKER_FORMATS = frozenset({"w3c", "shop", "cdn-tsv", "cdn-json", "csv-usage"})
#: original fields kept while ingesting, besides those Snowplow tracker decoding reads:
#: the shop decoder's raw ``cs-uri-query``
_ORIGINALS = frozenset({"cs-uri-query", "cs_uri_query"})
#: what the store reads from a file's batches: the canonical columns and the line number
STREAM_SCHEMA = pa.schema([*((n, t) for n, t in CANONICAL.items()), ("line_number", pa.int64())])


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def ingest_threads(cores: int | None = None) -> tuple[int, int]:
    """(parser threads, DuckDB threads) for ingesting on ``cores`` (default: this process's).

    Parsing runs on its own thread(s) ahead of DuckDB, which converts and compresses the
    batches it pulls: on 2 cores one of each (more threads only add switching and memory).
    """
    n = cores or cpus()
    parse = max(1, min(4, n - 1))
    return parse, max(1, n - parse)


def read_options(options: dict[str, Any], threads: int) -> dict[str, Any]:
    """The readers' options for ingesting: a store keeps no original fields, so only those
    the Snowplow hook and the shop decoder read are built (readers skip the rest)."""
    from ..snowplow.rows import RAW_FIELDS

    opts = dict(options)
    opts.setdefault("originals", sorted(_ORIGINALS | RAW_FIELDS))
    opts.setdefault("threads", threads)
    return opts


def tracker_mask(hook: Callable[..., Any] | None, fmt: str) -> Callable[[pa.RecordBatch], pa.RecordBatch | None] | None:
    """Rows of a batch the Snowplow hook must see (None: the hook is not called)."""
    if hook is None or fmt in _NO_TRACKER_FORMATS:
        return None
    try:
        from ..snowplow.hits import TRACKER_PATH_RE
    except ImportError:
        TRACKER_PATH_RE = None

    def select(batch: pa.RecordBatch) -> pa.RecordBatch | None:
        if "fields" not in batch.schema.names or not batch.num_rows:
            return None
        path = batch.column("path")
        if TRACKER_PATH_RE is None or path.null_count == len(path):
            return batch  # no path to match on (e.g. Thrift records): the hook decides
        mask = pc.fill_null(pc.match_substring_regex(path, TRACKER_PATH_RE), False)
        hits = pc.sum(mask).as_py() or 0
        if not hits:
            return None
        return batch if hits == batch.num_rows else batch.filter(mask)

    return select


# --- stream wrappers ---------------------------------------------------------------

class Watch(io.RawIOBase):
    """Pass-through stream that counts bytes, remembers the last one and reports progress."""

    def __init__(self, inner: BinaryIO, on_bytes: Callable[[int], None] | None = None):
        self.inner = inner
        self.count = 0
        self.last = b""
        self.on_bytes = on_bytes
        if callable(getattr(inner, "peek", None)):
            # readers sniff a stream that can peek as it is; else they wrap it in a
            # BufferedReader, which copies every read through readinto
            self.peek = inner.peek

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        s = getattr(self.inner, "seekable", None)
        return bool(s and s())

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.inner.seek(pos, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        if data:
            self.count += len(data)
            self.last = data[-1:]
            if self.on_bytes is not None:
                self.on_bytes(len(data))
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            super().close()


class Prefetch:
    """Iterate ``source`` on a background thread, up to ``depth`` items ahead.

    The reader parses the next batches while DuckDB stores the current one.  Errors are
    raised in the consumer; :meth:`close` stops the thread and closes ``source``.
    """

    _END = object()

    def __init__(self, source: Iterator[Any], depth: int = _PREFETCH):
        self.source = source
        self.q: queue.Queue[Any] = queue.Queue(depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._work, name="logferry-ingest-read", daemon=True)
        self.thread.start()

    def _put(self, item: Any) -> bool:
        while not self.stopped.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self.source:
                if not self._put((True, item)):
                    return
            self._put((True, self._END))
        except BaseException as e:  # handed to the consumer
            self._put((False, e))
        finally:
            close = getattr(self.source, "close", None)
            if close is not None and self.stopped.is_set():
                close()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        ok, item = self.q.get()
        if not ok:
            self.stopped.set()
            raise item
        if item is self._END:
            self.stopped.set()
            raise StopIteration
        return item

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()


class CommitGroups:
    """A file's batches cut into commit groups of about ``commit_rows`` rows (a group also
    ends early once ``bad_flush`` bad rows wait to be stored).

    :meth:`group` is a generator the store pulls from (DuckDB through an Arrow stream) while it
    inserts; it keeps the file's counters, and puts aside the few rows that need more than
    the ``requests`` insert (shop ORDER lines, Snowplow tracker hits) for after it.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], skip: int, shop: bool,
                 tracker: Callable[[pa.RecordBatch], pa.RecordBatch | None] | None,
                 bad: list[BadRow], commit_rows: int, bad_flush: int):
        self.batches = batches
        self.commit_rows = commit_rows
        self.bad_flush = bad_flush
        self.bad = bad
        self.skip = skip  # line numbers up to this one are the replayed header: not stored
        self.skipped = 0
        self.want_shop = shop
        self.tracker_rows = tracker
        self.records = 0
        self.first_ts: int | None = None  # epoch microseconds
        self.last_ts: int | None = None
        self.upto = 0  # last line number of the current group
        self.done = False
        self.stop = ""  # why the last group ended: "rows" (commit), "bad" (flush bad rows), ""
        self.error: BaseException | None = None
        self.shop: list[pa.RecordBatch] = []
        self.tracker: list[pa.RecordBatch] = []

    def group(self) -> Iterator[pa.RecordBatch]:
        pending = 0
        self.stop = ""
        try:
            for batch in self.batches:
                if self.skip:
                    n0 = batch.num_rows
                    batch = batch.filter(pc.greater(batch.column("line_number"), self.skip))
                    self.skipped += n0 - batch.num_rows
                if not batch.num_rows:
                    continue
                n = batch.num_rows
                self.records += n
                # epoch microseconds: a timestamp Python's datetime cannot hold (year 0,
                # say) is still a valid one for Arrow and DuckDB
                mm = pc.min_max(batch.column("timestamp").cast(pa.int64()))
                lo, hi = mm["min"].as_py(), mm["max"].as_py()
                if lo is not None:
                    self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
                    self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
                self.upto = int(pc.max(batch.column("line_number")).as_py())
                if self.want_shop:
                    orders = pc.equal(batch.column("method"), "ORDER")
                    if pc.any(orders).as_py():
                        self.shop.append(batch.filter(orders))
                if self.tracker_rows is not None:
                    t = self.tracker_rows(batch)
                    if t is not None:
                        self.tracker.append(t)
                yield pa.RecordBatch.from_arrays(
                    [batch.column(c) for c in STREAM_SCHEMA.names], schema=STREAM_SCHEMA)
                pending += n
                if pending >= self.commit_rows:
                    self.stop = "rows"
                    return
                if len(self.bad) >= self.bad_flush:
                    self.stop = "bad"
                    return
            self.done = True
        except BaseException as e:  # handed back to the caller after DuckDB gives up
            self.error = e
            self.done = True
            raise


class FileRead:
    """One read of a file from line ``start`` on (its resume anchor, header and title as
    the manifest recorded them): :attr:`batches` of new lines numbered as in the whole
    file, the bad rows collected on the side (:meth:`take_bad`)."""

    def __init__(self, sf: SourceFile, fmt: str, start: int, anchor: tuple[int, int],
                 header: bytes, title: bytes | None, *, raw: BinaryIO | None,
                 on_bytes: Callable[[int], None] | None, hold_partial: bool,
                 options: dict[str, Any], prefetch: bool):
        self.bad: list[BadRow] = []
        self.lock = threading.Lock()
        self.dropped_bad = 0  # bad rows of the replayed header (directives, not stored)
        if raw is None:
            raw = Watch(open_raw(sf.path), on_bytes)
        t = self.tail = open_from(sf.path, sf.remote, start, anchor[0], anchor[1], header, title,
                                  hold_partial=hold_partial, raw=raw, stop_on_error=True)
        shift = t.shift

        def on_bad(b: BadRow) -> None:
            with self.lock:
                self.bad.append(BadRow(b.source_file, b.line_number + shift, b.raw, b.reason))

        try:
            self.stream = RecordStream(t, fmt, options=options, on_bad=on_bad, source_name=sf.path,
                                       chunk_size=_CHUNK_SIZE)
        except BaseException:
            t.close()
            raise
        batches: Iterator[pa.RecordBatch] = (t.file_lines(b) for b in self.stream)
        self.batches = Prefetch(batches) if prefetch else batches
        self.skip = t.base  # replayed header lines come out numbered up to here

    def take_bad(self, upto: int | None = None) -> list[BadRow]:
        """The bad rows collected so far (up to line ``upto``) that are the file's own (not
        the replayed header's); the later ones stay for the next call."""
        if not self.bad:
            return []
        skip = self.skip
        with self.lock:  # the reader may be adding rows on the prefetch thread
            bad = self.bad
            later = [b for b in bad if upto is not None and b.line_number > upto]
            rows = [b for b in bad if b.line_number > skip and (upto is None or b.line_number <= upto)]
            self.dropped_bad += sum(1 for b in bad if b.line_number <= skip)
            bad[:] = later
        return rows

    def close(self) -> None:
        if isinstance(self.batches, Prefetch):
            self.batches.close()
        else:
            self.tail.close()
