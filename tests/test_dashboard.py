"""The dashboard: user-agent classification, its data, `report FILE`, and the page in Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from click.testing import CliRunner
from tests.servers.servers import Serve, browser_login

from logferry.cli import app
from logferry.errors import ConfigError
from logferry.usage import connect
from logferry.usage.dashboard import Filters, dashboard_data, filters_from_query, render_dashboard
from logferry.usage.ua import classify

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.3 Mobile/15E148 Safari/604.1")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CURL = "curl/8.5.0"


def test_known_agents_are_classified():
    assert classify(CHROME) == ("Chrome", "122", "Windows", "Other", False)
    assert classify(IPHONE) == ("Mobile Safari", "17", "iOS", "iPhone", False)
    b, _, _, device, bot = classify(GOOGLEBOT)
    assert (b, device, bot) == ("Googlebot", "Spider", True)
    assert classify(CURL)[0] == "curl" and classify(CURL)[4] is True  # a tool: crawlerdetect knows it
    assert classify(None) == classify("-") == ("None", None, "None", "None", False)


def _iis(path, rows):
    lines = ["#Software: Microsoft Internet Information Services 10.0",
             "#Fields: date time s-sitename cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) cs(Referer) "
             "cs-host sc-status sc-bytes time-taken"]
    for t, site, p, ip, ua, st in rows:
        lines.append(f"2024-03-01 {t} {site} GET {p} - {ip} {ua.replace(' ', '+')} - www.example.com {st} 100 10")
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = [("10:00:00", "A", "/", "1.1.1.1", CHROME, 200), ("10:01:00", "A", "/a", "1.1.1.1", CHROME, 200),
        ("10:02:00", "A", "/", "2.2.2.2", IPHONE, 200), ("10:03:00", "B", "/", "2.2.2.2", IPHONE, 404),
        ("10:04:00", "B", "/robots.txt", "3.3.3.3", GOOGLEBOT, 200), ("10:05:00", "B", "/", "3.3.3.3", GOOGLEBOT, 200),
        ("10:40:00", "A", "/api", "4.4.4.4", CURL, 503)]


@pytest.fixture
def small_db(tmp_path):
    log = _iis(tmp_path / "u_ex240301.log", ROWS)
    db = tmp_path / "u.duckdb"
    r = CliRunner().invoke(app, ["ingest", str(log), "--db", str(db), "--quiet"])
    assert r.exit_code == 0, r.output
    return log, db


def _json(args):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def sec(data, rep, name):
    return data["reports"][rep]["sections"][name]


def test_user_agent_panels_and_no_bots(small_db):
    _, db = small_db
    d = _json(["report", "--db", str(db), "--json", "--only", "top", "--only", "summary"])
    assert {r["browser"]: r["requests"] for r in sec(d, "top", "browsers")} == {
        "Chrome": 2, "Mobile Safari": 2, "Googlebot": 2, "curl": 1}
    assert {r["os"]: r["requests"] for r in sec(d, "top", "operating_systems")} == {"Windows": 2, "iOS": 2, "Other": 3}
    assert {r["device"]: r["requests"] for r in sec(d, "top", "devices")} == {"Other": 3, "iPhone": 2, "Spider": 2}
    assert [(r["kind"], r["requests"]) for r in sec(d, "top", "bots")] == [("humans", 4), ("bots", 3)]
    assert sec(d, "summary", "totals")[0]["requests"] == 7
    nb = _json(["report", "--db", str(db), "--json", "--no-bots"])
    assert sec(nb, "summary", "totals")[0]["requests"] == 4
    assert [(r["kind"], r["requests"]) for r in sec(nb, "top", "bots")] == [("humans", 4)]
    assert {r["path"] for r in sec(nb, "top", "pages")} == {"/", "/a"}  # /robots.txt and /api were bots'
    assert sec(nb, "status", "classes") == [{"class": "2xx", "requests": 3, "share": 0.75},
                                            {"class": "4xx", "requests": 1, "share": 0.25}]
    assert sec(nb, "uptime", "totals")[0]["errors_5xx"] == 0  # curl's 503 is gone too


def test_filters_from_query():
    f = filters_from_query({"since": "2024-03-01T10:00Z", "until": "2024-03-01 11:00", "site": "A,B",
                            "status": "4xx,5", "format": "w3c", "bots": "0"})
    assert f.since == dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC) and f.until == dt.datetime(2024, 3, 1, 11, tzinfo=dt.UTC)
    assert (f.sites, f.status_classes, f.formats, f.bots) == (["A", "B"], [4, 5], ["w3c"], False)
    assert filters_from_query({}) == Filters()
    assert filters_from_query({"since": "1709287200"}).since == dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)
    for bad in ({"since": "yesterday"}, {"status": "7"}, {"bots": "maybe"},
                {"since": "2024-03-02", "until": "2024-03-01"}):
        with pytest.raises(ConfigError):
            filters_from_query(bad)


def _cube_total(d, dim):
    c = d["cube"]["dims"][dim]
    return dict(zip(c["keys"], c["tot"][0], strict=True)), c


def _visitor_buckets(con, d, status_class=None):
    """{bucket: {visitor hash}} of the requests table, as the `req` view defines a visitor."""
    cube = d["cube"]
    rows = con.execute(
        "SELECT epoch_us(\"timestamp\"), hash(CAST(floor(epoch_us(\"timestamp\") / 86400000000) AS BIGINT), "
        "coalesce(client_ip, ''), coalesce(user_agent, '')) FROM requests "
        "WHERE ? IS NULL OR status // 100 = ?", [status_class, status_class]).fetchall()
    out: dict[int, set[int]] = {}
    for us, v in rows:
        out.setdefault((us // 1_000_000 - cube["t0"]) // cube["step"], set()).add(v)
    return out


def _sketch(visitors, p=10):
    regs = [0] * (1 << p)
    for v in visitors:
        w = (v >> p) & ((1 << 40) - 1)
        rank = 41 if w == 0 else (w & -w).bit_length()
        regs[v & ((1 << p) - 1)] = max(regs[v & ((1 << p) - 1)], rank)
    return "".join(chr(48 + r) for r in regs)


@pytest.mark.parametrize("status", [None, "2"])
def test_series_visitors_and_sketch_are_each_buckets_distinct_visitors(tmp_path, status):
    # a visitor seen twice in a bucket, two in one bucket, one in two buckets, one with a 503
    rows = [*ROWS, ("10:00:20", "A", "/b", "1.1.1.1", CHROME, 200), ("10:00:30", "A", "/", "5.5.5.5", CURL, 200),
            ("10:00:40", "A", "/", "6.6.6.6", IPHONE, 503)]
    log, db = _iis(tmp_path / "u_ex240301.log", rows), tmp_path / "v.duckdb"
    assert CliRunner().invoke(app, ["ingest", str(log), "--db", str(db), "--quiet"]).exit_code == 0
    con = connect(db, read_only=True)
    try:
        d = dashboard_data(con, filters_from_query({"status": status} if status else {}))
        want = _visitor_buckets(con, d, int(status) if status else None)
    finally:
        con.close()
    cube = d["cube"]
    assert cube["series"]["visitors"] == [len(want.get(i, ())) for i in range(cube["n"])]
    assert max(cube["series"]["visitors"]) == (3 if status is None else 2)
    sk = cube["visitor_sketch"]
    assert sk["b"] == sorted(want)
    assert sk["r"] == [_sketch(want[b]) for b in sk["b"]]


def test_dashboard_data_filters_scopes_and_cube(small_db):
    _, db = small_db
    con = connect(db, read_only=True)
    try:
        d = dashboard_data(con)
        assert sum(d["cube"]["series"]["requests"]) == 7
        tot, c = _cube_total(d, "path")
        assert tot == {"/": 4, "/a": 1, "/robots.txt": 1, "/api": 1}
        # the cells add up to the totals, key by key
        sums = {}
        for k, n in zip(c["cells"]["k"], c["cells"]["m"][0], strict=True):
            sums[c["keys"][k]] = sums.get(c["keys"][k], 0) + n
        assert sums == tot and not c["other"]
        agents = d["cube"]["dims"]["agent"]
        assert {a[0]: a[4] for a in agents["attrs"]} == {
            "Chrome": False, "Mobile Safari": False, "Googlebot": True, "curl": True}
        # filters and a scoped token's sites
        f = filters_from_query({"status": "2"})
        assert sum(dashboard_data(con, f)["cube"]["series"]["requests"]) == 5
        s = dashboard_data(con, allowed_sites=["B"])
        assert sum(s["cube"]["series"]["requests"]) == 3 and s["choices"]["sites"] == ["B"]
        assert "files" not in s["reports"]["summary"]["sections"]
        assert "lines" not in s["reports"]["summary"]["sections"]["totals"][0]
        # asking for another site than the token's gives nothing, not that site
        assert sum(dashboard_data(con, Filters(sites=["A"]), allowed_sites=["B"])["cube"]["series"]["requests"]) == 0
        r = dashboard_data(con, Filters(since=dt.datetime(2024, 3, 1, 10, 3, tzinfo=dt.UTC)))
        assert r["reports"]["summary"]["sections"]["totals"][0]["requests"] == 4
        assert dashboard_data(con, tz="Europe/Berlin")["cube"]["dims"]["hour"]["keys"] == [11]
        with pytest.raises(ConfigError):
            dashboard_data(con, tz="Mars/Olympus")
    finally:
        con.close()


def test_page_escapes_log_values():
    hostile = "</script><script>alert(1)</script>\u2028<!--"
    html = render_dashboard({"tz": "UTC", "cube": {"t0": None, "n": 0, "step": 60}, "reports": {
        "top": {"title": "t", "columns": {}, "sections": {"pages": [{"path": hostile}]}}}})
    body = html.split('id="lf-data"', 1)[1].split("</script>", 1)[0]
    assert "<" not in body.split(">", 1)[1] and "\u2028" not in body
    assert html.count("</script>") == html.count("<script")


def _strip(d):
    d = dict(d)
    d.pop("generated_at")
    return d


def test_report_file_equals_ingest_then_report(tmp_path, monkeypatch):
    from logferry.samples import write_samples

    logs = tmp_path / "logs"
    write_samples(str(logs))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    direct = _json(["report", str(logs), "--json"])
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary database is gone
    db = tmp_path / "kept.duckdb"
    r = CliRunner().invoke(app, ["ingest", str(logs), "--db", str(db), "--quiet"])
    assert r.exit_code == 0
    kept = _json(["report", "--db", str(db), "--json"])
    # the same numbers, except the summary's list of files (a different database)
    for d in (direct, kept):
        d["reports"]["summary"]["sections"].pop("files")
    assert _strip(direct) == _strip(kept)
    assert sec(direct, "summary", "totals")[0]["requests"] == 9628
    # and the dashboard the same way, from a glob, with --no-bots
    out = tmp_path / "r.html"
    r = CliRunner().invoke(app, ["report", str(logs / "iis" / "*.log"), "--html", str(out), "--no-bots"])
    assert r.exit_code == 0, r.output
    data = json.loads(re.search(r'id="lf-data" type="application/json">(.*?)</script>', out.read_text()).group(1))
    assert data["filters"]["bots"] is False
    con = connect(db, read_only=True)
    try:
        bots = {a for (a,) in con.execute("SELECT DISTINCT user_agent FROM requests JOIN files USING (file_id) "
                                          "WHERE format = 'w3c'").fetchall() if classify(a)[4]}
    finally:
        con.close()
    assert bots and not bots & set(data["cube"]["dims"]["agent"]["keys"])
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nope.log")])
    assert r.exit_code == 2 and "logferry: error: " in r.output and "Traceback" not in r.output


# --- the page in headless Chromium ---------------------------------------------------------

PANELS = {"summary", "status", "performance", "missing", "uptime", "cdn", "shop", "pages", "referrers", "agents",
          "browsers", "visitors", "hours", "sites"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    r = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _open(page, url):
    page.goto(url)
    page.wait_for_selector("body[data-ready]")


def _int(text):
    return int(text.replace(",", "").strip())


def _sql(demo, q, params=()):
    con = connect(demo / "demo.duckdb", read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(q, list(params)).fetchall()
    finally:
        con.close()


def _utc(s):
    return dt.datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)


def _range(page):
    r = page.locator("#range")
    return (dt.datetime.fromtimestamp(float(r.get_attribute("data-since")), dt.UTC),
            dt.datetime.fromtimestamp(float(r.get_attribute("data-until")), dt.UTC))


def _card(page, name):
    return page.locator(f"section.panel.on [data-card={name}] b").inner_text()


def _table(page, name):
    return page.locator(f"section.panel.on [data-table={name}] tbody tr").evaluate_all(
        "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")


def _drag(page, chart, x0, x1):
    box = page.locator(f"section.panel.on [data-chart={chart}] .u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * x0, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (x0 + x1) / 2, y, steps=4)
    page.mouse.move(box["x"] + box["width"] * x1, y, steps=4)
    page.mouse.up()


def test_navigation_reaches_every_panel(page, demo):
    _open(page, (demo / "report.html").as_uri())
    links = page.locator("nav.side a")
    assert set(links.evaluate_all("as => as.map(a => a.dataset.panel)")) == PANELS
    assert "Snowplow" in page.locator("nav.side p.none").inner_text()  # the demo has no Snowplow events
    for i in range(links.count()):
        a = links.nth(i)
        name, label = a.get_attribute("data-panel"), a.inner_text()
        a.click()
        sec = page.locator(f"section[data-panel={name}]")
        sec.wait_for(state="visible", timeout=10_000)  # (the page shows it on the hash change)
        assert sec.is_visible() and page.locator("section.panel:visible").count() == 1
        assert sec.locator("h2").inner_text() == label
        assert sec.locator("[data-chart], [data-table]").count() > 0, name
        page.shot(f"panel-{name}")
    assert "implementation" not in page.content() and "quantile_cont" not in page.content()
    page.watch.check()


def test_tooltips_show_the_exact_numbers(page, demo):
    _open(page, (demo / "report.html").as_uri())
    box = page.locator("[data-chart=requests] .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.31, box["y"] + box["height"] / 2)
    tip = page.locator("#tip")
    assert tip.is_visible()
    lines = tip.inner_text().splitlines()
    m = re.fullmatch(r"(\S+ \S+) \u2013 (\S+ \S+) UTC", lines[0])
    lo, hi = _utc(m.group(1)), _utc(m.group(2))
    shown = _int(lines[1].split(":")[1])
    assert shown == _sql(demo, 'SELECT count(*) FROM requests WHERE "timestamp" >= ? AND "timestamp" < ?', [lo, hi])[0][0]
    assert shown > 0
    page.shot("tooltip-time")
    page.locator("nav.side a[data-panel=status]").click()
    page.locator("[data-chart=status-codes] .bar").first.hover()
    n200, total = _sql(demo, "SELECT count(*) FILTER (WHERE status = 200), count(*) FROM requests")[0]
    assert tip.inner_text() == f"200: {n200:,} ({100 * n200 / total:.1f}%)"
    page.watch.check()


def test_zoom_sets_the_range_of_every_panel(page, demo):
    _open(page, (demo / "report.html").as_uri())
    total = _sql(demo, "SELECT count(*) FROM requests")[0][0]
    assert _int(_card(page, "requests")) == total
    _drag(page, "requests", 0.2, 0.45)
    lo, hi = _range(page)
    assert dt.timedelta(minutes=30) < hi - lo < dt.timedelta(hours=3)
    n = _sql(demo, 'SELECT count(*) FROM requests WHERE "timestamp" >= ? AND "timestamp" < ?', [lo, hi])[0][0]
    assert 0 < n < total and _int(_card(page, "requests")) == n
    assert page.locator("#reset").is_visible()
    page.shot("zoomed-summary")
    # the tables follow: top pages in the range, as SQL counts them
    page.locator("nav.side a[data-panel=pages]").click()
    want = dict(_sql(demo, 'SELECT path, count(*) FROM requests WHERE "timestamp" >= ? AND "timestamp" < ? '
                           "AND path IS NOT NULL GROUP BY path", [lo, hi]))
    rows = _table(page, "pages")
    assert rows and {r[0]: _int(r[1]) for r in rows} == {p: want[p] for p in (r[0] for r in rows)}
    assert _int(rows[0][1]) == max(want.values())
    info = page.locator("section.panel.on [data-table=pages] .info").inner_text()
    assert info.endswith(f"of {len(want):,}")
    # so do the status codes
    page.locator("nav.side a[data-panel=status]").click()
    codes = dict(_sql(demo, "SELECT coalesce(CAST(status AS VARCHAR), 'none'), count(*)"
                            ' FROM requests WHERE "timestamp" >= ? '
                            'AND "timestamp" < ? GROUP BY 1', [lo, hi]))
    assert {r[0]: _int(r[1]) for r in _table(page, "status_codes")} == codes
    page.locator("#reset").click()
    page.locator("nav.side a[data-panel=summary]").click()
    assert _int(_card(page, "requests")) == total and not page.locator("#reset").is_visible()
    page.watch.check()


def test_tables_sort_and_filter(page, demo):
    _open(page, (demo / "report.html").as_uri() + "#pages")
    t = page.locator("section.panel.on [data-table=pages]")
    head = t.locator("th", has_text="requests")
    head.click()
    assert head.get_attribute("aria-sort") == "descending"
    head.click()
    assert head.get_attribute("aria-sort") == "ascending"
    vals = [_int(r[1]) for r in _table(page, "pages")]
    assert vals == sorted(vals) and len(vals) == 100  # paged: 100 rows a page
    t.locator("th", has_text="path").click()
    paths = [r[0] for r in _table(page, "pages")]
    assert paths == sorted(paths, key=str.lower) or paths == sorted(paths)
    t.locator("input[type=search]").fill("/API")
    rows = _table(page, "pages")
    want = _sql(demo, "SELECT count(DISTINCT path) FROM requests WHERE lower(path) LIKE '%/api%'")[0][0]
    assert len(rows) == want and all("/api" in r[0].lower() for r in rows)
    t.locator(".pager", has_text="Next").is_hidden()
    page.shot("filtered-table")
    page.watch.check()


def test_dark_theme_switch_and_print(page, demo):
    page.emulate_media(color_scheme="dark")
    _open(page, (demo / "report.html").as_uri())
    bg = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(bg) == "rgb(21, 24, 30)"
    page.shot("dark")
    page.locator("#theme").click()  # system -> light
    assert page.locator("#theme").inner_text() == "Theme: light" and page.evaluate(bg) == "rgb(244, 245, 247)"
    page.locator("#theme").click()  # light -> dark
    page.emulate_media(color_scheme="light")
    assert page.evaluate(bg) == "rgb(21, 24, 30)"
    page.locator("#theme").click()  # back to the system's
    page.emulate_media(media="print")
    page.wait_for_timeout(100)
    secs = page.locator("section.panel")
    assert secs.count() == len(PANELS)
    assert all(secs.nth(i).is_visible() and secs.nth(i).locator("h2").count() == 1 for i in range(secs.count()))
    assert page.locator("nav.side").is_hidden()
    page.watch.check()


@pytest.fixture
def served(demo):
    """The dashboard served the way the console serves it (render_dashboard with api, and the
    API answering dashboard_data for the query's filters), on 127.0.0.1."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl, urlsplit

    con = connect(demo / "demo.duckdb", read_only=True)
    lock = threading.Lock()
    seen = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            u = urlsplit(self.path)
            with lock:
                cur = con.cursor()
                try:
                    if u.path == "/api/report":
                        seen.append(u.query)
                        body = json.dumps(dashboard_data(cur, filters_from_query(dict(parse_qsl(u.query))))).encode()
                        ctype = "application/json"
                    else:
                        body = render_dashboard(dashboard_data(cur), api="/api/report", live=True).encode()
                        ctype = "text/html; charset=utf-8"
                finally:
                    cur.close()
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/dashboard", seen
    srv.shutdown()
    with lock:
        con.close()


def test_served_page_fetches_exact_numbers(page, demo, served):
    url, seen = served
    _open(page, url)
    assert "last request 2024-03-01 13:59:59 UTC" in page.locator("#live").inner_text()
    _drag(page, "requests", 0.5, 0.7)
    page.wait_for_function("() => !document.body.hasAttribute('data-loading')")
    page.wait_for_function("() => document.querySelector('#reset').style.display === ''")
    assert any("since=" in q for q in seen)
    since, until = [dict(x.split("=") for x in q.split("&")) for q in seen if "since=" in q][-1].values()
    from urllib.parse import unquote

    lo, hi = (dt.datetime.fromisoformat(unquote(v).replace("Z", "+00:00")) for v in (since, until))
    n, v = _sql(demo, 'SELECT count(*), count(DISTINCT hash(CAST("timestamp" AS DATE), client_ip, user_agent)) '
                      'FROM requests WHERE "timestamp" >= ? AND "timestamp" < ?', [lo, hi])[0]
    page.wait_for_function(f"() => document.querySelector('[data-card=requests] b').textContent === '{n:,}'")
    assert _int(_card(page, "visitors")) == v  # exact from the server, not only for the whole period
    # a filter is applied on the server: only 5xx
    for c in (1, 2, 3, 4):
        page.locator(f"input[data-class='{c}']").uncheck()
    page.wait_for_function("() => !document.body.hasAttribute('data-loading')")
    n5 = _sql(demo, 'SELECT count(*) FROM requests WHERE "timestamp" >= ? AND "timestamp" < ? AND status >= 500',
              [lo, hi])[0][0]
    page.wait_for_function(f"() => document.querySelector('[data-card=requests] b').textContent === '{n5:,}'")
    assert "status=5" in seen[-1]
    page.shot("served-filtered")
    page.watch.check()


@pytest.fixture
def console(demo, tmp_path):
    """`logferry serve --db demo.duckdb` as its own process on 127.0.0.1 (the console)."""
    srv = Serve(tmp_path, "--config", str(tmp_path / "logferry.toml"), "--db", str(demo / "demo.duckdb"),
                "--no-scheduler")
    yield srv.login, srv.base
    srv.stop(timeout=30)


def test_console_serves_the_dashboard(page, demo, console):
    login, base = console
    browser_login(page, login)
    _open(page, base + "/dashboard")
    total = _sql(demo, "SELECT count(*) FROM requests")[0][0]
    assert _int(_card(page, "requests")) == total
    with page.expect_response(lambda r: "/api/report?" in r.url) as resp:
        _drag(page, "requests", 0.3, 0.5)
    q = resp.value.url.split("?", 1)[1]
    from urllib.parse import parse_qs

    args = parse_qs(q)
    lo, hi = (dt.datetime.fromisoformat(args[k][0].replace("Z", "+00:00")) for k in ("since", "until"))
    n = _sql(demo, 'SELECT count(*) FROM requests WHERE "timestamp" >= ? AND "timestamp" < ?', [lo, hi])[0][0]
    page.wait_for_function(f"() => document.querySelector('[data-card=requests] b').textContent === '{n:,}'")
    assert 0 < n < total and _card(page, "visitors") != "\u2014"
    page.locator("nav.side a[data-panel=pages]").click()
    want = dict(_sql(demo, 'SELECT path, count(*) FROM requests WHERE "timestamp" >= ? AND "timestamp" < ? '
                           "AND path IS NOT NULL GROUP BY path", [lo, hi]))
    rows = _table(page, "pages")
    assert rows and all(want[r[0]] == _int(r[1]) for r in rows)
    page.shot("console-dashboard")
    page.watch.check()


# --- issue 23: the dashboard's details ---------------------------------------------------------

@pytest.fixture
def cdn_db(tmp_path):
    from tests.test_report import CF_CASES, cf_log

    db = tmp_path / "cdn.duckdb"
    con = connect(db)
    from logferry.usage import ingest

    ingest(con, [str(cf_log(tmp_path / "E1.2024-03-02-09.abc", CF_CASES))])
    yield con
    con.close()


def test_cdn_statuses_regardless_of_case_and_edges_by_place(cdn_db, tmp_path, page):
    d = dashboard_data(cdn_db)
    cache, _ = _cube_total(d, "cache")
    assert cache == {"hit": 4, "miss": 2}
    c = d["cube"]["dims"]["cache"]
    assert c["raw"][c["keys"].index("hit")] == [["Hit", 2], ["HIT", 1], ["hit", 1]]
    edges, e = _cube_total(d, "edge")
    assert edges == {"FRA": 4, "LHR": 2}  # FRA56-C1, FRA and fra2 are one place
    assert e["raw"][e["keys"].index("FRA")] == [["FRA56-C1", 2], ["FRA", 1], ["fra2", 1]]
    out = tmp_path / "cdn.html"
    out.write_text(render_dashboard(d))
    _open(page, out.as_uri() + "#cdn")
    rows = _table(page, "cache_status")
    assert [(r[0], _int(r[1])) for r in rows] == [("Hit", 4), ("MISS", 2)]  # the most frequent spelling
    rows = _table(page, "edges")
    assert [(r[0], _int(r[1])) for r in rows] == [("FRA", 4), ("LHR", 2)]
    first = page.locator("section.panel.on [data-table=edges] tbody tr td").first
    assert first.get_attribute("title") == "FRA56-C1: 2\nFRA: 1\nfra2: 1"  # the raw names, most requests first
    page.watch.check()


def test_visitors_card_after_a_zoom_in_the_report_file(page, demo):
    _open(page, (demo / "report.html").as_uri())
    _drag(page, "requests", 0.2, 0.45)
    lo, hi = _range(page)
    v = _sql(demo, 'SELECT count(DISTINCT hash(CAST("timestamp" AS DATE), client_ip, user_agent)) '
                   'FROM requests WHERE "timestamp" >= ? AND "timestamp" < ?', [lo, hi])[0][0]
    shown = _card(page, "visitors")
    assert shown.startswith("\u2248 ")  # an estimate, said so
    est = _int(shown[2:])
    assert 0 < v and abs(est - v) <= max(2, 0.06 * v), (est, v)
    page.locator("nav.side a[data-panel=visitors]").click()
    assert _card(page, "visitors2") == shown
    page.locator("#reset").click()
    page.locator("nav.side a[data-panel=summary]").click()
    total = _sql(demo, 'SELECT count(DISTINCT hash(CAST("timestamp" AS DATE), client_ip, user_agent)) '
                       'FROM requests')[0][0]
    assert _card(page, "visitors") == f"{total:,}"  # the whole period: exact
    page.watch.check()


def test_short_range_x_axis_labels_differ(page, tmp_path):
    rows = [(f"12:{m:02d}:{s:02d}", "A", f"/p{s % 3}", "1.1.1.1", CHROME, 200) for m in (0, 1) for s in range(0, 60, 2)]
    log = _iis(tmp_path / "u_ex240301.log", rows)
    out = tmp_path / "short.html"
    r = CliRunner().invoke(app, ["report", str(log), "--html", str(out)])
    assert r.exit_code == 0, r.output
    _open(page, out.as_uri())
    labels = page.locator("[data-chart=requests]").get_attribute("data-x-labels").split("|")
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert any(re.search(r"12:00:\d\d", x) for x in labels)
    page.watch.check()


def test_a_report_file_says_what_it_was_filtered_to(page, tmp_path):
    """``report ... --site shop-42 --html shop-42.html``: the page names the site (and the
    other filters) in its header -- it has no filter controls, and said only the period."""
    rows = [(f"10:0{i}:00", "<b>shop-42</b>" if i % 2 else "B", "/", "1.1.1.1", CHROME, 200) for i in range(6)]
    log = _iis(tmp_path / "u_ex240301.log", rows)
    for n, (args, scope) in enumerate(((["--site", "<b>shop-42</b>", "--no-bots"], "site <b>shop-42</b> \u00b7 no bots"),
                                       ([], None))):
        out = tmp_path / f"r{n}.html"
        r = CliRunner().invoke(app, ["report", str(log), "--html", str(out), *args])
        assert r.exit_code == 0, r.output
        _open(page, out.as_uri())
        assert page.locator("#scope").all_inner_texts() == ([scope] if scope else [])
    page.watch.check()


def test_uptime_timeline_colours_are_explained(page, demo):
    _open(page, (demo / "report.html").as_uri() + "#uptime")
    legend = page.locator("section.panel.on [data-legend=uptime] span")
    assert legend.all_inner_texts() == ["up", "up, with server errors (5xx)", "down", "no requests"]
    colours = set(legend.evaluate_all("ss => ss.map(s => getComputedStyle(s.querySelector('i')).backgroundColor)"))
    used = set(page.locator("section.panel.on [data-chart=uptime] div").evaluate_all(
        "ds => ds.map(d => getComputedStyle(d).backgroundColor)"))
    assert used and used <= colours  # every colour of the timeline is in the legend
    page.watch.check()


def _fits(page, width):
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_every_panel_fits_a_420px_screen(page, demo):
    page.set_viewport_size({"width": 420, "height": 860})
    _open(page, (demo / "report.html").as_uri())
    links = page.locator("nav.side a")
    for i in range(links.count()):
        name = links.nth(i).get_attribute("data-panel")
        links.nth(i).click()
        page.locator(f"section[data-panel={name}]").wait_for(state="visible")
        assert _fits(page, 420), (name, page.evaluate("document.documentElement.scrollWidth"))
    page.shot("narrow-sites")
    page.watch.check()


def test_report_file_keeps_its_zoom_in_the_url(page, demo):
    _open(page, (demo / "report.html").as_uri() + "#pages")
    page.locator("nav.side a[data-panel=summary]").click()
    _drag(page, "requests", 0.2, 0.45)
    lo, hi = _range(page)
    page.locator("nav.side a[data-panel=pages]").click()
    # the link's own hash navigation lands first; the hashchange handler then writes the zoom
    page.wait_for_function("() => location.hash.startsWith('#pages') && location.hash.includes('since=')")
    assert "since=" in page.url and "#pages" in page.url
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert _range(page) == (lo, hi) and page.locator("section.panel.on").get_attribute("data-panel") == "pages"
    assert page.locator("#reset").is_visible()
    page.watch.check()


def test_console_dashboard_has_the_console_nav_and_keeps_filters_and_zoom_in_the_url(page, demo, console):
    login, base = console
    browser_login(page, login)
    _open(page, base + "/dashboard")
    nav = page.locator("header.console nav a")
    assert nav.evaluate_all("as => as.map(a => a.id)") == ["nav-exports", "nav-new", "nav-history", "nav-dashboard",
                                                           "nav-alerts", "nav-api"]
    sites = page.locator("#f-site option").evaluate_all("os => os.map(o => o.value)")
    site = sites[1]
    with page.expect_response(lambda r: "/api/report?" in r.url):
        page.locator("#f-site").select_option(site)
    page.wait_for_function("() => !document.body.hasAttribute('data-loading')")
    with page.expect_response(lambda r: "/api/report?" in r.url):
        _drag(page, "requests", 0.3, 0.5)
    page.wait_for_function("() => !document.body.hasAttribute('data-loading') && location.search.includes('since=')")
    page.locator("nav.side a[data-panel=pages]").click()
    lo, hi = _range(page)
    from urllib.parse import parse_qs, urlsplit

    u = urlsplit(page.url)
    q = parse_qs(u.query)
    assert q["site"] == [site] and "since" in q and "until" in q and u.fragment == "pages"
    n = _sql(demo, 'SELECT count(*) FROM requests WHERE "timestamp" >= ? AND "timestamp" < ? '
                   "AND coalesce(site, host) = ?", [lo, hi, site])[0][0]
    # a reload (or the link shared) shows the same: the site, the range, the panel
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#f-site").input_value() == site and _range(page) == (lo, hi)
    assert page.locator("section.panel.on").get_attribute("data-panel") == "pages"
    page.locator("nav.side a[data-panel=summary]").click()
    assert _int(_card(page, "requests")) == n and page.locator("#reset").is_visible()
    page.shot("console-dashboard-reloaded")
    # narrow: nothing wider than the screen, the console's links included
    page.set_viewport_size({"width": 420, "height": 860})
    page.wait_for_timeout(400)  # (the charts are drawn again after a resize settles)
    assert _fits(page, 420), page.evaluate("document.documentElement.scrollWidth")
    assert page.locator("#nav-api").is_visible()
    page.watch.check()


def test_console_api_link_opens_a_readable_page(page, console):
    login, base = console
    browser_login(page, login)
    _open(page, base + "/dashboard")
    with page.expect_navigation():
        page.locator("#nav-api").click()
    page.wait_for_selector("#swagger-ui .opblock", timeout=30_000)
    text = page.inner_text("#swagger-ui")
    assert "logferry console" in text and "/api/jobs" in text and "/api/report" in text
    page.shot("api-docs")
    page.watch.check()  # nothing loaded from off 127.0.0.1, no console error


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (8, 7)])
def test_report_html_gives_duckdb_a_thread_less_than_cores(monkeypatch, cores, threads):
    # (its two connections run a query each on their own threads besides DuckDB's workers)
    from logferry.usage import dashboard, reading

    monkeypatch.setattr(reading, "cpus", lambda: cores)
    assert dashboard.own_threads() == threads
