"""Shared base for destinations that are an fsspec filesystem with a root prefix."""

from __future__ import annotations

import errno
import socket
from datetime import UTC
from typing import Any

from ..errors import DeliveryError, PermanentError, TransientError
from . import ObjectInfo

TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EPIPE,
                    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNABORTED, errno.EAGAIN}


def translate(e: BaseException, what: str) -> DeliveryError:
    """Map a backend exception to Transient/Permanent (the caller raises ... from e)."""
    if isinstance(e, DeliveryError):
        return e
    name = type(e).__name__
    msg = f"{what}: {name}: {_safe(e)}"
    if isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return PermanentError(msg)
    if isinstance(e, (TimeoutError, socket.timeout, ConnectionError, EOFError)):
        return TransientError(msg)
    if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
        return TransientError(msg)
    status = _status_of(e)
    if status is not None:
        if status in (408, 425, 429) or status >= 500:
            return TransientError(msg)
        return PermanentError(msg)
    lowered = msg.lower()
    if any(w in lowered for w in ("timeout", "timed out", "connection", "temporar", "unavailable",
                                  "reset", "refused", "throttl", "slow down", "broken pipe",
                                  "disconnect", "closed")):
        return TransientError(msg)
    if any(w in lowered for w in ("denied", "forbidden", "credential", "signature", "no such bucket",
                                  "nosuchbucket", "invalid", "authenticat", "not found",
                                  "host key")):
        return PermanentError(msg)
    return TransientError(msg) if isinstance(e, OSError) else PermanentError(msg)


def _status_of(e: BaseException) -> int | None:
    for attr in ("status", "code", "status_code"):
        v = getattr(e, attr, None)
        if isinstance(v, int) and 100 <= v < 600:
            return v
    resp = getattr(e, "response", None)
    if isinstance(resp, dict):
        v = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(v, int):
            return v
    c = e.__cause__ or e.__context__
    if c is not None and c is not e:
        return _status_of(c) if not isinstance(c, DeliveryError) else None
    return None


def _safe(e: BaseException) -> str:
    s = str(e)
    return s[:300]


class FsspecDestination:
    scheme = ""
    atomic_rename = False  # upload under a temporary name, then rename

    def __init__(self, url: str, options: dict[str, Any]):
        self.url = url
        self.options = options
        self.fs, self.root = self._connect(url, options)
        self.root = self.root.rstrip("/")

    def _connect(self, url: str, options: dict[str, Any]):  # pragma: no cover - abstract
        raise NotImplementedError

    def _path(self, name: str) -> str:
        from . import object_path

        return object_path(self.root, name)

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)  # outside the try: a refused name is not a backend error
        try:
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            if parent and self.needs_mkdir and parent not in self._made:
                self.fs.makedirs(parent, exist_ok=True)
                self._made.add(parent)
            if self.atomic_rename:
                d, _, base = path.rpartition("/")
                tmp = f"{d}/.{base}.part" if d else f".{base}.part"
                self.fs.pipe_file(tmp, data)
                self._rename(tmp, path)
            else:
                self.fs.pipe_file(path, data)
        except Exception as e:
            raise self._failed(translate(e, f"{self.scheme}: put {name}")) from e

    needs_mkdir = False

    @property
    def _made(self) -> set[str]:
        """Directories known to exist (created once per destination, not once per put)."""
        d = self.__dict__.get("_made_dirs")
        if d is None:
            d = self.__dict__["_made_dirs"] = set()
        return d

    def _failed(self, err: DeliveryError) -> DeliveryError:
        """Hook for a failed operation (a connection-based destination drops a connection
        that may be broken, so the retry connects afresh); returns ``err``."""
        return err

    def _rename(self, tmp: str, path: str) -> None:
        self.fs.mv(tmp, path)

    def get(self, name: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(name))
        except Exception as e:
            raise self._failed(translate(e, f"{self.scheme}: get {name}")) from e

    def list(self) -> list[ObjectInfo]:
        try:
            self.fs.invalidate_cache()
            if not self.fs.exists(self.root or "/"):
                return []
            found = self.fs.find(self.root or "/", detail=True)
        except FileNotFoundError:
            return []
        except Exception as e:
            raise self._failed(translate(e, f"{self.scheme}: list")) from e
        out = []
        prefix = (self.root + "/") if self.root else ""
        for p, info in found.items():
            if info.get("type") == "directory":
                continue
            rel = p[len(prefix):] if p.startswith(prefix) else p.lstrip("/")
            base = rel.rsplit("/", 1)[-1]
            if base.startswith(".") and base.endswith(".part"):
                continue
            out.append(ObjectInfo(rel, int(info.get("size") or 0), _mtime(info)))
        return sorted(out, key=lambda o: o.name)

    def exists(self, name: str) -> bool:
        """Whether an object of this name is there (asked afresh, never from a cache)."""
        path = self._path(name)
        try:
            self.fs.invalidate_cache(path)
            return bool(self.fs.isfile(path))
        except FileNotFoundError:
            return False
        except Exception as e:
            raise self._failed(translate(e, f"{self.scheme}: exists {name}")) from e

    def delete(self, name: str) -> None:
        try:
            self.fs.rm_file(self._path(name))
        except FileNotFoundError:
            pass
        except Exception as e:
            raise self._failed(translate(e, f"{self.scheme}: delete {name}")) from e

    def close(self) -> None:
        pass


def _mtime(info: dict) -> float:
    for k in ("mtime", "LastModified", "updated", "modify", "time", "created"):
        v = info.get(k)
        if v is None:
            continue
        if hasattr(v, "timestamp"):
            return float(v.timestamp())
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            from datetime import datetime

            try:
                d = datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                try:
                    d = datetime.strptime(v, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
                except ValueError:
                    continue
            if d.tzinfo is None:
                d = d.replace(tzinfo=UTC)
            return d.timestamp()
    return 0.0
