from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore the same examples on every run (CI must not pass or fail by
# luck); LOGFERRY_FUZZ_RANDOM=1 explores new ones -- what found the bugs now pinned as
# @example cases.
settings.register_profile("logferry", derandomize=os.environ.get("LOGFERRY_FUZZ_RANDOM", "") != "1")
settings.load_profile("logferry")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()


def corpus(rel: str) -> Path:
    p = CORPUS / rel
    if not p.exists():
        pytest.skip(f"corpus file {rel} not available at {CORPUS}")
    return p


@pytest.fixture
def corpus_path():
    return corpus


def rows(path, **kw):
    """Read ``path`` with logferry.read: (stream, list of row dicts)."""
    import logferry

    s = logferry.read(path, **kw)
    out = [r for b in s for r in b.to_pylist()]
    return s, out


def check_invariant(s):
    """Nothing lost: every data line is a record or a bad row."""
    st = s.stats
    assert st.records + st.bad == st.lines - st.directives - st.blank


# --- real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) -------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions",
]


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session's browser tests (a fresh context per test:
    use the ``page`` fixture).  scripts/test installs Debian's chromium; without it the
    browser tests are skipped with the reason."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (scripts/test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageWatch:
    """What a page did that a test must check: console errors, page errors and every
    request that left 127.0.0.1 (data: and blob: URLs are local)."""

    def __init__(self, page):
        self.page, self.errors, self.external = page, [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._request)

    def _request(self, req):
        from urllib.parse import urlsplit

        u = urlsplit(req.url)
        if u.scheme in ("data", "blob", "about", "file"):
            return
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            self.external.append(req.url)

    def check(self):
        assert self.errors == [], f"browser console errors: {self.errors}"
        assert self.external == [], f"requests left 127.0.0.1: {self.external}"


@pytest.fixture
def page(chromium, tmp_path):
    """A new browser context and page; ``page.watch`` records console errors and requests
    leaving 127.0.0.1 (call ``page.watch.check()``); ``page.shot(name)`` saves a screenshot
    under the test's tmp dir and returns its path."""
    ctx = chromium.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.watch = PageWatch(pg)

    def shot(name: str):
        path = tmp_path / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(path), full_page=True)
        return path

    pg.shot = shot
    yield pg
    ctx.close()
