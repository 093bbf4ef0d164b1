"""Values a person types -- a flag, a query parameter, a form field, a string in
``logferry.toml`` -- each read one way everywhere, strictly and within bounds.

* Whole numbers are ASCII digits with an optional sign: ``int()`` alone would take
  ``'٣'`` (an Arabic-Indic three), ``' 7'`` and ``'1_000'``, and ``'③'.isdigit()`` is
  true although ``int('③')`` fails.  They fit a 64-bit integer (SQLite's and DuckDB's).
* Decimal numbers are finite: ``float()`` takes ``nan``, ``inf`` and ``1e400``, which
  compare false with every bound (or overflow a sleep or a timestamp) further on.
* Times are ISO 8601 (``2024-03-01T10:30:00Z``, an offset, a date alone; UTC when no
  offset is given) or epoch seconds: :func:`parse_time`.
* Durations are a number and a unit (``30s``, ``5m``, ``2h``, ``1d``, ``2w``):
  :func:`parse_duration` (a ValueError, for pydantic's validators and the callers' own
  messages).

Every failure is a :class:`~logferry.errors.ConfigError` that names the value.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

import click

from .errors import ConfigError

#: the largest integer SQLite and DuckDB store
INT64_MAX = 2**63 - 1

_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: what an ISO 8601 date/time is written with (the separator a ``T`` or a space)
_ISO = re.compile(r"[0-9][0-9:+\-.,TWZ ]*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def _bounds(lo: float, hi: float, lo_open: bool = False) -> str:
    return f"{'above' if lo_open else 'from'} {lo:g} {'and at most' if lo_open else 'to'} {hi:,g}"


def whole(value: Any, name: str, lo: int = 0, hi: int = INT64_MAX) -> int:
    """``value`` (an int or its text) as an int in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{name}: a whole number, not {value!r}")
    n = value
    if isinstance(value, str):
        if not _WHOLE.fullmatch(value):
            raise ConfigError(f"{name}: a whole number (digits 0-9), not {value!r}")
        n = int(value)
    if not lo <= n <= hi:
        raise ConfigError(f"{name}: a whole number from {lo:,} to {hi:,}, not {value}")
    return n


def number(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    """``value`` (a number or its text) as a finite float in ``[lo, hi]`` (``(lo, hi]``
    with ``lo_open``)."""
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ConfigError(f"{name}: a number (e.g. 2 or 0.5), not {value!r}")
        v = float(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: a number, not {value!r}")
    else:
        v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"{name}: a finite number, not {value}")
    if not ((lo < v if lo_open else lo <= v) and v <= hi):
        raise ConfigError(f"{name}: a number {_bounds(lo, hi, lo_open)}, not {value}")
    return v


def parse_time(value: Any, name: str = "time") -> datetime:
    """A point in time, timezone-aware: a datetime (naive ones are UTC), a date (its
    midnight, UTC), or text: ISO 8601 with ``Z``, an offset or none (UTC), a date alone,
    or epoch seconds.  The one parser of every ``since``/``until`` and ``--since``."""
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, date):
        t = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        t = _parse_text(value.strip(), name)
    else:
        raise ConfigError(f"{name}: a date/time (ISO 8601, e.g. 2024-03-01T10:30:00Z), not {value!r}".lstrip(": "))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _parse_text(s: str, name: str) -> datetime:
    bad = ConfigError(f"{name}: {s!r} is not a date/time (ISO 8601, e.g. 2024-03-01T10:30:00Z or 2024-03-01)"
                      .lstrip(": "))
    if _DECIMAL.fullmatch(s):
        try:
            return datetime.fromtimestamp(number(s, name, -62135596800, 253402300799), UTC)
        except (ConfigError, ValueError, OverflowError, OSError):
            raise bad from None
    u = s.upper()
    if not _ISO.fullmatch(u):
        raise bad
    try:
        return datetime.fromisoformat(u)
    except ValueError:
        raise bad from None


def parse_duration(v: Any) -> float:
    """``"5m"`` -> 300.0 seconds; a number is seconds.  Negative or malformed: ValueError."""
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a duration (like 30s, 5m, 2h, 1d)")
    if isinstance(v, int | float):
        if v < 0:
            raise ValueError(f"{v!r} is not a duration: it must not be negative")
        return float(v)
    m = _DURATION.fullmatch(str(v).strip()) if isinstance(v, str) else None
    if m is None:
        raise ValueError(f"{v!r} is not a duration (like 30s, 5m, 2h, 1d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def check_order(since: datetime | None, until: datetime | None, names: str = "--until must be after --since"
                ) -> None:
    """A range whose end is not after its start selects nothing: an error, not an empty answer."""
    if since is not None and until is not None and until <= since:
        raise ConfigError(f"{names} ({until.isoformat()} is not after {since.isoformat()})")


class WholeParam(click.ParamType):
    """A click type: :func:`whole` within ``[lo, hi]``."""

    name = "integer"

    def __init__(self, lo: int = -INT64_MAX - 1, hi: int = INT64_MAX):
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return whole(value, _flag(param), self.lo, self.hi)
        except ConfigError as e:
            raise click.UsageError(str(e), ctx) from None


class NumberParam(click.ParamType):
    """A click type: :func:`number` within ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    name = "number"

    def __init__(self, lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False):
        self.lo, self.hi, self.lo_open = lo, hi, lo_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return number(value, _flag(param), self.lo, self.hi, lo_open=self.lo_open)
        except ConfigError as e:
            raise click.UsageError(str(e), ctx) from None


def _flag(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    opts = getattr(param, "opts", None)
    return max(opts, key=len) if opts and opts[0].startswith("-") else (param.human_readable_name or "value")
