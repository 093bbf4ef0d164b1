"""Following logs into the usage database (issue 16): appended, rotated by rename (the old
one compressed), copytruncated and replaced files; SIGKILL at random moments; a pipe."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.servers.servers import Child

from logferry.usage import connect
from logferry.usage.follow import Follower

LOGFERRY = [sys.executable, "-c", "from logferry.cli import main; main()"]


def clf(gen: int, n: int) -> bytes:
    """Line ``n`` of generation ``gen`` of the log: its path says where it must end up."""
    return (f'10.0.{gen % 250}.{n % 250} - - [01/Mar/2024:10:{n // 60 % 60:02d}:{n % 60:02d} +0000] '
            f'"GET /g{gen}/l{n} HTTP/1.1" 200 {n % 997} "-" "follow-test"\n').encode()


class Log:
    """A log being written: remembers, for every line, the file generation and line number
    it was written at (what the database must say)."""

    def __init__(self, path: Path):
        self.path = path
        self.gen = 0
        self.n = 0
        self.written: dict[str, int] = {}  # "/g{gen}/l{n}" -> line number in its file
        self.f = open(path, "ab")

    def write(self, k: int = 1, cut: float | None = None) -> None:
        """Append ``k`` lines in one write(2); with ``cut`` (0..1) in two, 2 ms apart, the
        first ending that far into the batch -- usually in the middle of a line."""
        batch = []
        for _ in range(k):
            self.n += 1
            batch.append(clf(self.gen, self.n))
            self.written[f"/g{self.gen}/l{self.n}"] = self.n
        data = b"".join(batch)
        at = len(data) if cut is None else int(len(data) * cut)
        if 0 < at < len(data):
            self.f.write(data[:at])
            self.f.flush()
            time.sleep(0.002)
            data = data[at:]
        self.f.write(data)
        self.f.flush()

    def new_generation(self) -> None:
        self.gen += 1
        self.n = 0

    def reopen(self) -> None:
        self.f.close()
        self.f = open(self.path, "ab")

    def close(self) -> None:
        self.f.close()


def query(db: Path, sql: str) -> list[tuple]:
    con = connect(db, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def rows(db: Path) -> list[tuple[str, int, int]]:
    return query(db, "SELECT path, line_number, file_id FROM requests")


def bad_rows(db: Path) -> list[tuple[int, int, str]]:
    """(file_id, line number, raw) of the bad rows: a torn line shows its part here."""
    return query(db, "SELECT file_id, line_number, raw FROM bad_rows ORDER BY ALL")


def check_exactly_once(db: Path, log: Log) -> None:
    got = rows(db)
    paths = [p for p, _, _ in got]
    dupes = {p for p in paths if paths.count(p) > 1} if len(set(paths)) != len(paths) else set()
    torn = f"; bad rows {bad_rows(db)[:4]}"
    assert not dupes, f"{len(dupes)} lines stored twice, e.g. {sorted(dupes)[:3]}{torn}"
    missing = set(log.written) - set(paths)
    assert not missing, f"{len(missing)} lines missing, e.g. {sorted(missing)[:3]}{torn}"
    assert set(paths) == set(log.written)
    wrong = [(p, ln) for p, ln, _ in got if log.written[p] != ln]
    assert not wrong, f"wrong line numbers: {wrong[:3]}{torn}"
    # one file_id per generation of the log
    gens: dict[str, set[int]] = {}
    for p, _, fid in got:
        gens.setdefault(p.split("/")[1], set()).add(fid)
    assert all(len(v) == 1 for v in gens.values()), gens
    assert len({next(iter(v)) for v in gens.values()}) == len(gens)
    con = connect(db, read_only=True)
    try:
        bad = con.execute("SELECT count(*) FROM files WHERE records + bad_rows != lines - directives - blank").fetchall()
        assert bad == [(0,)]
    finally:
        con.close()


def wait_for(cond, timeout: float = 20.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture
def follower(tmp_path):
    started = []

    def start(paths, **kw):
        db = tmp_path / "f.duckdb"
        f = Follower(db, [str(p) for p in paths], commit_every=kw.pop("commit_every", 0.2),
                     poll=kw.pop("poll", 0.05), **kw)
        stop = threading.Event()
        t = threading.Thread(target=f.run, args=(stop,), daemon=True)
        t.start()
        started.append((stop, t))
        return f, db, stop, t

    yield start
    for stop, t in started:
        stop.set()
        t.join(30)


def test_appended_renamed_compressed_copytruncated_and_replaced(tmp_path, follower):
    log = Log(tmp_path / "access.log")
    log.write(5)
    con = connect(tmp_path / "f.duckdb")  # the follower shares this database instance
    f, db, stop, t = follower([tmp_path / "access.log"])
    visible = lambda n: lambda: con.execute("SELECT count(*) FROM requests").fetchall()[0][0] >= n  # noqa: E731
    wait_for(visible(5))
    log.write(20)  # appended
    # a line written in two parts: stored once it is whole, with its line number
    log.n += 1
    line = clf(log.gen, log.n)
    log.f.write(line[:30])
    log.f.flush()
    time.sleep(0.4)
    log.f.write(line[30:])
    log.f.flush()
    log.written[f"/g{log.gen}/l{log.n}"] = log.n
    wait_for(visible(26))

    # rotated by rename (the writer goes on a moment in the old file), then compressed
    os.rename(log.path, tmp_path / "access.log.1")
    log.write(3)  # still the old file: the writer has not reopened yet
    log.new_generation()
    log.reopen()
    log.write(4)
    wait_for(visible(33))
    time.sleep(2.5)  # the rotated file is read to its end and let go
    with open(tmp_path / "access.log.1", "rb") as src, gzip.open(tmp_path / "access.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(tmp_path / "access.log.1")
    log.write(2)
    wait_for(visible(35))

    # copytruncate: copy, truncate in place, the writer goes on at the start
    log.write(2)
    time.sleep(0.3)
    shutil.copy(log.path, tmp_path / "access.log.2")
    os.truncate(log.path, 0)
    log.new_generation()
    log.write(3)
    wait_for(visible(40))

    # replaced: a new file moved over the old name
    (tmp_path / "new.tmp").write_bytes(b"")
    log.close()
    os.rename(tmp_path / "new.tmp", log.path)
    log.new_generation()
    log.f = open(log.path, "ab")
    log.write(6)
    wait_for(visible(46))
    con.close()
    stop.set()
    t.join(30)
    log.close()
    check_exactly_once(db, log)
    st = f.status()
    assert st["lines"] == 46 and st["last_line_at"] and st["files"] == 4


def test_globs_pick_up_new_files_and_the_latency_is_printed(tmp_path, follower, capsys):
    d = tmp_path / "logs"
    d.mkdir()
    con = connect(tmp_path / "f.duckdb")
    f, db, stop, t = follower([d / "*.log"], commit_every=2.0, poll=0.2)
    wait_for(lambda: f.status()["running"], timeout=60)  # started (imports, database) and polling
    lat = []
    rnd = random.Random(5)
    for i in range(5):
        p = d / f"site{i % 2}.log"
        with open(p, "ab") as fh:
            fh.write(clf(i % 2, 1000 + i))
        t0 = time.monotonic()
        want = f"/g{i % 2}/l{1000 + i}"
        wait_for(lambda w=want: con.execute("SELECT count(*) FROM requests WHERE path = ?",
                                            [w]).fetchall()[0][0] == 1)
        lat.append(time.monotonic() - t0)
        time.sleep(rnd.random() * 0.5)
    con.close()
    with capsys.disabled():
        print(f"\nappend -> in the database (commit_every 2.0 s, default poll): "
              f"mean {sum(lat) / len(lat):.2f} s, max {max(lat):.2f} s over {len(lat)} lines")
    assert f.status()["errors"] == {} and f.status()["files"] == 2


def test_a_compressed_copy_listed_while_empty_is_the_rotated_log_not_a_new_one(tmp_path):
    """Rotation compresses the rotated log: the follower lists ``access.log.1.gz`` while it
    is still empty (no compression magic yet: a plain new file) and reads it a moment later,
    whole.  It is the rotated log, whose lines are in the database: not a new log read again
    from its first line (this interleaving stored a whole generation twice)."""
    log = Log(tmp_path / "access.log")
    log.write(400)
    gz_path = tmp_path / "access.log.1.gz"
    done = []

    class Racing(Follower):
        def _found(self):
            found = super()._found()
            if not done and any(sf.path == str(gz_path) and sf.size == 0 for sf in found):
                # between this listing and the read: the compressor writes it, and the
                # rotated plain file goes
                with open(tmp_path / "access.log.1", "rb") as src, gzip.open(gz_path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.unlink(tmp_path / "access.log.1")
                done.append(True)
            return found

    db = tmp_path / "r.duckdb"
    f = Racing(db, [str(tmp_path / "access.log*")], commit_every=0.2, poll=0.05)
    stop = threading.Event()
    t = threading.Thread(target=f.run, args=(stop,), daemon=True)
    t.start()
    wait_for(lambda: f.status()["lines"] == 400, timeout=60)
    os.rename(log.path, tmp_path / "access.log.1")
    log.new_generation()
    log.reopen()
    log.write(3)
    time.sleep(2.5)  # the rotated file is read to its end and let go
    gz_path.write_bytes(b"")  # the compressor has created its output, nothing written yet
    wait_for(lambda: done)
    log.write(2)
    wait_for(lambda: f.status()["lines"] >= 405)
    time.sleep(1.0)  # a second copy would be read by now
    stop.set()
    t.join(30)
    log.close()
    assert f.status()["lines"] == 405
    check_exactly_once(db, log)


def test_sigkill_at_random_moments_then_restart_every_line_once(tmp_path):
    """The follower (the CLI) is SIGKILLed at random moments while a writer appends and
    rotates its log (rename, then gzip); restarted each time, it ends with every line
    written in the database exactly once, with its line number."""
    rnd = random.Random(int(os.environ.get("LOGFERRY_TEST_SEED", "16")))
    log = Log(tmp_path / "access.log")
    db = tmp_path / "k.duckdb"
    cmd = ["ingest", "--follow", "--quiet", "--db", str(db), "--commit-every", "0.2", str(tmp_path / "access.log*")]
    stop_writer = threading.Event()
    rotations = []

    def writer() -> None:
        k = 0
        while not stop_writer.is_set():
            log.write(rnd.randint(1, 20))
            k += 1
            if k % 150 == 0:  # rotate: rename, the writer reopens, the old one is compressed
                n = len(rotations) + 1
                old = tmp_path / f"access.log.{n}"
                os.rename(log.path, old)
                log.write(2)
                log.new_generation()
                log.reopen()
                rotations.append(old)
            if k % 150 == 75 and rotations and rotations[-1].exists():
                old = rotations[-1]
                with open(old, "rb") as src, gzip.open(str(old) + ".gz", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.unlink(old)
            time.sleep(0.02)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    kills = 0
    deadline = time.monotonic() + 14
    while time.monotonic() < deadline:
        with Child(*cmd) as p:
            time.sleep(rnd.uniform(0.5, 2.5))
            p.stop(signal.SIGKILL)
        kills += 1
    stop_writer.set()
    w.join()
    log.close()
    time.sleep(0.1)
    # (another process cannot open the database while the follower has it: wait, then stop it)
    with Child(*cmd) as p:
        time.sleep(8)
        assert p.stop(timeout=30) == 0, p.text
    print(f"{kills} SIGKILLs, {len(rotations)} rotations, {len(log.written)} lines")
    assert kills >= 5 and len(rotations) >= 2
    check_exactly_once(db, log)


def test_follow_stdin_pipe_commits_while_open_and_stores_the_last_line_at_the_end(tmp_path):
    db = tmp_path / "p.duckdb"
    cmd = ["ingest", "--follow", "--db", str(db), "--commit-every", "0.2", "-"]
    with Child(*cmd, stdin=subprocess.PIPE) as p:
        for n in range(1, 41):
            p.p.stdin.write(clf(7, n))
            if n % 10 == 0:
                p.p.stdin.flush()
                time.sleep(0.3)
        wait_for(lambda: p.saw("new file"), timeout=120)  # registered: reading
        time.sleep(3.0)
        p.stop(signal.SIGKILL)  # the pipe is still open: what came in so far is committed
    got = sorted(ln for _, ln, _ in rows(db))
    assert len(got) >= 10 and got == list(range(1, len(got) + 1))  # a prefix, each line once

    with Child(*cmd, stdin=subprocess.PIPE) as p:
        p.p.stdin.write(b"".join(clf(8, n) for n in range(1, 31)) + clf(8, 31)[:-1])  # unfinished last line
        p.p.stdin.close()  # the end of input ends the follower
        assert p.wait(timeout=60) == 0, p.text
    assert sorted((pa, ln) for pa, ln, _ in rows(db) if pa.startswith("/g8/")) == sorted(
        (f"/g8/l{n}", n) for n in range(1, 32))
    con = connect(db, read_only=True)
    assert con.execute("SELECT path, lines, records, partial_tail FROM files ORDER BY file_id").fetchall() == [
        ("-", len(got), len(got), False), ("-", 31, 31, True)]
    con.close()


def _last_totals(text: bytes) -> str | None:
    """The requests of the totals row of the last complete summary printed, if any."""
    for report in reversed(text.split(b"--follow: ")[1:]):
        rows = report.decode(errors="replace").splitlines()
        if "totals" in rows and len(rows) > rows.index("totals") + 3 and rows[rows.index("totals") + 3].split():
            return rows[rows.index("totals") + 3].split()[0]
    return None


def test_report_follow_prints_the_reports_again_as_lines_come_in(tmp_path):
    """``logferry report --follow FILE`` follows the log into a temporary database and prints
    the terminal reports every --every seconds; piped, it writes no control characters (the
    log's own are shown escaped); SIGTERM stops it with exit 0 and removes the database."""
    log = tmp_path / "access.log"
    hostile = b'10.0.0.9 - - [01/Mar/2024:10:59:00 +0000] "GET /x\x1b[2J HTTP/1.1" 404 1 "-" "t"\n'
    log.write_bytes(clf(0, 1) + clf(0, 2) + hostile)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with Child("report", "--follow", str(log), "--every", "0.3", "--only", "summary", "--only", "not_found",
               env=env, out=True) as p:
        wait_for(lambda: p.saw("--follow: 3 lines stored"), timeout=60)
        with open(log, "ab") as f:
            f.write(clf(0, 3) + clf(0, 4))
        # (a report printed in full after the 5th line was stored counts all 5: the summary's
        # totals row starts with the requests; under load a report may take a while)
        wait_for(lambda: _last_totals(b"".join(p.lines)) == "5", timeout=60)
        assert p.stop(timeout=30) == 0, p.text
    text = b"".join(p.lines)
    assert b"\x1b" not in text and b"/x\\x1b[2J" in text
    assert b"--follow: 5 lines stored" in text
    assert not list(tmp_path.glob("logferry-report-*")), "the temporary database is removed"


def test_a_failed_read_lets_go_of_the_files_its_transaction_registered(tmp_path, monkeypatch):
    """A read that fails rolls back the whole transaction, with the files registered in it
    earlier in the same poll: the follower must let go of them too, or the file_id given
    again to the next new file would read one file's lines into the other's row."""
    from logferry.usage import follow as fm
    from logferry.usage.ingester import Ingester

    for gen, name, n in ((1, "a.log", 6), (2, "b.log", 2), (3, "c.log", 2)):
        (tmp_path / name).write_bytes(b"".join(clf(gen, i) for i in range(1, n + 1)))
    real = Ingester._load
    failures = []

    def flaky(self, sf, *a, **kw):
        if sf.path.endswith("b.log") and not failures:
            failures.append(sf.path)
            raise OSError("b.log: a read error, once")
        return real(self, sf, *a, **kw)

    monkeypatch.setattr(Ingester, "_load", flaky)
    monkeypatch.setattr(fm, "RETRY_AFTER", 0.3)
    db = tmp_path / "r.duckdb"
    f = Follower(db, [str(tmp_path / "*.log")], commit_every=0.2, poll=0.05)
    stop = threading.Event()
    t = threading.Thread(target=f.run, args=(stop,), daemon=True)
    t.start()
    wait_for(lambda: f.status()["lines"] >= 10, timeout=60)
    with open(tmp_path / "a.log", "ab") as fh:
        fh.write(clf(1, 7))
    with open(tmp_path / "c.log", "ab") as fh:
        fh.write(clf(3, 3))
    wait_for(lambda: f.status()["lines"] >= 12)
    time.sleep(0.5)
    stop.set()
    t.join(30)
    assert failures and t.is_alive() is False
    got = rows(db)
    by_file: dict[int, set[str]] = {}
    for path, _, fid in got:
        by_file.setdefault(fid, set()).add(path.split("/")[1])
    assert sorted(len(v) for v in by_file.values()) == [1, 1, 1], by_file  # one log per file_id
    assert sorted(p for p, _, _ in got) == sorted(
        [f"/g1/l{i}" for i in range(1, 8)] + ["/g2/l1", "/g2/l2"] + [f"/g3/l{i}" for i in range(1, 4)])


def test_a_poll_lists_the_followed_paths_once(tmp_path, monkeypatch):
    """A poll that finds something new read from the listing its quiet check made (both
    expanded the globs and looked at every file on the same poll)."""
    from logferry import sources

    calls = []
    expand = sources.expand
    monkeypatch.setattr(sources, "expand", lambda *a, **k: calls.append(1) or expand(*a, **k))
    per_poll: list[int] = []

    class Counting(Follower):
        def _quiet(self) -> bool:
            self.before = len(calls)
            return super()._quiet()

        def _poll(self) -> None:
            super()._poll()
            if getattr(self, "before", None) is not None:  # (the first poll after a quiet check)
                per_poll.append(len(calls) - self.before)
                self.before = None

    log = Log(tmp_path / "access.log")
    log.write(5)
    f = Counting(tmp_path / "f.duckdb", [str(tmp_path / "access.log*")], commit_every=0.2, poll=0.05)
    stop = threading.Event()
    t = threading.Thread(target=f.run, args=(stop,), daemon=True)
    t.start()
    try:
        for n in (10, 15, 20):
            wait_for(lambda n=n: f.status()["lines"] >= n - 5, timeout=60)
            log.write(5)
        wait_for(lambda: f.status()["lines"] >= 20, timeout=60)
    finally:
        stop.set()
        t.join(30)
    log.close()
    assert len(per_poll) >= 3 and set(per_poll) == {1}, per_poll
    check_exactly_once(tmp_path / "f.duckdb", log)


def test_a_log_copytruncated_while_it_is_read_keeps_none_of_the_new_content_as_its_own(tmp_path, monkeypatch):
    """copytruncate between the follower's check of a log and its read of the new lines:
    the read got the new content from the old offset (the same inode), stored as the old
    log's lines. Now the read is dropped when the file no longer holds what was read, and
    the next poll takes the unread lines from the copy: every line once, in its own file."""
    import shutil as sh

    from logferry.usage.ingester import Ingester

    log = tmp_path / "access.log"
    log.write_bytes(b"".join(clf(1, i) for i in range(1, 11)))
    real = Ingester._load
    armed: list[int] = []
    done: list[int] = []

    def rotate_then_load(self, sf, *a, **kw):
        if sf.path == str(log) and armed and not done:
            done.append(1)  # (after the follower's checks: the log copied, truncated, refilled)
            sh.copyfile(log, tmp_path / "access.log.1")
            with open(log, "r+b") as fh:
                fh.truncate(0)
                fh.write(b"".join(clf(2, i) for i in range(1, 41)))
        return real(self, sf, *a, **kw)

    monkeypatch.setattr(Ingester, "_load", rotate_then_load)
    db = tmp_path / "c.duckdb"
    f = Follower(db, [str(tmp_path / "access.log*")], commit_every=0.2, poll=0.05)
    stop = threading.Event()
    t = threading.Thread(target=f.run, args=(stop,), daemon=True)
    t.start()
    try:
        wait_for(lambda: f.status()["lines"] >= 10, timeout=60)
        armed.append(1)  # (the next read of the log: after the lines below were appended)
        with open(log, "ab") as fh:
            fh.write(b"".join(clf(1, i) for i in range(11, 16)))
        try:
            wait_for(lambda: done and len(rows(db)) >= 55, timeout=30)
        except AssertionError:
            pass  # (the lines stored are compared below, which says what went wrong)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(30)
    got = rows(db)
    want = [f"/g1/l{i}" for i in range(1, 16)] + [f"/g2/l{i}" for i in range(1, 41)]
    assert sorted(p for p, _, _ in got) == sorted(want)
    by_file: dict[int, set[str]] = {}
    for path, _, fid in got:
        by_file.setdefault(fid, set()).add(path.split("/")[1])
    assert sorted(sorted(v) for v in by_file.values()) == [["g1"], ["g2"]], by_file


def one_poll(f: Follower, first: bool = False) -> None:
    """One poll of ``f`` and its commit, driven by the test (no thread, no timing)."""
    once = threading.Event()
    once.set()  # (a poll that read something waits for the stop before polling again)
    f._cycle(None, first, once)


def let_go(f: Follower) -> None:
    for lv in f._live.values():
        lv.f.close()


@pytest.mark.parametrize(("fmt", "cut"), [(None, 19), (None, 70), (None, 85), ("combined", 19)])
def test_a_log_first_seen_with_half_its_first_line_stores_that_line_whole(tmp_path, fmt, cut):
    """A poll between the two parts of a first line written in two (a flush mid-line):
    the format was told from the half line (no format, or ``common`` for a line cut
    before its referer: every line a bad row), and once the line ended its head was lost
    -- the next read of the held file went on from where the last one stopped (its
    start, nothing whole read yet, is never sought), so the file's byte offsets were off
    by the half line from then on."""
    log = tmp_path / "access.log"
    lines = b"".join(clf(1, i) for i in range(1, 6))
    log.write_bytes(lines[:cut])
    f = Follower(tmp_path / "f.duckdb", [str(tmp_path / "access.log*")], format=fmt)
    try:
        one_poll(f, first=True)
        with open(log, "ab") as fh:
            fh.write(lines[cut:])
        one_poll(f)
        with open(log, "ab") as fh:
            fh.write(clf(1, 6))
        one_poll(f)
    finally:
        let_go(f)
    assert f.status()["errors"] == {}
    assert sorted(rows(tmp_path / "f.duckdb")) == [(f"/g1/l{i}", i, 1) for i in range(1, 7)]
    assert query(tmp_path / "f.duckdb", "SELECT lines, records, bad_rows, bytes FROM files") == [
        (6, 6, 0, len(lines) + len(clf(1, 6)))]


@pytest.mark.parametrize("seen_half", [False, True])
def test_a_line_copytruncate_splits_is_a_bad_row_in_each_file(tmp_path, seen_half):
    """A writer's line torn by copytruncate itself (its first part written before the
    copy, the rest after the truncation): the part in the copy is the copy's last line,
    the rest the new log's first, each a bad row of its file -- records + bad rows are
    the lines of each file, nothing of the old log is put in the new one.  Also when the
    follower held the first part back (an unfinished last line) before the rotation."""
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(clf(1, i) for i in range(1, 6)))
    torn = clf(1, 6)
    f = Follower(tmp_path / "f.duckdb", [str(tmp_path / "access.log*")])
    try:
        one_poll(f, first=True)
        with open(log, "ab") as fh:
            fh.write(torn[:40])
        if seen_half:
            one_poll(f)
        shutil.copyfile(log, tmp_path / "access.log.1")
        os.truncate(log, 0)
        with open(log, "ab") as fh:
            fh.write(torn[40:] + b"".join(clf(2, i) for i in range(2, 5)))
        one_poll(f)
        one_poll(f)
    finally:
        let_go(f)
    db = tmp_path / "f.duckdb"
    assert sorted(p for p, _, _ in rows(db)) == [f"/g1/l{i}" for i in range(1, 6)] + [f"/g2/l{i}" for i in range(2, 5)]
    assert bad_rows(db) == [(1, 6, torn[:40].decode()), (2, 1, torn[40:-1].decode())]
    assert query(db, "SELECT path, lines, records, bad_rows FROM files ORDER BY file_id") == [
        (str(tmp_path / "access.log.1"), 6, 5, 1), (str(log), 4, 3, 1)]


@pytest.mark.parametrize("then", ["rename", "rename+gzip"])
def test_a_log_copytruncated_then_rotated_away_between_two_polls_keeps_none_of_the_new_content(tmp_path, then):
    """copytruncate, new lines, then the log renamed (or renamed, compressed and the plain
    one deleted), all between two polls (a follower slow under load): the held file,
    rotated away, was read on as the old log -- the new lines stored as its own (and
    again from their rotated file), and its unread lines, taken from its copy at the new
    content's byte offsets, lost or read from the middle of a line (a line shifted, its
    head lost).  Now a held file that no longer starts as it did holds new content
    wherever it went: the old log's unread lines come from its copy."""
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(clf(9, i) for i in range(1, 4)))
    f = Follower(tmp_path / "f.duckdb", [str(tmp_path / "access.log*")])
    try:
        one_poll(f, first=True)
        with open(log, "ab") as fh:
            fh.write(clf(9, 4) + clf(9, 5))
        shutil.copyfile(log, tmp_path / "access.log.1")
        os.truncate(log, 0)
        with open(log, "ab") as fh:  # (a longer generation number: longer lines)
            fh.write(b"".join(clf(10, i) for i in range(1, 5)))
        os.rename(log, tmp_path / "access.log.2")
        if then == "rename+gzip":
            with open(tmp_path / "access.log.2", "rb") as src, gzip.open(tmp_path / "access.log.2.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.unlink(tmp_path / "access.log.2")
        log.write_bytes(clf(11, 1) + clf(11, 2))
        one_poll(f)
        one_poll(f)
    finally:
        let_go(f)
    db = tmp_path / "f.duckdb"
    got = rows(db)
    want = {(f"/g{g}/l{i}", i) for g, k in ((9, 5), (10, 4), (11, 2)) for i in range(1, k + 1)}
    assert sorted((p, ln) for p, ln, _ in got) == sorted(want), bad_rows(db)
    assert bad_rows(db) == []
    files = {(p.split("/")[1], fid) for p, _, fid in got}
    assert len(files) == 3 and len({fid for _, fid in files}) == 3, files
