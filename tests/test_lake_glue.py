"""The lake with AWS Glue as its catalog (``--catalog glue://``), the data files in S3: both
moto's server, reached by boto3 and s3fs through the AWS environment as a user's AWS is.
And a catalog shared by two lakes (Glue's one ``logferry`` database, a SQL catalog given
twice): the second is refused, never mixed into the first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest
from tests.test_lake import cli, logs, report  # noqa: F401  (logs: the fixture)

pytest.importorskip("pyiceberg")
boto3 = pytest.importorskip("boto3")


@pytest.fixture
def aws(monkeypatch, tmp_path):
    from tests.servers import servers as S

    srv = S.S3Server()
    try:  # (moto keeps its state per process, whichever server: Glue's databases of another test too)
        urllib.request.urlopen(urllib.request.Request(f"{srv.endpoint}/moto-api/reset", method="POST")).close()
        for k, v in srv.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # (where a default catalog would go)
        srv.make_bucket("lake")
        yield srv
    finally:
        srv.stop()


def glue_db(srv) -> dict | None:
    g = boto3.client("glue", endpoint_url=srv.endpoint, region_name="us-east-1")
    try:
        return g.get_database(Name="logferry")["Database"]
    except g.exceptions.EntityNotFoundException:
        return None


def logferry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from logferry.cli import main; sys.argv[0] = 'logferry'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_lake_on_glue_and_s3_gives_the_databases_report_and_adds_nothing_twice(tmp_path, logs, aws):  # noqa: F811
    lake, db = "s3://lake/usage", tmp_path / "u.duckdb"
    assert glue_db(aws) is None
    s = json.loads(cli("ingest", *logs, "--lake", lake, "--catalog", "glue://", "--json").stdout)
    assert s["new"] == len(logs) and s["errors"] == 0 and s["records"] > 0
    params = glue_db(aws)["Parameters"]
    assert params["logferry.lake-version"] == "1" and params["logferry.lake-location"] == lake
    assert not (tmp_path / "xdg").exists()  # (no SQLite catalog made on this machine)
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake, "--catalog", "glue://") == report("--db", db)
    again = json.loads(cli("ingest", *logs, "--lake", lake, "--catalog", "glue://", "--json").stdout)
    assert (again["new"], again["records"]) == (0, 0)
    status = cli("lake", "status", lake, "--catalog", "glue://").output
    assert status.startswith(f"lake {lake}, catalog glue://\n") and f"manifest: {len(logs)} files" in status
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=aws.endpoint, region_name="us-east-1")
            .list_objects_v2(Bucket="lake", Prefix="usage/logferry/requests/data/")["Contents"]]
    assert keys and all(k.endswith(".parquet") for k in keys)


def test_a_second_lake_in_the_same_catalog_is_refused_untouched(tmp_path, logs, aws):  # noqa: F811
    cli("ingest", logs[0], "--lake", "s3://lake/one", "--catalog", "glue://")
    r = logferry("ingest", logs[1], "--lake", "s3://lake/two", "--catalog", "glue://")
    assert r.returncode == 2 and r.stderr.startswith("logferry: error: s3://lake/two: catalog glue:// holds "
                                                     "the lake at s3://lake/one"), r.stderr
    assert "Traceback" not in r.stderr
    assert "Contents" not in boto3.client("s3", endpoint_url=aws.endpoint, region_name="us-east-1").list_objects_v2(
        Bucket="lake", Prefix="two/")
    # a SQL catalog given to two lake folders likewise (it used to mix them: the second
    # ingest found the first lake's files "already ingested")
    shared = tmp_path / "shared.db"
    cli("ingest", logs[0], "--lake", tmp_path / "a", "--catalog", shared)
    r = cli("ingest", logs[0], "--lake", tmp_path / "b", "--catalog", shared, ok=False)
    assert r.exit_code == 2 and "holds the lake at file://" in r.output and str(tmp_path / "a") in r.output
    assert not (tmp_path / "b").exists()


def test_a_glue_lake_that_cannot_be_made_leaves_no_database_behind(tmp_path, logs, aws):  # noqa: F811
    r = logferry("ingest", logs[0], "--lake", "s3://no-such-bucket/lake", "--catalog", "glue://", "--json")
    assert r.returncode == 2 and r.stderr.startswith("logferry: error: ") and "Traceback" not in r.stderr, r.stderr
    assert glue_db(aws) is None  # (before: its database without tables, a lake no command could read)
    aws.make_bucket("no-such-bucket")
    s = json.loads(cli("ingest", logs[0], "--lake", "s3://no-such-bucket/lake", "--catalog", "glue://",
                       "--json").stdout)
    assert s["new"] == 1 and s["errors"] == 0


def test_an_unreachable_glue_or_a_bad_catalog_id_is_one_error_line(tmp_path, logs, aws):  # noqa: F811
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    r = logferry("report", "--lake", "s3://lake/usage", "--catalog", "glue://", "--json",
                 env={"AWS_ENDPOINT_URL_GLUE": closed, "AWS_MAX_ATTEMPTS": "2"})  # (default 4, not pyiceberg's 10)
    assert r.returncode == 2 and r.stderr.startswith("logferry: error: s3://lake/usage: catalog glue:// "
                                                     "unreachable: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    r = cli("ingest", logs[0], "--lake", "s3://lake/usage", "--catalog", "glue://acme", ok=False)
    assert r.exit_code == 2 and "glue://ACCOUNT_ID" in r.output



def test_two_lakes_made_at_once_in_one_catalog_the_second_is_refused_and_the_first_kept(tmp_path, logs):  # noqa: F811
    """Another run makes its lake in the shared catalog between this run's look (no
    namespace yet) and its own create: this run is refused, and the other lake is left
    whole (before: this run went on into the other lake's tables, and had it failed, it
    would have dropped them as its own half-made lake)."""
    from logferry.errors import InputError
    from logferry.lake.tables import NAMESPACE, PARTITIONS, Lake, Where

    shared = str(tmp_path / "shared.db")
    from pyiceberg.catalog.sql import SqlCatalog

    mine = Where.of(str(tmp_path / "b"), shared)
    real = SqlCatalog.create_namespace

    def other_first(self, *a, **k):
        SqlCatalog.create_namespace = real
        Lake(Where.of(str(tmp_path / "a"), shared), create=True)  # (the other run, in between)
        return real(self, *a, **k)

    SqlCatalog.create_namespace = other_first
    try:
        with pytest.raises(InputError, match="holds the lake at file://"):
            Lake(mine, create=True)
    finally:
        SqlCatalog.create_namespace = real
    other = Lake(Where.of(str(tmp_path / "a"), shared))
    assert all(other.catalog.table_exists((NAMESPACE, name)) for name in PARTITIONS)
    s = json.loads(cli("ingest", logs[0], "--lake", tmp_path / "a", "--catalog", shared, "--json").stdout)
    assert s["new"] == 1 and s["errors"] == 0


def test_an_aws_error_mid_run_is_the_environment_not_a_bug():
    """A Glue catalog that stops answering, or refuses, after the lake was opened: botocore's
    error is one `logferry: error:` line (cli.main), not a traceback."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from logferry.cli import _environment_error

    assert _environment_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"))
    assert _environment_error(ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetTable"))
    assert not _environment_error(ValueError("a bug"))


def test_a_lake_made_before_the_location_was_recorded_gets_it_at_its_next_ingest(tmp_path, logs):  # noqa: F811
    from logferry.lake.tables import NAMESPACE, Lake, Where

    shared = str(tmp_path / "shared.db")
    cli("ingest", logs[0], "--lake", tmp_path / "a", "--catalog", shared)
    lake = Lake(Where.of(str(tmp_path / "a"), shared))
    lake.catalog.update_namespace_properties(NAMESPACE, removals={"logferry.lake-location"})  # (as made before)
    assert "logferry.lake-location" not in lake.catalog.load_namespace_properties(NAMESPACE)
    cli("report", "--lake", tmp_path / "a", "--catalog", shared, "--json")  # (a reader writes nothing)
    assert "logferry.lake-location" not in lake.catalog.load_namespace_properties(NAMESPACE)
    cli("ingest", logs[1], "--lake", tmp_path / "a", "--catalog", shared)
    assert lake.catalog.load_namespace_properties(NAMESPACE)["logferry.lake-location"] == Where.of(
        str(tmp_path / "a")).warehouse
    r = cli("ingest", logs[0], "--lake", tmp_path / "b", "--catalog", shared, ok=False)
    assert r.exit_code == 2 and "holds the lake at" in r.output


def test_a_glue_lakes_strays_are_found_where_its_data_files_are_written(tmp_path, logs, aws, monkeypatch):  # noqa: F811
    """Glue places a table at ``WAREHOUSE/logferry.db/NAME`` while the ingest writes its
    data files under ``WAREHOUSE/logferry/NAME``: a killed run's data files are there, and
    ``lake status`` and ``lake expire`` find and delete them there too (they listed the
    table's location only: none ever found); every file a snapshot holds is kept."""
    import time

    from logferry.lake import upkeep

    lake, db = "s3://lake/usage", tmp_path / "u.duckdb"
    cli("ingest", *logs, "--lake", lake, "--catalog", "glue://")
    s3c = boto3.client("s3", endpoint_url=aws.endpoint, region_name="us-east-1")
    s3c.put_object(Bucket="lake", Key="usage/logferry/requests/data/site=x/day=2024-03-01/stray-0.parquet",
                   Body=b"12345")
    st = json.loads(cli("lake", "status", lake, "--catalog", "glue://", "--json").stdout)
    assert (st["strays"], st["stray_bytes"]) == (1, 5), st
    monkeypatch.setattr(upkeep, "STRAY_MIN", upkeep.dt.timedelta(0))
    time.sleep(1.1)
    r = cli("lake", "expire", lake, "--catalog", "glue://", "--older-than", "4000d", "--strays-older-than", "1s")
    assert "1 stray files deleted (5 bytes)" in r.output, r.output
    keys = {o["Key"] for o in s3c.list_objects_v2(Bucket="lake", Prefix="usage/")["Contents"]}
    assert not any(k.endswith("stray-0.parquet") for k in keys)
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake, "--catalog", "glue://") == report("--db", db)
