"""The Exports page in real headless Chromium against `logferry serve`: how far behind a
job is, the last real delivery beside a run that found nothing, Run now on a stopped job
(it offers to start it, and the start delivers what it missed at once), Re-export of a past
range (its own objects, tagged in History), Duplicate (a stopped copy) and Delete."""

from __future__ import annotations

import os
import re

from tests.servers.servers import Serve, browser_login
from tests.test_dest_conformance import paths_of, write_log
from tests.test_web_browser import nav, wait_text


def row(name):
    return f'tr[data-job="{name}"]'


def test_exports_backlog_start_rerun_duplicate_delete(page, tmp_path):
    log = tmp_path / "a.log"
    write_log(str(log), 0, 100)  # one line a second from 2024-03-01T00:00:00Z
    os.utime(log, (1e9, 1e9))
    out = tmp_path / "out"
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'state_dir = "state"\n[jobs.web]\nsource = ["{log}"]\ndest = "file://{out}"\n'
                   f'name = {{ template = "web-{{seq:04d}}{{ext}}" }}\n')
    answers = []  # what the page's confirm() / prompt() dialogs are answered
    asked = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept(*answers.pop(0))))
    srv = Serve(tmp_path, "--config", str(cfg))
    try:
        browser_login(page, srv.login)
        # -- never run: all of it is behind ------------------------------------------------------
        assert page.inner_text(f'{row("web")} [data-field="last"]') == "never"
        behind = page.inner_text(f'{row("web")} [data-field="backlog"]')
        assert re.fullmatch(r"1 file, \d\.\d kB behind; oldest undelivered line \d+d \d+h old", behind), behind
        page.shot("01-behind")
        page.click(f'{row("web")} [data-action=run]')
        wait_text(page, f'{row("web")} [data-field="last"]', r"ok: 1 objects, 100 records")
        wait_text(page, f'{row("web")} [data-field="backlog"]', r"^up to date$")
        # -- a run that finds nothing: the last real delivery stays in view ---------------------
        page.click(f'{row("web")} [data-action=run]')
        wait_text(page, f'{row("web")} [data-field="last"]', r"ok: nothing new")
        wait_text(page, f'{row("web")} [data-field="delivery"]', r"^last delivery \S+Z: 1 objects, 100 records")
        page.shot("02-nothing-new")
        # -- Stop; Run now on the stopped job offers to start it, and the start catches up -------
        page.click(f'{row("web")} [data-action=stop]')
        wait_text(page, f'{row("web")} [data-field="state"]', r"^stopped$")
        write_log(str(log), 100, 20, header=False, mode="a")
        os.utime(log, (1e9, 1e9))
        assert page.locator(f'{row("web")} [data-action=run]').is_enabled()
        answers.append(())
        page.click(f'{row("web")} [data-action=run]')
        wait_text(page, f'{row("web")} [data-field="last"]', r"ok: 1 objects, 20 records")
        assert asked[-1] == "web is stopped. Start it and deliver what it missed now?"
        wait_text(page, f'{row("web")} [data-field="state"]', r"^active$")
        # -- Re-export 00:00:10 .. 00:00:30: objects of its own, the originals untouched --------
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        page.click(f'{row("web")} [data-action=rerun]')
        page.fill("#rerun-since", "2024-03-01T00:00:30")
        page.fill("#rerun-until", "2024-03-01T00:00:10")
        page.click("#rerun-go")
        wait_text(page, '#rerun-form .row[data-key="until"] .err', r"must be later than since")
        assert page.watch.errors == ["Failed to load resource: the server responded with a status of 422 "
                                     "(Unprocessable Entity)"]  # (the refused range, on purpose)
        page.watch.errors.clear()
        page.fill("#rerun-since", "2024-03-01T00:00:10")
        page.fill("#rerun-until", "2024-03-01T00:00:30")
        page.shot("03-rerun-form")
        page.click("#rerun-go")
        wait_text(page, "#flash", r"web: re-export of 2024-03-01T00:00:10Z \.\. 2024-03-01T00:00:30Z started")
        wait_text(page, f'{row("web")} [data-field="last"]', r"ok \(re-export\): 1 objects, 20 records")
        assert page.is_hidden("#rerun-form")
        new = sorted(set(p.name for p in out.iterdir()) - set(before))
        assert new == ["web-0000-rerun-4.jsonl.gz"]
        assert paths_of((out / new[0]).read_bytes()) == [f"/p/{i}" for i in range(10, 30)]
        assert all((out / k).read_bytes() == v for k, v in before.items())
        # (a re-export is not the job's delivery)
        wait_text(page, f'{row("web")} [data-field="delivery"]', r"^last delivery \S+Z: 1 objects, 20 records")
        nav(page, "#nav-history")
        first = page.locator("#runs tbody tr").first
        assert first.locator(".tag").inner_text() == "re-export"
        assert "backfill" in page.locator("#runs tbody tr").nth(1).inner_text()
        page.shot("04-history-rerun")
        # -- Duplicate (a stopped copy, opened in the editor), then Delete it --------------------
        nav(page, "#nav-exports")
        answers.append(("web2",))
        with page.expect_navigation(url=re.compile(r"/jobs/web2$")):
            page.click(f'{row("web")} [data-action=duplicate]')
        assert page.input_value("#name") == "web2" and page.input_value("#source") == str(log)
        assert "[jobs.web2]" in cfg.read_text()
        nav(page, "#nav-exports")
        assert page.inner_text(f'{row("web2")} [data-field="state"]') == "stopped"
        page.shot("05-duplicated")
        answers.append(())
        page.click(f'{row("web2")} [data-action=delete]')
        wait_text(page, "#flash", r"web2: deleted")
        assert page.locator(row("web2")).count() == 0 and "web2" not in cfg.read_text()
        assert asked[-1] == "Delete the job web2? Its history stays."
        page.watch.check()
    finally:
        rc, text = srv.stop()
    assert rc == 0 and "Traceback" not in text, text
