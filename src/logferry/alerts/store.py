"""What alerting remembers, in one SQLite file (``alerts.sqlite`` in the state directory):
each rule's state, the incidents, every notice and its sends, and the silences.

Times are epoch microseconds (UTC).  ``Store(":memory:")`` is what a replay uses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_state (rule TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY, rule TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
    sites TEXT NOT NULL, started INTEGER NOT NULL, resolved INTEGER, first INTEGER, last INTEGER,
    peak REAL, value REAL, unit TEXT, threshold TEXT, details TEXT);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY, at INTEGER NOT NULL, rule TEXT NOT NULL, incident INTEGER,
    event TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, sent_at INTEGER);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY, rule TEXT, site TEXT, until INTEGER NOT NULL, created INTEGER NOT NULL,
    comment TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS evaluations (rule TEXT PRIMARY KEY, at INTEGER NOT NULL, value REAL,
    holds INTEGER NOT NULL, error TEXT);
"""

FILE = "alerts.sqlite"


class Store:
    def __init__(self, path: str | os.PathLike = ":memory:"):
        p = os.fspath(path)
        if p != ":memory:":
            Path(p).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(p, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.RLock()
        with self._lock:
            if p != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SCHEMA)

    @classmethod
    def at(cls, state_dir: str | os.PathLike, *, create: bool = True) -> Store:
        """The state directory's store; ``create=False``: an empty one in memory when the
        file does not exist yet (what a command that only reads uses: it writes nothing)."""
        path = Path(state_dir) / FILE
        return cls(path if create or path.exists() else ":memory:")

    def close(self) -> None:
        self.db.close()

    def _all(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, args)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def _run(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self.db.execute(sql, args).lastrowid or 0

    # --- rule state -----------------------------------------------------------------------
    def state(self, rule: str) -> dict[str, Any]:
        rows = self._all("SELECT data FROM rule_state WHERE rule = ?", (rule,))
        return json.loads(rows[0]["data"]) if rows else {"status": "ok"}

    def save_state(self, rule: str, st: dict[str, Any]) -> None:
        self._run("INSERT OR REPLACE INTO rule_state VALUES (?, ?)", (rule, json.dumps(st)))

    def evaluated(self, rule: str, at: int, value: float | None, holds: bool, error: str | None = None) -> None:
        self._run("INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?)", (rule, at, value, holds, error))

    def evaluations(self) -> dict[str, dict[str, Any]]:
        return {r["rule"]: r for r in self._all("SELECT * FROM evaluations")}

    # --- incidents ----------------------------------------------------------------------
    def open_incident(self, rule: str, r, started: int, st: dict[str, Any], threshold: str, unit: str) -> int:
        return self._run(
            "INSERT INTO incidents (rule, kind, severity, sites, started, first, last, peak, value, unit, "
            "threshold, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rule, r.kind, r.severity, json.dumps(list(r.sites)), started, st.get("first"), st.get("last"),
             st.get("peak"), st.get("value"), unit, threshold, json.dumps(st.get("details"))))

    def update_incident(self, iid: int, st: dict[str, Any], resolved: int | None = None) -> None:
        self._run("UPDATE incidents SET first = ?, last = ?, peak = ?, value = ?, details = ?, "
                  "resolved = coalesce(?, resolved) WHERE id = ?",
                  (st.get("first"), st.get("last"), st.get("peak"), st.get("value"),
                   json.dumps(st.get("details")), resolved, iid))

    def incidents(self, rule: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("WHERE rule = ?", (rule,)) if rule else ("", ())
        rows = self._all(f"SELECT * FROM incidents {where} ORDER BY started DESC, id DESC LIMIT ?",
                         (*args, limit))
        for r in rows:
            r["sites"] = json.loads(r["sites"])
            r["details"] = json.loads(r["details"]) if r["details"] else None
        return rows

    # --- notices ------------------------------------------------------------------------
    def add_notice(self, at: int, rule: str, incident: int | None, event: str, channel: str, status: str) -> int:
        return self._run("INSERT INTO notices (at, rule, incident, event, channel, status) VALUES (?, ?, ?, ?, ?, ?)",
                         (at, rule, incident, event, channel, status))

    def notice_done(self, nid: int, status: str, attempts: int, error: str | None, sent_at: int | None) -> None:
        self._run("UPDATE notices SET status = ?, attempts = ?, error = ?, sent_at = ? WHERE id = ?",
                  (status, attempts, error, sent_at, nid))

    def notices(self, rule: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("WHERE rule = ?", (rule,)) if rule else ("", ())
        return self._all(f"SELECT * FROM notices {where} ORDER BY at DESC, id DESC LIMIT ?", (*args, limit))

    # --- silences -----------------------------------------------------------------------
    def silence(self, rule: str | None, site: str | None, until: int, now: int, comment: str = "") -> int:
        return self._run("INSERT INTO silences (rule, site, until, created, comment) VALUES (?, ?, ?, ?, ?)",
                         (rule, site, until, now, comment))

    def unsilence(self, sid: int) -> bool:
        with self._lock:
            return self.db.execute("DELETE FROM silences WHERE id = ?", (sid,)).rowcount > 0

    def silences(self, now: int | None = None) -> list[dict[str, Any]]:
        if now is None:
            return self._all("SELECT * FROM silences ORDER BY until DESC, id")
        return self._all("SELECT * FROM silences WHERE until > ? ORDER BY until DESC, id", (now,))

    def silenced(self, rule: str, sites: tuple[str, ...], now: int) -> bool:
        """A silence of the rule, or of every one of its sites, is in force at ``now``."""
        active = self.silences(now)
        if any(s["rule"] == rule for s in active):
            return True
        quiet = {s["site"] for s in active if s["site"]}
        return bool(sites) and set(sites) <= quiet
