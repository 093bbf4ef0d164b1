"""What a lake task is sent of the manifest: the entries its own files may be (by place,
by head, by content group), not the whole manifest; the workers decide as the whole
manifest would (known, grown, renamed, rotated, compressed, copied, copytruncated files).
Real parts: pyiceberg's SQLite catalog, a Dask LocalCluster of 2 worker processes."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
from pathlib import Path

import pytest
from tests.test_lake import clf, cli

pytest.importorskip("pyiceberg")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False}) as lc:
        with distributed.Client(lc) as c:
            c.logferry_where = "local cluster"
            yield c


class Recording:
    """A Dask client that notes what the driver sends: the job scattered, each task's
    files and manifest entries (pickled sizes)."""

    def __init__(self, client):
        self.client = client
        self.scattered: list[int] = []
        self.tasks: list[tuple[list[str], object, int]] = []  # (files, their entries, pickled bytes)

    def __getattr__(self, name):
        return getattr(self.client, name)

    def scatter(self, data, **kw):
        self.scattered.append(len(pickle.dumps(data)))
        return self.client.scatter(data, **kw)

    def submit(self, fn, *args, **kw):
        if fn.__name__ == "read_files":
            files, sent = args[1], args[2]
            self.tasks.append(([Path(sf.path).name for sf in files], sent, len(pickle.dumps(sent))))
        return self.client.submit(fn, *args, **kw)


def _log(path: Path, k: int, n: int = 20, day: int = 1) -> None:
    path.write_bytes(b"".join(clf(1000 * k + i, f"s{k % 3}.example", day) for i in range(n)))


def _lake(path: Path):
    from logferry.lake.tables import Lake, Where

    return Lake(Where.of(str(path)), create=True)


def _ingest(lake_path: Path, paths: list[str], client=None):
    from logferry.lake.ingest import ingest_lake
    from logferry.sources import expand

    return ingest_lake(_lake(lake_path), expand(paths, sort=False), client=client)


def _results(summary) -> list[tuple]:
    return [(Path(r.path).name, r.status, r.file_id, r.lines, r.records, r.bad_rows, r.message)
            for r in summary.files]


def _known_lake(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """A lake of ``n`` registered files, then one of them grown (a007.log) and one renamed
    (a011.log -> moved.log)."""
    folder = tmp_path / "logs"
    folder.mkdir()
    for k in range(n):
        _log(folder / f"a{k:03d}.log", k, n=4)
    lake = tmp_path / "lake"
    assert len(_ingest(lake, [str(folder / "*.log")]).files) == n
    with open(folder / "a007.log", "ab") as f:
        f.write(clf(1, "s1.example", day=2))
    os.rename(folder / "a011.log", folder / "moved.log")
    return folder, lake


def test_a_task_is_sent_only_the_entries_its_files_may_be(tmp_path, client):
    """A lake of 300 registered files; a run of 6 new files, one grown and one renamed:
    the job every worker gets holds no entry, each task only its files' (the grown and
    the renamed file's among them), a few hundredths of the whole manifest."""
    from logferry.lake.commit import load_manifest

    folder, lake = _known_lake(tmp_path, 300)
    whole = len(pickle.dumps(load_manifest(_lake(lake)).entries()))  # (the files' changes are not in it)
    for k in range(6):
        _log(folder / f"n{k}.log", 500 + k)
    rec = Recording(client)
    paths = [str(folder / n) for n in ("a007.log", "moved.log", *(f"n{k}.log" for k in range(6)))]
    got = {Path(r.path).name: r.status for r in _ingest(lake, paths, rec).files}
    assert got == {"a007.log": "grown", "moved.log": "duplicate", **{f"n{k}.log": "new" for k in range(6)}}
    assert len(rec.scattered) == 1 and rec.scattered[0] < whole / 20, (rec.scattered, whole)
    sent = {name: {Path(r.path).name for r in rows.rows} for names, rows, _ in rec.tasks for name in names}
    assert sent["a007.log"] >= {"a007.log"} and sent["moved.log"] >= {"a011.log"}
    assert sum(len(rows.rows) for _, rows, _ in rec.tasks) <= 4, rec.tasks
    assert sum(n for *_, n in rec.tasks) < whole / 20, ([n for *_, n in rec.tasks], whole)


def _files(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    p = {f"p{k}": folder / f"p{k}.log" for k in range(8)}
    for k, path in enumerate(p.values()):
        _log(path, k, n=30)
    p["tiny"] = folder / "tiny.log"
    _log(p["tiny"], 20, n=2)  # (under 1 KiB: a content group of its own, by identity)
    p["gz"] = folder / "g.log.gz"
    p["gz"].write_bytes(gzip.compress(b"".join(clf(i, "s2.example") for i in range(40))))
    return p


def _change(folder: Path, p: dict[str, Path]) -> None:
    """Known files grown, renamed, rotated, compressed, copied and copytruncated; new ones."""
    with open(p["p0"], "ab") as f:  # grown
        f.write(b"".join(clf(i, "s0.example", day=2) for i in range(5)))
    os.rename(p["p1"], folder / "p1.renamed")  # renamed
    os.rename(p["p2"], folder / "p2.log.1")  # rotated: a new file in its place
    _log(p["p2"], 40)
    os.rename(p["p3"], folder / "p3.log.1")  # rotated and compressed (new inode, new bytes)
    (folder / "p3.log.1.gz").write_bytes(gzip.compress((folder / "p3.log.1").read_bytes()))
    os.unlink(folder / "p3.log.1")
    shutil.copy(p["p4"], folder / "p4.copy")  # copied
    (folder / "p5.log.gz").write_bytes(gzip.compress(p["p5"].read_bytes()))  # gzip -k
    shutil.copy(p["p6"], folder / "p6.log.1")  # copytruncate
    _log(p["p6"], 41, n=5)
    shutil.copy(p["tiny"], folder / "tiny.copy")
    (folder / "a.tiny.grown").write_bytes(p["tiny"].read_bytes() + clf(7, "s1.example") * 3)
    shutil.copy(p["gz"], folder / "g.copy.gz")
    (folder / "p7.grown.gz").write_bytes(gzip.compress(p["p7"].read_bytes() + clf(8, "s1.example")))
    _log(folder / "new.log", 50)
    (folder / "new.log.gz").write_bytes(gzip.compress(b"".join(clf(i, "s9.example") for i in range(30))))


def paths_names(paths: list[str]) -> list[str]:
    return [Path(p).name for p in paths]


def _tables(lake: Path) -> dict[str, list]:
    cols = ("file_id, path, identity, head_bytes, head_fp, format, size, bytes, lines, directives, blank, "
            "records, bad_rows, partial_tail, dev, ino, fp, fp_len, anchor_line, anchor_off, truncated_at, ingests")
    import json

    out = {}
    for name, q in (("files", f"SELECT {cols} FROM files ORDER BY file_id"),
                    ("requests", "SELECT file_id, line_number, host, path, status FROM requests ORDER BY ALL"),
                    ("bad_rows", "SELECT file_id, line_number, reason FROM bad_rows ORDER BY ALL")):
        out[name] = [json.loads(line) for line in cli("sql", "--lake", lake, "--json", q).stdout.splitlines()]
    return out


def test_workers_sent_their_files_entries_decide_as_the_whole_manifest(tmp_path, client, monkeypatch):
    """The same files into four lakes, then changed every way a log changes: the run on
    workers and the run in one process (each task its files' entries, a head whose content
    group was not sent read again with it), a run in one process whose every task has
    the whole manifest, and one whose driver holds the digests as text (a manifest with a
    value that is not a digest) give the same results and the same tables."""
    from logferry.lake import manifest
    from logferry.lake.manifest import Manifest

    def as_text(t):
        raise manifest.NotDigests("test")

    folder = tmp_path / "logs"
    p = _files(folder)
    whole, tasks, here, text = (tmp_path / n for n in ("whole", "tasks", "here", "text"))
    first = [str(x) for x in p.values()]
    with monkeypatch.context() as m:
        m.setattr(Manifest, "for_files", lambda self, files, *a: self.whole())
        got = _results(_ingest(whole, first))
    with monkeypatch.context() as m:
        m.setattr(manifest, "digests_as_bytes", as_text)
        assert _results(_ingest(text, first)) == got
    assert got == _results(_ingest(tasks, first)) == _results(_ingest(here, first))
    _change(folder, p)
    paths = [str(folder / n) for n in sorted(os.listdir(folder))]
    rec = Recording(client)
    on_workers = _results(_ingest(tasks, paths, rec))
    in_one = _results(_ingest(here, paths))
    with monkeypatch.context() as m:
        m.setattr(Manifest, "for_files", lambda self, files, *a: self.whole())
        assert _results(_ingest(whole, paths)) == on_workers == in_one
    with monkeypatch.context() as m:
        m.setattr(manifest, "digests_as_bytes", as_text)
        assert _results(_ingest(text, paths)) == in_one
    status = {r[0]: r[1] for r in in_one}
    assert status["p0.log"] == "grown" and status["new.log"] == status["new.log.gz"] == "new"
    # (rotated and compressed, and a compressed copy of a file still there: its rotation)
    assert status["p3.log.1.gz"] == status["p5.log.gz"] == "unchanged"
    for name in ("p1.renamed", "p2.log.1", "p4.copy", "p6.log.1", "tiny.copy",
                 "g.copy.gz"):
        assert status[name] == "duplicate", (name, [r[:2] for r in in_one])
    assert status["a.tiny.grown"] == "grown" and status["p7.grown.gz"] == "grown", in_one
    # (a compressed copy's head is not its listed bytes; a small file grown elsewhere starts
    # with the small one's whole content, not its own: in a task without the small file,
    # they found their content groups not sent, and were sent again with them)
    assert [names for names, *_ in rec.tasks][0][:2] == ["a.tiny.grown", "g.copy.gz"]
    sent = [name for names, *_ in rec.tasks for name in names]
    assert sorted(sent) == sorted([*paths_names(paths), "g.copy.gz", "a.tiny.grown"]), rec.tasks
    assert _tables(tasks) == _tables(whole) == _tables(here) == _tables(text)
    from logferry.lake.commit import load_manifest

    assert load_manifest(_lake(here)).table.schema.field("identity").type == manifest.DIGEST


def test_a_run_in_one_process_makes_objects_of_its_files_entries_only(tmp_path, monkeypatch):
    """The driver holds the manifest as Arrow: a run of a few files over a lake of 150
    registered ones turns only the entries those files may be into Python objects (each
    run built one per entry, and its index: ~1.5 CPU s and ~300 MiB per 100,000 entries),
    and decides as before (grown, renamed, new)."""
    from logferry.lake import commit, manifest
    from logferry.lake.manifest import LakeRegistered

    folder, lake = _known_lake(tmp_path, 150)
    _log(folder / "n0.log", 500)
    built = []

    class Counted(LakeRegistered):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            built.append(self)

    for module in (commit, manifest):  # (wherever entries are made)
        monkeypatch.setattr(module, "LakeRegistered", Counted)
    paths = [str(folder / n) for n in ("a007.log", "moved.log", "n0.log")]
    got = {Path(r.path).name: r.status for r in _ingest(lake, paths).files}
    assert got == {"a007.log": "grown", "moved.log": "duplicate", "n0.log": "new"}
    assert {Path(r.path).name for r in built} <= {"a007.log", "a011.log"} and len(built) <= 3, built


def test_content_keys_are_the_digests_first_eight_bytes():
    """The job's content keys, made from the manifest's hex digests in one pass over their
    bytes, are what a task looks a head's digest up by (``int(h[:16], 16)``)."""
    import hashlib

    import numpy as np
    import pyarrow as pa

    from logferry.lake.manifest import _among, _hex_keys, _key, digests_as_bytes, hex_list

    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(500)] + ["f" * 64, "0" * 64]
    col = pa.chunked_array([digests[:200], [None], digests[200:], digests[1:4]])
    keys = _hex_keys(col.slice(1))
    assert keys.tolist() == sorted({_key(h) for h in digests[1:]})
    assert keys.dtype == np.uint64 and all(_among(keys, h) for h in digests[1:])
    assert not _among(keys, digests[0]) and _hex_keys(pa.chunked_array([], pa.string())).size == 0
    # held as their bytes (as the driver holds them), the same keys
    as_bytes = digests_as_bytes(pa.table({"identity": col, "fp": col}))
    assert as_bytes.schema.field("identity").type == pa.binary(32) and as_bytes.num_rows == len(col)
    assert hex_list(as_bytes["fp"]) == col.to_pylist()
    assert _hex_keys(as_bytes["identity"].slice(1)).tolist() == keys.tolist()
    assert _hex_keys(as_bytes["identity"], pa.chunked_array([[False] * 200, [False], [True] * 302, [False] * 3])
                     ).tolist() == sorted({_key(h) for h in digests[200:]})


@pytest.mark.parametrize("value", ["A" * 64, "a" * 63, "a" * 65, "g" * 64, " " + "a" * 63, "é" * 32])
def test_a_manifest_whose_digests_are_not_all_digests_is_held_as_text(value):
    """A digest column with a value not 64 lowercase hex digits (not written by logferry)
    is not turned into bytes (its value could not come back as it was)."""
    import hashlib

    import pyarrow as pa

    from logferry.lake.manifest import NotDigests, digests_as_bytes, with_digest_bytes

    t = pa.table({"identity": [hashlib.sha256(b"x").hexdigest(), None, value]})
    with pytest.raises(NotDigests):
        digests_as_bytes(t)
    assert with_digest_bytes(lambda each=None: t if each is None else each(t)) is t
