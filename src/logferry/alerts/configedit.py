"""Editing alert rules in ``logferry.toml`` from the console, the way jobs are edited
(:mod:`logferry.web.configfile`): validated by the CLI's model, written atomically with
tomlkit (comments and the rest kept), a stale form refused by the rule's version."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError

from ..config import Config
from ..errors import ConfigError
from ..web.configfile import (
    _WRITE,
    Conflict,
    Invalid,
    _item,
    _update,
    clean,
    field_errors,
    read_text,
    version_of,
    write_atomic,
)
from .rules import _NAME


def raw_rules(path: Path) -> dict[str, dict]:
    text = read_text(path)
    return dict(((tomllib.loads(text).get("alerts") or {}).get("rules") or {}) if text else {})


def rule_version(path: Path, name: str) -> str:
    return version_of(raw_rules(path).get(name))


def validate_rule(path: Path, name: str, rule: dict[str, Any] | None) -> dict[str, Any]:
    """The whole file with this rule replaced (or removed: None), validated; raises Invalid."""
    if not _NAME.fullmatch(name or ""):
        raise Invalid({"name": "use letters, digits, '-', '_' or '.' (up to 64)"})
    text = read_text(path)
    data = tomllib.loads(text) if text else {}
    alerts = dict(data.get("alerts") or {})
    rules = dict(alerts.get("rules") or {})
    if rule is None:
        rules.pop(name, None)
    else:
        rules[name] = rule
    data["alerts"] = {**alerts, "rules": rules}
    try:
        Config.model_validate(data)
    except ValidationError as e:
        errs = field_errors(e, ("alerts", "rules", name))
        # (the kind's tag in the location: "error_share.window" -> "window")
        raise Invalid({k.split(".", 1)[1] if k.split(".")[0] == (rule or {}).get("kind") and "." in k else k: v
                       for k, v in errs.items()}) from None
    except ConfigError as e:
        raise Invalid({"rule": str(e)}) from None
    return data


def save_rule(path: Path, name: str, rule: dict[str, Any], version: str | None, *, new: bool) -> str:
    """Validate and write one rule; returns its new version (see ``configfile.save_job``)."""
    rule = clean(rule)
    with _WRITE:
        current = raw_rules(path).get(name)
        if new and current is not None:
            raise Conflict(f"a rule named {name!r} exists already")
        if not new and current is None:
            raise Conflict(f"rule {name!r} no longer exists in {path.name}")
        if not new and version != version_of(current):
            raise Conflict(f"rule {name!r} was changed since this form was loaded; reload it")
        validate_rule(path, name, rule)
        text = read_text(path)
        doc = tomlkit.parse(text) if text else tomlkit.document()
        if "alerts" not in doc:
            doc["alerts"] = tomlkit.table()
        if "rules" not in doc["alerts"]:
            doc["alerts"]["rules"] = tomlkit.table(is_super_table=True)
        rules = doc["alerts"]["rules"]
        if name in rules:
            _update(rules[name], rule)
        else:
            tbl = tomlkit.table()
            for k, v in rule.items():
                tbl[k] = _item(v)
            rules[name] = tbl
        out = tomlkit.dumps(doc)
        Config.model_validate(tomllib.loads(out))  # what is written is what was validated
        write_atomic(path, out)
        return version_of(tomllib.loads(out)["alerts"]["rules"][name])


def delete_rule(path: Path, name: str, version: str | None) -> None:
    with _WRITE:
        current = raw_rules(path).get(name)
        if current is None:
            raise Conflict(f"rule {name!r} no longer exists")
        if version != version_of(current):
            raise Conflict(f"rule {name!r} was changed since this page was loaded; reload it")
        doc = tomlkit.parse(read_text(path))
        del doc["alerts"]["rules"][name]
        write_atomic(path, tomlkit.dumps(doc))
