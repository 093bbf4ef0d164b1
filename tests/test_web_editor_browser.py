"""The console's job editor in real headless Chromium against `logferry serve` (issue 23's
editor details): output fields in the order the user chooses, from the form to the job's
config and the delivered records; the "Next names" preview at the time of the job's first
pending record (the name the run then gives its object); a destination change says that
what was delivered stays where it is; the S3 bucket rule states its 3-63 length."""

from __future__ import annotations

import json
import re
import tomllib

from tests.servers.servers import Serve, browser_login
from tests.test_web_browser import nav, wait_text, write_log


def test_editor_field_order_names_and_destination_change(page, tmp_path):
    log = tmp_path / "logs" / "shop.log"
    log.parent.mkdir()
    write_log(log, 0, 30)
    out = tmp_path / "out"
    cfg = tmp_path / "logferry.toml"
    srv = Serve(tmp_path, "--config", str(cfg), "--no-scheduler")
    try:
        browser_login(page, srv.login)
        nav(page, "#nav-new")
        page.fill("#name", "ordered")
        page.fill("#source", str(log))
        page.select_option("#dest-type", "folder")
        page.fill("#d-path", str(out))
        page.select_option("#compress", "none")
        # ticked in this order, then the timestamp moved up one place
        for f in ("status", "path", "timestamp"):
            page.check(f"input[name=field][value={f}]")
        page.click('#field-order li[data-field=timestamp] [data-move=up]')
        order = ["status", "timestamp", "path"]
        assert page.locator("#field-order li").evaluate_all("ls => ls.map(l => l.dataset.field)") == order
        page.select_option("#preset", "cdn")
        page.fill("#service", "svc")
        # the S3 rule: a two-letter bucket is refused with the rule's length
        page.select_option("#dest-type", "s3")
        assert "3-63" in page.get_attribute("#d-bucket", "placeholder")
        page.fill("#d-bucket", "ab")
        page.click("#save")
        assert "3-63 characters" in wait_text(page, '.row[data-key="destination.bucket"] .err', r"3-63")
        assert not cfg.exists()
        page.watch.errors.clear()  # (the refused save: a 422 answer in the console)
        page.select_option("#dest-type", "folder")
        page.fill("#d-path", str(out))
        page.click("#save")
        page.wait_for_url(re.compile(r"/jobs/ordered\?saved=1$"))
        assert tomllib.loads(cfg.read_text())["jobs"]["ordered"]["fields"] == order
        # the saved job's editor: the same order, and names at the first pending record's time
        assert page.locator("#field-order li").evaluate_all("ls => ls.map(l => l.dataset.field)") == order
        wait_text(page, "#name-at", r"first pending record, 2024-03-01T00:00:00Z")
        first = page.locator("#name-preview li").first.inner_text()
        assert first.startswith("20240301-000000.svc.00000.")
        # a destination change says the delivered data stays where it was
        assert page.locator("#dest-note").is_hidden()
        page.fill("#d-path", str(tmp_path / "elsewhere"))
        note = page.locator("#dest-note")
        assert note.is_visible() and f"stays at file://{out}" in note.inner_text()
        page.shot("editor-dest-change")
        page.fill("#d-path", str(out))
        assert note.is_hidden()
        # Run now: the object gets the previewed name, its records the chosen order
        nav(page, "#nav-exports")
        page.locator('tr[data-job="ordered"] [data-action=run]').click()
        wait_text(page, 'tr[data-job="ordered"] [data-field="last"]', r"ok: 1 objects, 30 records")
        (obj,) = list(out.iterdir())
        assert obj.name == first
        recs = [json.loads(x) for x in obj.read_text().splitlines()]
        assert len(recs) == 30 and all(list(r) == order for r in recs)
        page.watch.check()
    finally:
        srv.stop()
