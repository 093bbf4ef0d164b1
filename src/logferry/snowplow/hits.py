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
    UNSTRUCT,
    b64url_decode,
    build_event,
    dumps,
    fix_pcts,
    json_loads,
    parse_query,
    payload_items,
    pct_decode,
    take_fixed,
    to_float,
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
    #: CloudFront: every field of the row as logged (for the access-log adapter)
    access_log: list[str] | None = None


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
    """-> (events, bad reasons): every bad reason stands for one bad event.

    The first event carries ``_conversion_errors``: values of the hit that could not be
    kept as sent (a lone surrogate escape in a JSON payload, now U+FFFD)."""
    take_fixed()
    events, bad = _decode_hit(hit)
    fixed = take_fixed()
    if fixed and events:
        events[0]["_conversion_errors"] = fixed
    return events, bad


def _decode_hit(hit: Hit) -> tuple[list[dict[str, Any]], list[str]]:
    path = _none_dash(hit.path) or ""
    query = _none_dash(hit.query)
    if "?" in path:  # some old rows carry the query in the URI stem
        path, _, stem_query = path.partition("?")
        if not query or query in ("?", "&"):
            query = stem_query
    kind, vendor, version = path_kind(path)
    if kind is None and hit.collector_kind == CLOUDFRONT and hit.access_log:
        return _access_log(hit)  # ordinary traffic: Snowplow's CloudFront access-log adapter
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

    return _built([(params, facts) for params in items], list(item_bad))


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
    return _unstruct_events([(schema, data)], qparams, facts, "app", IGLU_TRACKER)


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
    return _unstruct_events(sd, qparams, facts, "srv", webhook_tracker(vendor, version))


#: v_tracker of the Iglu webhook's events (Snowplow's IgluAdapter)
IGLU_TRACKER = "com.snowplowanalytics.iglu-v1"


def webhook_tracker(vendor: str, version: int) -> str:
    """``v_tracker`` as Snowplow's adapter for the webhook sets it: the vendor and the
    path's version (``com.mailchimp-v1``, ``com.sendgrid-v3``, ``com.pagerduty-v1``, ...)."""
    return f"{vendor}-v{version}"


def _unstruct_events(sd, qparams, facts, default_platform, tracker):
    todo = []
    for schema, data in sd:
        params = {k: v for k, v in qparams.items() if k in _META}
        params["tv"] = tracker  # the adapter's, not the caller's
        params["e"] = "ue"
        params["ue_pr"] = dumps({"schema": schema, "data": data})
        todo.append((params, {**facts, "default_platform": default_platform}))
    return _built(todo, [])


def _built(todo: list[tuple[dict[str, Any], dict[str, Any]]], bad: list[str]
           ) -> tuple[list[dict[str, Any]], list[str]]:
    """The events of (params, facts) pairs, and ``bad`` with the reasons of those that
    make none."""
    events = []
    for params, facts in todo:
        ev, reasons = build_event(params, facts)
        if ev is None:
            bad.append("; ".join(reasons))
        else:
            events.append(ev)
    return events, bad


# ---------------------------------------------------------------------------
# CloudFront rows that are not tracker hits: Snowplow's CloudFront access-log adapter

ACCESS_LOG_TRACKER = "com.amazon.aws.cloudfront/wd_access_log"
#: keys of the wd_access_log schema for fields 3.. of a row (1 and 2 make ``dateTime``)
ACCESS_LOG_KEYS = (
    "xEdgeLocation", "scBytes", "cIp", "csMethod", "csHost", "csUriStem", "scStatus",
    "csReferer", "csUserAgent", "csUriQuery", "csCookie", "xEdgeResultType", "xEdgeRequestId",
    "xHostHeader", "csProtocol", "csBytes", "timeTaken", "xForwardedFor", "sslProtocol",
    "sslCipher", "xEdgeResponseResultType", "csProtocolVersion", "fleStatus", "fleEncryptedFields",
)  # fmt: skip
#: field count -> schema version (iglu:com.amazon.aws.cloudfront/wd_access_log/jsonschema/1-0-N)
ACCESS_LOG_VERSIONS = {12: 0, 15: 1, 18: 2, 19: 3, 23: 4, 24: 5, 26: 6}
_ACCESS_INT = {"scBytes", "csBytes"}


def _access_log(hit: Hit) -> tuple[list[dict[str, Any]], list[str]]:
    """A ``com.amazon.aws.cloudfront/wd_access_log`` unstructured event, as Snowplow's
    adapter makes it: platform ``srv``, its ``v_tracker``, ``page_url`` the Referer as
    logged; the schema version by field count.  Rows of more than 26 fields (the 33 of
    today's logs) use the last version, 1-0-6, which has no keys for fields 27-33."""
    f = hit.access_log or []
    n = len(f)
    if n > 26:
        n = 26
    elif n not in ACCESS_LOG_VERSIONS:
        return [], [f"access log row of {n} fields, expected 12, 15, 18, 19, 23, 24, 26 or more"]
    data: dict[str, Any] = {"dateTime": f"{f[0]}T{f[1]}Z"}
    bad = []
    for key, raw in zip(ACCESS_LOG_KEYS, f[2:n], strict=False):
        v: Any = None if raw == "-" else raw
        if v is None:
            pass
        elif key in _ACCESS_INT:
            v = to_int(raw, bits32=False)
            if v is None:
                bad.append(f"{key}: cannot convert [{raw[:40]}] to an integer")
        elif key == "timeTaken":
            v = to_float(raw)
            if v is None:
                bad.append(f"{key}: cannot convert [{raw[:40]}] to a number")
        elif key == "csUserAgent":
            v = pct_decode(raw, plus=False)
        elif key == "csUriQuery":
            v = fix_pcts(raw)
        data[key] = v
    if bad:
        return [], ["; ".join(bad)]
    schema = f"iglu:{ACCESS_LOG_TRACKER}/jsonschema/1-0-{ACCESS_LOG_VERSIONS[n]}"
    params = {"e": "ue", "tv": ACCESS_LOG_TRACKER, "p": "srv",
              "ue_pr": dumps({"schema": UNSTRUCT + "1-0-0", "data": {"schema": schema, "data": data}})}
    if f[9] != "-":
        params["url"] = f[9]
    facts = _facts(hit)
    facts["path"] = _none_dash(hit.path)
    ev, reasons = build_event(params, facts)
    if ev is None:
        return [], ["; ".join(reasons)]
    return [ev], []


__all__ = ["Hit", "decode_hit", "path_kind", "TRACKER_PATH_RE", "to_int"]
