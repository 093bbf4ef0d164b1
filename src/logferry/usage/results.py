"""What an ingest did: one :class:`FileResult` per input and the :class:`IngestSummary` of
a run (the same for every store: the DuckDB file or the lake)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..term import safe


@dataclass
class FileResult:
    path: str
    status: str  # new | grown | duplicate | unchanged | truncated | error
    file_id: int | None = None
    format: str | None = None
    lines: int = 0  # lines read this time (new lines for a grown file)
    records: int = 0  # committed this time (for an error: before it happened)
    bad_rows: int = 0
    orders: int = 0
    message: str = ""
    truncated_at: int | None = None  # decompressed byte where a truncated file's data ends

    def line(self) -> str:
        path = safe(self.path)
        if self.status == "error":
            done = (f" ({self.records} records, {self.bad_rows} bad rows committed before it)"
                    if self.records or self.bad_rows else "")
            return f"{path}: error: {safe(self.message)}{done}"
        if self.status in ("duplicate", "unchanged"):
            return f"{path}: {safe(self.message)}"
        what = {"new": "new file", "grown": "grown file, new lines only",
                "truncated": "truncated file, lines before the damage"}[self.status]
        out = (
            f"{path}: {what} ({self.format}, file_id {self.file_id}): "
            f"{self.records} records, {self.bad_rows} bad rows"
        )
        return out + (f"; {safe(self.message)}" if self.message else "")


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bad_rows(self) -> int:
        return sum(f.bad_rows for f in self.files)

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def errors(self) -> int:
        """Files that failed or stopped short (a truncated compressed file)."""
        return self.count("error") + self.count("truncated")

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "new": self.count("new"),
            "grown": self.count("grown"),
            "skipped": self.count("duplicate") + self.count("unchanged"),
            "errors": self.count("error"),
            "truncated": self.count("truncated"),
            "lines": self.lines,
            "records": self.records,
            "bad_rows": self.bad_rows,
            "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds > 0 else None,
        }

    def line(self) -> str:
        d = self.as_dict()
        return (
            f"{d['files']} files ({d['new']} new, {d['grown']} grown, {d['skipped']} already "
            f"ingested, {d['errors']} errors"
            + (f", {d['truncated']} truncated" if d["truncated"] else "")
            + f"): {d['records']:,} records, {d['bad_rows']:,} bad rows "
            f"in {d['seconds']:.2f} s"
        )

