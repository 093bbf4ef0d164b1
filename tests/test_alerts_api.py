"""The Alerts API of the console (FastAPI's TestClient): scoped tokens see and edit only
their sites' rules (and no sql rule), read-only tokens change nothing, edits are
validated and refuse a stale version, secrets never reach the page."""

from __future__ import annotations

import tomllib

import pytest
from fastapi.testclient import TestClient

from logferry.web.app import create_app
from logferry.web.console import Console
from logferry.web.tokens import TokenStore

CONFIG = '''state_dir = "state"

[alerts.channels.slack]
type = "slack"
url_env = "ALERTS_TEST_SLACK_URL"

[alerts.rules.shop-errors]  # the shop's rule
kind = "error_share"
above_pct = 5
sites = ["siteA"]
match = "site"

[alerts.rules.by-host]  # siteA's name in any row's site column or Host header
kind = "error_share"
above_pct = 5
sites = ["siteA"]

[alerts.rules.all-down]
kind = "site_down"
window = "15m"
'''


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ALERTS_TEST_SLACK_URL", "http://127.0.0.1:9/T0KEN-SECRET")
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(CONFIG)
    console = Console(cfg)
    store = TokenStore(console.state_dir)
    toks = {"admin": store.create()[1], "ro": store.create(read_only=True)[1], "a": store.create(["siteA"])[1]}
    client = TestClient(create_app(console, store))
    yield type("Env", (), dict(cfg=cfg, toks=toks, client=client))


def call(env, who, method, url, **kw):
    return env.client.request(method, url, headers={"Authorization": f"Bearer {env.toks[who]}"}, **kw)


def test_rules_are_scoped_by_the_tokens_sites(env):
    all_ = call(env, "admin", "GET", "/api/alerts").json()
    assert [r["name"] for r in all_["rules"]] == ["shop-errors", "by-host", "all-down"]
    assert all_["channels"] == ["slack"] and "T0KEN" not in str(all_)
    mine = call(env, "a", "GET", "/api/alerts").json()
    # (by-host's incidents could hold another site's requests whose clients sent Host: siteA)
    assert [r["name"] for r in mine["rules"]] == ["shop-errors"]
    for name, version in (("by-host", "x"), ("new", None)):
        r = call(env, "a", "PUT", f"/api/alerts/rules/{name}", json={"rule": {
            "kind": "site_down", "sites": ["siteA"], "match": "site_or_host"}, "version": version})
        assert r.status_code == 403 and "site column only" in r.text
    assert call(env, "a", "POST", "/api/alerts/rules/by-host/test").status_code == 404
    r = call(env, "a", "PUT", "/api/alerts/rules/all-down", json={"rule": {"kind": "site_down", "sites": ["siteA"]},
                                                                   "version": "x"})
    assert r.status_code == 403
    r = call(env, "a", "PUT", "/api/alerts/rules/q", json={"rule": {"kind": "sql", "sites": ["siteA"],
                                                                     "query": "SELECT 1"}})
    assert r.status_code == 403
    assert call(env, "a", "POST", "/api/alerts/silences", json={"site": "siteB", "until": "1h"}).status_code == 403
    assert call(env, "a", "POST", "/api/alerts/rules/all-down/test").status_code == 404


def test_edits_are_validated_versioned_and_keep_the_file(env):
    rule = call(env, "admin", "GET", "/api/alerts").json()["rules"][0]
    body = {**rule["rule"], "window": "-5m"}
    r = call(env, "admin", "PUT", "/api/alerts/rules/shop-errors", json={"rule": body, "version": rule["version"]})
    assert r.status_code == 422 and "'-5m' is not a duration" in r.json()["errors"]["window"]
    body["window"] = "10m"
    r = call(env, "admin", "PUT", "/api/alerts/rules/shop-errors", json={"rule": body, "version": rule["version"]})
    assert r.status_code == 200, r.text
    text = env.cfg.read_text()
    assert "# the shop's rule" in text and tomllib.loads(text)["alerts"]["rules"]["shop-errors"]["window"] == "10m"
    stale = call(env, "admin", "PUT", "/api/alerts/rules/shop-errors", json={"rule": body, "version": rule["version"]})
    assert stale.status_code == 409
    r = call(env, "admin", "PUT", "/api/alerts/rules/new-one", json={"rule": {"kind": "nope"}})
    assert r.status_code == 422 and "unknown kind" in str(r.json()["errors"])
    r = call(env, "a", "PUT", "/api/alerts/rules/shop-404", json={"rule": {
        "kind": "broken_links", "sites": ["siteA"], "min_hits": 5}})
    assert r.status_code == 200
    assert tomllib.loads(env.cfg.read_text())["alerts"]["rules"]["shop-404"]["match"] == "site"
    assert "shop-404" in [x["name"] for x in call(env, "a", "GET", "/api/alerts").json()["rules"]]


def test_read_only_tokens_change_nothing(env):
    before = env.cfg.read_text()
    for m, url, body in (("PUT", "/api/alerts/rules/x", {"rule": {"kind": "site_down"}}),
                         ("DELETE", "/api/alerts/rules/all-down", None),
                         ("POST", "/api/alerts/rules/all-down/test", None),
                         ("POST", "/api/alerts/silences", {"rule": "all-down", "until": "1h"})):
        assert call(env, "ro", m, url, json=body).status_code == 403
    assert env.cfg.read_text() == before


def test_a_failed_test_notification_says_why_without_the_url(env):
    r = call(env, "admin", "POST", "/api/alerts/rules/all-down/test")
    [res] = r.json()["results"]
    assert res["channel"] == "slack" and res["status"] == "failed" and "T0KEN" not in res["error"]
