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
from pathlib import Path

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

    def __init__(self, load: Callable, db: str, state_dir: str | os.PathLike, *,
                 console_url: str = "", clock: Callable[[], float] = time.time):
        self.load, self.db, self.clock = load, db, clock
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
        from ..usage.db import connect

        with self._lock:
            loaded = self.load()
            a = loaded.cfg.alerts
            if not a.rules:
                return []
            con = connect(self.db, read_only=True)
            try:
                notices = evaluate(a.rules, con, self.clock(), self.store,
                                   console_url=a.console_url or self.console_url)
            finally:
                con.close()
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


def _stopped(stop) -> bool:
    return stop.is_set() if hasattr(stop, "is_set") else bool(stop.requested)


def start(loaded, load: Callable, stop, *, db: str | None = None, state_dir=None,
          console_url: str = "") -> Runner | None:
    """A Runner on its own thread when there is a usage database (``db`` or ``[alerts]
    db``); else None.  Rules added to the config later are picked up (``load``)."""
    path = db_path(loaded, db)
    if not path:
        return None
    r = Runner(load, path, state_dir or loaded.state_dir, console_url=console_url)
    threading.Thread(target=r.run, args=(stop,), name="alerts", daemon=True).start()
    return r
