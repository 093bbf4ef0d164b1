"""Notifications: email over SMTP (STARTTLS or TLS) and webhooks (generic JSON, Slack,
Microsoft Teams, PagerDuty Events v2), one function per channel type.

Secrets (the SMTP password, a webhook URL with a token, PagerDuty's routing key) are read
from the environment or the secrets file when a notice is sent and never written into
history or errors: an error says what failed (``HTTP 500``, ``ConnectionRefusedError``)
with every secret value replaced by ``***``.  :class:`Dispatcher` sends on its own
thread, retrying with back-off, and records each send in the store; evaluation, ingest
and shipping never wait for it.
"""

from __future__ import annotations

import html
import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from ..errors import ConfigError
from .engine import Notice
from .store import Store

log = logging.getLogger("logferry.alerts")

_PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


class SendError(Exception):
    """A send failed (its message holds no secret)."""


def resolve(name: str, ch, secrets) -> dict[str, Any]:
    """The channel's settings with its ``*_env`` / ``*_secret`` references read."""
    from ..config import resolve_secrets

    raw = {k: v for k, v in ch.model_dump(by_alias=True).items() if v is not None}
    return resolve_secrets(raw, secrets, where=f"alerts.channels.{name}")


# --- payloads (what each webhook flavour expects) -------------------------------------------

def _generic(n: Notice, cfg: dict) -> dict[str, Any]:
    return n.as_dict()


def _slack_escape(text: str) -> str:
    """Slack's control characters: a path from a log never becomes a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(n: Notice, cfg: dict) -> dict[str, Any]:
    return {"text": f"*{_slack_escape(n.title())}*\n{_slack_escape(_body(n))}\n<{n.link}|Open the dashboard>"}


def _teams_text(text: str) -> str:
    """A MessageCard's title and text are Markdown: a log's ``[text](https://elsewhere)``
    must not become a link hiding where it goes (``](`` escaped; ``<...>`` autolinks are
    escaped as HTML)."""
    return html.escape(text.replace("](", "]\\("))


def _teams(n: Notice, cfg: dict) -> dict[str, Any]:
    color = {"critical": "d7263d", "warning": "f4a259", "info": "4a90d9"}[n.severity]
    return {"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": n.title(),
            "themeColor": "2e7d32" if n.event == "resolved" else color, "title": _teams_text(n.title()),
            "text": _teams_text(_body(n)).replace("\n", "<br>"),
            "potentialAction": [{"@type": "OpenUri", "name": "Open the dashboard",
                                 "targets": [{"os": "default", "uri": n.link}]}]}


def _pagerduty(n: Notice, cfg: dict) -> dict[str, Any]:
    return {"routing_key": cfg["routing_key"], "event_action": "resolve" if n.event == "resolved" else "trigger",
            "dedup_key": f"logferry-{n.rule}-{n.incident or 'test'}",
            "payload": {"summary": n.title()[:1024], "source": "logferry", "severity": _PD_SEVERITY[n.severity],
                        "timestamp": n.as_dict()["at"], "component": ",".join(n.sites) or "all sites",
                        "group": n.rule, "class": n.kind, "custom_details": n.as_dict()},
            "links": [{"href": n.link, "text": "logferry dashboard"}]}


def _body(n: Notice) -> str:
    return "\n".join(n.text().splitlines()[2:])


PAYLOADS: dict[str, Callable[[Notice, dict], dict[str, Any]]] = {
    "webhook": _generic, "slack": _slack, "teams": _teams, "pagerduty": _pagerduty}


# --- senders -----------------------------------------------------------------------------------

def _post(n: Notice, cfg: dict) -> None:
    import httpx

    try:
        r = httpx.post(cfg["url"], json=PAYLOADS[cfg["type"]](n, cfg), timeout=cfg["timeout"])
    except (httpx.HTTPError, httpx.InvalidURL) as e:  # (InvalidURL is no HTTPError)
        raise SendError(f"{type(e).__name__}: {e}") from None
    if not 200 <= r.status_code < 300:
        raise SendError(f"HTTP {r.status_code}")


def _email(n: Notice, cfg: dict) -> None:
    msg = EmailMessage()
    msg["Subject"] = n.title()
    msg["From"] = cfg["sender"]
    msg["To"] = ", ".join(cfg["to"])
    msg.set_content(n.text() + "\n")
    tls = cfg["tls"]
    port = cfg.get("port") or {"tls": 465, "starttls": 587, "none": 25}[tls]
    try:
        ctx = ssl.create_default_context(cafile=cfg.get("ca_file"))  # (a missing or bad file: OSError)
        if tls == "tls":
            smtp = smtplib.SMTP_SSL(cfg["host"], port, timeout=cfg["timeout"], context=ctx)
        else:
            smtp = smtplib.SMTP(cfg["host"], port, timeout=cfg["timeout"])
        with smtp:
            if tls == "starttls":
                smtp.starttls(context=ctx)
            if cfg.get("username"):
                smtp.login(cfg["username"], cfg.get("password", ""))
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException, ValueError) as e:  # (ValueError: what smtplib cannot
        # encode, e.g. a password that is not ASCII)
        raise SendError(f"{type(e).__name__}: {e}") from None


SENDERS: dict[str, Callable[[Notice, dict], None]] = {
    "email": _email, "webhook": _post, "slack": _post, "teams": _post, "pagerduty": _post}


def _scrub(msg: str, cfg: dict) -> str:
    for k in ("password", "url", "routing_key"):
        v = cfg.get(k)
        if v:
            msg = msg.replace(str(v), "***")
    return msg[:300]


def send(name: str, ch, notice: Notice, secrets) -> None:
    """Send ``notice`` on channel ``name`` now (raises SendError or ConfigError, secret-free)."""
    cfg = resolve(name, ch, secrets)
    try:
        SENDERS[cfg["type"]](notice, cfg)
    except SendError as e:
        raise SendError(_scrub(str(e), cfg)) from None


class Dispatcher:
    """Sends notices on a thread: each (notice, channel) is recorded in the store as
    ``pending``, then ``sent`` or ``failed`` after ``retries`` retries (back-off from
    ``delay`` seconds, doubling); silenced notices are recorded as ``silenced``."""

    def __init__(self, store: Store, channels: dict, secrets, *, retries: int = 4, delay: float = 2.0,
                 clock: Callable[[], float] = time.time):
        self.store, self.channels, self.secrets = store, channels, secrets
        self.retries, self.delay, self.clock = retries, delay, clock
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="alert-notices", daemon=True)
        self._thread.start()

    def submit(self, notices: list[Notice]) -> None:
        for n in notices:
            names = n.notify or sorted(self.channels)
            for c in names:
                status = "silenced" if n.silenced else "pending"
                nid = self.store.add_notice(int(n.at.timestamp() * 1e6), n.rule, n.incident, n.event, c, status)
                if not n.silenced:
                    self._q.put((nid, c, n))

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                nid, c, n = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            self._deliver(nid, c, n)
            self._q.task_done()

    def _deliver(self, nid: int, c: str, n: Notice) -> None:
        err = None
        for attempt in range(1, self.retries + 2):
            try:
                send(c, self.channels[c], n, self.secrets)
                self.store.notice_done(nid, "sent", attempt, None, int(self.clock() * 1e6))
                return
            except (SendError, ConfigError, KeyError) as e:
                err = str(e) if not isinstance(e, KeyError) else f"no channel named {c!r}"
                log.warning("alert %s -> %s: attempt %d failed: %s", n.rule, c, attempt, err)
                self.store.notice_done(nid, "retrying", attempt, err, None)
                if isinstance(e, ConfigError | KeyError) or self._stop.wait(self.delay * 2 ** (attempt - 1)):
                    break
        self.store.notice_done(nid, "failed", attempt, err, None)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued notice is sent or failed (True) or ``timeout`` passes."""
        end = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.02)
        return not self._q.unfinished_tasks

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
