"""``sftp://user@host[:port]/dir`` through sshfs (asyncssh).

Authentication with a private key (``key_file``) or a password (``password_env`` /
``password_secret``); the host key is checked against ``known_hosts`` (default
``~/.ssh/known_hosts``; there is no way to switch the check off).  Objects are uploaded
under ``.NAME.part`` in the same directory and renamed with ``posix-rename@openssh.com``
(atomic, replaces an existing object).

The connection is opened at the first operation, and dropped after a transient failure
(reset, refused, timeout) so that the engine's retry connects again: a server that was
down for a while is used again as soon as it is back.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, DeliveryError, TransientError
from ._fsspec import FsspecDestination, translate


class SFTPDestination(FsspecDestination):
    scheme = "sftp"
    atomic_rename = True
    needs_mkdir = True

    def __init__(self, url: str, options: dict[str, Any]):
        self.url = url
        self.options = options
        u = urlsplit(url)
        if not u.hostname:
            raise ConfigError(f"destination {url!r}: no host")
        known = options.get("known_hosts") or os.path.expanduser("~/.ssh/known_hosts")
        if not os.path.exists(known):
            raise ConfigError(
                f"sftp destination: known_hosts file {known} does not exist; the server's host "
                f"key must be listed there (ssh-keyscan -p PORT HOST >> {known})"
            )
        kw: dict[str, Any] = {
            "port": u.port or 22,
            "username": unquote(u.username) if u.username else os.environ.get("USER"),
            "known_hosts": known,
            "connect_timeout": float(options.get("timeout", 20)),
            "skip_instance_cache": True,
        }
        if options.get("key_file"):
            kw["client_keys"] = [os.path.expanduser(options["key_file"])]
        if options.get("password"):
            kw["password"] = options["password"]
        if not kw.get("client_keys") and not kw.get("password"):
            kw["agent_path"] = None
        self._host = u.hostname
        self._kw = kw
        self._fs = None
        self.root = (u.path or "/").rstrip("/")

    @property
    def fs(self):
        if self._fs is None:
            from sshfs import SSHFileSystem

            try:
                self._fs = SSHFileSystem(self._host, **self._kw)
            except Exception as e:
                raise translate(e, f"sftp: connect {self._host}:{self._kw['port']}") from e
        return self._fs

    def _failed(self, err: DeliveryError) -> DeliveryError:
        if isinstance(err, TransientError):
            self.close()
        return err

    def close(self) -> None:
        fs, self._fs = self._fs, None
        if fs is None:
            return
        try:
            fs.client.close()
        except Exception:
            pass
