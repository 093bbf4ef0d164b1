"""Format registry: name -> reader, and detection from content.

Each format module defines ``READERS: dict[str, Reader]``.  Modules are imported on
first use.  A reader has:

* ``sniff(head: Head) -> float``: confidence in [0, 1] that ``head`` is this format;
* ``read(chunks, ctx) -> Iterator[pyarrow.RecordBatch]``: canonical batches from
  :class:`~logferry.lines.LineChunk`s (text formats) -- or, for ``binary`` readers,
  ``read(stream, ctx)`` from the decompressed byte stream.

Adding a format = one module + one line in :data:`MODULES` + its tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pyarrow as pa

from ..lines import decode

#: format modules, in the order their readers are listed
MODULES = (
    "w3c",
    "cloudfront",
    "cdn",
    "csv_usage",
    "clf",
    "jsonlogs",
    "snowplow",
    "snowplow_thrift",
    "canonical",
)

#: confidence below which a format is not considered at all
MIN_CONFIDENCE = 0.3
#: two candidates closer than this are a tie
TIE = 0.02
_DIGITS_AS_ZERO = str.maketrans("123456789", "0" * 9)


@dataclass
class Head:
    """The first bytes of a (decompressed) input, for sniffing.

    Every reader sniffs the same head: what several of them need (its data lines, as a
    list, as one text or as an Arrow array) is built once, by :meth:`shared`.  ``lines``
    is not to be changed once sniffing has begun."""

    raw: bytes
    name: str = ""
    lines: list[str] = field(default_factory=list)
    _shared: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_bytes(cls, raw: bytes, name: str = "", max_lines: int = 64) -> Head:
        text_lines: list[str] = []
        for b in _first_lines(raw, max_lines + 8):
            s = decode(b)
            if s.strip():
                text_lines.append(s)
            if len(text_lines) >= max_lines:
                break
        # drop a last line that may be cut in the middle
        if raw and not raw.endswith((b"\n", b"\r")) and len(raw) >= 65536 and text_lines:
            text_lines.pop()
        return cls(raw, name, text_lines)

    @cached_property
    def data_lines(self) -> list[str]:
        return [ln for ln in self.lines if not ln.startswith("#")]

    def shared(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, made once per head and ``key``: work several sniffers share."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    @cached_property
    def text(self) -> str:
        """Every line, each after a newline: a format whose lines each hold some character
        (or shape) that this text lacks matches none of them -- a proof, as cheap as one
        search, that its sniffer scores 0."""
        return "\n" + "\n".join(self.lines)

    @cached_property
    def shape(self) -> str:
        """:attr:`text` with every ASCII digit written ``0``: a format's digits of any
        value are text to look for there (a date is ``0000-00-00``)."""
        return self.text.translate(_DIGITS_AS_ZERO)

    @property
    def directives(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("#")]


def _first_lines(raw: bytes, n: int, size: int = 8 << 10) -> list[bytes]:
    """``raw.splitlines()[:n]``, splitting no more of ``raw`` than it takes: a prefix
    that splits into more than ``n`` lines has the same first ``n`` (only its last may
    differ: cut short, or ended by a CR whose LF is past the cut)."""
    while True:
        lines = raw[:size].splitlines()
        if len(lines) > n or size >= len(raw):
            return lines[:n]
        # at least twice as much, or what the lines so far say n + 2 lines take
        size = max(2 * size, size * (n + 2) // max(len(lines) - 1, 1))


@dataclass(frozen=True)
class Reader:
    name: str
    description: str
    sniff: Callable[[Head], float]
    read: Callable[..., Iterator[pa.RecordBatch]]
    binary: bool = False
    options: tuple[str, ...] = ()


_REGISTRY: dict[str, Reader] | None = None


def registry() -> dict[str, Reader]:
    global _REGISTRY
    if _REGISTRY is None:
        reg: dict[str, Reader] = {}
        for mod in MODULES:
            try:
                m = importlib.import_module(f"{__name__}.{mod}")
            except ModuleNotFoundError as e:
                if e.name == f"{__name__}.{mod}":
                    continue  # module not written yet
                raise
            for name, r in getattr(m, "READERS", {}).items():
                reg[name] = r
        _REGISTRY = reg
    return _REGISTRY


def get(name: str) -> Reader:
    reg = registry()
    if name not in reg:
        from ..errors import ConfigError

        raise ConfigError(f"unknown format {name!r}; known formats: {', '.join(sorted(reg))}")
    return reg[name]


def rank(head: Head) -> list[tuple[str, float]]:
    """Every format's confidence for ``head``, best first (only those >= MIN_CONFIDENCE)."""
    scores: list[tuple[str, float]] = []
    for name, r in registry().items():
        try:
            c = float(r.sniff(head))
        except Exception:  # a sniffer must never break detection
            c = 0.0
        if c >= MIN_CONFIDENCE:
            scores.append((name, round(min(c, 1.0), 3)))
    scores.sort(key=lambda t: -t[1])
    return scores


