"""A large file read in byte ranges on a real Dask LocalCluster (2 worker processes) into
the lake (pyiceberg's SQLite catalog): the same rows, line numbers, bad rows and manifest
counts as a one-process ingest into the DuckDB file; nothing added twice; a grown file read
on (in ranges when it grew by many); W3C ``#Fields`` changes mid-file; killed runs
repaired; objects in moto's S3 server and the GCS emulator read by ranged reads of one
version.  The range size is set small (``LOGFERRY_LAKE_RANGE_BYTES``) so the files stay
small."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
from tests.test_lake import clf, cli, manifest, report

pytest.importorskip("pyiceberg")
distributed = pytest.importorskip("distributed")

RANGE = 2048


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch):
    monkeypatch.setenv("LOGFERRY_LAKE_RANGE_BYTES", str(RANGE))


def w3c_log(path, n: int = 240) -> str:
    """A W3C log whose ``#Fields`` change every 70 lines (columns added, dropped and
    reordered), with bad lines, blank lines, a directive cut by no range in particular and
    a last line without its end."""
    heads = ["date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs-host",
             "date time cs-host c-ip cs-method cs-uri-stem sc-bytes sc-status time-taken",
             "date time c-ip cs-method cs-uri-stem sc-status cs-host"]
    out = ["#Software: test\n"]
    for i in range(n):
        if i % 70 == 0:
            out.append(f"#Fields: {heads[i // 70 % 3]}\n")
        f = heads[i // 70 % 3].split()
        v = {"date": "2024-03-01", "time": f"{i // 60 % 24:02d}:{i % 60:02d}:00", "c-ip": f"10.0.0.{i % 9}",
             "cs-method": "GET", "cs-uri-stem": f"/p{i % 11}", "sc-status": str(200 + i % 4),
             "sc-bytes": str(100 + i), "time-taken": str(i % 50), "cs-host": f"s{i % 3}.example"}
        out.append(" ".join(v[k] for k in f) + "\n")
        if i % 37 == 5:
            out.append("not a w3c line at all\n")
        if i % 53 == 7:
            out.append("\n")
    out.append("2024-03-01 23:59:00 10.0.0.1 GET /end 200")
    path.write_text("".join(out))
    return str(path)


def clf_log(path, n: int = 200) -> str:
    path.write_bytes(b"".join(clf(i, f"h{i % 2}.example") + (b"junk\n" if i % 41 == 3 else b"")
                              for i in range(n)))
    return str(path)


@pytest.fixture
def big(tmp_path):
    files = [w3c_log(tmp_path / "u_ex.log"), clf_log(tmp_path / "access.log")]
    assert all(os.path.getsize(f) > 4 * RANGE for f in files)
    return files


_ROWS = {"requests": "file_id, line_number, host, path, status, bytes_sent, duration_ms, timestamp",
         "bad_rows": "file_id, line_number, raw, reason",
         "files": "file_id, path, lines, records, bad_rows, directives, blank, partial_tail, bytes, "
                  "anchor_line, anchor_off, decode(header) AS header, ingests, first_timestamp, last_timestamp"}


def rows(where: str, store) -> dict:
    out = {t: cli("sql", where, store, "--json", f"SELECT {c} FROM {t} ORDER BY ALL").stdout.splitlines()
           for t, c in _ROWS.items()}
    assert all(out.values())
    return out


def test_a_file_read_in_ranges_is_the_one_process_ingest(tmp_path, big, cluster):
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", *big, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", *big, "--db", db)
    assert s["new"] == 2
    assert rows("--lake", lake) == rows("--db", db)
    assert report("--lake", lake) == report("--db", db)
    for r in manifest(str(lake)):
        reads = r["reads"]
        assert len(reads) > 3  # read in ranges, one read each, meeting line for line
        assert reads[0]["first_line"] == 1 and reads[-1]["last_line"] == r["lines"]
        assert all(a["last_line"] + 1 == b["first_line"] for a, b in itertools.pairwise(reads))
        assert r["records"] + r["bad_rows"] + r["directives"] + r["blank"] == r["lines"]


def test_again_adds_nothing_and_a_grown_file_is_read_on(tmp_path, big, cluster):
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for f in big:
        cli("ingest", f, "--lake", lake, "--cluster", cluster)
        cli("ingest", f, "--db", db)
    again = json.loads(cli("ingest", *big, "--lake", lake, "--cluster", cluster, "--json").stdout)
    assert (again["new"], again["grown"], again["records"], again["bad_rows"]) == (0, 0, 0, 0)
    with open(big[0], "a") as f:  # the unfinished last line ends, then more lines
        f.write(" 7 s1.example\n2024-03-01 23:59:30 10.0.0.2 GET /more 200 s2.example\n")
    with open(big[1], "ab") as f:
        f.write(b"".join(clf(i, "h3.example") for i in range(300, 340)))
    grown = json.loads(cli("ingest", *big, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", *big, "--db", db)
    assert grown["grown"] == 2
    for r in manifest(str(lake)):  # the ranges' reads, then the grown part's (one task)
        reads = r["reads"]
        assert len(reads) > 4 and all(a["last_line"] + 1 == b["first_line"] for a, b in itertools.pairwise(reads))
    assert rows("--lake", lake) == rows("--db", db)
    q = "SELECT count(*) AS n, count(DISTINCT (file_id, line_number)) AS d FROM requests"
    n = json.loads(cli("sql", "--lake", lake, "--json", q).stdout)
    assert n["n"] == n["d"] == json.loads(cli("sql", "--db", db, "--json", q).stdout)["n"]


def test_a_file_that_grew_by_ranges_is_read_on_in_ranges(tmp_path, cluster):
    """A W3C file read (in ranges), then grown by many ranges (its unfinished last line
    ended, ``#Fields`` changing, bad lines): the new part is read in ranges from the file's
    checkpoint -- one manifest entry, its reads meeting line for line -- with the rows, bad
    rows (their reasons numbering lines as the one read on does) and counts of a one-process
    ingest that read the file and then read it on."""
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    path = tmp_path / "u_ex.log"
    w3c_log(path, 240)
    cli("ingest", path, "--lake", lake, "--cluster", cluster)
    cli("ingest", path, "--db", db)
    (before,) = manifest(str(lake))
    more = open(w3c_log(tmp_path / "more.log", 500), "rb").read().split(b"\n", 1)[1]
    with open(path, "ab") as f:  # (the last line ended; more lines, #Fields changing, bad lines)
        f.write(b" 7 s1.example\n" + more)
    assert len(more) > 8 * RANGE
    grown = json.loads(cli("ingest", path, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", path, "--db", db)
    assert (grown["grown"], grown["errors"]) == (1, 0)
    (r,) = manifest(str(lake))
    new = r["reads"][len(before["reads"]):]
    assert len(new) > 8 and new[0]["first_line"] == before["lines"]  # (the unfinished line read again)
    assert all(a["last_line"] + 1 == b["first_line"] for a, b in zip(r["reads"], r["reads"][1:], strict=False))
    assert r["records"] + r["bad_rows"] + r["directives"] + r["blank"] == r["lines"]
    assert rows("--lake", lake) == rows("--db", db)
    assert report("--lake", lake) == report("--db", db)
    summary = json.loads(cli("ingest", path, "--lake", lake, "--cluster", cluster, "--json").stdout)
    assert (summary["new"], summary["grown"], summary["records"]) == (0, 0, 0)


@pytest.mark.parametrize("where", ["logferry.lake.commit:_commit_manifest", "logferry.lake.ranges:merge"])
def test_a_ranged_run_killed_by_sigkill_loses_and_doubles_nothing(tmp_path, big, cluster, where):
    """SIGKILL after the ranges' data files are written (before the driver merged them), or
    between the data files' commit and the manifest's: the next run stores every row once."""
    mod, attr = where.split(":")
    code = (f"import os, signal, sys, importlib; m = importlib.import_module({mod!r}); "
            f"setattr(m, {attr!r}, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)); "
            "from logferry.cli import main; sys.argv[0] = 'logferry'; main()")
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    p = subprocess.run([sys.executable, "-c", code, "ingest", *big, "--lake", str(lake), "--cluster", cluster],
                       capture_output=True, env=dict(os.environ))
    assert p.returncode == -9, p.stderr.decode()[-2000:]
    s = json.loads(cli("ingest", *big, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", *big, "--db", db)
    assert s["new"] == 2 and all(len(r["reads"]) > 3 for r in manifest(str(lake)))
    assert rows("--lake", lake) == rows("--db", db)
    assert report("--lake", lake) == report("--db", db)


def test_ranges_that_do_not_meet_are_not_committed_and_the_file_is_read_whole(tmp_path, big, cluster, monkeypatch):
    """A range numbered one line off (as a line counted differently would be): the driver
    sees the ranges do not meet, commits none of them, deletes their data files and reads
    the file whole."""
    from logferry.lake import ranges
    from logferry.lake.tables import Lake, Where

    real = ranges.spans

    def off_by_one(*a):
        out = real(*a)
        out[2].line += 1
        return out

    monkeypatch.setattr(ranges, "spans", off_by_one)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", *big, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", *big, "--db", db)
    assert s["new"] == 2 and [len(r["reads"]) for r in manifest(str(lake))] == [1, 1]
    assert rows("--lake", lake) == rows("--db", db)
    table = Lake(Where.of(str(lake))).table("requests")
    planned = {t.file.file_path.removeprefix("file://") for t in table.scan().plan_files()}
    on_disk = {str(p) for p in (lake / "logferry" / "requests" / "data").rglob("*.parquet")}
    assert on_disk == planned


def _ingester_threads() -> tuple[int | None, int, bool]:
    """On a worker: its cores, and the parse threads and prefetch of an ingester there."""
    from logferry.lake.ranges import worker_cores
    from logferry.usage.ingester import Ingester

    ing = Ingester(object(), cores=worker_cores())
    return worker_cores(), ing.parse_threads, ing.prefetch


def test_a_one_thread_worker_reads_on_one_core(cluster):
    """A worker of one thread parses inline, without the prefetch thread a process of two
    cores starts beside its store: two such workers keep to two cores, not three or four."""
    from logferry.lake.ranges import worker_cores

    with distributed.Client(cluster) as c:
        assert c.submit(_ingester_threads, pure=False).result() == (1, 1, False)
    assert worker_cores() is None  # (this process is no worker)


# ------------------------------------------------------------- an object in S3 (moto)
S3_RANGE = 48 << 10  # (the object is larger than the driver's head read, 256 KiB: no read is all of it)
BUCKET = "ranges-src"


class _Requests:
    """moto's S3 server's WSGI app, every request it answers recorded (method, key, Range,
    If-Match, bytes sent, from a Dask worker): the server itself is moto's, unchanged."""

    def __init__(self, app):
        self.app, self.log = app, []

    def __call__(self, environ, start_response):
        out = list(self.app(environ, start_response))
        self.log.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_RANGE"),
                         environ.get("HTTP_IF_MATCH"), sum(map(len, out)),
                         "app/dask-worker" in environ.get("HTTP_USER_AGENT", "")))
        return out

    def gets(self, key: str) -> list[tuple]:
        return [r for r in self.log if r[:2] == ("GET", f"/{BUCKET}/{key}")]


@pytest.fixture(scope="module")
def s3_cluster():
    """moto's S3 server, the GCS emulator and a LocalCluster of 2 worker processes started
    with their environment; the workers' S3 requests carry ``app/dask-worker`` in their
    User-Agent (botocore's ``AWS_SDK_UA_APP_ID``), the driver's (this process) do not."""
    from tests.servers import servers as S

    srv, gcs = S.S3Server(), S.GCSServer()
    rec = srv.srv._server.app = _Requests(srv.srv._server.app)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in srv.env().items():
                mp.setenv(k, v)
            mp.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
            mp.setenv("AWS_SDK_UA_APP_ID", "dask-worker")
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                          host="127.0.0.1", dashboard_address=None) as c:
                mp.delenv("AWS_SDK_UA_APP_ID")
                srv.make_bucket(BUCKET)
                yield srv, rec, c.scheduler_address
    finally:
        srv.stop()
        gcs.stop()


def _s3():
    import boto3

    return boto3.client("s3", region_name="us-east-1")


def _cuts(data: bytes, block: int) -> list[int]:
    """The ranges' first bytes (after the last line feed before each block boundary)."""
    return sorted({0} | {data.rfind(b"\n", 0, k * block) + 1 for k in range(1, -(-len(data) // block))})


def _bad_at_a_boundary(data: bytes, block: int) -> bytes:
    """``data`` with the data lines on both sides of a range boundary replaced by bad lines
    of the same length (the boundaries stay where they were)."""
    for cut in _cuts(data, block)[2:]:
        a, b = data.rfind(b"\n", 0, cut - 1) + 1, data.find(b"\n", cut) + 1
        if not any(data[x:x + 1] in (b"#", b"\n", b"n") for x in (a, cut)):  # (two data lines)
            return (data[:a] + b"X" * (cut - a - 1) + b"\n" + b"Y" * (b - cut - 1) + b"\n" + data[b:])
    raise AssertionError("no boundary between two data lines")


def _put(tmp_path, name: str, bucket: str = f"s3://{BUCKET}") -> tuple[str, bytes]:
    import fsspec

    data = _bad_at_a_boundary(open(w3c_log(tmp_path / name, 9000), "rb").read(), S3_RANGE)
    if bucket.startswith("s3://"):
        _s3().put_object(Bucket=BUCKET, Key=name, Body=data)
    else:
        fsspec.filesystem("gs").pipe(f"{bucket}/{name}", data)
    return f"{bucket}/{name}", data


def test_an_object_is_read_in_ranges_by_ranged_reads_of_one_version(tmp_path, s3_cluster, monkeypatch):
    """A W3C log in S3 (``#Fields`` changing mid-file, bad lines on both sides of a range
    boundary) read in ranges: the rows, bad rows, manifest counts and report of a one-process
    ingest of the same object; each worker read is a ranged GET inside one range, pinned to
    the object's ETag (If-Match); no request of the whole run fetched the whole object."""
    srv, rec, cluster = s3_cluster
    monkeypatch.setenv("LOGFERRY_LAKE_RANGE_BYTES", str(S3_RANGE))
    _url, data = _put(tmp_path, "u_ex_s3.log")
    url = f"s3://{BUCKET}/u_ex_s3.*"  # (a glob: the object as a listing describes it)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    del rec.log[:]
    s = json.loads(cli("ingest", url, "--lake", lake, "--cluster", cluster, "--json").stdout)
    gets = rec.gets("u_ex_s3.log")
    cli("ingest", url, "--db", db)
    assert (s["new"], s["errors"]) == (1, 0) and s["bad_rows"] > 100
    assert rows("--lake", lake) == rows("--db", db)
    assert report("--lake", lake) == report("--db", db)
    (r,) = manifest(str(lake))
    cuts = _cuts(data, S3_RANGE)
    assert len(r["reads"]) == len(cuts) > 10 and r["records"] + r["bad_rows"] + r["directives"] + r["blank"] == r["lines"]
    bad = json.loads(cli("sql", "--lake", lake, "--json", "SELECT list(line_number ORDER BY line_number) AS n "
                         "FROM bad_rows WHERE raw LIKE 'XXXX%' OR raw LIKE 'YYYY%'").stdout)["n"]
    assert len(bad) == 2 and bad[0] + 1 == bad[1]  # (the two lines at the boundary, numbered as in the file)
    etag = _s3().head_object(Bucket=BUCKET, Key="u_ex_s3.log")["ETag"]
    worker = [g for g in gets if g[5]]
    assert gets and all(g[2] is not None and g[4] < len(data) for g in gets)  # (no GET of it all)
    spans = list(zip(cuts, [*cuts[1:], len(data)], strict=True))
    inside = [next((k for k, (a, b) in enumerate(spans) if a <= lo and min(hi, len(data) - 1) < b), None)
              for lo, hi in (map(int, g[2].removeprefix("bytes=").split("-")) for g in worker)]
    assert None not in inside and set(inside) == set(range(len(spans)))  # every range, each GET in one
    assert all(g[3] == etag for g in worker)
    assert sum(g[4] for g in worker) <= 2 * len(data)  # (a scan and a read of each range at most)


def test_an_object_that_changes_between_scan_and_read_is_read_whole(tmp_path, s3_cluster, monkeypatch):
    """The object replaced (same size, same key) after the workers scanned it and before
    they read it: the ranges see another ETag, none is committed and the file is read whole
    by one task -- the lake holds the new object's rows, as a one-process ingest of it."""
    from logferry.lake import ranges

    srv, rec, cluster = s3_cluster
    monkeypatch.setenv("LOGFERRY_LAKE_RANGE_BYTES", str(S3_RANGE))
    url, data = _put(tmp_path, "u_ex_changed.log")
    new = data.replace(b" GET ", b" PUT ")
    assert len(new) == len(data) and new != data
    real = ranges.spans

    def replaced_after_the_scans(*a):
        _s3().put_object(Bucket=BUCKET, Key="u_ex_changed.log", Body=new)
        return real(*a)

    monkeypatch.setattr(ranges, "spans", replaced_after_the_scans)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", url, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", url, "--db", db)
    assert (s["new"], s["errors"]) == (1, 0) and [len(r["reads"]) for r in manifest(str(lake))] == [1]
    assert rows("--lake", lake) == rows("--db", db)
    q = "SELECT count(*) AS n FROM requests WHERE method = 'PUT'"
    assert json.loads(cli("sql", "--lake", lake, "--json", q).stdout)["n"] > 1000
    on_disk = {str(p) for p in (lake / "logferry" / "requests" / "data").rglob("*.parquet")}
    from logferry.lake.tables import Lake, Where

    planned = {t.file.file_path.removeprefix("file://")
               for t in Lake(Where.of(str(lake))).table("requests").scan().plan_files()}
    assert on_disk == planned  # (the ranges' data files deleted)


def test_a_read_of_a_version_fails_once_the_object_is_replaced(s3_cluster):
    """An object opened for its ranges is read as the version the driver saw: a version
    it no longer is cannot be opened, and a read after a replacement fails (If-Match on S3)."""
    from logferry.lake.ranges import open_at, version_of
    from logferry.sources import expand

    _s3().put_object(Bucket=BUCKET, Key="v.log", Body=b"a\n" * 1000)
    (sf,) = expand([f"s3://{BUCKET}/v.log"])
    version = version_of(sf)
    with open_at(sf, version) as f:
        assert f.read(4) == b"a\na\n"
        _s3().put_object(Bucket=BUCKET, Key="v.log", Body=b"b\n" * 1000)
        f.seek(10)
        with pytest.raises(OSError):
            f.read(4)
    with pytest.raises(OSError, match="changed"):
        open_at(sf, version)


def test_an_object_in_gcs_is_read_in_ranges(tmp_path, s3_cluster, monkeypatch):
    """The same through gcsfs (the GCS emulator): any object store the source layer reads
    is split, each range read as the generation the driver saw."""
    monkeypatch.setenv("LOGFERRY_LAKE_RANGE_BYTES", str(S3_RANGE))
    url, data = _put(tmp_path, "u_ex_gcs.log", "gs://logs")
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", url, "--lake", lake, "--cluster", s3_cluster[2], "--json").stdout)
    cli("ingest", url, "--db", db)
    assert (s["new"], s["errors"]) == (1, 0)
    (r,) = manifest(str(lake))
    assert len(r["reads"]) == len(_cuts(data, S3_RANGE)) > 10
    assert rows("--lake", lake) == rows("--db", db)
    assert report("--lake", lake) == report("--db", db)


def test_a_compaction_between_a_ranged_files_data_and_manifest_commits_keeps_its_rows(tmp_path, big, cluster,
                                                                                     monkeypatch):
    """``lake compact`` run while a file read in ranges is between its data commit and its
    manifest commit: every range's rows are an ingest still committing (young), not only
    the last range's, so none is removed and the lake is the one-process ingest."""
    from logferry.lake import commit as cm
    from logferry.lake import upkeep

    real = cm._commit_manifest

    def compact_first(lake, *args):
        upkeep.compact(lake)
        return real(lake, *args)

    monkeypatch.setattr(cm, "_commit_manifest", compact_first)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", *big, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", *big, "--db", db)
    assert s["new"] == 2 and all(len(r["reads"]) > 3 for r in manifest(str(lake)))
    assert rows("--lake", lake) == rows("--db", db)


def test_a_file_whose_first_line_is_blank_counts_it_once_in_ranges_and_read_on(tmp_path, cluster):
    """A log whose first line is blank: the ranges (and a read on of the grown file) do not
    replay that line as a title -- it was counted as one more blank line per read, and one
    directive fewer (negative directives; ``records + bad + directives + blank != lines``
    once the ranges' counts were merged).  The database read on counts it once too."""
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    path = tmp_path / "blank_first.log"
    path.write_bytes(b"\n" + b"".join(clf(i, "h.example") for i in range(20)))
    for grow in (b"", b"".join(clf(i, "g.example") + b"junk\n" * (i % 50 == 7) for i in range(200))):
        with open(path, "ab") as f:
            f.write(grow)
        cli("ingest", path, "--lake", lake, "--cluster", cluster)
        cli("ingest", path, "--db", db)
        (r,) = manifest(str(lake))
        assert (r["directives"], r["blank"], r["records"] + r["bad_rows"]) == (0, 1, r["lines"] - 1)
        assert len(r["reads"]) > 1  # (in ranges)
    assert len(r["reads"]) > 4
    assert rows("--lake", lake) == rows("--db", db)


def test_a_local_file_replaced_between_scan_and_read_is_stored_once(tmp_path, cluster, monkeypatch):
    """A local file replaced by another of the same size (a new inode: a rename over it)
    after the workers scanned it and before they read it: the ranges do not read the new
    file under the old one's identity (its head, read when planned) -- the file is read
    whole, as it is then -- so the next run knows the new file and stores nothing again."""
    from logferry.lake import ranges

    path = tmp_path / "u_ex.log"
    data = open(w3c_log(path, 400), "rb").read()
    new = tmp_path / "u_ex.new"
    new.write_bytes(data.replace(b" GET ", b" PUT "))
    real = ranges.spans

    def replaced_after_the_scans(*a):
        os.replace(new, path)
        return real(*a)

    monkeypatch.setattr(ranges, "spans", replaced_after_the_scans)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", path, "--lake", lake, "--cluster", cluster, "--json").stdout)
    monkeypatch.setattr(ranges, "spans", real)
    again = json.loads(cli("ingest", path, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", path, "--db", db)
    assert (s["new"], s["errors"], again["new"], again["records"]) == (1, 0, 0, 0)
    q = "SELECT line_number, method, path, status FROM requests ORDER BY ALL"
    got = cli("sql", "--lake", lake, "--json", q).stdout
    assert got == cli("sql", "--db", db, "--json", q).stdout and '"PUT"' in got


def test_a_cloudfront_bad_rows_reason_names_the_fields_line_of_the_file(tmp_path, cluster):
    """A CloudFront log (``#Fields`` again mid-file, short rows after it) read in ranges: a
    bad row's reason names the ``#Fields`` line as the file numbers it ("#Fields at line
    154"), not as its range's reader numbered the replayed header, as one read says."""
    from logferry.samples import CF_FIELDS

    def row(i: int) -> str:
        return "\t".join(["2024-03-02", f"09:{i % 60:02d}:00", "FRA1", str(100 + i), "5.5.5.5", "GET", "d1.cloudfront.net",
                          f"/s/{i}.js", "200", "-", "Mozilla/5.0", "-", "-", "Hit", f"r{i}", "static.example.com",
                          "https", "200", "0.050", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "Hit", "HTTP/2.0",
                          "-", "-", "4000", "0.010", "Hit", "text/javascript", str(100 + i), "-", "-"])

    head = ["#Version: 1.0", f"#Fields: {CF_FIELDS}"]
    lines = head + [row(i) if i % 23 != 5 else "short\tbad\trow" for i in range(150)] + head
    lines += [row(i) if i % 23 != 5 else "short\tbad\trow" for i in range(150, 300)]
    path = tmp_path / "E2ABC.2024-03-02-09.abcd"
    path.write_text("\n".join(lines) + "\n")
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", path, "--lake", lake, "--cluster", cluster)
    cli("ingest", path, "--db", db)
    assert len(manifest(str(lake))[0]["reads"]) > 10
    got = rows("--lake", lake)
    assert got == rows("--db", db) and sum("#Fields at line 154 " in r for r in got["bad_rows"]) == 6


def test_a_grown_local_file_replaced_under_its_ranges_is_read_whole_as_it_is_then(tmp_path, cluster, monkeypatch):
    """A known local file grown by many ranges, then replaced (another file renamed over it)
    after the workers scanned it: its ranges fail, and the one task that reads it whole
    reads the file there then as what it is -- a new file -- not as the known one read on
    from its checkpoint (the new file's bytes after that offset went to the old file, and
    the next run stored them again with the new file)."""
    from logferry.lake import ranges

    path, other = tmp_path / "access.log", tmp_path / "other.log"
    clf_log(path, 40)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", path, "--lake", lake, "--cluster", cluster)
    cli("ingest", path, "--db", db)
    with open(path, "ab") as f:
        f.write(b"".join(clf(i, "g.example") for i in range(40, 240)))
    other.write_bytes(b"".join(clf(i, "n.example") for i in range(300)))
    real = ranges.spans

    def replaced_after_the_scans(*a):
        os.replace(other, path)
        return real(*a)

    monkeypatch.setattr(ranges, "spans", replaced_after_the_scans)
    s = json.loads(cli("ingest", path, "--lake", lake, "--cluster", cluster, "--json").stdout)
    monkeypatch.setattr(ranges, "spans", real)
    again = json.loads(cli("ingest", path, "--lake", lake, "--cluster", cluster, "--json").stdout)
    cli("ingest", path, "--db", db)
    assert (s["new"], s["grown"], s["errors"], again["records"]) == (1, 0, 0, 0)
    assert rows("--lake", lake) == rows("--db", db)


@pytest.mark.parametrize("value", ["64M", "-1", "0", "1e6"])
def test_a_range_size_that_is_no_whole_number_is_one_error_line_before_any_work(tmp_path, big, monkeypatch, value):
    """``LOGFERRY_LAKE_RANGE_BYTES=64M`` (or none above 0): one line naming the variable, exit
    status 2, and no lake made (it was a ValueError's traceback, after the lake was made)."""
    monkeypatch.setenv("LOGFERRY_LAKE_RANGE_BYTES", value)
    r = cli("ingest", *big, "--lake", tmp_path / "lake", ok=False)
    assert r.exit_code == 2 and "LOGFERRY_LAKE_RANGE_BYTES" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "lake").exists()
