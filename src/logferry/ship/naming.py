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


#: strftime fields a template may use (``%%`` is a literal ``%``)
STRFTIME = "YmdHMSjyaAbBepfzZGVuwUW"
_DIRECTIVE = re.compile(r"%(.?)", re.S)

#: format specs that keep a field one-to-one: ``{seq}`` may be padded, signed or written in
#: another base but never cut; ``{uuid}`` may be padded but never shortened (a precision
#: would make different objects share a name)
_SEQ_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?#?0?\d*[,_]?[dxXob]?")
_STR_SPEC = re.compile(r"(?:.?[<>=^])?\d*s?")
_UNIQUE = ("seq", "uuid", "uuid8")


#: the widest a field may be padded, and the longest precision (a name is at most 1024
#: bytes: a width beyond that can only make a huge string before the length check)
MAX_WIDTH = 256
#: a number in a format spec: its width or precision (a fill digit stands alone)
_NUMBER = re.compile(r"\d+")


def _parts(template: str):
    """The template's (literal, field, spec, conversion) parts; every field's width and
    precision bounded (MAX_WIDTH) before anything is formatted."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"name template {template!r}: {e}") from None
    for _lit, fld, spec, _conv in parts:
        if fld is not None and any(len(d) > 4 or int(d) > MAX_WIDTH for d in _NUMBER.findall(spec or "")):
            raise ConfigError(f"name template {template!r}: the width or precision of {{{fld}}} is "
                              f"above {MAX_WIDTH} (an object name is at most 1024 bytes)")
    return parts


def validate(template: str, *, job: str = "j", service: str = "", site: str = "",
             ext: str = ".jsonl.gz") -> str:
    """Check a template; raise ConfigError naming the problem.  Returns it unchanged.

    Besides the syntax, it checks that names stay apart: the template has ``{seq}`` or
    ``{uuid}`` with a spec that cannot cut it, and two objects at different positions
    render different names; and that the rendered names (with the job's own ``job``,
    ``service`` and ``site``) are relative object names (:func:`check_name`)."""
    if not template or template.strip() != template:
        raise ConfigError("name template is empty or has leading/trailing spaces")
    names = set()
    for literal, fld, spec, conv in _parts(template):
        bad = [d for d in _DIRECTIVE.findall(literal) if d != "%" and d not in set(STRFTIME)]
        if bad:
            raise ConfigError(f"name template {template!r}: unsupported strftime field(s) "
                              f"{['%' + d for d in bad]}")
        if fld is None:
            continue
        if fld not in (*FIELDS, "uuid8"):
            raise ConfigError(
                f"name template {template!r}: unknown field {{{fld}}}; "
                f"allowed: {', '.join('{' + f + '}' for f in FIELDS)}"
            )
        if conv:
            raise ConfigError(f"name template {template!r}: conversions (!r, !s) are not allowed")
        if spec and "{" in spec:
            raise ConfigError(f"name template {template!r}: nested fields in {{{fld}:{spec}}}")
        if fld == "seq" and not _SEQ_SPEC.fullmatch(spec or ""):
            raise ConfigError(f"name template {template!r}: {{seq:{spec}}} is not an integer "
                              f"format that keeps every number apart (e.g. {{seq:06d}})")
        if fld in ("uuid", "uuid8") and not _STR_SPEC.fullmatch(spec or ""):
            raise ConfigError(f"name template {template!r}: {{{fld}:{spec}}} would shorten "
                              f"it, so different objects could get the same name")
        names.add(fld)
    if not names & set(_UNIQUE):
        raise ConfigError(
            f"name template {template!r} must contain {{seq}} or {{uuid}} so that two objects "
            f"never get the same name"
        )
    ts = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        a, b, c = (render(template, ts, seq=q, job=job, position=f"1:{q}:{q}", service=service,
                          site=site, host="host", ext=ext) for q in (1, 2, 123456))
    except (KeyError, ValueError, IndexError, ConfigError) as e:
        raise ConfigError(f"name template {template!r}: {e}") from None
    if len({a, b, c}) < 3:
        raise ConfigError(f"name template {template!r}: different objects get the same name "
                          f"({a!r})")
    for n in (a, b, c):
        why = _unsafe(n)
        if why:
            raise ConfigError(f"name template {template!r} renders {n!r}: {why}")
    return template


def _unsafe(name: str) -> str | None:
    from ..destinations import unsafe_name

    return unsafe_name(name)


def check_name(name: str) -> str:
    """A rendered object name must be relative and stay under the destination: no
    absolute path, no ``.``/``..``/empty segment, no backslash, no control character."""
    why = _unsafe(name)
    if why:
        raise ConfigError(f"object name {name!r}: {why}")
    return name


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
    values = {
        "job": job, "service": service or job, "site": site or "-", "seq": seq,
        "host": host or "-", "uuid": str(u), "uuid8": u.hex[:13].upper(), "ext": ext,
    }
    ts = ts.astimezone(UTC)

    def strftime(m: re.Match) -> str:
        d = m.group(1)
        return "%" if d == "%" else ts.strftime("%" + d) if d else "%"

    # strftime applies to the literal text only, one directive at a time (so ``%%`` is a
    # literal ``%`` and nothing a field renders is read as a directive)
    out = []
    for literal, fld, spec, _conv in _parts(template):
        out.append(_DIRECTIVE.sub(strftime, literal))
        if fld is not None:
            out.append(format(values[fld], spec or ""))
    name = "".join(out)
    if len(name.encode("utf-8")) > 1024:
        raise ValueError(f"object name is longer than 1024 bytes: {name[:80]}...")
    return name
