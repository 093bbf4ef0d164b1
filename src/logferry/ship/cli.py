"""Commands: ``ship``, ``export list|run|stop|start|history|show``, ``run``, ``prune``."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime

import click

from ..cli_options import threads_option
from ..errors import ConfigError, LogferryError
from ..term import echo, error, json_safe, tsv
from ..values import NumberParam, WholeParam
from . import MAX_AGE_SECS

#: the clock of ``run`` and ``prune`` (and of the runs they start); tests freeze it
clock = time.time
sleep = time.sleep

config_option = click.option("--config", "-c", help="Config file (default logferry.toml).")
wait_option = click.option(
    "--wait", type=NumberParam(0, 86400), default=0.0, show_default=True, metavar="SECS",
    help="When a run of the job is in flight, wait up to SECS for it to end (then exit 75).")


def _fail(msg: str, code: int = 2):
    error(msg)
    raise click.exceptions.Exit(code)


def _ts(t: float | None) -> str:
    return "-" if not t else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load(config: str | None):
    from ..config import load

    try:
        return load(config)
    except ConfigError as e:
        _fail(str(e))


def _state(loaded):
    from .state import State

    return State(loaded.state_dir)


def _run_one(loaded, name: str, stop=None, force: bool = False, now=None, wait: float = 0.0,
             rerun=None):
    """One run of a configured job (None when the job is stopped); raises JobRunning when
    another run of it is in flight after ``wait`` seconds.  ``rerun``: a re-export of that
    range (:mod:`.rerun`; also of a stopped job; its bad rows are not written again)."""
    from ..destinations import open_destination
    from .engine import bad_rows_file, run_job

    job = loaded.engine_job(name)
    opts = loaded.resolve_options(name, dict(job.dest_options))
    st = _state(loaded)
    try:
        if st.is_stopped(name) and not force and rerun is None:
            return None
        dest = open_destination(job.dest, opts)
        try:
            return run_job(job, st, dest, stop=stop, clock=now or clock, sleep=sleep, wait=wait,
                           force=force or rerun is not None, rerun=rerun,
                           bad_rows_path=None if rerun else bad_rows_file(loaded.state_dir, name))
        finally:
            dest.close()
    finally:
        st.close()


def _report(name: str, res, what: str = "run") -> None:
    if res is None:
        echo(f"{name}: stopped (start it with `logferry export start {name}`)")
        return
    line = (f"{name}: {what} {res.run_id} {res.status}: {res.objects} objects, {res.records} records, "
            f"{res.bytes} bytes, {res.bad} bad lines")
    echo(line)
    if res.error:
        echo(f"{name}: error: {res.error}", err=True)


def destination_options(f):
    """``ship``'s destination options, one per row of the destinations' option table (the
    console's editor shows the same rows): ``--key-file PATH``, ``--password-env VAR``, ..."""
    from ..destinations.options import OPTIONS, cli_flag, cli_help, cli_param

    for o in reversed(OPTIONS):
        f = click.option(cli_flag(o), cli_param(o), metavar="VAR" if o.kind == "secret" else o.metavar,
                         help=cli_help(o))(f)
    return f


@click.argument("sources", nargs=-1, required=True)
@click.option("--dest", required=True,
              help="Destination URL (file://, s3://, gs://, sftp://, ftp(s)://, datadog://).")
@click.option("--to", default="jsonl", help="Output format.")
@click.option("--compress", default="gzip", help="gzip, zstd or none.")
@click.option("--fields", help="Comma-separated fields, in order.")
@click.option("--where", help="Row filter, e.g. 'status>=500' or 'status=5xx and path^=/api'.")
@click.option("--max-bytes", type=WholeParam(1), default=50_000_000, show_default=True,
              help="Start a new object before one goes over this size (bytes, after compression).")
@click.option("--max-age-secs", type=NumberParam(0, MAX_AGE_SECS, lo_open=True), default=300, show_default=True,
              help="Deliver an object at the latest this many seconds after it was opened.")
@click.option("--max-records", type=WholeParam(1), help="Start a new object after this many records.")
@click.option("--name", help="Object name template or preset (cdn, cloudfront, shop, csv-usage).")
@click.option("--state", default=".logferry-ship", help="State directory (checkpoints, history).")
@click.option("--format", "-f", help="Force the input format.")
@click.option("--service", default="", show_default=False, help="{service} in names; Datadog service.")
@click.option("--job", "job_name", default="ship", help="Job name inside the state directory.")
@click.option("--mask-ip", is_flag=True, help="Mask client IPs to a subnet (--ipv4-prefix, --ipv6-prefix).")
@click.option("--ipv4-prefix", type=WholeParam(0, 32), default=24, help="Subnet kept of IPv4 client IPs with --mask-ip.")
@click.option("--ipv6-prefix", type=WholeParam(0, 128), default=48, help="Subnet kept of IPv6 client IPs with --mask-ip.")
@click.option("--hash-ip-key-env", metavar="VAR",
              help="Replace client IPs by a keyed hash (HMAC-SHA256); the key is read from environment variable VAR.")
@click.option("--retries", type=click.IntRange(0, 100), default=6, show_default=True,
              help="Attempts after a transient delivery error (with exponential backoff).")
@destination_options
@wait_option
@threads_option
def ship_cmd(
    sources: tuple[str, ...],
    dest: str,
    to: str,
    compress: str,
    fields: str | None,
    where: str | None,
    max_bytes: int | None,
    max_age_secs: float | None,
    max_records: int | None,
    name: str | None,
    state: str,
    format: str | None,
    service: str,
    job_name: str,
    mask_ip: bool,
    ipv4_prefix: int,
    ipv6_prefix: int,
    hash_ip_key_env: str | None,
    retries: int,
    wait: float,
    threads: int | None,
    **dest_opts,
) -> None:
    """Ship logs once to a destination; run again with the same --state to send only what is new.

    \b
    Arguments:
      SOURCES...  Log files, globs or URLs.
    """
    from ..config import resolve_secrets
    from ..destinations import check_url, open_destination
    from ..destinations.options import from_cli
    from . import naming
    from .engine import Job, bad_rows_file, run_job
    from .lock import EXIT_BUSY, JobRunning
    from .rotate import Codec, Limits
    from .state import State

    try:
        from ..sources import check_source

        for s in sources:
            check_source(s, folders=False)
        check_url(dest)
        Codec(compress)
        tmpl = naming.PRESETS[name] if name in naming.PRESETS else naming.resolve(name)
        naming.validate(tmpl)
        from ..transforms import compile_where, job_fields
        from ..writers import writer_factory

        writer_factory(to)
        if where:
            compile_where(where)
        job = Job(
            name=job_name, sources=tuple(sources), dest=dest, format=format, to=to,
            compress=compress, fields=tuple(job_fields(fields.split(","))) if fields else None,
            where=where, limits=Limits(max_bytes, max_age_secs, max_records), name_template=tmpl,
            service=service, privacy=_cli_privacy(mask_ip, ipv4_prefix, ipv6_prefix, hash_ip_key_env),
            retries=retries,
            reader_options={} if threads is None else {"threads": threads},
        )
        opts = from_cli(dest, dest_opts)
        if dest.startswith("datadog://") and service:
            opts["service"] = service
        d = open_destination(dest, resolve_secrets(opts, {}, where="destination option"))
    except (LogferryError, ValueError) as e:
        _fail(str(e))
    st = State(state)
    stop = _install_sigterm()
    try:
        res = run_job(job, st, d, stop=stop, force=True, wait=wait,
                      bad_rows_path=bad_rows_file(state, job_name))
    except JobRunning as e:
        _fail(str(e), EXIT_BUSY)
    finally:
        d.close()
        st.close()
    _report(job_name, res)
    if res.status in ("failed", "partial"):
        raise click.exceptions.Exit(1)


def _cli_privacy(mask: bool, v4: int, v6: int, key_env: str | None):
    from ..privacy import Privacy

    if mask and key_env:
        raise ConfigError("--mask-ip and --hash-ip-key-env exclude each other; choose one")
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise ConfigError(f"--hash-ip-key-env: environment variable {key_env} is not set or empty")
        return Privacy("hash", key=key.encode("utf-8"))
    if mask:
        return Privacy("mask", v4_prefix=v4, v6_prefix=v6)
    return None


def _install_sigterm():
    from .engine import Stop

    stop = Stop()
    try:
        signal.signal(signal.SIGTERM, stop.set)
    except ValueError:  # not the main thread
        pass
    return stop


def export_group() -> None:
    """Export jobs from the config file: list, run, stop, start, history."""


@config_option
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def export_list(config: str | None, as_json: bool) -> None:
    """Jobs with destination, schedule, state, last run, last delivery and how far behind
    each is (files and bytes not yet delivered, the oldest undelivered line's age)."""
    from .status import brief, job_backlog

    loaded = _load(config)
    st = _state(loaded)
    rows = []
    for name, j in sorted(loaded.cfg.jobs.items()):
        last = st.last_run(name)
        sched = f"every {j.every_minutes:g} min" if j.every_minutes else (f"cron {j.cron}" if j.cron else "manual")
        rows.append({"job": name, "dest": j.dest, "schedule": sched,
                     "state": "stopped" if st.is_stopped(name) else "active",
                     "last_run": last.id if last else None, "last_status": last.status if last else None,
                     "last_end": _ts(last.ended) if last else None,
                     "last_delivery": brief(st.last_delivery(name)),
                     "backlog": job_backlog(loaded, st, name, clock())})
    st.close()
    if as_json:
        click.echo(json_safe(json.dumps(rows, indent=1)))
        return
    for r in rows:
        d = r["last_delivery"]
        tsv([(r["job"], r["state"], r["schedule"], r["dest"],
              f"last: {r['last_status'] or '-'} {r['last_end'] or ''}",
              f"delivered: {d['ended'] or d['started']} run {d['id']}" if d else "delivered: never",
              f"behind: {r['backlog']['text']}")])


@click.argument("name")
@click.option("--once", is_flag=True, help="One run, then exit (default: keep running on the job's schedule).")
@config_option
@wait_option
def export_run(name: str, once: bool, config: str | None, wait: float) -> None:
    """Run a job now (and on its schedule unless --once).

    \b
    Arguments:
      NAME  Job name.
    """
    loaded = _load(config)
    try:
        loaded.job(name)
    except ConfigError as e:
        _fail(str(e))
    stop = _install_sigterm()
    if once:
        _once(loaded, name, stop, wait)
        return
    _scheduler(loaded, [name], stop)


def _once(loaded, name: str, stop, wait: float, rerun=None) -> None:
    """One run (or re-export) in the foreground: reported, exit status 1 when it failed."""
    from .lock import EXIT_BUSY, JobRunning

    try:
        res = _run_one(loaded, name, stop, wait=wait, rerun=rerun)
    except JobRunning as e:
        _fail(str(e), EXIT_BUSY)
    except LogferryError as e:
        _fail(str(e))
    _report(name, res, "re-export" if rerun else "run")
    if res is not None and res.status in ("failed", "partial"):
        raise click.exceptions.Exit(1)


@click.argument("name")
@click.option("--since", required=True, metavar="TIME",
              help="Start of the range (ISO 8601, e.g. 2024-03-01T10:30:00Z; UTC without an offset).")
@click.option("--until", required=True, metavar="TIME", help="End of the range (excluded).")
@config_option
@wait_option
def export_rerun(name: str, since: str, until: str, config: str | None, wait: float) -> None:
    """Re-export a past time range of a job once: its records in [--since, --until) as new
    objects (names with -rerun-RUN before the extension); the job's checkpoint is left alone.

    \b
    Arguments:
      NAME  Job name.
    """
    from .rerun import Rerun

    loaded = _load(config)
    try:
        loaded.job(name)
        rng = Rerun.parse(since, until)
    except ConfigError as e:
        _fail(str(e))
    _once(loaded, name, _install_sigterm(), wait, rng)


def _set_stopped(name: str, config: str | None, stopped: bool) -> None:
    loaded = _load(config)
    try:
        loaded.job(name)
    except ConfigError as e:
        _fail(str(e))
    st = _state(loaded)
    st.set_stopped(name, stopped)
    st.close()
    echo(f"{name}: {'stopped' if stopped else 'started'}")


@click.argument("name")
@config_option
def export_stop(name: str, config: str | None) -> None:
    """Stop a job: it exports nothing until started again."""
    _set_stopped(name, config, True)


@click.argument("name")
@click.option("--run", "run_now", is_flag=True,
              help="Deliver what the job missed now (one run in the foreground, as the console's Start does).")
@config_option
@wait_option
def export_start(name: str, run_now: bool, config: str | None, wait: float) -> None:
    """Start a stopped job; its next run backfills everything not yet delivered, in order
    (--run: that run now)."""
    _set_stopped(name, config, False)
    if run_now:
        _once(_load(config), name, _install_sigterm(), wait)


@click.argument("name", required=False)
@click.option("--failed", is_flag=True, help="Failed runs only.")
@click.option("--limit", type=WholeParam(1), default=50, show_default=True, help="The newest runs shown.")
@config_option
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def export_history(name: str | None, failed: bool, limit: int, config: str | None, as_json: bool) -> None:
    """Runs with start, end, status, objects, records, bytes and the error of failed ones.

    \b
    Arguments:
      [NAME]  Job name (default: all).
    """
    from .status import run_kind

    loaded = _load(config)
    st = _state(loaded)
    runs = st.runs(name, failed, limit)
    back = st.backfill_runs(r.id for r in runs)
    st.close()
    if as_json:
        click.echo(json_safe(json.dumps([{**r.as_dict(), "backfill": r.id in back} for r in runs],
                                        indent=1)))
        return
    tsv([("RUN", "JOB", "KIND", "START", "END", "STATUS", "OBJECTS", "RECORDS", "BYTES", "ERROR")])
    for r in runs:
        tsv([(r.id, r.job, run_kind(r, r.id in back), _ts(r.started), _ts(r.ended), r.status,
              r.objects, r.records, r.bytes, r.error or "")])


@click.argument("run_id", type=WholeParam(1))
@config_option
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def export_show(run_id: int, config: str | None, as_json: bool) -> None:
    """One run and each object it delivered: name, size, records, SHA-256."""
    from .status import run_kind

    loaded = _load(config)
    st = _state(loaded)
    r = st.run(run_id)
    if r is None:
        st.close()
        _fail(f"no run {run_id}")
    objs = st.objects(run_id=run_id)
    backfill = bool(st.backfill_runs([run_id]))
    st.close()
    if as_json:
        click.echo(json_safe(json.dumps({"run": {**r.as_dict(), "backfill": backfill},
                                         "objects": [o.as_dict() for o in objs]}, indent=1)))
        return
    kind = run_kind(r, backfill)
    kind = "" if kind == "run" else f"{kind} {r.note} " if r.note else f"{kind} "
    echo(f"run {r.id} job {r.job} {kind}{r.status} {_ts(r.started)} -> {_ts(r.ended)}: "
         f"{r.objects} objects, {r.records} records, {r.bytes} bytes")
    if r.error:
        echo(f"error: {r.error}")
    for o in objs:
        tsv([(o.name, o.size, o.records, f"sha256:{o.sha256}")])


def _scheduler(loaded, names: list[str], stop, alerts=None) -> None:
    """The foreground scheduler on the module's ``clock`` / ``sleep`` (tests freeze them);
    with ``alerts`` (the alert rules' own thread) and no scheduled job, waits for SIGTERM."""
    from .schedule import Schedule

    scheds = {n: Schedule.make(loaded.cfg.jobs[n].every_minutes, loaded.cfg.jobs[n].cron) for n in names}
    scheds = {n: s for n, s in scheds.items() if s.every_secs or s.cron}
    if not scheds and alerts is None:
        _fail("no scheduled jobs (set every_minutes or cron)")
    scheduler_loop(loaded, scheds, stop, clock=clock, sleep=sleep)
    echo("scheduler: stopped cleanly")


def scheduler_loop(loaded, scheds, stop, *, clock, sleep, tick: float = 0.5, reload=None) -> None:
    """Run each job when its schedule says, until ``stop.requested``.  A job's last start
    is taken from history, so a restarted scheduler keeps the rhythm.  Between runs it
    sleeps in steps of at most ``tick`` seconds so a stop request is seen promptly; a
    stop request during a run finishes the object being delivered, then returns.
    ``reload()`` (the console's) returns a changed ``(loaded, scheds)`` or None; it is
    asked before each round and every ``tick`` while waiting.  A job whose run is in
    flight elsewhere (its lock is held) is skipped for that round."""
    from .lock import JobRunning
    from .schedule import due_jobs, seconds_until_next

    last: dict[str, float | None] = {}

    def remember(names) -> None:
        st = _state(loaded)
        for n in names:
            if n not in last:
                last[n] = st.last_started(n)
        st.close()

    remember(scheds)
    while not stop.requested:
        new = reload() if reload is not None else None
        if new is not None:
            loaded, scheds = new
            remember(scheds)
        now = clock()
        st = _state(loaded)
        stopped = frozenset(n for n in scheds if st.is_stopped(n))
        st.close()
        for n in due_jobs(scheds, last, now, stopped):
            last[n] = now
            try:
                _report(n, _run_one(loaded, n, stop, now=clock))
            except JobRunning as e:  # a run of it is in flight elsewhere: skip this tick
                echo(f"{n}: skipped: {e}", err=True)
            except LogferryError as e:
                echo(f"{n}: error: {e}", err=True)
            if stop.requested:
                break
        wait = seconds_until_next(scheds, last, clock(), stopped)
        end = clock() + min(wait, 60)
        while not stop.requested and clock() < end:
            if reload is not None and getattr(reload, "pending", lambda: False)():
                break
            sleep(min(tick, max(0.0, end - clock())))


@config_option
def run_cmd(config: str | None) -> None:
    """Run every scheduled job in the foreground, and the alert rules on [alerts] db, else on
    the [lake] (SIGTERM finishes the current object and exits)."""
    from ..alerts.runner import start as start_alerts

    loaded = _load(config)
    stop = _install_sigterm()
    _scheduler(loaded, sorted(loaded.cfg.jobs), stop, alerts=start_alerts(loaded, lambda: loaded, stop))


@config_option
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@click.option("--job", help="Only this job.")
def prune_cmd(config: str | None, dry_run: bool, job: str | None) -> None:
    """Apply retention: delivered source files and old destination objects.

    A job whose run is in flight is left alone (said, exit status 75): its files and objects
    are pruned the next time."""
    from .lock import EXIT_BUSY, JobRunning, job_lock

    loaded = _load(config)
    st = _state(loaded)
    now = clock()
    busy = False
    try:
        for name, j in sorted(loaded.cfg.jobs.items()):
            if job and name != job:
                continue
            if dry_run:  # (changes nothing: no need to wait for a run)
                _prune_job(loaded, st, name, j, now, dry_run)
                continue
            try:
                with job_lock(st.directory, name):  # not while a run reads the files or writes objects
                    _prune_job(loaded, st, name, j, now, dry_run)
            except JobRunning as e:
                echo(f"{name}: not pruned: {e}")
                busy = True
    except LogferryError as e:
        _fail(str(e))
    finally:
        st.close()
    if busy:
        raise click.exceptions.Exit(EXIT_BUSY)


def _prune_job(loaded, st, name: str, j, now: float, dry_run: bool) -> None:
    from .. import sources as src
    from ..destinations import open_destination
    from . import retention

    r = j.retention
    if r.source_days:
        last = st.last_run(name)
        current = {s.path: s for s in src.expand(list(j.source)) if not s.remote}
        entries = []
        for f in st.files(name):
            s = current.get(f.path)
            if s is None:
                continue
            entries.append(retention.SourceEntry(f.id, f.path, s.mtime, s.size, f.size, bool(f.eof)))
        plan = retention.plan_sources(entries, r.source_days, bool(last and last.status == "failed"))
        for e in plan:
            echo(f"{name}: {'would delete' if dry_run else 'delete'} source {e.path}")
        if not dry_run:
            retention.apply_sources(plan, lambda e: st.mark_deleted(e.file_id))
    if r.dest_days:
        opts = loaded.resolve_options(name, dict(j.dest_options))
        d = open_destination(j.dest, opts)
        try:
            plan = retention.plan_dest(d.list(), now, r.dest_days, st.delivered_names(name))
            for o in plan:
                echo(f"{name}: {'would prune' if dry_run else 'prune'} {o.name}")
            if not dry_run:
                st.mark_pruned(name, retention.apply_dest(d, plan))
        finally:
            d.close()


def register(app: click.Group) -> None:
    app.command("ship")(ship_cmd)
    export = app.group("export", no_args_is_help=True)(export_group)
    export.command("list")(export_list)
    export.command("run")(export_run)
    export.command("rerun")(export_rerun)
    export.command("stop")(export_stop)
    export.command("start")(export_start)
    export.command("history")(export_history)
    export.command("show")(export_show)
    app.command("run")(run_cmd)
    app.command("prune")(prune_cmd)
