"""``ftp://user@host[:port]/dir`` and ``ftps://...`` (explicit TLS: ``AUTH TLS`` then
``PROT P`` so the data channel is encrypted too), with the standard library's ftplib.

fsspec's FTP filesystem hides the reply codes this module needs to tell a temporary
failure (4xx: retry) from a permanent one (5xx), so ftplib is used directly.  Uploads go
to ``.NAME.part`` and are renamed (RNFR/RNTO) into place.
"""

from __future__ import annotations

import ftplib
import io
import os
import posixpath
import socket
import ssl
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, PermanentError, TransientError
from . import ObjectInfo


class FTPDestination:
    def __init__(self, url: str, options: dict[str, Any]):
        u = urlsplit(url)
        if not u.hostname:
            raise ConfigError(f"destination {url!r}: no host")
        self.scheme = u.scheme.lower()
        self.host, self.port = u.hostname, u.port or 21
        self.user = unquote(u.username) if u.username else "anonymous"
        self.password = options.get("password") or ""
        self.root = (u.path or "/").rstrip("/") or "/"
        self.timeout = float(options.get("timeout", 20))
        self.cafile = options.get("ca_file")
        self.verify = bool(options.get("verify_tls", True))
        self._ftp: ftplib.FTP | None = None

    # -- connection -----------------------------------------------------------------
    def _connect(self) -> ftplib.FTP:
        if self._ftp is not None:
            try:
                self._ftp.voidcmd("NOOP")
                return self._ftp
            except Exception:
                self._drop()
        try:
            if self.scheme == "ftps":
                ctx = ssl.create_default_context(cafile=self.cafile)
                if not self.verify:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                ftp: ftplib.FTP = ftplib.FTP_TLS(context=ctx, timeout=self.timeout)
            else:
                ftp = ftplib.FTP(timeout=self.timeout)
            ftp.connect(self.host, self.port)
            ftp.login(self.user, self.password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
        except Exception as e:
            raise self._err(e, f"connect {self.host}:{self.port}") from e
        self._ftp = ftp
        return ftp

    def _drop(self) -> None:
        if self._ftp is not None:
            try:
                self._ftp.close()
            except Exception:
                pass
        self._ftp = None

    def _err(self, e: BaseException, what: str):
        msg = f"{self.scheme}: {what}: {type(e).__name__}: {str(e)[:200]}"
        if isinstance(e, ftplib.error_temp):
            return TransientError(msg)
        if isinstance(e, ftplib.error_perm):
            return PermanentError(msg)
        if isinstance(e, ssl.SSLCertVerificationError):
            return PermanentError(msg)
        if isinstance(e, (OSError, EOFError, socket.timeout, ftplib.error_reply, ftplib.error_proto)):
            self._drop()
            return TransientError(msg)
        return PermanentError(msg)

    def _path(self, name: str) -> str:
        from . import object_path

        return object_path(self.root, name)

    def _makedirs(self, ftp: ftplib.FTP, d: str) -> None:
        parts = [p for p in d.split("/") if p]
        cur = "/" if d.startswith("/") else ""
        for p in parts:
            cur = posixpath.join(cur, p)
            try:
                ftp.mkd(cur)
            except ftplib.error_perm:
                pass  # exists

    # -- API ------------------------------------------------------------------------
    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        d, base = posixpath.split(path)
        tmp = posixpath.join(d, f".{base}.part")
        try:
            ftp = self._connect()
            self._makedirs(ftp, d)
            ftp.storbinary(f"STOR {tmp}", io.BytesIO(data))
            try:
                ftp.rename(tmp, path)
            except ftplib.error_perm:
                ftp.delete(path)  # servers that refuse to replace
                ftp.rename(tmp, path)
        except (TransientError, PermanentError):
            raise
        except Exception as e:
            raise self._err(e, f"put {name}") from e

    def get(self, name: str) -> bytes:
        buf = io.BytesIO()
        path = self._path(name)
        try:
            self._connect().retrbinary(f"RETR {path}", buf.write)
        except Exception as e:
            raise self._err(e, f"get {name}") from e
        return buf.getvalue()

    def list(self) -> list[ObjectInfo]:
        try:
            ftp = self._connect()
            out: list[ObjectInfo] = []
            self._walk(ftp, self.root, "", out)
            return sorted(out, key=lambda o: o.name)
        except (TransientError, PermanentError):
            raise
        except Exception as e:
            raise self._err(e, "list") from e

    def _walk(self, ftp: ftplib.FTP, d: str, rel: str, out: list[ObjectInfo]) -> None:
        try:
            entries = list(ftp.mlsd(d, facts=["type", "size", "modify"]))
        except ftplib.error_perm:
            return
        for name, facts in entries:
            if name in (".", ".."):
                continue
            r = f"{rel}/{name}" if rel else name
            if facts.get("type") == "dir":
                self._walk(ftp, posixpath.join(d, name), r, out)
            elif facts.get("type") == "file":
                if name.startswith(".") and name.endswith(".part"):
                    continue
                m = facts.get("modify", "")
                try:
                    ts = datetime.strptime(m[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
                except ValueError:
                    ts = 0.0
                out.append(ObjectInfo(r, int(facts.get("size", 0)), ts))

    def exists(self, name: str) -> bool:
        path = self._path(name)
        d, base = posixpath.split(path)
        try:
            ftp = self._connect()
            return any(n == base and f.get("type") == "file"
                       for n, f in ftp.mlsd(d or "/", facts=["type"]))
        except ftplib.error_perm:
            return False  # no such directory
        except (TransientError, PermanentError):
            raise
        except Exception as e:
            raise self._err(e, f"exists {name}") from e

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            self._connect().delete(path)
        except ftplib.error_perm as e:
            if str(e).startswith("550"):
                return
            raise self._err(e, f"delete {name}") from e
        except Exception as e:
            raise self._err(e, f"delete {name}") from e

    def close(self) -> None:
        if self._ftp is not None:
            try:
                self._ftp.quit()
            except Exception:
                pass
        self._drop()


_ = os
