"""The ``logferry`` command: a thin layer over the library (no logic of its own).

Feature areas add their commands through ``register(app)`` in their own modules,
listed in :data:`AREAS`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterable

# numpy's OpenBLAS starts a busy-waiting thread per core when numpy is imported; logferry
# does no linear algebra, and on a small machine those threads take CPU from the parser
# threads.  (Set before anything imports numpy: the package's __init__ does not.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# glibc gives threads that allocate their own malloc arenas (up to 8 per core), and the
# buffers Arrow, DuckDB and Python free stay spread over them: one process ingesting 100
# files into the lake crept from ~420 to ~600 MB; two arenas hold it at ~430 MB at the same
# speed.  The variable reaches child processes (Dask's workers); _tune_malloc sets this one.
os.environ.setdefault("MALLOC_ARENA_MAX", "2")

import click  # noqa: E402

from . import __version__  # noqa: E402
from .cli_options import threads_option  # noqa: E402
from .errors import LogferryError  # noqa: E402
from .term import error, json_safe, safe, tsv  # noqa: E402


def _summary(text: str | None) -> str:
    """A command's whole first paragraph, on one line."""
    return " ".join((text or "").split("\n\n")[0].split())


class Command(click.Command):
    """Listed with its whole first paragraph (click cuts it at the first sentence or to fit)."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _summary(self.help)


class UsageLine(click.ClickException):
    """A usage error (an unknown flag, a value of the wrong kind) shown as every other
    error is: one line ``logferry: error: ...``, exit status 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        error(self.message)


def _one_line(e: click.UsageError) -> UsageLine:
    where = e.ctx.command_path if e.ctx is not None else "logferry"
    return UsageLine(f"{e.format_message()} (see '{where} --help')")


class Group(click.Group):
    """Commands listed in the order they were added, then the sub-groups (click sorts them by
    name), each with its whole first paragraph; with no arguments, the help on stdout and exit
    status 2."""

    command_class = Command
    group_class = type  # sub-groups are Groups too

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _summary(self.help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands, key=lambda n: isinstance(self.commands[n], click.Group))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(2)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            raise _one_line(e) from e

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # Ctrl-C: exit status 130, no "Aborted!"
            raise click.exceptions.Exit(130) from e
        except click.UsageError as e:
            raise _one_line(e) from e
        except LogferryError as e:  # (the net under every command: one line, never a traceback)
            fail(str(e))


#: modules that add command groups: each defines register(app)
AREAS = (
    "logferry.usage.cli",
    "logferry.lake.cli",
    "logferry.ship.cli",
    "logferry.snowplow_cli",
    "logferry.web.cli",
    "logferry.alerts.cli",
)


def fail(msg: str, code: int = 2) -> None:
    error(msg)
    raise click.exceptions.Exit(code)


def version_cb(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"logferry {__version__}")
        ctx.exit()


@click.group("logferry", cls=Group, no_args_is_help=True, context_settings={"show_default": True})
@click.option("--version", is_flag=True, is_eager=True, expose_value=False, callback=version_cb,
              help="Show the version.")
def app() -> None:
    """Read, ship and analyze web access logs of every shape."""


@app.command("formats")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def formats_cmd(as_json: bool) -> None:
    """List the readable formats and the writable ones."""
    from .formats import registry
    from .writers import DESCRIPTIONS, WRITERS

    readers = {n: r.description for n, r in registry().items()}
    if as_json:
        click.echo(json.dumps({"readers": readers, "writers": sorted(WRITERS)}, indent=2))
        return
    click.echo("readers:")
    for n, d in readers.items():
        click.echo(f"  {n:<18} {d}")
    click.echo("writers:")
    for n in sorted(WRITERS):
        click.echo(f"  {n:<18} {DESCRIPTIONS.get(n, '')}".rstrip())


@app.command("detect")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def detect_cmd(files: tuple[str, ...], as_json: bool) -> None:
    """Detect each file's format from its content: FILE<TAB>FORMAT<TAB>CONFIDENCE.

    \b
    Arguments:
      FILES...  Log files (any compression).
    """
    from .reader import detect

    status = 0
    results = []
    for f in files:
        try:
            d = detect(f)
        except LogferryError as e:
            error(e)
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
            tsv([(f, d.format, f"{d.confidence:.2f}")])
    if as_json:
        click.echo(json_safe(json.dumps(results if len(files) > 1 else results[0], indent=None)))
    raise click.exceptions.Exit(status)


@app.command("convert")
@click.argument("files", nargs=-1, required=True)
@click.option("--to", default="jsonl", help="Output format (see `logferry formats`).")
@click.option("-o", "--output", help="Output file (an existing one only with --overwrite), or - for stdout.")
@click.option("--output-dir", help="Write named files here (format's own naming; shop rotates daily).")
@click.option("--overwrite", is_flag=True,
              help="Replace the -o, --bad-rows or --output-dir files that exist (default: an error; "
                   "symlinks in --output-dir are never followed).")
@click.option("--fields", help="Comma-separated output fields, in order.")
@click.option("--where", help="Filter, e.g. 'status=5xx and path^=/api'.")
@click.option("--compress", help="gzip, zstd or none (default: from -o's extension).")
@click.option("--format", "-f", help="Force the input format.")
@click.option("--bad-rows", help="Write bad rows (JSON lines) here.")
@click.option("--bad-rows-cap", metavar="SIZE",
              help="Bad rows kept per input, e.g. 64M (default 16M; past it they are only counted).")
@click.option("--max-line", metavar="SIZE",
              help="A longer line is one bad row, e.g. 64M (default 16M).")
@click.option("--tz", help="Time zone of local times (e.g. Europe/Berlin).")
@click.option("--keep-fields", is_flag=True,
              help="--to parquet: also write the original fields (a map column; slower).")
@click.option("--option", "-O", multiple=True,
              help="Reader option KEY=VALUE, e.g. -O fields=startTimeEpochMilli,clientIp,... for cdn-tsv (repeatable).")
@threads_option
def convert_cmd(
    files: tuple[str, ...],
    to: str,
    output: str | None,
    output_dir: str | None,
    overwrite: bool,
    fields: str | None,
    where: str | None,
    compress: str | None,
    format: str | None,
    bad_rows: str | None,
    bad_rows_cap: str | None,
    max_line: str | None,
    tz: str | None,
    keep_fields: bool,
    option: tuple[str, ...],
    threads: int | None,
) -> None:
    """Convert logs to another format (one JSON object per record with --to jsonl).

    \b
    Arguments:
      FILES...  Input logs (any format, any compression).
    """
    from .convert import bad_rows_writer, convert, open_output, prepare, wrap_compress

    reader_options = parse_options(option, tz)
    if threads is not None:
        reader_options = {**(reader_options or {}), "threads": threads}
    for key, flag, v in (("bad_rows_bytes", "--bad-rows-cap", bad_rows_cap),
                         ("max_line_bytes", "--max-line", max_line)):
        if v is not None:
            from .reader import size_option

            try:
                reader_options = {**(reader_options or {}), key: size_option({key: v}, key, 0, flag)}
            except LogferryError as e:
                fail(str(e))

    if output and output_dir:
        fail("give either -o/--output or --output-dir, not both")
    if compress not in (None, "gzip", "zstd", "none"):
        fail(f"--compress must be gzip, zstd or none, not {compress!r}")
    try:  # every check happens before any output is opened
        prepared = prepare(to, fields, where)
    except LogferryError as e:
        fail(str(e))
    factory = prepared.factory
    finish = None
    try:  # every output path is checked before the first is opened
        from .outputs import check_target

        for path in (output if output not in (None, "-") else None, bad_rows):
            if path:
                check_target(path, overwrite=overwrite)
    except LogferryError as e:
        fail(str(e))
    if output_dir:
        return _convert_to_dir(files, prepared, output_dir, compress, format, bad_rows, reader_options,
                               overwrite)
    if output in (None, "-"):
        if sys.stdout.isatty():
            if getattr(factory, "binary", False):
                fail(f"--to {to} is binary: give -o FILE")
            if compress not in (None, "none"):
                fail(f"--compress {compress} is binary: give -o FILE")
            from .term import TerminalWriter

            # on the screen, log values never act as escape sequences
            out, finish = TerminalWriter(sys.stdout.buffer, json=to == "jsonl"), lambda: None
        else:
            out, finish = wrap_compress(sys.stdout.buffer, compress or "none")
    else:
        try:
            out, finish = open_output(output, compress, overwrite=overwrite, named=True)
        except LogferryError as e:
            fail(str(e))
    bad_f = _open_bad_rows(bad_rows, overwrite)
    errors: list[str] = []
    try:
        summary = convert(
            files,
            out,
            to,
            format=format,
            on_bad=bad_rows_writer(bad_f) if bad_f else None,
            on_error=lambda p, e: errors.append(str(e)),
            options=reader_options,
            writer_options={"include_fields": True} if keep_fields else None,
            fields=prepared.fields,
            where=where,
        )
    except LogferryError as e:
        fail(str(e))
    finally:
        out.flush()
        finish()
        if bad_f:
            bad_f.close()
    _report_convert(summary, errors)


def _report_convert(summary, errors: list[str]) -> None:
    """Errors and the one-line summary on stderr; exit 2 when an input was unreadable."""
    for e in errors:
        error(e)
    click.echo(safe(summary.line()), err=True)
    if errors:
        raise click.exceptions.Exit(2)


def parse_options(pairs: Iterable[str] | None, tz: str | None = None) -> dict | None:
    """``KEY=VALUE`` reader options (plus ``--tz``) -> dict, or None when empty."""
    out: dict[str, str] = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            fail(f"--option wants KEY=VALUE, got {p!r}")
        out[key.strip()] = value
    if tz:
        out["tz"] = tz
    return out or None


def _convert_to_dir(files, prepared, output_dir, compress, format, bad_rows, options, overwrite) -> None:
    """--output-dir: the shop format rotates daily into shopYYYYMMDD.log files; every
    other format gets one file per input, named the format's way."""
    from .convert import bad_rows_writer, convert_to_dir

    bad_f = _open_bad_rows(bad_rows, overwrite)
    errors: list[str] = []
    try:
        summary = convert_to_dir(
            files,
            prepared,
            output_dir,
            compress=compress,
            format=format,
            options=options,
            on_bad=bad_rows_writer(bad_f) if bad_f else None,
            on_error=lambda p, e: errors.append(str(e)),
            on_file=lambda name: click.echo(safe(name)),
            overwrite=overwrite,
        )
    except LogferryError as e:
        fail(str(e))
    finally:
        if bad_f:
            bad_f.close()
    _report_convert(summary, errors)


def _open_bad_rows(path: str | None, overwrite: bool = False):
    if not path:
        return None
    from .outputs import open_for_write

    try:
        return open_for_write(path, overwrite=overwrite)
    except LogferryError as e:
        fail(f"--bad-rows: {e}")


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


class _DeclinePandas:
    """An import finder that declines pandas (see :func:`_skip_pandas_probe`)."""

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (not needed by the logferry command)", name=name)
        return None


def _skip_pandas_probe() -> None:
    """pyarrow imports pandas, when installed, the first time it builds any array (0.2-0.3 s
    of every command), only to ask whether its input is a pandas object; no logferry
    command hands it one.  Answer that first question with "no pandas" here, in the
    command's own process only (the library and ``app`` in tests are untouched)."""
    if "pandas" in sys.modules:
        return
    decline = _DeclinePandas()
    sys.meta_path.insert(0, decline)
    try:
        import pyarrow as pa

        pa.array([0])  # (any array from a list asks)
    finally:
        sys.meta_path.remove(decline)


#: glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8


def _tune_malloc() -> None:
    """Let glibc keep and reuse the few-MB blocks that reading allocates and frees for every
    chunk (file blocks, line offsets, column buffers) instead of handing them back to the
    kernel and faulting fresh zeroed pages in for the next chunk: blocks of up to 32 MB
    come from the heap, and up to 128 MB of free heap is kept.  A third of the page
    faults and about 8% less CPU on a large file; peak memory is about the same (the
    blocks are reused, not added).  glibc only, in the command's own process only.  And
    at most ``MALLOC_ARENA_MAX`` arenas (set on import; glibc read the variable before
    Python started)."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return
    mallopt(M_MMAP_THRESHOLD, 32 << 20)  # (glibc's upper limit on 64-bit)
    mallopt(M_TRIM_THRESHOLD, 128 << 20)
    if os.environ["MALLOC_ARENA_MAX"].isdecimal():
        mallopt(M_ARENA_MAX, int(os.environ["MALLOC_ARENA_MAX"]))


def _only_help(args: list[str]) -> bool:
    """Whether the command line only asks for help or the version (no pyarrow needed)."""
    return not args or any(a in ("--help", "--version") for a in args)


def main() -> None:
    from .logs import quiet_libraries, setup

    _tune_malloc()
    quiet_libraries()
    setup()
    if not _only_help(sys.argv[1:]):
        _skip_pandas_probe()
    try:
        app()
    except LogferryError as e:
        error(e)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as e:  # the environment: a file or folder that cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        error(f"{where}{e.strerror or e}")
        sys.exit(2)
    except Exception as e:
        if not _environment_error(e):
            raise
        error(str(e).splitlines()[0] if str(e) else type(e).__name__)
        sys.exit(2)


def _environment_error(e: Exception) -> bool:
    """DuckDB's errors about the database file itself (cannot open or write it, not a
    database, no permission), and AWS's (botocore: a Glue catalog unreachable or refusing
    mid-run): the environment, not a bug."""
    t = type(e)
    if t.__module__ == "botocore.exceptions":  # AWS (a Glue catalog): unreachable, denied, no credentials
        return True
    return t.__module__ in ("duckdb", "_duckdb") and t.__name__ in ("IOException", "PermissionException")


if __name__ == "__main__":  # pragma: no cover
    main()
