"""The job editor's helpers: a form (the job's TOML table, with the destination given
as the editor's fields) -> the job table; previews of the next object names and the next
schedule times; Test connection; the S3 buckets the credentials can see."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError
from . import configfile, desttypes


def job_from_form(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"job": {...}, "destination": {...}}`` -> the job table; raises configfile.Invalid."""
    job = payload.get("job")
    if not isinstance(job, dict):
        raise configfile.Invalid({"job": "a JSON object with the job's settings"})
    job = dict(job)
    dest = payload.get("destination")
    if isinstance(dest, dict):
        url, opts, errs = desttypes.compose(dest)
        if errs:
            raise configfile.Invalid(errs)
        extra = dest.get("extra_options") if isinstance(dest.get("extra_options"), dict) else {}
        job["dest"] = url
        merged = {**extra, **opts}
        if merged:
            job["dest_options"] = merged
        else:
            job.pop("dest_options", None)
    return configfile.clean(job)


def extension(to: str, compress: str) -> str:
    from ..ship.rotate import Codec
    from ..writers import writer_factory

    f = writer_factory(to)
    binary = bool(getattr(f, "binary", False))
    codec = Codec("none" if binary else compress)
    return (getattr(f, "extension", "") or "") + codec.ext


def preview_names(job: str, template: str | None, preset: str | None, to: str, compress: str,
                  service: str = "", site: str = "", seq: int = 0, n: int = 3,
                  at: datetime | None = None) -> list[str]:
    """The next ``n`` object names, rendered as the shipper renders them (``naming.render``)
    for objects whose first record has time ``at`` (None: now, as a run names an object
    whose first record has no time)."""
    import socket

    from ..ship import naming

    tmpl = naming.validate(naming.resolve(template or None, preset or None))
    ext = extension(to or "jsonl", compress or "gzip")
    ts = at or datetime.now(UTC)
    return [naming.render(tmpl, ts, seq=seq + i, job=job or "job", position=f"preview:{seq + i}",
                          service=service, site=site, host=socket.gethostname(), ext=ext)
            for i in range(n)]


def next_record_time(loaded, state, job: str) -> datetime | None:
    """The time of the first record a saved job's next run will deliver (what its next
    object is named after); None when none is pending or its sources cannot be read now."""
    from ..ship.engine import next_record_time as first_pending

    try:
        return first_pending(loaded.engine_job(job), state)
    except Exception:  # noqa: BLE001 - a source that cannot be read now: the preview uses now
        return None


def preview_schedule(every_minutes: float | None, cron: str | None, n: int = 3) -> list[str]:
    from ..ship.schedule import Cron, Schedule

    if cron:
        c = Cron.parse(cron)
        out, t = [], datetime.now(UTC)
        for _ in range(n):
            t = c.next_after(t)
            out.append(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return out
    if every_minutes is not None:
        secs = Schedule.make(every_minutes=every_minutes).every_secs  # the config's bounds (ConfigError)
        now = time.time()
        return [datetime.fromtimestamp(now + i * secs, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
    return []


def _redact(msg: str, secrets: dict[str, Any]) -> str:
    for v in secrets.values():
        if isinstance(v, str) and len(v) >= 4:
            msg = msg.replace(v, "***")
    return msg


#: what a token other than an admin's hears when a secret cannot be resolved (which
#: environment variables or secrets exist is not its business)
UNAVAILABLE = "a secret this destination names is not available to the server"


def _resolved(loaded, url: str, opts: dict[str, Any], reveal: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    from ..config import resolve_secrets

    try:
        res = resolve_secrets(opts, loaded.secrets, where="destination")
    except ConfigError:
        if reveal:
            raise
        raise ConfigError(UNAVAILABLE) from None
    secret_vals = {k: v for k, v in res.items() if k not in opts}
    return res, secret_vals


def _folder(url: str) -> str | None:
    """Why a folder cannot be tested (None when it can): Test connection creates nothing
    and reads no path relative to where the console runs."""
    path = url.removeprefix("file://")
    if not os.path.isabs(path):
        return f"{path!r} is not an absolute path"
    if not os.path.isdir(path):
        return f"{path} is not an existing directory (Test connection creates none; the job's first run does)"
    return None


def test_connection(loaded, url: str, opts: dict[str, Any], reveal: bool = True) -> dict[str, Any]:
    """Open the destination, write a probe object and remove it (a destination that keeps
    nothing it could remove, Datadog's intake, checks itself: its ``check()``); the exact
    error if any step fails (secret values never in it; which secrets exist only when
    ``reveal``)."""
    from ..destinations import open_destination, scheme_of

    probe = f".logferry-probe-{uuid.uuid4().hex[:12]}"
    secrets: dict[str, Any] = {}
    step = "configure"
    why = _folder(url) if scheme_of(url) == "file" else None
    if why:
        return {"ok": False, "dest": url, "step": "find the folder", "error": why}
    try:
        resolved, secrets = _resolved(loaded, url, opts, reveal)
        step = "connect"
        d = open_destination(url, resolved)
        try:
            check = getattr(d, "check", None)
            if check is not None:
                step = "check the destination"
                return {"ok": True, "dest": url, "message": _redact(check(), secrets)}
            step = "write a probe object"
            d.put(probe, b"logferry connection test\n")
            step = "remove the probe object"
            d.delete(probe)
        finally:
            try:
                d.close()
            except Exception:  # noqa: BLE001
                pass
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        return {"ok": False, "dest": url, "step": step,
                "error": _redact(f"{type(e).__name__}: {e}", secrets)[:2000]}
    return {"ok": True, "dest": url, "probe": probe, "message": f"wrote and removed {probe} at {url}"}


def s3_buckets(loaded, opts: dict[str, Any], reveal: bool = True) -> list[str]:
    """The buckets the credentials can see (ListBuckets)."""
    from ..destinations import open_destination

    resolved, secrets = _resolved(loaded, "s3://", opts, reveal)
    try:
        d = open_destination("s3://placeholder", resolved)  # (ls("") lists the buckets, not this one)
        try:
            return sorted(p.rstrip("/").split("/")[-1] for p in d.fs.ls("", refresh=True))
        finally:
            d.close()
    except Exception as e:  # noqa: BLE001
        raise ConfigError(_redact(f"cannot list buckets: {type(e).__name__}: {e}", secrets)[:2000]) from None


def field_names(to: str) -> list[str]:
    """The fields a job can pick, in the output's order: the canonical columns."""
    from ..schema import CANONICAL_NAMES

    return list(CANONICAL_NAMES)
