"""``logferry serve --lake``: the console's dashboard and /api/report on the lake's last
committed snapshot -- the same data as on the DuckDB file and as ``report --lake --json``,
site-scoped tokens as with --db, the store shown, answers while another process commits
(uvicorn as its own process), and the page in headless Chromium."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from tests.servers.servers import Serve, browser_login, free_port, until

from logferry.cli import app
from logferry.usage.source import UsageSource, shown
from logferry.web.app import create_app
from logferry.web.console import Console
from logferry.web.tokens import TokenStore

pytest.importorskip("pyiceberg")  # the extra `lake` (scripts/test installs it)


def iis(path, n: int, day: int, sites=("A", "B", "C")):
    """An IIS log with a site column (s-sitename): three sites, statuses, visitors, durations."""
    lines = ["#Software: Microsoft Internet Information Services 10.0",
             "#Fields: date time s-sitename cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) "
             "cs(Referer) cs-host sc-status sc-bytes time-taken"]
    for i in range(n):
        lines.append(f"2024-03-{day:02d} {i % 24:02d}:{i % 60:02d}:{i % 57:02d} {sites[i % len(sites)]} GET "
                     f"/p{i % 11} - 10.0.{i % 5}.{i % 7} Mozilla/5.0+({i % 3}) - www.example.com "
                     f"{(200, 200, 301, 404, 503)[i % 5]} {100 + i} {i % 97}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def cli(*args, ok=True):
    r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert r.exit_code == 0, r.output
    return r


@pytest.fixture
def stores(tmp_path):
    """The same two logs ingested into a lake and into a DuckDB file."""
    logs = [iis(tmp_path / "u_ex240301.log", 300, 1), iis(tmp_path / "u_ex240302.log", 200, 2)]
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", *logs, "--lake", lake)
    cli("ingest", *logs, "--db", db)
    return type("Stores", (), dict(tmp=tmp_path, logs=logs, lake=lake, db=db))


def client_for(tmp, name, usage):
    console = Console(tmp / f"{name}.toml", tmp / f"state-{name}", usage=usage)
    tokens = TokenStore(console.state_dir)
    toks = {"admin": tokens.create()[1], "A": tokens.create(["A"])[1]}
    return TestClient(create_app(console, tokens)), toks


def get(client, raw, url, **params):
    r = client.get(url, params=params, headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 200, r.text
    return r.json()


def without(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def test_api_report_on_the_lake_is_the_database_one_and_report_lake_json(stores):
    lake_client, lt = client_for(stores.tmp, "lake", UsageSource.lake(str(stores.lake)))
    db_client, dt = client_for(stores.tmp, "db", UsageSource.duckdb(str(stores.db)))
    for q in ({}, {"site": "B"}, {"since": "2024-03-01T12:00Z", "until": "2024-03-02T06:00Z", "status": "4,5"}):
        on_lake = get(lake_client, lt["admin"], "/api/report", **q)
        on_db = get(db_client, dt["admin"], "/api/report", **q)
        assert on_lake["store"]["kind"] == "lake" and on_db["store"]["kind"] == "duckdb"
        assert without(on_lake, "generated_at", "store") == without(on_db, "generated_at", "store"), q
    # and the reports are report --lake --json's (the dashboard's top-N is ROW_CAP)
    full = get(lake_client, lt["admin"], "/api/report")
    rep = json.loads(cli("report", "--lake", stores.lake, "--json", "--top", "10000").stdout)
    assert full["reports"].keys() == rep["reports"].keys()
    for name, r in rep["reports"].items():
        assert full["reports"][name]["sections"] == r["sections"], name
    assert full["reports"]["summary"]["sections"]["totals"][0]["requests"] == 500


def test_a_site_scoped_token_sees_only_its_site_on_the_lake(stores):
    client, toks = client_for(stores.tmp, "lake", UsageSource.lake(str(stores.lake)))
    mine = get(client, toks["A"], "/api/report")
    assert mine["choices"]["sites"] == ["A"]
    assert {k for k in mine["cube"]["dims"]["site"]["keys"]} == {"A"}
    site_a = json.loads(cli("report", "--lake", stores.lake, "--site", "A", "--json").stdout)
    want = site_a["reports"]["summary"]["sections"]["totals"][0]["requests"]
    assert mine["reports"]["summary"]["sections"]["totals"][0]["requests"] == want == 167
    # asking for another site gives nothing of it
    other = get(client, toks["A"], "/api/report", site="B")
    assert sum(other["cube"]["series"]["requests"]) == 0
    everyone = get(client, toks["admin"], "/api/report")
    assert everyone["choices"]["sites"] == ["A", "B", "C"]


def test_rows_without_a_site_keep_it_empty_on_the_lake_as_in_the_database(stores):
    """Rows with a host and no site are stored in the lake's partition of their host
    (folder site=HOST): reading them back, the site stays empty, as in the database -- a
    token scoped to a site named as that host does not see them on the lake either."""
    other = hosts_only(stores.tmp / "other.log", ("A", "z.example"), 40)
    cli("ingest", other, "--lake", stores.lake)
    cli("ingest", other, "--db", stores.db)
    q = "SELECT site, host, count(*) AS n FROM requests GROUP BY ALL ORDER BY ALL"
    rows = [cli("sql", store, where, "--json", q).stdout for store, where in
            (("--lake", stores.lake), ("--db", stores.db))]
    assert rows[0] == rows[1] and '"site": null, "host": "A"' in rows[0]
    lake_client, lt = client_for(stores.tmp, "lake", UsageSource.lake(str(stores.lake)))
    db_client, dt = client_for(stores.tmp, "db", UsageSource.duckdb(str(stores.db)))
    on_lake, on_db = get(lake_client, lt["A"], "/api/report"), get(db_client, dt["A"], "/api/report")
    assert without(on_lake, "generated_at", "store") == without(on_db, "generated_at", "store")
    assert on_lake["reports"]["summary"]["sections"]["totals"][0]["requests"] == 167


def test_api_status_names_the_store_and_the_lake_snapshot(stores):
    from logferry.lake.tables import Lake, Where

    client, toks = client_for(stores.tmp, "lake", UsageSource.lake(str(stores.lake)))
    st = get(client, toks["admin"], "/api/status")["store"]
    snap = Lake(Where.of(str(stores.lake))).table("files").current_snapshot()
    assert st["kind"] == "lake" and st["location"] == str(stores.lake)
    assert st["snapshot_id"] == snap.snapshot_id and st["snapshot_at"].endswith("Z")
    db_client, dt = client_for(stores.tmp, "db", UsageSource.duckdb(str(stores.db)))
    assert get(db_client, dt["admin"], "/api/status")["store"] == {"kind": "duckdb", "location": str(stores.db)}
    page = db_client.get("/dashboard", headers={"Authorization": f"Bearer {dt['admin']}"})
    assert 'id="store" data-kind="duckdb"' in page.text and "reads database" in page.text


def test_the_location_shown_has_no_credentials():
    assert shown("s3://AKIAX:s3cr3t@bucket/lake/?sig=abc#x") == "s3://bucket/lake/"
    assert shown("postgresql://ops:pw@db.internal:5432/cat?sslmode=require") == "postgresql://db.internal:5432/cat"
    assert shown("/srv/lake") == "/srv/lake"
    assert shown("sqlite:////srv/cat.db") == "sqlite:////srv/cat.db"
    assert shown("s3://[::1]:9000/b?X-Amz-Signature=1") == "s3://[::1]:9000/b"


def test_serve_refuses_lake_with_db_follow_or_no_lake(tmp_path):
    for args, msg in ((("--lake", tmp_path, "--db", tmp_path / "x.duckdb"), "not both"),
                      (("--lake", tmp_path, "--follow", "x.log"), "not with --lake"),
                      (("--catalog", tmp_path / "c.db"), "--catalog applies with --lake"),
                      (("--lake", tmp_path / "none"), "no lake")):
        r = cli("serve", "--config", tmp_path / "logferry.toml", "--port", free_port(), *args, ok=False)
        assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and msg in r.output, r.output
        assert "Traceback" not in r.output
    assert not (tmp_path / "x.duckdb").exists() and not (tmp_path / "none").exists()


PAUSED_INGEST = """
import os, sys, time
from logferry.lake import commit as cm
real, inside, go = cm._commit_manifest, sys.argv[1], sys.argv[2]
def paused(*a, **kw):
    open(inside, "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)
    return real(*a, **kw)
cm._commit_manifest = paused
from logferry.cli import main
sys.argv = ["logferry", *sys.argv[3:]]
main()
"""


def _totals(base, raw):
    r = httpx.get(base + "/api/report", headers={"Authorization": f"Bearer {raw}"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()["reports"]["summary"]["sections"]["totals"][0]["requests"], r.json()["store"]


def test_serve_answers_from_the_last_snapshot_while_another_process_commits(stores):
    """Readers never wait: an ingest in another process stopped inside its manifest commit
    (its data files committed) does not hold serve up, nor shows half; after it, the new rows."""
    srv = Serve(stores.tmp, "--config", str(stores.tmp / "none.toml"), "--lake", str(stores.lake),
                "--no-scheduler")
    raw = srv.login.split("token=", 1)[1]
    inside, go = stores.tmp / "inside", stores.tmp / "go"
    more = iis(stores.tmp / "u_ex240303.log", 120, 3)
    ing = subprocess.Popen([sys.executable, "-c", PAUSED_INGEST, str(inside), str(go), "ingest", more,
                            "--lake", str(stores.lake)], stderr=subprocess.PIPE, text=True)
    try:
        before, store = _totals(srv.base, raw)
        assert before == 500
        until(inside.exists)
        during, store2 = _totals(srv.base, raw)
        assert during == 500 and store2["snapshot_id"] == store["snapshot_id"]
        go.touch()
        assert ing.wait(120) == 0, ing.stderr.read()
        after, store3 = _totals(srv.base, raw)
        assert after == 620 and store3["snapshot_id"] != store["snapshot_id"]
    finally:
        go.touch()
        ing.wait(120)
        code, out = srv.stop(timeout=30)
    assert code == 0 and "Traceback" not in out, out


def _card(page, name):
    return page.locator(f"section.panel.on [data-card={name}] b").inner_text()


def test_the_dashboard_served_from_the_config_lake_in_chromium(page, stores):
    """``serve --config`` with a [lake] path: the page names the lake and its snapshot and
    shows report --lake --json's numbers."""
    cfg = stores.tmp / "logferry.toml"
    cfg.write_text('state_dir = "state"\n\n[lake]\npath = "lake"\n')
    srv = Serve(stores.tmp, "--config", str(cfg), "--no-scheduler")
    try:
        browser_login(page, srv.login)
        page.goto(srv.base + "/dashboard")
        page.wait_for_selector("body[data-ready]")
        store = page.locator("#store")
        assert store.get_attribute("data-kind") == "lake"
        text = store.inner_text()
        assert f"reads lake {stores.lake}" in text and "snapshot " in text
        rep = json.loads(cli("report", "--config", cfg, "--json").stdout)
        totals = rep["reports"]["summary"]["sections"]["totals"][0]
        assert int(_card(page, "requests").replace(",", "")) == totals["requests"] == 500
        assert int(_card(page, "visitors").replace(",", "")) == totals["visitors"]
        page.shot("dashboard-on-the-lake")
        page.watch.check()
    finally:
        code, out = srv.stop(timeout=30)
    assert code == 0, out


def test_a_dashboard_request_loads_each_table_once_and_sees_the_next_commit(stores):
    """One request for a site loads each table of the lake once (the manifest is read by
    its connection only: the site choices take its counted reads), and the next request
    loads them again: it sees what was committed meanwhile."""
    from collections import Counter

    from logferry.usage.dashboard import Filters

    src = UsageSource.lake(str(stores.lake))
    loads: Counter = Counter()
    real = src._lake.catalog.load_table

    def counted(ident):
        loads[ident[1]] += 1
        return real(ident)

    src._lake.catalog.load_table = counted
    first = src.dashboard(Filters(sites=["B"]))
    assert loads and set(loads.values()) == {1}, loads
    assert first["choices"]["sites"] == ["A", "B", "C"]
    cli("ingest", iis(stores.tmp / "u_ex240303.log", 30, 3, sites=("B", "D")), "--lake", stores.lake)
    again = src.dashboard(Filters(sites=["B"]))
    assert loads["files"] == 2 and again["choices"]["sites"] == ["A", "B", "C", "D"]
    assert again["reports"]["summary"]["sections"]["totals"][0]["requests"] == (
        first["reports"]["summary"]["sections"]["totals"][0]["requests"] + 15)


def hosts_only(path, hosts, n: int) -> str:
    """A W3C log with a host (cs-host) on each line and no site column."""
    path.write_text("#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs-host\n" + "".join(
        f"2024-03-01 {i % 24:02d}:00:00 10.0.0.{i % 9} GET /v{i % 4} {(200, 404)[i % 2]} {10 + i} "
        f"{hosts[i % len(hosts)]}\n" for i in range(n)))
    return str(path)


def test_api_overview_is_report_lake_rollups_and_a_scoped_token_sees_its_sites_only(stores):
    """/api/overview: every site from the rollups, as ``report --lake --rollups --json``
    gives them; a token scoped to A sees A's rows, and not a host named A of rows that
    have no site (a W3C log without s-sitename), which the rollups keep apart."""
    cli("ingest", hosts_only(stores.tmp / "other.log", ("A", "z.example"), 40), "--lake", stores.lake)
    client, toks = client_for(stores.tmp, "lake", UsageSource.lake(str(stores.lake)))
    for q, flags in (({}, ()), ({"since": "2024-03-01T06:00Z", "until": "2024-03-02T12:00Z"},
                                ("--since", "2024-03-01T06:00Z", "--until", "2024-03-02T12:00Z"))):
        every = get(client, toks["admin"], "/api/overview", **q)
        want = json.loads(cli("report", "--lake", stores.lake, "--rollups", "--json", *flags).stdout)
        assert without(every, "generated_at") == without(want, "generated_at"), q
    every = get(client, toks["admin"], "/api/overview")
    by_site = {s["site"]: s for s in every["sites"]}
    assert set(by_site) == {"A", "B", "C", "z.example"}
    mine = get(client, toks["A"], "/api/overview")
    assert [s["site"] for s in mine["sites"]] == ["A"]
    # (A's own rows only, as its dashboard counts them: the IIS rows of site A, not the
    # rows whose host is A and that have no site)
    exact = json.loads(cli("sql", "--lake", stores.lake, "--json",
                           "SELECT count(*) AS n FROM requests WHERE site = 'A'").stdout)["n"]
    assert mine["sites"][0]["requests"] == exact == 167 < by_site["A"]["requests"] == 187
    dash = get(client, toks["A"], "/api/report")
    assert dash["reports"]["summary"]["sections"]["totals"][0]["requests"] == 167


def test_api_overview_on_a_database_says_it_needs_the_lake(stores):
    client, toks = client_for(stores.tmp, "db", UsageSource.duckdb(str(stores.db)))
    r = client.get("/api/overview", headers={"Authorization": f"Bearer {toks['admin']}"})
    assert r.status_code == 409 and "--lake" in r.json()["detail"]
    r = client.get("/api/overview", params={"since": "yesterday-ish"},
                   headers={"Authorization": f"Bearer {toks['admin']}"})
    assert r.status_code in (409, 422)


def test_a_lake_data_file_that_cannot_be_read_is_a_503_in_one_line(stores):
    """A data file gone (object storage not answering is the same error): the overview
    and the dashboard say they cannot read the lake (503, one line), as /api/report did;
    /api/overview answered 500 with a traceback in the console's log."""
    client, toks = client_for(stores.tmp, "lake", UsageSource.lake(str(stores.lake)))
    h = {"Authorization": f"Bearer {toks['admin']}"}
    for f in (stores.lake / "logferry" / "rollups" / "data").iterdir():
        f.unlink()
    r = client.get("/api/overview", headers=h)
    assert r.status_code == 503 and r.json()["detail"].startswith("cannot read the usage lake: ")
    assert "\n" not in r.json()["detail"] and "Traceback" not in r.text
    page = client.get("/overview", headers=h)
    assert page.status_code == 503 and "cannot read the usage lake" in page.text
    for f in (stores.lake / "logferry" / "requests" / "data").rglob("*.parquet"):
        f.unlink()
    r = client.get("/api/report", headers=h)
    assert r.status_code == 503 and r.json()["detail"].startswith("cannot read the usage lake: ")


def test_the_overview_page_in_chromium_lists_every_site_and_opens_its_dashboard(page, stores):
    """The nav's Overview (shown on a lake) lists each site with the rollups' figures, the
    site names escaped, and a site's link opens its exact dashboard."""
    hostile = '<img+src=x+onerror="window.owned=1">&x'  # (W3C: no spaces in a field)
    cli("ingest", hosts_only(stores.tmp / "other.log", (hostile,), 20), "--lake", stores.lake)
    srv = Serve(stores.tmp, "--lake", str(stores.lake), "--no-scheduler")
    try:
        browser_login(page, srv.login)
        page.goto(srv.base + "/")
        page.click("#nav-overview")
        page.wait_for_selector("#sites")
        rows = page.locator("#sites tbody tr")
        assert rows.count() == 4
        assert page.locator("#store").inner_text().startswith(f"reads lake {stores.lake} · snapshot ")
        want = json.loads(cli("report", "--lake", stores.lake, "--rollups", "--json").stdout)
        for s in want["sites"]:
            row = page.locator(f"#sites tbody tr[data-site='{s['site']}']") if s["site"] != hostile else \
                rows.filter(has_text="onerror")
            assert int(row.locator("td.requests").inner_text().replace(",", "")) == s["requests"]
        assert page.evaluate("window.owned") is None  # (the name was text, not markup)
        assert rows.filter(has_text="onerror").locator("a").inner_text() == hostile
        page.click("#sites tbody tr[data-site='B'] a")
        page.wait_for_selector("body[data-ready]")
        assert "site=B" in page.url
        assert int(_card(page, "requests").replace(",", "")) == next(
            s["requests"] for s in want["sites"] if s["site"] == "B")
        page.shot("overview-on-the-lake")
        page.watch.check()
    finally:
        code, out = srv.stop(timeout=30)
    assert code == 0, out


def test_the_dashboard_on_the_lake_shows_a_new_commit_by_itself(page, stores):
    """Live on the lake: the page looks at the lake's snapshot every 5 s and, after another
    process commits an ingest, shows the new rows and names the new snapshot, with its
    site filter kept."""
    srv = Serve(stores.tmp, "--lake", str(stores.lake), "--no-scheduler")
    try:
        browser_login(page, srv.login)
        page.goto(srv.base + "/dashboard?site=A,B")
        page.wait_for_selector("body[data-ready]")
        before = page.locator("#store").inner_text()
        assert int(_card(page, "requests").replace(",", "")) == 334  # (A and B of the 500 lines)
        cli("ingest", iis(stores.tmp / "u_ex240303.log", 90, 3), "--lake", stores.lake)
        page.wait_for_function("() => document.querySelector('#store') && "
                               f"document.querySelector('#store').innerText !== {json.dumps(before)}", timeout=30_000)
        page.wait_for_selector("body[data-ready]")
        assert int(_card(page, "requests").replace(",", "")) == 334 + 60
        assert "site=A" in page.url
        page.watch.check()
    finally:
        code, out = srv.stop(timeout=30)
    assert code == 0, out
