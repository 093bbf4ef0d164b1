"""logferry: read, ship and analyze web access logs of every shape.

Public API::

    import logferry
    logferry.detect("access.log")           # -> Detection(format, confidence, ...)
    for batch in logferry.read("access.log.gz"):
        ...                                  # pyarrow.RecordBatch, canonical columns
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from ._lazy import lazy_names
from .errors import (
    AmbiguousFormatError,
    ConfigError,
    ConversionError,
    DeliveryError,
    InputError,
    LogferryError,
    PermanentError,
    TransientError,
    UnknownFormatError,
)

if TYPE_CHECKING:
    from .reader import BadRow, Detection, ReadStats, RecordStream, detect, read
    from .schema import CANONICAL, CANONICAL_SCHEMA

#: the public names that need pyarrow/numpy, imported on first use (``logferry --help`` and
#: the errors module stay light; the CLI configures numpy before it is loaded)
_LAZY = {
    **dict.fromkeys(("BadRow", "Detection", "ReadStats", "RecordStream", "detect", "read"), ".reader"),
    **dict.fromkeys(("CANONICAL", "CANONICAL_SCHEMA"), ".schema"),
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY)

__all__ = [
    "AmbiguousFormatError",
    "BadRow",
    "CANONICAL",
    "CANONICAL_SCHEMA",
    "ConfigError",
    "ConversionError",
    "DeliveryError",
    "Detection",
    "InputError",
    "LogferryError",
    "PermanentError",
    "ReadStats",
    "RecordStream",
    "TransientError",
    "UnknownFormatError",
    "__version__",
    "detect",
    "read",
]
