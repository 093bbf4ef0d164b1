"""The lake on a folder of many small files (a CloudFront bucket): a task reads several and
writes their rows together -- one data file per table and partition, not one per file --
with the same rows, manifest and reports as one task per file and as the DuckDB file."""

from __future__ import annotations

import gzip
import json

import pytest
from tests.test_lake import clf, cli, report

pytest.importorskip("pyiceberg")

HOSTS = ("a.example", "b.example")


def small_logs(folder, n: int = 40, lines: int = 24) -> str:
    """``n`` gzip logs of ``lines`` requests each (on two days: two partitions) and one bad
    line."""
    folder.mkdir()
    for k in range(n):
        body = b"".join(clf(i + 1000 * k, HOSTS[i % 2], day=1 + i // 2 % 2) for i in range(lines))
        (folder / f"E2EDGE.2024-03-01.{k:04d}.gz").write_bytes(gzip.compress(body + b"not a log line\n"))
    return str(folder)


def data_files(lake, table: str) -> int:
    from logferry.lake.tables import Lake, Where

    t = Lake(Where.of(str(lake))).table(table)
    return 0 if t.current_snapshot() is None else t.inspect.data_files().num_rows


def sql(lake, q: str, store: str = "--lake") -> list[dict]:
    return [json.loads(line) for line in cli("sql", store, lake, "--json", q).stdout.splitlines()]


def by_path(lake) -> dict[str, tuple]:
    """The manifest's counts of each file."""
    rows = sql(lake, "SELECT path, lines, records, bad_rows, directives, blank FROM files")
    assert all(r["records"] + r["bad_rows"] + r["directives"] + r["blank"] == r["lines"] for r in rows)
    return {r["path"]: tuple(r.values()) for r in rows}


ROWS = "SELECT file_id, line_number, host, path, status, bytes_sent FROM requests ORDER BY ALL"
BAD = "SELECT file_id, line_number, raw FROM bad_rows ORDER BY ALL"


def test_many_small_files_are_one_data_file_a_partition_with_the_rows_of_one_task_each(tmp_path, monkeypatch):
    from logferry.lake import ingest as li

    folder = small_logs(tmp_path / "cf")
    lake, one, db = tmp_path / "lake", tmp_path / "one", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", folder, "--lake", lake, "--json").stdout)
    assert (s["new"], s["records"], s["bad_rows"]) == (40, 40 * 24, 40)
    assert [data_files(lake, t) for t in ("requests", "bad_rows", "rollups")] == [2, 1, 1]
    from logferry.lake import store

    # as before: a task a file, its rows written (and rolled up) as they come: its own data files
    monkeypatch.setattr(li, "TASK_FILES", 1)
    monkeypatch.setattr(store, "HOLD_READ_BYTES", 0)
    cli("ingest", folder, "--lake", one)
    assert [data_files(one, t) for t in ("requests", "bad_rows", "rollups")] == [2 * 40, 40, 40]
    cli("ingest", folder, "--db", db)
    assert sql(lake, ROWS) == sql(one, ROWS) and sql(lake, BAD) == sql(one, BAD)
    assert by_path(lake) == by_path(one) and len(by_path(lake)) == 40
    assert report("--lake", lake) == report("--lake", one) == report("--db", db)
    assert report("--lake", lake, "--rollups") == report("--lake", one, "--rollups")
    again = json.loads(cli("ingest", folder, "--lake", lake, "--json").stdout)
    assert (again["new"], again["records"], again["bad_rows"]) == (0, 0, 0)
    assert data_files(lake, "requests") == 2


def test_two_workers_share_the_small_files_in_tasks_of_several(tmp_path):
    """40 files on 2 one-thread workers: 4 tasks of 10 (two a worker), each writing one
    data file a partition (2), one of bad rows and one of rollups."""
    pytest.importorskip("distributed")
    folder = small_logs(tmp_path / "cf")
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", folder, "--lake", lake, "--workers", "2", "--json").stdout)
    assert (s["new"], s["errors"]) == (40, 0)
    assert [data_files(lake, t) for t in ("requests", "bad_rows", "rollups")] == [4 * 2, 4, 4]
    cli("ingest", folder, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    assert sql(lake, ROWS) == sql(db, ROWS, "--db")


def test_a_tasks_reads_are_committed_together_however_small_the_commit_batch(tmp_path, monkeypatch):
    """The reads of a task share data files: one commit adds them once, never a part of
    them (a second commit adding the same data file would count its rows twice)."""
    from logferry.lake import ingest as li
    from logferry.lake.tables import Lake, Where

    monkeypatch.setattr(li, "_COMMIT_BATCH", 3)
    folder = small_logs(tmp_path / "cf", n=12)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", folder, "--lake", lake)
    cli("ingest", folder, "--db", db)
    assert len(Lake(Where.of(str(lake))).table("files").metadata.snapshots) == 1
    assert report("--lake", lake) == report("--db", db)
    n = sql(lake, "SELECT count(*) AS n, count(DISTINCT (file_id, line_number)) AS d FROM requests")
    assert n == [{"n": 12 * 24, "d": 12 * 24}]


def test_a_large_file_among_small_ones_writes_its_own_and_the_held_rows_go_out_in_parts(tmp_path, monkeypatch):
    """A read holding more than HOLD_READ_BYTES writes its own data files (as a large file
    always did); the others' rows are written whenever HOLD_BYTES are held."""
    from logferry.lake import ingest as li
    from logferry.lake import store

    folder = small_logs(tmp_path / "cf", n=12)
    big = tmp_path / "cf" / "E2EDGE.2024-03-01.0005x.gz"  # (sorted among the small ones)
    big.write_bytes(gzip.compress(b"".join(clf(i, HOSTS[i % 2], day=1 + i // 2 % 2) for i in range(3000))))
    monkeypatch.setattr(store, "HOLD_READ_BYTES", 200_000)
    monkeypatch.setattr(li, "HOLD_BYTES", 12_000)  # (a small file holds ~5 kB: written 3 at a time)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", folder, "--lake", lake, "--json").stdout)
    assert (s["new"], s["records"]) == (13, 12 * 24 + 3000)
    # (4 writes of 3 small files a partition each, and the large file's own)
    assert [data_files(lake, t) for t in ("requests", "bad_rows", "rollups")] == [4 * 2 + 2, 4, 4 + 1]
    cli("ingest", folder, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    assert sql(lake, ROWS) == sql(db, ROWS, "--db")
    monkeypatch.undo()  # (every read held: the large file's rollups among the task's)
    cli("ingest", folder, "--lake", tmp_path / "held")
    assert data_files(tmp_path / "held", "rollups") == 1
    assert report("--lake", lake, "--rollups") == report("--lake", tmp_path / "held", "--rollups")


def test_rows_that_cannot_be_written_make_the_tasks_files_errors_and_leave_nothing(tmp_path, monkeypatch):
    from logferry.lake import store

    def refused(*a, **k):
        raise OSError("No space left on device")

    folder = small_logs(tmp_path / "cf", n=6)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    monkeypatch.setattr(store.LakeWriter, "_write", refused)  # (the rollups' file, after the requests')
    s = json.loads(cli("ingest", folder, "--lake", lake, "--json", ok=False).stdout)
    assert s["errors"] == 6 and s["records"] == 0
    assert all(f["status"] == "error" and "No space left" in f["message"] for f in s["details"])
    assert not list(lake.rglob("*.parquet")) and data_files(lake, "requests") == 0
    monkeypatch.undo()
    s = json.loads(cli("ingest", folder, "--lake", lake, "--json").stdout)
    assert (s["new"], s["records"]) == (6, 6 * 24)
    cli("ingest", folder, "--db", db)
    assert report("--lake", lake) == report("--db", db)


def test_compaction_keeps_the_counted_rows_of_a_shared_data_file_and_drops_the_redundant(tmp_path, monkeypatch):
    """A run planned on an older manifest reads 5 files another run stored meanwhile: their
    reads are redundant, their rows share data files with 35 counted reads; ``lake
    compact`` removes those rows only."""
    from logferry.lake import commit as cm
    from logferry.lake import ingest as li
    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    folder = small_logs(tmp_path / "cf")
    files = sorted(str(p) for p in (tmp_path / "cf").iterdir())
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", files[0], "--lake", lake)
    stale = cm.load_manifest(Lake(Where.of(str(lake))))
    cli("ingest", *files[1:6], "--lake", lake)
    monkeypatch.setattr(li, "load_manifest", lambda lake: stale)
    s = json.loads(cli("ingest", folder, "--lake", lake, "--json").stdout)
    assert (s["new"], s["skipped"]) == (34, 6), s
    monkeypatch.undo()
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert st["orphan_rows"] == 5 * 25  # (the redundant reads' requests and bad rows)
    monkeypatch.setattr(upkeep, "GRACE_SECONDS", 0)
    cli("lake", "compact", lake)
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert st["orphan_rows"] == 0 and st["tables"]["requests"]["rows"] == st["records"] == 40 * 24
    cli("ingest", *files, "--db", db)
    assert report("--lake", lake) == report("--db", db)
