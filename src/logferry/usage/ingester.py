"""Ingest logs into a store: every file once, grown files by their new lines.

For each input (local path, glob, folder, or fsspec URL) ::

    open -> decompress -> head (64 KiB) -> identity -> known?  -- same content: skip
                                                            \\-- grown: read, keep new lines
                                        \\- new: detect format, read, append batches

Three parts that change for different reasons: the plan (this module: which files, read
from where, by the manifest), the read (``usage/reading.py``: new lines parsed ahead on a
thread, cut into commit groups) and the store (``usage/duckstore.py`` for the DuckDB file:
appending rows and the manifest entry).  Memory stays bounded: one group at a time, and a
checkpoint every ``_COMMIT_ROWS`` rows that also records how far the file was loaded -- so
a run that dies part-way is resumed by the next one exactly like a grown file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import LogferryError
from ..reader import detect_head, open_input, open_raw
from ..sources import SourceFile, expand, match_files
from . import db as dbm
from .duckstore import DuckStore, FileMark
from .reading import CommitGroups, FileRead, cpus, ingest_threads, read_options, tracker_mask
from .results import FileResult, IngestSummary

if TYPE_CHECKING:  # imported where used (see db.py)
    import duckdb

__all__ = ["INGEST_MEMORY_LIMIT", "FileResult", "IngestSummary", "Ingester",
           "expand_inputs", "ingest", "ingest_threads"]

_BAD_FLUSH = 5000
#: rows loaded between two commits (bounds DuckDB's transaction-local memory)
_COMMIT_ROWS = 200_000
#: DuckDB buffer limit while ingesting (it spills beyond)
INGEST_MEMORY_LIMIT = "256MB"
#: files smaller than this are parsed on the storing thread: a parse thread of their own
#: costs more to start than it overlaps (a bucket of CloudFront logs: small files by the
#: hundred thousand)
_PREFETCH_BYTES = 4 << 20


def expand_inputs(paths: Iterable[str], errors: list[tuple[str, str]] | None = None) -> list[SourceFile]:
    """Every file named by ``paths`` (files, globs, folders recursively, fsspec URLs), in
    the order given, through the shared source layer; a glob matching nothing and a URL
    with a password are errors (``InputError``); a missing file goes to ``errors``."""
    return expand(paths, folders=True, must_match=True, sort=False, errors=errors)


class Ingester:
    """Ingest files into one store: an open usage database (a DuckDB connection) or a
    store object such as the lake's."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection | Any,
        *,
        format: str | None = None,
        options: dict[str, Any] | None = None,
        on_bytes: Callable[[int], None] | None = None,
        exclude: Iterable[str] = (),
        cores: int | None = None,
    ):
        self.store = con if hasattr(con, "append_requests") else DuckStore(con)
        self.con = getattr(self.store, "con", None)
        #: local files never ingested (the database itself and its write-ahead log)
        self.exclude = {os.path.realpath(x) for x in exclude}
        self.format = format
        self.options = options or {}
        self.on_bytes = on_bytes
        #: ``cores``: the cores this ingester may use (default: the process's); a Dask
        #: worker's task gets the worker's threads, so N workers use N cores, not 1.5 N
        self.parse_threads = ingest_threads(cores)[0]
        #: parse on a background thread while the store writes (only useful with 2+ cores)
        self.prefetch = (cores or cpus()) > 1
        self.settings = getattr(self.store, "settings", {})
        self._committed = (0, 0)
        self._settings_held = False  # (a run of :meth:`ingest` applies them once for all its files)

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
        saved, self._settings_held = self.store.apply_settings(), True
        bundles = hasattr(self.store, "start_bundle")
        waiting: list[FileResult] = []  # results of files held, reported once they are written
        done = False
        try:
            if bundles:
                self.store.start_bundle()
            for sf in files:
                if self.exclude and not sf.remote and os.path.realpath(sf.path) in self.exclude:
                    continue
                waiting.append(self.ingest_file(sf))
                if not bundles or not self.store.holding():
                    self._report(waiting, summary, on_file)
            done = True
        finally:
            if bundles:
                self.store.end_bundle(write=done)
            self._settings_held = False
            self.store.apply_settings(saved)
        self._report(waiting, summary, on_file)
        summary.seconds = time.perf_counter() - t0
        return summary

    def _report(self, results: list[FileResult], summary: IngestSummary,
                on_file: Callable[[FileResult], None] | None) -> None:
        """Report the results waiting (those of held files a failed write lost: errors)."""
        lost = getattr(self.store, "lost", {})
        for res in results:
            if res.file_id in lost and res.status in ("new", "truncated"):
                res = FileResult(res.path, "error", message=lost[res.file_id])
            summary.files.append(res)
            if on_file is not None:
                on_file(res)
        results.clear()

    def ingest_file(self, sf: SourceFile | str) -> FileResult:
        """Ingest one file; any failure (bad input, I/O, DuckDB running out of memory...)
        becomes this file's ``error`` result, with what was committed before it."""
        if isinstance(sf, str):
            errors: list[tuple[str, str]] = []
            found = expand_inputs([sf], errors)
            if not found:
                return FileResult(sf, "error", message=errors[0][1] if errors else f"{sf}: no such file")
            sf = found[0]
        saved = None if self._settings_held else self.store.apply_settings()
        self._committed = (0, 0)
        try:
            return self._ingest_file(sf)
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if isinstance(e, LogferryError):
                msg = str(e)
            else:
                msg = self.store.error_message(e) or f"{type(e).__name__}: {e}"
            return FileResult(sf.path, "error", records=self._committed[0], bad_rows=self._committed[1],
                              message=msg)
        finally:
            if saved is not None:
                self.store.apply_settings(saved)

    def identify(self, sf: SourceFile, present: Iterable[SourceFile] | None = None
                 ) -> tuple[dbm.Registered | None, str]:
        """The registered file ``sf`` is (by the source layer's rules) and how
        (``same``, ``moved``, ``compressed``, ``truncated``, ``new``).  ``present``: the
        other files there now (a compressed copy of one of them is not its rotation)."""
        known = self.store.known_files(local=not sf.remote, near=sf)
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
            reg = self.store.find_by_content(head)
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
                self.store.adopt(reg.file_id, sf)
            return FileResult(
                path, "duplicate", reg.file_id, reg.format,
                message=f"already ingested: {what} (file_id {reg.file_id}); nothing added",
            )
        return self._load(sf, reg.format or self.format, codec, reg, adopt=not by_content, how=how)

    def _load(self, sf: SourceFile, fmt: str, codec: str | None, reg: dbm.Registered | None, *,
              head: bytes | None = None, adopt: bool = True, how: str = "new",
              raw: BinaryIO | None = None, hold_partial: bool = False, own_tx: bool = True,
              on_rows: Callable[[int], None] | None = None) -> FileResult:
        """Read ``sf`` on from where ``reg`` stopped (from the start when it is None) and
        store the new lines.  ``adopt``: ``reg`` is this very file (by the source layer's
        rules), so its identity columns follow it; ``own_tx``: False when the caller holds
        the transaction (the follower), which then commits it; ``hold_partial``: an
        unfinished last line is left for later (a file still being written)."""
        start, anchor, header, title = _resume_point(reg, how)
        read = FileRead(sf, fmt, start, anchor, header, title, raw=raw, on_bytes=self.on_bytes,
                        hold_partial=hold_partial,
                        prefetch=self.prefetch and (sf.size or 0) >= _PREFETCH_BYTES,
                        options=read_options(self.options, self.parse_threads))
        store = self.store
        if own_tx:
            store.begin()
        try:
            load = _FileLoad(self, read, fmt, start, on_rows)
            load.open_entry(sf, codec, reg, head, adopt)
            load.store_groups()
            res = load.finish(sf, reg, adopt, hold_partial, own_tx)
            if own_tx and res.status != "unchanged":
                store.commit()
            if res.status != "unchanged":
                self._committed = (res.records, res.bad_rows)
            return res
        except BaseException:
            if own_tx:
                store.rollback()
            raise
        finally:
            read.close()


def _resume_point(reg: dbm.Registered | None, how: str) -> tuple[int, tuple[int, int], bytes, bytes | None]:
    """Where a read of a registered file starts: (line, resume anchor, header, title)."""
    if reg is None:
        return 0, (0, 0), b"", None
    start = reg.lines - 1 if reg.partial_tail and reg.lines else reg.lines
    anchor = (reg.anchor_line, reg.anchor_off) if reg.anchor_line <= start else (0, 0)
    if how == "compressed":
        anchor = (0, 0)  # offsets of the plain file mean nothing in the compressed one
    return start, anchor, reg.header, reg.title or None


class _FileLoad:
    """One file's read going into the store: its entry, its commit groups (with a
    checkpoint after each full one), and the counts its manifest entry ends with."""

    def __init__(self, ing: Ingester, read: FileRead, fmt: str, start: int,
                 on_rows: Callable[[int], None] | None):
        self.ing, self.store, self.read, self.fmt = ing, ing.store, read, fmt
        self.start = start
        self.on_rows = on_rows
        self.file_id = 0
        self.base = (0, 0, 0, 0)  # records, bad rows, directives, blank before this read
        self.reread_empty = 0  # 1: the last line read again had stored no row (a directive or blank)
        self.bad_count = self.orders = 0
        self.run = CommitGroups(read.batches, read.skip, fmt == "shop",
                                tracker_mask(getattr(self.store, "snowplow_hook", None), fmt),
                                read.bad, _COMMIT_ROWS, _BAD_FLUSH)

    def open_entry(self, sf: SourceFile, codec: str | None, reg: dbm.Registered | None,
                   head: bytes | None, adopt: bool) -> None:
        store = self.store
        if reg is None:
            self.file_id = store.new_file(sf, self.fmt, codec, head)
            return
        self.file_id = reg.file_id
        if self.start < reg.lines:
            # the last line had no terminator yet: read it again in full
            self.reread_empty = store.delete_line(self.file_id, reg.lines)
        cur = store.registered(self.file_id)
        self.base = (cur.records, cur.bad_rows, cur.directives, cur.blank)
        if adopt:
            store.adopt(self.file_id, sf, sf.path)

    def before(self) -> tuple[int, int, int, int]:
        """The counts before this read (records, bad rows, directives, blank), the last line
        read again taken off the count it was in when it stored no row: the directives when
        this read finds it one (it begins as it did), else the blank lines."""
        recs, bads, dirs, blank = self.base
        if self.reread_empty:
            if self.read.tail.directives_between(self.start, self.start + 1):
                dirs -= 1
            else:
                blank -= 1
        return recs, bads, max(dirs, 0), max(blank, 0)

    def store_groups(self) -> None:
        """Store the file's rows a commit group at a time (one streaming append each)."""
        run, store, fid = self.run, self.store, self.file_id
        while not run.done:
            store.append_requests(run, fid)
            for b in run.shop:
                self.orders += store.append_orders(b, fid)
            for b in run.tracker:
                store.append_tracker(b, fid)
            run.shop.clear()
            run.tracker.clear()
            if run.done:
                break
            if run.stop != "rows":
                self.flush_bad()
                continue
            self.checkpoint(run.upto)

    def flush_bad(self, upto: int | None = None) -> None:
        rows = self.read.take_bad(upto)
        self.store.append_bad(self.file_id, rows)
        self.bad_count += len(rows)

    def checkpoint(self, upto: int) -> None:
        """Commit what is loaded and record how far we got, so memory stays bounded and an
        interrupted run resumes like a grown file."""
        self.flush_bad(upto)
        t, base, run = self.read.tail, self.before(), self.run
        al, ao, hdr = t.state_at(upto)
        recs, bads = base[0] + run.records, base[1] + self.bad_count
        dirs = base[2] + t.directives_between(self.start, upto)
        blank = max(upto - recs - bads - dirs, 0)
        dirs = upto - recs - bads - blank
        self.store.checkpoint(self.file_id, FileMark(upto, ao, recs, bads, dirs, blank, al, ao, hdr, t.title,
                                                     first_ts=run.first_ts, last_ts=run.last_ts))
        if not getattr(self.store, "checkpoints_commit", True):
            return  # (the lake: a read becomes visible as a whole)
        self.ing._committed = (run.records, self.bad_count)
        if self.on_rows is not None:
            self.on_rows(run.records + self.bad_count)

    def finish(self, sf: SourceFile, reg: dbm.Registered | None, adopt: bool, hold_partial: bool,
               own_tx: bool) -> FileResult:
        """Record the end of the read in the manifest; the file's result."""
        self.flush_bad()
        read, t, run, base = self.read, self.read.tail, self.run, self.before()
        st = read.stream.stats
        # bad rows past the file's cap (reader option bad_rows_bytes) are counted, not kept
        self.bad_count += st.bad_omitted
        new_lines = st.lines - t.prefix_lines
        new_dirs = st.directives - t.prefix_lines + run.skipped + read.dropped_bad
        lines = self.start + new_lines
        records, bad_count, fid = run.records, self.bad_count, self.file_id
        if (reg is not None and new_lines <= 0 and records == 0 and bad_count == 0
                and self.ing._committed == (0, 0) and t.error is None and own_tx):
            self.store.rollback()
            return FileResult(
                sf.path, "unchanged", fid, self.fmt,
                message=f"already ingested (file_id {fid}, {reg.lines} lines); no new lines",
            )
        partial = not hold_partial and not t.ends_in_line
        al, ao, hdr = t.state_at(lines - 1 if partial else lines)
        self.store.finish(fid, FileMark(
            lines, t.off, base[0] + records, base[1] + bad_count, base[2] + new_dirs,
            base[3] + st.blank, al, ao, hdr, t.title,
            size=sf.size if adopt or reg is None else reg.size, conversion_errors=st.conversion_errors,
            partial_tail=partial, first_ts=run.first_ts, last_ts=run.last_ts, truncated_at=t.error_at,
            error=t.error, grown=reg is not None and bool(records or bad_count)))
        return self._result(sf, reg, lines, max(new_lines, 0))

    def _result(self, sf: SourceFile, reg: dbm.Registered | None, lines: int, new_lines: int) -> FileResult:
        t = self.read.tail
        status = "new" if reg is None else "grown"
        msg = ""
        if t.error is not None:
            status = "truncated"
            msg = (f"corrupt or truncated at byte {t.error_at} of its decompressed content "
                   f"({t.error}); the {lines} lines before are in the database and the rest is "
                   f"read when the complete file appears")
        return FileResult(
            sf.path, status, self.file_id, self.fmt, lines=new_lines, records=self.run.records,
            bad_rows=self.bad_count, orders=self.orders, message=msg, truncated_at=t.error_at,
        )


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
