"""Editing ``logferry.toml`` from the console: validate with the CLI's config model
(:mod:`logferry.config`), write atomically with tomlkit (comments, key order and the
other jobs kept), refuse a save made from a stale form.

A job's *version* is the SHA-256 of its table as the file holds it (parsed, canonical
JSON); a form carries the version it was loaded with and a save whose version no longer
matches the file is a conflict.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import tomllib
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError

from ..config import Config, Loaded, _loc
from ..errors import ConfigError

_WRITE = threading.Lock()


class Conflict(Exception):
    """The job changed since the form was loaded (or a new job's name is taken)."""


class Invalid(Exception):
    """Per-field errors: ``errors`` maps a dotted key (``rotate.max_bytes``) to a message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        return ""


def load(path: Path) -> Loaded:
    """The config as the CLI loads it; a file that does not exist yet is an empty config
    (the console creates it on the first save)."""
    from ..config import load as cli_load

    if not path.exists():
        return Loaded(Config(), path)
    return cli_load(path)


def version_of(table: dict | None) -> str:
    if table is None:
        return ""
    return hashlib.sha256(json.dumps(table, sort_keys=True, default=str).encode()).hexdigest()[:16]


def raw_jobs(path: Path) -> dict[str, dict]:
    return raw_tables(path, ("jobs",))


def job_version(path: Path, name: str) -> str:
    return version_of(raw_jobs(path).get(name))


def clean(job: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values (empty strings, lists, tables, None) so the model's defaults apply."""
    out: dict[str, Any] = {}
    for k, v in job.items():
        if isinstance(v, dict):
            v = clean(v)
        if v is None or v == "" or v == [] or v == {}:
            continue
        out[k] = v
    return out


def field_errors(e: ValidationError, prefix: tuple) -> dict[str, str]:
    errs: dict[str, str] = {}
    for err in e.errors():
        loc = tuple(err["loc"])
        if loc[: len(prefix)] == prefix:
            loc = loc[len(prefix):]
        key = _loc(loc) or "job"
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        if key == "job" and "every_minutes or cron" in reason:
            key = "schedule"
        errs.setdefault(key, reason)
    return errs


def validate_job(path: Path, name: str, job: dict[str, Any]) -> dict[str, Any]:
    """The whole file with this job replaced, validated by the CLI's model; raises Invalid."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise Invalid({"name": "use letters, digits, '-', '_' or '.'"})
    text = read_text(path)
    data = tomllib.loads(text) if text else {}
    jobs = dict(data.get("jobs") or {})
    jobs[name] = job
    data["jobs"] = jobs
    try:
        Config.model_validate(data)
    except ValidationError as e:
        errs = field_errors(e, ("jobs", name))
        raise Invalid(errs) from None
    except ConfigError as e:
        raise Invalid({"job": str(e)}) from None
    return data


def save_job(path: Path, name: str, job: dict[str, Any], version: str | None, *, new: bool) -> str:
    """Validate and write one job; returns its new version.  ``new``: the name must not
    exist yet.  Otherwise ``version`` must be the version the form was loaded with."""
    return save_table(path, ("jobs",), name, job, version, new=new, what="job", validate=validate_job)


def delete_job(path: Path, name: str, version: str | None) -> None:
    delete_table(path, ("jobs",), name, version, what="job")


def raw_tables(path: Path, keys: tuple[str, ...]) -> dict[str, dict]:
    """The tables under ``keys`` (``("jobs",)``, ``("alerts", "rules")``) as the file has them."""
    text = read_text(path)
    return dict(raw_tables_of(tomllib.loads(text) if text else {}, keys))


def save_table(path: Path, keys: tuple[str, ...], name: str, table: dict[str, Any], version: str | None, *,
               new: bool, what: str, validate) -> str:
    """Validate (``validate(path, name, table)``) and write the table ``name`` under ``keys``
    (tomlkit: the file's comments and order kept, written atomically); its new version."""
    with _WRITE:
        current = raw_tables(path, keys).get(name)
        if new and current is not None:
            raise Conflict(f"a {what} named {name!r} exists already")
        if not new:
            if current is None:
                raise Conflict(f"{what} {name!r} no longer exists in {path.name}")
            if version != version_of(current):
                raise Conflict(f"{what} {name!r} was changed since this form was loaded; reload it")
        validate(path, name, table)
        text = read_text(path)
        doc = tomlkit.parse(text) if text else tomlkit.document()
        parent = doc
        for i, k in enumerate(keys):
            if k not in parent:
                parent[k] = tomlkit.table(is_super_table=i == len(keys) - 1)
            parent = parent[k]
        if name in parent:
            _update(parent[name], table)
        else:
            tbl = tomlkit.table()
            for k, v in table.items():
                tbl[k] = _item(v)
            parent[name] = tbl
        out = tomlkit.dumps(doc)
        # what was written must be what was validated
        Config.model_validate(tomllib.loads(out))
        write_atomic(path, out)
        return version_of(raw_tables_of(tomllib.loads(out), keys)[name])


def raw_tables_of(data: dict, keys: tuple[str, ...]) -> dict:
    for k in keys:
        data = data.get(k) or {}
    return data


def delete_table(path: Path, keys: tuple[str, ...], name: str, version: str | None, *, what: str) -> None:
    with _WRITE:
        current = raw_tables(path, keys).get(name)
        if current is None:
            raise Conflict(f"{what} {name!r} no longer exists")
        if version != version_of(current):
            raise Conflict(f"{what} {name!r} was changed since this page was loaded; reload it")
        doc = tomlkit.parse(read_text(path))
        parent = doc
        for k in keys:
            parent = parent[k]
        del parent[name]
        write_atomic(path, tomlkit.dumps(doc))


def _item(v: Any):
    if isinstance(v, dict):
        t = tomlkit.inline_table()
        for k, x in v.items():
            t[k] = _item(x)
        return t
    return v


def _update(tbl, new: dict[str, Any]) -> None:
    """Update a tomlkit table in place: keys kept keep their comments and position."""
    for k in [k for k in tbl if k not in new]:
        del tbl[k]
    for k, v in new.items():
        if isinstance(v, dict) and k in tbl and isinstance(tbl[k], (dict,)):
            _update(tbl[k], v)
        elif k in tbl and _plain(tbl[k]) == v:
            continue
        else:
            tbl[k] = _item(v)


def _plain(x: Any) -> Any:
    return x.unwrap() if hasattr(x, "unwrap") else x


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (readers see the old
    file or the new one, never half of it), with ``mode`` (default: the file's own, or 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
