"""User agents: browser, operating system, device and bot, from the ua-parser project's rules.

Each distinct user agent is classified once (``ua-parser`` with the ``ua-parser-builtins``
rules; the Rust matcher of ``ua-parser-rs`` when it is installed) and remembered for the
life of the process, so a console that answers many dashboard requests classifies only
agents it has not seen yet.  A user agent is a bot when ua-parser puts it in the ``Spider``
device family, or when ``crawlerdetect`` (if installed) knows it as a crawler or a tool.

:func:`register` puts the classification of every agent in ``requests`` into the temp
table ``_ua`` (columns of :data:`COLUMNS`) that the reports join.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

#: columns of the ``_ua`` temp table, after ``user_agent``
COLUMNS = ("browser", "browser_major", "os", "device", "is_bot")
#: what a missing or empty user agent is classified as
NONE = ("None", None, "None", "None", False)
#: remembered classifications at most (a dict emptied when full: agents repeat a lot)
CACHE_MAX = 200_000

_lock = threading.Lock()
_loading = threading.Lock()
_cache: dict[str, tuple] = {}
_parser = None
_crawler = None


def _load():
    global _parser, _crawler
    if _parser is not None:
        return _parser, _crawler
    with _loading:
        if _parser is None:
            parser, _crawler = _make()
            _parser = parser  # (last: a reader that sees the parser sees the crawler too)
    return _parser, _crawler


def preload() -> threading.Thread:
    """Load the rules on a background thread (a few tenths of a second), e.g. while the logs
    a report is made of are read; :func:`classify` waits for it if it comes first."""
    t = threading.Thread(target=_load, name="logferry-ua-rules", daemon=True)
    t.start()
    return t


def _make():
    from ua_parser import BasicResolver, Parser
    from ua_parser.loaders import load_lazy_builtins

    try:  # the Rust matcher (ua-parser-rs), several times faster
        from ua_parser.regex import Resolver
    except ImportError:
        Resolver = BasicResolver  # noqa: N806
    # lazy rules: the Rust matcher takes their patterns as text, so the ~1,400 Python
    # regexes are not compiled (a second of start-up); the pure-Python matcher compiles
    # each the first time it tries it
    parser = Parser(Resolver(load_lazy_builtins()))
    try:
        from crawlerdetect import CrawlerDetect

        crawler = CrawlerDetect()
    except ImportError:
        crawler = False
    return parser, crawler


def _classify_one(ua: str) -> tuple:
    parser, crawler = _load()
    r = parser.parse(ua)
    browser = r.user_agent.family if r.user_agent else "Other"
    major = r.user_agent.major if r.user_agent else None
    os_ = r.os.family if r.os else "Other"
    device = r.device.family if r.device else "Other"
    bot = device == "Spider"
    if not bot and crawler:
        try:
            bot = bool(crawler.isCrawler(ua))
        except Exception:  # noqa: BLE001 - a classifier's failure must not stop a report
            bot = False
    return (browser, major, os_, device, bot)


def classify(ua: str | None) -> tuple:
    """(browser family, browser major, OS family, device family, is_bot) of one agent."""
    if ua is None or ua.strip() in ("", "-"):
        return NONE
    hit = _cache.get(ua)
    if hit is not None:
        return hit
    res = _classify_one(ua)
    with _lock:
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
        _cache[ua] = res
    return res


def register(con: duckdb.DuckDBPyConnection, table: str = "_ua") -> int:
    """Classify every distinct user agent of ``requests`` into the temp table ``table``;
    returns the number of distinct agents."""
    names = [a for (a,) in con.execute(
        "SELECT DISTINCT user_agent FROM requests WHERE user_agent IS NOT NULL").fetchall()]
    rows = [classify(a) for a in names]
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in COLUMNS]
    # list parameters, unnested side by side (no Arrow registration: it would import pandas)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT unnest(CAST(? AS VARCHAR[])) AS user_agent, "
        "unnest(CAST(? AS VARCHAR[])) AS browser, unnest(CAST(? AS VARCHAR[])) AS browser_major, "
        "unnest(CAST(? AS VARCHAR[])) AS os, unnest(CAST(? AS VARCHAR[])) AS device, "
        "unnest(CAST(? AS BOOLEAN[])) AS is_bot",
        [names, *cols],
    )
    return len(names)
