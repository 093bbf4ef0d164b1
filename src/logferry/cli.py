"""The ``logferry`` command: a thin layer over the library (no logic of its own).

Feature areas add their commands through ``register(app)`` in their own modules,
listed in :data:`AREAS`.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import LogferryError

app = typer.Typer(
    name="logferry",
    help="Read, ship and analyze web access logs of every shape.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: modules that add command groups: each defines register(app)
AREAS = (
    "logferry.usage.cli",
    "logferry.ship.cli",
    "logferry.snowplow_cli",
)


def fail(msg: str, code: int = 2) -> None:
    typer.echo(f"logferry: error: {msg}", err=True)
    raise typer.Exit(code)


def version_cb(value: bool) -> None:
    if value:
        typer.echo(f"logferry {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_cb, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Read, ship and analyze web access logs of every shape."""


@app.command("formats")
def formats_cmd(as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """List the readable formats and the writable ones."""
    from .formats import registry
    from .writers import WRITERS

    readers = {n: r.description for n, r in registry().items()}
    if as_json:
        typer.echo(json.dumps({"readers": readers, "writers": sorted(WRITERS)}, indent=2))
        return
    typer.echo("readers:")
    for n, d in readers.items():
        typer.echo(f"  {n:<18} {d}")
    typer.echo("writers:")
    for n in sorted(WRITERS):
        typer.echo(f"  {n}")


@app.command("detect")
def detect_cmd(
    files: Annotated[list[str], typer.Argument(help="Log files (any compression).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
) -> None:
    """Detect each file's format from its content: FILE<TAB>FORMAT<TAB>CONFIDENCE."""
    from .reader import detect

    status = 0
    results = []
    for f in files:
        try:
            d = detect(f)
        except LogferryError as e:
            typer.echo(f"logferry: error: {e}", err=True)
            status = 2
            if as_json:
                results.append({"file": f, "format": None, "confidence": 0.0, "error": str(e)})
            continue
        if as_json:
            results.append(
                {
                    "file": f,
                    "format": d.format,
                    "confidence": d.confidence,
                    "compression": d.compression,
                    "candidates": [{"format": n, "confidence": c} for n, c in d.candidates],
                }
            )
        else:
            typer.echo(f"{f}\t{d.format}\t{d.confidence:.2f}")
    if as_json:
        typer.echo(json.dumps(results if len(files) > 1 else results[0], indent=None))
    raise typer.Exit(status)


@app.command("convert")
def convert_cmd(
    files: Annotated[list[str], typer.Argument(help="Input logs (any format, any compression).")],
    to: Annotated[str, typer.Option("--to", help="Output format (see `logferry formats`).")] = "jsonl",
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Output file, or - for stdout.")] = None,
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="Force the input format.")] = None,
    bad_rows: Annotated[Optional[str], typer.Option("--bad-rows", help="Write bad rows (JSON lines) here.")] = None,
    tz: Annotated[Optional[str], typer.Option("--tz", help="Time zone of local times (e.g. Europe/Berlin).")] = None,
) -> None:
    """Convert logs to another format (one JSON object per record with --to jsonl)."""
    from .convert import bad_rows_writer, convert
    from .writers import writer_factory

    try:
        factory = writer_factory(to)
    except LogferryError as e:
        fail(str(e))
    if output in (None, "-"):
        if getattr(factory, "binary", False) and sys.stdout.isatty():
            fail(f"--to {to} is binary: give -o FILE")
        out = sys.stdout.buffer
        close_out = False
    else:
        out = open(output, "wb")
        close_out = True
    bad_f = open(bad_rows, "wb") if bad_rows else None
    errors: list[str] = []
    try:
        summary = convert(
            files,
            out,
            to,
            format=format,
            on_bad=bad_rows_writer(bad_f) if bad_f else None,
            on_error=lambda p, e: errors.append(str(e)),
            options={"tz": tz} if tz else None,
        )
    except LogferryError as e:
        fail(str(e))
    finally:
        out.flush()
        if close_out:
            out.close()
        if bad_f:
            bad_f.close()
    for e in errors:
        typer.echo(f"logferry: error: {e}", err=True)
    typer.echo(summary.line(), err=True)
    if errors:
        raise typer.Exit(2)


def _register_areas() -> None:
    for mod in AREAS:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and mod.startswith(e.name):
                continue
            raise
        m.register(app)


_register_areas()


def main() -> None:
    try:
        app()
    except LogferryError as e:
        typer.echo(f"logferry: error: {e}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
