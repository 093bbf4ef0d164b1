"""`logferry serve --follow`: the follower runs in the console's process, and the served
dashboard (real Chromium) shows the request count going up after lines are appended to
the followed log, without reloading the page.  Prints the append -> dashboard latency
(issue 16's target: under 5 s; not asserted on timing)."""

from __future__ import annotations

import re
import time

from tests.servers.servers import Child, browser_login, free_port, until, wait_port

HEADER = ("#Software: Microsoft Internet Information Services 10.0\n"
          "#Fields: date time s-sitename cs-method cs-uri-stem sc-status time-taken cs(User-Agent)\n")


def lines(start: int, n: int) -> str:
    from datetime import datetime, timedelta

    t0 = datetime(2024, 3, 1, 12)
    return "".join(f"{t0 + timedelta(seconds=i):%Y-%m-%d %H:%M:%S} live.example GET /p/{i % 9} "
                   f"{404 if i % 13 == 0 else 200} {i % 50} Mozilla/5.0+(X11)\n" for i in range(start, start + n))


def card(page) -> int:
    t = page.locator('[data-card="requests"] b').first.inner_text()
    return int(re.sub(r"[^\d]", "", t) or 0)


def test_served_dashboard_counts_appended_lines_without_a_reload(page, tmp_path):
    log = tmp_path / "access.log"
    log.write_text(HEADER + lines(0, 120))
    port = free_port()
    db = tmp_path / "live.duckdb"
    with Child("serve", "--config", str(tmp_path / "logferry.toml"), "--state", str(tmp_path / "state"),
               "--port", str(port), "--no-scheduler", "--db", str(db), "--follow", str(log),
               out=True, cwd=tmp_path) as p:
        until(lambda: p.saw("/login?token="), timeout=60)
        m = re.search(r"(http://127\.0\.0\.1:\d+/login\?token=\S+)", p.text)
        assert m, p.text
        wait_port(port)
        browser_login(page, m.group(1))
        page.goto(f"http://127.0.0.1:{port}/dashboard")
        page.wait_for_selector('[data-card="requests"]', timeout=60_000)
        deadline = time.monotonic() + 60
        while card(page) < 120 and time.monotonic() < deadline:  # the follower's first read
            page.wait_for_timeout(200)
        assert card(page) == 120
        assert "live" in page.locator("#live").inner_text()
        page.evaluate("window.__same_page = 1")  # gone if the page were reloaded
        lat = []
        total = 120
        for k in (7, 31, 2):
            with open(log, "a") as f:
                f.write(lines(total, k))
            total += k
            t0 = time.monotonic()
            while card(page) < total and time.monotonic() - t0 < 60:
                page.wait_for_timeout(100)
            lat.append(time.monotonic() - t0)
            assert card(page) == total
        assert page.evaluate("window.__same_page") == 1
        # two minutes of lines: the live chart's x axis says the seconds, one label per tick
        labels = page.locator("[data-chart=requests]").get_attribute("data-x-labels").split("|")
        assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
        page.shot("live-dashboard")
        print(f"\nappend -> served dashboard (follower commit_every 2 s, page looks at the follower every 1 s): "
              f"{', '.join(f'{x:.2f}' for x in lat)} s (mean {sum(lat) / len(lat):.2f} s)")
        page.watch.check()
        assert p.stop(timeout=60) == 0, p.text
