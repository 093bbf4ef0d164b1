"""The lake scaled out: reads on a real Dask LocalCluster (2 worker processes), data files
in moto's S3 server, two ingesters at once on overlapping inputs -- every row once, and
the same report as the DuckDB file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests.test_lake import cli, in_place, logs, report  # noqa: F401  (logs: the fixture)

pytest.importorskip("pyiceberg")
distributed = pytest.importorskip("distributed")


@pytest.fixture
def s3(monkeypatch):
    from tests.servers import servers as S

    srv = S.S3Server()
    try:
        for k, v in srv.env().items():
            monkeypatch.setenv(k, v)
        srv.make_bucket("lake")
        yield srv
    finally:
        srv.stop()


def test_two_workers_write_the_data_files_to_s3_and_the_report_is_the_databases(tmp_path, logs, s3):  # noqa: F811
    import boto3

    lake, catalog, db = "s3://lake/usage", tmp_path / "catalog.db", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", *logs, "--lake", lake, "--catalog", catalog, "--workers", "2", "--json").stdout)
    assert s["new"] == len(logs) and s["errors"] == 0
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake, "--catalog", catalog) == report("--db", db)
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
            .list_objects_v2(Bucket="lake", Prefix="usage/logferry/requests/data/")["Contents"]]
    assert keys and all(k.endswith(".parquet") and "/site=" in k and "/day=" in k for k in keys), keys
    from logferry.lake.query import connect_lake
    from logferry.lake.tables import Lake, Where

    con = connect_lake(Lake(Where.of(lake, str(catalog))), None)  # DuckDB reads s3:// through s3fs
    assert "'s3://lake/usage/logferry/requests/data/site=" in in_place(con)["requests"]
    assert con.cursor().execute("SELECT count(*) FROM requests").fetchall() == [(s["records"],)]
    again = json.loads(cli("ingest", *logs, "--lake", lake, "--catalog", catalog, "--workers", "2",
                           "--json").stdout)
    assert (again["new"], again["records"]) == (0, 0)


def test_an_ingest_into_a_missing_bucket_leaves_no_catalog_behind(tmp_path, logs, s3):  # noqa: F811
    """The bucket is not there: one error line, and no catalog half made (before, its
    namespace without tables was left, and every read of it was a traceback)."""
    catalog = tmp_path / "catalog.db"
    out, err = (p := _ingest(logs[0], "--lake", "s3://no-such-bucket/lake", "--catalog", str(catalog))).communicate(
        timeout=120)
    assert p.returncode == 2 and err.decode().startswith("logferry: error: ") and b"NO_SUCH_BUCKET" in err, err
    assert not catalog.exists()
    r = cli("lake", "status", "s3://no-such-bucket/lake", "--catalog", catalog, ok=False)
    assert r.exit_code == 2 and "no lake here" in r.output
    s3.make_bucket("no-such-bucket")
    s = json.loads(cli("ingest", logs[0], "--lake", "s3://no-such-bucket/lake", "--catalog", catalog, "--json").stdout)
    assert s["new"] == 1 and s["errors"] == 0


def test_an_object_storage_lake_needs_no_catalog_flag(tmp_path, logs, s3, monkeypatch):  # noqa: F811
    """``ingest s3://... --lake s3://acme-lake/logferry/`` as the issue writes it: the SQLite
    catalog is a file of this machine per lake URL (before: "needs --catalog", exit 2)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    s = json.loads(cli("ingest", *logs[-2:], "--lake", "s3://lake/nocat/", "--json").stdout)
    assert s["new"] == 2 and s["errors"] == 0
    [catalog] = (tmp_path / "data" / "logferry" / "lakes").iterdir()
    assert catalog.suffix == ".db"
    assert report("--lake", "s3://lake/nocat") == report("--lake", "s3://lake/nocat/", "--catalog", catalog)
    assert cli("lake", "status", "s3://lake/nocat").output.startswith(f"lake s3://lake/nocat, catalog {catalog}\n")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))
    r = cli("report", "--lake", "s3://lake/nocat/", "--json", ok=False)
    assert r.exit_code == 2 and "no lake here" in r.output and "--catalog" in r.output
    # another machine (no catalog there) ingesting into it would make a second catalog of it
    r = cli("ingest", *logs[-2:], "--lake", "s3://lake/nocat/", ok=False)
    assert r.exit_code == 2 and "a lake is already there" in r.output and "give its --catalog" in r.output
    assert not (tmp_path / "elsewhere").exists()


def test_workers_print_no_dask_chatter(tmp_path, logs):  # noqa: F811
    """``ingest --workers 2`` prints logferry's lines only: a line per file and the summary
    (before: the local scheduler's and nannies' INFO log, about 30 lines)."""
    p = subprocess.run([sys.executable, "-m", "logferry.cli", "ingest", *logs[-2:], "--lake", str(tmp_path / "l"),
                        "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 3 and all(ln.startswith(tuple(logs[-2:])) for ln in lines[:2]), p.stderr
    assert lines[2].startswith("2 files (2 new"), p.stderr


def _ingest(*args: str) -> subprocess.Popen:
    code = "import sys; from logferry.cli import main; sys.argv[0] = 'logferry'; main()"
    return subprocess.Popen([sys.executable, "-c", code, "ingest", *args, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))


def test_two_ingesters_at_once_on_overlapping_inputs_store_every_row_once(tmp_path, logs):  # noqa: F811
    """One on a Dask scheduler (--cluster), one in its own process, started together on
    inputs that overlap: both finish, and the lake holds each file's rows once."""
    lake, db = str(tmp_path / "lake"), tmp_path / "u.duckdb"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        a = _ingest(*logs[:5], "--lake", lake, "--cluster", cluster.scheduler_address)
        b = _ingest(*logs[2:], "--lake", lake)
        outs = [p.communicate(timeout=300) for p in (a, b)]
    assert [p.returncode for p in (a, b)] == [0, 0], [e.decode()[-2000:] for _, e in outs]
    done = [json.loads(o) for o, _ in outs]
    assert done[0]["new"] + done[1]["new"] >= len(logs)
    cli("ingest", *logs, "--db", db)
    assert _by_path(report("--lake", lake)) == _by_path(report("--db", db))
    q = "SELECT count(*) AS n, count(DISTINCT (file_id, line_number)) AS d FROM requests"
    n = json.loads(cli("sql", "--lake", lake, "--json", q).stdout)
    assert n["n"] == n["d"] == json.loads(cli("sql", "--db", db, "--json", q).stdout)["n"]
    files = json.loads(cli("sql", "--lake", lake, "--json", "SELECT count(*) AS n FROM files").stdout)
    assert files == {"n": len(logs)}


def _by_path(rep: dict) -> dict:
    """A report with its files section by path: which ingester numbered a file first is
    a race (each file's number is its own, once)."""
    files = rep["reports"]["summary"]["sections"]["files"]
    rep["reports"]["summary"]["sections"]["files"] = sorted(
        ({k: v for k, v in f.items() if k != "file_id"} for f in files), key=lambda f: f["path"])
    return rep
