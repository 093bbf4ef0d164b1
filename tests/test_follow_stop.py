"""SIGTERM ends ``logferry ingest --follow`` at once, whatever it is doing: polling idle,
in the middle of a long read, waiting for the database another process holds,
following a file being rewritten in place, or a pipe.  It commits what it read, exits 0, and a
follower started later stores the rest: every line exactly once.  (A follower waiting for
the database after SIGTERM waited forever, and one in a long read read the file to its
end first.)  The children are real processes; 20 s without an exit is taken for a hang
(their stacks are then in the failure)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import duckdb
from tests.servers.servers import Child
from tests.test_follow import Log, check_exactly_once, clf, wait_for

#: seconds a child may take to end after SIGTERM before it is taken for hung
HANG = 20


def follow(db, log: Log) -> Child:
    return Child("ingest", "--follow", "--db", str(db), "--commit-every", "0.2", f"{log.path}*")


def catch_up(db, log: Log, k: int) -> None:
    """A follower run until it stored the lines there now (a marker log, the newest file,
    is the last a poll reads), then stopped by SIGTERM."""
    mark = log.path.with_name(f"{log.path.name}.mark{k}")
    mark.write_bytes(clf(900 + k, 1))
    log.written[f"/g{900 + k}/l1"] = 1
    with follow(db, log) as p:
        wait_for(lambda: p.saw(f"{mark.name}: new file"), timeout=120)
        assert p.stop(timeout=HANG) == 0, p.text


def test_sigterm_while_polling_idle(tmp_path):
    log, db = Log(tmp_path / "access.log"), tmp_path / "f.duckdb"
    log.write(30)
    catch_up(db, log, 1)
    log.write(5)
    catch_up(db, log, 2)
    log.close()
    check_exactly_once(db, log)


def test_sigterm_in_the_middle_of_a_long_read_ends_it_at_its_next_commit(tmp_path):
    """300,000 lines: the read commits every 200,000 rows; SIGTERM as soon as the follower
    opened the log ends the read at the first of those commits (it read the whole file
    first), and the next follower reads on from there.  The file's first and last request
    times span both reads (a commit inside a read did not record them)."""
    log, db = Log(tmp_path / "access.log"), tmp_path / "f.duckdb"
    log.f.write(b"".join(clf(0, n).replace(b"/Mar/", b"/Feb/") for n in range(1, 1001)))  # the earliest
    log.written.update((f"/g0/l{n}", n) for n in range(1, 1001))
    log.n = 1000
    log.write(299_000)
    with follow(db, log) as p:
        wait_for(lambda: _has_open(p.p.pid, log.path), timeout=120)
        assert p.stop(timeout=HANG) == 0, p.text
    with duckdb.connect(str(db), read_only=True) as con:
        (stored,) = con.execute("SELECT lines FROM files").fetchone()
    assert 0 < stored < 300_000, f"{stored} of 300,000 lines read before the stop"
    catch_up(db, log, 1)
    log.close()
    check_exactly_once(db, log)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT min(first_timestamp), max(last_timestamp) FROM files").fetchone() == \
            con.execute("SELECT min(timestamp), max(timestamp) FROM requests").fetchone()


def test_sigterm_while_another_process_holds_the_database(tmp_path):
    """The lines appended while another process holds the database cannot be stored:
    the stopped follower leaves them for the next one (it waited for the database)."""
    log, db = Log(tmp_path / "access.log"), tmp_path / "f.duckdb"
    log.write(20)
    catch_up(db, log, 1)
    with follow(db, log) as p:
        wait_for(lambda: _has_open(p.p.pid, log.path), timeout=120)  # it polls (it holds the log open)
        with _holder(db):
            log.write(7)
            time.sleep(1.0)  # several polls finding the database held
            assert p.stop(timeout=HANG) == 0, p.text
    catch_up(db, log, 2)
    log.close()
    check_exactly_once(db, log)


def test_sigterm_while_the_file_is_rewritten_in_place(tmp_path):
    """A writer rewrites the log in place, again and again (same inode, same size, new
    lines), while the follower reads it; SIGTERM in the middle of that."""
    log, db = Log(tmp_path / "access.log"), tmp_path / "f.duckdb"
    log.write(2000)
    log.close()
    done = threading.Event()

    def rewrite() -> None:
        gen = 0
        while not done.is_set():
            gen += 1
            with open(log.path, "r+b") as f:
                for n in range(1, 2001):
                    f.write(clf(gen, n))
            time.sleep(0.01)

    w = threading.Thread(target=rewrite, daemon=True)
    with follow(db, log) as p:
        wait_for(lambda: p.saw("access.log: new file"), timeout=120)
        w.start()
        try:
            time.sleep(1.5)
            assert p.stop(timeout=HANG) == 0, p.text
        finally:
            done.set()
            w.join()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM files WHERE records + bad_rows != lines - directives - blank"
                           ).fetchone() == (0,)
        n, distinct = con.execute("SELECT count(*), count(DISTINCT (file_id, line_number)) FROM requests").fetchone()
        assert n == distinct == con.execute("SELECT sum(records) FROM files").fetchone()[0] > 0


def test_sigterm_while_following_standard_input(tmp_path):
    """``ingest --follow -`` with its pipe still open: what came in is stored, each line
    once, and it exits 0."""
    db = tmp_path / "p.duckdb"
    with Child("ingest", "--follow", "--db", str(db), "--commit-every", "0.2", "-", stdin=subprocess.PIPE) as p:
        p.p.stdin.write(b"".join(clf(0, n) for n in range(1, 31)))
        p.p.stdin.flush()
        wait_for(lambda: p.saw("new file"), timeout=120)
        p.p.stdin.write(b"".join(clf(0, n) for n in range(31, 36)))
        p.p.stdin.flush()
        assert p.stop(timeout=HANG) == 0, p.text
    with duckdb.connect(str(db), read_only=True) as con:
        got = sorted(n for (n,) in con.execute("SELECT line_number FROM requests").fetchall())
        assert con.execute("SELECT sum(records + bad_rows) FROM files").fetchone() == (len(got),)
    assert len(got) >= 30 and got == list(range(1, len(got) + 1))


def _has_open(pid: int, path) -> bool:
    """Process ``pid`` has ``path`` open."""
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == str(path):
                return True
        except OSError:
            pass
    return False


class _holder:
    """Another process holding ``db`` open for writing (taken between two of the
    follower's commits) until the block ends."""

    def __init__(self, db):
        self.db = db

    def __enter__(self) -> _holder:
        code = ("import duckdb, sys, time\n"
                "while True:\n"
                "    try:\n"
                "        c = duckdb.connect(sys.argv[1]); break\n"
                "    except duckdb.IOException:\n"
                "        time.sleep(0.02)\n"
                "print('held', flush=True)\nsys.stdin.read()\n")
        self.p = subprocess.Popen([sys.executable, "-c", code, str(self.db)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert self.p.stdout.readline().strip() == "held"
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.p.stdin.close()  # (it lets go when its standard input ends)
        try:
            self.p.wait(timeout=HANG)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def test_a_signal_arriving_inside_the_stop_events_wait_does_not_hang():
    """The handler runs on the main thread, which may be inside ``stop.wait`` holding the
    event's lock (CPython's ``Event._cond``): setting the event there waited for that lock
    for ever (a follower hung on SIGTERM, seen once in CI).  The handler now returns at
    once and the event is set as soon as the lock is free."""
    import signal

    from logferry.usage.cli import _stop_on_signals

    stop = threading.Event()
    with _stop_on_signals(stop):
        handler = signal.getsignal(signal.SIGTERM)

        def signalled_inside_wait():
            with stop._cond:  # (as Event.wait holds it)
                handler(signal.SIGTERM, None)

        t = threading.Thread(target=signalled_inside_wait, daemon=True)
        t.start()
        t.join(5)
        assert not t.is_alive(), "the handler waited for the lock its own thread holds"
        assert stop.wait(5)
