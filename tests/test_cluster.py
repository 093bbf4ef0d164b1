"""Many files at once on a real Dask cluster (LocalCluster: worker processes on 127.0.0.1)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest

import logferry
from conftest import corpus
from logferry.cluster import bad_rows_dataframe, convert_files, output_names, read_dataframe

distributed = pytest.importorskip("distributed")

FILES = [
    "matomo-log-analytics/iis.log",
    "aws-cloudfront-docs/AccessLogs.md@5999c0d8_example_web_33fields.log",
    "elastic-beats-filebeat-nginx/test.log",
    "lnav/logfile_w3c.5",  # holds bad rows
]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _read_all(path):
    bad = []
    table = logferry.read(path, on_bad=bad.append).to_table()
    return table, bad


@pytest.fixture
def inputs(tmp_path):
    """The corpus files (read in place) plus, in two folders, two files of the same name
    and one that is no log at all."""
    paths = [str(corpus(f)) for f in FILES]
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        shutil.copyfile(paths[0], tmp_path / d / "iis.log")  # (a temp copy, removed after the test)
    (tmp_path / "x" / "notes.txt").write_bytes(b"\x00\x01 not a log\n" * 3)
    return paths + [str(tmp_path / "x" / "iis.log"), str(tmp_path / "y" / "iis.log"),
                    str(tmp_path / "x" / "notes.txt")]


def test_convert_files_on_a_cluster_one_task_per_file_nothing_lost(client, inputs, tmp_path):
    out = tmp_path / "out"
    results = convert_files(inputs, str(out), to="parquet", client=client)
    assert [r.source for r in results] == inputs  # input order
    # two inputs named iis.log: two outputs, neither overwriting the other
    outputs = [r.output for r in results if r.output]
    assert len(set(outputs)) == len(outputs) == len(inputs) - 1
    for r in results[:-1]:
        table, bad = _read_all(r.source)
        assert r.error is None and r.format == logferry.detect(r.source).format
        assert r.records == table.num_rows == pq.read_table(r.output).num_rows
        assert r.bad_rows == len(bad)
        written = pq.read_table(r.output)
        assert written.column("line_number").to_pylist() == table.column("line_number").to_pylist()
        assert written.column("status").to_pylist() == table.column("status").to_pylist()
        if bad:  # the quarantine file beside the output: every bad row, with its line number
            rows = [json.loads(ln) for ln in open(r.bad_rows_file, encoding="utf-8")]
            assert [(b["line_number"], b["reason"]) for b in rows] == [(b.line_number, b.reason) for b in bad]
        else:
            assert r.bad_rows_file is None
    assert sum(r.bad_rows for r in results) > 0
    # the file that is no log: an error, and nothing left behind for it
    failed = results[-1]
    assert failed.output is None and failed.error and "notes.txt" in failed.error
    assert not list(out.glob("notes*"))


def test_convert_files_locally_without_a_cluster(inputs, tmp_path):
    results = convert_files(inputs[:2], str(tmp_path / "o"), to="jsonl", scheduler="threads")
    assert [r.output.rsplit("/", 1)[-1] for r in results] == [
        "iis.log.jsonl", "AccessLogs.md@5999c0d8_example_web_33fields.log.jsonl"]
    for r in results:
        lines = open(r.output, encoding="utf-8").read().splitlines()
        assert len(lines) == r.records == _read_all(r.source)[0].num_rows > 0


def test_a_bad_target_fails_before_any_task(inputs, tmp_path):
    with pytest.raises(logferry.ConfigError):
        convert_files(inputs, str(tmp_path / "o"), to="no-such-format")
    assert not (tmp_path / "o").exists()


def test_output_names_strip_compression_and_never_collide():
    names = output_names(["a/access.log.gz", "b/access.log", "c/other.log.zst"], ".parquet")
    assert names[2] == "other.log.parquet"
    assert names[0] != names[1] and all(n.startswith("access.log-") and n.endswith(".parquet") for n in names[:2])


def test_read_dataframe_one_partition_per_file(client, inputs):
    logs = inputs[:4]
    ddf = read_dataframe(logs)
    assert ddf.npartitions == len(logs)
    assert list(ddf.columns) == logferry.CANONICAL_SCHEMA.names
    df = ddf.compute()
    expect = [_read_all(p)[0] for p in logs]
    assert len(df) == sum(t.num_rows for t in expect)
    assert df["status"].value_counts().to_dict() == Counter(
        s for t in expect for s in t.column("status").to_pylist() if s is not None)
    bad = bad_rows_dataframe(logs).compute()
    expect_bad = [(b.source_file, b.line_number, b.reason) for p in logs for b in _read_all(p)[1]]
    assert list(zip(bad["source_file"], bad["line_number"], bad["reason"], strict=True)) == expect_bad
    assert len(expect_bad) > 0


def test_convert_files_from_and_to_s3(monkeypatch, tmp_path):
    """Remote in, remote out (a real S3 API server on 127.0.0.1): globbed gz objects are
    read where the task runs, outputs and the quarantine object land in the bucket."""
    import gzip

    import boto3
    import s3fs
    from tests.servers import servers as S

    srv = S.S3Server()
    try:
        for k, v in (("AWS_ENDPOINT_URL", srv.endpoint), ("AWS_ACCESS_KEY_ID", "test"),
                     ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(k, v)
        srv.make_bucket("logs")
        c = boto3.client("s3", endpoint_url=srv.endpoint, region_name="us-east-1")
        src = corpus("lnav/logfile_w3c.5").read_bytes()
        for key in ("in/a.log.gz", "in/b.log.gz"):
            c.put_object(Bucket="logs", Key=key, Body=gzip.compress(src))
        s3fs.S3FileSystem.clear_instance_cache()
        results = convert_files(["s3://logs/in/*.gz"], "s3://logs/out", to="jsonl", scheduler="threads")
        table, bad = _read_all(str(corpus("lnav/logfile_w3c.5")))
        assert [r.output for r in results] == ["s3://logs/out/a.log.jsonl", "s3://logs/out/b.log.jsonl"]
        for r in results:
            assert r.error is None and r.records == table.num_rows and r.bad_rows == len(bad) > 0
            body = c.get_object(Bucket="logs", Key=r.output.removeprefix("s3://logs/"))["Body"].read()
            assert len(body.splitlines()) == table.num_rows
            quarantined = c.get_object(Bucket="logs", Key=r.bad_rows_file.removeprefix("s3://logs/"))["Body"].read()
            assert [json.loads(x)["line_number"] for x in quarantined.splitlines()] == [b.line_number for b in bad]
    finally:
        srv.stop()
