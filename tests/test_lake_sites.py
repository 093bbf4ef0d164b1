"""``report --lake --each-site DIR``: every site's report, one document a site, made in
this process or on a real Dask LocalCluster (2 worker processes): each site's JSON is
``report --lake --site SITE --json``'s; site names (from logs: hostile) make safe file
names and escaped titles."""

from __future__ import annotations

import json
import os

import pytest
from tests.test_lake import cli

pytest.importorskip("pyiceberg")

HOSTS = ("a.example", "../../escape", "<b>x</b>", "c%d")


@pytest.fixture
def lake(tmp_path):
    """A lake of four sites (hosts: no s-sitename) on two days, from two ingests."""
    lake = tmp_path / "lake"
    for r in range(2):
        log = tmp_path / f"u_ex{r}.log"
        log.write_text("#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs(User-Agent) cs-host\n" + "".join(
            f"2024-03-0{1 + i % 2} 1{i % 10}:{i % 60:02d}:0{r} 10.0.{r}.{i % 7} GET /p{i % 5} {(200, 404, 500)[i % 3]} "
            f"{100 + i} agent/{i % 4} {HOSTS[i % 4]}\n" for i in range(80)))
        cli("ingest", log, "--lake", lake)
    return lake


def _json(text: str) -> dict:
    d = json.loads(text)
    d.pop("generated_at")
    return d


@pytest.mark.parametrize("workers", [None, "2"])
def test_each_sites_json_is_its_own_report(tmp_path, lake, workers):
    out = tmp_path / "sites"
    r = cli("report", "--lake", lake, "--each-site", out, "--json", *(["--workers", workers] if workers else []))
    assert r.stdout == "" and "4 site reports in" in r.stderr, r.output
    from logferry.lake.sites import site_file

    names = sorted(os.listdir(out))
    assert names == sorted(site_file(h, False) for h in HOSTS)
    assert all("/" not in n and n not in (".", "..") for n in names)
    from logferry.usage.reports import leave_out_lake_wide

    for host in HOSTS:
        got = _json((out / site_file(host, False)).read_text())
        want = _json(cli("report", "--lake", lake, "--site", host, "--json").stdout)
        leave_out_lake_wide(want["reports"])  # (a tenant's: the lake's files, formats, totals of lines not in it)
        assert got == want
        assert got["reports"]["summary"]["sections"]["totals"][0]["requests"] == 40
        assert "files" not in got["reports"]["summary"]["sections"]


def test_a_sites_report_names_no_other_tenants_log(tmp_path):
    """Each site's document goes to its tenant: the lake's files list (every tenant's log
    names and line counts) is not in it, in JSON or in the page; the site's own rows are."""
    lake, out = tmp_path / "lake", tmp_path / "out"
    for tenant in ("acme", "globex"):
        log = tmp_path / f"{tenant}-private-2024-03-01.log"
        log.write_text("#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs-host\n"
                       f"2024-03-01 10:00:00 10.0.0.1 GET /{tenant}-page 200 5 {tenant}.example\n")
        cli("ingest", log, "--lake", lake)
    cli("report", "--lake", lake, "--each-site", out / "json", "--json")
    cli("report", "--lake", lake, "--each-site", out / "html")
    for fmt in ("json", "html"):
        for tenant, other in (("acme", "globex"), ("globex", "acme")):
            text = (out / fmt / f"{tenant}.example.{fmt}").read_text()
            assert f"/{tenant}-page" in text and other not in text, (fmt, tenant)
    whole = cli("report", "--lake", lake, "--site", "acme.example", "--json").stdout
    assert "globex-private" in whole  # (--site reports on the lake for its operator: the files list kept)


def test_each_sites_page_is_titled_with_the_site_escaped(tmp_path, lake):
    out = tmp_path / "pages"
    cli("report", "--lake", lake, "--each-site", out, "--only", "summary")
    from logferry.lake.sites import site_file

    page = (out / site_file("<b>x</b>", True)).read_text()
    assert "<title>logferry report: &lt;b&gt;x&lt;/b&gt;</title>" in page and "<b>x</b>" not in page
    assert len(os.listdir(out)) == 4 and not (tmp_path / "escape.html").exists()


@pytest.mark.parametrize("args, message", [
    (["--each-site", "DIR"], "--each-site applies with --lake"),
    (["--lake", "LAKE", "--each-site", "DIR", "--site", "a.example"], "not with --site, --html or --rollups"),
    (["--lake", "LAKE", "--each-site", "DIR", "--html", "x.html"], "not with --site, --html or --rollups"),
    (["--lake", "LAKE", "--workers", "2"], "--workers and --cluster apply with --each-site"),
    (["--lake", "LAKE", "--each-site", "FILE"], "not a folder"),
])
def test_each_site_mistakes_are_one_error_line(tmp_path, lake, args, message):
    (tmp_path / "file").write_text("x")
    sub = {"DIR": str(tmp_path / "d"), "LAKE": str(lake), "FILE": str(tmp_path / "file")}
    r = cli("report", *[sub.get(a, a) for a in args], ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and message in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "d").exists()


def test_a_lake_whose_data_files_predate_a_column_reads_it_as_null(tmp_path, monkeypatch):
    """A lake written before a column was added (an older logferry): the table gains the
    column at the next ingest, but a site's data files may all lack it -- ``report --lake
    --site`` and ``sql --lake`` failed with DuckDB's binder error (a traceback)."""
    from logferry.lake import tables

    lake = tmp_path / "lake"
    old = tables.REQUESTS.remove(tables.REQUESTS.get_field_index("ttfb_ms"))
    with monkeypatch.context() as m:
        m.setitem(tables._SCHEMAS, "requests", old)
        tables.schema.cache_clear()
        log = tmp_path / "u_ex1.log"
        log.write_text("#Fields: date time s-sitename c-ip cs-method cs-uri-stem sc-status sc-bytes\n"
                       "2024-03-01 10:00:00 W3SVC1 10.0.0.1 GET /a 200 5\n")
        cli("ingest", log, "--lake", lake)
    tables.schema.cache_clear()
    later = tmp_path / "u_ex2.log"  # (another site: the column added, the first site's files without it)
    later.write_text("#Fields: date time s-sitename c-ip cs-method cs-uri-stem sc-status sc-bytes\n"
                     "2024-03-02 10:00:00 W3SVC2 10.0.0.2 GET /b 200 7\n")
    cli("ingest", later, "--lake", lake)
    got = json.loads(cli("report", "--lake", lake, "--site", "W3SVC1", "--json").stdout)
    assert got["reports"]["summary"]["sections"]["totals"][0]["requests"] == 1
    q = "SELECT site, ttfb_ms FROM requests ORDER BY site"
    rows = [json.loads(line) for line in cli("sql", "--lake", lake, "--json", q).stdout.splitlines()]
    assert rows == [{"site": "W3SVC1", "ttfb_ms": None}, {"site": "W3SVC2", "ttfb_ms": None}]


def test_a_site_named_empty_or_with_a_leading_dot_is_no_hidden_file(tmp_path):
    """A site's file is no dotfile (a ``*.json`` glob, ``ls``, a file manager skip those):
    the empty site (a CSV's empty server column) was ``.json``, ``.hidden`` ``.hidden.json``;
    the names stay one a site."""
    from logferry.lake.sites import site_file

    odd = ["", ".", "..", ".hidden", "%2Ehidden", "~", "." * 300]
    names = [site_file(s, html) for s in odd for html in (False, True)]
    assert not [n for n in names if n.startswith(".")], names
    assert len(set(names)) == len(names) and all("/" not in n and len(n.encode()) < 255 for n in names)
    assert site_file("a.example", False) == "a.example.json"  # (a name as it was)
    lake = tmp_path / "lake"
    log = tmp_path / "db20240301_001.csv"
    log.write_text("server,s-date,s-time,c-ip,s-method,s-host,s-path,s-status,s-byte\n"
                   '"","2024/03/01","08:01:38","10.1.0.20","GET","intranet.example","/a","200","5"\n'
                   '"proxy01","2024/03/01","08:01:39","10.1.0.21","GET","intranet.example","/b","404","6"\n')
    cli("ingest", log, "--lake", lake)
    out = tmp_path / "sites"
    r = cli("report", "--lake", lake, "--each-site", out, "--json")
    assert "2 site reports" in r.stderr and sorted(os.listdir(out)) == sorted([site_file("", False), "proxy01.json"])
    got = json.loads((out / site_file("", False)).read_text())
    assert got["reports"]["summary"]["sections"]["totals"][0]["requests"] == 1


def test_sites_differing_only_in_case_get_files_of_their_own_anywhere(tmp_path):
    """``A.example`` and ``a.example`` are two sites: on a file system that ignores case
    (macOS, Windows shares) one's file would replace the other's, so both get a digest."""
    from logferry.lake.sites import site_file, site_files

    names = site_files(["A.example", "a.example", "b.example"], False)
    assert names["b.example"] == site_file("b.example", False)
    assert len({n.lower() for n in names.values()}) == 3 and names["A.example"].startswith("A.example~")
    lake, out = tmp_path / "lake", tmp_path / "out"
    log = tmp_path / "u_ex1.log"
    log.write_text("#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs-host\n"
                   "2024-03-01 10:00:00 10.0.0.1 GET /upper 200 5 A.example\n"
                   "2024-03-01 10:00:01 10.0.0.2 GET /lower 200 5 a.example\n")
    cli("ingest", log, "--lake", lake)
    cli("report", "--lake", lake, "--each-site", out, "--json")
    got = {n: (out / n).read_text() for n in os.listdir(out)}
    assert len(got) == 2 and {n.lower() for n in got} == {n.lower() for n in site_files(["A.example", "a.example"], False).values()}
    assert "/upper" in got[names["A.example"]] and "/lower" in got[names["a.example"]]


def test_workers_and_cluster_together_are_one_error_line_for_every_command(tmp_path, lake):
    for args in (["report", "--lake", lake, "--each-site", tmp_path / "o"], ["lake", "compact", lake]):
        r = cli(*args, "--workers", "2", "--cluster", "tcp://127.0.0.1:9", ok=False)
        assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "give one" in r.output, r.output
    assert not (tmp_path / "o").exists()
