"""The shipping chain as plain functions; the clock, the sleep and the destination are
injected so tests run it with a frozen clock and real servers.

    sources (new data since the checkpoints) -> read -> transform (filter, privacy,
    fields) -> encode (writer) -> rotate -> name -> destination.put (retries)
    -> checkpoint + history (one SQLite transaction)

Exactly once per destination: an object's name is computed, recorded as the job's
*intent*, the object is put (a put of the same name replaces), and only then the
checkpoints advance.  A run killed anywhere restarts from the old checkpoint and its
first object reuses the intended name, so nothing is lost and nothing appears twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import sources as src
from ..errors import ConfigError, InputError, LogferryError, PermanentError, TransientError
from ..privacy import Privacy
from . import naming
from .rotate import BatchRotator, Codec, Limits, LineRotator, Obj
from .state import State

log = logging.getLogger("logferry.ship")

DATADOG_MAX_RECORDS = 1000
DATADOG_MAX_BYTES = 4_000_000


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


# --------------------------------------------------------------------------- encoding
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


# ---------------------------------------------------------------------------- engine
@dataclass
class _FileRun:
    fs: Any  # state.FileState
    sf: src.SourceFile
    tracker: src.Tracker | None = None
    final: tuple[int, int, int, bytes] | None = None  # line, anchor line, anchor off, header
    eof: int = 1  # 0 when an unfinished last line was held back


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


def next_record_time(job: Job, state: State) -> datetime | None:
    """The time of the first record the next run of ``job`` will deliver (after the
    checkpoints, through the job's filters): the time its next object is named after
    (``naming.render``); None when no record is pending or it has no time.  Reads the
    sources from their checkpoints and changes nothing."""
    from ..reader import RecordStream

    transform, _ = compile_transforms(job)
    for m in _matched(job, state):
        fs = m.known  # None: a new file, read from its start
        t = src.open_from(m.sf.path, m.sf.remote, fs.line if fs else 0, fs.anchor_line if fs else 0,
                          fs.anchor_off if fs else 0, fs.header.encode("utf-8") if fs else b"",
                          (fs.title.encode("utf-8") or None) if fs else None)
        try:
            stream = RecordStream(t, job.format, options=job.reader_options, on_bad=lambda _b: None,
                                  source_name=m.sf.path, chunk_size=READ_CHUNK)
            for batch in stream:
                batch = transform(batch)
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
) -> RunResult:
    """One run of a job: deliver everything new, then return the run's result.

    The run holds the job's lock (:mod:`.lock`) from start to end; when another run of
    the job is in flight it waits up to ``wait`` seconds, then raises
    :class:`~.lock.JobRunning`.  Every way of running a job comes through here."""
    from .lock import job_lock

    with job_lock(state.directory, job.name, wait):
        return _locked_run(job, state, dest, clock, sleep, stop, force, bad_rows_path)


def _locked_run(job: Job, state: State, dest: Any, clock, sleep, stop: Stop | None, force: bool,
                bad_rows_path: str | None) -> RunResult:
    # only the lock holder gets here: a run still marked 'running' was killed
    state.close_dead_runs(job.name, clock())
    if state.is_stopped(job.name) and not force:
        return RunResult(0, "skipped", error="job is stopped")
    run_id = state.begin_run(job.name, clock())
    res = RunResult(run_id, "running")
    try:
        stop = stop or Stop()
        interrupted = _run(job, state, dest, res, clock, sleep, stop, bad_rows_path)
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
         bad_rows_path: str | None) -> bool:
    """Deliver what is new; True when a stop request ended the run before the end of the
    sources (the object being built is still finished and delivered)."""
    transform, select = compile_transforms(job)
    records_only = getattr(dest, "records_only", False)
    to = "jsonl" if records_only else job.to
    limits = job.limits
    if records_only:
        limits = Limits(
            max_bytes=min(limits.max_bytes or DATADOG_MAX_BYTES, DATADOG_MAX_BYTES),
            max_age_secs=limits.max_age_secs,
            max_records=min(limits.max_records or DATADOG_MAX_RECORDS, DATADOG_MAX_RECORDS),
        )
    from ..writers import writer_factory

    factory = writer_factory(to)
    binary = bool(getattr(factory, "binary", False))
    codec = Codec("none" if records_only or binary else job.compress)
    ext = (getattr(factory, "extension", "") or "") + codec.ext
    host = socket.gethostname()
    seq = state.next_seq(job.name)
    pending_name, pending_seq = state.pending(job.name)
    try:
        runs = match_sources(job, state, clock())
    except LogferryError:
        raise
    except Exception as e:  # a source that cannot be listed (a server down, refused login)
        raise SourceError(f"sources {', '.join(job.sources)}: cannot list them: "
                          f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}") from e
    by_id = {r.fs.id: r for r in runs}
    order = [r.fs.id for r in runs]
    bad_f = open(bad_rows_path, "ab") if bad_rows_path else None

    def checkpoints_upto(last: tuple[int, int]) -> list[tuple[int, int, int, int, str, int]]:
        fid, line = last
        cps = []
        for i in order:
            r = by_id[i]
            if i == fid:
                if r.final is not None and r.final[0] == line:
                    cps.append((i, *r.final[:3], r.final[3].decode("utf-8", "replace"), r.eof))
                else:
                    aline, aoff, hdr = r.tracker.state_at(line)
                    cps.append((i, line, aline, aoff, hdr.decode("utf-8", "replace"), 0))
                break
            if r.final is not None:
                cps.append((i, *r.final[:3], r.final[3].decode("utf-8", "replace"), r.eof))
        return cps

    def deliver(o: Obj) -> None:
        nonlocal seq, pending_name
        data = o.data
        o.parts = [data]  # one copy of the object in memory, not pieces + joined
        if pending_name is not None:
            name, this_seq = pending_name, pending_seq if pending_seq is not None else seq
            pending_name = None
        else:
            this_seq = seq
            ts = o.first_ts or datetime.fromtimestamp(clock(), UTC)
            name = naming.check_name(naming.render(
                job.name_template, ts, seq=this_seq, job=job.name,
                position=f"{o.first[0]}:{o.first[1]}:{this_seq}", service=job.service,
                site=job.site, host=host, ext=ext,
            ))
            _check_free(dest, name, job, state, sleep)
            state.set_pending(job.name, name, this_seq)
        _with_retries(lambda: dest.put(name, data), job, sleep)
        seq = this_seq + 1
        state.commit_object(
            job.name, res.run_id, name, len(data), o.records, hashlib.sha256(data).hexdigest(),
            clock(), o.first_ts.isoformat() if o.first_ts else None, checkpoints_upto(o.last), seq,
            dest=job.dest,
        )
        res.objects += 1
        res.records += o.records
        res.bytes += len(data)
        res.names.append(name)

    if binary and job.fields and to == "parquet":
        # the chosen fields, in their order (the Parquet writer proper writes the whole
        # canonical schema); raw fields as a map column, as the writer does
        import pyarrow.parquet as pq

        from ..writers.parquet import struct_to_map

        def render(table: pa.Table) -> bytes:
            i = table.schema.get_field_index("fields")
            if i >= 0 and pa.types.is_struct(table.schema.field(i).type):
                col = table.column(i).combine_chunks()
                table = table.set_column(i, "fields", struct_to_map(col))
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd")
            return buf.getvalue()
    elif binary:
        def render(table: pa.Table) -> bytes:
            buf = io.BytesIO()
            w = factory(buf)
            for b in table.to_batches():
                w.write(b)
            w.close()
            return buf.getvalue()

    if binary:
        brot = BatchRotator(limits, render, clock)
        lrot = None
    else:
        lrot = LineRotator(limits, codec, clock)
        brot = None
    errors: list[str] = []
    read_ok = 0  # files read to their end
    include_fields = not job.fields
    interrupted = False
    try:
        for r in runs:
            if stop.requested:
                interrupted = True
                break
            fs = r.fs
            hold = (not r.sf.remote) and (clock() - r.sf.mtime) < job.partial_grace_secs
            try:
                t = src.open_from(r.sf.path, r.sf.remote, fs.line, fs.anchor_line, fs.anchor_off,
                                  fs.header.encode("utf-8"), fs.title.encode("utf-8") or None,
                                  hold_partial=hold)
            except Exception as e:  # this file cannot be opened: the others still go
                errors.append(_file_error(r.sf.path, e))
                continue
            r.tracker = t
            try:
                from ..reader import RecordStream

                stream = RecordStream(t, job.format, options=job.reader_options,
                                      on_bad=_bad_writer(bad_f, res, r.sf.path, t),
                                      source_name=r.sf.path, chunk_size=READ_CHUNK)
            except Exception as e:
                t.close()
                if isinstance(e, InputError) and ("empty input" in str(e) or "nothing to detect" in str(e)):
                    r.final = (fs.line, fs.anchor_line, fs.anchor_off, fs.header.encode())
                    read_ok += 1
                    continue
                errors.append(_file_error(r.sf.path, e))
                continue
            if fs.title == "" and t.title and fs.line == 0:
                state.con.execute("UPDATE files SET title=? WHERE id=?",
                                  (t.title.decode("utf-8", "replace"), fs.id))
            read_error: list[str] = []
            done_line = None  # the last line whose records are all in the rotator
            for big in _reading(stream, r.sf.path, read_error):
                big = _renumber(big, t)
                if big.num_rows:
                    done_line = int(big.column("line_number")[-1].as_py())
                big = transform(big)
                # encode in slices: the JSON of a whole reader batch (~80k rows with the
                # raw fields) and its intermediates would cost hundreds of MB at once
                for batch in _slices(big, ENCODE_ROWS):
                    if batch.num_rows == 0:
                        continue
                    marks_lines = batch.column("line_number").to_numpy()
                    tscol = batch.column("timestamp")
                    batch = select(batch)
                    fid = fs.id

                    def mark(i, _m=marks_lines, _f=fid):
                        return (_f, int(_m[i]))

                    def tsf(i, _c=tscol):
                        return _c[i].as_py() if _c is not None else None

                    if brot is not None:
                        tbl = pa.Table.from_batches([batch])
                        objs = brot.add(
                            tbl, list(zip([fid] * batch.num_rows, marks_lines.tolist(), strict=True)),
                            [tsf(i) for i in range(batch.num_rows)])
                    else:
                        if to == "jsonl":
                            header, (data, offs) = b"", encode_jsonl(batch, include_fields)
                        else:
                            header, data, offs = encode_generic(to, batch, {})
                        objs = _chain(lrot.set_header(header), lrot.add(data, offs, mark, tsf))
                    # a stop request (SIGTERM) lets the object being put finish, then ends
                    # the run: nothing more is delivered and the records not yet in a
                    # delivered object stay behind the checkpoint for the next run
                    for o in _chain(objs, (brot or lrot).tick()):
                        if stop.requested:
                            break
                        deliver(o)
                    if stop.requested:
                        break
                if stop.requested:
                    break
            if stop.requested:
                interrupted = True
                break
            res.bad += stream.stats.bad_omitted  # bad rows past the file's cap: counted only
            if read_error:
                # the file broke off: what was read of it goes (its checkpoint moves to the
                # last line read) and the next run retries it from there
                errors.extend(read_error)
                if done_line is not None:
                    aline, aoff, hdr = t.state_at(done_line)
                    r.final = (done_line, aline, aoff, hdr)
                    r.eof = 0
                t.close()
                continue
            aline, aoff, hdr = t.state_at(t.line)
            r.final = (t.line, aline, aoff, hdr)
            r.eof = 0 if t.held else 1
            read_ok += 1
            t.close()
        if not interrupted:
            for o in (brot or lrot).flush():
                if stop.requested:
                    interrupted = True
                    break
                deliver(o)
        if not interrupted:
            # files whose remaining lines were all filtered out / bad: advance them too
            finals = [(i, *by_id[i].final[:3], by_id[i].final[3].decode("utf-8", "replace"),
                       by_id[i].eof)
                      for i in order if by_id[i].final is not None]
            if finals:
                state.set_checkpoints(finals)
    finally:
        if bad_f:
            bad_f.close()
        for r in runs:
            if r.tracker is not None:
                try:
                    r.tracker.close()
                except Exception:
                    pass
    if errors:
        res.error = _clean("; ".join(errors))
        res.partial = bool(read_ok or res.objects)
    return interrupted


def _file_error(path: str, e: BaseException) -> str:
    msg = str(e) if isinstance(e, LogferryError) else f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
    msg = msg.replace("<stream>", path)
    return _clean(msg if path in msg else f"{path}: {msg}")


def _reading(stream, path: str, failed: list[str]) -> Iterator[pa.RecordBatch]:
    """The stream's batches until it ends or fails; a failure of reading (a corrupt or
    truncated file, an I/O error) ends this file only and is put in ``failed``."""
    it = iter(stream)
    while True:
        try:
            big = next(it)
        except StopIteration:
            return
        except Exception as e:
            failed.append(_file_error(path, e))
            return
        yield big


#: bytes of log text parsed at a time: the reader's default (8 MiB, parsed in segments on
#: worker threads) costs a few hundred MB of Arrow memory per chunk with the raw fields
#: kept; shipping holds an object and its upload besides, so it reads smaller chunks
READ_CHUNK = 2 << 20

#: rows encoded at a time (bounded memory for the text and its intermediates)
ENCODE_ROWS = 16384


def _slices(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for i in range(0, batch.num_rows, rows):
        yield batch.slice(i, rows)


def _chain(*its: Iterator[Obj]) -> Iterator[Obj]:
    for it in its:
        yield from it


def _renumber(batch: pa.RecordBatch, t: src.Tracker) -> pa.RecordBatch:
    """Reader line numbers (which count the replayed header) -> the file's numbering."""
    shift = t.base - t.prefix_lines
    if shift == 0:
        return batch
    i = batch.schema.get_field_index("line_number")
    col = pc.add(batch.column(i), pa.scalar(shift, pa.int64()))
    return batch.set_column(i, "line_number", col)


def _bad_writer(f, res: RunResult, path: str, t: src.Tracker):
    shift_holder = t

    def on_bad(b) -> None:
        res.bad += 1
        if f is not None:
            line = b.line_number + shift_holder.base - shift_holder.prefix_lines
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
            log.warning("transient error, retry %d in %.1fs: %s", attempt, delay, e)
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
