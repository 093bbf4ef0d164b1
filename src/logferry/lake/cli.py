"""The lake on the command line: ``--lake`` for ingest, report and sql (their options are
in ``usage/cli.py``; the work is here), and ``logferry lake status|compact|expire``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from ..errors import ConfigError, LogferryError
from ..term import safe

catalog_option = click.option("--catalog", default=None,
                              help="The lake's catalog: a SQLite file, SQLAlchemy URI or glue:// (AWS Glue; default: "
                                   "catalog.db in the lake folder; for s3:// or gs://, a file of this "
                                   "machine per lake URL, in ~/.local/share/logferry/lakes/).")
lake_arg = click.argument("lake", required=False)
config_option = click.option("--config", "-c", default=None, help="A logferry.toml whose [lake] settings "
                             "(path, catalog) apply when LAKE is not given (default: ./logferry.toml, "
                             "if there is one).")


def _fail(msg: str) -> None:
    from ..term import error

    error(msg)
    raise click.exceptions.Exit(2)


@dataclass(frozen=True)
class LakeArgs:
    """A command's lake: its location and catalog, and ingest's workers or cluster."""

    lake: str | None
    catalog: str | None = None
    workers: int | None = None
    cluster: str | None = None


def from_config(config: str | None, given: LakeArgs, *, loaded: Any = None) -> LakeArgs:
    """``given`` (the command's flags) when it names a lake or no ``config`` is given; else
    the config's ``[lake]``, the flags given winning (ConfigError: no [lake] path)."""
    if given.lake or (config is None and loaded is None):
        return given
    from ..config import load

    loaded = loaded or load(config)
    lc = loaded.lake()
    if not lc.path:
        raise ConfigError(f"{loaded.path}: no lake: set path in [lake] or give --lake")
    compute = (given.workers, given.cluster) if given.workers or given.cluster else (lc.workers, lc.cluster)
    return LakeArgs(lc.path, given.catalog or lc.catalog, *compute)


def lake_where(location: str, catalog: str | None):
    """Where the lake at ``location`` is (LogferryError: no pyiceberg, a bad location)."""
    try:
        import pyiceberg  # noqa: F401
    except ImportError:
        raise ConfigError("the lake needs pyiceberg: pip install 'logferry[lake]'") from None
    from .tables import Where

    return Where.of(location, catalog)


def open_lake(location: str, catalog: str | None, *, create: bool = False):
    """The lake at ``location`` (LogferryError: not there, unreachable, newer)."""
    from .tables import Lake

    return Lake(lake_where(location, catalog), create=create)


def run_lake_ingest(paths: Sequence[str], location: str, catalog: str | None, *, workers: int | None,
                    cluster: str | None, format: str | None, tz: str | None, quiet: bool,
                    threads: int | None = None):
    """``ingest --lake``: validate everything, then ingest; one line per file as for --db
    (``threads``: the readers' option, in each task)."""
    from ..usage.ingester import expand_inputs
    from ..usage.results import FileResult

    def on_file(res: FileResult) -> None:
        if not quiet or res.status == "error":
            click.echo(safe(res.line()), err=True)

    try:
        missing: list[tuple[str, str]] = []
        files = expand_inputs(paths, missing)
        where = lake_where(location, catalog)
        from .ingest import dask_client, ingest_lake
        from .ranges import range_bytes

        range_bytes()  # (LOGFERRY_LAKE_RANGE_BYTES checked before any work)
        from .tables import Lake

        with dask_client(workers, cluster) as client:  # (reached before the lake is created)
            lake = Lake(where, create=True)
            for p, m in missing:
                on_file(FileResult(p, "error", message=m))
            options = {k: v for k, v in (("tz", tz), ("threads", threads)) if v is not None}
            summary = ingest_lake(lake, files, client=client, format=format, options=options or None,
                                  on_file=on_file)
    except LogferryError as e:
        _fail(str(e))
    summary.files[:0] = [FileResult(p, "error", message=m) for p, m in missing]
    return summary


def lake_connection(location: str, catalog: str | None, params: Any, memory_limit: str | None = None):
    """A DuckDB connection over the lake's last snapshot, pruned to ``params``' filters."""
    from .query import connect_lake

    return connect_lake(open_lake(location, catalog), params, memory_limit=memory_limit)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A lake command: a LogferryError is one line and exit 2."""
    import functools

    @functools.wraps(fn)
    def run(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except LogferryError as e:
            _fail(str(e))

    return run


@click.group("lake")
def lake_group() -> None:
    """The usage lake (Apache Iceberg tables): status and upkeep."""


def _lake_command(name: str) -> Callable[[Callable[..., Any]], Any]:
    """A ``logferry lake NAME [LAKE] [--catalog ...] [--config ...]`` command whose errors
    are one line; without LAKE, the lake of the config's ``[lake]``."""
    import functools

    def wrap(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(lake: str | None, catalog: str | None, config: str | None, **kw: Any) -> Any:
            import os

            from ..config import DEFAULT_FILE

            if not lake and config is None and os.path.isfile(DEFAULT_FILE):
                config = DEFAULT_FILE  # (as serve: the lake of ./logferry.toml)
            compute = {k: kw[k] for k in ("workers", "cluster") if k in kw}
            args = from_config(config, LakeArgs(lake, catalog, **compute))
            if not args.lake:
                raise ConfigError("give the LAKE (a folder or URL), or --config with path in [lake]")
            if compute:  # (compact: the config's [lake] workers or cluster, as ingest's)
                kw.update(workers=args.workers, cluster=args.cluster)
            return fn(args.lake, args.catalog, **kw)

        return lake_group.command(name)(lake_arg(catalog_option(config_option(guarded(run)))))

    return wrap


@_lake_command("status")
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def status_cmd(lake: str, catalog: str | None, as_json: bool) -> None:
    """Tables, snapshots, data files, rows and bytes; files and lines in the manifest."""
    from .upkeep import status

    st = status(open_lake(lake, catalog))
    if as_json:
        click.echo(json.dumps(st))
        return
    click.echo(safe(f"lake {st['location']}, catalog {st['catalog']}"))
    for name, t in st["tables"].items():
        click.echo(safe(f"{name}: {t['rows']:,} rows in {t['data_files']} data files "
                        f"({t['bytes']:,} bytes), {t['snapshots']} snapshots"))
    click.echo(safe(f"manifest: {st['files']} files, {st['lines']:,} lines, {st['records']:,} records, "
                    f"{st['bad_rows']:,} bad rows; {st['orphan_rows']:,} rows no read counts"))
    click.echo(f"stray files: {st['strays']:,} ({st['stray_bytes']:,} bytes) that no snapshot holds (a run in "
               "progress, killed or failed); lake expire deletes them once older than --strays-older-than")


@_lake_command("compact")
@click.option("--workers", type=click.IntRange(min=1, max=1024), default=None,
              help="Rewrite the partitions on a local Dask cluster of this many processes.")
@click.option("--cluster", default=None, help="Rewrite the partitions on this Dask scheduler (tcp://HOST:PORT).")
@click.option("--since", default=None, help="Only the days from this one: a date (2026-12-01) or an age "
              "(2d: the last two days' partitions; the rows without a time, the manifest and rollups always).")
def compact_cmd(lake: str, catalog: str | None, workers: int | None, cluster: str | None, since: str | None) -> None:
    """Rewrite each partition's small data files as one, leaving out rows no read counts
    (a partition at a time, streamed: memory does not grow with its size)."""
    from .ingest import dask_client
    from .upkeep import compact, parse_since_day

    day = None if since is None else parse_since_day(since)  # (checked before anything is opened)
    with dask_client(workers, cluster) as client:  # (reached before the lake is opened)
        r = compact(open_lake(lake, catalog), client, day)
    click.echo(safe(f"compacted {r['partitions']} partitions: {r['files_before']} -> {r['files_after']} "
                    f"data files, {r['orphans_removed']:,} uncounted rows removed"), err=True)


@_lake_command("expire")
@click.option("--older-than", "older", required=True, help="Age, e.g. 400d, 12h (a number and s, m, h, d or w).")
@click.option("--keep-snapshots", "keep", default=None,
              help="Snapshots kept this long (default: 1d, or the --older-than age if shorter); the files "
                   "only older ones held are deleted.")
@click.option("--strays-older-than", "strays", default="3d", show_default=True,
              help="Files no snapshot holds (a killed run's data files, a failed compaction's) are deleted "
                   "once this old (at least 1d).")
def expire_cmd(lake: str, catalog: str | None, older: str, keep: str | None, strays: str) -> None:
    """Delete the rows of the days before now - AGE, the snapshots older than
    --keep-snapshots and the files only they held -- the expired days', those a compaction
    replaced (the manifest keeps its entries: those logs are not ingested again) -- and
    the stray files older than --strays-older-than."""
    from .upkeep import expire, parse_age

    age = parse_age(older)  # (checked before the lake is opened)
    kept = None if keep is None else parse_age(keep, "--keep-snapshots")
    r = expire(open_lake(lake, catalog), age, kept, parse_age(strays, "--strays-older-than"))
    rows = ", ".join(f"{n:,} {name}" for name, n in r["deleted"].items() if n)
    click.echo(safe(f"expired the days older than {older}: deleted {rows or 'no rows'}; "
                    f"{r['expired']} snapshots removed, {r['files']:,} files deleted, "
                    f"{r['strays']:,} stray files deleted ({r['stray_bytes']:,} bytes)"), err=True)


def register(app: click.Group) -> None:
    app.add_command(lake_group)


def rollups_report(location: str, catalog: str | None, params: Any) -> dict[str, Any]:
    """``report --lake --rollups --json``: every site from the hourly rollups."""
    from .rollups import report

    return report(open_lake(location, catalog), params)
