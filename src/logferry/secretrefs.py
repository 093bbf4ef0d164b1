"""Secrets are never written in ``logferry.toml``: an option that would hold one is given by
reference -- ``X_env = "VAR"`` (an environment variable) or ``X_secret = "NAME"`` (a key of
the secrets file).  The rules of which keys look like secrets, shared by the export jobs'
options (:mod:`logferry.config`) and the alert channels (:mod:`logferry.alerts.rules`)."""

from __future__ import annotations

import re
from typing import Any

#: option names that hold a secret: they may only be given by reference
_SECRET_WORDS = re.compile(
    r"secret|passw|passphrase|token|credential|api_?key|access_?key|private_?key|signature|"
    r"(^|_)key$|(^|_)auth($|_)", re.I)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_WORDS.search(key))


def is_reference(key: str) -> bool:
    """``X_env`` (any X) or ``X_secret`` with a secret-like X: the value names the secret."""
    return (key.endswith("_env") and len(key) > 4) or (
        key.endswith("_secret") and is_secret_key(key[: -len("_secret")]))


class _SecretKeys:
    """``key in _SECRET_KEYS``: the key would hold a secret written as a value."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and is_secret_key(key) and not is_reference(key)


_SECRET_KEYS = _SecretKeys()


def check_option(key: str, value: Any) -> None:
    """A destination option of the config file: secrets are never written in it.

    ``X_env = "VAR"`` reads X from environment variable VAR, ``X_secret = "NAME"`` from the
    secrets file, where X is a secret-like option (``password_secret``, ``token_env``). Any
    other key that looks like a secret (``secret``, ``aws_secret_access_key``,
    ``client_secret``, ``api_key``, ``token`` ...) is refused, naming the key only."""
    if key.endswith("_env") and len(key) > 4:
        if not (isinstance(value, str) and _ENV_NAME.fullmatch(value)):
            raise ValueError(f"{key!r}: must name an environment variable (letters, digits, _)")
        return
    if key.endswith("_secret") and is_secret_key(key[: -len("_secret")]):
        if not (isinstance(value, str) and _SECRET_NAME.fullmatch(value)):
            raise ValueError(f"{key!r}: must name a key of the secrets file")
        return
    if is_secret_key(key):
        raise ValueError(
            f"{key!r}: secrets may not be written in the config; use {key}_env = \"VAR\" "
            f"or {key}_secret = \"NAME\" (secrets file)"
        )
