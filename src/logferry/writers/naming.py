"""File names of every written format, in one place (writers, convert and shipping
presets use these).  All times are UTC ``datetime``s (naive ones are taken as UTC).

=============  =====================================================  ==========================
format         pattern                                                example
=============  =====================================================  ==========================
shop           ``shopYYYYMMDD.log`` (start of the rotation period)    ``shop19990907.log``
cloudfront     ``[prefix/]<distribution-id>.YYYY-MM-DD-HH.<uid>.gz``  ``E1.2019-11-14-20.RT4K.gz``
cdn            ``<YYYYMMDD-HHmmSS>.<service-name>.<uid>.log.gz``      ``20230413-181700.svc.03495.log.gz``
csv-usage      ``dbYYYYMMDD_NNN.csv`` / ``eYYYYMMDD_NNN.csv``         ``db20240115_001.csv``
w3c (IIS)      ``u_exYYMMDD.log`` (daily) / ``u_exYYMM.log`` (monthly)  ``u_ex240115.log``
=============  =====================================================  ==========================
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import UTC, date, datetime, timedelta

from ..errors import ConfigError

PERIODS = ("hourly", "daily", "weekly", "monthly")


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def period_start(dt: datetime, period: str) -> datetime:
    """Start of the rotation period holding ``dt``: hourly, daily, weekly (Monday) or
    monthly."""
    dt = _utc(dt)
    if period == "hourly":
        return dt.replace(minute=0, second=0, microsecond=0)
    day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    raise ConfigError(f"unknown rotation period {period!r}; choose one of: {', '.join(PERIODS)}")


def unique_id(n: int = 13) -> str:
    """A random upper-case alphanumeric id (CloudFront style)."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def shop_name(dt: datetime | date, period: str | None = None) -> str:
    """``shopYYYYMMDD.log``; with ``period`` the date is the period's first day."""
    if period is not None:
        dt = period_start(dt if isinstance(dt, datetime) else datetime(dt.year, dt.month, dt.day), period)
    return f"shop{dt:%Y%m%d}.log"


_DIST = re.compile(r"^[A-Za-z0-9]+$")


def cloudfront_name(distribution_id: str, dt: datetime, uid: str | None = None, prefix: str = "") -> str:
    """Legacy standard logging: ``<prefix/><distribution-id>.YYYY-MM-DD-HH.<unique-id>.gz``
    (hour of the requests, UTC; a prefix gets a ``/`` appended when it lacks one)."""
    if not _DIST.match(distribution_id or ""):
        raise ConfigError(f"CloudFront distribution id {distribution_id!r} must be letters and digits")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}{distribution_id}.{_utc(dt):%Y-%m-%d-%H}.{uid or unique_id()}.gz"


def cdn_name(dt: datetime, service: str, uid: str | int | None = None) -> str:
    """CDN transaction logs: ``<YYYYMMDD-HHmmSS>.<service-name>.<unique-id>.log.gz``."""
    if not service or "/" in service or "." in service:
        raise ConfigError(f"CDN service name {service!r} must be non-empty without '.' or '/'")
    if uid is None:
        uid = secrets.randbelow(100000)
    if isinstance(uid, int):
        uid = f"{uid:05d}"
    return f"{_utc(dt):%Y%m%d-%H%M%S}.{service}.{uid}.log.gz"


def csv_usage_name(dt: datetime | date, serial: int, kind: str = "db") -> str:
    """``dbYYYYMMDD_NNN.csv`` (usage log) or ``eYYYYMMDD_NNN.csv`` (extended log);
    ``serial`` is 1..999 within a day."""
    if kind not in ("db", "e"):
        raise ConfigError(f"CSV usage log kind must be 'db' or 'e', not {kind!r}")
    if not 1 <= serial <= 999:
        raise ConfigError(f"CSV usage log serial {serial} is outside 001-999 for one day")
    if dt.year < 1980:
        raise ConfigError("CSV usage log dates start in 1980")
    return f"{kind}{dt:%Y%m%d}_{serial:03d}.csv"


def next_csv_usage_serial(existing: list[str], dt: datetime | date, kind: str = "db") -> int:
    """The next free serial for ``dt`` given the names already present."""
    pat = re.compile(rf"^{kind}{dt:%Y%m%d}_(\d{{3}})\.csv$")
    used = [int(m.group(1)) for n in existing if (m := pat.match(n.rsplit('/', 1)[-1]))]
    return max(used, default=0) + 1


def iis_name(dt: datetime, period: str = "daily") -> str:
    """IIS W3C log names: ``u_exYYMMDD.log`` daily, ``u_exYYMMDDHH.log`` hourly,
    ``u_exYYMM.log`` monthly."""
    dt = _utc(dt)
    if period == "hourly":
        return f"u_ex{dt:%y%m%d%H}.log"
    if period == "monthly":
        return f"u_ex{dt:%y%m}.log"
    if period == "weekly":
        return f"u_ex{period_start(dt, 'weekly'):%y%m%d}.log"
    return f"u_ex{dt:%y%m%d}.log"


#: --to name -> default name function (used by convert --output-dir)
def default_name(fmt: str, dt: datetime, *, serial: int = 1, service: str = "logferry",
                 distribution_id: str = "LOGFERRY", uid: str | None = None) -> str:
    if fmt == "shop":
        return shop_name(dt)
    if fmt == "cloudfront":
        return cloudfront_name(distribution_id, dt, uid)
    if fmt in ("cdn-tsv", "cdn-json"):
        return cdn_name(dt, service, uid)
    if fmt == "csv-usage":
        return csv_usage_name(dt, serial)
    if fmt == "w3c":
        return iis_name(dt)
    if fmt == "jsonl":
        return f"logferry-{_utc(dt):%Y%m%d-%H%M%S}.jsonl"
    if fmt == "parquet":
        return f"logferry-{_utc(dt):%Y%m%d-%H%M%S}.parquet"
    raise ConfigError(f"no file naming for format {fmt!r}")
