"""The "real tools" check: lines that other projects' own test suites parse (Vector's VRL,
logstash-patterns-core, fluentd, CrowdSec's hub, haproxy_log_analysis, lnav, AWS and IBM
documentation), read in place from ../shared/corpus/peers-lines/cases.json (never
copied here; each case names its source and licence).

Every case must be detected as its hinted format and read with no bad row, except the
cases listed in :data:`NOT_CLEAN`, which say why their bad rows (or skipped entries) are
right.  Nothing is lost either way: records + bad rows == data lines.
"""

from __future__ import annotations

import io
import json

import pytest

import logferry
from conftest import CORPUS, check_invariant
from logferry.errors import LogferryError
from logferry.reader import detect_head

CASES_FILE = CORPUS / "peers-lines" / "cases.json"
CASES = json.loads(CASES_FILE.read_text(encoding="utf-8")) if CASES_FILE.exists() else []
#: format_hint -> logferry's format name
HINTS = {"s3": "s3-access"}

#: cases that are not (only) clean access lines: id -> (bad rows, skipped entries, why).
#: Detection is checked too unless the input holds no valid line at all (``detect``: False).
NOT_CLEAN: dict[str, tuple[int, int, str]] = {
    "vrl-apache-invalid": (1, 0, "VRL's own invalid case: not a log line at all"),
    "vrl-apache-invalid-timestamp": (1, 0, "VRL's invalid case: '[1234]' is no CLF time and nothing is quoted"),
    "vrl-nginx-error-line-in-access": (1, 0, "VRL's invalid case: an nginx error-log line"),
    "hla-invalid-bytes": (1, 0, "haproxy_log_analysis's invalid case: bytes_read is 'wroooong'"),
    "hla-2ok1invalid-line1": (1, 0, "the file's 2nd line has an empty accept date '[]' (invalid there too)"),
    "hla-2ok1invalid-line2": (1, 0, "same file: the empty accept date line"),
    "hla-2ok1invalid-line3": (1, 0, "same file: the empty accept date line"),
    "lnav-haproxy-mixed-line4": (0, 4, "3 'Proxy NAME started.' events and an SSL handshake error: HAProxy's own messages"),
    "hub-haproxy-noprefix-line1": (0, 3, "3 connection errors ('frontend/bind: SSL handshake failure', ...)"),
    "hub-haproxy-noprefix-line2": (0, 3, "same file: 3 connection errors"),
    "hub-traefik-json-line1": (1, 0, "a plain-text plugin line ('DEBUG: CrowdsecBouncerTraefikPlugin: ...') "
                               "in the JSON log: not JSON (CrowdSec fails it too)"),
    "hub-traefik-json-local-offset": (1, 0, "same file: the plain-text plugin line"),
    "hub-traefik-json-plugin-debug-line": (1, 0, "same file: the plain-text plugin line"),
    "hub-caddy-line1": (0, 1, "the file's last entry is logger http.handlers.reverse_proxy: not a request"),
    "hub-caddy-basic-auth-user": (0, 1, "same file: the reverse_proxy debug entry"),
    "hub-caddy-non-access-debug-line": (0, 1, "same file: the reverse_proxy debug entry"),
    "hub-nginx-missing-user-field": (1, 0, "only one of ident/user before the time: a custom log_format, "
                                     "not combined (CrowdSec's nginx pattern does not match it either)"),
}
#: cases whose input has no valid line of the hinted format, so detection must refuse
UNDETECTABLE = {
    "vrl-apache-invalid", "vrl-apache-invalid-timestamp", "vrl-nginx-error-line-in-access",
    "hla-invalid-bytes", "hub-nginx-missing-user-field",
}  # fmt: skip


def test_corpus_has_the_cases():
    assert len(CASES) == 84
    assert set(NOT_CLEAN) <= {c["id"] for c in CASES}
    for c in CASES:
        assert c["source"] and c["licence"] and c["input"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_peer_case(case):
    fmt = HINTS.get(case["format_hint"], case["format_hint"])
    data = case["input"].encode("utf-8")
    bad, skipped, why = NOT_CLEAN.get(case["id"], (0, 0, ""))
    if case["id"] in UNDETECTABLE:
        with pytest.raises(LogferryError):
            detect_head(data, case["id"])
    else:
        det = detect_head(data, case["id"])
        assert det.format == fmt, (det.candidates, why)
    s = logferry.read(io.BytesIO(data), fmt)
    t = s.to_table()
    check_invariant(s)
    assert (s.stats.bad, s.stats.skipped) == (bad, skipped), ([b.reason for b in s.bad_rows], why)
    lines = s.stats.lines - s.stats.blank
    assert t.num_rows == lines - bad - skipped > 0 or bad == lines
    if t.num_rows:
        # every record has its time, unless the line wrote none ("[-]" in VRL's all-dashes
        # case): then it is counted as a value that did not convert
        assert t.column("timestamp").null_count <= s.stats.conversion_errors
