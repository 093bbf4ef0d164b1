"""A FIFO, a device or a socket where a log file is expected (issue 22 item 9): opening a
FIFO waits for a writer and reading it for data, so every command skipped nothing and hung
(the follower even ignored SIGTERM).  The one source layer skips them with a message."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest
from tests.servers.servers import Child
from tests.test_follow import LOGFERRY, clf, rows, wait_for

from logferry import sources


@pytest.fixture
def odd_files(tmp_path):
    """A folder with one log and, matched by the same glob, a FIFO, a socket and a
    character device (a symlink to /dev/null)."""
    d = tmp_path / "logs"
    d.mkdir()
    (d / "a.log").write_bytes(b"".join(clf(0, n) for n in range(1, 4)))
    os.mkfifo(d / "pipe.log")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "sock.log"))
    os.symlink("/dev/null", d / "null.log")
    yield d
    s.close()


KINDS = {"pipe.log": "a FIFO", "sock.log": "a socket", "null.log": "a character device"}


def test_expand_skips_what_is_not_a_regular_file_with_a_message(odd_files):
    errors: list[tuple[str, str]] = []
    found = sources.expand([str(odd_files / "*.log")], errors=errors)
    assert [os.path.basename(sf.path) for sf in found] == ["a.log"]
    assert sorted((os.path.basename(p), m.endswith(f"not a regular file ({KINDS[os.path.basename(p)]}), skipped"))
                  for p, m in errors) == [(n, True) for n in sorted(KINDS)]
    # a folder's FIFO likewise; named alone it is an error
    errors.clear()
    assert [os.path.basename(sf.path) for sf in sources.expand([str(odd_files)], folders=True, errors=errors)] == [
        "a.log"]
    assert len(errors) == 3
    with pytest.raises(sources.NotRegularError, match="a FIFO"):
        sources.expand([str(odd_files / "pipe.log")])


@pytest.mark.parametrize("cmd", [["detect"], ["convert"], ["ingest", "--db", "{tmp}/i.duckdb"], ["report"]])
def test_commands_on_a_fifo_answer_at_once(odd_files, tmp_path, cmd):
    """``detect``, ``convert``, ``ingest`` and ``report`` on a FIFO hung forever."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in cmd]
    p = subprocess.run([*LOGFERRY, *args, str(odd_files / "pipe.log")], capture_output=True, timeout=60,
                       env={**os.environ, "TMPDIR": str(tmp_path)})
    err = p.stderr.decode()
    assert p.returncode in (1, 2), err
    assert re.search(r"pipe\.log: (error: )?not a regular file \(a FIFO\), skipped", err) and "Traceback" not in err


def test_follow_a_glob_matching_a_fifo_reads_the_logs_and_stops_on_sigterm(odd_files, tmp_path):
    """The follower blocked opening the FIFO before reading anything, and SIGTERM could not
    stop it; now the FIFO, socket and device are reported once each and the log is read."""
    db = tmp_path / "f.duckdb"
    with Child("ingest", "--follow", "--db", str(db), "--commit-every", "0.2", str(odd_files / "*.log")) as p:
        wait_for(lambda: p.saw("a.log: new file"), timeout=60)
        with open(odd_files / "a.log", "ab") as f:
            f.write(clf(0, 4))
        assert p.stop(timeout=30) == 1, p.text  # (1: files were skipped)
    text = p.text
    for name, kind in KINDS.items():
        assert text.count(f"{name}: error: not a regular file ({kind}), skipped") == 1, text
    assert "followed 1 files: 4 lines stored" in text and "Traceback" not in text
    assert sorted(ln for _, ln, _ in rows(db)) == [1, 2, 3, 4]
