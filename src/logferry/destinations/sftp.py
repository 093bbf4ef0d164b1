"""``sftp://user@host[:port]/dir`` through sshfs (asyncssh).

Authentication with a private key (``key_file``) or a password (``password_env`` /
``password_secret``); the host key is checked against ``known_hosts`` (default
``~/.ssh/known_hosts``; there is no way to switch the check off).  Objects are uploaded
under ``.NAME.part`` in the same directory and renamed with ``posix-rename@openssh.com``
(atomic, replaces an existing object).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from ._fsspec import FsspecDestination


class SFTPDestination(FsspecDestination):
    scheme = "sftp"
    atomic_rename = True
    needs_mkdir = True

    def _connect(self, url: str, options: dict[str, Any]):
        from sshfs import SSHFileSystem

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
        try:
            fs = SSHFileSystem(u.hostname, **kw)
        except Exception as e:
            from ._fsspec import translate

            raise translate(e, f"sftp: connect {u.hostname}:{kw['port']}") from e
        return fs, u.path or "/"

    def close(self) -> None:
        try:
            self.fs.client.close()
        except Exception:
            pass
