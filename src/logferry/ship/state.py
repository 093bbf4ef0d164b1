"""Job state in SQLite (WAL): file checkpoints, runs, delivered objects.

Every step is one transaction: recording the intent to deliver an object, and then
recording its delivery together with the new checkpoints and the next sequence
number.  A process killed between the two leaves the intent behind; the next run
starts from the old checkpoint and reuses the intended name, so the object is
overwritten at the destination rather than duplicated.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..values import INT64_MAX

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  name TEXT PRIMARY KEY,
  stopped INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL DEFAULT 0,
  pending_name TEXT,
  pending_seq INTEGER
);
CREATE TABLE IF NOT EXISTS files (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job TEXT NOT NULL,
  path TEXT NOT NULL,
  dev INTEGER, ino INTEGER,
  fp TEXT NOT NULL, fp_len INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  mtime REAL NOT NULL DEFAULT 0,
  line INTEGER NOT NULL DEFAULT 0,
  anchor_line INTEGER NOT NULL DEFAULT 0,
  anchor_off INTEGER NOT NULL DEFAULT 0,
  header TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT '',
  eof INTEGER NOT NULL DEFAULT 0,
  first_seen REAL NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_job ON files(job);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job TEXT NOT NULL,
  started REAL NOT NULL,
  ended REAL,
  status TEXT NOT NULL,
  objects INTEGER NOT NULL DEFAULT 0,
  records INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  bad INTEGER NOT NULL DEFAULT 0,
  error TEXT
);
CREATE INDEX IF NOT EXISTS runs_job ON runs(job);
CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL,
  job TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  records INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  delivered REAL NOT NULL,
  first_ts TEXT,
  pruned INTEGER NOT NULL DEFAULT 0,
  dest TEXT
);
CREATE INDEX IF NOT EXISTS objects_run ON objects(run_id);
CREATE INDEX IF NOT EXISTS objects_job ON objects(job);
CREATE TABLE IF NOT EXISTS job_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job TEXT NOT NULL,
  at REAL NOT NULL,
  event TEXT NOT NULL
);
"""

#: the tables (and columns) that hold what belongs to one job's identity
_IDENTITY = (("jobs", "name"), ("files", "job"), ("runs", "job"), ("objects", "job"), ("job_events", "job"))

#: columns added after the first release (state files written before get them on open)
MIGRATIONS = {("objects", "dest"): "ALTER TABLE objects ADD COLUMN dest TEXT",
              # NULL: a run of the job; 'rerun': a re-export of a past range (`export rerun`)
              ("runs", "kind"): "ALTER TABLE runs ADD COLUMN kind TEXT",
              ("runs", "note"): "ALTER TABLE runs ADD COLUMN note TEXT"}

_RUN_COLS = "id, job, started, ended, status, objects, records, bytes, bad, error, kind, note"


@dataclass
class FileState:
    id: int
    job: str
    path: str
    dev: int | None
    ino: int | None
    fp: str
    fp_len: int
    size: int
    mtime: float
    line: int
    anchor_line: int
    anchor_off: int
    header: str
    title: str
    eof: int
    first_seen: float
    deleted: int


@dataclass
class Run:
    id: int
    job: str
    started: float
    ended: float | None
    status: str
    objects: int
    records: int
    bytes: int
    bad: int
    error: str | None
    #: None for a run of the job, 'rerun' for a re-export of a past range
    kind: str | None = None
    #: what a re-export covered (``since .. until``)
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ObjectRow:
    id: int
    run_id: int
    job: str
    name: str
    size: int
    records: int
    sha256: str
    delivered: float
    first_ts: str | None
    pruned: int
    dest: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class State:
    def __init__(self, directory: str | os.PathLike):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, "state.sqlite")
        try:
            os.makedirs(directory, exist_ok=True)
            self.con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.con.execute("PRAGMA journal_mode=WAL")
        except OSError as e:
            raise ConfigError(f"state directory {self.directory}: cannot use it: "
                              f"{e.strerror or e}") from None
        except sqlite3.Error as e:
            raise ConfigError(f"state directory {self.directory}: cannot open or write "
                              f"state.sqlite: {e}") from None
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(SCHEMA)
        for (table, col), sql in MIGRATIONS.items():
            if col not in {r[1] for r in self.con.execute(f"PRAGMA table_info({table})")}:
                self.con.execute(sql)
        self.con.execute("CREATE INDEX IF NOT EXISTS objects_name ON objects(name)")

    def close(self) -> None:
        self.con.close()

    def tx(self):
        return _Tx(self.con)

    # -- jobs ---------------------------------------------------------------------
    def _job(self, name: str) -> sqlite3.Row:
        self.con.execute("INSERT OR IGNORE INTO jobs(name) VALUES (?)", (name,))
        return self.con.execute(
            "SELECT stopped, seq, pending_name, pending_seq FROM jobs WHERE name=?", (name,)
        ).fetchone()

    def is_stopped(self, job: str) -> bool:
        return bool(self._job(job)[0])

    def set_stopped(self, job: str, stopped: bool, now: float | None = None) -> None:
        """Stop or start a job; a change is recorded as a 'stop' / 'start' event (the first
        run after a start is the backfill of the stopped period)."""
        import time

        with self.tx():
            was = bool(self._job(job)[0])
            self.con.execute("UPDATE jobs SET stopped=? WHERE name=?", (int(stopped), job))
            if was != stopped:
                self.con.execute("INSERT INTO job_events(job, at, event) VALUES (?,?,?)",
                                 (job, time.time() if now is None else now, "stop" if stopped else "start"))

    def next_seq(self, job: str) -> int:
        return int(self._job(job)[1])

    def pending(self, job: str) -> tuple[str | None, int | None]:
        r = self._job(job)
        return r[2], r[3]

    def set_pending(self, job: str, name: str, seq: int) -> None:
        """Record the intent to deliver ``name`` (before the upload)."""
        with self.tx():
            self._job(job)
            self.con.execute(
                "UPDATE jobs SET pending_name=?, pending_seq=? WHERE name=?", (name, seq, job)
            )

    def retire(self, job: str, now: float | None = None) -> str | None:
        """The job's identity ends (it was deleted): its checkpoints, runs, objects, events
        and sequence move to ``<job>#<UTC time>`` (``#`` is never in a job name), so a
        new job of that name starts with none of them and prune never touches the old
        job's objects; the old history stays readable under that key.  Returns the key,
        or None when the state held nothing of the job."""
        import time
        from datetime import UTC, datetime

        t = time.time() if now is None else now
        key = f"{job}#{datetime.fromtimestamp(t, UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
        with self.tx():
            held = sum(self.con.execute(f"SELECT count(*) FROM {tbl} WHERE {col}=?", (job,)).fetchone()[0]
                       for tbl, col in _IDENTITY)
            if not held:
                return None
            for tbl, col in _IDENTITY:
                self.con.execute(f"UPDATE {tbl} SET {col}=? WHERE {col}=?", (key, job))
        return key

    # -- files --------------------------------------------------------------------
    def files(self, job: str, include_deleted: bool = False) -> list[FileState]:
        q = "SELECT * FROM files WHERE job=?" + ("" if include_deleted else " AND deleted=0")
        return [FileState(*r) for r in self.con.execute(q + " ORDER BY id", (job,))]

    def file(self, fid: int) -> FileState:
        row = self.con.execute("SELECT * FROM files WHERE id=?", (fid,)).fetchone()
        return FileState(*row)

    def add_file(self, job: str, path: str, dev, ino, fp: str, fp_len: int, size: int,
                 mtime: float, now: float) -> FileState:
        with self.tx():
            cur = self.con.execute(
                "INSERT INTO files(job, path, dev, ino, fp, fp_len, size, mtime, first_seen)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (job, path, dev, ino, fp, fp_len, size, mtime, now),
            )
        return self.file(cur.lastrowid)

    def update_file_seen(self, fid: int, path: str, fp: str, fp_len: int, size: int,
                         mtime: float) -> None:
        with self.tx():
            self.con.execute(
                "UPDATE files SET path=?, fp=?, fp_len=?, size=?, mtime=? WHERE id=?",
                (path, fp, fp_len, size, mtime, fid),
            )

    def relink_file(self, fid: int, path: str, dev, ino, fp: str, fp_len: int, size: int,
                    mtime: float) -> None:
        """The file ``fid`` now lives elsewhere (rotated and compressed): new identity,
        same checkpoint (line numbers in the decompressed content)."""
        with self.tx():
            self.con.execute(
                "UPDATE files SET path=?, dev=?, ino=?, fp=?, fp_len=?, size=?, mtime=?, anchor_line=0,"
                " anchor_off=0 WHERE id=?",
                (path, dev, ino, fp, fp_len, size, mtime, fid),
            )

    def mark_deleted(self, fid: int) -> None:
        with self.tx():
            self.con.execute("UPDATE files SET deleted=1 WHERE id=?", (fid,))

    # -- runs ---------------------------------------------------------------------
    def begin_run(self, job: str, now: float, kind: str | None = None, note: str | None = None) -> int:
        with self.tx():
            cur = self.con.execute(
                "INSERT INTO runs(job, started, status, kind, note) VALUES (?,?,'running',?,?)",
                (job, now, kind, note)
            )
        return int(cur.lastrowid)

    def end_run(self, run_id: int, now: float, status: str, error: str | None = None,
                bad: int = 0) -> None:
        with self.tx():
            self.con.execute(
                "UPDATE runs SET ended=?, status=?, error=?, bad=? WHERE id=?",
                (now, status, error, bad, run_id),
            )

    def close_dead_runs(self, job: str, now: float) -> None:
        """Runs left 'running' by a killed process are marked as such."""
        with self.tx():
            self.con.execute(
                "UPDATE runs SET status='failed', ended=?, error='process died during the run'"
                " WHERE job=? AND status='running'",
                (now, job),
            )

    def runs(self, job: str | None = None, failed_only: bool = False, limit: int = 100, *,
             status: str | None = None, offset: int = 0, jobs: Iterable[str] | None = None) -> list[Run]:
        """Runs, newest first; ``jobs`` limits them to those jobs, ``offset`` pages."""
        where, args = self._runs_where(job, failed_only, status, jobs)
        q = (f"SELECT {_RUN_COLS} FROM runs" + where + " ORDER BY id DESC LIMIT ? OFFSET ?")
        return [Run(*r) for r in self.con.execute(q, [*args, limit, offset])]

    def count_runs(self, job: str | None = None, failed_only: bool = False, *,
                   status: str | None = None, jobs: Iterable[str] | None = None) -> int:
        where, args = self._runs_where(job, failed_only, status, jobs)
        return int(self.con.execute("SELECT count(*) FROM runs" + where, args).fetchone()[0])

    @staticmethod
    def _runs_where(job, failed_only, status, jobs) -> tuple[str, list]:
        cond, args = [], []
        if job:
            cond.append("job=?")
            args.append(job)
        if failed_only:
            cond.append("status='failed'")
        if status:
            cond.append("status=?")
            args.append(status)
        if jobs is not None:
            js = list(jobs)
            cond.append(f"job IN ({','.join('?' * len(js))})" if js else "0")
            args.extend(js)
        return (" WHERE " + " AND ".join(cond)) if cond else "", args

    def backfill_runs(self, run_ids: Iterable[int]) -> set[int]:
        """Which of these runs are backfills: the first run of a job after it was started
        again (it delivers what came in while the job was stopped)."""
        ids = list(run_ids)
        if not ids:
            return set()
        q = (f"SELECT r.id FROM runs r WHERE r.id IN ({','.join('?' * len(ids))}) AND r.kind IS NULL"
             " AND EXISTS (SELECT 1 FROM job_events e WHERE e.job=r.job AND e.event='start' AND e.at<=r.started"
             " AND e.at > COALESCE((SELECT max(p.started) FROM runs p WHERE p.job=r.job AND p.id<r.id"
             " AND p.kind IS NULL), 0))")
        return {int(r[0]) for r in self.con.execute(q, ids)}

    def run(self, run_id: int) -> Run | None:
        """The run of that id; None when there is none (an id past SQLite's integers too)."""
        if not 0 < run_id <= INT64_MAX:
            return None
        r = self.con.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id=?", (run_id,)).fetchone()
        return Run(*r) if r else None

    def last_run(self, job: str) -> Run | None:
        rs = [r for r in self.runs(job, limit=5) if r.status != "running"]
        return rs[0] if rs else None

    def last_started(self, job: str) -> float | None:
        """When the job's last run (not a re-export) started: the schedule's rhythm."""
        r = self.con.execute("SELECT max(started) FROM runs WHERE job=? AND kind IS NULL", (job,)).fetchone()
        return r[0]

    def last_delivery(self, job: str) -> Run | None:
        """The job's last run that delivered objects (a re-export does not count)."""
        r = self.con.execute(f"SELECT {_RUN_COLS} FROM runs WHERE job=? AND objects>0 AND kind IS NULL"
                             " ORDER BY id DESC LIMIT 1", (job,)).fetchone()
        return Run(*r) if r else None

    # -- objects ------------------------------------------------------------------
    def commit_object(
        self,
        job: str,
        run_id: int,
        name: str,
        size: int,
        records: int,
        sha256: str,
        now: float,
        first_ts: str | None,
        checkpoints: Iterable[tuple[int, int, int, int, str, int]],
        seq: int | None,
        dest: str | None = None,
    ) -> None:
        """After the destination confirmed ``name``: record it, advance the checkpoints
        (file id, line, anchor line, anchor offset, header, eof) and the sequence number,
        clear the intent -- in one transaction."""
        with self.tx():
            self.con.execute(
                "INSERT INTO objects(run_id, job, name, size, records, sha256, delivered, first_ts, dest)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, job, name, size, records, sha256, now, first_ts, dest),
            )
            for fid, line, aline, aoff, header, eof in checkpoints:
                self.con.execute(
                    "UPDATE files SET line=?, anchor_line=?, anchor_off=?, header=?, eof=?"
                    " WHERE id=?",
                    (line, aline, aoff, header, eof, fid),
                )
            if seq is not None:  # (None: a re-export, which leaves the job's numbering alone)
                self.con.execute(
                    "UPDATE jobs SET seq=?, pending_name=NULL, pending_seq=NULL WHERE name=?",
                    (seq, job),
                )
            self.con.execute(
                "UPDATE runs SET objects=objects+1, records=records+?, bytes=bytes+? WHERE id=?",
                (records, size, run_id),
            )

    def set_checkpoints(self, checkpoints: Iterable[tuple[int, int, int, int, str, int]]) -> None:
        """Advance checkpoints without an object (e.g. only filtered-out or bad lines)."""
        with self.tx():
            for fid, line, aline, aoff, header, eof in checkpoints:
                self.con.execute(
                    "UPDATE files SET line=?, anchor_line=?, anchor_off=?, header=?, eof=?"
                    " WHERE id=?",
                    (line, aline, aoff, header, eof, fid),
                )

    def objects(self, run_id: int | None = None, job: str | None = None) -> list[ObjectRow]:
        if run_id is not None:
            rows = self.con.execute("SELECT * FROM objects WHERE run_id=? ORDER BY id", (run_id,))
        else:
            rows = self.con.execute("SELECT * FROM objects WHERE job=? ORDER BY id", (job,))
        return [ObjectRow(*r) for r in rows]

    def delivered_as(self, name: str, dest: str, job: str) -> ObjectRow | None:
        """The delivered (not pruned) object that ``name`` holds at ``dest``, if any: one
        of any job of this state with that destination (or of ``job``, for objects
        recorded before destinations were)."""
        r = self.con.execute(
            "SELECT * FROM objects WHERE name=? AND pruned=0 AND (dest=? OR (dest IS NULL AND job=?))"
            " ORDER BY id DESC LIMIT 1", (name, dest, job)).fetchone()
        return ObjectRow(*r) if r else None

    def delivered_names(self, job: str) -> set[str]:
        """Names of the job's delivered objects not yet pruned."""
        return {r[0] for r in self.con.execute(
            "SELECT name FROM objects WHERE job=? AND pruned=0", (job,))}

    def mark_pruned(self, job: str, names: Iterable[str]) -> None:
        with self.tx():
            for n in names:
                self.con.execute("UPDATE objects SET pruned=1 WHERE job=? AND name=?", (job, n))

    def dump(self) -> str:  # debugging aid
        return json.dumps([r.as_dict() for r in self.runs()], indent=1)


class _Tx:
    """A write transaction; inside another one it is part of that one (which commits it):
    a run registers the files it found in one commit, not one each (every commit is a sync
    to disk)."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con
        self.outer = False

    def __enter__(self):
        self.outer = self.con.in_transaction
        if not self.outer:
            self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, et, ev, tb):
        if self.outer:
            return False
        if et is None:
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")
        return False
