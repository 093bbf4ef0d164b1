"""What logferry prints for a person: every value as plain text, one table printer.

Log values, file names and URLs are hostile: a user agent may hold rich markup
(``[link=...]``), terminal escape sequences (``ESC]0;title``, ``ESC[2J``), bidi
overrides or invisible characters.  :func:`safe` turns such text into something that
prints as itself: every character that is not visible text becomes a visible escape
(``\\x1b``, ``\\n``, ``\\u202e``, ``\\u200b``, ...) -- the Unicode categories Cc
(controls: C0, DEL, C1), Cf (format: bidi controls, zero-width space and joiners, soft
hyphen, BOM, tags), Zl and Zp (line and paragraph separators), Cs (lone surrogates), Co
(private use: no meaning, any glyph) and Cn (unassigned, noncharacters): those that
:meth:`str.isprintable` rejects, except the spaces (Zs), which show as blank space.
Nothing printed here is ever parsed as rich markup.

:func:`table` is the one table printer of every command.  On a terminal it draws a rich
table that fits the window; otherwise (piped, redirected, CI logs) it prints plain aligned
text at full width, one line per row, never wrapped.  :func:`tsv` prints tab-separated
lines (the documented output of ``detect``, ``export runs``, ...) with every cell made safe.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import click

#: the characters that may be unsafe (all but printable ASCII); :func:`unsafe` decides
_CANDIDATE = re.compile("[^\x20-\x7e]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def unsafe(c: str) -> bool:
    """Whether character ``c`` never reaches the terminal as itself (see the module's
    docstring: not printable, and not a space)."""
    return not c.isprintable() and unicodedata.category(c) != "Zs"


def _escape(c: str) -> str:
    named = _NAMED.get(c)
    if named:
        return named
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    return _escape(c) if unsafe(c) else c


def safe(text: Any) -> str:
    """``text`` (any value; ``None`` is empty) as a string that prints as itself: control
    characters and other invisible or reordering characters become visible escapes."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():
        return s
    return _CANDIDATE.sub(_visible, s)


def is_terminal(err: bool = False) -> bool:
    stream = sys.stderr if err else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def echo(text: Any = "", *, err: bool = False) -> None:
    """Print one line of text (made safe)."""
    click.echo(safe(text), err=err)


def error(msg: Any) -> None:
    """``logferry: error: MSG`` on stderr (the message made safe)."""
    click.echo(f"logferry: error: {safe(msg)}", err=True)


def console(err: bool = False, file: TextIO | None = None):
    """A rich console that never interprets markup or highlights (for progress bars)."""
    from rich.console import Console

    return Console(stderr=err, file=file, highlight=False, markup=False, emoji=False)


def tsv(rows: Iterable[Sequence[Any]], *, err: bool = False) -> None:
    """Tab-separated lines, every cell made safe (a tab or newline in a value shows as
    ``\\t``/``\\n``, so a line is always one row)."""
    for r in rows:
        click.echo("\t".join(safe(v) for v in r), err=err)


def _width(s: str) -> int:
    from rich.cells import cell_len

    return s.__len__() if s.isascii() else cell_len(s)


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    caption: str | None = None,
    right: Iterable[int] = (),
    max_width: int | None = None,
    err: bool = False,
    terminal: bool | None = None,
    out: TextIO | None = None,
) -> None:
    """Print a table; every cell, header, title and caption made safe.

    ``right``: indexes of right-aligned (numeric) columns.  ``max_width`` caps a column on
    a terminal (longer cells fold onto more lines there); piped output is never wrapped.
    ``terminal`` forces the style (default: whether the output stream is a terminal);
    ``out`` writes to that text stream instead of stdout/stderr.
    """
    cols = [safe(c) for c in columns]
    cells = [[safe(v) for v in r] for r in rows]
    right = set(right)
    if terminal is None:
        terminal = is_terminal(err) if out is None else False
    if terminal:
        _rich_table(cols, cells, title, caption, right, max_width, err, out)
        return
    widths = [_width(c) for c in cols]
    for r in cells:
        for i, v in enumerate(r):
            w = _width(v)
            if w > widths[i]:
                widths[i] = w
    lines = []
    if title:
        lines.append(safe(title))

    def fmt(r: Sequence[str]) -> str:
        parts = []
        for i, v in enumerate(r):
            pad = " " * (widths[i] - _width(v))
            parts.append(pad + v if i in right else v + pad)
        return "  ".join(parts).rstrip()

    lines.append(fmt(cols))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in cells)
    if caption:
        lines.append(safe(caption))
    text = "\n".join(lines)
    if out is not None:
        out.write(text + "\n")
    else:
        click.echo(text, err=err)


def _rich_table(cols, cells, title, caption, right, max_width, err, out) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(safe(title)) if title else None, title_justify="left",
              caption=Text(safe(caption)) if caption else None, show_edge=False, pad_edge=False)
    for i, c in enumerate(cols):
        t.add_column(Text(c), justify="right" if i in right else "left", overflow="fold",
                     max_width=max_width)
    for r in cells:
        t.add_row(*(Text(v) for v in r))
    console(err, out).print(t)


def heading(text: Any, *, err: bool = False, terminal: bool | None = None, out: TextIO | None = None) -> None:
    """A section heading: a rule on a terminal, ``== text ==`` otherwise."""
    if terminal is None:
        terminal = is_terminal(err) if out is None else False
    if terminal:
        from rich.text import Text

        console(err, out).rule(Text(safe(text), style="bold"))
    elif out is not None:
        out.write(f"== {safe(text)} ==\n")
    else:
        click.echo(f"== {safe(text)} ==", err=err)


def note(text: Any, *, style: str = "dim", err: bool = False, terminal: bool | None = None) -> None:
    """One line of text, styled on a terminal (``style`` is a rich style, never markup
    taken from the text)."""
    if terminal is None:
        terminal = is_terminal(err)
    if terminal:
        from rich.text import Text

        console(err).print(Text(safe(text), style=style))
    else:
        click.echo(safe(text), err=err)


#: what a terminal filter looks at: :data:`_CANDIDATE` less the tab, newline and CR that
#: give text its lines and columns
_TTY_CANDIDATE = re.compile("[^\t\n\r\x20-\x7e]")


def _json_char(c: str) -> str:
    o = ord(c)
    if o < 0x10000:
        return f"\\u{o:04x}"
    o -= 0x10000  # a surrogate pair, as JSON writes a character beyond the BMP
    return f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}"


def _json_escape(m: re.Match[str]) -> str:
    c = m.group()
    return _json_char(c) if unsafe(c) else c


def json_safe(text: str) -> str:
    """JSON text (from ``json.dumps``) with the characters :func:`safe` would escape
    written as ``\\uXXXX`` escapes: the same JSON value, safe on a terminal."""
    # (json.dumps escapes every control character inside a string: a raw tab, newline or CR
    # is the layout of ``indent``, left as it is)
    return text if text.isascii() and "\x7f" not in text else _TTY_CANDIDATE.sub(_json_escape, text)


class TerminalWriter:
    """A binary stream in front of a terminal (``convert`` writing to the screen): the
    text that passes has the characters :func:`safe` escapes made visible -- as JSON
    ``\\uXXXX`` escapes with ``json=True`` (the same JSON values), else as :func:`safe`
    writes them; invalid UTF-8 bytes show as ``\\xNN``."""

    def __init__(self, raw: Any, *, json: bool = False):
        self.raw = raw
        self.json = json
        self._tail = b""

    def _escape(self, m: re.Match[str]) -> str:
        c = m.group()
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte
            return f"\\u{o - 0xDC00:04x}" if self.json else f"\\x{o - 0xDC00:02x}"
        if not unsafe(c):
            return c
        return _json_char(c) if self.json else _escape(c)

    def _emit(self, data: bytes) -> None:
        text = data.decode("utf-8", "surrogateescape")
        self.raw.write(_TTY_CANDIDATE.sub(self._escape, text).encode("utf-8"))

    def write(self, b: Any) -> int:
        data = self._tail + bytes(b)
        cut = len(data)
        for k in range(len(data) - 1, max(len(data) - 4, -1), -1):  # an unfinished character
            c = data[k]
            if c < 0x80:
                break
            if c >= 0xC0:
                if len(data) - k < (2 if c < 0xE0 else 3 if c < 0xF0 else 4):
                    cut = k
                break
        self._tail = data[cut:]
        self._emit(data[:cut])
        return len(b)

    def flush(self) -> None:
        if self._tail:
            self._emit(self._tail)
            self._tail = b""
        self.raw.flush()

    def close(self) -> None:
        self.flush()
