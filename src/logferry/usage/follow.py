"""Follow logs as they are written, into the usage database.

:class:`Follower` polls its paths (files and globs; ``-`` for standard input) a few
times a second.  Files are found, identified and read on through the shared source layer
(``logferry.sources``) and stored by the ingester (``Ingester._load``), so a followed
file is the same ``files`` row an ``ingest`` run would use::

    poll:  rotated away?  -> read the held file to its end (it may have been renamed,
                             compressed, replaced or copied then truncated)
           expand globs   -> match each file (sources.match_files) -> read its new
                             complete lines (an unfinished last line waits)
           every commit_every seconds (and on stop): COMMIT

The database file is open (read-write) only from a poll that has something to read to its
commit: other processes read it in between (``db.connect(read_only=True)`` waits for that).

Every commit holds the rows and the ``files`` row that says how far the file was read
(line, byte anchor, the directives in force there), so a follower killed at any moment
(even SIGKILL) resumes with every line exactly once.  A followed file is kept open, so
the lines written just before a rotation are read from it before the new file.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import sources
from ..errors import InputError, LogferryError
from . import db as dbm

if TYPE_CHECKING:
    import duckdb

#: seconds between two looks at the followed files
POLL = 0.2
#: seconds a file whose reading failed is left alone before it is tried again
RETRY_AFTER = 10.0
#: seconds a file rotated away is still read while it grows (its writer reopens its log)
ROTATE_GRACE = 2.0
#: seconds a stopped follower waits for the database held by another process, to read
#: the lines written before the stop (then it ends; the next run reads them)
STOP_WAIT = 2.0
#: name stdin is stored under in ``files.path``
STDIN = "-"


@dataclass
class _Live:
    """A followed file held open: its rotation cannot take its last lines away."""

    file_id: int
    path: str
    dev: int
    ino: int
    f: BinaryIO
    format: str
    size: int = -1  # size when last looked at, after it was rotated away
    changed: float = 0.0  # when that size last changed (monotonic)


@dataclass
class _Stats:
    lines: int = 0
    last_line_at: float | None = None
    commits: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class Follower:
    """Follow ``paths`` (files, globs, or ``-``) into the usage database ``db_path``.

    ``run(stop)`` blocks until ``stop`` is set (or standard input ends), then commits and
    returns; ``status()`` may be called from any thread.  ``commit_every``: seconds
    between commits (new lines are visible to readers of the database after the next
    commit).  ``con``: an open connection to use (held all along) instead of opening
    ``db_path`` for each commit.
    """

    def __init__(self, db_path: str | os.PathLike, paths: Iterable[str], *, commit_every: float = 2.0,
                 format: str | None = None, options: dict[str, Any] | None = None,
                 poll: float = POLL, con: duckdb.DuckDBPyConnection | None = None,
                 on_file: Any = None, on_commit: Any = None):
        self.db_path = os.fspath(db_path)
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise InputError("nothing to follow: give files, globs or -")
        for p in self.paths:
            sources.check_source(p, folders=False)
            if "://" in p and not p.startswith("file://"):
                raise InputError(f"{sources.redact_url(p)}: only local files and - can be followed")
        if STDIN in self.paths and len(self.paths) > 1:
            raise InputError("- (standard input) is followed alone")
        self.commit_every = float(commit_every)
        if not self.commit_every > 0:
            raise InputError("commit_every must be a positive number of seconds")
        self.poll = poll
        self.format = format
        self.options = options
        self.on_file = on_file
        #: called (no arguments) after each commit; it must return at once (the alert
        #: scheduler only notes that there is new data)
        self.on_commit = on_commit
        self._con = con
        self._live: dict[int, _Live] = {}
        self._seen: dict[str, tuple] = {}  # path -> _seen_key of the file read up to its end
        self._failed: dict[str, float] = {}
        self._skipped: set[str] = set()  # paths reported once as no regular file
        self._listing: dict[str, tuple[sources.SourceFile, int, float]] = {}  # the files listed last (sources.stat_cached)
        self._stats = _Stats()
        self._pending = 0  # rows stored since the last commit
        self._ckpt = 0  # rows of the current read the ingester has committed itself
        self._in_tx = False
        self._lock = threading.Lock()
        self._started = False
        self._files: set[int] = set()  # file_ids read from
        self._running = False  # True from the end of the first poll until run returns
        self._stop = threading.Event()  # run's: a long read ends at its next commit once set
        self._listed: list[sources.SourceFile] | None = None  # _quiet's listing, for _poll

    # --- public ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            s = self._stats
            return {
                "last_line_at": (datetime.fromtimestamp(s.last_line_at, UTC).isoformat()
                                 if s.last_line_at is not None else None),
                "lines": s.lines,
                "files": len(self._files),
                "following": len(self._live),
                "commits": s.commits,
                "running": self._running,
                "paths": list(self.paths),
                "errors": dict(s.errors),
            }

    def run(self, stop: threading.Event) -> None:
        """Follow until ``stop``.  The database file is open only while a poll stores new
        lines and commits them (other processes read it in between: ``db.connect``), for
        files and standard input alike; with ``con`` or ``:memory:`` it is held all along."""
        self._stop = stop
        hold = self._con is not None or self.db_path == ":memory:"
        con = self._con if self._con is not None else self._open(wait=True) if hold else None
        saved = self._bind(con) if con is not None else None
        try:
            if self.paths == [STDIN]:
                self._run_stdin(stop, con)
                return
            self._started = True
            first = True
            while True:
                if (first or not self._quiet()) and self._cycle(con, first, stop):
                    first = False
                if stop.wait(self.poll):
                    break
            self._last_cycle(con, first)
        except _Stopped:
            pass  # stopped in a long read, at one of its commits: the next run reads on
        finally:
            self._running = False
            if self._in_tx:
                self._rollback()
            for lv in self._live.values():
                lv.f.close()
            self._live.clear()
            if con is not None:
                self._unbind(con, saved)

    def _last_cycle(self, con: duckdb.DuckDBPyConnection | None, first: bool) -> None:
        """After the stop, the lines written before it; given up if another process keeps
        the database for :data:`STOP_WAIT` seconds (they stay in their files, unread: the
        next run reads them)."""
        deadline = time.monotonic() + STOP_WAIT
        self._listed = None  # (listed before the stop: listed again)
        while not self._cycle(con, first, self._stop):
            if time.monotonic() >= deadline:
                return
            time.sleep(dbm.LOCK_RETRY)

    def _quiet(self) -> bool:
        """Nothing to read since the last poll (the database is not opened for nothing):
        every followed file still where it was, every file listed as it was read.  The
        listing is kept for the poll that follows (:meth:`_poll`)."""
        self._listed = None
        for lv in self._live.values():
            try:
                st = os.stat(lv.path)
            except OSError:
                return False
            if lv.size >= 0 or (st.st_dev, st.st_ino) != (lv.dev, lv.ino):
                return False  # rotated away (perhaps in its grace)
        now = time.monotonic()
        self._listed = self._found()
        return all(self._seen.get(sf.path) == _seen_key(sf) or self._failed.get(sf.path, 0) > now
                   for sf in self._listed)

    def _open(self, *, wait: bool = False) -> duckdb.DuckDBPyConnection | None:
        """The database, read-write; None while another process reads it (the next poll
        tries again)."""
        import duckdb

        from .ingester import INGEST_MEMORY_LIMIT

        while True:
            try:
                con = dbm.open_now(self.db_path, False)
            except (duckdb.IOException, duckdb.ConnectionException) as e:
                # (locked by a reader, or this process has it open read-only: the console)
                if not dbm.is_held(e):
                    raise
                if not wait:
                    return None
                time.sleep(dbm.LOCK_RETRY)
                continue
            con.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
            dbm.migrate(con)
            return con

    def _bind(self, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """Store through ``con`` from now on; returns the settings to put back."""
        from .ingester import Ingester

        exclude = [] if self.db_path == ":memory:" else [self.db_path, self.db_path + ".wal"]
        self.ing = Ingester(con, format=self.format, options=self.options, exclude=exclude)
        self.ing._committed = (0, 0)
        self.con = con
        return self.ing.store.apply_settings()

    def _unbind(self, con: duckdb.DuckDBPyConnection, saved: dict[str, Any] | None) -> None:
        if self._con is None:
            con.close()
            return
        try:
            self.ing.store.apply_settings(saved or {})
        except Exception:  # the database may be gone with the process
            pass

    def _cycle(self, held: duckdb.DuckDBPyConnection | None, first: bool, stop: threading.Event) -> bool:
        """Open the database (unless ``held``), poll while lines keep coming (up to
        ``commit_every``), commit, close.  False when another process has it."""
        with self._session(held) as con:
            if con is None:
                return False
            if first:
                self._resume_rotated()
                self._warm_up()
            start = time.monotonic()
            while True:
                before = self._pending
                self._poll()
                self._running = True
                # while lines keep coming, one commit per commit_every; as soon as a poll
                # finds nothing new, what was read is committed (low latency)
                if (self._pending == before or time.monotonic() - start >= self.commit_every
                        or stop.wait(self.poll)):
                    break
        return True

    @contextlib.contextmanager
    def _session(self, held: duckdb.DuckDBPyConnection | None, *,
                 wait: bool = False) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """One store-and-commit: ``held``, or the database opened and bound, committed at
        the end of the block and closed (rolled back on an error); None while another
        process has the file (unless ``wait``)."""
        con = held if held is not None else self._open(wait=wait)
        if con is None:
            yield None
            return
        try:
            if held is None:
                self._bind(con)
            yield con
            self._commit()
        finally:
            if held is None:
                if self._in_tx:
                    self._rollback()
                con.close()

    def _warm_up(self) -> None:
        """Import the readers now rather than when the first line comes in."""
        from .. import formats, reader  # noqa: F401
        from ..snowplow import rows  # noqa: F401

        formats.registry()

    # --- transactions --------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._in_tx:
            self.con.execute("BEGIN TRANSACTION")
            self._in_tx = True

    def _commit(self) -> None:
        if not self._in_tx:
            return
        self.con.execute("COMMIT")
        self._in_tx = False
        with self._lock:
            if self._pending:
                self._stats.lines += self._pending
                self._stats.last_line_at = time.time()
            self._stats.commits += 1
        self._pending = 0
        self._committed()

    def _committed(self) -> None:
        if self.on_commit is not None:
            try:
                self.on_commit()
            except Exception:  # noqa: BLE001 - a listener never stops the follower
                logging.getLogger(__name__).exception("on_commit failed")

    def _rollback(self) -> None:
        import duckdb

        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        self._in_tx = False
        self._pending = 0
        self._seen.clear()  # what was read since the last commit is read again
        # a file registered in the transaction is gone with it: let go of it, or its
        # file_id, given again to another file, would read this one's lines into that one's
        known = {fid: (path, dev, ino) for fid, path, dev, ino in
                 self.con.execute("SELECT file_id, path, dev, ino FROM files").fetchall()}
        for lv in list(self._live.values()):
            k = known.get(lv.file_id)
            if k is None or (k[0] != lv.path and (k[1], k[2]) != (lv.dev, lv.ino)):
                self._drop(lv)
                self._files.discard(lv.file_id)

    # --- files ---------------------------------------------------------------------------
    def _found(self) -> list[sources.SourceFile]:
        errors: list[tuple[str, str]] = []
        found = sources.expand(self.paths, sort=True, errors=errors, cache=self._listing)
        for path, msg in errors:  # (a FIFO, device or socket a glob matches: skipped)
            if path not in self._skipped:
                self._skipped.add(path)
                self._report_error(path, msg)
        # (the database and its log: by inode, whatever name a glob finds them by, and by name,
        # the log being made between the listing and this look)
        db: set = set()
        for p in (self.db_path, self.db_path + ".wal"):
            db.update((os.path.abspath(p), os.path.realpath(p)))
            with contextlib.suppress(OSError):
                st = os.stat(p)
                db.add((st.st_dev, st.st_ino))
        return [sf for sf in found if (sf.dev, sf.ino) not in db and sf.path not in db]

    def _report_error(self, path: str, msg: str) -> None:
        with self._lock:
            self._stats.errors[path] = msg
        if self.on_file is not None:
            from .ingester import FileResult

            self.on_file(FileResult(path, "error", message=msg))

    def _resume_rotated(self) -> None:
        """At start: a known followed file no longer at its path (rotated while we were
        not running) is read to its end where it went, before the file now there."""
        found = self._found()
        here = {(sf.dev, sf.ino) for sf in found}
        for reg in dbm.known_files(self.con, local=True):
            if (reg.dev, reg.ino) in here or not self._followed(reg.path):
                continue
            moved = sources.find_moved(reg.path, reg.dev, reg.ino, reg.fp, reg.fp_len, min_size=reg.bytes)
            if moved is None or (moved.path == reg.path and (moved.compressed or moved.size <= reg.bytes)):
                continue
            self._read(moved, reg, "compressed" if moved.compressed else "same", final=True)

    def _followed(self, path: str) -> bool:
        return any(os.path.abspath(os.path.expanduser(p)) == path or _matches(path, p) for p in self.paths)

    def _poll(self) -> None:
        now = time.monotonic()
        # 1. files held open that rotation moved away: their last lines first
        for lv in list(self._live.values()):
            self._poll_live(lv, now)
        # 2. the files the paths name now (as :meth:`_quiet` just listed them, if it did)
        found = self._found() if self._listed is None else self._listed
        self._listed = None
        for sf in found:
            if self._seen.get(sf.path) != _seen_key(sf) and self._failed.get(sf.path, 0) <= now:
                self._poll_found(sf, found)

    def _poll_live(self, lv: _Live, now: float) -> None:
        """A followed file held open: is it still there, and the same file?"""
        try:
            st = os.stat(lv.path)
            here = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            here = None
        size = os.fstat(lv.f.fileno()).st_size
        reg = dbm.registered(self.con, lv.file_id)
        held = (reg.dev, reg.ino) == (lv.dev, lv.ino)  # (not yet its compressed rotation's)
        if (here == (lv.dev, lv.ino) or held) and (size < reg.bytes or not _same_head(lv.f, reg)):
            # shrank (copytruncate) or rewritten in place (its head changed), perhaps
            # renamed or deleted since: new content, not this file's lines; the lines
            # written since our last read are in the copy, if any
            self._drain_copy(reg)
            self._drop(lv)
            return
        if here == (lv.dev, lv.ino):
            return  # step 2 reads what it has new
        moved = sources.find_moved(lv.path, lv.dev, lv.ino, reg.fp or "", reg.fp_len or 0)
        if moved is not None and not moved.compressed and self._followed(moved.path):
            lv.path = moved.path  # renamed within what we follow: still followed
            return
        # rotated away (renamed, compressed, deleted or replaced): a writer that has
        # not reopened its log yet may still add lines, so read on for a short while
        if size != lv.size:
            lv.size, lv.changed = size, now
        sf = moved or _stat_open(lv)
        final = now - lv.changed >= ROTATE_GRACE
        if final or size > reg.bytes:
            self._read(sf, reg, "same", final=final, raw=_dup(lv.f), adopt=moved is not None)
        if final:
            self._drop(lv)

    def _poll_found(self, sf: sources.SourceFile, found: list[sources.SourceFile]) -> None:
        """A file a path names, changed since it was last looked at: what it is, and its
        new lines."""
        live = next((lv for lv in self._live.values() if (lv.dev, lv.ino) == (sf.dev, sf.ino)), None)
        if live is not None:
            reg = dbm.registered(self.con, live.file_id)
            if sf.size >= reg.bytes and sources.same_file(sf, reg.dev, reg.ino, reg.path, reg.fp or "",
                                                          reg.fp_len or 0):
                self._read(sf, reg, "same", lv=live)
            return  # (truncated or rewritten: step 1 sees it on the next poll)
        if sf.size == 0:
            self._seen[sf.path] = _seen_key(sf)  # nothing to read (yet): looked at again once written
            return
        reg, how = self.ing.identify(sf, present=found)
        if how in ("truncated", "new"):
            # new content where a known file was (copytruncate, rewritten in place while
            # we were away): that file's unread lines are in its copy, if any
            for old in dbm.known_files(self.con, local=True):
                if (old.dev, old.ino) == (sf.dev, sf.ino):
                    self._drain_copy(old)
        if reg is None:
            copied = self._copy_of(sf)
            if copied is _UNREADABLE:
                return  # a compressed file being written: the next poll
            if copied is not None:
                self._read_copy(sf, copied)
                return
        self._read(sf, reg, how)

    def _copy_of(self, sf: sources.SourceFile) -> dbm.Registered | None | object:
        """The known log whose content ``sf`` (no known file by source identity) starts
        with, by content identity: a copy of it (copytruncate's, ``cp``'s, ``gzip -k``'s,
        or a compressed file being written next to the log it compresses)."""
        from ..reader import open_input, open_raw

        try:
            stream, head, _ = open_input(open_raw(sf.path))
            stream.close()
        except LogferryError:
            return _UNREADABLE if sf.compressed else None  # not even a readable head yet
        if not head.strip():
            return None
        known = dbm.find_by_content(self.con, head)
        if known is None and not sf.compressed:
            # a copy shorter than what the identity of the log it copies covers (taken
            # before the lines the follower read since): its head fingerprint says so
            known = next((r for r in dbm.known_files(self.con, local=True)
                          if r.fp_len and r.fp_len <= len(head) < r.head_bytes
                          and sources.fingerprint(head[: r.fp_len]) == r.fp), None)
        return known

    def _read_copy(self, sf: sources.SourceFile, reg: dbm.Registered) -> None:
        """``sf`` holds the content of the known log ``reg``: only what it has past what
        was read of that log is stored (as that log's lines).  A compressed copy is left
        alone: the log it was made from is still there (else the source layer would have
        matched it as that log, rotated and compressed), and is read on as it is."""
        if sf.compressed or sf.size <= reg.bytes:
            self._seen[sf.path] = _seen_key(sf)
            return
        # the registered file gone or changed: the copy becomes the file followed
        self._read(sf, reg, "same", adopt=reg.file_id not in self._live and not _still_there(reg))

    def _drain_copy(self, reg: dbm.Registered) -> None:
        """The known file ``reg`` has new content in its place (copytruncate, rewritten):
        the lines it had that were not read yet are read from its copy, if it is there."""
        copy = sources.find_moved(reg.path, reg.dev, -1, reg.fp or "", reg.fp_len or 0, min_size=reg.bytes)
        if copy is not None and (copy.compressed or copy.size > reg.bytes):
            self._read(copy, reg, "same", final=True)

    def _drop(self, lv: _Live) -> None:
        lv.f.close()
        self._live.pop(lv.file_id, None)

    def _read(self, sf: sources.SourceFile, reg: dbm.Registered | None, how: str, *,
              final: bool = False, lv: _Live | None = None, raw: BinaryIO | None = None,
              adopt: bool = True) -> None:
        """Store the new complete lines of ``sf`` (with ``final``: all of them, it will not
        grow any more) in the open transaction."""
        from ..reader import detect_head, open_input, open_raw

        ing = self.ing
        if reg is not None and not final and how != "compressed":
            if sf.size == (reg.bytes or 0) and not sf.compressed:
                self._hold(sf, reg)
                return
            if sf.compressed and sf.size == reg.size:
                self._seen[sf.path] = _seen_key(sf)
                return
        try:
            head = None
            fmt = reg.format if reg is not None else None
            if reg is None:
                stream, head, codec = open_input(open_raw(sf.path))
                stream.close()
                if not head.strip():
                    return  # nothing to read yet
                if (codec is not None) != sf.compressed:
                    # written since it was listed (a compressor's output listed empty, now
                    # whole): the next poll matches it as what it is now, perhaps a known log
                    return
                whole = head if final or sf.compressed else head[: head.rfind(b"\n") + 1]
                if self.format is None and not whole.strip():
                    return  # only an unfinished first line: its format is told once it ends
                fmt = self.format or detect_head(whole, sf.path, codec).format
            hold_f = None
            if raw is None and lv is not None:
                if not _same_head(lv.f, reg):
                    return  # truncated or rewritten since it was listed: the next poll
                raw = _dup(lv.f)
                sf = sources.refresh(sf, lv.f)
            if raw is None and not sf.compressed and not final:
                f = sources.open_regular(sf.path)
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino) != (sf.dev, sf.ino) or reg is not None and not _same_head(f, reg):
                    f.close()
                    return  # replaced, truncated or rewritten since it was listed: the next poll
                raw = _dup(f)
                hold_f = f
                sf = sources.refresh(sf, f)
            if reg is None and sf.fp_len == 0:
                if hold_f is not None:
                    hold_f.close()
                raw.close() if raw is not None else None
                return  # still empty
            if (hold_f is not None or lv is not None) and self._pending:
                self._commit()  # (a read dropped below must not take the earlier reads with it)
            self._begin()
            self._ckpt = 0
            res = ing._load(sf, fmt, None if reg is not None else codec, reg, head=head, how=how,
                            raw=raw, hold_partial=not final and not sf.compressed, own_tx=False,
                            adopt=adopt, on_rows=self._on_checkpoint)
        except KeyboardInterrupt:
            raise
        except _Stopped:
            if hold_f is not None:
                hold_f.close()
            raise
        except Exception as e:
            self._rollback()
            self._ckpt = 0
            self._failed[sf.path] = time.monotonic() + RETRY_AFTER
            msg = str(e) if isinstance(e, LogferryError) else f"{type(e).__name__}: {e}"
            self._report_error(sf.path, msg)
            return
        read_from = hold_f or (lv.f if lv is not None else None)
        if read_from is not None and res.file_id is not None and not _still_holds(
                read_from, reg, dbm.registered(self.con, res.file_id)):
            # truncated or rewritten while it was read (copytruncate): what was read past
            # that point is the new content, not this file's -- none of it is kept; the
            # next poll sees the truncation and reads the unread lines from the copy
            self._rollback()
            self._ckpt = 0
            if hold_f is not None:
                hold_f.close()
            return
        self._stats.errors.pop(sf.path, None)
        self._pending += res.records + res.bad_rows - self._ckpt
        self._ckpt = 0
        if hold_f is not None or lv is not None:
            self._grow_identity(res.file_id, hold_f or lv.f)
        if hold_f is not None and adopt and res.file_id not in self._live:
            st = os.fstat(hold_f.fileno())
            self._live[res.file_id] = _Live(res.file_id, sf.path, st.st_dev, st.st_ino, hold_f, fmt)
        elif hold_f is not None:
            hold_f.close()  # (a copy read for its unread lines is not the file followed)
        self._seen[sf.path] = _seen_key(sf)
        self._files.add(res.file_id)
        if self.on_file is not None and (res.status in ("new", "truncated") or final and (res.records or res.bad_rows)):
            self.on_file(res)

    def _grow_identity(self, file_id: int, f: BinaryIO) -> None:
        """A log's content identity covers what was read of it (up to
        ``IDENTITY_BYTES``): one registered while it held a line or two (a CSV title
        alone) is not taken for every log that starts alike (:meth:`_copy_of`)."""
        reg = dbm.registered(self.con, file_id)
        n = min(reg.bytes, sources.IDENTITY_BYTES)
        if reg.head_bytes >= n:
            return
        head = os.pread(f.fileno(), n, 0)
        if len(head) == n:
            self.con.execute("UPDATE files SET identity = ?, head_bytes = ?, head_fp = ? WHERE file_id = ?",
                             [*sources.content_identity(head), file_id])

    def _hold(self, sf: sources.SourceFile, reg: dbm.Registered) -> None:
        """A known file with nothing new: keep it open (a later rotation must not take
        its next lines away)."""
        self._seen[sf.path] = _seen_key(sf)
        if reg.file_id in self._live or sf.compressed:
            return
        try:
            f = sources.open_regular(sf.path)
        except (OSError, LogferryError):
            return
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != (sf.dev, sf.ino):
            f.close()
            return
        self._live[reg.file_id] = _Live(reg.file_id, sf.path, st.st_dev, st.st_ino, f, reg.format or "")

    def _on_checkpoint(self, rows: int) -> None:
        """The ingester committed a large group itself (and opened the next transaction):
        ``rows`` stored by the current read so far are committed."""
        with self._lock:
            self._stats.lines += self._pending + rows - self._ckpt
            self._stats.last_line_at = time.time()
            self._stats.commits += 1
        self._pending = 0
        self._ckpt = rows
        self._committed()
        if self._stop.is_set():
            raise _Stopped  # (everything read is committed: the read ends here)

    # --- standard input --------------------------------------------------------------------
    def _run_stdin(self, stop: threading.Event, held: duckdb.DuckDBPyConnection | None) -> None:
        """Standard input until it ends or ``stop``: the lines wait in memory and are stored
        at each commit, the first ones as soon as there are enough to tell the format."""
        import sys

        from ..reader import BadLimits

        pipe = _Pipe(sys.stdin.buffer, BadLimits.from_options(self.options).max_line)
        pipe.start()
        reg = None
        last_commit = time.monotonic()
        first_data = None
        while True:
            ended, stopping, now = pipe.ended.is_set(), stop.is_set(), time.monotonic()
            if pipe.size and first_data is None:
                first_data = now
            if reg is None:
                ready = bool(pipe.size) and (ended or stopping or pipe.size >= (64 << 10) or pipe.lines >= 16
                                             or now - first_data > 1.0)
            else:  # (only once whole lines came in, or all of it once it ended)
                ready = pipe.complete > reg.bytes or (ended and pipe.size > reg.bytes)
            due = reg is None or ended or stopping or now - last_commit >= self.commit_every
            if ready and due:
                stored = self._stdin_store(pipe, reg, ended, held, wait=ended or stopping)
                if stored is not None:
                    reg, last_commit = stored, now
                    continue
            if ended or stopping:
                return
            stop.wait(self.poll)

    def _stdin_store(self, pipe: _Pipe, reg: dbm.Registered | None, ended: bool,
                     held: duckdb.DuckDBPyConnection | None, *, wait: bool) -> dbm.Registered | None:
        """Open the database (unless ``held``), store what standard input brought, commit,
        close; None while another process reads the file (unless ``wait``)."""
        with self._session(held, wait=wait) as con:
            return None if con is None else self._stdin_load(pipe, reg, ended)

    def _stdin_load(self, pipe: _Pipe, reg: dbm.Registered | None, ended: bool) -> dbm.Registered:
        """Store the whole lines standard input brought (all of it once it ended); the
        first time, register it as a new file."""
        from ..reader import detect_head, long_line_reason

        self._begin()
        sf = sources.SourceFile(STDIN, pipe.size, time.time(), None, None, "", 0)
        if reg is None:
            head = pipe.head(64 << 10)
            fmt = self.format or detect_head(head, STDIN, None).format
            res = self.ing._load(sf, fmt, None, None, head=head, raw=pipe.view(ended), own_tx=False)
            self._files.add(res.file_id)
            if self.on_file is not None:
                self.on_file(res)
            # a pipe is never met again: its identity matches no file's content
            self.con.execute("UPDATE files SET identity = 'stdin:' || CAST(file_id AS VARCHAR) || ':' || "
                             "CAST(epoch_ms(now()) AS VARCHAR), head_bytes = 0 WHERE file_id = ?", [res.file_id])
            self._started = True
        else:
            res = self.ing._load(sf, reg.format, None, reg, raw=pipe.view(ended), own_tx=False, adopt=False)
        self._pending += res.records + res.bad_rows
        reg = dbm.registered(self.con, res.file_id)
        for line, length in pipe.cut_lines(reg.lines):  # their bad row says how long they were
            self.con.execute("UPDATE bad_rows SET reason = ? WHERE file_id = ? AND line_number = ?",
                             [long_line_reason(pipe.max_line, length), reg.file_id, line])
        pipe.discard(reg.anchor_off)
        return reg


#: :meth:`Follower._copy_of`: the file has no readable head yet
_UNREADABLE = object()


class _Stopped(Exception):
    """The follower was stopped during a long read, just after one of its commits."""


def _seen_key(sf: sources.SourceFile) -> tuple:
    """What a file is as listed: one rewritten in place keeps its inode and perhaps its
    size and time, not its head."""
    return (sf.dev, sf.ino, sf.size, sf.mtime, sf.fp)


def _still_there(reg: dbm.Registered) -> bool:
    """The registered file is still at its path, as it was."""
    try:
        there = sources.stat_file(reg.path)
    except LogferryError:
        return False
    return there is not None and sources.same_file(there, reg.dev, reg.ino, reg.path, reg.fp or "",
                                                   reg.fp_len or 0)


def _still_holds(f: BinaryIO, before: dbm.Registered | None, after: dbm.Registered) -> bool:
    """The open file ``f`` still starts as it did ``before`` the read (its registration
    then; a new file: as read) and holds the bytes read of it ``after``: it was not
    truncated or rewritten while it was read."""
    return os.fstat(f.fileno()).st_size >= (after.bytes or 0) and _same_head(f, before or after)


def _same_head(f: BinaryIO, reg: dbm.Registered) -> bool:
    """The open file ``f`` still starts as the registered file did (not rewritten)."""
    head = os.pread(f.fileno(), reg.fp_len or 0, 0)
    return len(head) == (reg.fp_len or 0) and sources.fingerprint(head) == reg.fp


def _matches(path: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(path, os.path.abspath(os.path.expanduser(pattern)))


def _dup(f: BinaryIO) -> BinaryIO:
    """Another file object on the same open file (the reader closes what it is given), at
    its start: a read that does not seek (nothing whole read yet) must not go on from where
    the last one stopped, in the middle of the unfinished line it held back."""
    fd = os.dup(f.fileno())
    os.lseek(fd, 0, os.SEEK_SET)
    return os.fdopen(fd, "rb")


def _stat_open(lv: _Live) -> sources.SourceFile:
    """The held file as a :class:`SourceFile` (it has no name any more: deleted)."""
    st = os.fstat(lv.f.fileno())
    return sources.SourceFile(lv.path, st.st_size, st.st_mtime, st.st_dev, st.st_ino, "", 0)


class _Pipe:
    """Standard input read on a thread into memory, as the blocks read (never copied
    whole); what the database has stored is dropped (:meth:`discard`).  A line longer than
    ``max_line`` is kept to its first ``max_line + 1`` bytes, the rest read through
    uncounted (it is one bad row however long: an endless unfinished line costs bounded
    memory), its length remembered (:meth:`cut_lines`); offsets are those of what is kept."""

    def __init__(self, stream: BinaryIO, max_line: int):
        self.stream = stream
        self.max_line = max_line
        self.blocks: list[bytes] = []
        self.base = 0  # offset of blocks[0][0]
        self.size = 0  # offset after the last byte kept
        self.complete = 0  # offset after the last line end kept
        self.lines = 0  # line ends kept
        self._line_len = 0  # length of the unfinished line, all of it (kept or not)
        self._cut: list[tuple[int, int]] = []  # (line number, length) of the lines cut short
        self.ended = threading.Event()
        self.lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._work, name="logferry-follow-stdin", daemon=True).start()

    def _work(self) -> None:
        fd = self.stream.fileno()
        try:
            while b := os.read(fd, 1 << 20):
                with self.lock:
                    self._add(b)
        finally:
            with self.lock:
                if self._line_len > self.max_line:
                    self._cut.append((self.lines + 1, self._line_len))
            self.ended.set()

    def _add(self, b: bytes) -> None:
        if self._line_len > self.max_line:  # in a line cut short: read through to its end
            nl = b.find(b"\n")
            if nl < 0:
                self._line_len += len(b)
                return
            cr = 1 if nl and b[nl - 1] == 13 else 0  # (a CRLF's CR is no part of the line)
            self._cut.append((self.lines + 1, self._line_len + nl - cr))
            b, self._line_len = b[nl:], 0
        last = b.rfind(b"\n")
        if last >= 0:
            self.lines += b.count(b"\n")
            self.complete = self.size + last + 1
            self._line_len = len(b) - last - 1
        else:
            self._line_len += len(b)
        over = self._line_len - self.max_line - 1
        if over > 0:
            b = b[: len(b) - over]
        self.blocks.append(b)
        self.size += len(b)

    def cut_lines(self, upto: int) -> list[tuple[int, int]]:
        """(line number, length) of the lines cut short up to line ``upto`` (once each)."""
        with self.lock:
            done = [c for c in self._cut if c[0] <= upto]
            self._cut = [c for c in self._cut if c[0] > upto]
        return done

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes kept."""
        return self.view(True).read(n)

    def discard(self, upto: int) -> None:
        with self.lock:
            while self.blocks and self.base + len(self.blocks[0]) <= upto:
                self.base += len(self.blocks.pop(0))
            if self.blocks and upto > self.base:
                self.blocks[0] = self.blocks[0][upto - self.base :]
                self.base = upto

    def view(self, ended: bool) -> BinaryIO:
        """What is kept as a seekable file whose offsets are the stream's: up to the last
        whole line (all of it once the stream ended)."""
        with self.lock:
            return _PipeView(list(self.blocks), self.base, self.size if ended else self.complete)


class _PipeView(io.RawIOBase):
    """Blocks of the pipe as a seekable file (offsets from ``base``, ending at ``end``)."""

    def __init__(self, blocks: list[bytes], base: int, end: int):
        self._blocks = blocks
        self._starts = list(itertools.accumulate((len(b) for b in blocks), initial=base))
        self._base, self._end = base, end
        self._pos = base

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        pos = {0: pos, 1: self._pos + pos, 2: self._end + pos}[whence]
        if pos < self._base:
            raise OSError("before the buffered part of the pipe")
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        stop = self._end if n is None or n < 0 else min(self._end, self._pos + n)
        parts = []
        i = bisect.bisect_right(self._starts, self._pos) - 1
        while self._pos < stop:
            b, at = self._blocks[i], self._pos - self._starts[i]
            take = b[at : at + stop - self._pos]
            parts.append(take)
            self._pos += len(take)
            i += 1
        return b"".join(parts)

    def readinto(self, b) -> int:
        d = self.read(len(b))
        b[: len(d)] = d
        return len(d)

    def peek(self, n: int = 0) -> bytes:
        pos = self._pos
        d = self.read(max(n, 1))
        self._pos = pos
        return d
