"""Editing alert rules in ``logferry.toml`` from the console, the way jobs are edited
(:mod:`logferry.web.configfile`): validated by the CLI's model, written atomically with
tomlkit (comments and the rest kept), a stale form refused by the rule's version."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import Config
from ..errors import ConfigError
from ..web.configfile import (
    Invalid,
    clean,
    delete_table,
    field_errors,
    raw_tables,
    read_text,
    save_table,
    version_of,
)
from .rules import _NAME

KEYS = ("alerts", "rules")


def raw_rules(path: Path) -> dict[str, dict]:
    return raw_tables(path, KEYS)


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
    return save_table(path, KEYS, name, clean(rule), version, new=new, what="rule", validate=validate_rule)


def delete_rule(path: Path, name: str, version: str | None) -> None:
    delete_table(path, KEYS, name, version, what="rule")
