"""The alert scheduler of ``logferry run`` and ``logferry serve``: every rule evaluated
every ``[alerts] every`` (a minute by default) and right after each commit of a follower
(:meth:`Runner.poke`, which only sets a flag: the follower never waits).  Notices go to a
:class:`~logferry.alerts.notify.Dispatcher` thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .engine import Notice, evaluate
from .notify import Dispatcher
from .store import Store

log = logging.getLogger("logferry.alerts")


def db_path(loaded, db: str | os.PathLike | None = None) -> str | None:
    """The usage database: ``db`` (``--db``) or ``[alerts] db`` (relative to the config file)."""
    if db:
        return os.fspath(db)
    d = loaded.cfg.alerts.db
    if not d:
        return None
    p = Path(os.path.expanduser(d))
    return os.fspath(p if p.is_absolute() else Path(loaded.path).parent / p)


class Runner:
    """``load()`` returns the current :class:`~logferry.config.Loaded` (re-read by the
    console when the file changes)."""

    def __init__(self, load: Callable, usage: Any, state_dir: str | os.PathLike, *,
                 console_url: str = "", clock: Callable[[], float] = time.time):
        """``usage``: what the rules read, a :class:`~logferry.usage.source.UsageSource`
        (the database, or the lake's last snapshot: :func:`usage_source`)."""
        self.usage, self.load, self.clock = usage, load, clock
        self.store = Store.at(state_dir)
        self.console_url = console_url
        self._poked = threading.Event()
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """Evaluate soon (a follower committed)."""
        self._poked.set()

    def dispatcher(self, loaded) -> Dispatcher:
        a = loaded.cfg.alerts
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(self.store, a.channels, loaded.secrets, retries=a.retries,
                                          delay=a.retry_delay, clock=self.clock)
        else:  # the config may have changed
            d = self._dispatcher
            d.channels, d.secrets, d.retries, d.delay = a.channels, loaded.secrets, a.retries, a.retry_delay
        return self._dispatcher

    def evaluate_once(self) -> list[Notice]:
        """Evaluate every rule now; notices are handed to the dispatcher."""
        with self._lock:
            loaded = self.load()
            a = loaded.cfg.alerts
            if not a.rules:
                return []
            now = self.clock()
            with self.usage.connect(_scan(a.rules, now), read_only=True) as con:
                notices = evaluate(a.rules, con, now, self.store, console_url=a.console_url or self.console_url)
            self.dispatcher(loaded).submit(notices)
            return notices

    def run(self, stop) -> None:
        """Until ``stop`` (a threading.Event or ship's Stop) is set."""
        nxt = 0.0
        while not _stopped(stop):
            if self.clock() >= nxt or self._poked.is_set():
                self._poked.clear()
                try:
                    self.evaluate_once()
                except Exception as e:  # noqa: BLE001 - a missing or locked database: try again later
                    log.warning("alerts: %s", str(e).splitlines()[0] if str(e) else type(e).__name__)
                try:
                    every = self.load().cfg.alerts.every
                except Exception:  # noqa: BLE001
                    every = 60.0
                nxt = self.clock() + every
            self._poked.wait(0.2)
        if self._dispatcher is not None:
            self._dispatcher.flush(10)
            self._dispatcher.close()


def config_lake(loaded) -> Any:
    """The config's ``[lake]``, opened (LogferryError: not there, unreachable, newer)."""
    from ..lake.cli import LakeArgs, from_config
    from ..usage.source import UsageSource

    args = from_config(None, LakeArgs(None, None), loaded=loaded)
    return UsageSource.lake(args.lake, args.catalog)


def usage_source(loaded, db: str | None = None, lake: str | None = None, catalog: str | None = None) -> Any:
    """What the rules read (a UsageSource; None: no store): ``db`` (``--db``) or ``[alerts]
    db``; else the lake ``lake`` (``--lake``, with its ``catalog``), or the config's
    ``[lake]``.  A lake is opened now (LogferryError: not there, unreachable, newer)."""
    from ..usage.source import UsageSource

    path = None if lake else db_path(loaded, db)
    if path:
        return UsageSource.duckdb(path)
    if lake:
        return UsageSource.lake(lake, catalog)
    return config_lake(loaded) if loaded.cfg.lake.path else None


def _scan(rules: dict[str, Any], now: float) -> Any:
    """What a lake's scan may leave out for ``rules`` at ``now``: the days before the
    earliest any rule reads (its window and lookback, baseline or comparison day); every
    day when a rule is ``sql`` (its query may read any row).  A database ignores it."""
    from ..usage.reports import Params
    from .query import reach

    if any(r.kind == "sql" for r in rules.values()):
        return Params()
    first = now - max(reach(r) for r in rules.values()) - 86400  # (a day more: clocks, late rows)
    return Params(since=datetime.fromtimestamp(first, UTC))


def _stopped(stop) -> bool:
    return stop.is_set() if hasattr(stop, "is_set") else bool(stop.requested)


def start(loaded, load: Callable, stop, *, db: str | None = None, usage: Any = None, state_dir=None,
          console_url: str = "") -> Runner | None:
    """A Runner on its own thread when there is a usage store: the database ``db`` or
    ``[alerts] db``, else ``usage`` (the console's lake) or the config's ``[lake]``; else
    None.  Rules added to the config later are picked up (``load``)."""
    if db_path(loaded, db) or (usage is None and loaded.cfg.alerts.rules):
        usage = usage_source(loaded, db)
    if usage is None:
        return None
    r = Runner(load, usage, state_dir or loaded.state_dir, console_url=console_url)
    threading.Thread(target=r.run, args=(stop,), name="alerts", daemon=True).start()
    return r
