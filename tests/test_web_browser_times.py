"""From/Until in the job editor, in real headless Chromium against `logferry serve` (issue 23
item 1): the form sends ISO 8601 strings (``2024-03-01T10:30:00Z``), the save is accepted,
``logferry.toml`` holds the range, the CLI's config loads it, and the page shows it again."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.servers.servers import browser_login
from tests.test_web_browser import nav, serve, write_log  # noqa: F401 - the fixture

from logferry.config import load


def test_from_and_until_are_saved_from_the_editor(page, serve, tmp_path):  # noqa: F811
    log = tmp_path / "logs" / "shop.log"
    log.parent.mkdir()
    write_log(log, 0, 10)
    browser_login(page, serve.url)
    nav(page, "#nav-new")
    page.fill("#name", "ranged")
    page.fill("#source", str(log))
    page.select_option("#dest-type", "folder")
    page.fill("#d-path", str(tmp_path / "out"))
    page.fill("#since", "2024-03-01T10:30")
    page.fill("#until", "2024-03-01T10:50")
    page.select_option("#interval", "")
    page.click("#save")
    page.wait_for_url(re.compile(r"/jobs/ranged\?saved=1$"))
    f = load(serve.cfg).job("ranged").filter
    assert (f.since, f.until) == (datetime(2024, 3, 1, 10, 30, tzinfo=UTC), datetime(2024, 3, 1, 10, 50, tzinfo=UTC))
    assert page.input_value("#since") == "2024-03-01T10:30" and page.input_value("#until") == "2024-03-01T10:50"
    # saved again unchanged from the loaded page, then with Until before From: refused at the field
    with page.expect_navigation():
        page.click("#save")
    page.wait_for_load_state("load")
    assert page.input_value("#since") == "2024-03-01T10:30"
    page.fill("#until", "2024-03-01T10:00")
    page.click("#save")
    err = page.locator('.row[data-key="filter"] .err, #form-errors')
    page.wait_for_function("() => /until must be after since/.test(document.body.innerText)")
    assert "until must be after since" in " ".join(err.all_inner_texts())
    assert load(serve.cfg).job("ranged").filter.until == datetime(2024, 3, 1, 10, 50, tzinfo=UTC)
    page.watch.errors[:] = [e for e in page.watch.errors if "status of 422" not in e]  # (the refused save)
    page.watch.check()
