"""CDN transaction logs (Qwilt-style "MDL" log shipping): headerless TSV and JSON lines.

Two readers:

* ``cdn-tsv``: one transaction per line, tab-separated, no header, in the documented field
  order (:data:`CDN_FIELDS`).  Deliveries may be field-selected: pass the order with the
  reader option ``fields`` (a list of names, or one comma-separated string).  Without the
  option lines are read with :data:`CDN_FIELDS` (content providers: the global fields then
  ``uri``); ``fields="service-provider"`` selects :data:`CDN_FIELDS_SP` (global fields
  then ``downstreamSystemId``/``upstreamSystemId``).
  A line made only of known field names (an export with a header) is counted as a
  directive and sets the field order for the lines after it.
* ``cdn-json``: one JSON object per line, keys are the field names; any subset of fields
  and unknown extra keys are accepted (extras are kept in ``fields``).

``-`` is null everywhere.  Canonical columns:

================  ==================================================================
timestamp         ``startTimeEpochMilli`` (ms since the epoch); when missing or
                  unusable, ``startTime`` (``DD-MM-YY HH:MM:SS.mmm``, UTC -- the
                  documented example ``13-04-23 18:17:02.883`` is 13 April 2023 and
                  matches its epoch value)
client_ip         ``clientIp`` as written (may be obfuscated, e.g. ``$0:1$...=``)
client_port       ``clientPort``
server_ip/_port   ``serverIp`` / ``serverPort`` (the upstream the CDN connected to)
site              ``siteName`` (the delivery service)
host/path/query   from ``uri`` (``http://host/path?query``); a bare path gives no host
method            ``httpMethod``, upper-cased (Qwilt writes ``get``)
protocol          ``httpVersion``: ``1.1`` -> ``HTTP/1.1`` (same shape as W3C
                  ``cs-version``); other values kept as written
status            ``httpResponseCode``
bytes_sent        ``sentBytes`` (L7 bytes to the client, headers included)
bytes_received    ``fetchedBytes`` (L7 bytes the CDN read from upstream).  This follows
                  the design table: for CDN and CSV usage logs ``bytes_received`` is what
                  the server received from its upstream, not the client request size.
duration_ms       ``durationMilli``
ttfb_ms           ``TTFB`` (ms)
user_agent        ``userAgent`` (written raw, nothing to decode)
referer           ``referer``
cache_status      ``CacheStatus`` (as written: hit, miss, ...)
edge_location     ``edgeLocation``
request_id        ``transactionChainId``
================  ==================================================================

A TSV line with another number of fields than its layout is a bad row; so is a JSON
line that is not an object, or an object with none of the CDN field names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..lines import LineChunk, to_str
from ..schema import make_batch
from . import Head, Reader, _json
from . import _fields as F
from ._split import split_regular

TAB = 9

#: the documented global fields, in the order they appear in a transaction log
CDN_GLOBAL_FIELDS: tuple[str, ...] = (
    "startTime",
    "startTimeEpochMilli",
    "durationMilli",
    "source",
    "siteName",
    "clientIp",
    "clientPort",
    "serverIp",
    "serverPort",
    "sentBytes",
    "httpResponseCode",
    "requestRange",
    "responseRange",
    "userAgent",
    "altDeviceName",
    "origServerIp",
    "trxStatus",
    "trxStatusReason",
    "referer",
    "httpMethod",
    "fetchedBytes",
    "httpVersion",
    "trigger",
    "originHostNames",
    "originHttpResponseCodes",
    "CacheStatus",
    "deliveryHopCount",
    "deliveryChainLength",
    "transactionChainId",
    "TTFB",
    "ClientASN",
    "ClientCountryCode",
    "dataType",
    "downstreamType",
    "TriggerTrxId",
    "subTrxType",
    "sliceRange",
    "cdnCacheStatus",
    "edgeLocation",
    "x-forward-for",
    "originTTFB",
    "CmcdSid",
    "NumSliceSubTrx",
    "NumSliceMisses",
    "topTierCacheStatus",
    "subnet",
    "responseRttMsec",
    "contentType",
    "SSL-Cipher",
)

#: full documented order for content providers (the default TSV layout; 50 fields)
CDN_FIELDS: tuple[str, ...] = (*CDN_GLOBAL_FIELDS, "uri")
#: service-provider layout: global fields then the two system ids (51 fields)
CDN_FIELDS_SP: tuple[str, ...] = (*CDN_GLOBAL_FIELDS, "downstreamSystemId", "upstreamSystemId")
#: named layouts for the ``fields`` option
PRESETS: dict[str, tuple[str, ...]] = {
    "content-provider": CDN_FIELDS,
    "service-provider": CDN_FIELDS_SP,
}
#: every documented field name
KNOWN_FIELDS: frozenset[str] = frozenset((*CDN_FIELDS, *CDN_FIELDS_SP))

#: field name -> (canonical column, converter kind)
FIELD_MAP: dict[str, tuple[str, str]] = {
    "clientIp": ("client_ip", "str"),
    "clientPort": ("client_port", "int32"),
    "serverIp": ("server_ip", "str"),
    "serverPort": ("server_port", "int32"),
    "siteName": ("site", "str"),
    "httpMethod": ("method", "upper"),
    "httpVersion": ("protocol", "http_version"),
    "httpResponseCode": ("status", "int16"),
    "sentBytes": ("bytes_sent", "int64"),
    "fetchedBytes": ("bytes_received", "int64"),
    "durationMilli": ("duration_ms", "float"),
    "TTFB": ("ttfb_ms", "float"),
    "userAgent": ("user_agent", "str"),
    "referer": ("referer", "str"),
    "CacheStatus": ("cache_status", "str"),
    "edgeLocation": ("edge_location", "str"),
    "transactionChainId": ("request_id", "str"),
}

#: keys that (almost) only Qwilt-style logs use: they make JSON detection confident
DISTINCT_KEYS = frozenset(
    {
        "startTimeEpochMilli",
        "durationMilli",
        "siteName",
        "sentBytes",
        "httpResponseCode",
        "fetchedBytes",
        "CacheStatus",
        "transactionChainId",
        "edgeLocation",
        "trxStatus",
        "trxStatusReason",
        "deliveryHopCount",
        "deliveryChainLength",
        "cdnCacheStatus",
        "originHostNames",
        "origServerIp",
        "NumSliceSubTrx",
        "TriggerTrxId",
    }
)

# epoch milliseconds accepted as a time: 1970 .. 9999
_MAX_EPOCH_MS = 253_402_300_799_999

_START_TIME_RE = r"^(\d{2})-(\d{2})-(\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)$"


# --- conversion (shared by both readers) -------------------------------------------------


def _element(parts: pa.Array, k: int) -> pa.Array:
    """Element ``k`` of every list, null where the list is shorter (or null)."""
    offs = parts.offsets.to_numpy()
    ok = np.diff(offs) > k
    if not ok.any():
        return pa.nulls(len(parts), pa.string())
    v = parts.values.take(pa.array(np.where(ok, offs[:-1] + k, offs[:-1][ok][0] + k)))
    return v if ok.all() else pc.if_else(pa.array(ok), v, pa.scalar(None, pa.string()))


def split_uri(uri: pa.Array) -> dict[str, pa.Array]:
    """``scheme://host/path?query`` (or ``/path?query``) -> host, path, query (null if empty).

    Vectorised with Arrow string splits (several times faster than a regex extract).
    """
    uri = F.dash_null(uri)
    null = pa.scalar(None, pa.string())
    if pc.any(pc.match_substring(uri, "#")).as_py():  # fragments are never sent: drop them
        uri = pc.list_element(pc.split_pattern(uri, "#", max_splits=1), 0)
    q = pc.split_pattern(uri, "?", max_splits=1)
    pre = pc.list_element(q, 0)
    query = F.empty_null(_element(q, 1))
    scheme = pc.fill_null(pc.match_substring_regex(pre, r"^[A-Za-z][A-Za-z0-9+.\-]*://"), False)
    if pc.any(scheme).as_py():
        parts = pc.split_pattern(pre, "/", max_splits=3)  # scheme:, "", authority, rest
        host = _element(parts, 2)
        if pc.any(pc.match_substring(host, "@")).as_py():
            host = pc.replace_substring_regex(host, r"^[^@]*@", "")
        rest = _element(parts, 3)
        path_s = pc.if_else(pc.is_valid(rest), pc.binary_join_element_wise("/", rest, ""), pa.scalar("/"))
        host = pc.if_else(scheme, F.empty_null(host), null)
        path = pc.if_else(scheme, path_s, F.empty_null(pre))
    else:
        host = pa.nulls(len(uri), pa.string())
        path = F.empty_null(pre)
    return {"host": host, "path": path, "query": query}


def http_protocol(a: pa.Array) -> pa.Array:
    """``1.1`` / ``2`` -> ``HTTP/1.1`` / ``HTTP/2``; anything else as written."""
    a = F.dash_null(a)
    bare = pc.fill_null(pc.match_substring_regex(a, r"^\d+(\.\d+)?$"), False)
    return pc.if_else(bare, pc.binary_join_element_wise("HTTP/", a, ""), a)


def _start_time(a: pa.Array) -> pa.Array:
    """``DD-MM-YY HH:MM:SS.mmm`` (UTC) -> timestamp; anything else -> null."""
    a = F.dash_null(a)
    ok = pc.fill_null(pc.match_substring_regex(a, _START_TIME_RE), False)
    iso = pc.replace_substring_regex(pc.if_else(ok, a, pa.scalar(None, pa.string())), _START_TIME_RE, r"20\3-\2-\1 \4")
    return F.iso_to_ts(iso)


def _present(raw: pa.Array) -> pa.Array:
    return pc.fill_null(pc.and_(pc.is_valid(raw), pc.not_equal(raw, F.DASH)), False)


def canonical(cols: Mapping[str, pa.Array], n: int, ctx) -> dict[str, pa.Array]:
    """Canonical columns from raw text columns named by CDN field names."""
    out: dict[str, pa.Array] = {}
    failed = 0
    for name, (target, kind) in FIELD_MAP.items():
        raw = cols.get(name)
        if raw is None:
            continue
        if (common := F.convert(kind, raw)) is not None:
            v, bad = common
            failed += bad
        elif kind == "upper":
            v = pc.utf8_upper(F.dash_null(raw))
        elif kind == "http_version":
            v = http_protocol(raw)
        else:  # pragma: no cover - table typo
            raise AssertionError(kind)
        out[target] = v
    if "uri" in cols:
        out.update(split_uri(cols["uri"]))
    # time: epoch milliseconds first, startTime as the fallback
    ts = None
    present = None
    if "startTimeEpochMilli" in cols:
        raw = cols["startTimeEpochMilli"]
        ms = F.to_int(raw)
        in_range = pc.fill_null(pc.and_(pc.greater_equal(ms, 0), pc.less_equal(ms, _MAX_EPOCH_MS)), False)
        ms = pc.if_else(in_range, ms, pa.scalar(None, pa.int64()))
        ts = F.epoch_to_ts(ms, "ms")
        present = _present(raw)
    if "startTime" in cols and (ts is None or ts.null_count):
        raw = cols["startTime"]
        st = _start_time(raw)
        ts = st if ts is None else pc.coalesce(ts, st)
        present = _present(raw) if present is None else pc.or_(present, _present(raw))
    if ts is not None:
        out["timestamp"] = ts
        failed += int(pc.sum(pc.and_(present, pc.is_null(ts))).as_py() or 0)
    if failed:
        ctx.conversion_failed(failed)
    return out


def _batch(names: Sequence[str], cols: Sequence[pa.Array], line_numbers: np.ndarray, ctx) -> pa.RecordBatch:
    n = len(line_numbers)
    originals = dict(zip(F.unique_names(names), cols, strict=True))
    # canonical conversion uses the first column of each name
    first: dict[str, pa.Array] = {}
    for name, col in zip(names, cols, strict=True):
        first.setdefault(name, col)
    out = canonical(first, n, ctx)
    return make_batch(out, n, ctx.source_file, pa.array(line_numbers, pa.int64()), originals, on_failed=ctx.conversion_failed)


# --- TSV ---------------------------------------------------------------------------------


def field_option(value: Any) -> tuple[str, ...] | None:
    """The ``fields`` reader option: a list of names or a comma/tab-separated string."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in PRESETS:
        return PRESETS[value.strip().lower()]
    if isinstance(value, str):
        names = [v.strip() for v in re.split(r"[,\t]", value)]
    elif isinstance(value, Sequence):
        names = [str(v).strip() for v in value]
    else:
        raise ConfigError(f"reader option 'fields' must be a list of field names, not {type(value).__name__}")
    names = [v for v in names if v]
    if not names:
        raise ConfigError("reader option 'fields' is empty; give the field names in file order")
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise ConfigError(f"reader option 'fields' names {', '.join(dup)} more than once")
    return tuple(names)


def _header_tokens(text: str) -> list[str] | None:
    toks = text.split("\t")
    if len(toks) >= 2 and all(t.strip() in KNOWN_FIELDS for t in toks):
        return [t.strip() for t in toks]
    return None


_NAME_FIRST_BYTES = np.array(sorted({ord(f[0]) for f in KNOWN_FIELDS}), dtype=np.uint8)


def read_tsv(chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    explicit = field_option(ctx.options.get("fields"))
    layout: tuple[str, ...] | None = explicit
    for chunk in chunks:
        blank = chunk.blank_mask()
        ctx.stats.blank += int(blank.sum())
        data = ~blank
        # header lines (an export with a header): only lines starting like a field name
        cand = np.flatnonzero(data & np.isin(chunk.first_bytes(), _NAME_FIRST_BYTES))
        headers: list[tuple[int, list[str]]] = []
        if len(cand):
            texts = to_str(chunk.slices(cand))
            maybe = pc.match_substring_regex(texts, r"^[A-Za-z][A-Za-z\-]*\t[A-Za-z][A-Za-z\-]*(\t|$)")
            for i in cand[np.asarray(pc.fill_null(maybe, False))].tolist():
                toks = _header_tokens(chunk.text(i))
                if toks is not None:
                    headers.append((i, toks))
        ctx.stats.directives += len(headers)
        lo = 0
        for h, toks in [*headers, (len(chunk), None)]:
            if h > lo:
                idx = np.flatnonzero(data[lo:h]) + lo
                if len(idx):
                    yield from _tsv_segment(chunk, idx, layout, ctx)
            if toks is not None:
                layout = tuple(toks)
            lo = h + 1


def _tsv_segment(chunk: LineChunk, idx: np.ndarray, layout: tuple[str, ...] | None, ctx):
    names = layout if layout is not None else CDN_FIELDS
    good, cols, rest = split_regular(chunk, idx, TAB, len(names), forbid=(), allow_empty=True)
    if len(good):
        yield _batch(names, [to_str(c) for c in cols], chunk.line_numbers(good), ctx)
    if not len(rest):
        return
    want = len(names)

    def reason(i: int) -> str:
        got = chunk.line(i).count(b"\t") + 1
        return f"{got} tab-separated fields, expected {want}" + (
            "" if layout is not None else " (give the field order with the reader option 'fields')"
        )

    ctx.bad_lines(chunk, rest, reason)


_ST_PY = re.compile(_START_TIME_RE)
_EPOCH_PY = re.compile(r"^1\d{12}$")
_URIISH = re.compile(r"^(-|/|[A-Za-z][A-Za-z0-9+.\-]*://)")
_FILE_NAME = re.compile(r"^\d{8}-\d{6}\.[^/]+\.\d+\.log(\.gz)?$")


def _name_hint(head: Head) -> float:
    return 0.02 if _FILE_NAME.match(head.name or "") else 0.0


#: what a line needs to count in :func:`sniff_tsv` besides a tab: a field name first (a
#: header), or a token that is a startTime or an epoch in ms; searched for in the head's
#: whole text at once (a superset of each, led by a character the search finds fast)
_HEADER_START = re.compile(r"\n\s*[A-Za-z]")
_START_TIME_LIKE = re.compile(r"-\d{2} \d{2}:\d{2}:\d{2}")
_EPOCH_LIKE = re.compile(r"1\d{12}")


def sniff_tsv(head: Head) -> float:
    lines = head.lines[:64]
    if not lines:
        return 0.0
    text = head.text
    if "\t" not in text or not any(rx.search(text) for rx in (_HEADER_START, _START_TIME_LIKE, _EPOCH_LIKE)):
        return 0.0  # no line is a header or a transaction, loose or full
    full = loose = hdr = 0
    for ln in lines:
        if "\t" not in ln:
            continue
        toks = ln.split("\t")
        if _header_tokens(ln) is not None and len(toks) >= 3:
            hdr += 1
            continue
        if (
            len(toks) == len(CDN_FIELDS)
            and _ST_PY.match(toks[0])
            and _EPOCH_PY.match(toks[1])
            and re.match(r"^(\d{3}|-)$", toks[10])
            and _URIISH.match(toks[-1])
        ):
            full += 1
        elif len(toks) >= 3 and (any(_ST_PY.match(t) for t in toks) or any(_EPOCH_PY.match(t) for t in toks)):
            loose += 1
    data = len(lines) - hdr
    if data <= 0:
        return 0.9 if hdr else 0.0
    good = (full + loose) / data
    if full / data >= 0.8:
        return 0.95 + _name_hint(head)
    if hdr and good >= 0.8:
        return 0.93 + _name_hint(head)
    if full and good >= 0.5:  # full documented lines among damaged ones
        return 0.85 + _name_hint(head)
    if good >= 0.8:
        return 0.6 + _name_hint(head)
    return 0.0


# --- JSON lines --------------------------------------------------------------------------


def _raw(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return json.dumps(v)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def read_json(chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    for chunk in chunks:
        blank = chunk.blank_mask()
        ctx.stats.blank += int(blank.sum())
        rows: list[dict[str, Any]] = []
        lines: list[int] = []
        fixed = 0
        for i in np.flatnonzero(~blank).tolist():
            text = chunk.text(i)
            try:
                obj, n = _json.loads(text)  # (lone surrogates -> U+FFFD, counted)
            except (ValueError, RecursionError) as e:
                ctx.bad(chunk.first_line + i, chunk.line(i), f"not valid JSON: {str(e)[:120]}")
                continue
            if not isinstance(obj, dict):
                ctx.bad(chunk.first_line + i, chunk.line(i), f"a JSON {type(obj).__name__}, not an object")
                continue
            if not any(k in KNOWN_FIELDS for k in obj):
                ctx.bad(chunk.first_line + i, chunk.line(i), "JSON object without any CDN transaction-log field")
                continue
            rows.append(obj)
            lines.append(i)
            fixed += n
        if fixed:
            ctx.conversion_failed(fixed)
        if not rows:
            continue
        keys: dict[str, None] = {}
        for obj in rows:
            for k in obj:
                keys.setdefault(k, None)
        known = [k for k in CDN_FIELDS if k in keys] + [k for k in CDN_FIELDS_SP if k in keys and k not in CDN_FIELDS]
        names = known + [k for k in keys if k not in KNOWN_FIELDS]
        cols = [pa.array([_raw(obj.get(k)) for obj in rows], pa.string()) for k in names]
        yield _batch(names, cols, chunk.line_numbers(np.array(lines, dtype=np.int64)), ctx)


def sniff_json(head: Head) -> float:
    lines = head.lines[:32]
    if not lines:
        return 0.0
    hits = 0
    for ln in lines:
        s = ln.strip()
        if not s.startswith("{"):
            continue
        try:
            obj = json.loads(s)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        known = sum(1 for k in obj if k in KNOWN_FIELDS)
        distinct = sum(1 for k in obj if k in DISTINCT_KEYS)
        if known >= 3 and distinct >= 1:
            hits += 1
    ratio = hits / len(lines)
    if ratio >= 0.8:
        return 0.98
    if ratio >= 0.5:
        return 0.7
    return 0.0


READERS = {
    "cdn-tsv": Reader(
        "cdn-tsv",
        "CDN transaction logs (Qwilt-style), headerless TSV in the documented or a given field order",
        sniff_tsv,
        read_tsv,
        options=("fields",),
    ),
    "cdn-json": Reader(
        "cdn-json",
        "CDN transaction logs (Qwilt-style), JSON lines",
        sniff_json,
        read_json,
    ),
}
