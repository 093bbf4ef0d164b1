"""One unreadable source file (issue 12, item 5): the other files are delivered, the run
is `partial` with the file's error, and the next run retries the file."""

from __future__ import annotations

import collections
import gzip

import pytest
from click.testing import CliRunner
from tests.test_dest_conformance import paths_of, write_log

from logferry.cli import app
from logferry.destinations import open_destination
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State


def _got(dest) -> collections.Counter:
    return collections.Counter(p for o in dest.list() for p in paths_of(dest.get(o.name)))


def _want(*ranges) -> collections.Counter:
    return collections.Counter(f"/p/{i}" for a, b in ranges for i in range(a, b))


def _gzip_log(tmp_path, start, n) -> bytes:
    plain = tmp_path / "plain.tmp"
    write_log(plain, start, n)
    data = gzip.compress(plain.read_bytes())
    plain.unlink()
    return data


def test_corrupt_file_does_not_stop_the_others_and_is_retried(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    write_log(logs / "a.log", 0, 50)
    write_log(logs / "c.log", 100, 50)
    good = _gzip_log(tmp_path, 1000, 60_000)
    m = len(good) // 2
    (logs / "b.log.gz").write_bytes(good[:m] + b"\xff" * 64 + good[m + 64:])  # corrupt inside
    url = f"file://{tmp_path}/out"
    args = ["ship", str(logs / "*"), "--dest", url, "--state", str(tmp_path / "st"),
            "--max-records", "40", "--name", "{seq:05d}{ext}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1, r.output
    assert "run 1 partial:" in r.output
    assert f"error: {logs / 'b.log.gz'}: " in r.output
    dest = open_destination(url)
    got = _got(dest)
    # a and c go whole; of b, what was read before the read broke off may go (how much
    # depends on where the reader's blocks end): the first lines, each once
    assert all(v == 1 for v in got.values())
    of_b = sorted(int(p[3:]) for p in got if int(p[3:]) >= 1000)
    assert of_b == list(range(1000, 1000 + len(of_b)))
    assert got == _want((0, 50), (100, 150), (1000, 1000 + len(of_b)))
    st = State(tmp_path / "st")
    run = st.runs("ship")[0]
    assert run.status == "partial" and "b.log.gz" in run.error and run.records == 100 + len(of_b)

    # the file is repaired (the complete copy arrives): the next run sends the rest of it
    (logs / "b.log.gz").write_bytes(good)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "run 2 ok:" in r.output and f"{60_000 - len(of_b)} records" in r.output
    assert _got(dest) == _want((0, 50), (100, 150), (1000, 61_000))
    st.close()


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_truncated_file_delivers_what_was_read_and_continues_later(tmp_path, codec):
    """A gzip or zstd file cut short (a copy still in progress): the lines read before the
    cut go, the file's checkpoint stays at the last line read, the run is partial, and when
    the complete file is there the next run sends the rest: every line once.  (A cut zstd
    file ended quietly: read as a complete, shorter log.)"""
    logs = tmp_path / "logs"
    logs.mkdir()
    write_log(logs / "a.log", 0, 30)
    good = _gzip_log(tmp_path, 1000, 120_000)
    name = "b.log.gz"
    if codec == "zstd":
        import zstandard

        good, name = zstandard.ZstdCompressor().compress(gzip.decompress(good)), "b.log.zst"
    (logs / name).write_bytes(good[: int(len(good) * 0.8)])
    job = Job("t", (str(logs / "*"),), f"file://{tmp_path}/out", name_template="{seq:05d}{ext}",
              limits=Limits(max_records=5000))
    st = State(tmp_path / "st")
    dest = open_destination(job.dest)
    r1 = run_job(job, st, dest)
    assert r1.status == "partial" and name in r1.error, (r1.status, r1.error)
    got = _got(dest)
    assert all(v == 1 for v in got.values())
    assert _want((0, 30)) - got == collections.Counter()
    (logs / name).write_bytes(good)
    r2 = run_job(job, st, dest)
    assert r2.status == "ok", r2.error
    assert _got(dest) == _want((0, 30), (1000, 121_000))
    assert r1.records + r2.records == 120_030
    st.close()


def test_only_file_unreadable_is_failed_not_partial(tmp_path):
    (tmp_path / "b.log.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    job = Job("t", (str(tmp_path / "b.log.gz"),), f"file://{tmp_path}/out")
    st = State(tmp_path / "st")
    r = run_job(job, st, open_destination(job.dest))
    assert r.status == "failed" and "b.log.gz" in r.error and r.objects == 0
    st.close()
