"""A run keeps each tenant's files together: its files are grouped by a tenant key taken
from their paths (the folder without its date levels, the name up to its date: a
CloudFront distribution), tasks are cut within the groups, and each tenant's (site, day)
partition gets as few data files as the task size allows -- while the file ids, rows,
manifest and reports stay those of the input order and of the DuckDB file."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from datetime import date

import pytest
from tests.test_lake import cli, report
from tests.test_lake_small import ROWS, by_path, sql

pytest.importorskip("pyiceberg")

TENANTS = ("acme", "bolt", "cove", "dune")
DAYS = (date(2024, 3, 1), date(2024, 3, 2))
IDS = "SELECT file_id, path FROM files ORDER BY file_id"


def per_partition(lake) -> Counter:
    """The ``requests`` data files of each (site, day) partition."""
    from logferry.lake.tables import Lake, Where

    files = Lake(Where.of(str(lake))).table("requests").inspect.data_files()
    return Counter((p["lake_site"], p["day"]) for p in files.column("partition").to_pylist())


FIELDS = ("#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
          "sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
          "x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
          "x-edge-response-result-type cs-protocol-version\n")


def cf_lines(host: str, k: int, days=(1, 2), lines: int = 20) -> bytes:
    """A CloudFront standard log's lines of ``host`` (its header first) and one bad line."""
    rows = [f"2024-03-{days[i % len(days)]:02d}\t{i % 24:02d}:{k % 60:02d}:{i % 59:02d}\tLAX1\t{100 + i}\t"
            f"192.0.2.{i % 7}\tGET\t{host}\t/p{i % 13}\t{200 if i % 9 else 404}\t-\tMozilla/5.0%20(X11)\t-\t-\t"
            f"Hit\tR{k}x{i}==\t{host}\thttps\t23\t0.00{i % 10}\t-\tTLSv1.2\tECDHE\tHit\tHTTP/1.1\n"
            for i in range(lines)]
    return (FIELDS + "".join(rows) + "not a log line\n").encode()


def gz_log(path, host: str, k: int, days=(1, 2), lines: int = 20) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(cf_lines(host, k, days, lines)))
    return str(path)


def mtime_ordered(root, per: int = 12) -> list[str]:
    """Each tenant's 5-minute logs in a folder of its own, listed by modification time (as
    ``ls -tr */*.gz`` names them): the tenants interleave."""
    out = []
    for k in range(per):
        for t, name in enumerate(TENANTS):
            p = gz_log(root / name / f"access-{k:03d}.log.gz", f"{name}.example", k)
            os.utime(p, (1_709_251_200 + 300 * k + t,) * 2)
            out.append(p)
    return out


@pytest.mark.parametrize(("path", "key"), [
    ("/logs/acme/access-003.log.gz", "/logs/acme/access"),
    ("/logs/acme/access.log", "/logs/acme/access.log"),
    ("/logs/acme/access.log.1", "/logs/acme/access.log"),
    ("/logs/2024/03/01/05/acme.log.gz", "/logs/acme.log"),
    ("/logs/dt=2024-03-01/hour=05/acme-0005.log.zst", "/logs/acme"),
    ("/logs/2024-03-01/acme/u_ex24030105.log", "/logs/acme/u_ex"),
    ("s3://cf/E2EDGE1X.2024-03-01-05.a1b2c3d4.gz", "s3://cf/E2EDGE1X"),
    ("s3://cf/2024/03/01/E3ZZ.2024-03-01-23.0f0f0f0f.gz", "s3://cf/E3ZZ"),
    ("s3://b/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/03/01/"
     "123456789012_elasticloadbalancing_us-east-1_app.web.50dc6c49_20240301T0005Z_10.0.0.1_2sgm.log.gz",
     "s3://b/AWSLogs/123456789012/elasticloadbalancing/us-east-1/"
     "123456789012_elasticloadbalancing_us-east-1_app.web.50dc6c49"),
    ("/logs/tenant=42/2024/1709251200-0c1d.log.gz", "/logs/tenant=42/"),
    ("/logs/customer=2001/date=2024-03-01/access.log.gz", "/logs/customer=2001/access.log"),
    ("/logs/year=2024/month=03/acme.log", "/logs/acme.log"),
    ("/2024/03/01/20240301.log", None),
    ("20240301.log", None),
])
def test_the_tenant_key_of_common_layouts(path, key):
    from logferry.lake.ingest import tenant_key

    assert tenant_key(path) == key


def test_tasks_are_cut_within_tenants_and_committed_in_input_order(monkeypatch):
    """Files of keys a b a b c (and one without a key): tasks of 2 within the groups; the
    reads are committed in segments no task crosses, each in input order."""
    from logferry.lake import ingest as li
    from logferry.sources import SourceFile

    names = ["/l/a/x1", "/l/b/x2", "/l/a/x3", "/l/b/x4", "/l/c/x5", "0.log", "/l/a/x7", "/l/d/x8", "/l/d/x9"]
    files = [SourceFile(p, 10, 0.0, None, None, "", 0) for p in names]
    tasks = li._cut(files, range(len(files)), 2)
    assert tasks == [[0, 2], [6, 1], [3, 4], [5, 7], [8]]
    assert li._segments(tasks) == [[[0, 2], [6, 1], [3, 4], [5, 7]], [[8]]]
    monkeypatch.setattr(li, "WINDOW_FILES", 4)  # (grouped 4 files at a time)
    assert [list(w) for w in li._windows(files)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]
    monkeypatch.setattr(li, "WINDOW_BYTES", 25)
    assert [list(w) for w in li._windows(files)] == [[0, 1], [2, 3], [4, 5], [6, 7], [8]]


def test_a_tenants_files_share_data_files_and_the_run_is_the_databases(tmp_path, monkeypatch):
    """4 tenants' 12 files each, interleaved, in tasks of 6: a tenant's two tasks write its
    two partitions' data files (2 each; in input order, every task held every tenant: 8
    each); the file ids, rows, manifest and reports are those of the input order and of
    the DuckDB file."""
    from logferry.lake import ingest as li

    files = mtime_ordered(tmp_path / "logs")
    monkeypatch.setattr(li, "TASK_FILES", 6)
    lake, plain, db = tmp_path / "lake", tmp_path / "plain", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", *files, "--lake", lake, "--json").stdout)
    assert (s["new"], s["records"], s["bad_rows"], s["errors"]) == (48, 48 * 20, 48, 0)
    assert per_partition(lake) == {(f"{t}.example", d): 2 for t in TENANTS for d in DAYS}
    monkeypatch.setattr(li, "tenant_key", lambda path: None, raising=False)  # (no key: input order)
    cli("ingest", *files, "--lake", plain)
    assert set(per_partition(plain).values()) == {8}
    cli("ingest", *files, "--db", db)
    assert sql(lake, IDS) == sql(db, IDS, "--db") == sql(plain, IDS)
    assert [r["path"] for r in sql(lake, IDS)] == files
    assert sql(lake, ROWS) == sql(db, ROWS, "--db") == sql(plain, ROWS)
    assert by_path(lake) == by_path(plain)
    assert report("--lake", lake) == report("--db", db) == report("--lake", plain)
    assert report("--lake", lake, "--rollups") == report("--lake", plain, "--rollups")
    again = json.loads(cli("ingest", *files, "--lake", lake, "--json").stdout)
    assert (again["new"], again["records"]) == (0, 0)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c.scheduler_address


def test_two_workers_keep_each_distribution_in_one_task_beside_a_file_read_in_ranges(tmp_path, monkeypatch,
                                                                                     cluster):
    """CloudFront logs in hour folders (named in time order: the distributions interleave)
    and a large uncompressed file read in byte ranges: each distribution's 6 files are one
    task, one data file a partition (in input order: 2); the same rows and file ids as the
    database."""
    from logferry.lake import ingest as li

    root = tmp_path / "cf"
    for d in (1, 2):
        for h in range(3):
            for t, name in enumerate(TENANTS):
                gz_log(root / "2024" / "03" / f"{d:02d}" / f"{h:02d}" / f"E{t}{name.upper()}.2024-03-{d:02d}-{h:02d}."
                       f"{d * 100 + h * 10 + t:08x}.gz", f"{name}.example", d * 10 + h, days=(d,))
    big = root / "2024" / "03" / "01" / "01" / "E9BIG.2024-03-01-01.0000beef"
    big.write_bytes(cf_lines("big.example", 0, (1,), 400))
    monkeypatch.setenv("LOGFERRY_LAKE_RANGE_BYTES", "4096")
    monkeypatch.setattr(li, "TASK_FILES", 6)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", root, "--lake", lake, "--cluster", cluster, "--json").stdout)
    assert (s["new"], s["errors"], s["records"]) == (25, 0, 24 * 20 + 400)
    got = per_partition(lake)
    assert got.pop(("big.example", DAYS[0])) > 1  # (its ranges' own)
    assert got == {(f"{t}.example", d): 1 for t in TENANTS for d in DAYS}
    cli("ingest", root, "--db", db)
    assert sql(lake, IDS) == sql(db, IDS, "--db")
    assert sql(lake, ROWS) == sql(db, ROWS, "--db")
    assert report("--lake", lake) == report("--db", db)
    monkeypatch.setattr(li, "tenant_key", lambda path: None, raising=False)
    cli("ingest", root, "--lake", tmp_path / "plain", "--cluster", cluster)
    plain = per_partition(tmp_path / "plain")
    assert plain[("big.example", DAYS[0])] > 1 and min(v for k, v in plain.items() if k[0] != "big.example") == 2
    assert report("--lake", tmp_path / "plain") == report("--lake", lake)
