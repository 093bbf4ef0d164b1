"""One exception tree for logferry.

::

    LogferryError
     ├── InputError            input cannot be read at all (missing file, not a log)
     │    ├── UnknownFormatError     no reader recognises the content
     │    ├── AmbiguousFormatError   two readers recognise it equally well
     │    └── MissingExtraError      a codec/backend needs an optional package
     ├── ConfigError           bad configuration / CLI arguments (names key, file, reason)
     ├── ConversionError       a requested conversion is impossible (field, expression)
     ├── OutputError           an output cannot be written (exists, a symlink, no permission)
     └── DeliveryError         a destination refused or failed
          ├── TransientError     worth retrying (timeouts, 5xx, connection reset)
          └── PermanentError     retrying will not help (auth, 4xx, bad name)

Errors raised at a backend boundary keep the original exception as ``__cause__``.
"""

from __future__ import annotations


class LogferryError(Exception):
    """Base class of every error logferry raises on purpose."""


class InputError(LogferryError):
    """The input cannot be read at all."""


class UnknownFormatError(InputError):
    """No reader recognises the content."""


class AmbiguousFormatError(InputError):
    """Several readers recognise the content equally well."""

    def __init__(self, path: str, candidates: list[tuple[str, float]]):
        self.path = path
        self.candidates = candidates
        names = ", ".join(f"{n} ({c:.2f})" for n, c in candidates)
        super().__init__(
            f"{path}: format is ambiguous between {names}; "
            f"force one with --format NAME (e.g. --format {candidates[0][0]})"
        )


class MissingExtraError(InputError):
    """An optional dependency is needed."""

    def __init__(self, what: str, package: str, extra: str):
        super().__init__(
            f"{what} needs the optional package {package!r}: "
            f"pip install 'logferry[{extra}]'"
        )


class ResourceError(LogferryError):
    """The work needs more memory or disk than it may use."""


class ConfigError(LogferryError):
    """Invalid configuration or arguments."""


class OutputError(LogferryError):
    """An output file cannot be written (it exists, it is a symlink, no permission)."""


class ConversionError(LogferryError):
    """A requested conversion, field list or filter expression is impossible."""


class DeliveryError(LogferryError):
    """A destination failed."""


class TransientError(DeliveryError):
    """A failure worth retrying."""


class PermanentError(DeliveryError):
    """A failure that retrying will not fix."""


def first_line(e: BaseException) -> str:
    """What an error says in one line: its message's first line, else its type's name."""
    return (str(e).splitlines() or [""])[0] or type(e).__name__
