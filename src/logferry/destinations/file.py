"""``file:///dir`` (or a plain directory path): objects written under a temporary name in
the same directory, fsynced, then renamed into place (atomic, replaces)."""

from __future__ import annotations

import os
from typing import Any

from ._fsspec import FsspecDestination


class FileDestination(FsspecDestination):
    scheme = "file"
    atomic_rename = True
    needs_mkdir = True

    def _connect(self, url: str, options: dict[str, Any]):
        from fsspec.implementations.local import LocalFileSystem

        path = url[len("file://"):] if url.startswith("file://") else url
        path = os.path.abspath(os.path.expanduser(path))
        os.makedirs(path, exist_ok=True)
        return LocalFileSystem(), path

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
            from ._fsspec import translate

            raise translate(e, f"file: put {name}") from e
