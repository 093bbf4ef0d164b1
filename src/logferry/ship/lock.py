"""One run of a job at a time: an exclusive ``flock`` on ``<state>/<job>.lock``.

The lock is held for the whole run (from before the checkpoints are read until the run
is recorded as ended).  The kernel releases a ``flock`` when its holder dies, so the lock
of a killed run is free at once and the next run takes it over; the state the killed run
left (its intent, its checkpoints) is then recovered as after any crash.  ``flock``
locks belong to an open file, so two threads of one process (the console's Run now
next to its scheduler) exclude each other as two processes do.

While it holds the lock, a run keeps ``{"pid", "host", "since"}`` as JSON in the lock
file, so :func:`running` (and the error of a second run) can say who holds it.  The
content is only a report: whether a run is in flight is always decided by the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from ..errors import LogferryError

#: exit status of a command whose job is already running (EX_TEMPFAIL: try again later)
EXIT_BUSY = 75

#: how often a waiting run tries the lock again
POLL_SECS = 0.1


class JobRunning(LogferryError):
    """The job's lock is held by another run."""

    def __init__(self, job: str, pid: int | None = None, host: str | None = None,
                 since: float | None = None):
        self.job, self.pid, self.host, self.since = job, pid, host, since
        who = f"pid {pid if pid is not None else '?'}"
        if host and host != socket.gethostname():
            who += f" on {host}"
        when = _iso(since) if since else "?"
        super().__init__(f"job {job} is already running ({who} since {when})")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lock_path(state_dir: str | os.PathLike, job: str) -> str:
    from .naming import check_job_name

    return os.path.join(os.fspath(state_dir), f"{check_job_name(job)}.lock")


def _try_lock(fd: int, mode: int = fcntl.LOCK_EX) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def _read_info(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            info = json.loads(f.read() or b"null")
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    return {"pid": info["pid"], "host": str(info.get("host") or ""),
            "since": float(info.get("since") or 0.0)}


@contextlib.contextmanager
def job_lock(state_dir: str | os.PathLike, job: str, wait: float = 0.0) -> Iterator[dict]:
    """Hold the job's lock for the ``with`` block; wait up to ``wait`` seconds for a run
    in flight to end, then raise :class:`JobRunning`.  Yields the holder info written."""
    path = lock_path(state_dir, job)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, float(wait))
        # a moment of grace even without --wait: running() probes the lock with a shared
        # lock for an instant, and a run starting then must not be refused for it
        grace = time.monotonic() + 1.0
        while not _try_lock(fd):
            now = time.monotonic()
            if now >= deadline and (now >= grace or _read_info(path) is not None):
                info = _read_info(path) or {}
                raise JobRunning(job, info.get("pid"), info.get("host"), info.get("since"))
            time.sleep(POLL_SECS)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def running(state_dir: str | os.PathLike, job: str) -> dict | None:
    """``{"pid", "host", "since"}`` of the run of ``job`` in flight, or None."""
    path = lock_path(state_dir, job)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if _try_lock(fd, fcntl.LOCK_SH):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None  # nobody holds it (what the file says is left from a killed run)
        for _ in range(20):  # the holder writes its info just after taking the lock
            info = _read_info(path)
            if info is not None:
                return info
            time.sleep(0.01)
        return {"pid": None, "host": "", "since": None}
    finally:
        os.close(fd)


__all__ = ["EXIT_BUSY", "JobRunning", "job_lock", "lock_path", "running"]
