"""The usage database (DuckDB): ingest logs once, report on them with SQL.

>>> from logferry.usage import connect, ingest, run_reports   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from .defaults import DEFAULT_DB

if TYPE_CHECKING:
    from .db import connect
    from .ingester import ingest
    from .results import FileResult, IngestSummary

# (loaded on first use: the command line imports this package to register its commands)
__getattr__, __dir__ = lazy_names(
    __name__,
    {"connect": ".db", "ingest": ".ingester",
     **dict.fromkeys(("FileResult", "IngestSummary"), ".results")},
)

__all__ = ["DEFAULT_DB", "FileResult", "IngestSummary", "connect", "ingest"]
