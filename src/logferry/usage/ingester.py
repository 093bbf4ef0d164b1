"""Ingest logs into the usage database: every file once, grown files by their new lines.

For each input (local path, glob, folder, or fsspec URL) ::

    open -> decompress -> head (64 KiB) -> identity -> known?  -- same content: skip
                                                            \\-- grown: read, keep new lines
                                        \\- new: detect format, read, append batches

Batches go into DuckDB through its Arrow integration (a registered view +
``INSERT ... SELECT``).  Memory stays bounded: one batch at a time, and a commit every
``_COMMIT_ROWS`` rows that also records in ``files`` how far the file was loaded -- so a
run that dies part-way is resumed by the next one exactly like a grown file.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LogferryError
from ..reader import BadRow, RecordStream, detect_head, open_input, open_raw
from ..schema import CANONICAL, CANONICAL_NAMES
from ..sources import SourceFile, content_identity, expand, match_files, open_from
from ..term import safe
from . import db as dbm

if TYPE_CHECKING:  # imported where used (see db.py)
    import duckdb

_BATCH_VIEW = "_lf_batch"
_REQ_COLS = ", ".join(f'"{c}"' for c in CANONICAL_NAMES)
_INSERT_REQUESTS = (
    f"INSERT INTO requests ({_REQ_COLS}, file_id, line_number) "
    f"SELECT {_REQ_COLS}, $1::INTEGER, line_number FROM {_BATCH_VIEW}"
)
_BAD_FLUSH = 5000
#: rows loaded between two commits (bounds DuckDB's transaction-local memory)
_COMMIT_ROWS = 200_000
#: formats that never carry Snowplow tracker hits: the Snowplow hook is not called for them
#: (it costs about 2 s per million IIS rows just to find nothing)
_NO_TRACKER_FORMATS = frozenset({"w3c", "shop", "cdn-tsv", "cdn-json", "csv-usage"})
#: original fields kept while ingesting, besides those Snowplow tracker decoding reads:
#: the shop decoder's raw ``cs-uri-query``
_ORIGINALS = frozenset({"cs-uri-query", "cs_uri_query"})
#: SQL for a parameter of epoch microseconds as TIMESTAMPTZ (whatever the session time zone)
_US_TO_TS = "timezone('UTC', make_timestamp(?::BIGINT))"
#: DuckDB buffer limit while ingesting (it spills beyond)
INGEST_MEMORY_LIMIT = "256MB"
#: batches parsed ahead of DuckDB by the prefetch thread: enough (16 x ~10k rows, some
#: 40 MB) for parsing to go on while DuckDB writes and commits a group -- with 2, both
#: sides waited on each other for a third of the time (2M IIS lines: 5.3 -> 4.0 s)
_PREFETCH = 16
#: bytes of log per read chunk (one batch): the reader's memory is a few chunks, and
#: 2 MiB costs no more CPU than the reader's 8 MiB default (measured on 2M IIS lines)
_CHUNK_SIZE = 2 << 20


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def ingest_threads() -> tuple[int, int]:
    """(parser threads, DuckDB threads) for ingesting on this machine.

    Parsing runs on its own thread(s) ahead of DuckDB, which converts and compresses the
    batches it pulls: on 2 cores one of each (more threads only add switching and memory).
    """
    n = _cpus()
    parse = max(1, min(4, n - 1))
    return parse, max(1, n - parse)


# --- inputs ---------------------------------------------------------------------------

def expand_inputs(paths: Iterable[str], errors: list[tuple[str, str]] | None = None) -> list[SourceFile]:
    """Every file named by ``paths`` (files, globs, folders recursively, fsspec URLs), in
    the order given, through the shared source layer; a glob matching nothing and a URL
    with a password are errors (``InputError``); a missing file goes to ``errors``."""
    return expand(paths, folders=True, must_match=True, sort=False, errors=errors)


# --- stream wrappers --------------------------------------------------------------------

class _Watch(io.RawIOBase):
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


# --- results ----------------------------------------------------------------------------

@dataclass
class FileResult:
    path: str
    status: str  # new | grown | duplicate | unchanged | truncated | error
    file_id: int | None = None
    format: str | None = None
    lines: int = 0  # lines read this time (new lines for a grown file)
    records: int = 0  # committed this time (for an error: before it happened)
    bad_rows: int = 0
    orders: int = 0
    message: str = ""
    truncated_at: int | None = None  # decompressed byte where a truncated file's data ends

    def line(self) -> str:
        path = safe(self.path)
        if self.status == "error":
            done = (f" ({self.records} records, {self.bad_rows} bad rows committed before it)"
                    if self.records or self.bad_rows else "")
            return f"{path}: error: {safe(self.message)}{done}"
        if self.status in ("duplicate", "unchanged"):
            return f"{path}: {safe(self.message)}"
        what = {"new": "new file", "grown": "grown file, new lines only",
                "truncated": "truncated file, lines before the damage"}[self.status]
        out = (
            f"{path}: {what} ({self.format}, file_id {self.file_id}): "
            f"{self.records} records, {self.bad_rows} bad rows"
        )
        return out + (f"; {safe(self.message)}" if self.message else "")


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bad_rows(self) -> int:
        return sum(f.bad_rows for f in self.files)

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def errors(self) -> int:
        """Files that failed or stopped short (a truncated compressed file)."""
        return self.count("error") + self.count("truncated")

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "new": self.count("new"),
            "grown": self.count("grown"),
            "skipped": self.count("duplicate") + self.count("unchanged"),
            "errors": self.count("error"),
            "truncated": self.count("truncated"),
            "lines": self.lines,
            "records": self.records,
            "bad_rows": self.bad_rows,
            "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds > 0 else None,
        }

    def line(self) -> str:
        d = self.as_dict()
        return (
            f"{d['files']} files ({d['new']} new, {d['grown']} grown, {d['skipped']} already "
            f"ingested, {d['errors']} errors"
            + (f", {d['truncated']} truncated" if d["truncated"] else "")
            + f"): {d['records']:,} records, {d['bad_rows']:,} bad rows "
            f"in {d['seconds']:.2f} s"
        )


# --- optional collaborators (guarded imports) -----------------------------------------------

def _shop_decoder() -> Callable[[pa.RecordBatch], Any] | None:
    try:
        from ..shop import decode_shop  # type: ignore[attr-defined]
    except ImportError:
        return None
    return decode_shop


def _snowplow_hook() -> Callable[..., Any] | None:
    try:
        from ..snowplow import ingest_hook  # type: ignore[attr-defined]
    except ImportError:
        return None
    return ingest_hook


# --- the work ---------------------------------------------------------------------------

#: what DuckDB reads from a file's batches: the canonical columns and the line number
_STREAM_SCHEMA = pa.schema([*((n, t) for n, t in CANONICAL.items()), ("line_number", pa.int64())])
_STREAM_COLS = list(_STREAM_SCHEMA.names)


class _Prefetch:
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


class _Run:
    """A file's batches cut into commit groups of about ``_COMMIT_ROWS`` rows.

    :meth:`group` is a generator DuckDB pulls from (through an Arrow stream) while it
    inserts; it keeps the file's counters, and puts aside the few rows that need more than
    the ``requests`` insert (shop ORDER lines, Snowplow tracker hits) for after it.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], skip: int, shop: bool,
                 tracker: Callable[[pa.RecordBatch], pa.RecordBatch | None] | None,
                 bad: list[BadRow]):
        self.batches = batches
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
                    [batch.column(c) for c in _STREAM_COLS], schema=_STREAM_SCHEMA)
                pending += n
                if pending >= _COMMIT_ROWS:
                    self.stop = "rows"
                    return
                if len(self.bad) >= _BAD_FLUSH:
                    self.stop = "bad"
                    return
            self.done = True
        except BaseException as e:  # handed back to the caller after DuckDB gives up
            self.error = e
            self.done = True
            raise


class Ingester:
    """Ingest files into one open usage database."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        format: str | None = None,
        options: dict[str, Any] | None = None,
        on_bytes: Callable[[int], None] | None = None,
        exclude: Iterable[str] = (),
    ):
        self.con = con
        #: local files never ingested (the database itself and its write-ahead log)
        self.exclude = {os.path.realpath(x) for x in exclude}
        self.format = format
        self.options = options or {}
        self.on_bytes = on_bytes
        self.decode_shop = _shop_decoder()
        self.snowplow_hook = _snowplow_hook()
        self._bad_lock = threading.Lock()
        self.parse_threads, duck_threads = ingest_threads()
        #: parse on a background thread while DuckDB stores (only useful with 2+ cores)
        self.prefetch = _cpus() > 1
        # DuckDB converts and compresses the batches it pulls; insertion order within a
        # file is line order anyway with one thread, and reports never rely on it
        # and DuckDB's own progress bar (printed on stdout for a long statement) stays off
        self.settings = {"threads": duck_threads, "preserve_insertion_order": False,
                         "enable_progress_bar": False}

    # public
    def ingest(self, paths: Iterable[str], on_file: Callable[[FileResult], None] | None = None,
               files: list[SourceFile] | None = None) -> IngestSummary:
        """Ingest every file ``paths`` name (or the already expanded ``files``); one
        file's failure is reported for it and the others go on."""
        t0 = time.perf_counter()
        summary = IngestSummary()
        errors: list[tuple[str, str]] = []
        if files is None:
            files = expand_inputs(paths, errors)
        for pat, msg in errors:
            res = FileResult(pat, "error", message=msg)
            summary.files.append(res)
            if on_file is not None:
                on_file(res)
        for sf in files:
            if self.exclude and not sf.remote and os.path.realpath(sf.path) in self.exclude:
                continue
            res = self.ingest_file(sf)
            summary.files.append(res)
            if on_file is not None:
                on_file(res)
        summary.seconds = time.perf_counter() - t0
        return summary

    def ingest_file(self, sf: SourceFile | str) -> FileResult:
        """Ingest one file; any failure (bad input, I/O, DuckDB running out of memory...)
        becomes this file's ``error`` result, with what was committed before it."""
        import duckdb

        if isinstance(sf, str):
            errors: list[tuple[str, str]] = []
            found = expand_inputs([sf], errors)
            if not found:
                return FileResult(sf, "error", message=errors[0][1] if errors else f"{sf}: no such file")
            sf = found[0]
        saved = _apply_settings(self.con, self.settings)
        self._committed = (0, 0)
        try:
            return self._ingest_file(sf)
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if isinstance(e, LogferryError):
                msg = str(e)
            elif isinstance(e, duckdb.Error):
                msg = f"database: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            else:
                msg = f"{type(e).__name__}: {e}"
            return FileResult(sf.path, "error", records=self._committed[0], bad_rows=self._committed[1],
                              message=msg)
        finally:
            _apply_settings(self.con, saved)

    def identify(self, sf: SourceFile, present: Iterable[SourceFile] | None = None
                 ) -> tuple[dbm.Registered | None, str]:
        """The registered file ``sf`` is (by the source layer's rules) and how
        (``same``, ``moved``, ``compressed``, ``truncated``, ``new``).  ``present``: the
        other files there now (a compressed copy of one of them is not its rotation)."""
        known = dbm.known_files(self.con, local=not sf.remote)
        m = match_files([sf], known, present=present)[0]
        return m.known, m.how

    # internals
    def _ingest_file(self, sf: SourceFile) -> FileResult:
        path = sf.path
        reg, how = self.identify(sf)
        by_content = False
        if reg is None:
            # not this file: maybe the same log under another name or compression (a
            # copy, a compressed copy, a grown copy); or a database older than v2
            stream, head, codec = open_input(open_raw(path))
            stream.close()
            reg = dbm.find_by_content(self.con, head)
            if reg is not None and how == "truncated" and reg.dev == sf.dev and reg.ino == sf.ino:
                reg = None  # the file this one was before it was truncated: new content
            by_content = reg is not None and reg.fp is not None
            if reg is None:
                fmt = self.format or detect_head(head, path, codec).format
                return self._load(sf, fmt, codec, None, head=head)
        else:
            codec = None if not sf.compressed else "compressed"
        unchanged = (sf.compressed and sf.size == reg.size) or (not sf.compressed and sf.size <= reg.bytes)
        if unchanged and how != "compressed":
            if by_content or reg.path != path:
                where = f" as {reg.path}" if reg.path != path else ""
                what = f"same content{where}"
            else:
                what = "same content"
            if reg.truncated_at is not None:
                what += (f", truncated at byte {reg.truncated_at}; the rest is read when the "
                         f"complete file appears")
            if reg.fp is None and not by_content:
                self._adopt(reg.file_id, sf)
            return FileResult(
                path, "duplicate", reg.file_id, reg.format,
                message=f"already ingested: {what} (file_id {reg.file_id}); nothing added",
            )
        return self._load(sf, reg.format or self.format, codec, reg, adopt=not by_content, how=how)

    def _adopt(self, file_id: int, sf: SourceFile) -> None:
        """Record ``sf``'s source identity for a row that has none (from a v1 database)."""
        self.con.execute("UPDATE files SET dev = ?, ino = ?, fp = ?, fp_len = ?, mtime = ? "
                         "WHERE file_id = ?", [sf.dev, sf.ino, sf.fp, sf.fp_len, sf.mtime, file_id])

    def _load(self, sf: SourceFile, fmt: str, codec: str | None, reg: dbm.Registered | None, *,
              head: bytes | None = None, adopt: bool = True, how: str = "new",
              raw: BinaryIO | None = None, hold_partial: bool = False, own_tx: bool = True,
              on_rows: Callable[[int], None] | None = None) -> FileResult:
        """Read ``sf`` on from where ``reg`` stopped (from the start when it is None) and
        store the new lines.  ``adopt``: ``reg`` is this very file (by the source layer's
        rules), so its identity columns follow it; ``own_tx``: False when the caller holds
        the transaction (the follower), which then commits it; ``hold_partial``: an
        unfinished last line is left for later (a file still being written)."""
        import duckdb

        con = self.con
        path = sf.path
        bad: list[BadRow] = []
        lock = self._bad_lock
        if reg is None:
            start, anchor, header, title = 0, (0, 0), b"", None
        else:
            start = reg.lines - 1 if reg.partial_tail and reg.lines else reg.lines
            anchor = (reg.anchor_line, reg.anchor_off) if reg.anchor_line <= start else (0, 0)
            if how == "compressed":
                anchor = (0, 0)  # offsets of the plain file mean nothing in the compressed one
            header, title = reg.header, reg.title or None
        if raw is None:
            raw = _Watch(open_raw(path), self.on_bytes)
        t = open_from(path, sf.remote, start, anchor[0], anchor[1], header, title,
                      hold_partial=hold_partial, raw=raw, stop_on_error=True)
        shift = t.shift

        def on_bad(b: BadRow) -> None:
            with lock:
                bad.append(BadRow(b.source_file, b.line_number + shift, b.raw, b.reason))

        try:
            rs = RecordStream(t, fmt, options=self._read_options(), on_bad=on_bad, source_name=path,
                              chunk_size=_CHUNK_SIZE)
        except BaseException:
            t.close()
            raise
        batches: Iterator[pa.RecordBatch] | _Prefetch = (t.file_lines(b) for b in rs)
        if self.prefetch:
            batches = _Prefetch(batches)
        skip = t.base  # replayed header lines come out numbered up to here
        self._dropped_bad = 0
        if own_tx:
            con.execute("BEGIN TRANSACTION")
        try:
            if reg is None:
                file_id = dbm.next_file_id(con)
                ident, hb = content_identity(head if head is not None else b"")
                con.execute(
                    "INSERT INTO files (file_id, identity, head_bytes, path, format, compression, size, "
                    "dev, ino, fp, fp_len, mtime, ingested_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now())",
                    [file_id, ident, hb, path, fmt, codec, sf.size, sf.dev, sf.ino, sf.fp, sf.fp_len, sf.mtime],
                )
                base = (0, 0, 0, 0)  # records, bad rows, directives, blank before this read
            else:
                file_id = reg.file_id
                deleted_dir = 0
                if start < reg.lines:
                    # the last line had no terminator yet: read it again in full
                    deleted_dir = self._delete_line(file_id, reg.lines)
                cur = dbm.registered(con, file_id)
                base = (cur.records, cur.bad_rows, max(cur.directives - deleted_dir, 0), cur.blank)
                if adopt:
                    con.execute(
                        "UPDATE files SET path = ?, dev = ?, ino = ?, fp = ?, fp_len = ?, mtime = ? "
                        "WHERE file_id = ?", [path, sf.dev, sf.ino, sf.fp, sf.fp_len, sf.mtime, file_id])
            run = _Run(batches, skip, fmt == "shop", self._tracker_mask(fmt), bad)
            bad_count = orders = 0
            while not run.done:
                # one streaming INSERT per commit group: DuckDB pulls the batches itself
                self._insert_stream(run, file_id)
                for b in run.shop:
                    orders += self._shop(b, file_id)
                for b in run.tracker:
                    self.snowplow_hook(con, b, file_id)  # type: ignore[misc]
                run.shop.clear()
                run.tracker.clear()
                if run.done:
                    break
                if run.stop != "rows":
                    bad_count += self._flush_bad(file_id, bad, skip)
                    continue
                # checkpoint: commit what is loaded and record how far we got, so memory
                # stays bounded and an interrupted run resumes like a grown file
                upto = run.upto
                bad_count += self._flush_bad(file_id, bad, skip, upto)
                al, ao, hdr = t.state_at(upto)
                recs, bads = base[0] + run.records, base[1] + bad_count
                dirs = base[2] + t.directives_between(start, upto)
                blank = max(upto - recs - bads - dirs, 0)
                dirs = upto - recs - bads - blank
                con.execute(
                    "UPDATE files SET lines = ?, bytes = ?, records = ?, bad_rows = ?, directives = ?, "
                    "blank = ?, partial_tail = false, anchor_line = ?, anchor_off = ?, header = ?, "
                    "title = ?, updated_at = now() WHERE file_id = ?",
                    [upto, ao, recs, bads, dirs, blank, al, ao, hdr, t.title, file_id],
                )
                con.execute("COMMIT")
                self._committed = (run.records, bad_count)
                if on_rows is not None:
                    on_rows(run.records + bad_count)
                con.execute("BEGIN TRANSACTION")
            records, first_ts, last_ts = run.records, run.first_ts, run.last_ts
            bad_count += self._flush_bad(file_id, bad, skip)
            st = rs.stats
            # bad rows past the file's cap (reader option bad_rows_bytes) are counted, not kept
            bad_count += st.bad_omitted
            new_lines = st.lines - t.prefix_lines
            new_dirs = st.directives - t.prefix_lines + run.skipped + self._dropped_bad
            partial = not hold_partial and not t.ends_in_line
            lines = start + new_lines
            if (reg is not None and new_lines <= 0 and records == 0 and bad_count == 0
                    and self._committed == (0, 0) and t.error is None and own_tx):
                con.execute("ROLLBACK")
                return FileResult(
                    path, "unchanged", file_id, fmt,
                    message=f"already ingested (file_id {file_id}, {reg.lines} lines); no new lines",
                )
            complete = lines - 1 if partial else lines
            al, ao, hdr = t.state_at(complete)
            con.execute(
                f"""UPDATE files SET size = ?, bytes = ?, lines = ?, directives = ?, blank = ?,
                       records = ?, bad_rows = ?,
                       conversion_errors = conversion_errors + ?, partial_tail = ?,
                       first_timestamp = CASE WHEN first_timestamp IS NULL OR {_US_TO_TS} < first_timestamp
                                              THEN {_US_TO_TS} ELSE first_timestamp END,
                       last_timestamp = CASE WHEN last_timestamp IS NULL OR {_US_TO_TS} > last_timestamp
                                             THEN {_US_TO_TS} ELSE last_timestamp END,
                       anchor_line = ?, anchor_off = ?, header = ?, title = ?, truncated_at = ?, error = ?,
                       updated_at = now(), ingests = ingests + CASE WHEN ? THEN 1 ELSE 0 END
                   WHERE file_id = ?""",
                [sf.size if adopt or reg is None else reg.size, t.off, lines, base[2] + new_dirs,
                 base[3] + st.blank, base[0] + records, base[1] + bad_count,
                 st.conversion_errors, partial, first_ts, first_ts, last_ts, last_ts,
                 al, ao, hdr, t.title, t.error_at, t.error, reg is not None and (records or bad_count),
                 file_id],
            )
            if own_tx:
                con.execute("COMMIT")
            self._committed = (records, bad_count)
        except BaseException:
            if own_tx:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
            raise
        finally:
            if isinstance(batches, _Prefetch):
                batches.close()
            else:
                t.close()
        status = "new" if reg is None else "grown"
        msg = ""
        if t.error is not None:
            status = "truncated"
            msg = (f"corrupt or truncated at byte {t.error_at} of its decompressed content "
                   f"({t.error}); the {lines} lines before are in the database and the rest is "
                   f"read when the complete file appears")
        return FileResult(
            path, status, file_id, fmt, lines=max(new_lines, 0), records=records, bad_rows=bad_count,
            orders=orders, message=msg, truncated_at=t.error_at,
        )

    def _read_options(self) -> dict[str, Any]:
        opts = dict(self.options)
        # the database keeps no original fields: only those the Snowplow hook and the
        # shop decoder read are built (readers skip the rest of the work)
        from ..snowplow.rows import RAW_FIELDS

        opts.setdefault("originals", sorted(_ORIGINALS | RAW_FIELDS))
        opts.setdefault("threads", self.parse_threads)
        return opts

    def _tracker_mask(self, fmt: str) -> Callable[[pa.RecordBatch], pa.RecordBatch | None] | None:
        """Rows of a batch the Snowplow hook must see (None: the hook is not called)."""
        if self.snowplow_hook is None or fmt in _NO_TRACKER_FORMATS:
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

    def _insert_stream(self, run: _Run, file_id: int) -> None:
        """Insert the next commit group of ``run`` with one streaming INSERT ... SELECT."""
        reader = pa.RecordBatchReader.from_batches(_STREAM_SCHEMA, run.group())
        self.con.register(_BATCH_VIEW, reader)
        try:
            self.con.execute(_INSERT_REQUESTS, [file_id])
        except Exception:
            if run.error is not None:
                raise run.error from None  # the reader's own error (bad input, I/O), not DuckDB's wrapper
            raise
        finally:
            _unregister(self.con)
        if run.error is not None:
            raise run.error

    def _insert(self, sql: str, data: pa.RecordBatch | pa.Table, file_id: int) -> None:
        self.con.register(_BATCH_VIEW, data)
        try:
            self.con.execute(sql, [file_id])
        finally:
            _unregister(self.con)

    def _delete_line(self, file_id: int, line: int) -> int:
        con = self.con
        n_req = con.execute(
            "SELECT count(*) FROM requests WHERE file_id = ? AND line_number = ?", [file_id, line]
        ).fetchall()[0][0]
        n_bad = con.execute(
            "SELECT count(*) FROM bad_rows WHERE file_id = ? AND line_number = ?", [file_id, line]
        ).fetchall()[0][0]
        con.execute(
            "DELETE FROM order_items WHERE file_id = ? AND order_id IN "
            "(SELECT order_id FROM orders WHERE file_id = ? AND line_number = ?)",
            [file_id, file_id, line],
        )
        for t in dbm.LINE_TABLES:
            con.execute(f"DELETE FROM {t} WHERE file_id = ? AND line_number = ?", [file_id, line])
        con.execute(
            "UPDATE files SET records = records - ?, bad_rows = bad_rows - ? WHERE file_id = ?",
            [n_req, n_bad, file_id],
        )
        return 0 if n_req or n_bad else 1  # no row: the line was a directive

    def _flush_bad(self, file_id: int, bad: list[BadRow], skip: int, upto: int | None = None) -> int:
        if not bad:
            return 0
        with self._bad_lock:  # the reader may be adding rows on the prefetch thread
            later = [b for b in bad if upto is not None and b.line_number > upto]
            rows = [b for b in bad if b.line_number > skip and (upto is None or b.line_number <= upto)]
            self._dropped_bad += sum(1 for b in bad if b.line_number <= skip)
            bad[:] = later
        if not rows:
            return 0
        t = pa.table(
            {
                "line_number": pa.array([b.line_number for b in rows], pa.int64()),
                "raw": pa.array([b.raw for b in rows], pa.string()),
                "reason": pa.array([b.reason for b in rows], pa.string()),
            }
        )
        self._insert(
            f"INSERT INTO bad_rows SELECT $1::INTEGER, line_number, raw, reason FROM {_BATCH_VIEW}",
            t, file_id,
        )
        return len(rows)

    # shop ---------------------------------------------------------------------------
    def _shop(self, batch: pa.RecordBatch, file_id: int) -> int:
        methods = batch.column("method")
        if not pc.any(pc.equal(methods, "ORDER")).as_py():
            return 0
        if self.decode_shop is not None:
            dec = self.decode_shop(batch)
            o, items = _as_table(dec.orders), _as_table(dec.order_items)
            if o is not None and o.num_rows:
                self._insert(
                    "INSERT INTO orders SELECT $1::INTEGER, CAST(order_id AS VARCHAR), line_number, "
                    '"timestamp", CAST(customer_id AS VARCHAR), CAST(total_price AS DECIMAL(18, 4)), '
                    f"CAST(payment AS VARCHAR), CAST(shipping AS VARCHAR) FROM {_BATCH_VIEW}",
                    o, file_id,
                )
            if items is not None and items.num_rows:
                self._insert(
                    "INSERT INTO order_items SELECT $1::INTEGER, CAST(order_id AS VARCHAR), "
                    "CAST(position AS INTEGER), CAST(product_id AS VARCHAR), CAST(product_name AS VARCHAR), "
                    "CAST(category AS VARCHAR), CAST(units AS BIGINT), "
                    "CAST(net_unit_price AS DECIMAL(18, 4)), CAST(net_purchase_price AS DECIMAL(18, 4)) "
                    f"FROM {_BATCH_VIEW}",
                    items, file_id,
                )
            return o.num_rows if o is not None else 0
        return self._shop_sql(batch, file_id)

    def _shop_sql(self, batch: pa.RecordBatch, file_id: int) -> int:
        """Built-in ORDER decoder (used when ``logferry.shop`` is not installed).

        ``TotalPrice&Payment&Shipping`` then, per position,
        ``&Product_ID&Name&Category&Units&NetUnitPrice&NetPurchasePrice``; values are
        URL-encoded with ``+`` for spaces.
        """
        sub = batch.select(["timestamp", "customer_id", "method", "query", "line_number"])
        sub = sub.filter(pc.equal(sub.column("method"), "ORDER"))
        con = self.con
        con.register(_BATCH_VIEW, sub)
        try:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _lf_orders AS
                    SELECT line_number, "timestamp", customer_id,
                           string_split(coalesce(query, ''), '&') AS p
                    FROM {_BATCH_VIEW}"""
            )
        finally:
            con.unregister(_BATCH_VIEW)
        dec = "url_decode(replace({}, '+', ' '))"
        con.execute(
            f"""INSERT INTO orders
                SELECT $1::INTEGER, $1::VARCHAR || ':' || line_number, line_number, "timestamp",
                       customer_id, TRY_CAST(p[1] AS DECIMAL(18, 4)),
                       {dec.format("nullif(p[2], '-')")}, {dec.format("nullif(p[3], '-')")}
                FROM _lf_orders""",
            [file_id],
        )
        con.execute(
            f"""INSERT INTO order_items
                SELECT $1::INTEGER, $1::VARCHAR || ':' || line_number, i + 1,
                       {dec.format("p[4 + 6 * i]")}, {dec.format("p[5 + 6 * i]")},
                       {dec.format("nullif(p[6 + 6 * i], '-')")},
                       TRY_CAST(p[7 + 6 * i] AS BIGINT),
                       TRY_CAST(p[8 + 6 * i] AS DECIMAL(18, 4)),
                       TRY_CAST(p[9 + 6 * i] AS DECIMAL(18, 4))
                FROM (SELECT *, unnest(range(0, (len(p) - 3) // 6)) AS i FROM _lf_orders)""",
            [file_id],
        )
        n = con.execute("SELECT count(*) FROM _lf_orders").fetchall()[0][0]
        con.execute("DROP TABLE _lf_orders")
        return int(n)


def _unregister(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the batch view; in an aborted transaction that fails, and the error that
    aborted it is the one to report (the view is replaced by the next register)."""
    import duckdb

    try:
        con.unregister(_BATCH_VIEW)
    except duckdb.Error:
        pass


def _apply_settings(con: duckdb.DuckDBPyConnection, settings: dict[str, Any]) -> dict[str, Any]:
    """Set DuckDB settings; returns their previous values (to put them back)."""
    old: dict[str, Any] = {}
    for name, value in settings.items():
        old[name] = con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]
        v = ("true" if value else "false") if isinstance(value, bool) else int(value)
        con.execute(f"SET {name} = {v}")
    return old


def _as_table(x: Any) -> pa.Table | None:
    if x is None:
        return None
    if isinstance(x, pa.RecordBatch):
        return pa.Table.from_batches([x])
    if isinstance(x, pa.Table):
        return x
    return pa.Table.from_pylist(list(x))


def ingest(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[str],
    *,
    format: str | None = None,
    options: dict[str, Any] | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    exclude: Iterable[str] = (),
) -> IngestSummary:
    """Ingest ``paths`` (files, globs, folders, URLs) into the open usage database."""
    check = [os.fspath(p) for p in paths]
    ing = Ingester(con, format=format, options=options, on_bytes=on_bytes, exclude=exclude)
    return ing.ingest(check, on_file)
