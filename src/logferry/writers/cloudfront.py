"""Amazon CloudFront standard log writer (``--to cloudfront``).

``#Version: 1.0`` and ``#Fields:`` (names separated by spaces), then one tab-separated
row per request.  CloudFront input keeps its field list (12..33 fields) and raw values;
other input is written with the current 33 fields, values URL-encoded the way today's
documentation describes (single encoding: ASCII 0-32, 127 and above and
``<>"#%{}|\\^~[]`'`` as ``%XX``), ``-`` for missing, ``time-taken`` /
``time-to-first-byte`` in seconds with millisecond precision.  File names:
:func:`logferry.writers.naming.cloudfront_name`.
"""

from __future__ import annotations

from urllib.parse import quote

import pyarrow as pa

from ..formats import _fields as F
from ..formats.cloudfront import WEB_FIELDS
from . import _text as T

CF_FIELDS: tuple[str, ...] = WEB_FIELDS

_SAFE = "".join(
    chr(c) for c in range(33, 127) if chr(c) not in '<>"#%{}|\\^~[]`\''
)


def cf_encode(v: str | None) -> str | None:
    """One value encoded as CloudFront writes it today (single percent-encoding)."""
    if v is None:
        return None
    # quote() never encodes the unreserved "~"; CloudFront's table does
    return quote(v, safe=_SAFE, encoding="utf-8").replace("~", "%7E")


def encoded(name: str) -> T.Encoder:
    def enc(b: pa.RecordBatch) -> pa.Array:
        return F.on_distinct(b.column(name).cast(pa.string()), cf_encode)

    return enc


def _minimal(name: str) -> T.Encoder:
    # path and query are kept as written by the CloudFront reader (not decoded), so only
    # what would break the row is encoded here; decoded values then read back unchanged
    return lambda b: T.replace_chars(b.column(name).cast(pa.string()), [("\t", "%09"), (" ", "%20"), ("\n", "%0A")])


_query = _minimal("query")


CF_ENCODERS: dict[str, T.Encoder] = {
    "date": T.strftime("%Y-%m-%d"),
    "time": T.strftime("%H:%M:%S"),
    "x-edge-location": T.text("edge_location"),
    "sc-bytes": T.integer("bytes_sent"),
    "c-ip": T.text("client_ip"),
    "cs-method": T.text("method"),
    "cs(Host)": encoded("host"),
    "cs-uri-stem": _minimal("path"),
    "sc-status": T.integer("status"),
    "cs(Referer)": encoded("referer"),
    "cs(User-Agent)": encoded("user_agent"),
    "cs-uri-query": _query,
    "x-edge-result-type": T.text("cache_status"),
    "x-edge-request-id": T.text("request_id"),
    "x-host-header": encoded("host"),
    "cs-bytes": T.integer("bytes_received"),
    "time-taken": T.seconds3("duration_ms"),
    "cs-protocol-version": T.text("protocol"),
    "c-port": T.integer("client_port"),
    "time-to-first-byte": T.seconds3("ttfb_ms"),
}


class CloudFrontWriter(T.FieldWriter):
    name = "cloudfront"
    same_sources = frozenset({"cloudfront"})
    default_fields = CF_FIELDS
    encoders = CF_ENCODERS
    sep = "\t"
    extension = ".gz"

    @classmethod
    def field_names(cls) -> list[str]:
        return list(CF_FIELDS)

    def looks_same(self, names: list[str]) -> bool:
        return "x-edge-location" in names and all(n in CF_FIELDS or n.startswith("x-extra") for n in names)

    def output_fields(self, raw):
        if not self.fields and raw is not None:
            # fields the reader added beyond the known ones are not CloudFront's
            return [n for n in raw if n in CF_FIELDS or n.startswith("x-extra")]
        return super().output_fields(raw)

    def header(self, fields: list[str]) -> str:
        names = [f for f in fields if not f.startswith("x-extra")]
        return f"#Version: 1.0\n#Fields: {' '.join(names)}\n"
