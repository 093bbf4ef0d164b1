"""``logferry alerts``: list, test, history, silence, unsilence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from ..errors import LogferryError
from ..term import echo

config_option = click.option("--config", "-c", help="Config file (default logferry.toml).")
state_option = click.option("--state", help="State directory (default: the config's state_dir).")
FMT = "%Y-%m-%d %H:%M:%S"


def _fail(msg: str):
    from ..term import error

    error(msg)
    raise click.exceptions.Exit(2)


def _load(config: str | None):
    from ..config import load

    try:
        return load(config)
    except LogferryError as e:
        _fail(str(e))


def _store(loaded, state: str | None, create: bool = False):
    from .store import Store

    try:
        return Store.at(state or loaded.state_dir, create=create)
    except OSError as e:
        _fail(f"cannot open the alert state: {e.strerror or e}")


def _when(us: int | None) -> str:
    return "-" if us is None else datetime.fromtimestamp(us / 1e6, UTC).strftime(FMT)


def alerts_group() -> None:
    """Alert rules on the usage database: list them, test them on the data, see incidents, silence."""


@click.command("list")
@config_option
@state_option
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def list_cmd(config, state, as_json) -> None:
    """Rules with their condition and state (ok, pending, firing, silenced), and the silences."""
    from ..term import table
    from .service import rule_rows

    loaded = _load(config)
    store = _store(loaded, state)
    rows = rule_rows(loaded, store)
    if as_json:
        click.echo(json.dumps({"rules": rows, "silences": store.silences(_now_us())}, indent=1))
        return
    table(["RULE", "KIND", "SEVERITY", "CONDITION", "WINDOW", "FOR", "STATE", "LAST EVALUATION"],
          [[r["name"], r["kind"], r["severity"], r["condition"], r["window"], r["for"], r["state"],
            r["evaluated"] or "-"] for r in rows])
    for s in store.silences(_now_us()):
        echo(f"silence {s['id']}: {s['rule'] or 'site ' + s['site']} until {_when(s['until'])} UTC")


def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1e6)


@click.command("test")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Every rule.")
@config_option
@click.option("--db", help="Usage database (default: [alerts] db of the config, else its [lake]).")
@click.option("--lake", help="The usage lake instead of a database: a folder or URL.")
@click.option("--catalog", help="With --lake: its catalog, a SQLite file, SQLAlchemy URI or glue:// (AWS Glue).")
@click.option("--at", "at", help="Evaluate at this time (ISO 8601, UTC) instead of now.")
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def test_cmd(name, all_, config, db, lake, catalog, at, as_json) -> None:
    """Evaluate rules on the data, sending nothing: the incidents they find over the data's
    whole time range (replayed minute by minute), then what each would send now.

    \b
    Arguments:
      [NAME]  The rule (or --all).
    """
    from .service import test_rules

    if bool(name) == all_:
        _fail("give a rule NAME or --all")
    if lake and db:
        _fail("give --db (a DuckDB file) or --lake (the usage lake), not both")
    if catalog and not lake:
        _fail("--catalog applies with --lake")
    loaded = _load(config)
    rules = loaded.cfg.alerts.rules
    if name and name not in rules:
        _fail(f"no alert rule named {name!r}; rules: {', '.join(sorted(rules)) or '(none)'}")
    try:
        at_t = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else datetime.now(UTC)
    except ValueError:
        _fail(f"--at {at!r}: not an ISO 8601 time")
    at_t = at_t if at_t.tzinfo else at_t.replace(tzinfo=UTC)
    try:
        out = test_rules(loaded, {name: rules[name]} if name else dict(rules), db, at_t, lake=lake, catalog=catalog)
    except LogferryError as e:
        _fail(str(e))
    if as_json:
        click.echo(json.dumps(out, indent=1, default=str))
        return
    _print_test(out)


def _print_test(out: dict) -> None:
    for name, r in out["rules"].items():
        echo(f"{name} ({r['kind']}, {r['severity']}): {r['condition']}")
        if not r["incidents"]:
            echo(f"  no incident in the data ({out['range'][0]} - {out['range'][1]} UTC)")
        for i in r["incidents"]:
            end = i["resolved"] or "still firing"
            echo(f"  incident: {i['first']} - {i['last']} UTC  peak {i['peak']} {i['unit']}  "
                 f"(condition from {i['started']}, resolved {end})")
            echo(f"    would send: {i['title']}")
        now = r["now"]
        if now["holds"]:
            echo(f"  now ({now['at']} UTC): the condition holds; would send:")
            for line in now["text"].splitlines():
                echo(f"    {line}")
        else:
            v = "no data" if now["value"] is None else f"{now['value']:g} {r['unit']}"
            echo(f"  now ({now['at']} UTC): ok ({v})")


@click.command("history")
@config_option
@state_option
@click.option("--rule", help="Only this rule.")
@click.option("--notices", is_flag=True, help="The notices sent (or not) instead of the incidents.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True,
              help="The newest incidents (or notices) shown.")
@click.option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
def history_cmd(config, state, rule, notices, limit, as_json) -> None:
    """Incidents (start, end, peak) or, with --notices, every notice and how its send went."""
    from ..term import table

    loaded = _load(config)
    store = _store(loaded, state)
    rows = store.notices(rule, limit) if notices else store.incidents(rule, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    elif notices:
        table(["AT", "RULE", "EVENT", "CHANNEL", "STATUS", "ATTEMPTS", "ERROR"],
              [[_when(n["at"]), n["rule"], n["event"], n["channel"], n["status"], n["attempts"],
                n["error"] or ""] for n in rows])
    else:
        table(["ID", "RULE", "SEVERITY", "STARTED", "RESOLVED", "FIRST SEEN", "LAST SEEN", "PEAK"],
              [[i["id"], i["rule"], i["severity"], _when(i["started"]), _when(i["resolved"]),
                _when(i["first"]), _when(i["last"]), f"{i['peak']:g} {i['unit']}" if i["peak"] is not None else "-"]
               for i in rows])


@click.command("silence")
@click.argument("name", required=False)
@click.option("--until", "until", required=True, help="A time (ISO 8601, UTC) or a duration from now (2h).")
@click.option("--site", help="Silence every rule of this site instead of one rule.")
@click.option("--comment", default="", help="Why.")
@config_option
@state_option
def silence_cmd(name, until, site, comment, config, state) -> None:
    """Silence a rule (or a site) until a time: its incidents are still recorded, its notices not sent.

    \b
    Arguments:
      [NAME]  The rule (or --site).
    """
    from .service import add_silence

    if bool(name) == bool(site):
        _fail("give a rule NAME or --site SITE")
    loaded = _load(config)
    try:
        s = add_silence(loaded, lambda: _store(loaded, state, create=True), name, site, until, comment)
    except LogferryError as e:
        _fail(str(e))
    echo(f"silence {s['id']}: {name or 'site ' + site} until {_when(s['until'])} UTC")


@click.command("unsilence")
@click.argument("silence_id", type=int)
@config_option
@state_option
def unsilence_cmd(silence_id, config, state) -> None:
    """End a silence now.

    \b
    Arguments:
      SILENCE_ID  As `alerts list` shows it.
    """
    loaded = _load(config)
    if not _store(loaded, state).unsilence(silence_id):
        _fail(f"no silence {silence_id}")
    click.echo(f"silence {silence_id}: removed")


def register(app: click.Group) -> None:
    grp = app.group("alerts", no_args_is_help=True)(alerts_group)
    for cmd in (list_cmd, test_cmd, history_cmd, silence_cmd, unsilence_cmd):
        grp.add_command(cmd)
