"""Re-export: a one-off run of a job for a past time range (``logferry export rerun JOB
--since T --until T``, the console's Re-export, ``POST /api/jobs/NAME/rerun``).

It reads the job's current source files from their start, keeps the records whose time is
in ``[since, until)`` (and that pass the job's own filters), and delivers them as new
objects: the name template gets ``-rerun-<run id>`` before ``{ext}``, so no original is
overwritten and two re-exports never share a name.  The job's checkpoints, sequence
number and pending intent are left alone; the run is recorded in the history with
``kind = 'rerun'`` and the range as its note.  Within the re-export every record of the
range is delivered once (the engine's rotation and naming, without checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .. import values
from ..errors import ConfigError


@dataclass(frozen=True)
class Rerun:
    """A range ``[since, until)`` (UTC); an ``until`` not after ``since`` is a ConfigError."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        values.check_order(self.since, self.until, "until must be later than since")

    @classmethod
    def parse(cls, since: str, until: str) -> Rerun:
        return cls(parse_time(since, "since"), parse_time(until, "until"))

    @property
    def note(self) -> str:
        return f"{_iso(self.since)} .. {_iso(self.until)}"

    def job(self, job, run_id: int):
        """The job as this re-export runs it: the range on top of its own filter, and
        names of their own."""
        f = job.filter
        since = max(self.since, _utc(f.since)) if f.since else self.since
        until = min(self.until, _utc(f.until)) if f.until else self.until
        return replace(job, filter=replace(f, since=since, until=until),
                       name_template=rerun_template(job.name_template, run_id))


def rerun_template(template: str, run_id: int) -> str:
    """``...{seq:06d}{ext}`` -> ``...{seq:06d}-rerun-<id>{ext}`` (appended without ``{ext}``)."""
    tag = f"-rerun-{int(run_id)}"
    i = template.rfind("{ext}")
    return template + tag if i < 0 else template[:i] + tag + template[i:]


def parse_time(text: str, what: str) -> datetime:
    """ISO 8601 (``2024-03-01``, ``2024-03-01T10:30:00Z``, with an offset); UTC without one."""
    try:  # values.parse_time: the one parser of every since/until
        return _utc(values.parse_time(text, f"--{what}"))
    except ConfigError:
        raise ConfigError(f"--{what} {text!r}: not an ISO 8601 time (e.g. 2024-03-01T10:30:00Z)") from None


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
