"""The console's Alerts page in real headless Chromium against ``logferry serve`` on the
demo's database and rules: states, last evaluation, incident history; editing with
validation (a window of -5m is refused at the field, a good one is written to the file);
"Send test notification" reaches a loopback webhook; silence and end it.  No request
leaves 127.0.0.1, no console error, hostile text stays text."""

from __future__ import annotations

import re
import tomllib

import pytest
from click.testing import CliRunner
from tests.servers.alerting import WebhookSink
from tests.servers.servers import Serve, browser_login, until

from logferry.cli import app

HOSTILE = "<img src=x onerror=document.title='pwned'>"


@pytest.fixture
def demo_serve(tmp_path):
    from logferry.alerts.engine import data_range, replay
    from logferry.alerts.store import Store
    from logferry.config import load
    from logferry.usage.db import connect

    hook = WebhookSink()
    out = tmp_path / "demo"
    assert CliRunner().invoke(app, ["demo", "--out", str(out)]).exit_code == 0
    cfg = out / "logferry.toml"
    cfg.write_text(cfg.read_text() + f'\n[alerts.channels.hook]\ntype = "webhook"\nurl = "{hook.url}/t"\n')
    # the incident history of the demo's logs (as `alerts test` finds them), in the state
    loaded = load(cfg)
    con = connect(out / "demo.duckdb", read_only=True)
    store = Store.at(loaded.state_dir)
    replay(loaded.cfg.alerts.rules, con, *data_range(con), 60, store)
    store.silence(None, "www.example.com", 4102444800_000000, 0, HOSTILE)
    store.close()
    con.close()
    srv = Serve(out, "--config", str(cfg), "--db", str(out / "demo.duckdb"))
    yield srv, cfg, hook
    srv.stop()
    hook.stop()


def test_alerts_page(page, demo_serve):
    srv, cfg, hook = demo_serve
    browser_login(page, srv.login)
    page.click("#nav-alerts")
    page.wait_for_selector("#rules tbody tr[data-rule='server-errors']")
    row = page.locator("#rules tr[data-rule='server-errors']")
    assert row.locator(".state").inner_text() == "ok"
    until(lambda: (page.reload(), page.wait_for_selector("#rules tbody tr"),
                   "never" not in page.locator("#rules tr[data-rule='site-down']").inner_text())[-1], timeout=60)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page.locator("#rules tr[data-rule='site-down']").inner_text())
    # incident history: the demo's 5xx burst and the gap
    inc = page.locator("#incidents tbody").inner_text()
    assert "2024-03-01 10:29:13" in inc and "2024-03-01 11:59:47" in inc
    assert page.locator("#silences tbody").inner_text().count(HOSTILE) == 1 and page.title() != "pwned"
    page.shot("alerts")

    # edit: a bad window is refused with the field named; the file is unchanged
    before = cfg.read_text()
    page.click("#edit-server-errors")
    body = page.locator("#r-body").input_value().replace('"window": "5m"', '"window": "-5m"')
    page.fill("#r-body", body)
    page.click("#r-save")
    page.wait_for_selector("#rule-errors li[data-field='window']")
    assert "'-5m' is not a duration" in page.locator("#rule-errors").inner_text()
    assert cfg.read_text() == before
    # (Chromium logs the refused save's 422; it is the only console message)
    assert len(page.watch.errors) == 1 and "status of 422" in page.watch.errors[0]
    page.watch.errors.clear()
    page.fill("#r-body", body.replace('"window": "-5m"', '"window": "10m"'))
    page.click("#r-save")
    page.wait_for_selector("#flash.ok")
    assert tomllib.loads(cfg.read_text())["alerts"]["rules"]["server-errors"]["window"] == "10m"
    assert "logferry demo" in cfg.read_text()  # the file's comments are kept

    # send a test notification: the loopback webhook gets it
    page.click("#test-site-down")
    page.wait_for_selector("#flash:has-text('test notification')")
    assert "hook: sent" in page.locator("#flash").inner_text()
    [r] = hook.received()
    assert r["json"]["event"] == "test" and r["json"]["rule"] == "site-down"

    # silence, then end it
    page.click("#silence-slow-pages")
    page.wait_for_selector("#rules tr[data-rule='slow-pages'] .state-silenced")
    sid = page.locator("#silences tbody tr", has_text="slow-pages").get_attribute("data-silence")
    page.click(f"#unsilence-{sid}")
    page.wait_for_selector("#rules tr[data-rule='slow-pages'] .state-ok")
    page.shot("alerts-after")
    page.watch.check()

    # the dashboard marks the incidents on its time charts
    page.click("#nav-dashboard")
    cap = page.locator("[data-chart='requests'] .incidents")
    cap.wait_for()
    text = cap.inner_text()
    assert "server-errors (critical)" in text and "site-down (critical)" in text
    page.shot("dashboard-incidents")
    page.watch.check()
