"""The usage database (DuckDB): ingest logs once, report on them with SQL.

>>> from logferry.usage import connect, ingest, run_reports   # doctest: +SKIP
"""

from __future__ import annotations

from .db import DEFAULT_DB, connect
from .ingest import FileResult, IngestSummary, ingest

__all__ = ["DEFAULT_DB", "FileResult", "IngestSummary", "connect", "ingest"]
