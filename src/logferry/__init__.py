"""logferry: read, ship and analyze web access logs of every shape.

Public API::

    import logferry
    logferry.detect("access.log")           # -> Detection(format, confidence, ...)
    for batch in logferry.read("access.log.gz"):
        ...                                  # pyarrow.RecordBatch, canonical columns
"""

from __future__ import annotations

__version__ = "0.1.0"

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
from .reader import BadRow, Detection, ReadStats, RecordStream, detect, read
from .schema import CANONICAL, CANONICAL_SCHEMA

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
