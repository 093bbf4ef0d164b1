"""CDN transaction log writers (``--to cdn-tsv``, ``--to cdn-json``), Qwilt style.

Fields are written in the documented order (:data:`logferry.formats.cdn.CDN_FIELDS`);
``--fields`` chooses a subset, which is still written in the documented order.  TSV has
no header; JSON lines have one object per transaction with the field names as keys
(numbers as JSON numbers, ``"-"`` for missing values, as the documented example).
Output is meant to be gzip-compressed and named
:func:`logferry.writers.naming.cdn_name` (``<YYYYMMDD-HHmmSS>.<service>.<uid>.log.gz``).
CDN input keeps its raw values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ..formats.cdn import CDN_FIELDS, CDN_FIELDS_SP
from . import _text as T
from . import _vec as V

ALL_FIELDS: tuple[str, ...] = tuple(dict.fromkeys([*CDN_FIELDS, *CDN_FIELDS_SP]))
NUMERIC = frozenset({
    "startTimeEpochMilli", "durationMilli", "clientPort", "serverPort", "sentBytes",
    "httpResponseCode", "deliveryHopCount", "deliveryChainLength", "TTFB", "ClientASN",
    "NumSliceSubTrx", "NumSliceMisses",
})  # fmt: skip
_INT = r"^-?\d{1,18}$"
_INT_PY = re.compile(r"-?[0-9]{1,18}")


def _epoch_ms(b: pa.RecordBatch) -> pa.Array:
    return pc.divide(b.column("timestamp").cast(pa.int64()), 1000).cast(pa.string())


def _start_time(b: pa.RecordBatch) -> pa.Array:
    ts = b.column("timestamp")
    fmt = "%d-%m-%y %H:%M:%S"
    pieces = V.time_pieces(ts, fmt) or [T.strftime(fmt)(b)]
    return V.join_pieces([*pieces, ".", V.millis3(ts)], b.num_rows)


def _http_version(b: pa.RecordBatch) -> pa.Array:
    p = b.column("protocol").cast(pa.string())
    same = V.constant(p)
    if same is not None:  # one protocol in the whole batch, as usual
        return pa.repeat(pa.scalar(same[5:] if same.startswith("HTTP/") else same), len(p))
    return pc.if_else(pc.starts_with(p, "HTTP/"), pc.utf8_slice_codeunits(p, 5), p)


def _uri(b: pa.RecordBatch) -> pa.Array:
    host, path, query = (b.column(n).cast(pa.string()) for n in ("host", "path", "query"))
    if not host.null_count and not path.null_count and not query.null_count:
        return V.join_pieces(["http://", host, path, "?", query], len(host))
    base = pc.if_else(
        pc.is_valid(host),
        pc.binary_join_element_wise("http://", host, pc.fill_null(path, "/"), ""),
        path,
    )
    return pc.if_else(pc.is_valid(query), pc.binary_join_element_wise(base, query, "?"), base)


def _tsv_safe(name: str) -> T.Encoder:
    return lambda b: T.replace_chars(b.column(name).cast(pa.string()), [("\t", " "), ("\n", " "), ("\r", " ")])


CDN_ENCODERS: dict[str, T.Encoder] = {
    "startTime": _start_time,
    "startTimeEpochMilli": _epoch_ms,
    "durationMilli": T.rounded_int("duration_ms"),
    "siteName": T.text("site"),
    "clientIp": T.text("client_ip"),
    "clientPort": T.integer("client_port"),
    "serverIp": T.text("server_ip"),
    "serverPort": T.integer("server_port"),
    "sentBytes": T.integer("bytes_sent"),
    "httpResponseCode": T.integer("status"),
    "userAgent": _tsv_safe("user_agent"),
    "referer": _tsv_safe("referer"),
    "httpMethod": lambda b: pc.utf8_lower(b.column("method")),
    "fetchedBytes": T.integer("bytes_received"),
    "httpVersion": _http_version,
    "CacheStatus": T.text("cache_status"),
    "transactionChainId": T.text("request_id"),
    "TTFB": T.rounded_int("ttfb_ms"),
    "edgeLocation": T.text("edge_location"),
    "uri": _uri,
}


class CdnTsvWriter(T.FieldWriter):
    name = "cdn-tsv"
    same_sources = frozenset({"cdn-tsv", "cdn-json"})
    default_fields = CDN_FIELDS
    encoders = CDN_ENCODERS
    sep = "\t"
    extension = ".log"

    def __init__(self, out: BinaryIO, *, fields: Sequence[str] | None = None, **kw):
        if fields:
            order = {n: i for i, n in enumerate(ALL_FIELDS)}
            fields = sorted(fields, key=lambda n: order.get(n, len(order)))
        super().__init__(out, fields=fields, **kw)

    @classmethod
    def field_names(cls) -> list[str]:
        return list(ALL_FIELDS)

    def looks_same(self, names: list[str]) -> bool:
        return all(n in ALL_FIELDS for n in names)

    def output_fields(self, raw):
        if not self.fields and raw is not None:
            return [n for n in raw if n in ALL_FIELDS]
        return super().output_fields(raw)

    def value(self, name, batch, raw):
        v = super().value(name, batch, raw)
        if raw is not None and name in raw and self.name == "cdn-tsv" and self.source_format == "cdn-json":
            v = T.replace_chars(v, [("\t", " ")])
        return v


class CdnJsonWriter(CdnTsvWriter):
    name = "cdn-json"

    def pieces(self, values: list[T.Value]) -> list[T.Value]:
        parts: list[T.Value] = ["{"]
        for k, (f, v) in enumerate(zip(self._fields, values, strict=True)):
            s = T.json_string(v)
            if f in NUMERIC:
                if isinstance(v, str):
                    s = v if _INT_PY.fullmatch(v) else s
                else:
                    s = pc.if_else(pc.match_substring_regex(v, _INT), v, s)
            parts += [("," if k else "") + T.json_string(f) + ":", s]
        parts.append("}")
        return parts

    def output_fields(self, raw):
        self._fields = super().output_fields(raw)
        return self._fields

    def close(self) -> None:
        pass
