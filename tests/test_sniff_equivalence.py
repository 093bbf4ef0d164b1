"""Format detection takes shortcuts (issue 27): a sniffer returns 0 at once when the head's
text lacks what every line of its format holds, and the CLF-family layouts share one Arrow
array and each expression's matches per head.  These tests pin that the shortcuts change
no result: the ranking of sample logs (recorded before the shortcuts), and each shortcut's
proof -- what a layout ``needs`` is held by every variant's expression, and each search
finds every token its sniffer would count."""

from __future__ import annotations

import os
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import corpus
from logferry import formats
from logferry.formats import cdn, clf, cloudfront
from logferry.reader import detect_head, open_input

#: (corpus file, how its head is changed, ``formats.rank`` before the shortcuts)
RANKS = [
    ("elastic-examples/apache_logs", "", [("combined", 0.85), ("ovh", 0.45)]),
    ("matomo-log-analytics/common.log", "", [("common", 0.8), ("combined", 0.51)]),
    ("matomo-log-analytics/common_vhost.log", "",
     [("vhost-common", 0.86), ("vhost-combined", 0.54), ("common", 0.48), ("combined", 0.425)]),
    ("matomo-log-analytics/common_complete.log", "", [("vhost-combined", 0.9), ("combined", 0.51)]),
    ("matomo-log-analytics/ovh.log", "", [("ovh", 0.9), ("combined", 0.85)]),
    ("matomo-log-analytics/gandi.log", "", [("gandi", 0.95)]),
    ("matomo-log-analytics/s3.log", "", [("s3-access", 0.95)]),
    ("matomo-log-analytics/elb.log", "", [("elb", 0.95)]),
    ("matomo-log-analytics/alb.log", "", [("alb", 0.96)]),
    ("matomo-log-analytics/haproxy.log", "", [("haproxy", 0.95)]),
    ("lnav/logfile_cloudflare.1", "", [("cloudflare-json", 0.97)]),
    ("matomo-log-analytics/amazon_cloudfront_web.log", "", [("cloudfront", 0.97), ("w3c", 0.6)]),
    ("matomo-log-analytics/amazon_cloudfront_web.log", "no directives", [("cloudfront", 0.96)]),
    ("matomo-log-analytics/iis.log", "", [("w3c", 0.9)]),
    ("matomo-log-analytics/iis.log", "no directives", []),
    ("spec-examples/db20240115_001.csv", "", [("csv-usage", 0.98)]),
    ("snowplow/hive-etl-2013/CljTomcatFormatTest.line", "", [("snowplow-tomcat", 0.96)]),
    ("spec-examples/20230413-181700.example-service.03495.log.gz", "", [("cdn-tsv", 0.97)]),
    ("spec-examples/20230413-181700.example-service.03495.log.gz", "tabs as spaces", []),
    ("spec-examples/20230413-181700.example-service.03496.log.gz", "", [("cdn-json", 0.98)]),
    # lines of two files: a layout's lines match different variants
    ("elastic-examples/apache_logs", "+matomo-log-analytics/common.log", [("combined", 0.801), ("ovh", 0.386)]),
    ("matomo-log-analytics/common_vhost.log", "+matomo-log-analytics/common_complete.log",
     [("vhost-combined", 0.72), ("combined", 0.468), ("vhost-common", 0.43)]),
    ("matomo-log-analytics/haproxy.log", "+matomo-log-analytics/common.log", [("haproxy", 0.475), ("common", 0.4)]),
    ("matomo-log-analytics/ovh.log", "+matomo-log-analytics/gandi.log", [("gandi", 0.633), ("ovh", 0.3)]),
    ("matomo-log-analytics/amazon_cloudfront_web.log", "+spec-examples/20230413-181700.example-service.03495.log.gz",
     [("cloudfront", 0.97), ("cdn-tsv", 0.85), ("w3c", 0.6)]),
    ("snowplow/hive-etl-2013/CljTomcatFormatTest.line", "+matomo-log-analytics/elb.log",
     [("snowplow-tomcat", 0.8), ("elb", 0.633)]),
]


def _head(rel: str, change: str) -> bytes:
    stream, raw, _ = open_input(corpus(rel))
    stream.close()
    if change == "no directives":
        return b"".join(ln for ln in raw.splitlines(keepends=True) if not ln.startswith(b"#"))
    if change == "tabs as spaces":
        return raw.replace(b"\t", b" ")
    if change.startswith("+"):  # its first lines, then another file's (variants matched in part)
        return b"".join(raw.splitlines(keepends=True)[:6] + _head(change[1:], "").splitlines(keepends=True)[:4])
    return raw


@pytest.mark.parametrize("rel, change, ranked", RANKS)
def test_ranking_is_the_one_before_the_shortcuts(rel, change, ranked):
    raw = _head(rel, change)
    assert formats.rank(formats.Head.from_bytes(raw, os.path.basename(rel))) == ranked
    if ranked:
        d = detect_head(raw, rel)
        assert (d.format, d.confidence, d.candidates) == (ranked[0][0], ranked[0][1], ranked)


# --- what a CLF-family layout needs, proved from its variants' expressions ------------------


def _required(items) -> tuple[str | None, str, str, set[str]]:
    """What every match of a parsed expression holds, as ``Head.shape`` writes it (each
    digit ``0``, a line's start ``\\n``): (its text if always the same, a literal prefix,
    a literal suffix, literal substrings)."""
    subs: set[str] = set()
    run, exact, prefix = "", "", ""  # run: the literal text that ends where we are
    for op, av in items:
        e, p, s, sub = _required_item(op, av)
        subs |= sub
        if e is not None:
            run += e
            exact = None if exact is None else exact + e
        else:
            subs.add(run + p)
            if exact is not None:
                prefix, exact = exact + p, None
            run = s
    subs.add(run)
    return (exact, exact, exact, subs | {exact}) if exact is not None else (None, prefix, run, subs)


def _digit_class(av) -> bool:  # \d (an ASCII digit in RE2) or [0-9]
    return len(av) == 1 and (av[0] == (sre_c.CATEGORY, sre_c.CATEGORY_DIGIT) or av[0] == (sre_c.RANGE, (48, 57)))


def _required_item(op, av) -> tuple[str | None, str, str, set[str]]:
    if op is sre_c.LITERAL or (op is sre_c.IN and len(av) == 1 and av[0][0] is sre_c.LITERAL):
        c = chr(av if op is sre_c.LITERAL else av[0][1])
        return ("0" if c in "0123456789" else c), "", "", set()
    if op is sre_c.IN and _digit_class(av):
        return "0", "", "", set()
    if op is sre_c.AT:  # ^ (each line is after a newline in Head.text), $: no text
        return ("\n" if av is sre_c.AT_BEGINNING else ""), "", "", set()
    if op is sre_c.SUBPATTERN:
        assert not av[1] and not av[2], "flags would change what a literal matches"
        return _required(av[3])
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) and av[0] >= 1:
        lo, hi, sub = av
        e, p, s, subs = _required(sub)
        if e is None:
            return None, p, s, subs
        return (e * lo if lo == hi else None), e * lo, e * lo, subs | {e * lo}
    if op is sre_c.BRANCH:
        alts = [_required(a) for a in av[1]]
        if all(a[0] is not None and a[0] == alts[0][0] for a in alts):
            return alts[0]
        suffix = os.path.commonprefix([a[2][::-1] for a in alts])[::-1]
        return None, os.path.commonprefix([a[1] for a in alts]), suffix, set.intersection(*(a[3] for a in alts))
    return None, "", "", set()  # anything else: nothing known


def test_the_proof_knows_what_an_expression_holds():
    assert {s for s in _required(sre_parse.parse(r"^a(?:b|bc)d\s*$"))[3] if s} == {"\nab", "d"}
    assert {s for s in _required(sre_parse.parse(r"x(?:yz)+w[q]?"))[3] if s} == {"xyz", "yz", "yzw"}
    assert {s for s in _required(sre_parse.parse(r"(?:ab)?c|c"))[3] if s} == {"c"}
    held = _required(sre_parse.parse(r"^\d{4}-[0-9]7(?:\d\d)+\.\d*x"))[3]
    assert {"\n0000-0000", "00.", "x"} <= held and not any("00.0" in h or "0x" in h for h in held)


@pytest.mark.parametrize("name", list(clf.LAYOUTS))
def test_what_a_layout_needs_is_held_by_every_variant(name):
    layout = clf.LAYOUTS[name]
    assert layout.needs, "every layout names what its lines hold (a head without it is not sniffed)"
    for regex in layout.regexes:
        held = _required(sre_parse.parse(regex))[3]
        assert all(any(t in h for h in held) for t in layout.needs), (regex, layout.needs, held)


# --- each search finds every token its sniffer counts -----------------------------------------

_PIECES = ["2024-03-01", "00:00:00", "23:59:59.123", "13-04-23 18:17:02.883", "1681409822883", "startTime",
           "clientIp", "x", "-", "[", '"', "٢٠٢٤-03-01", "1٦81409822883", "GET", "\u00a0", "12", ":", "-01"]
_SEPARATORS = [" ", "\t", "  ", " \t", "\t\t", "\u2003", ""]
lines_ = st.lists(st.tuples(st.sampled_from(_SEPARATORS), st.sampled_from(_PIECES)), min_size=1, max_size=8).map(
    lambda parts: "".join(s + p for s, p in parts))


@given(st.lists(lines_, min_size=1, max_size=3))
def test_the_text_searches_find_every_token_a_sniffer_counts(lines):
    text = formats.Head(b"", lines=lines).text
    for line in lines:
        for tok in (*cloudfront.tokenize(line), *cloudfront.tokenize_loose(line)):
            if cloudfront._DATE.match(tok):
                assert cloudfront.DATE_TOKEN.search(text), (line, tok)
            if cloudfront._TIME.match(tok):
                assert cloudfront._TIME_TOKEN.search(text), (line, tok)
        for tok in line.split("\t"):
            if cdn._ST_PY.match(tok):
                assert cdn._START_TIME_LIKE.search(text), (line, tok)
            if cdn._EPOCH_PY.match(tok):
                assert cdn._EPOCH_LIKE.search(text), (line, tok)
        if cdn._header_tokens(line) is not None:
            assert cdn._HEADER_START.search(text), line


@given(st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b" ", b"\x85"]), max_size=40),
       st.integers(0, 12), st.integers(1, 9))
def test_a_head_splits_only_the_lines_it_keeps_and_the_same_ones(parts, n, size):
    raw = b"".join(parts)
    assert formats._first_lines(raw, n, size) == raw.splitlines()[:n]


def test_head_text_puts_every_line_after_a_newline():
    h = formats.Head(b"", lines=["2024-03-01\t00:00:00", "x٣"])
    assert h.text == "\n2024-03-01\t00:00:00\nx٣"
    assert h.shape == "\n0000-00-00\t00:00:00\nx٣"  # (RE2's \d is an ASCII digit)
    assert cloudfront.DATE_TOKEN.search(h.text) and cloudfront._TIME_TOKEN.search(h.text)
