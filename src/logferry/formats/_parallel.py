"""Ordered parallel map for chunk parsing.

Most of a chunk's parsing runs in numpy/Arrow code that releases the GIL, so a few
threads use the machine's cores.  Results come back in submission order and at most
``inflight`` jobs are pending, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


#: the most parser threads LOGFERRY_THREADS may ask for
MAX_THREADS = 64


def default_threads() -> int:
    env = os.environ.get("LOGFERRY_THREADS")
    if env and env.isascii() and env.isdigit():  # ('③'.isdigit() is true, int('③') fails)
        return max(1, min(MAX_THREADS, int(env)))
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, n)


def ordered_map(jobs: Iterable[Callable[[], T]], threads: int | None = None) -> Iterator[T]:
    """Run the thunks in ``jobs`` on ``threads`` threads; yield results in order."""
    threads = default_threads() if threads is None else threads
    if threads <= 1:
        for job in jobs:
            yield job()
        return
    inflight = threads + 1
    pending: deque[Future[T]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="logferry-parse") as ex:
        try:
            for job in jobs:
                pending.append(ex.submit(job))
                if len(pending) >= inflight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
