"""The usage lake (Apache Iceberg through pyiceberg's SQLite catalog): exactly once, the
same reports as the DuckDB file, the manifest's counts, readers that never wait, bad
lakes refused; Dask on a LocalCluster and moto's S3 server in test_lake_scale.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from logferry.cli import app

pytest.importorskip("pyiceberg")  # the extra `lake` (scripts/test installs it)

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0"


def clf(i: int, host: str, day: int = 1, status: int = 200) -> bytes:
    return (f'10.0.{i % 7}.{i % 5} - - [{day:02d}/Mar/2024:{i % 24:02d}:{i % 60:02d}:{i % 59:02d} +0000] '
            f'"GET /p{i % 13} HTTP/1.1" {status if i % 9 else 404} {100 + i} "-" "{UA} {i % 3}" {host}\n').encode()


def vhost_log(path, hosts=("a.example", "b.example"), n=60, day=1, extra=b"") -> str:
    body = b"".join(clf(i, hosts[i % len(hosts)], day) for i in range(n))
    path.write_bytes(body[: len(body) // 2] + b"not a log line\n" + body[len(body) // 2:] + extra)
    return str(path)


@pytest.fixture
def logs(tmp_path, corpus_path):
    """Logs of several formats and sites: the demo's samples (the shop's among them) and
    two virtual-host logs on two days."""
    from logferry.samples import write_samples

    files = list(write_samples(str(tmp_path / "samples")))
    (tmp_path / "vh").mkdir()
    files.append(vhost_log(tmp_path / "vh" / "one.log", day=1))
    files.append(vhost_log(tmp_path / "vh" / "two.log", hosts=("c.example", "a.example"), day=2,
                           extra=b"last line without its end"))
    return files


def cli(*args, ok=True):
    r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert r.exit_code == 0, r.output
    return r


def report(*args) -> dict:
    d = json.loads(cli("report", "--json", *args).stdout)
    d.pop("generated_at")
    return d


def manifest(lake: str) -> list[dict]:
    from logferry.lake.commit import manifest_rows
    from logferry.lake.tables import Lake, Where

    return manifest_rows(Lake(Where.of(lake)))


def test_ingest_twice_adds_nothing_and_each_files_counts_add_up(tmp_path, logs):
    lake = tmp_path / "lake"
    first = json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)
    assert first["new"] == len(logs) and first["records"] > 300 and first["bad_rows"] >= 2
    again = json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)
    assert (again["new"], again["grown"], again["records"], again["bad_rows"]) == (0, 0, 0, 0)
    rows = manifest(str(lake))
    assert len(rows) == len(logs) and sorted(r["file_id"] for r in rows) == list(range(1, len(logs) + 1))
    for r in rows:
        assert r["records"] + r["bad_rows"] + r["directives"] + r["blank"] == r["lines"], r["path"]
    n = json.loads(cli("sql", "--lake", lake, "--json", "SELECT count(*) AS n, count(DISTINCT (file_id, line_number)) AS d FROM requests").stdout)
    assert n == {"n": first["records"], "d": first["records"]}
    assert sum(r["records"] for r in rows) == first["records"]


@pytest.mark.parametrize("filters", [(), ("--site", "a.example"), ("--since", "2024-03-02", "--until", "2024-03-03")])
def test_report_on_the_lake_is_the_report_on_the_database(tmp_path, logs, filters):
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", *logs, "--lake", lake)
    cli("ingest", *logs, "--db", db)
    want = report("--db", db, *filters)
    got = report("--lake", lake, *filters)
    assert got == want
    if filters:
        assert got != report("--db", db), "the filter changes the report"
    q = "SELECT file_id, line_number, status, path, host FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


@pytest.fixture
def shop_and_snowplow(tmp_path, corpus_path):
    """The shop sample (orders and their items) and Snowplow collector logs (CloudFront,
    Clojure Tomcat, Thrift; events and bad events)."""
    from logferry.samples import write_samples

    shop = [f for f in write_samples(str(tmp_path / "samples")) if "/shop/" in f]
    return shop + [str(corpus_path(f"snowplow/{f}")) for f in (
        "spark-enrich/MasterCfSpec.line", "enrich-2022/CljTomcatLoaderSpec.invalid.line",
        "enrich-2022/CljTomcatLoaderSpec.valid.line", "hive-etl-2013/TransactionItemTest.line",
        "spark-enrich/BadTrackerCfLinesSpec.line",
        "enrich-2022/thrift/beam_EnrichSpec_struct_event_SnowplowRawEvent.b64")]


def test_the_shop_and_snowplow_tables_and_reports_are_the_databases(tmp_path, shop_and_snowplow):
    """The lake stores the shop's orders and Snowplow's events (partitioned by site and
    day, once per read like the requests): the same rows and reports as the database."""
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for _ in range(2):  # (the second ingest adds nothing)
        cli("ingest", *shop_and_snowplow, "--lake", lake)
    cli("ingest", *shop_and_snowplow, "--db", db)
    for table, n in (("orders", 20), ("order_items", 20), ("events", 10), ("bad_events", 5)):
        q = f"SELECT * EXCLUDE (file_id), file_id FROM {table} ORDER BY ALL"
        got = cli("sql", "--lake", lake, "--json", q).stdout
        assert got == cli("sql", "--db", db, "--json", q).stdout, table
        assert got.count("\n") >= n, (table, got)
    got = report("--lake", lake)
    assert got == report("--db", db)
    assert got["reports"]["shop"]["sections"]["funnel"] and got["reports"]["snowplow_event_counts"]["sections"]
    late = report("--lake", lake, "--since", "2024-03-01T11:00")
    assert late == report("--db", db, "--since", "2024-03-01T11:00")
    revenue = [r["reports"]["shop"]["sections"]["revenue"][0]["orders"] for r in (got, late)]
    assert revenue[0] > revenue[1] > 0
    data = Path(lake) / "logferry"
    assert list((data / "orders" / "data").glob("site=*/day=2024-03-01/*.parquet"))
    assert list((data / "events" / "data").glob("site=*/day=*/*.parquet"))


def test_a_grown_file_and_its_unfinished_last_line_match_the_database(tmp_path):
    log = tmp_path / "grow.log"
    vhost_log(log, n=10, extra=b'10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET /x HTTP/1.1" 200 1')
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for _ in range(2):
        cli("ingest", log, "--lake", lake)
        cli("ingest", log, "--db", db)
        with open(log, "ab") as f:  # the last line ends ("...200 12"), then more lines
            f.write(b'2 "-" "x"\n' + clf(99, "b.example"))
    q = "SELECT file_id, line_number, status, bytes_sent FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    q = "SELECT lines, records, bad_rows, directives, blank, partial_tail, ingests FROM files"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


@pytest.mark.parametrize(("unfinished", "rest", "counts"), [
    (b"   ", b"junk\n", (0, 0, 1)),  # (a blank line so far: a bad row once it ends)
    (b"#comm", b"ent\n", (1, 0, 0)),  # (a directive so far, and once it ends)
])
def test_an_unfinished_last_line_that_stored_nothing_is_counted_once_when_it_ends(tmp_path, unfinished, rest,
                                                                                  counts):
    """A last line read before its end that stored no row was a directive or a blank line:
    read again in full, it leaves the count it was in (it was always taken off the
    directives, so a blank one left ``records + bad + directives + blank == lines + 1``)."""
    log = tmp_path / "grow.log"
    log.write_bytes(b"".join(clf(i, "a.example") for i in range(5)) + unfinished)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for _ in range(2):
        cli("ingest", log, "--lake", lake)
        cli("ingest", log, "--db", db)
        with open(log, "ab") as f:
            f.write(rest)
            rest = clf(9, "a.example")
    q = "SELECT lines, records, bad_rows, directives, blank, partial_tail FROM files"
    got = json.loads(cli("sql", "--lake", lake, "--json", q).stdout)
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    assert (got["directives"], got["blank"], got["bad_rows"]) == counts and got["lines"] == 6
    assert got["records"] + got["bad_rows"] + got["directives"] + got["blank"] == got["lines"]


def test_a_truncated_file_that_grows_again_is_read_on_as_its_new_entry(tmp_path):
    """A file truncated (the same inode: new content, here starting as the old did), then
    grown past its old size: it is the file registered after the truncation that grows,
    not the old entry of the same inode -- the database took the oldest, and read the new
    content on from the old checkpoint (a line cut in two, the lines before it lost)."""
    log = tmp_path / "t.log"
    log.write_bytes(b"".join(clf(i, "a.example") for i in range(60)))
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for step in range(3):
        if step == 1:
            with open(log, "r+b") as f:
                f.truncate(3000)  # (in the middle of a line, past the head fingerprint)
        elif step == 2:
            with open(log, "ab") as f:
                f.write(b" x\n" + b"".join(clf(i, "b.example") for i in range(100, 200)))
        cli("ingest", log, "--lake", lake)
        cli("ingest", log, "--db", db)
    q = "SELECT file_id, lines, records, bad_rows, partial_tail FROM files ORDER BY file_id"
    got = cli("sql", "--db", db, "--json", q).stdout
    assert got == cli("sql", "--lake", lake, "--json", q).stdout
    lines = log.read_bytes().count(b"\n")
    assert [json.loads(r)["lines"] for r in got.splitlines()] == [60, lines]
    q = "SELECT file_id, line_number, path FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


def test_a_file_truncated_in_place_to_content_starting_as_before_is_stored_as_new(tmp_path):
    """A file truncated in place (copytruncate, an object overwritten smaller) whose new
    content starts as the old did for its whole content identity (64 KiB), then differs:
    new content, stored as a new file as the database does -- the lake's commit took it for
    a file another run had stored meanwhile and dropped it, every run."""
    log = tmp_path / "t.log"
    body = b"".join(clf(i, "a.example") for i in range(1500))
    log.write_bytes(body)
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for step in range(3):
        if step == 1:
            with open(log, "r+b") as f:
                f.truncate(len(body) // 2)
                f.seek(70_000)
                f.write(body[70_000:len(body) // 2].replace(b"GET", b"PUT"))
        s = json.loads(cli("ingest", log, "--lake", lake, "--json").stdout)
        cli("ingest", log, "--db", db)
    assert (s["new"], s["records"]) == (0, 0)
    q = "SELECT file_id, line_number, method, path FROM requests ORDER BY ALL"
    got = cli("sql", "--lake", lake, "--json", q).stdout
    assert got == cli("sql", "--db", db, "--json", q).stdout and '"PUT"' in got


def test_the_unfinished_last_lines_of_several_files_are_each_counted_to_their_own_file(tmp_path):
    """load_manifest finds every unfinished last line's stored rows in one scan per table:
    each file gets its own (a record in one, a bad row in the other), and the next ingest,
    which reads both lines again, matches the database."""
    from logferry.lake.commit import load_manifest
    from logferry.lake.tables import Lake, Where

    good, bad = tmp_path / "good.log", tmp_path / "bad.log"
    vhost_log(good, n=10, extra=b'10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET /x HTTP/1.1" 200 1')
    vhost_log(bad, n=20, extra=b"not a log line either")
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    for first in (True, False):
        cli("ingest", good, bad, "--lake", lake)
        cli("ingest", good, bad, "--db", db)
        if first:
            got = {Path(r.path).name: r.last_line_rows for r in load_manifest(Lake(Where.of(str(lake)))).entries()}
            assert got == {"good.log": (1, 0), "bad.log": (0, 1)}
            with open(good, "ab") as f:  # the last lines end, then one more line each
                f.write(b'2 "-" "x"\n' + clf(99, "b.example"))
            with open(bad, "ab") as f:
                f.write(b"\n" + clf(98, "a.example"))
    q = "SELECT path, lines, records, bad_rows, partial_tail FROM files ORDER BY path"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    q = "SELECT file_id, line_number FROM bad_rows ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


def test_a_run_killed_between_the_data_and_the_manifest_is_repaired_by_the_next(tmp_path, logs, monkeypatch):
    from logferry.lake import commit as cm

    lake = tmp_path / "lake"

    def killed(*a, **kw):
        raise KeyboardInterrupt  # as a SIGKILL would: the data files are in, the manifest is not

    monkeypatch.setattr(cm, "_commit_manifest", killed)
    assert cli("ingest", *logs, "--lake", lake, ok=False).exit_code == 130
    monkeypatch.undo()
    from logferry.lake.tables import Lake, Where
    from logferry.lake.upkeep import ROW_TABLES

    killed_rows = sum(Lake(Where.of(str(lake))).table(n).scan().to_arrow().num_rows for n in ROW_TABLES)
    assert killed_rows > 0  # (orphans: rows of reads the manifest never counted)
    assert json.loads(cli("sql", "--lake", lake, "--json", "SELECT count(*) AS n FROM requests").stdout) == {"n": 0}
    s = json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)
    db = tmp_path / "u.duckdb"
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    assert s["new"] == len(logs)
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert st["orphan_rows"] == killed_rows and st["records"] == s["records"]
    from logferry.lake import upkeep

    cli("lake", "compact", lake)  # the orphans are younger than the grace period: kept
    assert json.loads(cli("lake", "status", lake, "--json").stdout)["orphan_rows"] == st["orphan_rows"]
    monkeypatch.setattr(upkeep, "GRACE_SECONDS", 0)
    cli("lake", "compact", lake)
    after = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert after["orphan_rows"] == 0 and after["tables"]["requests"]["rows"] == s["records"]
    assert report("--lake", lake) == report("--db", db)


def test_compact_keeps_the_rows_of_an_ingest_committing_meanwhile(tmp_path, monkeypatch):
    """An ingest adds its data files while ``lake compact`` is at work, its manifest commit
    still to come: the compaction replaces only the data files it planned, so that read's
    rows stay (they were once taken for orphans and removed, and the manifest then counted
    rows that were gone), and its commit does not conflict with the ingest's."""
    from logferry.lake import commit as cm
    from logferry.lake import upkeep
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    one, two, late = (tmp_path / f"{n}.log" for n in ("one", "two", "late"))
    for k, f in enumerate((one, two, late)):  # (rows of two days: two partitions)
        f.write_bytes(b"".join(clf(i + 100 * k, "a.example", day=1 + i % 2) for i in range(40)))
    for f in (one, two):  # (two data files in each partition: compacted; one run would write one)
        cli("ingest", f, "--lake", lake)
    paused, real_manifest, real_rewrite = [], cm._commit_manifest, upkeep.rewrite

    def ingest_meanwhile(*args):
        if not paused:
            monkeypatch.setattr(cm, "_commit_manifest", lambda *a: paused.append(a))
            cli("ingest", late, "--lake", lake)  # (its data files are in; its manifest waits)
        return real_rewrite(*args)

    monkeypatch.setattr(upkeep, "rewrite", ingest_meanwhile)
    stats = upkeep.compact(Lake(Where.of(str(lake))))
    real_manifest(*paused[0])
    cli("ingest", one, two, late, "--db", db)
    # (requests: 2 partitions, 4 -> 2; the manifest 2 -> 1; the rollups 3 -> 1, the late read's kept: young)
    assert stats == {"partitions": 4, "files_before": 9, "files_after": 4, "orphans_removed": 0}, stats
    q = "SELECT file_id, line_number, host, path FROM requests ORDER BY ALL"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert st["tables"]["requests"]["data_files"] == 4 and st["orphan_rows"] == 0  # (2 compacted + late's 2)


def test_expire_reads_its_age_as_every_duration_is_read():
    """``--older-than`` is values.parse_duration (the alert rules' durations): the same
    numbers and units, and one line naming the flag for anything else."""
    import datetime as dt

    from logferry.errors import ConfigError
    from logferry.lake.upkeep import parse_age

    assert parse_age("400d") == dt.timedelta(days=400) and parse_age(" 12 h ") == dt.timedelta(hours=12)
    assert parse_age("2w") == dt.timedelta(days=14) and parse_age("1.5d") == dt.timedelta(hours=36)
    for bad in ("400", "400x", "-1d", "", "d", "99999999999d", "1000000d"):  # (the last two: before year 1)
        with pytest.raises(ConfigError, match="--older-than"):
            parse_age(bad)


def test_expire_deletes_the_days_before_the_cutoff_and_keeps_the_manifest(tmp_path):
    import datetime as dt

    lake = tmp_path / "lake"
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    vhost_log(old, n=20, day=1)
    today = dt.datetime.now(dt.UTC).strftime("%d/%b/%Y")
    new.write_bytes(clf(1, "a.example").replace(b"01/Mar/2024", today.encode()))
    cli("ingest", old, new, "--lake", lake)
    r = cli("lake", "expire", lake, "--older-than", "400x", ok=False)
    assert r.exit_code == 2 and "400d" in r.output
    cli("lake", "expire", lake, "--older-than", "400d")
    q = "SELECT count(*) AS n FROM requests"
    assert json.loads(cli("sql", "--lake", lake, "--json", q).stdout) == {"n": 1}
    again = json.loads(cli("ingest", old, new, "--lake", lake, "--json").stdout)
    assert again["new"] == 0 and again["records"] == 0  # the manifest still knows them


def test_expire_deletes_the_old_days_rollups_too_and_says_how_many_rows_went(tmp_path):
    """After expiry the rollups agree with the rows (before, the expired days' rollups stayed:
    ``--rollups`` counted requests the lake no longer had), and the command says what it
    deleted (it said "expired 0 snapshots" while deleting rows)."""
    import datetime as dt

    lake = tmp_path / "lake"
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    vhost_log(old, hosts=("old.example",), n=20, day=1)
    today = dt.datetime.now(dt.UTC).strftime("%d/%b/%Y")
    new.write_bytes(clf(1, "a.example").replace(b"01/Mar/2024", today.encode()))
    cli("ingest", old, new, "--lake", lake)
    r = cli("lake", "expire", lake, "--older-than", "400d")
    assert "deleted 20 requests, " in r.output and " rollups;" in r.output, r.output
    sites = json.loads(cli("report", "--lake", lake, "--rollups", "--json").stdout)["sites"]
    assert [s["requests"] for s in sites] == [1]  # (today's one request; the old host's 20 went)
    assert "deleted no rows" in cli("lake", "expire", lake, "--older-than", "400d").output


def test_ingest_into_the_lake_takes_threads_as_into_the_database(tmp_path, monkeypatch):
    """``ingest --lake ... --threads N`` reads with N workers, as ``--db`` does (the option
    was taken and dropped); the rows are the same."""
    from logferry.usage import ingester

    seen = []
    real = ingester.read_options
    monkeypatch.setattr(ingester, "read_options", lambda o, t: seen.append(real(o, t)["threads"]) or real(o, t))
    log = vhost_log(tmp_path / "one.log")
    cli("ingest", log, "--lake", tmp_path / "three", "--threads", "3")
    cli("ingest", log, "--db", tmp_path / "u.duckdb", "--threads", "3")
    assert seen == [3, 3]
    assert report("--lake", tmp_path / "three") == report("--db", tmp_path / "u.duckdb")


def test_a_report_reads_the_last_snapshot_while_an_ingest_commits(tmp_path, logs, monkeypatch):
    """Readers never wait: with an ingest paused inside its commit (its data files added,
    its manifest not yet), report --lake answers from the last committed snapshot."""
    from logferry.lake import commit as cm

    lake = tmp_path / "lake"
    cli("ingest", logs[0], "--lake", lake)
    before = report("--lake", lake)
    inside, go = threading.Event(), threading.Event()
    real = cm._commit_manifest

    def paused(*a, **kw):
        inside.set()
        assert go.wait(60)
        return real(*a, **kw)

    monkeypatch.setattr(cm, "_commit_manifest", paused)
    t = threading.Thread(target=cli, args=("ingest", *logs[1:], "--lake", lake))
    t.start()
    try:
        assert inside.wait(60)
        assert report("--lake", lake) == before
    finally:
        go.set()
        t.join()
    after = report("--lake", lake)
    assert after["reports"]["summary"]["sections"]["totals"] != before["reports"]["summary"]["sections"]["totals"]


def test_a_lake_from_a_newer_logferry_or_no_lake_is_an_error(tmp_path, logs):
    from logferry.lake.tables import NAMESPACE, Lake, Where

    lake = tmp_path / "lake"
    r = cli("report", "--lake", lake, "--json", ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "no lake" in r.output
    cli("ingest", logs[0], "--lake", lake)
    newer = Lake(Where.of(str(lake)))
    newer.catalog.update_namespace_properties(NAMESPACE, updates={"logferry.lake-version": "99"})
    newer.catalog.drop_table((NAMESPACE, "rollups"))  # (a layout this logferry would complete)
    before = sorted(p for p in lake.rglob("*") if p.name != "catalog.db")
    for args in (("report", "--lake", lake, "--json"), ("ingest", logs[1], "--lake", lake),
                 ("sql", "--lake", lake, "SELECT 1"), ("lake", "status", lake)):
        r = cli(*args, ok=False)
        assert r.exit_code == 2 and "newer than this logferry" in r.output and "Traceback" not in r.output, args
    assert sorted(p for p in lake.rglob("*") if p.name != "catalog.db") == before
    assert not newer.catalog.table_exists((NAMESPACE, "rollups"))


def test_a_damaged_catalog_or_table_metadata_is_one_error_line(tmp_path, logs):
    """A lake version that is no number, a table's metadata file overwritten, a table
    missing (an ingest that failed while creating the lake): one error line and exit 2
    for every command that reads the lake (each was a traceback)."""
    from logferry.lake.tables import NAMESPACE, Lake, Where

    def refused(lake, says, ingest=True):
        for args in (("report", "--json", "--lake", lake), ("sql", "--lake", lake, "SELECT 1"),
                     ("lake", "status", lake), *[("ingest", logs[0], "--lake", lake)] * ingest):
            r = cli(*args, ok=False)
            assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and says in r.output, (args, r.output)

    for case in ("version", "metadata", "requests", "missing"):
        lake = tmp_path / case
        cli("ingest", logs[0], "--lake", lake)
        cat = Lake(Where.of(str(lake))).catalog
        if case == "version":
            cat.update_namespace_properties(NAMESPACE, updates={"logferry.lake-version": "abc"})
            refused(lake, "'abc' is not a number")
        elif case in ("metadata", "requests"):
            name = "files" if case == "metadata" else "requests"
            meta = cat.load_table((NAMESPACE, name)).metadata_location.removeprefix("file://")
            Path(meta).write_text("garbage\n")
            refused(lake, f"metadata of table logferry.{name} cannot be read")
        else:
            cat.drop_table((NAMESPACE, "files"))
            refused(lake, "no table logferry.files", ingest=False)
            cli("ingest", logs[0], "--lake", lake)  # (which creates the tables the lake lacks)
            assert json.loads(cli("lake", "status", lake, "--json").stdout)["files"] == 1


def test_a_lake_url_with_a_password_is_refused_without_showing_it(tmp_path, logs):
    """The lake's URL is in every path its catalog stores, and in status and errors: one
    with a password is refused before anything is written, the password not shown."""
    catalog = tmp_path / "catalog.db"
    for args in (("ingest", logs[0], "--lake", "s3://AKIAX:s3cr3t@bucket/lake", "--catalog", catalog),
                 ("report", "--lake", "gs://u:s3cr3t@bucket/lake", "--catalog", catalog),
                 ("lake", "status", "s3://AKIAX:s3cr3t@bucket/lake", "--catalog", catalog)):
        r = cli(*args, ok=False)
        assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "password" in r.output, args
        assert "s3cr3t" not in r.output and ":***@bucket/lake" in r.output, args
    assert not catalog.exists()


def test_an_unreachable_catalog_is_one_line_without_its_password(tmp_path, logs, monkeypatch):
    r = cli("report", "--lake", tmp_path, "--catalog", "mysql+nosuchdriver://ops:s3cr3t@127.0.0.1:1/lake",
            "--json", ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "s3cr3t" not in r.output
    from logferry.lake.tables import Where

    # a lake in object storage without --catalog: a SQLite file of this machine per lake URL
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    w = Where.of("s3://bucket/lake/")
    assert w.catalog_file == Where.of("s3://bucket/lake").catalog_file
    assert w.catalog_file.startswith(str(tmp_path / "data" / "logferry" / "lakes"))
    assert Where.of("s3://bucket/lake2").catalog_file != w.catalog_file
    r = cli("report", "--lake", "s3://bucket/lake", "--json", ok=False)  # (none yet: nothing is sent)
    assert r.exit_code == 2 and "no lake here" in r.output and "--catalog" in r.output
    r = cli("ingest", logs[0], "--db", tmp_path / "x.duckdb", "--workers", "2", ok=False)
    assert r.exit_code == 2 and "--workers applies with --lake" in r.output
    assert not (tmp_path / "x.duckdb").exists()


def test_duckdb_reads_the_data_files_as_they_are(tmp_path, logs):
    """A second engine: DuckDB reading the Parquet data files the lake lists finds every
    row the manifest counts (the tables are readable without pyiceberg)."""
    import duckdb

    from logferry.lake.tables import Lake, Where

    lake = tmp_path / "lake"
    s = json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)
    paths = [t.file.file_path.removeprefix("file://")
             for t in Lake(Where.of(str(lake))).table("requests").scan().plan_files()]
    n = duckdb.sql(f"SELECT count(*), count(DISTINCT site) FROM read_parquet({paths!r})").fetchall()[0]
    assert n[0] == s["records"] and n[1] >= 1


def in_place(con) -> dict[str, str]:
    """The lake connection's tables that read data files in place: name -> the view's SQL
    (and no copy of the rows in the connection)."""
    views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
    copies = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = '_lake' "
                                        "AND estimated_size > 0").fetchall()}
    assert copies == {"reads", "filter"}, copies
    return {k: v for k, v in views.items() if "read_parquet(" in v}


def test_a_report_reads_the_data_files_in_place(tmp_path, logs):
    """The lake connection's requests, bad rows and manifest (``files``) are views over the
    planned data files (DuckDB reads them where they are), requests pruned to the site's
    partition."""
    from logferry.lake.query import connect_lake
    from logferry.lake.tables import Lake, Where
    from logferry.usage.reports import Params

    lake = tmp_path / "lake"
    s = json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)
    con = connect_lake(Lake(Where.of(str(lake))), None)
    views = in_place(con)
    assert set(views) == {"files", "requests", "bad_rows", "orders", "order_items"}
    assert f"'{lake}/logferry/requests/data/site=" in views["requests"] and f"'{lake}/logferry/files/" in views["files"]
    assert con.execute("SELECT count(*), sum(records) FROM files").fetchall() == [(len(logs), s["records"])]
    assert con.execute("SELECT count(*) FROM requests").fetchall() == [(s["records"],)]
    assert con.execute("SELECT count(*) FROM bad_rows").fetchall() == [(s["bad_rows"],)]
    con = connect_lake(Lake(Where.of(str(lake))), Params(site="proxy01"))
    assert "site=proxy01/" in in_place(con)["requests"] and "site=W3SVC1/" not in in_place(con)["requests"]
    assert con.execute("SELECT DISTINCT site FROM requests").fetchall() == [("proxy01",)]


def position_delete(table, task, positions: list[int]) -> None:
    """Commit a position-delete file dropping ``positions`` of ``task``'s data file, as an
    engine writing merge-on-read deletes does (pyiceberg writes copy-on-write only, so
    the delete manifest is written here with pyiceberg's own writer and snapshot producer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.manifest import (
        DataFile,
        DataFileContent,
        FileFormat,
        ManifestContent,
        ManifestEntry,
        ManifestEntryStatus,
        ManifestWriterV2,
    )
    from pyiceberg.table.snapshots import Operation
    from pyiceberg.table.update.snapshot import _FastAppendFiles

    path = task.file.file_path.replace(".parquet", "-deletes.parquet")
    field = lambda name, t, fid: pa.field(name, t, False, {"PARQUET:field_id": str(fid)})  # noqa: E731
    with table.io.new_output(path).create() as out:
        pq.write_table(pa.table({"file_path": [task.file.file_path] * len(positions), "pos": positions},
                                pa.schema([field("file_path", pa.string(), 2147483546),
                                           field("pos", pa.int64(), 2147483545)])), out)
    df = DataFile.from_args(content=DataFileContent.POSITION_DELETES, file_path=path, file_format=FileFormat.PARQUET,
                            partition=task.file.partition, record_count=len(positions),
                            file_size_in_bytes=len(table.io.new_input(path).open().read()))
    df.spec_id = task.file.spec_id

    class Deletes(ManifestWriterV2):
        def content(self):
            return ManifestContent.DELETES

        @property
        def _meta(self):
            return {**super()._meta, "content": "deletes"}

    class AddDeletes(_FastAppendFiles):
        def _manifests(self):
            meta = self._transaction.table_metadata
            with Deletes(meta.spec(), meta.schema(), self.new_manifest_output(), self._snapshot_id, "null") as w:
                w.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=self._snapshot_id,
                                              data_file=df))
            return [w.to_manifest_file(), *self._existing_manifests()]

    with table.transaction() as tx:
        AddDeletes(operation=Operation.OVERWRITE, transaction=tx, io=table.io).commit()


def test_rows_another_engine_deleted_with_delete_files_stay_deleted(tmp_path, logs):
    """A data file with position deletes (merge-on-read, written by another engine) is
    read through pyiceberg's reader, which applies them; the other files are read in place."""
    from logferry.lake.query import connect_lake
    from logferry.lake.tables import Lake, Where

    lake = tmp_path / "lake"
    s = json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)
    table = Lake(Where.of(str(lake))).table("requests")
    task = next(t for t in table.scan().plan_files() if t.file.record_count > 3)
    import pyarrow.parquet as pq

    rows = pq.read_table(task.file.file_path.removeprefix("file://"), columns=["read_id", "line_number"])
    position_delete(table, task, [0, 1, 2])
    assert [len(t.delete_files) for t in Lake(Where.of(str(lake))).table("requests").scan().plan_files()
            if t.file.file_path == task.file.file_path] == [1]
    con = connect_lake(Lake(Where.of(str(lake))), None)
    assert con.execute("SELECT count(*) FROM requests").fetchall() == [(s["records"] - 3,)]
    view = dict(con.execute("SELECT view_name, sql FROM duckdb_views()").fetchall())["requests"]
    assert "_lake.requests" in view and "read_parquet(" in view and task.file.file_path.removeprefix("file://") not in view
    q = ("SELECT list(r.line_number ORDER BY r.line_number) FROM requests r JOIN _lake.reads m USING (file_id) "
         "WHERE m.read_id = ? AND r.line_number <= ?")
    lines = rows.column("line_number").to_pylist()
    assert con.execute(q, [rows.column("read_id")[0].as_py(), lines[4]]).fetchall() == [(lines[3:5],)]
    # (lake status counts the rows through the same reader: the deleted ones are no orphans)
    assert json.loads(cli("lake", "status", lake, "--json").stdout)["orphan_rows"] == 0


def test_a_run_that_planned_on_an_older_manifest_adds_nothing_another_run_stored(tmp_path, logs, monkeypatch):
    """The commit point checks each read against the manifest as it is then: a run that
    planned before another committed the same files (both read them as new, or both
    read on a grown file from the same line) stores none of them again."""
    from logferry.lake import commit as cm
    from logferry.lake import ingest as li
    from logferry.lake.tables import Lake, Where

    lake = tmp_path / "lake"
    cli("ingest", logs[-1], "--lake", lake)
    stale = cm.load_manifest(Lake(Where.of(str(lake))))
    with open(logs[-1], "ab") as f:
        f.write(b"\n" + b"".join(_day3(i) for i in range(5)))
    cli("ingest", *logs, "--lake", lake)  # the others new, the last one grown
    monkeypatch.setattr(li, "load_manifest", lambda lake: stale)
    s = json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)
    assert s["records"] == 0 and s["bad_rows"] == 0 and s["skipped"] == len(logs), s
    monkeypatch.undo()
    db = tmp_path / "u.duckdb"
    cli("ingest", *logs, "--db", db)
    q = "SELECT count(*) AS n, count(DISTINCT (file_id, line_number)) AS d FROM requests"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout


def _day3(i: int) -> bytes:
    return clf(i, "d.example", day=3)


def _w3c(path, n: int, seed: int) -> None:
    """A W3C log: two sites over three hours, many visitors, log-normal latencies."""
    import random

    rnd = random.Random(seed)
    out = ["#Software: test\n#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes "
           "time-taken cs(User-Agent) cs-host\n"]
    for i in range(n):
        t = 10 * 3600 + i * 3 * 3600 // n
        ip = f"10.{rnd.randrange(40)}.{rnd.randrange(250)}.{rnd.randrange(9)}"
        out.append(f"2024-03-01 {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d} {ip} GET /p{i % 50} "
                   f"{rnd.choice((200, 200, 200, 301, 404, 503))} {rnd.randrange(100, 9000)} "
                   f"{max(1, int(rnd.lognormvariate(4, 1.2)))} UA/{rnd.randrange(3)} "
                   f"{'x.example' if i % 3 else 'y.example'}\n")
    path.write_text("".join(out))


def test_rollups_are_exact_for_counts_and_within_their_bounds_for_visitors_and_latency(tmp_path):
    import math

    log = tmp_path / "u_ex240301.log"
    _w3c(log, 30_000, seed=7)
    lake = tmp_path / "lake"
    cli("ingest", log, "--lake", lake)
    for filters in ((), ("--site", "x.example"), ("--since", "2024-03-01T11:00", "--until", "2024-03-01T12:00")):
        got = json.loads(cli("report", "--lake", lake, "--rollups", "--json", *filters).stdout)
        bounds = got["bounds"]
        where = "WHERE true" + (" AND coalesce(site, host) = 'x.example'" if "--site" in filters else "") + (
            " AND timestamp >= '2024-03-01 11:00+00' AND timestamp < '2024-03-01 12:00+00'" if "--since" in filters else "")
        q = (f"SELECT coalesce(site, host) AS site, count(*) AS requests, sum(bytes_sent) AS bytes_sent, "
             "count(*) FILTER (WHERE status // 100 = 2) AS s2xx, count(*) FILTER (WHERE status // 100 = 5) AS s5xx, "
             "count(DISTINCT hash((epoch_us(timestamp) // 86400000000), coalesce(client_ip, ''), "
             "coalesce(user_agent, ''))) AS visitors, list(duration_ms ORDER BY duration_ms) AS d "
             f"FROM requests {where} GROUP BY ALL ORDER BY site")
        exact = [json.loads(x) for x in cli("sql", "--lake", lake, "--json", q).stdout.splitlines()]
        assert [s["site"] for s in got["sites"]] == [e["site"] for e in exact], filters
        for s, e in zip(got["sites"], exact, strict=True):
            assert {k: s[k] for k in ("requests", "bytes_sent", "s2xx", "s5xx")} == \
                {k: e[k] for k in ("requests", "bytes_sent", "s2xx", "s5xx")}
            if not filters:
                assert e["visitors"] > 5120  # beyond linear counting: HyperLogLog's own estimate
            assert abs(s["visitors"] - e["visitors"]) <= 3 * bounds["visitors_relative_standard_error"] * e["visitors"]
            for q_ in (0.5, 0.9, 0.99):
                nearest = e["d"][math.ceil(q_ * len(e["d"])) - 1]
                est = s[f"p{int(q_ * 100)}_ms"]
                assert abs(est - nearest) <= bounds["latency_relative_error"] * nearest + 0.001, (q_, est, nearest)
    r = cli("report", "--lake", lake, "--rollups", ok=False)
    assert r.exit_code == 2 and "--json" in r.output


def test_rollups_never_count_more_visitors_than_requests(tmp_path):
    """50 requests of 50 visitors: the sketch's estimate (51 here) is capped by the exact
    request count -- the overview showed more visitors than requests."""
    log = tmp_path / "u_ex261102.log"
    log.write_text("#Fields: date time s-sitename cs-method cs-uri-stem sc-status c-ip cs(User-Agent)\n" + "".join(
        f"2026-11-02 10:{i:02d}:00 shop GET / 200 1.2.3.{i} UA\n" for i in range(50)))
    cli("ingest", log, "--lake", tmp_path / "lake")
    [site] = json.loads(cli("report", "--lake", tmp_path / "lake", "--rollups", "--json").stdout)["sites"]
    assert (site["requests"], site["visitors"]) == (50, 50)


def test_rollups_say_when_since_or_until_falls_inside_an_hour(tmp_path):
    """The rollups count whole hours: a range inside an hour read no rows and said nothing."""
    lake = tmp_path / "lake"
    cli("ingest", vhost_log(tmp_path / "one.log"), "--lake", lake)

    def rollups(*args):
        return json.loads(cli("report", "--lake", lake, "--rollups", "--json", *args).stdout)

    d = rollups("--since", "2024-03-01T10:30:00Z", "--until", "2024-03-01T11:00:00Z")
    assert d["sites"] == [] and d["warnings"] == [
        "--since not on the hour: the rollups count the whole hours that start in [since, until)"]
    assert "--since and --until not on" in rollups("--since", "2024-03-01T10:30", "--until", "2024-03-01T11:15")[
        "warnings"][0]
    assert rollups("--since", "2024-03-01", "--until", "2024-03-01T11:00")["warnings"] == []


def test_rollups_count_a_reread_unfinished_last_line_once(tmp_path):
    """A last line read before its end was written is read again, complete, by the next
    ingest: the exact tables count it once, and so do the rollups (the line's rollup row
    is its own, and stops counting when the manifest clips the earlier read)."""
    log = tmp_path / "grow.log"
    vhost_log(log, n=10, extra=b'10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET /x HTTP/1.1" 500 1')
    lake = tmp_path / "lake"
    cli("ingest", log, "--lake", lake)
    with open(log, "ab") as f:  # the last line ends ("...500 12"), then two more lines
        f.write(b'2 "-" "x"\n' + clf(99, "b.example") + clf(98, "b.example"))
    cli("ingest", log, "--lake", lake)
    got = json.loads(cli("report", "--lake", lake, "--rollups", "--json").stdout)["sites"]
    q = ("SELECT count(*) AS requests, sum(bytes_sent) AS bytes_sent, count(*) FILTER (WHERE status // 100 = 5) "
         "AS s5xx FROM requests")
    exact = json.loads(cli("sql", "--lake", lake, "--json", q).stdout)
    assert exact["requests"] == 13  # (10 lines, the completed one and two more; the bad line aside)
    assert {k: sum(s[k] for s in got) for k in exact} == exact


def test_an_older_lake_gets_the_new_tables_and_columns_at_its_next_ingest(tmp_path, logs):
    """A lake written before the shop and Snowplow tables and the rollups' line number and host flag:
    the next ingest adds them (nothing rewritten), and its reports are the database's."""
    from logferry.lake.tables import NAMESPACE, ROLLUPS, Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", logs[0], "--lake", lake)
    old = Lake(Where.of(str(lake)))
    for name in ("orders", "order_items", "events", "bad_events", "rollups"):
        old.catalog.drop_table((NAMESPACE, name))
    before = ROLLUPS.remove(ROLLUPS.get_field_index("from_host"))
    old.catalog.create_table((NAMESPACE, "rollups"), schema=before.remove(before.get_field_index("line_number")))
    cli("report", "--lake", lake, "--json")  # (a reader of the older lake adds nothing)
    assert not old.catalog.table_exists((NAMESPACE, "orders"))
    cli("ingest", *logs, "--lake", lake)
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    assert {"line_number", "from_host"} <= set(Lake(Where.of(str(lake))).table("rollups").schema().column_names)
    assert json.loads(cli("report", "--lake", lake, "--rollups", "--json").stdout)["sites"]


def test_a_lake_whose_manifest_lacks_a_newer_column_is_read_until_its_next_ingest(tmp_path, logs):
    """A manifest written before ``files.head_fp``: report, sql, lake status and compact read
    it (they were a traceback: "Referenced column head_fp not found"), and the next ingest
    adds the column."""
    from logferry.lake.tables import Lake, Where

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    cli("ingest", *logs, "--lake", lake)
    cli("ingest", *logs, "--db", db)
    with Lake(Where.of(str(lake))).table("files").update_schema() as u:
        u.delete_column("head_fp")
    assert report("--lake", lake) == report("--db", db)
    assert json.loads(cli("sql", "--lake", lake, "--json", "SELECT count(*) AS n FROM files").stdout) == {
        "n": len(logs)}
    assert json.loads(cli("lake", "status", lake, "--json").stdout)["files"] == len(logs)
    cli("lake", "compact", lake)
    assert json.loads(cli("ingest", *logs, "--lake", lake, "--json").stdout)["new"] == 0
    assert "head_fp" in Lake(Where.of(str(lake))).table("files").schema().column_names


@pytest.mark.parametrize("where", ["logferry.lake.commit:_commit_manifest", "logferry.lake.store:LakeWriter.finish",
                                   "logferry.lake.commit:commit"])
def test_a_run_killed_by_sigkill_loses_and_doubles_nothing(tmp_path, logs, where):
    """SIGKILL between the data files' commit and the manifest's, mid-file, or with the
    reads' data files written and nothing committed: the next run stores every row once,
    and ``lake expire`` deletes the data files the killed run left (strays) once old."""
    import os
    import subprocess
    import sys
    import time

    mod, name = where.split(":")
    owner, _, attr = name.rpartition(".")
    target = f"getattr(m, {owner!r})" if owner else "m"
    code = (f"import os, signal, sys, importlib; m = importlib.import_module({mod!r}); "
            f"setattr({target}, {attr!r}, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)); "
            "from logferry.cli import main; sys.argv[0] = 'logferry'; main()")
    lake = tmp_path / "lake"
    cli("ingest", logs[0], "--lake", lake)  # a lake with something in it already
    p = subprocess.run([sys.executable, "-c", code, "ingest", *logs, "--lake", str(lake)], capture_output=True)
    assert p.returncode == -9, p.stderr.decode()[-2000:]
    # (killed before the commit: the reads' data files were written, no snapshot holds them)
    strays = json.loads(cli("lake", "status", lake, "--json").stdout)["strays"]
    assert (strays > 0) == where.endswith(":commit"), strays
    cli("ingest", *logs, "--lake", lake)
    db = tmp_path / "u.duckdb"
    cli("ingest", *logs, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    # every file made 4 days old: lake expire deletes the strays only (the others are held)
    old = time.time() - 4 * 86400
    for f in lake.rglob("*"):
        os.utime(f, (old, old))
    r = cli("lake", "expire", lake, "--older-than", "4000d")
    assert f" {strays} stray files deleted" in r.output, r.output
    assert json.loads(cli("lake", "status", lake, "--json").stdout)["strays"] == 0
    assert report("--lake", lake) == report("--db", db)


def test_expire_keeps_the_files_of_a_lake_ingested_through_a_symlink_to_its_folder(tmp_path, logs):
    """A lake is one by its real path (tables._same_location): made at its folder, then
    ingested through a symlink to it, its data files are recorded under the symlink's
    path, its tables' folders under the real one. Strays are judged by where a file is:
    every file made 4 days old, ``lake expire`` deletes none of them (it took every data
    file recorded under the other spelling for a stray: the lake lost its rows)."""
    import os
    import time

    real, link, db = tmp_path / "real", tmp_path / "link", tmp_path / "u.duckdb"
    cli("ingest", logs[0], "--lake", real)
    link.symlink_to(real, target_is_directory=True)
    cli("ingest", *logs[1:], "--lake", link)
    cli("ingest", *logs, "--db", db)
    old = time.time() - 4 * 86400
    for f in real.rglob("*"):
        os.utime(f, (old, old))
    for lake in (real, link):
        r = cli("lake", "expire", lake, "--older-than", "4000d")
        assert report("--lake", lake) == report("--db", db)
        assert " 0 stray files deleted" in r.output, r.output
    assert json.loads(cli("lake", "status", link, "--json").stdout)["strays"] == 0


def test_expire_keeps_a_catalog_file_kept_in_a_tables_folder(tmp_path, logs):
    """``--catalog`` may name any file, one in a table's folder too: it is no stray, however
    old (an expiry that commits nothing leaves its modification time as it was; it was
    deleted with the lake's every table in it)."""
    import os
    import time

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    catalog = lake / "logferry" / "files" / "catalog.db"
    cli("ingest", *logs, "--lake", lake, "--catalog", catalog)
    cli("ingest", *logs, "--db", db)
    old = time.time() - 4 * 86400
    for f in lake.rglob("*"):
        os.utime(f, (old, old))
    r = cli("lake", "expire", lake, "--catalog", catalog, "--older-than", "4000d")
    assert " 0 stray files deleted" in r.output, r.output
    assert catalog.exists() and report("--lake", lake, "--catalog", catalog) == report("--db", db)


def test_lake_connections_draw_no_progress_bar_on_stdout(tmp_path, logs):
    """DuckDB draws a progress bar on stdout during a statement of over two seconds (seen
    before `lake status --json` on a 20M-row lake: the JSON came after a bar). Every
    connection the lake opens has it off."""
    from logferry.lake.query import connect_lake
    from logferry.lake.tables import Lake, Where

    lake = tmp_path / "lake"
    cli("ingest", *logs, "--lake", lake)
    con = connect_lake(Lake(Where.of(str(lake))), None)
    for c in (con, con.cursor()):  # (the dashboard queries through cursors)
        assert c.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]


def _uncounted_rows_and_bounds(lake: str) -> list[tuple]:
    """For each requests data file whose rows the span takes to count all: (its rows the
    manifest does not count, whether its timestamp bounds are its rows' min and max); and
    a None for each file that is not known to."""
    import duckdb

    from logferry.lake.query import _all_counted, _bounds
    from logferry.lake.tables import Lake, Where

    reader = Lake(Where.of(lake)).reader()
    reads = {r["read_id"]: (r["first_line"], r["last_line"]) for row in manifest(lake) for r in row["reads"]}
    scan = reader.table("requests").scan()
    ids = {n: scan.table_metadata.schema().find_field(n) for n in ("timestamp", "read_id", "line_number")}
    out = []
    for task in scan.plan_files():
        if not _all_counted(task, ids, reads):
            out.append(None)
            continue
        b = _bounds(task, ids["timestamp"], (None, None))
        rows = duckdb.sql(f"SELECT read_id, line_number, epoch_us(\"timestamp\") FROM "
                          f"read_parquet('{task.file.file_path.removeprefix('file://')}')").fetchall()
        uncounted = [r for r in rows if r[0] not in reads or not reads[r[0]][0] <= r[1] <= reads[r[0]][1]]
        ts = [r[2] for r in rows if r[2] is not None]
        out.append((len(uncounted), b == (min(ts), max(ts), True) if ts else b == ()))
    return out


def test_a_sites_report_spans_the_counted_rows_of_every_site(tmp_path, monkeypatch):
    """A site's report buckets its charts by the span of every site's counted rows, as the
    database does.  The lake takes it from the data files' timestamp bounds only where every
    row of the file counts: not from the rows of a run killed before its manifest commit
    (a week later here), a re-read last line, or a compacted file of several reads."""
    from logferry.lake import commit as cm
    from logferry.lake import upkeep

    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    late = vhost_log(tmp_path / "late.log", hosts=("c.example",), n=20, day=9)

    def killed(*a, **kw):
        raise KeyboardInterrupt  # the data files are in, the manifest is not

    monkeypatch.setattr(cm, "_commit_manifest", killed)
    cli("ingest", late, "--lake", lake, ok=False)
    monkeypatch.undo()
    logs = [vhost_log(tmp_path / "one.log", day=1), vhost_log(tmp_path / "two.log", hosts=("c.example",), day=2)]
    grow = tmp_path / "grow.log"
    vhost_log(grow, n=10, extra=b'10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET /x HTTP/1.1" 200 1')
    for _ in range(2):
        cli("ingest", *logs, grow, "--lake", lake)
        cli("ingest", *logs, grow, "--db", db)
        with open(grow, "ab") as f:  # the last line ends, then more lines
            f.write(b'2 "-" "x"\n' + clf(99, "a.example"))
    files = _uncounted_rows_and_bounds(str(lake))
    assert None in files and any(f is not None for f in files)  # (some bounds taken, some files read)
    assert all(f == (0, True) for f in files if f is not None), files
    for args in ((), ("--since", "2024-03-01T12:00"), ("--until", "2024-03-02T06:00")):
        want = report("--db", db, "--site", "a.example", *args)
        assert report("--lake", lake, "--site", "a.example", *args) == want, args
        if not args:  # (two days: 15-minute points; with the uncounted day 9, 60-minute ones)
            assert want["params"]["chart_bucket_minutes"] == 15
    monkeypatch.setattr(upkeep, "GRACE_SECONDS", 0)
    cli("lake", "compact", lake)  # (the grown file's two reads share a partition's file now)
    assert all(f == (0, True) for f in _uncounted_rows_and_bounds(str(lake)) if f is not None)
    assert report("--lake", lake, "--site", "a.example") == report("--db", db, "--site", "a.example")


def test_a_report_on_the_lake_imports_no_log_reader(tmp_path):
    """A report reads no log: the readers' and Snowplow's modules, which the lake's table
    schemas imported (a tenth of a second of every report's start), are not imported."""
    import subprocess
    import sys

    lake = tmp_path / "lake"
    cli("ingest", vhost_log(tmp_path / "one.log"), "--lake", lake)
    code = ("import atexit, sys; atexit.register(lambda: sys.stderr.write(repr(sorted(m for m in sys.modules if m in "
            "('logferry.reader', 'logferry.snowplow'))))); from logferry.cli import main; sys.argv[0] = 'logferry'; main()")
    p = subprocess.run([sys.executable, "-c", code, "report", "--lake", str(lake), "--site", "a.example", "--json"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["reports"]["summary"], p.stderr[-2000:]
    assert p.stderr.endswith("[]"), p.stderr[-500:]


def test_a_host_longer_than_a_file_name_is_stored_and_read_back(tmp_path):
    """A row's partition site is its Host where it has no site, as long as a client sent it:
    its folder name is cut (with a digest) so that the file system takes it, and the rows
    read back whole, as in the database. It used to fail the whole file (errno 36)."""
    from logferry.lake.store import site_folder

    hosts = ["a.example", "x" * 300, "é" * 200, "y" * 300 + "/../z"]
    log = tmp_path / "u_ex240301.log"
    log.write_text("#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs-host\n" + "".join(
        f"2024-03-01 10:00:0{i} 10.0.0.1 GET /p 200 5 {h}\n" for i, h in enumerate(hosts)), encoding="utf-8")
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    s = json.loads(cli("ingest", log, "--lake", lake, "--json").stdout)
    assert (s["records"], s["errors"]) == (4, 0)
    cli("ingest", log, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    q = "SELECT host FROM requests ORDER BY host"
    assert cli("sql", "--lake", lake, "--json", q).stdout == cli("sql", "--db", db, "--json", q).stdout
    folders = {p.name for p in (lake / "logferry" / "requests" / "data").iterdir()}
    assert folders == {f"site={site_folder(h)}" for h in hosts} and len(folders) == 4
    assert all(len(f.encode()) <= 128 and "/" not in f for f in folders)
    assert site_folder("x" * 300) != site_folder("x" * 299)  # (cut alike, told apart by the digest)
    got = json.loads(cli("report", "--lake", lake, "--site", "é" * 200, "--json").stdout)
    assert got["reports"]["summary"]["sections"]["totals"][0]["requests"] == 1


def test_compact_names_its_files_as_the_ingest_does_so_a_long_host_fits(tmp_path):
    """Compaction writes each partition's file in the ingest's folder (site_folder: cut,
    with a digest); it wrote pyiceberg's lake_site=<whole value> folders, and a Host longer
    than a file name failed the command (errno 36)."""
    from logferry.lake.store import site_folder

    hosts = ["a.example", "x" * 300, "../" * 90 + "etc"]
    lake = tmp_path / "lake"
    for n in (1, 2):  # (two reads: two data files in each partition)
        log = tmp_path / f"u_ex24030{n}.log"
        log.write_text("#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs-host\n" + "".join(
            f"2024-03-01 1{n}:00:0{i} 10.0.0.{n} GET /p 200 5 {h}\n" for i, h in enumerate(hosts)))
        cli("ingest", log, "--lake", lake)
    before = report("--lake", lake)
    r = cli("lake", "compact", lake, ok=False)
    # (and the manifest's and rollups' 2 data files each)
    assert r.exit_code == 0 and "compacted 5 partitions: 10 -> 5 data files" in r.output, r.output
    assert report("--lake", lake) == before
    data = lake / "logferry" / "requests" / "data"
    assert {p.name for p in data.iterdir()} == {f"site={site_folder(h)}" for h in hosts}
    assert len(list(data.rglob("*.parquet"))) == 6 + 3  # (the replaced files stay until their snapshots expire)
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert st["tables"]["requests"]["data_files"] == 3 and st["tables"]["requests"]["rows"] == 6
    assert st["orphan_rows"] == 0


def test_a_read_of_many_partitions_keeps_few_writers_open(tmp_path, monkeypatch):
    """More (site, day) partitions in a read than writers kept open: the one written to
    longest ago is finished and its partition gets another file when more rows come; every
    row is stored once, as in the database (3,000 hosts used to hold 3,000 writers: 4 GB)."""
    from logferry.lake import store
    from logferry.lake.tables import Lake, Where

    monkeypatch.setattr(store, "_OPEN_WRITERS", 4)
    monkeypatch.setattr(store, "HOLD_READ_BYTES", 0)  # (a read too large to hold: it streams its rows)
    log = tmp_path / "u_ex240301.log"
    log.write_text("#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs-host\n" + "".join(
        f"2024-03-0{1 + i // 7 % 2} 10:{i // 600 % 60:02d}:{i % 60:02d} 10.0.0.{i % 7} GET /p{i % 5} 200 {i} h{i % 10}.example\n"
        for i in range(30_000)))
    lake, db = tmp_path / "lake", tmp_path / "u.duckdb"
    assert json.loads(cli("ingest", log, "--lake", lake, "--json").stdout)["records"] == 30_000
    cli("ingest", log, "--db", db)
    assert report("--lake", lake) == report("--db", db)
    files = Lake(Where.of(str(lake))).table("requests").inspect.data_files()
    parts = {(p["lake_site"], p["day"]) for p in files.column("partition").to_pylist()}
    assert len(parts) == 20 and files.num_rows > 20  # (partitions written again after their file was finished)
    st = json.loads(cli("lake", "status", lake, "--json").stdout)
    assert (st["orphan_rows"], st["tables"]["requests"]["rows"]) == (0, 30_000)


def test_a_lake_reached_through_a_symlinked_folder_is_the_same_lake(tmp_path, logs):
    """The location check of a catalog (logferry.lake-location) compares folders, not the
    spelling of their path: the lake made at /srv/lake is reached as ~/lake, a symlink to
    it (its own catalog.db inside it), or as ./lake from another folder, and served -- it
    was refused as 'the lake at file:///srv/lake' held by its own catalog."""
    real = tmp_path / "srv" / "lake"
    real.parent.mkdir()
    cli("ingest", logs[0], "--lake", real)
    link = tmp_path / "home-lake"
    link.symlink_to(real, target_is_directory=True)
    r = cli("report", "--json", "--lake", link, ok=False)
    assert r.exit_code == 0, r.output
    assert report("--lake", link) == report("--lake", real)
    again = json.loads(cli("ingest", logs[0], "--lake", str(link) + "/", "--json").stdout)
    assert again["new"] == 0 and again["records"] == 0
