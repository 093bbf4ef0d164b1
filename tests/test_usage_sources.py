"""ingest through the shared source layer: databases of schema v1 migrated, credentials in
source URLs refused (issue 12 item 14), one file's failure isolated (item 7), the
rotation rules shared with shipping, a followed file rotated while the follower was down."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import threading

import duckdb
import pytest

from logferry import sources
from logferry.usage import connect, ingest
from logferry.usage.db import MIGRATIONS
from logferry.usage.follow import Follower

LOGFERRY = [sys.executable, "-c", "from logferry.cli import main; main()"]
HEADER = (b"#Software: Microsoft Internet Information Services 10.0\n"
          b"#Fields: date time c-ip cs-method cs-uri-stem sc-status time-taken\n")


def iis(i: int) -> bytes:
    return b"2024-03-01 10:%02d:%02d 10.0.0.%d GET /p%d 200 %d\n" % (i // 60 % 60, i % 60, i % 250, i, i % 97)


def q(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


def test_a_v1_database_is_migrated_and_its_files_stay_known(tmp_path):
    """A database written before the source layer (schema v1: files known by content
    only) keeps working: the same file is already ingested, a grown one adds only its new
    lines, and the file gets its source identity on the way."""
    log = tmp_path / "u_ex1.log"
    data = HEADER + b"".join(iis(i) for i in range(100))
    log.write_bytes(data)
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    for stmt in MIGRATIONS[0]:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO files (file_id, identity, head_bytes, path, format, size, bytes, lines, directives, "
                "records, ingested_at, updated_at) VALUES (1, ?, ?, ?, 'w3c', ?, ?, 102, 2, 100, now(), now())",
                [hashlib.sha256(data).hexdigest(), len(data), str(log), len(data), len(data)])
    con.execute("INSERT INTO requests (file_id, line_number, path) SELECT 1, i + 3, '/p' || i FROM range(100) t(i)")
    con.close()

    con = connect(db)
    assert q(con, "SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]
    s = ingest(con, [str(log)])
    assert [f.status for f in s.files] == ["duplicate"]
    st = os.stat(log)
    assert q(con, "SELECT dev, ino FROM files") == [(st.st_dev, st.st_ino)]
    with open(log, "ab") as f:
        f.write(b"".join(iis(i) for i in range(100, 130)))
    s = ingest(con, [str(log)])
    assert [(f.status, f.records) for f in s.files] == [("grown", 30)]
    assert q(con, "SELECT count(*), count(DISTINCT line_number), max(line_number) FROM requests") == [(130, 130, 132)]
    assert q(con, "SELECT lines, records, directives FROM files") == [(132, 130, 2)]
    con.close()


@pytest.mark.parametrize("url", ["ftp://bob:PASS@127.0.0.1:9/logs/a.log", "sftp://bob:PASS@localhost/x/*.log",
                                 "s3://KEY:PASS@bucket/x.log"])
def test_a_password_in_a_source_url_is_refused_and_never_shown(tmp_path, url):
    db = tmp_path / "u.duckdb"
    r = subprocess.run([*LOGFERRY, "ingest", "--db", str(db), url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "PASS" not in r.stdout + r.stderr
    assert "password in a source URL is not allowed" in r.stderr and "***" in r.stderr
    assert "Traceback" not in r.stderr
    with pytest.raises(Exception, match="password"):
        sources.expand([url])
    assert sources.redact_url(url).count("PASS") == 0


def test_a_password_in_a_ship_source_is_refused_too(tmp_path):
    url = "ftp://bob:PASS@127.0.0.1:9/logs/a.log"
    r = subprocess.run([*LOGFERRY, "ship", url, "--dest", str(tmp_path / "out"), "--state", str(tmp_path / "st")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "PASS" not in r.stdout + r.stderr
    assert "password in a source URL" in r.stdout + r.stderr


def test_one_files_failure_never_stops_the_others(tmp_path):
    """Issue 12 item 7: a 1.2 MB-class gzip (an IIS header and 256 MiB of NUL bytes) used
    to crash ingest (DuckDB "failed to pin block") and the files after it were never
    ingested.  Now whatever that file does, the next file is ingested, the bad one is
    reported for itself, and the exit status says whether one failed."""
    bad = tmp_path / "nul.log.gz"
    with gzip.open(bad, "wb", compresslevel=9) as f:
        f.write(HEADER.replace(b"\n", b"\r\n"))
        zeros = bytes(1 << 20)
        for _ in range(256):
            f.write(zeros)
    assert bad.stat().st_size < 1_300_000
    good = tmp_path / "good.log"
    good.write_bytes(HEADER + b"".join(iis(i) for i in range(10)))
    db = tmp_path / "u.duckdb"
    r = subprocess.run([*LOGFERRY, "ingest", "--db", str(db), "--json", str(bad), str(good)],
                       capture_output=True, text=True, timeout=600)
    assert "Traceback" not in r.stderr
    import json

    out = json.loads(r.stdout)  # nothing else on stdout (no DuckDB progress bar)
    by_name = {os.path.basename(d["path"]): d for d in out["details"]}
    assert by_name["good.log"]["status"] == "new" and by_name["good.log"]["records"] == 10
    failed = by_name["nul.log.gz"]["status"] == "error"
    assert r.returncode == (1 if failed else 0)
    con = connect(db, read_only=True)
    assert q(con, "SELECT count(*) FROM requests r JOIN files f USING (file_id) WHERE f.path = ?",
             [str(good)]) == [(10,)]
    assert q(con, "SELECT count(*) FROM files WHERE records + bad_rows != lines - directives - blank") == [(0,)]
    con.close()


class K:
    """A known file as shipping and ingest record it."""

    def __init__(self, id, sf):
        self.id, self.path, self.dev, self.ino = id, sf.path, sf.dev, sf.ino
        self.fp, self.fp_len, self.size = sf.fp, sf.fp_len, sf.size


def test_the_shared_rotation_rules(tmp_path):
    a = tmp_path / "access.log"
    a.write_bytes(HEADER + b"".join(iis(i) for i in range(50)))
    [sf] = sources.expand([str(a)])
    known = [K(1, sf)]
    # grown, then renamed: the same file
    with open(a, "ab") as f:
        f.write(iis(50))
    os.rename(a, tmp_path / "access.log.1")
    [m] = sources.match_files(sources.expand([str(tmp_path / "access.log*")]), known)
    assert (m.how, m.known.id) == ("same", 1)
    # compressed after the rename: the same content, read on at the same line
    data = (tmp_path / "access.log.1").read_bytes()
    (tmp_path / "access.log.1.gz").write_bytes(gzip.compress(data))
    os.unlink(tmp_path / "access.log.1")
    [m] = sources.match_files(sources.expand([str(tmp_path / "access.log*")]), known)
    assert (m.how, m.known.id) == ("compressed", 1)
    found = sources.find_moved(sf.path, sf.dev, sf.ino, sf.fp, sf.fp_len)
    assert found is not None and found.path.endswith("access.log.1.gz")
    # copytruncate: same inode, shrank: new content; the copy is where the rest went
    b = tmp_path / "b.log"
    b.write_bytes(HEADER + b"".join(iis(i) for i in range(1000, 1080)))
    [sb] = sources.expand([str(b)])
    (tmp_path / "b.log.1").write_bytes(b.read_bytes())
    os.truncate(b, 0)
    b.write_bytes(iis(999))
    [m] = sources.match_files(sources.expand([str(b)]), [K(2, sb)])
    assert (m.how, m.known) == ("truncated", None)
    copy = sources.find_moved(sb.path, sb.dev, -1, sb.fp, sb.fp_len, min_size=sb.size)
    assert copy is not None and copy.path.endswith("b.log.1")


def test_a_followed_file_rotated_while_the_follower_was_stopped_is_read_to_its_end(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(HEADER + b"".join(iis(i) for i in range(20)))
    db = tmp_path / "f.duckdb"

    def run_once():
        f = Follower(db, [str(log)], commit_every=0.1, poll=0.05)
        stop = threading.Event()
        t = threading.Thread(target=f.run, args=(stop,))
        t.start()
        con = connect(db)
        try:
            import time

            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not f.status()["running"]:
                time.sleep(0.05)
            time.sleep(0.5)
        finally:
            con.close()
            stop.set()
            t.join(30)
        return f

    run_once()
    with open(log, "ab") as f:
        f.write(b"".join(iis(i) for i in range(20, 30)))  # written before the rotation, not yet read
    os.rename(log, tmp_path / "access.log.1")
    rotated = tmp_path / "access.log.1"
    (tmp_path / "access.log.1.gz").write_bytes(gzip.compress(rotated.read_bytes()))
    rotated.unlink()
    log.write_bytes(HEADER.replace(b"10.0", b"10.0 ") + iis(500))
    run_once()
    con = connect(db, read_only=True)
    assert q(con, "SELECT file_id, count(*), min(line_number), max(line_number) FROM requests "
                  "GROUP BY file_id ORDER BY 1") == [(1, 30, 3, 32), (2, 1, 3, 3)]
    assert q(con, "SELECT path FROM files ORDER BY file_id") == [(str(tmp_path / "access.log.1.gz"),), (str(log),)]
    con.close()


@pytest.mark.parametrize("hold_partial", [True, False])
def test_the_end_of_a_growing_file_stays_the_end_for_the_reader(tmp_path, hold_partial):
    """A reader that reads again after the stream ended (a momentary end of a file still
    being written) gets the end again, not the bytes written since: those would start in
    the middle of the unfinished last line, split it in two bad rows and shift every line
    offset remembered after it (seen following a log growing by 50,000 lines/s)."""
    p = tmp_path / "access.log"
    p.write_bytes(HEADER + iis(1) + iis(2)[:20])  # the writer is in the middle of line 4
    t = sources.open_from(str(p), False, 0, 0, 0, b"", None, hold_partial=hold_partial)
    first = t.read()
    with open(p, "ab") as f:
        f.write(iis(2)[20:] + iis(3))  # written while the reader is at the end
    assert t.read() == b"" and t.read(100) == b""
    if hold_partial:
        assert first == HEADER + iis(1) and t.held == iis(2)[:20]
        assert (t.line, t.off) == (3, len(HEADER + iis(1)))
    else:
        assert first == HEADER + iis(1) + iis(2)[:20] and not t.ends_in_line
    t.close()


def test_refresh_says_what_the_open_file_is_now(tmp_path):
    """A file listed empty (a compressor's output just created) and read once it is whole:
    ``refresh`` gives its size, fingerprint and compression as they are now."""
    p = tmp_path / "access.log.1.gz"
    p.write_bytes(b"")
    (sf,) = sources.expand([str(p)])
    assert (sf.size, sf.compressed) == (0, False)
    p.write_bytes(gzip.compress(b"line one\nline two\n"))
    with open(p, "rb") as f:
        now = sources.refresh(sf, f)
    (listed,) = sources.expand([str(p)])
    assert (now.size, now.compressed, now.fp, now.fp_len) == (listed.size, True, listed.fp, listed.fp_len)


def test_identities_are_the_prefix_fingerprints_in_one_pass():
    head = bytes(range(256)) * 300
    lengths = [0, 1, 7, 1024, 65536, 76800, 80000]  # (the last is longer than the head)
    assert sources.identities(head, lengths) == {
        n: hashlib.sha256(head[:n]).hexdigest() for n in lengths if n <= len(head)}


def test_a_file_is_matched_against_the_few_known_files_that_can_be_it(tmp_path):
    """Many known files (a bucket of small logs): matching one looks only at those with its
    place or its head, and the rules decide as before on those few."""
    logs = []
    for i in range(40):
        p = tmp_path / f"u{i:03d}.log"
        p.write_bytes(HEADER + b"".join(iis(1000 * i + k) for k in range(5)))
        logs.append(p)
    found = sources.expand([str(p) for p in logs])
    index = sources.KnownIndex(K(i + 1, sf) for i, sf in enumerate(found))
    assert [f.id for f in index.near(found[7])] == [8]
    # rotated and compressed: found by its decompressed head, the only candidate
    data = logs[3].read_bytes()
    (tmp_path / "u003.log.1.gz").write_bytes(gzip.compress(data))
    logs[3].unlink()
    [gz] = sources.expand([str(tmp_path / "u003.log.1.gz")])
    assert [f.id for f in index.near(gz)] == [4]
    [m] = sources.match_files([gz], index, present=sources.expand([str(tmp_path / "*")]))
    assert (m.how, m.known.id) == ("compressed", 4)
    # a new file in a known one's place (inode reused or not): only that one is looked at
    new = tmp_path / "new.log"
    new.write_bytes(HEADER + iis(99999))
    [sf] = sources.expand([str(new)])
    assert all(f.path == str(new) or (f.dev, f.ino) == (sf.dev, sf.ino) for f in index.near(sf))


def test_the_database_hands_the_ingester_only_the_files_a_file_can_be(tmp_path):
    for i in range(30):
        (tmp_path / f"u{i:03d}.log").write_bytes(HEADER + b"".join(iis(1000 * i + k) for k in range(5)))
    con = connect(str(tmp_path / "u.duckdb"))
    ingest(con, [str(tmp_path / "*.log")])
    from logferry.usage import db as dbm

    [sf] = sources.expand([str(tmp_path / "u012.log")])
    near = dbm.known_files(con, local=True, near=sf)
    assert [r.path for r in near] == [sf.path]
    assert len(dbm.known_files(con, local=True)) == 30
    # a copy under another name is still the same content (found by its identity)
    (tmp_path / "copy.txt").write_bytes((tmp_path / "u012.log").read_bytes())
    res = ingest(con, [str(tmp_path / "copy.txt")])
    assert [f.status for f in res.files] == ["duplicate"]


def test_a_copy_is_known_by_its_content_whatever_length_it_was_registered_at(tmp_path):
    """The content lookup narrows by the hash of the first PREFIX_BYTES: a copy of a file
    registered at any length (shorter than that, longer, or in a database from before the
    hash was kept) is still found, grown or not; another file of the same lengths is not."""
    from logferry.usage import db as dbm

    con = connect(str(tmp_path / "u.duckdb"))
    tiny = HEADER + iis(1)  # (shorter than PREFIX_BYTES)
    small = HEADER + b"".join(iis(i) for i in range(40))  # (longer: its prefix hash narrows)
    old = HEADER + b"".join(iis(i) for i in range(500, 540))
    assert len(tiny) < sources.PREFIX_BYTES < len(small) < sources.IDENTITY_BYTES
    for name, data in (("tiny.log", tiny), ("small.log", small), ("old.log", old)):
        (tmp_path / name).write_bytes(data)
    ingest(con, [str(tmp_path / "tiny.log"), str(tmp_path / "small.log"), str(tmp_path / "old.log")])
    con.execute("UPDATE files SET head_fp = NULL WHERE path LIKE '%old.log'")  # (registered before v3)
    for data, name in ((tiny, "tiny.log"), (small, "small.log"), (old, "old.log")):
        grown = data + b"".join(iis(i) for i in range(2000, 2010))
        hit = dbm.find_by_content(con, grown)
        assert hit is not None and hit.path.endswith(name)
        assert dbm.find_by_content(con, data).path.endswith(name)
    other = small.replace(b"/p3 ", b"/q3 ")
    assert len(other) == len(small) and dbm.find_by_content(con, other) is None


def test_a_listed_file_is_opened_again_only_when_it_may_have_changed(tmp_path, monkeypatch):
    """expand(cache=): an unchanged, settled file is the SourceFile listed before, not opened
    again; one grown, rewritten in place (same size and time, but a fresh ctime) or gone is
    looked at anew."""
    opened: list[str] = []
    real = sources.stat_file
    monkeypatch.setattr(sources, "stat_file", lambda p: opened.append(p) or real(p))
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(HEADER + iis(1))
    b.write_bytes(HEADER + iis(2))
    cache: dict = {}
    first = {sf.path: sf for sf in sources.expand([str(tmp_path / "*.log")], cache=cache)}
    assert sorted(opened) == [str(a), str(b)] and set(cache) == set(first)

    monkeypatch.setattr(sources, "SETTLED_SECS", 0.0)  # (their ctimes count as old now)
    opened.clear()
    again = {sf.path: sf for sf in sources.expand([str(tmp_path / "*.log")], cache=cache)}
    assert opened == [] and all(again[p] is first[p] for p in first)

    with open(a, "ab") as f:  # grown: opened again
        f.write(iis(3))
    again = {sf.path: sf for sf in sources.expand([str(tmp_path / "*.log")], cache=cache)}
    assert opened == [str(a)] and again[str(a)].size > first[str(a)].size

    monkeypatch.setattr(sources, "SETTLED_SECS", 3.0)
    st = os.stat(b)
    old = b.read_bytes()
    b.write_bytes(old.replace(b"GET", b"PUT"))  # the same size, its time put back
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(b).st_size == st.st_size and os.stat(b).st_mtime == st.st_mtime
    opened.clear()
    again = {sf.path: sf for sf in sources.expand([str(tmp_path / "*.log")], cache=cache)}
    assert str(b) in opened and again[str(b)].fp != first[str(b)].fp  # (its ctime is new)

    a.unlink()
    again = {sf.path: sf for sf in sources.expand([str(tmp_path / "*.log")], cache=cache)}
    assert list(again) == [str(b)] and str(a) not in cache


def test_a_follower_leaves_its_database_out_by_inode_and_unchanged_files_unopened(tmp_path, monkeypatch):
    """Following ``DIR/*`` where the database lies, under another name too (a hard link):
    neither it nor its log is read as a log; files that stay as they were are not opened at
    every poll, the one that grows is read."""
    import time

    monkeypatch.setattr(sources, "SETTLED_SECS", 0.0)
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(20):
        (logs / f"{i:02d}.log").write_bytes(HEADER + iis(i))
    db = logs / "usage.duckdb"
    con = connect(db)
    ingest(con, [str(logs / "00.log")])
    con.close()
    os.link(db, logs / "alias")  # the database again, by a name the glob matches
    opened: list[str] = []
    real = sources.stat_file
    monkeypatch.setattr(sources, "stat_file", lambda p: opened.append(p) or real(p))
    f = Follower(db, [str(logs / "*")], commit_every=0.1, poll=0.05)
    stop = threading.Event()
    t = threading.Thread(target=f.run, args=(stop,), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while f.status()["lines"] < 19 or not f.status()["running"]:
            assert time.monotonic() < deadline, f.status()
            time.sleep(0.05)
        time.sleep(0.3)  # several polls
        opened.clear()
        time.sleep(0.5)
        assert opened == [], opened[:5]
        with open(logs / "07.log", "ab") as fh:
            fh.write(iis(99))
        while f.status()["lines"] < 20:
            assert time.monotonic() < deadline, f.status()
            time.sleep(0.05)
        assert set(opened) == {str(logs / "07.log")}
        assert f.status()["errors"] == {}
    finally:
        stop.set()
        t.join(30)
    con = duckdb.connect(str(db), read_only=True)
    assert q(con, "SELECT count(*) FROM requests") == [(21,)]
    assert q(con, "SELECT count(*) FROM bad_rows") == [(0,)]
    assert q(con, "SELECT count(*) FROM files WHERE path LIKE '%usage%' OR path LIKE '%alias%'") == [(0,)]


def test_a_rewrite_in_place_is_seen_when_the_next_listing_comes_after_it_settled(tmp_path, monkeypatch):
    """A file rewritten in place (same size, its time put back) after it was listed, and
    listed next only once that change settled (a follower busy reading another file for
    longer than SETTLED_SECS): its ctime differs from the one it was listed with, so it is
    opened again and its new head seen -- it was served from the cache, its new content never
    read."""
    b = tmp_path / "b.log"
    b.write_bytes(HEADER + iis(2))
    cache: dict = {}
    first = sources.expand([str(b)], cache=cache)[0]
    st = os.stat(b)
    b.write_bytes((HEADER + iis(2)).replace(b"GET", b"PUT"))
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(b).st_size == st.st_size and os.stat(b).st_mtime == st.st_mtime
    monkeypatch.setattr(sources, "SETTLED_SECS", 0.0)  # (the next poll comes after the change settled)
    again = sources.expand([str(b)], cache=cache)[0]
    assert again.fp != first.fp and again.fp == sources.stat_file(str(b)).fp


def test_a_relative_pattern_keeps_its_listing_cached(tmp_path, monkeypatch):
    """The cache is keyed as the listed files are named (absolute paths): ``logs/*.log``
    typed relative was dropped and every file opened again at every poll."""
    opened: list[str] = []
    real = sources.stat_file
    monkeypatch.setattr(sources, "stat_file", lambda p: opened.append(p) or real(p))
    monkeypatch.setattr(sources, "SETTLED_SECS", 0.0)
    (tmp_path / "logs").mkdir()
    for i in range(3):
        (tmp_path / "logs" / f"{i}.log").write_bytes(HEADER + iis(i))
    monkeypatch.chdir(tmp_path)
    cache: dict = {}
    first = sources.expand(["logs/*.log"], cache=cache)
    assert len(opened) == 3 and len(cache) == 3
    opened.clear()
    assert [sf.path for sf in sources.expand(["logs/*.log"], cache=cache)] == [sf.path for sf in first]
    assert opened == [] and len(cache) == 3
