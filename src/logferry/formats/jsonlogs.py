"""JSON access logs, one object per line: nginx ``log_format ... escape=json``, Traefik,
Caddy and Cloudflare (Logpush / Logpull).

Each dialect is a table of canonical column -> candidate key paths and a converter kind
(:data:`DIALECTS`); the first path present in a row wins.  Lines that are not JSON, or
JSON that is not an object, are bad rows.  Every top-level key is kept under ``fields``
as its JSON text (compact re-serialisation: ``"200"`` and ``200`` stay distinguishable),
so nothing is lost.

An entry that is not an access record -- Caddy's other loggers (``http.handlers.reverse_proxy``
debug entries, ...), or an object without any of the dialect's request keys (a server's
own JSON messages) -- is *skipped*: counted with the directives, neither a record nor a
bad row.  A lone surrogate escape (``"\udfff"``) becomes U+FFFD and counts as a
conversion error; the row is kept.

Parsing is one ``json.loads`` per line (JSON logs are not the bulk formats); the columns
are then built and converted with Arrow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import LineChunk, decode
from ..schema import TS, make_batch
from . import Head, Reader, _json
from . import _fields as F
from .clf import clf_time, first_addr, iso_time, split_request

Path = tuple[str, ...]


@dataclass(frozen=True)
class Dialect:
    name: str
    description: str
    #: canonical column -> ((path, ...), kind)
    columns: dict[str, tuple[tuple[Path, ...], str]]
    #: sniffing: every key path here must be present ...
    required: tuple[Path, ...]
    #: ... and at least ``min_hits`` of these
    hints: tuple[Path, ...] = ()
    min_hits: int = 0
    confidence: float = 0.95
    #: a key naming the logger of the entry and the access logger's name: an entry whose
    #: logger is another one (or a child of another one) is not an access record
    logger: tuple[Path, str] | None = None

    @property
    def request_paths(self) -> tuple[Path, ...]:
        """Key paths of which an access record has at least one (else it is skipped)."""
        return tuple(p for c in _REQUEST_COLUMNS if c in self.columns for p in self.columns[c][0])

    def is_access(self, o: dict) -> bool:
        if self.logger is not None:
            name = _get(o, self.logger[0])
            want = self.logger[1]
            if isinstance(name, str) and name != want and not name.startswith(want + "."):
                return False
        return any(_get(o, p) is not None for p in self.request_paths)


#: canonical columns that only a request has
_REQUEST_COLUMNS = ("method", "path", "request", "status")


def _p(*paths: str) -> tuple[Path, ...]:
    return tuple(tuple(p.split(".")) for p in paths)


#: kinds: str, int, ip (first of an X-Forwarded-For list), ts (ISO / CLF / epoch by
#: magnitude), s/ms/us/ns (durations -> ms), uri (path?query -> path + query),
#: request ("GET /p HTTP/1.1"), diff_ms (end - start timestamps, second path minus first)
DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            "nginx-json",
            "nginx log_format with escape=json (and Matomo's nginx_json layout); non-request entries skipped",
            {
                "timestamp": (_p("time_iso8601", "date", "time_local", "msec", "timestamp", "time"), "ts"),
                "client_ip": (_p("remote_addr", "ip", "client_ip", "realip_remote_addr"), "ip"),
                "client_port": (_p("remote_port"), "int"),
                "server_ip": (_p("server_addr"), "str"),
                "server_port": (_p("server_port"), "int"),
                "site": (_p("server_name"), "str"),
                "host": (_p("host", "http_host"), "str"),
                "method": (_p("request_method", "method"), "str"),
                "path": (_p("request_uri", "path", "uri"), "uri"),
                "query": (_p("args", "query_string"), "str"),
                "request": (_p("request"), "request"),
                "protocol": (_p("server_protocol", "protocol"), "str"),
                "status": (_p("status"), "int"),
                "bytes_sent": (_p("body_bytes_sent", "length", "bytes_sent"), "int"),
                "bytes_received": (_p("request_length"), "int"),
                "duration_ms": (_p("generation_time_milli", "request_time"), "per_key"),
                "ttfb_ms": (_p("upstream_header_time"), "s"),
                "user_agent": (_p("http_user_agent", "user_agent"), "str"),
                "referer": (_p("http_referer", "referrer", "referer"), "str"),
                "username": (_p("remote_user"), "str"),
                "cache_status": (_p("upstream_cache_status"), "str"),
                "request_id": (_p("request_id"), "str"),
            },
            required=(),
            hints=_p(
                "remote_addr", "ip", "time_iso8601", "time_local", "date", "request", "path",
                "request_uri", "status", "body_bytes_sent", "length", "http_user_agent", "user_agent",
                "http_referer", "referrer", "request_time", "generation_time_milli",
            ),
            min_hits=4,
            confidence=0.9,
        ),
        Dialect(
            "traefik-json",
            "Traefik access log, JSON format",
            {
                "timestamp": (_p("StartUTC", "StartLocal", "time"), "ts"),
                "client_ip": (_p("ClientHost", "ClientAddr"), "ip"),
                "client_port": (_p("ClientPort"), "int"),
                "host": (_p("RequestHost"), "str"),
                "site": (_p("RouterName"), "str"),
                "method": (_p("RequestMethod"), "str"),
                "path": (_p("RequestPath"), "uri"),
                "protocol": (_p("RequestProtocol"), "str"),
                "status": (_p("DownstreamStatus", "OriginStatus"), "int"),
                "bytes_sent": (_p("DownstreamContentSize"), "int"),
                "bytes_received": (_p("RequestContentSize"), "int"),
                "duration_ms": (_p("Duration"), "ns"),
                "user_agent": (_p("request_User-Agent"), "str"),
                "referer": (_p("request_Referer"), "str"),
                "username": (_p("ClientUsername"), "str"),
                "request_id": (_p("request_X-Request-Id"), "str"),
            },
            required=_p("ClientAddr", "RequestMethod"),
            hints=_p("DownstreamStatus", "Duration", "StartUTC", "RequestPath", "RouterName"),
            min_hits=2,
            confidence=0.97,
        ),
        Dialect(
            "caddy-json",
            "Caddy v2 access log (http.log.access), JSON encoder; other loggers' entries skipped",
            {
                "timestamp": (_p("ts"), "ts"),
                "client_ip": (_p("request.client_ip", "request.remote_ip", "request.remote_addr"), "ip"),
                "client_port": (_p("request.remote_port"), "int"),
                "host": (_p("request.host"), "str"),
                "method": (_p("request.method"), "str"),
                "path": (_p("request.uri"), "uri"),
                "protocol": (_p("request.proto"), "str"),
                "status": (_p("status"), "int"),
                "bytes_sent": (_p("size"), "int"),
                "bytes_received": (_p("bytes_read"), "int"),
                "duration_ms": (_p("duration"), "s"),
                "user_agent": (_p("request.headers.User-Agent"), "str"),
                "referer": (_p("request.headers.Referer"), "str"),
                "username": (_p("user_id"), "str"),
            },
            required=_p("request.method", "request.uri"),
            hints=_p("ts", "logger", "status", "duration", "size"),
            min_hits=3,
            confidence=0.97,
            logger=(("logger",), "http.log.access"),
        ),
        Dialect(
            "cloudflare-json",
            "Cloudflare HTTP requests log (Logpush / Logpull), JSON lines",
            {
                "timestamp": (_p("EdgeStartTimestamp"), "ts"),
                "client_ip": (_p("ClientIP"), "ip"),
                "client_port": (_p("ClientSrcPort"), "int"),
                "server_ip": (_p("OriginIP"), "str"),
                "host": (_p("ClientRequestHost"), "str"),
                "method": (_p("ClientRequestMethod"), "str"),
                "path": (_p("ClientRequestURI", "ClientRequestPath"), "uri"),
                "protocol": (_p("ClientRequestProtocol"), "str"),
                "status": (_p("EdgeResponseStatus"), "int"),
                "bytes_sent": (_p("EdgeResponseBytes"), "int"),
                "bytes_received": (_p("ClientRequestBytes"), "int"),
                "duration_ms": (_p("EdgeStartTimestamp", "EdgeEndTimestamp"), "diff_ms"),
                "ttfb_ms": (_p("EdgeTimeToFirstByteMs"), "ms"),
                "user_agent": (_p("ClientRequestUserAgent"), "str"),
                "referer": (_p("ClientRequestReferer"), "str"),
                "cache_status": (_p("CacheCacheStatus"), "str"),
                "edge_location": (_p("EdgeColoCode"), "str"),
                "request_id": (_p("RayID"), "str"),
            },
            required=_p("ClientIP", "ClientRequestMethod"),
            hints=_p("EdgeStartTimestamp", "RayID", "EdgeResponseStatus", "ClientRequestURI", "ClientRequestHost"),
            min_hits=2,
            confidence=0.97,
        ),
    )
}

#: per-key units where one column has several candidate keys (``per_key`` kind)
KEY_UNITS = {"generation_time_milli": "ms", "request_time": "s"}


# --- value access --------------------------------------------------------------------------


def _get(obj: Any, path: Path) -> Any:
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def _text(v: Any) -> str | None:
    """A JSON value as column text: strings as-is, lists -> first element, rest -> JSON."""
    if v is None:
        return None
    if isinstance(v, list):
        return _text(v[0]) if v else None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _first(objs: list[dict], paths: tuple[Path, ...]) -> tuple[list[Any], list[int]]:
    """Values of the first present path per row, and which path it was (-1 = none)."""
    vals: list[Any] = []
    which: list[int] = []
    for o in objs:
        for i, p in enumerate(paths):
            v = _get(o, p)
            if v is not None:
                vals.append(v)
                which.append(i)
                break
        else:
            vals.append(None)
            which.append(-1)
    return vals, which


def to_timestamp(vals: list[Any]) -> pa.Array:
    """ISO-8601 / RFC 3339 text, CLF ``10/Oct/2000:13:55:36 -0700`` or epoch numbers.

    Epoch numbers (or numeric strings) are read as s, ms, us or ns by magnitude.
    """
    n = len(vals)
    text = pa.array([_text(v) for v in vals], pa.string())
    num = F.to_float(text)
    out = pa.nulls(n, TS)
    is_num = pc.is_valid(num)
    if pc.any(is_num).as_py():
        f = np.asarray(num.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
        mag = np.abs(f)
        us = np.where(mag >= 1e17, f / 1000, np.where(mag >= 1e14, f, np.where(mag >= 1e11, f * 1e3, f * 1e6)))
        valid = np.asarray(is_num.to_numpy(zero_copy_only=False), dtype=bool)
        us = np.where(valid & (np.abs(us) < 9.2e18), us, 0)
        ints = pa.array(np.round(us).astype(np.int64), mask=~valid)
        out = pc.if_else(is_num, ints.cast(pa.timestamp("us")).cast(TS), out)
    rest = pc.and_(pc.is_valid(text), pc.invert(is_num))
    if pc.any(rest).as_py():
        clf = pc.match_substring_regex(text, r"^\[?\d\d/[A-Za-z]{3}/\d{4}:")
        out = pc.if_else(pc.and_(rest, clf), clf_time(text), out)
        iso = pc.and_(rest, pc.invert(clf))
        if pc.any(iso).as_py():
            only = pc.if_else(iso, text, pa.scalar(None, pa.string()))
            out = pc.if_else(iso, iso_time(only), out)
    return out


def _duration(vals: list[Any], unit: str) -> pa.Array:
    f = F.to_float(pa.array([_text(v) for v in vals], pa.string()))
    factor = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}[unit]
    return pc.multiply(f, factor)


def build_columns(d: Dialect, objs: list[dict], ctx) -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}
    failed = 0
    request_parts: dict[str, pa.Array] | None = None
    for target, (paths, kind) in d.columns.items():
        if kind == "diff_ms":
            start = to_timestamp([_get(o, paths[0]) for o in objs])
            end = to_timestamp([_get(o, paths[1]) for o in objs])
            # (a difference beyond 2**53 us is nonsense, but must not stop the read: the
            # float cast may round it)
            ms = pc.divide(pc.subtract(end, start).cast(pa.int64()).cast(pa.float64(), safe=False), 1000.0)
            out[target] = ms
            continue
        vals, which = _first(objs, paths)
        if all(w < 0 for w in which):
            continue
        if kind == "ts":
            v = to_timestamp(vals)
            raw = pa.array([_text(x) for x in vals], pa.string())
            failed += F.count_failed(F.empty_null(raw), v)
            out[target] = v
            continue
        if kind in ("s", "ms", "us", "ns"):
            out[target] = _duration(vals, kind)
            continue
        if kind == "per_key":
            parts = []
            for i, p in enumerate(paths):
                unit = KEY_UNITS[p[-1]]
                parts.append(_duration([v if w == i else None for v, w in zip(vals, which, strict=True)], unit))
            col = parts[0]
            for p in parts[1:]:
                col = pc.coalesce(col, p)
            out[target] = col
            continue
        text = F.empty_null(F.dash_null(pa.array([_text(x) for x in vals], pa.string())))
        if kind == "str":
            out[target] = text
        elif kind == "ip":
            out[target] = first_addr(text)
            if target == "client_ip":  # "ip:port" (Traefik ClientAddr fallback)
                m = pc.extract_regex(out[target], r"^(?P<ip>\d+\.\d+\.\d+\.\d+):\d+$")
                out[target] = pc.if_else(pc.is_valid(m), pc.struct_field(m, "ip"), out[target])
        elif kind == "int":
            v = F.to_int(text)
            failed += F.count_failed(text, v)
            out[target] = v
        elif kind == "uri":
            parts = split_request(pc.binary_join_element_wise("GET", text, "HTTP/1.1", " "))
            out["path"] = pc.if_else(pc.is_valid(parts["path"]), parts["path"], text)
            out.setdefault("query", parts["query"])
        elif kind == "request":
            request_parts = split_request(text)
        else:  # pragma: no cover - table typo
            raise AssertionError(kind)
    if request_parts is not None:  # "$request" fills what the separate keys did not
        for k in ("method", "path", "query", "protocol"):
            out[k] = pc.coalesce(out[k], request_parts[k]) if k in out else request_parts[k]
    if failed:
        ctx.conversion_failed(failed)
    return out


def originals(objs: list[dict]) -> dict[str, pa.Array]:
    """Every top-level key (first-seen order) -> its value as JSON text (null if absent)."""
    keys: dict[str, None] = {}
    for o in objs:
        for k in o:
            keys.setdefault(k, None)
    cols = {}
    for k in keys:
        cols[k] = pa.array(
            [
                json.dumps(o[k], ensure_ascii=False, separators=(",", ":")) if k in o else None
                for o in objs
            ],
            pa.string(),
        )
    return cols


# --- reading -------------------------------------------------------------------------------


def parse_objects(chunk: LineChunk, ctx, d: Dialect | None = None) -> tuple[list[int], list[dict]]:
    """``json.loads`` every data line; non-objects become bad rows, entries that are not
    access records of dialect ``d`` are skipped.  Blank lines counted."""
    idx: list[int] = []
    objs: list[dict] = []
    fixed = skipped = 0
    for i in range(len(chunk)):
        raw = chunk.line(i)
        if not raw.strip():
            ctx.stats.blank += 1
            continue
        try:
            o, n = _json.loads(decode(raw))
        except (ValueError, RecursionError) as e:
            ctx.bad(chunk.first_line + i, raw, f"not JSON: {e}")
            continue
        if not isinstance(o, dict):
            ctx.bad(chunk.first_line + i, raw, f"JSON {type(o).__name__}, not an object")
            continue
        if d is not None and not d.is_access(o):
            skipped += 1
            continue
        fixed += n
        idx.append(i)
        objs.append(o)
    if fixed:
        ctx.conversion_failed(fixed)
    if skipped:
        ctx.skip(skipped)
    return idx, objs


def read_dialect(d: Dialect, chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    for chunk in chunks:
        idx, objs = parse_objects(chunk, ctx, d)
        if not objs:
            continue
        cols = build_columns(d, objs, ctx)
        lines = pa.array(chunk.line_numbers(np.array(idx, dtype=np.int64)))
        yield make_batch(cols, len(objs), ctx.source_file, lines, originals(objs), on_failed=ctx.conversion_failed)


# --- detection -----------------------------------------------------------------------------


def head_objects(head: Head) -> tuple[tuple[dict, ...], int]:
    """JSON objects among the head's lines, and how many lines there were (parsed once
    per head: every JSON dialect, and the jsonl reader, sniffs them)."""

    def parse() -> tuple[tuple[dict, ...], int]:
        objs = []
        for ln in head.lines:
            try:
                o = json.loads(ln)
            except ValueError:
                continue
            if isinstance(o, dict):
                objs.append(o)
        return tuple(objs), len(head.lines)

    return head.shared("json.objects", parse)


def sniff_dialect(d: Dialect, head: Head) -> float:
    if not head.lines or not head.lines[0].lstrip().startswith("{"):
        return 0.0
    objs, n = head_objects(head)
    if not objs:
        return 0.0
    ok = 0
    for o in objs:
        if any(_get(o, p) is None for p in d.required):
            continue
        if sum(1 for p in d.hints if _get(o, p) is not None) >= d.min_hits:
            ok += 1
    return d.confidence * ok / n


def _reader(d: Dialect) -> Reader:
    def sniff(head: Head) -> float:
        return sniff_dialect(d, head)

    def read(chunks, ctx):
        return read_dialect(d, chunks, ctx)

    return Reader(d.name, d.description, sniff, read)


READERS = {name: _reader(d) for name, d in DIALECTS.items()}
