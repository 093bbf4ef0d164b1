"""``file:///dir`` (or a plain directory path): objects written under a temporary name in
the same directory, fsynced, then renamed into place (atomic, replaces)."""

from __future__ import annotations

import errno
import os
from typing import Any

from ..errors import PermanentError, TransientError
from ._fsspec import FsspecDestination

#: local errors worth a retry (a full disk may be cleaned up); any other is permanent
_TRANSIENT = {errno.ENOSPC, errno.EAGAIN, errno.EINTR, errno.EIO, errno.EDQUOT, errno.EBUSY}


class FileDestination(FsspecDestination):
    scheme = "file"
    atomic_rename = True
    needs_mkdir = True

    def _connect(self, url: str, options: dict[str, Any]):
        from fsspec.implementations.local import LocalFileSystem

        path = url.removeprefix("file://")
        path = os.path.abspath(os.path.expanduser(path))
        return LocalFileSystem(), path  # the directory is created by the first put

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        d = os.path.dirname(path)
        try:
            os.makedirs(d, exist_ok=True)
            tmp = os.path.join(d, f".{os.path.basename(path)}.part")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            cls = TransientError if e.errno in _TRANSIENT else PermanentError
            raise cls(f"file: put {name}: {type(e).__name__}: {e.strerror or e}") from e
