"""The HTML report is the interactive dashboard of :mod:`logferry.usage.dashboard`; this
module keeps the plain-text value formatting the terminal tables use."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any


def fmt(v: Any) -> str:
    """A report value as text: thousands separators, times to the second."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, Decimal):
        return f"{v:,.2f}" if v != v.to_integral_value() or v.as_tuple().exponent < 0 else f"{int(v):,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, bytes | bytearray | memoryview):
        from .reports import blob_text

        return blob_text(v)
    return str(v)


#: report columns that hold a fraction of 1 (shown as a percentage in terminal tables, as
#: the dashboard shows them): ``share``, ``hit_ratio``, ``rate_4xx``, ...
FRACTIONS = re.compile(r"^(share|\w+_ratio|rate_\w+)$")


def fmt_cell(column: str, v: Any) -> str:
    """``fmt``, with a fraction column's value as a percentage (0.1234 -> ``12.34%``)."""
    if FRACTIONS.match(column) and isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
        return f"{float(v) * 100:.2f}".rstrip("0").rstrip(".") + "%"
    return fmt(v)

