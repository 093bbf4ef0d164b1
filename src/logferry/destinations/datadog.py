"""``datadog://SITE`` -> the Datadog Logs HTTP intake v2 (``POST /api/v2/logs``).

``SITE`` is ``datadoghq.com``, ``datadoghq.eu``, ``us3.datadoghq.com``... and the endpoint
is ``https://http-intake.logs.SITE/api/v2/logs``; a ``host:port`` (with ``?tls=false`` for
plain HTTP) is used as the intake itself (proxies, tests).  The API key comes from
``DD_API_KEY`` (or ``api_key_env`` / ``api_key_secret``) and is sent only as the
``DD-API-KEY`` header.  Each object the engine hands over (JSON lines, one record per
line) becomes requests of at most 1000 entries and 5 MB of uncompressed JSON, gzipped.
Each entry: ``message`` (the record as JSON text), ``ddsource``, ``service``, ``ddtags``,
``hostname`` and the record's timestamp as ``date``.

Datadog has no idempotency key: a process killed after a 202 and before the checkpoint
re-sends that request on the next run (at-least-once for this destination only).
"""

from __future__ import annotations

import gzip
import json
import os
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError, PermanentError, TransientError
from . import ObjectInfo, classify_http

MAX_BODY = 5_000_000  # bytes of uncompressed JSON per request
MAX_ENTRIES = 1000
MAX_ENTRY = 1_000_000  # per log; larger ones are truncated by Datadog anyway


class DatadogDestination:
    records_only = True  # the engine sends JSON lines, uncompressed
    #: an object's limits, which cap the job's rotation: its entries, and their JSON lines
    #: with room left for each entry's envelope in a request of MAX_BODY
    max_object_records = MAX_ENTRIES
    max_object_bytes = 4_000_000

    def __init__(self, url: str, options: dict[str, Any]):
        u = urlsplit(url)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        site = u.netloc or options.get("site") or os.environ.get("DD_SITE") or "datadoghq.com"
        tls = str(q.get("tls", options.get("tls", "true"))).lower() not in ("false", "0", "no")
        if ":" in site or site in ("localhost",) or site.replace(".", "").isdigit():
            base = f"{'https' if tls else 'http'}://{site}"
            api = base
        else:
            base = f"https://http-intake.logs.{site}"
            api = f"https://api.{site}"
        self.endpoint = base + "/api/v2/logs"
        #: where :meth:`check` validates the API key (Datadog's documented GET /api/v1/validate)
        self.validate_url = api + "/api/v1/validate"
        key = options.get("api_key") or os.environ.get("DD_API_KEY")
        if not key:
            raise ConfigError(
                "datadog destination: no API key; set DD_API_KEY (or api_key_env / api_key_secret)"
            )
        if not (key.isascii() and key.isprintable()) or key != key.strip():  # (httpx's error would quote it)
            raise ConfigError("datadog destination: the API key holds a line break, a space or a character "
                              "outside ASCII (the end of the file it was read from?): it cannot be sent")
        self._key = key
        self.ddsource = q.get("ddsource") or options.get("ddsource") or "logferry"
        self.service = q.get("service") or options.get("service") or "web"
        self.ddtags = q.get("ddtags") or options.get("ddtags") or ""
        self.hostname = options.get("hostname") or socket.gethostname()
        self.timeout = float(options.get("timeout", 30))
        import httpx

        self._client = httpx.Client(timeout=self.timeout)
        self.requests_sent = 0

    def _items(self, data: bytes) -> list[bytes]:
        out = []
        base = {"ddsource": self.ddsource, "service": self.service, "hostname": self.hostname}
        if self.ddtags:
            base["ddtags"] = self.ddtags
        for line in data.splitlines():
            if not line.strip():
                continue
            text = line.decode("utf-8", "replace")
            item = dict(base)
            item["message"] = text
            try:
                rec = json.loads(text)
                if isinstance(rec, dict) and rec.get("timestamp"):
                    item["date"] = rec["timestamp"]
            except ValueError:
                pass
            out.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        return out

    def put(self, name: str, data: bytes) -> None:
        """Send the records of one object; several requests if the limits need it."""
        items = self._items(data)
        batch: list[bytes] = []
        size = 2
        for it in items:
            add = len(it) + (1 if batch else 0)
            if batch and (len(batch) >= MAX_ENTRIES or size + add > MAX_BODY):
                self._send(batch, name)
                batch, size = [], 2
                add = len(it)
            batch.append(it)
            size += add
        if batch:
            self._send(batch, name)

    def _request(self, what: str, method: str, url: str, headers: dict[str, str], **kw):
        """One request with the API key; a network failure is a transient error."""
        import httpx

        try:
            return self._client.request(method, url, headers={"DD-API-KEY": self._key, **headers}, **kw)
        except httpx.HTTPError as e:
            raise TransientError(f"datadog: {what}: {type(e).__name__}: {e}") from e

    def _refused(self, what: str, r) -> Exception:
        """The error of an answer that is not a success: transient when worth retrying.
        The answer's text is the server's: one that echoes the request's headers (a
        debugging proxy) would show the API key, which becomes ``***``."""
        msg = f"datadog: {what}: HTTP {r.status_code} {r.text.replace(self._key, '***')[:200]}"
        return TransientError(msg) if classify_http(r.status_code) else PermanentError(msg)

    def _send(self, items: list[bytes], name: str) -> None:
        body = b"[" + b",".join(items) + b"]"
        r = self._request(name, "POST", self.endpoint, {"Content-Type": "application/json",
                                                        "Content-Encoding": "gzip"},
                          content=gzip.compress(body, 6, mtime=0))
        self.requests_sent += 1
        if r.status_code not in (200, 202):
            raise self._refused(name, r)

    def list(self) -> list[ObjectInfo]:
        return []  # an intake keeps nothing we could list or prune

    def check(self) -> str:
        """The console's Test connection: whether the site answers and takes the API key
        (``GET /api/v1/validate``, as Vector's health check does), without sending a log,
        which could not be deleted."""
        what = f"API key check at {self.validate_url}"
        r = self._request(what, "GET", self.validate_url, {})
        try:
            valid = r.status_code == 200 and r.json().get("valid") is True
        except (ValueError, AttributeError):  # not a JSON object
            valid = False
        if not valid:
            raise self._refused(what, r)
        return f"the API key is valid ({self.validate_url}); logs go to {self.endpoint}"

    def delete(self, name: str) -> None:
        raise PermanentError("datadog: delivered logs cannot be deleted through the intake")

    def get(self, name: str) -> bytes:
        raise PermanentError("datadog: delivered logs cannot be read back through the intake")

    def close(self) -> None:
        self._client.close()
