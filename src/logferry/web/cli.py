"""Commands: ``serve`` (the console and the scheduler in one process) and ``token``."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from ..errors import LogferryError
from ..values import WholeParam


def _fail(msg: str, code: int = 2):
    from ..term import error

    error(msg)
    raise click.exceptions.Exit(code)


def _state_dir(config: str | None, state: str | None) -> Path:
    from .configfile import load

    if state:
        return Path(state)
    try:
        return Path(load(Path(config or "logferry.toml")).state_dir)
    except LogferryError as e:
        _fail(str(e))


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


config_option = click.option("--config", "-c", help="Config file (default logferry.toml; created on the first save).")
state_option = click.option("--state", "state", help="State directory (default: the config's state_dir).")


def _check_tls(cert: str, key: str) -> None:
    """The certificate and its key load, before anything is written or shown (a missing file
    was "No such file or directory" after the console's address and first token)."""
    import ssl

    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not os.path.isfile(path):
            _fail(f"{flag} {path}: no such file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        _fail(f"--tls-cert {cert} and --tls-key {key}: not a certificate and its private key (PEM): "
              f"{e.strerror or e}")


@config_option
@state_option
@click.option("--db", help="Usage database for the dashboard (and for --follow).")
@click.option("--lake", help="The usage lake for the dashboard instead of --db: a folder or URL (default: "
                             "the config's [lake] path, if any).")
@click.option("--catalog", help="With --lake: its catalog, a SQLite file, SQLAlchemy URI or glue:// "
              "(AWS Glue; default: as for `report --lake`).")
@click.option("--host", default="127.0.0.1", help="Address to listen on; other than loopback needs TLS or --insecure-http.")
@click.option("--port", type=WholeParam(1, 65535), default=8080, help="Port to listen on.")
@click.option("--tls-cert", help="TLS certificate (PEM).")
@click.option("--tls-key", help="TLS private key (PEM).")
@click.option("--insecure-http", is_flag=True, help="Allow plain HTTP on a non-loopback address.")
@click.option("--follow", "follow", is_flag=True, help="Follow the PATHS into --db (live dashboard).")
@click.option("--no-scheduler", is_flag=True, help="Only the console: do not run jobs on their schedule.")
@click.argument("paths", nargs=-1)
def serve_cmd(config, state, db, lake, catalog, host, port, tls_cert, tls_key, insecure_http, follow, no_scheduler,
              paths) -> None:
    """Run the web console and the scheduler of `logferry run` in one process.

    Prints a login URL on its first start (the token is kept, mode 0600, in the state
    directory).  SIGTERM finishes the object in flight and exits.

    \b
    Arguments:
      [PATHS]...  Log files to follow with --follow.
    """
    import uvicorn

    from .app import create_app
    from .console import Console
    from .tokens import TokenStore

    if bool(tls_cert) != bool(tls_key):
        _fail("give both --tls-cert and --tls-key")
    if not is_loopback(host) and not tls_cert and not insecure_http:
        _fail(f"--host {host} is not a loopback address: give --tls-cert and --tls-key, "
              f"or say --insecure-http to serve plain HTTP on the network")
    if tls_cert:
        _check_tls(tls_cert, tls_key)
    _check_store_args(db, lake, catalog, follow, paths)
    cfg = Path(config or "logferry.toml")
    sock = _listen(host, port)  # (a port in use is an error before anything is written)
    try:
        console = Console(cfg, state, db)
        console.usage = _usage(console, db, lake, catalog)
        if follow:
            _check_db(db)
        sd = console.state_dir
        sd.mkdir(parents=True, exist_ok=True)
        tokens = TokenStore(sd)
        raw, new = tokens.first_token()
    except (LogferryError, OSError) as e:
        _fail(str(e))
    from ..term import echo

    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    base = f"{scheme}://{shown}:{port}"
    if new:
        click.echo(f"logferry console: {base}/login?token={raw}")
        echo(f"  (shown once; the token is kept in {tokens.first_path}, mode 0600)")
    else:
        echo(f"logferry console: {base}/  (log in with the URL printed on the first start, "
                   f"the token in {tokens.first_path}, or one from `logferry token create`)")
    sys.stdout.flush()

    from ..logs import setup

    setup(logging.INFO, "%(name)s: %(message)s")
    app = create_app(console, tokens, secure_cookie=bool(tls_cert))
    threads: list[threading.Thread] = []
    if not no_scheduler:
        threads.append(threading.Thread(target=console.scheduler, name="scheduler", daemon=True))
    follow_stop = threading.Event()
    if follow:
        try:
            from ..usage.follow import Follower
        except ImportError:
            _fail("--follow needs logferry.usage.follow, which this version does not have")
        try:
            console.follower = Follower(str(db), list(paths))
        except LogferryError as e:
            _fail(str(e))
        threads.append(threading.Thread(target=console.follow, args=(follow_stop,), name="follower", daemon=True))

    if not no_scheduler:  # alert rules on --db (or [alerts] db), after each commit of --follow
        from ..alerts.runner import start as start_alerts

        console.alerts = start_alerts(console.loaded(), console.loaded, follow_stop, db=db, state_dir=sd,
                                      console_url=base,
                                      usage=console.usage if getattr(console.usage, "kind", None) == "lake" else None)
        if console.alerts is not None and follow:
            console.follower.on_commit = console.alerts.poke

    def on_term(*_):
        console.stop.set()
        follow_stop.set()

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            on_term()
            super().handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, on_term)
    server = Server(uvicorn.Config(app, host=host.strip("[]"), port=port, ssl_certfile=tls_cert,
                                   ssl_keyfile=tls_key, access_log=False, log_level="warning",
                                   timeout_graceful_shutdown=5))
    for t in threads:
        t.start()
    try:
        server.run(sockets=[sock])
    finally:
        on_term()
        for t in threads:
            t.join(timeout=600)
        console.wait_runs(timeout=600)
    click.echo("logferry console: stopped cleanly")


def _listen(host: str, port: int):
    """The console's listening socket, bound before anything is written or printed: a port
    in use or an address this machine does not have is one line of error."""
    import socket

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        _fail(f"--host {host}: {e.strerror or e}")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        sock.close()
        _fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
    return sock


def _check_store_args(db: str | None, lake: str | None, catalog: str | None, follow: bool, paths) -> None:
    """What the dashboard reads, and --follow's database, checked before anything starts."""
    if paths and not follow:
        _fail("PATHS are the files to --follow; add --follow")
    if lake and db:
        _fail("give --db (a DuckDB file) or --lake (the usage lake), not both")
    if catalog and not lake:
        _fail("--catalog applies with --lake")
    if follow and lake:
        _fail("--follow writes the DuckDB database: not with --lake (ingest into the lake with "
              "`logferry ingest --lake`; the console reads each commit)")
    if follow and not (paths and db):
        _fail("--follow needs --db and at least one PATH")


def _usage(console, db: str | None, lake: str | None, catalog: str | None):
    """What the dashboard reads: --db, --lake, or the config's [lake] path (the lake is
    opened now: not there, unreachable or newer is an error before the console starts)."""
    loaded = console.loaded()
    if db or not (lake or loaded.cfg.lake.path):
        return console.usage
    if not lake:
        from ..alerts.runner import config_lake

        return config_lake(loaded)
    from ..usage.source import UsageSource

    return UsageSource.lake(lake, catalog)


def _check_db(db: str) -> None:
    """``--follow``'s database opens (and is a DuckDB database), or serve does not start."""
    from ..usage.db import connect_shared

    try:
        connect_shared(db).close()
    except Exception as e:  # noqa: BLE001 - DuckDB's errors: the file, not a bug
        _fail(f"--db {db}: {(str(e).splitlines() or [type(e).__name__])[0]}")


def token_group() -> None:
    """Console access tokens: create, list, revoke (only their hashes are stored)."""


@config_option
@state_option
@click.option("--site", "sites", multiple=True, help="Scope the token to this site (repeat for more).")
@click.option("--read-only", is_flag=True, help="The token can look but change nothing.")
@click.option("--label", default="", help="A note to recognise the token by.")
def token_create(config, state, sites, read_only, label) -> None:
    """Create a token and print it (once: only its hash is kept)."""
    from .tokens import TokenStore

    try:
        t, raw = TokenStore(_state_dir(config, state)).create(sites, read_only, label)
    except (LogferryError, OSError) as e:
        _fail(str(e))
    click.echo(raw)
    scope = f"sites {', '.join(t.sites)}" if t.sites else "all sites"
    click.echo(f"token {t.id}: {scope}{', read-only' if t.read_only else ''} "
               f"(log in at /login?token=...)", err=True)


@config_option
@state_option
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def token_list(config, state, as_json) -> None:
    """Tokens: id, sites, read-only, created (never the tokens themselves)."""
    import json
    from datetime import UTC, datetime

    from .tokens import TokenStore

    try:
        toks = TokenStore(_state_dir(config, state)).list()
    except (LogferryError, OSError) as e:
        _fail(str(e))
    if as_json:
        click.echo(json.dumps([t.public() for t in toks], indent=1))
        return
    from ..term import table

    table(["ID", "SITES", "READ_ONLY", "CREATED", "LABEL"],
          [[t.id, ",".join(t.sites) or "*", "yes" if t.read_only else "no",
            datetime.fromtimestamp(t.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), t.label] for t in toks])


@config_option
@state_option
@click.argument("token_id")
def token_revoke(config, state, token_id) -> None:
    """Revoke a token: it no longer opens the console.

    \b
    Arguments:
      TOKEN_ID  The id shown by `token list`.
    """
    from .tokens import TokenStore

    try:
        t = TokenStore(_state_dir(config, state)).revoke(token_id)
    except (LogferryError, OSError) as e:
        _fail(str(e))
    click.echo(f"token {t.id}: revoked")


def register(app: click.Group) -> None:
    app.command("serve")(serve_cmd)
    tok = app.group("token", no_args_is_help=True)(token_group)
    tok.command("create")(token_create)
    tok.command("list")(token_list)
    tok.command("revoke")(token_revoke)
