"""The shipping chain as plain functions; the clock, the sleep and the destination are
injected so tests run it with a frozen clock and real servers.

    plan (which files, from where: sources since their checkpoints)
      -> read (records, file line numbers) -> transform (filter, privacy, fields)
      -> encode + rotate (encode.py: the writer, compression, limits) -> name
      -> deliver (destination.put, retries) -> commit (checkpoint + history, one
      SQLite transaction)

Exactly once per destination: an object's name is computed, recorded as the job's
*intent*, the object is put (a put of the same name replaces), and only then the
checkpoints advance.  A run killed anywhere restarts from the old checkpoint and its
first object reuses the intended name, so nothing is lost and nothing appears twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import sources as src
from ..errors import ConfigError, InputError, LogferryError, PermanentError, TransientError
from ..privacy import Privacy
from . import naming
from .encode import Encoder, Marks, encoder_for
from .rotate import Limits, Obj
from .state import State

log = logging.getLogger("logferry.ship")


@dataclass(frozen=True)
class Filter:
    """Built-in filters of a job (all optional, combined with AND)."""

    status: tuple[str, ...] = ()  # "5xx", "404"
    sites: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    path_prefix: str | None = None

    def apply(self, b: pa.RecordBatch) -> pa.RecordBatch:
        if b.num_rows == 0:
            return b
        mask = None

        def both(m):
            nonlocal mask
            mask = m if mask is None else pc.and_kleene(mask, m)

        if self.status:
            st = b.column("status")
            m = None
            for s in self.status:
                s = s.strip().lower()
                if len(s) == 3 and s.endswith("xx") and s[0].isdigit():
                    lo = int(s[0]) * 100
                    c = pc.and_(pc.greater_equal(st, lo), pc.less(st, lo + 100))
                else:
                    c = pc.equal(st, int(s))
                m = c if m is None else pc.or_kleene(m, c)
            both(m)
        if self.sites:  # the log's site, never the Host header a client sends
            both(pc.is_in(b.column("site"), pa.array(list(self.sites), pa.string())))
        ts = b.column("timestamp")
        if self.since is not None:
            both(pc.greater_equal(ts, pa.scalar(self.since, ts.type)))
        if self.until is not None:
            both(pc.less(ts, pa.scalar(self.until, ts.type)))
        if self.path_prefix:
            both(pc.starts_with(b.column("path"), self.path_prefix))
        if mask is None:
            return b
        return b.filter(pc.fill_null(mask, False))


@dataclass(frozen=True)
class Job:
    name: str
    sources: tuple[str, ...]
    dest: str
    dest_options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    format: str | None = None
    to: str = "jsonl"
    compress: str = "gzip"
    fields: tuple[str, ...] | None = None
    where: str | None = None
    filter: Filter = Filter()
    privacy: Privacy | None = field(default=None, hash=False, compare=False)
    limits: Limits = Limits(max_bytes=50_000_000, max_age_secs=300)
    name_template: str = naming.PRESETS["default"]
    service: str = ""
    site: str = ""
    retries: int = 6
    backoff_secs: float = 1.0
    backoff_max_secs: float = 60.0
    partial_grace_secs: float = 300.0
    reader_options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: the tenants of the job: it ships only records whose ``site`` is one of them
    sites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        naming.check_job_name(self.name)
        # the template keeps objects apart and its names stay under the destination,
        # with this job's own {job}, {service} and {site}
        naming.validate(self.name_template, job=self.name, service=self.service, site=self.site)


@dataclass
class RunResult:
    run_id: int
    #: ok | partial (some source files could not be read; the rest was delivered and those
    #: files are retried by the next run) | failed | skipped | stopped (a stop request)
    status: str
    objects: int = 0
    records: int = 0
    bytes: int = 0
    bad: int = 0
    error: str | None = None
    names: list[str] = field(default_factory=list)
    partial: bool = False


class SourceError(InputError):
    """The job's sources cannot be listed at all (the run is recorded as failed)."""


class Stop:
    """Set by SIGTERM: finish the current object, then end the run cleanly."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_: Any) -> None:
        self.requested = True


# ------------------------------------------------------------------------ transforms
def compile_transforms(job: Job):
    """(row transforms, field selection): selection comes last, after the engine took the
    line numbers it needs for checkpoints."""
    steps: list[Callable[[pa.RecordBatch], pa.RecordBatch]] = []
    if job.sites:
        steps.append(_site_filter(job.sites))
    if job.filter != Filter():
        steps.append(job.filter.apply)
    if job.where:
        from ..transforms import compile_where

        steps.append(compile_where(job.where))
    if job.privacy is not None and job.privacy.mode != "none":
        steps.append(job.privacy.apply)
    select: Callable[[pa.RecordBatch], pa.RecordBatch] = lambda b: b  # noqa: E731
    if job.fields:
        from ..transforms import select_fields

        names = list(job.fields)

        def select(b: pa.RecordBatch) -> pa.RecordBatch:
            return select_fields(b, names)

    def run(b: pa.RecordBatch) -> pa.RecordBatch:
        for s in steps:
            if b.num_rows == 0:
                break
            b = s(b)
        return b

    return run, select


def _site_filter(sites: tuple[str, ...]) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """The records of the job's tenants: ``site`` is one of ``sites`` (a record without
    a site belongs to no tenant)."""
    vals = pa.array(list(sites), pa.string())

    def apply(b: pa.RecordBatch) -> pa.RecordBatch:
        return b.filter(pc.fill_null(pc.is_in(b.column("site"), vals), False))

    return apply


# ---------------------------------------------------------------------------- engine
# plan (which files, from where) -> the run's chain (_run) -> read -> name, deliver, commit
@dataclass
class _FileRun:
    fs: Any  # state.FileState
    sf: src.SourceFile
    tracker: src.Tracker | None = None
    final: tuple[int, int, int, bytes] | None = None  # line, anchor line, anchor off, header
    eof: int = 1  # 0 when an unfinished last line was held back
    done: int | None = None  # the last line whose records are all in the encoder
    failed: list[str] = field(default_factory=list)  # why reading broke off

    def checkpoint(self) -> tuple[int, int, int, int, str, int]:
        """The state row of where this file was read to (``final``)."""
        line, aline, aoff, hdr = self.final  # type: ignore[misc]
        return (self.fs.id, line, aline, aoff, hdr.decode("utf-8", "replace"), self.eof)

    def checkpoint_at(self, line: int) -> tuple[int, int, int, int, str, int]:
        """The state row of a line within the file (where an object ends)."""
        if self.final is not None and self.final[0] == line:
            return self.checkpoint()
        aline, aoff, hdr = self.tracker.state_at(line)  # type: ignore[union-attr]
        return (self.fs.id, line, aline, aoff, hdr.decode("utf-8", "replace"), 0)


@dataclass
class Plan:
    """The files of a run, in order, with where each was read to; what went wrong."""

    files: list[_FileRun]
    errors: list[str] = field(default_factory=list)
    read_ok: int = 0  # files read to their end

    def checkpoints_upto(self, last: tuple[int, int]) -> list[tuple[int, int, int, int, str, int]]:
        """The checkpoints an object ending at ``last`` (file id, line) moves: the files
        before it that were read to their end, and its own."""
        fid, line = last
        cps = []
        for f in self.files:
            if f.fs.id == fid:
                cps.append(f.checkpoint_at(line))
                break
            if f.final is not None:
                cps.append(f.checkpoint())
        return cps

    def commit_rest(self, state: State) -> None:
        """Files whose remaining lines were all filtered out or bad advance too."""
        finals = [f.checkpoint() for f in self.files if f.final is not None]
        if finals:
            state.set_checkpoints(finals)

    def report(self, res: RunResult) -> None:
        if self.errors:
            res.error = _clean("; ".join(self.errors))
            res.partial = bool(self.read_ok or res.objects)

    def __enter__(self) -> Plan:
        return self

    def __exit__(self, *_: Any) -> None:
        for f in self.files:
            if f.tracker is not None:
                try:
                    f.tracker.close()
                except Exception:
                    pass


def plan_files(job: Job, state: State, now: float, rerun: bool = False) -> Plan:
    """Which files, from where: the job's sources with their state rows and checkpoints
    (``rerun``: every file from its start, see :class:`_RerunPlan`)."""
    try:
        return _RerunPlan(rerun_files(job)) if rerun else Plan(match_sources(job, state, now))
    except LogferryError:
        raise
    except Exception as e:  # a source that cannot be listed (a server down, refused login)
        raise SourceError(f"sources {', '.join(job.sources)}: cannot list them: "
                          f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}") from e


class _RerunPlan(Plan):
    """A re-export's files (see :mod:`.rerun`): every current file of the job from its first
    line; no checkpoint moves."""

    def checkpoints_upto(self, last: tuple[int, int]) -> list:
        return []

    def commit_rest(self, state: State) -> None:
        pass


def rerun_files(job: Job) -> list[_FileRun]:
    """Every current file of the job, from its first line (no state row: ids < 0)."""
    from .state import FileState

    return [_FileRun(FileState(-i, job.name, sf.path, sf.dev, sf.ino, sf.fp, sf.fp_len, sf.size,
                               sf.mtime, 0, 0, 0, "", "", 0, 0.0, 0), sf)
            for i, sf in enumerate(src.expand(list(job.sources)), 1)]


def match_sources(job: Job, state: State, now: float) -> list[_FileRun]:
    """Current files of the job with their state rows (new files get one); which file is
    which (renamed, grown, rotated and compressed, copytruncated, moved on an object
    store) is decided by the shared source layer (``sources.match_files``)."""
    out = []
    for m in _matched(job, state):
        sf, match = m.sf, m.known
        if m.how == "compressed":
            # from now on it is this (immutable) compressed file, at the same line checkpoint
            state.relink_file(match.id, sf.path, sf.dev, sf.ino, sf.fp, sf.fp_len, sf.size, sf.mtime)
            fs = state.file(match.id)
        elif match is None:
            fs = state.add_file(job.name, sf.path, sf.dev, sf.ino, sf.fp, sf.fp_len, sf.size,
                                sf.mtime, now)
        else:
            fs = match
            if (sf.path, sf.fp_len, sf.size, sf.mtime) != (match.path, match.fp_len, match.size, match.mtime):
                state.update_file_seen(match.id, sf.path, sf.fp, sf.fp_len, sf.size, sf.mtime)
        out.append(_FileRun(fs, sf))
    return out


def _matched(job: Job, state: State):
    known = state.files(job.name)
    remote_known = {f.path: (f.size, f.mtime, f.fp, f.fp_len) for f in known if f.dev is None}
    return src.match_files(src.expand(list(job.sources), remote_known), known)


def open_at_checkpoint(sf: src.SourceFile, fs: Any, **kw: Any) -> Any:
    """``sf`` read on from its checkpoint ``fs`` (a ``files`` row of the state; None: a new
    file, from its start): :func:`sources.open_from` with the directives in force there."""
    if fs is None:
        return src.open_from(sf.path, sf.remote, 0, 0, 0, b"", None, **kw)
    return src.open_from(sf.path, sf.remote, fs.line, fs.anchor_line, fs.anchor_off,
                         fs.header.encode("utf-8"), fs.title.encode("utf-8") or None, **kw)


def next_record_time(job: Job, state: State, matches: list[Any] | None = None) -> datetime | None:
    """The time of the first record the next run of ``job`` will deliver (after the
    checkpoints, through the job's filters): the time its next object is named after
    (``naming.render``) and the backlog's oldest undelivered record; None when no record is
    pending or it has no time.  ``matches``: the files to look in (``sources.match_files``
    rows; default: all the job's).  Reads the sources from their checkpoints and changes
    nothing."""
    from ..reader import RecordStream

    transform, _ = compile_transforms(job)
    for m in _matched(job, state) if matches is None else matches:
        t = open_at_checkpoint(m.sf, m.known)  # (None: a new file, read from its start)
        try:
            stream = RecordStream(t, job.format, options=job.reader_options, on_bad=lambda _b: None,
                                  source_name=m.sf.path, chunk_size=HEAD_CHUNK)
            for batch in stream:
                batch = transform(_renumber(batch, t))
                if batch.num_rows:
                    ts = batch.column("timestamp")[0].as_py()
                    return ts.astimezone(UTC) if ts is not None else None
        except InputError:
            continue  # (an empty file or one nothing can be read from: the next)
        finally:
            t.close()
    return None


def run_job(
    job: Job,
    state: State,
    dest: Any,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    stop: Stop | None = None,
    force: bool = False,
    bad_rows_path: str | None = None,
    wait: float = 0.0,
    rerun: Any = None,
) -> RunResult:
    """One run of a job: deliver everything new, then return the run's result.

    The run holds the job's lock (:mod:`.lock`) from start to end; when another run of
    the job is in flight it waits up to ``wait`` seconds, then raises
    :class:`~.lock.JobRunning`.  Every way of running a job comes through here.
    ``rerun`` (a :class:`~.rerun.Rerun`): a re-export of that range instead, which
    leaves the checkpoints alone (see :mod:`.rerun`)."""
    from .lock import job_lock

    with job_lock(state.directory, job.name, wait):
        return _locked_run(job, state, dest, clock, sleep, stop, force, bad_rows_path, rerun)


def _locked_run(job: Job, state: State, dest: Any, clock, sleep, stop: Stop | None, force: bool,
                bad_rows_path: str | None, rerun=None) -> RunResult:
    # only the lock holder gets here: a run still marked 'running' was killed
    state.close_dead_runs(job.name, clock())
    if state.is_stopped(job.name) and not force:
        return RunResult(0, "skipped", error="job is stopped")
    run_id = state.begin_run(job.name, clock(), *(("rerun", rerun.note) if rerun else ()))
    res = RunResult(run_id, "running")
    try:
        stop = stop or Stop()
        if rerun is not None:
            job = rerun.job(job, run_id)
        interrupted = _run(job, state, dest, res, clock, sleep, stop, bad_rows_path, rerun is not None)
        if res.error:
            # some files could not be read: 'partial' when the others were delivered
            res.status = "partial" if res.partial else "failed"
        else:
            res.status = "stopped" if interrupted else "ok"
    except SourceError as e:
        # recorded as a failed run, and raised: the command cannot do its work at all
        state.end_run(run_id, clock(), "failed", _clean(str(e)), res.bad)
        raise
    except (LogferryError, OSError) as e:
        res.status = "failed"
        res.error = _clean(str(e))
    except Exception as e:  # a crash inside a run still ends it, as failed, with its reason
        log.exception("run %s of job %s crashed", run_id, job.name)
        res.status = "failed"
        res.error = _clean(f"internal error: {type(e).__name__}: {e}")
    state.end_run(run_id, clock(), res.status, res.error, res.bad)
    return res


def _clean(msg: str) -> str:
    return msg.replace("\n", " ")[:1000]


def _run(job: Job, state: State, dest: Any, res: RunResult, clock, sleep, stop: Stop,
         bad_rows_path: str | None, rerun: bool = False) -> bool:
    """Deliver what is new; True when a stop request ended the run before the end of the
    sources (the object being built is still finished and delivered).  ``rerun``: a
    re-export's plan and delivery (every file from its start; no checkpoint, intent or
    sequence number touched).

    plan -> read -> transform -> encode + rotate -> name -> deliver -> commit"""
    transform, select = compile_transforms(job)
    encoder = encoder_for(job, dest, clock)  # encode + rotate: format, compression, limits
    plan = plan_files(job, state, clock(), rerun)  # which files, from where
    deliver = _Rerun if rerun else _Delivery
    out = deliver(job, state, dest, res, clock, sleep, encoder.ext, plan)  # name, deliver, commit
    try:
        with plan, _bad_rows(bad_rows_path, res) as on_bad:
            for f in plan.files:
                if stop.requested:
                    return True
                stream = _open(f, job, state, clock, plan, on_bad)  # read
                if stream is None:
                    continue
                if not _ship_file(f, stream, transform, select, encoder, out, stop):
                    return True
                _finish(f, stream, res, plan)
            if not out.all(encoder.flush(), stop):
                return True
            plan.commit_rest(state)  # files whose last lines were all filtered out or bad
            return False
    finally:
        plan.report(res)  # files that could not be read (an exception's message replaces it)


def _ship_file(f: _FileRun, stream, transform, select, encoder: Encoder, out: _Delivery,
               stop: Stop) -> bool:
    """read -> transform -> encode + rotate -> name, deliver, commit, batch after batch;
    False when a stop request ended it.

    A stop request (SIGTERM) lets the object being put finish, then ends the run: nothing
    more is delivered and the records not yet in a delivered object stay behind the
    checkpoint for the next run."""
    for batch in _read(f, stream):
        # encode in slices: the JSON of a whole reader batch (~80k rows with the raw
        # fields) and its intermediates would cost hundreds of MB at once
        for part in _slices(transform(batch), ENCODE_ROWS):
            if part.num_rows:
                # the marks come before the field selection, which may drop their columns
                out.all(encoder.add(select(part), Marks(part, f.fs.id)), stop)
                if stop.requested:
                    return False
        if stop.requested:
            return False
    return not stop.requested


# ------------------------------------------------------------------------------ read
def _open(f: _FileRun, job: Job, state: State, clock, plan: Plan, on_bad) -> Any:
    """The file's record stream from its checkpoint on; None when there is nothing to
    read (an empty file: read to its end) or it cannot be opened (noted in ``plan``; the
    other files still go)."""
    fs = f.fs
    hold = (not f.sf.remote) and (clock() - f.sf.mtime) < job.partial_grace_secs
    try:
        t = open_at_checkpoint(f.sf, fs, hold_partial=hold)
    except Exception as e:  # this file cannot be opened: the others still go
        plan.errors.append(_file_error(f.sf.path, e))
        return None
    f.tracker = t
    try:
        from ..reader import RecordStream

        stream = RecordStream(t, job.format, options=job.reader_options, on_bad=on_bad(f.sf.path, t),
                              source_name=f.sf.path, chunk_size=READ_CHUNK)
    except Exception as e:
        t.close()
        if isinstance(e, InputError) and ("empty input" in str(e) or "nothing to detect" in str(e)):
            f.final = (fs.line, fs.anchor_line, fs.anchor_off, fs.header.encode())
            plan.read_ok += 1
        else:
            plan.errors.append(_file_error(f.sf.path, e))
        return None
    if fs.title == "" and t.title and fs.line == 0:
        state.con.execute("UPDATE files SET title=? WHERE id=?", (t.title.decode("utf-8", "replace"), fs.id))
    return stream


def _read(f: _FileRun, stream) -> Iterator[pa.RecordBatch]:
    """The file's batches, its lines numbered as in the file, until it ends or fails (a
    corrupt or truncated file, an I/O error: noted in ``f.failed``)."""
    it = iter(stream)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except Exception as e:
            f.failed.append(_file_error(f.sf.path, e))
            return
        batch = _renumber(batch, f.tracker)
        if batch.num_rows:
            f.done = int(batch.column("line_number")[-1].as_py())
        yield batch


def _finish(f: _FileRun, stream, res: RunResult, plan: Plan) -> None:
    """Where the file was read to: its end, or the last line read when it broke off (what
    was read of it goes; the next run retries it from there)."""
    t = f.tracker
    res.bad += stream.stats.bad_omitted  # bad rows past the file's cap: counted only
    if f.failed:
        plan.errors.extend(f.failed)
        if f.done is not None:
            f.final = (f.done, *t.state_at(f.done))
            f.eof = 0
    else:
        f.final = (t.line, *t.state_at(t.line))
        f.eof = 0 if t.held else 1
        plan.read_ok += 1
    t.close()


# ---------------------------------------------------------------- name, deliver, commit
class _Delivery:
    """Name -> deliver -> commit, one object at a time.  A new name is recorded as the
    job's intent before the put, and the checkpoints advance after it, in one transaction
    with the object's history row; a killed run's intent is the next object's name."""

    def __init__(self, job: Job, state: State, dest: Any, res: RunResult, clock, sleep, ext: str,
                 plan: Plan):
        self.job, self.state, self.dest, self.res = job, state, dest, res
        self.clock, self.sleep, self.ext, self.plan = clock, sleep, ext, plan
        self.host = socket.gethostname()
        self.seq = state.next_seq(job.name)
        self.pending = state.pending(job.name)  # (name, seq) or (None, None)

    def all(self, objs: Iterator[Obj], stop: Stop) -> bool:
        """Deliver the objects; False when a stop request came first (the rest stays)."""
        for o in objs:
            if stop.requested:
                return False
            self.one(o)
        return True

    def one(self, o: Obj) -> None:
        data = o.data
        o.parts = [data]  # one copy of the object in memory, not pieces + joined
        name, seq = self.name(o)
        _with_retries(lambda: self.dest.put(name, data), self.job, self.sleep)
        self.commit(o, name, data, seq)

    def name(self, o: Obj) -> tuple[str, int]:
        pending_name, pending_seq = self.pending
        if pending_name is not None:
            self.pending = (None, None)
            return pending_name, pending_seq if pending_seq is not None else self.seq
        job, seq = self.job, self.seq
        ts = o.first_ts or datetime.fromtimestamp(self.clock(), UTC)
        name = naming.check_name(naming.render(
            job.name_template, ts, seq=seq, job=job.name, position=f"{o.first[0]}:{o.first[1]}:{seq}",
            service=job.service, site=job.site, host=self.host, ext=self.ext,
        ))
        _check_free(self.dest, name, job, self.state, self.sleep)
        self.intend(name, seq)
        return name, seq

    def intend(self, name: str, seq: int) -> None:
        self.state.set_pending(self.job.name, name, seq)

    def commit(self, o: Obj, name: str, data: bytes, seq: int) -> None:
        self.seq = seq + 1
        self.state.commit_object(
            self.job.name, self.res.run_id, name, len(data), o.records, hashlib.sha256(data).hexdigest(),
            self.clock(), o.first_ts.isoformat() if o.first_ts else None,
            self.plan.checkpoints_upto(o.last), self.next_seq(), dest=self.job.dest,
        )
        self.res.objects += 1
        self.res.records += o.records
        self.res.bytes += len(data)
        self.res.names.append(name)

    def next_seq(self) -> int | None:
        return self.seq


class _Rerun(_Delivery):
    """A re-export's delivery: its objects numbered from 0 (their names carry the run id),
    no intent recorded, the job's sequence number left alone."""

    def __init__(self, *a: Any):
        super().__init__(*a)
        self.seq, self.pending = 0, (None, None)

    def intend(self, name: str, seq: int) -> None:
        pass

    def next_seq(self) -> None:
        return None


def _file_error(path: str, e: BaseException) -> str:
    msg = str(e) if isinstance(e, LogferryError) else f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
    msg = msg.replace("<stream>", path)
    return _clean(msg if path in msg else f"{path}: {msg}")


#: bytes of log text parsed at a time: the reader's default (8 MiB, parsed in segments on
#: worker threads) costs a few hundred MB of Arrow memory per chunk with the raw fields
#: kept; shipping holds an object and its upload besides, so it reads smaller chunks
READ_CHUNK = 2 << 20
#: bytes a read for the first pending record's time takes at a time
HEAD_CHUNK = 1 << 16

#: rows encoded at a time (bounded memory for the text and its intermediates)
ENCODE_ROWS = 16384


def _slices(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for i in range(0, batch.num_rows, rows):
        yield batch.slice(i, rows)


def _renumber(batch: pa.RecordBatch, t: src.Tracker) -> pa.RecordBatch:
    """Reader line numbers (which count the replayed header) -> the file's numbering,
    without the records of replayed lines (a log with no directive keeps its first line
    as its title, replayed in front of each later read: a record read before)."""
    if t.base == 0:  # a read from the file's start: nothing replayed
        return batch
    i = batch.schema.get_field_index("line_number")
    col = pc.add(batch.column(i), pa.scalar(t.base - t.prefix_lines, pa.int64()))
    batch = batch.set_column(i, "line_number", col)
    return batch.filter(pc.greater(col, t.base)) if batch.num_rows and col[0].as_py() <= t.base else batch


@contextmanager
def _bad_rows(path: str | None, res: RunResult) -> Iterator[Callable[[str, src.Tracker], Callable]]:
    """``on_bad(file, tracker)``: the bad rows callback of a file, which counts them in
    ``res`` and appends them to ``path`` (a JSON line each) when given."""
    f = open(path, "ab") if path else None
    try:
        yield partial(_bad_writer, f, res)
    finally:
        if f:
            f.close()


def _bad_writer(f, res: RunResult, path: str, t: src.Tracker):
    shift_holder = t

    def on_bad(b) -> None:
        line = b.line_number + shift_holder.base - shift_holder.prefix_lines
        if line <= shift_holder.base:  # a replayed line (see _renumber): counted before
            return
        res.bad += 1
        if f is not None:
            f.write(json.dumps({"source_file": path, "line_number": line, "raw": b.raw,
                                "reason": b.reason, "length": b.length,
                                "sha256": b.sha256}).encode() + b"\n")

    return on_bad


def _check_free(dest: Any, name: str, job: Job, state: State, sleep) -> None:
    """A new object name must not hold an object already: neither one this state
    delivered (any job with this destination) nor any other at the destination (asked
    once, before the first put: a put whose reply was lost may leave its own object)."""
    prior = state.delivered_as(name, job.dest, job.name)
    if prior is None and hasattr(dest, "exists"):
        taken = _with_retries(lambda: dest.exists(name), job, sleep)
    else:
        taken = prior is not None
    if taken:
        who = (f"the object delivered by job {prior.job} in run {prior.run_id}" if prior
               else "an object logferry did not deliver")
        raise PermanentError(
            f"object name {name!r} already holds {who}; it is not overwritten (make the "
            f"name template unique for this destination, e.g. with {{job}} and {{seq}})")


def _with_retries(fn: Callable[[], Any], job: Job, sleep) -> Any:
    """``fn()``, retried with exponential backoff on transient errors."""
    attempt = 0
    while True:
        try:
            return fn()
        except TransientError as e:
            attempt += 1
            if attempt > job.retries:
                raise TransientError(f"{e} (gave up after {attempt} attempts)") from e
            delay = min(job.backoff_max_secs, job.backoff_secs * (2 ** (attempt - 1)))
            log.warning("%s: %s; retry %d of %d in %.1fs", job.name, e, attempt, job.retries, delay)
            sleep(delay)


def bad_rows_file(state_dir: str | os.PathLike, job: str) -> str:
    """``<state>/<job>.bad.jsonl`` (job names are slugs, so it stays in the directory)."""
    return os.path.join(os.fspath(state_dir), f"{naming.check_job_name(job)}.bad.jsonl")


def ship_once(job: Job, state_dir: str, dest: Any = None, **kw: Any) -> RunResult:
    """Convenience: open state + destination, run the job once, close them."""
    from ..destinations import open_destination

    st = State(state_dir)
    own = dest is None
    d = dest or open_destination(job.dest, job.dest_options)
    try:
        return run_job(job, st, d, bad_rows_path=bad_rows_file(state_dir, job.name), **kw)
    finally:
        st.close()
        if own:
            d.close()


__all__: Sequence[str] = ["Job", "Filter", "RunResult", "Stop", "run_job", "ship_once", "bad_rows_file",
                          "ConfigError"]
