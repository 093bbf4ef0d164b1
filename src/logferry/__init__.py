"""logferry: read, ship and analyze web access logs of every shape.

Public API::

    import logferry
    logferry.detect("access.log")           # -> Detection(format, confidence, ...)
    for batch in logferry.read("access.log.gz"):
        ...                                  # pyarrow.RecordBatch, canonical columns
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .reader import BadRow, Detection, ReadStats, RecordStream, detect, read
    from .schema import CANONICAL, CANONICAL_SCHEMA

#: the public names that need pyarrow/numpy, imported on first use (``logferry --help`` and
#: the errors module stay light; the CLI configures numpy before it is loaded)
_LAZY = {
    **dict.fromkeys(("BadRow", "Detection", "ReadStats", "RecordStream", "detect", "read"), ".reader"),
    **dict.fromkeys(("CANONICAL", "CANONICAL_SCHEMA"), ".schema"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'logferry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

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
