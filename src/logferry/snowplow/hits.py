"""One collector hit (a CloudFront row, a Clojure-collector Tomcat row or a Thrift record)
-> zero or more tracker events plus bad reasons.

A hit carries the collector's facts as raw text; :func:`decode_hit` applies the decoding
rules of the collector that wrote it, finds the kind of tracker path, and hands the
parameters of each event to :func:`~logferry.snowplow.protocol.build_event`.
Nothing raises: every problem becomes a bad reason (one per bad event).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from .protocol import (
    b64url_decode,
    build_event,
    dumps,
    json_loads,
    parse_query,
    payload_items,
    pct_decode,
    to_int,
)

CLOUDFRONT = "cloudfront"
TOMCAT = "clj-tomcat"
THRIFT = "thrift"

GET_PATHS = {"/i", "/ice.png", "/com.snowplowanalytics.snowplow/tp1"}
TP2_PATHS = {"/com.snowplowanalytics.snowplow/tp2", "/r/tp2"}
IGLU_PATH = "/com.snowplowanalytics.iglu/v1"
_WEBHOOK = re.compile(r"^/([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+)/v(\d{1,4})$")
#: a regex (RE2 compatible) matching every tracker path, for vectorised pre-filtering
TRACKER_PATH_RE = r"^(/i|/ice\.png|/r/tp2|/[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)+/(tp1|tp2|v[0-9]+))(\?.*)?$"

#: parameters a collector (not the tracker) adds to the query string
COLLECTOR_PARAMS = {"cv", "nuid"}


def path_kind(path: str | None) -> tuple[str | None, str | None, int | None]:
    """``(kind, vendor, version)``: kind is ``tp1``, ``tp2``, ``iglu``, ``webhook`` or None."""
    if not path:
        return None, None, None
    if path in GET_PATHS:
        return "tp1", None, None
    if path in TP2_PATHS:
        return "tp2", None, None
    if path == IGLU_PATH:
        return "iglu", None, None
    m = _WEBHOOK.match(path)
    if m:
        return "webhook", m.group(1), int(m.group(2))
    return None, None, None


@dataclass
class Hit:
    """A collector request as logged (raw text unless said otherwise)."""

    collector_kind: str  # CLOUDFRONT, TOMCAT or THRIFT
    collector_tstamp: int | None = None  # epoch microseconds
    ip: str | None = None
    method: str | None = None
    path: str | None = None
    query: str | None = None
    referer: str | None = None
    useragent: str | None = None
    content_type: str | None = None
    body: str | None = None  # Tomcat: URL-safe Base64; Thrift: the body text
    network_userid: str | None = None
    collector: str | None = None  # v_collector


def _none_dash(v: str | None) -> str | None:
    return None if v in (None, "", "-") else v


def _facts(hit: Hit) -> dict[str, Any]:
    k = hit.collector_kind
    if k == CLOUDFRONT:
        ua = pct_decode(_none_dash(hit.useragent), plus=False)
        ref = pct_decode(_none_dash(hit.referer), plus=False)
        coll = hit.collector or "cloudfront"
    elif k == TOMCAT:
        ua = pct_decode(_none_dash(hit.useragent), plus=True, double=False)
        ref = _none_dash(hit.referer)
        coll = hit.collector or "clj-tomcat"
    else:
        ua = _none_dash(hit.useragent)
        ref = _none_dash(hit.referer)
        coll = hit.collector
    return {
        "collector_tstamp": hit.collector_tstamp,
        "ip": _none_dash(hit.ip),
        "useragent": ua,
        "referer": ref,
        "network_userid": _none_dash(hit.network_userid),
        "collector": coll,
    }


def _body_bytes(hit: Hit) -> tuple[bytes | None, str | None]:
    body = _none_dash(hit.body)
    if body is None:
        return None, None
    if hit.collector_kind == TOMCAT:
        try:
            return b64url_decode(body), None
        except ValueError:
            return None, "invalid base64 in request body"
    return body.encode("utf-8", errors="surrogateescape"), None


def _content_type(hit: Hit) -> str:
    ct = _none_dash(hit.content_type) or ""
    if hit.collector_kind == TOMCAT:
        ct = pct_decode(ct, double=False) or ""
    return ct.strip().lower()


def decode_hit(hit: Hit) -> tuple[list[dict[str, Any]], list[str]]:
    """-> (events, bad reasons): every bad reason stands for one bad event."""
    path = _none_dash(hit.path) or ""
    query = _none_dash(hit.query)
    if "?" in path:  # some old rows carry the query in the URI stem
        path, _, stem_query = path.partition("?")
        if not query or query in ("?", "&"):
            query = stem_query
    kind, vendor, version = path_kind(path)
    if kind is None:
        return [], [f"not a tracker path: {path[:200] or '(empty)'}"]
    method = (_none_dash(hit.method) or "GET").upper()
    if hit.collector_kind == CLOUDFRONT and method != "GET":
        return [], [f"CloudFront collector rows must be GET requests, not {method[:10]}"]
    body, why = _body_bytes(hit)
    if why:
        return [], [why]
    if body is not None and hit.collector_kind == TOMCAT and method != "POST":
        return [], [f"request body on a {method[:10]} request (only POSTs carry a body)"]
    double = hit.collector_kind == CLOUDFRONT
    qparams = dict(parse_query(query, double=double))
    facts = _facts(hit)
    facts["path"] = path

    if kind == "webhook":
        return _webhook(vendor or "", version or 1, qparams, _content_type(hit), body, facts)
    if kind == "iglu":
        return _iglu(qparams, _content_type(hit), body, facts)

    items: list[dict[str, str]]
    item_bad: list[str] = []
    if kind == "tp2" and body is not None:
        try:
            payload = json_loads(body)
        except ValueError:
            return [], ["invalid JSON in POST body"]
        items, item_bad = payload_items(payload)
        collector_params = {k: v for k, v in qparams.items() if k in COLLECTOR_PARAMS}
        items = [{**collector_params, **it} for it in items]
    else:
        params = dict(qparams)
        if body is not None and "x-www-form-urlencoded" in _content_type(hit):
            params.update(parse_query(body.decode("utf-8", errors="replace"), double=False))
        if not set(params) - COLLECTOR_PARAMS:
            return [], ["no tracker parameters (empty query string)"]
        items = [params]

    events: list[dict[str, Any]] = []
    bad = list(item_bad)
    for params in items:
        ev, reasons = build_event(params, facts)
        if ev is None:
            bad.append("; ".join(reasons))
        else:
            events.append(ev)
    return events, bad


# ---------------------------------------------------------------------------
# self-describing events sent to the Iglu webhook and vendor webhooks

_META = {"aid", "p", "cv", "nuid", "eid", "tv"}


def _iglu(qparams, ctype, body, facts):
    schema = qparams.get("schema")
    data: Any
    if body is not None and "json" in ctype:
        try:
            data = json_loads(body)
        except ValueError:
            return [], ["invalid JSON in POST body"]
        if isinstance(data, dict) and schema is None:
            schema = data.get("schema")
            data = data.get("data", data)
    else:
        data = {k: v for k, v in qparams.items() if k not in _META and k != "schema"}
    if not isinstance(schema, str) or not schema.startswith("iglu:"):
        return [], ["Iglu webhook request without an iglu: schema"]
    return _unstruct_events([(schema, data)], qparams, facts, "app")


def _form(text: str) -> dict[str, Any]:
    """Form fields -> dict; ``a[b][c]=v`` nests, values that are JSON objects/arrays are parsed."""
    out: dict[str, Any] = {}
    for k, v in parse_query(text, double=False):
        val: Any = v
        if v[:1] in ("{", "[") and len(v) < 5_000_000:
            try:
                val = json_loads(v)
            except ValueError:
                val = v
        keys = re.findall(r"[^\[\]]+", k) if "[" in k else [k]
        node = out
        for part in keys[:-1] or []:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        if keys:
            node[keys[-1]] = val
    return out


def _multipart(ctype: str, body: bytes) -> dict[str, Any]:
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    out: dict[str, Any] = {}
    if not msg.is_multipart():
        raise ValueError("not multipart")
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        out[str(name)] = payload.decode("utf-8", errors="replace")
    return out


#: vendor -> the key of the list whose items are separate events
_SPLIT = {"com.pagerduty": "messages", "com.mandrill": "mandrill_events"}
#: vendor -> fixed event name (when the payload has none)
_FIXED = {
    "com.callrail": "call_complete",
    "com.statusgator": "status_change",
    "com.unbounce": "form_post",
    "com.marketo": "event",
    "com.olark": "transcript",
}
_NAME_KEYS = ("event", "type", "eventType", "subscriptionType", "action")


def _event_name(vendor: str, item: Any) -> str:
    if vendor in _FIXED:
        return _FIXED[vendor]
    name = None
    if isinstance(item, dict):
        # the event name is a top-level key, or one level down (Pingdom's "message")
        for d in [item, *(v for v in item.values() if isinstance(v, dict))]:
            for k in _NAME_KEYS:
                v = d.get(k)
                if isinstance(v, str) and v:
                    name = v
                    break
            if name is not None:
                break
    if name is None:
        return "event"
    name = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "event"
    if vendor == "com.pingdom":
        name = "incident_" + name
    return name[:100]


def _webhook(vendor, version, qparams, ctype, body, facts):
    payload: Any
    try:
        if body is None or body == b"":
            payload = {k: v for k, v in qparams.items() if k not in _META}
            for k, v in list(payload.items()):
                if v[:1] in ("{", "["):
                    try:
                        payload[k] = json_loads(v)
                    except ValueError:
                        pass
        elif "multipart/form-data" in ctype:
            payload = _multipart(ctype, body)
        elif "x-www-form-urlencoded" in ctype:
            payload = _form(body.decode("utf-8", errors="replace"))
        else:
            try:
                payload = json_loads(body)
            except ValueError:
                if "json" in ctype:
                    raise
                payload = _form(body.decode("utf-8", errors="replace"))
    except (ValueError, TypeError, LookupError):
        return [], [f"invalid {'JSON' if 'json' in ctype else 'form'} body for webhook {vendor}"]
    if not payload:
        return [], [f"empty webhook payload for {vendor}"]
    items: list[Any]
    key = _SPLIT.get(vendor)
    if isinstance(payload, list):
        items = payload
    elif key and isinstance(payload, dict) and isinstance(payload.get(key), list):
        items = payload[key]
    else:
        items = [payload]
    if not items:
        return [], [f"empty webhook payload for {vendor}"]
    sd = [(f"iglu:{vendor}/{_event_name(vendor, it)}/jsonschema/{version}-0-0", it) for it in items]
    return _unstruct_events(sd, qparams, facts, "srv")


def _unstruct_events(sd, qparams, facts, default_platform):
    events = []
    bad = []
    for schema, data in sd:
        params = {k: v for k, v in qparams.items() if k in _META}
        params["e"] = "ue"
        params["ue_pr"] = dumps({"schema": schema, "data": data})
        f = dict(facts)
        f["default_platform"] = default_platform
        ev, reasons = build_event(params, f)
        if ev is None:
            bad.append("; ".join(reasons))
        else:
            events.append(ev)
    return events, bad


__all__ = ["Hit", "decode_hit", "path_kind", "TRACKER_PATH_RE", "to_int"]
