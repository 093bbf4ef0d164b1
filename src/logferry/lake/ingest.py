"""Ingest into the lake: plan and read on workers (or in this process), commit on the driver.

    driver: expand inputs, snapshot the manifest  ->  workers: LakeWriter + the ingester,
    one task per run of small files (or per large file, or per range of one), data files
    written where the work runs  ->  driver: commit the reads as they come back, a batch
    at a time (``lake/commit.py``)

A task reads up to :data:`TASK_FILES` files of at most :data:`TASK_BYTES` together
(fewer with workers, so that each worker thread gets two tasks or more): it pays the
ingester's, the writer's and the storage's setup once, and writes the rows of all its
files to one data file per table and partition (``LakeWriter.hold``).  A task's reads
are committed in one batch, never split: they share data files.

A run keeps each tenant's files together (:func:`tenant_key`): its files, taken up to
:data:`WINDOW_FILES` at a time, are grouped by tenant (a group where its first file is,
each in input order) and the tasks are cut over the groups, so a tenant's files share
tasks, hence data files, with each other rather than with every other tenant's.  What the
run stores stays that of the input order: the reads are committed in input order (by
segments that no task crosses), so the files are numbered, and their reads judged against
each other, as the database does.

``workers``: a local Dask cluster of that many processes; ``cluster``: the address of a
running Dask scheduler (``tcp://host:8786``); neither: this process.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..sources import SourceFile
from ..usage.results import FileResult, IngestSummary
from . import ranges
from .commit import commit, load_manifest
from .manifest import ContentKeys, Manifest, NotSent, TaskManifest, TaskRows
from .store import HOLD_BYTES, LakeWriter, Pending, delete_files
from .tables import NAMESPACE, Lake, io_properties

#: reads committed together (one manifest commit each batch: whole segments, so a task's
#: reads are never split between two, until this many or more are in)
_COMMIT_BATCH = 64
#: files read by one task at most (a task's reads are one commit batch)
TASK_FILES = _COMMIT_BATCH
#: bytes (as listed: compressed) of the files one task reads at most; a larger file is a
#: task of its own
TASK_BYTES = 16 << 20
#: files (and bytes as listed) a run groups by tenant at a time at most: where the tenants
#: interleave, a window's reads are committed together once all its tasks are done
WINDOW_FILES = 128 * TASK_FILES
WINDOW_BYTES = 128 * TASK_BYTES

#: a date in a file name (2024-03-01, 2024_03_01, 2024.03.01, 20240301)
_DATE = re.compile(r"(?<!\d)(?:19|20)\d\d([-_.]?)(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])")
#: a folder that is a date or a time: 2024, 03, 2024-03-01, 2024-03-01-05, dt=2024-03-01, hour=05
#: (a key=value level is a time only under a time's name: customer=2001 is a tenant)
_TIME_FOLDER = re.compile(
    r"(?:(?:year|month|day|hour|minute|date|dt|ds|[ymdh])=)?"
    r"(?:\d{1,2}|(?:19|20)\d\d(?:[-_.]?\d\d(?:[-_.]?\d\d(?:[-_.T ]?\d\d(?::?\d\d){0,2}Z?)?)?)?)",
    re.IGNORECASE)
#: a name's part before its first digit
_LEAD = re.compile(r"\D*")
#: a compressed file's suffix
_PACKED = re.compile(r"\.(?:gz|gzip|z|zst|zstd|bz2|xz|lz4|lzo|zip)$", re.IGNORECASE)


def tenant_key(path: str) -> str | None:
    """The tenant a file is taken to belong to, from its path alone (before it is read):
    its folder without the levels that are a date or a time (``2024/03/01/05``,
    ``2024-03-01``, ``dt=2024-03-01``, ``hour=05``), with its name up to the date in it
    (``E2EDGE`` of CloudFront's ``E2EDGE.2024-03-01-05.a1b2c3d4.gz``; ``acme`` of
    ``acme-2024-03-01.log``) or, without a date, up to its first digit (``access.log`` of
    ``access.log.1.gz``); the compression suffix and the separators at the cut left out.
    None (no key: the file stays where the input has it) when neither leaves anything."""
    folder, _, name = path.replace(os.sep, "/").rpartition("/")
    kept = "/".join(x for x in folder.split("/") if not _TIME_FOLDER.fullmatch(x))
    stem = _PACKED.sub("", name)
    date = _DATE.search(stem)
    part = (stem[:date.start()] if date else _LEAD.match(stem).group()).rstrip("-_. ")  # type: ignore[union-attr]
    if not part and not kept.strip("/"):
        return None
    return f"{kept}/{part}"


@dataclass
class ReadJob:
    """What a worker needs to read files into the lake, whatever the files (sent to every
    worker once); each task brings the manifest entries of its own files (``TaskRows``)."""

    io_props: dict[str, str]
    warehouse: str
    format: str | None
    options: dict[str, Any] | None
    content: ContentKeys  # (what a task's entries need of the whole manifest)


#: times a task's files are sent again with the content groups they found missing, before
#: the whole manifest goes with them (a file rewritten between two sends: new groups)
_RESENDS = 2


def read_files(job: ReadJob, files: list[SourceFile], sent: TaskRows) -> list[Pending | FileResult | NotSent]:
    """A worker's task: read ``files`` into data files, their rows written together (a
    data file per table and partition for up to ``HOLD_BYTES`` of rows); a Pending per
    read to commit, a FileResult for a file with nothing to commit (known, unchanged,
    failed), a NotSent for a file whose head's content group ``sent`` (the entries the
    files may be: ``Manifest.for_files``) lacks, not read."""
    from pyiceberg.io import load_file_io

    from ..usage.ingester import Ingester

    io = load_file_io(job.io_props, job.warehouse)
    writer = LakeWriter(TaskManifest(sent, job.content), io, f"{job.warehouse}/{NAMESPACE}")
    writer.hold = True
    ing = Ingester(writer, format=job.format, options=job.options, cores=ranges.worker_cores())
    out: list[Pending | FileResult | NotSent] = []
    for sf in files:
        n = len(writer.done)
        writer.not_sent = None
        res = ing.ingest_file(sf)
        if writer.not_sent is not None:  # (asked before anything of the file was read)
            out.append(writer.not_sent)
        elif len(writer.done) > n:
            writer.done[-1].result = res
            out.append(writer.done[-1])
        else:
            out.append(res)
        if writer.held_bytes >= HOLD_BYTES:
            writer.write_held()
    writer.write_held()
    return out


def ingest_lake(lake: Lake, files: list[SourceFile], *, client: Any = None, format: str | None = None,
                options: dict[str, Any] | None = None,
                on_file: Callable[[FileResult], None] | None = None,
                range_bytes: int | None = None) -> IngestSummary:
    """Ingest ``files`` (expanded already) into ``lake``, on the Dask ``client``'s workers
    (from :func:`dask_client`) or in this process; one summary as for the database.  On
    workers, an uncompressed file (local or an object) of ``range_bytes`` or more, new or
    grown by that much, is read in byte ranges (``lake/ranges.py``; default
    ``LOGFERRY_LAKE_RANGE_BYTES``, else 64 MiB)."""
    t0 = time.perf_counter()
    summary = IngestSummary()
    # (the workers write data files only: the FileIO settings, not the catalog's address)
    known = load_manifest(lake)  # (Arrow, once a run: each task is sent its files' entries)
    planned = known.file_ids()
    job = ReadJob(io_properties(), lake.where.warehouse, format, options, known.content_keys())
    for batch in _batches(_run(job, known, files, client, ranges.range_bytes(range_bytes))):
        commit(lake, [x for x in batch if isinstance(x, Pending)], planned)
        for x in batch:
            res = x.result if isinstance(x, Pending) else x
            summary.files.append(res)
            if on_file is not None:
                on_file(res)
    summary.seconds = time.perf_counter() - t0
    return summary


def _batches(items: Iterator[list[Pending | FileResult]]) -> Iterator[list[Pending | FileResult]]:
    """Segments' reads in batches of :data:`_COMMIT_BATCH` or more: a segment's (so a
    task's) all in one, in input order."""
    batch: list[Pending | FileResult] = []
    for done in items:
        batch.extend(done)
        if len(batch) >= _COMMIT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _listed_bytes(sf: SourceFile) -> int:
    """A file's size as listed (one of unknown size counts as a whole task's)."""
    return TASK_BYTES if sf.size is None else sf.size


def _windows(files: Sequence[SourceFile]) -> Iterator[range]:
    """The run's files in windows of consecutive ones: up to :data:`WINDOW_FILES` files of
    :data:`WINDOW_BYTES` in all (as listed; one larger file is a window of its own)."""
    start = 0
    while start < len(files):
        end, size = start, 0
        while end < len(files) and end - start < WINDOW_FILES:
            n = _listed_bytes(files[end])
            if end > start and size + n > WINDOW_BYTES:
                break
            size += n
            end += 1
        yield range(start, end)
        start = end


def _cut(files: Sequence[SourceFile], at: Sequence[int] | range, most: int) -> list[list[int]]:
    """The files at positions ``at`` (of one window) in tasks of up to ``most`` files of
    TASK_BYTES in all, each a list of positions: the files grouped by :func:`tenant_key`
    first (a group where its first file is, its files in input order; a file without a
    key where it is), then cut in that order -- a tenant's files fill tasks together, and
    the tenants of a few files share one."""
    first: dict[str, int] = {}
    rank: dict[int, int] = {}
    for i in at:
        key = tenant_key(files[i].path)
        rank[i] = i if key is None else first.setdefault(key, i)
    tasks: list[list[int]] = []
    task: list[int] = []
    size = 0
    for i in sorted(at, key=lambda i: (rank[i], i)):
        n = _listed_bytes(files[i])
        if task and (len(task) >= most or size + n > TASK_BYTES):
            tasks.append(task)
            task, size = [], 0
        task.append(i)
        size += n
    if task:
        tasks.append(task)
    return tasks


def _segments(units: list[Any], at: Callable[[Any], list[int]] = lambda u: u) -> list[list[Any]]:
    """``units`` (tasks: their files' positions ``at(unit)``) in segments that no unit
    crosses: every file of a segment comes before every file of the next in input order,
    so the segments' reads, each segment's in input order, are the run's in input order."""
    out: list[list[Any]] = []
    end = -1
    for u in sorted(units, key=lambda u: min(at(u))):
        if out and min(at(u)) <= end:
            out[-1].append(u)
            end = max(end, *at(u))
        else:
            out.append([u])
            end = max(at(u))
    return out


def _run(job: ReadJob, known: Manifest, files: list[SourceFile], client: Any, block: int
         ) -> Iterator[list[Pending | FileResult]]:
    """The run's reads, a segment at a time, each segment's in input order (as the
    database numbers files: the commits number new files in the order they come)."""
    if client is None:  # (this process: each task as a worker would read it)
        def here(task: list[SourceFile], sent: TaskRows) -> list[Pending | FileResult | NotSent]:
            return read_files(job, task, sent)

        for window in _windows(files):
            for seg in _segments(_cut(files, window, TASK_FILES)):
                got: dict[int, Pending | FileResult] = {}
                for task in seg:
                    part = [files[i] for i in task]
                    done = _again(here, known, part, here(part, known.for_files(part)))
                    got.update(zip(task, done, strict=True))
                yield [got[i] for i in sorted(got)]
        return
    # (a key of this run's own: the same job scattered by a run killed just before shares a
    # content-hashed key, and the scheduler dropping that dead client's data lost this run's)
    shared = client.scatter(job, broadcast=True, hash=False)
    threads = _dask(client, ranges.threads_of, client)
    for seg in _submit(job, known, files, client, shared, block, threads):  # (all submitted: they run at once)
        got = {}
        for at, how, fut in seg:
            if how is None:
                got.update(zip(at, _resend(client, shared, known, *fut), strict=True))
                continue
            sf = files[at[0]]
            parts = _dask(client, client.gather, fut[0])
            done = ranges.merge(sf, how[0], parts, fut[1])
            if not isinstance(done, Pending):
                _discard(job, parts)  # (a range failed or did not meet the next: the file read whole)
                done = _resend(client, shared, known, *_send(client, shared, known, [ranges.now(sf)]))[0]
            got[at[0]] = done
        yield [got[i] for i in sorted(got)]


def _send(client: Any, shared: Any, known: Manifest, task: list[SourceFile]) -> tuple[list[SourceFile], Any]:
    """A task of files read whole submitted with the manifest entries they may be: (its
    files, its read_files future)."""
    return task, client.submit(read_files, shared, task, known.for_files(task), pure=False)


def _resend(client: Any, shared: Any, known: Manifest, task: list[SourceFile], fut: Any
            ) -> list[Pending | FileResult]:
    """A task's results on the workers, with :func:`_again`."""
    def there(files: list[SourceFile], sent: TaskRows) -> list[Pending | FileResult | NotSent]:
        return _dask(client, client.submit(read_files, shared, files, sent, pure=False).result)

    return _again(there, known, task, _dask(client, fut.result))


def _again(read: Callable[[list[SourceFile], TaskRows], list[Pending | FileResult | NotSent]], known: Manifest,
           task: list[SourceFile], done: list[Pending | FileResult | NotSent]) -> list[Pending | FileResult]:
    """A task's results ``done``, its files that found a content group missing ``read``
    again (in a task of their own, with those groups; at last with the whole manifest), in
    place."""
    for attempt in range(_RESENDS + 1):
        again = [i for i, x in enumerate(done) if isinstance(x, NotSent)]
        if not again:
            break
        files = [task[i] for i in again]
        if attempt < _RESENDS:
            asked = [done[i] for i in again]
            sent = known.for_files(files, {x.prefix for x in asked}, {i for x in asked for i in x.ids})
        else:
            sent = known.whole()
        got = read(files, sent)
        for i, x in zip(again, got, strict=True):
            done[i] = x
    return done  # type: ignore[return-value]


def _submit(job: ReadJob, known: Manifest, files: list[SourceFile], client: Any, shared: Any, block: int,
            threads: int) -> list[list[tuple[list[int], Any, Any]]]:
    """The tasks of ``files`` submitted, window by window, in segments (:func:`_segments`):
    (the positions of its files, None, (its files, a read_files future): :func:`_send`)
    for a task of files read whole, ([the file's position], its ranges' plan, their
    futures) for a file read in ranges -- each worker thread gets two tasks of files read
    whole at least; each task carries the manifest entries its files may be."""
    out: list[list[tuple[list[int], Any, Any]]] = []
    most = max(1, min(TASK_FILES, -(-len(files) // (2 * threads))))
    split = threads > 1  # (one worker thread: ranges only cost)
    for window in _windows(files):
        planned = [(i, ranges.plan(job, known, files[i], block) if split else None) for i in window]
        units = [(task, None, _send(client, shared, known, [files[i] for i in task]))
                 for task in _cut(files, [i for i, how in planned if how is None], most)]
        for i, how in planned:  # (the small files' tasks run while the driver scans these)
            if how is None:
                continue
            fut = _dask(client, ranges.submit, client, shared, files[i], *how, block)
            if fut is None:  # (ranges planned but not to be: read whole, as the file is now)
                units.append(([i], None, _send(client, shared, known, [ranges.now(files[i])])))
            else:
                units.append(([i], how, fut))
        out.extend(_segments(units, lambda u: u[0]))
    return out


def _dask(client: Any, f: Callable[..., Any], *args: Any) -> Any:
    try:
        return f(*args)
    except Exception as e:  # a worker lost, a task that could not run: the reads before are in
        raise ConfigError(f"{client.logferry_where}: the Dask work failed: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def _discard(job: ReadJob, parts: list[Pending | FileResult]) -> None:
    """The data files of a ranged file's reads that are not committed (never in a table)."""
    from pyiceberg.io import load_file_io

    delete_files(load_file_io(job.io_props, job.warehouse),
                 [f for p in parts for fs in getattr(p, "data", {}).values() for f in fs])


@contextmanager
def dask_client(workers: int | None, cluster: str | None) -> Iterator[Any]:
    """A Dask client on the scheduler ``cluster`` or a LocalCluster of ``workers`` processes
    (neither: None, this process), connected before the lake is opened or created: a
    scheduler that cannot be reached is an error with nothing written."""
    if not workers and not cluster:
        yield None
        return
    if workers and cluster:
        raise ConfigError("--workers starts a local Dask cluster and --cluster names a running one: give one")
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:  # pragma: no cover - the extra is installed where tested
        raise ConfigError("Dask is not installed: pip install 'logferry[dask]'") from e
    # (the local scheduler's and nannies' INFO lines are not the operator's; workers are silenced
    # by LocalCluster itself)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    local = None
    try:
        if cluster:
            client = Client(cluster, timeout="10s")
        else:  # (no dashboard; the scheduler's HTTP server on a free port, not 8787)
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False})
            client = Client(local)
    except (OSError, ValueError, TypeError) as e:  # refused, timed out, not an address
        if local is not None:
            local.close()
        raise ConfigError(f"{cluster or 'local cluster'}: cannot reach the Dask scheduler: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    client.logferry_where = cluster or "local cluster"
    try:
        yield client
    finally:
        client.close()
        if local is not None:  # (a worker slow to exit, e.g. on a busy machine, is killed after
            # 4 s with a warning: its work is committed by then, nothing for the operator)
            logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
            local.close()

