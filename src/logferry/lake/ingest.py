"""Ingest into the lake: plan and read on workers (or in this process), commit on the driver.

    driver: expand inputs, snapshot the manifest  ->  workers: LakeWriter + the ingester,
    one task per run of small files (or per large file, or per range of one), data files
    written where the work runs  ->  driver: commit the reads as they come back, a batch
    at a time (``lake/commit.py``)

A task reads up to :data:`TASK_FILES` consecutive files of at most :data:`TASK_BYTES`
together (fewer with workers, so that each worker thread gets two tasks or more): it pays
the ingester's, the writer's and the storage's setup once, and writes the rows of all its
files to one data file per table and partition (``LakeWriter.hold``).  A task's reads
are committed in one batch, never split: they share data files.

``workers``: a local Dask cluster of that many processes; ``cluster``: the address of a
running Dask scheduler (``tcp://host:8786``); neither: this process.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..sources import SourceFile
from ..usage.results import FileResult, IngestSummary
from . import ranges
from .commit import commit, load_manifest
from .store import HOLD_BYTES, LakeRegistered, LakeWriter, Manifest, Pending
from .tables import NAMESPACE, Lake, io_properties

#: reads committed together at most (one manifest commit each batch; a task's reads are
#: never split between two)
_COMMIT_BATCH = 64
#: files read by one task at most (a task's reads are one commit batch)
TASK_FILES = _COMMIT_BATCH
#: bytes (as listed: compressed) of the files one task reads at most; a larger file is a
#: task of its own
TASK_BYTES = 16 << 20


@dataclass
class ReadJob:
    """What a worker needs to read files into the lake (sent to every worker once)."""

    io_props: dict[str, str]
    warehouse: str
    manifest: list[LakeRegistered]
    format: str | None
    options: dict[str, Any] | None

    @functools.cached_property
    def known(self) -> Manifest:
        """The manifest indexed, once per job on each worker (not once per file)."""
        return Manifest(self.manifest)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "known"}  # (rebuilt where it is used)


def read_files(job: ReadJob, files: list[SourceFile]) -> list[Pending | FileResult]:
    """A worker's task: read ``files`` into data files, their rows written together (a
    data file per table and partition for up to ``HOLD_BYTES`` of rows); a Pending per
    read to commit, a FileResult for a file with nothing to commit (known, unchanged,
    failed)."""
    from pyiceberg.io import load_file_io

    from ..usage.ingester import Ingester

    io = load_file_io(job.io_props, job.warehouse)
    writer = LakeWriter(job.known, io, f"{job.warehouse}/{NAMESPACE}")
    writer.hold = True
    ing = Ingester(writer, format=job.format, options=job.options, cores=ranges.worker_cores())
    out: list[Pending | FileResult] = []
    for sf in files:
        n = len(writer.done)
        res = ing.ingest_file(sf)
        if len(writer.done) > n:
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
    job = ReadJob(io_properties(), lake.where.warehouse, load_manifest(lake), format, options)
    planned = frozenset(r.file_id for r in job.manifest)
    for batch in _batches(_run(job, files, client, ranges.range_bytes(range_bytes))):
        commit(lake, [x for x in batch if isinstance(x, Pending)], planned)
        for x in batch:
            res = x.result if isinstance(x, Pending) else x
            summary.files.append(res)
            if on_file is not None:
                on_file(res)
    summary.seconds = time.perf_counter() - t0
    return summary


def _batches(items: Iterator[list[Pending | FileResult]]) -> Iterator[list[Pending | FileResult]]:
    """Tasks' reads in batches of :data:`_COMMIT_BATCH` or more: a task's all in one."""
    batch: list[Pending | FileResult] = []
    for done in items:
        batch.extend(done)
        if len(batch) >= _COMMIT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _Tasks:
    """Files grouped into tasks in input order: up to ``most`` files of TASK_BYTES in all."""

    def __init__(self, most: int):
        self.most, self.bytes = most, 0
        self.files: list[SourceFile] = []

    def add(self, sf: SourceFile) -> list[SourceFile]:
        """Add ``sf``; the task it did not fit in, when there is one to run now ([]: none)."""
        n = TASK_BYTES if sf.size is None else sf.size
        full = bool(self.files) and (len(self.files) >= self.most or self.bytes + n > TASK_BYTES)
        done = self.take() if full else []
        self.files.append(sf)
        self.bytes += n
        return done

    def take(self) -> list[SourceFile]:
        """The task being filled, to run now."""
        done, self.files, self.bytes = self.files, [], 0
        return done


def _run(job: ReadJob, files: list[SourceFile], client: Any, block: int) -> Iterator[list[Pending | FileResult]]:
    if client is None:
        tasks = _Tasks(TASK_FILES)
        for sf in files:
            if task := tasks.add(sf):
                yield read_files(job, task)
        if task := tasks.take():
            yield read_files(job, task)
        return
    # (a key of this run's own: the same job scattered by a run killed just before shares a
    # content-hashed key, and the scheduler dropping that dead client's data lost this run's)
    shared = client.scatter(job, broadcast=True, hash=False)
    threads = _dask(client, ranges.threads_of, client)
    futures = _submit(job, files, client, shared, block, threads)
    for sf, how, fut in futures:  # in input order, as the database numbers files (they run at once)
        if how is None:
            yield _dask(client, fut.result)
            continue
        parts = _dask(client, client.gather, fut[0])
        done = ranges.merge(sf, how[0], parts, fut[1])
        if isinstance(done, Pending):
            yield [done]
            continue
        _discard(job, parts)  # (a range failed or did not meet the next: the file read whole)
        yield _dask(client, client.submit(read_files, shared, [ranges.now(sf)], pure=False).result)


def _submit(job: ReadJob, files: list[SourceFile], client: Any, shared: Any, block: int, threads: int
            ) -> list[tuple[SourceFile | None, Any, Any]]:
    """The tasks of ``files`` submitted, in input order: (file, its ranges' plan, their
    futures) for a file read in ranges, else (None, None, a read_files future) -- each
    worker thread gets two tasks of files read whole at least."""
    futures: list[tuple[SourceFile | None, Any, Any]] = []
    tasks = _Tasks(max(1, min(TASK_FILES, -(-len(files) // (2 * threads)))))

    def send(task: list[SourceFile]) -> None:
        if task:
            futures.append((None, None, client.submit(read_files, shared, task, pure=False)))

    split = threads > 1  # (one worker thread: ranges only cost)
    for sf in files:
        how = ranges.plan(job, sf, block) if split else None
        fut = None if how is None else _dask(client, ranges.submit, client, shared, sf, *how, block)
        if fut is None:  # (ranges planned but not to be: read whole, as the file is now)
            send(tasks.add(sf if how is None else ranges.now(sf)))
            continue
        send(tasks.take())
        futures.append((sf, how, fut))
    send(tasks.take())
    return futures


def _dask(client: Any, f: Callable[..., Any], *args: Any) -> Any:
    try:
        return f(*args)
    except Exception as e:  # a worker lost, a task that could not run: the reads before are in
        raise ConfigError(f"{client.logferry_where}: the Dask work failed: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def _discard(job: ReadJob, parts: list[Pending | FileResult]) -> None:
    """The data files of a ranged file's reads that are not committed (never in a table)."""
    from pyiceberg.io import load_file_io

    io = load_file_io(job.io_props, job.warehouse)
    for p in parts:
        for path in (f for fs in getattr(p, "data", {}).values() for f in fs):
            try:
                io.delete(path)
            except OSError:
                pass


@contextmanager
def dask_client(workers: int | None, cluster: str | None) -> Iterator[Any]:
    """A Dask client on the scheduler ``cluster`` or a LocalCluster of ``workers`` processes
    (neither: None, this process), connected before the lake is opened or created: a
    scheduler that cannot be reached is an error with nothing written."""
    if not workers and not cluster:
        yield None
        return
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

