"""What a console token may put in a job, and where a probe may go.

An *admin* token (neither site-scoped nor read-only) may name anything, as the config
file's owner does.  Any other token edits within what the admin gave it:

* credentials (``*_env``/``*_secret`` references, ``key_file``, the privacy hash key):
  only those the job, as saved, already references -- none for a new job;
* the destination: the saved job's own place (scheme, server, port, options; only the
  path may change) -- or a folder under ``console.dest_roots``.  A new place never gets
  the job's credentials, nor the server's ambient ones (AWS/GCS defaults, SSH keys,
  ``DD_API_KEY``), so a scoped token cannot create a cloud or server destination nor move
  a job to another bucket;
* sources: under ``console.source_roots`` (directories or URL prefixes), or as saved.

A probe (Test connection, the S3 bucket list) follows the same rules for the job it
names: for such a token it never sends a credential to a place the job's saved
destination does not name.  An admin token probes a new destination before it is saved
(it names the secrets and the places, and could save and run the job as well).
"""

from __future__ import annotations

import glob
import os
import posixpath
from typing import Any
from urllib.parse import urlsplit

from ..config import Loaded, is_reference
from .console import Forbidden
from .tokens import Token

#: options that make a server use a credential although they are not references
_CREDENTIAL_OPTIONS = ("key_file",)


def is_admin(tok: Token) -> bool:
    return not tok.scoped and not tok.read_only


def credentials(opts: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The credentials destination options use, as (option, name of the secret)."""
    return {(k, str(v)) for k, v in (opts or {}).items()
            if isinstance(k, str) and (is_reference(k) or k in _CREDENTIAL_OPTIONS)}


def privacy_key(job: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The secret a job's privacy hash uses (``privacy.key_env`` / ``key_secret``)."""
    priv = (job or {}).get("privacy")
    priv = priv if isinstance(priv, dict) else {}
    return {(k, str(v)) for k, v in priv.items() if k in ("key_env", "key_secret") and v}


def place(url: str, opts: dict[str, Any] | None) -> tuple:
    """Where a destination connects: scheme, server (a bucket), port, query and every option
    that is not a credential; a folder is its path.  Only a path may change within a place."""
    from ..destinations import scheme_of

    s = scheme_of(url)
    u = urlsplit(url) if "://" in url else urlsplit("")
    if s == "file":  # a folder's place is the folder
        server = os.path.normpath(url.removeprefix("file://"))
    else:
        server = u.netloc
    rest = tuple(sorted((k, str(v)) for k, v in (opts or {}).items()
                        if not (is_reference(k) or k in _CREDENTIAL_OPTIONS)))
    return (s, server, u.query, rest)


NEW_CREDENTIALS = ("this token may use only the credentials its job already references; "
                   "an admin token names new ones")


def _deny(msg: str):
    raise Forbidden(msg)


# -- paths ------------------------------------------------------------------------------------
def roots(loaded: Loaded, kind: str) -> list[str]:
    """``console.source_roots`` / ``dest_roots``: URL prefixes as written, directories as
    real absolute paths (relative ones against the config file's directory)."""
    base = os.path.dirname(os.path.abspath(loaded.path))
    out = []
    for r in getattr(loaded.cfg.console, kind):
        if "://" in r:
            out.append(r if r.endswith("/") else r + "/")
        else:
            out.append(os.path.realpath(os.path.join(base, os.path.expanduser(r))))
    return out


def protected(loaded: Loaded) -> list[str]:
    """Files no scoped token may read or write: the state directory (tokens, checkpoints),
    the config file and the secrets file."""
    out = [os.path.realpath(loaded.state_dir), os.path.realpath(loaded.path)]
    if loaded.secrets_path is not None:
        out.append(os.path.realpath(loaded.secrets_path))
    return out


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def local_path_allowed(path: str, allowed: list[str], forbidden: list[str]) -> bool:
    """An absolute local path (a glob may follow its fixed part) without ``..`` whose real
    fixed part lies under one of ``allowed`` and holds none of ``forbidden``."""
    if not path.startswith("/") or ".." in path.split("/") or "\\" in path:
        return False
    fixed = []
    for seg in path.split("/"):
        if glob.has_magic(seg):
            break
        fixed.append(seg)
    real = os.path.realpath("/".join(fixed) or "/")
    if not any(_inside(real, r) for r in allowed if "://" not in r):
        return False
    return not any(_inside(p, real) or _inside(real, p) for p in forbidden)


def url_allowed(url: str, allowed: list[str]) -> bool:
    """A URL under one of the URL roots: same scheme and server, a path below the root's,
    no ``..``, no escapes, no query or fragment."""
    u = urlsplit(url)
    if u.query or u.fragment or "%" in u.path or ".." in u.path.split("/"):
        return False
    for r in allowed:
        if "://" not in r:
            continue
        ru = urlsplit(r)
        if (u.scheme, u.netloc) == (ru.scheme, ru.netloc) and \
                posixpath.join(u.path, "").startswith(ru.path) and u.path != ru.path.rstrip("/"):
            return True
    return False


def source_allowed(src: str, loaded: Loaded) -> bool:
    allowed = roots(loaded, "source_roots")
    if "://" in src and not src.startswith("file://"):
        return url_allowed(src, allowed)
    path = src.removeprefix("file://")
    return local_path_allowed(path, allowed, protected(loaded))


def folder_allowed(url: str, loaded: Loaded) -> bool:
    path = url.removeprefix("file://")
    return local_path_allowed(path, roots(loaded, "dest_roots"), protected(loaded))


# -- rules ------------------------------------------------------------------------------------
def check_destination(tok: Token, loaded: Loaded, url: str, opts: dict[str, Any],
                      saved: dict[str, Any] | None) -> None:
    """Forbidden unless this token may send to ``url`` with ``opts`` for the job ``saved``
    (its table as saved; None for a new job) -- a save or a probe."""
    from ..destinations import scheme_of

    if is_admin(tok):
        return
    saved = saved or {}
    creds = credentials(opts)
    same = bool(saved) and place(url, opts) == place(saved.get("dest", ""), saved.get("dest_options"))
    if creds and not same:
        _deny("a job's credentials go only to the place its saved destination names; "
              "an admin token sets another")
    if not creds <= credentials(saved.get("dest_options")):
        _deny(NEW_CREDENTIALS)
    if same:
        return
    if scheme_of(url) == "file" and folder_allowed(url, loaded):
        return
    _deny("this token may send a job's objects only to its saved destination or to a folder "
          "under the console's dest_roots; an admin token sets other destinations")


def check_job(tok: Token, loaded: Loaded, job: dict[str, Any], saved: dict[str, Any] | None) -> None:
    """Forbidden unless this token may save ``job`` over ``saved`` (None: a new job)."""
    if is_admin(tok):
        return
    saved = saved or {}
    check_destination(tok, loaded, str(job.get("dest") or ""), dict(job.get("dest_options") or {}), saved)
    if not privacy_key(job) <= privacy_key(saved):
        _deny(NEW_CREDENTIALS)
    kept = set(saved.get("source") or ())
    for src in job.get("source") or ():
        if src not in kept and not source_allowed(str(src), loaded):
            _deny(f"source {src!r}: this token may read only under the console's source_roots "
                  f"(or the job's saved sources)")
