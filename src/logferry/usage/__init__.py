"""The usage database (DuckDB): ingest logs once, report on them with SQL.

>>> from logferry.usage import connect, ingest, run_reports   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

#: the database file commands use when none is given
DEFAULT_DB = "logferry.duckdb"

if TYPE_CHECKING:
    from .db import connect
    from .ingester import FileResult, IngestSummary, ingest

# (loaded on first use: the command line imports this package to register its commands)
__getattr__, __dir__ = lazy_names(
    __name__,
    {"connect": ".db", **dict.fromkeys(("FileResult", "IngestSummary", "ingest"), ".ingester")},
)

__all__ = ["DEFAULT_DB", "FileResult", "IngestSummary", "connect", "ingest"]
