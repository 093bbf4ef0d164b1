"""``logferry.toml``: export jobs, validated on load into frozen pydantic models.

Unknown keys are rejected; every error names the key, the file and the reason.  Secrets
are never written in the file: options ending in ``_env`` name an environment variable,
options ending in ``_secret`` name a key of the secrets file (``secrets_file``, lines of
``KEY=VALUE`` or a TOML table), and they are resolved only when a destination is opened.

Example::

    state_dir = "/var/lib/logferry"
    secrets_file = "/etc/logferry/secrets.env"

    [jobs.cdn]
    source = ["/var/log/cdn/*.log", "s3://raw-logs/cdn/*.gz"]
    to = "jsonl"
    compress = "gzip"
    fields = ["timestamp", "client_ip", "path", "status"]
    where = "status>=400"
    filter = { status = ["5xx"], path_prefix = "/api", since = "2024-03-01T00:00:00Z" }
    privacy = { ip = "mask", ipv4_prefix = 24, ipv6_prefix = 48 }
    rotate = { max_bytes = 50_000_000, max_age_secs = 300 }
    name = { preset = "cdn" }
    service = "example-service"
    sites = ["shop.example"]     # tenants: ship only records of these sites (site column)
    dest = "s3://bucket/cdn/"
    dest_options = { region = "eu-west-1" }
    every_minutes = 5
    retention = { source_days = 7, dest_days = 30 }

    [console]                    # what a site-scoped console token may name (web/policy.py)
    source_roots = ["/var/log/cdn"]
    dest_roots = ["/srv/exports"]

    [lake]                       # the usage lake of --config without --lake (docs/scale.md)
    path = "s3://acme-lake/logferry"
    catalog = "/var/lib/logferry/lake-catalog.db"
    workers = 4                  # or cluster = "tcp://dask:8786"
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .alerts.rules import AlertsCfg
from .errors import ConfigError, LogferryError

# (the secret-reference rules, shared with the alert channels; names kept importable from here)
from .secretrefs import _SECRET_KEYS, check_option, is_reference, is_secret_key  # noqa: F401
from .ship import MAX_AGE_SECS
from .ship.schedule import MAX_EVERY_MINUTES, MIN_EVERY_MINUTES, Schedule
from .values import INT64_MAX

DEFAULT_FILE = "logferry.toml"


class _M(BaseModel):
    # strict: a value of the wrong type is an error, never coerced ("5" is not 5, true is
    # not 1); TOML arrays are accepted where a list is meant (Strs); numbers are finite
    # (TOML has nan and inf)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


#: a TOML array of strings
Strs = Annotated[tuple[StrictStr, ...], Strict(False)]



def _time(v: Any) -> Any:
    from .values import parse_time

    try:
        return parse_time(v, "")
    except ConfigError as e:
        raise ValueError(str(e)) from None


#: a point in time: a TOML datetime or date, or an ISO 8601 string ("2024-03-01T10:30:00Z",
#: an offset, a date alone; UTC when none is given) -- values.parse_time, as every --since
Time = Annotated[datetime, BeforeValidator(_time)]

_DIGIT_PAIRS = frozenset(f"{i:02d}" for i in range(100))


class FilterCfg(_M):
    status: Strs = ()
    sites: Strs = ()
    since: Time | None = None
    until: Time | None = None
    path_prefix: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, v):
        for s in v:
            s2 = s.strip().lower()
            if not (len(s2) == 3 and s2[0] in "12345" and (s2[1:] == "xx" or s2[1:] in _DIGIT_PAIRS)):
                raise ValueError(f"{s!r} is not a status (404) or a class (4xx)")
        return v

    @model_validator(mode="after")
    def _order(self):
        from .values import check_order

        try:
            check_order(self.since, self.until, "until must be after since")
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self


class PrivacyCfg(_M):
    ip: Literal["none", "mask", "hash"] = "none"
    ipv4_prefix: int = Field(24, ge=0, le=32)
    ipv6_prefix: int = Field(48, ge=0, le=128)
    key_env: str | None = None
    key_secret: str | None = None

    @model_validator(mode="after")
    def _key(self):
        if self.ip == "hash" and not (self.key_env or self.key_secret):
            raise ValueError("ip = 'hash' needs key_env or key_secret")
        return self


class RotateCfg(_M):
    max_bytes: int | None = Field(50_000_000, gt=0, le=INT64_MAX)
    max_age_secs: float | None = Field(300, gt=0, le=MAX_AGE_SECS)
    max_records: int | None = Field(None, gt=0, le=INT64_MAX)


class NameCfg(_M):
    template: str | None = None
    preset: str | None = None

    @model_validator(mode="after")
    def _check(self):
        from .ship import naming

        try:
            naming.validate(naming.resolve(self.template, self.preset))
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self


class RetentionCfg(_M):
    source_days: float | None = Field(None, gt=0)
    dest_days: float | None = Field(None, gt=0)


class JobCfg(_M):
    source: Strs
    dest: str
    dest_options: dict[str, str | int | float | bool] = {}
    format: str | None = None
    to: str = "jsonl"
    compress: Literal["gzip", "zstd", "none"] = "gzip"
    fields: Strs | None = None
    where: str | None = None
    filter: FilterCfg = FilterCfg()
    privacy: PrivacyCfg = PrivacyCfg()
    rotate: RotateCfg = RotateCfg()
    name: NameCfg = NameCfg()
    service: str = ""
    site: str = ""
    #: the job's tenants: only records whose ``site`` is one of these are shipped
    sites: Strs = ()
    every_minutes: float | None = Field(None, ge=MIN_EVERY_MINUTES, le=MAX_EVERY_MINUTES)
    cron: str | None = None
    retention: RetentionCfg = RetentionCfg()
    retries: int = Field(6, ge=0, le=100)

    @field_validator("source")
    @classmethod
    def _src(cls, v):
        if not v:
            raise ValueError("at least one source path or glob")
        from .sources import check_source

        for src in v:
            try:
                check_source(src, folders=False)  # (a password would be stored, shown and printed)
            except LogferryError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("dest")
    @classmethod
    def _dest(cls, v):
        from .destinations import check_url

        try:
            check_url(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("dest_options")
    @classmethod
    def _opts(cls, v):
        from .destinations import check_options

        for k, val in v.items():
            check_option(k, val)
        try:
            check_options(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("to")
    @classmethod
    def _to(cls, v):
        from .writers import WRITERS

        if v not in WRITERS:
            raise ValueError(f"unknown output format {v!r}; choose one of: {', '.join(sorted(WRITERS))}")
        return v

    @field_validator("fields")
    @classmethod
    def _fields(cls, v):
        if v is not None:
            from .transforms import job_fields

            try:
                job_fields(v)
            except LogferryError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("where")
    @classmethod
    def _where(cls, v):
        if v:
            from .transforms import compile_where

            try:
                compile_where(v)
            except Exception as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v):
        if v:
            try:
                Schedule.make(cron=v)  # the same check as when the scheduler starts
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _one_schedule(self):
        if self.every_minutes is not None and self.cron:
            raise ValueError("give either every_minutes or cron, not both")
        return self


class ConsoleCfg(_M):
    """What ``logferry serve`` lets a token that is not an admin's (site-scoped or
    read-only) name in a job: sources under ``source_roots`` (directories, or URL
    prefixes such as ``s3://bucket/logs/``) and folder destinations under ``dest_roots``
    (relative roots are relative to the config file).  Nothing else unless the job, as
    saved, already names it."""

    source_roots: Strs = ()
    dest_roots: Strs = ()


class LakeCfg(_M):
    """``[lake]``: the usage lake that ``serve``, ``ingest``, ``report``, ``sql`` and ``lake``
    use when given ``--config`` and no ``--lake`` (docs/scale.md).  ``path``: a folder
    (relative to the config file) or a URL (``s3://bucket/lake``); ``catalog``: its catalog,
    a SQLite file (relative to the config file), a SQLAlchemy URI or ``glue://`` (AWS Glue;
    default: catalog.db in the lake folder); ``workers`` (a local Dask cluster) or ``cluster`` (a Dask scheduler,
    ``tcp://HOST:PORT``) for ingest."""

    path: StrictStr | None = None
    catalog: StrictStr | None = None
    workers: Annotated[int, Field(ge=1, le=1024)] | None = None
    cluster: StrictStr | None = None

    @field_validator("path", "catalog")
    @classmethod
    def _not_empty(cls, v):
        if v is not None and not v.strip():
            raise ValueError("must not be empty")
        if v is not None and "://" in v and ".." in v.split("://", 1)[1].split("/"):
            raise ValueError("'..' is not allowed in a URL")
        return v

    @field_validator("cluster")
    @classmethod
    def _address(cls, v):
        import re

        if v is not None and not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s/]+:\d{1,5}", v):
            raise ValueError(f"{v!r} is not a Dask scheduler address (tcp://HOST:PORT)")
        return v

    @model_validator(mode="after")
    def _one_compute(self):
        if self.workers is not None and self.cluster is not None:
            raise ValueError("give either workers or cluster, not both")
        return self


class Config(_M):
    state_dir: str = ".logferry"
    secrets_file: str | None = None
    console: ConsoleCfg = ConsoleCfg()
    jobs: dict[str, JobCfg] = {}
    alerts: AlertsCfg = AlertsCfg()
    lake: LakeCfg = LakeCfg()

    @field_validator("jobs")
    @classmethod
    def _names(cls, v):
        from .ship.naming import check_job_name

        for k in v:
            try:
                check_job_name(k)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return v


class Loaded:
    """A loaded config: the model, where it came from, and secret resolution."""

    def __init__(self, cfg: Config, path: Path):
        self.cfg = cfg
        self.path = path
        base = path.parent
        sd = Path(os.path.expanduser(cfg.state_dir))
        self.state_dir = sd if sd.is_absolute() else (base / sd)
        sf = cfg.secrets_file
        self.secrets_path = None if sf is None else (
            Path(os.path.expanduser(sf)) if os.path.isabs(os.path.expanduser(sf)) else base / sf
        )
        self._secrets: dict[str, str] | None = None

    def lake(self) -> LakeCfg:
        """``[lake]`` with a folder ``path`` and a SQLite ``catalog`` file relative to the
        config file's folder (URLs as they are)."""
        lc = self.cfg.lake

        def here(v: str | None) -> str | None:
            if v is None or "://" in v:
                return v
            p = Path(os.path.expanduser(v))
            return os.fspath(p if p.is_absolute() else self.path.parent / p)

        return lc.model_copy(update={"path": here(lc.path), "catalog": here(lc.catalog)})

    def job(self, name: str) -> JobCfg:
        try:
            return self.cfg.jobs[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: no job named {name!r}; jobs: {', '.join(sorted(self.cfg.jobs)) or '(none)'}"
            ) from None

    def secrets(self) -> dict[str, str]:
        if self._secrets is None:
            self._secrets = {} if self.secrets_path is None else read_secrets(self.secrets_path)
        return self._secrets

    def resolve_options(self, job: str, opts: dict[str, Any]) -> dict[str, Any]:
        return resolve_secrets(opts, self.secrets, where=f"{self.path}: jobs.{job}.dest_options")

    def engine_job(self, name: str):
        return to_engine_job(name, self.job(name), self)


def resolve_secrets(opts: dict[str, Any], secrets, where: str = "options") -> dict[str, Any]:
    """``password_env = "VAR"`` -> ``password = os.environ["VAR"]``; ``*_secret`` -> secrets file."""
    out: dict[str, Any] = {}
    for k, v in opts.items():
        if k.endswith("_env"):
            name = str(v)
            if name not in os.environ:
                raise ConfigError(f"{where}.{k}: environment variable {name} is not set")
            out[k[:-4]] = os.environ[name]
        elif k.endswith("_secret"):
            s = secrets() if callable(secrets) else secrets
            if str(v) not in s:
                raise ConfigError(f"{where}.{k}: no secret named {v!r} in the secrets file")
            out[k[: -len("_secret")]] = s[str(v)]
        else:
            out[k] = v
    return out


def read_secrets(path: Path) -> dict[str, str]:
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the secrets file: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
        return {str(k): str(v) for k, v in data.items() if not isinstance(v, dict)}
    except tomllib.TOMLDecodeError:
        pass
    out = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{path}:{i}: expected KEY=VALUE")  # never echo the line
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip().strip('"').strip("'")
    return out


def _loc(loc: tuple) -> str:
    return ".".join(str(x) for x in loc if not (isinstance(x, str) and x.startswith("function-")))


def load(path: str | os.PathLike | None = None) -> Loaded:
    p = Path(path or DEFAULT_FILE)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (give one with --config)") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid TOML: arrays or tables nested too deeply") from None
    try:
        cfg = Config.model_validate(data)
    except RecursionError:
        raise ConfigError(f"{p}: values nested too deeply") from None
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            key = _loc(err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                reason = "unknown key"
            else:
                reason = err["msg"].removeprefix("Value error, ").replace(
                    "a valid tuple", "an array (a list in [...])")
            msgs.append(f"{p}: {key}: {reason}")
        raise ConfigError("\n".join(msgs)) from None
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    return Loaded(cfg, p)


def to_engine_job(name: str, j: JobCfg, loaded: Loaded | None = None):
    from .privacy import Privacy
    from .ship import naming
    from .ship.engine import Filter, Job
    from .ship.rotate import Limits

    key = None
    if j.privacy.ip == "hash":
        if j.privacy.key_env:
            key = os.environ.get(j.privacy.key_env)
            if not key:
                raise ConfigError(f"jobs.{name}.privacy.key_env: {j.privacy.key_env} is not set")
        else:
            s = loaded.secrets() if loaded else {}
            key = s.get(j.privacy.key_secret or "")
            if not key:
                raise ConfigError(f"jobs.{name}.privacy.key_secret: not in the secrets file")
    priv = Privacy(j.privacy.ip, v4_prefix=j.privacy.ipv4_prefix, v6_prefix=j.privacy.ipv6_prefix,
                   key=key.encode() if key else None)
    f = j.filter
    return Job(
        name=name,
        sources=j.source,
        dest=j.dest,
        dest_options=dict(j.dest_options),
        format=j.format,
        to=j.to,
        compress=j.compress,
        fields=j.fields,
        where=j.where,
        filter=Filter(tuple(f.status), tuple(f.sites), f.since, f.until, f.path_prefix),
        privacy=priv,
        limits=Limits(j.rotate.max_bytes, j.rotate.max_age_secs, j.rotate.max_records),
        name_template=naming.resolve(j.name.template, j.name.preset),
        service=j.service,
        site=j.site,
        sites=tuple(j.sites),
        retries=j.retries,
    )
