"""The editor's destination types as data: each type's fields, and how they become the
job's ``dest`` URL and ``dest_options`` (and back).  Credentials are never values: a
secret field is the *name* of an environment variable (``<opt>_env``) or of a
secrets-file key (``<opt>_secret``)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..destinations.options import OPTIONS, check_value, for_scheme
from ..errors import ConfigError
from ..values import whole


@dataclass(frozen=True)
class F:
    name: str
    label: str
    kind: str = "text"  # text | number (a port) | seconds | secret (a name, not a value)
    where: str = "url"  # url part: host, port, user, path, bucket, prefix; or "option"
    required: bool = False
    help: str = ""


#: type -> (label, URL scheme, the fields of the URL); the options that follow them come
#: from the destinations' option table, as ``logferry ship``'s do
_URL_FIELDS: dict[str, tuple[str, str, tuple[F, ...]]] = {
    "folder": ("Folder", "file", (
        F("path", "Directory", where="path", required=True, help="absolute path on this machine"),
    )),
    "s3": ("Amazon S3", "s3", (
        F("bucket", "Bucket", where="bucket", required=True,
          help="3-63 characters: a-z, 0-9, '.', '-'"),
        F("prefix", "Prefix", where="prefix", help="folder inside the bucket, e.g. logs/cdn"),
    )),
    "gcs": ("Google Cloud Storage", "gs", (
        F("bucket", "Bucket", where="bucket", required=True,
          help="3-63 characters: a-z, 0-9, '.', '-', '_'"),
        F("prefix", "Prefix", where="prefix"),
    )),
    "sftp": ("SFTP", "sftp", (
        F("host", "Server", where="host", required=True),
        F("port", "Port", kind="number", where="port"),
        F("user", "User name", where="user"),
        F("directory", "Directory", where="path"),
    )),
    "ftps": ("FTPS (explicit TLS)", "ftps", (
        F("host", "Server", where="host", required=True),
        F("port", "Port", kind="number", where="port"),
        F("user", "User name", where="user"),
        F("directory", "Directory", where="path"),
    )),
    "datadog": ("Datadog", "datadog", (
        F("site", "Site", where="host", help="datadoghq.com, datadoghq.eu, ..."),
    )),
}


def _option_field(o) -> F:
    return F(o.name, o.label, kind=o.kind, where="option", required=o.required, help=o.help)


#: type -> (label, URL scheme, fields)
TYPES: dict[str, tuple[str, str, tuple[F, ...]]] = {
    t: (label, scheme, url_fields + tuple(_option_field(o) for o in for_scheme(scheme)))
    for t, (label, scheme, url_fields) in _URL_FIELDS.items()
}

_OPTS = {o.name: o for o in OPTIONS}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

#: bucket naming rules (type -> pattern, the rule as the editor states it): S3's general
#: purpose buckets and GCS's (a GCS name with dots may be up to 222 characters)
BUCKET_RULES = {
    "s3": (re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"),
           "an S3 bucket name: 3-63 characters, lower-case letters, digits, '.' and '-', "
           "starting and ending with a letter or digit"),
    "gcs": (re.compile(r"^(?=.{3,63}$|(?=.*\.).{3,222}$)[a-z0-9][a-z0-9._\-]*[a-z0-9]$"),
            "a GCS bucket name: 3-63 characters (up to 222 with dots), lower-case letters, digits, "
            "'.', '-' and '_', starting and ending with a letter or digit"),
}


def describe() -> list[dict[str, Any]]:
    return [{"type": t, "label": lbl, "scheme": s, "fields": [asdict(f) for f in fs]}
            for t, (lbl, s, fs) in TYPES.items()]


def compose(d: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``{"type": "s3", "bucket": ..., "access_key_id": {"env": "VAR"}}`` ->
    (dest URL, dest_options, per-field errors keyed ``destination.<field>``)."""
    t = d.get("type") or ""
    errs: dict[str, str] = {}
    if t not in TYPES:
        return "", {}, {"destination.type": f"choose one of: {', '.join(TYPES)}"}
    _, scheme, fields = TYPES[t]
    parts: dict[str, str] = {}
    opts: dict[str, Any] = {}
    for f in fields:
        v = d.get(f.name)
        key = f"destination.{f.name}"
        if f.kind == "secret":
            ref = v if isinstance(v, dict) else {}
            env, sec = str(ref.get("env") or "").strip(), str(ref.get("secret") or "").strip()
            if env and sec:
                errs[key] = "give an environment variable or a secrets-file key, not both"
            for kind, name in (("env", env), ("secret", sec)):
                if name:
                    if not _NAME.match(name):
                        errs[key] = f"{'an environment variable' if kind == 'env' else 'a secrets-file key'} " \
                                    "name (letters, digits, '_'), never the secret itself"
                    else:
                        opts[f"{f.name}_{kind}"] = name
            if f.required and not (env or sec) and t != "datadog":
                errs[key] = "required"
            continue
        v = "" if v is None else str(v).strip()
        if f.required and not v:
            errs[key] = "required"
            continue
        if not v:
            continue
        if f.kind == "number":
            try:
                v = str(whole(v, key, 1, 65535))
            except ConfigError:
                errs[key] = "a port number (1-65535)"
                continue
        if f.kind == "seconds":
            try:
                v = check_value(_OPTS[f.name], v)
            except ValueError as e:
                errs[key] = str(e)
                continue
        if isinstance(v, str) and any(ord(c) < 32 for c in v):
            errs[key] = "no control characters"
            continue
        if f.where == "option":
            opts[f.name] = v
        else:
            parts[f.where] = v
    if errs:
        return "", opts, errs
    if t == "folder":
        url = "file://" + parts["path"]
    elif t in ("s3", "gcs"):
        b = parts["bucket"]
        rule, msg = BUCKET_RULES[t]
        if not rule.match(b):
            return "", opts, {"destination.bucket": msg}
        prefix = parts.get("prefix", "").strip("/")
        if ".." in prefix.split("/"):
            return "", opts, {"destination.prefix": "no '..' in the prefix"}
        url = f"{scheme}://{b}/" + (prefix + "/" if prefix else "")
    elif t == "datadog":
        url = f"datadog://{parts.get('host', '')}"
    else:
        host = parts["host"]
        if not re.match(r"^[A-Za-z0-9.\-:\[\]]+$", host):
            return "", opts, {"destination.host": "a host name or address"}
        user = quote(parts["user"], safe="") + "@" if parts.get("user") else ""
        port = f":{parts['port']}" if parts.get("port") else ""
        path = "/" + parts.get("path", "").lstrip("/")
        url = f"{scheme}://{user}{host}{port}{path}"
    return url, opts, {}


def decompose(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """A job's dest + dest_options as the editor's fields (secrets as their names)."""
    from ..destinations import scheme_of

    s = scheme_of(url)
    t = {"file": "folder", "s3": "s3", "gs": "gcs", "gcs": "gcs", "sftp": "sftp", "ftp": "ftps",
         "ftps": "ftps", "datadog": "datadog"}.get(s, "folder")
    out: dict[str, Any] = {"type": t}
    u = urlsplit(url) if "://" in url else None
    for f in TYPES[t][2]:
        if f.kind == "secret":
            ref = {}
            if f"{f.name}_env" in options:
                ref["env"] = str(options[f"{f.name}_env"])
            if f"{f.name}_secret" in options:
                ref["secret"] = str(options[f"{f.name}_secret"])
            out[f.name] = ref
        elif f.where == "option":
            if f.name in options:
                out[f.name] = str(options[f.name])
        elif t == "folder":
            out["path"] = url.removeprefix("file://")
        elif f.where == "bucket":
            out["bucket"] = u.netloc if u else ""
        elif f.where == "prefix":
            out["prefix"] = (u.path if u else "").strip("/")
        elif f.where == "host":
            out[f.name] = (u.hostname or "") if u else ""
        elif f.where == "port":
            out[f.name] = str(u.port) if u and u.port else ""
        elif f.where == "user":
            out[f.name] = unquote(u.username) if u and u.username else ""
        elif f.where == "path":
            out[f.name] = u.path if u else ""
    known = {f.name for f in TYPES[t][2]} | {f"{f.name}_{k}" for f in TYPES[t][2] for k in ("env", "secret")}
    extra = {k: v for k, v in options.items() if k not in known}
    if extra:
        out["extra_options"] = extra  # kept as they are on save
    return out


def check_secret_free(options: dict[str, Any]) -> None:
    from ..config import _SECRET_KEYS

    for k in options:
        if k in _SECRET_KEYS:
            raise ConfigError(f"{k}: secrets may not be given as values")
