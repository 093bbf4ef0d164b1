"""Alert rules, notification channels and the ``[alerts]`` table of ``logferry.toml``.

Validated on load like the rest of the config (strict pydantic models, unknown keys
refused, secrets only by reference).  Durations are written ``30s``, ``5m``, ``2h``,
``1d`` or ``1w`` (or a number of seconds).  See ``docs/alerts.md`` for the whole shape::

    [alerts]
    db = "usage.duckdb"              # the usage database (serve --db wins)
    every = "1m"                     # evaluation interval of run / serve
    console_url = "https://logs.example:8080"

    [alerts.channels.ops]
    type = "email"
    host = "smtp.example"
    password_env = "SMTP_PASSWORD"
    sender = "alerts@example"
    to = ["ops@example"]

    [alerts.rules.errors]
    kind = "error_share"
    class = "5xx"
    above_pct = 5
    window = "5m"
    min_requests = 20
    for = "2m"
    repeat = "1h"
    severity = "critical"
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictStr,
    field_validator,
    model_validator,
)

from ..values import parse_duration


def show_duration(secs: float) -> str:
    for unit, n in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n and secs % n == 0:
            return f"{int(secs // n)}{unit}"
    return f"{secs:g}s"


#: seconds, written as a duration
Duration = Annotated[float, BeforeValidator(parse_duration)]
Strs = Annotated[tuple[StrictStr, ...], Strict(False)]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError("must be longer than 0s")
    return v


class _Rule(_M):
    """What every rule has."""

    sites: Strs = ()
    #: which rows ``sites`` names: their site column or their Host header (IIS logs name
    #: sites W3SVC1... and hosts), or the site column only (a Host header is the client's
    #: choice: the rules of a site-scoped console token)
    match: Literal["site_or_host", "site"] = "site_or_host"
    severity: Literal["info", "warning", "critical"] = "warning"
    window: Duration = 300.0
    for_: Duration = Field(0.0, alias="for")
    repeat: Duration = 3600.0  # 0: one notice per incident
    resolved: bool = True  # send a notice when it clears
    notify: Strs = ()  # channel names; empty: every channel
    description: str = ""

    _window = field_validator("window")(classmethod(lambda cls, v: _positive(v)))


class ErrorShare(_Rule):
    kind: Literal["error_share"]
    class_: Literal["4xx", "5xx"] = Field("5xx", alias="class")
    above_pct: float = Field(gt=0, le=100)
    min_requests: int = Field(20, ge=1)


class Latency(_Rule):
    kind: Literal["latency"]
    percentile: Literal["p50", "p95", "p99"] = "p95"
    above_ms: float = Field(gt=0)
    path_prefix: str | None = None
    min_requests: int = Field(10, ge=1)


class SiteDown(_Rule):
    """No request for longer than ``window`` (after traffic within ``lookback``)."""

    kind: Literal["site_down"]
    lookback: Duration = 86400.0


class BrokenLinks(_Rule):
    """A path answering 404/410 more than ``min_hits`` times in the window that did not in
    the ``baseline`` before it."""

    kind: Literal["broken_links"]
    min_hits: int = Field(3, ge=1)
    baseline: Duration = 7 * 86400.0


class Traffic(_Rule):
    """Requests in the window against the same window yesterday or last week."""

    kind: Literal["traffic"]
    compare: Literal["yesterday", "last_week"] = "yesterday"
    below: float | None = Field(None, gt=0)  # ratio, e.g. 0.5: fires under half
    above: float | None = Field(None, gt=0)  # ratio, e.g. 3: fires over three times
    min_requests: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _bounds(self):
        if self.below is None and self.above is None:
            raise ValueError("give below (a drop ratio) or above (a spike ratio), or both")
        return self


class Sql(_Rule):
    """A SELECT over ``requests`` (the window's requests of the rule's sites); fires when it
    returns rows.  Parameters ``$start`` and ``$end`` only."""

    kind: Literal["sql"]
    query: str

    @field_validator("query")
    @classmethod
    def _query(cls, v):
        check_sql(v)
        return v


def check_sql(q: str) -> None:
    """One SELECT, whose only parameters are $start and $end (ValueError otherwise)."""
    import duckdb

    try:
        stmts = duckdb.extract_statements(q)
    except duckdb.Error as e:
        raise ValueError(f"not valid SQL: {str(e).splitlines()[0]}") from None
    if len(stmts) != 1 or stmts[0].type != duckdb.StatementType.SELECT:
        raise ValueError("must be one SELECT statement")
    extra = set(stmts[0].named_parameters) - {"start", "end"}
    if extra:
        raise ValueError(f"unknown parameter(s) {', '.join('$' + x for x in sorted(extra))}: "
                         f"only $start and $end")


Rule = Annotated[ErrorShare | Latency | SiteDown | BrokenLinks | Traffic | Sql, Field(discriminator="kind")]
KINDS = ("error_share", "latency", "site_down", "broken_links", "traffic", "sql")


def _secret_refs(v: dict[str, Any]) -> None:
    from ..secretrefs import check_option

    for k, val in v.items():
        check_option(k, val)


class Email(_M):
    type: Literal["email"]
    host: str
    port: int | None = Field(None, ge=1, le=65535)
    tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_secret: str | None = None
    sender: str
    to: Strs = Field(min_length=1)
    ca_file: str | None = None  # CA certificates to trust (a private CA); default: the system's
    timeout: float = Field(20.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, v):
        if isinstance(v, dict):
            _secret_refs(v)
        return v


class Webhook(_M):
    """``url`` in the file (no token in it), or ``url_env`` / ``url_secret``."""

    type: Literal["webhook", "slack", "teams", "pagerduty"]
    url: str | None = None
    url_env: str | None = None
    url_secret: str | None = None
    routing_key_env: str | None = None  # PagerDuty
    routing_key_secret: str | None = None
    timeout: float = Field(10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, v):
        if isinstance(v, dict):
            if "routing_key" in v:
                raise ValueError("'routing_key': secrets may not be written in the config; use "
                                 "routing_key_env = \"VAR\" or routing_key_secret = \"NAME\" (secrets file)")
            _secret_refs({k: x for k, x in v.items() if k not in ("url_secret", "routing_key_secret")})
        return v

    @model_validator(mode="after")
    def _one_url(self):
        if sum(x is not None for x in (self.url, self.url_env, self.url_secret)) != 1:
            raise ValueError("give one of url, url_env or url_secret")
        if self.url is not None and not re.match(r"https?://", self.url):
            raise ValueError("url must start with http:// or https://")
        if self.type == "pagerduty" and not (self.routing_key_env or self.routing_key_secret):
            raise ValueError("pagerduty needs routing_key_env or routing_key_secret")
        return self


Channel = Annotated[Email | Webhook, Field(discriminator="type")]


class AlertsCfg(_M):
    db: str | None = None
    every: Duration = 60.0
    console_url: str = ""
    retries: int = Field(4, ge=0, le=20)
    retry_delay: Duration = 2.0  # first back-off; doubles on each retry
    channels: dict[str, Channel] = {}
    rules: dict[str, Rule] = {}

    _every = field_validator("every")(classmethod(lambda cls, v: _positive(v)))

    @field_validator("rules", mode="before")
    @classmethod
    def _kinds(cls, v):
        for name, r in (v.items() if isinstance(v, dict) else ()):
            k = r.get("kind") if isinstance(r, dict) else None
            if k not in KINDS:
                raise ValueError(f"{name}: unknown kind (metric) {k!r}; choose one of: {', '.join(KINDS)}")
        return v

    @field_validator("channels", "rules")
    @classmethod
    def _names(cls, v):
        for k in v:
            if not _NAME.fullmatch(k):
                raise ValueError(f"{k!r}: a name is letters, digits, '_', '.', '-' (up to 64)")
        return v

    @model_validator(mode="after")
    def _known_channels(self):
        for name, r in self.rules.items():
            for c in r.notify:
                if c not in self.channels:
                    raise ValueError(f"rules.{name}.notify: no channel named {c!r}")
        return self
