"""Command-line options shared by the commands of several areas (no side effects on
import: ``python -m logferry.cli`` imports the areas, which import this)."""

from __future__ import annotations

import click

from .errors import ConfigError
from .term import error
from .values import whole


def _threads_cb(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:  # the one strict parser: str.isdigit() also takes '③', which int() refuses
        return whole(value.strip(), "--threads", lo=1)
    except ConfigError:
        error(f"--threads: a number of workers, 1 or more, not {value!r}")
        raise click.exceptions.Exit(2) from None


#: ``--threads N`` of the commands that read logs (convert, ingest, report, ship)
threads_option = click.option(
    "--threads", metavar="N", callback=_threads_cb,
    help="Workers reading one file (byte ranges of a plain file, parsing; default: every core; 1: one reader).")
