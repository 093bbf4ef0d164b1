"""Retention: which source files may be deleted, which destination objects pruned.

The plans are pure (tested with a frozen clock); :func:`apply_sources` /
:func:`apply_dest` carry them out.

* Source files: older than ``days`` counted back from the *newest* file of the job (so
  a job that stopped receiving logs does not lose its last ones), fully delivered
  (checkpoint at the end of the file, file unchanged since), and none at all while the
  job's last run failed.
* Destination objects: only objects the job's history says it delivered (and has not
  pruned yet), last modified more than ``days`` before now.  Anything else under the
  destination (files logferry never wrote, other jobs' objects) is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True)
class SourceEntry:
    file_id: int
    path: str
    mtime: float
    size: int
    delivered_size: int  # the size the file had when its checkpoint reached its end
    fully_delivered: bool


def plan_sources(files: Iterable[SourceEntry], days: float, last_run_failed: bool) -> list[SourceEntry]:
    files = list(files)
    if last_run_failed or not files or days is None:
        return []
    newest = max(f.mtime for f in files)
    cutoff = newest - days * DAY
    return [f for f in files if f.mtime < cutoff and f.fully_delivered and f.size == f.delivered_size]


def plan_dest(objects: Iterable, now: float, days: float, delivered: set[str] | frozenset[str]) -> list:
    """Objects (with ``.name``, ``.mtime``) whose name is in ``delivered`` (the job's
    history) and that were last modified more than ``days`` before ``now``."""
    cutoff = now - days * DAY
    return [o for o in objects if o.name in delivered and o.mtime and o.mtime < cutoff]


def apply_sources(plan: Iterable[SourceEntry], on_deleted=None) -> list[str]:
    done = []
    for f in plan:
        try:
            os.remove(f.path)
        except FileNotFoundError:
            pass
        done.append(f.path)
        if on_deleted:
            on_deleted(f)
    return done


def apply_dest(dest, plan: Iterable) -> list[str]:
    done = []
    for o in plan:
        dest.delete(o.name)
        done.append(o.name)
    return done
