"""Snowplow tracker protocol: pure decoding functions.

Everything here works on plain Python values (one collector hit at a time) and never
raises on bad input: problems come back as reasons.  The pieces:

* :func:`fix_pcts` / :func:`pct_decode` -- the percent-decoding fixes real CloudFront logs
  need (``%25XX`` double encoding undone first, a trailing ``%`` or cut escape dropped);
* :func:`parse_query` -- a GET query string -> ordered name/value pairs;
* :func:`b64url_decode` -- URL-safe or standard Base64, padding optional;
* :func:`payload_items` -- a POST ``payload_data`` self-describing JSON -> event dicts;
* :func:`build_event` -- tracker parameters + collector facts -> one canonical event
  (a dict keyed by Snowplow's atomic column names) or a list of bad reasons.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ..formats import _json

# ---------------------------------------------------------------------------
# percent decoding

_DOUBLE = re.compile(r"%25([0-9A-Fa-f]{2})")
_CUT_ESCAPE = re.compile(r"%[0-9A-Fa-f]?$")


def fix_pcts(s: str) -> str:
    """Undo CloudFront's double encoding (``%2520`` -> ``%20``) and drop a trailing ``%``.

    ``%25`` followed by two hex digits is taken as a double-encoded escape (``%2588`` is
    ambiguous; like Snowplow we read it as ``%88``).  A ``%`` or ``%X`` at the very end
    (a cut escape, seen at the end of real CloudFront URLs) is removed.
    """
    if "%" not in s:
        return s
    s = _DOUBLE.sub(r"%\1", s)
    return _CUT_ESCAPE.sub("", s)


def pct_decode(s: str | None, *, plus: bool = True, double: bool = True) -> str | None:
    """Percent-decode one value (``+`` is a space when ``plus``); ``-``/empty stay as given.

    Invalid escapes are kept literally; invalid UTF-8 becomes U+FFFD.
    """
    if s is None:
        return None
    if double:
        s = fix_pcts(s)
    if plus and "+" in s:
        s = s.replace("+", " ")
    if "%" not in s:
        return s
    return unquote_to_bytes(s).decode("utf-8", errors="replace")


def parse_query(q: str | None, *, double: bool = True) -> list[tuple[str, str]]:
    """Query string -> ``[(name, value), ...]`` in order, both decoded.

    A leading ``?`` or ``&`` is ignored, empty pieces are skipped, a piece without ``=``
    gives an empty value.  ``double`` applies :func:`fix_pcts` to the whole string first
    (CloudFront); with it off only single decoding is done (Tomcat, Thrift, webhooks).
    """
    if not q or q == "-":
        return []
    q = q.lstrip("?")
    if double:
        q = fix_pcts(q)
    else:
        q = _CUT_ESCAPE.sub("", q)
    out: list[tuple[str, str]] = []
    for piece in q.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        name = pct_decode(name, double=False) or ""
        if not name:
            continue
        out.append((name, pct_decode(value, double=False) or ""))
    return out


def query_dict(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Last value wins, like the Snowplow adapters."""
    return dict(pairs)


# ---------------------------------------------------------------------------
# base64 / JSON

_B64_OK = re.compile(r"^[A-Za-z0-9+/_\-]*={0,2}$")


def b64url_decode(s: str) -> bytes:
    """URL-safe (or standard) Base64 with optional padding -> bytes; ValueError if invalid."""
    s = "".join(s.split())
    if not _B64_OK.match(s) or len(s.rstrip("=")) % 4 == 1:
        raise ValueError("not Base64")
    s = s.rstrip("=").replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(str(e)) from e


#: per thread: values whose lone surrogates :func:`json_loads` replaced (see :func:`take_fixed`)
_FIXED = threading.local()


def json_loads(b: bytes | str) -> Any:
    """JSON (bytes must be UTF-8) -> value; ValueError if invalid.

    A lone surrogate escape (``"\\udfff"``, which any visitor can send in a tracker
    payload) becomes U+FFFD; the values so fixed are counted (:func:`take_fixed`)."""
    if isinstance(b, bytes):
        try:
            b = b.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError("not UTF-8") from e
    try:
        v, n = _json.loads(b)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(str(e)) from e
    if n:
        _FIXED.n = getattr(_FIXED, "n", 0) + n
    return v


def take_fixed() -> int:
    """How many values :func:`json_loads` fixed on this thread since the last call."""
    n = getattr(_FIXED, "n", 0)
    _FIXED.n = 0
    return n


#: characters a URL may hold as they are (RFC 3986 reserved and unreserved, and ``%``
#: so that escapes already there stay as sent)
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]~_"


def url_text(v: str) -> str:
    """A decoded URL with what cannot stand in a URL (spaces, tabs, non-ASCII) percent-
    encoded again (UTF-8): the URL as the tracker sent it, whichever collector decoded
    it and how often."""
    if v.isascii() and v.isprintable() and " " not in v:
        return v
    return quote(v, safe=_URL_SAFE)


#: decoded text becomes one TSV field: a tab is four spaces, as Snowplow's enrichment writes it
TAB = "    "


def dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/"
CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/"


def payload_items(body: Any) -> tuple[list[dict[str, str]], list[str]]:
    """A decoded ``payload_data`` JSON -> (event parameter dicts, bad reasons per bad item).

    Accepts the self-describing wrapper (any 1-0-x version) or, leniently, a bare array.
    Non-string scalar values are turned into strings (trackers send strings).
    """
    data = body
    if isinstance(body, dict):
        schema = body.get("schema")
        if not isinstance(schema, str) or not schema.startswith(PAYLOAD_DATA):
            return [], [f"POST body is not payload_data (schema {schema!r})"]
        data = body.get("data")
    if not isinstance(data, list):
        return [], ["payload_data has no data array"]
    if not data:
        return [], ["payload_data data array is empty"]
    items: list[dict[str, str]] = []
    bad: list[str] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            bad.append(f"payload_data item {i} is not an object")
            continue
        d: dict[str, str] = {}
        for k, v in item.items():
            if v is None:
                continue
            d[str(k)] = v if isinstance(v, str) else dumps(v)
        items.append(d)
    return items, bad


# ---------------------------------------------------------------------------
# the event model

EVENT_TYPES = {
    "pv": "page_view",
    "pp": "page_ping",
    "se": "struct",
    "ev": "struct",  # tracker protocol before 2013
    "ue": "unstruct",
    "tr": "transaction",
    "ti": "transaction_item",
    "ad": "ad_impression",
}

PLATFORMS = {"web", "mob", "pc", "srv", "app", "tv", "cnsl", "iot"}

#: tracker parameter -> atomic column (strings)
STRING_PARAMS = {
    "tna": "name_tracker",
    "aid": "app_id",
    "tid": "txn_id",
    "eid": "event_id",
    "tv": "v_tracker",
    "duid": "domain_userid",
    "sid": "domain_sessionid",
    "uid": "user_id",
    "fp": "user_fingerprint",
    "url": "page_url",
    "page": "page_title",
    "refr": "page_referrer",
    "tz": "os_timezone",
    "lang": "br_lang",
    "cs": "doc_charset",
    "ctype": "connection_type",
    "mac": "mac_address",
    "se_ca": "se_category",
    "se_ac": "se_action",
    "se_la": "se_label",
    "se_pr": "se_property",
    "ev_ca": "se_category",
    "ev_ac": "se_action",
    "ev_la": "se_label",
    "ev_pr": "se_property",
    "tr_id": "tr_orderid",
    "tr_af": "tr_affiliation",
    "tr_ci": "tr_city",
    "tr_st": "tr_state",
    "tr_co": "tr_country",
    "tr_cu": "tr_currency",
    "ti_id": "ti_orderid",
    "ti_sk": "ti_sku",
    "ti_nm": "ti_name",
    "ti_na": "ti_name",
    "ti_ca": "ti_category",
    "ti_cu": "ti_currency",
}
FLOAT_PARAMS = {
    "se_va": "se_value",
    "ev_va": "se_value",
    "tr_tt": "tr_total",
    "tr_tx": "tr_tax",
    "tr_sh": "tr_shipping",
    "ti_pr": "ti_price",
}
INT_PARAMS = {
    "vid": "domain_sessionidx",
    "ti_qu": "ti_quantity",
    "cd": "br_colordepth",
    "pp_mix": "pp_xoffset_min",
    "pp_max": "pp_xoffset_max",
    "pp_miy": "pp_yoffset_min",
    "pp_may": "pp_yoffset_max",
}
BOOL_PARAMS = {
    "cookie": "br_cookies",
    "f_pdf": "br_features_pdf",
    "f_fla": "br_features_flash",
    "f_java": "br_features_java",
    "f_dir": "br_features_director",
    "f_qt": "br_features_quicktime",
    "f_realp": "br_features_realplayer",
    "f_wma": "br_features_windowsmedia",
    "f_gears": "br_features_gears",
    "f_ag": "br_features_silverlight",
}
TS_PARAMS = {"dtm": "dvce_created_tstamp", "stm": "dvce_sent_tstamp", "ttm": "true_tstamp"}
DIM_PARAMS = {
    "res": ("dvce_screenwidth", "dvce_screenheight"),
    "vp": ("br_viewwidth", "br_viewheight"),
    "ds": ("doc_width", "doc_height"),
}

_DIM = re.compile(r"^\s*(\d{1,9})\s*[xX]\s*(\d{1,9})\s*$")
_INT = re.compile(r"^\s*[+-]?\d{1,18}\s*$")
_INT32 = 2**31


def to_int(v: str | None, bits32: bool = True) -> int | None:
    if v is None or not _INT.match(v):
        try:
            f = float(v) if v not in (None, "") else None  # "1.0" from some trackers
        except ValueError:
            return None
        if f is None or f != f or not f.is_integer():
            return None
        n = int(f)
    else:
        n = int(v)
    if bits32 and not -_INT32 <= n < _INT32:
        return None
    return n


def to_float(v: str | None) -> float | None:
    if v is None or v.strip() == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    if f != f or f in (float("inf"), float("-inf")):
        return None
    return f


def to_bool(v: str | None) -> bool | None:
    if v in ("1", "true", "True", "TRUE"):
        return True
    if v in ("0", "false", "False", "FALSE"):
        return False
    return None


def ms_to_us(v: str | int | None) -> int | None:
    """Epoch milliseconds (string) -> epoch microseconds, or None if not plausible."""
    if v is None:
        return None
    n = to_int(v, bits32=False) if isinstance(v, str) else v
    if n is None or not 0 < n < 32503680000000:  # before year 3000
        return None
    return n * 1000


#: output columns and their Arrow type names (see :mod:`logferry.snowplow.table`)
COLUMNS: dict[str, str] = {
    "event": "string",
    "event_id": "string",
    "app_id": "string",
    "platform": "string",
    "collector_tstamp": "ts",
    "dvce_created_tstamp": "ts",
    "dvce_sent_tstamp": "ts",
    "true_tstamp": "ts",
    "name_tracker": "string",
    "v_tracker": "string",
    "v_collector": "string",
    "user_id": "string",
    "user_ipaddress": "string",
    "user_fingerprint": "string",
    "domain_userid": "string",
    "domain_sessionidx": "int32",
    "domain_sessionid": "string",
    "network_userid": "string",
    "txn_id": "string",
    "page_url": "string",
    "page_title": "string",
    "page_referrer": "string",
    "useragent": "string",
    "br_lang": "string",
    "br_cookies": "bool",
    "br_colordepth": "int32",
    "br_features_pdf": "bool",
    "br_features_flash": "bool",
    "br_features_java": "bool",
    "br_features_director": "bool",
    "br_features_quicktime": "bool",
    "br_features_realplayer": "bool",
    "br_features_windowsmedia": "bool",
    "br_features_gears": "bool",
    "br_features_silverlight": "bool",
    "os_timezone": "string",
    "doc_charset": "string",
    "connection_type": "string",
    "mac_address": "string",
    "dvce_screenwidth": "int32",
    "dvce_screenheight": "int32",
    "br_viewwidth": "int32",
    "br_viewheight": "int32",
    "doc_width": "int32",
    "doc_height": "int32",
    "pp_xoffset_min": "int32",
    "pp_xoffset_max": "int32",
    "pp_yoffset_min": "int32",
    "pp_yoffset_max": "int32",
    "se_category": "string",
    "se_action": "string",
    "se_label": "string",
    "se_property": "string",
    "se_value": "float64",
    "tr_orderid": "string",
    "tr_affiliation": "string",
    "tr_total": "float64",
    "tr_tax": "float64",
    "tr_shipping": "float64",
    "tr_city": "string",
    "tr_state": "string",
    "tr_country": "string",
    "tr_currency": "string",
    "ti_orderid": "string",
    "ti_sku": "string",
    "ti_name": "string",
    "ti_category": "string",
    "ti_price": "float64",
    "ti_quantity": "int32",
    "ti_currency": "string",
    "unstruct_event_schema": "string",
    "unstruct_event_data": "string",
    "contexts": "string",
    "collector_path": "string",
}


def _self_describing(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("schema"), str) and "data" in v


def _json_param(params: dict[str, str], plain: str, b64: str) -> tuple[Any, str | None]:
    """Read JSON from ``plain`` (already decoded) or ``b64`` (URL-safe Base64)."""
    if plain in params and params[plain] != "":
        try:
            return json_loads(params[plain]), None
        except ValueError:
            return None, f"invalid JSON in {plain}"
    if b64 in params and params[b64] != "":
        try:
            raw = b64url_decode(params[b64])
        except ValueError:
            return None, f"invalid base64 in {b64}"
        try:
            return json_loads(raw), None
        except ValueError:
            return None, f"invalid JSON in {b64} (after base64)"
    return None, None


def build_event(
    params: dict[str, str],
    hit: dict[str, Any],
) -> tuple[dict[str, Any] | None, list[str]]:
    """Tracker parameters of one event + the collector's facts -> (event, bad reasons).

    ``hit`` keys (all optional): ``collector_tstamp`` (epoch µs), ``ip``, ``useragent``
    (decoded), ``referer`` (decoded collector Referer), ``network_userid``, ``collector``
    (``v_collector``), ``path``, ``default_platform``.
    When the reasons list is not empty the event is bad and the first value is None.
    """
    reasons: list[str] = []
    ev: dict[str, Any] = {}

    # event type
    e = params.get("e")
    if e is None or e == "":
        # trackers before 2012-08 sent no "e": a struct event if it has struct fields,
        # a page view if it describes a page
        if any(k in params for k in ("ev_ca", "se_ca", "ev_ac", "se_ac")):
            ev["event"] = "struct"
        elif any(k in params for k in ("page", "url", "refr")):
            ev["event"] = "page_view"
        else:
            reasons.append("missing event type (no e parameter)")
    elif e in EVENT_TYPES:
        ev["event"] = EVENT_TYPES[e]
    else:
        reasons.append(f"unknown event type: {e[:40]}")

    # platform
    p = params.get("p")
    if p is None or p == "":
        p = hit.get("default_platform")
        if p is None:
            tv = params.get("tv", "")
            if tv == "" or tv.startswith(("js-", "no-js")):
                p = "web"  # the early JavaScript tracker sent no platform
    if p is not None:
        pl = p.lower()
        if pl in PLATFORMS:
            ev["platform"] = pl
        else:
            reasons.append(f"unknown platform: {p[:40]}")

    for k, col in STRING_PARAMS.items():
        v = params.get(k)
        if v is not None and v != "" and col not in ev:
            ev[col] = v
    for k, col in FLOAT_PARAMS.items():
        v = params.get(k)
        if v is not None and col not in ev:
            f = to_float(v)
            if f is not None:
                ev[col] = f
    for table, convert in ((INT_PARAMS, to_int), (BOOL_PARAMS, to_bool), (TS_PARAMS, ms_to_us)):
        for k, col in table.items():
            v = convert(params.get(k))
            if v is not None:
                ev[col] = v
    for k, (wcol, hcol) in DIM_PARAMS.items():
        v = params.get(k)
        if v:
            m = _DIM.match(v)
            if m:
                ev[wcol], ev[hcol] = int(m.group(1)), int(m.group(2))

    # unstructured event
    ue, why = _json_param(params, "ue_pr", "ue_px")
    if why:
        reasons.append(why)
    elif ue is not None:
        inner = ue.get("data") if _self_describing(ue) and ue["schema"].startswith(UNSTRUCT) else ue
        if _self_describing(inner):
            ev["unstruct_event_schema"] = inner["schema"]
            ev["unstruct_event_data"] = dumps(inner["data"])
        else:
            reasons.append("unstruct event JSON is not self-describing (no schema)")
    elif ev.get("event") == "unstruct":
        reasons.append("unstruct event without ue_pr or ue_px")

    # contexts
    co, why = _json_param(params, "co", "cx")
    if why:
        reasons.append(why)
    elif co is not None:
        if _self_describing(co) and co["schema"].startswith(CONTEXTS):
            co = co["data"]
        ev["contexts"] = dumps(co)

    # collector facts, tracker overrides
    ev["collector_tstamp"] = hit.get("collector_tstamp")
    ev["v_collector"] = params.get("cv") or hit.get("collector")
    ev["user_ipaddress"] = params.get("ip") or hit.get("ip")
    ev["useragent"] = params.get("ua") or hit.get("useragent")
    nuid = params.get("tnuid") or params.get("nuid") or hit.get("network_userid")
    if nuid and nuid != "-":
        ev["network_userid"] = nuid
    if "page_url" not in ev and hit.get("referer"):
        ev["page_url"] = hit["referer"]  # the page that loaded the pixel
    ev["collector_path"] = hit.get("path")
    if "page_url" in ev:  # the percent-encoding the tracker sent, not a decoded URL
        ev["page_url"] = url_text(ev["page_url"])
    for k, v in ev.items():
        if isinstance(v, str) and "\t" in v and k != "page_url":
            ev[k] = v.replace("\t", TAB)

    if reasons:
        return None, reasons
    return ev, []


def now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)
