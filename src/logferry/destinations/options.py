"""The destinations' options as one table: ``logferry ship``'s options (``--key-file``,
``--password-env VAR``, ...) and the console editor's destination fields are both made
from it, so the CLI and the console take the same options.

An option is a key of a job's ``dest_options``.  A secret is never a value: it is given
as ``<name>_env`` (an environment variable's name; ``--<name>-env VAR`` on the command
line) or ``<name>_secret`` (a key of the config's secrets file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Opt:
    name: str
    label: str
    schemes: tuple[str, ...]
    kind: str = "text"  # text | secret (given by reference) | seconds (a positive number)
    help: str = ""
    metavar: str = "TEXT"
    required: bool = False  # the editor marks it (the destination may still find it elsewhere)


OPTIONS: tuple[Opt, ...] = (
    Opt("region", "Region", ("s3",), help="AWS region, e.g. eu-west-1"),
    Opt("project", "Project", ("gs", "gcs"), help="Google Cloud project"),
    Opt("endpoint_url", "Endpoint URL", ("s3", "gs", "gcs"), metavar="URL",
        help="for S3-compatible stores or an emulator"),
    Opt("access_key_id", "Access key ID", ("s3",), kind="secret"),
    Opt("secret_access_key", "Secret access key", ("s3",), kind="secret"),
    Opt("token", "Credentials (token or key file)", ("gs", "gcs"), kind="secret"),
    Opt("password", "Password", ("sftp", "ftp", "ftps"), kind="secret"),
    Opt("key_file", "Private key file", ("sftp",), metavar="PATH", help="SSH private key"),
    Opt("known_hosts", "known_hosts file", ("sftp",), metavar="PATH",
        help="default ~/.ssh/known_hosts; the host key is always checked"),
    Opt("ca_file", "CA file", ("ftps",), metavar="PATH", help="CA certificates of the server"),
    Opt("api_key", "API key", ("datadog",), kind="secret", required=True),
    Opt("ddtags", "Tags", ("datadog",), help="e.g. env:prod,team:web"),
    Opt("timeout", "Timeout (seconds)", ("s3", "sftp", "ftp", "ftps", "datadog"), kind="seconds",
        metavar="SECS", help="connect and read timeout of one attempt"),
)


def for_scheme(scheme: str) -> tuple[Opt, ...]:
    return tuple(o for o in OPTIONS if scheme in o.schemes)


def cli_flag(o: Opt) -> str:
    """``key_file`` -> ``--key-file``; a secret -> ``--password-env``."""
    return "--" + o.name.replace("_", "-") + ("-env" if o.kind == "secret" else "")


def cli_param(o: Opt) -> str:
    return o.name + ("_env" if o.kind == "secret" else "")


def cli_help(o: Opt) -> str:
    where = ", ".join(f"{s}://" for s in o.schemes if s != "gcs")
    if o.kind == "secret":
        return f"{where}: environment variable holding the {o.label.lower()} (its name, never the value)."
    return f"{where}: {o.label}" + (f"; {o.help}" if o.help else "") + "."


def check_value(o: Opt, value: Any) -> Any:
    """A value of the option as given (text); a number for ``seconds``; raises ValueError."""
    if o.kind == "seconds":
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError("a number of seconds") from None
        if not 0 < v <= 3600:
            raise ValueError("a number of seconds (more than 0, at most 3600)")
        return v
    return value


def from_cli(url: str, given: dict[str, Any]) -> dict[str, Any]:
    """``ship``'s destination options (``cli_param`` -> value, None when not given) as
    ``dest_options``; an option of another kind of destination is an error."""
    from . import scheme_of

    s = scheme_of(url)
    out: dict[str, Any] = {}
    for o in OPTIONS:
        v = given.get(cli_param(o))
        if v is None:
            continue
        if s not in o.schemes:
            raise ConfigError(f"{cli_flag(o)} applies to "
                              f"{', '.join(f'{x}://' for x in o.schemes if x != 'gcs')} destinations, "
                              f"not {s}://")
        try:
            out[cli_param(o)] = check_value(o, v)
        except ValueError as e:
            raise ConfigError(f"{cli_flag(o)}: {e}") from None
    from . import check_options

    check_options(out)
    return out
