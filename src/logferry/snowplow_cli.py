"""``logferry events FILE...``: Snowplow tracker events from raw collector logs."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    return str(v)


def _write_jsonl(out, batch) -> None:
    lines = []
    for row in batch.to_pylist():
        lines.append(json.dumps({k: v for k, v in row.items() if v is not None}, default=_json_default, ensure_ascii=False))
    if lines:
        out.write(("\n".join(lines) + "\n").encode("utf-8"))


def events_cmd(
    files: Annotated[list[str], typer.Argument(help="Raw collector logs: CloudFront, Clojure-collector, Thrift.")],
    to: Annotated[str, typer.Option("--to", help="jsonl (one JSON object per event) or parquet.")] = "jsonl",
    output: Annotated[str | None, typer.Option("-o", "--output", help="Output file, or - for stdout.")] = None,
    bad_rows: Annotated[str | None, typer.Option("--bad-rows", help="Write bad events (JSON lines) here.")] = None,
) -> None:
    """Decode Snowplow tracker events (page views, pings, struct/unstruct events, transactions)."""
    from .errors import LogferryError
    from .snowplow import EVENTS_SCHEMA, read_events

    if to not in ("jsonl", "parquet"):
        typer.echo(f"logferry: error: --to must be jsonl or parquet, not {to!r}", err=True)
        raise typer.Exit(2)
    if to == "parquet" and output in (None, "-"):
        typer.echo("logferry: error: --to parquet is binary: give -o FILE", err=True)
        raise typer.Exit(2)
    out = sys.stdout.buffer if output in (None, "-") else open(output, "wb")
    bad_f = open(bad_rows, "w", encoding="utf-8") if bad_rows else None
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
                typer.echo(f"logferry: error: {e}", err=True)
                status = 2
                continue
            totals["files"] += 1
            totals["events"] += stream.stats.events
            totals["bad"] += stream.stats.bad
            totals["lines"] += stream.stats.hits
    finally:
        if pq_writer is not None:
            pq_writer.close()
        out.flush()
        if out is not sys.stdout.buffer:
            out.close()
        if bad_f:
            bad_f.close()
    typer.echo(
        f"{totals['files']} file(s), {totals['lines']} collector rows: "
        f"{totals['events']} events, {totals['bad']} bad events",
        err=True,
    )
    raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    app.command("events")(events_cmd)
