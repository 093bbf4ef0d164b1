"""``logferry events FILE...``: Snowplow tracker events from raw collector logs."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime
from typing import Any

import click

from .term import echo, error, json_safe


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    return str(v)


def _write_jsonl(out, batch) -> None:
    lines = []
    for row in batch.to_pylist():
        lines.append(json_safe(json.dumps({k: v for k, v in row.items() if v is not None}, default=_json_default,
                                          ensure_ascii=False)))
    if lines:
        out.write(("\n".join(lines) + "\n").encode("utf-8"))


@click.argument("files", nargs=-1, required=True)
@click.option("--to", default="jsonl", help="jsonl (one JSON object per event) or parquet.")
@click.option("-o", "--output", help="Output file (an existing one only with --overwrite), or - for stdout.")
@click.option("--bad-rows", help="Write bad events (JSON lines) here.")
@click.option("--overwrite", is_flag=True, help="Replace the -o or --bad-rows file if it exists (default: an error).")
def events_cmd(files: tuple[str, ...], to: str, output: str | None, bad_rows: str | None, overwrite: bool) -> None:
    """Decode Snowplow tracker events (page views, pings, struct/unstruct events, transactions).

    \b
    Arguments:
      FILES...  Raw collector logs: CloudFront, Clojure-collector, Thrift.
    """
    from .errors import LogferryError
    from .snowplow import EVENTS_SCHEMA, read_events

    if to not in ("jsonl", "parquet"):
        click.echo(f"logferry: error: --to must be jsonl or parquet, not {to!r}", err=True)
        raise click.exceptions.Exit(2)
    if to == "parquet" and output in (None, "-"):
        click.echo("logferry: error: --to parquet is binary: give -o FILE", err=True)
        raise click.exceptions.Exit(2)
    from .outputs import check_target, open_for_write

    try:
        for path in (output if output not in (None, "-") else None, bad_rows):
            if path:
                check_target(path, overwrite=overwrite)  # both, before either is opened
        out = sys.stdout.buffer if output in (None, "-") else open_for_write(output, overwrite=overwrite)
        bad_f = io.TextIOWrapper(open_for_write(bad_rows, overwrite=overwrite), encoding="utf-8") if bad_rows else None
    except LogferryError as e:
        error(e)
        raise click.exceptions.Exit(2) from None
    pq_writer = None
    if to == "parquet":
        import pyarrow.parquet as pq

        pq_writer = pq.ParquetWriter(out, EVENTS_SCHEMA, compression="zstd")
    totals = {"files": 0, "events": 0, "bad": 0, "lines": 0}
    status = 0

    def on_bad(b) -> None:
        if bad_f is not None:
            bad_f.write(json.dumps(b.as_dict(), ensure_ascii=False) + "\n")

    try:
        for f in files:
            stream = read_events(f, on_bad=on_bad if bad_f else None)
            try:
                for batch in stream:
                    if pq_writer is not None:
                        pq_writer.write_batch(batch)
                    else:
                        _write_jsonl(out, batch)
            except LogferryError as e:
                error(e)
                status = 2
                continue
            totals["files"] += 1
            totals["events"] += stream.stats.events
            totals["bad"] += stream.stats.bad
            totals["lines"] += stream.stats.hits
            totals["conversion_errors"] = totals.get("conversion_errors", 0) + stream.stats.conversion_errors
    finally:
        if pq_writer is not None:
            pq_writer.close()
        out.flush()
        if out is not sys.stdout.buffer:
            out.close()
        if bad_f:
            bad_f.close()
    echo(
        f"{totals['files']} file(s), {totals['lines']} collector rows: "
        f"{totals['events']} events, {totals['bad']} bad events"
        + (f", {totals['conversion_errors']} unconvertible values" if totals.get("conversion_errors") else ""),
        err=True,
    )
    raise click.exceptions.Exit(status)


def register(app: click.Group) -> None:
    app.command("events")(events_cmd)
