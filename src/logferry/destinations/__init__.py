"""Destinations by URL scheme: ``file``, ``s3``, ``gs``, ``sftp``, ``ftp``/``ftps``, ``datadog``.

A destination has ``put(name, data)`` (idempotent: the same name overwrites, so a
re-delivered object never appears twice), ``list()``, ``delete(name)``, ``get(name)``,
``exists(name)`` (object stores and file systems; the engine asks it before it puts a new
name, so a name that already holds an object is never overwritten) and ``close()``.
Every name is checked by :func:`object_path`: it stays under the destination's root.  Backend errors are translated to :class:`~logferry.errors.TransientError`
(retry) or :class:`~logferry.errors.PermanentError` with the original as ``__cause__``.
Secrets are never part of an error message.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError, MissingExtraError

#: scheme -> (module, class, pip package needed, extra)
REGISTRY: dict[str, tuple[str, str, str | None, str | None]] = {
    "file": ("logferry.destinations.file", "FileDestination", None, None),
    "s3": ("logferry.destinations.s3", "S3Destination", "s3fs", "s3"),
    "gs": ("logferry.destinations.gs", "GCSDestination", "gcsfs", "gcs"),
    "gcs": ("logferry.destinations.gs", "GCSDestination", "gcsfs", "gcs"),
    "sftp": ("logferry.destinations.sftp", "SFTPDestination", "sshfs", "sftp"),
    "ftp": ("logferry.destinations.ftp", "FTPDestination", None, None),
    "ftps": ("logferry.destinations.ftp", "FTPDestination", None, None),
    "datadog": ("logferry.destinations.datadog", "DatadogDestination", None, None),
}


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    mtime: float  # seconds since the epoch


def unsafe_name(name: str) -> str | None:
    """Why ``name`` may not be an object name under a destination's root, or None."""
    if not isinstance(name, str) or not name:
        return "empty"
    if name.startswith("/"):
        return "an absolute path is not allowed"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return "control characters are not allowed"
    if "\\" in name:
        return "backslashes are not allowed"
    if any(seg in ("", ".", "..") for seg in name.split("/")):
        return "'.', '..' and empty path segments are not allowed"
    return None


def object_path(root: str, name: str) -> str:
    """``root/name``, refusing a name that could leave ``root`` (PermanentError)."""
    import posixpath

    from ..errors import PermanentError

    why = unsafe_name(name)
    if why:
        raise PermanentError(f"object name {name!r}: {why}")
    path = f"{root.rstrip('/')}/{name}" if root else name
    base = root.rstrip("/")
    if base and not posixpath.normpath(path).startswith(base + "/"):
        raise PermanentError(f"object name {name!r} leaves the destination")
    return path


def scheme_of(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def check_url(url: str) -> str:
    from ..sources import redact_url

    if not url.strip():  # (an unset variable: not the current folder)
        raise ConfigError("destination is empty; give a URL (file://, s3://BUCKET, ...) or a folder")
    s = scheme_of(url)
    if s not in REGISTRY:
        raise ConfigError(
            f"destination {redact_url(url)!r}: unknown scheme {s!r}; choose one of: "
            + ", ".join(sorted(REGISTRY))
        )
    parts = urlsplit(url)
    if parts.password:
        raise ConfigError(
            f"destination {s}://...: a password in the URL is not allowed; "
            f"give it with password_env or password_secret (`logferry ship`: --password-env VAR)"
        )
    if s in ("s3", "gs", "gcs") and not parts.netloc:  # (a name's first segment would be the bucket)
        raise ConfigError(f"destination {s}://...: no bucket; give {s}://BUCKET or {s}://BUCKET/PREFIX")
    q = _query_secret(url)
    if q:
        raise ConfigError(f"destination {s}://...: {q!r} in the URL's query: a secret is given "
                          f"with its own option ({q}_env or {q}_secret)")
    try:
        port = parts.port  # (ASCII digits only: urllib refuses '③' and '٣')
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ConfigError(f"destination {s}://...: the port must be a number from 1 to 65535")
    return s


def _query_secret(url: str) -> str | None:
    """The first key of the URL's query that names a secret (``?api_key=``), or None."""
    from ..secretrefs import is_secret_key

    return next((k for k in parse_qs(urlsplit(url).query) if is_secret_key(k)), None)


def check_options(options: Mapping[str, Any]) -> None:
    """No option is a URL with a password or a secret in its query (``endpoint_url``): it
    would be stored, shown and printed in errors; a secret is given by reference."""
    from ..sources import redact_url

    for k, v in options.items():
        if isinstance(v, str) and (redact_url(v) != v or ("://" in v and _query_secret(v))):
            raise ConfigError(f"{k} {redact_url(v).split('?')[0]}: a password or a secret in the query of a "
                              f"URL is not allowed; give credentials with their own options (_env or _secret)")


def open_destination(url: str, options: Mapping[str, Any] | None = None):
    s = check_url(url)
    mod, cls, package, extra = REGISTRY[s]
    if package:
        try:
            importlib.import_module(package)
        except ImportError as e:
            raise MissingExtraError(f"the {s}:// destination", package, extra or s) from e
    return getattr(importlib.import_module(mod), cls)(url, dict(options or {}))


def classify_http(status: int) -> bool:
    """True when an HTTP status is worth retrying."""
    return status in (408, 425, 429) or status >= 500
