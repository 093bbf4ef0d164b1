"""Following stores every line exactly once, whatever rotation did while the follower was
stopped or between two of its polls (issue 22 items 6-8): copies of a log (copytruncate's,
``gzip -k``'s) are known by their content and only their unread tail is stored, a file
rewritten in place is a new file, standard input's unfinished line is bounded; a
randomised run of rotations of every kind with the follower killed at random moments; and
seeded scripts of the same with the follower driven one poll at a time."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pytest
from tests.servers.servers import Child
from tests.test_follow import Log, check_exactly_once, clf, let_go, one_poll, rows, wait_for

from logferry.usage.follow import Follower


class Cli(Child):
    """``logferry ingest --follow`` on ``glob`` as a real process; its stderr collected."""

    def __init__(self, db: Path, glob: str, *extra: str):
        super().__init__("ingest", "--follow", "--db", str(db), "--commit-every", "0.2", *extra, glob)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> str:
        rc = super().stop(sig, timeout)
        assert sig != signal.SIGTERM or rc == 0, self.text
        return self.text


def caught_up(cli: Cli, log: Log, k: int) -> None:
    """Wait until ``cli`` has polled everything there now: a new marker log, the newest
    file, is the last one a poll reads (its line is one of those the database must hold)."""
    mark = log.path.with_name(f"{log.path.name}.mark{k}")
    mark.write_bytes(clf(900 + k, 1))
    log.written[f"/g{900 + k}/l1"] = 1
    wait_for(lambda: cli.saw(f"{mark.name}: new file"), timeout=90)


def run_until_caught_up(db: Path, log: Log, k: int) -> str:
    with Cli(db, f"{log.path}*") as cli:
        caught_up(cli, log, k)
        return cli.stop()


def test_copytruncate_while_stopped_stores_the_copy_s_unread_tail_once(tmp_path):
    """``cp access.log access.log.1; truncate -s0 access.log`` while the follower is
    stopped, with lines it had not read yet: the copy was stored again as a new file and
    its tail once more as the grown log (320 rows for 170 lines).  Also when the new
    content is already longer than the old (the truncation cannot be seen by size)."""
    for new_lines in (20, 300):
        d = tmp_path / str(new_lines)
        d.mkdir()
        log = Log(d / "access.log")
        db = d / "f.duckdb"
        log.write(100)
        run_until_caught_up(db, log, 1)
        log.write(50)  # not read yet
        shutil.copyfile(log.path, d / "access.log.1")
        os.truncate(log.path, 0)
        log.new_generation()
        log.write(new_lines)
        run_until_caught_up(db, log, 2)
        run_until_caught_up(db, log, 3)
        log.close()
        check_exactly_once(db, log)
        assert len(rows(db)) == 150 + new_lines + 3


def test_a_gzip_k_copy_beside_its_log_is_never_stored_again(tmp_path):
    """``gzip -k access.log.1`` next to the rotated log: the compressed copy was taken for
    the log's rotation, and the plain log then stored once more as a new file."""
    log = Log(tmp_path / "access.log")
    db = tmp_path / "f.duckdb"
    log.write(100)
    run_until_caught_up(db, log, 1)
    os.rename(log.path, tmp_path / "access.log.1")
    log.write(7)  # the writer has not reopened yet
    log.new_generation()
    log.reopen()
    log.write(50)
    with open(tmp_path / "access.log.1", "rb") as src, gzip.open(tmp_path / "access.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    for k in (2, 3, 4):
        run_until_caught_up(db, log, k)
        log.write(5)
    run_until_caught_up(db, log, 5)
    log.close()
    check_exactly_once(db, log)
    assert len(rows(db)) == 107 + 65 + 5


def rewrite_between_two_polls(tmp_path, new_lines: int):
    log = Log(tmp_path / "access.log")
    db = tmp_path / "f.duckdb"
    log.write(200)
    with Cli(db, f"{log.path}*") as cli:
        caught_up(cli, log, 1)
        cli.p.send_signal(signal.SIGSTOP)  # between two polls
        log.new_generation()
        with open(log.path, "r+b") as f:  # in place: same inode, at least the old size
            for n in range(1, new_lines + 1):
                f.write(clf(log.gen, n))
                log.written[f"/g{log.gen}/l{n}"] = n
        log.n = new_lines
        cli.p.send_signal(signal.SIGCONT)
        log.write(5)
        caught_up(cli, log, 2)
        cli.stop()
    log.close()
    check_exactly_once(db, log)
    assert len(rows(db)) == 200 + new_lines + 5 + 2


def test_a_file_rewritten_in_place_to_a_larger_size_between_two_polls_is_a_new_file(tmp_path):
    """The follower only compared sizes: the new content was read on from the old end
    (its first lines dropped, the rest counted as grown)."""
    rewrite_between_two_polls(tmp_path, 250)


def test_a_file_rewritten_in_place_to_the_same_size_between_two_polls_is_a_new_file(tmp_path):
    """Same size (the lines of both generations are as long): nothing was read at all
    until it grew, then only the new lines."""
    rewrite_between_two_polls(tmp_path, 200)


class Writer:
    """Appends to the log at random and rotates it every way logrotate does (rename,
    copytruncate, rename then gzip, gzip -k of a rotated log), on a thread.  A kind not
    made yet is chosen first (a short run under load still makes all four); one write in
    three is made in two parts (a line the follower may see half of; never split by a
    rotation: every line written is whole in one file)."""

    KINDS = ("rename", "copytruncate", "rename+gzip", "gzip -k")

    def __init__(self, log: Log, rnd: random.Random):
        self.log, self.rnd = log, rnd
        self.rotations: list[str] = []
        self.plain: list[Path] = []  # rotated logs not compressed yet
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.log.write(self.rnd.randint(1, 12), self.rnd.random() if self.rnd.random() < 0.33 else None)
                if self.rnd.random() < 0.04:
                    self.rotate(self.rnd.choice([k for k in self.KINDS if k not in self.rotations] or self.KINDS))
                time.sleep(0.02)
        except BaseException as e:  # reported by the test
            self.error = e

    def rotate(self, kind: str) -> None:
        log = self.log
        old = log.path.with_name(f"{log.path.name}.{len(self.rotations) + 1}")
        if kind == "gzip -k":
            if not self.plain:
                return
            self.gzip(self.plain.pop(0), keep=True)
        elif kind == "copytruncate":
            shutil.copyfile(log.path, old)
            os.truncate(log.path, 0)  # (the writer appends: it goes on at the start)
            log.new_generation()
            self.plain.append(old)
        else:
            os.rename(log.path, old)
            log.write(self.rnd.randint(0, 3))  # the writer has not reopened yet
            log.new_generation()
            log.reopen()
            if kind == "rename+gzip":
                self.gzip(old, keep=False)
            else:
                self.plain.append(old)
        self.rotations.append(kind)

    @staticmethod
    def gzip(path: Path, keep: bool) -> None:
        with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst, 4096)
        if not keep:
            os.unlink(path)


def test_random_rotations_of_every_kind_and_kills_store_every_line_once(tmp_path):
    """Issue 22 item 6: 6,000 lines, 20 rotations and 13 random SIGKILL/SIGTERM stored
    6,440 rows.  A seeded run (LOGFERRY_TEST_SEED) of the same: real follower processes
    killed or stopped at random moments while a writer appends and rotates."""
    seed = int(os.environ.get("LOGFERRY_TEST_SEED", "22"))
    rnd = random.Random(seed)
    log = Log(tmp_path / "access.log")
    db = tmp_path / "k.duckdb"
    w = Writer(log, random.Random(rnd.random()))
    wt = threading.Thread(target=w.run, daemon=True)
    wt.start()
    kills = {signal.SIGKILL: 0, signal.SIGTERM: 0}
    signals = [signal.SIGKILL, signal.SIGTERM]
    rnd.shuffle(signals)
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        with Cli(db, f"{log.path}*", "--quiet") as cli:
            time.sleep(rnd.uniform(0.3, 2.0))  # a random moment: starting, reading, committing...
            sig = signals[sum(kills.values()) % 2]
            cli.p.send_signal(sig)
            cli.wait(timeout=60)  # (a SIGTERM before the follower's handler is set: -15)
        kills[sig] += 1
    w.stop.set()
    wt.join()
    assert w.error is None, w.error
    run_until_caught_up(db, log, 1)
    log.close()
    got = rows(db)
    print(f"seed {seed}: {len(log.written)} lines, rotations {w.rotations}, kills {kills}, {len(got)} rows")
    check_exactly_once(db, log)  # (says which lines are missing or twice)
    assert len(got) == len(log.written)
    assert len(set(w.rotations)) == 4 and min(kills.values()) >= 2


class Script:
    """A seeded sequence of what a writer, logrotate and a follower's life do -- lines
    written whole or half (the rest written later, never after a rotation), rotations of
    every kind, polls, restarts and kills before a commit -- with the follower driven one
    poll at a time: no thread, no timing, the same run every time."""

    def __init__(self, tmp_path: Path, seed: int):
        self.rnd = random.Random(seed)
        self.log = Log(tmp_path / "access.log")
        self.writer = Writer(self.log, self.rnd)
        self.db, self.glob = tmp_path / "f.duckdb", str(tmp_path / "access.log*")
        self.rest = b""  # the second part of a line written half
        self.f, self.first = None, True
        self.restart()

    def restart(self) -> None:
        if self.f is not None:
            let_go(self.f)
        self.f, self.first = Follower(self.db, [self.glob]), True

    def poll(self, *, killed: bool = False) -> None:
        if not killed:
            one_poll(self.f, self.first)
            self.first = False
            return
        with contextlib.suppress(_Killed), self.f._session(None):  # (rolled back: never committed)
            if self.first:
                self.f._resume_rotated()
            self.f._poll()
            raise _Killed
        self.restart()

    def half_line(self) -> None:
        log = self.log
        log.n += 1
        line = clf(log.gen, log.n)
        log.written[f"/g{log.gen}/l{log.n}"] = log.n
        cut = self.rnd.randint(1, len(line) - 1)
        log.f.write(line[:cut])
        log.f.flush()
        self.rest = line[cut:]

    def finish_line(self) -> None:
        self.log.f.write(self.rest)
        self.log.f.flush()
        self.rest = b""

    def step(self) -> None:
        r, log = self.rnd.random(), self.log
        if self.rest:
            self.poll() if r < 0.5 else self.finish_line()
        elif r < 0.3:
            log.write(self.rnd.randint(1, 5))
        elif r < 0.4:
            self.half_line()
        elif r < 0.5:
            self.writer.rotate(self.rnd.choice(Writer.KINDS))
        elif r < 0.85:
            self.poll()
        elif r < 0.93:
            self.restart()
        else:
            self.poll(killed=True)


class _Killed(Exception):
    """A follower killed between its read and its commit."""


@pytest.mark.parametrize("seed", [59, 107])
def test_seeded_scripts_of_writes_rotations_polls_and_kills_store_every_line_once(tmp_path, seed):
    """150 steps of a :class:`Script`; the seeds are ones that lost or repeated lines
    before the follower checked a held log that was copytruncated and then rotated away
    between two polls (test_follow has that sequence alone)."""
    script = Script(tmp_path, seed)
    for _ in range(150):
        script.step()
    script.finish_line()
    script.log.close()
    script.restart()
    for _ in range(4):
        script.poll()
    let_go(script.f)
    check_exactly_once(script.db, script.log)


def test_an_unfinished_line_on_standard_input_costs_bounded_memory_and_is_one_bad_row(tmp_path):
    """``ingest --follow -``: a 40 MiB line without its end was kept whole and copied on
    every poll (+170 MB); now it is kept to max_line_bytes + 1 bytes (16 MiB), and once
    it ends it is one bad row that says how long it was."""
    db = tmp_path / "p.duckdb"
    with Child("ingest", "--follow", "--db", str(db), "--commit-every", "0.2", "-", stdin=subprocess.PIPE) as p:

        def peak_kib() -> int:
            with open(f"/proc/{p.p.pid}/status") as f:
                return next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))

        p.p.stdin.write(b"".join(clf(0, n) for n in range(1, 11)))
        p.p.stdin.flush()
        wait_for(lambda: p.saw("new file"), timeout=60)
        before = peak_kib()
        block = b"x" * (1 << 20)
        for _ in range(40):
            p.p.stdin.write(block)
            p.p.stdin.flush()
        time.sleep(1.5)  # several polls with the unfinished line there
        grown = peak_kib() - before
        p.p.stdin.write(b"\n" + b"".join(clf(0, n) for n in range(12, 15)))
        p.p.stdin.close()
        assert p.wait(timeout=60) == 0, p.text
    assert grown < 48 << 10, f"{grown} KiB more for a 40 MiB unfinished line"
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT lines, records, bad_rows FROM files").fetchall() == [(14, 13, 1)]
        assert con.execute("SELECT line_number, length(raw), reason FROM bad_rows").fetchall() == [
            (11, 4096, f"line longer than {16 << 20} bytes ({40 << 20} bytes)")]
        assert sorted(ln for (ln,) in con.execute("SELECT line_number FROM requests").fetchall()) == [
            *range(1, 11), 12, 13, 14]
    finally:
        con.close()


def test_the_stdin_buffer_keeps_whole_lines_and_cuts_a_long_one():
    """The pipe's view ends at the last whole line; a line longer than max_line keeps
    max_line + 1 bytes (enough to be one bad row) and its length, whatever the blocks."""
    from logferry.usage.follow import _Pipe

    pipe = _Pipe(None, 10)
    for block in (b"ab\ncd", b"e\n" + b"L" * 7, b"L" * 20, b"LL", b"L\r\nok\nhalf", b"S" * 15 + b"\n"):
        pipe._add(block)
    kept = b"ab\ncde\n" + b"L" * 11 + b"\nok\nhalf" + b"S" * 15 + b"\n"  # (a line ending in its block: whole)
    assert pipe.view(False).read() == kept and pipe.lines == 5
    pipe._add(b"unfinished")
    assert pipe.view(False).read() == kept and pipe.view(True).read() == kept + b"unfinished"
    assert pipe.cut_lines(2) == [] and pipe.cut_lines(9) == [(3, 30)] and pipe.cut_lines(9) == []
    v = pipe.view(True)
    assert v.seek(7) == 7 and v.read(3) == b"LLL" and v.tell() == 10
    pipe.discard(9)
    assert pipe.view(False).read() == kept[9:] and pipe.head(4) == b"LLLL" and pipe.size == len(kept) + 10


def test_a_log_starting_like_another_is_no_copy_of_it(tmp_path):
    """Copies are known by content identity: a log registered while it held only its
    header must not make every log with the same header its copy (a new W3C log of the
    same site, a CSV log's title line): the identity grows with what is read."""
    from logferry.usage.follow import Follower

    header = b"#Software: Microsoft Internet Information Services 10.0\n#Fields: date time c-ip cs-method cs-uri-stem sc-status\n"

    def line(name: str, i: int) -> bytes:
        return f"2024-03-01 10:00:{i:02d} 10.0.0.1 GET /{name}/{i} 200\n".encode()

    (tmp_path / "a.log").write_bytes(header)
    db = tmp_path / "h.duckdb"
    f = Follower(db, [str(tmp_path / "*.log")], commit_every=0.1, poll=0.05, format="w3c")
    stop = threading.Event()
    t = threading.Thread(target=f.run, args=(stop,), daemon=True)
    t.start()
    try:
        wait_for(lambda: f.status()["files"] == 1, timeout=60)
        with open(tmp_path / "a.log", "ab") as fh:
            fh.write(b"".join(line("a", i) for i in range(1, 4)))
        wait_for(lambda: f.status()["lines"] == 3)
        (tmp_path / "b.log").write_bytes(header + b"".join(line("b", i) for i in range(1, 6)))
        wait_for(lambda: f.status()["lines"] >= 8)
    finally:
        stop.set()
        t.join(30)
    got = sorted((p, ln) for p, ln, _ in rows(db))
    assert got == sorted([(f"/a/{i}", i + 2) for i in range(1, 4)] + [(f"/b/{i}", i + 2) for i in range(1, 6)])
    ids = {p[1]: fid for p, _, fid in rows(db)}
    assert f.status()["files"] == 2 and ids["a"] != ids["b"]
