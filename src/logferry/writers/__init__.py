"""Writers: canonical record batches -> a target format, written to a binary stream.

A writer is built as ``factory(out: BinaryIO, **options)`` and has ``write(batch)`` and
``close()`` (finishes the format -- footer, Parquet metadata -- without closing
``out``).  Compression, rotation and delivery happen outside the writer.
Registry: :data:`WRITERS` maps a ``--to`` name to ``"module:factory"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, BinaryIO

#: --to name -> "module:factory"
WRITERS: dict[str, str] = {
    "jsonl": "logferry.writers.jsonl:JsonlWriter",
    "parquet": "logferry.writers.parquet:ParquetWriter",
    "w3c": "logferry.writers.w3c:W3CWriter",
    "shop": "logferry.writers.w3c:ShopWriter",
    "cloudfront": "logferry.writers.cloudfront:CloudFrontWriter",
    "cdn-tsv": "logferry.writers.cdn:CdnTsvWriter",
    "cdn-json": "logferry.writers.cdn:CdnJsonWriter",
    "csv-usage": "logferry.writers.csv_usage:CsvUsageWriter",
}


#: --to name -> what ``logferry formats`` says about it
DESCRIPTIONS: dict[str, str] = {
    "jsonl": "one JSON object per record: canonical columns, source_file, line_number, fields",
    "parquet": "the canonical columns (--keep-fields: the original fields as a map column)",
    "w3c": "W3C Extended / IIS: dialect declared in #Software, time-taken in its unit (seconds; "
           "ms with IIS fields); columns without any value left out unless --fields names them",
    "shop": "W3C shop extension: its nine fields, URL-encoded text",
    "cloudfront": "CloudFront standard log, 33 fields, tab-separated",
    "cdn-tsv": "CDN transaction log, headerless TSV",
    "cdn-json": "CDN transaction log, JSON lines",
    "csv-usage": "CSV usage log (title line, quoted values)",
}


def writer_factory(name: str) -> Callable[..., Any]:
    from ..errors import ConfigError

    if name not in WRITERS:
        raise ConfigError(
            f"unknown output format {name!r}; choose one of: {', '.join(sorted(WRITERS))}"
        )
    mod, _, attr = WRITERS[name].partition(":")
    return getattr(importlib.import_module(mod), attr)


def get_writer(name: str, out: BinaryIO, **options: Any):
    return writer_factory(name)(out, **options)
