"""Commands of the usage area: ``ingest``, ``report``, ``sql`` and ``demo``."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import threading
from collections.abc import Collection, Iterator, Sequence
from numbers import Number
from typing import Any

import click

from ..cli_options import threads_option
from ..term import json_safe, safe
from ..values import NumberParam, WholeParam
from . import DEFAULT_DB

db_option = click.option("--db", default=DEFAULT_DB, help="Usage database file (DuckDB).")
lake_option = click.option("--lake", default=None, help="The usage lake instead of the database: a folder "
                           "or URL (s3://...) of Apache Iceberg tables (extra `lake`).")
catalog_option = click.option("--catalog", default=None, help="With --lake: its catalog, a SQLite file, "
                              "SQLAlchemy URI or glue:// (AWS Glue; default: catalog.db in the lake folder; for s3:// or gs://, a "
                              "file of this machine per lake URL, in ~/.local/share/logferry/lakes/).")
config_option = click.option("--config", "-c", default=None, help="A logferry.toml whose [lake] settings "
                             "(path, catalog, workers, cluster) apply when --lake is not given.")


def _fail(msg: str, code: int = 2) -> None:
    from ..term import error

    error(msg)
    raise click.exceptions.Exit(code)


# --- ingest -----------------------------------------------------------------------------

def _lake_of(config: str | None, lake: str | None, catalog: str | None, workers: int | None = None,
             cluster: str | None = None) -> tuple[str | None, str | None, int | None, str | None]:
    """The lake flags, or with ``--config`` and no ``--lake`` the config's ``[lake]``."""
    if config is None:
        return lake, catalog, workers, cluster
    from ..errors import LogferryError
    from ..lake.cli import LakeArgs, from_config

    try:
        a = from_config(config, LakeArgs(lake, catalog, workers, cluster))
    except LogferryError as e:
        _fail(str(e))
    return a.lake, a.catalog, a.workers, a.cluster


def _check_lake_options(lake: str | None, catalog: str | None, **only_with_lake: Any) -> None:
    """Options that apply to the lake only are errors without --lake, and --follow with it."""
    for name, value in only_with_lake.items():
        if name == "follow" and value and lake:
            _fail("--follow writes the DuckDB database: not with --lake")
        elif name != "follow" and value and not lake:
            _fail(f"--{name} applies with --lake")
    if catalog and not lake:
        _fail("--catalog applies with --lake")


def run_ingest(paths: Sequence[str], db: str, *, format: str | None = None, tz: str | None = None,
               quiet: bool = False, progress: bool | None = None, durable: bool = True,
               columns: Collection[str] | None = None, threads: int | None = None):
    """Ingest with a progress bar on a terminal; prints one line per file and a summary.
    ``durable=False``: a database thrown away afterwards (``report FILE``), whose commits
    need not wait for the disk (DuckDB's ``fsync_mode`` NONE).  ``columns``: the only
    ``requests`` columns needed (the readers' ``columns`` option; the others may stay null).
    ``threads``: workers reading one file (the readers' ``threads`` option)."""
    from ..errors import LogferryError
    from ..term import console
    from .db import connect
    from .ingester import INGEST_MEMORY_LIMIT, Ingester, expand_inputs

    err = console(err=True)
    missing: list[tuple[str, str]] = []
    try:
        files = expand_inputs(paths, missing)
    except LogferryError as e:
        _fail(str(e))
    con = connect(db, memory_limit=INGEST_MEMORY_LIMIT)
    if not durable:
        con.execute("SET fsync_mode = 'NONE'")
    try:
        show = err.is_terminal if progress is None else progress
        bar = None
        on_bytes = None
        if show and not quiet:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            total = sum(f.size for f in files) or None
            bar = Progress(TextColumn("ingest"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                           TimeRemainingColumn(), console=err, transient=True)
            task = bar.add_task("ingest", total=total)
            bar.start()

            def on_bytes(n: int) -> None:
                bar.advance(task, n)

        def on_file(res) -> None:
            if quiet and res.status != "error":
                return
            if bar is not None:
                bar.console.print(safe(res.line()), markup=False, highlight=False)
            else:
                click.echo(safe(res.line()), err=True)

        options = {"tz": tz} if tz else {}
        if columns is not None:
            options["columns"] = sorted(columns)
        if threads is not None:
            options["threads"] = threads
        ing = Ingester(con, format=format, options=options or None, on_bytes=on_bytes,
                       exclude=[db, db + ".wal"])
        try:
            summary = ing.ingest(paths, on_file=on_file, files=files)
            from .ingester import FileResult

            for pat, msg in missing:
                res = FileResult(pat, "error", message=msg)
                summary.files.insert(0, res)
                on_file(res)
        finally:
            if bar is not None:
                bar.stop()
    finally:
        con.close()
    return summary


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the follower then commits and returns) while inside."""
    import signal

    old = {s: signal.signal(s, lambda *_: _set_soon(stop)) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _set_soon(stop: threading.Event) -> None:
    """Set ``stop`` from a thread of its own.  A signal handler runs on the main thread,
    maybe inside ``stop.wait`` while it holds the event's lock: ``set`` there waits for that
    lock for ever (a follower hung on SIGTERM: "Fatal Python error: Aborted" in ``set``)."""
    threading.Thread(target=stop.set, name="logferry-stop", daemon=True).start()


def run_follow(paths: Sequence[str], db: str, *, format: str | None = None, tz: str | None = None,
               quiet: bool = False, commit_every: float = 2.0) -> dict[str, Any]:
    """Follow ``paths`` until SIGTERM/SIGINT (or the end of standard input); returns the
    follower's status."""
    from ..errors import LogferryError
    from .follow import Follower

    def on_file(res) -> None:
        if not quiet or res.status == "error":
            click.echo(safe(res.line()), err=True)

    try:
        f = Follower(db, paths, commit_every=commit_every, format=format,
                     options={"tz": tz} if tz else None, on_file=on_file)
    except LogferryError as e:
        _fail(str(e))
    stop = threading.Event()
    with _stop_on_signals(stop):
        f.run(stop)
    return f.status()


@click.argument("paths", nargs=-1, required=True)
@db_option
@click.option("--format", "-f", help="Force the input format.")
@click.option("--tz", help="Time zone of local times.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors and the summary.")
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON on stdout.")
@click.option("--follow", is_flag=True,
              help="Keep reading: new lines, new files matching the globs, rotated files to their end "
                   "(until SIGTERM or Ctrl-C; - follows standard input until it ends).")
@click.option("--commit-every", type=NumberParam(0.05, 3600), default=2.0, show_default=True,
              help="With --follow: seconds between commits (new lines show in reports after a commit).")
@threads_option
@lake_option
@catalog_option
@click.option("--workers", type=click.IntRange(min=1, max=1024), default=None,
              help="With --lake: read on a local Dask cluster of this many processes.")
@click.option("--cluster", default=None, help="With --lake: read on this Dask scheduler (tcp://HOST:PORT).")
@config_option
def ingest_cmd(paths: tuple[str, ...], db: str, format: str | None, tz: str | None, quiet: bool,
               as_json: bool, follow: bool, commit_every: float, lake: str | None, catalog: str | None,
               workers: int | None, cluster: str | None, threads: int | None, config: str | None) -> None:
    """Ingest logs into the usage database; each file once, grown files by their new lines.

    \b
    Arguments:
      PATHS...  Log files, globs, folders or URLs (s3://, gs://, sftp://...);
                with --follow: local files, globs, or - (standard input).
    """
    lake, catalog, workers, cluster = _lake_of(config, lake, catalog, workers, cluster)
    _check_lake_options(lake, catalog, workers=workers, cluster=cluster, follow=follow)
    if workers and cluster:
        _fail("--workers starts a local Dask cluster and --cluster names a running one: give one")
    if follow:
        st = run_follow(paths, db, format=format, tz=tz, quiet=quiet, commit_every=commit_every)
        if as_json:
            click.echo(json_safe(json.dumps(st)))
        else:
            click.echo(f"followed {st['files']} files: {st['lines']:,} lines stored in {st['commits']} commits",
                       err=True)
        if st["errors"]:
            raise click.exceptions.Exit(1)
        return
    if lake:
        from ..lake.cli import run_lake_ingest

        summary = run_lake_ingest(paths, lake, catalog, workers=workers, cluster=cluster, format=format,
                                  tz=tz, quiet=quiet, threads=threads)
    else:
        summary = run_ingest(paths, db, format=format, tz=tz, quiet=quiet, threads=threads)
    if as_json:
        d = summary.as_dict()
        d["details"] = [vars(f) for f in summary.files]
        click.echo(json_safe(json.dumps(d)))
    else:
        click.echo(safe(summary.line()), err=True)
    if summary.errors:
        raise click.exceptions.Exit(1)


# --- report -----------------------------------------------------------------------------

def _print_terminal(data: dict[str, Any], limit: int = 12) -> None:
    from .. import term
    from .html import fmt_cell

    for w in data.get("warnings", []):
        term.note(f"warning: {w}", style="yellow", err=True)
    for _name, rep in data["reports"].items():
        term.heading(rep["title"])
        for sec, rows in rep["sections"].items():
            if sec == "buckets":
                rows = [r for r in rows if r.get("down_reason")]
                sec = "down buckets"
            cols = rep["columns"].get(sec) or (list(rows[0]) if rows else [])
            if not rows:
                term.note(f"{sec}: no rows")
                continue
            right = [i for i, c in enumerate(cols)
                     if isinstance(rows[0].get(c), Number) and not isinstance(rows[0].get(c), bool)]
            more = f"{len(rows) - limit:,} more rows (--json for all)" if len(rows) > limit else None
            term.table(cols, [[fmt_cell(c, r.get(c)) for c in cols] for r in rows[:limit]],
                       title=sec.replace("_", " "), caption=more, right=right, max_width=60)


def report_data(db: str, params, only: list[str] | None = None) -> dict[str, Any]:
    from .db import connect
    from .reports import REPORT_MEMORY_LIMIT, run

    con = connect(db, read_only=True, memory_limit=REPORT_MEMORY_LIMIT)
    try:
        return run(con, params, only=only)
    finally:
        con.close()


def _release_memory() -> None:
    """Hand the memory freed since (Arrow's pool, glibc's free heap) back to the system."""
    import gc

    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _output(con, params, *, as_json: bool, html: str | None, only: list[str] | None, tz: str,
            title: str = "logferry report") -> None:
    """The report of an open database: JSON, the HTML dashboard, or terminal tables."""
    from .dashboard import document
    from .reports import run

    if html:
        text = document(con, params, html=True, only=only, tz=tz, title=title)
        with open(html, "w", encoding="utf-8") as f:
            f.write(text)
        click.echo(f"wrote {safe(html)}", err=True)
    elif as_json:
        click.echo(document(con, params, html=False, only=only, tz=tz, title=title))
    else:
        _print_terminal(run(con, params, only=only))


@click.argument("paths", nargs=-1)
@click.option("--db", default=None, help=f"Usage database file (DuckDB; default {DEFAULT_DB}). With log "
              "files too, they are ingested into it first.")
@click.option("--format", "-f", help="Input format of the log files (default: detected).")
@click.option("--since", help="From this time (ISO 8601, UTC unless an offset is given).")
@click.option("--until", help="Before this time (ISO 8601).")
@click.option("--site", help="Only this site (site or host column).")
@click.option("--no-bots", is_flag=True, help="Leave bots and crawlers out of every report.")
@click.option("--json", "as_json", is_flag=True, help="All reports as JSON on stdout.")
@click.option("--html", help="Write the interactive dashboard, one self-contained HTML file (replaced if it exists).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of the dashboard's times (e.g. Europe/Berlin).")
@click.option("--only", multiple=True, help="Only these reports (repeatable).")
@click.option("--bucket", type=NumberParam(), default=5.0, help="Uptime bucket, minutes.")
@click.option("--threshold", type=NumberParam(), default=0.5, help="5xx share that makes a bucket down.")
@click.option("--gap", type=WholeParam(), default=3, help="Buckets without traffic longer than this are down.")
@click.option("--top", type=WholeParam(), default=20, help="Rows in top-N sections (JSON and terminal).")
@click.option("--follow", is_flag=True, help="Follow PATHS as they are written and print the reports "
              "again every --every seconds (in place on a terminal, as top does) until Ctrl-C/SIGTERM.")
@click.option("--every", type=NumberParam(0, 86400, lo_open=True), default=2.0, show_default=True,
              help="Seconds between two reports with --follow.")
@threads_option
@lake_option
@catalog_option
@click.option("--rollups", is_flag=True, help="With --lake --json: every site from the hourly rollups "
              "(approximate visitors and latency percentiles, with their error bounds).")
@click.option("--each-site", "each_site", metavar="DIR", default=None,
              help="With --lake: every site's report into DIR, SITE.html (the dashboard) or with --json SITE.json.")
@click.option("--workers", type=click.IntRange(min=1, max=1024), default=None,
              help="With --each-site: make the reports on a local Dask cluster of this many processes.")
@click.option("--cluster", default=None, help="With --each-site: make the reports on this Dask scheduler "
              "(tcp://HOST:PORT).")
@config_option
def report_cmd(paths: tuple[str, ...], db: str | None, format: str | None, since: str | None, until: str | None,
               site: str | None, no_bots: bool, as_json: bool, html: str | None, tz: str, only: tuple[str, ...],
               bucket: float, threshold: float, gap: int, top: int, follow: bool, every: float,
               threads: int | None, lake: str | None, catalog: str | None, rollups: bool,
               each_site: str | None, workers: int | None, cluster: str | None, config: str | None) -> None:
    """Reports: summary, status codes and errors, performance, 404s, uptime, CDN, shop, top.

    \b
    Arguments:
      PATHS...  Log files or globs to report on without keeping a database (read into a
                temporary one, deleted afterwards); with --db, ingested into that database.
                With --follow, followed as they are written (- for standard input).
    """
    import shutil
    import tempfile

    from ..errors import LogferryError
    from .db import connect
    from .reports import REPORT_MEMORY_LIMIT, Params

    params = Params(since=since, until=until, site=site, bucket_minutes=bucket, threshold=threshold,
                    gap_buckets=gap, top=top, bots=not no_bots)
    _check_report_args(paths, params, as_json=as_json, html=html, tz=tz, only=only, format=format, follow=follow)
    if config is not None and not lake and (db or paths):
        _fail("--config reports on the lake of its [lake]: not with --db or log files")
    if (workers or cluster) and not each_site:
        _fail("--workers and --cluster apply with --each-site")
    # (the config's [lake] workers or cluster make every site's reports as they ingest)
    lake, catalog, workers, cluster = _lake_of(config, lake, catalog, workers, cluster)
    if each_site:
        _report_each_site(paths, db, lake, catalog, params, out=each_site, rollups=rollups, follow=follow,
                          as_json=as_json, html=html, only=list(only) or None, tz=tz, workers=workers,
                          cluster=cluster)
        return
    if lake or rollups:
        _report_lake(paths, db, lake, catalog, params, rollups=rollups, follow=follow, as_json=as_json,
                     html=html, only=list(only) or None, tz=tz)
        return
    if follow:
        _report_follow(paths, db, params, only=list(only) or ["summary", "status", "performance", "not_found"],
                       every=every, format=format)
        return
    tmp = None
    try:
        if paths:
            if db is None:
                tmp = tempfile.mkdtemp(prefix="logferry-report-")
            db = db or os.path.join(tmp, "report.duckdb")
            _ingest_for_report(paths, db, format, temporary=tmp is not None, threads=threads)
        con = connect(db or DEFAULT_DB, read_only=True, memory_limit=REPORT_MEMORY_LIMIT)
        try:
            _output(con, params, as_json=as_json, html=html, only=list(only) or None, tz=tz)
        finally:
            con.close()
    except LogferryError as e:
        _fail(str(e))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _check_report_args(paths, params, *, as_json: bool, html: str | None, tz: str, only, format: str | None,
                       follow: bool) -> None:
    """Every flag of ``report`` checked before any log is read or any output written."""
    from ..errors import LogferryError
    from .dashboard import check_tz
    from .reports import REPORTS, check_params

    if as_json and html:
        _fail("--json and --html are exclusive")
    for o in only:
        if o not in REPORTS:
            _fail(f"unknown report {o!r}; reports: {', '.join(REPORTS)}")
    if format and not paths:
        _fail("--format applies to log files given as arguments")
    if follow and not paths:
        _fail("--follow needs the log files (or globs, or -) to follow")
    if follow and (as_json or html):
        _fail("--follow prints terminal reports: not with --json or --html")
    try:
        check_params(params)
        check_tz(tz)
    except LogferryError as e:
        _fail(str(e))
    for p in () if follow else paths:
        if "://" not in p and not any(c in p for c in "*?[") and not os.path.exists(p):
            _fail(f"{p}: no such file")


def _ingest_for_report(paths: Sequence[str], db: str, format: str | None, *, temporary: bool,
                       threads: int | None) -> None:
    """``report PATHS``: ingest them first (into a temporary database, only the columns a
    report reads); fails when any of them could not be read (no report made)."""
    from ..schema import CANONICAL
    from .reports import UNREAD_COLUMNS
    from .ua import preload

    preload()  # the user-agent rules load while the logs are read
    # (a temporary database: nothing else will read it, the columns no report reads are not stored)
    summary = run_ingest(paths, db, format=format, quiet=True, durable=not temporary,
                         columns=set(CANONICAL) - UNREAD_COLUMNS if temporary else None, threads=threads)
    click.echo(safe(summary.line()), err=True)
    if summary.errors:  # a report without some of its inputs would pass for the whole
        _fail(f"{summary.errors} of the inputs could not be read (above); no report made")
    _release_memory()  # the report's memory is then not on top of the ingest's


def _report_lake(paths: Sequence[str], db: str | None, lake: str | None, catalog: str | None, params, *,
                 rollups: bool, follow: bool, as_json: bool, html: str | None, only: list[str] | None,
                 tz: str) -> None:
    """``report --lake``: the reports on the lake's last snapshot (or its rollups)."""
    from ..errors import LogferryError
    from .reports import REPORT_MEMORY_LIMIT

    if not lake:
        _fail("--rollups applies with --lake")
    if paths or db or follow:
        _fail("--lake reports on the lake: ingest log files with `logferry ingest PATHS --lake ...`"
              " (not with log files, --db or --follow)")
    if rollups and not as_json:
        _fail("--rollups gives JSON: add --json")
    from ..lake.cli import lake_connection, rollups_report

    try:
        if rollups:
            click.echo(json_safe(json.dumps(rollups_report(lake, catalog, params), ensure_ascii=False)))
            return
        from .ua import preload

        preload()  # the user-agent rules load while the catalog and the manifest are read
        con = lake_connection(lake, catalog, params, memory_limit=REPORT_MEMORY_LIMIT)
        try:
            _output(con, params, as_json=as_json, html=html, only=only, tz=tz)
        finally:
            con.close()
    except LogferryError as e:
        _fail(str(e))


def _report_each_site(paths: Sequence[str], db: str | None, lake: str | None, catalog: str | None, params, *,
                      out: str, rollups: bool, follow: bool, as_json: bool, html: str | None,
                      only: list[str] | None, tz: str, workers: int | None, cluster: str | None) -> None:
    """``report --lake --each-site DIR``: every site's report into DIR (lake/sites.py)."""
    from ..errors import LogferryError

    if not lake:
        _fail("--each-site applies with --lake")
    if params.site or html or rollups:
        _fail("--each-site writes every site's report into DIR: not with --site, --html or --rollups")
    if paths or db or follow:
        _fail("--lake reports on the lake: not with log files, --db or --follow")
    if os.path.exists(out) and not os.path.isdir(out):
        _fail(f"--each-site {out}: not a folder")
    from ..lake.cli import open_lake
    from ..lake.ingest import dask_client
    from ..lake.sites import write_each_site

    def on_site(site: str, path: str) -> None:
        click.echo(safe(f"{site}: wrote {path}"), err=True)

    try:
        with dask_client(workers, cluster) as client:  # (reached before the lake is opened)
            n = write_each_site(open_lake(lake, catalog), params, out, html=not as_json, only=only, tz=tz,
                                client=client, on_site=on_site)
    except LogferryError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"--each-site {out}: {e.strerror or e}")
    click.echo(safe(f"{n} site reports in {out}"), err=True)


def _report_follow(paths: Sequence[str], db: str | None, params, *, only: list[str], every: float,
                   format: str | None) -> None:
    """``report --follow``: the follower on a thread (into ``db``, or a temporary database),
    the terminal reports every ``every`` seconds from the same database instance."""
    import tempfile

    from .. import term
    from ..errors import LogferryError
    from .db import connect
    from .follow import Follower
    from .reports import run

    stop = threading.Event()
    failed: list[BaseException] = []
    tmp = (tempfile.TemporaryDirectory(prefix="logferry-report-", ignore_cleanup_errors=True) if db is None
           else contextlib.nullcontext())
    with _stop_on_signals(stop), tmp as folder:
        target = db if db is not None else os.path.join(folder, "report.duckdb")
        try:
            # (report's --tz is the zone times are shown in, not the logs' own: not the reader's)
            f = Follower(target, paths, commit_every=min(every, 2.0), format=format)
        except LogferryError as e:
            _fail(str(e))

        def follow() -> None:
            try:
                f.run(stop)
            except BaseException as e:  # shown by the main thread
                failed.append(e)
                stop.set()

        t = threading.Thread(target=follow, name="logferry-follow", daemon=True)
        t.start()
        while not f.status()["running"] and t.is_alive() and not stop.wait(0.05):
            pass
        con = connect(target)  # (the follower's instance: both see every commit)
        tty = term.is_terminal()
        try:
            while True:
                data = run(con, params, only=only)
                st = f.status()
                if tty:
                    click.echo("\x1b[H\x1b[2J", nl=False)  # in place, as top does
                last = st["last_line_at"] or "no line yet"
                click.echo(safe(f"logferry report --follow: {st['lines']:,} lines stored from "
                                f"{st['files']} file(s), last at {last}; every {every:g} s, Ctrl-C stops"))
                for path, msg in st["errors"].items():
                    click.echo(safe(f"  {path}: {msg}"))
                _print_terminal(data, limit=8)
                sys.stdout.flush()
                if stop.wait(every) or not t.is_alive():
                    break
        finally:
            stop.set()
            t.join()
            con.close()
        if failed:
            e = failed[0]
            _fail(str(e) if isinstance(e, LogferryError) else f"{type(e).__name__}: {e}")


# --- sql --------------------------------------------------------------------------------

@click.argument("query")
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line.")
@lake_option
@catalog_option
@config_option
def sql_cmd(query: str, db: str, as_json: bool, as_csv: bool, lake: str | None, catalog: str | None,
            config: str | None) -> None:
    """Run a query against the usage database (tables: files, requests, bad_rows, orders, order_items).

    \b
    Arguments:
      QUERY  Any SQL (the database is opened read-only).
    """
    import duckdb

    from .reports import _arrow, jsonable

    if as_json and as_csv:
        _fail("--json and --csv are exclusive")
    lake, catalog, _, _ = _lake_of(config, lake, catalog)
    _check_lake_options(lake, catalog)
    con = _sql_connection(db, lake, catalog)
    try:
        con.execute("SET TimeZone = 'UTC'")
        try:
            rel = con.sql(query)
            t = _arrow(rel) if rel is not None else None
        except duckdb.Error as e:
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    finally:
        con.close()
    if t is None:
        return
    try:
        rows = t.to_pylist()
    except OverflowError as e:  # DuckDB's dates reach past Python's (infinity, year 294247)
        _fail(f"a value is outside Python's dates and times (years 1-9999, e.g. infinity): {e}; "
              "CAST it AS VARCHAR in the query")
    if as_json:
        for r in rows:
            click.echo(json_safe(json.dumps(jsonable(r), ensure_ascii=False)))
    elif as_csv:
        # to a terminal, values are made safe; piped, the CSV holds them exactly
        cell = safe if sys.stdout.isatty() else (lambda v: v)
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow([cell(c) for c in t.column_names])
        for r in rows:
            w.writerow([cell("" if v is None else jsonable(v)) for v in r.values()])
    else:
        from ..term import table
        from .html import fmt

        table(t.column_names, [[fmt(v) for v in r.values()] for r in rows])


def _sql_connection(db: str, lake: str | None, catalog: str | None):
    """``sql``'s connection: the database read-only, or the lake's last snapshot."""
    from ..errors import LogferryError
    from .db import connect

    if not lake:
        return connect(db, read_only=True)
    from ..lake.cli import lake_connection

    try:
        return lake_connection(lake, catalog, None)
    except LogferryError as e:
        _fail(str(e))


# --- demo -------------------------------------------------------------------------------

@click.option("--out", default="logferry-demo", help="Folder for the sample logs, database and report.")
def demo_cmd(out: str) -> None:
    """Write sample logs (IIS, CloudFront, shop, CDN, CSV usage), ingest them, write report.html."""
    from ..samples import write_samples

    os.makedirs(out, exist_ok=True)
    logs = os.path.join(out, "logs")
    files = write_samples(logs)
    click.echo(safe(f"wrote {len(files)} sample logs to {logs}"), err=True)
    db = os.path.join(out, "demo.duckdb")
    summary = run_ingest([logs], db)
    click.echo(safe(summary.line()), err=True)
    from .dashboard import dashboard_data, write
    from .db import connect
    from .reports import REPORT_MEMORY_LIMIT

    html = os.path.join(out, "report.html")
    con = connect(db, read_only=True, memory_limit=REPORT_MEMORY_LIMIT)
    try:
        data = dashboard_data(con)
    finally:
        con.close()
    write(data, html, title="logferry demo report")
    _print_terminal({"warnings": data["warnings"], "reports": {"summary": data["reports"]["summary"]}})
    click.echo(safe(f"report: {html}"), err=True)
    click.echo(safe(f"database: {db}  (try: logferry report --db {db}   or   logferry sql --db {db} \"SELECT ...\")"),
               err=True)
    cfg = os.path.join(out, "logferry.toml")
    if not os.path.exists(cfg):  # (a config the operator has edited since is kept)
        _write_demo_config(cfg, out)
    click.echo(safe(f"config: {cfg}  (one export job, iis, and four alert rules; try: logferry serve --config {cfg} --db {db}"
                    f"   or   logferry alerts test --all --config {cfg} --db {db})"),
               err=True)
    if summary.errors:
        raise click.exceptions.Exit(1)


def _write_demo_config(path: str, out: str) -> None:
    """The demo's ``logferry.toml``: one export job, ``iis``, that ships the IIS sample log as
    gzipped JSON lines to ``OUT/shipped`` every hour (the console shows it on Exports)."""
    import tomlkit

    base = os.path.abspath(out)
    doc = tomlkit.document()
    doc.add(tomlkit.comment("logferry demo: one export job; `logferry serve --config THIS --db demo.duckdb` "
                            "shows it, `logferry export run iis --once --config THIS` runs it"))
    job = tomlkit.table()
    job.add("source", [os.path.join(base, "logs", "iis", "*.log")])
    job.add("dest", "file://" + os.path.join(base, "shipped"))
    job.add("to", "jsonl")
    job.add("compress", "gzip")
    job.add("every_minutes", 60)
    jobs = tomlkit.table(is_super_table=True)
    jobs.add("iis", job)
    doc.add("jobs", jobs)
    from ..alerts.demo import add_demo_rules

    add_demo_rules(doc, "demo.duckdb")
    with open(path, "x", encoding="utf-8") as f:
        f.write(tomlkit.dumps(doc))


def register(app: click.Group) -> None:
    app.command("ingest")(ingest_cmd)
    app.command("report")(report_cmd)
    app.command("sql")(sql_cmd)
    app.command("demo")(demo_cmd)
