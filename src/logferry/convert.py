"""Read any inputs and write them in another format (the engine behind ``convert``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .reader import BadRow, ReadStats, read
from .writers import get_writer


@dataclass
class ConvertSummary:
    files: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    seconds: float = 0.0
    formats: dict[str, int] = field(default_factory=dict)

    def add(self, s: ReadStats) -> None:
        for k, v in s.__dict__.items():
            setattr(self.stats, k, getattr(self.stats, k) + v)

    def line(self) -> str:
        s = self.stats
        fmts = ", ".join(f"{k}" for k in sorted(self.formats)) or "-"
        rate = s.lines / self.seconds if self.seconds > 0 else 0
        msg = (
            f"{self.files} file(s) [{fmts}]: {s.records} records, {s.bad} bad rows "
            f"({s.lines} lines, {s.directives} directives, {s.blank} blank"
            f"{f', {s.conversion_errors} unconvertible values' if s.conversion_errors else ''}) "
            f"in {self.seconds:.2f}s ({rate:,.0f} lines/s)"
        )
        if self.failed:
            msg += f"; {len(self.failed)} input(s) unreadable"
        return msg


def bad_rows_writer(out: BinaryIO) -> Callable[[BadRow], None]:
    def write(b: BadRow) -> None:
        out.write(json.dumps(b.as_dict(), ensure_ascii=False).encode("utf-8") + b"\n")

    return write


def convert(
    inputs: Iterable[str],
    out: BinaryIO,
    to: str = "jsonl",
    *,
    format: str | None = None,
    on_bad: Callable[[BadRow], None] | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
    options: dict[str, Any] | None = None,
    writer_options: dict[str, Any] | None = None,
) -> ConvertSummary:
    """Convert every input into one output stream; unreadable inputs are reported via
    ``on_error`` (or raised when it is None)."""
    from .errors import InputError

    summary = ConvertSummary()
    t0 = time.perf_counter()
    writer = get_writer(to, out, **(writer_options or {}))
    try:
        for path in inputs:
            try:
                stream = read(path, format, options=options, on_bad=on_bad)
                for batch in stream:
                    writer.write(batch)
            except InputError as e:
                if on_error is None:
                    raise
                summary.failed.append((str(path), str(e)))
                on_error(str(path), e)
                continue
            summary.files += 1
            summary.formats[stream.format] = summary.formats.get(stream.format, 0) + 1
            summary.add(stream.stats)
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - t0
    return summary
