"""The clf layouts are tables: token names rendered into one RE2 expression each, the
numpy fast path cut from the same first layout."""

from __future__ import annotations

import re

from logferry.formats import clf


def test_a_layout_renders_to_named_groups_and_knows_its_optional_tokens():
    tokens = {"a": r"\d+", "b": r"\S+", "d": "x", "e": "-", "e=quoted": r'"[^"]*"', "c": ".*?"}
    regex, optional = clf.render(r"a (b|d) e=quoted[ c]\s*$", tokens)
    assert regex == r'(?P<a>\d+) (?:(?P<b>\S+)|(?P<d>x)) (?P<e>"[^"]*")(?: (?P<c>.*?))?\s*$'
    assert optional == {"b", "d", "c"}  # inside (..|..) or [..]
    assert re.match(regex, '12 x "q" rest').groupdict() == {"a": "12", "b": "x", "d": None, "e": '"q"', "c": "rest"}


def test_every_layout_compiles_and_the_fast_cut_follows_its_first_layout():
    for layout in clf.LAYOUTS.values():
        for regex in layout.regexes:
            re.compile(regex)
    combined = clf.LAYOUTS["combined"]
    assert [n for n, _, _ in combined.fast_cut] == [
        "remote_host", "ident", "remote_user", "time", "request", "status", "bytes", "referer", "user_agent"]
    assert combined.fast_extra and not clf.LAYOUTS["common"].fast_extra
    assert not clf.LAYOUTS["haproxy"].fast_cut  # no fast path
    assert clf.LAYOUTS["elb"].optional == {"user_agent", "ssl_cipher", "ssl_protocol", "extra"}
