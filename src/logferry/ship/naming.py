"""Object-name templates: strftime fields plus ``{job}``, ``{service}``, ``{site}``,
``{seq}``, ``{host}``, ``{uuid}``, ``{ext}``.

Names are deterministic for the data they hold: the strftime fields come from the first
record's timestamp (the period the requests occurred in, as CDN and CloudFront name their
files), ``{seq}`` is the job's object sequence number stored with the checkpoint, and
``{uuid}`` is derived from the job and the position of the object's first record.
"""

from __future__ import annotations

import re
import string
import uuid as _uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import ConfigError

FIELDS = ("job", "service", "site", "seq", "host", "uuid", "ext")

#: preset name -> template (the seeds' conventions)
PRESETS: dict[str, str] = {
    # <file start timestamp(YYYYMMDD-HHmmSS)>.<service-name>.<unique Id>.log.gz
    "cdn": "%Y%m%d-%H%M%S.{service}.{seq:05d}.log{ext}",
    # <prefix>/<distribution-ID>.YYYY-MM-DD-HH.<unique-ID>.gz
    "cloudfront": "{service}.%Y-%m-%d-%H.{uuid8}{ext}",
    # shopYYYYMMDD.log (one per day; seq keeps several per day apart)
    "shop": "shop%Y%m%d-{seq:04d}.log{ext}",
    # dbyyyymmdd_nnn.csv
    "csv-usage": "db%Y%m%d_{seq:03d}.csv{ext}",
    "default": "{job}/%Y/%m/%d/%Y%m%dT%H%M%SZ-{seq:06d}{ext}",
}

_NS = _uuid.UUID("5b0f1f0e-8a53-4b5f-9a43-6c6f67666572")

#: a job name: it is a file name in the state directory and ``{job}`` in object names
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_job_name(name: str) -> str:
    """Job names are slugs: letters, digits, '-', '_' and '.', starting with a letter or
    digit, at most 64 characters (so never ``..``, a path or a control character)."""
    if not isinstance(name, str) or not JOB_NAME.fullmatch(name):
        raise ConfigError(
            f"job name {name!r}: use 1-64 letters, digits, '-', '_' or '.', starting with a "
            f"letter or digit"
        )
    return name


def resolve(template: str | None, preset: str | None = None) -> str:
    if template and preset:
        raise ConfigError("give either a name template or a name preset, not both")
    if preset:
        try:
            return PRESETS[preset]
        except KeyError:
            raise ConfigError(
                f"unknown name preset {preset!r}; choose one of: {', '.join(sorted(PRESETS))}"
            ) from None
    return template or PRESETS["default"]


def validate(template: str) -> str:
    """Check a template; raise ConfigError naming the problem.  Returns it unchanged."""
    if not template or template.strip() != template:
        raise ConfigError("name template is empty or has leading/trailing spaces")
    names = set()
    try:
        for _, field, _spec, conv in string.Formatter().parse(template):
            if field is None:
                continue
            if field not in (*FIELDS, "uuid8"):
                raise ConfigError(
                    f"name template {template!r}: unknown field {{{field}}}; "
                    f"allowed: {', '.join('{' + f + '}' for f in FIELDS)}"
                )
            if conv:
                raise ConfigError(f"name template {template!r}: conversions (!r, !s) are not allowed")
            names.add(field)
    except ValueError as e:
        raise ConfigError(f"name template {template!r}: {e}") from None
    if not names & {"seq", "uuid", "uuid8"}:
        raise ConfigError(
            f"name template {template!r} must contain {{seq}} or {{uuid}} so that two objects "
            f"never get the same name"
        )
    bad = re.findall(r"%[^%YmdHMSjyaAbBepfzZGVuwUW]", template.replace("%%", ""))
    if bad:
        raise ConfigError(f"name template {template!r}: unsupported strftime field(s) {bad}")
    if template.startswith("/") or "\n" in template or "\r" in template:
        raise ConfigError(f"name template {template!r}: must be relative, one line")
    try:
        render(template, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), seq=1, job="j",
               position="x")
    except (KeyError, ValueError, IndexError) as e:
        raise ConfigError(f"name template {template!r}: {e}") from None
    return template


@dataclass(frozen=True)
class NameContext:
    job: str
    service: str = ""
    site: str = ""
    host: str = ""
    ext: str = ""


def render(
    template: str,
    ts: datetime,
    *,
    seq: int,
    job: str,
    position: str,
    service: str = "",
    site: str = "",
    host: str = "",
    ext: str = "",
) -> str:
    """The object name for an object whose first record has time ``ts`` (UTC) and that
    starts at ``position`` (a stable description of where its first record came from)."""
    u = _uuid.uuid5(_NS, f"{job}\x00{position}")
    # strftime first, on a copy whose braces are protected
    protected = template.replace("%%", "\x00")
    timed = ts.astimezone(UTC).strftime(protected).replace("\x00", "%")
    name = timed.format(
        job=job,
        service=service or job,
        site=site or "-",
        seq=seq,
        host=host or "-",
        uuid=str(u),
        uuid8=u.hex[:13].upper(),
        ext=ext,
    )
    if len(name.encode("utf-8")) > 1024:
        raise ValueError(f"object name is longer than 1024 bytes: {name[:80]}...")
    return name
