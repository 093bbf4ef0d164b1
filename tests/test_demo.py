"""`logferry demo` end to end, and its HTML report opened in headless Chromium.

The browser is driven over the DevTools protocol through ``--remote-debugging-pipe``
(JSON messages separated by NUL bytes on file descriptors 3 and 4): no websocket and no
extra package.  The test records every network request the page makes, every console
message and exception, asserts that the charts are laid out, and saves a screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from decimal import Decimal

import pytest
from click.testing import CliRunner

from logferry.cli import app
from logferry.samples import write_samples
from logferry.usage import connect

CHARTS = {"requests-over-time", "status-mix", "latency", "uptime", "funnel", "cache-status", "hourly"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    r = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out, r.output


def test_samples_are_deterministic(tmp_path):
    a = write_samples(str(tmp_path / "a"))
    b = write_samples(str(tmp_path / "b"))
    assert len(a) == 5
    for x, y in zip(a, b, strict=True):
        with open(x, "rb") as fx, open(y, "rb") as fy:
            assert fx.read() == fy.read()


def test_demo_ingests_every_format_and_writes_the_report(demo):
    out, output = demo
    assert "5 files (5 new, 0 grown, 0 already ingested, 0 errors): 9,628 records, 1 bad rows" in output
    assert (out / "report.html").exists()
    con = connect(out / "demo.duckdb", read_only=True)
    try:
        rows = con.execute("SELECT format, records, bad_rows FROM files ORDER BY format").fetchall()
        assert rows == [("cdn-json", 800, 0), ("cloudfront", 2000, 0), ("csv-usage", 500, 0), ("shop", 328, 0),
                        ("w3c", 6000, 1)]
        assert con.execute("SELECT count(*), sum(total_price) FROM orders").fetchall() == [(25, Decimal("6712.8800"))]
        assert con.execute("SELECT line_number, raw FROM bad_rows").fetchall() == [
            (2006, "2024-03-01 garbled line cut by a disk-full event")]
    finally:
        con.close()
    # running it again ingests nothing new
    r = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert r.exit_code == 0 and "5 files (0 new, 0 grown, 5 already ingested, 0 errors)" in r.output
    html = (out / "report.html").read_text()
    for c in CHARTS:
        assert f'data-chart="{c}"' in html
    assert "<script" not in html and "http://" not in html.split("</style>")[0]


# --- headless Chromium over the DevTools pipe ---------------------------------------------

class DevTools:
    def __init__(self, profile: str):
        exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if exe is None:
            pytest.skip("chromium is not installed (apt-get install chromium)")
        r, self.to_child = os.pipe()
        self.from_child, w = os.pipe()
        # move the child's ends above 4 so that the dup2 calls below cannot clobber them
        to_child_r, from_child_w = fcntl.fcntl(r, fcntl.F_DUPFD, 10), fcntl.fcntl(w, fcntl.F_DUPFD, 10)
        os.close(r)
        os.close(w)

        def fds() -> None:  # the child reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "--window-size=1280,2000", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._recv(timeout)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            m = self._recv(timeout)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def _recv(self, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_child)
        os.close(self.from_child)


def test_report_renders_in_headless_chromium_offline_without_errors(demo, tmp_path):
    out, _ = demo
    url = (out / "report.html").resolve().as_uri()
    dt = DevTools(str(tmp_path / "profile"))
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            dt.send(f"{domain}.enable", session=sid)
        dt.send("Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False}, session=sid)
        dt.send("Page.navigate", {"url": url}, session=sid)
        dt.wait_event("Page.loadEventFired")
        res = dt.send("Runtime.evaluate", {"returnByValue": True, "expression": """
            JSON.stringify([...document.querySelectorAll('svg[data-chart]')].map(s => {
                const r = s.getBoundingClientRect();
                return [s.dataset.chart, s.querySelectorAll('rect').length, Math.round(r.width), Math.round(r.height)];
            }))"""}, session=sid)
        charts = {name: (rects, w, h) for name, rects, w, h in json.loads(res["result"]["value"])}
        shot = dt.send("Page.captureScreenshot", {"format": "png"}, session=sid)
        png = tmp_path / "report.png"
        png.write_bytes(base64.b64decode(shot["data"]))
    finally:
        dt.close()

    assert CHARTS <= set(charts)
    for name in CHARTS:
        rects, w, h = charts[name]
        assert rects > 0 and w > 600 and h > 40, (name, charts[name])
    assert charts["uptime"][0] == 72  # one cell per 5-minute bucket over six hours
    assert charts["funnel"][0] == 5
    requests = [e["params"]["request"]["url"] for e in dt.events if e.get("method") == "Network.requestWillBeSent"]
    assert requests == [url]  # the page itself, nothing else
    console = [e["params"] for e in dt.events if e.get("method") in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown")]
    log_errors = [e["params"]["entry"] for e in dt.events
                  if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning")]
    assert console == [] and log_errors == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
