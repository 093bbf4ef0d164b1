"""Evaluation: each rule's measure (one query), its state machine, incidents and notices.

A rule is ``ok``; when its condition holds it is ``pending``; once the condition has held
for the rule's ``for`` it is ``firing`` (an incident opens, a ``firing`` notice); while it
keeps firing a ``repeat`` notice goes out every ``repeat``; when the condition no longer
holds the incident closes with a ``resolved`` notice.  A silenced rule goes through the
same states and incidents -- its notices are recorded as silenced instead of sent.

The clock is a parameter: :func:`evaluate` takes ``now``, :func:`replay` steps through a
time range; both run the same queries and the same state machine.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from ..term import safe
from .query import UNITS, US, Observation, measure, threshold, ts
from .store import Store

log = logging.getLogger("logferry.alerts")


@dataclass
class Notice:
    """One thing to tell: a rule fired, is still firing, or resolved (or a test)."""

    rule: str
    event: str  # firing | repeat | resolved | test
    kind: str
    severity: str
    value: float | None
    peak: float | None
    unit: str
    threshold: str
    at: datetime  # the evaluation instant
    window_start: datetime  # the window evaluated
    first: datetime | None  # when the trouble was first seen in the data
    last: datetime | None
    sites: list[str]
    incident: int | None
    link: str
    details: Any = None
    silenced: bool = False
    notify: list[str] = field(default_factory=list)

    def title(self) -> str:
        word = {"firing": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED", "test": "TEST"}[self.event]
        return f"[logferry {word}] {self.rule} ({self.severity}): {self.summary()}"

    def summary(self) -> str:
        v = "-" if self.value is None else f"{self.value:g}"
        return f"{self.kind} {v} {self.unit}; condition: {self.threshold}"

    def text(self) -> str:
        fmt = "%Y-%m-%d %H:%M:%S UTC"
        lines = [self.title(), "",
                 f"rule:      {self.rule} ({self.kind}, severity {self.severity})",
                 f"value:     {'-' if self.value is None else f'{self.value:g}'} {self.unit}"
                 + ("" if self.peak is None else f" (peak {self.peak:g} {self.unit})"),
                 f"condition: {self.threshold}",
                 f"window:    {self.window_start:{fmt}} - {self.at:{fmt}}",
                 f"sites:     {', '.join(safe(s) for s in self.sites) or 'all'}"]
        if self.first is not None:
            lines.append(f"seen:      {self.first:{fmt}} - {(self.last or self.at):{fmt}}")
        lines += [f"dashboard: {self.link}"]
        for p in (self.details or {}).get("paths", [])[:10] if isinstance(self.details, dict) else []:
            # (paths and referers are the log's: a newline or an escape shows as \n, \x1b)
            refs = ", ".join(safe(r) for r in p.get("referers") or []) or "no referer"
            lines.append(f"  {safe(p['path'])}: {p['hits']} hits (from {refs})")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("at", "window_start", "first", "last"):
            d[k] = None if d[k] is None else d[k].isoformat().replace("+00:00", "Z")
        d["title"] = self.title()
        return d


def dashboard_link(base: str, start: datetime, end: datetime, sites) -> str:
    q = [("since", start.isoformat().replace("+00:00", "Z")), ("until", end.isoformat().replace("+00:00", "Z"))]
    q += [("site", s) for s in sites]
    return f"{base.rstrip('/')}/dashboard?{urlencode(q)}"


def _worse(kind: str, a: float | None, b: float | None) -> float | None:
    """The peak: the value furthest into trouble."""
    if a is None or b is None:
        return b if a is None else a
    if kind == "traffic":  # a drop or a spike: furthest from 1 either way
        return max(a, b, key=lambda v: math.inf if v <= 0 else max(v, 1 / v))
    return max(a, b)


def advance(rule, st: dict[str, Any], obs: Observation) -> tuple[dict[str, Any], list[str]]:
    """The state machine: (new state, events) after observation ``obs``."""
    status = st.get("status", "ok")
    st = {**st, "value": obs.value, "evaluated": obs.t}
    if not obs.holds:
        ended = ["resolved"] if status == "firing" else []
        keep = {k: st[k] for k in ("incident", "first", "last", "peak", "details")
                if k in st and ended}
        return {"status": "ok", "value": obs.value, "evaluated": obs.t, **keep}, ended
    if status == "ok" or "since" not in st:
        st = {**st, "status": "pending", "since": obs.t, "first": obs.first, "peak": None, "incident": None}
    st["peak"] = _worse(rule.kind, st.get("peak"), obs.value)
    st["last"] = obs.last if obs.last is not None else st.get("last")
    if st.get("first") is None or (obs.first is not None and obs.first < st["first"]):
        st["first"] = obs.first
    st["details"] = obs.details
    events = []
    if st["status"] == "pending" and obs.t - st["since"] >= rule.for_ * US:
        st["status"], st["last_sent"] = "firing", obs.t
        events.append("firing")
    elif st["status"] == "firing" and rule.repeat > 0 and obs.t - st["last_sent"] >= rule.repeat * US:
        st["last_sent"] = obs.t
        events.append("repeat")
    return st, events


def _notice(name: str, rule, st: dict[str, Any], event: str, obs: Observation, console_url: str,
            silenced: bool) -> Notice:
    at = ts(obs.t)
    start = ts(obs.t - int(rule.window * US))
    first = ts(st.get("first"))
    link_from = min(first, start) if first else start
    return Notice(rule=name, event=event, kind=rule.kind, severity=rule.severity, value=obs.value,
                  peak=st.get("peak"), unit=UNITS[rule.kind], threshold=threshold(rule), at=at,
                  window_start=start, first=first, last=ts(st.get("last")), sites=list(rule.sites),
                  incident=st.get("incident"), link=dashboard_link(console_url, link_from, at, rule.sites),
                  details=st.get("details") if event != "resolved" else None, silenced=silenced,
                  notify=list(rule.notify))


def _step(store: Store, name: str, rule, obs: Observation, console_url: str) -> list[Notice]:
    """One observation of one rule through the state machine, recorded in ``store``."""
    st, events = advance(rule, store.state(name), obs)
    silenced = store.silenced(name, tuple(rule.sites), obs.t)
    out = []
    for ev in events:
        if ev == "firing":
            st["incident"] = store.open_incident(name, rule, st["since"], st, threshold(rule), UNITS[rule.kind])
        elif st.get("incident"):
            store.update_incident(st["incident"], st, resolved=obs.t if ev == "resolved" else None)
        if ev != "resolved" or rule.resolved:
            out.append(_notice(name, rule, st, ev, obs, console_url, silenced))
    if st.get("status") == "firing" and not events and st.get("incident"):
        store.update_incident(st["incident"], st)
    store.save_state(name, st if st.get("status") != "ok" else
                     {k: st[k] for k in ("status", "value", "evaluated") if k in st})
    store.evaluated(name, obs.t, obs.value, obs.holds)
    return out


def to_us(now: datetime | float | int) -> int:
    if isinstance(now, datetime):
        return int(now.timestamp() * US)
    return int(now * US)


def evaluate(rules: dict[str, Any], con, now: datetime | float, store: Store, *,
             console_url: str = "") -> list[Notice]:
    """Evaluate every rule at ``now`` (a datetime or epoch seconds): one query per rule.
    A rule whose query fails is recorded with its error; the others go on."""
    t = to_us(now)
    out: list[Notice] = []
    for name, rule in rules.items():
        try:
            obs = measure(con, rule, [t])[0]
        except Exception as e:  # noqa: BLE001 - one rule's failure stops no other
            log.warning("alert rule %s: %s", name, e)
            store.evaluated(name, t, None, False, str(e).splitlines()[0][:300])
            continue
        out += _step(store, name, rule, obs, console_url)
    return out


def data_range(con) -> tuple[int, int] | None:
    """The first and last request time (epoch us) in the database."""
    row = con.execute('SELECT epoch_us(min("timestamp")), epoch_us(max("timestamp")) FROM requests').fetchall()[0]
    return None if row[0] is None else (row[0], row[1])


def replay(rules: dict[str, Any], con, start: int, end: int, step: float, store: Store, *,
           console_url: str = "") -> list[Notice]:
    """Evaluate every rule at each ``step`` seconds from ``start`` to ``end`` (epoch us,
    aligned on the step) -- one query per rule for the whole range."""
    s = int(step * US)
    first = -(-start // s) * s
    steps = list(range(first, end + s, s))
    out: list[Notice] = []
    for name, rule in rules.items():
        for obs in measure(con, rule, steps):
            out += _step(store, name, rule, obs, console_url)
    out.sort(key=lambda n: n.at)
    return out


def rule_status(store: Store, name: str, rule, now: int) -> str:
    """ok | pending | firing | silenced."""
    if store.silenced(name, tuple(rule.sites), now):
        return "silenced"
    return store.state(name).get("status", "ok")
