"""The console's Alerts page and its API (``/alerts``, ``/api/alerts...``).

A token scoped to sites sees (and edits) only the rules whose ``sites`` are within its
own, and their incidents; only an unscoped token edits a ``sql`` rule (its query can read
every site).  Everything calls :mod:`logferry.alerts.service`, as the CLI does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from ..errors import ConfigError
from .service import add_silence, rule_rows, send_test
from .store import Store


class RuleSave(BaseModel):
    rule: dict[str, Any]
    version: str | None = None


class SilenceBody(BaseModel):
    rule: str | None = None
    site: str | None = None
    until: str
    comment: str = ""


def _fmt(us: int | None) -> str | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


_OPENED: dict[str, Store] = {}


def store_of(console) -> Store:
    """The alert state of the console: its scheduler's store, or the state directory's."""
    runner = getattr(console, "alerts", None)
    if runner is not None:
        return runner.store
    key = str(console.state_dir)
    if key not in _OPENED:
        _OPENED[key] = Store.at(key)
    return _OPENED[key]


def incident_marks(console, sites: list[str] | None) -> list[dict[str, Any]]:
    """The incidents the dashboard marks on its time charts (of the rules within ``sites``):
    rule, severity, start (the first evidence) and end (None while firing), epoch seconds."""
    st = store_of(console)
    names = {x["name"] for x in rule_rows(console.loaded(), st, None if sites is None else tuple(sites))}
    marks = [{"rule": i["rule"], "severity": i["severity"], "start": (i["first"] or i["started"]) / 1e6,
              "end": None if i["resolved"] is None else i["resolved"] / 1e6}
             for i in st.incidents(limit=500) if i["rule"] in names]
    return sorted(marks, key=lambda m: m["start"])


def routes(console, session, writer, page) -> APIRouter:
    """The router, given the app's console and its access dependencies."""
    r = APIRouter()

    def store() -> Store:
        return store_of(console)

    def scope(s) -> tuple[str, ...] | None:
        return tuple(s.token.sites) if s.token.scoped else None

    def visible(s) -> list[dict[str, Any]]:
        return rule_rows(console.loaded(), store(), scope(s))

    def editable(s, name: str, rule: dict | None) -> None:
        sites = scope(s)
        if sites is None:
            return
        if rule is not None and (rule.get("kind") == "sql" or not rule.get("sites")
                                 or not set(rule["sites"]) <= set(sites)):
            raise HTTPException(403, "this token may only edit rules of its own sites (and no sql rule)")
        if rule is not None and rule.get("match", "site") != "site":
            raise HTTPException(403, 'this token\'s rules match the site column only (match = "site"): '
                                "a Host header is the client's choice")
        if name in console.loaded().cfg.alerts.rules and name not in {x["name"] for x in visible(s)}:
            raise HTTPException(403, "this rule is not within the token's sites")

    @r.get("/alerts", include_in_schema=False)
    def alerts_page(s=Depends(session)):
        return page("alerts.html", s, title="Alerts")

    @r.get("/api/alerts", tags=["alerts"])
    def api_alerts(s=Depends(session)) -> dict[str, Any]:
        """Rules (state ok / pending / firing / silenced, last evaluation), incidents, silences."""
        from .configedit import raw_rules

        rows = visible(s)
        names = {x["name"] for x in rows}
        raw = raw_rules(console.config_path)
        from ..web.configfile import version_of

        for x in rows:  # (the rule as the file has it: what the form edits)
            x["version"] = version_of(raw.get(x["name"]))
            x["rule"] = raw.get(x["name"], x["rule"])
        st = store()
        now = int(datetime.now(UTC).timestamp() * 1e6)
        incidents = [{**i, "started": _fmt(i["started"]), "resolved": _fmt(i["resolved"]),
                      "first": _fmt(i["first"]), "last": _fmt(i["last"])}
                     for i in st.incidents(limit=200) if i["rule"] in names]
        silences = [{**x, "until": _fmt(x["until"]), "created": _fmt(x["created"])} for x in st.silences(now)
                    if x["rule"] in names or (x["site"] and (scope(s) is None or x["site"] in scope(s)))]
        return {"rules": rows, "incidents": incidents, "silences": silences,
                "channels": sorted(console.loaded().cfg.alerts.channels), "read_only": s.token.read_only}

    @r.put("/api/alerts/rules/{name}", tags=["alerts"])
    def api_save_rule(name: str, body: RuleSave, s=Depends(writer)) -> dict[str, Any]:
        """Create (no version) or replace a rule; 422 with per-field errors when invalid."""
        from .configedit import save_rule

        editable(s, name, body.rule)
        if scope(s) is not None:
            body.rule.setdefault("match", "site")  # (a scoped token's rule: the site column only)
        v = save_rule(console.config_path, name, body.rule, body.version, new=body.version is None)
        return {"name": name, "version": v}

    @r.delete("/api/alerts/rules/{name}", tags=["alerts"])
    def api_delete_rule(name: str, version: str = "", s=Depends(writer)) -> dict[str, Any]:
        from .configedit import delete_rule

        editable(s, name, None)
        delete_rule(console.config_path, name, version)
        return {"deleted": name}

    @r.post("/api/alerts/rules/{name}/test", tags=["alerts"])
    def api_test_notice(name: str, s=Depends(writer)) -> dict[str, Any]:
        """Send a TEST notice of the rule on its channels now; each channel's result."""
        if name not in {x["name"] for x in visible(s)}:
            raise HTTPException(404, f"no alert rule named {name!r}")
        return {"results": send_test(console.loaded(), name)}

    @r.post("/api/alerts/silences", tags=["alerts"], status_code=201)
    def api_silence(body: SilenceBody, s=Depends(writer)) -> dict[str, Any]:
        sites = scope(s)
        if bool(body.rule) == bool(body.site):
            raise HTTPException(422, "give a rule or a site")
        if body.rule and body.rule not in {x["name"] for x in visible(s)}:
            raise HTTPException(404, f"no alert rule named {body.rule!r}")
        if body.site and sites is not None and body.site not in sites:
            raise HTTPException(403, "this token may only silence its own sites")
        try:
            return add_silence(console.loaded(), store(), body.rule, body.site, body.until, body.comment)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None

    @r.delete("/api/alerts/silences/{sid}", tags=["alerts"])
    def api_unsilence(sid: int, s=Depends(writer)) -> dict[str, Any]:
        names, sites = {x["name"] for x in visible(s)}, scope(s)
        mine = [x for x in store().silences() if x["id"] == sid and (
            x["rule"] in names or (x["site"] and (sites is None or x["site"] in sites)))]
        if not mine or not store().unsilence(sid):
            raise HTTPException(404, f"no silence {sid}")
        return {"deleted": sid}

    return r
