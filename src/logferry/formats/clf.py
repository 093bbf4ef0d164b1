"""Apache/Nginx common and combined logs and the other one-line-per-request text formats
shaped like them (vhost variants, OVH, Gandi, S3 server access, ELB/ALB, HAProxy).

Format knowledge is data, in three tables.  Token tables (``APACHE_TOKENS``, ...) say
what each field of a line matches.  :data:`LAYOUTS` maps each format name to its line
layouts, written as token names (``"remote_host ident remote_user time request ..."``,
see :func:`render`), each with the weight a match of it carries when sniffing (the first
variant is the format's own shape; later ones are tolerated fallbacks, e.g. a ``common``
line inside a ``combined`` file); the numpy fast path is cut from the first layout too.
Every token is captured exactly as written (quotes and brackets kept) and becomes the
``fields`` struct; a layout's ``columns`` map tokens to canonical columns through a
converter kind (:data:`CONVERTERS`).  One engine reads them all.

Lines are parsed vectorised with ``pyarrow.compute.extract_regex`` over a whole chunk;
lines that match none of the file format's variants are bad rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, partial

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

# --- the tables: tokens, layouts, columns (RE2 syntax; also valid Python ``re``) ----------
_Q = r'"(?:[^"\\]|\\.)*"'  # a double-quoted token with backslash escapes
_DQ = r'"[^"]*"'  # a double-quoted token without escapes (AWS)
#: the last quoted field cut at the end of the line (closing quote missing): read as
#: written, counted as a conversion issue (see ``qstr``)
_CUT = r'"(?:[^"\\]|\\.)*'
_W = r"\S+"
_B = r'[^\s"\[,]+'  # a plain address / name token

#: token name -> what it matches; ``name=alt`` is another shape of the same token, for a
#: fallback variant or a sibling format
APACHE_TOKENS = {
    "remote_host": r'[^\s"\[]+(?:, [^\s"\[]+)*',  # an address, or an X-Forwarded-For list
    "remote_host=any": r"[^\[]+?",  # anything before "ident user [" (XFF + address, ...)
    "vhost": r'[^\s,"\[]+',
    "vhost=ovh": r"[A-Za-z0-9.-]*\.[A-Za-z][A-Za-z0-9-]*(?::\d+)?",
    "vhost=any": _W,
    "ident": _W,
    "remote_user": _W,
    "time": r"\[[^\]]*\]",
    "duration": r"\(\d+ s\)",
    "request": _Q,
    "status": r"\d{3}|-",
    "bytes": r"\d+|-",
    # referer and user agent quoted, or a bare ``-`` (configs that log them unquoted)
    "referer": rf"{_Q}|-",
    "user_agent": rf"{_Q}|-",
    "user_agent=cut": _CUT,
    "referer_cut": _CUT,
    # tolerated trailing fields (icecast duration, nginx "$http_x_forwarded_for")
    "extra": r".*?",
}
#: the fast path's cut of the Apache tokens: (kind, pattern); kinds: bare (up to the
#: next space), quoted ("..." without backslashes), bracket ([...]), paren ((...))
APACHE_FAST = {
    "vhost": ("bare", _B),
    "remote_host": ("bare", _B),
    "ident": ("bare", _W),
    "remote_user": ("bare", _W),
    "time": ("bracket", ""),
    "request": ("quoted", ""),
    "status": ("bare", r"\d{3}|-"),
    "bytes": ("bare", r"\d+|-"),
    "referer": ("quoted", ""),
    "user_agent": ("quoted", ""),
}
S3_TOKENS = {
    **dict.fromkeys(("bucket_owner", "bucket", "remote_ip", "requester", "request_id", "operation",
                     "key", "error_code", "bytes_sent", "object_size", "total_time",
                     "turn_around_time"), _W),
    "time": r"\[[^\]]*\]",
    "request": rf"{_Q}|-",
    "http_status": r"\d{3}|-",
    "referer": rf"{_Q}|-",
    "user_agent": rf"{_Q}|-",
    "extra": r".*?",
}
AWS_LB_TOKENS = {
    **dict.fromkeys(("elb", "client", "backend", "request_processing_time", "backend_processing_time",
                     "response_processing_time", "elb_status_code", "backend_status_code",
                     "received_bytes", "sent_bytes", "ssl_cipher", "ssl_protocol", "target_group_arn",
                     "matched_rule_priority", "request_creation_time"), _W),
    **dict.fromkeys(("request", "trace_id", "domain_name", "chosen_cert_arn", "actions_executed",
                     "redirect_url", "error_reason", "target_port_list", "target_status_code_list"), _DQ),
    "type": r"[a-z0-9]+",
    "time": r"\d{4}-\d\d-\d\dT\S+",
    "user_agent": _Q,
    "extra": r".*?",
}
HAPROXY_TOKENS = {
    # the syslog prefix: RFC 3164 ``Mmm dd hh:mm:ss`` or RFC 3339 (rsyslog's default on
    # many systems), then host and ``haproxy[pid]:``
    "syslog_time": r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
                   r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)",
    "syslog_host": _W,
    "process": r"[^\s:]+",
    "client": r"\S+:\d+",
    "accept_date": r"\[\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)?\]",
    "frontend": _W,
    "backend_server": r"[^\s/]+/\S+",
    # timers TR/Tw/Tc/Tr/Ta (or Tq/Tw/Tc/Tr/Tt before 1.7); the total carries a leading
    # "+" with option logasap (the time until the log was emitted)
    "timers": r"-?\d+(?:/-?\d+){2,3}/\+?-?\d+",
    "timers=tcp": r"-?\d+/-?\d+/\+?-?\d+",  # option tcplog: Tw/Tc/Tt
    "status": r"-?\d+",
    "bytes": r"\+?\d+",
    **dict.fromkeys(("captured_request_cookie", "captured_response_cookie", "termination_state",
                     "conn_counts", "queues"), _W),
    "conn_counts=tcp": r"\d+/\d+/\d+/\d+/\+?\d+",
    "queues=tcp": r"\d+/\d+",
    "captured_request_headers": r"\{[^}]*\}",
    "captured_response_headers": r"\{[^}]*\}",
    "request": r'"[^"]*"?',
    "extra": r".*?",
}

#: a line layout: token names (``name`` or ``name=alt``) with the separators between
#: them; ``[...]`` is optional, ``(a|b)`` either; ``\s*$`` (trailing blanks, end);
#: ``[ extra]`` takes tolerated trailing fields.  Rendered into an RE2 expression with a
#: named group per token (:func:`render`).
_TOKEN = re.compile(r"\\.|(?P<name>[a-z_]+(?:=[a-z]+)?)|(?P<open>[\[(])|(?P<close>[\])])|.", re.S)


def render(spec: str, tokens: dict[str, str]) -> tuple[str, frozenset[str]]:
    """The regular expression of a layout spec, and its optional tokens (those inside
    ``[...]`` or ``(...|...)``, which may not be there: empty -> null)."""
    out, optional, closers = [], set(), []
    for m in _TOKEN.finditer(spec):
        if m["name"]:
            name = m["name"].split("=")[0]
            out.append(f"(?P<{name}>{tokens[m['name']]})")
            if closers:
                optional.add(name)
        elif m["open"]:
            out.append("(?:")
            closers.append(")?" if m["open"] == "[" else ")")
        elif m["close"]:
            out.append(closers.pop())
        else:
            out.append(m[0])
    return "".join(out), frozenset(optional)


_CLF_END = r"\s*$"
_EXTRA = r"[ extra]\s*$"
_COMMON = "ident remote_user time request status bytes"
_COMBINED = f"{_COMMON} referer user_agent"
_REF_UA_CUT = f"{_COMMON} (referer user_agent=cut|referer_cut)$"
_SYSLOG = "[syslog_time syslog_host process: ]"
_ELB = ("elb client backend request_processing_time backend_processing_time response_processing_time "
        "elb_status_code backend_status_code received_bytes sent_bytes request")
_ALB_TAIL = ("target_group_arn trace_id domain_name chosen_cert_arn matched_rule_priority "
             "request_creation_time actions_executed redirect_url error_reason"
             "[ target_port_list][ target_status_code_list]")

#: canonical column(s) <- (token(s), converter kind); a converter giving several columns
#: (an address and its port, the parts of a request) fills them in the order named
REQUEST = ("method", "path", "query", "protocol")
REQUEST_HOST = (*REQUEST, "host")  # the host of an absolute URL, for a layout without a host
APACHE_COLS = {
    "client_ip": ("remote_host", "first_addr"),
    "username": ("remote_user", "user"),
    "timestamp": ("time", "clf_time"),
    REQUEST: ("request", "request"),
    "status": ("status", "int"),
    "bytes_sent": ("bytes", "int"),
    "referer": ("referer", "qstr"),
    "user_agent": ("user_agent", "qstr"),
    "site": ("vhost", "str"),
    "host": ("vhost", "str"),
}
#: the classic and application load balancers
_ELB_COLUMNS = {
    "timestamp": ("time", "iso"),
    "site": ("elb", "str"),
    ("client_ip", "client_port"): ("client", "addr_port"),
    ("server_ip", "server_port"): ("backend", "addr_port"),
    REQUEST_HOST: ("request", "request"),
    "status": ("elb_status_code", "int"),
    "bytes_received": ("received_bytes", "int"),
    "bytes_sent": ("sent_bytes", "int"),
    # request + backend + response processing times (seconds; -1 = not reached)
    "duration_ms": (("request_processing_time", "backend_processing_time", "response_processing_time"),
                    "seconds_sum"),
    "user_agent": ("user_agent", "qstr"),
}


@dataclass(frozen=True)
class Variant:
    spec: str  # the line layout (see :func:`render`)
    weight: float = 1.0  # share of the format's confidence a line matching it earns


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    specificity: float  # confidence when every sniffed line matches the first variant
    variants: tuple[Variant, ...]
    tokens: dict[str, str] = field(default_factory=lambda: APACHE_TOKENS)
    columns: dict = field(default_factory=lambda: APACHE_COLS)
    options: tuple[str, ...] = ()
    #: the first variant's plain lines are cut with numpy (``APACHE_FAST``) when they
    #: match its ``fast_regex``; a trailing " anything" is its ``extra``
    fast: bool = False
    #: lines that are the server's own messages, not requests: skipped (counted with
    #: the directives), neither records nor bad rows
    skip: str | None = None
    #: text that every line matching any of the variants holds (``0`` is any digit,
    #: ``\n`` the line's start): a head without one of them scores 0 without running an
    #: expression (tests/test_sniff_equivalence.py proves each from the variants'
    #: expressions).  A single character first: the quickest to look for.
    needs: tuple[str, ...] = ()

    @cached_property
    def regexes(self) -> tuple[str, ...]:
        return tuple("^" + render(v.spec, self.tokens)[0] for v in self.variants)

    @cached_property
    def optional(self) -> frozenset[str]:
        """Tokens that may be absent (an empty match is null in ``fields``)."""
        return frozenset().union(*(render(v.spec, self.tokens)[1] for v in self.variants))

    @cached_property
    def fast_cut(self) -> tuple[tuple[str, str, str], ...]:
        """(name, kind, pattern) of the first variant's tokens, for the numpy cut."""
        names = [m["name"] for m in _TOKEN.finditer(self.variants[0].spec) if m["name"]] if self.fast else []
        return tuple((n, *APACHE_FAST[n]) for n in names if n != "extra")

    @cached_property
    def fast_extra(self) -> bool:
        return self.fast and "extra" in self.variants[0].spec

    @cached_property
    def fast_regex(self) -> str:
        shape = {"quoted": r'"[^"\\]*"', "bracket": r"\[[^\]]*\]", "paren": r"\([^)]*\)"}
        parts = [shape.get(kind, f"(?:{pat})") for _, kind, pat in self.fast_cut]
        tail = r"(?: .*\S)?" if self.fast_extra else ""
        return "^" + " ".join(parts) + tail + r"\r?\n?$"


#: HAProxy's own messages, which share the log with the requests: connection errors
#: ("client:port [date] frontend/bind: SSL handshake failure") and process events
#: ("Proxy NAME started.", "Server b/s is DOWN, ...") -- skipped, not bad rows
_HAPROXY_MESSAGES = (
    rf"^{render(_SYSLOG, HAPROXY_TOKENS)[0]}(?:\S+:\d+ \[[^\]]*\] [^\s/]+/[^\s:]+: .+"
    r"|(?:Proxy|Backend|Frontend|Server) \S+ (?:started|stopped|is (?:UP|DOWN)|has no server available)\b.*"
    r"|Stopping (?:proxy|backend|frontend) .+|Pausing .+|Resuming .+)\s*$"
)

V = Variant
#: what every Apache-shaped line holds: `` [`` opens its time, ``] "`` runs into its request
#: (a single character first: a text without it is told at once)
_APACHE_NEEDS = ("[", " [", '] "')
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "common",
            'Apache/Nginx common: %h %l %u %t "%r" %>s %b',
            0.80,
            (V(f"remote_host {_COMMON}{_CLF_END}"), V(f"remote_host=any {_COMMON}{_CLF_END}", 0.6)),
            fast=True,
            needs=_APACHE_NEEDS,
        ),
        Layout(
            "combined",
            'Apache/Nginx combined: common + "%{Referer}i" "%{User-agent}i" (trailing extras kept; '
            "bare - referer/agent; a last quoted field cut at the line end read as written)",
            0.85,
            (
                V(f"remote_host {_COMBINED}{_EXTRA}"),
                V(f"remote_host=any {_COMBINED}{_EXTRA}", 0.6),
                V(f"remote_host {_COMMON}{_CLF_END}", 0.6),
                V(f"remote_host=any {_COMMON}{_CLF_END}", 0.5),
                V(f"remote_host {_REF_UA_CUT}", 0.6),
            ),
            fast=True,
            needs=_APACHE_NEEDS,
        ),
        Layout(
            "vhost-common",
            'Apache vhost_common: %v %h %l %u %t "%r" %>s %b',
            0.86,
            (V(f"vhost remote_host {_COMMON}{_CLF_END}"),),
            fast=True,
            needs=_APACHE_NEEDS,
        ),
        Layout(
            "vhost-combined",
            'Apache vhost_combined: %v %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
            0.90,
            (
                V(f"vhost remote_host {_COMBINED}{_EXTRA}"),
                V(f"vhost remote_host {_COMMON}{_CLF_END}", 0.6),
                V(f"vhost remote_host {_REF_UA_CUT}", 0.6),
            ),
            fast=True,
            needs=_APACHE_NEEDS,
        ),
        Layout(
            "ovh",
            'OVH hosting: %h %v %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
            0.90,
            (
                V(r"remote_host vhost=ovh remote_user time request status bytes referer user_agent" + _EXTRA),
                V(r"remote_host vhost=any remote_user time request status bytes referer user_agent" + _EXTRA,
                  0.5),
            ),
            needs=_APACHE_NEEDS,
        ),
        Layout(
            "gandi",
            'Gandi hosting: %v %h %l %u %t (%T s) "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
            0.95,
            (V("vhost remote_host ident remote_user time duration request status bytes referer user_agent"
               + _EXTRA),),
            columns={**APACHE_COLS, "duration_ms": ("duration", "paren_seconds")},
            needs=("[", "] (0", '0 s) "'),
        ),
        Layout(
            "s3-access",
            "Amazon S3 server access log",
            0.95,
            (V("bucket_owner bucket time remote_ip requester request_id operation key request http_status "
               "error_code bytes_sent object_size total_time turn_around_time referer user_agent" + _EXTRA),),
            tokens=S3_TOKENS,
            columns={
                "timestamp": ("time", "clf_time"),
                "client_ip": ("remote_ip", "str"),
                "site": ("bucket", "str"),
                "username": ("requester", "str"),
                "request_id": ("request_id", "str"),
                REQUEST_HOST: ("request", "request"),
                "status": ("http_status", "int"),
                "bytes_sent": ("bytes_sent", "int"),
                "duration_ms": ("total_time", "ms"),
                "referer": ("referer", "qstr"),
                "user_agent": ("user_agent", "qstr"),
            },
            needs=("[", "] "),
        ),
        Layout(
            "elb",
            "AWS Classic Load Balancer access log (also without the later user_agent/ssl fields)",
            0.95,
            # (lines written before ELB added user_agent, ssl_cipher and ssl_protocol end
            # with the request)
            (V(f"time {_ELB}[ user_agent ssl_cipher ssl_protocol]{_EXTRA}"),),
            tokens=AWS_LB_TOKENS,
            columns=_ELB_COLUMNS,
            needs=('"', "\n0000-00-00T"),
        ),
        Layout(
            "alb",
            "AWS Application Load Balancer access log (host from the request URL)",
            0.96,
            (V(f"type time {_ELB} user_agent ssl_cipher ssl_protocol {_ALB_TAIL}{_EXTRA}"),),
            tokens=AWS_LB_TOKENS,
            # host: from the request's URL (the Host header as ALB writes it there);
            # domain_name is the TLS SNI, "-" on plain HTTP (kept in the fields)
            columns={**_ELB_COLUMNS, "request_id": ("trace_id", "qstr")},
            needs=('"', '" "', " 0000-00-00T"),
        ),
        Layout(
            "haproxy",
            "HAProxy HTTP/TCP log (option httplog/tcplog), with or without its syslog prefix "
            "(RFC 3164 or RFC 3339); its own messages skipped",
            0.95,
            (
                V(f"{_SYSLOG}client accept_date frontend backend_server timers status bytes "
                  "captured_request_cookie captured_response_cookie termination_state conn_counts queues"
                  "[ captured_request_headers][ captured_response_headers] request" + _EXTRA),
                V(f"{_SYSLOG}client accept_date frontend backend_server timers=tcp bytes termination_state "
                  r"conn_counts=tcp queues=tcp\s*$", 0.9),
            ),
            tokens=HAPROXY_TOKENS,
            columns={
                "timestamp": ("accept_date", "haproxy_time"),
                ("client_ip", "client_port"): ("client", "addr_port"),
                "site": ("frontend", "str"),
                REQUEST_HOST: ("request", "request"),
                "status": ("status", "int"),
                "bytes_sent": ("bytes", "int"),
                "duration_ms": ("timers", "haproxy_total"),
            },
            options=("tz",),
            skip=_HAPROXY_MESSAGES,
            needs=("[", "0 [00/"),
        ),
    )
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


def _timed(parse):
    def conv(options, raw):
        v = parse(raw, options)
        return v, F.count_failed(raw, v)

    return conv


def _seconds_sum(options, *raws):
    """Seconds (-1 = not reached) added up -> milliseconds; any missing part -> null."""
    total = None
    for raw in raws:
        t = F.to_float(raw)
        t = pc.if_else(pc.less(t, 0), pa.scalar(None, pa.float64()), t)
        total = t if total is None else pc.add(total, t)
    return pc.multiply(total, 1000.0), 0


def _haproxy_total(options, raw):
    """TR/Tw/Tc/Tr/Ta (ms): Ta, the total; -1 = aborted."""
    t = F.to_float(pc.struct_field(pc.extract_regex(raw, r"(?P<t>-?\d+)$"), "t"))
    return pc.if_else(pc.less(t, 0), pa.scalar(None, pa.float64()), t), 0


def _request(options, raw):
    parts = split_request(F.dash_null(unescape_column(strip_quotes(raw))))
    return tuple(parts[k] for k in REQUEST_HOST), 0


#: converter kind -> (reader options, token(s)) -> (column or columns, values not
#: converted); the kinds the readers share (``str``, ``int``, ``ms``, ...) are in ``_fields``
CONVERTERS = {
    "qstr": lambda options, raw: (F.dash_null(unescape_column(strip_quotes(raw))), cut_quotes(raw)),
    "user": lambda options, raw: (F.dash_null(unescape_column(raw)), 0),
    "first_addr": lambda options, raw: (first_addr(raw), 0),
    "addr_port": lambda options, raw: (addr_port(raw), 0),
    # "(12 s)"
    "paren_seconds": lambda options, raw: (
        pc.multiply(F.to_float(pc.struct_field(pc.extract_regex(raw, r"^\((?P<s>\d+)"), "s")), 1000.0), 0),
    "clf_time": _timed(lambda raw, options: clf_time(raw)),
    "iso": _timed(lambda raw, options: iso_time(raw)),
    "haproxy_time": _timed(
        lambda raw, options: naive_time(pc.utf8_trim(raw, "[]"), "%d/%b/%Y:%H:%M:%S", options.get("tz"))),
    "request": _request,
    "seconds_sum": _seconds_sum,
    "haproxy_total": _haproxy_total,
}


# --- reading -------------------------------------------------------------------------------


def _match(lines: pa.Array, layout: Layout) -> tuple[list[tuple[np.ndarray, pa.StructArray]], np.ndarray]:
    """Match ``lines`` against the layout's variants in order.

    Returns ``[(positions, extracted struct)]`` per variant and the unmatched positions.
    """
    remaining = np.arange(len(lines), dtype=np.int64)
    cur = lines
    out = []
    for regex in layout.regexes:
        if len(remaining) == 0:
            break
        m = pc.extract_regex(cur, regex)
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


def _merge(parts: list[tuple[np.ndarray, pa.StructArray | dict[str, pa.Array]]],
           optional: frozenset[str]) -> tuple[np.ndarray, dict[str, pa.Array]]:
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
    for k in optional & set(cols):
        cols[k] = F.empty_null(cols[k])
    return pos, cols


def convert(layout: Layout, tokens: dict[str, pa.Array], ctx) -> dict[str, pa.Array]:
    """The canonical columns of the layout's tokens, by its ``columns`` table."""
    out: dict[str, pa.Array] = {}
    failed = 0
    for targets, (names, kind) in layout.columns.items():
        raws = [tokens.get(n) for n in ((names,) if isinstance(names, str) else names)]
        if any(raw is None for raw in raws):
            continue
        common = F.convert(kind, raws[0]) if len(raws) == 1 else None
        value, bad = common if common is not None else CONVERTERS[kind](ctx.options, *raws)
        failed += bad
        if isinstance(targets, str):
            out[targets] = value
        else:  # the columns named, in order (a layout may leave out trailing ones)
            out.update(zip(targets, value, strict=False))
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


def fast_cut(layout: Layout, chunk: LineChunk, idx: np.ndarray) -> dict[str, pa.Array]:
    """Cut lines already validated by ``layout.fast_regex`` into their tokens with numpy."""
    arr = chunk.arr
    starts = chunk.starts[idx]
    ends = chunk.ends[idx]
    lo, hi = int(starts[0]), int(ends[-1])
    window = arr[lo:hi]
    found: dict[int, np.ndarray] = {}
    for byte in {_DELIM[k] for _, k, _ in layout.fast_cut}:
        # a sentinel past the end keeps searchsorted in range
        found[byte] = np.append(np.flatnonzero(window == byte) + lo, hi + 1)
    cur = starts.copy()
    names: list[str] = []
    s_k: list[np.ndarray] = []
    e_k: list[np.ndarray] = []
    for name, kind, _ in layout.fast_cut:
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
        parts.append((fast_pos, fast_cut(layout, chunk, idx[fast_pos])))
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
    pos, tokens = _merge(parts, layout.optional)
    for cut in [k for k in tokens if k.endswith("_cut")]:  # a last field cut at the line end
        whole = cut.removesuffix("_cut")
        tokens[whole] = pc.coalesce(F.empty_null(tokens[whole]), tokens.pop(cut))
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
    """Share of the head's data lines matching the layout, each weighted by its first
    matching variant, times the layout's specificity.  The head's lines are one Arrow
    array for every layout, and a variant's expression shared by several layouts runs
    once (:func:`_matches`)."""
    data = head.shared("clf.data", lambda: [ln for ln in head.data_lines if ln.strip()])
    if not data or any(t not in (head.shape if "0" in t else head.text) for t in layout.needs):
        return 0.0
    keep = None  # (indices of the lines sniffed: all of them)
    if layout.skip:  # the server's own messages say nothing about the layout
        own = [bool(re.match(layout.skip, ln)) for ln in data]
        if not all(own):
            keep = np.flatnonzero(~np.array(own, dtype=bool))
    n = len(data) if keep is None else len(keep)
    left = np.ones(n, dtype=bool)  # lines no earlier variant matched
    score = 0.0
    for v, regex in zip(layout.variants, layout.regexes, strict=True):
        if not left.any():
            break
        ok = _matches(head, data, regex)
        ok = (ok if keep is None else ok[keep]) & left
        score += v.weight * int(ok.sum())
        left &= ~ok
    return layout.specificity * score / n


def _matches(head: Head, data: list[str], regex: str) -> np.ndarray:
    """Which of the head's data lines ``regex`` matches (once per head and expression)."""

    def run() -> np.ndarray:
        lines = head.shared("clf.array", lambda: pa.array(data, pa.string()))
        return np.asarray(pc.match_substring_regex(lines, regex).to_numpy(zero_copy_only=False), dtype=bool)

    return head.shared(("clf.match", regex), run)


def _reader(layout: Layout) -> Reader:
    def sniff(head: Head) -> float:
        return sniff_layout(layout, head)

    def read(chunks, ctx):
        return read_layout(layout, chunks, ctx)

    return Reader(layout.name, layout.description, sniff, read, options=layout.options)


READERS = {name: _reader(layout) for name, layout in LAYOUTS.items()}
