"""Each report against known answers on small inputs."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from click.testing import CliRunner

from logferry.cli import app
from logferry.samples import CF_FIELDS
from logferry.usage import connect, ingest
from logferry.usage.dashboard import dashboard_data
from logferry.usage.reports import REPORTS, Params, builtin, run

A = "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/120.0+Safari/537.36"
B = "Mozilla/5.0+(X11;+Linux+x86_64;+rv:121.0)+Gecko/20100101+Firefox/121.0"
C = "curl/8.4.0"
ROWS = [
    ("10:00:00", "/", "1.1.1.1", A, "-", 200, 1000, 10),
    ("10:01:00", "/a", "1.1.1.1", A, "https://ref.example/", 200, 2000, 20),
    ("10:02:00", "/old", "2.2.2.2", B, "https://blog.example/post", 404, 300, 30),
    ("10:03:00", "/old", "2.2.2.2", B, "https://blog.example/post", 404, 300, 40),
    ("10:04:00", "/gone", "3.3.3.3", C, "https://other.example/", 410, 100, 50),
    ("10:05:00", "/api", "1.1.1.1", A, "-", 500, 100, 60),
    ("10:06:00", "/api", "2.2.2.2", B, "-", 503, 100, 70),
    ("10:07:00", "/api", "3.3.3.3", C, "-", 200, 500, 80),
    ("10:30:00", "/", "1.1.1.1", A, "-", 200, 1000, 90),
    ("10:31:00", "/", "4.4.4.4", A, "-", 200, 1000, 100),
]
CF = [  # edge, bytes, result type, ttfb seconds
    ("FRA1", 100, "Hit", "0.010"), ("FRA1", 200, "Hit", "0.020"),
    ("LHR2", 300, "Miss", "0.100"), ("LHR2", 400, "RefreshHit", "0.030"),
]


def iis_log(path):
    lines = [
        "#Software: Microsoft Internet Information Services 10.0",
        "#Fields: date time s-sitename cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) cs(Referer) "
        "cs-host sc-status sc-bytes time-taken",
    ]
    for t, p, ip, ua, ref, st, b, ms in ROWS:
        lines.append(f"2024-03-01 {t} W3SVC1 GET {p} - {ip} {ua} {ref} www.example.com {st} {b} {ms}")
    path.write_text("\n".join(lines) + "\n")
    return path


def cf_log(path, rows=CF):
    lines = ["#Version: 1.0", "#Fields: " + CF_FIELDS]
    for i, (edge, b, res, ttfb) in enumerate(rows):
        lines.append("\t".join([
            "2024-03-02", f"09:00:0{i}", edge, str(b), "5.5.5.5", "GET", "d111.cloudfront.net", f"/s/{i}.js",
            "200", "-", "Mozilla/5.0", "-", "-", res, f"req{i}", "static.example.com", "https", "200",
            "0.050", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", res, "HTTP/2.0", "-", "-", "4000", ttfb, res,
            "text/javascript", str(b), "-", "-",
        ]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def iis_db(tmp_path):
    db = tmp_path / "r.duckdb"
    con = connect(db)
    s = ingest(con, [str(iis_log(tmp_path / "u_ex240301.log"))])
    assert s.records == 10 and s.bad_rows == 0
    yield con, db
    con.close()


def sec(data, report, section):
    return data["reports"][report]["sections"][section]


def test_every_report_is_one_sql_file_with_sections():
    for name in REPORTS:
        rep = builtin(name)
        assert rep.sections, name
        assert rep.description, name


def test_report_descriptions_are_for_people_not_about_the_sql():
    """A report's description (its SQL file's header) goes to users (--json); notes on how
    the SQL is written belong in the sections' comments."""
    words = ("quantile_cont", "any_value", "hash(", "count(DISTINCT", "SELECT", "one sort")
    for name in REPORTS:
        desc = builtin(name).description
        assert desc, name
        assert not [w for w in words if w in desc], (name, desc)


def test_no_report_reads_a_column_that_report_file_leaves_out():
    """``report FILE``'s temporary database has the UNREAD_COLUMNS null (its readers do not
    build them): no report, extra report or dashboard query may name one."""
    from pathlib import Path

    from logferry.schema import CANONICAL
    from logferry.usage import dashboard, ua
    from logferry.usage.reports import UNREAD_COLUMNS, _read, extra_reports

    assert UNREAD_COLUMNS < set(CANONICAL)
    texts = {n: _read(n) for n in (*REPORTS, "_views")}
    texts |= {r.name: "\n".join([*r.setup, *(sql for _, sql in r.sections)]) for r in extra_reports()}
    texts |= {m.__name__: Path(m.__file__).read_text() for m in (dashboard, ua)}
    assert any(r.startswith("snowplow_") for r in texts)
    for name, text in texts.items():
        named = {c for c in UNREAD_COLUMNS if re.search(rf"\b{c}\b", text)}
        assert not named, (name, named)


def test_summary(iis_db):
    con, _ = iis_db
    data = run(con, only=["summary"])
    (t,) = sec(data, "summary", "totals")
    assert (t["requests"], t["visitors"], t["bytes_sent"], t["span_seconds"], t["files"], t["bad_rows"]) == (
        10, 4, 6400, 1860.0, 1, 0)
    assert t["first_request"].isoformat() == "2024-03-01T10:00:00+00:00"
    assert t["last_request"].isoformat() == "2024-03-01T10:31:00+00:00"
    assert [(r["format"], r["files"], r["records"]) for r in sec(data, "summary", "formats")] == [("w3c", 1, 10)]


def test_status_and_errors(iis_db):
    con, _ = iis_db
    data = run(con, only=["status"])
    assert [(r["status"], r["requests"]) for r in sec(data, "status", "status_codes")] == [
        (200, 5), (404, 2), (410, 1), (500, 1), (503, 1)]
    assert [(r["class"], r["requests"], r["share"]) for r in sec(data, "status", "classes")] == [
        ("2xx", 5, 0.5), ("4xx", 3, 0.3), ("5xx", 2, 0.2)]
    assert [(r["path"], r["requests"], r["errors_4xx"], r["errors_5xx"], r["rate_5xx"])
            for r in sec(data, "status", "errors_by_path")] == [
        ("/api", 3, 0, 2, 0.6667), ("/old", 2, 2, 0, 0.0), ("/gone", 1, 1, 0, 0.0)]
    over = sec(data, "status", "errors_over_time")
    assert data["params"]["chart_bucket_minutes"] == 1
    assert sum(r["requests"] for r in over) == 10 and sum(r["errors_5xx"] for r in over) == 2
    assert [(r["bucket"].strftime("%H:%M"), r["errors_4xx"]) for r in over if r["errors_4xx"]] == [
        ("10:02", 1), ("10:03", 1), ("10:04", 1)]


def test_performance(iis_db):
    con, _ = iis_db
    data = run(con, only=["performance"])
    (o,) = sec(data, "performance", "overall")
    assert (o["requests"], o["p50_ms"], o["p90_ms"], o["p99_ms"], o["max_ms"], o["avg_ms"]) == (
        10, 55.0, 91.0, 99.1, 100.0, 55.0)
    slow = sec(data, "performance", "slowest_paths")
    assert [(r["path"], r["requests"], r["p50_ms"], r["max_ms"]) for r in slow] == [
        ("/", 3, 90.0, 100.0), ("/api", 3, 70.0, 80.0), ("/gone", 1, 50.0, 50.0), ("/old", 2, 35.0, 40.0),
        ("/a", 1, 20.0, 20.0)]
    assert sec(data, "performance", "slowest_requests")[0]["client_ip"] == "4.4.4.4"
    hist = {r["label"]: r["requests"] for r in sec(data, "performance", "histogram")}
    assert (hist["10-25 ms"], hist["25-50 ms"], hist["50-100 ms"], hist["100-250 ms"], hist["<10 ms"]) == (2, 2, 5, 1, 0)


def test_unavailable_links(iis_db):
    con, _ = iis_db
    data = run(con, only=["not_found"])
    assert [(r["path"], r["hits"], r["not_found_404"], r["gone_410"], r["visitors"])
            for r in sec(data, "not_found", "paths")] == [("/old", 2, 2, 0, 1), ("/gone", 1, 0, 1, 1)]
    assert [(r["path"], r["referer"], r["hits"]) for r in sec(data, "not_found", "referers")] == [
        ("/old", "https://blog.example/post", 2), ("/gone", "https://other.example/", 1)]


def test_uptime_errors_and_silence(iis_db):
    con, _ = iis_db
    data = run(con, only=["uptime"])
    (t,) = sec(data, "uptime", "totals")
    assert (t["buckets"], t["requests"], t["errors_5xx"], t["availability_pct"], t["down_buckets"], t["uptime_pct"]) == (
        7, 10, 2, 80.0, 5, 28.571)
    (w,) = sec(data, "uptime", "down_windows")
    assert (w["start"].strftime("%H:%M"), w["end"].strftime("%H:%M"), w["buckets"], w["requests"], w["errors_5xx"],
            w["reason"]) == ("10:05", "10:30", 5, 3, 2, "errors, no traffic")
    b = sec(data, "uptime", "buckets")
    assert [(r["bucket"].strftime("%H:%M"), r["requests"], r["availability"], r["down_reason"]) for r in b] == [
        ("10:00", 5, 1.0, None), ("10:05", 3, 0.3333, "errors"), ("10:10", 0, None, "no traffic"),
        ("10:15", 0, None, "no traffic"), ("10:20", 0, None, "no traffic"), ("10:25", 0, None, "no traffic"),
        ("10:30", 2, 1.0, None)]
    # a longer gap tolerance and a higher threshold: no down bucket at all
    data = run(con, Params(gap_buckets=4, threshold=0.7), only=["uptime"])
    assert sec(data, "uptime", "down_windows") == []
    # 10-minute buckets: 10:00 holds 2 of 8 requests as 5xx
    data = run(con, Params(bucket_minutes=10), only=["uptime"])
    assert [(r["bucket"].strftime("%H:%M"), r["requests"], r["errors_5xx"]) for r in sec(data, "uptime", "buckets")] == [
        ("10:00", 8, 2), ("10:10", 0, 0), ("10:20", 0, 0), ("10:30", 2, 0)]


def test_top_pages_agents_hours(iis_db):
    con, _ = iis_db
    data = run(con, only=["top"])
    assert [(r["path"], r["requests"], r["visitors"]) for r in sec(data, "top", "pages")] == [
        ("/", 3, 2), ("/api", 3, 3), ("/old", 2, 1), ("/a", 1, 1), ("/gone", 1, 1)]
    assert [(r["referer"], r["requests"]) for r in sec(data, "top", "referrers")] == [
        ("https://blog.example/post", 2), ("https://other.example/", 1), ("https://ref.example/", 1)]
    assert [(r["browser"], r["requests"]) for r in sec(data, "top", "browsers")] == [
        ("Chrome", 5), ("Firefox", 3), ("curl", 2)]
    assert [(r["os"], r["requests"]) for r in sec(data, "top", "operating_systems")] == [
        ("Windows", 5), ("Linux", 3), ("Other", 2)]
    assert [(r["kind"], r["requests"], r["visitors"]) for r in sec(data, "top", "bots")] == [
        ("humans", 8, 3), ("bots", 2, 1)]  # curl is a tool: crawlerdetect counts it as a bot
    hours = sec(data, "top", "hourly")
    assert len(hours) == 24 and hours[10]["requests"] == 10 and sum(h["requests"] for h in hours) == 10


def test_filters_since_until_site(iis_db):
    con, _ = iis_db
    t = sec(run(con, Params(since="2024-03-01T10:30:00Z"), only=["summary"]), "summary", "totals")[0]
    assert (t["requests"], t["visitors"]) == (2, 2)
    t = sec(run(con, Params(until="2024-03-01 10:02:00+00"), only=["summary"]), "summary", "totals")[0]
    assert t["requests"] == 2
    assert sec(run(con, Params(site="W3SVC1"), only=["summary"]), "summary", "totals")[0]["requests"] == 10
    assert sec(run(con, Params(site="www.example.com"), only=["summary"]), "summary", "totals")[0]["requests"] == 10
    assert sec(run(con, Params(site="other"), only=["summary"]), "summary", "totals")[0]["requests"] == 0


def test_cdn(tmp_path):
    con = connect(tmp_path / "c.duckdb")
    s = ingest(con, [str(cf_log(tmp_path / "E1.2024-03-02-09.abc"))])
    assert (s.files[0].format, s.records) == ("cloudfront", 4)
    data = run(con, only=["cdn"])
    (o,) = sec(data, "cdn", "overall")
    assert (o["requests"], o["hits"], o["hit_ratio"], o["bytes_sent"], o["bytes_from_cache"], o["ttfb_p50_ms"]) == (
        4, 3, 0.75, 1000, 700, 25.0)
    assert [(r["cache_status"], r["requests"]) for r in sec(data, "cdn", "by_cache_status")] == [
        ("Hit", 2), ("Miss", 1), ("RefreshHit", 1)]
    assert [(r["edge_location"], r["requests"], r["hit_ratio"], r["bytes_sent"]) for r in sec(data, "cdn", "by_edge")] == [
        ("FRA1", 2, 1.0, 300), ("LHR2", 2, 0.5, 700)]
    (site,) = sec(data, "cdn", "by_site")
    assert site["site"] in ("d111.cloudfront.net", "static.example.com") and site["requests"] == 4
    con.close()


#: cache statuses in three spellings (issue 23), edges of one place in two forms
CF_CASES = [("FRA56-C1", 100, "Hit", "0.010"), ("FRA", 200, "HIT", "0.020"), ("FRA56-C1", 300, "hit", "0.030"),
            ("fra2", 400, "Hit", "0.040"), ("LHR2", 500, "Miss", "0.050"), ("LHR2", 600, "MISS", "0.060")]


def test_cdn_cache_statuses_differing_in_case_are_one(tmp_path):
    con = connect(tmp_path / "c.duckdb")
    ingest(con, [str(cf_log(tmp_path / "E1.2024-03-02-09.abc", CF_CASES))])
    data = run(con, only=["cdn"])
    assert [(r["cache_status"], r["requests"], r["bytes_sent"]) for r in sec(data, "cdn", "by_cache_status")] == [
        ("Hit", 4, 1000), ("MISS", 2, 1100)]  # (the most frequent spelling; a tie: the first in order)
    con.close()


def test_shop_example_revenue_margin_funnel(tmp_path, corpus_path):
    con = connect(tmp_path / "s.duckdb")
    ingest(con, [str(corpus_path("spec-examples/shop19990907.log"))])
    data = run(con, only=["shop"])
    assert [(r["stage"], r["visitors"], r["events"], r["conversion"]) for r in sec(data, "shop", "funnel")] == [
        ("visitors", 1, 12, 1.0), ("searches", 0, 0, 0.0), ("product views", 1, 2, 1.0),
        ("add to basket", 1, 3, 1.0), ("orders", 1, 1, 1.0)]
    (r,) = sec(data, "shop", "revenue")
    assert (r["orders"], r["revenue"], r["margin"], r["units"], r["customers"]) == (
        1, Decimal("893.4800"), Decimal("263.7000"), 3, 1)
    assert [(p["product_id"], p["views"], p["added_to_basket"], p["units"], p["revenue"], p["margin"])
            for p in sec(data, "shop", "top_products")] == [
        ("10338", 0, 1, 1, Decimal("543.4800"), Decimal("108.7000")),
        ("10800-1", 1, 1, 1, Decimal("200.0000"), Decimal("75.0000")),
        ("10806", 0, 1, 1, Decimal("150.0000"), Decimal("80.0000")),
        ("10328", 1, 0, 0, 0, 0)]
    assert [(c["category"], c["revenue"]) for c in sec(data, "shop", "top_categories")] == [
        ("/Sports/Equipment", Decimal("543.4800")), ("/Language Courses", Decimal("200.0000")),
        ("/Electronics/Music", Decimal("150.0000"))]
    assert [(p["payment"], p["orders"]) for p in sec(data, "shop", "payment")] == [("5", 1)]
    assert [(p["shipping"], p["orders"], p["share"]) for p in sec(data, "shop", "shipping")] == [
        ("UPS - US 2nd Day Air", 1, 1.0)]
    con.close()


def test_cli_report_json_html_and_sql(iis_db, tmp_path):
    _, db = iis_db
    iis_db[0].close()
    r = CliRunner().invoke(app, ["report", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(REPORTS) <= set(data["reports"])
    assert data["reports"]["summary"]["sections"]["totals"][0]["requests"] == 10
    assert data["reports"]["uptime"]["sections"]["totals"][0]["availability_pct"] == 80.0
    r = CliRunner().invoke(app, ["report", "--db", str(db)])
    assert r.exit_code == 0 and "Uptime" in r.stdout and "/old" in r.stdout
    out = tmp_path / "r.html"
    r = CliRunner().invoke(app, ["report", "--db", str(db), "--html", str(out), "--since", "2024-03-01T10:00"])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert 'id="lf-data"' in html and "http-equiv=\"Content-Security-Policy\"" in html
    assert '"since":"2024-03-01T10:00:00+00:00"' in html
    r = CliRunner().invoke(app, ["sql", "--db", str(db), "--csv",
                                 "SELECT status, count(*) AS n FROM requests GROUP BY status ORDER BY status"])
    assert r.exit_code == 0, r.output
    assert r.stdout == "status,n\n200,5\n404,2\n410,1\n500,1\n503,1\n"
    r = CliRunner().invoke(app, ["sql", "--db", str(db), "--json", "SELECT path, duration_ms FROM requests WHERE line_number = 4"])
    assert [json.loads(x) for x in r.stdout.splitlines()] == [{"path": "/a", "duration_ms": 20.0}]
    r = CliRunner().invoke(app, ["report", "--db", str(db), "--since", "yesterday-ish"])
    assert r.exit_code != 0
    r = CliRunner().invoke(app, ["sql", "--db", str(db), "DELETE FROM requests"])
    assert r.exit_code == 2 and "read-only" in r.output.lower()


def test_terminal_tables_show_shares_as_percentages(iis_db):
    _, db = iis_db
    iis_db[0].close()
    r = CliRunner().invoke(app, ["report", "--db", str(db), "--only", "status"])
    assert r.exit_code == 0, r.output
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln.split()}
    assert rows["2xx"][-1] == "50%" and rows["4xx"][-1] == "30%" and rows["5xx"][-1] == "20%"
    assert rows["404"][-1] == "20%"
    assert "0.5" not in r.stdout.split()
    from logferry.usage.html import fmt_cell

    assert (fmt_cell("hit_ratio", 0.12345), fmt_cell("rate_5xx", 0), fmt_cell("requests", 0.5)) == \
        ("12.35%", "0%", "0.5")


def test_edge_rows_of_the_one_pass_queries():
    """The rewritten queries on rows at their edges: a missing and an empty user agent
    are one visitor, a row without a time is no visitor (and in no time bucket) but is
    counted by status; a missing status and path are a group of their own; the slowest
    requests tie at the top-th duration; the top pages tie on requests; no shop rows."""
    con = connect(":memory:")
    rows = [  # time, ip, agent, path, status, duration
        ("2024-03-01 10:00:00", "9.9.9.9", None, "/a", 200, 50.0),
        ("2024-03-01 11:00:00", "9.9.9.9", "", "/b", 404, 50.0),
        ("2024-03-01 12:00:00", None, "x", "/a", None, 100.0),
        ("2024-03-01 12:00:00", "", "x", None, 500, 50.0),
        (None, "8.8.8.8", "x", "/b", 503, None),
    ]
    con.executemany("INSERT INTO requests (\"timestamp\", client_ip, user_agent, path, status, duration_ms, "
                    "file_id, line_number) VALUES (CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?, ?, 1, ?)",
                    [(*r, i + 1) for i, r in enumerate(rows)])
    data = run(con, Params(top=2))
    assert sec(data, "summary", "totals")[0]["visitors"] == 2
    assert [(r["status"], r["requests"]) for r in sec(data, "status", "status_codes")] == [
        (200, 1), (404, 1), (500, 1), (503, 1), (None, 1)]
    assert [(r["class"], r["requests"]) for r in sec(data, "status", "classes")] == [
        ("2xx", 1), ("4xx", 1), ("5xx", 2), ("none", 1)]
    assert [(r["path"], r["requests"], r["errors_4xx"], r["errors_5xx"])
            for r in sec(data, "status", "errors_by_path")] == [("/b", 2, 1, 1), (None, 1, 0, 1)]
    assert [(r["bucket"].hour, r["requests"]) for r in sec(data, "status", "errors_over_time")][0] == (10, 1)
    assert sum(r["requests"] for r in sec(data, "status", "errors_over_time")) == 4
    assert [(r["path"], r["duration_ms"]) for r in sec(data, "performance", "slowest_requests")] == [
        ("/a", 100.0), ("/a", 50.0)]
    assert [(r["path"], r["requests"], r["visitors"]) for r in sec(data, "top", "pages")] == [
        ("/a", 2, 2), ("/b", 2, 1)]
    assert [(r["stage"], r["visitors"], r["events"]) for r in sec(data, "shop", "funnel")] == [
        ("visitors", 0, 0), ("searches", 0, 0), ("product views", 0, 0), ("add to basket", 0, 0), ("orders", 0, 0)]


def test_days_and_hours_before_1970_are_floored():
    """Time buckets divide epoch microseconds rounding down, before 1970 too: 23:30 on the
    last day of 1969 is hour 23 of that day (one visitor), 00:30 the next day another; in
    the report and in the dashboard's hour panel (they were hour -1, left out of the report)."""
    con = connect(":memory:")
    con.executemany("INSERT INTO requests (\"timestamp\", client_ip, user_agent, path, status, file_id, "
                    "line_number) VALUES (CAST(? AS TIMESTAMPTZ), '1.1.1.1', 'x', '/', 200, 1, ?)",
                    [("1969-12-31 23:30:00+00", 1), ("1970-01-01 00:30:00+00", 2)])
    data = run(con, Params(bucket_minutes=60, chart_bucket_minutes=60))
    assert sec(data, "summary", "totals")[0]["visitors"] == 2
    assert {r["hour"]: r["requests"] for r in sec(data, "top", "hourly") if r["requests"]} == {23: 1, 0: 1}
    assert [r["bucket"].isoformat() for r in sec(data, "status", "errors_over_time")] == [
        "1969-12-31T23:00:00+00:00", "1970-01-01T00:00:00+00:00"]
    assert sorted(dashboard_data(con)["cube"]["dims"]["hour"]["keys"]) == [0, 23]
