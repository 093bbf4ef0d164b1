"""Small new files written together (``usage/bundle.py``): a run of the ingester holds new
small files and writes many at once; what ends up in the database is what ingesting them
one at a time stores, a copy among them is still stored once, a failed write loses only the
file it is about, and a held file that reaches a checkpoint goes on in the database."""

from __future__ import annotations

import gzip
import shutil

import duckdb
import pytest

from conftest import corpus
from logferry.usage import bundle
from logferry.usage import ingester as ingmod
from logferry.usage.db import connect
from logferry.usage.ingester import Ingester, ingest

#: corpus logs of several formats, with bad rows, directives, compressed, Snowplow hits
FILES = [
    "matomo-log-analytics/iis.log",
    "matomo-log-analytics/amazon_cloudfront_web.log",
    "matomo-log-analytics/common.log",
    "matomo-log-analytics/common.log.gz",
    "matomo-log-analytics/elb.log",
    "matomo-log-analytics/nginx_json.log",
    "matomo-log-analytics/incapsula_w3c.log",
    "matomo-log-analytics/logs_to_tests.log",
    "aws-cloudfront-docs/AccessLogs.md@5999c0d8_example_web_33fields.log",
    "snowplow/hive-etl-2013/TransactionTest.line",
    "snowplow/hive-etl-2013/ContinueOnBadRowTest.line",
]

_VOLATILE = {"ingested_at", "updated_at"}


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every table's rows, sorted (the manifest without its clock columns)."""
    out = {}
    for (name,) in con.execute("SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema = 'main' ORDER BY 1").fetchall():
        cols = [c for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [name]).fetchall() if c not in _VOLATILE]
        rows = con.execute(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)} FROM {name}").fetchall()
        out[name] = sorted(rows, key=repr)
    return out


def _one_at_a_time(db, paths):
    con = connect(db)
    ing = Ingester(con)
    results = [ing.ingest_file(p) for p in paths]
    return con, results


def test_files_written_together_store_what_one_at_a_time_stores(tmp_path):
    paths = [str(corpus(f)) for f in FILES]
    a = connect(tmp_path / "a.duckdb")
    together = ingest(a, paths)
    b, alone = _one_at_a_time(tmp_path / "b.duckdb", paths)
    assert [(r.path, r.status, r.file_id, r.records, r.bad_rows) for r in together.files] == \
        [(r.path, r.status, r.file_id, r.records, r.bad_rows) for r in alone]
    assert sum(r.bad_rows for r in alone) > 0 and sum(r.records for r in alone) > 10
    ta, tb = _tables(a), _tables(b)
    assert "events" in tb  # (Snowplow hits reached the hook)
    assert ta == tb
    # records + bad rows + directives + blank == lines, per file
    assert a.execute("SELECT count(*) FROM files WHERE records + bad_rows + directives + blank != lines"
                     ).fetchall()[0][0] == 0


def test_a_copy_of_a_held_file_is_stored_once(tmp_path):
    src = corpus("matomo-log-analytics/iis.log")
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(src, logs / "a.log")
    shutil.copy(src, logs / "b.log")  # the same log under another name
    with open(src, "rb") as f, gzip.open(logs / "c.log.gz", "wb") as g:
        g.write(f.read())  # and compressed
    con = connect(tmp_path / "u.duckdb")
    s = ingest(con, [str(logs)])
    assert [r.status for r in s.files].count("new") == 1
    _, alone = _one_at_a_time(tmp_path / "b.duckdb", [str(logs / n) for n in ("a.log", "b.log", "c.log.gz")])
    assert [r.line() for r in s.files] == [r.line() for r in alone]
    n = con.execute("SELECT count(*) FROM requests").fetchall()[0][0]
    assert n == max(r.records for r in s.files) > 0
    again = ingest(con, [str(logs)])
    assert {r.status for r in again.files} <= {"duplicate", "unchanged"}
    # (and the first file keeps its name: the compressed copy's look at it changed nothing)
    assert con.execute("SELECT list(path) FROM files").fetchall()[0][0] == [str(logs / "a.log")]


def test_a_file_the_database_refuses_is_the_only_one_lost(tmp_path):
    """One write of several files fails: each is written alone, and only the one DuckDB
    refuses is an error (nothing of it stored); the others are stored."""
    w3c = corpus("matomo-log-analytics/iis.log")
    clf = corpus("matomo-log-analytics/common.log")
    con = connect(tmp_path / "u.duckdb")
    # a rule only the common log breaks (the IIS log's lines carry a user agent)
    con.execute("ALTER TABLE requests ALTER COLUMN user_agent SET NOT NULL")
    s = ingest(con, [str(w3c), str(clf)])
    statuses = {r.path: r.status for r in s.files}
    assert statuses[str(w3c)] == "new" and statuses[str(clf)] == "error", s.files
    err = next(r for r in s.files if r.status == "error")
    assert err.message.startswith("database: ")
    assert con.execute("SELECT list(DISTINCT path) FROM files").fetchall()[0][0] == [str(w3c)]
    assert con.execute("SELECT count(*) FROM requests").fetchall()[0][0] == s.files[0].records


def test_a_held_file_that_reaches_a_checkpoint_goes_on_in_the_database(tmp_path, monkeypatch):
    """A small file of more rows than a commit group: written with the files held before
    it at its first checkpoint, then read on like any file; the same rows as alone."""
    monkeypatch.setattr(ingmod, "_COMMIT_ROWS", 3)
    paths = [str(corpus("matomo-log-analytics/common.log")), str(corpus("matomo-log-analytics/iis.log"))]
    a = connect(tmp_path / "a.duckdb")
    together = ingest(a, paths)
    b, alone = _one_at_a_time(tmp_path / "b.duckdb", paths)
    assert [(r.status, r.records) for r in together.files] == [(r.status, r.records) for r in alone]
    assert _tables(a) == _tables(b)


def test_held_files_are_bounded_by_rows_and_reported_once_written(tmp_path, monkeypatch):
    """Results come once their files are written (a killed run reports none it did not
    store), in the order of the inputs."""
    monkeypatch.setattr(bundle, "BUNDLE_ROWS", 1)  # each file is written after its read
    paths = [str(corpus(f)) for f in FILES[:4]]
    con = connect(tmp_path / "u.duckdb")
    seen = []

    def on_file(res):
        stored = con.execute("SELECT count(*) FROM files WHERE file_id = ?", [res.file_id]).fetchall()[0][0]
        seen.append((res.path, stored))

    ingest(con, paths, on_file=on_file)
    assert seen == [(p, 1) for p in paths]


@pytest.mark.parametrize("rows", [1, 10**9])
def test_a_run_interrupted_stores_the_held_files_not_at_all_and_the_next_run_once(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(bundle, "BUNDLE_ROWS", rows)
    paths = [str(corpus(f)) for f in FILES[:4]]
    con = connect(tmp_path / "u.duckdb")
    real = Ingester.ingest_file
    calls = []

    def stop_at_third(self, sf):
        calls.append(sf)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, sf)

    monkeypatch.setattr(Ingester, "ingest_file", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        ingest(con, paths)
    stored = con.execute("SELECT count(*) FROM files").fetchall()[0][0]
    assert stored == (2 if rows == 1 else 0)
    monkeypatch.setattr(Ingester, "ingest_file", real)
    s = ingest(con, paths)
    b, alone = _one_at_a_time(tmp_path / "b.duckdb", paths)
    assert sorted(r.records for r in s.files if r.status == "new") == sorted(
        r.records for r in alone[stored:])
    assert _tables(con)["requests"] == _tables(b)["requests"]


def _clf(i: int, host: str = "10.0.0.1") -> str:
    return (f'{host} - - [10/Oct/2024:13:{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET /p/{i} HTTP/1.1" '
            f'200 {100 + i} "-" "curl/8"\n')


def _both(tmp_path, folder, a, b):
    """One run over ``folder`` with files held and identified from the run's index (into
    ``a``), and one file at a time asking the database (into ``b``): the same results."""
    together = ingest(a, [str(folder)])
    ing = Ingester(b)
    from logferry.usage.ingester import expand_inputs

    alone = [ing.ingest_file(sf) for sf in expand_inputs([str(folder)])]
    assert [r.line() for r in together.files] == [r.line() for r in alone]
    assert _tables(a) == _tables(b)
    return together


def test_known_files_are_identified_from_the_runs_index_as_the_database_would(tmp_path):
    """Grown, renamed, rotated and compressed, copied, truncated in place: each run's
    answers (from the index of what the database knew at its start, asking the database
    only about the files that may match) are those of asking the database for each file."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("".join(_clf(i) for i in range(50)))
    (logs / "b.log").write_text("".join(_clf(i, "10.0.0.2") for i in range(30)))
    (logs / "c.log").write_text("".join(_clf(i, "10.0.0.3") for i in range(40)) + "garbage line\n")
    a, b = connect(tmp_path / "a.duckdb"), connect(tmp_path / "b.duckdb")
    _both(tmp_path, logs, a, b)
    # grown; renamed with a new file in its place; rotated and compressed; a copy
    with open(logs / "a.log", "a") as f:
        f.write("".join(_clf(i) for i in range(50, 80)))
    (logs / "b.log").rename(logs / "b.log.1")
    (logs / "b.log").write_text("".join(_clf(i, "10.0.0.4") for i in range(10)))
    with open(logs / "c.log", "rb") as f, gzip.open(logs / "c.log.1.gz", "wb") as g:
        g.write(f.read())
    (logs / "c.log").unlink()
    shutil.copy(logs / "b.log.1", logs / "copy-of-b.log")
    s = _both(tmp_path, logs, a, b)
    assert {r.status for r in s.files} >= {"grown", "new", "duplicate"}
    # truncated in place (copytruncate) and written again; everything else as it was
    (logs / "a.log").write_text("".join(_clf(i, "10.0.0.9") for i in range(5)))
    s = _both(tmp_path, logs, a, b)
    assert [r.status for r in s.files if r.path.endswith("a.log")] == ["new"]


def test_a_database_of_too_many_files_to_index_is_asked_about_each_file(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "INDEX_FILES", 1)
    from logferry.usage import duckstore

    monkeypatch.setattr(duckstore, "INDEX_FILES", 1)
    paths = [str(corpus(f)) for f in FILES[:3]]
    a = connect(tmp_path / "a.duckdb")
    ingest(a, paths[:2])  # (2 files: more than the index may hold)
    seen = []
    s = ingest(a, paths, on_file=lambda r: seen.append(a.execute(
        "SELECT count(*) FROM files WHERE file_id = ?", [r.file_id]).fetchall()[0][0]))
    assert [r.status for r in s.files] == ["duplicate", "duplicate", "new"] and seen == [1, 1, 1]
    b, _ = _one_at_a_time(tmp_path / "b.duckdb", paths)
    assert _tables(a) == _tables(b)


def test_remote_objects_moved_and_added_are_identified_as_the_database_would(tmp_path):
    """Objects (fsspec's memory store): one renamed (copy + delete) is that object moved,
    a new one is new, whether the run asks its index or the database per object."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = "/bundle-remote"
    fs.pipe(f"{root}/a/x.log", "".join(_clf(i) for i in range(20)).encode())
    fs.pipe(f"{root}/a/y.log", "".join(_clf(i, "10.0.0.7") for i in range(25)).encode())
    url = f"memory://{root}/a/*.log"
    try:
        a, b = connect(tmp_path / "a.duckdb"), connect(tmp_path / "b.duckdb")
        _both(tmp_path, url, a, b)
        fs.pipe(f"{root}/a/z.log", fs.cat(f"{root}/a/y.log"))
        fs.rm(f"{root}/a/y.log")
        fs.pipe(f"{root}/a/w.log", "".join(_clf(i, "10.0.0.8") for i in range(5)).encode())
        s = _both(tmp_path, url, a, b)
        assert sorted(r.status for r in s.files) == ["duplicate", "duplicate", "new"]
        assert a.execute("SELECT count(*) FROM requests").fetchall()[0][0] == 50
    finally:
        fs.rm(root, recursive=True)
