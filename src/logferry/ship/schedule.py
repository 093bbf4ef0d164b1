"""Schedules: every N minutes or a 5-field cron expression (UTC).  Pure functions.

Cron fields: minute hour day-of-month month day-of-week, each ``*``, a number, a range
``a-b``, a list ``a,b``, a step ``*/n`` or ``a-b/n``; day-of-week 0-7 (0 and 7 are Sunday).
As in cron, when both day fields are restricted a day matching either one fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import ConfigError
from ..values import number

#: the shortest interval of ``every_minutes``: 3 seconds (a shorter one is a busy loop,
#: not a schedule)
MIN_EVERY_MINUTES = 0.05
#: the longest: a year
MAX_EVERY_MINUTES = 366 * 24 * 60

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
#: the longest each month can be (29 February fires in leap years)
_MAX_DAY = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _int(s: str) -> int:
    """A cron number: ASCII digits (``int()`` would take ``'٣'``)."""
    if not (s.isascii() and s.isdigit()):
        raise ValueError(f"{s!r} is not a number")
    return int(s)


def _field(text: str, idx: int) -> frozenset[int]:
    lo, hi = _RANGES[idx]
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, s = part.split("/", 1)
            step = _int(s)
            if step == 0:
                raise ValueError(f"bad step {s!r}")
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            x, y = part.split("-", 1)
            a, b = _int(x), _int(y)
        else:
            a = _int(part)
            b = hi if step > 1 else a
        if not (lo <= a <= hi and lo <= b <= hi and a <= b):
            raise ValueError(f"{part!r} outside {lo}-{hi}")
        out.update(range(a, b + 1, step))
    if idx == 4 and 7 in out:
        out.discard(7)
        out.add(0)
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_star: bool
    dow_star: bool

    @classmethod
    def parse(cls, expr: str) -> Cron:
        parts = expr.split()
        if len(parts) != 5:
            raise ConfigError(f"cron {expr!r}: needs 5 fields (minute hour day month weekday)")
        sets = []
        for i, p in enumerate(parts):
            try:
                sets.append(_field(p, i))
            except ValueError as e:
                raise ConfigError(f"cron {expr!r}: {_NAMES[i]} field: {e}") from None
        cron = cls(expr, *sets, parts[2] == "*", parts[4] == "*")
        if cron.dow_star and not cron.dom_star and not any(
                d <= _MAX_DAY[m] for m in cron.months for d in cron.days):
            # e.g. 30 February: checked here, so loading a config refuses what the
            # scheduler would refuse (the same parse serves both)
            raise ConfigError(f"cron {expr!r} never fires: no month of it has those days")
        return cron

    def _day_ok(self, d: datetime) -> bool:
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: datetime) -> datetime:
        """The first firing time strictly after ``t`` (UTC)."""
        t = t.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(366 * 5):
            if t.month in self.months and self._day_ok(t):
                for h in sorted(x for x in self.hours if x >= t.hour):
                    start_m = t.minute if h == t.hour else 0
                    for m in sorted(self.minutes):
                        if m >= start_m:
                            return t.replace(hour=h, minute=m)
            t = (t + timedelta(days=1)).replace(hour=0, minute=0)
        raise ConfigError(f"cron {self.expr!r} never fires")


@dataclass(frozen=True)
class Schedule:
    every_secs: float | None = None
    cron: Cron | None = None

    @classmethod
    def make(cls, every_minutes: float | None = None, cron: str | None = None) -> Schedule:
        if every_minutes is not None and cron:
            raise ConfigError("give either every_minutes or cron, not both")
        if cron:
            return cls(cron=Cron.parse(cron))
        if every_minutes is not None:
            return cls(every_secs=60 * number(every_minutes, "every_minutes", MIN_EVERY_MINUTES, MAX_EVERY_MINUTES))
        return cls()

    def next_run(self, last_start: float | None, now: float) -> float | None:
        """When the job should run next (epoch seconds); None = not scheduled."""
        if self.every_secs is not None:
            return now if last_start is None else last_start + self.every_secs
        if self.cron is not None:
            base = datetime.fromtimestamp(last_start if last_start is not None else now - 60, UTC)
            return self.cron.next_after(base).timestamp()
        return None


def due_jobs(schedules: dict[str, Schedule], last_starts: dict[str, float | None], now: float,
             stopped: frozenset[str] = frozenset()) -> list[str]:
    """Names of the jobs due at ``now`` (in name order); stopped jobs are never due."""
    out = []
    for name in sorted(schedules):
        if name in stopped:
            continue
        nxt = schedules[name].next_run(last_starts.get(name), now)
        if nxt is not None and nxt <= now:
            out.append(name)
    return out


def seconds_until_next(schedules: dict[str, Schedule], last_starts: dict[str, float | None],
                       now: float, stopped: frozenset[str] = frozenset()) -> float:
    times = [s.next_run(last_starts.get(n), now) for n, s in schedules.items() if n not in stopped]
    times = [t for t in times if t is not None]
    return max(0.0, min(times) - now) if times else 60.0
