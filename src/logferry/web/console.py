"""What the console does, as plain functions over the engine's own pieces: the config
model and loader (:mod:`logferry.config`), the job state (:class:`~logferry.ship.state.State`),
one run (``logferry.ship.cli._run_one``, the function ``export run`` and the scheduler
call), the scheduler loop of ``logferry run`` and stop/start.  Nothing here re-implements
jobs, history or scheduling; the routes in :mod:`logferry.web.app` only add access rules.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Loaded
from ..errors import ConfigError, LogferryError, first_line
from ..ship.status import brief, job_backlog
from . import configfile
from .tokens import Token

log = logging.getLogger("logferry.web")

try:  # contract 1 (the ship engineer's job lock)
    from ..ship.lock import JobRunning
    from ..ship.lock import running as lock_running
except ImportError:  # pragma: no cover - until it lands
    JobRunning = None  # type: ignore[assignment]
    lock_running = None


class NotFound(LogferryError):
    pass


class Forbidden(LogferryError):
    pass


class Busy(LogferryError):
    """409: running, stopped, or must be stopped first."""

    def __init__(self, msg: str, code: str = "conflict"):
        super().__init__(msg)
        self.code = code


def iso(t: float | None) -> str | None:
    return None if not t else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_sites(j) -> tuple[str, ...]:
    return tuple(getattr(j, "sites", None) or ())


_ATTEMPTS = re.compile(r"gave up after (\d+) attempts")
#: the history's pages: at most this many runs a page, and pages numbered up to this
MAX_PER_PAGE = 1000
MAX_PAGE = 10**9


class Console:
    """One console: a config file, its state directory, the usage database or lake the
    reports read (``usage``, a :class:`~logferry.usage.source.UsageSource`), the stop
    request shared with the scheduler and every run it starts."""

    def __init__(self, config: str | Path, state_dir: str | Path | None = None,
                 db: str | Path | None = None, usage=None):
        from ..ship.engine import Stop

        self.config_path = Path(config)
        self.state_override = Path(state_dir) if state_dir else None
        self.db = Path(db) if db else None
        self._usage = usage
        self.stop = Stop()
        self.follower = None
        #: why the follower stopped, when an error stopped it (``follower_status`` says so)
        self.follower_error: str | None = None
        self._loaded: tuple[int, Loaded] | None = None
        self._lock = threading.Lock()
        self._runs: dict[str, threading.Thread] = {}
        self._sched_version = -1

    # -- config and state ----------------------------------------------------------------
    def _mtime(self) -> int:
        try:
            return self.config_path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def loaded(self) -> Loaded:
        m = self._mtime()
        with self._lock:
            if self._loaded is None or self._loaded[0] != m:
                ld = configfile.load(self.config_path)
                if self.state_override is not None:
                    ld.state_dir = self.state_override
                self._loaded = (m, ld)
            return self._loaded[1]

    @property
    def state_dir(self) -> Path:
        if self.state_override is not None:
            return self.state_override
        return Path(self.loaded().state_dir)

    @contextmanager
    def state(self):
        from ..ship.state import State

        st = State(self.state_dir)
        try:
            yield st
        finally:
            st.close()

    # -- jobs ------------------------------------------------------------------------------
    def visible(self, tok: Token) -> dict[str, Any]:
        return {n: j for n, j in sorted(self.loaded().cfg.jobs.items()) if tok.sees(job_sites(j))}

    def job(self, tok: Token, name: str):
        j = self.visible(tok).get(name)
        if j is None:
            raise NotFound(f"no job named {name!r}")
        return j

    def running(self, st, name: str) -> dict | None:
        if lock_running is not None:
            r = lock_running(self.state_dir, name)
            if r:
                since = r.get("since")
                return {"pid": r.get("pid"), "host": r.get("host"),
                        "since": iso(since) if isinstance(since, (int, float)) else since}
            return None
        rs = st.runs(name, limit=1)
        if rs and rs[0].status == "running":
            return {"pid": None, "host": None, "since": iso(rs[0].started)}
        return None

    def job_row(self, st, name: str, j, backlog: bool = False) -> dict[str, Any]:
        """A job's row of the Exports page; ``backlog``: with how far behind it is (reads
        the sources' listing and one chunk, so only when asked)."""
        from ..ship.schedule import Schedule

        stopped = st.is_stopped(name)
        last = st.last_run(name)
        run = self.running(st, name)
        sched = Schedule.make(j.every_minutes, j.cron)
        nxt = None
        if not stopped and (sched.every_secs or sched.cron):
            nxt = sched.next_run(st.last_started(name), time.time())
        state = "running" if run else "stopped" if stopped else (
            "failing" if last and last.status in ("failed", "partial") else "active")
        from ..destinations import scheme_of

        row = {
            "name": name,
            "dest": j.dest,
            "dest_type": scheme_of(j.dest),
            "to": j.to,
            "compress": j.compress,
            "schedule": f"every {j.every_minutes:g} min" if j.every_minutes else (
                f"cron {j.cron}" if j.cron else "manual"),
            "sites": list(job_sites(j)),
            "state": state,
            "stopped": stopped,
            "running": run,
            "last_run": None if last is None else {**brief(last), "error": last.error},
            "last_delivery": brief(st.last_delivery(name)),
            "next_run": iso(nxt),
            "version": configfile.job_version(self.config_path, name),
        }
        if backlog:
            row["backlog"] = job_backlog(self.loaded(), st, name, time.time())
        return row

    def jobs(self, tok: Token, backlog: bool = False) -> list[dict[str, Any]]:
        with self.state() as st:
            return [self.job_row(st, n, j, backlog) for n, j in self.visible(tok).items()]

    def job_detail(self, tok: Token, name: str) -> dict[str, Any]:
        from .desttypes import decompose

        j = self.job(tok, name)
        raw = configfile.raw_jobs(self.config_path).get(name, {})
        with self.state() as st:
            row = self.job_row(st, name, j, backlog=True)
        row["config"] = raw
        row["destination"] = decompose(j.dest, dict(j.dest_options))
        return row

    # -- create / delete: a job's identity ----------------------------------------------------
    @contextmanager
    def _locked(self, name: str):
        """The job's run lock (a job being created or deleted is never running)."""
        from ..ship.lock import job_lock

        try:
            with job_lock(self.state_dir, name):
                yield
        except JobRunning as e:
            raise Busy(f"job {name} is running; wait for the run to end", "running") from e

    def _retire(self, name: str) -> None:
        """The state's history, objects and checkpoints of ``name`` leave the name (kept,
        readable, under the retired identity) and so does its bad-rows file."""
        import os

        from ..ship.engine import bad_rows_file

        with self.state() as st:
            key = st.retire(name)
        bad = bad_rows_file(self.state_dir, name)
        if key is not None and os.path.exists(bad):
            os.replace(bad, os.path.join(os.path.dirname(bad), f"{key}.bad.jsonl"))

    def create_job(self, name: str, job: dict[str, Any], stopped: bool = False) -> None:
        """A new job: whatever the state still holds under its name (a job deleted
        earlier, by the console or by hand) is retired before any run of it (the job's lock
        is held throughout), so it starts with none of it; ``stopped``: it starts stopped
        (a duplicate)."""
        with self._locked(name):
            configfile.save_job(self.config_path, name, job, None, new=True)
            self._retire(name)
            if stopped:
                with self.state() as st:
                    st.set_stopped(name, True)

    def delete_job(self, tok: Token, name: str, version: str | None) -> None:
        """Remove the job from the config and retire its identity in the state."""
        self.job(tok, name)
        with self._locked(name):
            configfile.delete_job(self.config_path, name, version)
            self._retire(name)

    # -- stop / start / run now ------------------------------------------------------------
    def set_stopped(self, tok: Token, name: str, stopped: bool, run: bool = False) -> dict[str, Any]:
        """Stop or start a job; ``run`` (with a start): run the catch-up at once, in the
        background, instead of at the next tick of the schedule."""
        self.job(tok, name)
        with self.state() as st:
            st.set_stopped(name, stopped)
        started = False
        if run and not stopped:
            try:
                started = self.run_now(tok, name)["started"]
            except Busy:  # a run of it is still in flight: that one delivers
                pass
        return {**self.job_row_for(tok, name), "run_started": started}

    def job_row_for(self, tok: Token, name: str) -> dict[str, Any]:
        j = self.job(tok, name)
        with self.state() as st:
            return self.job_row(st, name, j)

    def run_now(self, tok: Token, name: str) -> dict[str, Any]:
        """Start one run in a thread through the engine's run function (which takes the
        job lock); a job already running or stopped is a conflict (Start runs the
        catch-up of a stopped job)."""
        self.job(tok, name)
        with self.state() as st:
            if st.is_stopped(name):
                raise Busy(f"job {name} is stopped; Start runs what it missed at once", "stopped")
        return self._start(name)

    def rerun(self, tok: Token, name: str, since: str, until: str) -> dict[str, Any]:
        """Re-export a past range of a job (``logferry export rerun``) in a thread; also of a
        stopped job; 422 for a bad range, 409 while a run of it is in flight."""
        from ..ship.rerun import Rerun, parse_time

        self.job(tok, name)
        times, errs = {}, {}
        for key, v in (("since", since), ("until", until)):
            try:
                times[key] = parse_time(v or "", key)
            except ConfigError as e:
                errs[key] = str(e)
        if errs:
            raise configfile.Invalid(errs)
        try:
            rng = Rerun(times["since"], times["until"])
        except ConfigError as e:
            raise configfile.Invalid({"until": str(e)}) from None
        return {**self._start(name, rng), "since": since, "until": until}

    def _start(self, name: str, rerun=None) -> dict[str, Any]:
        with self.state() as st:
            r = self.running(st, name)
        with self._lock:
            t = self._runs.get(name)
            if not r and t is not None:
                t.join(2)  # its run has ended (the lock is free): the thread is closing up
            if r or (t is not None and t.is_alive()):
                since = (r or {}).get("since")
                raise Busy(f"job {name} is already running" + (f" (since {since})" if since else ""),
                           "running")
            t = threading.Thread(target=self._run, args=(name, rerun), name=f"run-{name}", daemon=True)
            self._runs[name] = t
            t.start()
        return {"job": name, "started": True}

    def _run(self, name: str, rerun=None) -> None:
        from ..ship import cli as ship_cli

        try:
            res = ship_cli._run_one(self.loaded(), name, self.stop, rerun=rerun)
            if res is not None:
                log.info("%s: %s %s %s: %d objects, %d records", name, "re-export" if rerun else "run",
                         res.run_id, res.status, res.objects, res.records)
        except Exception as e:  # noqa: BLE001 - a run's failure is in its history
            if JobRunning is not None and isinstance(e, JobRunning):
                log.warning("%s", e)
            elif isinstance(e, LogferryError):
                log.warning("%s: %s", name, e)
            else:
                log.exception("%s: run failed", name)

    def wait_runs(self, timeout: float | None = None) -> None:
        for t in list(self._runs.values()):
            t.join(timeout)

    # -- the follower of `serve --follow` ------------------------------------------------------
    def follow(self, stop: threading.Event) -> None:
        """Run the follower until ``stop`` (a thread's target); an error that ends it is
        logged in one line and kept for :meth:`follower_status`."""
        try:
            self.follower.run(stop)
        except Exception as e:  # noqa: BLE001 - any failure is reported, not a traceback
            self.follower_error = first_line(e)
            log.error("the follower stopped: %s", self.follower_error)

    def follower_status(self) -> dict[str, Any] | None:
        """The follower's status (None without one); its ``errors`` name why it stopped."""
        if self.follower is None:
            return None
        st = self.follower.status()
        if self.follower_error is not None:
            st["errors"] = {**st["errors"], "follower": f"stopped: {self.follower_error}"}
        return st

    @property
    def usage(self):
        """What the reports read: the source given (the lake), else the database ``db``."""
        from ..usage.source import UsageSource

        if self._usage is not None:
            return self._usage
        return UsageSource.duckdb(str(self.db)) if self.db else None

    @usage.setter
    def usage(self, source) -> None:
        self._usage = source

    def store_status(self) -> dict[str, Any] | None:
        """What the reports read (``UsageSource.describe``; None without a store); a lake
        whose catalog cannot be read now says so in ``error``."""
        if self.usage is None:
            return None
        try:
            return self.usage.describe()
        except Exception as e:  # noqa: BLE001 - the catalog, not a bug: shown in one line
            from ..usage.source import shown

            return {"kind": self.usage.kind, "location": shown(self.usage.location),
                    "error": first_line(e)}

    # -- the scheduler of `logferry run` -----------------------------------------------------
    def _schedules(self, loaded: Loaded):
        from ..ship.schedule import Schedule

        out = {}
        for n, j in loaded.cfg.jobs.items():
            s = Schedule.make(j.every_minutes, j.cron)
            if s.every_secs or s.cron:
                out[n] = s
        return out

    def scheduler(self) -> None:
        """``logferry run``'s loop, in a thread; the config is re-read when the file changes."""
        from ..ship import cli as ship_cli

        seen = [self._mtime()]

        def reload():
            m = self._mtime()
            if m == seen[0]:
                return None
            seen[0] = m
            try:
                ld = self.loaded()
            except ConfigError as e:
                log.warning("scheduler: %s", e)
                return None
            return ld, self._schedules(ld)

        reload.pending = lambda: self._mtime() != seen[0]
        try:
            ld = self.loaded()
        except ConfigError as e:
            log.error("scheduler: %s", e)
            return
        ship_cli.scheduler_loop(ld, self._schedules(ld), self.stop, clock=time.time, sleep=time.sleep,
                                reload=reload)

    # -- history -------------------------------------------------------------------------------
    def history(self, tok: Token, job: str | None = None, status: str | None = None,
                page: int = 1, per_page: int = 50) -> dict[str, Any]:
        names = list(self.visible(tok)) if tok.scoped else None
        if job and names is not None and job not in names:
            names = []
        page, per_page = min(max(1, page), MAX_PAGE), min(max(1, per_page), MAX_PER_PAGE)
        with self.state() as st:
            total = st.count_runs(job, status=status, jobs=names)
            runs = st.runs(job, limit=per_page, offset=(page - 1) * per_page, status=status, jobs=names)
            back = st.backfill_runs(r.id for r in runs)
        return {"runs": [self._run_dict(r, r.id in back) for r in runs], "total": total,
                "page": page, "per_page": per_page,
                "pages": max(1, -(-total // per_page))}

    def all_runs(self, tok: Token, job: str | None = None, status: str | None = None):
        names = list(self.visible(tok)) if tok.scoped else None
        if job and names is not None and job not in names:
            names = []
        with self.state() as st:
            runs = st.runs(job, limit=-1, status=status, jobs=names)
            back = st.backfill_runs(r.id for r in runs) if len(runs) < 30000 else set()
        return [self._run_dict(r, r.id in back) for r in runs]

    @staticmethod
    def _run_dict(r, backfill: bool) -> dict[str, Any]:
        from ..ship.status import run_kind

        d = r.as_dict()
        d["started"], d["ended"] = iso(r.started), iso(r.ended)
        d["backfill"] = backfill
        d["label"] = run_kind(r, backfill)
        m = _ATTEMPTS.search(r.error or "")
        d["attempts"] = int(m.group(1)) if m else None
        return d

    def run_detail(self, tok: Token, run_id: int) -> dict[str, Any]:
        with self.state() as st:
            r = st.run(run_id)
            # an unscoped token reads every run, a deleted job's (a retired identity) too
            if r is None or (tok.scoped and r.job not in self.visible(tok)):
                raise NotFound(f"no run {run_id}")
            back = st.backfill_runs([r.id])
            objs = st.objects(run_id=run_id)
        out = {"run": self._run_dict(r, r.id in back), "objects": []}
        for o in objs:
            d = o.as_dict()
            d["delivered"] = iso(o.delivered)
            out["objects"].append(d)
        return out
