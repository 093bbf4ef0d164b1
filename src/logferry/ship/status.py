"""How far behind a job is and what it last delivered: what ``logferry export list`` and
the console's Exports page show, from one function each.

The backlog is read from the job's sources and checkpoints without changing either:
the files with lines not yet delivered, their bytes after the checkpoint (from the
checkpoint's anchor, a line start at most one read chunk before it; a compressed file not
read to its end counts whole), and the time of the oldest undelivered record (the first
record the next run will deliver: ``engine.next_record_time`` over those files)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass
class Backlog:
    files: int = 0
    bytes: int = 0
    oldest: datetime | None = None  # the oldest undelivered record's time
    error: str | None = None  # the sources could not be listed

    def as_dict(self, now: float) -> dict[str, Any]:
        age = None if self.oldest is None else max(0.0, now - self.oldest.timestamp())
        return {"files": self.files, "bytes": self.bytes, "error": self.error,
                "oldest": None if self.oldest is None else self.oldest.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "age_secs": age, "text": describe(self, now)}


def backlog(job, state) -> Backlog:
    """The job's undelivered files and bytes, and its oldest undelivered record's time."""
    from .engine import _matched, next_record_time  # (as the engine matches and reads)

    try:
        matches = _matched(job, state)
    except Exception as e:  # noqa: BLE001 - a source that cannot be listed is the answer
        return Backlog(error=f"cannot list the sources: {type(e).__name__}: {e}"[:300])
    out, pending = Backlog(), []
    for m in matches:
        fs = m.known if m.how in ("same", "moved", "compressed") else None
        n = _pending_bytes(m.sf, fs)
        if n:
            out.files += 1
            out.bytes += n
            pending.append(m)
    if pending:
        try:
            out.oldest = next_record_time(job, state, pending)
        except Exception:  # noqa: BLE001 - unreadable now: the next run says why
            pass
    return out


def _pending_bytes(sf, fs) -> int:
    if fs is None:
        return sf.size
    if sf.compressed:
        return 0 if fs.eof else sf.size
    return max(0, sf.size - fs.anchor_off) if not (fs.eof and sf.size == fs.size) else 0


def describe(b: Backlog, now: float) -> str:
    """``2 files, 1.2 MB behind; oldest undelivered line 3h 5m old`` or ``up to date``."""
    if b.error:
        return b.error
    if not b.files:
        return "up to date"
    text = f"{b.files} file{'s' if b.files != 1 else ''}, {human_bytes(b.bytes)} behind"
    if b.oldest is not None:
        text += f"; oldest undelivered line {human_age(now - b.oldest.timestamp())} old"
    return text


def human_bytes(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def human_age(secs: float) -> str:
    secs = max(0, int(secs))
    d, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"



def run_kind(run, backfill: bool) -> str:
    """What a run was, as the console's history tags it: ``run``, ``backfill`` (the first
    run after a start) or ``re-export``."""
    return "re-export" if run.kind == "rerun" else "backfill" if backfill else "run"


def job_backlog(loaded, st, name: str, now: float) -> dict[str, Any]:
    """A configured job's backlog as a dict (``text`` says it in words); a job that cannot
    be set up (an unset key variable) says why instead."""
    from ..errors import LogferryError

    try:
        job = loaded.engine_job(name)
    except LogferryError as e:
        return {"files": None, "bytes": None, "oldest": None, "age_secs": None, "error": str(e),
                "text": str(e)}
    return backlog(job, st).as_dict(now)


def brief(run) -> dict[str, Any] | None:
    """A run's summary: id, times (ISO, UTC), status, kind, counts."""
    if run is None:
        return None
    return {"id": run.id, "started": _iso(run.started), "ended": _iso(run.ended), "status": run.status,
            "kind": run.kind, "objects": run.objects, "records": run.records, "bytes": run.bytes}


def _iso(t: float | None) -> str | None:
    return None if not t else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
