"""Apache/Nginx common and combined logs and the other one-line-per-request text formats
shaped like them (vhost variants, OVH, Gandi, S3 server access, ELB/ALB, HAProxy).

Format knowledge is data: :data:`LAYOUTS` maps each format name to its variants, each an
RE2 regular expression with named groups plus the weight a match of that variant carries
when sniffing (the first variant is the format's own shape; later ones are tolerated
fallbacks, e.g. a ``common`` line inside a ``combined`` file).  Every group captures the
token exactly as written (quotes and brackets kept); those tokens become the ``fields``
struct, and :data:`LAYOUTS`' ``columns`` say how they map to canonical columns.

Lines are parsed vectorised with ``pyarrow.compute.extract_regex`` over a whole chunk;
lines that match none of the file format's variants are bad rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import LineChunk, to_str
from ..schema import TS, make_batch
from . import Head, Reader
from . import _fields as F
from ._parallel import ordered_map
from ._segments import line_kinds
from ._split import _is_text, take_columns

# --- regex building blocks (RE2 syntax; also valid Python ``re``) -------------------------
_Q = r'"(?:[^"\\]|\\.)*"'  # a double-quoted token with backslash escapes
HOST = r'(?P<remote_host>[^\s"\[]+(?:, [^\s"\[]+)*)'  # an address, or an X-Forwarded-For list
ANY_HOST = r'(?P<remote_host>[^\[]+?)'  # anything before "ident user [" (XFF + address, ...)
VHOST = r'(?P<vhost>[^\s,"\[]+)'
ID_USER = r"(?P<ident>\S+) (?P<remote_user>\S+)"
TIME = r"(?P<time>\[[^\]]*\])"
REQ = rf"(?P<request>{_Q})"
STATUS = r"(?P<status>\d{3}|-)"
BYTES = r"(?P<bytes>\d+|-)"
#: referer and user agent quoted, or a bare ``-`` (nginx/Apache configs that log them unquoted)
REF_UA = rf"(?P<referer>{_Q}|-) (?P<user_agent>{_Q}|-)"
#: the last quoted field cut at the end of the line (closing quote missing): read as
#: written, counted as a conversion issue (see ``qstr``)
_CUT = r'"(?:[^"\\]|\\.)*'
REF_UA_CUT = rf"(?:(?P<referer>{_Q}|-) (?P<user_agent>{_CUT})|(?P<referer_cut>{_CUT}))$"
EXTRA = r"(?: (?P<extra>.*?))?\s*$"  # tolerated trailing fields (icecast duration, nginx "$http_x_forwarded_for")
END = r"\s*$"
COMMON_TAIL = rf"{TIME} {REQ} {STATUS} {BYTES}"

_ELB_CORE = (
    r"(?P<elb>\S+) (?P<client>\S+) (?P<backend>\S+) "
    r"(?P<request_processing_time>\S+) (?P<backend_processing_time>\S+) "
    r"(?P<response_processing_time>\S+) (?P<elb_status_code>\S+) (?P<backend_status_code>\S+) "
    r"(?P<received_bytes>\S+) (?P<sent_bytes>\S+) "
    r'(?P<request>"[^"]*")'
)
_ELB_TLS = rf" (?P<user_agent>{_Q}) (?P<ssl_cipher>\S+) (?P<ssl_protocol>\S+)"
_ALB_TAIL = (
    r' (?P<target_group_arn>\S+) (?P<trace_id>"[^"]*") (?P<domain_name>"[^"]*") '
    r'(?P<chosen_cert_arn>"[^"]*") (?P<matched_rule_priority>\S+) (?P<request_creation_time>\S+) '
    r'(?P<actions_executed>"[^"]*") (?P<redirect_url>"[^"]*") (?P<error_reason>"[^"]*")'
    r'(?: (?P<target_port_list>"[^"]*"))?(?: (?P<target_status_code_list>"[^"]*"))?'
)
_S3 = (
    r"(?P<bucket_owner>\S+) (?P<bucket>\S+) (?P<time>\[[^\]]*\]) (?P<remote_ip>\S+) "
    r"(?P<requester>\S+) (?P<request_id>\S+) (?P<operation>\S+) (?P<key>\S+) "
    rf"(?P<request>{_Q}|-) (?P<http_status>\d{{3}}|-) (?P<error_code>\S+) (?P<bytes_sent>\S+) "
    r"(?P<object_size>\S+) (?P<total_time>\S+) (?P<turn_around_time>\S+) "
    rf"(?P<referer>{_Q}|-) (?P<user_agent>{_Q}|-)"
)
#: syslog prefix: RFC 3164 ``Mmm dd hh:mm:ss`` or RFC 3339 (rsyslog's default on many
#: systems), then host and ``haproxy[pid]:``
_SYSLOG = (
    r"(?:(?P<syslog_time>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) (?P<syslog_host>\S+) "
    r"(?P<process>[^\s:]+): )?"
)
_HAPROXY_HEAD = (
    rf"{_SYSLOG}"
    r"(?P<client>\S+:\d+) (?P<accept_date>\[\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)?\]) "
)
# timers TR/Tw/Tc/Tr/Ta (or Tq/Tw/Tc/Tr/Tt before 1.7); the total carries a leading "+"
# with option logasap (the time until the log was emitted)
_HAPROXY = (
    rf"{_HAPROXY_HEAD}"
    r"(?P<frontend>\S+) (?P<backend_server>[^\s/]+/\S+) (?P<timers>-?\d+(?:/-?\d+){2,3}/\+?-?\d+) "
    r"(?P<status>-?\d+) (?P<bytes>\+?\d+) (?P<captured_request_cookie>\S+) "
    r"(?P<captured_response_cookie>\S+) (?P<termination_state>\S+) (?P<conn_counts>\S+) "
    r"(?P<queues>\S+)(?: (?P<captured_request_headers>\{[^}]*\}))?"
    r"(?: (?P<captured_response_headers>\{[^}]*\}))? "
    r'(?P<request>"[^"]*"?)'
)
#: option tcplog: frontend backend/server Tw/Tc/Tt bytes_read state counts queues
_HAPROXY_TCP = (
    rf"{_HAPROXY_HEAD}"
    r"(?P<frontend>\S+) (?P<backend_server>[^\s/]+/\S+) (?P<timers>-?\d+/-?\d+/\+?-?\d+) "
    r"(?P<bytes>\+?\d+) (?P<termination_state>\S+) (?P<conn_counts>\d+/\d+/\d+/\d+/\+?\d+) "
    r"(?P<queues>\d+/\d+)"
)
#: HAProxy's own messages, which share the log with the requests: connection errors
#: ("client:port [date] frontend/bind: SSL handshake failure") and process events
#: ("Proxy NAME started.", "Server b/s is DOWN, ...") -- skipped, not bad rows
_HAPROXY_MESSAGES = (
    rf"^{_SYSLOG}(?:\S+:\d+ \[[^\]]*\] [^\s/]+/[^\s:]+: .+"
    r"|(?:Proxy|Backend|Frontend|Server) \S+ (?:started|stopped|is (?:UP|DOWN)|has no server available)\b.*"
    r"|Stopping (?:proxy|backend|frontend) .+|Pausing .+|Resuming .+)\s*$"
)

#: canonical columns of the classic and application load balancer logs
_ELB_COLUMNS = {
    "timestamp": ("time", "iso"),
    "site": ("elb", "str"),
    "client_ip": ("client", "addr_port"),
    "server_ip": ("backend", "addr_port"),
    "request": ("request", "request"),
    "status": ("elb_status_code", "int"),
    "bytes_received": ("received_bytes", "int"),
    "bytes_sent": ("sent_bytes", "int"),
    "duration_ms": ("request_processing_time", "elb_total"),
    "user_agent": ("user_agent", "qstr"),
}

#: how a layout's tokens become canonical columns: canonical -> (token, kind)
APACHE_COLS = {
    "client_ip": ("remote_host", "first_addr"),
    "username": ("remote_user", "user"),
    "timestamp": ("time", "clf_time"),
    "request": ("request", "request"),
    "status": ("status", "int"),
    "bytes_sent": ("bytes", "int"),
    "referer": ("referer", "qstr"),
    "user_agent": ("user_agent", "qstr"),
    "site": ("vhost", "str"),
    "host": ("vhost", "str"),
}


@dataclass(frozen=True)
class Variant:
    pattern: str
    weight: float = 1.0  # share of the format's confidence a line matching it earns

    @property
    def regex(self) -> str:
        return "^" + self.pattern


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    specificity: float  # confidence when every sniffed line matches the first variant
    variants: tuple[Variant, ...]
    columns: dict[str, tuple[str, str]] = field(default_factory=lambda: APACHE_COLS)
    options: tuple[str, ...] = ()
    #: fast path: the first variant's plain lines as a token sequence (name, kind, pattern)
    #: kinds: bare (up to the next space), quoted ("..." without backslashes), bracket
    #: ([...]), paren ((...)); ``extra`` -- a trailing " anything" is allowed
    fast: tuple[tuple[str, str, str], ...] = ()
    fast_extra: bool = False
    #: lines that are the server's own messages, not requests: skipped (counted with
    #: the directives), neither records nor bad rows
    skip: str | None = None

    @property
    def fast_regex(self) -> str:
        parts = []
        for _, kind, pat in self.fast:
            parts.append(
                {"bare": f"(?:{pat})", "quoted": r'"[^"\\]*"', "bracket": r"\[[^\]]*\]", "paren": r"\([^)]*\)"}[kind]
            )
        tail = r"(?: .*\S)?" if self.fast_extra else ""
        return "^" + " ".join(parts) + tail + r"\r?\n?$"


_B = r'[^\s"\[,]+'  # a plain address / name token
_COMMON_FAST = (
    ("remote_host", "bare", _B),
    ("ident", "bare", r"\S+"),
    ("remote_user", "bare", r"\S+"),
    ("time", "bracket", ""),
    ("request", "quoted", ""),
    ("status", "bare", r"\d{3}|-"),
    ("bytes", "bare", r"\d+|-"),
)
_COMBINED_FAST = (*_COMMON_FAST, ("referer", "quoted", ""), ("user_agent", "quoted", ""))
_VHOST = (("vhost", "bare", _B),)

V = Variant
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "common",
            'Apache/Nginx common: %h %l %u %t "%r" %>s %b',
            0.80,
            (
                V(rf"{HOST} {ID_USER} {COMMON_TAIL}{END}"),
                V(rf"{ANY_HOST} {ID_USER} {COMMON_TAIL}{END}", 0.6),
            ),
            fast=_COMMON_FAST,
        ),
        Layout(
            "combined",
            'Apache/Nginx combined: common + "%{Referer}i" "%{User-agent}i" (trailing extras kept; '
            "bare - referer/agent; a last quoted field cut at the line end read as written)",
            0.85,
            (
                V(rf"{HOST} {ID_USER} {COMMON_TAIL} {REF_UA}{EXTRA}"),
                V(rf"{ANY_HOST} {ID_USER} {COMMON_TAIL} {REF_UA}{EXTRA}", 0.6),
                V(rf"{HOST} {ID_USER} {COMMON_TAIL}{END}", 0.6),
                V(rf"{ANY_HOST} {ID_USER} {COMMON_TAIL}{END}", 0.5),
                V(rf"{HOST} {ID_USER} {COMMON_TAIL} {REF_UA_CUT}", 0.6),
            ),
            fast=_COMBINED_FAST,
            fast_extra=True,
        ),
        Layout(
            "vhost-common",
            'Apache vhost_common: %v %h %l %u %t "%r" %>s %b',
            0.86,
            (V(rf"{VHOST} {HOST} {ID_USER} {COMMON_TAIL}{END}"),),
            fast=(*_VHOST, *_COMMON_FAST),
        ),
        Layout(
            "vhost-combined",
            'Apache vhost_combined: %v %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
            0.90,
            (
                V(rf"{VHOST} {HOST} {ID_USER} {COMMON_TAIL} {REF_UA}{EXTRA}"),
                V(rf"{VHOST} {HOST} {ID_USER} {COMMON_TAIL}{END}", 0.6),
                V(rf"{VHOST} {HOST} {ID_USER} {COMMON_TAIL} {REF_UA_CUT}", 0.6),
            ),
            fast=(*_VHOST, *_COMBINED_FAST),
            fast_extra=True,
        ),
        Layout(
            "ovh",
            'OVH hosting: %h %v %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
            0.90,
            (
                V(
                    rf"{HOST} (?P<vhost>[A-Za-z0-9.-]*\.[A-Za-z][A-Za-z0-9-]*(?::\d+)?) "
                    rf"(?P<remote_user>\S+) {COMMON_TAIL} {REF_UA}{EXTRA}"
                ),
                V(rf"{HOST} (?P<vhost>\S+) (?P<remote_user>\S+) {COMMON_TAIL} {REF_UA}{EXTRA}", 0.5),
            ),
        ),
        Layout(
            "gandi",
            'Gandi hosting: %v %h %l %u %t (%T s) "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
            0.95,
            (
                V(
                    rf"{VHOST} {HOST} {ID_USER} {TIME} (?P<duration>\(\d+ s\)) {REQ} {STATUS} "
                    rf"{BYTES} {REF_UA}{EXTRA}"
                ),
            ),
            columns={**APACHE_COLS, "duration_ms": ("duration", "paren_seconds")},
        ),
        Layout(
            "s3-access",
            "Amazon S3 server access log",
            0.95,
            (V(rf"{_S3}{EXTRA}"),),
            columns={
                "timestamp": ("time", "clf_time"),
                "client_ip": ("remote_ip", "str"),
                "site": ("bucket", "str"),
                "username": ("requester", "str"),
                "request_id": ("request_id", "str"),
                "request": ("request", "request"),
                "status": ("http_status", "int"),
                "bytes_sent": ("bytes_sent", "int"),
                "duration_ms": ("total_time", "ms"),
                "referer": ("referer", "qstr"),
                "user_agent": ("user_agent", "qstr"),
            },
        ),
        Layout(
            "elb",
            "AWS Classic Load Balancer access log (also without the later user_agent/ssl fields)",
            0.95,
            # (lines written before ELB added user_agent, ssl_cipher and ssl_protocol end
            # with the request)
            (V(rf"(?P<time>\d{{4}}-\d\d-\d\dT\S+) {_ELB_CORE}(?:{_ELB_TLS})?{EXTRA}"),),
            columns=_ELB_COLUMNS,
        ),
        Layout(
            "alb",
            "AWS Application Load Balancer access log (host from the request URL)",
            0.96,
            (V(rf"(?P<type>[a-z0-9]+) (?P<time>\d{{4}}-\d\d-\d\dT\S+) {_ELB_CORE}{_ELB_TLS}{_ALB_TAIL}{EXTRA}"),),
            # host: from the request's URL (the Host header as ALB writes it there);
            # domain_name is the TLS SNI, "-" on plain HTTP (kept in the fields)
            columns={
                **_ELB_COLUMNS,
                "request_id": ("trace_id", "qstr"),
            },
        ),
        Layout(
            "haproxy",
            "HAProxy HTTP/TCP log (option httplog/tcplog), with or without its syslog prefix "
            "(RFC 3164 or RFC 3339); its own messages skipped",
            0.95,
            (V(rf"{_HAPROXY}{EXTRA}"), V(rf"{_HAPROXY_TCP}{END}", 0.9)),
            columns={
                "timestamp": ("accept_date", "haproxy_time"),
                "client_ip": ("client", "addr_port"),
                "site": ("frontend", "str"),
                "request": ("request", "request"),
                "status": ("status", "int"),
                "bytes_sent": ("bytes", "int"),
                "duration_ms": ("timers", "haproxy_total"),
            },
            options=("tz",),
            skip=_HAPROXY_MESSAGES,
        ),
    )
}

#: tokens that may be absent (optional groups): empty match -> null in ``fields``
OPTIONAL = {
    "extra",
    "syslog_time",
    "syslog_host",
    "process",
    "captured_request_headers",
    "captured_response_headers",
    "target_port_list",
    "target_status_code_list",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "referer_cut",
}

_REQ_RE = (
    r"^(?P<method>[A-Za-z][A-Za-z0-9_.-]*) (?P<target>.+?)"
    r"(?: (?P<protocol>[A-Za-z]+/\d[\d.]*))?$"
)
_URL_RE = r"^(?:[A-Za-z][A-Za-z0-9+.-]*://(?P<authority>[^/?#\s]*))?(?P<path>[^?]*)(?:\?(?P<query>.*))?$"


# --- converters ----------------------------------------------------------------------------


def cut_quotes(a: pa.Array) -> int:
    """How many quoted tokens lack their closing quote (a line cut short)."""
    if a.null_count == len(a):
        return 0
    ends = pc.fill_null(pc.ends_with(a, '"'), True)
    if pc.all(ends).as_py():
        return 0
    quoted = pc.fill_null(pc.starts_with(a, '"'), False)
    whole = pc.fill_null(pc.match_substring_regex(a, r'^"(?:[^"\\]|\\.)*"$'), False)
    return int(pc.sum(pc.and_(quoted, pc.invert(whole))).as_py() or 0)


def strip_quotes(a: pa.Array) -> pa.Array:
    """``"..."`` -> ``...`` (a bare ``-`` stays ``-``)."""
    if a.null_count == 0 and len(a):
        both = pc.and_(pc.starts_with(a, '"'), pc.ends_with(a, '"'))
        if pc.all(both).as_py() and pc.min(pc.binary_length(a)).as_py() >= 2:
            return pc.utf8_slice_codeunits(a, 1, -1)  # the usual case: one pass
    quoted = pc.and_(pc.starts_with(a, '"'), pc.greater_equal(pc.utf8_length(a), 2))
    inner = pc.utf8_slice_codeunits(a, 1, -1)
    inner = pc.if_else(pc.ends_with(a, '"'), inner, pc.utf8_slice_codeunits(a, 1))
    return pc.if_else(quoted, inner, a)


_ESC = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "b": "\b", "a": "\a"}


def unescape(v: str | None) -> str | None:
    r"""Undo Apache/nginx log escaping: ``\"``, ``\\``, ``\n``/``\t``, ``\xhh`` (bytes, UTF-8)."""
    if v is None or "\\" not in v:
        return v
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(v):
        out += v[pos : m.start()].encode("utf-8", "surrogatepass")
        e = m.group(1)
        if e[0] == "x" and len(e) == 3:
            out.append(int(e[1:], 16))
        else:
            out += _SIMPLE.get(e, e).encode("utf-8", "surrogatepass")
        pos = m.end()
    out += v[pos:].encode("utf-8", "surrogatepass")
    return out.decode("utf-8", errors="replace")


def unescape_column(a: pa.Array) -> pa.Array:
    """:func:`unescape` on the (few) values holding a backslash, on distinct values only."""
    mask = pc.fill_null(pc.match_substring(a, "\\"), False)
    if not pc.any(mask).as_py():
        return a
    fixed = F.on_distinct(a.filter(mask), unescape)
    return pc.replace_with_mask(a, mask, fixed)


_MONTHS = pa.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
_MM = pa.array([f"{i:02d}" for i in range(1, 13)])


def clf_time(a: pa.Array) -> pa.Array:
    """``[10/Oct/2000:13:55:36 -0700]`` (brackets optional) -> UTC timestamps.

    The fixed-width shape is rearranged into ISO-8601 with a handful of substring
    kernels and parsed by Arrow's fast ISO parser; anything else goes to ``strptime``.
    """
    a = pc.utf8_trim(a, "[]")
    if a.null_count == 0 and len(a) and pc.all(pc.equal(pc.binary_length(a), 26)).as_py():
        sl = pc.utf8_slice_codeunits
        month = pc.take(_MM, pc.index_in(sl(a, 3, 6), value_set=_MONTHS))
        iso = pc.binary_join_element_wise(sl(a, 7, 11), "-", month, "-", sl(a, 0, 2), "T", sl(a, 12, 20), "")
        if iso.null_count == 0:  # month names all known; the ISO parser checks the rest
            try:
                local = pc.cast(iso, pa.timestamp("us"))  # strict: rejects 2001-02-29
                offset_us = pc.multiply(_offset_minutes(sl(a, 21, 26)), 60_000_000)
                utc = pc.subtract(local.cast(pa.int64()), offset_us)
                return utc.cast(pa.timestamp("us")).cast(TS)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
    ts = pc.strptime(a, format="%d/%b/%Y:%H:%M:%S %z", unit="us", error_is_null=True)
    # strptime rolls 29/Feb/2001 over to March 1st; compare the day in local time
    offset = pc.struct_field(pc.extract_regex(a, r" (?P<o>[+-]\d{4})$"), "o")
    local = pc.add(ts, pc.cast(pc.multiply(_offset_minutes(offset), 60_000_000), pa.duration("us")))
    return pc.if_else(pc.is_valid(F.no_rollover(local, pc.utf8_slice_codeunits(a, 0, 2))), ts, pa.scalar(None, ts.type)).cast(TS)


def _offset_minutes(o: pa.Array) -> pa.Array:
    """``+0130`` / ``-0700`` -> signed minutes (null stays null)."""
    sl = pc.utf8_slice_codeunits
    sign = pc.if_else(pc.equal(sl(o, 0, 1), "-"), -1, 1)
    mins = pc.add(pc.multiply(F.to_int(sl(o, 1, 3)), 60), F.to_int(sl(o, 3, 5)))
    return pc.multiply(sign, mins)


def naive_time(a: pa.Array, fmt: str, tz: str | None) -> pa.Array:
    """Wall-clock text with optional ``.fff`` fraction (no offset) -> UTC (``tz`` option)."""
    parts = pc.extract_regex(a, r"^(?P<base>[^.]*)(?:\.(?P<frac>\d{1,6}))?\d*$")
    base = pc.struct_field(parts, "base")
    frac = pc.struct_field(parts, "frac")
    ts = pc.strptime(base, format=fmt, unit="us", error_is_null=True)
    digits = pc.utf8_length(frac)
    us = pc.if_else(
        pc.greater(digits, 0),
        pc.multiply(
            F.to_int(pc.if_else(pc.greater(digits, 0), frac, pa.scalar("0"))),
            pc.power(pa.scalar(10, pa.int64()), pc.subtract(6, digits.cast(pa.int64()))),
        ),
        pa.scalar(0, pa.int64()),
    )
    ts = pc.add(ts, pc.cast(us, pa.duration("us")))
    if tz and tz.upper() not in ("UTC", "Z", "GMT"):
        return pc.assume_timezone(ts, tz, ambiguous="earliest", nonexistent="earliest").cast(TS)
    return ts.cast(TS)


def iso_time(a: pa.Array) -> pa.Array:
    """ISO-8601 with up to 9 fractional digits (Arrow casts at most 6) -> UTC."""
    if pc.any(pc.match_substring_regex(a, r"\.\d{7}")).as_py():
        a = pc.replace_substring_regex(a, r"(\.\d{6})\d+", r"\1")
    return F.iso_to_ts(a)


def first_addr(a: pa.Array) -> pa.Array:
    """First address of ``host``, ``a, b, c`` or ``"a, b" c`` (X-Forwarded-For lists)."""
    m = pc.extract_regex(a, r'^"?\s*(?P<ip>[^\s,"]+)')
    return F.dash_null(pc.struct_field(m, "ip"))


def addr_port(a: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``1.2.3.4:2817`` / ``[::1]:80`` / ``-`` -> (address, port)."""
    m = pc.extract_regex(a, r"^\[?(?P<ip>.*?)\]?:(?P<port>\d+)$")
    ip = pc.if_else(pc.is_valid(m), pc.struct_field(m, "ip"), a)
    port = pc.if_else(pc.is_valid(m), pc.struct_field(m, "port"), pa.scalar(None, pa.string()))
    return F.dash_null(ip), F.to_int(port, pa.int32())


_SIMPLE_REQ = r"^[A-Za-z][A-Za-z0-9_.-]* /[^ ]* [A-Za-z]+/\d[\d.]*$"
_PARTS = ("method", "path", "query", "protocol", "host")


def split_request(req: pa.Array) -> dict[str, pa.Array]:
    """``GET /a/b?x=1 HTTP/1.1`` -> method, path, query, protocol (and host for absolute URLs).

    Requests that are not of that shape (``-``, ``""``, garbage) give nulls, not errors.
    The usual shape (origin-form target, single spaces) is cut with ``split_pattern``;
    the rest goes through a regular expression.
    """
    simple = pc.fill_null(pc.match_substring_regex(req, _SIMPLE_REQ), False)
    n_simple = int(pc.sum(simple).as_py() or 0)
    if n_simple == 0:
        return _split_request_regex(req)
    fast = _split_request_simple(req.filter(simple) if n_simple < len(req) else req)
    if n_simple == len(req):
        return fast
    slow = _split_request_regex(req.filter(pc.invert(simple)))
    out = {}
    for k in _PARTS:
        base = pc.replace_with_mask(pa.nulls(len(req), pa.string()), simple, fast[k])
        out[k] = pc.replace_with_mask(base, pc.invert(simple), slow[k])
    return out


def _split_request_simple(req: pa.Array) -> dict[str, pa.Array]:
    parts = pc.split_pattern(req, " ", max_splits=2)
    target = pc.list_element(parts, 1)
    pq = pc.split_pattern(target, "?", max_splits=1)
    has_q = pc.greater(pc.list_value_length(pq), 1)
    padded = pc.if_else(has_q, pq, pa.scalar(["", ""], pq.type))
    return {
        "method": pc.list_element(parts, 0),
        "path": pc.list_element(pq, 0),
        "query": pc.if_else(has_q, pc.list_element(padded, 1), pa.scalar(None, pa.string())),
        "protocol": pc.list_element(parts, 2),
        "host": pa.nulls(len(req), pa.string()),
    }


def _split_request_regex(req: pa.Array) -> dict[str, pa.Array]:
    m = pc.extract_regex(req, _REQ_RE)
    null = pa.scalar(None, pa.string())
    ok = pc.is_valid(m)
    method = pc.if_else(ok, pc.struct_field(m, "method"), null)
    target = pc.if_else(ok, pc.struct_field(m, "target"), null)
    protocol = F.empty_null(pc.if_else(ok, pc.struct_field(m, "protocol"), null))
    u = pc.extract_regex(target, _URL_RE)
    uok = pc.is_valid(u)
    path = pc.if_else(uok, pc.struct_field(u, "path"), target)
    query = pc.if_else(uok, pc.struct_field(u, "query"), null)
    has_q = pc.if_else(uok, pc.match_substring(target, "?"), False)
    query = pc.if_else(has_q, query, null)
    authority = F.empty_null(pc.if_else(uok, pc.struct_field(u, "authority"), null))
    # an absolute URL without a path ("https://h") asks for "/"
    path = pc.if_else(pc.and_(pc.is_valid(authority), pc.equal(path, "")), "/", path)
    host = pc.struct_field(pc.extract_regex(authority, r"^(?P<h>\[[^\]]*\]|[^:]*)"), "h")
    return {"method": method, "path": path, "query": query, "protocol": protocol, "host": host}


# --- reading -------------------------------------------------------------------------------


def _match(lines: pa.Array, layout: Layout) -> tuple[list[tuple[np.ndarray, pa.StructArray]], np.ndarray]:
    """Match ``lines`` against the layout's variants in order.

    Returns ``[(positions, extracted struct)]`` per variant and the unmatched positions.
    """
    remaining = np.arange(len(lines), dtype=np.int64)
    cur = lines
    out = []
    for v in layout.variants:
        if len(remaining) == 0:
            break
        m = pc.extract_regex(cur, v.regex)
        ok = np.asarray(m.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if ok.any():
            hit = np.flatnonzero(ok)
            out.append((remaining[hit], m.filter(pa.array(ok)) if not ok.all() else m))
        if ok.all():
            remaining = remaining[:0]
            break
        miss = np.flatnonzero(~ok)
        remaining = remaining[miss]
        cur = cur.take(pa.array(miss))
    return out, remaining


def _merge(parts: list[tuple[np.ndarray, pa.StructArray | dict[str, pa.Array]]]) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """Union of the variants' tokens, rows back in line order."""
    parts = [(p, s if isinstance(s, dict) else {f.name: s.field(f.name) for f in s.type}) for p, s in parts]
    names: list[str] = []
    for _, s in parts:
        for k in s:
            if k not in names:
                names.append(k)
    pos = np.concatenate([p for p, _ in parts])
    cols: dict[str, pa.Array] = {}
    for name in names:
        arrs = []
        for p, s in parts:
            if name in s:
                arrs.append(s[name])
            else:
                arrs.append(pa.nulls(len(p), pa.string()))
        cols[name] = pa.concat_arrays(arrs) if len(arrs) > 1 else arrs[0]
    if len(parts) > 1:
        order = np.argsort(pos, kind="stable")
        pos = pos[order]
        take = pa.array(order)
        cols = {k: v.take(take) for k, v in cols.items()}
    for k in OPTIONAL & set(cols):
        cols[k] = F.empty_null(cols[k])
    return pos, cols


def convert(layout: Layout, tokens: dict[str, pa.Array], ctx) -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}
    failed = 0
    for target, (tok, kind) in layout.columns.items():
        raw = tokens.get(tok)
        if raw is None:
            continue
        if (common := F.convert(kind, raw)) is not None:
            out[target], bad = common
            failed += bad
        elif kind == "qstr":
            failed += cut_quotes(raw)
            out[target] = F.dash_null(unescape_column(strip_quotes(raw)))
        elif kind == "user":
            out[target] = F.dash_null(unescape_column(raw))
        elif kind == "first_addr":
            out[target] = first_addr(raw)
        elif kind == "addr_port":
            ip, port = addr_port(raw)
            out[target] = ip
            out[target.replace("_ip", "_port")] = port
        elif kind == "paren_seconds":  # "(12 s)"
            secs = pc.struct_field(pc.extract_regex(raw, r"^\((?P<s>\d+)"), "s")
            out[target] = pc.multiply(F.to_float(secs), 1000.0)
        elif kind in ("clf_time", "iso", "haproxy_time"):
            if kind == "clf_time":
                v = clf_time(raw)
            elif kind == "iso":
                v = iso_time(raw)
            else:
                v = naive_time(pc.utf8_trim(raw, "[]"), "%d/%b/%Y:%H:%M:%S", ctx.options.get("tz"))
            failed += F.count_failed(raw, v)
            out[target] = v
        elif kind == "request":
            req = F.dash_null(unescape_column(strip_quotes(raw)))
            parts = split_request(req)
            host = parts.pop("host")
            out.update(parts)
            if "host" not in layout.columns and pc.any(pc.is_valid(host)).as_py():
                out["host"] = host
        elif kind == "elb_total":
            # request + backend + response processing times (seconds; -1 = not reached)
            total = None
            for name in ("request_processing_time", "backend_processing_time", "response_processing_time"):
                t = F.to_float(tokens[name])
                t = pc.if_else(pc.less(t, 0), pa.scalar(None, pa.float64()), t)
                total = t if total is None else pc.add(total, t)
            out[target] = pc.multiply(total, 1000.0)
        elif kind == "haproxy_total":  # TR/Tw/Tc/Tr/Ta (ms): Ta, the total; -1 = aborted
            last = pc.struct_field(pc.extract_regex(raw, r"(?P<t>-?\d+)$"), "t")
            t = F.to_float(last)
            out[target] = pc.if_else(pc.less(t, 0), pa.scalar(None, pa.float64()), t)
        else:  # pragma: no cover - table typo
            raise AssertionError(kind)
    if failed:
        ctx.conversion_failed(failed)
    return out


def _views(chunk: LineChunk) -> pa.Array:
    """Every line of the chunk, terminator included, as a zero-copy string view."""
    n = len(chunk)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:n] = chunk.starts
    offsets[n] = len(chunk.buf)
    buf = pa.py_buffer(chunk.buf)
    if len(chunk.buf) < 2**31 - 1:
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), buf])
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), buf])  # pragma: no cover


_DELIM = {"bare": 32, "quoted": 34, "bracket": 93, "paren": 41}


def fast_tokens(layout: Layout, chunk: LineChunk, idx: np.ndarray) -> dict[str, pa.Array]:
    """Cut lines already validated by ``layout.fast_regex`` into their tokens with numpy."""
    arr = chunk.arr
    starts = chunk.starts[idx]
    ends = chunk.ends[idx]
    lo, hi = int(starts[0]), int(ends[-1])
    window = arr[lo:hi]
    found: dict[int, np.ndarray] = {}
    for byte in {_DELIM[k] for _, k, _ in layout.fast}:
        # a sentinel past the end keeps searchsorted in range
        found[byte] = np.append(np.flatnonzero(window == byte) + lo, hi + 1)
    cur = starts.copy()
    names: list[str] = []
    s_k: list[np.ndarray] = []
    e_k: list[np.ndarray] = []
    for name, kind, _ in layout.fast:
        pos = found[_DELIM[kind]]
        if kind == "bare":
            end = np.minimum(pos[np.searchsorted(pos, cur)], ends)
        else:  # the closing delimiter after the opening one, included in the token
            end = pos[np.searchsorted(pos, cur + 1)] + 1
        names.append(name)
        s_k.append(cur)
        e_k.append(end)
        cur = end + 1
    if layout.fast_extra:
        has = cur <= ends
        names.append("extra")
        s_k.append(np.minimum(cur, ends))
        e_k.append(ends)
    text = _is_text(chunk, lo, hi)
    cols = take_columns(chunk.buf, s_k, e_k, text)
    out = {name: col if text else to_str(col) for name, col in zip(names, cols, strict=True)}
    if layout.fast_extra:
        out["extra"] = pc.if_else(pa.array(has), out["extra"], pa.scalar(None, pa.string()))
    return out


def parse_chunk(layout: Layout, chunk: LineChunk, idx: np.ndarray, ctx) -> pa.RecordBatch | None:
    """Records of the data lines ``idx`` (bad rows to ``ctx``)."""
    fast_pos = np.zeros(0, dtype=np.int64)
    slow_idx = idx
    if layout.fast:
        views = _views(chunk)
        views = to_str(views) if not _valid_utf8(views) else views
        ok = pc.match_substring_regex(views.take(pa.array(idx)), layout.fast_regex)
        okn = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
        fast_pos = np.flatnonzero(okn)
        slow_idx = idx[~okn]
    parts: list[tuple[np.ndarray, pa.StructArray | dict[str, pa.Array]]] = []
    if len(fast_pos):
        parts.append((fast_pos, fast_tokens(layout, chunk, idx[fast_pos])))
    if len(slow_idx):
        slow_pos = np.flatnonzero(~okn) if layout.fast else np.arange(len(idx), dtype=np.int64)
        lines = to_str(chunk.slices(slow_idx))
        if layout.skip:
            own = np.asarray(pc.match_substring_regex(lines, layout.skip).to_numpy(zero_copy_only=False), dtype=bool)
            if own.any():
                ctx.skip(int(own.sum()))
                keep = np.flatnonzero(~own)
                slow_idx, lines = slow_idx[keep], lines.take(pa.array(keep))
                slow_pos = slow_pos[keep]
        matched, missed = _match(lines, layout)
        if len(missed):
            ctx.bad_lines(chunk, slow_idx[missed], f"does not match the {layout.name} layout ({layout.description})")
        parts.extend((slow_pos[p], s) for p, s in matched)
    if not parts:
        return None
    pos, tokens = _merge(parts)
    if "referer_cut" in tokens:  # a referer cut at the end of the line (no user agent)
        cut = tokens.pop("referer_cut")
        tokens["referer"] = pc.coalesce(F.empty_null(tokens["referer"]), cut)
    out = convert(layout, tokens, ctx)
    return make_batch(out, len(pos), ctx.source_file, pa.array(chunk.line_numbers(idx[pos])), tokens, on_failed=ctx.conversion_failed)


def _valid_utf8(a: pa.Array) -> bool:
    try:
        a.validate(full=True)
        return True
    except pa.ArrowInvalid:
        return False


def read_layout(layout: Layout, chunks: Iterator[LineChunk], ctx) -> Iterator[pa.RecordBatch]:
    """Chunks are parsed on worker threads (Arrow releases the GIL); bad rows and
    counters are replayed here in file order."""

    def jobs():
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            idx = np.flatnonzero(line_kinds(chunk, ctx)[1])
            if len(idx):
                yield partial(_job, layout, chunk, idx, ctx.deferred())

    for batch, dctx in ordered_map(jobs(), ctx.options.get("threads")):
        dctx.replay(ctx)
        if batch is not None:
            yield batch


def _job(layout, chunk, idx, dctx):
    return parse_chunk(layout, chunk, idx, dctx), dctx


# --- detection -----------------------------------------------------------------------------


def sniff_layout(layout: Layout, head: Head) -> float:
    data = [ln for ln in head.data_lines if ln.strip()]
    if layout.skip:  # the server's own messages say nothing about the layout
        data = [ln for ln in data if not re.match(layout.skip, ln)] or data
    if not data:
        return 0.0
    remaining = pa.array(data, pa.string())
    score = 0.0
    for v in layout.variants:
        if len(remaining) == 0:
            break
        ok = pc.match_substring_regex(remaining, v.regex)
        score += v.weight * int(pc.sum(ok).as_py() or 0)
        remaining = remaining.filter(pc.invert(ok))
    return layout.specificity * score / len(data)


def _reader(layout: Layout) -> Reader:
    def sniff(head: Head) -> float:
        return sniff_layout(layout, head)

    def read(chunks, ctx):
        return read_layout(layout, chunks, ctx)

    return Reader(layout.name, layout.description, sniff, read, options=layout.options)


READERS = {name: _reader(layout) for name, layout in LAYOUTS.items()}
