"""What the ``alerts`` commands and the console's Alerts page both do (one implementation):
the rules with their state, a test over the data, silences, a test notification."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .. import values
from ..errors import ConfigError
from .engine import Notice, dashboard_link, data_range, evaluate, replay, rule_status, to_us
from .query import UNITS, US, measure, threshold, ts
from .rules import show_duration
from .store import Store

FMT = "%Y-%m-%d %H:%M:%S"


def _fmt(us: int | None) -> str | None:
    return None if us is None else ts(us).strftime(FMT)


def rule_rows(loaded, store: Store, sites: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Each rule (with ``sites``, a token's: the rules of those sites matching the site
    column only): its settings, condition, state and last evaluation."""
    now = to_us(datetime.now(UTC))
    evals = store.evaluations()
    out = []
    for name, r in loaded.cfg.alerts.rules.items():
        if sites is not None and not (r.sites and set(r.sites) <= set(sites) and r.match == "site"):
            continue  # (a scoped token sees no request through a client's Host header)
        ev = evals.get(name) or {}
        out.append({"name": name, "kind": r.kind, "severity": r.severity, "condition": threshold(r),
                    "window": show_duration(r.window), "for": show_duration(r.for_),
                    "repeat": show_duration(r.repeat), "sites": list(r.sites),
                    "state": rule_status(store, name, r, now), "evaluated": _fmt(ev.get("at")),
                    "value": ev.get("value"), "error": ev.get("error"), "notify": list(r.notify),
                    "rule": r.model_dump(by_alias=True, exclude_defaults=False)})
    return out


def test_rules(loaded, rules: dict[str, Any], db: str | None, at: datetime, *, lake: str | None = None,
               catalog: str | None = None) -> dict[str, Any]:
    """Replay ``rules`` over the data's whole time range (each minute, or ``[alerts] every``)
    in a throw-away store, then evaluate each at ``at``: nothing is sent or recorded."""
    from .runner import usage_source

    a = loaded.cfg.alerts
    src = usage_source(loaded, db, lake, catalog)
    if src is None:
        raise ConfigError("no usage database: give --db or --lake, or set db in [alerts] or path in [lake]")
    with src.connect(read_only=True) as con:
        rng = data_range(con)
        out: dict[str, Any] = {"range": [_fmt(rng[0]), _fmt(rng[1])] if rng else [None, None], "rules": {}}
        for name, rule in rules.items():
            store = Store()
            notices = replay({name: rule}, con, rng[0], rng[1], a.every, store,
                             console_url=a.console_url) if rng else []
            out["rules"][name] = {"kind": rule.kind, "severity": rule.severity, "condition": threshold(rule),
                                  "unit": UNITS[rule.kind], "incidents": _incidents(store, notices),
                                  "now": _now(con, name, rule, at, a.console_url)}
        return out


def _incidents(store: Store, notices: list[Notice]) -> list[dict[str, Any]]:
    titles = {n.incident: n.title() for n in notices if n.event == "firing"}
    return [{"id": i["id"], "first": _fmt(i["first"]), "last": _fmt(i["last"]), "started": _fmt(i["started"]),
             "resolved": _fmt(i["resolved"]), "peak": i["peak"], "unit": i["unit"], "details": i["details"],
             "title": titles.get(i["id"], "")} for i in reversed(store.incidents(limit=10000))]


def _now(con, name: str, rule, at: datetime, console_url: str) -> dict[str, Any]:
    """The rule at ``at`` alone (``for`` not waited for): what it would send."""
    obs = measure(con, rule, [to_us(at)])[0]
    n = None
    if obs.holds:
        store = Store()
        rule_now = rule.model_copy(update={"for_": 0.0})
        n = evaluate({name: rule_now}, con, at, store, console_url=console_url)[0]
    return {"at": at.strftime(FMT), "holds": obs.holds, "value": obs.value,
            "text": n.text() if n else None, "notice": n.as_dict() if n else None}


def parse_until(text: str, now: datetime) -> datetime:
    """``--until``: an ISO 8601 time (UTC unless it says otherwise) or a duration from now."""
    from ..values import parse_duration

    try:
        return now + _td(parse_duration(text))
    except ValueError:
        pass
    try:  # values.parse_time: the one parser of every since/until (UTC unless it says otherwise)
        t = values.parse_time(text, "--until")
    except ConfigError:
        raise ConfigError(f"--until {text!r}: give a time (2026-12-24T18:00Z) or a duration (2h, 1d)") from None
    if t <= now:
        raise ConfigError(f"--until {text!r} is in the past")
    return t


def _td(secs: float):
    from datetime import timedelta

    if secs <= 0:
        raise ValueError("not positive")
    return timedelta(seconds=secs)


def add_silence(loaded, store: Store | Callable[[], Store], rule: str | None, site: str | None, until: str,
                comment: str = "", now: datetime | None = None) -> dict[str, Any]:
    """Silence ``rule`` or ``site`` until ``until`` (a time or a duration from now); the store
    (or the function that opens it) is only touched once the request is valid."""
    rules = loaded.cfg.alerts.rules
    if rule is not None and rule not in rules:
        raise ConfigError(f"no alert rule named {rule!r}; rules: {', '.join(sorted(rules)) or '(none)'}")
    now = now or datetime.now(UTC)
    t = parse_until(until, now)
    store = store() if callable(store) else store
    sid = store.silence(rule, site, to_us(t), to_us(now), comment)
    return {"id": sid, "rule": rule, "site": site, "until": to_us(t), "comment": comment}


def test_notice(name: str, rule, console_url: str = "") -> Notice:
    """A notice marked TEST, as the rule would send it (for "Send test notification")."""
    now = datetime.now(UTC)
    start = ts(to_us(now) - int(rule.window * US))
    return Notice(rule=name, event="test", kind=rule.kind, severity=rule.severity, value=None, peak=None,
                  unit=UNITS[rule.kind], threshold=threshold(rule), at=now, window_start=start, first=None,
                  last=None, sites=list(rule.sites), incident=None,
                  link=dashboard_link(console_url, start, now, rule.sites), notify=list(rule.notify))


def send_test(loaded, name: str) -> list[dict[str, Any]]:
    """Send a test notice of rule ``name`` on each of its channels now; each result says
    ``sent`` or the (secret-free) error."""
    from .notify import SendError, send

    a = loaded.cfg.alerts
    rule = a.rules.get(name)
    if rule is None:
        raise ConfigError(f"no alert rule named {name!r}")
    n = test_notice(name, rule, a.console_url)
    out = []
    for c in rule.notify or sorted(a.channels):
        try:
            send(c, a.channels[c], n, loaded.secrets)
            out.append({"channel": c, "status": "sent", "error": None})
        except (SendError, ConfigError) as e:
            out.append({"channel": c, "status": "failed", "error": str(e)})
    return out
