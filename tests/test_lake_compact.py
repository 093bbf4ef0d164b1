"""``logferry lake compact``: partitions rewritten as streams, here or on a real Dask
LocalCluster (2 worker processes) into moto's S3 server; only the data files planned are
replaced, so a second compaction or an ingest at the same time loses and doubles nothing."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from tests.test_lake import cli, report
from tests.test_lake_scale import s3  # noqa: F401  (the fixture)

pytest.importorskip("pyiceberg")


def _logs(tmp_path, runs: int = 3) -> list[list[str]]:
    """``runs`` groups of logs, each of two sites on two days (4 partitions); a run each
    gives every partition one more data file."""
    out = []
    for r in range(runs):
        f = tmp_path / f"u_ex{r}.log"
        f.write_text("#Fields: date time s-sitename c-ip cs-method cs-uri-stem sc-status sc-bytes cs(User-Agent)\n" + "".join(
            f"2024-03-0{1 + i // 30 % 2} {i % 24:02d}:{i % 60:02d}:{r:02d} W3SVC{1 + i % 2} 10.0.{r}.{i % 7} GET "
            f"/p{i % 13} {(200, 404, 500)[i % 3]} {100 + i} agent/{i % 5}\n" for i in range(120)))
        out.append([str(f)])
    return out


def _data_files(lake, *catalog) -> int:
    return json.loads(cli("lake", "status", lake, *catalog, "--json").stdout)["tables"]["requests"]["data_files"]


def test_compaction_on_two_workers_in_s3_keeps_every_report_and_leaves_one_file_a_partition(tmp_path, s3,  # noqa: F811
                                                                                            monkeypatch):
    distributed = pytest.importorskip("distributed")  # noqa: F841
    lake, catalog, db = "s3://lake/usage", ("--catalog", tmp_path / "catalog.db"), tmp_path / "u.duckdb"
    for run in _logs(tmp_path):
        cli("ingest", *run, "--lake", lake, *catalog)
        cli("ingest", *run, "--db", db)
    assert _data_files(lake, *catalog) == 12
    r = cli("lake", "compact", lake, *catalog, "--workers", "2")
    # (and the manifest's and the rollups' 3 data files each: 6 partitions, 18 -> 6)
    assert "compacted 6 partitions: 18 -> 6 data files, 0 uncounted rows removed" in r.output, r.output
    assert _data_files(lake, *catalog) == 4
    assert report("--lake", lake, *catalog) == report("--db", db)
    q = "SELECT file_id, line_number, host, path, status FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, *catalog, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    # again: each partition one file whose rows all count (checked on two columns): nothing rewritten
    r = cli("lake", "compact", lake, *catalog)
    assert "compacted 0 partitions: 0 -> 0 data files" in r.output, r.output
    # a stray object in a table's folder (a killed run's data file) is listed and, once old
    # enough, deleted; the replaced files (held by the snapshots kept) and what is not a
    # table's are left
    import time

    import boto3

    from logferry.lake import upkeep

    s3c = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    for key in ("usage/logferry/requests/data/site=x/day=2024-03-01/stray.parquet", "usage/other/keep.txt"):
        s3c.put_object(Bucket="lake", Key=key, Body=b"12345")
    st = json.loads(cli("lake", "status", lake, *catalog, "--json").stdout)
    assert (st["strays"], st["stray_bytes"]) == (1, 5), st
    monkeypatch.setattr(upkeep, "STRAY_MIN", upkeep.dt.timedelta(0))
    time.sleep(1.1)
    r = cli("lake", "expire", lake, *catalog, "--older-than", "4000d", "--strays-older-than", "1s")
    assert "1 stray files deleted (5 bytes)" in r.output, r.output
    keys = {o["Key"] for o in s3c.list_objects_v2(Bucket="lake", Prefix="usage/")["Contents"]}
    assert "usage/other/keep.txt" in keys and not any(k.endswith("stray.parquet") for k in keys)
    assert json.loads(cli("lake", "status", lake, *catalog, "--json").stdout)["strays"] == 0
    assert report("--lake", lake, *catalog) == report("--db", db)


def test_a_partition_is_rewritten_a_slice_at_a_time(tmp_path, monkeypatch):
    """The rewrite streams: pyiceberg's reader, DuckDB's join with the kept reads and the
    Parquet writer pass REWRITE_ROWS rows at a time, each slice a row group of the new file
    (the whole partition was one Arrow table in memory)."""
    import pyarrow.parquet as pq

    from logferry.lake import upkeep

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for run in _logs(tmp_path):
        cli("ingest", *run, "--lake", lake)
        cli("ingest", *run, "--db", db)
    monkeypatch.setattr(upkeep, "REWRITE_ROWS", 7)
    before = {p for p in (lake / "logferry" / "requests" / "data").rglob("*.parquet")}
    cli("lake", "compact", lake)
    new = [p for p in (lake / "logferry" / "requests" / "data").rglob("*.parquet") if p not in before]
    assert len(new) == 4
    for p in new:
        meta = pq.ParquetFile(p).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert len(sizes) > 1 and max(sizes) <= 7 and sum(sizes) == meta.num_rows, sizes
        assert b"PARQUET:field_id" in (pq.read_schema(p).field("host").metadata or {})  # (readable by ids too)
    assert report("--lake", lake) == report("--db", db)


def test_two_compactions_at_once_replace_each_partition_once(tmp_path, monkeypatch):
    """A second ``lake compact`` commits while the first rewrites: the first's commit finds
    its planned files gone (pyiceberg's check of the files an overwrite deletes), keeps
    nothing of its own (its new files deleted) and every row is there once."""
    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for run in _logs(tmp_path, 2):
        cli("ingest", *run, "--lake", lake)
        cli("ingest", *run, "--db", db)
    real, written, other = upkeep.rewrite, [], {}

    def second_meanwhile(job, rw):
        if not other:
            monkeypatch.setattr(upkeep, "rewrite", real)
            other.update(upkeep.compact(Lake(Where.of(str(lake)))))
            monkeypatch.setattr(upkeep, "rewrite", second_meanwhile)
        got = real(job, rw)
        written.append(rw.out)
        return got

    monkeypatch.setattr(upkeep, "rewrite", second_meanwhile)
    first = upkeep.compact(Lake(Where.of(str(lake))))
    assert other == {"partitions": 6, "files_before": 12, "files_after": 6, "orphans_removed": 0}, other
    assert first == {"partitions": 0, "files_before": 0, "files_after": 0, "orphans_removed": 0}, first
    assert len(written) >= 4 and not any(__import__("os").path.exists(p) for p in written)
    assert _data_files(lake) == 4
    q = "SELECT file_id, line_number, host, path FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert st["tables"]["requests"]["rows"] == st["records"] and st["orphan_rows"] == 0


def test_compaction_on_an_unreachable_scheduler_is_one_error_line_and_leaves_the_lake(tmp_path):
    lake = tmp_path / "lake"
    for run in _logs(tmp_path, 2):
        cli("ingest", *run, "--lake", lake)
    r = cli("lake", "compact", lake, "--cluster", "tcp://127.0.0.1:9", ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: tcp://127.0.0.1:9: cannot reach the Dask"), r.output
    assert "Traceback" not in r.output and _data_files(lake) == 8


def test_a_compacted_file_is_left_as_it_is_when_small_files_join_its_partition(tmp_path, monkeypatch):
    """Logs arriving late for a compacted day: its small new files are merged together and
    the large compacted file (COMPACTED_BYTES or more) is only checked, not rewritten."""
    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    runs = _logs(tmp_path, 5)
    for run in runs[:2]:
        cli("ingest", *run, "--lake", lake)
    upkeep.compact(Lake(Where.of(str(lake))))

    def files() -> dict[str, int]:
        t = Lake(Where.of(str(lake))).table("requests")
        return {x.file.file_path: x.file.file_size_in_bytes for x in t.scan().plan_files()}

    compacted = files()
    monkeypatch.setattr(upkeep, "COMPACTED_BYTES", min(compacted.values()))
    cli("ingest", *runs[2], "--lake", lake)  # (one small file joins each partition: nothing to merge it with)
    upkeep.compact(Lake(Where.of(str(lake))))
    assert len(files()) == 8 and set(compacted) <= set(files())  # (nothing rewritten)
    for run in runs[3:]:
        cli("ingest", *run, "--lake", lake)
    upkeep.compact(Lake(Where.of(str(lake))))
    now = files()
    assert len(now) == 8 and set(compacted) <= set(now)  # (the compacted files kept, each beside one new)
    for run in runs:
        cli("ingest", *run, "--db", db)
    q = "SELECT file_id, line_number, site, path, status FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


def test_the_manifest_and_the_rollups_are_compacted_too(tmp_path):
    """Every run adds a data file to ``files`` (the manifest) and ``rollups``, and every run
    and report reads them whole: compaction makes each one file (written with field ids:
    those tables have no name mapping), and the lake reads, reports and ingests as before."""
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    runs = _logs(tmp_path, 4)
    for run in runs[:3]:
        cli("ingest", *run, "--lake", lake)
        cli("ingest", *run, "--db", db)

    def tables() -> dict[str, int]:
        st = json.loads(cli("lake", "status", lake, "--json").stdout)
        return {n: st["tables"][n]["data_files"] for n in ("files", "rollups")}

    assert tables() == {"files": 3, "rollups": 3}
    before = report("--lake", lake), report("--lake", lake, "--rollups")
    r = cli("lake", "compact", lake)
    assert "compacted 6 partitions: 18 -> 6 data files" in r.output, r.output  # (4 of requests, files, rollups)
    assert tables() == {"files": 1, "rollups": 1}
    assert (report("--lake", lake), report("--lake", lake, "--rollups")) == before
    again = json.loads(cli("ingest", *runs[0], "--lake", lake, "--json").stdout)
    assert (again["new"], again["records"]) == (0, 0)
    cli("ingest", *runs[3], "--lake", lake)
    cli("ingest", *runs[3], "--db", db)
    assert report("--lake", lake) == report("--db", db)
    assert "compacted 6 partitions: 12 -> 6 data files" in cli("lake", "compact", lake).output


def test_read_lines_finds_a_reads_line_range_by_its_id():
    """The compaction's counted reads, held as sorted arrays (a dict of a million reads
    held ~200 MB), answer as the dict did."""
    import pyarrow as pa

    from logferry.lake.query import ReadLines

    ids = [9, -3, 2**62, 5, 0]
    lines = ReadLines(pa.table({"read_id": ids, "first_line": [1, 2, 3, 4, 5], "last_line": [10, 20, 30, 40, 50]}))
    assert [lines.get(r) for r in ids] == [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)]
    assert [lines.get(r) for r in (-4, 1, 6, 2**62 + 1, 10)] == [None] * 5
    assert ReadLines(pa.table({"read_id": pa.array([], pa.int64()), "first_line": pa.array([], pa.int64()),
                               "last_line": pa.array([], pa.int64())})).get(1) is None


def test_the_manifests_sort_runs_in_bounded_memory_and_spills_to_a_folder_removed_after(tmp_path, monkeypatch):
    """The manifest's sort by file_id runs on one DuckDB thread within a memory limit (a
    million entries held 1.4 GB; on two threads DuckDB failed rather than spill), spilling
    to a folder of its own that is gone after the rewrite."""
    from logferry.lake import upkeep

    monkeypatch.setattr(upkeep, "MANIFEST_ROWS", 2)
    made = []
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda **k: made.append(mkdtemp(**k)) or made[-1])
    lake = tmp_path / "lake"
    for r in range(5):  # (5 runs of a log each: 5 manifest data files of one entry)
        f = tmp_path / f"s{r}.log"
        f.write_text(f'10.0.0.1 - - [01/Mar/2024:10:00:0{r} +0000] "GET /r{r} HTTP/1.1" 200 {r}\n')
        cli("ingest", f, "--lake", lake)
    q = "SELECT file_id, path, lines, records FROM files ORDER BY file_id"
    before = cli("sql", "--lake", lake, "--json", q).stdout
    cli("lake", "compact", lake)
    sorts = [p for p in made if Path(p).name.startswith("logferry-sort-")]
    assert len(sorts) == 1 and not os.path.exists(sorts[0])
    assert cli("sql", "--lake", lake, "--json", q).stdout == before
    assert "0 -> 0 data files" in cli("lake", "compact", lake).output  # (sorted already: not again)


def test_the_manifest_is_compacted_into_files_of_sorted_entries_and_a_grown_file_rewrites_one(tmp_path, monkeypatch):
    """The manifest is compacted into files of MANIFEST_ROWS entries sorted by file_id: an
    ingest that replaces an entry (a grown file's) deletes it by file_id, and pyiceberg
    rewrites only the file whose bounds hold it (one file of the whole manifest made every
    such ingest read and rewrite all of it)."""
    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    monkeypatch.setattr(upkeep, "MANIFEST_ROWS", 3)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    logs = []
    for r in range(4):  # (10 logs in 4 runs: 4 manifest data files)
        for k in range(3 if r < 3 else 1):
            f = tmp_path / f"s{r}{k}.log"
            f.write_text("".join(f"10.0.0.{i} - - [01/Mar/2024:10:{r:02d}:{i:02d} +0000] \"GET /r{r}k{k} HTTP/1.1\" "
                                 f"200 {i}\n" for i in range(5)))
            logs.append(str(f))
        cli("ingest", *logs[-(3 if r < 3 else 1):], "--lake", lake)

    def manifest_files() -> dict[str, tuple[int, int, int]]:
        t = Lake(Where.of(str(lake))).table("files")
        ids = t.schema().find_field("file_id").field_id
        return {x.file.file_path: (x.file.record_count, int.from_bytes(x.file.lower_bounds[ids], "little"),
                                   int.from_bytes(x.file.upper_bounds[ids], "little")) for x in t.scan().plan_files()}

    assert len(manifest_files()) == 4
    cli("lake", "compact", lake)
    chunks = manifest_files()
    assert sorted(chunks.values(), key=lambda v: v[1]) == [(3, 1, 3), (3, 4, 6), (3, 7, 9), (1, 10, 10)], chunks
    assert "0 -> 0 data files" in cli("lake", "compact", lake).output  # (as it should be: nothing to do)
    with open(logs[4], "a") as f:  # (file_id 5: in the second file)
        f.write('10.0.0.9 - - [01/Mar/2024:11:00:00 +0000] "GET /grown HTTP/1.1" 200 1\n')
    assert json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)["grown"] == 1
    after = manifest_files()
    kept = set(chunks) & set(after)
    assert len(kept) == 3 and {chunks[p][1] for p in set(chunks) - kept} == {4}, (chunks, after)
    assert sorted(v for p, v in after.items() if p not in kept) == [(1, 5, 5), (2, 4, 6)], after
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    q = "SELECT file_id, path, lines, records FROM files ORDER BY file_id"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


def test_the_manifests_chunks_are_written_in_its_own_folder_whatever_the_lakes_name(tmp_path, monkeypatch):
    """A lake folder named ``usage.parquet``: the compacted manifest's second and later
    files are named after the first (``-1``, ``-2`` before ``.parquet``) in the table's
    folder -- the name's every ``.parquet`` was replaced, so they went to a folder beside
    the lake (``usage-1.parquet/...``), another lake's perhaps, whose expiry takes them for
    strays."""
    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    monkeypatch.setattr(upkeep, "MANIFEST_ROWS", 2)
    lake, db = tmp_path / "usage.parquet", tmp_path / "u.duckdb"
    logs = []
    for k in range(5):
        f = tmp_path / f"m{k}.log"
        f.write_text("".join(f"10.0.0.{i} - - [01/Mar/2024:10:{k:02d}:{i:02d} +0000] \"GET /k{k} HTTP/1.1\" 200 {i}\n"
                             for i in range(3)))
        logs.append(str(f))
        cli("ingest", f, "--lake", lake)
    cli("lake", "compact", lake)
    t = Lake(Where.of(str(lake))).table("files")
    paths = [x.file.file_path for x in t.scan().plan_files()]
    assert len(paths) == 3 and all(p.startswith(f"{t.location()}/data/") for p in paths), paths
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["usage.parquet"]
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake) == report("--db", db)


def test_an_ingest_committed_after_the_manifest_was_read_keeps_its_rows_in_the_later_tables(tmp_path, monkeypatch):
    """The reads a compaction keeps are the manifest's as read at its start, and the young
    ones. An ingest that commits (data and manifest) while an earlier table is rewritten --
    the requests of a large lake can take hours -- is not in that manifest: its rows in a
    later table are young, whatever the time by then (its bad rows were judged against the
    clock at that table's plan, taken for orphans more than an hour old and dropped,
    though the manifest counts them)."""
    import time
    import types

    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    runs = _logs(tmp_path, 3)
    for r, (f,) in enumerate(runs):
        with open(f, "a") as out:
            out.write(f"not a log line {r}\n")
    for run in runs[:2]:
        cli("ingest", *run, "--lake", lake)
    later = [0.0]
    monkeypatch.setattr(upkeep, "time", types.SimpleNamespace(time=lambda: time.time() + later[0]))
    real = upkeep.rewrite

    def ingest_meanwhile(job, rw):
        if not later[0]:
            cli("ingest", *runs[2], "--lake", lake)  # (its data and manifest committed)
            later[0] = 2 * 3600  # (the rest of the requests take two hours)
        return real(job, rw)

    monkeypatch.setattr(upkeep, "rewrite", ingest_meanwhile)
    st = upkeep.compact(Lake(Where.of(str(lake))))
    assert st["orphans_removed"] == 0, st
    for run in runs:
        cli("ingest", *run, "--db", db)
    for q in ("SELECT file_id, line_number, raw FROM bad_rows ORDER BY ALL",
              "SELECT file_id, line_number, host, path FROM requests ORDER BY ALL"):
        assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout, q


def test_a_rewrite_task_does_not_grow_with_the_reads_of_other_partitions(tmp_path, monkeypatch):
    """What a partition's rewrite is sent (and the plan holds, for every partition at once)
    is its data files, not reads found elsewhere: the kept reads of each task were the
    lake's every young read and every counted read within its files' read id bounds (a
    file of many reads spans nearly all: ids are random), so a lake of 10,000 partitions
    and 100,000 reads planned a billion rows of reads."""
    import pickle

    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    lake = tmp_path / "lake"
    for run in _logs(tmp_path, 2):
        cli("ingest", *run, "--lake", lake)

    def sizes() -> dict[tuple, int]:
        got = {}

        def spy(job, rw):
            if rw.table == "requests":
                got[tuple(sorted(rw.part.items()))] = len(pickle.dumps(rw))
            return upkeep.Rewritten(rw, unchanged=True)  # (nothing written, nothing committed)

        with monkeypatch.context() as m:
            m.setattr(upkeep, "rewrite", spy)
            upkeep.compact(Lake(Where.of(str(lake))))
        return got

    before = sizes()
    assert len(before) == 4
    (tmp_path / "more").mkdir()
    header = "#Fields: date time s-sitename c-ip cs-method cs-uri-stem sc-status sc-bytes cs(User-Agent)\n"
    for i in range(100):  # (another site: partitions of their own)
        (tmp_path / "more" / f"u_ex{i}.log").write_text(f"{header}2024-03-05 10:00:{i % 60:02d} W3SVC9 10.1.0.{i % 9} "
                                                        f"GET /q{i} 200 {i} agent\n")
    cli("ingest", tmp_path / "more", "--lake", lake)
    after = sizes()
    for key, n in before.items():
        assert after[key] - n < 100, (key, n, after[key])


def test_a_steady_ingest_into_the_partitions_is_no_conflict_for_their_compaction(tmp_path, monkeypatch):
    """An ingest commits a data file of several reads into the partitions before each of
    the compaction's commits (today's partitions of a busy lake). Its read ids are new,
    but a file of several random ids has bounds spanning the partitions' ids (and a
    partition of over 200 reads matches any file): the overwrite's check took it for a
    conflict, the batch then each partition alone failed the same way, and nothing was
    compacted, every rewrite thrown away."""
    import itertools
    import types

    from logferry.lake import store, upkeep
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    runs = _logs(tmp_path, 2)
    for run in runs:
        cli("ingest", *run, "--lake", lake)
    # (the late reads' ids the lowest and highest there are: each late file's bounds span all)
    ids = itertools.chain.from_iterable((n, 2 ** 63 - 1 - n) for n in itertools.count())
    monkeypatch.setattr(store, "secrets", types.SimpleNamespace(randbits=lambda bits: next(ids)))
    real, late = upkeep._overwrite, []

    def ingest_first(t, done):
        if done[0].rw.table != "requests":  # (the manifest's and rollups' compaction: left alone)
            return real(t, done)
        pair = []
        for k in range(2):  # (two files, one task: a data file of both reads a partition)
            f = tmp_path / f"late{len(late) + k}.log"
            f.write_text(open(runs[0][0]).read().replace("10.0.0.", f"10.9.{len(late) + k}."))
            pair.append(f)
        cli("ingest", *pair, "--lake", lake)
        late.extend(pair)
        return real(t, done)

    monkeypatch.setattr(upkeep, "_overwrite", ingest_first)
    st = upkeep.compact(Lake(Where.of(str(lake))))
    # (the requests' 4 partitions, 8 -> 4; the manifest and the rollups, 3 -> 1 each: the late run's too)
    assert st == {"partitions": 6, "files_before": 14, "files_after": 6, "orphans_removed": 0}, st
    assert len(late) == 2 and _data_files(lake) == 4 + 4  # (one snapshot: the ingest's files beside)
    for f in [r[0] for r in runs] + late:
        cli("ingest", f, "--db", db)
    q = "SELECT file_id, line_number, host, path FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


def test_a_partition_that_cannot_be_rewritten_is_one_error_line_and_leaves_no_file(tmp_path):
    """A data file that cannot be read (storage refusing, a damaged file): the partitions
    rewritten are committed, that one is left as it is, the command says which in one
    line (exit 2), and no data file is left that no table names (the batch's rewritten
    files, never committed, were left behind, and the error was a traceback)."""
    from logferry.lake.tables import Lake, Where

    lake = tmp_path / "lake"
    for run in _logs(tmp_path, 2):
        cli("ingest", *run, "--lake", lake)
    t = Lake(Where.of(str(lake))).table("requests")
    last = list(t.scan().plan_files())[-1].file.file_path.removeprefix("file://")
    with open(last, "r+b") as f:
        f.write(b"\0" * 64)  # (its head: no Parquet file now)
    r = cli("lake", "compact", lake, ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "Traceback" not in r.output, r.output
    assert r.output.count("\n") == 1 and "requests" in r.output, r.output
    t = Lake(Where.of(str(lake))).table("requests")
    named = {x.file.file_path.removeprefix("file://") for x in t.scan().plan_files()}
    assert last in named and len(named) == 3 + 2  # (3 partitions compacted, the damaged one's 2 files left)
    on_disk = {str(p) for p in (lake / "logferry" / "requests" / "data").rglob("*.parquet")}
    left = {p for p in on_disk if p not in named}
    assert len(left) == 2 * 3, left  # (the compacted partitions' former files: no other)


def test_an_interrupted_compaction_leaves_no_file_that_no_table_names(tmp_path, monkeypatch):
    """Ctrl-C while the second partition is written: the first's new file (rewritten, not
    committed) and the second's half-written one are deleted; the lake is as it was."""
    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    lake = tmp_path / "lake"
    for run in _logs(tmp_path, 2):
        cli("ingest", *run, "--lake", lake)
    before = {str(p) for p in (lake / "logferry" / "requests" / "data").rglob("*.parquet")}
    real_rewrite, real_conform, started = upkeep._rewrite, upkeep._conform, []

    def counted(*args):
        started.append(1)
        return real_rewrite(*args)

    def interrupt_the_second(b, target):
        if len(started) > 1:
            raise KeyboardInterrupt
        return real_conform(b, target)

    monkeypatch.setattr(upkeep, "_rewrite", counted)
    monkeypatch.setattr(upkeep, "_conform", interrupt_the_second)
    with pytest.raises(KeyboardInterrupt):
        upkeep.compact(Lake(Where.of(str(lake))))
    assert {str(p) for p in (lake / "logferry" / "requests" / "data").rglob("*.parquet")} == before
    assert _data_files(lake) == 8


def test_compact_since_a_day_leaves_the_days_before(tmp_path):
    """``lake compact --since DATE|AGE``: only the partitions of that day and later (a daily
    compaction of a big lake does not list and check every day it ever had), the manifest
    and the rollups always; a mistake is one error line."""
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for run in _logs(tmp_path, 2):  # (days 2024-03-01 and -02, two sites: 4 partitions of 2 files)
        cli("ingest", *run, "--lake", lake)
        cli("ingest", *run, "--db", db)
    r = cli("lake", "compact", lake, "--since", "2024-03-02")
    assert "compacted 4 partitions: 8 -> 4 data files" in r.output, r.output  # (2 of day 2, manifest, rollups)

    def per_day() -> dict[str, int]:
        got: dict[str, int] = {}
        for x in Lake(Where.of(str(lake))).table("requests").scan().plan_files():
            day = str(x.file.file_path).split("/day=")[1][:10]
            got[day] = got.get(day, 0) + 1
        return got

    assert per_day() == {"2024-03-01": 4, "2024-03-02": 2}
    assert "compacted 0 partitions" in cli("lake", "compact", lake, "--since", "1d").output  # (today: none)
    assert "compacted 2 partitions: 4 -> 2" in cli("lake", "compact", lake).output
    assert per_day() == {"2024-03-01": 2, "2024-03-02": 2}
    q = "SELECT file_id, line_number, site, path FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    for bad in ("yesterday", "2024-13-01", "-2d"):
        r = cli("lake", "compact", lake, "--since", bad, ok=False)
        assert r.exit_code == 2 and r.output.startswith("logferry: error: --since"), r.output


@pytest.mark.parametrize("since", ["9999-12-31T23:00-05:00", "0001-01-01T00:00+14:00"])
def test_compact_since_a_date_beyond_the_calendar_in_utc_is_one_error_line(tmp_path, since):
    """A date whose UTC day is before the year 1 or after 9999 (an offset carries it over):
    ``--since`` is one error line, as any other mistake (it was an OverflowError traceback)."""
    r = cli("lake", "compact", tmp_path / "lake", "--since", since, ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: --since"), r.output
    assert not (tmp_path / "lake").exists()


def test_compact_since_also_compacts_the_rows_without_a_time(tmp_path):
    """Rows without a timestamp (a log without date/time fields) are in their site's
    ``day=null`` partition, of no day: ``--since`` compacts it as it does the manifest (a
    daily ``--since 2d`` left it one more small file a run, for ever)."""
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for r in range(2):
        log = tmp_path / f"n{r}.log"
        log.write_text("#Fields: s-sitename c-ip cs-method cs-uri-stem sc-status\n"
                       f"W3SVC1 10.0.0.{r} GET /a 200\nW3SVC1 10.0.0.{r} GET /b 404\n")
        cli("ingest", log, "--lake", lake)
        cli("ingest", log, "--db", db)
    (old,) = _logs(tmp_path, 1)  # (and a day long before --since: left as it is)
    for _ in range(2):
        cli("ingest", *old, "--lake", lake)
        cli("ingest", *old, "--db", db)

    def files() -> dict[str, int]:
        got: dict[str, int] = {}
        for x in Lake(Where.of(str(lake))).table("requests").scan().plan_files():
            part = str(x.file.file_path).split("/day=")[1].split("/")[0]
            got[part] = got.get(part, 0) + 1
        return got

    before = files()
    assert before["null"] == 2, before
    cli("lake", "compact", lake, "--since", "2d")
    assert files() == {**before, "null": 1}
    q = "SELECT file_id, line_number, site, path FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


def test_expire_deletes_the_files_only_expired_snapshots_held(tmp_path, monkeypatch):
    """A compaction's replaced files and an expired day's files were kept on storage for
    ever (pyiceberg's snapshot expiry removes snapshots, not files): ``lake expire`` deletes
    the files no snapshot it keeps holds, after the snapshots' own retention."""
    import time

    from logferry.lake import upkeep

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for run in _logs(tmp_path, 2):
        cli("ingest", *run, "--lake", lake)
        cli("ingest", *run, "--db", db)
    data = lake / "logferry" / "requests" / "data"
    replaced = set(data.rglob("*.parquet"))
    cli("lake", "compact", lake)
    assert len(set(data.rglob("*.parquet")) - replaced) == 4
    before = report("--lake", lake)
    r = cli("lake", "expire", lake, "--older-than", "4000d", "--keep-snapshots", "10m", ok=False)
    assert r.exit_code == 2 and "--keep-snapshots: at least 60 minutes" in r.output, r.output
    monkeypatch.setattr(upkeep, "GRACE_SECONDS", 1)
    time.sleep(1.1)  # (every snapshot older than the 1 s kept)
    r = cli("lake", "expire", lake, "--older-than", "4000d", "--keep-snapshots", "1s")  # (the 2024 days kept)
    assert "files deleted" in r.output and "0 files deleted" not in r.output, r.output
    assert not any(p.exists() for p in replaced) and len(list(data.rglob("*.parquet"))) == 4
    assert report("--lake", lake) == before == report("--db", db)
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert st["tables"]["requests"]["data_files"] == 4 and st["orphan_rows"] == 0
    again = json.loads(cli("ingest", *_logs(tmp_path, 2)[0], "--lake", lake, "--json").stdout)
    assert (again["new"], again["records"]) == (0, 0)
