"""Opening output files: never through a symbolic link, never over a file unless asked.

Files that logferry names itself (``convert --output-dir``) are created with
``O_CREAT | O_EXCL | O_NOFOLLOW``: an existing file of that name is an error unless
``overwrite`` is given, and a symlink of that name is never followed (with ``overwrite``
the link itself is replaced, never the file it points to).  A file the user names
(``-o FILE``, ``--bad-rows FILE``) is not replaced either unless ``overwrite``; a device or
a pipe (``/dev/null``, a FIFO) is written to as it is.  Every failure is an
:class:`~logferry.errors.OutputError` naming the path.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from .errors import OutputError

_BASE = os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def create(path: str, *, overwrite: bool = False) -> BinaryIO:
    """A new file at ``path`` for writing (binary)."""
    flags = _BASE | os.O_CREAT
    if overwrite:
        if os.path.islink(path):
            _call(os.unlink, path)  # the link goes, its target is not touched
        flags |= os.O_TRUNC
    else:
        flags |= os.O_EXCL
    return os.fdopen(_call(os.open, path, flags, 0o666), "wb")


def reopen(path: str) -> BinaryIO:
    """A file this run created, opened again to append (still never through a symlink)."""
    return os.fdopen(_call(os.open, path, _BASE | os.O_APPEND), "ab")


def check_target(path: str, *, overwrite: bool = False) -> None:
    """OutputError unless :func:`open_for_write` can write ``path`` (checked before any
    output is opened, so that one bad path of several leaves no file behind)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            raise OutputError(f"{path}: cannot write: its folder does not exist") from None
        return
    except OSError as e:
        raise _error(path, e) from e
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: is a directory")
    if stat.S_ISREG(st.st_mode) and not overwrite:
        raise _error(path, FileExistsError(errno.EEXIST, "exists", path))


def open_for_write(path: str, *, overwrite: bool = False) -> BinaryIO:
    """A file the user named (``-o FILE``): created; an existing file is an error unless
    ``overwrite`` (then it is truncated); errors are OutputErrors."""
    check_target(path, overwrite=overwrite)
    try:
        return open(path, "wb" if overwrite or os.path.exists(path) else "xb")
    except OSError as e:
        raise _error(path, e) from e


def _call(fn, path: str, *args):
    try:
        return fn(path, *args)
    except OSError as e:
        raise _error(path, e) from e


def _error(path: str, e: OSError) -> OutputError:
    if isinstance(e, FileExistsError):
        return OutputError(f"{path}: exists; not overwritten (give --overwrite to replace it)")
    if e.errno == errno.ELOOP:
        return OutputError(f"{path}: is a symbolic link; not written through it")
    if isinstance(e, IsADirectoryError):
        return OutputError(f"{path}: is a directory")
    if isinstance(e, FileNotFoundError):
        return OutputError(f"{path}: cannot write: its folder does not exist")
    if isinstance(e, PermissionError):
        return OutputError(f"{path}: cannot write: permission denied")
    return OutputError(f"{path}: cannot write: {e.strerror or e}")
