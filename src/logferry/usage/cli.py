"""Commands of the usage area: ``ingest``, ``report``, ``sql`` and ``demo``."""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import Annotated, Any

import typer

from . import DEFAULT_DB

DbOpt = Annotated[str, typer.Option("--db", help="Usage database file (DuckDB).")]


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"logferry: error: {msg}", err=True)
    raise typer.Exit(code)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


# --- ingest -----------------------------------------------------------------------------

def run_ingest(paths: list[str], db: str, *, format: str | None = None, tz: str | None = None,
               quiet: bool = False, progress: bool | None = None):
    """Ingest with a progress bar on a terminal; prints one line per file and a summary."""
    from ..errors import LogferryError
    from .db import connect
    from .ingest import INGEST_MEMORY_LIMIT, Ingester, _size, expand

    err = _console(stderr=True)
    try:
        files = list(expand(paths))
    except LogferryError as e:
        _fail(str(e))
    con = connect(db, memory_limit=INGEST_MEMORY_LIMIT)
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

            total = sum(s for s in (_size(f) for f in files) if s) or None
            bar = Progress(TextColumn("ingest"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                           TimeRemainingColumn(), console=err, transient=True)
            task = bar.add_task("ingest", total=total)
            bar.start()

            def on_bytes(n: int) -> None:
                bar.advance(task, n)

        def on_file(res) -> None:
            if quiet and res.status != "error":
                return
            (bar.console if bar else err).print(res.line(), markup=False, highlight=False)

        ing = Ingester(con, format=format, options={"tz": tz} if tz else None, on_bytes=on_bytes,
                       exclude=[db, db + ".wal"])
        try:
            summary = ing.ingest(paths, on_file=on_file, files=files)
        finally:
            if bar is not None:
                bar.stop()
    finally:
        con.close()
    return summary


def ingest_cmd(
    paths: Annotated[list[str], typer.Argument(help="Log files, globs, folders or URLs (s3://, gs://, sftp://...).")],
    db: DbOpt = DEFAULT_DB,
    format: Annotated[str | None, typer.Option("--format", "-f", help="Force the input format.")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Time zone of local times.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Ingest logs into the usage database; each file once, grown files by their new lines."""
    summary = run_ingest(paths, db, format=format, tz=tz, quiet=quiet)
    if as_json:
        d = summary.as_dict()
        d["details"] = [vars(f) for f in summary.files]
        typer.echo(json.dumps(d))
    else:
        typer.echo(summary.line(), err=True)
    if summary.errors:
        raise typer.Exit(1)


# --- report -----------------------------------------------------------------------------

def _print_terminal(data: dict[str, Any], limit: int = 12) -> None:
    from rich.table import Table

    from .html import fmt

    con = _console()
    for w in data.get("warnings", []):
        con.print(f"[yellow]warning:[/] {w}", highlight=False)
    for _name, rep in data["reports"].items():
        con.rule(f"[bold]{rep['title']}")
        for sec, rows in rep["sections"].items():
            if sec == "buckets":
                rows = [r for r in rows if r.get("down_reason")]
                sec = "down buckets"
            cols = rep["columns"].get(sec) or (list(rows[0]) if rows else [])
            if not rows:
                con.print(f"[dim]{sec}: no rows[/]")
                continue
            t = Table(title=sec.replace("_", " "), title_justify="left", show_edge=False, pad_edge=False)
            for c in cols:
                v = rows[0].get(c)
                t.add_column(c, justify="right" if isinstance(v, int | float) else "left",
                             overflow="fold", max_width=60)
            for r in rows[:limit]:
                t.add_row(*(fmt(r.get(c)) for c in cols))
            if len(rows) > limit:
                t.caption = f"{len(rows) - limit:,} more rows (--json for all)"
            con.print(t)


def report_data(db: str, params, only: list[str] | None = None) -> dict[str, Any]:
    from .db import connect
    from .reports import REPORT_MEMORY_LIMIT, run

    con = connect(db, read_only=True, memory_limit=REPORT_MEMORY_LIMIT)
    try:
        return run(con, params, only=only)
    finally:
        con.close()


def report_cmd(
    db: DbOpt = DEFAULT_DB,
    since: Annotated[str | None, typer.Option("--since", help="From this time (ISO 8601, UTC unless an offset is given).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time (ISO 8601).")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Only this site (site or host column).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="All reports as JSON on stdout.")] = False,
    html: Annotated[str | None, typer.Option("--html", help="Write one self-contained HTML file.")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Only these reports (repeatable).")] = None,
    bucket: Annotated[float, typer.Option("--bucket", help="Uptime bucket, minutes.")] = 5.0,
    threshold: Annotated[float, typer.Option("--threshold", help="5xx share that makes a bucket down.")] = 0.5,
    gap: Annotated[int, typer.Option("--gap", help="Buckets without traffic longer than this are down.")] = 3,
    top: Annotated[int, typer.Option("--top", help="Rows in top-N sections.")] = 20,
) -> None:
    """Reports: summary, status codes and errors, performance, 404s, uptime, CDN, shop, top."""
    from .reports import REPORTS, Params, jsonable

    if as_json and html:
        _fail("--json and --html are exclusive")
    for o in only or []:
        if o not in REPORTS:
            _fail(f"unknown report {o!r}; reports: {', '.join(REPORTS)}")
    params = Params(since=since, until=until, site=site, bucket_minutes=bucket, threshold=threshold,
                    gap_buckets=gap, top=top)
    data = report_data(db, params, only)
    if as_json:
        typer.echo(json.dumps(jsonable(data), ensure_ascii=False))
    elif html:
        from .html import write

        write(data, html)
        typer.echo(f"wrote {html}", err=True)
    else:
        _print_terminal(data)


# --- sql --------------------------------------------------------------------------------

def sql_cmd(
    query: Annotated[str, typer.Argument(help="Any SQL (the database is opened read-only).")],
    db: DbOpt = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header line.")] = False,
) -> None:
    """Run a query against the usage database (tables: files, requests, bad_rows, orders, order_items)."""
    import duckdb

    from .db import connect
    from .reports import _arrow, jsonable

    if as_json and as_csv:
        _fail("--json and --csv are exclusive")
    con = connect(db, read_only=True)
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
    rows = t.to_pylist()
    if as_json:
        for r in rows:
            typer.echo(json.dumps(jsonable(r), ensure_ascii=False))
    elif as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(t.column_names)
        for r in rows:
            w.writerow(["" if v is None else jsonable(v) for v in r.values()])
    else:
        from rich.table import Table

        from .html import fmt

        tab = Table(show_edge=False)
        for c in t.column_names:
            tab.add_column(c, overflow="fold")
        for r in rows:
            tab.add_row(*(fmt(v) for v in r.values()))
        _console().print(tab)


# --- demo -------------------------------------------------------------------------------

def demo_cmd(
    out: Annotated[str, typer.Option("--out", help="Folder for the sample logs, database and report.")] = "logferry-demo",
) -> None:
    """Write sample logs (IIS, CloudFront, shop, CDN, CSV usage), ingest them, write report.html."""
    from ..samples import write_samples
    from .reports import Params

    os.makedirs(out, exist_ok=True)
    logs = os.path.join(out, "logs")
    files = write_samples(logs)
    typer.echo(f"wrote {len(files)} sample logs to {logs}", err=True)
    db = os.path.join(out, "demo.duckdb")
    summary = run_ingest([logs], db)
    typer.echo(summary.line(), err=True)
    data = report_data(db, Params())
    from .html import write

    html = os.path.join(out, "report.html")
    write(data, html, title="logferry demo report")
    _print_terminal({"warnings": data["warnings"], "reports": {"summary": data["reports"]["summary"]}})
    typer.echo(f"report: {html}", err=True)
    typer.echo(f"database: {db}  (try: logferry report --db {db}   or   logferry sql --db {db} \"SELECT ...\")",
               err=True)
    if summary.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
    app.command("report")(report_cmd)
    app.command("sql")(sql_cmd)
    app.command("demo")(demo_cmd)
